"""Every server poolwatch runs, given the same credentials and the same TLS, answers alike.

One web layer (`poolwatch.core.web`) serves the node and cluster exporters, the alerts receiver,
the rule engine, the controller, the pool API and the demo site. Each one is started for real on
127.0.0.1 with one certificate and one basic-auth user (bearer token too where the server takes
one), through the same entry point its command uses, and spoken to over HTTPS with the
certificate verified: no credentials -> 401, wrong -> 401, right -> 200, the health endpoint open.
The rule engine's and the demo's servers get a stand-in for what they show (an engine with no
rules, a demo with no simulation): only their HTTP side is under test here.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from poolwatch.core.web.auth import Auth, Verdict
from poolwatch.core.web.config import WebConfig, load_web_config
from tests.helpers import free_port, self_signed_cert
from tests.helpers.alerts_support import settings as alerts_settings
from tests.integration.conftest import process

TOKEN = "same-token-everywhere"  # noqa: S105 - a test token
USER, PASSWORD = "ops", "right-password"
ACTION = b'{"kind": "isolate", "key": "k1", "node": "p0-node-01", "fault_code": "A050104"}'


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Served:
    """A started server: where it listens, the request that needs credentials, how to stop."""

    port: int
    method: str
    path: str
    body: bytes = b""
    bearer: bool = False  # whether it also takes the bearer token
    stops: list[Callable[[], None]] = field(default_factory=list)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> tuple[WebConfig, Path]:
    """One web-config file for every server: a self-signed certificate for 127.0.0.1 and one
    user with a bcrypt hash, as an operator writes it for node_exporter."""
    tmp = tmp_path_factory.mktemp("web")
    crt, key = self_signed_cert(tmp)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    cfg = tmp / "web.yaml"
    cfg.write_text(
        f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n"
        f"basic_auth_users:\n  {USER}: '{hashed}'\n"
    )
    return load_web_config(cfg), crt


def _threaded(httpd: Any, served: Served) -> Served:
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    served.stops.append(lambda: (httpd.shutdown(), httpd.server_close()))
    served.port = httpd.server_address[1]
    return served


def node_exporter(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.exporters.node.server import serve
    from poolwatch.exporters.node.store import ExpositionStore

    store = ExpositionStore({"node": "n1", "pool": "p"})
    httpd = serve(store, ("127.0.0.1", 0), web, lambda: (True, "ok\n"))
    return _threaded(httpd, Served(0, "GET", "/metrics"))


def cluster_exporter(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster

    exporter = ClusterExporter(SimulatedCluster())
    exporter.start()
    served = _threaded(serve_cluster(exporter, ("127.0.0.1", 0), web), Served(0, "GET", "/events"))
    served.stops.append(exporter.stop)
    return served


def alerts_receiver(web: WebConfig, tmp: Path) -> Served:
    """Through the web config file (`web_config_file`), as `poolwatch alerts serve` reads it,
    next to its own bearer token file (Alertmanager's `authorization`)."""
    from poolwatch.alerts.receiver import make_server
    from poolwatch.alerts.server import web_setup
    from poolwatch.alerts.service import AlertService

    assert web.tls_server_config is not None
    token = tmp / "alerts-token"
    token.write_text(TOKEN + "\n")
    settings = alerts_settings(
        tmp, [{"name": "t", "url": "json://127.0.0.1:9/h"}],
        web_config_file=str(web.tls_server_config.cert_file.parent / "web.yaml"),
        auth={"bearer_token_file": str(token)},
    )  # fmt: skip
    service = AlertService(settings)
    httpd = make_server(service, ("127.0.0.1", 0), *web_setup(settings))
    served = _threaded(httpd, Served(0, "GET", "/status", bearer=True))
    served.stops.append(lambda: service.close(timeout=5.0))
    return served


class _Engine:
    """Stand-in for the rule engine: no rules, healthy (its pages are not under test)."""

    def active_alerts(self) -> list[dict[str, Any]]:
        return []

    def rule_status(self) -> list[dict[str, Any]]:
        return []

    def health(self, interval: float) -> tuple[bool, str]:
        return True, "ok\n"


def rule_engine(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.rules.web import serve

    httpd = serve(_Engine(), lambda: b"", ("127.0.0.1", 0), 30.0, web=web)
    return _threaded(httpd, Served(0, "GET", "/api/alerts"))


def controller(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.controller.server import ControllerServer
    from poolwatch.controller.service import PoolController
    from poolwatch.controller.settings import ControllerSettings

    ctl = PoolController(SimulatedCluster(), ControllerSettings(backend="simulated"))
    httpd = ControllerServer(("127.0.0.1", 0), ctl, TOKEN, lambda: True, lambda: None,
                             web.auth([TOKEN]), web.ssl_context())  # fmt: skip
    return _threaded(httpd, Served(0, "POST", "/actions", ACTION, bearer=True))


def pool_api(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.api import embed
    from poolwatch.api.app import create_app
    from poolwatch.cluster.simulated.backend import SimulatedCluster
    from poolwatch.controller.service import PoolController

    cluster = SimulatedCluster()
    app = create_app(PoolController(cluster), cluster, "http://127.0.0.1:9", TOKEN,
                     basic_users=web.basic_auth_users)  # fmt: skip
    port = free_port()
    stop = embed.start(app, "127.0.0.1", port, tls=web.ssl_context())
    return Served(port, "GET", "/v2/p/pools", bearer=True, stops=[stop])


def demo_site(web: WebConfig, tmp: Path) -> Served:
    from poolwatch.app.demo_inbox import Inbox
    from poolwatch.app.demo_site import Site

    httpd = Site(("127.0.0.1", 0), None, Inbox(tmp / "inbox.sqlite"), web.auth(),
                 web.ssl_context())  # fmt: skip
    return _threaded(httpd, Served(0, "GET", "/inbox.json"))


SERVERS = [node_exporter, cluster_exporter, alerts_receiver, rule_engine, controller, pool_api,
           demo_site]  # fmt: skip


@pytest.fixture(params=SERVERS, ids=[s.__name__ for s in SERVERS])
def served(
    request: pytest.FixtureRequest, web: tuple[WebConfig, Path], tmp_path: Path
) -> Iterator[Served]:
    s = request.param(web[0], tmp_path)
    try:
        yield s
    finally:
        for stop in reversed(s.stops):
            stop()


def call(
    s: Served, crt: Path, headers: dict[str, str], path: str | None = None
) -> tuple[int, http.client.HTTPResponse, str]:
    """One HTTPS request, the server's certificate verified; (status, response, TLS version)."""
    client = ssl.create_default_context(cafile=str(crt))
    conn = http.client.HTTPSConnection("127.0.0.1", s.port, context=client, timeout=10)
    try:
        body = s.body if path is None else b""
        extra = {"Content-Type": "application/json"} if body else {}
        conn.request(s.method if path is None else "GET", path or s.path, body=body or None,
                     headers={**extra, **headers})  # fmt: skip
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp, conn.sock.version() if conn.sock else ""
    finally:
        conn.close()


def test_same_credentials_and_tls_on_every_server(
    served: Served, web: tuple[WebConfig, Path]
) -> None:
    crt = web[1]
    status, resp, version = call(served, crt, {})
    assert status == 401, "no credentials"
    assert resp.getheader("WWW-Authenticate"), "a 401 names the scheme to use"
    assert version in ("TLSv1.2", "TLSv1.3")
    assert call(served, crt, basic(USER, "wrong"))[0] == 401, "wrong password"
    assert call(served, crt, basic("nobody", PASSWORD))[0] == 401, "unknown user"
    assert call(served, crt, {"Authorization": "Bearer not-the-token"})[0] == 401, "wrong token"
    assert call(served, crt, basic(USER, PASSWORD))[0] == 200, "right basic auth"
    right_token = call(served, crt, {"Authorization": f"Bearer {TOKEN}"})[0]
    assert right_token == (200 if served.bearer else 401), "the bearer token where it is taken"
    assert call(served, crt, {}, "/healthz")[0] == 200, "health is open"


def test_plain_http_on_a_tls_port_gets_no_answer(
    served: Served, web: tuple[WebConfig, Path]
) -> None:
    def plain() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        finally:
            conn.close()

    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        plain()


def test_verdicts_of_the_shared_auth() -> None:
    """Missing and wrong are told apart (the receiver and the pool API say which in their
    error), and a scheme the server does not take is wrong, not missing."""
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    auth = Auth({"u": hashed}, [TOKEN])
    assert auth.verdict(None) is Verdict.MISSING
    assert auth.verdict("") is Verdict.MISSING
    assert auth.verdict(basic("u", "pw")["Authorization"]) is Verdict.OK
    assert auth.verdict(f"bearer {TOKEN}") is Verdict.OK  # the scheme is case-insensitive
    assert auth.verdict("Basic !!!not-base64") is Verdict.WRONG
    assert auth.verdict("Digest x") is Verdict.WRONG
    assert Auth(tokens=[TOKEN]).verdict(basic("u", "pw")["Authorization"]) is Verdict.WRONG
    assert Auth().verdict(None) is Verdict.OK  # no users, no tokens: open
    assert 'Basic realm="poolwatch"' in auth.challenge()
    assert 'Bearer realm="poolwatch"' in auth.challenge()
    with pytest.raises(ValueError, match="'u': expected a bcrypt hash"):
        Auth({"u": "plain-password"})


def test_receiver_passwords_are_checked_as_hashes(tmp_path: Path) -> None:
    """The receiver's configuration holds passwords in clear (Alertmanager sends them from the
    same file); the shared auth keeps only their bcrypt hashes."""
    from poolwatch.alerts.receiver import credentials

    auth = credentials(None, {"am": "pw-123"})
    assert auth.users["am"].startswith("$2")
    assert "pw-123" not in auth.users["am"]
    assert auth.check(basic("am", "pw-123")["Authorization"])
    assert not auth.check(basic("am", "pw-124")["Authorization"])


def _commands(tmp: Path, port: int, cfg: Path) -> dict[str, tuple[list[str], str, str, bytes]]:
    """Each serving command that takes --web-config-file: (argv, method, path, body)."""
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    listen = ["--listen", f"127.0.0.1:{port}", "--web-config-file", str(cfg)]
    return {
        "api serve": (["api", "serve", "--backend", "simulated", "--prometheus",
                       "http://127.0.0.1:9", "--token-file", str(token), *listen],
                      "GET", "/v2/p/pools", b""),
        "controller run": (["controller", "run", "--backend", "simulated", *listen],
                           "POST", "/actions", ACTION),
        "rules run": (["rules", "run", "--source", "local", "--target",
                       "http://127.0.0.1:9/metrics", "--state", str(tmp / "rules.db"), *listen],
                      "GET", "/api/alerts", b""),
        "alerts serve": (["alerts", "serve", "--outbox", str(tmp / "outbox.sqlite"), *listen],
                         "GET", "/status", b""),
    }  # fmt: skip


@pytest.mark.parametrize("command", ["api serve", "controller run", "rules run", "alerts serve"])
def test_commands_take_the_web_config_file(
    command: str, web: tuple[WebConfig, Path], tmp_path: Path
) -> None:
    """The command, as a real process, serves HTTPS with the file's certificate and asks for
    its user (before, `api serve`, `controller run`, `rules run` and `alerts serve` had no such
    option)."""
    crt = web[1]
    port = free_port()
    argv, method, path, body = _commands(tmp_path, port, crt.parent / "web.yaml")[command]
    cmd = [sys.executable, "-m", "poolwatch", *argv]
    client = ssl.create_default_context(cafile=str(crt))
    served = Served(port, method, path, body)
    with process(cmd, tmp_path / "out.log", f"https://127.0.0.1:{port}/healthz", client):
        assert call(served, crt, {})[0] == 401
        assert call(served, crt, basic(USER, "wrong"))[0] == 401
        assert call(served, crt, basic(USER, PASSWORD))[0] == 200


def test_controller_users_of_the_web_config_count_as_credentials(
    web: tuple[WebConfig, Path],
) -> None:
    """Off loopback the controller refuses to start without credentials; basic-auth users of
    its web-config file are credentials as much as the bearer token is."""
    from poolwatch.controller.server import ExposedWithoutToken, check_exposure

    with pytest.raises(ExposedWithoutToken, match="basic-auth users in web_config_file"):
        check_exposure(("0.0.0.0", 9482), None, WebConfig().auth())
    check_exposure(("0.0.0.0", 9482), None, web[0].auth())  # users, no token: allowed


METRICS_SERVERS = [node_exporter, cluster_exporter, alerts_receiver, rule_engine, controller]


@pytest.mark.parametrize("start", METRICS_SERVERS, ids=[s.__name__ for s in METRICS_SERVERS])
def test_metrics_are_one_exposition_answer(
    start: Callable[[WebConfig, Path], Served], web: tuple[WebConfig, Path], tmp_path: Path
) -> None:
    """Every /metrics has the same content type, and gzip when the client asks (before, the
    receiver, the rule engine and the controller never compressed)."""
    import gzip

    from poolwatch.core.web.server import METRICS_TYPE

    s = start(web[0], tmp_path)
    try:
        client = ssl.create_default_context(cafile=str(web[1]))
        for encoding in ("gzip", "identity"):
            conn = http.client.HTTPSConnection("127.0.0.1", s.port, context=client, timeout=10)
            conn.request("GET", "/metrics", headers={**basic(USER, PASSWORD),
                                                     "Accept-Encoding": encoding})  # fmt: skip
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 200
            assert resp.getheader("Content-Type") == METRICS_TYPE
            if encoding == "gzip":
                assert resp.getheader("Content-Encoding") == "gzip"
                gzip.decompress(body)
            else:
                assert resp.getheader("Content-Encoding") is None
    finally:
        for stop in reversed(s.stops):
            stop()
