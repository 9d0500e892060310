"""The FastAPI app: `create_app(controller, backend, prometheus_url, token)`.

Routes follow the seed's nine actions (pool-api.md s2) under `/v2/{project_id}`, the ModelArts
v2 prefix; poolwatch serves one cluster, so `project_id` is accepted and ignored, and so is the
seed's `region_id` (the region is the server you call). Every route but `/healthz` and the
OpenAPI document needs `Authorization: Bearer <token>`. Handlers are plain `def`s: FastAPI runs
them in its thread pool, where the blocking Prometheus calls and the controller's writes belong.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from poolwatch.api.upgrade import UpgradeManager, UpgradeStep

from . import docs_ui, errors, routes_metrics, routes_nodes, routes_pools, routes_upgrade
from .errors import ApiError
from .ports import ClusterReader, PoolControl
from .prometheus import Prometheus

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error_code", "error_msg", "parameter"],
    "properties": {"error_code": {"type": "string"}, "error_msg": {"type": "string"},
                   "parameter": {"type": "string"}},
}  # fmt: skip
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for code, text in ((400, "a parameter is invalid (`parameter` names it)"),
                       (401, "no or wrong bearer token"), (404, "no such pool, node or route"),
                       (409, "refused: the pool or the controller's limits say no"),
                       (502, "Prometheus or the cluster did not answer"))
}  # fmt: skip
BEARER = HTTPBearer(auto_error=False, description="the token from --token-file")
ProjectId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="ignored")]


class Context:
    """What every route reads: the controller, the cluster, Prometheus, the clock."""

    def __init__(
        self,
        controller: PoolControl,
        backend: ClusterReader,
        prometheus: Prometheus,
        upgrades: UpgradeManager,
        clock: Callable[[], float],
        resolution: str,
    ) -> None:
        self.controller, self.backend, self.prometheus = controller, backend, prometheus
        self.upgrades, self.clock, self.resolution = upgrades, clock, resolution


def create_app(
    controller: PoolControl,
    backend: ClusterReader,
    prometheus_url: str,
    token: str,
    *,
    upgrade_step: UpgradeStep | None = None,
    upgrades: UpgradeManager | None = None,
    clock: Callable[[], float] = time.time,
    resolution: str = "",
) -> FastAPI:
    """`token` must be non-empty: the API changes pools, it is never open. `upgrade_step`
    installs a driver on one node (none: upgrades are refused); `upgrades` lets a caller (a
    test) drive upgrades itself; `resolution` is the monitoring subquery step
    ("" = Prometheus's evaluation interval)."""
    if not token:
        raise ValueError("token: the pool API needs a bearer token")
    if resolution and not resolution.rstrip("smh").isdigit():
        raise ValueError(f"resolution: expected a Prometheus duration like 15s, got {resolution!r}")
    manager = upgrades or UpgradeManager(controller, backend, upgrade_step, clock)
    ctx = Context(controller, backend, Prometheus(prometheus_url), manager, clock, resolution)
    app = FastAPI(
        title="poolwatch pool API",
        version="1",
        description="The resource-pool operations of ModelArts' connector over poolwatch "
        "(docs/api.md).",
        responses=ERRORS,
        docs_url=None,  # docs_ui serves Swagger UI from bundled files, not a CDN
        redoc_url=None,
    )
    errors.install(app)
    docs_ui.install(app)
    app.state.ctx = ctx

    def authorized(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if creds is None or creds.scheme.lower() != "bearer":
            raise ApiError(401, "PW.0001", "Authorization: Bearer <token> required")
        if not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise ApiError(401, "PW.0001", "bearer token not accepted")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """503 while the cluster backend cannot reach its source: every answer would be stale."""
        healthy = getattr(backend, "healthy", lambda: True)()
        return JSONResponse({"status": "ok" if healthy else "cluster backend unreachable"},
                            status_code=200 if healthy else 503)  # fmt: skip

    def project(project_id: ProjectId) -> None:
        """Declares the prefix's path parameter once, for every route (it is not used)."""

    api = APIRouter(prefix="/v2/{project_id}", dependencies=[Depends(authorized), Depends(project)])
    for module in (routes_metrics, routes_pools, routes_nodes, routes_upgrade):
        module.add_routes(api, ctx)
    app.include_router(api)
    app.router.add_event_handler("shutdown", manager.stop)
    return app
