"""The HTTP endpoint, served for real on 127.0.0.1: gzip, health, index, auth, TLS."""

import base64
import gzip
import http.client
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from helpers import parse, value

from poolwatch.core.config import ConfigError
from poolwatch.exporters.node.server import serve
from poolwatch.exporters.node.store import ExpositionStore
from poolwatch.exporters.node.webconfig import WebConfig, load_web_config

BODY = b"# HELP x_total t\n# TYPE x_total counter\nx_total 3.0\n"


@pytest.fixture
def store() -> ExpositionStore:
    s = ExpositionStore({"node": "n1", "pool": "p"})
    s.register("nfs", 15, 10)
    s.put("nfs", BODY, ok=True, took=0.01)
    return s


def _start(store: ExpositionStore, web: WebConfig, healthy: bool = True) -> Iterator[int]:
    httpd = serve(store, ("127.0.0.1", 0), web, lambda: (healthy, "ok\n" if healthy else "no\n"))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _get(port: int, path: str, headers=None, tls: ssl.SSLContext | None = None):
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=5)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_metrics_plain_and_gzip(store: ExpositionStore) -> None:
    for port in _start(store, WebConfig()):
        resp, body = _get(port, "/metrics")
        assert resp.status == 200
        assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        s = parse(body)
        assert value(s, "x_total") == 3
        assert value(s, "poolwatch_collector_up", collector="nfs", node="n1") == 1
        resp, zipped = _get(port, "/metrics", {"Accept-Encoding": "gzip"})
        assert resp.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(zipped) == body


def test_index_health_and_404(store: ExpositionStore) -> None:
    for port in _start(store, WebConfig()):
        resp, body = _get(port, "/")
        assert resp.status == 200
        assert b'href="/metrics"' in body
        assert _get(port, "/healthz")[0].status == 200
        assert _get(port, "/nope")[0].status == 404
    for port in _start(store, WebConfig(), healthy=False):
        assert _get(port, "/healthz")[0].status == 503


def test_basic_auth_with_bcrypt_hashes(store: ExpositionStore) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = WebConfig(basic_auth_users={"prom": hashed})
    good = "Basic " + base64.b64encode(b"prom:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"prom:wrong").decode()
    for port in _start(store, web):
        assert _get(port, "/metrics")[0].status == 401
        assert _get(port, "/metrics", {"Authorization": bad})[0].status == 401
        assert _get(port, "/metrics", {"Authorization": "Basic !!!"})[0].status == 401
        assert _get(port, "/metrics", {"Authorization": good})[0].status == 200
        assert _get(port, "/metrics", {"Authorization": good})[0].status == 200  # cached path
        assert _get(port, "/metrics", {"Authorization": bad})[0].status == 401


def test_tls_from_a_web_config_file(store: ExpositionStore, tmp_path: Path) -> None:
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    cfg = tmp_path / "web.yaml"
    cfg.write_text(f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n")
    client = ssl.create_default_context(cafile=str(crt))
    for port in _start(store, load_web_config(cfg)):
        resp, body = _get(port, "/metrics", tls=client)
        assert resp.status == 200
        assert b"x_total 3.0" in body
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            _get(port, "/metrics")  # plain HTTP on a TLS port is refused


def test_bad_web_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "web.yaml"
    cfg.write_text("basic_auth_users:\n  prom: plaintext\n")
    with pytest.raises(ConfigError, match=r"(?s)web.yaml.*bcrypt hash"):
        load_web_config(cfg)
    cfg.write_text(f"tls_server_config:\n  cert_file: {tmp_path}/no.crt\n  key_file: x\n")
    with pytest.raises(ConfigError, match="cannot load certificate"):
        load_web_config(cfg)
