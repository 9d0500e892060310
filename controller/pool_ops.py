"""The pool operations an operator asks for through the facade (the pool API): take a node out
of its pool, create a pool of free nodes, delete a pool. Each returns an `ActionResult`; the
facade (`PoolController`) records it by key and audits it with the seed's operation names
(deleteClusterNode, CreatePoolV2, DeletePoolV2)."""

from __future__ import annotations

from poolwatch.cluster.model import NodeStatus, Pool
from poolwatch.core import vocabulary
from poolwatch.core.actions import ActionResult

from . import pools
from .context import Context
from .pools import STATUS_LABEL


def release(ctx: Context, pool: str, node: str, reason: str) -> ActionResult:
    nodes = ctx.nodes()
    found = nodes.get(node)
    if found is None:
        return ActionResult("refused", f"no node {node!r}")
    if found.pool != pool:
        return ActionResult("refused", f"node {node} is not in pool {pool}")
    if sum(n.pool == pool for n in nodes.values()) <= 1:
        return ActionResult("refused", f"node {node} is the only node of pool {pool}")
    busy = ctx.busy_nodes()
    if node in busy:
        return ActionResult("refused", f"node {node} runs jobs: {', '.join(busy[node])}")
    if any(node in (r.node, r.spare) for r in ctx.store.replacements(pool, True)):
        return ActionResult("refused", f"node {node} is in a replacement")
    ctx.backend.label_node(node, {STATUS_LABEL: None})
    ctx.backend.set_node_pool(node, None)
    return ActionResult("done", f"node {node} left pool {pool}: {reason}")


def create(ctx: Context, pool: Pool, names: list[str]) -> ActionResult:
    why = pools.check_pool_name(pool.name)
    if why is not None:
        return ActionResult("refused", why)
    if any(p.name == pool.name for p in ctx.backend.pools()):
        return ActionResult("refused", f"pool {pool.name} exists")
    for field, value in (("workspace", pool.workspace), ("job types", ".".join(pool.job_types))):
        why = pools.check_label_value(field, value)  # kept as node labels on Kubernetes
        if why is not None:
            return ActionResult("refused", why)
    if not names or len(set(names)) != len(names):
        return ActionResult("refused", "nodes: at least one node, each once")
    if not 0 <= pool.ha_spares < len(names):
        return ActionResult("refused", f"ha_spares: 0 to {len(names) - 1} for "
                                       f"{len(names)} nodes")  # fmt: skip
    known = ctx.nodes()
    for name in names:
        if name not in known:
            return ActionResult("refused", f"no node {name!r}")
        if known[name].pool:
            return ActionResult("refused", f"node {name} is in pool {known[name].pool}")
    ctx.backend.create_pool(pool, names)
    for name in names[len(names) - pool.ha_spares :]:
        ctx.backend.label_node(name, {STATUS_LABEL: NodeStatus.SPARE.value})
        ctx.backend.cordon(name, True)
    if not getattr(ctx.backend, "emits_pool_events", False):
        typ, text = vocabulary.start_creating()
        ctx.pool_event(pool.name, vocabulary.POOL_STATUS_CHANGE, typ, text)
    return ActionResult("done", f"pool {pool.name} created with {len(names)} nodes, "
                        f"{pool.ha_spares} of them HA spares")  # fmt: skip


def delete(ctx: Context, pool: str) -> ActionResult:
    if not any(p.name == pool for p in ctx.backend.pools()):
        return ActionResult("refused", f"no pool {pool!r}")
    members = [n for n in ctx.nodes().values() if n.pool == pool]
    busy = ctx.busy_nodes()
    running = sorted({j for n in members for j in busy.get(n.name, [])})
    if running:
        return ActionResult("refused", f"pool {pool} runs jobs: {', '.join(running)}")
    for r in ctx.store.replacements(pool, True):
        ctx.store.update_replacement(r.id, state="failed", finished_at=ctx.clock(),
                                     detail="pool deleted")  # fmt: skip
    for n in members:
        ctx.backend.label_node(n.name, {STATUS_LABEL: None})
        ctx.backend.set_node_pool(n.name, None)
    ctx.backend.delete_pool(pool)
    return ActionResult("done", f"pool {pool} deleted, {len(members)} nodes released")
