"""Real-time usage, pool statistics and pool monitoring (seed actions 3, 4 and 5).

Usage and monitoring are Prometheus queries (queries.py); statistics are counts over the
cluster interface, which is where pool and node statuses live. A Prometheus that does not
answer is a 502 naming it, never zeros: an empty figure and a failed query must look different.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query

from poolwatch.core import vocabulary

from . import timerange
from .errors import ApiError
from .prometheus import PrometheusError
from .queries import MONITOR, MONITOR_NAMES, USAGE, folded
from .routes_pools import PoolName, find_pool
from .views import DEFAULT_WORKSPACE, PHASE, workspace_of

if TYPE_CHECKING:
    from .app import Context


# Blank is the default, as the seed's connector leaves an optional parameter blank. The schema
# says what is valid; the parsers (timerange.py) say in words what is wrong.
TIME_RANGE = Query(
    max_length=64,
    description="startMillis.endMillis.durationMinutes; -1 derives one from the other two; "
    "blank: -1.-1.60",
    json_schema_extra={"pattern": r"^(|-?\d{1,16}\.-?\d{1,16}\.-?\d{1,16})$"},
)
STATISTICS = Query(
    max_length=32, description="blank: maximum",
    json_schema_extra={"enum": ["", *timerange.STATISTICS]},
)  # fmt: skip
PERIOD = Query(
    max_length=8, description="seconds; blank: 60",
    json_schema_extra={"enum": ["", *map(str, timerange.PERIODS)]},
)  # fmt: skip


def _prom_error(err: PrometheusError) -> ApiError:
    return ApiError(502, "PW.0301", f"Prometheus did not answer: {err}")


def add_routes(api: APIRouter, ctx: Context) -> None:
    @api.get("/metrics/runtime/pools", summary="Real-time resource usage per pool (action 3)")
    def usage() -> dict[str, Any]:
        at = ctx.clock()
        pools = sorted(p.name for p in ctx.backend.pools())
        items: dict[str, dict[str, dict[str, float | None]]] = {
            name: {group: dict.fromkeys(figures) for group, figures in USAGE.items()}
            for name in pools
        }
        try:
            for group, figures in USAGE.items():
                for figure, expr in figures.items():
                    for series in ctx.prometheus.query(expr, at):
                        pool = series.labels.get("pool", "")
                        if pool in items:
                            items[pool][group][figure] = series.points[0][1]
        except PrometheusError as err:
            raise _prom_error(err) from None
        return {"time": int(at * 1000), "items": [{"pool": n} | items[n] for n in pools]}

    @api.get("/statistics/pools", summary="Resource pool statistics (ModelArts action 4)")
    def statistics(
        workspaceId: Annotated[str, Query(max_length=64)] = DEFAULT_WORKSPACE,
    ) -> dict[str, Any]:
        every = ctx.backend.pools()
        pools = [p for p in every if workspace_of(p) == workspaceId]
        names = {p.name for p in pools}
        nodes = [n for n in ctx.backend.nodes() if n.pool in names]
        accelerators: Counter[str] = Counter()
        for n in nodes:
            for resource, amount in n.allocatable:
                if vocabulary.is_accelerator(resource):
                    accelerators[resource] += amount
        return {
            "workspaceId": workspaceId,
            "pools": {"total": len(pools),
                      "phases": _counts(PHASE.get(p.status, "created") for p in pools),
                      "statuses": _counts(p.status.value for p in pools)},
            "nodes": {"total": len(nodes), "statuses": _counts(n.status.value for n in nodes)},
            "accelerators": dict(sorted(accelerators.items())),
            "workspaces": _counts(workspace_of(p) for p in every),  # pools in each workspace
        }  # fmt: skip

    @api.get("/pools/{pool_name}/monitor", summary="Resource pool monitoring (ModelArts action 5)")
    def monitor(
        pool_name: PoolName,
        time_range: Annotated[str, TIME_RANGE] = "",
        statistics: Annotated[str, STATISTICS] = "",
        period: Annotated[str, PERIOD] = "",
        metrics: Annotated[str, Query(max_length=512, description="comma-separated subset of "
                                      + ", ".join(MONITOR_NAMES))] = "",
    ) -> dict[str, Any]:  # fmt: skip
        pool = find_pool(ctx, pool_name)
        step = timerange.parse_period(period)
        stat = timerange.parse_statistics(statistics)
        rng = timerange.resolve(time_range, step, int(ctx.clock() * 1000))
        wanted = [m.strip() for m in metrics.split(",") if m.strip()] or list(MONITOR_NAMES)
        for name in wanted:
            if name not in MONITOR_NAMES:
                raise ApiError(400, "PW.0100", f"metrics: unknown metric {name!r}; known: "
                               + ", ".join(MONITOR_NAMES), "metrics")  # fmt: skip
        # one point per period, stamped with the start of its window [t, t + period)
        first, last = rng.start_ms / 1000 + step, rng.end_ms / 1000
        out = []
        for q in (q for q in MONITOR if q.name in wanted):
            expr = folded(q, pool.name, stat, step, ctx.resolution)
            points: list[dict[str, float | int]] = []
            if first <= last:
                try:
                    series = ctx.prometheus.query_range(expr, first, last, step)
                except PrometheusError as err:
                    raise _prom_error(err) from None
                for s in series[:1]:  # the expression aggregates to one series
                    points = [{"timestamp": round((t - step) * 1000), "value": v}
                              for t, v in s.points]  # fmt: skip
            out.append({"name": q.name, "unit": q.unit, "query": expr, "datapoints": points})
        return {
            "pool": pool.name, "statistics": stat, "period": step,
            "timeRange": {"startMillis": rng.start_ms, "endMillis": rng.end_ms,
                          "durationMinutes": rng.duration_minutes},
            "metrics": out,
        }  # fmt: skip


def _counts(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
