"""Shared pieces of the controller's tests (no tests here): a small simulated pool, a notifier
that records, and backend proxies that hold spares back or crash mid-replacement."""

from __future__ import annotations

from typing import Any

from poolwatch.cluster.model import NodeStatus
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import GPU, JobRequest, PoolSpec, SimulationSpec
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import AlertMessage, NodeAction

T0 = 1_700_000_000.0
RETRY = (("fault-tolerance/job-retry-num", "3"),)


def sim(
    nodes: int = 8, spares: int = 1, pools: int = 1, jobs: int = 0,
    daemonsets: tuple[str, ...] = (),
) -> SimulatedCluster:  # fmt: skip
    """`pools` GPU pools p0, p1, ... of `nodes` nodes, the last `spares` of them HA spares; no
    random faults, no repairs, no generated jobs unless `jobs` (initial jobs per pool);
    `daemonsets`: a DaemonSet pod of each name on every node."""
    spec = SimulationSpec(
        pools=tuple(PoolSpec(f"p{i}", nodes, 8, GPU, "H100", ha_spares=spares)
                    for i in range(pools)),
        initial_jobs=jobs, jobs_per_hour=0, fault_interval=None, repair_seconds=None,
        max_restarts=100, daemonsets=daemonsets,
    )  # fmt: skip
    return SimulatedCluster(spec, clock=lambda: T0)


def submit_job(
    cluster: SimulatedCluster, name: str, pool: str = "p0", per_worker: int = 8,
    workers: int = 1, annotations: tuple[tuple[str, str], ...] = RETRY,
) -> str:  # fmt: skip
    cluster.submit(JobRequest("team-a", pool, workers=workers, per_worker=per_worker, name=name,
                              duration=10 * 3600.0, annotations=annotations))  # fmt: skip
    cluster.step(60)  # past startup: Running
    return f"team-a/{name}"


class Recorder:
    """A Notifier that keeps what it was told; `down` makes it refuse (the outbox keeps it)."""

    def __init__(self) -> None:
        self.messages: list[AlertMessage] = []
        self.down = False

    def notify(self, messages: list[AlertMessage]) -> bool:
        if self.down:
            return False
        self.messages += messages
        return True

    def names(self) -> list[str]:
        return [m.labels["alertname"] for m in self.messages]


def controller(cluster: Any, notifier: Recorder | None = None, **settings: Any) -> PoolController:
    s = ControllerSettings(**{"dry_run": False, **settings})
    return PoolController(cluster, s, notifier, clock=lambda: cluster.now)


def isolate(node: str, code: str = "A050104", key: str = "", kind: str = "isolate") -> NodeAction:
    key = key or f"{kind}:{node}:{code}"
    # as the rule engine sends it: the reason "<alertname>: <summary>", the alert's labels
    return NodeAction(kind, key, node=node, fault_code=code,  # type: ignore[arg-type]
                      reason="PoolwatchTest: a test fault",
                      labels={"alertname": "PoolwatchTest"})  # fmt: skip


def statuses(cluster: Any) -> dict[str, str]:
    return {n.name: n.status.value for n in cluster.nodes()}


def of_status(cluster: Any, status: NodeStatus, pool: str = "p0") -> list[str]:
    return sorted(n.name for n in cluster.nodes() if n.status is status and n.pool == pool)


class Proxy:
    """Delegates everything to a backend; subclasses intercept writes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def label_node(self, node: str, labels: dict[str, str | None]) -> None:
        self.writes.append(("label", node, tuple(sorted(labels.items(), key=str))))
        self.inner.label_node(node, labels)

    def taint_node(self, node: str, key: str, value: str, effect: str) -> None:
        self.writes.append(("taint", node, key, value))
        self.inner.taint_node(node, key, value, effect)

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self.writes.append(("cordon", node, unschedulable))
        self.inner.cordon(node, unschedulable)

    def evict(self, namespace: str, pod: str) -> None:
        self.writes.append(("evict", namespace, pod))
        self.inner.evict(namespace, pod)


class SlowSpares(Proxy):
    """A spare takes time to come up: its uncordon is held until `arrive(node)`; meanwhile it
    is cordoned without a Spare label, i.e. Unavailable, so its replacement stays running."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.held: list[str] = []

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        if not unschedulable:
            self.writes.append(("cordon", node, unschedulable))
            self.held.append(node)
            return
        super().cordon(node, unschedulable)

    def arrive(self, node: str | None = None) -> None:
        for name in [node] if node else list(self.held):
            self.held.remove(name)
            self.inner.cordon(name, False)


class CrashOnce(Proxy):
    """Raises at the first uncordon of a spare: the controller dies mid-replacement."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.crashed = False

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        if not unschedulable and not self.crashed:
            self.crashed = True
            raise ConnectionError("controller killed mid-replacement")
        super().cordon(node, unschedulable)
