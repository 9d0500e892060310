"""What a simulated cluster is made of: pools, teams, the job mix and the fault rate.

Why a spec and not a config file: the simulation is the engine of demos, tests and benchmarks, and
each of them wants a different cluster in a few lines of Python. The defaults are the demo's pool
(`poolwatch demo`): "gpu-a", 8 nodes x 8 H100; "npu-b", 4 nodes x 8 Ascend 910B3; one HA spare
each; a few jobs; a fault every few minutes of simulated time.

The label and taint keys the simulation writes node roles with are the core vocabulary's, the same
the controller and the Kubernetes backend use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# the node markers the controller writes, the core vocabulary's (as the Kubernetes backend's)
from poolwatch.core.vocabulary import FAULT_TAINT, POOL_LABEL, STATUS_LABEL  # noqa: F401
from poolwatch.core.vocabulary import vendor_of as _vendor_of

GPU = "nvidia.com/gpu"
NPU = "huawei.com/Ascend910"

Fault = Literal["ecc", "gpu_lost", "npu_health", "not_ready", "kubelet_readonly", "cache_full"]
FAULTS: tuple[Fault, ...] = (
    "ecc", "gpu_lost", "npu_health", "not_ready", "kubelet_readonly", "cache_full",
)  # fmt: skip
#: faults that live on one device, and the vendor each one needs ("" for either)
DEVICE_FAULTS: dict[str, str] = {"ecc": "", "gpu_lost": "nvidia", "npu_health": "huawei"}

#: faults that strike a training job, not a node: `hang` (see jobs.hang); named by a node (a job
#: running there) or by the job itself
JOB_FAULTS: tuple[str, ...] = ("hang",)
HANG_DETECT_RANGE = (10, 720)  # MA_HANG_DETECT_TIME, minutes, as the platform allows it

NOT_READY_TAINT = "node.kubernetes.io/not-ready"  # the node lifecycle controller's taint

JobOutcome = Literal["complete", "fail", "hang"]


def vendor_of(resource: str) -> str:
    """ "nvidia" or "huawei": the `vendor` label the node exporter puts on a device."""
    return _vendor_of(resource)


@dataclass(frozen=True)
class PoolSpec:
    """One resource pool: `nodes` identical nodes of `accelerators` devices each."""

    name: str
    nodes: int
    accelerators: int
    resource: str  # GPU or NPU
    model: str  # the driver's name for the device ("NVIDIA H100 80GB HBM3", "910B3")
    ha_spares: int = 1  # the last nodes start as HA spares: status label Spare, cordoned
    min_available: int = 1  # Abnormal below this many Available nodes (seed: tasks need > 0)
    driver_version: str = ""
    workspace: str = "default"  # the pool API's workspace ("default" reads as its "0")
    job_types: tuple[str, ...] = ("Train",)  # what the pool serves: Train, Infer, Notebook

    def __post_init__(self) -> None:
        if self.resource not in (GPU, NPU):
            raise ValueError(f"pool {self.name}: resource must be {GPU} or {NPU}")
        if self.nodes < 1 or self.accelerators < 1 or not 0 <= self.ha_spares < self.nodes:
            raise ValueError(
                f"pool {self.name}: needs nodes >= 1, accelerators >= 1, spares < nodes"
            )


@dataclass(frozen=True)
class TeamSpec:
    """A team: its namespace (with a ResourceQuota), its Volcano queue and its users.

    `share` of every accelerator resource is the team's hard quota (rounded up); half of it is the
    queue's guaranteed minimum. `weight` is the team's share of generated submissions."""

    namespace: str
    queue: str
    owners: tuple[str, ...]
    share: float
    weight: float = 1.0


@dataclass(frozen=True)
class JobSize:
    workers: int
    per_worker: int  # accelerators each worker (pod) requests, all on one node
    weight: float = 1.0


@dataclass(frozen=True)
class JobRequest:
    """One job to submit, with its fate decided up front so a scenario's counts are known.

    `duration` is the running time until the outcome: completion, failure, or the moment it hangs
    (then it stays Running at zero utilisation until restarted or stopped by `max_runtime`)."""

    namespace: str
    pool: str
    workers: int = 1
    per_worker: int = 1
    kind: str = "PyTorchJob"  # PyTorchJob | MPIJob | vcjob | Job
    name: str = ""  # "" draws a name
    owner: str = ""  # "" takes the team's first user
    queue: str = ""  # "" takes the team's queue
    priority: str = "1"  # ModelArts priorities 1-3, 3 highest
    outcome: JobOutcome = "complete"
    duration: float = 3600.0
    # metadata.annotations, e.g. {"fault-tolerance/job-retry-num": "3"} (MA-J-06)
    annotations: tuple[tuple[str, str], ...] = ()
    # MA_HANG_DETECT_TIME of its containers, minutes (10-720); None: the spec's
    hang_detect_minutes: int | None = None


def check_hang_detect(minutes: int) -> None:
    """The platform takes MA_HANG_DETECT_TIME from 10 to 720 minutes; so does the simulation."""
    low, high = HANG_DETECT_RANGE
    if not low <= minutes <= high:
        raise ValueError(f"hang_detect_minutes must lie in {low}-{high}, not {minutes}")


def _demo_pools() -> tuple[PoolSpec, ...]:
    return (
        PoolSpec("gpu-a", 8, 8, GPU, "NVIDIA H100 80GB HBM3", driver_version="535.161.08"),
        PoolSpec("npu-b", 4, 8, NPU, "910B3", driver_version="24.1.rc2"),
    )


def _demo_teams() -> tuple[TeamSpec, ...]:
    return (
        TeamSpec("team-a", "team-a", ("alice", "bob"), share=0.5, weight=3.0),
        TeamSpec("team-b", "team-b", ("carol", "dave"), share=0.3, weight=2.0),
        TeamSpec("team-c", "team-c", ("erin",), share=0.2, weight=1.0),
    )


@dataclass(frozen=True)
class SimulationSpec:
    """The whole simulated cluster. Times are seconds of simulated time; rates are per hour."""

    pools: tuple[PoolSpec, ...] = field(default_factory=_demo_pools)
    teams: tuple[TeamSpec, ...] = field(default_factory=_demo_teams)
    seed: int = 1
    # --- jobs --------------------------------------------------------------------------------
    initial_jobs: int = 2  # generated per pool at start, so a demo has data at once
    jobs_per_hour: float = 6.0  # per pool, Poisson arrivals; 0 turns the generator off
    max_pending: int = 8  # per pool: users stop submitting to a full queue
    sizes: tuple[JobSize, ...] = (JobSize(1, 1, 3), JobSize(1, 4, 2), JobSize(1, 8, 2),
                                  JobSize(2, 8, 1))  # fmt: skip
    kinds: tuple[tuple[str, float], ...] = (("PyTorchJob", 4), ("MPIJob", 1), ("vcjob", 2),
                                            ("Job", 1))  # fmt: skip
    duration: tuple[float, float] = (600.0, 3 * 3600.0)  # log-uniform running time
    fail_probability: float = 0.1
    hang_probability: float = 0.05
    startup_seconds: float = 30.0  # Creating (image pull, pre-check) before Running
    max_runtime: float | None = 6 * 3600.0  # auto stop (seed options 1-720 h); None: never
    max_restarts: int = 3  # evictions a job survives (seed console default 3), then Failed
    fault_fail_after: float = 600.0  # a job on a faulty device/node stalls, then fails
    job_ttl: float = 3600.0  # finished jobs and their pods are deleted after this
    # annotations every generated job carries, e.g. (("fault-tolerance/job-retry-num", "3"),)
    # so the controller restarts the jobs of a node it isolates (the demo's story)
    job_annotations: tuple[tuple[str, str], ...] = ()
    # MA_HANG_DETECT_TIME (minutes, 10-720) of every job that does not set its own: how long a
    # hung job's I/O must stay unchanged before the hang rule calls it hung (platform default 30)
    hang_detect_minutes: int = 30
    # --- nodes and faults --------------------------------------------------------------------
    create_seconds: float = 0.0  # nodes stay Creating this long after start
    # DaemonSet pods on every node, e.g. ("nvidia-device-plugin",): Running in kube-system, no
    # accelerators held, as on a real node; none by default (the figures stay the demo's)
    daemonsets: tuple[str, ...] = ()
    fault_interval: float | None = 300.0  # mean time between random faults; None: only inject()
    fault_weights: tuple[tuple[str, float], ...] = (
        ("ecc", 2), ("gpu_lost", 1), ("npu_health", 2), ("not_ready", 1),
        ("kubelet_readonly", 1), ("cache_full", 2),
    )  # fmt: skip
    repair_seconds: float | None = 600.0  # a fault clears after this; None: only heal()
    event_ttl: float = 3600.0  # as Kubernetes keeps events for an hour

    def __post_init__(self) -> None:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names) or not names:
            raise ValueError("pools need unique names, and at least one pool")
        if not 0 <= self.fail_probability + self.hang_probability <= 1:
            raise ValueError("fail_probability + hang_probability must lie in 0-1")
        if self.duration[0] <= 0 or self.duration[1] < self.duration[0]:
            raise ValueError("duration must be (low, high) with 0 < low <= high")
        check_hang_detect(self.hang_detect_minutes)

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(f"no pool {name!r} in the simulation")

    def team(self, namespace: str) -> TeamSpec | None:
        return next((t for t in self.teams if t.namespace == namespace), None)
