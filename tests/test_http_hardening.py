"""The shared HTTP base (poolwatch/httpbase.py) under hostile clients, on real servers bound to
127.0.0.1: the controller's server and the node exporter's. Raw sockets, because a well-behaved
client library cannot send a broken Content-Length or hold a connection open half-written."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
from collections.abc import Iterator

import bcrypt
import pytest
from helpers import free_port
from test_controller_support import controller, sim

from poolwatch.controller.server import ControllerServer, serve
from poolwatch.core.httpbase import accepts_gzip
from poolwatch.exporters.node.server import _Auth
from poolwatch.exporters.node.server import serve as serve_node
from poolwatch.exporters.node.store import ExpositionStore
from poolwatch.exporters.node.webconfig import WebConfig

TOKEN = "t0ken"  # noqa: S105 - a test token
ACTION = b'{"kind": "isolate", "key": "k1", "node": "p0-node-01", "fault_code": "A050104"}'


@pytest.fixture
def ctl_port() -> Iterator[int]:
    server = ControllerServer(("127.0.0.1", free_port()), controller(sim(), dry_run=True), TOKEN,
                              lambda: True, lambda: None)  # fmt: skip
    server.idle_timeout, server.read_timeout = 0.5, 1.0
    serve(server)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def exchange(port: int, raw: bytes, wait: float = 5.0) -> bytes:
    """Send `raw`, read until the server closes or `wait` passes; b"" when nothing came."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(raw)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if _complete(out):
                    break  # a whole keep-alive answer
        except TimeoutError:
            pass
        return out


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:] if sep else []:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _post(length: bytes, extra: bytes = b"", body: bytes = ACTION) -> bytes:
    return (b"POST /actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + length + b"\r\n"
            + extra + b"\r\n" + body)  # fmt: skip


@pytest.mark.parametrize("length", [b"abc", b"\xb2", b"-5", b"0x10", b"1e3", b"+80"])
def test_a_content_length_that_is_not_a_number_is_400(ctl_port: int, length: bytes) -> None:
    """Before: int() raised in the handler and the connection dropped without an answer
    (`\\xb2` is '²', which str.isdigit() accepts)."""
    assert status_of(exchange(ctl_port, _post(length))) == 400


def test_transfer_encoding_with_content_length_is_400(ctl_port: int) -> None:
    """Before: the controller read Content-Length bytes and carried the action out while a
    proxy in front would have read the chunked body: the request smuggling shape."""
    body = ACTION + b"\r\n0\r\n\r\n"  # the Content-Length view: an action, then junk
    answer = exchange(ctl_port, _post(str(len(ACTION)).encode(),
                                      b"Transfer-Encoding: chunked\r\n", body))  # fmt: skip
    assert status_of(answer) == 400
    assert b"dry-run" not in answer


def test_an_idle_connection_is_closed(ctl_port: int) -> None:
    """Before: the controller's connections had no timeout: an idle one held a thread forever."""
    started = time.monotonic()
    assert exchange(ctl_port, b"", wait=5.0) == b""  # closed by the server, not by our wait
    assert time.monotonic() - started < 3.0


