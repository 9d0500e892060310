"""One bad notification never holds back the others: a recipient the SMTP server bounces, a
label that is not valid Unicode, an owner label with 20,000 addresses, a webhook that answers
500 or 422 for one message. Real aiosmtpd and HTTP servers on 127.0.0.1, the receiver over HTTP.

Each test measures what the issue asks: the next critical alert behind the poisoned one arrives
within its group wait plus one send (bounded here at group wait + 1 s on a shared 2-core VM)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from poolwatch.alerts.payload import webhook
from tests.helpers import free_port
from tests.helpers.alerts_support import SmtpSink, alert, post, receiver, settings, wait_for

GROUP_WAIT = 0.2
ONE_SEND = 1.0  # generous: a send to a local server takes some ms; the VM is shared
BOUND = GROUP_WAIT + ONE_SEND
BAD = "gone@example.org"


@pytest.fixture
def smtp() -> SmtpSink:
    sink = SmtpSink(free_port(), bounce=frozenset({BAD}))
    sink.start()
    yield sink
    sink.stop()


def _owners(tmp_path: Path, smtp: SmtpSink, **kw: object):  # type: ignore[no-untyped-def]
    targets = [{"name": "mail", "url": smtp.url("ops@example.org")}]
    owners = {"enabled": True, "via": "mail", **kw}
    return settings(tmp_path, targets, job_owners=owners, group_wait=GROUP_WAIT,
                    retry={"initial_backoff": 0.5, "max_backoff": 5, "deadline": 600})  # fmt: skip


def _latencies(base: str, smtp: SmtpSink, first: int, n: int = 10) -> list[float]:
    """Post `n` critical alerts one at a time; each one's time from the webhook's 200 to the
    SMTP server accepting the mail that carries it (to ops)."""
    out = []
    for i in range(first, first + n):
        assert post(base, webhook([alert(i, node=f"later-{i}")]))[0] == 200
        posted = time.monotonic()
        wait_for(lambda i=i: _arrived(smtp, f"later-{i}"), 10, f"alert {i}")
        out.append(_arrived(smtp, f"later-{i}") - posted)
    return out


def _arrived(smtp: SmtpSink, node: str) -> float:
    return next((m.at for m in smtp.snapshot() if f"<td>{node}</td>" in m.html), 0.0)


def _rows(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        return db.execute(
            "SELECT recipient, state, attempts, last_error FROM deliveries ORDER BY id"
        ).fetchall()


def test_bounced_owner_is_dead_at_once_and_later_alerts_flow(
    tmp_path: Path,
    smtp: SmtpSink,
    record_property,  # type: ignore[no-untyped-def]
) -> None:
    with receiver(_owners(tmp_path, smtp)) as (service, base):
        poisoned = alert(0, node="poisoned", owner_email=BAD)
        assert post(base, webhook([poisoned]))[0] == 200
        wait_for(lambda: service.status()["total"]["dead"] == 1, 10, "the bounced one dead")
        (dead,) = [r for r in _rows(tmp_path) if r[1] == "dead"]
        assert dead[0] == BAD
        assert dead[2] == 1  # one attempt: a 550 is not retried
        assert "550" in dead[3]
        assert "550" in service.status()["targets"]["mail"]["last_error"]
        latencies = _latencies(base, smtp, 1)
        record_property("latency_max_s", round(max(latencies), 3))
        record_property("latency_median_s", round(sorted(latencies)[len(latencies) // 2], 3))
        assert max(latencies) < BOUND, latencies
        wait_for(lambda: service.status()["total"]["sent"] == 11, 10, "all recorded")
    mails = smtp.snapshot()
    assert sorted(m.subject.split(" on ")[1] for m in mails) == sorted(
        ["poisoned"] + [f"later-{i}" for i in range(1, 11)]
    )  # each exactly once, to ops; nothing to the bounced address
    assert all(m.recipients == ["ops@example.org"] for m in mails)


def test_lone_surrogate_label_is_mailed_readably(tmp_path: Path, smtp: SmtpSink) -> None:
    with receiver(_owners(tmp_path, smtp)) as (service, base):
        doc = webhook([alert(0, node="odd"), alert(1, "warning", node="odd2")])
        body = json.dumps(doc).replace('"odd"', '"odd\\ud800"').replace("odd2", "odd2\\udfff")
        assert post(base, body.encode())[0] == 200
        # and an in-process producer's string, which never went through the payload parser
        assert service.notify([alert(2, "info", node="odd3\ud800")]) is True
        wait_for(lambda: len(smtp.snapshot()) == 3, 10, "three mails")
        latencies = _latencies(base, smtp, 10, 3)
        assert max(latencies) < BOUND, latencies
        assert service.status()["total"]["dead"] == 0
    subjects = sorted(m.subject for m in smtp.snapshot()[:3])
    assert subjects == [
        "[atlas] FIRING CRITICAL PoolwatchCacheDirAlmostFull on odd\\ud800",
        "[atlas] FIRING INFO PoolwatchCacheDirAlmostFull on odd3\\ud800",
        "[atlas] FIRING WARNING PoolwatchCacheDirAlmostFull on odd2\\udfff",
    ]


def test_owner_label_with_20000_addresses_is_capped(tmp_path: Path, smtp: SmtpSink) -> None:
    owners = ",".join(f"user{i}@example.org" for i in range(20_000))
    with receiver(_owners(tmp_path, smtp, max_recipients=3)) as (service, base):
        started = time.monotonic()
        assert post(base, webhook([alert(0, node="flood", owner_email=owners)]))[0] == 200
        assert time.monotonic() - started < 5
        latencies = _latencies(base, smtp, 1, 3)
        assert max(latencies) < BOUND, latencies
        wait_for(lambda: service.status()["total"]["sent"] == 7, 10, "ops, 3 owners, 3 later")
    recipients = sorted(r[0] for r in _rows(tmp_path))
    assert recipients == ["", "", "", "", "user0@example.org", "user1@example.org",
                          "user2@example.org"]  # fmt: skip


class _Picky:
    """An HTTP receiver that answers `code` to any message naming `poison` (code 0: hangs 3 s,
    then 200) and 200 to the rest; a stand-in for a chat bridge whose handler fails or hangs
    on one message."""

    def __init__(self, code: int) -> None:
        self.accepted: list[tuple[float, str]] = []
        self.refused = 0
        picky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                bad = "poison" in body["message"]
                if bad:
                    picky.refused += 1
                    if code == 0:
                        time.sleep(3)
                else:
                    picky.accepted.append((time.monotonic(), body["message"]))
                self.send_response(code if bad and code else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        # rto: apprise's read timeout, so a hanging answer costs one short send
        self.url = f"json://127.0.0.1:{self.httpd.server_address[1]}/hook?rto=0.5"

    def arrived(self, node: str) -> float:
        return next((t for t, m in self.accepted if f" on {node}" in m), 0.0)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(("code", "dead_at_once"), [(500, False), (422, True), (0, False)])
def test_webhook_refusing_one_message_does_not_block(
    tmp_path: Path, code: int, dead_at_once: bool
) -> None:
    picky = _Picky(code)
    cfg = settings(tmp_path, [{"name": "chat", "url": picky.url}], group_wait=GROUP_WAIT,
                   retry={"initial_backoff": 0.3, "max_backoff": 1, "deadline": 600})  # fmt: skip
    try:
        with receiver(cfg) as (service, base):
            assert post(base, webhook([alert(0, node="poison")]))[0] == 200
            wait_for(lambda: picky.refused >= 1, 10, "the poisoned message refused")
            for i in range(1, 11):
                assert post(base, webhook([alert(i, node=f"later-{i}")]))[0] == 200
                posted = time.monotonic()
                wait_for(lambda i=i: picky.arrived(f"later-{i}") > 0, 10, f"alert {i}")
                assert picky.arrived(f"later-{i}") - posted < BOUND
            # the receiver counts a message sent once the answer is back, a moment after the
            # receiving end has recorded it
            wait_for(lambda: service.status()["targets"]["chat"]["sent"] == 10, 10, "ten sent")
            status = service.status()["targets"]["chat"]
            assert (str(code) if code else "Read timed out") in status["last_error"]
            if dead_at_once:
                assert (status["dead"], picky.refused) == (1, 1)
            else:  # retried on its own schedule, alone, while the others went through
                assert status["dead"] == 0
                assert status["failing"] == 1
                wait_for(lambda: picky.refused >= 3, 10, "retried")
    finally:
        picky.close()
    bodies = [m for _t, m in picky.accepted]
    assert all("poison" not in m for m in bodies)
    assert all(m.count("\n- ") == 1 for m in bodies)  # the poisoned one never joined a batch


@pytest.mark.parametrize(
    ("why", "kind"),
    [  # what apprise logs, verbatim in form (its email and custom_json plugins)
        ('Connection error while submitting email to "smtp"; Socket Exception: [Errno 111] '
         "Connection refused", "target"),
        ("Socket Exception: (535, b'5.7.8 Authentication failed'); Connection error while "
         'submitting email to "smtp"', "target"),  # a login failure: every message alike
        ("Socket Exception: {'gone@example.org': (550, b'5.1.1 User unknown')}; Sending email "
         'to "gone@example.org" failed.', "permanent"),
        ("Socket Exception: (552, b'5.3.4 Message size exceeds fixed limit', 'a@b')", "permanent"),
        ("Socket Exception: {'x@example.org': (450, b'4.2.0 Greylisted')}", "message"),
        ("Socket Exception: (421, b'4.7.0 Try again later')", "target"),
        ("Failed to send JSON POST notification: Servers are overloaded., error=503.", "target"),
        ("Failed to send JSON POST notification: Unauthorized - Invalid Token., error=401.",
         "target"),
        ("Failed to send JSON POST notification: error=422.", "permanent"),
        ("Failed to send JSON POST notification: Bad Request., error=400.", "permanent"),
        ("Failed to send JSON POST notification: Internal Server Error., error=500.", "message"),
        ("A Connection error occurred sending JSON notification to h.", "target"),
        ("A Connection error occurred sending JSON notification to h.; Socket Exception: "
         "HTTPConnectionPool(host='h', port=1): Read timed out. (read timeout=1.0)", "message"),
        ("A Connection error occurred sending JSON notification to h.; Socket Exception: "
         "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /x (Caused by "
         "ConnectTimeoutError(..., 'Connection to h timed out. (connect timeout=4.0)'))", "target"),
        ("Socket Exception: timed out; Sending email to \"a@b\" failed.", "message"),
        ("delivery failed", "message"),
    ],
)  # fmt: skip
def test_failures_are_sorted_by_whose_they_are(why: str, kind: str) -> None:
    from poolwatch.alerts.failures import classify

    assert classify(why) == kind
