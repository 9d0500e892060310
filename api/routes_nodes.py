"""An operator's node controls and a pool's job list: return an isolated node to service, enable
or disable HA redundancy on a node, list the training jobs of a pool.

Every change goes through the controller facade, which applies its rules (a node must be
Available and without work to become an HA redundant node; a node being replaced is not
restored), records the outcome under an idempotency key and writes the audit record. A refusal
is a 409 with the controller's reason, as for the pool operations.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from poolwatch.cluster.model import Node, NodeStatus, TrainingJob

from .errors import ApiError
from .routes_pools import PoolName, find_pool, outcome
from .views import PageQuery, _iso, page_query, paginate

if TYPE_CHECKING:
    from .app import Context

NodeName = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[a-z0-9][a-z0-9.-]*$")]


class Restore(BaseModel):
    """Why the node may serve again (kept in the audit record and the node's event)."""

    reason: str = Field(min_length=1, max_length=512, description="what was fixed")


class HaRedundancy(BaseModel):
    enabled: bool = Field(description="true: Enable HA Redundancy; false: Disable HA Redundancy")


def job_doc(job: TrainingJob) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "metadata": {"name": job.name, "namespace": job.namespace, "uid": job.uid,
                     "creationTimestamp": _iso(job.created) if job.created else None},
        "spec": {"pool": job.pool, "owner": job.owner, "queue": job.queue,
                 "priority": job.priority, "acceleratorResource": job.accelerator_resource,
                 "accelerators": job.accelerators_requested, "workers": job.workers},
        "status": {"phase": job.status.value, "restarts": job.restarts,
                   "startTime": _iso(job.started) if job.started else None,
                   "completionTime": _iso(job.finished) if job.finished else None},
    }  # fmt: skip


def _key(what: str, node: Node) -> str:
    """One request, one key: the same node can be isolated and restored, or made a spare and
    back, many times, so no key derived from its state would stay unique. A repeated request is
    harmless all the same: restoring a node in service and enabling HA redundancy on a spare
    answer `already`."""
    return f"api:{what}:{node.name}:{node.uid}:{time.time_ns()}"


def _node_in(ctx: Context, pool: str, name: str) -> Node:
    node = next((n for n in ctx.backend.nodes() if n.name == name), None)
    if node is None or node.pool != pool:
        raise ApiError(404, "PW.0105", f"node_name: pool {pool} has no node {name[:80]!r}",
                       "node_name")  # fmt: skip
    return node


def add_routes(api: APIRouter, ctx: Context) -> None:
    @api.get("/pools/{pool_name}/jobs", summary="List the training jobs of a pool")
    def list_jobs(
        pool_name: PoolName, page: Annotated[PageQuery, Depends(page_query)]
    ) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        jobs = ctx.controller.pool_jobs(pool.name, "pool API")
        return paginate("JobList", jobs, lambda j: f"{j.namespace}/{j.name}", page, job_doc)

    @api.post("/pools/{pool_name}/nodes/{node_name}/restore",
              summary="Return an isolated node to service")  # fmt: skip
    def restore(pool_name: PoolName, node_name: NodeName, body: Restore) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        node = _node_in(ctx, pool.name, node_name)
        if node.status is NodeStatus.AVAILABLE and not node.fault_code:
            detail = f"node {node.name} is in service (Available)"
            return {"node": node.name, "result": {"outcome": "already", "detail": detail}}
        key = _key("restore", node)
        result = ctx.controller.restore(node.name, body.reason, key)
        return {"node": node.name, "result": outcome(result, f"restoring node {node.name}")}

    @api.put("/pools/{pool_name}/nodes/{node_name}/ha-redundancy",
             summary="Enable or disable HA redundancy on a node")  # fmt: skip
    def ha_redundancy(
        pool_name: PoolName, node_name: NodeName, body: HaRedundancy
    ) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        node = _node_in(ctx, pool.name, node_name)
        key = _key(f"ha:{body.enabled}", node)
        result = ctx.controller.set_ha_redundancy(node.name, body.enabled, key)
        what = f"{'enabling' if body.enabled else 'disabling'} HA redundancy on {node.name}"
        return {"node": node.name, "result": outcome(result, what)}
