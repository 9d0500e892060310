"""The small interface between the parts that decide and the parts that act.

The rule engine (rules/) decides that something is wrong; the notification layer (alerts/) tells
people and the controller (controller/) isolates, replaces and restarts. The parts may not import
each other (DESIGN.md), so they meet here: plain, frozen data and two protocols. The CLI (and the
demo) wires a producer to its consumers in one process; across processes the same data travels
as Alertmanager-shaped JSON (`AlertMessage.to_alertmanager`) or as JSON to the controller's
`POST /actions` (`NodeAction.to_json`).

Both consumers must be idempotent: a producer that crashed between sending and recording it sent
sends again, with the same `AlertMessage.dedup_key` / `NodeAction.key`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

NotificationKind = Literal["firing", "reminder", "resolved"]
ActionKind = Literal["isolate", "replace", "restart-job"]
ActionOutcome = Literal["done", "already", "deferred", "refused", "dry-run", "failed"]


def _rfc3339(ts: float | None) -> str:
    """Alertmanager's time format; its zero time for 'not set'."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class AlertMessage:
    """One alert to tell people about: what Alertmanager's webhook carries per alert, plus the
    kind of notification (a reminder is a firing alert told again)."""

    kind: NotificationKind
    fingerprint: str  # Alertmanager's, over the labels (rules/fingerprint.py computes it)
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: float | None = None
    ends_at: float | None = None
    generator_url: str = ""
    value: float | None = None

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "resolved" if self.kind == "resolved" else "firing"

    @property
    def dedup_key(self) -> str:
        """Same key, same notification: a retried or re-sent message is delivered once. Each
        reminder is a new notification, told apart by `annotations['reminder_at']`, which the
        producer sets to the time the reminder became due."""
        suffix = self.annotations.get("reminder_at", "") if self.kind == "reminder" else ""
        return f"{self.fingerprint}:{self.kind}:{suffix}"

    def to_alertmanager(self) -> dict[str, Any]:
        """The alert as one element of Alertmanager's webhook `alerts` list (version 4)."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class NodeAction:
    """One thing the controller is asked to do because a rule fired.

    `key` identifies the request (rule fingerprint + kind): the controller does a given key at
    most once, so the engine may send it again after a restart. `dry_run` asks the controller to
    log and notify what it would do and change nothing (the seed's `cordon_dry_run`)."""

    kind: ActionKind
    key: str
    node: str = ""
    pool: str = ""
    fault_code: str = ""  # for isolate: the ModelArts code (A050104, ...)
    job: str = ""  # for restart-job: the training job, "namespace/name"
    reason: str = ""  # the rule (alertname) and its summary, logged and recorded with the action
    dry_run: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "key": self.key, "node": self.node, "pool": self.pool,
            "fault_code": self.fault_code, "job": self.job, "reason": self.reason,
            "dry_run": self.dry_run, "labels": dict(self.labels),
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> NodeAction:
        """Raises ValueError naming the field when `doc` is not an action."""
        if not isinstance(doc, Mapping):
            raise ValueError("an action must be a JSON object")
        kind = doc.get("kind")
        if kind not in ("isolate", "replace", "restart-job"):
            raise ValueError(f"kind: expected isolate, replace or restart-job, got {kind!r}")
        out: dict[str, Any] = {"kind": kind}
        for name in ("key", "node", "pool", "fault_code", "job", "reason"):
            value = doc.get(name, "")
            if not isinstance(value, str):
                raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
            out[name] = value
        if not out["key"]:
            raise ValueError("key: required")
        dry = doc.get("dry_run", False)
        if not isinstance(dry, bool):
            raise ValueError("dry_run: expected true or false")
        labels = doc.get("labels", {})
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("labels: expected an object of strings")
        return cls(dry_run=dry, labels=dict(labels), **out)


@dataclass(frozen=True)
class ActionResult:
    outcome: ActionOutcome
    detail: str = ""


class Notifier(Protocol):
    """The notification layer's in-process entry point (alerts/). Returns True once the message
    is safely queued (written to the outbox), False to have the producer try again later."""

    def notify(self, messages: list[AlertMessage]) -> bool: ...


class ActionSink(Protocol):
    """The controller's action interface. Never raises for a bad action: refuses it."""

    def submit(self, action: NodeAction) -> ActionResult: ...
