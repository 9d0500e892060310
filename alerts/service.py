"""The notification service: the in-process `Notifier` and what the HTTP receiver calls.

`notify()` returns True only after the notifications and their deliveries are committed to the
outbox (synchronous=FULL), which is the contract of `poolwatch.actions.Notifier`: a producer that
got True may forget the message. Delivery happens later, in the target workers.

Reminders and Alertmanager repeats (so that nothing is sent twice):
- an Alertmanager repeat (same fingerprint, same episode `startsAt`, same status) has the same
  dedup key as the first notification: it is absorbed, and only marks the alert as still firing;
- for alerts that came through the webhook, this service sends the reminder itself once
  `reminder_wait` has passed since the last notification and Alertmanager has repeated the
  alert within that wait (so it still fires);
- in-process producers (the rule engine) send their own `kind="reminder"` messages, deduplicated
  by their `reminder_at`; their alerts are never reminded here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from poolwatch.core.actions import AlertMessage

from .delivery import Counters, TargetWorker
from .messages import Templates
from .outbox import Outbox
from .payload import readable
from .redact import install, redact
from .routing import routes
from .settings import AlertsSettings

log = logging.getLogger(__name__)


class OutboxUnavailable(RuntimeError):
    """The outbox failed recently; nothing is accepted until it works again."""


#: seconds between integrity checks of the outbox file, and between sweeps for stuck rows
INTEGRITY_INTERVAL = 300.0
STUCK_SWEEP_INTERVAL = 60.0


class AlertService:
    """Implements `poolwatch.actions.Notifier`. `start()` runs delivery; `close()` stops it after
    the batches in flight are recorded."""

    def __init__(
        self,
        settings: AlertsSettings,
        clock: Callable[[], float] = time.time,
        sender: Callable[[str, str, str, str], tuple[bool, str]] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox, clock)
        self.templates = Templates(settings.templates_dir)
        self.counters = Counters()
        self.received: dict[str, int] = {}
        self.duplicates = 0
        self.rejected: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.integrity_interval = INTEGRITY_INTERVAL
        kw: dict[str, Any] = {"sender": sender} if sender else {}
        self.workers = {
            t.name: TargetWorker(
                t, self.outbox, settings, self.templates, self.counters, self.stop, **kw
            )
            for t in settings.targets
        }
        self.redacted = {
            t.name: redact(w.url)
            for t, w in zip(settings.targets, self.workers.values(), strict=True)
        }
        install([], log)  # the secrets are registered by the workers; an exception here is scrubbed
        self._housekeeper = threading.Thread(target=self._housekeep, daemon=True, name="alerts-hk")

    # -- Notifier ------------------------------------------------------------------------------

    def notify(self, messages: list[AlertMessage]) -> bool:
        """Queue notifications from an in-process producer; True once on disk."""
        try:
            self.accept([readable(m) for m in messages], source="inprocess")
        except Exception:  # an outbox we cannot write: the producer keeps it and tries again
            log.exception("cannot write %d notifications to the outbox", len(messages))
            return False
        return True

    def accept(
        self, messages: list[AlertMessage], source: str, counted: bool = True
    ) -> tuple[int, int]:
        """Write `messages` to the outbox (one transaction) and wake the workers: (new, dup).
        `source` is "webhook" (Alertmanager) or "inprocess"; reminders are not `counted`."""
        fault = self.outbox.recent_fault()
        if fault:  # a damaged or failing outbox: refuse (503), the sender keeps the alerts
            raise OutboxUnavailable(fault)
        new, dup = self.outbox.add(((m, routes(m, self.settings)) for m in messages), source)
        if counted:
            with self._lock:
                self.received[source] = self.received.get(source, 0) + len(messages)
                self.duplicates += dup
        if new:
            for worker in self.workers.values():
                worker.wake.set()
        return new, dup

    def count_rejected(self, code: int) -> None:
        with self._lock:
            self.rejected[str(code)] = self.rejected.get(str(code), 0) + 1

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()
        self._housekeeper.start()

    def close(self, timeout: float = 30.0) -> None:
        self.stop.set()
        for worker in self.workers.values():
            worker.wake.set()
            if worker.is_alive():
                worker.join(timeout)

    def remind(self) -> int:
        """Queue the reminders that are due now (see the module docstring); how many."""
        if not self.settings.reminders:
            return 0
        due = self.outbox.due_reminders(self.settings.reminder_wait)
        if due:
            self.accept(due, source="webhook", counted=False)
        return len(due)

    def _housekeep(self) -> None:
        last = {"prune": 0.0, "check": time.monotonic(), "stuck": 0.0}
        every = {"prune": 3600.0, "check": self.integrity_interval, "stuck": STUCK_SWEEP_INTERVAL}
        jobs = {
            "prune": lambda: self.outbox.prune(self.settings.retention),
            "check": self.outbox.check,
            "stuck": self.outbox.requeue_stuck,
        }
        while not self.stop.wait(min(1.0, self.integrity_interval)):
            try:
                self.remind()
                for name, job in jobs.items():
                    if time.monotonic() - last[name] > every[name]:
                        last[name] = time.monotonic()
                        job()
            except Exception:  # isolation boundary: housekeeping must not end the service
                log.exception("alerts housekeeping failed")

    def health(self) -> str:
        """'' when the service can take alerts, else why not (for /healthz)."""
        problem = self.outbox.problem()
        return f"outbox {self.settings.outbox}: {problem}" if problem else ""

    # -- reporting -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What is queued, sent, failing and dead, per target; URLs redacted, never secrets."""
        counts = self.outbox.counts()
        errors = self.outbox.last_errors()
        targets = {}
        for name, url in self.redacted.items():
            c = counts.get(name, dict.fromkeys(("queued", "failing", "sending", "sent", "dead"), 0))
            targets[name] = {**c, "url": url, "last_error": errors.get(name, "")}
        total = {
            k: sum(t[k] for t in targets.values())
            for k in ("queued", "failing", "sending", "sent", "dead")
        }
        oldest = self.outbox.oldest_queued()
        return {
            "cluster": self.settings.cluster_name,
            "total": total,
            "targets": targets,
            "oldest_queued_seconds": None if oldest is None else round(oldest, 3),
            "received": dict(self.received),
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "outbox": {"path": str(self.settings.outbox), "fault": self.outbox.recent_fault()},
        }
