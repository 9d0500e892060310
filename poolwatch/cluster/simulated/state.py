"""The simulation's mutable state (`World`) and how it turns into the interface's frozen objects.

Why mutable records inside and frozen snapshots outside: the simulation changes a few objects per
event, and rebuilding only those (the `dirty` sets) keeps a step cheap at benchmark scale, while
consumers still get immutable values they can compare and keep.

Time is discrete-event: every future change (a job finishing, a fault, a repair) is an action on a
heap, run in time order with a sequence number as tie-breaker. So the same seed and the same calls
give the same objects and events, however `step()` slices the time.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from poolwatch.cluster.model import Event, JobStatus, Node, NodeStatus, Pod, TrainingJob
from poolwatch.cluster.simulated.spec import FAULT_TAINT, STATUS_LABEL, SimulationSpec

GIB = 1024.0**3
NODE_CPU, NODE_MEMORY = 192.0, 2048 * GIB  # an 8-accelerator training server
RESERVED_CPU, RESERVED_MEMORY = 4.0, 16 * GIB  # kubelet/system reserve: allocatable < capacity
CPU_PER_ACCEL, MEMORY_PER_ACCEL = 16.0, 160 * GIB  # a worker's requests per accelerator
TERMINAL_PODS = ("Succeeded", "Failed")
_UID_ROOT = uuid.UUID("6f0c2a4e-27d5-4c55-9b8e-3c6a1f0d9e21")
Action = Callable[..., None]
_STATUSES = {s.value for s in NodeStatus}


@dataclass
class SimDevice:
    index: int
    uuid: str
    faults: dict[str, float] = field(default_factory=dict)  # ecc/gpu_lost/npu_health -> since
    holder: str = ""  # "namespace/pod" holding it

    @property
    def usable(self) -> bool:
        """What the device plugin advertises: lost, alarmed and DBE-hit devices are withdrawn."""
        return not self.faults


@dataclass
class SimNode:
    name: str
    uid: str
    pool: str
    resource: str
    model: str
    devices: list[SimDevice]
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[tuple[str, str, str]] = field(default_factory=list)
    ready: bool = True
    unschedulable: bool = False
    creating: bool = True
    faults: dict[str, float] = field(default_factory=dict)  # node-level fault -> since
    status: NodeStatus | None = None  # derived at each commit that touched the node
    fault_code: str = ""


@dataclass
class SimPod:
    name: str
    namespace: str
    uid: str
    node: str
    job: str  # "namespace/name" of the job; "" for a DaemonSet pod
    container: str
    requests: dict[str, float]
    devices: tuple[int, ...]
    labels: tuple[tuple[str, str], ...]
    phase: str = "Pending"
    reason: str = ""  # why it ended, as Pod.reason ("Error:1", ...)


@dataclass
class SimJob:
    name: str
    namespace: str
    uid: str
    kind: str
    pool: str
    resource: str
    owner: str
    queue: str
    priority: str
    workers: int
    per_worker: int
    outcome: str
    duration: float
    created: float
    status: JobStatus = JobStatus.PENDING
    started: float | None = None
    finished: float | None = None
    restarts: int = 0
    generation: int = 0  # bumped on restart, so stale scheduled actions are ignored
    hung: bool = False  # Running, zero utilisation, no I/O; invisible to Kubernetes
    hung_since: float | None = None  # when the current hang began
    hung_for: float = 0.0  # seconds of earlier, healed hangs of this run (counters paused)
    hang_detect_minutes: int = 30  # MA_HANG_DETECT_TIME of its containers (10-720)
    stalled: bool = False  # a fault under it: zero utilisation, fails after fault_fail_after
    pods: list[str] = field(default_factory=list)
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class World:
    """All simulated state plus the event heap; the cluster class drives it under its lock."""

    def __init__(self, spec: SimulationSpec, start: float) -> None:
        self.spec, self.start, self.now = spec, start, start
        self.rng = random.Random(spec.seed)  # noqa: S311 - reproducible, not secret
        self.nodes: dict[str, SimNode] = {}
        self.pool_nodes: dict[str, list[SimNode]] = {p.name: [] for p in spec.pools}
        self.capacity: dict[str, float] = {}  # devices per accelerator resource, all pools
        for p in spec.pools:
            self.capacity[p.resource] = self.capacity.get(p.resource, 0) + p.nodes * p.accelerators
        self._idle: dict[str, list[int]] = {}  # node -> usable devices nobody holds (a cache)
        self.pods: dict[str, SimPod] = {}  # "namespace/name"
        self.jobs: dict[str, SimJob] = {}  # "namespace/name"
        self.events: dict[str, Event] = {}
        # accelerator requests of non-terminal pods: by namespace and by queue
        self.ns_used: dict[str, dict[str, float]] = {}
        self.queue_used: dict[str, dict[str, float]] = {}
        self.dirty: dict[str, dict[str, None]] = {k: {} for k in ("node", "pod", "job", "event")}
        self.want_placement = False
        self._heap: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.job_seq = itertools.count(1)
        self.serial = itertools.count(1)  # makes every created object's uid unique
        self._event_seq = itertools.count(1)

    # -- time ------------------------------------------------------------------------------------
    def at(self, when: float, action: Action, *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action, args))

    def pop_due(self, until: float) -> tuple[float, Action, tuple[Any, ...]] | None:
        if not self._heap or self._heap[0][0] > until:
            return None
        when, _, action, args = heapq.heappop(self._heap)
        return when, action, args

    # -- identities and change marks ---------------------------------------------------------------
    def uid(self, *parts: object) -> str:
        """A UUID fixed by the seed and the object's identity, not by draw order."""
        return str(uuid.uuid5(_UID_ROOT, "/".join(map(str, (self.spec.seed, *parts)))))

    def touch(self, kind: str, key: str) -> None:
        self.dirty[kind][key] = None
        if kind == "node":
            self._idle.pop(key, None)

    def idle(self, node: SimNode) -> list[int]:
        """The node's usable, unheld device indices (cached until the node or its pods change;
        do not modify the list)."""
        got = self._idle.get(node.name)
        if got is None:
            got = [d.index for d in node.devices if d.usable and not d.holder]
            self._idle[node.name] = got
        return got

    def event(
        self, kind: str, name: str, reason: str, message: str, type_: str = "Normal",
        pool: str = "", namespace: str = "", involved_kind: str = "",
    ) -> None:  # fmt: skip
        extra = {"involved_kind": involved_kind or kind, "source": "simulation", "count": "1"}
        self.add_event(Event(self.event_uid(), kind, name, reason, type_, message, self.now, pool,
                             namespace, extra))  # fmt: skip

    def event_uid(self) -> str:
        return self.uid("event", next(self._event_seq))

    def add_event(self, ev: Event) -> None:
        self.events[ev.uid] = ev
        self.touch("event", ev.uid)
        self.at(self.now + self.spec.event_ttl, _expire_event, ev.uid)

    # -- pods: the one place that keeps quota usage and device holders right -------------------
    def add_pod(self, pod: SimPod, queue: str) -> None:
        self.pods[f"{pod.namespace}/{pod.name}"] = pod
        self._count(pod, queue, +1)
        self._idle.pop(pod.node, None)
        for i in pod.devices:
            self.nodes[pod.node].devices[i].holder = f"{pod.namespace}/{pod.name}"
        self.touch("pod", f"{pod.namespace}/{pod.name}")

    def end_pod(self, key: str, phase: str, queue: str, delete: bool = False) -> None:
        """Move a pod to a terminal phase (freeing its devices and quota), or delete it."""
        pod = self.pods[key]
        if pod.phase not in TERMINAL_PODS:
            self._count(pod, queue, -1)
            self._idle.pop(pod.node, None)
            for i in pod.devices:
                device = self.nodes[pod.node].devices[i]
                if device.holder == key:
                    device.holder = ""
            self.want_placement = True
        pod.phase = phase
        if delete:
            del self.pods[key]
        self.touch("pod", key)

    def _count(self, pod: SimPod, queue: str, sign: int) -> None:
        for table, name in ((self.ns_used, pod.namespace), (self.queue_used, queue)):
            used = table.setdefault(name, {})
            for res, qty in pod.requests.items():
                if "/" in res:  # accelerators only; cpu/memory never bind here
                    used[res] = used.get(res, 0.0) + sign * qty


