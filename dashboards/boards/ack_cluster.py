"""ACK "Cluster" (集群监控大盘), the landing dashboard [002:L47-L62]: cluster-wide device summary.

"Unhealthy" is not defined by the seed; here a node is unhealthy when one of its devices is not
healthy or stopped answering its driver (the conditions of rules PoolwatchAcceleratorLost and
PoolwatchNpuUnhealthy).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var
from ..panels import ACCEL, DEV, RES, stat, timeseries

UID = "poolwatch-ack-cluster"
NODES = f"count(count by (node) (poolwatch_accelerator_info{{{DEV}}}))"
ALLOCATED_NODES = f"count(sum by (node) (poolwatch_cluster_node_accelerators_allocated{{{RES}}}) > 0) or vector(0)"  # noqa: E501
UNHEALTHY = (f"count(count by (node) (poolwatch_accelerator_healthy{{{DEV}}} == 0 or "
             f"poolwatch_accelerator_up{{{DEV}}} == 0)) or vector(0)")  # fmt: skip
MEM_USED = (f"sum(poolwatch_accelerator_memory_used_bytes{{{DEV}}}) / "
            f"sum(poolwatch_accelerator_memory_total_bytes{{{DEV}}})")  # fmt: skip
MEM_ALLOCATED = (f"(sum(poolwatch_accelerator_memory_total_bytes{{{DEV}}} and on (node, uuid) "
                 f"(poolwatch_accelerator_owners{{{DEV}}} > 0)) or vector(0)) / "
                 f"sum(poolwatch_accelerator_memory_total_bytes{{{DEV}}})")  # fmt: skip
UTIL = f"avg(poolwatch_accelerator_utilization_ratio{{{DEV}}})"
CARDS = (f"sum(poolwatch_cluster_node_accelerators_allocated{{{RES}}}) / "
         f"sum(poolwatch_cluster_node_accelerators_allocatable{{{RES}}})")  # fmt: skip
JOBS = (
    'sum by (status) (poolwatch_training_job_status{pool=~"$pool"} * on (pool, namespace, '
    "training_job) group_left () max by (pool, namespace, training_job) "
    '(poolwatch_training_job_info{pool=~"$pool", accelerator_resource=~".*$accel.*"}))'
)


def build() -> Dashboard:
    return board(
        UID, "poolwatch / ACK / Cluster",
        "Cluster-wide accelerator summary: nodes, health, memory, utilisation, allocation and "
        "training jobs by state (the ACK cloud-native AI dashboard's landing page).",
        ["ack"], [accel_var(), pool_var()],
        [
            (5, [
                (stat(f"{ACCEL} Summary Of Cluster",
                      [(NODES, "Total"), (ALLOCATED_NODES, "Allocated"), (UNHEALTHY, "Unhealthy")],
                      description=f"{ACCEL} nodes in total, with devices allocated, unhealthy."), 8),  # noqa: E501
                (stat(f"Total {ACCEL} Nodes", [(NODES, "nodes")]), 4),
                (stat(f"Unhealthy {ACCEL} Nodes", [(UNHEALTHY, "nodes")], red_from=1,
                      description="Nodes with a device that is not healthy or lost."), 4),
                (stat(f"{ACCEL} Memory(Used/Total)", [(MEM_USED, "used")], "percentunit",
                      rule="PoolwatchAcceleratorMemoryHigh"), 4),
                (stat(f"{ACCEL} Memory(Allocated/Total)", [(MEM_ALLOCATED, "allocated")],
                      "percentunit",
                      description="Memory of the devices some pod holds, over all memory."), 4),
            ]),
            (8, [
                (timeseries(f"{ACCEL} Utilization", [(UTIL, "average")], "percentunit",
                            description="Average utilisation of every device.", max_value=1), 12),
                (timeseries(f"{ACCEL}s(Allocated/Total)", [(CARDS, "allocated")], "percentunit",
                            description="Devices requested by pods over allocatable devices.",
                            max_value=1), 12),
            ]),
            (8, [
                (timeseries("Training Job Summary Of Cluster", [(JOBS, "{{status}}")], "none",
                            description="Training jobs of the chosen device kind in each state."),
                 24),
            ]),
        ],
        links=[link("Nodes", "poolwatch-ack-nodes")],
    )  # fmt: skip
