"""The Prometheus source: an unreachable server, an error document and bad JSON are source
errors, and the engine fires against a real Prometheus on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolwatch.rules.engine import ENGINE_ALERT, Engine
from poolwatch.rules.sources import PrometheusSource, SourceError
from poolwatch.rules.state import StateStore
from tests.helpers import free_port
from tests.helpers.prom_versions import Prometheus
from tests.helpers.rules_fakes import group


def test_prometheus_source_down_is_a_source_error() -> None:
    src = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(SourceError):
        src.query("up", 0.0)
    with pytest.raises(ValueError, match="http"):
        PrometheusSource("file:///etc/passwd")


class _Gauge(http.server.BaseHTTPRequestHandler):
    value = 1.0
    body = b""

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/query"):
            body, code = type(self).body, 200 if type(self).body else 500
        else:
            text = f'poolwatch_collector_up{{collector="nfs",node="n1"}} {type(self).value}\n'
            body, code = text.encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_source_error_document_and_bad_json_are_source_errors() -> None:
    class Bad(_Gauge):
        body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'

    with serve(Bad) as port:
        with pytest.raises(SourceError, match="parse error"):
            PrometheusSource(f"http://127.0.0.1:{port}").query("up", 0.0)
        Bad.body = b"not json"
        with pytest.raises(SourceError):
            PrometheusSource(f"http://127.0.0.1:{port}").query("up", 0.0)


@pytest.mark.integration
def test_engine_fires_against_a_real_prometheus(tmp_path: Path, prom: Prometheus) -> None:
    from tests.integration.conftest import process  # the shared start-and-poll helper

    class Gauge(_Gauge):
        value = 1.0

    with serve(Gauge) as target:
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: gauge\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
        )
        cmd = [
            prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "prometheus.log"
        with process(cmd, log, f"{base}/-/ready"):
            src = PrometheusSource(base, timeout=5.0)
            e = Engine(
                [group(**{"for": None, "periods": 1})],
                src,
                StateStore(tmp_path / "s.db"),
                reminder_wait=3600.0,
                grace=60.0,
            )
            deadline = time.monotonic() + 30
            while not src.query("poolwatch_collector_up", time.time()):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert [a for a in e.evaluate() if a.rule != ENGINE_ALERT] == []  # healthy: quiet

            Gauge.value = 0.0  # the collector stops answering
            deadline = time.monotonic() + 30
            while not (alerts := [a for a in e.evaluate() if a.state == "firing"]):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            [a] = alerts
            assert a.labels["alertname"] == "PoolwatchCollectorDown"
            assert (a.labels["job"], a.labels["node"]) == ("gauge", "n1")
            assert [k for k, _ in e.due_notifications()] == ["firing"]
            assert e.failures == {}
