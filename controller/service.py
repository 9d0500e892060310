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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from poolwatch.cluster.backend import ClusterBackend
from poolwatch.cluster.model import Event, Node, NodeStatus, Pool, TrainingJob
from poolwatch.cluster.workload import busy_nodes
from poolwatch.core.actions import ActionResult, NodeAction, Notifier

from . import jobs, node_ops, notices, pool_events, pool_ops, pools
from .pools import FAULT_EFFECT, FAULT_TAINT, STATUS_LABEL
from .replacer import Replacer
from .settings import ControllerSettings, code_problem
from .store import AuditRecord, Store

log = logging.getLogger(__name__)
TERMINAL_PODS = ("Succeeded", "Failed")


class Halted(RuntimeError):
    """No decision now: the step stops where it is (an action answers `failed`, so the engine
    sends it again)."""


class ViewNotCurrent(Halted):
    """The cluster as the controller reads it has not caught up with its own writes (or its
    informers cannot list and watch): no decision is taken from it."""


class NotLeader(Halted):
    """This process no longer holds the leader Lease (or could not renew it in time)."""


class PoolController:  # implements poolwatch.actions.ActionSink
    def __init__(
        self,
        backend: ClusterBackend,
        settings: ControllerSettings | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        state_path: Path | None = None,
    ) -> None:
        self.backend, self.clock = backend, clock
        self.settings = settings or ControllerSettings()
        s = self.settings
        self.store = Store(state_path or s.state_path, audit_keep=s.audit_retention,
                           notices_keep=s.notice_retention, outbox_keep=s.outbox_limit)  # fmt: skip
        self.notices = notices.Notices(self.store, notifier)
        self.stats: Counter[tuple[str, str]] = Counter()  # (kind, outcome) -> actions
        self._lock = threading.RLock()
        self._started, self._told = clock(), set[str]()  # backend pool events notified
        self.view_current = True  # the last decision's read was current (see _view)
        # whether this process may act (the runner's leader election); asked before every
        # decision, so a leader that lost its Lease mid-step stops there
        self.may_act: Callable[[], bool] = lambda: True
        self.replacer = Replacer(self)

    # == the action interface ===================================================================
    def submit(self, action: NodeAction) -> ActionResult:
        """Do one rule-engine action at most once per key; never raises."""
        with self._lock:
            try:
                result = self._submit(action)
            except Halted as err:  # logged once by _view; the engine sends it again
                result = ActionResult("failed", str(err))
            except Exception as err:  # isolation boundary: a failed write
                # not recorded by key: the writes are idempotent, so a re-send tries again
                log.exception("action %s %s failed (key %s)", action.kind,
                              action.node or action.job, action.key)  # fmt: skip
                result = ActionResult("failed", f"{type(err).__name__}: {err}")
            self.stats[(action.kind, result.outcome)] += 1
            self._audit(f"action:{action.kind}", action.node or action.job or action.pool,
                        result, action.key)  # fmt: skip
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
            return ActionResult("already", f"key {a.key} was handled ({outcome}): {detail}")
        dry = self.settings.dry_run or a.dry_run
        if a.kind == "restart-job":
            result = self._restart_action(a, dry)
        elif not a.node:
            return ActionResult("refused", f"{a.kind}: node required")
        else:
            code = a.fault_code
            if a.kind == "replace" and not code:  # keep the code it was isolated with
                known = self._nodes().get(a.node)
                code = (pools.fault_of(known) if known else "") or "A050802"
            if not code:
                return ActionResult("refused", "isolate: fault_code required (A050101, ...)")
            if problem := code_problem(code, self.settings):
                return ActionResult("refused", problem)
            replace = a.kind == "replace" or code in self.settings.replace_codes
            result = self._isolate(a.node, code, a.reason, a.key, dry, replace, breaker=True)
        if result.outcome in ("done", "deferred"):
            self.store.record_action(a.key, a.kind, result.outcome, result.detail, self.clock())
        return result

    # == isolation ==============================================================================
    def _isolate(
        self, name: str, code: str, reason: str, key: str, dry: bool, replace: bool,
        breaker: bool,
    ) -> ActionResult:  # fmt: skip
        nodes = self._nodes()
        node = nodes.get(name)
        if node is None:
            return ActionResult("refused", f"no node {name!r}")
        if node.status in (NodeStatus.REPLACING, NodeStatus.REPAIRING):
            return ActionResult("already", f"node {name} is {node.status.value}")
        pool = node.pool
        members = [n for n in nodes.values() if n.status is not None and n.pool == pool]
        if pool and breaker and not pools.fault_of(node):  # already out: no further harm
            refusal = self._breaker(pool, node, members, dry)
            if refusal is not None:
                return refusal
        isolated = pools.fault_of(node) == code and node.unschedulable
        if dry:
            what = "is already isolated" if isolated else f"would be tainted {FAULT_TAINT}={code}"
            extra = ", then replaced from the pool's spares" if replace and pool else ""
            self._tell("DryRun", key, f"dry run: node {name} {what}{extra}", reason,
                       {"node": name, "pool": pool, "fault_code": code}, "info")  # fmt: skip
            return ActionResult("dry-run", f"node {name} {what} and cordoned{extra}: {reason}")
        if not isolated:
            self._fence()
            self.backend.taint_node(name, FAULT_TAINT, code, FAULT_EFFECT)
            self.backend.cordon(name, True)
            if dict(node.labels).get(STATUS_LABEL) == NodeStatus.SPARE.value:
                self.backend.label_node(name, {STATUS_LABEL: None})  # a faulty spare is no spare
            self._node_event(name, pool, "NodeIsolated", "Warning",
                             f"Node isolated, fault code {code}: {reason}")  # fmt: skip
        detail = f"node {name} {'was already' if isolated else ''} isolated ({code})".replace(
            "  ", " "
        )
        if code not in self.settings.keep_jobs_codes:
            jobs_said = self._restart_jobs_on(name, key)
            if jobs_said:
                detail += f"; {jobs_said}"
        if replace and pool:  # a replacement that failed fails the action: the engine re-sends
            outcome, more = self.replacer.request(key, pool, name, code)
            return ActionResult(outcome, f"{detail}; {more}")
        return ActionResult("done" if not isolated else "already", detail)

    def _breaker(
        self, pool: str, node: Node, members: list[Node], dry: bool
    ) -> ActionResult | None:
        """The circuit breaker: no isolation that would put more of the pool out of service
        than `breaker_ratio` (at least one node); once it refuses, it stays open (refusing every
        isolation in the pool) until the pool is back under and `breaker_cooldown` has passed."""
        s, now = self.settings, self.clock()
        state = self.store.pool(pool)
        limit = pools.allowed(s.breaker_ratio, len(members), 1)
        out = pools.out_of_service(members) + (node.status not in pools.OUT)
        if state["breaker_open"]:
            return ActionResult("refused", f"circuit breaker open for pool {pool}: "
                                           "no isolation until it closes")  # fmt: skip
        if out <= limit:
            return None
        if dry:  # a dry run changes nothing, not even the breaker
            return ActionResult("refused", f"circuit breaker would open: {out} of "
                                           f"{len(members)} nodes of pool {pool} out")  # fmt: skip
        self.store.set_pool(pool, breaker_open=1, breaker_since=now)
        self._audit("TripBreaker", pool, ActionResult("done", f"{out - 1} of {len(members)} "
                                                              "nodes out"), "")  # fmt: skip
        self._tell("BreakerOpen", f"{pool}:{now}", f"circuit breaker open in pool {pool}",
                   f"isolating node {node.name} would put {out} of {len(members)} nodes out "
                   f"(limit {limit}); isolation stops in this pool until it closes",
                   {"pool": pool}, "critical")  # fmt: skip
        return ActionResult("refused", f"circuit breaker: {out} of {len(members)} nodes of pool "
                                       f"{pool} would be out (limit {limit})")  # fmt: skip

    def breaker_open(self, pool: str) -> bool:
        return bool(self.store.pool(pool)["breaker_open"])

    # == jobs ===================================================================================
    def _restart_action(self, a: NodeAction, dry: bool) -> ActionResult:
        if a.job.count("/") != 1:
            return ActionResult("refused", f"job: expected namespace/name, got {a.job!r}")
        cause = jobs.cause_of(dict(a.labels).get("alertname", a.reason), dict(a.labels))
        node = self._nodes().get(a.node) if a.node else None
        if node is not None and pools.fault_of(node):
            cause = "fault"  # the same alert isolated the job's node: an environmental fault
        return self._restart(a.job, cause, a.key, dry, a.reason)

    def _restart(
        self, ref: str, cause: jobs.Cause, key: str, dry: bool, reason: str
    ) -> ActionResult:
        namespace, name = ref.split("/", 1)
        job = next((j for j in self.backend.jobs() if (j.namespace, j.name) == (namespace, name)),
                   None)  # fmt: skip
        if job is None:
            return ActionResult("refused", f"no job {ref}")
        now = self.clock()
        waiting = {job: since for job, since, _ in self.store.requeued()}
        if ref in waiting:  # restarted already (its node's isolation did it): once is enough
            return ActionResult("already", f"job {ref} was restarted at {int(waiting[ref])} "
                                           "and waits to run again")  # fmt: skip
        verdict = jobs.decide(job, cause, self.store.restarts(ref), now, self.settings)
        if not verdict.allowed:
            self._tell("JobNotRestarted", f"{key}:{ref}", f"job {ref} not restarted",
                       verdict.detail, {"job": ref, "pool": job.pool}, "warning")  # fmt: skip
            return ActionResult("refused", f"job {ref}: {verdict.detail}")
        pods = [p for p in self.backend.pods() if p.namespace == namespace and p.job == name
                and p.phase not in TERMINAL_PODS]  # fmt: skip
        if dry:
            return ActionResult("dry-run", f"job {ref} would be restarted ({len(pods)} pods "
                                           f"evicted): {verdict.detail}")  # fmt: skip
        evicted: list[str] = []
        try:
            for pod in pods:
                try:
                    self.backend.evict(pod.namespace, pod.name)
                    evicted.append(pod.name)
                except KeyError:  # gone already (the simulated job restarts as a whole)
                    continue
        finally:  # a restart counts once a pod went; a blocked first eviction costs nothing
            if evicted or not pods:
                self.store.set_restarts(ref, verdict.total, verdict.streak, verdict.hang_streak,
                                        now)  # fmt: skip
                self.store.requeue(ref, now, [p.uid for p in pods])  # MA-J-03
        try:  # MA-J-03: the re-issued job queues first
            self.backend.prioritize_job(namespace, name)
        except Exception as err:  # noqa: BLE001 - its restart stands; only the order is lost
            log.warning("job %s restarted but not prioritized: %r", ref, err)
        if not getattr(self.backend, "emits_pool_events", False):
            self._event(
                Event(
                    "",
                    "Job",
                    name,
                    "JobRestarted",
                    "Normal",
                    "The training job has been restarted.",
                    now,
                    job.pool,
                    namespace,
                )
            )
        self._tell("JobRestarted", f"{key}:{ref}", f"job {ref} restarted", f"{verdict.detail}: "
                   f"{reason}", {"job": ref, "pool": job.pool}, "info")  # fmt: skip
        return ActionResult("done", f"job {ref} restarted: {verdict.detail}")

    def _restart_jobs_on(self, node: str, key: str) -> str:
        """Restart the jobs with a live pod on `node`; what happened, for the action's detail."""
        refs = sorted({f"{p.namespace}/{p.job}" for p in self.backend.pods()
                       if p.node == node and p.job and p.phase not in TERMINAL_PODS})  # fmt: skip
        said = []
        for ref in refs:
            try:
                result = self._restart(ref, "fault", f"{key}:{ref}", False,
                                       f"node {node} isolated")  # fmt: skip
            except Exception as err:  # noqa: BLE001 - the isolation and replacement go on
                log.warning("job %s on isolated node %s not restarted: %r", ref, node, err)
                result = ActionResult("failed", f"{type(err).__name__}: {err}")
            self._audit("restartJob", ref, result, key)
            why = result.detail.removeprefix(f"job {ref}: ")
            said.append(f"{ref} restarted" if result.outcome == "done" else
                        f"{ref} not restarted ({why})")  # fmt: skip
        return "; ".join(said)

    # == one control-loop step ===================================================================
    def reconcile(self) -> None:
        """Timeouts, queued replacements, finished replacements, re-queued jobs, the breaker,
        pool events; then the notification outbox. While the view of the cluster is not current
        (ViewNotCurrent) the step stops where it is and only the outbox is flushed."""
        with self._lock:
            now = self.clock()
            try:
                self._view()
                self.replacer.step(now)
                self._requeued(now)
                self._close_breakers(now)
                pool_events.record(self, now)
            except Halted as err:
                log.debug("reconcile stopped: %s", err)
            self.notices.flush()

    def _requeued(self, now: float) -> None:
        """MA-J-03: a re-issued job that has not run again within requeue_timeout gives up.
        Running again means a Running pod that is not one of those evicted (by uid: operators
        recreate pods under the same names), not the job's status alone (a batch Job's
        startTime and status outlive its pods)."""
        waiting = self.store.requeued()
        if not waiting:
            return
        by_ref = {f"{j.namespace}/{j.name}": j for j in self.backend.jobs()}
        fresh: set[str] = set()  # jobs with a Running pod that was not evicted
        gone = {uid for _, _, uids in waiting for uid in uids}
        for p in self.backend.pods():
            if p.phase == "Running" and p.uid not in gone:
                fresh.add(f"{p.namespace}/{p.job}")
        for ref, since, _ in waiting:
            job = by_ref.get(ref)
            if job is None or job.status.value in ("Completed", "Failed", "Terminated"):
                self.store.end_requeue(ref, "ended")
            elif job.status.value == "Running" and ref in fresh:  # a new pod runs: it is back
                self.store.end_requeue(ref, "running")
            elif now - since >= self.settings.requeue_timeout:
                self.store.end_requeue(ref, "gave-up")
                self._audit("requeueTimeout", ref, ActionResult("failed", "waited too long"), "")
                namespace, name = ref.split("/", 1)
                self._event(Event("", "Job", name, "JobRequeueTimeout", "Warning",
                                  "Failed to be queued.", now, job.pool, namespace))  # fmt: skip
                self._stop_job(namespace, name, ref)
                self._tell("JobRequeueTimeout", ref, f"re-issued job {ref} gave up",
                           f"it waited {int(now - since)} s in the queue (limit "
                           f"{int(self.settings.requeue_timeout)} s, MA-J-03)",
                           {"job": ref, "pool": job.pool}, "warning")  # fmt: skip

    def _stop_job(self, namespace: str, name: str, ref: str) -> None:
        """A re-issued job that waited too long exits (MA-J-03), as far as the backend can."""
        try:
            self.backend.stop_job(namespace, name, "Failed to be queued.")
        except Exception as err:  # noqa: BLE001 - the event and the notice still go out
            self._audit("stopJob", ref, ActionResult("failed", repr(err)[:200]), "")
            log.warning("re-issued job %s not stopped: %r", ref, err)
            return
        self._audit("stopJob", ref, ActionResult("done", "Failed to be queued."), "")

    def _close_breakers(self, now: float) -> None:
        nodes = self._nodes().values()
        for pool in self.store.pool_names():
            state = self.store.pool(pool)
            cooling = now - state["breaker_since"] < self.settings.breaker_cooldown
            if not state["breaker_open"] or cooling:
                continue
            members = [n for n in nodes if n.pool == pool]
            if pools.out_of_service(members) < pools.allowed(self.settings.breaker_ratio,
                                                             len(members), 1):  # fmt: skip
                self.store.set_pool(pool, breaker_open=0)
                self._audit("CloseBreaker", pool, ActionResult("done"), "")
                self._tell("BreakerClosed", f"{pool}:{now}", f"circuit breaker closed in pool "
                           f"{pool}", "isolation resumes", {"pool": pool}, "info")  # fmt: skip

    # == operator requests (pool API, upgrades, the demo) ======================================
    def pool_activity(self, pool: str) -> str | None:
        """What blocks another pool-wide operation: "replacing" | "resetting" | "upgrading"."""
        with self._lock:
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
        found = self._nodes().get(node)
        if found is None:
            raise KeyError(f"no node {node!r}")
        return found.status.value

    def isolate(self, node: str, fault_code: str, reason: str, key: str) -> ActionResult:
        """Taint and cordon, no replacement, no breaker (an operator's or an upgrade's request:
        A200001/A200002 leave running jobs alone)."""
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            if problem := code_problem(fault_code, self.settings):
                return ActionResult("refused", problem)
            try:
                result = self._isolate(node, fault_code, reason, key, False, False,
                                       breaker=False)  # fmt: skip
            except Halted as err:  # the view is not current, or this process does not lead
                result = ActionResult("failed", str(err))
            self._finish("isolate", node, key, result)
            return result

    def restore(self, node: str, reason: str, key: str) -> ActionResult:
        """Untaint and uncordon: back to Available. A node under repair (Repairing) becomes the
        pool's new HA spare instead ([001:L1416]: "once its fault is rectified it becomes the new
        HA redundant node"). A queued replacement of the node is dropped."""
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            try:
                found = self._nodes().get(node)
            except Halted as err:
                result = ActionResult("failed", str(err))
                self._finish("restore", node, key, result)
                return result
            if found is None:
                return ActionResult("refused", f"no node {node!r}")
            if found.status is NodeStatus.REPLACING:
                return ActionResult("refused", f"node {node} is being replaced")
            repaired = found.status is NodeStatus.REPAIRING
            if pools.fault_of(found):
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
            self._node_event(node, found.pool, "NodeRestored", "Normal", result.detail)
            self._finish("restore", node, key, result)
            return result

    def release(self, pool: str, node: str, reason: str, key: str) -> ActionResult:
        """Take a node out of its pool: refused while it runs jobs, while it is being replaced,
        or when it is the pool's only node ([000:L356-L373])."""
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            try:
                result = pool_ops.release(self, pool, node, reason)
            except Halted as err:
                result = ActionResult("failed", str(err))
            self._finish("deleteClusterNode", node, key, result)
            return result

    def set_ha_redundancy(self, node: str, enabled: bool, key: str) -> ActionResult:
        """Enable HA Redundancy (an Available node without work becomes a Spare) or disable it
        (a Spare becomes a normal node); see node_ops for the rules."""
        op = node_ops.ENABLE_HA if enabled else node_ops.DISABLE_HA
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            result = (node_ops.enable_ha if enabled else node_ops.disable_ha)(self, node)
            if result.outcome == "done":
                reason = "HaRedundancyEnabled" if enabled else "HaRedundancyDisabled"
                pool = self._nodes()[node].pool
                self._node_event(node, pool, reason, "Normal", result.detail)
            self._finish(op, node, key, result)
            return result

    def pool_jobs(self, pool: str, who: str = "") -> list[TrainingJob]:
        """A pool's training jobs (the console's job list of a pool), audited as a read."""
        jobs = node_ops.pool_jobs(self, pool)
        detail = f"{len(jobs)} jobs" + (f" for {who}" if who else "")
        with self._lock:
            self._audit(node_ops.LIST_JOBS, pool, ActionResult("done", detail), "")
        return jobs

    def create_pool(self, pool: Pool, nodes: list[str], key: str) -> ActionResult:
        """A new pool of free nodes; its last `pool.ha_spares` nodes become HA spares."""
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            try:
                result = pool_ops.create(self, pool, nodes)
            except Halted as err:
                result = ActionResult("failed", str(err))
            self._finish("CreatePoolV2", pool.name, key, result)
            return result

    def delete_pool(self, pool: str, key: str) -> ActionResult:
        """Release every node of the pool, then delete it; refused while any node runs jobs."""
        with self._lock:
            seen = self.store.action(key)
            if seen is not None:
                return ActionResult("already", f"key {key} was handled ({seen[0]}): {seen[1]}")
            try:
                result = pool_ops.delete(self, pool)
            except Halted as err:
                result = ActionResult("failed", str(err))
            self._finish("DeletePoolV2", pool, key, result)
            return result

    def set_upgrading(self, pool: str, upgrading: bool) -> None:
        """A driver upgrade runs (or ended): no replacement, reset or reboot meanwhile."""
        with self._lock:
            self.store.set_pool(pool, upgrading=int(upgrading))
            self._audit("UpdatePoolV2", pool, ActionResult("done", f"upgrading={upgrading}"), "")

    def record_pool_event(self, pool: str, reason: str, message: str) -> None:
        """A pool event as a Kubernetes event (the cluster exporter counts it) + a notice."""
        with self._lock:
            self._pool_event(pool, reason, "Normal", message)

    # == helpers ================================================================================
    def _view(self) -> None:
        """Read-your-writes before every decision: wait (up to `view_timeout`) until the
        backend's view has caught up with the controller's own writes and is being watched;
        else raise ViewNotCurrent, and say so once in the log (and in
        poolwatch_controller_view_current). A backend without `await_view` (the simulated pool)
        reads its writes back at once. First of all: this process must still lead (NotLeader)."""
        self._fence()
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

    def _fence(self) -> None:
        """Before a decision and before each step of a replacement: only the leader acts."""
        if not self.may_act():
            raise NotLeader("this controller does not hold the leader Lease (any more)")

    def _nodes(self) -> dict[str, Node]:
        self._view()
        return {n.name: n for n in self.backend.nodes()}

    def _busy_nodes(self) -> dict[str, list[str]]:
        """node -> the work on it (training jobs, pods holding accelerators); DaemonSet pods
        such as the device plugin are not work, or no real node could ever be released."""
        return busy_nodes(self.backend.pods())

    def _finish(self, op: str, target: str, key: str, result: ActionResult) -> None:
        if result.outcome in ("done", "deferred"):
            self.store.record_action(key, op, result.outcome, result.detail, self.clock())
        self.stats[(op, result.outcome)] += 1
        self._audit(op, target, result, key)
        log.info("%s %s: %s, %s (key %s)", op, target, result.outcome, result.detail, key)

    def _audit(self, op: str, target: str, result: ActionResult, key: str) -> None:
        self.store.audit(AuditRecord(self.clock(), op, target, result.outcome, result.detail, key))

    def _tell(
        self, what: str, key: str, summary: str, description: str, labels: dict[str, str],
        severity: str,
    ) -> None:  # fmt: skip
        labels = {k: v for k, v in labels.items() if v}
        self.notices.tell(notices.message(what, key, summary, description, labels, severity,
                                          self.clock()))  # fmt: skip

    def _event(self, event: Event) -> None:
        try:
            self.backend.record_event(event)
        except Exception as err:  # noqa: BLE001 - an event lost is logged, never fatal
            log.warning("event %s on %s %s not recorded: %r", event.reason, event.kind,
                        event.name, err)  # fmt: skip

    def _node_event(self, node: str, pool: str, reason: str, typ: str, message: str) -> None:
        self._event(Event("", "Node", node, reason, typ, message, self.clock(), pool))

    def _pool_event(self, pool: str, reason: str, typ: str, message: str) -> None:
        self._event(Event("", "Pool", pool, reason, typ, message, self.clock(), pool))
        self._tell(reason, f"{pool}:{reason}:{message}", f"pool {pool}: {message}", message,
                   {"pool": pool}, "warning" if typ == "Warning" else "info")  # fmt: skip
