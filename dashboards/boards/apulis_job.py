"""Apulis job details "METRICS" tab [004:L630]: a job's CPU, memory, network, block I/O, GPU, GPU
memory, NPU utilisation and NPU memory.

The seed names GPU and NPU panels separately; here each pair is one panel builder and the
`accel` variable picks the device kind, so "GPU Usage" and "NPU Utilization" are the same panel.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, timeseries

UID = "poolwatch-apulis-job"
J = 'pool=~"$pool", namespace=~"$namespace", training_job=~"$job"'
C = f'{J}, vendor="$accel"'
POD = "{{pod}}"
RATE = "[$__rate_interval]"


def _rate(metric: str, legend: str) -> tuple[str, str]:
    return (f"sum by (pod) (rate({metric}{{{J}}}{RATE}))", legend)


def build() -> Dashboard:
    return board(
        UID, "poolwatch / Apulis / Job metrics",
        "One job's resource use per pod (Apulis job details, METRICS tab).",
        ["apulis"],
        [accel_var(), pool_var(),
         query_var("namespace", 'label_values(poolwatch_training_job_info{pool=~"$pool"}, '
                   "namespace)", "Namespace", multi=False),
         query_var("job", 'label_values(poolwatch_training_job_info{pool=~"$pool", '
                   'namespace=~"$namespace"}, training_job)', "Job", multi=False)],
        [
            (8, [
                (timeseries("CPU", [(f"sum by (pod) (poolwatch_container_cpu_used_cores{{{J}}})",
                                     POD)], "none",
                            description="CPUs busy (cores)."), 12),
                (timeseries("Memory Usage",
                            [(f"sum by (pod) (poolwatch_container_memory_used_bytes{{{J}}})",
                              POD)], "bytes"), 12),
            ]),
            (8, [
                (timeseries("Network", [
                    _rate("poolwatch_container_network_receive_bytes_total", "{{pod}} in"),
                    _rate("poolwatch_container_network_transmit_bytes_total", "{{pod}} out"),
                ], "Bps"), 12),
                (timeseries("Block IO", [
                    _rate("poolwatch_container_disk_read_bytes_total", "{{pod}} read"),
                    _rate("poolwatch_container_disk_written_bytes_total", "{{pod}} write"),
                ], "Bps"), 12),
            ]),
            (8, [
                (timeseries(f"{ACCEL} Usage",
                            [(f"avg by (pod) (poolwatch_container_accelerator_utilization_ratio{{{C}}})",  # noqa: E501
                              POD)], "percentunit", rule="PoolwatchContainerAcceleratorBusy",
                            max_value=1,
                            description="Apulis: GPU Usage / NPU Utilization."), 12),
                (timeseries(f"{ACCEL} Memory Usage",
                            [(f"sum by (pod) (poolwatch_container_accelerator_memory_used_bytes{{{C}}})",  # noqa: E501
                              POD)], "bytes",
                            description="Apulis: GPU Memory Usage / NPU Memory."), 12),
            ]),
        ],
        links=[link("Physical Cluster Node Status", "poolwatch-apulis-nodes"),
               link("Task detail", "poolwatch-ma-task-detail")],
    )  # fmt: skip