def _expire_event(world: World, uid: str) -> None:
    if world.events.pop(uid, None) is not None:
        world.touch("event", uid)


def derive_status(
    labels: dict[str, str], taints: list[tuple[str, str, str]], ready: bool,
    unschedulable: bool, creating: bool = False,
) -> tuple[NodeStatus, str]:  # fmt: skip
    """(status, fault code) of a node from what Kubernetes shows of it, first match wins, by the
    same table as the Kubernetes backend (kubernetes.convert.node_status), so both count alike:
    a `STATUS_LABEL` lifecycle other than Available (Spare, Replacing, ...); a `FAULT_TAINT`:
    Isolated; not registered yet: Creating; not Ready, or cordoned: Unavailable; else Available.
    The fault code is the fault taint's value whenever there is one."""
    fault = next((v for k, v, _ in taints if k == FAULT_TAINT), "")
    marked = labels.get(STATUS_LABEL, "")
    if marked in _STATUSES and marked != NodeStatus.AVAILABLE:
        return NodeStatus(marked), fault
    if any(k == FAULT_TAINT for k, _, _ in taints):
        return NodeStatus.ISOLATED, fault
    if creating:
        return NodeStatus.CREATING, fault
    if not ready or unschedulable:
        return NodeStatus.UNAVAILABLE, fault
    return NodeStatus.AVAILABLE, fault


