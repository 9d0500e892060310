"""Pools and their nodes: list, query, create, delete, list nodes, delete nodes in batches.

Reads come from the cluster interface; every change is a call to the controller facade, whose
outcome (done, already, deferred, refused, dry-run, failed) the answer carries. A refusal is a
409 in the one error shape with the controller's reason, so "the last node of a pool cannot be
deleted" or "it runs jobs" reach the caller in words.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from poolwatch.cluster.model import Node, Pool, PoolStatus
from poolwatch.core.actions import ActionResult

from . import selectors
from .errors import ApiError
from .schemas import MAX_CREATE_NODES, CreatePool, DeleteNodes
from .views import (
    DEFAULT_WORKSPACE,
    LABEL_NAME,
    NAME_MAX,
    NAME_PATTERN,
    PAGE_DEFAULT,
    PAGE_MAX,
    PHASE,
    check_pool_name,
    decode_continue,
    encode_continue,
    node_doc,
    pool_doc,
    pool_labels,
    workspace_of,
)

if TYPE_CHECKING:
    from .app import Context

FLAVOR_LABELS = ("node.kubernetes.io/instance-type", "nvidia.com/gpu.product", "accelerator")
#: the path parameter, checked by FastAPI against the seed's name rule (a 400 PW.0101)
PoolName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=NAME_MAX)]
Status = Literal["", "created", "failed", "creating"]


def find_pool(ctx: Context, name: str) -> Pool:
    check_pool_name(name)
    pool = next((p for p in ctx.backend.pools() if p.name == name), None)
    if pool is None:
        raise ApiError(404, "PW.0102", f"pool_name: no pool {name!r}", "pool_name")
    return pool


def active_pods(ctx: Context) -> Counter[str]:
    return Counter(p.node for p in ctx.backend.pods() if p.phase in ("Pending", "Running"))


def outcome(result: ActionResult, what: str) -> dict[str, str]:
    """The controller's answer; refused and failed become errors."""
    if result.outcome == "refused":
        raise ApiError(409, "PW.0201", f"{what} refused: {result.detail}")
    if result.outcome == "failed":
        raise ApiError(502, "PW.0201", f"{what} failed: {result.detail}")
    return {"outcome": result.outcome, "detail": result.detail}


def add_routes(api: APIRouter, ctx: Context) -> None:
    @api.get("/pools", summary="List resource pools (ModelArts action 9)")
    def list_pools(
        workspaceId: Annotated[str, Query(max_length=64)] = DEFAULT_WORKSPACE,
        labelSelector: Annotated[str, Query(max_length=1024)] = "",
        status: Annotated[Status, Query(description="created, failed, creating; blank: the "
                                        "valid ones (created and creating)")] = "",
    ) -> dict[str, Any]:  # fmt: skip
        match = selectors.parse(labelSelector)
        wanted = {status} if status else {"created", "creating"}
        nodes = ctx.backend.nodes()
        items = [
            pool_doc(p, nodes, ctx.controller.pool_activity(p.name))
            for p in sorted(ctx.backend.pools(), key=lambda p: p.name)
            if workspace_of(p) == workspaceId and PHASE.get(p.status, "created") in wanted
            and match(pool_labels(p))
        ]  # fmt: skip
        return {"apiVersion": "v2", "kind": "PoolList", "items": items}

    @api.get("/pools/{pool_name}", summary="Query a resource pool (ModelArts action 7)")
    def get_pool(pool_name: PoolName) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        return pool_doc(pool, ctx.backend.nodes(), ctx.controller.pool_activity(pool.name))

    @api.post("/pools", status_code=201, summary="Create a resource pool (ModelArts action 8)")
    def create_pool(body: CreatePool) -> dict[str, Any]:
        pool, chosen = _plan_pool(ctx, body)
        digest = hashlib.sha256(",".join(chosen).encode()).hexdigest()[:12]
        result = ctx.controller.create_pool(pool, chosen, key=f"api:create:{pool.name}:{digest}")
        answer = outcome(result, f"creating pool {pool.name}")
        current = next((p for p in ctx.backend.pools() if p.name == pool.name), pool)
        doc = pool_doc(current, ctx.backend.nodes(), ctx.controller.pool_activity(pool.name))
        return doc | {"result": answer, "nodes": chosen}

    @api.delete("/pools/{pool_name}", summary="Delete a resource pool (ModelArts action 6)")
    def delete_pool(pool_name: PoolName) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        result = ctx.controller.delete_pool(pool.name, key=f"api:delete:{pool.name}:{pool.uid}")
        return {"pool": pool.name, "result": outcome(result, f"deleting pool {pool.name}")}

    @api.get("/pools/{pool_name}/nodes", summary="List a pool's nodes (ModelArts action 2)")
    def list_nodes(
        pool_name: PoolName,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
        continue_: Annotated[str, Query(alias="continue", max_length=512)] = "",
    ) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        after = decode_continue(continue_) if continue_ else ""
        mine = sorted((n for n in ctx.backend.nodes() if n.pool == pool.name),
                      key=lambda n: n.name)  # fmt: skip
        rest = [n for n in mine if n.name > after]
        page, more = rest[:limit], len(rest) > limit
        busy = active_pods(ctx)
        return {
            "kind": "NodeList",
            "metadata": {"continue": encode_continue(page[-1].name) if more else "",
                         "remainingItemCount": len(rest) - len(page)},
            "items": [node_doc(n, busy[n.name]) for n in page],
        }  # fmt: skip

    @api.post("/pools/{pool_name}/nodes/batch-delete",
              summary="Delete (release) nodes in batches (ModelArts action 1)")  # fmt: skip
    def delete_nodes(pool_name: PoolName, body: DeleteNodes) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        mine = {n.name: n for n in ctx.backend.nodes() if n.pool == pool.name}
        seen: set[str] = set()
        for i, name in enumerate(body.deleteNodeNames):
            where = f"deleteNodeNames[{i}]"
            if name in seen:
                raise ApiError(400, "PW.0100", f"{where}: {name!r} is named twice", where)
            if name not in mine:
                raise ApiError(400, "PW.0105", f"{where}: pool {pool.name} has no node "
                               f"{name[:80]!r}", where)  # fmt: skip
            seen.add(name)
        if len(seen) >= len(mine):
            raise ApiError(409, "PW.0201", "deleteNodeNames: the last node of a pool cannot be "
                           "deleted; delete the pool instead", "deleteNodeNames")  # fmt: skip
        results = []
        for name in body.deleteNodeNames:
            key = f"api:release:{pool.name}:{name}:{mine[name].uid}"
            res = ctx.controller.release(pool.name, name, "deleted through the pool API", key)
            results.append({"name": name, "outcome": res.outcome, "detail": res.detail})
        return {"pool": pool.name, "results": results}


