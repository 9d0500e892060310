"""Apulis "Physical Cluster Node Status" [004:L718-L746]: devices and pods of every node.

Available is allocatable minus allocated on a schedulable node, 0 on a cordoned one. Status shows
a check mark for an Available node and the status name otherwise. The Pods column counts the pods
holding devices on the node; the table below lists them as the seed's
`[<pod> : <user> (gpu #<n>)]` cells do. "Preemptible Used" is left out: the cluster model has no
preemptible flag on jobs.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from ..board import accel_var, board, link, pool_var
from ..panels import RES, Col, table
from ..queries import node_ip

UID = "poolwatch-apulis-nodes"
BY = "node"
A = "poolwatch_accelerator_allocation_info"
AVAILABLE_TICK = {
    "type": "value",
    "options": {"Available": {"text": "✓", "color": "green", "index": 0}},
}
ALLOC = f'{A}{{pool=~"$pool", resource=~".*$accel.*"}}'


def _nodes() -> list[Col]:
    cap = f"sum by ({BY}, resource) (poolwatch_cluster_node_accelerators_allocatable{{{RES}}})"
    used = f"sum by ({BY}) (poolwatch_cluster_node_accelerators_allocated{{{RES}}})"
    cordoned = f'max by ({BY}) (poolwatch_cluster_node_unschedulable{{pool=~"$pool"}})'
    pods = f"count by ({BY}) (count by ({BY}, pod) ({ALLOC}))"
    return [
        Col("Node Name", label="node"),
        Col("Node IP", node_ip(), label="ip"),
        Col("Device Type", cap, label="resource"),
        Col("Number of Device", f"sum by ({BY}) (poolwatch_cluster_node_accelerators_capacity{{{RES}}})"),  # noqa: E501
        Col("Used", used),
        Col("Available", f"(sum by ({BY}) ({cap}) - {used}) * on ({BY}) (1 - {cordoned})"),
        Col("Status", f'max by ({BY}, status) (poolwatch_cluster_node_status{{pool=~"$pool"}} == 1)',  # noqa: E501
            label="status", mappings=(AVAILABLE_TICK,)),
        Col("Pods", f"({pods}) or (sum by ({BY}) (poolwatch_cluster_node_accelerators_allocatable{{{RES}}}) * 0)"),  # noqa: E501
    ]  # fmt: skip


def _pods() -> list[Col]:
    by = "node, pod, namespace, training_job"
    owner = ("max by (namespace, training_job, owner) (poolwatch_training_job_info"
             '{pool=~"$pool"})')  # fmt: skip
    return [
        Col("Node Name", label="node"),
        Col("Pod", f"count by ({by}) ({ALLOC}) * on (namespace, training_job) group_left (owner) "
            f"{owner}", label="pod"),
        Col("Namespace", label="namespace"),
        Col("User", label="owner"),
        Col("Devices", f"count by ({by}) ({ALLOC})"),
    ]  # fmt: skip


def build() -> Dashboard:
    return board(
        UID, "poolwatch / Apulis / Physical cluster node status",
        "Per node: devices, used, available, status and the pods holding devices (Apulis Cluster "
        "Status, fourth tab).",
        ["apulis"], [accel_var(), pool_var()],
        [
            (10, [(table("Physical Cluster Node Status", _nodes(),
                         "One row per node of the chosen device kind."), 24)]),
            (8, [(table("Pods on nodes", _pods(), "Pods holding devices, per node."), 24)]),
        ],
        links=[link("Team Virtual Cluster Status", "poolwatch-apulis-vc"),
               link("Job metrics", "poolwatch-apulis-job")],
    )  # fmt: skip
