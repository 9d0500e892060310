"""The domain words every part must say alike: node-status buckets, the pool events' text and
severity, the `poolwatch.io/*` markers on Kubernetes objects, and which resources are accelerators.

Why one module: the simulated cluster, the controller and the cluster exporter each report the
same pool events and counts, and the two cluster backends and the controller read and write the
same labels and taints. Each used to carry its own copy, and the copies had started to drift
(one added a trailing period to an event, one counted AMD GPUs as accelerators and the others did
not). Every part now asks this module, so they agree by construction.

Statuses are compared by value ("Available", "Abnormal", ...): the core sits below the cluster
interface and cannot import its enums, and `NodeStatus`/`PoolStatus` are string enums, so their
members look up the same as their values.

Decisions where the copies disagreed (each has a test):
- `PoolStatusChange` text has no trailing period (the newer of the two formats the platform
  documents; the older one ended in "."), and a pool that becomes Abnormal, CreationFailed or
  ChangeFailed is a Warning (a failed creation or change needs an operator as much as an
  Abnormal pool does).
- The accelerator resources are the union of the three former lists (see `ACCELERATOR_RESOURCES`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

# --- markers poolwatch writes onto Kubernetes objects (both backends and the controller) --------
#: node label naming the pool the node belongs to
POOL_LABEL = "poolwatch.io/pool"
#: node label holding a node status other than Available (Spare, Replacing, Repairing, ...)
STATUS_LABEL = "poolwatch.io/status"
#: taint on an isolated node; its value is the fault code (A050101, ...)
FAULT_TAINT = "poolwatch.io/fault"
#: the fault taint's effect: jobs are restarted by eviction, within their budget, not killed
FAULT_EFFECT = "NoSchedule"
#: pod label that makes a plain pod (no controller owner) part of a training job
JOB_LABEL = "poolwatch.io/job"
#: pod label naming the user who owns a job, where the submitter records it
OWNER_LABEL = "poolwatch.io/owner"
#: node labels a pool created through the controller keeps (the pool exists through its nodes)
WORKSPACE_LABEL = "poolwatch.io/workspace"
JOB_TYPES_LABEL = "poolwatch.io/job-types"  # job types joined with "." ("Train.Infer")
#: node label the driver upgrade leaves on an upgraded node
DRIVER_LABEL = "poolwatch.io/driver-version"
#: pool label in the pool API: the accelerator vendor
VENDOR_LABEL = "poolwatch.io/vendor"
#: job annotations: when the controller re-issued the job, and why it made the job exit
REQUEUED_ANNOTATION = "poolwatch.io/requeued"
STOPPED_ANNOTATION = "poolwatch.io/stopped"
#: a job the controller re-created after a platform failure: how many times in a row, and the uid
#: of the job it was re-created from
RESTARTS_ANNOTATION = "poolwatch.io/restarts"
RESTARTED_FROM_ANNOTATION = "poolwatch.io/restarted-from"
#: involvedObject.apiVersion of poolwatch's pool (and plain-pod job) events
API_VERSION = "poolwatch.io/v1"

# --- flavor labels (set by the cloud or by GPU feature discovery, read by poolwatch) -------------
#: a node's flavor when nodes are chosen for a pool: the instance type first, as a flavor is ordered
NODE_FLAVOR_LABELS = ("node.kubernetes.io/instance-type", "nvidia.com/gpu.product", "accelerator")
#: a pool's flavor as shown (the most common among its nodes): the accelerator model first, as the
#: simulated pool names its flavor
POOL_FLAVOR_LABELS = ("nvidia.com/gpu.product", "accelerator", "node.kubernetes.io/instance-type")

# --- node-status buckets -------------------------------------------------------------------------
#: the four counts of PoolResourcesStatusChange, in the event's order
BUCKETS = ("available", "abnormal", "creating", "deleting")
#: node status -> its bucket. The platform names no status for "abnormal"; it counts the statuses
#: in which a node cannot take work because something is wrong with it or is being done to it.
#: Spare (HA redundant) nodes are healthy reserve and count in none of the four.
BUCKET_OF: dict[str, str | None] = {
    "Available": "available",
    "Unavailable": "abnormal",
    "Isolated": "abnormal",
    "Replacing": "abnormal",
    "Resetting": "abnormal",
    "Rebooting": "abnormal",
    "Repairing": "abnormal",
    "Creating": "creating",
    "Deleting": "deleting",
    "Spare": None,
}
AVAILABLE, ABNORMAL = BUCKETS.index("available"), BUCKETS.index("abnormal")

Counts = tuple[int, int, int, int]
NO_NODES: Counts = (0, 0, 0, 0)


def bucket_slot(status: str | None) -> int | None:
    """The index in `BUCKETS` a node of `status` counts under; None for Spare (or no status)."""
    bucket = BUCKET_OF.get(status) if status is not None else None
    return None if bucket is None else BUCKETS.index(bucket)


def bucket_counts(statuses: Iterable[str]) -> Counts:
    """available/abnormal/creating/deleting of nodes with these statuses."""
    out = [0, 0, 0, 0]
    for status in statuses:
        if (slot := bucket_slot(status)) is not None:
            out[slot] += 1
    return out[0], out[1], out[2], out[3]


def weighted_bucket_counts(per_status: Iterable[tuple[str, int]]) -> Counts:
    """`bucket_counts` of (status, number of nodes) pairs, for totals kept per status."""
    out = [0, 0, 0, 0]
    for status, n in per_status:
        if (slot := bucket_slot(status)) is not None:
            out[slot] += n
    return out[0], out[1], out[2], out[3]


def too_few_available(available: int, min_available: int = 1) -> bool:
    """Whether a pool with `available` Available nodes is Abnormal: "only when the number of
    available nodes is greater than 0, tasks can be delivered" (a pool may ask for more)."""
    return available < min_available


