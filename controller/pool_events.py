"""Pool events in the seeds' words: `PoolStatusChange` and `PoolResourcesStatusChange`
(statuses-and-events.md section 2), and their notices.

A backend that records them itself (the simulated pool, `emits_pool_events`) has each new one
notified once; for one that does not (Kubernetes), each reconcile derives them from the node
counts (available/abnormal/creating/deleting) and the pool status, records them as events
through the backend (the cluster exporter counts them) and notifies. The last reported counts
and status live in the store, so a restart reports no change twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import pools

if TYPE_CHECKING:
    from .service import PoolController

POOL_REASONS = ("PoolStatusChange", "PoolResourcesStatusChange")


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
        status = "Abnormal" if state["abnormal"] or c[0] == 0 else p.status.value
        text = "/".join(map(str, c))
        if state["counts"] and state["counts"] != text:
            was = [int(x) for x in state["counts"].split("/")]
            worse = c[1] > was[1] or c[0] < was[0]  # the seeds give no rule; as the simulator
            ctl._pool_event(p.name, "PoolResourcesStatusChange", "Warning" if worse else
                             "Normal", "Pool resources status changed, available/abnormal/"
                             f"creating/deleting count from {state['counts']} to {text}, "
                             f"timestamp: {int(now)}")  # fmt: skip
        if state["status"] and state["status"] != status:
            ctl._pool_event(p.name, "PoolStatusChange", "Warning" if status == "Abnormal"
                             else "Normal", f"Pool status changed, from {state['status']} "
                             f"to {status}")  # fmt: skip
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
