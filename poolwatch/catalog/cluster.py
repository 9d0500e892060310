"""Catalog entries of the cluster exporter: pools, nodes, training jobs, quotas, events, its health.

Shapes follow kube-state-metrics (STYLE.md §3): identity in one `_info` per object, dynamic state
as a state set (one 0/1 series per status, every status present), times as `_timestamp_seconds`,
base units. The source named in each help text is the field of the cluster interface
(`poolwatch/cluster/model.py`) the value comes from, whichever backend fills it.

Identity labels: as the node runner adds `node` and `pool` to node series, the cluster exporter
adds per object the labels in `CLUSTER_IDENTITY` (the pool of a pool, node or job; the name of a
node as `node`, the same meaning as the node exporter's `node`, so the two join). They are not
repeated in `labels`. No series carries `job`, `instance` or `cluster` (Prometheus target labels);
a training job is `training_job`, with `namespace`, as in `poolwatch_accelerator_allocation_info`,
so `* on(namespace, training_job) group_left(owner, queue) poolwatch_training_job_info` joins a
device to its job.

Aggregates: the seeds show pool-level figures that need every node and pod of a pool (node counts
by status, free cards, GPU/NPU fragments [001:L1264]) and that PromQL cannot derive from per-node
series without the pod bindings, so the exporter keeps them, recomputed incrementally when a node
or pod of that pool changes. Everything else is per object.

Fragments (`poolwatch_pool_accelerator_fragments`), after the seed's "some cards are idle but
cannot be used by multi-card tasks; for tasks with different numbers of cards, fragments vary
according to the distribution of occupied cards" [001:L1264]: for a task of `task_cards` cards, a
schedulable node with `a` allocatable and `i` idle cards can host floor(i/g) task pieces of
g = min(task_cards, a) cards (a task larger than a node takes whole nodes, as the seeds'
distributed jobs do: nodes x 8 cards [004:L390]); the remaining i mod g idle cards are fragments.
"""

from __future__ import annotations

from poolwatch.core.catalog.model import MetricSpec
from poolwatch.core.catalog.model import family as _spec

#: labels the cluster exporter adds to every series of a collector, in this order
CLUSTER_IDENTITY: dict[str, tuple[str, ...]] = {
    "cluster_pool": ("pool",),
    "cluster_node": ("node", "pool"),
    "cluster_job": ("pool",),
    "cluster_quota": (),
    "cluster_event": ("pool",),
    "cluster_runner": (),
}

_JOB = ("namespace", "training_job")

# The tables below are data, aligned for reading; the formatter would put every argument on a line.
# fmt: off

POOL = [
    _spec("poolwatch_pool_info", "info", "",
          "Resource pool identity, value 1; job_types comma-separated (cluster_pool, Pool).",
          ("uid", "flavor", "accelerator_resource", "driver_version", "workspace", "job_types"),
          "cluster_pool"),
    _spec("poolwatch_pool_status", "gauge", "",
          "1 for the pool's current status, 0 for every other status (cluster_pool, "
          "Pool.status).", ("status",), "cluster_pool"),
    _spec("poolwatch_pool_created_timestamp_seconds", "gauge", "seconds",
          "Unix time the pool was created (cluster_pool, Pool.created).", (), "cluster_pool"),
    _spec("poolwatch_pool_ha_spare_nodes", "gauge", "",
          "HA redundant (spare) nodes configured for the pool (cluster_pool, Pool.ha_spares).",
          (), "cluster_pool"),
    _spec("poolwatch_pool_nodes", "gauge", "",
          "Nodes of the pool in each status, 0 included (cluster_pool, Node.pool and "
          "Node.status).", ("status",), "cluster_pool"),
    _spec("poolwatch_pool_accelerators", "gauge", "",
          "Allocatable accelerators on all nodes of the pool (cluster_pool, "
          "Node.allocatable).", ("resource",), "cluster_pool"),
    _spec("poolwatch_pool_accelerators_allocated", "gauge", "",
          "Accelerators requested by pending or running pods bound to nodes of the pool "
          "(cluster_pool, Pod.requests).", ("resource",), "cluster_pool"),
    _spec("poolwatch_pool_accelerators_idle", "gauge", "",
          "Unallocated accelerators on schedulable nodes (status Available, not cordoned) of "
          "the pool (cluster_pool, Node.allocatable minus Pod.requests).", ("resource",),
          "cluster_pool"),
    _spec("poolwatch_pool_accelerator_fragments", "gauge", "",
          "Idle accelerators a task of task_cards cards cannot use: the sum over schedulable "
          "nodes of idle mod min(task_cards, node allocatable) (cluster_pool, Node.allocatable "
          "and Pod.requests).", ("resource", "task_cards"), "cluster_pool"),
]

NODE = [
    _spec("poolwatch_cluster_node_info", "info", "",
          'A node, value 1; pool is "" for a free node in no pool (cluster_node, Node).',
          ("uid",), "cluster_node"),
    _spec("poolwatch_cluster_node_status", "gauge", "",
          "1 for the node's current status, 0 for every other status (cluster_node, "
          "Node.status).", ("status",), "cluster_node"),
    _spec("poolwatch_cluster_node_unschedulable", "gauge", "",
          "1 if the node is cordoned (cluster_node, Node.unschedulable).", (), "cluster_node"),
    _spec("poolwatch_cluster_node_condition", "gauge", "",
          "1 for the condition's current status (true, false, unknown), 0 for the others "
          "(cluster_node, Node.conditions).", ("condition", "status"), "cluster_node"),
    _spec("poolwatch_cluster_node_taint", "gauge", "",
          "A taint on the node, value 1 (cluster_node, Node.taints).",
          ("key", "value", "effect"), "cluster_node"),
    _spec("poolwatch_cluster_node_fault_info", "info", "",
          "The ModelArts fault isolation code of an isolated node (A050101, ...), value 1 "
          "(cluster_node, Node.fault_code).", ("code",), "cluster_node"),
    _spec("poolwatch_cluster_node_accelerators_capacity", "gauge", "",
          "Accelerators the node reports (cluster_node, Node.capacity).", ("resource",),
          "cluster_node"),
    _spec("poolwatch_cluster_node_accelerators_allocatable", "gauge", "",
          "Accelerators the scheduler may hand out on the node (cluster_node, "
          "Node.allocatable).", ("resource",), "cluster_node"),
    _spec("poolwatch_cluster_node_accelerators_allocated", "gauge", "",
          "Accelerators requested by pending or running pods bound to the node (cluster_node, "
          "Pod.requests).", ("resource",), "cluster_node"),
]

