"""ModelArts task detail view: a job's "Resource Usages" [001:L21656-L21699].

The series the console toggles are cpuUsage, memUsage, gpuUtil/npuUtil and
gpuMemUsage/npuMemUsage; the compute node drop-down is the `pod` variable. The console shows at
most the last three days, so the default range is 3 days. The job list warns when worker-0's
average device usage is below 50 % [001:L21693]; the utilisation panel draws that line.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, timeseries

UID = "poolwatch-ma-task-detail"
J = 'pool=~"$pool", namespace=~"$namespace", training_job=~"$job", pod=~"$pod"'
C = f'{J}, vendor="$accel"'
POD = "{{pod}}"


def build() -> Dashboard:
    util = timeseries(
        f"{ACCEL} usage (gpuUtil, npuUtil)",
        [(f"avg by (pod) (poolwatch_container_accelerator_utilization_ratio{{{C}}})", POD)],
        "percentunit", max_value=1,
        description="Average over the pod's devices. Below 50 % on worker-0 the console warns.",
    )  # fmt: skip
    util.thresholds = [{"color": "red", "value": None}, {"color": "green", "value": 0.5}]
    util.thresholdsStyleMode = "line"
    return board(
        UID, "poolwatch / ModelArts / Task detail",
        "One training job's resource usage per compute node (pod): CPU, memory, device "
        "utilisation and device memory (ModelArts task details view).",
        ["modelarts"],
        [accel_var(), pool_var(),
         query_var("namespace", 'label_values(poolwatch_training_job_info{pool=~"$pool"}, '
                   "namespace)", "Namespace", multi=False),
         query_var("job", 'label_values(poolwatch_training_job_info{pool=~"$pool", '
                   'namespace=~"$namespace"}, training_job)', "Task", multi=False),
         query_var("pod", 'label_values(poolwatch_accelerator_allocation_info{pool=~"$pool", '
                   'namespace=~"$namespace", training_job=~"$job"}, pod)', "Compute node")],
        [
            (8, [
                (timeseries("CPU usage (cpuUsage)",
                            [(f"sum by (pod) (poolwatch_container_cpu_used_ratio{{{J}}})", POD)],
                            "percentunit", rule="PoolwatchContainerCpuHigh"), 12),
                (timeseries("Memory usage (memUsage)",
                            [(f"max by (pod) (poolwatch_container_memory_used_ratio{{{J}}})",
                              POD)], "percentunit", rule="PoolwatchContainerMemoryHigh",
                            max_value=1), 12),
            ]),
            (8, [
                (util, 12),
                (timeseries(f"{ACCEL} memory usage (gpuMemUsage, npuMemUsage)",
                            [(f"sum by (pod) (poolwatch_container_accelerator_memory_used_bytes{{{C}}}) / "  # noqa: E501
                              f"sum by (pod) (poolwatch_container_accelerator_memory_total_bytes{{{C}}})",  # noqa: E501
                              POD)], "percentunit",
                            rule="PoolwatchContainerAcceleratorMemoryHigh", max_value=1), 12),
            ]),
        ],
        links=[link("Task view", "poolwatch-ma-task"), link("Resource pool", "poolwatch-ma-pool")],
        refresh="15m", time_from="now-3d",
    )  # fmt: skip
