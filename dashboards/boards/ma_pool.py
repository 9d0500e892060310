"""ModelArts resource pool monitoring [001:L1250-L1264]: CPU, memory, devices, disk, fragments.

The seed's Table 3-2 prints "Used GPUs" as a memory percentage, which duplicates "Used GPU
memory"; here "Used GPUs" is the share of the pool's cards that pods hold. Disk capacity is in
bytes (the seed's GB/MB columns disagree with each other); Grafana scales the unit.
Fragments follow the catalog's definition (poolwatch_pool_accelerator_fragments): idle cards a
task of `task_cards` cards cannot use. The default refresh is 15 minutes, as the templates' is.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var
from ..panels import ACCEL, DEV, RES, Col, stat, table, timeseries

UID = "poolwatch-ma-pool"
P = 'pool=~"$pool"'
FRAG_BY = "pool, resource, task_cards"


def _fragments() -> list[Col]:
    frag = f"max by ({FRAG_BY}) (poolwatch_pool_accelerator_fragments{{{RES}}})"
    idle = (f"max by ({FRAG_BY}) (poolwatch_pool_accelerators_idle{{{RES}}} + on (pool, resource) "
            f"group_right () (0 * poolwatch_pool_accelerator_fragments{{{RES}}}))")  # fmt: skip
    return [
        Col("Resource Pool", label="pool"),
        Col("Task Cards", label="task_cards"),
        Col("Idle Cards", idle),
        Col("Fragments", frag),
    ]


def build() -> Dashboard:
    cpu = f"avg(poolwatch_node_cpu_used_ratio{{{P}}})"
    mem = f"avg(poolwatch_node_memory_used_ratio{{{P}}})"
    cards = (f"sum(poolwatch_pool_accelerators_allocated{{{RES}}}) / "
             f"sum(poolwatch_pool_accelerators{{{RES}}})")  # fmt: skip
    dev_mem = (f"sum(poolwatch_accelerator_memory_used_bytes{{{DEV}}}) / "
               f"sum(poolwatch_accelerator_memory_total_bytes{{{DEV}}})")  # fmt: skip
    return board(
        UID, "poolwatch / ModelArts / Resource pool",
        "A resource pool's monitoring tab: CPU, memory, devices, disk and fragments "
        "(ModelArts cluster view).",
        ["modelarts"], [accel_var(), pool_var()],
        [
            (5, [
                (stat("CPU usage", [(cpu, "")], "percentunit", rule="PoolwatchNodeCpuHigh"), 4),
                (stat("Memory usage", [(mem, "")], "percentunit", rule="PoolwatchNodeMemoryHigh"),
                 4),
                (stat(f"Used {ACCEL}s", [(cards, "")], "percentunit",
                      description="Cards held by pods over the pool's allocatable cards."), 4),
                (stat(f"Used {ACCEL} memory", [(dev_mem, "")], "percentunit",
                      rule="PoolwatchAcceleratorMemoryHigh"), 4),
                (stat("Nodes", [(f'sum by (status) (poolwatch_pool_nodes{{{P}}}) > 0',
                                 "{{status}}")]), 8),
            ]),
            (8, [
                (timeseries("CPU usage", [(f"poolwatch_node_cpu_used_ratio{{{P}}}", "{{node}}")],
                            "percentunit", rule="PoolwatchNodeCpuHigh", max_value=1), 12),
                (timeseries("Memory usage",
                            [(f"poolwatch_node_memory_used_ratio{{{P}}}", "{{node}}")],
                            "percentunit", rule="PoolwatchNodeMemoryHigh", max_value=1), 12),
            ]),
            (8, [
                (timeseries(f"Used {ACCEL}s", [(cards, "{{pool}}")], "percentunit",
                            max_value=1), 12),
                (timeseries(f"Used {ACCEL} memory",
                            [(f"poolwatch_accelerator_memory_used_ratio{{{DEV}}}",
                              "{{node}} #{{index}}")], "percentunit",
                            rule="PoolwatchAcceleratorMemoryHigh", max_value=1), 12),
            ]),
            (8, [
                (timeseries("Available Disk Capacity (GB)",
                            [(f"sum by (purpose) (poolwatch_filesystem_available_bytes{{{P}}})",
                              "{{purpose}}")], "bytes"), 8),
                (timeseries("Disk Capacity (GB)",
                            [(f"sum by (purpose) (poolwatch_filesystem_size_bytes{{{P}}})",
                              "{{purpose}}")], "bytes"), 8),
                (timeseries("Disk Usage",
                            [(f"max by (purpose) (poolwatch_filesystem_used_ratio{{{P}}})",
                              "{{purpose}} (fullest node)")], "percentunit",
                            rule="PoolwatchNodeCacheSpaceAlmostFull", max_value=1), 8),
            ]),
            (8, [(table(f"{ACCEL} Fragments", _fragments(),
                        "Idle cards that a task of the given size cannot use, now."), 24)]),
        ],
        links=[link("Node view", "poolwatch-ma-node"), link("User view", "poolwatch-ma-user"),
               link("Task view", "poolwatch-ma-task")],
        refresh="15m",
    )  # fmt: skip
