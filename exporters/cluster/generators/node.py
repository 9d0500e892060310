"""Node families: status as a state set, cordon, conditions, taints, isolation code, and the
node's accelerators (capacity, allocatable, allocated by bound pods). Rendered from
`aggregate.NodeView`, so a pod change re-renders only the node it is bound to.

Free nodes: a node that belongs to no pool (never put in one, or released by the pool API) is
normal, not bad input. It is exported like any node with `pool=""` (to Prometheus a missing
label: select free nodes with `{pool=""}`, count them with
`count(poolwatch_cluster_node_info{pool=""})`), so the cluster's capacity, a free node going
NotReady and what a new pool could be made of stay visible; it is neither logged nor counted
as skipped, and it adds to no pool's totals (`poolwatch_pool_*`, see aggregate.py)."""

from __future__ import annotations

from collections.abc import Iterable

from poolwatch.cluster.model import Node, NodeStatus

from ..aggregate import NodeView
from . import Sample, family, missing, odd_quantities, state_set

NODE_STATUSES = tuple(s.value for s in NodeStatus)
CONDITION_STATUSES = ("true", "false", "unknown")


def check(node: object) -> str | None:
    if not isinstance(node, Node):
        return "wrong_type"
    # a node outside any pool is a "free node" [000:L810]: exported with pool="", see above
    if not isinstance(node.pool, str):
        return "missing_pool"
    reason = missing(name=node.name, uid=node.uid)
    if reason:
        return reason
    if node.status not in NODE_STATUSES:
        return "unknown_status"
    return odd_quantities(node.capacity, node.allocatable)


def _id(v: NodeView) -> tuple[str, str]:
    return v.node.name, v.node.pool


def _conditions(v: NodeView) -> Iterable[Sample]:
    for condition, status in dict(v.node.conditions).items():  # one set per condition type
        current = status.lower() if status.lower() in CONDITION_STATUSES else "unknown"
        yield from state_set(current, CONDITION_STATUSES, (*_id(v), condition))


def _taints(v: NodeView) -> Iterable[Sample]:
    for key, value, effect in dict.fromkeys(v.node.taints):  # a repeated taint is one series
        yield (*_id(v), key, value, effect), 1.0


def _fault(v: NodeView) -> Iterable[Sample]:
    if v.node.fault_code:
        yield (*_id(v), v.node.fault_code), 1.0


def _resources(attr: str):
    def samples(v: NodeView) -> Iterable[Sample]:
        for resource, quantity in sorted(getattr(v, attr).items()):
            yield (*_id(v), resource), quantity

    return samples


def _allocated(v: NodeView) -> Iterable[Sample]:
    # every accelerator resource of the node, 0 included, so "free = allocatable - allocated"
    # needs no `or` in PromQL
    for resource in sorted(v.allocatable.keys() | v.allocated.keys()):
        yield (*_id(v), resource), v.allocated.get(resource, 0.0)


NODE = [
    family("poolwatch_cluster_node_info", lambda v: [((*_id(v), v.node.uid), 1.0)]),
    family(
        "poolwatch_cluster_node_status",
        lambda v: state_set(v.node.status, NODE_STATUSES, _id(v)),
    ),
    family(
        "poolwatch_cluster_node_unschedulable",
        lambda v: [(_id(v), 1.0 if v.node.unschedulable else 0.0)],
    ),
    family("poolwatch_cluster_node_condition", _conditions),
    family("poolwatch_cluster_node_taint", _taints),
    family("poolwatch_cluster_node_fault_info", _fault),
    family("poolwatch_cluster_node_accelerators_capacity", _resources("capacity")),
    family("poolwatch_cluster_node_accelerators_allocatable", _resources("allocatable")),
    family("poolwatch_cluster_node_accelerators_allocated", _allocated),
]
