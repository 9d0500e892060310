"""ModelArts user view: what each user runs, holds and books (the seed lists no panels)."""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var, query_var
from ..panels import ACCEL, Col, table, timeseries
from ..queries import job_info, running, with_job_labels

UID = "poolwatch-ma-user"
U = 'owner=~"$user"'
C = 'pool=~"$pool", vendor="$accel"'


def _held() -> str:
    requested = 'poolwatch_training_job_accelerators_requested{pool=~"$pool"}'
    return f"sum by (owner) ({with_job_labels(running(requested), 'owner', U)})"


def _columns() -> list[Col]:
    util = f"poolwatch_container_accelerator_utilization_ratio{{{C}}}"
    return [
        Col("User", label="owner"),
        Col("Jobs", f"count by (owner) ({job_info(U, 'owner')})"),
        Col("Running Jobs", f"count by (owner) ({running(job_info(U, 'owner'))}) "
            f"or count by (owner) ({job_info(U, 'owner')}) * 0"),
        Col(f"{ACCEL}s Held", f"({_held()}) or count by (owner) ({job_info(U, 'owner')}) * 0"),
        Col(f"Average {ACCEL} Utilization", f"avg by (owner) ({with_job_labels(util, 'owner', U)})",
            unit="percentunit", decimals=1),
    ]  # fmt: skip


def build() -> Dashboard:
    booked = (f'sum by (owner) (increase(poolwatch_cluster_accelerator_allocated_seconds_total'
              f'{{{U}, resource=~".*$accel.*"}}[$__range])) / 3600')  # fmt: skip
    return board(
        UID, "poolwatch / ModelArts / User",
        "Per user: jobs, devices held, utilisation and booked device-hours (ModelArts user view).",
        ["modelarts"],
        [accel_var(), pool_var(),
         query_var("user", 'label_values(poolwatch_training_job_info{pool=~"$pool"}, owner)',
                   "User")],
        [
            (8, [(table("Users", _columns(), "One row per user with jobs in the pool."), 24)]),
            (8, [
                (timeseries(f"{ACCEL}s held per user", [(_held(), "{{owner}}")], "none"), 12),
                (timeseries(f"Booked {ACCEL} hours in the time range", [(booked, "{{owner}}")],
                            "h"), 12),
            ]),
        ],
        links=[link("Resource pool", "poolwatch-ma-pool"), link("Task view", "poolwatch-ma-task")],
        refresh="15m",
    )  # fmt: skip