def node_object(n: SimNode) -> Node:
    usable = sum(d.usable for d in n.devices)
    return Node(
        name=n.name,
        uid=n.uid,
        pool=n.pool,
        status=n.status,
        labels=tuple(sorted(n.labels.items())),
        taints=tuple(n.taints),
        conditions=(("Ready", "True" if n.ready else "False"),),
        unschedulable=n.unschedulable,
        capacity=(("cpu", NODE_CPU), ("memory", NODE_MEMORY), (n.resource, len(n.devices))),
        allocatable=(
            ("cpu", NODE_CPU - RESERVED_CPU),
            ("memory", NODE_MEMORY - RESERVED_MEMORY),
            (n.resource, float(usable)),
        ),
        fault_code=n.fault_code,
    )


def pod_object(p: SimPod) -> Pod:
    return Pod(
        name=p.name,
        namespace=p.namespace,
        uid=p.uid,
        node=p.node,
        phase=p.phase,
        job=p.job.split("/", 1)[1] if p.job else "",  # "": a DaemonSet pod
        requests=tuple(sorted(p.requests.items())),
        labels=p.labels,
        reason=p.reason,
    )


def job_object(j: SimJob) -> TrainingJob:
    return TrainingJob(
        name=j.name,
        namespace=j.namespace,
        uid=j.uid,
        kind=j.kind,
        status=j.status,
        pool=j.pool,
        owner=j.owner,
        queue=j.queue,
        priority=j.priority,
        accelerator_resource=j.resource,
        accelerators_requested=float(j.workers * j.per_worker),
        workers=j.workers,
        restarts=j.restarts,
        created=j.created,
        started=j.started,
        finished=j.finished,
        # what the Kubernetes backend reads too: the fault-tolerance settings only
        annotations=tuple(a for a in j.annotations if a[0].startswith("fault-tolerance/")),
        hang_detect_minutes=j.hang_detect_minutes,
    )
