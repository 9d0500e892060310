"""Real Alertmanager releases write the webhooks: Debian's 0.25 and the pinned current release
post to a capturing HTTP server on 127.0.0.1; each captured body is then posted to the receiver,
which must accept it (a 4xx would make Alertmanager drop the notification) and deliver it.
Stripped of its `fingerprint` (the shape Alertmanager sent before 0.19), the same body must get
the very fingerprint the real Alertmanager computed."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from alerts_support import HttpSink, post, receiver, settings, wait_for
from helpers import FIXTURES, free_port, pinned_tool

from poolwatch.alerts.fingerprint import fingerprint
from poolwatch.alerts.payload import parse

pytestmark = pytest.mark.integration
CORPUS = FIXTURES / "alertmanager"


class _Capture:
    """Records the raw body of every webhook Alertmanager sends."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                capture.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _binary(which: str) -> str:
    if which == "debian":
        path = shutil.which("prometheus-alertmanager")
        if path is None:
            pytest.skip("Debian's prometheus-alertmanager is not installed")
        return path
    return pinned_tool("alertmanager")


def _rfc3339(offset: float) -> str:
    t = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return t.isoformat().replace("+00:00", "Z")


def _am_post(port: int, alerts: list[dict]) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("which", ["debian", "pinned"])
def test_alertmanager_releases_payloads(tmp_path: Path, which: str) -> None:
    binary = _binary(which)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    capture = _Capture()
    (tmp_path / "am.yml").write_text(
        "route: {receiver: capture, group_by: [alertname], group_wait: 1s, group_interval: 1s,"
        " repeat_interval: 1h}\n"
        f"receivers: [{{name: capture, webhook_configs: [{{url: '{capture.url}',"
        " send_resolved: true}]}]\n"
    )
    port = free_port()
    log = (tmp_path / "am.log").open("wb")
    am = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    hook = HttpSink()
    try:
        wait_for(lambda: _ready(port, am), 30, f"alertmanager {version.split()[2]} ready")
        alerts = [
            {
                "labels": {"alertname": "PoolwatchNpuUnhealthy", "severity": "critical",
                           "node": f"npu-node-{i}", "pool": "pool-ä", "device": str(i)},
                "annotations": {"summary": f"NPU {i} unhealthy (é, 中文)"},
                "startsAt": _rfc3339(-30),
                "generatorURL": "http://prometheus:9090/graph",
            }
            for i in range(3)
        ]  # fmt: skip
        _am_post(port, alerts)
        wait_for(lambda: len(capture.bodies) >= 1, 30, "a firing webhook")
        alerts[0]["endsAt"] = _rfc3339(-1)
        _am_post(port, alerts[:1])
        wait_for(lambda: any(b'"resolved"' in b for b in capture.bodies), 30, "resolved")
        if os.environ.get("POOLWATCH_UPDATE_CORPUS"):  # refresh tests/fixtures/alertmanager/
            release = version.split()[2]
            (CORPUS / f"am-{release}-{which}-live.json").write_bytes(capture.bodies[0])
        with receiver(settings(tmp_path, [{"name": "chat", "url": hook.url()}])) as (svc, base):
            for body in capture.bodies:
                code, doc = post(base, body)
                assert code == 200, (version, doc)
                raw = json.loads(body)
                for alert, msg in zip(raw["alerts"], parse(body), strict=True):
                    assert msg.fingerprint == alert["fingerprint"]  # as Alertmanager sent it
                    alert.pop("fingerprint")  # the pre-0.19 shape ...
                    assert fingerprint(alert["labels"]) == msg.fingerprint  # ... same key
                old = json.dumps(raw).encode()
                code, doc = post(base, old)
                assert (code, doc["new"]) == (200, 0), doc  # recognised as the same alerts
            wait_for(lambda: svc.status()["total"]["sent"] >= 4, 20, "delivered")
            assert svc.rejected == {}
    finally:
        am.terminate()
        am.wait(15)
        log.close()
        capture.close()
        hook.close()


def _ready(port: int, proc: subprocess.Popen) -> bool:
    assert proc.poll() is None, f"alertmanager exited with {proc.returncode}"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
