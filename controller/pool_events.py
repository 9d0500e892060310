"""Pool events in the seeds' words: `PoolStatusChange` and `PoolResourcesStatusChange`
(statuses-and-events.md section 2), and their notices.

A backend that records them itself (the simulated pool, `emits_pool_events`) has each one
notified once, across restarts: which of its events were told (by uid and the time it gives
them) lives in the store, written with the notice in one transaction. The events the backend
holds when a controller first starts on a state are history, taken as told. Nothing compares
an event's time with the controller's clock: a resumed simulated pool's time goes on from where
it was saved, ahead of the wall clock or behind it, so such a comparison repeats old events or
drops new ones. For a backend that does not record them (Kubernetes), each reconcile derives
them from the node counts (available/abnormal/creating/deleting) and the pool status, records
them as events through the backend (the cluster exporter counts them) and notifies. The last
reported counts and status live in the store, so a restart reports no change twice, and a
change made while the controller was down is reported by the next one. The words, and which
events are Warnings, are the core vocabulary's (as the simulated pool's and the cluster
exporter's)."""

from __future__ import annotations

from poolwatch.cluster.model import Event
from poolwatch.core import vocabulary

from . import pools
from .context import Context

POOL_REASONS = vocabulary.POOL_EVENT_REASONS


class PoolEvents:
    """Pool events for one controller: the ones it derives, and the backend's it has told."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        if getattr(ctx.backend, "emits_pool_events", False):
            self._baseline()

    def _pool_events(self) -> list[Event]:
        """The backend's pool events, in the order they were recorded."""
        return [ev for ev in self.ctx.backend.events()
                if ev.kind == "Pool" and ev.reason in POOL_REASONS]  # fmt: skip

    def _baseline(self) -> None:
        """The first controller on this state: what the backend holds now is history."""
        if self.ctx.store.told_events() is None:
            self.ctx.store.baseline_events([(ev.uid, ev.time) for ev in self._pool_events()])

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
            changes = []  # (reason, type, message)
            if state["counts"] and state["counts"] != text:
                was = [int(x) for x in state["counts"].split("/")]
                typ, message = vocabulary.pool_resources_changed(was, c, now)
                changes.append((vocabulary.POOL_RESOURCES_CHANGE, typ, message))
            if state["status"] and state["status"] != status:
                typ, message = vocabulary.pool_status_changed(state["status"], status)
                changes.append((vocabulary.POOL_STATUS_CHANGE, typ, message))
            # the events first, then the notices with the counts they report in one
            # transaction: a controller that dies in between neither repeats nor loses a notice
            # (only an event could be recorded twice, by a death between the two)
            for reason, typ, message in changes:
                self.ctx.event(Event("", "Pool", p.name, reason, typ, message, self.ctx.clock(),
                                     p.name))  # fmt: skip
            with self.ctx.store.tx():
                for reason, typ, message in changes:
                    self.ctx.pool_notice(p.name, reason, typ, message, deliver=False)
                self.ctx.store.set_pool(p.name, counts=text, status=status)
        self.ctx.notices.deliver_due()

    def tell_backend(self) -> None:
        """The pool events a backend records itself (the simulated pool): notify each one not
        told yet, once (see the module docstring). An event is the same event when both its uid
        and its time match: a pool started afresh with the same seed gives its events the uids
        of the old pool's, at other times."""
        self._baseline()
        told = self.ctx.store.told_events() or {}
        events = self._pool_events()
        for ev in events:
            if told.get(ev.uid) == ev.time:
                continue
            self.ctx.tell(ev.reason, f"{ev.name}:{ev.uid}:{ev.time}",
                          f"pool {ev.name}: {ev.message}", ev.message, {"pool": ev.name},
                          "warning" if ev.type == "Warning" else "info",
                          then=lambda ev=ev: self.ctx.store.mark_told(ev.uid, ev.time))  # fmt: skip
        gone = set(told) - {ev.uid for ev in events}  # expired: the backend never lists it again
        if gone:
            self.ctx.store.forget_told(sorted(gone))
