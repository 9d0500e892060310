"""The attack run: every poolwatch HTTP server, started for real on 127.0.0.1 in this process (node
exporter with its collectors, cluster exporter on the simulated pool, alerts receiver, rule
engine, controller, pool API), gets the same hostile and clumsy clients: broken framing, oversized
lines and headers, bodies that never come, idle and trickling connections, floods of connections
and pipelined requests, bad credentials, deep JSON.

Bounded: one fixed list of attacks, each bounded in bytes and seconds; the servers' idle timeout
and read deadline are shortened (0.5 s and 1 s, set on the instances as an operator's setting
would) so the whole run takes well under 60 s.

What counts as survived, per (server, attack): the attack got the answer it should (a 4xx for a
malformed request, never an unanswered drop where an answer is due, never a 500; the connection
closed for idle and trickling clients) AND the server answers /healthz right after. After each
server's attacks its handler threads and the process's open descriptors go back to where they
were (no thread or socket leak). The figures are printed and asserted: tried == survived.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from alerts_support import settings as alerts_settings
from helpers import free_port

IDLE, READ = 0.5, 1.0  # the shortened idle timeout and read deadline (seconds)
WAIT = 4.0  # the longest any single exchange waits for the server
BUDGET = 60.0  # the whole run, servers' start included


@dataclass
class Target:
    name: str
    port: int
    post_path: str  # a path that takes POST (or, for a read-only server, one that does not)
    auth: dict[str, str]  # headers a legitimate client sends
    threaded: bool  # served by poolwatch.httpbase (thread per connection), else uvicorn
    results: dict[str, str] = field(default_factory=dict)  # attack -> "ok" | why not


@dataclass(frozen=True)
class Outcome:
    kind: str  # answered | closed | timeout
    status: int = 0
    raw: bytes = b""

    def __str__(self) -> str:
        return f"{self.kind} {self.status}" if self.kind == "answered" else self.kind


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


def send(port: int, raw: bytes, wait: float = WAIT, trickle: float = 0.0) -> Outcome:
    """Send `raw` (all at once, or a byte every `trickle` s), then read one answer or the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        deadline = time.monotonic() + wait
        try:
            if trickle:
                for byte in raw:
                    sock.sendall(bytes([byte]))
                    time.sleep(trickle)
                    if time.monotonic() > deadline:
                        return Outcome("timeout")
            else:
                sock.sendall(raw)
        except OSError:  # the server closed while we were still sending
            return Outcome("closed")
        data = b""
        try:
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if _complete(data):
                    break
        except TimeoutError:
            return Outcome("timeout", raw=data)
        except OSError:
            pass  # reset: the server closed, possibly after answering
        if data.startswith(b"HTTP/1."):
            return Outcome("answered", int(data.split(b" ", 2)[1]), data)
        return Outcome("closed", raw=data)


def request(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes = b"", extra: bytes = b"") -> bytes:  # fmt: skip
    lines = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}".encode() + extra + b"\r\n" + body
    )


# -- acceptance ---------------------------------------------------------------------------------
def answered(o: Outcome) -> bool:
    return o.kind == "answered" and o.status != 500


def answered_4xx(o: Outcome) -> bool:
    return o.kind == "answered" and 400 <= o.status < 500


def status_400(o: Outcome) -> bool:
    return o.kind == "answered" and o.status == 400


def answered_or_closed(o: Outcome) -> bool:
    return answered(o) or o.kind == "closed"


def closed(o: Outcome) -> bool:
    return o.kind == "closed"


# -- the attacks: (name, run(target) -> Outcome, accept) ------------------------------------------
def _pipelined(t: Target) -> Outcome:
    n = 100
    raw = request("GET", "/healthz") * n
    with socket.create_connection(("127.0.0.1", t.port), timeout=WAIT) as sock:
        sock.sendall(raw)
        data, deadline = b"", time.monotonic() + WAIT
        with contextlib.suppress(OSError):
            while data.count(b"HTTP/1.1 200") < n and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    got = data.count(b"HTTP/1.1 200")
    return Outcome("answered", 200 if got == n else 0, data[:200])


def _flood(t: Target) -> Outcome:
    """200 connections at once, half of them reset without a word, half with half a request."""
    socks = []
    for i in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", t.port), timeout=WAIT)
        except OSError:
            break
        if i % 2:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        socks.append(s)
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    return Outcome("answered", 200) if len(socks) == 200 else Outcome("timeout")


def _wrong_passwords(t: Target) -> Outcome:
    bad = {"Authorization": "Basic " + base64.b64encode(b"ops:wrong").decode()}
    outcomes = [send(t.port, request("GET", "/metrics", {**bad, "Connection": "close"}))
                for _ in range(5)]  # fmt: skip
    worst = next((o for o in outcomes if not answered(o)), outcomes[-1])
    return worst


