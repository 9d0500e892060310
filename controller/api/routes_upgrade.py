"""Rolling driver upgrades through the API: start one, read its progress.

Starting returns 202 with the upgrade's first snapshot; the run continues in the background
(`UpgradeManager`) and `GET` shows each node's state. A refusal (the pool is replacing or
resetting nodes, has no GPU/NPU, is already upgrading) is a 409 with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from poolwatch.api.upgrade import UpgradePlan

from .errors import ApiError
from .routes_pools import PoolName, find_pool
from .schemas import UpgradeRequest

if TYPE_CHECKING:
    from .app import Context


def add_routes(api: APIRouter, ctx: Context) -> None:
    @api.post("/pools/{pool_name}/driver-upgrade", status_code=202,
              summary="Start a rolling driver upgrade")  # fmt: skip
    def start(pool_name: PoolName, body: UpgradeRequest) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        version = body.driver.gpuVersion or body.driver.npuVersion
        if not version or not version.strip():
            raise ApiError(400, "PW.0100", "driver.gpuVersion: required (or driver.npuVersion)",
                           "driver.gpuVersion")  # fmt: skip
        if body.batchPercent is not None and body.batchNodes is not None:
            raise ApiError(400, "PW.0100", "batchNodes: give batchPercent or batchNodes, "
                           "not both", "batchNodes")  # fmt: skip
        mode = "forcible" if body.driver.updateStrategy == "force" else "secure"
        plan = UpgradePlan(pool.name, version.strip(), mode, body.batchPercent, body.batchNodes,
                           body.waitTimeoutSeconds)  # fmt: skip
        upgrade, result = ctx.upgrades.start(plan)
        if result.outcome == "refused":
            raise ApiError(409, "PW.0201", f"driver upgrade refused: {result.detail}")
        return upgrade.snapshot()

    @api.get("/pools/{pool_name}/driver-upgrade", summary="The pool's latest driver upgrade")
    def status(pool_name: PoolName) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        upgrade = ctx.upgrades.get(pool.name)
        if upgrade is None:
            raise ApiError(404, "PW.0102", f"pool_name: pool {pool.name} has had no upgrade "
                           "through this server", "pool_name")  # fmt: skip
        return upgrade.snapshot()

    @api.delete("/pools/{pool_name}/driver-upgrade",
                summary="Abort the pool's upgrade (or recover one whose server died)")  # fmt: skip
    def abort(pool_name: PoolName) -> dict[str, Any]:
        pool = find_pool(ctx, pool_name)
        what, nodes = ctx.upgrades.abort(pool.name, "aborted through the pool API")
        if what == "none":
            raise ApiError(409, "PW.0201", f"pool_name: pool {pool.name} is not being upgraded",
                           "pool_name")  # fmt: skip
        return {"pool": pool.name, "result": what, "nodes": nodes}
