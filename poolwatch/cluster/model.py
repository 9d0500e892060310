"""The objects of the cluster interface, in the seeds' vocabulary (spec/statuses-and-events.md).

Frozen dataclasses: a backend hands out snapshots; a change is a new object in a watch event.
Quantities are plain numbers in base units (cores, bytes, devices); accelerator resources keep
their Kubernetes names (`nvidia.com/gpu`, `huawei.com/Ascend910`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PoolStatus(StrEnum):
    CREATING = "Creating"
    RUNNING = "Running"
    ABNORMAL = "Abnormal"
    CREATION_FAILED = "CreationFailed"
    CHANGE_FAILED = "ChangeFailed"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"


class NodeStatus(StrEnum):
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    ISOLATED = "Isolated"
    REPLACING = "Replacing"
    RESETTING = "Resetting"
    REBOOTING = "Rebooting"
    SPARE = "Spare"
    REPAIRING = "Repairing"
    CREATING = "Creating"
    DELETING = "Deleting"


class JobStatus(StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    ABNORMAL = "Abnormal"


@dataclass(frozen=True)
class Pool:
    name: str
    uid: str
    status: PoolStatus
    flavor: str = ""  # e.g. the accelerator model of its nodes
    accelerator_resource: str = ""  # "nvidia.com/gpu" | "huawei.com/Ascend910" | ""
    ha_spares: int = 0
    job_types: tuple[str, ...] = ()
    driver_version: str = ""
    workspace: str = ""
    created: float = 0.0  # unix seconds


@dataclass(frozen=True)
class Node:
    name: str
    uid: str
    pool: str
    status: NodeStatus
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect)
    conditions: tuple[tuple[str, str], ...] = ()  # (type, status): ("Ready", "True")
    unschedulable: bool = False
    capacity: tuple[tuple[str, float], ...] = ()  # resource -> quantity
    allocatable: tuple[tuple[str, float], ...] = ()
    fault_code: str = ""  # the isolation code (A050101, ...) when Isolated

    def allocatable_of(self, resource: str) -> float:
        return dict(self.allocatable).get(resource, 0.0)


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    uid: str
    node: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    job: str = ""  # the training job (namespace-local name) it belongs to
    requests: tuple[tuple[str, float], ...] = ()  # resource -> quantity, summed over containers
    labels: tuple[tuple[str, str], ...] = ()
    # why the pod ended or is being taken away, when Kubernetes says: the pod's `status.reason`
    # (Evicted, NodeLost, Shutdown, ...), else its DisruptionTarget condition's reason
    # (DeletionByTaintManager, EvictionByEvictionAPI, ...), else the first container that
    # terminated abnormally as "OOMKilled" or "Error:<exit code>"; "" when none of these. The
    # controller tells a platform failure from the user's own by it (controller/failures.py).
    reason: str = ""


@dataclass(frozen=True)
class TrainingJob:
    name: str
    namespace: str
    uid: str
    kind: str  # PyTorchJob | TFJob | MPIJob | vcjob | Job | Pod
    status: JobStatus
    pool: str = ""
    owner: str = ""  # user
    queue: str = ""  # Volcano queue / virtual cluster
    priority: str = ""
    accelerator_resource: str = ""
    accelerators_requested: float = 0.0
    workers: int = 1
    restarts: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    # the job's fault-tolerance annotations (`fault-tolerance/*`, MA-J-04/06): the controller
    # reads its restart budget from them
    annotations: tuple[tuple[str, str], ...] = ()
    # MA_HANG_DETECT_TIME (MA-J-02): minutes of unchanged I/O before the job counts as hung
    hang_detect_minutes: int = 30
    # replica type -> restart policy (Kubeflow `restartPolicy` per replica spec): whether the job
    # operator re-creates one replica's pod that is deleted, without failing the whole job;
    # empty for kinds that have no per-replica policy
    restart_policies: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Quota:
    """A quota or virtual cluster: ResourceQuota, ElasticQuotaTree node or Volcano queue."""

    name: str
    namespace: str  # "" for cluster-scoped (queues, quota trees)
    kind: str  # ResourceQuota | ElasticQuota | Queue
    hard: tuple[tuple[str, float], ...] = ()  # max
    min: tuple[tuple[str, float], ...] = ()  # guaranteed (elastic quota, queue)
    used: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Event:
    """A pool, node or job event, with the seeds' reasons (PoolStatusChange, ...)."""

    uid: str
    kind: str  # Pool | Node | Job
    name: str
    reason: str
    type: str  # Normal | Warning
    message: str
    time: float
    pool: str = ""
    namespace: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Lease:
    """A coordination.k8s.io/v1 Lease, for leader election: who holds it and since when.

    `resource_version` is the version that was read; writing it back makes the write
    conditional (another writer in between gets `LeaseConflict`); "" creates the Lease."""

    name: str
    namespace: str
    holder: str = ""
    duration: float = 15.0  # leaseDurationSeconds
    acquired: float = 0.0  # acquireTime, unix seconds
    renewed: float = 0.0  # renewTime, unix seconds
    transitions: int = 0  # leaseTransitions
    resource_version: str = ""
