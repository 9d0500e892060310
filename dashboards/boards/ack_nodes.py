"""ACK "Nodes" (节点监控大盘) [002:L64-L95]: the node details table and per-device panels.

Filters as the seed names them: `gpu_node` and `GPU` (the device index) [002:L93]. "GPU Mode"
is exclusive or shared [002:L75]: shared when a device of the node is held by more than one pod.
"Role" is worker, or HA spare for the pool's redundant nodes (device pools have no control-plane
nodes); "IP" is the node exporter's scrape address (queries.node_ip).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, DEV, RES, Col, range_text, table, timeseries, value_text
from ..queries import devices_held, node_ip

UID = "poolwatch-ack-nodes"
N = 'node=~"$gpu_node"'
D = f'{DEV}, {N}, index=~"$GPU"'
R = f"{RES}, {N}"


def _details() -> list[Col]:
    dev = f"{DEV}, {N}"
    return [
        Col("Name", label="node"),
        Col("IP", node_ip().replace(f"{{{DEV}}}", f"{{{dev}}}"), label="ip"),
        Col("Role", f'max by (node) (poolwatch_cluster_node_status{{pool=~"$pool", {N}, '
            'status="Spare"})', mappings=(value_text((0, "worker", "text"),
                                                     (1, "HA spare", "blue")),)),
        Col("Status", f'max by (node, status) (poolwatch_cluster_node_status{{pool=~"$pool", {N}}} '
            "== 1)", label="status"),
        Col("GPU Mode", f"max by (node) (poolwatch_accelerator_owners{{{dev}}})",
            mappings=(range_text(None, 1, "exclusive", "text"),
                      range_text(1.5, None, "shared", "orange"))),
        Col("Total GPUs", f"sum by (node) (poolwatch_cluster_node_accelerators_capacity{{{R}}})"),
        Col("Total GPU Memory", f"sum by (node) (poolwatch_accelerator_memory_total_bytes{{{dev}}})",  # noqa: E501
            unit="bytes"),
        Col("Allocated GPUs",
            f"sum by (node) (poolwatch_cluster_node_accelerators_allocated{{{R}}})"),
        Col("Allocated GPU Memory",
            devices_held("poolwatch_accelerator_memory_total_bytes", "node").replace(
                f"{{{DEV}}}", f"{{{dev}}}"), unit="bytes"),
        Col("Used GPU Memory", f"sum by (node) (poolwatch_accelerator_memory_used_bytes{{{dev}}})",
            unit="bytes"),
        Col("GPU Utilization", f"avg by (node) (poolwatch_accelerator_utilization_ratio{{{dev}}})",
            unit="percentunit", decimals=1),
    ]  # fmt: skip


def build() -> Dashboard:
    per_dev = "{{node}} #{{index}}"
    return board(
        UID, "poolwatch / ACK / Nodes",
        "Per node and per device: cards, memory, allocation, utilisation (ACK Nodes dashboard). "
        "Column titles follow ACK's GPU dashboard; with Device type NPU they describe NPUs.",
        ["ack"],
        [accel_var(), pool_var(),
         query_var("gpu_node", f"label_values(poolwatch_accelerator_info{{{DEV}}}, node)",
                   "gpu_node"),
         query_var("GPU", f'label_values(poolwatch_accelerator_info{{{DEV}, {N}}}, index)',
                   "GPU")],
        [
            (10, [(table(f"{ACCEL} Node Details", _details(),
                         "One row per node of the chosen device kind."), 24)]),
            (8, [
                (timeseries(f"{ACCEL} Duty Cycle",
                            [(f"poolwatch_accelerator_utilization_ratio{{{D}}}", per_dev)],
                            "percentunit", max_value=1), 12),
                (timeseries(f"{ACCEL} Memory Usage",
                            [(f"poolwatch_accelerator_memory_used_bytes{{{D}}}", per_dev)],
                            "bytes"), 12),
            ]),
            (8, [
                (timeseries(f"{ACCEL} Memory Usage Percentage",
                            [(f"poolwatch_accelerator_memory_used_ratio{{{D}}}", per_dev)],
                            "percentunit", rule="PoolwatchAcceleratorMemoryHigh",
                            max_value=1), 12),
                (timeseries(f"Allocated {ACCEL}s Per Node",
                            [(f"sum by (node) (poolwatch_cluster_node_accelerators_allocated{{{R}}})",  # noqa: E501
                              "{{node}}")], "none"), 12),
            ]),
            (8, [
                (timeseries(f"{ACCEL} Number Per Node",
                            [(f"sum by (node) (poolwatch_cluster_node_accelerators_capacity{{{R}}})",  # noqa: E501
                              "{{node}}")], "none"), 12),
                (timeseries(f"Total {ACCEL} Memory Per Node",
                            [(f"sum by (node) (poolwatch_accelerator_memory_total_bytes"
                              f"{{{DEV}, {N}}})", "{{node}}")], "bytes"), 12),
            ]),
        ],
        links=[link("Cluster", "poolwatch-ack-cluster"),
               link("TrainingJobs", "poolwatch-ack-training-jobs")],
    )  # fmt: skip
