"""`PoolController`: the controller's one in-process entry point (an `ActionSink`).

It turns rule-engine actions (`NodeAction`: isolate, replace, restart-job) and operator requests
(the pool API, driver upgrades) into a few idempotent writes through the cluster interface, within
the seeds' limits (POL-01..03), behind a per-pool circuit breaker, and tells people what it did.

Invariants, and why:
- every request has a key; a key is done at most once (the engine re-sends after a restart);
- state is written to the store before the cluster is touched, so a restart resumes a
  replacement with the spare it had chosen (controller/replacer.py) and never takes a second;
- `submit()` never raises: a bad or impossible action is `refused` with the reason;
- dry-run (the seed's `cordon_dry_run`, default on) applies to rule-engine actions: they are
  logged, audited and notified as what would be done, and nothing changes. Operator requests
  through the facade methods (pool API, upgrades) act, since a person asked for them.

It is a facade: the work is done by parts that each act through one shared `Context`
(context.py: the current view, the leader fence, audit, notices, events): isolation.py (with the
circuit breaker), replacer.py, restarts.py (jobs), pool_events.py, pool_ops.py and node_ops.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from poolwatch.cluster.backend import ClusterBackend
from poolwatch.cluster.model import Node, NodeStatus, Pool, TrainingJob
from poolwatch.core.actions import ActionResult, NodeAction, Notifier

from . import node_ops, notices, pool_ops, pools, reasons
from .context import Context, Halted, NotLeader, ViewNotCurrent
from .isolation import Isolation
from .pool_events import PoolEvents
from .pools import FAULT_TAINT, STATUS_LABEL
from .replacer import Replacer
from .restarts import JobRestarts
from .settings import ControllerSettings, code_problem
from .store import Store

__all__ = ["Halted", "NotLeader", "PoolController", "ViewNotCurrent"]
log = logging.getLogger(__name__)


class PoolController:  # implements poolwatch.actions.ActionSink
    """The facade: the rule engine, the server, the pool API and the runner call these public
    methods; each takes the lock and delegates to a collaborator that acts through the shared
    `Context` (isolation, replacer, restarts, pool_events; pool_ops and node_ops)."""

    def __init__(
        self,
        backend: ClusterBackend,
        settings: ControllerSettings | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        state_path: Path | None = None,
    ) -> None:
        s = settings or ControllerSettings()
        store = Store(state_path or s.state_path, audit_keep=s.audit_retention,
                      notices_keep=s.notice_retention, outbox_keep=s.outbox_limit)  # fmt: skip
        self.ctx = Context(backend, s, store, notices.Notices(store, notifier), clock)
        # one request or step at a time (the server's threads, the runner's loop, metrics)
        self.lock = threading.RLock()
        self.replacer = Replacer(self.ctx)
        self.restarts = JobRestarts(self.ctx)
        self.isolation = Isolation(self.ctx, self.restarts, self.replacer)
        self.pool_events = PoolEvents(self.ctx)
        self._intents_checked = False  # the audit's open intents looked at (see _interrupted)

    # the context's parts, as the callers (runner, server, tests) have always read them
    @property
    def backend(self) -> ClusterBackend:
        return self.ctx.backend

    @property
    def settings(self) -> ControllerSettings:
        return self.ctx.settings

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def notices(self) -> notices.Notices:
        return self.ctx.notices

    @property
    def clock(self) -> Callable[[], float]:
        return self.ctx.clock

    @property
    def stats(self) -> Counter[tuple[str, str]]:
        """(kind, outcome) -> how many actions and requests (the controller's metrics)."""
        return self.ctx.stats

    @property
    def view_current(self) -> bool:
        """Whether the last decision's read of the cluster was current (Context.view)."""
        return self.ctx.view_current

    @property
    def may_act(self) -> Callable[[], bool]:
        """Whether this process may act (the runner sets its leader election's `leading`)."""
        return self.ctx.may_act

    @may_act.setter
    def may_act(self, check: Callable[[], bool]) -> None:
        self.ctx.may_act = check

    # == the action interface ===================================================================
    def submit(self, action: NodeAction) -> ActionResult:
        """Do one rule-engine action at most once per key; never raises."""
        with self.lock:
            target = action.node or action.job or action.pool
            begun = self.ctx.begin(f"action:{action.kind}", target, action.key, action.reason)
            try:
                result = self._submit(action)
            except Halted as err:  # logged once by Context.view; the engine sends it again
                result = ActionResult("failed", str(err))
            except Exception as err:  # isolation boundary: a failed write
                # not recorded by key: the writes are idempotent, so a re-send tries again
                log.exception("action %s %s failed (key %s)", action.kind,
                              action.node or action.job, action.key)  # fmt: skip
                result = ActionResult("failed", f"{type(err).__name__}: {err}")
            self.stats[(action.kind, result.outcome)] += 1
            self.ctx.audit(f"action:{action.kind}", target, result, action.key, begun)
            log.info("action %s %s: %s, %s (key %s; reason: %s)", action.kind,
                     action.node or action.job, result.outcome, result.detail, action.key,
                     action.reason or "-")  # fmt: skip
            return result

    def _submit(self, a: NodeAction) -> ActionResult:
        if not a.key:
            return ActionResult("refused", "key: required")
        seen = self.store.action(a.key)
        if seen is not None:
            outcome, detail = seen
            if outcome == "deferred":
                return ActionResult("deferred", detail)
            if outcome != "started":  # started: a restart cut short, finished below
                return ActionResult("already", f"key {a.key} was handled ({outcome}): {detail}")
        dry = self.settings.dry_run or a.dry_run
        if a.kind == "restart-job":
            result = self.restarts.action(a, dry)
        elif not a.node:
            return ActionResult("refused", f"{a.kind}: node required")
        else:
            code = a.fault_code
            if a.kind == "replace" and not code:  # keep the code it was isolated with
                known = self.ctx.nodes().get(a.node)
                code = (pools.fault_of(known) if known else "") or "A050802"
            if not code:
                return ActionResult("refused", "isolate: fault_code required (A050101, ...)")
            if problem := code_problem(code, self.settings):
                return ActionResult("refused", problem)
            replace = a.kind == "replace" or code in self.settings.replace_codes
            result = self.isolation.isolate(
                a.node, code, reasons.asked(a.reason, a.labels), a.key, dry, replace,
                breaker=True, alert=reasons.alert_name(a.labels),
            )  # fmt: skip
        if result.outcome in ("done", "deferred"):
            self.store.record_action(a.key, a.kind, result.outcome, result.detail, self.clock())
        return result

    def breaker_open(self, pool: str) -> bool:
        return self.isolation.breaker_open(pool)

    # == one control-loop step ===================================================================
    def reconcile(self) -> None:
        """Timeouts, queued replacements, finished replacements, re-queued jobs, the breaker,
        pool events; then the notification outbox. While the view of the cluster is not current
        (ViewNotCurrent) the step stops where it is and only the outbox is flushed."""
        with self.lock:
            now = self.clock()
            try:
                self.ctx.view()
                if not self._intents_checked:  # once this process leads: before any action
                    self._interrupted()
                self.replacer.step(now)
                self.restarts.pending_recreations(now)
                self.restarts.failed_jobs(now)
                self.restarts.requeued(now)
                self.isolation.close_breakers(now)
                self.pool_events.record(now)
            except Halted as err:
                log.debug("reconcile stopped: %s", err)
            self.notices.flush()

    def _interrupted(self) -> None:
        """The audit records still `started` are actions a controller began on this state and
        never finished (it stopped midway: every action of this process ends under the lock
        held here): marked `interrupted`. A re-sent key then does or finishes the action."""
        self._intents_checked = True
        if n := self.store.interrupt_started("the controller stopped before this ended; "):
            log.warning("%d action(s) a stopped controller began and did not finish: audited "
                        "as interrupted", n)  # fmt: skip

    # == operator requests (pool API, upgrades, the demo) ======================================
    def pool_activity(self, pool: str) -> str | None:
        """What blocks another pool-wide operation: "replacing" | "resetting" | "upgrading"."""
        with self.lock:
            if any(r.state in ("starting", "running") for r in self.store.replacements(pool)):
                return "replacing"
            nodes = self.backend.nodes()  # a status, not a decision: no wait for the view
            if any(n.pool == pool and n.status is NodeStatus.RESETTING for n in nodes):
                return "resetting"
            if self.store.pool(pool)["upgrading"]:
                return "upgrading"
            return None

    def node_state(self, node: str) -> str:
        """The node's status word (Available, Isolated, Spare, ...); KeyError if unknown."""
        found = self.ctx.nodes().get(node)
        if found is None:
            raise KeyError(f"no node {node!r}")
        return found.status.value

    def isolate(self, node: str, fault_code: str, reason: str, key: str) -> ActionResult:
        """Taint and cordon, no replacement, no breaker (an operator's or an upgrade's request:
        A200001/A200002 leave running jobs alone)."""
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            if problem := code_problem(fault_code, self.settings):
                return ActionResult("refused", problem)
            return self._request("isolate", node, key, reason, lambda: self.isolation.isolate(
                node, fault_code, reason, key, False, False, breaker=False))  # fmt: skip

    def restore(self, node: str, reason: str, key: str) -> ActionResult:
        """Untaint and uncordon: back to Available. A node under repair (Repairing) becomes the
        pool's new HA spare instead ([001:L1416]: "once its fault is rectified it becomes the new
        HA redundant node"). A queued replacement of the node is dropped."""
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            try:
                found = self.ctx.nodes().get(node)
            except Halted as err:
                result = ActionResult("failed", str(err))
                self.ctx.finish("restore", node, key, result)
                return result
            if found is None:
                return ActionResult("refused", f"no node {node!r}")
            if found.status is NodeStatus.REPLACING:
                return ActionResult("refused", f"node {node} is being replaced")
            return self._request("restore", node, key, reason,
                                 lambda: self._restore(found, reason))  # fmt: skip

    def _restore(self, found: Node, reason: str) -> ActionResult:
        """restore's writes, for a node found and not being replaced."""
        node = found.name
        repaired = found.status is NodeStatus.REPAIRING
        if code := pools.fault_of(found):
            reason = f"{reasons.fault(code)} cleared: {reason}"
            self.backend.untaint_node(node, FAULT_TAINT)
        if repaired:
            self.backend.label_node(node, {STATUS_LABEL: NodeStatus.SPARE.value})
            self.backend.cordon(node, True)
        else:
            self.backend.label_node(node, {STATUS_LABEL: None})
            self.backend.cordon(node, False)
        self.replacer.cancel(node, f"node restored: {reason}")
        result = ActionResult("done", f"node {node} is {'Spare' if repaired else 'Available'}"
                              f" again: {reason}")  # fmt: skip
        self.ctx.node_event(node, found.pool, "NodeRestored", "Normal", result.detail)
        return result

    def release(self, pool: str, node: str, reason: str, key: str) -> ActionResult:
        """Take a node out of its pool: refused while it runs jobs, while it is being replaced,
        or when it is the pool's only node ([000:L356-L373])."""
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            return self._request(
                "deleteClusterNode", node, key, reason,
                lambda: pool_ops.release(self.ctx, pool, node, reason),
            )  # fmt: skip

    def set_ha_redundancy(self, node: str, enabled: bool, key: str) -> ActionResult:
        """Enable HA Redundancy (an Available node without work becomes a Spare) or disable it
        (a Spare becomes a normal node); see node_ops for the rules."""
        op = node_ops.ENABLE_HA if enabled else node_ops.DISABLE_HA
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")

            def act() -> ActionResult:
                result = (node_ops.enable_ha if enabled else node_ops.disable_ha)(self.ctx, node)
                if result.outcome == "done":
                    reason = "HaRedundancyEnabled" if enabled else "HaRedundancyDisabled"
                    pool = self.ctx.nodes()[node].pool
                    self.ctx.node_event(node, pool, reason, "Normal", result.detail)
                return result

            return self._request(op, node, key, "", act, halted_fails=False)

    def pool_jobs(self, pool: str, who: str = "") -> list[TrainingJob]:
        """A pool's training jobs (the console's job list of a pool), audited as a read."""
        jobs = node_ops.pool_jobs(self.ctx, pool)
        detail = f"{len(jobs)} jobs" + (f" for {who}" if who else "")
        with self.lock:
            self.ctx.audit(node_ops.LIST_JOBS, pool, ActionResult("done", detail), "")
        return jobs

    def create_pool(self, pool: Pool, nodes: list[str], key: str) -> ActionResult:
        """A new pool of free nodes; its last `pool.ha_spares` nodes become HA spares."""
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            return self._request("CreatePoolV2", pool.name, key, "",
                                 lambda: pool_ops.create(self.ctx, pool, nodes))  # fmt: skip

    def delete_pool(self, pool: str, key: str) -> ActionResult:
        """Release every node of the pool, then delete it; refused while any node runs jobs."""
        with self.lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            return self._request("DeletePoolV2", pool, key, "",
                                 lambda: pool_ops.delete(self.ctx, pool))  # fmt: skip

    def _request(
        self, op: str, target: str, key: str, detail: str, act: Callable[[], ActionResult],
        halted_fails: bool = True,
    ) -> ActionResult:  # fmt: skip
        """An operator request: its intent audited before `act` changes anything (begin), its
        result after (finish). A Halted is the result `failed` (unless `halted_fails` is False:
        it is raised, audited as failed); any other error is audited as failed and raised."""
        begun = self.ctx.begin(op, target, key, detail)
        try:
            result = act()
        except Halted as err:  # the view is not current, or this process does not lead
            result = ActionResult("failed", str(err))
            if not halted_fails:
                self.ctx.finish(op, target, key, result, begun)
                raise
        except Exception as err:
            self.ctx.finish(op, target, key, ActionResult("failed", f"{type(err).__name__}: "
                                                          f"{err}"), begun)  # fmt: skip
            raise
        self.ctx.finish(op, target, key, result, begun)
        return result

    def set_upgrading(self, pool: str, upgrading: bool) -> None:
        """A driver upgrade runs (or ended): no replacement, reset or reboot meanwhile."""
        with self.lock:
            self.store.set_pool(pool, upgrading=int(upgrading))
            self.ctx.audit("UpdatePoolV2", pool, ActionResult("done", f"upgrading={upgrading}"), "")

    def record_pool_event(self, pool: str, reason: str, message: str) -> None:
        """A pool event as a Kubernetes event (the cluster exporter counts it) + a notice."""
        with self.lock:
            self.ctx.pool_event(pool, reason, "Normal", message)