def _flavor(node: Node) -> str:
    labels = dict(node.labels)
    return next((labels[k] for k in FLAVOR_LABELS if labels.get(k)), "")


def _plan_pool(ctx: Context, body: CreatePool) -> tuple[Pool, list[str]]:
    """Validate the body against the cluster and choose the nodes: free ones (in no pool) of
    each flavor that match its selector, by name, so the same request picks the same nodes."""
    where = f'metadata.labels["{LABEL_NAME}"]'
    name = check_pool_name(body.metadata.labels.name, where)  # the model checked it too
    if any(p.name == name for p in ctx.backend.pools()):
        raise ApiError(409, "PW.0103", f"{where}: a pool named {name!r} exists", where)
    total = sum(r.count for r in body.spec.resources)
    if total > MAX_CREATE_NODES:
        raise ApiError(400, "PW.0100", f"spec.resources: {total} nodes in one request; at most "
                       f"{MAX_CREATE_NODES}", "spec.resources")  # fmt: skip
    free = sorted((n for n in ctx.backend.nodes() if not n.pool), key=lambda n: n.name)
    chosen: list[str] = []
    spares = 0
    for i, res in enumerate(body.spec.resources):
        if res.haSpares >= res.count:
            at = f"spec.resources[{i}].haSpares"
            raise ApiError(400, "PW.0100", f"{at}: must be less than count ({res.count})", at)
        match = selectors.parse(res.nodeSelector, f"spec.resources[{i}].nodeSelector")
        fits = [n.name for n in free if _flavor(n) == res.flavor and match(dict(n.labels))
                and n.name not in chosen]  # fmt: skip
        if len(fits) < res.count:
            at = f"spec.resources[{i}].count"
            raise ApiError(409, "PW.0104", f"{at}: {res.count} nodes of flavor {res.flavor!r} "
                           f"wanted, {len(fits)} free nodes match", at)  # fmt: skip
        chosen += fits[: res.count]
        spares += res.haSpares
    nodes = {n.name: n for n in free}
    resource = next((r for n in chosen for r, _ in nodes[n].allocatable
                     if r.startswith(("nvidia.com/", "huawei.com/"))), "")  # fmt: skip
    driver = body.spec.driver
    version = (driver.gpuVersion or driver.npuVersion or "") if driver else ""
    pool = Pool(
        name=name, uid="", status=PoolStatus.CREATING, flavor=body.spec.resources[0].flavor,
        accelerator_resource=resource, ha_spares=spares, job_types=tuple(body.spec.scope),
        driver_version=version, workspace=body.metadata.labels.workspace,
        created=ctx.clock(),
    )  # fmt: skip
    return pool, chosen
