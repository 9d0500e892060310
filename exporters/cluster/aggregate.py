"""Pool figures that need every node and pod of a pool, kept up to date incrementally.

Why incremental: a pool may hold 5,000 nodes and the cluster 500 pod changes a second; summing
a pool on every change (or on every scrape) would cost 2.5 M node visits a second. Instead each
node's contribution to its pool (status, allocatable, allocated, idle, fragments) is computed when
the node or a pod bound to it changes; the pool's totals subtract the old contribution and add the
new one. Accelerator counts are whole numbers in practice, so the float sums do not drift.

Definitions (the figures of `poolwatch_pool_*`, see `poolwatch/core/catalog/cluster.py`):
- allocated: requests of bound pods in phase Pending, Running or Unknown (they hold devices);
- schedulable: status Available and not cordoned; idle: allocatable minus allocated, there only;
- fragments for a task of k cards: idle mod min(k, allocatable) per schedulable node, summed.

A free node (in no pool, `Node.pool == ""`, e.g. after the pool API released it) has its node
view like any other but adds to no pool's totals: there is no `poolwatch_pool_*{pool=""}`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from poolwatch.cluster.model import Node, NodeStatus, Pod, Pool
from poolwatch.core import vocabulary

HOLDING_PHASES = frozenset({"Pending", "Running", "Unknown"})
POD_PHASES = frozenset({*HOLDING_PHASES, "Succeeded", "Failed"})


class ResourceFilter:
    """Which resource names are accelerators (fnmatch patterns, e.g. `huawei.com/Ascend*`; never
    one the vocabulary names as not an accelerator, such as a chip's memory)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._known: dict[str, bool] = {}

    def __call__(self, resource: str) -> bool:
        hit = self._known.get(resource)
        if hit is None:
            hit = vocabulary.is_accelerator(resource, self.patterns)
            if len(self._known) < 4096:
                self._known[resource] = hit
        return hit

    def pick(self, pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for resource, quantity in pairs:
            if self(resource):
                out[resource] = out.get(resource, 0.0) + quantity
        return out


@dataclass(frozen=True)
class NodeView:
    """What the node generators render: the node and the accelerators held on it."""

    node: Node
    capacity: dict[str, float]
    allocatable: dict[str, float]
    allocated: dict[str, float]


@dataclass(frozen=True)
class Contribution:
    """One node's share of its pool's totals."""

    status: str
    accelerators: dict[str, float]
    allocated: dict[str, float]
    idle: dict[str, float]
    fragments: dict[tuple[str, int], float]


@dataclass
class PoolTotals:
    """The figures of one pool, as the pool-total generators render them."""

    name: str
    task_cards: tuple[int, ...]
    nodes: Counter[str] = field(default_factory=Counter)
    accelerators: dict[str, float] = field(default_factory=dict)
    allocated: dict[str, float] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)
    fragments: dict[tuple[str, int], float] = field(default_factory=dict)
    node_resources: Counter[str] = field(default_factory=Counter)  # nodes offering a resource
    pool_resource: str = ""  # Pool.accelerator_resource, so an empty pool still shows it
    has_pool: bool = False

    def add(self, c: Contribution, sign: int) -> None:
        self.nodes[c.status] += sign
        for resource in c.accelerators.keys() | c.allocated.keys():
            self.node_resources[resource] += sign
        for target, part in (
            (self.accelerators, c.accelerators),
            (self.allocated, c.allocated),
            (self.idle, c.idle),
            (self.fragments, c.fragments),
        ):
            for key, quantity in part.items():
                target[key] = target.get(key, 0.0) + sign * quantity  # type: ignore[index]

    def resources(self) -> list[str]:
        names = {r for r, n in self.node_resources.items() if n > 0}
        if self.pool_resource:
            names.add(self.pool_resource)
        return sorted(names)

    def counts(self) -> tuple[int, ...]:
        """available/abnormal/creating/deleting, as PoolResourcesStatusChange reports them; which
        status counts in which is the core vocabulary's (as the controller's and the simulation's;
        Spare nodes count in none)."""
        return vocabulary.weighted_bucket_counts(self.nodes.items())

    def is_empty(self) -> bool:
        return not self.has_pool and sum(self.nodes.values()) == 0


def fragments(idle: float, allocatable: float, task_cards: int) -> float:
    """Idle cards of one node that a task of `task_cards` cards cannot use (see module doc)."""
    whole_idle, whole_alloc = math.floor(idle), math.floor(allocatable)
    if whole_alloc < 1:
        return 0.0
    return float(whole_idle % min(task_cards, whole_alloc))


class Aggregator:
    """Nodes and pods in, per-node views and per-pool totals out. Not thread-safe: the store
    calls it under its lock."""

    def __init__(self, task_cards: Iterable[int], accelerators: ResourceFilter) -> None:
        self.task_cards = tuple(sorted(set(task_cards)))
        self.wants = accelerators
        self.nodes: dict[str, Node] = {}  # by name: pods name their node
        self.contrib: dict[str, tuple[str, Contribution]] = {}  # name -> (pool, contribution)
        self.held: dict[str, dict[str, float]] = {}  # node name -> accelerators held by pods
        self.pods: dict[str, tuple[str, dict[str, float]]] = {}  # uid -> (node, accelerators)
        self.pools: dict[str, PoolTotals] = {}

    # -- changes ---------------------------------------------------------------------------------
    def set_pool(self, name: str, pool: Pool | None) -> set[str]:
        totals = self._totals(name)
        totals.has_pool = pool is not None
        totals.pool_resource = pool.accelerator_resource if pool is not None else ""
        if totals.is_empty():
            del self.pools[name]
        return {name}

    def set_node(self, name: str, node: Node | None, uid: str) -> set[str]:
        """Add, change or (node None) remove a node; returns the pools whose totals changed."""
        current = self.nodes.get(name)
        if node is None:
            if current is None or current.uid != uid:  # a newer node took the name already
                return set()
            del self.nodes[name]
        else:
            self.nodes[name] = node
        return self._refresh(name)

    def set_pod(self, uid: str, pod: Pod | None) -> tuple[set[str], set[str]]:
        """Add, change or remove a pod; returns (nodes, pools) whose figures changed."""
        before = self.pods.pop(uid, None)
        after: tuple[str, dict[str, float]] | None = None
        if pod is not None and pod.node and pod.phase in HOLDING_PHASES:
            wanted = self.wants.pick(pod.requests)
            if wanted:
                after = (pod.node, wanted)
                self.pods[uid] = after
        if before == after:
            return set(), set()
        touched: set[str] = set()
        for entry, sign in ((before, -1), (after, 1)):
            if entry is None:
                continue
            node, wanted = entry
            held = self.held.setdefault(node, {})
            for resource, quantity in wanted.items():
                held[resource] = held.get(resource, 0.0) + sign * quantity
                if abs(held[resource]) < 1e-9:
                    del held[resource]
            if not held:
                del self.held[node]
            touched.add(node)
        pools: set[str] = set()
        for node in touched:
            pools |= self._refresh(node)
        return touched, pools

    # -- reads -----------------------------------------------------------------------------------
    def view(self, name: str) -> NodeView | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        return NodeView(
            node,
            self.wants.pick(node.capacity),
            self.wants.pick(node.allocatable),
            dict(self.held.get(name, {})),
        )

    def totals(self, pool: str) -> PoolTotals | None:
        totals = self.pools.get(pool)
        return None if totals is None or totals.is_empty() else totals

    # -- internals -------------------------------------------------------------------------------
    def _totals(self, pool: str) -> PoolTotals:
        totals = self.pools.get(pool)
        if totals is None:
            totals = self.pools[pool] = PoolTotals(pool, self.task_cards)
        return totals

    def _refresh(self, name: str) -> set[str]:
        changed: set[str] = set()
        old = self.contrib.pop(name, None)
        if old is not None:
            self._totals(old[0]).add(old[1], -1)
            changed.add(old[0])
        node = self.nodes.get(name)
        if node is not None and node.pool:  # a free node is in no pool's totals
            new = self._contribution(node, self.held.get(name, {}))
            self.contrib[name] = (node.pool, new)
            self._totals(node.pool).add(new, 1)
            changed.add(node.pool)
        for pool in changed:
            if self.pools[pool].is_empty():
                del self.pools[pool]
        return changed

    def _contribution(self, node: Node, held: dict[str, float]) -> Contribution:
        accelerators = self.wants.pick(node.allocatable)
        schedulable = node.status == NodeStatus.AVAILABLE and not node.unschedulable
        idle: dict[str, float] = {}
        frags: dict[tuple[str, int], float] = {}
        if schedulable:
            for resource, alloc in accelerators.items():
                free = max(0.0, alloc - held.get(resource, 0.0))
                idle[resource] = free
                for k in self.task_cards:
                    frags[(resource, k)] = fragments(free, alloc, k)
        return Contribution(str(node.status), accelerators, dict(held), idle, frags)
