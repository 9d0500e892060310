"""Raw Kubernetes JSON -> the cluster model: nodes, pods, quotas, events, and pools from nodes.

Odd input is handled as k8s_read.py describes (skip and count, or drop the field and count).


| condition                                                      | NodeStatus  |
|----------------------------------------------------------------|-------------|
| `metadata.deletionTimestamp` set                               | Deleting    |
| label `poolwatch.io/status` = a NodeStatus other than Available | that status |
| taint `poolwatch.io/fault` (value: the fault code, e.g. A050101) | Isolated    |
| no `Ready` condition yet (registered, kubelet not reported)    | Creating    |
| `Ready` not "True", or `spec.unschedulable` (cordoned)         | Unavailable |
| otherwise                                                      | Available   |

`fault_code` is the value of the `poolwatch.io/fault` taint whenever it is present, so a node the
controller moves on to Replacing keeps its code. An unknown `poolwatch.io/status` value is counted
and ignored. The controller sets both markers through the write side (kubernetes.py).

Pools are the values of the pool label(s) on nodes (the first of `Context.pool_labels` a node
carries; a node with none belongs to no pool). A pool is Running while at least one of its nodes
is Available, else Abnormal; it disappears with its last node. Its flavor, accelerator resource
and driver version are the most common among its nodes; `ha_spares` counts its Spare nodes. Its
workspace and job types are the most common values of the labels `poolwatch.io/workspace` and
`poolwatch.io/job-types` ("Train.Infer") that the controller writes when it creates a pool; a
pool labelled by hand has none ("" and ()).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from poolwatch.cluster.kubernetes.read import (
    BATCH_JOB_LABELS,
    FAULT_TAINT,
    FLAVOR_LABELS,
    JOB_TYPES_LABEL,
    KUBEFLOW_JOB_LABEL,
    POOL_API_VERSION,
    STATUS_LABEL,
    VOLCANO_JOB_LABEL,
    WORKSPACE_LABEL,
    Context,
    Note,
    as_dict,
    as_int,
    as_list,
    as_str,
    derived_uid,
    dig,
    first_label,
    identity,
    is_accelerator,
    pairs,
    pod_requests,
    quantities,
    str_map,
    timestamp,
)
from poolwatch.cluster.model import Event, Node, NodeStatus, Pod, Pool, PoolStatus, Quota


# -- nodes and pools ---------------------------------------------------------------------------
def node_status(
    meta: Mapping[str, Any], labels: Mapping[str, str], spec: Any, status: Any, note: Note
) -> tuple[NodeStatus, str]:
    """(status, fault code) by the table in the module docstring."""
    taints = {as_str(dig(t, "key")): as_str(dig(t, "value")) for t in as_list(dig(spec, "taints"))}
    fault = taints.get(FAULT_TAINT, "")
    if meta.get("deletionTimestamp"):
        return NodeStatus.DELETING, fault
    marked = labels.get(STATUS_LABEL, "")
    if marked:
        try:
            if (mark := NodeStatus(marked)) is not NodeStatus.AVAILABLE:
                return mark, fault
        except ValueError:
            note(f"node: unknown {STATUS_LABEL} value", f"{meta.get('name')}: {marked!r}")
    if FAULT_TAINT in taints:
        return NodeStatus.ISOLATED, fault
    ready = [c for c in as_list(dig(status, "conditions")) if dig(c, "type") == "Ready"]
    if not ready:
        return NodeStatus.CREATING, fault
    if dig(ready[0], "status") != "True" or dig(spec, "unschedulable") is True:
        return NodeStatus.UNAVAILABLE, fault
    return NodeStatus.AVAILABLE, fault


def node_from(raw: Any, ctx: Context) -> Node:
    meta, name, _, uid = identity(raw, "node")
    labels = str_map(meta.get("labels"))
    spec, status = dig(raw, "spec"), dig(raw, "status")
    state, fault = node_status(meta, labels, spec, status, ctx.note)
    taints = tuple(
        (as_str(dig(t, "key")), as_str(dig(t, "value")), as_str(dig(t, "effect")))
        for t in as_list(dig(spec, "taints"))
    )
    conditions = tuple(
        (as_str(dig(c, "type")), as_str(dig(c, "status")))
        for c in as_list(dig(status, "conditions"))
    )
    return Node(
        name=name,
        uid=uid,
        pool=first_label(labels, ctx.pool_labels),
        status=state,
        labels=pairs(labels),
        taints=taints,
        conditions=conditions,
        unschedulable=dig(spec, "unschedulable") is True,
        capacity=pairs(quantities(dig(status, "capacity"), "node", ctx.note)),
        allocatable=pairs(quantities(dig(status, "allocatable"), "node", ctx.note)),
        fault_code=fault,
    )


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(v for v in values if v)
    return min(counts, key=lambda v: (-counts[v], v)) if counts else ""


def _driver_version(labels: Mapping[str, str]) -> str:
    """NVIDIA GPU feature discovery's driver labels (full version, else major.minor.rev)."""
    if full := labels.get("nvidia.com/cuda.driver-version.full"):
        return full
    parts = [labels.get(f"nvidia.com/cuda.driver.{p}", "") for p in ("major", "minor", "rev")]
    return ".".join(p for p in parts if p) if parts[0] else ""


