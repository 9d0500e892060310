"""One error shape for every failure: `{"error_code", "error_msg", "parameter"}`.

ModelArts answers `{"error_code": "ModelArts.xxxx", "error_msg": ...}`; poolwatch keeps the two
field names (so a client written for one reads the other) and adds `parameter`, the query, path
or body field the caller has to fix ("" when the error is not about one). FastAPI's own 422
validation answers and Starlette's 404/405 are rewritten into the same shape, so a client never
has to parse two kinds of error.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

#: error codes, one per kind of failure; docs/api.md lists them
CODES = {
    "PW.0001": "authentication required or token wrong",
    "PW.0002": "no such route or method",
    "PW.0100": "a request parameter or body field is invalid",
    "PW.0101": "bad pool name",
    "PW.0102": "no such pool",
    "PW.0103": "a pool of that name exists",
    "PW.0104": "not enough free nodes match the flavor and selector",
    "PW.0105": "no such node in the pool",
    "PW.0106": "bad continue token",
    "PW.0107": "bad labelSelector",
    "PW.0201": "the controller refused the operation",
    "PW.0301": "Prometheus did not answer",
    "PW.0401": "bad time_range",
    "PW.0402": "bad period",
    "PW.0403": "bad statistics",
    "PW.0500": "internal error",
}


class ApiError(Exception):
    """Raised anywhere under a route; turned into the one error shape with `status`."""

    def __init__(self, status: int, code: str, message: str, parameter: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.parameter = status, code, message, parameter

    def body(self) -> dict[str, str]:
        return {"error_code": self.code, "error_msg": self.message, "parameter": self.parameter}


def error_response(err: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


#: the code for a validation error of these parameters (others: PW.0100)
FIELD_CODES = {
    "pool_name": "PW.0101", "time_range": "PW.0401", "period": "PW.0402",
    "statistics": "PW.0403", 'metadata.labels["os.modelarts/name"]': "PW.0101",
}  # fmt: skip


def _field(loc: tuple[Any, ...]) -> str:
    """FastAPI's error location ("query", "limit") or ("body", "spec", "resources", 0) as the
    name a caller knows: `limit`, `spec.resources[0]`, `metadata.labels["os.modelarts/name"]`."""
    parts = [p for p in loc if p not in ("query", "path", "body", "header")]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif "/" in str(p) or "." in str(p):
            out += f'["{p}"]'
        else:
            out += f".{p}" if out else str(p)
    return out


def _allowed(app: FastAPI, request: Request) -> str:
    """Every method some route serves at this path: Starlette's own 405 names only the first
    route that matched the path, and a path here often has a GET and a POST route."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Route every failure through the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return error_response(err, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        name = _field(tuple(first.get("loc", ())))
        msg = f"{name}: {first.get('msg', 'invalid')}" if name else str(first.get("msg"))
        return error_response(ApiError(400, FIELD_CODES.get(name, "PW.0100"), msg, name))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = "PW.0002" if err.status_code in (404, 405) else "PW.0100"
        headers = dict(err.headers or {})
        if err.status_code == 405:  # RFC 9110: a 405 lists what the path does allow
            headers["Allow"] = _allowed(app, request)
        return error_response(ApiError(err.status_code, code, str(err.detail)), headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception) -> JSONResponse:
        # the isolation boundary of a request: log with context, answer in the one shape
        log.exception("request failed", extra={"path": request.url.path})
        return error_response(ApiError(500, "PW.0500", f"internal error: {type(err).__name__}"))
