"""Pools as the controller sees them: the name rule, node roles, counts and the limits.

Pure functions over the cluster interface's snapshots (`poolwatch.cluster.Node`), so the
limits can be tested (and property-tested) without a backend.

Markers written onto Kubernetes objects (the seeds name none, statuses-and-events.md section 11;
the same keys as both backends): the node label `poolwatch.io/pool` (membership), the node label
`poolwatch.io/status` (Spare, Replacing, Repairing, Resetting, Rebooting) and the taint
`poolwatch.io/fault=<isolation code>:NoSchedule` plus a cordon for Isolated (FI-01..FI-25).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from poolwatch.cluster.model import Node, NodeStatus
from poolwatch.core import vocabulary
from poolwatch.core.vocabulary import (  # noqa: F401 - the controller's modules read them here
    FAULT_EFFECT,
    FAULT_TAINT,
    POOL_LABEL,
    STATUS_LABEL,
)

FLAVOR_LABELS = vocabulary.NODE_FLAVOR_LABELS
# the seed's rule for pool names; 63 characters, as any Kubernetes label value
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# a Kubernetes label value: a pool's workspace and job types are kept as node labels there, so
# they must be one on every backend (a pool moved between them keeps its settings)
_LABEL_VALUE = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

#: statuses that keep a node's capacity out of service (the breaker counts them)
OUT = frozenset(s for s in NodeStatus if s not in (NodeStatus.AVAILABLE, NodeStatus.SPARE))


def check_pool_name(name: str) -> str | None:
    """None when `name` is a valid pool name, else why not (the seed's rule: a lowercase letter
    first, then lowercase letters, digits and hyphens, not ending in a hyphen)."""
    if _NAME.match(name):
        return None
    return (
        f"pool name {name!r}: must start with a lowercase letter, hold only lowercase letters, "
        "digits and hyphens, not end with a hyphen, and be at most 63 characters"
    )


def check_label_value(field: str, value: str) -> str | None:
    """None when `value` is empty or a valid label value, else why not, naming `field`."""
    if not value or _LABEL_VALUE.match(value):
        return None
    why = "at most 63 letters, digits, '-', '_' or '.', a letter or digit at both ends"
    return f"{field} {value!r}: {why}"


def flavor_of(node: Node) -> str:
    labels = dict(node.labels)
    return next((labels[k] for k in FLAVOR_LABELS if labels.get(k)), "")


def fault_of(node: Node) -> str:
    """The isolation code on the node ('' when it carries no fault taint)."""
    return next((v for k, v, _ in node.taints if k == FAULT_TAINT), "")


def ready(node: Node) -> bool:
    return dict(node.conditions).get("Ready", "True") == "True"


def counts(nodes: Iterable[Node]) -> tuple[int, int, int, int]:
    """available/abnormal/creating/deleting, as PoolResourcesStatusChange reports them (the
    buckets are the vocabulary's, shared with the simulated pool and the cluster exporter)."""
    return vocabulary.bucket_counts(n.status for n in nodes)


def out_of_service(nodes: Iterable[Node]) -> int:
    return sum(n.status in OUT for n in nodes)


def allowed(ratio: float, total: int, floor: int) -> int:
    """How many of `total` nodes a ratio limit lets through: rounded down, at least `floor` so
    that a small pool (5 % of 8 nodes is 0.4) can still replace a node."""
    return max(floor, math.floor(ratio * total + 1e-9))
