"""Apulis "Team Virtual Cluster Status" [004:L653-L671]: devices of each virtual cluster.

A virtual cluster (VC) is a Volcano queue (poolwatch_quota_* with kind="Queue"). The seed gives no
formula for Available and Unschedulable; here Available is what the VC may still take and the
pool can still give: min(VC limit - used, idle devices of that resource), and Unschedulable is
the rest of the VC's unused limit, the devices it may claim but no schedulable node has free.
"Preemptible Used" is left out: the cluster model has no preemptible flag on jobs.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, query_var
from ..panels import Col, table

UID = "poolwatch-apulis-vc"
Q = 'kind="Queue", quota=~"$vc", resource=~".*$accel.*"'
BY = "quota, resource"
LIMIT = f"max by ({BY}) (poolwatch_quota_max{{{Q}}})"
USED = f"max by ({BY}) (poolwatch_quota_used{{{Q}}})"
IDLE = 'sum by (resource) (poolwatch_pool_accelerators_idle{resource=~".*$accel.*"})'
FREE = f"clamp_min({LIMIT} - {USED}, 0)"
AVAILABLE = f"(({FREE} < on (resource) group_left () {IDLE}) or on ({BY}) ({FREE} * 0 + on (resource) group_left () {IDLE}))"  # noqa: E501
ACTIVE = ('label_replace(count by (queue, accelerator_resource) (poolwatch_training_job_info'
          '{queue=~"$vc", accelerator_resource=~".*$accel.*"} and on (namespace, training_job) '
          '(poolwatch_training_job_status{status="Running"} == 1)), "quota", "$1", "queue", '
          '"(.+)")')  # fmt: skip


def _columns() -> list[Col]:
    return [
        Col("Name", label="quota"),
        Col("Device Type", label="resource"),
        Col("Number of Device", LIMIT),
        Col("Unschedulable", f"clamp_min({FREE} - {AVAILABLE}, 0)"),
        Col("Used", USED),
        Col("Available", AVAILABLE),
        Col(
            "Active Jobs",
            f'max by ({BY}) (label_replace({ACTIVE}, "resource", "$1", "accelerator_resource", '
            f'"(.+)")) or {LIMIT} * 0',
        ),
    ]


def build() -> Dashboard:
    return board(
        UID, "poolwatch / Apulis / Team virtual cluster status",
        "Devices of each virtual cluster (Volcano queue): limit, used, available, unschedulable "
        "and running jobs (Apulis Cluster Status, first tab).",
        ["apulis"],
        [accel_var(),
         query_var("vc", 'label_values(poolwatch_quota_max{kind="Queue"}, quota)',
                   "Virtual cluster")],
        [(9, [(table("Team Virtual Cluster Status", _columns(),
                     "One row per virtual cluster and device type."), 24)])],
        links=[link("Team VC User Status", "poolwatch-apulis-vc-users"),
               link("Physical Cluster Node Status", "poolwatch-apulis-nodes")],
    )  # fmt: skip
