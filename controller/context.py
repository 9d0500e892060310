"""`Context`: what every part of the controller reads the cluster through and acts on it with.

The collaborators (isolation, replacements, job restarts, pool and node operations, pool events)
each receive one `Context` instead of the `PoolController`, so they share the same view of the
cluster, the same store and the same record of what was done, and can each be built and tested
alone. It holds no decision of its own; it makes sure of two things every decision needs:
- read-your-writes: `nodes()` answers only from a view that has caught up with the controller's
  own writes (`view()`), else it raises `ViewNotCurrent` and nothing is decided from it;
- only the leader acts: `fence()` before every decision and every write step (`NotLeader`).
And it is where what was done is told: the audit trail, notices, and Kubernetes events.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from poolwatch.cluster.backend import ClusterBackend
from poolwatch.cluster.model import Event, Node
from poolwatch.cluster.workload import busy_nodes
from poolwatch.core.actions import ActionResult

from . import notices
from .settings import ControllerSettings
from .store import AuditRecord, Store

# the controller logs under one name (its facade's), as it did before it was split
log = logging.getLogger(__name__.rsplit(".", 1)[0] + ".service")


class Halted(RuntimeError):
    """No decision now: the step stops where it is (an action answers `failed`, so the engine
    sends it again)."""


class ViewNotCurrent(Halted):
    """The cluster as the controller reads it has not caught up with its own writes (or its
    informers cannot list and watch): no decision is taken from it."""


class NotLeader(Halted):
    """This process no longer holds the leader Lease (or could not renew it in time)."""


class Context:
    """The shared view, store and effects of one controller (see the module docstring)."""

    def __init__(
        self,
        backend: ClusterBackend,
        settings: ControllerSettings,
        store: Store,
        notices_: notices.Notices,
        clock: Callable[[], float],
    ) -> None:
        self.backend, self.settings, self.store, self.clock = backend, settings, store, clock
        self.notices = notices_
        self.stats: Counter[tuple[str, str]] = Counter()  # (kind, outcome) -> actions
        self.view_current = True  # the last decision's read was current (see view)
        # whether this process may act (the runner's leader election); asked before every
        # decision, so a leader that lost its Lease mid-step stops there
        self.may_act: Callable[[], bool] = lambda: True

    # == reading ================================================================================
    def view(self) -> None:
        """Read-your-writes before every decision: wait (up to `view_timeout`) until the
        backend's view has caught up with the controller's own writes and is being watched;
        else raise ViewNotCurrent, and say so once in the log (and in
        poolwatch_controller_view_current). A backend without `await_view` (the simulated pool)
        reads its writes back at once. First of all: this process must still lead (NotLeader)."""
        self.fence()
        wait = getattr(self.backend, "await_view", None)
        why = wait(self.settings.view_timeout) if wait is not None else ""
        if why:
            self.stats[("view", "stale")] += 1
            if self.view_current:
                log.warning("the controller's view of the cluster is not current: %s; it takes "
                            "no decision until it is", why)  # fmt: skip
            self.view_current = False
            raise ViewNotCurrent(f"the controller's view of the cluster is not current: {why}")
        if not self.view_current:
            log.info("the controller's view of the cluster is current again")
        self.view_current = True

    def fence(self) -> None:
        """Before a decision and before each step of a replacement: only the leader acts."""
        if not self.may_act():
            raise NotLeader("this controller does not hold the leader Lease (any more)")

    def nodes(self) -> dict[str, Node]:
        """The nodes by name, from a current view (see view)."""
        self.view()
        return {n.name: n for n in self.backend.nodes()}

    def busy_nodes(self) -> dict[str, list[str]]:
        """node -> the work on it (training jobs, pods holding accelerators); DaemonSet pods
        such as the device plugin are not work, or no real node could ever be released."""
        return busy_nodes(self.backend.pods())

    # == telling what was done ==================================================================
    def finish(self, op: str, target: str, key: str, result: ActionResult, begun: int = 0) -> None:
        """An operator request's result: recorded by key (when it changed something), counted,
        audited (completing its intent `begun`, see begin) and logged."""
        if result.outcome in ("done", "deferred"):
            self.store.record_action(key, op, result.outcome, result.detail, self.clock())
        self.stats[(op, result.outcome)] += 1
        self.audit(op, target, result, key, begun)
        log.info("%s %s: %s, %s (key %s)", op, target, result.outcome, result.detail, key)

    def begin(self, op: str, target: str, key: str, detail: str = "") -> int:
        """The audit record of an action about to be tried, outcome `started`, written before
        anything is changed: the trail shows what was attempted even when the controller dies
        midway. Its outcome is filled in by audit/finish with `begun`; a restarted controller
        marks the ones left `interrupted` (PoolController.reconcile)."""
        return self.store.audit(AuditRecord(self.clock(), op, target, "started", detail, key))

    def audit(self, op: str, target: str, result: ActionResult, key: str, begun: int = 0) -> None:
        """Audit a result: completes the intent `begun` (see begin), else a new record."""
        if begun and self.store.audit_end(begun, result.outcome, result.detail):
            return
        self.store.audit(AuditRecord(self.clock(), op, target, result.outcome, result.detail, key))

    def tell(
        self, what: str, key: str, summary: str, description: str, labels: dict[str, str],
        severity: str, then: Callable[[], None] | None = None, deliver: bool = True,
    ) -> None:  # fmt: skip
        """A notice to people (sent once per `key`, through the outbox). `then`: the state
        change it reports, written with it in one transaction (Notices.queue); `deliver`
        False only queues it (the caller groups several in one transaction, then delivers)."""
        labels = {k: v for k, v in labels.items() if v}
        m = notices.message(what, key, summary, description, labels, severity, self.clock())
        if deliver:
            self.notices.tell(m, then)
        else:
            self.notices.queue(m, then)

    def event(self, event: Event) -> None:
        """A Kubernetes event through the backend; one lost is logged, never fatal."""
        try:
            self.backend.record_event(event)
        except Exception as err:  # noqa: BLE001 - an event lost is logged, never fatal
            log.warning("event %s on %s %s not recorded: %r", event.reason, event.kind,
                        event.name, err)  # fmt: skip

    def node_event(self, node: str, pool: str, reason: str, typ: str, message: str) -> None:
        self.event(Event("", "Node", node, reason, typ, message, self.clock(), pool))

    def pool_event(self, pool: str, reason: str, typ: str, message: str) -> None:
        """A pool event and its notice."""
        self.event(Event("", "Pool", pool, reason, typ, message, self.clock(), pool))
        self.pool_notice(pool, reason, typ, message)

    def pool_notice(
        self, pool: str, reason: str, typ: str, message: str, deliver: bool = True
    ) -> None:
        """The notice of a pool event (see tell for `deliver`)."""
        self.tell(reason, f"{pool}:{reason}:{message}", f"pool {pool}: {message}", message,
                  {"pool": pool}, "warning" if typ == "Warning" else "info",
                  deliver=deliver)  # fmt: skip
