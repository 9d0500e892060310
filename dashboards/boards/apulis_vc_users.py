"""Apulis "Team VC User Status" [004:L673-L707]: users' devices now and over the past month.

Booked hours are the accelerator-seconds the user's running jobs held
(poolwatch_cluster_accelerator_allocated_seconds_total) over 30 days; idle hours the seconds the
user's devices were held at 0 % utilisation (poolwatch_container_accelerator_idle_seconds_total);
Idle % is floor(idle / booked x 100), empty ("-") when nothing was booked: the formula that
matches every sample of the seed (spec dashboards.md 4.4 b). The Total row sums the counts and
hours. `vc` All is the seed's "all users" switch. "Currently Allocated Preemptible" is left out:
the cluster model has no preemptible flag on jobs.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, query_var
from ..panels import Col, table
from ..queries import as_resource, job_info, running, with_job_labels

UID = "poolwatch-apulis-vc-users"
BY = "owner, resource"
JOB_LABELS = "owner, accelerator_resource"
VC = 'queue=~"$vc"'
WINDOW = "30d"


def _per_user(expr: str) -> str:
    """Sum a pod- or job-keyed expression per (owner, resource) of the job."""
    return f"sum by ({BY}) ({as_resource(with_job_labels(expr, JOB_LABELS, VC, pool=False))})"


def _booked() -> str:
    return (f"sum by ({BY}) (increase(poolwatch_cluster_accelerator_allocated_seconds_total"
            f'{{{VC}, resource=~".*$accel.*"}}[{WINDOW}])) / 3600')  # fmt: skip


def _idle_hours() -> str:
    idle = ('increase(poolwatch_container_accelerator_idle_seconds_total{vendor="$accel"}'
            f"[{WINDOW}])")  # fmt: skip
    return f"{_per_user(idle)} / 3600"


def _columns() -> list[Col]:
    users = f"sum by ({BY}) ({as_resource(job_info(VC, JOB_LABELS, pool=False))}) * 0"
    held = running("poolwatch_training_job_accelerators_requested", pool=False)
    idle_now = 'poolwatch_container_accelerator_utilization_ratio{vendor="$accel"} == bool 0'
    return [
        Col("Username", label="owner"),
        Col("Device Type", label="resource"),
        Col("Currently Allocated", f"({_per_user(held)}) or ({users})"),
        Col("Currently Idle", f"({_per_user(idle_now)}) or ({users})"),
        Col("Past Month Booked Hour", _booked(), decimals=0),
        Col("Past Month Idle Hour", _idle_hours(), decimals=0),
        Col(
            "Past Month Idle Hour %",
            f"floor(100 * ({_idle_hours()}) / (({_booked()}) > 0))",
            decimals=0,
            extra={"noValue": "-"},
        ),
    ]


def build() -> Dashboard:
    cols = _columns()
    return board(
        UID, "poolwatch / Apulis / Team VC user status",
        "Per user and device type: devices allocated and idle now, booked and idle hours over "
        "the past month (Apulis Cluster Status, second tab).",
        ["apulis"],
        [accel_var(),
         query_var("vc", 'label_values(poolwatch_quota_max{kind="Queue"}, quota)',
                   "Virtual cluster")],
        [(10, [(table("Team VC User Status", cols, "One row per user and device type.",
                      footer=("Currently Allocated", "Currently Idle", "Past Month Booked Hour",
                              "Past Month Idle Hour")), 24)])],
        links=[link("Team Virtual Cluster Status", "poolwatch-apulis-vc"),
               link("Physical Cluster Node Status", "poolwatch-apulis-nodes")],
    )  # fmt: skip
