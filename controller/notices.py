"""What the controller tells people: notifications through `poolwatch.actions.Notifier`, with an
outbox so that a notifier that is down gets them later (record first, deliver after).

Each notice is an `AlertMessage` with alertname `PoolwatchController<What>` and a fingerprint
derived from the controller's own key, so a notice re-sent after a restart is delivered once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from poolwatch.actions import AlertMessage, Notifier

from .store import Store

log = logging.getLogger(__name__)


def message(
    what: str, key: str, summary: str, description: str, labels: Mapping[str, str],
    severity: str, at: float,
) -> AlertMessage:  # fmt: skip
    fingerprint = hashlib.sha256(f"controller:{what}:{key}".encode()).hexdigest()[:16]
    return AlertMessage(
        kind="firing",
        fingerprint=fingerprint,
        labels={"alertname": f"PoolwatchController{what}", "severity": severity, **labels},
        annotations={"summary": summary, "description": description},
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
    """Queue, then deliver what is queued; `sent` keeps what went out (tests and the demo)."""

    def __init__(self, store: Store, notifier: Notifier | None) -> None:
        self.store, self.notifier = store, notifier
        self.sent: list[AlertMessage] = []

    def tell(self, m: AlertMessage) -> None:
        log.info("notice %s: %s", m.labels.get("alertname"), m.annotations.get("summary"))
        self.store.queue_message(_to_doc(m))
        self.flush()

    def flush(self) -> int:
        """Deliver the outbox; returns how many are still waiting."""
        queued = self.store.messages()
        if not queued:
            return 0
        if self.notifier is None:  # nobody to tell: the log line above is the notice
            self.sent += [_from_doc(d) for _, d in queued]
            self.store.drop_messages([i for i, _ in queued])
            return 0
        batch = [_from_doc(d) for _, d in queued]
        try:
            ok = self.notifier.notify(batch)
        except Exception as err:  # noqa: BLE001 - isolation boundary: keep them, try later
            log.warning("notifier failed, %d notices kept for later: %r", len(queued), err)
            ok = False
        if not ok:
            return len(queued)
        self.sent += batch
        self.store.drop_messages([i for i, _ in queued])
        return 0
