"""`poolwatch rules run --source local` as a real process: it scrapes an exporter, fires, POSTs
the Alertmanager webhook and the controller request with their bearer tokens, and serves its
own metrics; bad flags exit 2 with the flag named."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import free_port

from poolwatch.app.cli import main

from .conftest import ROOT

pytestmark = pytest.mark.integration

RULE = """\
group: cli-test
interval: 1s
rules:
  - name: PoolwatchCliTestCollectorDown
    expr: poolwatch_collector_up
    op: "=="
    threshold: 0
    periods: 1
    severity: critical
    annotations: {summary: "{{ $labels.collector }} down", description: d, runbook: r}
    actions: [notify, {isolate: A050101}]
"""


class _Handler(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[str, str, Any]]] = []

    def do_GET(self) -> None:
        body = b'poolwatch_collector_up{collector="nfs",node="n1",pool="p1"} 0\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posts.append((self.path, self.headers.get("Authorization", ""), doc))
        out = b'{"outcome": "done", "detail": "ok"}' if self.path == "/actions" else b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def test_rules_run_local_notifies_and_acts_over_http(tmp_path: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "notify.token").write_text("n-secret\n")
    (tmp_path / "ctl.token").write_text("c-secret\n")
    listen = free_port()
    cmd = [sys.executable, "-m", "poolwatch", "rules", "run", str(tmp_path / "rule.yaml"),
           "--source", "local", "--target", f"node={url}/metrics", "--scrape-interval", "1s",
           "--interval", "1s", "--state", str(tmp_path / "s.db"), "--listen", f"127.0.0.1:{listen}",
           "--notify-url", url, "--notify-token-file", str(tmp_path / "notify.token"),
           "--controller-url", url,
           "--controller-token-file", str(tmp_path / "ctl.token")]  # fmt: skip
    log = (tmp_path / "engine.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while len({p for p, _, _ in _Handler.posts}) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        paths = {p: (auth, doc) for p, auth, doc in _Handler.posts}
        assert set(paths) == {"/alertmanager", "/actions"}, (tmp_path / "engine.log").read_text()
        auth, hook = paths["/alertmanager"]
        assert auth == "Bearer n-secret"
        assert hook["version"] == "4"
        [alert] = hook["alerts"]
        assert alert["status"] == "firing"
        assert alert["labels"]["job"] == "node"
        assert alert["annotations"]["summary"] == "nfs down"
        auth, action = paths["/actions"]
        assert auth == "Bearer c-secret"
        assert (action["kind"], action["node"], action["fault_code"]) == (
            "isolate",
            "n1",
            "A050101",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'poolwatch_rules_alerts{state="firing"} 1.0' in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/healthz", timeout=5) as resp:
            assert resp.status == 200
            assert resp.read().startswith(b"ok: 1 rules")
        assert b"n-secret" not in (tmp_path / "engine.log").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "local"], "needs at least one --target"),
        (["--source", "nowhere"], "expected prometheus=URL or local"),
        (["--source", "local", "--target", "host:1"], "--target: expected"),
        (["--source", "prometheus=http://x:9090", "--target", "http://h:1/m"], "--target is for"),
        (["--source", "local", "--target", "http://h:1/m", "--notify-token-file", "/x"],
         "--notify-token-file needs --notify-url"),
        (["--source", "local", "--target", "http://h:1/m", "--listen", "nowhere"],
         "expected HOST:PORT"),
        (["--source", "local", "--target", "http://h:1/m", "--notify-url", "http://a:1",
          "--notify-token-file", "/no/such/file"], "/no/such/file"),
    ],
)  # fmt: skip
def test_rules_run_bad_flags_exit_2(
    tmp_path: Path, args: list[str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = main(["rules", "run", "--state", str(tmp_path / "s.db"), *args])
    assert code == 2
    assert message in caplog.text


def test_rules_check_local_lists_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(RULE.replace("expr: poolwatch_collector_up",
                                 "expr: count_values('v', poolwatch_collector_up)"))  # fmt: skip
    assert main(["rules", "check", "--local", str(path)]) == 0
    out = capsys.readouterr().out
    assert "local source: 0 rule(s) run, 1 refused" in out
    assert "PoolwatchCliTestCollectorDown: the aggregation count_values" in out
