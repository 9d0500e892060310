"""Rolling driver upgrades of a pool (statuses-and-events.md s3.4, pool-api.md s3.8 `driver`).

Secure mode (`updateStrategy: idle`) isolates a batch with the seed's code (A200001 "The GPU is
being upgraded", A200002 for NPUs) so no new job lands there, waits until the batch's jobs have
finished, runs the upgrade step, and returns the nodes; it picks idle nodes first, as the seed's
secure upgrade "picks instances without services". Forcible mode (`force`) isolates and upgrades
at once, whatever runs there. Batches are a percentage of the pool's nodes or a node count.

Every change goes through the controller facade (`isolate`/`restore`), so the controller's view of
a node stays true; the pool is marked upgrading for the whole run (resets and reboots are refused
meanwhile), and an upgrade is refused while the pool is replacing or resetting nodes. HA spares
are upgraded in place, without isolation: they are cordoned and run nothing already.

`Upgrade` is a state machine with no thread and no sleep: `advance()` does whatever can be done
now and says whether the run is over. `UpgradeManager` drives one thread per running upgrade for
the API; tests and the CLI call `advance()` themselves, so simulated time drives a test.

A failed step stops the rollout after the current batch (the rest of the pool keeps its old
driver) and leaves the failed node isolated with its upgrade code, for a person to look at.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from poolwatch.cluster.model import NodeStatus
from poolwatch.cluster.workload import busy_nodes
from poolwatch.core import vocabulary
from poolwatch.core.actions import ActionResult
from poolwatch.core.fault_codes import describe

from .ports import ClusterReader, PoolControl

log = logging.getLogger(__name__)

Mode = Literal["secure", "forcible"]
NodeState = Literal["queued", "isolating", "draining", "upgrading", "done", "failed", "skipped"]
CODES = {"gpu": "A200001", "npu": "A200002"}  # seed 000 L716/L720
DRIVER_LABEL = vocabulary.DRIVER_LABEL  # what the upgrade step leaves on an upgraded node
DEFAULT_PERCENT = 25.0  # the seed's UI example (000:L635)
_UPGRADABLE = (NodeStatus.AVAILABLE, NodeStatus.UNAVAILABLE)  # abnormal drivers do not block
# The driver version becomes a node label value and POOLWATCH_VERSION in the upgrade command's
# environment, so only the platforms' real version shapes pass (ASCII digits, dots, letters):
#: NVIDIA: major.minor[.patch], as nvidia-smi prints it: 535.161.08, 550.54.15, 440.33
GPU_DRIVER_VERSION = r"^[0-9]{2,4}\.[0-9]{1,4}(\.[0-9]{1,4})?$"
#: Ascend HDK: major.minor.(patch | rcN)[.build], as npu-smi prints it: 24.1.rc2, 24.1.RC2,
#: 23.0.3, 23.0.rc3.b060
NPU_DRIVER_VERSION = (
    r"^[0-9]{1,2}\.[0-9]{1,2}\.([0-9]{1,3}|[Rr][Cc][0-9]{1,2})(\.[A-Za-z0-9]{1,12})?$"
)


def version_problem(version: str) -> str | None:
    """Why `version` is not a driver version (None when it is one of the two shapes)."""
    import re

    if re.fullmatch(GPU_DRIVER_VERSION, version) or re.fullmatch(NPU_DRIVER_VERSION, version):
        return None
    return (f"version: expected an NVIDIA driver version like 535.161.08 or an Ascend one like "
            f"24.1.rc2, got {version[:40]!r}")  # fmt: skip


_ids = itertools.count(1)


@dataclass(frozen=True)
class UpgradePlan:
    pool: str
    version: str
    mode: Mode = "secure"
    batch_percent: float | None = None  # one of percent or nodes; neither: 25 %
    batch_nodes: int | None = None
    wait_timeout: float = 24 * 3600.0  # secure mode: a node whose jobs run longer is skipped

    def __post_init__(self) -> None:
        if not self.version.strip():
            raise ValueError("version: required")
        if problem := version_problem(self.version):
            raise ValueError(problem)
        if self.mode not in ("secure", "forcible"):
            raise ValueError(f"mode: expected secure or forcible, got {self.mode!r}")
        if self.batch_percent is not None and self.batch_nodes is not None:
            raise ValueError("batch: give a percentage or a node count, not both")
        if self.batch_percent is not None and not 0 < self.batch_percent <= 100:
            raise ValueError(f"batch percent: expected 0 < p <= 100, got {self.batch_percent}")
        if self.batch_nodes is not None and self.batch_nodes < 1:
            raise ValueError(f"batch nodes: expected at least 1, got {self.batch_nodes}")
        if self.wait_timeout <= 0:
            raise ValueError("wait timeout: must be > 0")

    def batch_size(self, total: int) -> int:
        if self.batch_nodes is not None:
            return self.batch_nodes
        percent = DEFAULT_PERCENT if self.batch_percent is None else self.batch_percent
        return max(1, math.ceil(total * percent / 100.0))


@dataclass(frozen=True)
class StepResult:
    ok: bool
    detail: str = ""


class UpgradeStep(Protocol):
    """Installs `version` on one node; blocking; never raises for a failed install."""

    def upgrade(self, node: str, pool: str, version: str) -> StepResult: ...


class SimulatedStep:
    """The embedded default: marks the node upgraded (its driver-version label), nothing else.
    `fail` names nodes whose upgrade fails, for scenarios."""

    def __init__(self, backend: ClusterReader, fail: set[str] | None = None) -> None:
        self.backend, self.fail = backend, set(fail or ())
        self.calls: list[str] = []

    def upgrade(self, node: str, pool: str, version: str) -> StepResult:
        self.calls.append(node)
        if node in self.fail:
            return StepResult(False, "simulated failure")
        self.backend.label_node(node, {DRIVER_LABEL: version})
        return StepResult(True, f"driver {version} installed (simulated)")


class CommandStep:
    """Runs a command per node (a script that drains a DaemonSet rollout, ssh, ...), with
    POOLWATCH_NODE, POOLWATCH_POOL and POOLWATCH_VERSION in its environment. Exit 0 is success;
    on success the node gets the driver-version label. The last output line is the detail."""

    def __init__(self, argv: list[str], backend: ClusterReader, timeout: float = 3600.0) -> None:
        if not argv:
            raise ValueError("upgrade command: empty")
        self.argv, self.backend, self.timeout = argv, backend, timeout

    def upgrade(self, node: str, pool: str, version: str) -> StepResult:
        env = os.environ | {"POOLWATCH_NODE": node, "POOLWATCH_POOL": pool,
                            "POOLWATCH_VERSION": version}  # fmt: skip
        try:
            done = subprocess.run(self.argv, env=env, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as err:
            return StepResult(False, f"{self.argv[0]}: {err}")
        lines = (done.stdout + done.stderr).strip().splitlines()
        detail = lines[-1] if lines else f"exit {done.returncode}"
        if done.returncode != 0:
            return StepResult(False, f"exit {done.returncode}: {detail}")
        self.backend.label_node(node, {DRIVER_LABEL: version})
        return StepResult(True, detail)


@dataclass
class NodeProgress:
    name: str
    spare: bool
    state: NodeState = "queued"
    detail: str = ""
    batch: int = 0


@dataclass
class Upgrade:
    """One rolling upgrade of one pool; see the module docstring."""

    controller: PoolControl
    backend: ClusterReader
    plan: UpgradePlan
    step: UpgradeStep
    clock: Callable[[], float] = time.time
    id: str = field(default_factory=lambda: f"upgrade-{next(_ids)}")
    phase: str = "pending"  # pending | running | done | failed | refused | aborted
    detail: str = ""
    nodes: dict[str, NodeProgress] = field(default_factory=dict)
    batch: int = 0
    batch_started: float = 0.0
    started: float = 0.0
    finished: float | None = None
    _code: str = ""
    _size: int = 1
    _stop_after_batch: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> ActionResult:
        """Check the pool may be upgraded now and take it; refused leaves nothing changed."""
        with self._lock:
            self.started = self.clock()
            refusal = self._refusal()
            if refusal:
                self.phase, self.detail, self.finished = "refused", refusal, self.started
                self.controller.record_pool_event(self.plan.pool, "DriverUpgradeRefused",
                                                  refusal)  # fmt: skip
                return ActionResult("refused", refusal)
            self.controller.set_upgrading(self.plan.pool, True)
            self.phase = "running"
            eligible = [n for n in self.nodes.values() if n.state == "queued"]
            self._size = size = self.plan.batch_size(len(eligible))
            self.detail = (f"{self.plan.mode} upgrade to {self.plan.version}: "
                           f"{len(eligible)} nodes, {size} per batch")  # fmt: skip
            self.controller.record_pool_event(self.plan.pool, "DriverUpgradeStarted", self.detail)
            return ActionResult("done", self.detail)

    def _refusal(self) -> str:
        p = self.plan
        pool = next((x for x in self.backend.pools() if x.name == p.pool), None)
        if pool is None:
            return f"no pool {p.pool!r}"
        resource = pool.accelerator_resource
        if not resource:
            return f"pool {p.pool} has no GPU or NPU resources: there is no driver to upgrade"
        self._code = CODES["gpu" if vocabulary.vendor_of(resource) == "nvidia" else "npu"]
        activity = self.controller.pool_activity(p.pool)
        if activity in ("replacing", "resetting"):
            return f"pool {p.pool} is {activity} nodes; upgrade the driver when that is done"
        if activity == "upgrading":
            return f"pool {p.pool} is already being upgraded"
        for n in sorted(self.backend.nodes(), key=lambda n: n.name):
            if n.pool != p.pool:
                continue
            prog = NodeProgress(n.name, spare=n.status is NodeStatus.SPARE)
            if dict(n.labels).get(DRIVER_LABEL) == p.version:
                prog.state, prog.detail = "skipped", f"already at {p.version}"
            elif n.status not in _UPGRADABLE and not prog.spare:
                prog.state, prog.detail = "skipped", f"node is {n.status.value}"
            self.nodes[n.name] = prog
        if not any(n.state == "queued" for n in self.nodes.values()):
            return f"pool {p.pool} has no node to upgrade to {p.version}"
        return ""

    # -- run -------------------------------------------------------------------------------------
    def advance(self) -> bool:
        """Do what can be done now; True once the upgrade is over (or was refused)."""
        with self._lock:
            if self.phase != "running":
                return True
            current = [n for n in self.nodes.values() if n.batch == self.batch and self.batch]
            if not current or all(n.state in ("done", "failed", "skipped") for n in current):
                if current:
                    self._batch_done(current)
                if self._stop_after_batch or not self._next_batch():
                    self._finish()
                    return True
                current = [n for n in self.nodes.values() if n.batch == self.batch]
            self._work(current)
            return False

    def run(self, stop: threading.Event | None = None, poll: float = 5.0) -> None:
        """Advance until over (or `stop` is set), `poll` seconds apart."""
        stop = stop or threading.Event()
        while not self.advance():
            if stop.wait(poll):
                return

    def _next_batch(self) -> bool:
        queued = [n for n in self.nodes.values() if n.state == "queued"]
        if not queued:
            return False
        if self.plan.mode == "secure":  # idle nodes first: "instances without services"
            busy = self._busy_nodes()
            queued.sort(key=lambda n: (n.name in busy, n.name))
        size = self._size
        self.batch += 1
        self.batch_started = self.clock()
        for n in queued[:size]:
            n.batch, n.state = self.batch, "isolating"
        names = ", ".join(n.name for n in queued[:size])
        self.controller.record_pool_event(self.plan.pool, "DriverUpgradeBatchStarted",
                                          f"batch {self.batch}: {names}")  # fmt: skip
        return True

    def _work(self, batch: list[NodeProgress]) -> None:
        busy = self._busy_nodes()
        for n in batch:
            if n.state == "isolating":
                self._isolate(n)
            if n.state == "draining":
                if n.name not in busy:
                    n.state = "upgrading"
                elif self.clock() - self.batch_started > self.plan.wait_timeout:
                    n.state = "skipped"
                    n.detail = f"jobs still running after {self.plan.wait_timeout:g}s"
                    self._restore(n)
            if n.state == "upgrading":
                self._upgrade(n)

    def _isolate(self, n: NodeProgress) -> None:
        if n.spare:
            n.state = "upgrading"
            return
        what = "GPU" if self._code == CODES["gpu"] else "NPU"
        res = self.controller.isolate(n.name, self._code, f"The {what} is being upgraded.",
                                      key=f"{self.id}:{n.name}:isolate")  # fmt: skip
        if res.outcome in ("done", "already", "dry-run"):
            n.state = "draining" if self.plan.mode == "secure" else "upgrading"
        elif res.outcome != "deferred":  # deferred: try again on the next advance
            n.state, n.detail = "skipped", f"isolation {res.outcome}: {res.detail}"

    def _upgrade(self, n: NodeProgress) -> None:
        result = self.step.upgrade(n.name, self.plan.pool, self.plan.version)
        n.detail = result.detail
        if result.ok:
            n.state = "done"
            self._restore(n)
            return
        n.state = "failed"
        self._stop_after_batch = True
        self.controller.record_pool_event(
            self.plan.pool,
            "DriverUpgradeNodeFailed",
            f"node {n.name}: upgrade to {self.plan.version} failed ({result.detail}); it stays "
            f"isolated ({describe(self._code)}); the rollout stops after batch {self.batch}",
        )

    def _restore(self, n: NodeProgress) -> None:
        if n.spare:
            return
        res = self.controller.restore(n.name, f"driver upgrade to {self.plan.version} finished",
                                      key=f"{self.id}:{n.name}:restore")  # fmt: skip
        if res.outcome not in ("done", "already", "dry-run"):
            n.detail += f"; restore {res.outcome}: {res.detail}"

    def _batch_done(self, batch: list[NodeProgress]) -> None:
        counts = {s: sum(1 for n in batch if n.state == s) for s in ("done", "failed", "skipped")}
        self.controller.record_pool_event(
            self.plan.pool,
            "DriverUpgradeBatchFinished",
            f"batch {self.batch}: {counts['done']} upgraded, {counts['failed']} failed, "
            f"{counts['skipped']} skipped",
        )

    def _finish(self) -> None:
        self.finished = self.clock()
        states = [n.state for n in self.nodes.values()]
        done, failed = states.count("done"), states.count("failed")
        untouched = states.count("queued")
        self.phase = "failed" if failed else "done"
        self.detail = (f"{done} nodes upgraded to {self.plan.version}, {failed} failed, "
                       f"{states.count('skipped')} skipped, {untouched} not started")  # fmt: skip
        self.controller.set_upgrading(self.plan.pool, False)
        reason = "DriverUpgradeFailed" if failed else "DriverUpgradeCompleted"
        self.controller.record_pool_event(self.plan.pool, reason, self.detail)

    def abort(self, why: str) -> None:
        """Stop here: nodes of the current batch not yet upgraded are returned, the pool is no
        longer marked upgrading, so the same upgrade can be started again later (upgraded nodes
        then count as done: they carry the version's label)."""
        with self._lock:
            if self.phase != "running":
                return
            for n in self.nodes.values():
                if n.batch == self.batch and n.state in ("isolating", "draining", "upgrading"):
                    n.state, n.detail = "skipped", f"aborted: {why}"
                    self._restore(n)
            self.phase, self.finished = "aborted", self.clock()
            self.detail = f"aborted after batch {self.batch}: {why}"
            self.controller.set_upgrading(self.plan.pool, False)
            self.controller.record_pool_event(self.plan.pool, "DriverUpgradeAborted", self.detail)

    def _busy_nodes(self) -> set[str]:
        """Nodes running work the secure mode waits for: a training job's pods, and any pod
        holding accelerators (an inference service). DaemonSet pods (device plugins, the node
        exporter) hold none and would never end: they do not count."""
        return set(busy_nodes(self.backend.pods()))

    # -- report ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            p = self.plan
            return {
                "id": self.id, "pool": p.pool, "version": p.version, "mode": p.mode,
                "batchPercent": p.batch_percent, "batchNodes": p.batch_nodes,
                "phase": self.phase, "detail": self.detail, "batch": self.batch,
                "started": self.started, "finished": self.finished,
                "nodes": [{"name": n.name, "state": n.state, "batch": n.batch, "spare": n.spare,
                           "detail": n.detail} for n in self.nodes.values()],
            }  # fmt: skip


def recover(controller: PoolControl, backend: ClusterReader, pool: str, why: str) -> list[str]:
    """Undo what an upgrade that is no longer running left behind (its process died): return
    the pool's nodes still isolated with an upgrade code and clear the pool's upgrading mark,
    so the pool can be reset, rebooted and upgraded again. Returns the nodes restored."""
    restored = []
    for n in sorted(backend.nodes(), key=lambda n: n.name):
        if n.pool == pool and n.fault_code in CODES.values():
            key = f"recover:{pool}:{n.name}:{time.time():.0f}"  # a new key per recovery
            res = controller.restore(n.name, f"upgrade recovery: {why}", key=key)
            if res.outcome in ("done", "already"):
                restored.append(n.name)
    controller.set_upgrading(pool, False)
    controller.record_pool_event(pool, "DriverUpgradeAborted", f"recovered ({why}): "
                                 f"{len(restored)} nodes returned")  # fmt: skip
    return restored


class UpgradeManager:
    """Runs the API's upgrades: at most one per pool at a time, each in its own thread
    (`autorun=False`: the caller drives them with `advance_all()`, as tests do). Without a
    step every upgrade is refused: a real cluster must say how a driver is installed, and
    marking nodes upgraded while nothing happened would be worse than no upgrade."""

    def __init__(
        self,
        controller: PoolControl,
        backend: ClusterReader,
        step: UpgradeStep | None = None,
        clock: Callable[[], float] = time.time,
        poll: float = 5.0,
        autorun: bool = True,
    ) -> None:
        self.controller, self.backend, self.step = controller, backend, step
        self.clock, self.poll, self.autorun = clock, poll, autorun
        self._by_pool: dict[str, Upgrade] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self, plan: UpgradePlan) -> tuple[Upgrade, ActionResult]:
        with self._lock:
            running = self._by_pool.get(plan.pool)
            if running is not None and running.phase == "running":
                return running, ActionResult("refused", f"upgrade {running.id} of pool "
                                             f"{plan.pool} is still running")  # fmt: skip
            if self.step is None:
                why = "no upgrade step is configured (poolwatch api serve --upgrade-command)"
                refused = Upgrade(self.controller, self.backend, plan, SimulatedStep(self.backend),
                                  self.clock, phase="refused", detail=why)  # fmt: skip
                return refused, ActionResult("refused", why)
            upgrade = Upgrade(self.controller, self.backend, plan, self.step, self.clock)
            result = upgrade.start()
            self._by_pool[plan.pool] = upgrade
        if result.outcome == "done" and self.autorun:
            threading.Thread(target=upgrade.run, args=(self._stop, self.poll), daemon=True,
                             name=f"upgrade-{plan.pool}").start()  # fmt: skip
        return upgrade, result

    def get(self, pool: str) -> Upgrade | None:
        with self._lock:
            return self._by_pool.get(pool)

    def abort(self, pool: str, why: str) -> tuple[str, list[str]]:
        """Abort the pool's running upgrade; with none running here but the pool still marked
        upgrading (a server that died mid-upgrade), recover it. Returns what was done and the
        nodes returned; ("none", []) when there was nothing to stop."""
        with self._lock:
            running = self._by_pool.get(pool)
        if running is not None and running.phase == "running":
            batch = [n.name for n in running.nodes.values()
                     if n.batch == running.batch and n.state not in ("done", "failed")]  # fmt: skip
            running.abort(why)
            return "aborted", batch
        if self.controller.pool_activity(pool) == "upgrading":
            return "recovered", recover(self.controller, self.backend, pool, why)
        return "none", []

    def advance_all(self) -> None:
        with self._lock:
            upgrades = list(self._by_pool.values())
        for u in upgrades:
            u.advance()

    def stop(self) -> None:
        self._stop.set()
