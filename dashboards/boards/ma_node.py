"""ModelArts node view: one node's host and device readings (the seed lists no panels)."""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, DEV, timeseries

UID = "poolwatch-ma-node"
N = 'pool=~"$pool", node=~"$node"'
D = f'{DEV}, node=~"$node"'
PER_DEV = "{{node}} #{{index}}"


def build() -> Dashboard:
    rate = "[$__rate_interval]"
    return board(
        UID, "poolwatch / ModelArts / Node",
        "One node: CPU, memory, network, disks and every device (ModelArts node view).",
        ["modelarts"],
        [accel_var(), pool_var(),
         query_var("node", f"label_values(poolwatch_accelerator_info{{{DEV}}}, node)", "Node")],
        [
            (8, [
                (timeseries("CPU usage", [(f"poolwatch_node_cpu_used_ratio{{{N}}}", "{{node}}")],
                            "percentunit", rule="PoolwatchNodeCpuHigh", max_value=1), 8),
                (timeseries("Memory usage",
                            [(f"poolwatch_node_memory_used_ratio{{{N}}}", "{{node}}")],
                            "percentunit", rule="PoolwatchNodeMemoryHigh", max_value=1), 8),
                (timeseries("Network",
                            [(f"sum by (node) (rate(poolwatch_node_network_receive_bytes_total{{{N}}}{rate}))", "{{node}} in"),  # noqa: E501
                             (f"sum by (node) (rate(poolwatch_node_network_transmit_bytes_total{{{N}}}{rate}))", "{{node}} out")],  # noqa: E501
                            "Bps"), 8),
            ]),
            (8, [
                (timeseries(f"{ACCEL} utilization",
                            [(f"poolwatch_accelerator_utilization_ratio{{{D}}}", PER_DEV)],
                            "percentunit", max_value=1), 8),
                (timeseries(f"{ACCEL} memory usage",
                            [(f"poolwatch_accelerator_memory_used_ratio{{{D}}}", PER_DEV)],
                            "percentunit", rule="PoolwatchAcceleratorMemoryHigh", max_value=1), 8),
                (timeseries(f"{ACCEL} temperature",
                            [(f"poolwatch_accelerator_temperature_celsius{{{D}}}", PER_DEV)],
                            "celsius"), 8),
            ]),
            (8, [
                (timeseries(f"{ACCEL} power", [(f"poolwatch_accelerator_power_watts{{{D}}}",
                                                PER_DEV)], "watt"), 8),
                (timeseries(f"{ACCEL} health",
                            [(f"poolwatch_accelerator_healthy{{{D}}}", PER_DEV)], "none",
                            max_value=1), 8),
                (timeseries("Disk usage",
                            [(f"poolwatch_filesystem_used_ratio{{{N}}}", "{{node}} {{purpose}}")],
                            "percentunit", rule="PoolwatchNodeCacheSpaceAlmostFull",
                            max_value=1), 8),
            ]),
        ],
        links=[link("Resource pool", "poolwatch-ma-pool"), link("Task view", "poolwatch-ma-task")],
        refresh="15m",
    )  # fmt: skip
