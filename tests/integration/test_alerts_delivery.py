"""Real parts on 127.0.0.1: Alertmanager -> receiver -> aiosmtpd and an HTTP sink; and an SMTP
outage with a receiver restart in the middle, 500 alerts, each delivered exactly once."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from alerts_support import HttpSink, SmtpSink, alert, get_json, post, wait_for
from helpers import free_port
from prom_versions import Alertmanager

from poolwatch.alerts.payload import webhook

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parent.parent.parent
TOKEN = "am-to-poolwatch-token"  # noqa: S105 (a test credential)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _start(cmd: list[str], log: Path, ready: str) -> subprocess.Popen:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for(lambda: _up(ready, proc), 30, f"{cmd[0]} ready at {ready}")
    except AssertionError:
        proc.kill()
        raise AssertionError(log.read_text()) from None
    return proc


def _up(url: str, proc: subprocess.Popen) -> bool:
    assert proc.poll() is None, f"exited with {proc.returncode}"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _receiver_config(tmp: Path, port: int, targets: str, group_max: int = 100) -> Path:
    (tmp / "token").write_text(TOKEN)
    cfg = tmp / "alerts.yaml"
    cfg.write_text(f"""
listen: 127.0.0.1:{port}
cluster_name: atlas
outbox: {tmp / "outbox.sqlite"}
auth: {{bearer_token_file: {tmp / "token"}}}
group_wait: 1s
group_max: {group_max}
retry: {{initial_backoff: 200ms, max_backoff: 1s, deadline: 10m}}
targets:
{targets}
""")
    return cfg


def _serve(cfg: Path, log: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "poolwatch", "alerts", "serve", "--config", str(cfg)]
    return _start(cmd, log, f"http://127.0.0.1:{port}/healthz")


def _rfc3339(seconds_from_now: float) -> str:
    t = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return t.isoformat().replace("+00:00", "Z")


def test_alertmanager_to_mail_and_webhook(tmp_path: Path, alertmanager: Alertmanager) -> None:
    smtp, hook = SmtpSink(free_port()), HttpSink()
    smtp.start()
    port, am_port = free_port(), free_port()
    targets = (
        f"  - {{name: mail, url: '{smtp.url('ops@example.org,lead@example.org')}'}}\n"
        f"  - {{name: chat, url: '{hook.url()}', match: {{severities: [critical]}}}}\n"
    )
    cfg = _receiver_config(tmp_path, port, targets)
    receiver = _serve(cfg, tmp_path / "receiver.log", port)
    amconfig = subprocess.run(
        [sys.executable, "-m", "poolwatch", "alerts", "amconfig", "--config", str(cfg)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    # the snippet as printed, with test timings instead of production ones
    amconfig = re.sub(r"group_wait: .*", "group_wait: 1s", amconfig)
    amconfig = re.sub(r"group_interval: .*", "group_interval: 1s", amconfig)
    (tmp_path / "am.yml").write_text(amconfig)
    am = _start(
        [
            alertmanager.alertmanager,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "am.log",
        f"http://127.0.0.1:{am_port}/-/ready",
    )
    try:
        alerts = [
            {
                "labels": {
                    "alertname": "PoolwatchCacheDirAlmostFull",
                    "severity": "critical",
                    "node": "gpu-node-3",
                    "pool": "pool-a",
                },
                "annotations": {"summary": "/cache on gpu-node-3 is 96% full"},
                "startsAt": _rfc3339(-60),
                "generatorURL": "http://prometheus/graph",
            },
            {
                "labels": {
                    "alertname": "PoolwatchNodeIsolated",
                    "severity": "warning",
                    "node": "gpu-node-4",
                    "pool": "pool-a",
                },
                "annotations": {"summary": "gpu-node-4 was isolated (A050104)"},
                "startsAt": _rfc3339(-60),
            },
        ]
        req = urllib.request.Request(
            f"http://127.0.0.1:{am_port}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        # two Alertmanager groups (by alertname): one mail each, to both recipients
        wait_for(lambda: len(smtp.snapshot()) == 4 and len(hook.bodies) == 1, 30, "deliveries")
        mails = smtp.snapshot()
        subjects = sorted({m.subject for m in mails})
        assert subjects == [
            "[atlas] FIRING CRITICAL PoolwatchCacheDirAlmostFull on gpu-node-3",
            "[atlas] FIRING WARNING PoolwatchNodeIsolated on gpu-node-4",
        ]
        assert sorted(r for m in mails for r in m.recipients) == [
            "lead@example.org",
            "lead@example.org",
            "ops@example.org",
            "ops@example.org",
        ]
        assert all(m.sender == "alerts@example.org" for m in mails)
        crit = next(m for m in mails if "CRITICAL" in m.subject)
        assert "/cache on gpu-node-3 is 96% full" in crit.text
        assert "<td>gpu-node-3</td>" in crit.html
        assert hook.bodies[0]["title"] == subjects[0]
        assert "/cache on gpu-node-3 is 96% full" in hook.bodies[0]["message"]
        # resolve the critical one: Alertmanager sends resolved, we mail RESOLVED once
        alerts[0]["endsAt"] = _rfc3339(-1)
        req = urllib.request.Request(
            f"http://127.0.0.1:{am_port}/api/v2/alerts",
            data=json.dumps(alerts[:1]).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=10).close()
        wait_for(lambda: len(smtp.snapshot()) == 6, 30, "resolved mails")
        resolved = list(smtp.snapshot()[4:])
        assert {m.subject for m in resolved} == {
            "[atlas] RESOLVED CRITICAL PoolwatchCacheDirAlmostFull on gpu-node-3"
        }
        wait_for(lambda: len(hook.bodies) == 2, 10, "resolved webhook")
        url = f"http://127.0.0.1:{port}/status"
        wait_for(lambda: get_json(url, BEARER)["total"]["sent"] == 5, 10, "recorded as sent")
        status = get_json(url, BEARER)
        assert status["targets"]["mail"]["sent"] == 3
        assert status["targets"]["chat"]["sent"] == 2
        assert status["total"]["dead"] == 0
    finally:
        _stop(am)
        _stop(receiver)
        smtp.stop()
        hook.close()


def _nodes_in(mail_html: str) -> list[str]:
    return re.findall(r"<td>(node-\d+)</td>", mail_html)


def test_smtp_outage_500_alerts_restart_exactly_once_in_urgency_order(tmp_path: Path) -> None:
    smtp = SmtpSink(free_port())  # not started: the SMTP server is down
    port = free_port()
    cfg = _receiver_config(tmp_path, port, f"  - {{name: mail, url: '{smtp.url()}'}}\n")
    base = f"http://127.0.0.1:{port}"
    msgs = [alert(i, ("info", "warning", "critical")[i % 3]) for i in range(500)]
    receiver = _serve(cfg, tmp_path / "receiver.log", port)
    try:
        for k in range(0, 250, 50):
            assert post(base, webhook(msgs[k : k + 50]), BEARER)[0] == 200
        wait_for(lambda: get_json(base + "/status", BEARER)["total"]["failing"] > 0, 20, "failing")
        _stop(receiver)  # restart while everything is undelivered
        receiver = _serve(cfg, tmp_path / "receiver.log", port)
        for k in range(200, 500, 50):  # 200..249 again: Alertmanager retrying after the restart
            code, _doc = post(base, webhook(msgs[k : k + 50]), BEARER)
            assert code == 200
        assert get_json(base + "/status", BEARER)["duplicates"] == 50
        status = subprocess.run(
            [sys.executable, "-m", "poolwatch", "alerts", "status", "--config", str(cfg)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr
        assert re.search(r"^mail\s+500\s+\d+\s+0\s+0\s+mailto://", status.stdout, re.M), (
            status.stdout
        )
        smtp.start()  # the SMTP server comes back
        wait_for(lambda: get_json(base + "/status", BEARER)["total"]["sent"] == 500, 40, "all sent")
        mails = smtp.snapshot()
        nodes = [n for m in mails for n in _nodes_in(m.html)]
        assert sorted(nodes) == sorted(f"node-{i}" for i in range(500))  # each exactly once
        ranks = {"CRITICAL": 0, "WARNING": 1, "INFO": 2}
        order = [ranks[m.subject.split()[2]] for m in mails]
        assert order == sorted(order), [m.subject for m in mails]  # most urgent first
        assert len(mails) == 6  # 167 + 167 + 166 alerts in groups of at most 100
        metrics = (
            urllib.request.urlopen(
                urllib.request.Request(base + "/metrics", headers=BEARER), timeout=5
            )
            .read()
            .decode()
        )
        assert 'poolwatch_alerts_notifications_total{outcome="sent",target="mail"} 500.0' in metrics
    finally:
        _stop(receiver)
        smtp.stop()
    log = (tmp_path / "receiver.log").read_text()
    assert TOKEN not in log


def test_graceful_restart_mid_delivery_sends_each_once(tmp_path: Path) -> None:
    smtp = SmtpSink(free_port(), delay=0.15)  # each mail takes a while: batches are in flight
    smtp.start()
    port = free_port()
    targets = f"  - {{name: mail, url: '{smtp.url()}'}}\n"
    cfg = _receiver_config(tmp_path, port, targets, group_max=5)
    base = f"http://127.0.0.1:{port}"
    msgs = [alert(i, ("critical", "warning")[i % 2]) for i in range(100)]
    receiver = _serve(cfg, tmp_path / "receiver.log", port)
    try:
        assert post(base, webhook(msgs), BEARER)[0] == 200
        wait_for(lambda: len(smtp.snapshot()) >= 3, 20, "delivery under way")
        _stop(receiver)  # SIGTERM while a mail is being sent
        before = len(smtp.snapshot())
        assert 3 <= before < 20
        receiver = _serve(cfg, tmp_path / "receiver.log", port)
        wait_for(lambda: get_json(base + "/status", BEARER)["total"]["sent"] == 100, 40, "sent")
    finally:
        _stop(receiver)
        smtp.stop()
    nodes = [n for m in smtp.snapshot() for n in _nodes_in(m.html)]
    assert sorted(nodes) == sorted(f"node-{i}" for i in range(100))  # none lost, none twice
    assert "were in flight" not in (tmp_path / "receiver.log").read_text()
