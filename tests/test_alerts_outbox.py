"""The outbox's promises, on a fake clock: dedup by fingerprint + state + episode, reminders
only while Alertmanager still repeats the alert, urgency order, deadline -> dead, and a hard
kill mid-delivery re-queues instead of losing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from alerts_support import alert

from poolwatch.alerts.outbox import Outbox, Route

MAIL = [Route("mail")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(tmp_path: Path, clock: Clock) -> Outbox:
    return Outbox(tmp_path / "o.sqlite", clock)


def test_dedup_by_fingerprint_state_and_episode(box: Outbox) -> None:
    firing = alert(1)
    assert box.add([(firing, MAIL)], "webhook") == (1, 0)
    assert box.add([(firing, MAIL)], "webhook") == (0, 1)  # retry / AM repeat
    resolved = dataclasses.replace(firing, kind="resolved")
    assert box.add([(resolved, MAIL), (resolved, MAIL)], "webhook") == (1, 1)
    again = dataclasses.replace(firing, starts_at=firing.starts_at + 3600)  # a new episode
    assert box.add([(again, MAIL)], "webhook") == (1, 0)
    assert box.counts()["mail"]["queued"] == 3


def test_reminder_needs_wait_and_a_recent_repeat(box: Outbox, clock: Clock) -> None:
    box.add([(alert(1), MAIL)], "webhook")
    box.add([(alert(2), MAIL)], "inprocess")  # the rule engine reminds by itself
    clock.now += 99
    assert box.due_reminders(100) == []
    clock.now += 1
    box.add([(alert(1), MAIL)], "webhook")  # Alertmanager's repeat: still firing
    due = box.due_reminders(100)
    assert [(m.kind, m.fingerprint) for m in due] == [("reminder", "fp000001")]
    assert due[0].annotations["reminder_at"] == f"{clock.now:.0f}"
    assert box.add([(m, MAIL) for m in due], "webhook") == (1, 0)
    assert box.due_reminders(100) == []  # told just now
    clock.now += 250  # no repeat for longer than the wait: Alertmanager lost it, no reminder
    assert box.due_reminders(100) == []


def test_resolved_alert_gets_no_reminder(box: Outbox, clock: Clock) -> None:
    box.add([(alert(1), MAIL)], "webhook")
    clock.now += 50
    box.add([(alert(1, status="resolved"), MAIL)], "webhook")
    clock.now += 100
    assert box.due_reminders(100) == []


def test_batches_are_most_urgent_first_and_grouped(box: Outbox, clock: Clock) -> None:
    msgs = [alert(i, ("info", "warning", "critical")[i % 3]) for i in range(9)]
    box.add([(m, MAIL) for m in msgs], "webhook")
    assert box.next_batch("mail", group_wait=5, limit=10) == []  # the group still gathers
    clock.now += 5
    order = []
    while rows := box.next_batch("mail", group_wait=5, limit=2):
        order.append([r.alert["labels"]["severity"] for r in rows])
        box.mark_sent(rows)
    assert order == [
        ["critical"] * 2,
        ["critical"],
        ["warning"] * 2,
        ["warning"],
        ["info"] * 2,
        ["info"],
    ]
    assert box.counts()["mail"]["sent"] == 9


def test_failure_requeues_then_dead_past_deadline(box: Outbox, clock: Clock) -> None:
    box.add([(alert(1), MAIL)], "webhook")
    rows = box.next_batch("mail", 0, 10)
    assert box.mark_failed(rows, "connection refused", deadline=60) == 0
    assert box.counts()["mail"] == {"queued": 1, "failing": 1, "sending": 0, "sent": 0, "dead": 0}
    assert box.last_errors() == {"mail": "connection refused"}
    clock.now += 61
    rows = box.next_batch("mail", 0, 10)
    assert rows[0].attempts == 1
    assert box.mark_failed(rows, "connection refused", deadline=60) == 1
    assert box.counts()["mail"]["dead"] == 1
    assert box.next_batch("mail", 0, 10) == []


def test_hard_kill_mid_delivery_requeues(tmp_path: Path, clock: Clock) -> None:
    box = Outbox(tmp_path / "o.sqlite", clock)
    box.add([(alert(1), MAIL), (alert(2), MAIL)], "webhook")
    claimed = box.next_batch("mail", 0, 10)
    assert len(claimed) == 2
    assert box.next_batch("mail", 0, 10) == []  # in flight: not claimed twice
    reopened = Outbox(tmp_path / "o.sqlite", clock)  # the process died before mark_sent
    assert reopened.requeued == 2
    assert [r.id for r in reopened.next_batch("mail", 0, 10)] == [r.id for r in claimed]


def test_prune_keeps_undelivered_and_the_keys_of_firing_alerts(box: Outbox, clock: Clock) -> None:
    box.add([(alert(1), MAIL), (alert(2, "warning"), MAIL), (alert(3), MAIL)], "webhook")
    box.mark_sent(box.next_batch("mail", 0, 10))  # 1 and 3 (critical)
    box.add([(alert(3, status="resolved"), MAIL)], "webhook")
    box.mark_sent(box.next_batch("mail", 0, 10))
    clock.now += 1000
    box.add([(alert(1), MAIL)], "webhook")  # Alertmanager still repeats alert 1
    assert box.prune(retention=500) == 3
    assert box.counts()["mail"]["queued"] == 1  # alert 2, never delivered, stays
    assert box.add([(alert(1), MAIL)], "webhook") == (0, 1)  # still absorbed after the prune
    assert box.add([(alert(3, status="resolved"), MAIL)], "webhook") == (1, 0)  # forgotten