def pool_from(name: str, members: Iterable[tuple[Node, float]]) -> Pool | None:
    """The pool `name` from its nodes (node, creation time); None when it has none."""
    nodes = list(members)
    if not nodes:
        return None
    statuses = Counter(n.status for n, _ in nodes)
    labels = [dict(n.labels) for n, _ in nodes]
    accelerators = [r for n, _ in nodes for r, q in n.allocatable if is_accelerator(r) and q > 0]
    created = [t for _, t in nodes if t > 0]
    return Pool(
        name=name,
        uid=derived_uid("pool", name),
        status=PoolStatus.RUNNING if statuses[NodeStatus.AVAILABLE] else PoolStatus.ABNORMAL,
        flavor=_most_common(first_label(ls, FLAVOR_LABELS) for ls in labels),
        accelerator_resource=_most_common(accelerators),
        ha_spares=statuses[NodeStatus.SPARE],
        driver_version=_most_common(_driver_version(ls) for ls in labels),
        workspace=_most_common(ls.get(WORKSPACE_LABEL, "") for ls in labels),
        job_types=tuple(
            t for t in _most_common(ls.get(JOB_TYPES_LABEL, "") for ls in labels).split(".") if t
        ),
        created=min(created, default=0.0),
    )


# -- pods ----------------------------------------------------------------------------------------
def pod_job(labels: Mapping[str, str], ctx: Context) -> str:
    """The training job a pod belongs to: the controllers' labels, then the configured one."""
    keys = (KUBEFLOW_JOB_LABEL, VOLCANO_JOB_LABEL, ctx.job_label, *BATCH_JOB_LABELS)
    return first_label(labels, keys)


def pod_from(raw: Any, ctx: Context) -> Pod:
    meta, name, namespace, uid = identity(raw, "pod")
    labels = str_map(meta.get("labels"))
    spec = dig(raw, "spec")
    return Pod(
        name=name,
        namespace=namespace,
        uid=uid,
        node=as_str(dig(spec, "nodeName")),
        phase=as_str(dig(raw, "status", "phase")) or "Unknown",
        job=pod_job(labels, ctx),
        requests=pairs(pod_requests(spec, "pod", ctx.note)),
        labels=pairs(labels),
    )


# -- quotas --------------------------------------------------------------------------------------
def resource_quota_from(raw: Any, ctx: Context) -> list[Quota]:
    _, name, namespace, _ = identity(raw, "resourcequota")
    hard = dig(raw, "status", "hard") or dig(raw, "spec", "hard")  # status: what is enforced
    return [
        Quota(
            name=name,
            namespace=namespace,
            kind="ResourceQuota",
            hard=pairs(quantities(hard, "resourcequota", ctx.note)),
            used=pairs(quantities(dig(raw, "status", "used"), "resourcequota", ctx.note)),
        )
    ]


def elastic_quota_from(raw: Any, ctx: Context) -> list[Quota]:
    """scheduler-plugins' namespaced ElasticQuota (scheduling.sigs.k8s.io/v1alpha1)."""
    _, name, namespace, _ = identity(raw, "elasticquota")
    q = ctx.note
    return [
        Quota(
            name=name,
            namespace=namespace,
            kind="ElasticQuota",
            hard=pairs(quantities(dig(raw, "spec", "max"), "elasticquota", q)),
            min=pairs(quantities(dig(raw, "spec", "min"), "elasticquota", q)),
            used=pairs(quantities(dig(raw, "status", "used"), "elasticquota", q)),
        )
    ]


