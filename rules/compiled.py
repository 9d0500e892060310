"""A rule as the engine runs it: its compiled query, hold time, labels and annotations
(`CompiledRule`, built by `compile_groups`), the controller requests of its firing alerts,
and the notification message about an alert (`message`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from poolwatch.core.actions import AlertMessage, NodeAction

from . import compile as compiler
from .loader import LoadedGroup
from .model import Group, Isolate, Rule, duration_seconds
from .state import AlertState

Kind = Literal["firing", "reminder", "resolved"]


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    query: str
    hold_s: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    #: "file:line" of the rule's entry ("" for a rule built in code)
    where: str = ""
    #: id(series labels) -> (those labels, alert labels, fingerprint): a source that returns
    #: the same label objects every cycle (the local one) is not re-hashed every cycle
    seen: dict[int, tuple[object, dict[str, str], str]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, rule: Rule, interval: str, where: str = "", runbook_base: str = "") -> CompiledRule:
        alert = compiler.alert(rule, interval, runbook_base)
        query = alert["expr"]
        if rule.clear is not None:
            query = compiler.expression(
                rule.model_copy(update={"threshold": rule.clear, "clear": None})
            )
        hold = compiler.hold_for(rule, interval)
        return cls(rule, query, duration_seconds(hold) if hold else 0.0, alert["labels"],
                   alert["annotations"], where)  # fmt: skip

    def alert_labels(self, series: Mapping[str, str]) -> dict[str, str]:
        out = {k: v for k, v in series.items() if k != "__name__"}
        return out | dict(self.labels) | {"alertname": self.rule.name}

    def node_actions(self, s: AlertState) -> list[NodeAction]:
        """The controller requests of this rule for the firing alert `s`; the key is the
        fingerprint, the kind and the firing time, so a re-sent request is the same request and
        a later firing of the same series is a new one."""
        out = []
        labels = s.labels
        job = ""
        if labels.get("namespace") and labels.get("training_job"):
            job = f"{labels['namespace']}/{labels['training_job']}"
        reason = f"{self.rule.name}: {self.annotations.get('summary', '')}"
        for a in self.rule.actions:
            if a == "notify":
                continue
            kind = "isolate" if isinstance(a, Isolate) else a
            out.append(NodeAction(
                kind=kind, key=f"{s.fingerprint}:{kind}:{_iso(s.fired_at)}",
                node=labels.get("node", ""), pool=labels.get("pool", ""),
                fault_code=a.isolate if isinstance(a, Isolate) else "", job=job, reason=reason,
                dry_run=self.rule.dry_run, labels=dict(labels),
            ))  # fmt: skip
        return out


def _iso(ts: float | None) -> str:
    """Alertmanager's RFC 3339 time (its zero time for 'not set')."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def message(kind: Kind, s: AlertState, reminder_wait: float) -> AlertMessage:
    """The notification about `s`: starts at its firing time (as Prometheus sends it), ends at
    the resolve; a reminder carries the time it became due in `annotations['reminder_at']`."""
    annotations = dict(s.annotations)
    if kind == "reminder" and s.last_notified is not None:
        annotations["reminder_at"] = _iso(s.last_notified + reminder_wait)
    return AlertMessage(
        kind=kind, fingerprint=s.fingerprint, labels=dict(s.labels), annotations=annotations,
        starts_at=s.fired_at if s.fired_at is not None else s.active_since,
        ends_at=s.resolved_at if kind == "resolved" else None, value=s.value,
    )  # fmt: skip


def compile_groups(
    groups: Iterable[Group | LoadedGroup], runbook_base: str = ""
) -> list[CompiledRule]:
    out = []
    for g in groups:
        if isinstance(g, LoadedGroup):
            out.extend(CompiledRule.of(r, g.group.interval, g.where(r.name), runbook_base)
                       for r in g.group.rules)  # fmt: skip
        else:
            out.extend(CompiledRule.of(r, g.interval, runbook_base=runbook_base) for r in g.rules)
    return out