DEEP = b"[" * 20_000 + b"]" * 20_000
JSON = {"Content-Type": "application/json"}
ATTACKS: list[tuple[str, Callable[[Target], Outcome], Callable[[Outcome], bool]]] = [
    ("binary garbage", lambda t: send(t.port, b"\x00\xff\xfe" * 300 + b"\r\n\r\n"),
     answered_or_closed),
    ("TLS hello on the plain port",
     lambda t: send(t.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)),
     answered_or_closed),
    ("70 kB request line", lambda t: send(t.port, request("GET", "/" + "a" * 70_000)),
     answered_or_closed),
    ("70 kB header", lambda t: send(t.port, request("GET", "/healthz", {"X-A": "a" * 70_000})),
     answered_or_closed),
    ("500 headers", lambda t: send(t.port, request(
        "GET", "/healthz", {f"X-{i}": "v" for i in range(500)})), answered_or_closed),
    ("Content-Length: abc", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": "abc"}, b"{}")), status_400),
    ("Content-Length: superscript two", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON}, b"{}", b"Content-Length: \xb2\r\n")),
     status_400),
    ("Content-Length: -1", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": "-1"}, b"{}")), status_400),
    ("Transfer-Encoding and Content-Length", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": "5",
                              "Transfer-Encoding": "chunked"}, b"0\r\n\r\n")), status_400),
    ("chunked body", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Transfer-Encoding": "chunked"},
        b"2\r\n{}\r\n0\r\n\r\n")), answered),
    ("1 TB Content-Length, no body", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": str(10**12)})),
     answered_or_closed),
    ("body shorter than its Content-Length", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": "1000"}, b'{"a": 1')),
     answered_or_closed),
    ("idle connection", lambda t: send(t.port, b""), closed),
    ("headers trickled a byte at a time", lambda t: send(
        t.port, request("GET", "/healthz", {"X-Slow": "s" * 100}), trickle=0.05), closed),
    ("HTTP/0.9 request", lambda t: send(t.port, b"GET /\r\n\r\n"), answered_or_closed),
    ("unknown method", lambda t: send(t.port, request("FROB", "/healthz")), answered),
    ("NUL and traversal in the path", lambda t: send(t.port, request(
        "GET", "/%00/../../etc/passwd", t.auth)), answered_4xx),
    ("undecodable basic auth", lambda t: send(t.port, request(
        "GET", "/metrics", {"Authorization": "Basic !!!\xff"})), answered),
    ("60 kB bearer token", lambda t: send(t.port, request(
        "GET", "/metrics", {"Authorization": "Bearer " + "t" * 60_000})), answered_or_closed),
    ("bytes that are not Latin-1 in a header", lambda t: send(t.port, request(
        "GET", "/healthz", extra=b"X-U: \xf0\x9f\x92\xa5\xff\r\n")), answered),
    ("deeply nested JSON", lambda t: send(t.port, request(
        "POST", t.post_path, {**t.auth, **JSON, "Content-Length": str(len(DEEP))}, DEEP)),
     answered),
    ("100 pipelined requests", _pipelined, lambda o: o.status == 200),
    ("200 connections, reset", _flood, lambda o: o.status == 200),
    ("wrong passwords", _wrong_passwords, answered),
]  # fmt: skip


# -- the servers --------------------------------------------------------------------------------
TOKEN = "attack-run-token"  # noqa: S105 - a test token
BASIC_USERS = {"ops": bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()}
BASIC = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _shorten(httpd: Any) -> Any:
    httpd.idle_timeout, httpd.read_timeout, httpd.write_timeout = IDLE, READ, 2.0
    return httpd


def _threaded(httpd: Any, stops: list[Callable[[], None]]) -> int:
    _shorten(httpd)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    stops.append(lambda: (httpd.shutdown(), httpd.server_close()))
    return httpd.server_address[1]


