"""The PromQL behind real-time usage and pool monitoring, over poolwatch's own metrics.

Names come from the catalog (docs/metrics.md): node-exporter series carry `node` and `pool`
labels, the cluster exporter's pool series a `pool` label. The seed does not name the metrics
of "resource pool monitoring" (pool-api.md s3.5); these follow the console's Monitoring tab:
accelerator use and memory, CPU, memory, cache disk, and nodes available.

Monitoring folds each `period` with a subquery: `<stat>_over_time((EXPR)[<period>s:<res>])`,
evaluated once per period. The statistic is over the subquery's points inside the window
(`sampleCount` counts them); `res` is empty by default, so Prometheus uses its evaluation
interval, the same resolution its recording rules see.
"""

from __future__ import annotations

from dataclasses import dataclass

OVER_TIME = {
    "maximum": "max_over_time", "minimum": "min_over_time", "sum": "sum_over_time",
    "average": "avg_over_time", "sampleCount": "count_over_time",
}  # fmt: skip


@dataclass(frozen=True)
class Query:
    name: str
    unit: str
    template: str  # `{sel}` is replaced by the pool matcher, e.g. pool="gpu-a"

    def expr(self, pool: str) -> str:
        return self.template.replace("{sel}", f'pool="{_escape(pool)}"')


# real-time usage: one instant query per figure, `by (pool)` so one answer covers every pool
USAGE: dict[str, dict[str, str]] = {
    "accelerators": {
        "total": "sum by (pool) (poolwatch_pool_accelerators)",
        "allocated": "sum by (pool) (poolwatch_pool_accelerators_allocated)",
        "idle": "sum by (pool) (poolwatch_pool_accelerators_idle)",
        "utilization": "avg by (pool) (poolwatch_accelerator_utilization_ratio)",
        "memoryUsedBytes": "sum by (pool) (poolwatch_accelerator_memory_used_bytes)",
        "memoryTotalBytes": "sum by (pool) (poolwatch_accelerator_memory_total_bytes)",
    },
    "cpu": {
        "usedCores": "sum by (pool) (poolwatch_node_cpu_used_cores)",
        "totalCores": "sum by (pool) (poolwatch_node_cpu_cores)",
    },
    "memory": {
        "usedBytes": "sum by (pool) (poolwatch_node_memory_total_bytes"
        " - poolwatch_node_memory_available_bytes)",
        "totalBytes": "sum by (pool) (poolwatch_node_memory_total_bytes)",
    },
    "cache": {
        "maxUsedRatio": 'max by (pool) (poolwatch_filesystem_used_ratio{purpose="cache"})',
        "avgUsedRatio": 'avg by (pool) (poolwatch_filesystem_used_ratio{purpose="cache"})',
        "usedBytes": 'sum by (pool) (poolwatch_filesystem_used_bytes{purpose="cache"})',
        "sizeBytes": 'sum by (pool) (poolwatch_filesystem_size_bytes{purpose="cache"})',
    },
}

MONITOR: tuple[Query, ...] = (
    Query("accelerator_util", "ratio", "avg(poolwatch_accelerator_utilization_ratio{{sel}})"),
    Query("accelerator_memory_used", "bytes",
          "sum(poolwatch_accelerator_memory_used_bytes{{sel}})"),
    Query("accelerators_allocated", "devices",
          "sum(poolwatch_pool_accelerators_allocated{{sel}})"),
    Query("accelerators_idle", "devices", "sum(poolwatch_pool_accelerators_idle{{sel}})"),
    Query("cpu_used", "cores", "sum(poolwatch_node_cpu_used_cores{{sel}})"),
    Query("memory_used", "ratio", "1 - sum(poolwatch_node_memory_available_bytes{{sel}})"
          " / sum(poolwatch_node_memory_total_bytes{{sel}})"),
    Query("cache_used", "ratio",
          'max(poolwatch_filesystem_used_ratio{{sel},purpose="cache"})'),
    Query("nodes_available", "nodes", 'sum(poolwatch_pool_nodes{{sel},status="Available"})'),
)  # fmt: skip
MONITOR_NAMES = tuple(q.name for q in MONITOR)


def folded(q: Query, pool: str, statistic: str, period: int, resolution: str = "") -> str:
    """The expression one monitoring series is read with: `statistic` over each period."""
    return f"{OVER_TIME[statistic]}(({q.expr(pool)})[{period}s:{resolution}])"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