def elastic_quota_tree_from(raw: Any, ctx: Context) -> list[Quota]:
    """ACK's ElasticQuotaTree (scheduling.sigs.k8s.io/v1beta1): one quota per tree node, named
    by the node's `name` (unique in a tree), cluster-wide (namespace ""); the tree has no usage."""
    identity(raw, "elasticquotatree")
    out: list[Quota] = []
    pending = [(dig(raw, "spec", "root"), 0)]
    while pending:
        node, depth = pending.pop()
        name = as_str(dig(node, "name"))
        if not name or depth > 32:
            ctx.note("elasticquotatree: node without name", repr(node)[:80])
            continue
        out.append(
            Quota(
                name=name,
                namespace="",
                kind="ElasticQuota",
                hard=pairs(quantities(dig(node, "max"), "elasticquotatree", ctx.note)),
                min=pairs(quantities(dig(node, "min"), "elasticquotatree", ctx.note)),
            )
        )
        pending.extend((child, depth + 1) for child in reversed(as_list(dig(node, "children"))))
    return out


def queue_from(raw: Any, ctx: Context) -> list[Quota]:
    """A Volcano queue (scheduling.volcano.sh/v1beta1): capability is the ceiling, guarantee
    the floor, status.allocated (Volcano 1.9+) what its jobs hold."""
    _, name, _, _ = identity(raw, "queue")
    q = ctx.note
    return [
        Quota(
            name=name,
            namespace="",
            kind="Queue",
            hard=pairs(quantities(dig(raw, "spec", "capability"), "queue", q)),
            min=pairs(quantities(dig(raw, "spec", "guarantee", "resource"), "queue", q)),
            used=pairs(quantities(dig(raw, "status", "allocated"), "queue", q)),
        )
    ]


# -- events ----------------------------------------------------------------------------------------
JOB_EVENT_KINDS = {
    ("kubeflow.org", "PyTorchJob"),
    ("kubeflow.org", "TFJob"),
    ("kubeflow.org", "MPIJob"),
    ("batch.volcano.sh", "Job"),
    ("batch", "Job"),
    ("poolwatch.io", "TrainingJob"),  # poolwatch's own events about a plain-pod job
}


def event_from(raw: Any, ctx: Context) -> list[Event]:
    """A core/v1 Event about a node, a pool (poolwatch's own) or a training job; [] otherwise
    (pod and other events are not this model's, and are not counted as odd)."""
    meta, _, _, uid = identity(raw, "event")
    involved = as_dict(raw.get("involvedObject"))
    kind, name = as_str(involved.get("kind")), as_str(involved.get("name"))
    api_version = as_str(involved.get("apiVersion"))
    namespace = as_str(involved.get("namespace"))
    if kind == "Node":
        model_kind, pool = "Node", ctx.pool_of_node(name)
    elif kind == "Pool" and api_version == POOL_API_VERSION:
        model_kind, pool = "Pool", name
    elif (api_version.split("/")[0] if "/" in api_version else "", kind) in JOB_EVENT_KINDS:
        model_kind, pool = "Job", ctx.pool_of_job(namespace, name)
    else:
        return []
    when = (
        timestamp(raw.get("lastTimestamp"))
        or timestamp(raw.get("eventTime"))
        or timestamp(raw.get("firstTimestamp"))
        or timestamp(meta.get("creationTimestamp"))
        or 0.0
    )
    source = as_str(dig(raw, "source", "component")) or as_str(raw.get("reportingComponent"))
    extra = {"involved_kind": kind, "involved_api_version": api_version, "source": source}
    extra["count"] = str(as_int(raw.get("count"), 1))
    return [
        Event(
            uid=uid,
            kind=model_kind,
            name=name,
            reason=as_str(raw.get("reason")),
            type=as_str(raw.get("type")) or "Normal",
            message=as_str(raw.get("message")),
            time=when,
            pool=pool,
            namespace=namespace,
            extra=extra,
        )
    ]