def start_servers(tmp: Path, stops: list[Callable[[], None]]) -> list[Target]:
    from poolwatch.alerts.receiver import Credentials, make_server
    from poolwatch.alerts.service import AlertService
    from poolwatch.api import embed, guard
    from poolwatch.api.app import create_app
    from poolwatch.app.cli import _serve_engine
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.controller.server import ControllerServer
    from poolwatch.controller.service import PoolController
    from poolwatch.controller.settings import ControllerSettings
    from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster
    from poolwatch.exporters.node.app import build, health_text
    from poolwatch.exporters.node.server import serve
    from poolwatch.exporters.node.settings import NodeExporterSettings
    from poolwatch.exporters.node.webconfig import WebConfig
    from poolwatch.rules.engine import Engine
    from poolwatch.rules.sources import PrometheusSource
    from poolwatch.rules.state import StateStore

    web = WebConfig(basic_auth_users=BASIC_USERS)
    targets = []

    runner, store = build(NodeExporterSettings(cache_dir=str(tmp)))
    runner.start()
    stops.append(runner.stop)
    node = serve(store, ("127.0.0.1", 0), web, lambda: health_text(store))
    targets.append(Target("node exporter", _threaded(node, stops), "/metrics", BASIC, True))

    cluster = SimulatedCluster()
    exporter = ClusterExporter(cluster)
    exporter.start()
    stops.append(exporter.stop)
    cl = serve_cluster(exporter, ("127.0.0.1", 0), web)
    targets.append(Target("cluster exporter", _threaded(cl, stops), "/events", BASIC, True))

    service = AlertService(alerts_settings(tmp, [{"name": "t", "url": "json://127.0.0.1:9/h"}]))
    service.start()
    stops.append(lambda: service.close(timeout=5.0))
    recv = make_server(service, ("127.0.0.1", 0), Credentials(TOKEN, {}))
    targets.append(Target("alerts receiver", _threaded(recv, stops), "/alertmanager", BEARER,
                          True))  # fmt: skip

    engine = Engine([], PrometheusSource("http://127.0.0.1:9"), StateStore(tmp / "rules.db"))
    rules = _serve_engine(engine, f"127.0.0.1:{free_port()}")
    _shorten(rules)
    stops.append(lambda: (rules.shutdown(), rules.server_close()))
    targets.append(Target("rule engine", rules.server_address[1], "/metrics", {}, True))

    ctl = PoolController(cluster, ControllerSettings(backend="simulated"))
    server = ControllerServer(("127.0.0.1", free_port()), ctl, TOKEN, lambda: True, lambda: None)
    targets.append(Target("controller", _threaded(server, stops), "/actions", BEARER, True))

    guard.GuardedH11Protocol.idle_timeout, guard.GuardedH11Protocol.read_timeout = IDLE, READ
    api = create_app(PoolController(cluster), cluster, "http://127.0.0.1:9", TOKEN)
    port = free_port()
    stops.append(embed.start(api, "127.0.0.1", port))
    targets.append(Target("pool API", port, "/v2/p/pools", BEARER, False))
    return targets


def healthy(t: Target) -> bool:
    o = send(t.port, request("GET", "/healthz", {"Connection": "close"}), wait=3.0)
    return o.kind == "answered" and o.status in (200, 503)


def open_connections(port: int) -> int:
    """Server-side connections on `port` still open (ESTABLISHED, or CLOSE_WAIT: the client has
    gone and the server has not closed), from the kernel's table."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if int(local.rsplit(":", 1)[1], 16) == port and state in ("01", "08"):
                    count += 1
    return count


def settled(baseline: int, now: Callable[[], int], slack: int, within: float = 5.0) -> int:
    """`now()` once it is back at `baseline` + `slack` (or when `within` s have passed)."""
    deadline = time.monotonic() + within
    while (value := now()) > baseline + slack and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Target]]:
    from poolwatch.api import guard

    monkeypatch.setattr(guard.GuardedH11Protocol, "idle_timeout", IDLE)
    monkeypatch.setattr(guard.GuardedH11Protocol, "read_timeout", READ)
    stops: list[Callable[[], None]] = []
    try:
        yield start_servers(tmp_path, stops)
    finally:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                stop()


# (server, attack) pairs whose answer is still wrong on this branch although the server survives
# them; the fix belongs to that server's own part. Strict: once one answers as it should, the
# test fails until the entry is removed, so the list can only shrink.
NOT_YET: set[tuple[str, str]] = set()


@pytest.mark.timeout(120)
def test_every_server_survives_the_attack_run(servers: list[Target]) -> None:
    started = time.monotonic()
    for t in servers:
        assert healthy(t), f"{t.name} does not answer before the run"
    for t in servers:
        threads = threading.active_count()
        for name, attack, accept in ATTACKS:
            outcome = attack(t)
            alive = healthy(t)
            if accept(outcome) and alive:
                t.results[name] = "ok"
            elif alive and (t.name, name) in NOT_YET:
                t.results[name] = f"survived, not yet answered as it should: got {outcome}"
            else:
                t.results[name] = f"got {outcome}" + ("" if alive else ", then no /healthz")
        left_threads = settled(threads, threading.active_count, 0)
        left_open = settled(0, functools.partial(open_connections, t.port), 0)
        t.results["no thread left behind"] = "ok" if left_threads <= threads else (
            f"{left_threads - threads} more threads")  # fmt: skip
        t.results["no connection left open"] = "ok" if not left_open else f"{left_open} open"
    took = time.monotonic() - started
    tried = sum(len(t.results) for t in servers)
    right = sum(r == "ok" for t in servers for r in t.results.values())
    survived = right + sum(r.startswith("survived") for t in servers for r in t.results.values())
    lines = [f"attack run: {len(servers)} servers x {len(ATTACKS)} attacks + 2 leak checks each: "
             f"{tried} tried, {survived} survived, {right} answered as they should, "
             f"{took:.1f} s"]  # fmt: skip
    lines += [f"  {t.name}: {name}: {r}" for t in servers for name, r in t.results.items()
              if r != "ok"]  # fmt: skip
    print("\n".join(lines))  # noqa: T201 - the figures are the point of this test
    assert survived == tried, "\n".join(lines)
    not_yet = {(t.name, n) for t in servers for n, r in t.results.items() if r != "ok"}
    assert not_yet == NOT_YET, "NOT_YET is out of date:\n" + "\n".join(lines)
    assert tried == len(servers) * (len(ATTACKS) + 2) == 6 * 26
    assert took < BUDGET
