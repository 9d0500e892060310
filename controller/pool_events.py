"""Pool events in the seeds' words: `PoolStatusChange` and `PoolResourcesStatusChange`
(statuses-and-events.md section 2), and their notices.

A backend that records them itself (the simulated pool, `emits_pool_events`) has each new one
notified once; for one that does not (Kubernetes), each reconcile derives them from the node
counts (available/abnormal/creating/deleting) and the pool status, records them as events
through the backend (the cluster exporter counts them) and notifies. The last reported counts
and status live in the store, so a restart reports no change twice. The words, and which events
are Warnings, are the core vocabulary's (as the simulated pool's and the cluster exporter's)."""

from __future__ import annotations

from poolwatch.core import vocabulary

from . import pools
from .context import Context

POOL_REASONS = vocabulary.POOL_EVENT_REASONS


class PoolEvents:
    """Pool events for one controller: the ones it derives, and the backend's it has told."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._started = ctx.clock()  # the backend's events from before are history
        self._told: set[str] = set()  # the backend's pool events notified (by uid)

    def record(self, now: float) -> None:
        """PoolStatusChange / PoolResourcesStatusChange for a backend that does not record them
        itself (Kubernetes); the first look at a pool sets the baseline without an event."""
        if getattr(self.ctx.backend, "emits_pool_events", False):
            self.tell_backend()
            return
        nodes = self.ctx.nodes().values()
        for p in self.ctx.backend.pools():
            members = [n for n in nodes if n.pool == p.name]
            c = pools.counts(members)
            state = self.ctx.store.pool(p.name)
            # POL-06: no Available node, no task can be delivered; or no spare for a fault
            abnormal = state["abnormal"] or vocabulary.too_few_available(c[vocabulary.AVAILABLE])
            status = "Abnormal" if abnormal else p.status.value
            text = "/".join(map(str, c))
            if state["counts"] and state["counts"] != text:
                was = [int(x) for x in state["counts"].split("/")]
                typ, message = vocabulary.pool_resources_changed(was, c, now)
                self.ctx.pool_event(p.name, vocabulary.POOL_RESOURCES_CHANGE, typ, message)
            if state["status"] and state["status"] != status:
                typ, message = vocabulary.pool_status_changed(state["status"], status)
                self.ctx.pool_event(p.name, vocabulary.POOL_STATUS_CHANGE, typ, message)
            self.ctx.store.set_pool(p.name, counts=text, status=status)

    def tell_backend(self) -> None:
        """The pool events a backend records itself (the simulated pool): notify each new one
        once (those from before this controller started are history, not news)."""
        for ev in self.ctx.backend.events():  # in the order they were recorded
            if (ev.kind != "Pool" or ev.reason not in POOL_REASONS or ev.uid in self._told
                or ev.time < self._started):  # fmt: skip
                continue
            self._told.add(ev.uid)
            self.ctx.tell(ev.reason, f"{ev.name}:{ev.uid}", f"pool {ev.name}: {ev.message}",
                          ev.message, {"pool": ev.name},
                          "warning" if ev.type == "Warning" else "info")  # fmt: skip
