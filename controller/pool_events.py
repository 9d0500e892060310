"""Pool events in the seeds' words: `PoolStatusChange` and `PoolResourcesStatusChange`
(statuses-and-events.md section 2), and their notices.

A backend that records them itself (the simulated pool, `emits_pool_events`) has each new one
notified once; for one that does not (Kubernetes), each reconcile derives them from the node
counts (available/abnormal/creating/deleting) and the pool status, records them as events
through the backend (the cluster exporter counts them) and notifies. The last reported counts
and status live in the store, so a restart reports no change twice. The words, and which events
are Warnings, are the core vocabulary's (as the simulated pool's and the cluster exporter's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poolwatch.core import vocabulary

from . import pools

if TYPE_CHECKING:
    from .service import PoolController

POOL_REASONS = vocabulary.POOL_EVENT_REASONS


def record(ctl: PoolController, now: float) -> None:
    """PoolStatusChange / PoolResourcesStatusChange for a backend that does not record them
    itself (Kubernetes); the first look at a pool sets the baseline without an event."""
    if getattr(ctl.backend, "emits_pool_events", False):
        tell_backend(ctl)
        return
    nodes = ctl._nodes().values()
    for p in ctl.backend.pools():
        members = [n for n in nodes if n.pool == p.name]
        c = pools.counts(members)
        state = ctl.store.pool(p.name)
        # POL-06: no Available node, no task can be delivered; or no spare for a fault
        abnormal = state["abnormal"] or vocabulary.too_few_available(c[vocabulary.AVAILABLE])
        status = "Abnormal" if abnormal else p.status.value
        text = "/".join(map(str, c))
        if state["counts"] and state["counts"] != text:
            was = [int(x) for x in state["counts"].split("/")]
            typ, message = vocabulary.pool_resources_changed(was, c, now)
            ctl._pool_event(p.name, vocabulary.POOL_RESOURCES_CHANGE, typ, message)
        if state["status"] and state["status"] != status:
            typ, message = vocabulary.pool_status_changed(state["status"], status)
            ctl._pool_event(p.name, vocabulary.POOL_STATUS_CHANGE, typ, message)
        ctl.store.set_pool(p.name, counts=text, status=status)


def tell_backend(ctl: PoolController) -> None:
    """The pool events a backend records itself (the simulated pool): notify each new one
    once (those from before this controller started are history, not news)."""
    for ev in ctl.backend.events():  # in the order they were recorded
        if (ev.kind != "Pool" or ev.reason not in POOL_REASONS or ev.uid in ctl._told
                or ev.time < ctl._started):  # fmt: skip
            continue
        ctl._told.add(ev.uid)
        ctl._tell(ev.reason, f"{ev.name}:{ev.uid}", f"pool {ev.name}: {ev.message}",
                   ev.message, {"pool": ev.name},
                   "warning" if ev.type == "Warning" else "info")  # fmt: skip
