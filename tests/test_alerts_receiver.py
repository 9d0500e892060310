"""The receiver end to end on 127.0.0.1: webhook in, mail to a real SMTP server and JSON to a
real HTTP sink out; refusals change nothing; status and metrics never show credentials."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from alerts_support import (
    CAPTURED,
    HttpSink,
    SmtpSink,
    alert,
    get_json,
    post,
    receiver,
    settings,
    wait_for,
)
from helpers import free_port, parse, value

from poolwatch.alerts.payload import webhook

TOKEN = "s3cret-token-value"  # noqa: S105 (a test credential)


@pytest.fixture
def smtp() -> SmtpSink:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def hook() -> HttpSink:
    sink = HttpSink()
    yield sink
    sink.close()


def _rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM notifications").fetchone()[0]


def test_webhook_to_mail_and_json(tmp_path: Path, smtp: SmtpSink, hook: HttpSink) -> None:
    targets = [
        {"name": "mail", "url": smtp.url("ops@example.org"), "match": {"severities": ["critical"]}},
        {"name": "chat", "url": hook.url()},
    ]
    with receiver(settings(tmp_path, targets)) as (service, base):
        msgs = [alert(1, "critical", node="gpu-7"), alert(2, "warning")]
        code, doc = post(base, webhook(msgs))
        assert (code, doc["accepted"], doc["new"]) == (200, 2, 2)
        wait_for(lambda: len(smtp.snapshot()) == 1 and len(hook.bodies) == 2, what="deliveries")
        mail = smtp.snapshot()[0]
        assert mail.subject == "[atlas] FIRING CRITICAL PoolwatchCacheDirAlmostFull on gpu-7"
        assert mail.recipients == ["ops@example.org"]
        assert "/cache on node-1 is 95% full" in mail.text
        assert "<td>gpu-7</td>" in mail.html
        titles = sorted(b["title"] for b in hook.bodies)
        assert titles == [
            "[atlas] FIRING CRITICAL PoolwatchCacheDirAlmostFull on gpu-7",
            "[atlas] FIRING WARNING PoolwatchCacheDirAlmostFull on node-2",
        ]
        # the same webhook again (Alertmanager retry or repeat): nothing new is sent
        code, doc = post(base, webhook(msgs))
        assert (code, doc["new"], doc["duplicates"]) == (200, 0, 2)
        resolved = [alert(1, "critical", status="resolved", node="gpu-7")]
        post(base, webhook(resolved))
        wait_for(lambda: len(smtp.snapshot()) == 2 and len(hook.bodies) == 3, what="resolved")
        assert smtp.snapshot()[1].subject.startswith("[atlas] RESOLVED CRITICAL")
        assert hook.bodies[2]["title"].startswith("[atlas] RESOLVED CRITICAL")
        wait_for(lambda: service.status()["total"]["sent"] == 5, what="recorded as sent")
        status = service.status()
        assert status["targets"]["mail"]["sent"] == 2
        assert status["targets"]["chat"]["sent"] == 3
        assert status["duplicates"] == 2


def test_captured_payload_is_accepted(tmp_path: Path, hook: HttpSink) -> None:
    with receiver(settings(tmp_path, [{"name": "chat", "url": hook.url()}])) as (_, base):
        code, doc = post(base, CAPTURED.encode())
        assert (code, doc["new"]) == (200, 1)
        wait_for(lambda: len(hook.bodies) == 1)
        body = hook.bodies[0]
        assert body["title"] == "[atlas] FIRING HIGH HighValue"
        assert "poc_metric above 0.5" in body["message"]
        assert "since 2022-10-04 13:32:56 UTC" in body["message"]


def test_burst_is_grouped_most_urgent_first(tmp_path: Path, hook: HttpSink) -> None:
    cfg = settings(tmp_path, [{"name": "chat", "url": hook.url()}], group_wait=0.5, group_max=50)
    with receiver(cfg) as (_, base):
        msgs = [alert(i, ("info", "warning", "critical")[i % 3]) for i in range(120)]
        for k in range(0, 120, 20):
            post(base, webhook(msgs[k : k + 20]))
        wait_for(lambda: sum(b["message"].count("\n- ") for b in hook.bodies) >= 120)
        sevs = [b["title"].split()[2] for b in hook.bodies]
        assert sevs == ["CRITICAL", "WARNING", "INFO"]  # 40 each, one message per group
        assert all("(40 alerts)" in b["title"] for b in hook.bodies)


AUTH = {"Authorization": f"Bearer {TOKEN}"}
REFUSALS = [
    ({}, b"{}", 401, "credentials"),
    ({"Authorization": "Bearer wrong"}, b"{}", 403, "wrong credentials"),
    ({"Authorization": "Basic bm9ib2R5Og=="}, b"{}", 403, "wrong credentials"),
    ({**AUTH, "Content-Type": "text/plain"}, b"{}", 415, "Content-Type"),
    ({"Authorization": f"Bearer {TOKEN}"}, b"{not json", 400, "not JSON"),
    ({"Authorization": f"Bearer {TOKEN}"}, b"[]", 422, "JSON object"),
    (
        {"Authorization": f"Bearer {TOKEN}"},
        b'{"version": "3", "status": "firing", "alerts": []}',
        422,
        "version",
    ),
    ({"Authorization": f"Bearer {TOKEN}"}, b"x" * 5000, 413, "limit"),
]


@pytest.mark.parametrize(("headers", "body", "code", "reason"), REFUSALS)
def test_refusals_store_nothing(
    tmp_path: Path, headers: dict, body: bytes, code: int, reason: str
) -> None:
    cfg = settings(tmp_path, [], max_body_bytes=4096)
    with receiver(cfg, token=TOKEN) as (service, base):
        req = urllib.request.Request(base + "/alertmanager", data=body, method="POST")
        req.add_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for k, v in headers.items():
            req.add_header(k, v)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == code
        assert reason in json.loads(err.value.read())["error"]
        assert _rows(tmp_path) == 0
        assert service.rejected == {str(code): 1}


def test_one_bad_alert_refuses_the_whole_payload(tmp_path: Path) -> None:
    with receiver(settings(tmp_path, []), token=TOKEN) as (_, base):
        doc = webhook([alert(1), alert(2)])
        doc["alerts"][1]["startsAt"] = "yesterday"
        code, body = post(base, doc, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 422
        assert body["error"].startswith("alerts[1].startsAt: expected an RFC 3339 time")
        assert _rows(tmp_path) == 0


def test_basic_auth_status_and_metrics_hide_secrets(tmp_path: Path, smtp: SmtpSink) -> None:
    secret_url = f"mailto://127.0.0.1:{smtp.port}?user=mailer&pass=hunter2hunter2&from=a@example.org&to=a@example.org"
    (tmp_path / "url").write_text(secret_url)
    cfg = settings(tmp_path, [{"name": "mail", "url_file": str(tmp_path / "url")}])
    basic = "Basic " + base64.b64encode(b"am:pw-123").decode()
    with receiver(cfg, users={"am": "pw-123"}) as (_service, base):
        code, _ = post(base, webhook([alert(1)]), {"Authorization": basic})
        assert code == 200
        # a plain SMTP server without AUTH: apprise fails to log in; the error must be redacted
        wait_for(lambda: get_json(base + "/status", {"Authorization": basic})["total"]["failing"])
        raw = json.dumps(get_json(base + "/status", {"Authorization": basic}))
        assert "hunter2hunter2" not in raw
        assert "****" in raw
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/status", timeout=5)
        assert err.value.code == 401
        req = urllib.request.Request(base + "/metrics", headers={"Authorization": basic})
        with urllib.request.urlopen(req, timeout=5) as resp:
            series = parse(resp.read())
        assert value(series, "poolwatch_alerts_received_total", source="webhook") == 1
        assert (
            value(series, "poolwatch_alerts_outbox_notifications", target="mail", state="failing")
            == 1
        )
        assert (
            value(series, "poolwatch_alerts_notifications_total", target="mail", outcome="failed")
            >= 1
        )
        with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
            assert resp.status == 200


def test_target_down_then_back_delivers_once(tmp_path: Path, hook: HttpSink) -> None:
    hook.fail = True
    with receiver(settings(tmp_path, [{"name": "chat", "url": hook.url()}])) as (service, base):
        post(base, webhook([alert(1), alert(2, "warning")]))
        wait_for(lambda: service.status()["total"]["failing"] == 1, what="failing")
        assert "503" in service.status()["targets"]["chat"]["last_error"]
        hook.fail = False
        wait_for(lambda: service.status()["total"]["sent"] == 2, what="sent after recovery")
        assert [b["title"].split()[2] for b in hook.bodies] == ["CRITICAL", "WARNING"]


def test_undeliverable_past_deadline_is_dead(tmp_path: Path, hook: HttpSink) -> None:
    hook.fail = True
    cfg = settings(
        tmp_path,
        [{"name": "chat", "url": hook.url()}],
        retry={"initial_backoff": 0.1, "max_backoff": 0.2, "deadline": 0.5},
    )
    with receiver(cfg) as (service, base):
        post(base, webhook([alert(1)]))
        wait_for(lambda: service.status()["total"]["dead"] == 1, what="dead")
        assert service.status()["total"]["queued"] == 0


def test_in_process_notifier_and_job_owner(tmp_path: Path, smtp: SmtpSink) -> None:
    targets = [{"name": "mail", "url": smtp.url("ops@example.org")}]
    cfg = settings(tmp_path, targets, job_owners={"enabled": True, "via": "mail"})
    with receiver(cfg) as (service, _base):
        msg = alert(1, owner_email="alice@example.org")
        assert service.notify([msg]) is True
        assert service.notify([msg]) is True  # the producer re-sent after a crash: still once
        wait_for(lambda: len(smtp.snapshot()) == 2, what="two mails")
        assert sorted(m.recipients[0] for m in smtp.snapshot()) == [
            "alice@example.org",
            "ops@example.org",
        ]
        assert service.received == {"inprocess": 2}
        assert service.duplicates == 1


def test_rate_limit_per_target(tmp_path: Path, hook: HttpSink) -> None:
    targets = [{"name": "chat", "url": hook.url(), "rate_limit": {"messages": 2, "per": 60}}]
    with receiver(settings(tmp_path, targets, group_wait=0.05)) as (service, base):
        for i, sev in enumerate(["critical", "warning", "info"]):
            post(base, webhook([alert(i, sev)]))
        wait_for(lambda: len(hook.bodies) == 2)
        assert service.status()["total"]["queued"] == 1  # the third waits for a token


def test_reminder_after_wait_while_alertmanager_repeats(tmp_path: Path, hook: HttpSink) -> None:
    cfg = settings(tmp_path, [{"name": "chat", "url": hook.url()}], reminder_wait=1.0)
    with receiver(cfg) as (service, base):
        post(base, webhook([alert(1)]))
        wait_for(lambda: len(hook.bodies) == 1, what="first notification")
        time.sleep(1.0)
        code, doc = post(base, webhook([alert(1)]))  # Alertmanager's repeat_interval repeat
        assert (code, doc["new"]) == (200, 0)
        wait_for(lambda: len(hook.bodies) == 2, 5, what="reminder")
        assert hook.bodies[1]["title"] == (
            "[atlas] REMINDER CRITICAL PoolwatchCacheDirAlmostFull on node-1"
        )
        assert "Still firing (reminder)" in hook.bodies[1]["message"]
        time.sleep(2.5)  # no repeat from Alertmanager since: it no longer fires, no reminder
        assert len(hook.bodies) == 2
        assert service.received == {"webhook": 2}


def test_tls(tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    from poolwatch.alerts.server import tls_context

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    cfg = settings(tmp_path, [], tls={"cert_file": str(cert), "key_file": str(key)})
    from poolwatch.alerts.receiver import Credentials, make_server
    from poolwatch.alerts.service import AlertService

    service = AlertService(cfg)
    httpd = make_server(service, ("127.0.0.1", 0), Credentials(None, {}), tls_context(cfg))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}"
        ctx = ssl.create_default_context(cafile=str(cert))
        body = json.dumps(webhook([alert(1)])).encode()
        headers = {"Content-Type": "application/json"}
        req = urllib.request.Request(url + "/alertmanager", data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            assert json.loads(resp.read())["new"] == 1
        # plain HTTP to a TLS port gets no HTTP answer
        with pytest.raises((ConnectionError, urllib.error.URLError)):
            urllib.request.urlopen(url.replace("https", "http") + "/healthz", timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
    bad = settings(tmp_path, [], tls={"cert_file": str(key), "key_file": str(cert)})
    with pytest.raises(Exception, match="tls: cannot load certificate/key"):
        tls_context(bad)


def test_a_sender_that_raises_gives_the_batch_back(tmp_path: Path) -> None:
    from poolwatch.alerts.service import AlertService

    calls: list[str] = []

    def flaky(url: str, subject: str, text: str, html: str) -> tuple[bool, str]:
        calls.append(subject)
        if len(calls) == 1:
            raise RuntimeError("plugin bug")
        return True, ""

    service = AlertService(settings(tmp_path, [{"name": "chat", "url": "json://127.0.0.1:1/x"}]),
                           sender=flaky)  # fmt: skip
    service.start()
    try:
        assert service.notify([alert(1)]) is True
        wait_for(lambda: service.status()["total"]["sent"] == 1, what="sent on the second try")
        assert len(calls) == 2
        assert service.counters.notifications == {("chat", "failed"): 1, ("chat", "sent"): 1}
    finally:
        service.close()
