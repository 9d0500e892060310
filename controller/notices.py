"""What the controller tells people: notifications through `poolwatch.actions.Notifier`, with an
outbox so that a notifier that is down gets them later (record first, deliver after).

Each notice is an `AlertMessage` with alertname `PoolwatchController<What>` and a fingerprint
derived from the controller's own key. Its start time is when it was told, so a receiver takes a
notice told again after a restart for a new one: where a notice reports a change of the state
(a replacement's end, a pool event told), the two are written in one transaction
(`queue(m, then)`), and a restart neither repeats nor loses it.

Everything lives in the SQLite state, bounded (controller/store.py): the outbox, and the log of
delivered notices that `sent` reads. The outbox goes out oldest first in batches of `BATCH` (a
backlog of thousands must not become one webhook larger than the receiver accepts); after a
failed delivery, new notices only queue until `RETRY_AFTER` has passed, so a receiver that hangs
costs one timeout per RETRY_AFTER, not one per action; the control loop keeps flushing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping

from poolwatch.core.actions import AlertMessage, Notifier

from .store import Store

log = logging.getLogger(__name__)
BATCH = 100  # notices per delivery
RETRY_AFTER = 30.0  # seconds after a failed delivery before a new notice tries again itself
TEXT_CHARS = 4000  # a summary or description is cut here (they carry an action's reason)


def message(
    what: str, key: str, summary: str, description: str, labels: Mapping[str, str],
    severity: str, at: float,
) -> AlertMessage:  # fmt: skip
    fingerprint = hashlib.sha256(f"controller:{what}:{key}".encode()).hexdigest()[:16]
    return AlertMessage(
        kind="firing",
        fingerprint=fingerprint,
        labels={"alertname": f"PoolwatchController{what}", "severity": severity, **labels},
        annotations={"summary": summary[:TEXT_CHARS], "description": description[:TEXT_CHARS]},
        starts_at=at,
    )


def _to_doc(m: AlertMessage) -> dict[str, object]:
    return {"kind": m.kind, "fingerprint": m.fingerprint, "labels": dict(m.labels),
            "annotations": dict(m.annotations), "starts_at": m.starts_at}  # fmt: skip


def _from_doc(d: Mapping[str, object]) -> AlertMessage:
    return AlertMessage(
        kind=d["kind"],  # type: ignore[arg-type]
        fingerprint=str(d["fingerprint"]),
        labels=dict(d["labels"]),  # type: ignore[call-overload]
        annotations=dict(d["annotations"]),  # type: ignore[call-overload]
        starts_at=d.get("starts_at"),  # type: ignore[arg-type]
    )


class Notices:
    """Queue, then deliver what is queued; `sent` reads back what went out (tests, the demo)."""

    def __init__(
        self, store: Store, notifier: Notifier | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.store, self.notifier, self.clock = store, notifier, clock
        self._failed_at: float | None = None

    @property
    def sent(self) -> list[AlertMessage]:
        return [_from_doc(d) for d in self.store.sent_messages(self.store.notices_keep)]

    def tell(self, m: AlertMessage, then: Callable[[], None] | None = None) -> None:
        """Queue `m`, then deliver what is due (see queue)."""
        self.queue(m, then)
        self.deliver_due()

    def queue(self, m: AlertMessage, then: Callable[[], None] | None = None) -> None:
        """Queue `m`. `then`: the state change the notice reports, written to the store in the
        same transaction, so that a controller that dies here has done both or neither: a
        restart neither repeats the notice nor loses it (a re-sent notice would carry a new
        start time, and a receiver would take it for a new one)."""
        log.info("notice %s: %s", m.labels.get("alertname"), m.annotations.get("summary"))
        with self.store.tx():
            dropped = self.store.queue_message(_to_doc(m))
            if then is not None:
                then()
        if dropped:
            log.warning("outbox full (%d): dropped the %d oldest undelivered notice(s)",
                        self.store.outbox_keep, dropped)  # fmt: skip

    def deliver_due(self) -> None:
        """Deliver the outbox now, unless a delivery failed less than RETRY_AFTER ago."""
        if self._failed_at is None or self.clock() - self._failed_at >= RETRY_AFTER:
            self.flush()

    def flush(self) -> int:
        """Deliver the outbox, oldest first; returns how many are still waiting."""
        while queued := self.store.messages(BATCH):
            ids = [i for i, _ in queued]
            if self.notifier is None:  # nobody to tell: the log line in tell() is the notice
                self.store.mark_sent(ids, time.time())
                continue
            try:
                ok = self.notifier.notify([_from_doc(d) for _, d in queued])
            except Exception as err:  # noqa: BLE001 - isolation boundary: keep them, try later
                log.warning("notifier failed, %d notices kept for later: %r", len(queued), err)
                ok = False
            if not ok:
                self._failed_at = self.clock()
                return self.store.outbox_size()
            self._failed_at = None
            self.store.mark_sent(ids, time.time())
        return 0
