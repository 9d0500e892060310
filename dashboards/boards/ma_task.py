"""ModelArts task view: every training job of the pool, linked to its task detail view."""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, Col, table, timeseries
from ..queries import JOB_KEY, job_info

UID = "poolwatch-ma-task"
J = 'namespace=~"$namespace"'
C = f'pool=~"$pool", vendor="$accel", {J}'
DETAIL = ('/d/poolwatch-ma-task-detail?var-accel=${accel}&var-pool=${pool}'
          '&var-namespace=${__data.fields["Namespace"]}&var-job=${__data.fields["Task"]}'
          '&${__url_time_range}')  # fmt: skip


def _of_jobs(expr: str) -> str:
    return f"({expr}) and on ({JOB_KEY}) {job_info(J)}"


def _columns() -> list[Col]:
    return [
        Col("Namespace", label="namespace"),
        Col("Task", f"{job_info(J, 'owner, job_type, priority')}", label="training_job",
            link=DETAIL),
        Col("User", label="owner"),
        Col("Type", label="job_type"),
        Col("Priority", label="priority"),
        Col("Status", _of_jobs(f'max by ({JOB_KEY}, status) (poolwatch_training_job_status'
                               f'{{pool=~"$pool", {J}}} == 1)'), label="status"),
        Col("Workers", _of_jobs(f'max by ({JOB_KEY}) (poolwatch_training_job_workers'
                                f'{{pool=~"$pool", {J}}})')),
        Col(f"{ACCEL}s", _of_jobs(f"sum by ({JOB_KEY}) (poolwatch_training_job_accelerators_"
                                  f'requested{{pool=~"$pool", {J}}})')),
        Col("Restarts", _of_jobs(f'max by ({JOB_KEY}) (poolwatch_training_job_restarts_total'
                                 f'{{pool=~"$pool", {J}}})')),
        Col(f"{ACCEL} Utilization",
            f"avg by ({JOB_KEY}) (poolwatch_container_accelerator_utilization_ratio{{{C}}})",
            unit="percentunit", decimals=1),
    ]  # fmt: skip


def build() -> Dashboard:
    states = (f'sum by (status) (poolwatch_training_job_status{{pool=~"$pool", {J}}} * on '
              f"({JOB_KEY}) group_left () {job_info(J)})")  # fmt: skip
    return board(
        UID, "poolwatch / ModelArts / Task",
        "Every training job of the pool; a task name opens its task detail view "
        "(ModelArts task view).",
        ["modelarts"],
        [accel_var(), pool_var(),
         query_var("namespace", 'label_values(poolwatch_training_job_info{pool=~"$pool"}, '
                   "namespace)", "Namespace")],
        [
            (10, [(table("Tasks", _columns(), "One row per training job."), 24)]),
            (8, [(timeseries("Tasks by status", [(states, "{{status}}")], "none"), 24)]),
        ],
        links=[link("Resource pool", "poolwatch-ma-pool"), link("User view", "poolwatch-ma-user"),
               link("Task detail", "poolwatch-ma-task-detail")],
        refresh="15m",
    )  # fmt: skip
