"""ACK "TrainingJobs" (训练任务监控大盘) [002:L97-L121]: the jobs table and per-instance panels.

Filters as the seed names them: `job_namespace`, `job_type`, `job_name` [002:L119]. Device memory
and utilisation of a job come from the node exporter's pod-attributed device series
(poolwatch_container_accelerator_*), "Allocated GPU Memory" being the memory of the devices the
job holds. Duration runs from start to completion, or to now while the job runs.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, Col, table, timeseries

UID = "poolwatch-ack-training-jobs"
J = 'namespace=~"$job_namespace", training_job=~"$job_name"'
INFO = (f'poolwatch_training_job_info{{pool=~"$pool", {J}, job_type=~"$job_type", '
        'accelerator_resource=~".*$accel.*"}')  # fmt: skip
BY = "namespace, training_job"
C = f'pool=~"$pool", vendor="$accel", {J}'  # pod-attributed device series of the chosen jobs


def _of_jobs(expr: str) -> str:
    """Restrict a per-job expression to the jobs the filters select."""
    return f"({expr}) and on ({BY}) {INFO}"


def _columns() -> list[Col]:
    start = f'max by ({BY}) (poolwatch_training_job_start_timestamp_seconds{{pool=~"$pool", {J}}})'
    end = (
        f'max by ({BY}) (poolwatch_training_job_completion_timestamp_seconds{{pool=~"$pool", {J}}})'
    )
    return [
        Col("Namespace", label="namespace"),
        Col("Job Name", f"max by ({BY}, job_type) ({INFO})", label="training_job"),
        Col("Job Type", label="job_type"),
        Col("Job Status", _of_jobs(f'max by ({BY}, status) (poolwatch_training_job_status'
                                   f'{{pool=~"$pool", {J}}} == 1)'), label="status"),
        Col("Duration", _of_jobs(f"({end} or on ({BY}) ({start} * 0 + time())) - on ({BY}) {start}"),  # noqa: E501
            unit="s"),
        Col("Request GPUs", _of_jobs(f"sum by ({BY}) (poolwatch_training_job_accelerators_requested"
                                     f'{{pool=~"$pool", {J}}})')),
        Col("Allocated GPU Memory",
            f"sum by ({BY}) (poolwatch_container_accelerator_memory_total_bytes{{{C}}})",
            unit="bytes"),
        Col("Used GPU Memory",
            f"sum by ({BY}) (poolwatch_container_accelerator_memory_used_bytes{{{C}}})",
            unit="bytes"),
        Col("GPU Utilization",
            f"avg by ({BY}) (poolwatch_container_accelerator_utilization_ratio{{{C}}})",
            unit="percentunit", decimals=1),
    ]  # fmt: skip


def build() -> Dashboard:
    pod = "{{namespace}}/{{pod}}"
    return board(
        UID, "poolwatch / ACK / TrainingJobs",
        "Per training job: state, duration, requested devices, device memory and utilisation, "
        "and the same per instance (pod) of the job (ACK TrainingJobs dashboard).",
        ["ack"],
        [accel_var(), pool_var(),
         query_var("job_namespace",
                   'label_values(poolwatch_training_job_info{pool=~"$pool"}, namespace)',
                   "job_namespace"),
         query_var("job_type",
                   'label_values(poolwatch_training_job_info{pool=~"$pool", '
                   'namespace=~"$job_namespace"}, job_type)', "job_type"),
         query_var("job_name",
                   'label_values(poolwatch_training_job_info{pool=~"$pool", '
                   'namespace=~"$job_namespace", job_type=~"$job_type"}, training_job)',
                   "job_name")],
        [
            (10, [(table("Training Jobs", _columns(), "One row per training job."), 24)]),
            (8, [
                (timeseries(f"Job Instance Used {ACCEL} Memory",
                            [(f"sum by (namespace, pod) "
                              f"(poolwatch_container_accelerator_memory_used_bytes{{{C}}})", pod)],
                            "bytes"), 8),
                (timeseries(f"Job Instance Used {ACCEL} Memory Percentage",
                            [(f"sum by (namespace, pod) (poolwatch_container_accelerator_memory_used_bytes{{{C}}}) / "  # noqa: E501
                              f"sum by (namespace, pod) (poolwatch_container_accelerator_memory_total_bytes{{{C}}})",  # noqa: E501
                              pod)], "percentunit",
                            rule="PoolwatchContainerAcceleratorMemoryHigh", max_value=1), 8),
                (timeseries(f"Job Instance {ACCEL} Duty Cycle",
                            [(f"avg by (namespace, pod) "
                              f"(poolwatch_container_accelerator_utilization_ratio{{{C}}})", pod)],
                            "percentunit", rule="PoolwatchContainerAcceleratorBusy",
                            max_value=1), 8),
            ]),
        ],
        links=[link("Cluster", "poolwatch-ack-cluster"), link("Nodes", "poolwatch-ack-nodes"),
               link("Quota", "poolwatch-ack-quota")],
    )  # fmt: skip
