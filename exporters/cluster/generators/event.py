"""Events: counted by (pool, kind, reason, type), the last ones kept for /events (`events.py`).

The pool events of the seeds are derived here from pool and node changes, in their exact words
(spec/statuses-and-events.md §2.1, [001:L1194-L1197]):
- PoolStatusChange: `Start creating pool`; `Pool status changed, from <Old> to <New>`;
- PoolResourcesStatusChange: `Pool resources status changed, available/abnormal/creating/deleting
  count from A/B/C/D to A/B/C/D, timestamp: <unix seconds>`.
The seeds do not say when such an event is Normal or Abnormal (§11); ours is `Warning` (the
Kubernetes word for the seeds' Abnormal) when a pool becomes Abnormal or fails, or when the
abnormal count rises or the available count falls, and `Normal` otherwise. The words and that
rule are the core vocabulary's (`poolwatch.core.vocabulary`), shared with the controller and the
simulation.
"""

from __future__ import annotations

import re

from poolwatch.cluster.model import Event
from poolwatch.core import vocabulary

from . import missing, odd_time, passthrough

STATUS_CHANGE = vocabulary.POOL_STATUS_CHANGE
RESOURCES_CHANGE = vocabulary.POOL_RESOURCES_CHANGE
EVENT_KINDS = frozenset({"Pool", "Node", "Job"})
EVENT_TYPES = frozenset({"Normal", "Warning", "Abnormal"})
_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")

EVENTS_TOTAL = passthrough("poolwatch_cluster_events_total")


def check(ev: object) -> str | None:
    if not isinstance(ev, Event):
        return "wrong_type"
    reason = missing(uid=ev.uid, kind=ev.kind, reason=ev.reason, type=ev.type)
    if reason:
        return reason
    if ev.kind not in EVENT_KINDS:
        return "unknown_event_kind"
    if ev.type not in EVENT_TYPES:
        return "unknown_event_type"
    if not _REASON.fullmatch(ev.reason):  # free text would make the reason label unbounded
        return "bad_reason"
    return odd_time(ev.time)


def start_creating() -> tuple[str, str]:
    return vocabulary.start_creating()


def status_changed(old: str, new: str) -> tuple[str, str]:
    return vocabulary.pool_status_changed(old, new)


def resources_changed(old: tuple[int, ...], new: tuple[int, ...], at: float) -> tuple[str, str]:
    return vocabulary.pool_resources_changed(old, new, at)