JOB = [
    _spec("poolwatch_training_job_info", "info", "",
          "A training job, value 1; job_type is its kind (PyTorchJob, vcjob, ...) "
          "(cluster_job, TrainingJob).",
          (*_JOB, "uid", "job_type", "owner", "queue", "priority", "accelerator_resource"),
          "cluster_job"),
    _spec("poolwatch_training_job_status", "gauge", "",
          "1 for the job's current status, 0 for every other status (cluster_job, "
          "TrainingJob.status).", (*_JOB, "status"), "cluster_job"),
    _spec("poolwatch_training_job_created_timestamp_seconds", "gauge", "seconds",
          "Unix time the job was submitted (cluster_job, TrainingJob.created).", _JOB,
          "cluster_job"),
    _spec("poolwatch_training_job_start_timestamp_seconds", "gauge", "seconds",
          "Unix time the job started running; absent before (cluster_job, "
          "TrainingJob.started).", _JOB, "cluster_job"),
    _spec("poolwatch_training_job_completion_timestamp_seconds", "gauge", "seconds",
          "Unix time the job ended; absent while it runs. Duration: completion (or time()) "
          "minus start (cluster_job, TrainingJob.finished).", _JOB, "cluster_job"),
    _spec("poolwatch_training_job_accelerators_requested", "gauge", "",
          "Accelerators the job requests over all its workers (cluster_job, "
          "TrainingJob.accelerators_requested).", (*_JOB, "resource"), "cluster_job"),
    _spec("poolwatch_training_job_workers", "gauge", "",
          "Workers (pods) the job asks for (cluster_job, TrainingJob.workers).", _JOB,
          "cluster_job"),
    _spec("poolwatch_training_job_restarts_total", "counter", "",
          "Times the job was restarted (cluster_job, TrainingJob.restarts).", _JOB,
          "cluster_job"),
    _spec("poolwatch_cluster_accelerator_allocated_seconds_total", "counter", "seconds",
          "Accelerator-seconds held by running jobs, by owner and queue (virtual cluster), "
          "since the exporter started; increase() over 30d / 3600 is the past month's booked "
          "hours (cluster_job, TrainingJob.accelerators_requested while Running).",
          ("owner", "queue", "resource"), "cluster_job"),
]

QUOTA = [
    _spec("poolwatch_quota_max", "gauge", "",
          "Upper limit of a resource in a quota or virtual cluster, in cores, bytes or devices "
          "(cluster_quota, Quota.hard).", ("namespace", "quota", "kind", "resource"),
          "cluster_quota"),
    _spec("poolwatch_quota_min", "gauge", "",
          "Guaranteed amount of a resource in a quota or virtual cluster (cluster_quota, "
          "Quota.min).", ("namespace", "quota", "kind", "resource"), "cluster_quota"),
    _spec("poolwatch_quota_used", "gauge", "",
          "Amount of a resource in use in a quota or virtual cluster (cluster_quota, "
          "Quota.used).", ("namespace", "quota", "kind", "resource"), "cluster_quota"),
]

EVENT = [
    _spec("poolwatch_cluster_events_total", "counter", "",
          "Pool, node and job events by reason and type (Normal, Warning); PoolStatusChange "
          "and PoolResourcesStatusChange derived from pool and node changes in ModelArts' event "
          "format (cluster_event, Event).", ("kind", "reason", "type"), "cluster_event"),
]

RUNNER = [
    _spec("poolwatch_cluster_up", "gauge", "",
          "1 while the backend is reachable and its initial list is done; at 0 no object "
          "series are served (cluster_runner, ClusterBackend.healthy).", (), "cluster_runner"),
    _spec("poolwatch_cluster_last_sync_timestamp_seconds", "gauge", "seconds",
          "Unix time the last full list of the backend completed (cluster_runner, "
          "WatchEvent SYNCED).", (), "cluster_runner"),
    _spec("poolwatch_cluster_watch_events_total", "counter", "",
          "Watch events applied, by object kind and event type (cluster_runner, "
          "ClusterBackend.watch).", ("kind", "type"), "cluster_runner"),
    _spec("poolwatch_cluster_watch_restarts_total", "counter", "",
          "Times the watch stream ended or failed and was started again (cluster_runner, "
          "ClusterBackend.watch).", (), "cluster_runner"),
    _spec("poolwatch_cluster_objects_skipped_total", "counter", "",
          "Object versions left out because of missing or odd fields, by kind and reason, by "
          "the exporter or by the backend itself (cluster_runner, ClusterBackend.watch and "
          "its skipped counts).", ("kind", "reason"), "cluster_runner"),
]

# fmt: on

CLUSTER_SPECS: list[MetricSpec] = [*POOL, *NODE, *JOB, *QUOTA, *EVENT, *RUNNER]
