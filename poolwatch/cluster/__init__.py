"""The cluster interface: one read/write view of pools, nodes, pods, training jobs, quotas and
events, with a Kubernetes and a simulated implementation behind the same methods.

It lives in `poolwatch` because two parts use it: the cluster exporter reads it, the controller
acts through it.
"""

from poolwatch.cluster.backend import ClusterBackend, LeaseConflict, WatchEvent
from poolwatch.cluster.model import (
    Event,
    JobStatus,
    Lease,
    Node,
    NodeStatus,
    Pod,
    Pool,
    PoolStatus,
    Quota,
    TrainingJob,
)

__all__ = [
    "ClusterBackend",
    "Event",
    "JobStatus",
    "Lease",
    "LeaseConflict",
    "Node",
    "NodeStatus",
    "Pod",
    "Pool",
    "PoolStatus",
    "Quota",
    "TrainingJob",
    "WatchEvent",
]
