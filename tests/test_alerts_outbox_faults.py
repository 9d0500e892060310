"""Outbox failures never go unnoticed: a damaged file is refused at start with its name (no
traceback), damage while running turns /healthz to 503 and refuses webhooks (503, counted) so
Alertmanager keeps the alerts, a failed mark-as-sent is recorded before anything else is sent
(never sent twice), and rows stuck in flight go back to the queue."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from alerts_support import HttpSink, alert, get_json, post, receiver, settings, wait_for

from poolwatch.alerts.client import format_status
from poolwatch.alerts.outbox import STUCK_AFTER, Outbox, OutboxError, Route
from poolwatch.alerts.payload import webhook
from poolwatch.alerts.service import AlertService

ROOT = Path(__file__).parent.parent


def _filled(path: Path, n: int = 300) -> None:
    box = Outbox(path)
    box.add([(alert(i), [Route("mail")]) for i in range(n)], "webhook")
    box._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file


def _damage(path: Path, page: int = 3) -> None:
    with path.open("r+b") as f:
        f.seek(4096 * (page - 1))
        f.write(b"\xde\xad" * 2048)


@pytest.mark.parametrize("kind", ["damaged", "not-sqlite"])
def test_damaged_outbox_is_refused_at_start_naming_the_file(tmp_path: Path, kind: str) -> None:
    outbox = tmp_path / "outbox.sqlite"
    if kind == "damaged":
        _filled(outbox)
        _damage(outbox)
    else:
        outbox.write_bytes(b"these are not the pages you are looking for\n" * 200)
    with pytest.raises(OutboxError, match=f"outbox {outbox}"):
        Outbox(outbox)
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(f"listen: 127.0.0.1:0\noutbox: {outbox}\n")
    res = subprocess.run(
        [sys.executable, "-m", "poolwatch", "alerts", "serve", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert f"outbox {outbox}" in res.stderr
    assert "Traceback" not in res.stderr


def test_damage_while_running_fails_healthz_and_refuses_webhooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("poolwatch.alerts.service.INTEGRITY_INTERVAL", 0.2)
    hook = HttpSink()
    hook.fail = True  # everything stays queued in the outbox
    try:
        with receiver(settings(tmp_path, [{"name": "chat", "url": hook.url()}])) as (svc, base):
            for k in range(0, 300, 100):
                assert post(base, webhook([alert(i) for i in range(k, k + 100)]))[0] == 200
            with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
                assert resp.status == 200
            svc.outbox._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _damage(tmp_path / "outbox.sqlite")
            wait_for(lambda: _healthz(base)[0] == 503, 10, "/healthz 503")
            code, text = _healthz(base)
            assert f"outbox {tmp_path / 'outbox.sqlite'}" in text
            assert "integrity" in text or "malformed" in text
            code, _doc = post(base, webhook([alert(1000)]))
            assert code == 503  # Alertmanager retries later: nothing is lost in a bad file
            status = get_json(base + "/status")
            assert status["outbox"]["fault"]
            assert f"OUTBOX {tmp_path / 'outbox.sqlite'} FAILING" in format_status(status)
            assert status["rejected"] == {"503": 1}  # the webhook (a probe is not a request)
            with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
            assert 'poolwatch_alerts_requests_rejected_total{code="503"}' in metrics
    finally:
        hook.close()


def _healthz(base: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_every_refusal_is_counted(tmp_path: Path) -> None:
    with receiver(settings(tmp_path, [])) as (service, base):
        for path in ("/nope", "/alertmanager/x"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(base + path, timeout=5)
        assert post(base, b"{}", path="/elsewhere")[0] == 404
        assert service.rejected == {"404": 3}


def test_failed_mark_as_sent_is_recorded_first_and_never_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    def sender(url: str, subject: str, text: str, html: str) -> tuple[bool, str]:
        sent.append(subject)
        return True, ""

    cfg = settings(tmp_path, [{"name": "chat", "url": "json://127.0.0.1:1/x"}], group_max=1)
    service = AlertService(cfg, sender=sender)
    real = service.outbox.mark_sent
    failures = iter([True, True])  # the disk hiccups twice

    def flaky(rows: list) -> None:
        if next(failures, False):
            raise sqlite3.OperationalError("disk I/O error")
        real(rows)

    monkeypatch.setattr(service.outbox, "mark_sent", flaky)
    service.start()
    try:
        assert service.notify([alert(1), alert(2, "warning")]) is True
        wait_for(lambda: service.status()["total"]["sent"] == 2, 15, "both recorded")
        assert service.status()["total"]["sending"] == 0
        assert len(sent) == 2  # each sent once although its record failed twice
    finally:
        service.close()


def test_rows_stuck_in_flight_are_queued_again(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    box = Outbox(tmp_path / "o.sqlite", lambda: now[0])
    box.add([(alert(1), [Route("mail")])], "webhook")
    (row,) = box.next_batch("mail", 0.0, 10)
    assert box.requeue_stuck() == 0  # in flight, not stuck
    now[0] += STUCK_AFTER + 1
    assert box.requeue_stuck() == 1
    assert box.counts()["mail"]["queued"] == 1
    assert [r.id for r in box.next_batch("mail", 0.0, 10)] == [row.id]


def test_outbox_of_the_previous_version_is_upgraded_in_place(tmp_path: Path) -> None:
    """The schema before per-row retry state (no next_try, no rejections): its queued rows are
    still delivered after an upgrade."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
  fingerprint TEXT NOT NULL, rank INTEGER NOT NULL, alert TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY, notification INTEGER NOT NULL REFERENCES notifications(id),
  target TEXT NOT NULL, recipient TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, done_at REAL,
  batch TEXT, last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE active (
  fingerprint TEXT PRIMARY KEY, alert TEXT NOT NULL, source TEXT NOT NULL,
  last_notified REAL NOT NULL, last_seen REAL NOT NULL);
INSERT INTO notifications VALUES (1, 'fp:firing::', 'firing', 'fp', 0, '{"labels": {}}', 1.0);
INSERT INTO deliveries (notification, target, state, attempts, created)
  VALUES (1, 'mail', 'queued', 3, 1.0);
""")
    db.close()
    box = Outbox(path)
    (row,) = box.next_batch("mail", 0.0, 10)
    assert (row.attempts, row.rejections) == (3, 0)
    box.mark_failed([row], "HTTP 500", 1e12, "message", lambda n: 60.0)
    assert box.next_batch("mail", 0.0, 10) == []  # waits on its own next try now