def test_a_trickling_request_is_cut_at_the_read_deadline(ctl_port: int) -> None:
    """A client sending one header byte every 0.2 s never trips a per-recv timeout; the read
    deadline (1 s here) closes it anyway."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", ctl_port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        try:
            for _ in range(40):  # 8 s of trickle at most
                sock.sendall(b"X")
                time.sleep(0.2)
        except OSError:
            closed = True
        if not closed:
            sock.settimeout(0.5)
            closed = sock.recv(100) == b""
    assert closed
    assert time.monotonic() - started < 4.0


def test_no_thread_is_left_behind(ctl_port: int) -> None:
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", ctl_port)) for _ in range(20)]
    time.sleep(0.3)
    assert threading.active_count() >= before + 10  # each holds a handler thread
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    for s in socks:
        s.close()
    assert threading.active_count() <= before


# -- node exporter (and so the cluster exporter and the rule engine, which serve through it) --


@pytest.fixture
def node_port() -> Iterator[int]:
    store = ExpositionStore({"node": "n1", "pool": "p"})
    store.register("nfs", 15, 10)
    store.put("nfs", b"# HELP x_total t\n# TYPE x_total counter\nx_total 3.0\n", True, 0.01)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(8)).decode()
    web = WebConfig(basic_auth_users={"ops": hashed})
    httpd = serve_node(store, ("127.0.0.1", 0), web, lambda: (True, "ok\n"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _get(port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())


def test_healthz_is_open_under_basic_auth(node_port: int) -> None:
    """Kubelet probes carry no credentials: before, /healthz answered 401 and the probe failed."""
    assert status_of(_get(node_port, "/healthz", {})) == 200
    assert status_of(_get(node_port, "/metrics", {})) == 401


def test_gzip_q0_means_no_gzip(node_port: int) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}
    plain = _get(node_port, "/metrics", {**auth, "Accept-Encoding": "gzip;q=0, identity"})
    assert b"Content-Encoding" not in plain.split(b"\r\n\r\n")[0]
    assert b"x_total 3.0" in plain
    zipped = _get(node_port, "/metrics", {**auth, "Accept-Encoding": "gzip"})
    head, body = zipped.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding: gzip" in head
    assert b"x_total 3.0" in gzip.decompress(body)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("gzip", True), ("gzip;q=0", False), ("gzip; q=0.0", False), ("GZIP;Q=0.5", True),
     ("identity", False), ("*", True), ("*;q=0", False), ("gzip;q=0, *", False),
     ("br, gzip;q=0.1", True), (None, False), ("gzip;q=abc", False)],
)  # fmt: skip
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_an_unknown_user_costs_a_bcrypt_check() -> None:
    """Before: an unknown user was refused at once and a known one after a bcrypt check, so the
    answer time told which users exist."""
    auth = _Auth({"ops": bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode()})

    def took(user: bytes) -> float:
        started = time.perf_counter()
        assert not auth.check("Basic " + base64.b64encode(user + b":wrong").decode())
        return time.perf_counter() - started

    # interleaved, best of five each, so a burst of load elsewhere skews both alike
    pairs = [(took(b"ops"), took(b"nobody")) for _ in range(5)]
    wrong_password, unknown_user = min(p[0] for p in pairs), min(p[1] for p in pairs)
    assert unknown_user > 0.5 * wrong_password, (unknown_user, wrong_password)


def test_deeply_nested_json_is_400_not_a_dropped_connection(ctl_port: int) -> None:
    """Before: json.loads raised RecursionError, which the handler did not catch."""
    body = b"[" * 30_000 + b"]" * 30_000
    answer = exchange(ctl_port, _post(str(len(body)).encode(), body=body))
    assert status_of(answer) == 400
    assert b"nested too deeply" in answer


def test_connections_beyond_the_cap_get_a_fast_503() -> None:
    """Before: every connection got a thread, so a flood of idle connections grew the threads
    without a bound."""
    from poolwatch.controller.server import ControllerServer

    server = ControllerServer(("127.0.0.1", free_port()), controller(sim()), TOKEN,
                              lambda: True, lambda: None)  # fmt: skip
    server.max_connections = 3
    serve(server)
    port = server.server_address[1]
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)
        started = time.monotonic()
        answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(answer) == 503
        assert time.monotonic() - started < 1.0
        for s in held:
            s.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if status_of(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200:
                break
            time.sleep(0.1)
        assert status_of(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
    finally:
        server.shutdown()
        server.server_close()


def test_bcrypt_checks_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every wrong password ran its bcrypt check at once, so a flood of them took every
    core from the scrapes."""
    auth = _Auth({"ops": bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()})
    running, most, lock = [0], [0], threading.Lock()
    real = bcrypt.checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        try:
            return real(password, hashed)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    header = "Basic " + base64.b64encode(b"ops:wrong").decode()
    threads = [threading.Thread(target=auth.check, args=(header,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most[0] <= _Auth.BCRYPT_AT_ONCE < 8


def test_a_client_that_never_reads_its_answer_is_let_go() -> None:
    """A 20 MB exposition asked for and never read: the handler thread gives up after the write
    timeout (1 s here) instead of the 30 s socket timeout, or never."""
    store = ExpositionStore({"node": "n1", "pool": "p"})
    store.register("big", 15, 10)
    store.put("big", b"# TYPE x gauge\n" + b"x 1\n" * 5_000_000, True, 0.01)
    httpd = serve_node(store, ("127.0.0.1", 0), WebConfig(), lambda: (True, "ok\n"))
    httpd.write_timeout = 1.0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        before = threading.active_count()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(httpd.server_address)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
            assert threading.active_count() == before + 1  # the handler, stuck writing
            deadline = time.monotonic() + 5
            while threading.active_count() > before and time.monotonic() < deadline:
                time.sleep(0.1)
            assert threading.active_count() == before  # gone while we still hold the socket
    finally:
        httpd.shutdown()
        httpd.server_close()