# --- pool events ---------------------------------------------------------------------------------
POOL_STATUS_CHANGE = "PoolStatusChange"
POOL_RESOURCES_CHANGE = "PoolResourcesStatusChange"
POOL_EVENT_REASONS = (POOL_STATUS_CHANGE, POOL_RESOURCES_CHANGE)
#: pool statuses whose arrival is a Warning ("Abnormal" in the platform's words)
BAD_POOL_STATUSES = frozenset({"Abnormal", "CreationFailed", "ChangeFailed"})

Severity = str  # "Normal" or "Warning", the Kubernetes event types


def start_creating() -> tuple[Severity, str]:
    """The PoolStatusChange of a pool being created: (event type, message)."""
    return "Normal", "Start creating pool"


def pool_status_changed(old: str, new: str) -> tuple[Severity, str]:
    """The PoolStatusChange of a pool going from `old` to `new`: (event type, message)."""
    kind = "Warning" if str(new) in BAD_POOL_STATUSES else "Normal"
    return kind, f"Pool status changed, from {old} to {new}"


def resources_worse(old: Sequence[int], new: Sequence[int]) -> bool:
    """The platform gives no rule; ours: worse when abnormal rises or available falls."""
    return new[ABNORMAL] > old[ABNORMAL] or new[AVAILABLE] < old[AVAILABLE]


def pool_resources_changed(
    old: Sequence[int], new: Sequence[int], at: float
) -> tuple[Severity, str]:
    """The PoolResourcesStatusChange from counts `old` to `new` at unix time `at`."""
    text = (
        "Pool resources status changed, available/abnormal/creating/deleting count from "
        f"{'/'.join(map(str, old))} to {'/'.join(map(str, new))}, timestamp: {int(at)}"
    )
    return ("Warning" if resources_worse(old, new) else "Normal"), text


# --- accelerator resources -----------------------------------------------------------------------
#: Kubernetes extended resources that are accelerators (fnmatch patterns): NVIDIA GPUs (whole,
#: shared by time-slicing as `nvidia.com/gpu.shared`, and MIG slices), Huawei Ascend NPUs (the
#: device plugin's `huawei.com/Ascend910`, `Ascend310P`, ... and `huawei.com/npu*`), AMD GPUs.
#: The union of the lists the exporters and the workload check used to keep apart.
ACCELERATOR_RESOURCES: tuple[str, ...] = (
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
    "nvidia.com/mig-*",
    "huawei.com/Ascend*",
    "huawei.com/npu*",
    "amd.com/gpu",
)


#: Resources that match a pattern above but count something else than devices, never
#: accelerators whatever the patterns: device-sharing schedulers (HAMi) advertise an Ascend
#: chip's memory in MB next to the chip as `huawei.com/Ascend910B-memory`, `Ascend310P-memory`,
#: so one node would otherwise count tens of thousands of NPUs.
NOT_ACCELERATOR_RESOURCES: tuple[str, ...] = ("huawei.com/*-memory",)

# the default patterns as one expression: the Kubernetes backend asks for every resource of every
# node and pod, and one match is about ten times cheaper than six fnmatch calls
_ACCELERATOR = re.compile("|".join(fnmatch.translate(p) for p in ACCELERATOR_RESOURCES))
_NOT_ACCELERATOR = re.compile("|".join(fnmatch.translate(p) for p in NOT_ACCELERATOR_RESOURCES))


def is_accelerator(resource: str, patterns: Iterable[str] = ACCELERATOR_RESOURCES) -> bool:
    """Whether `resource` names an accelerator: one of `patterns` (fnmatch, case-sensitive) and
    none of NOT_ACCELERATOR_RESOURCES."""
    if _NOT_ACCELERATOR.match(resource) is not None:
        return False
    if patterns is ACCELERATOR_RESOURCES:
        return _ACCELERATOR.match(resource) is not None
    return any(fnmatch.fnmatchcase(resource, p) for p in patterns)


def vendor_of(resource: str) -> str:
    """ "nvidia", "huawei" or "amd" for an accelerator resource ("" for another)."""
    domain = resource.partition("/")[0]
    return {"nvidia.com": "nvidia", "huawei.com": "huawei", "amd.com": "amd"}.get(domain, "")
