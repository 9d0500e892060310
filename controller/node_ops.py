"""The node operations an operator asks for beside the pool operations: make a node an HA
redundant node (a Spare) or a normal node again, and list a pool's training jobs.

ModelArts' console offers "Enable HA Redundancy" for a node without any service (every GPU or
Ascend chip of it free) and "Disable HA Redundancy" for an HA redundant node, which is then
de-isolated and schedulable again. Here an HA redundant node is a Spare: the `poolwatch.io/status`
label `Spare` and a cordon, the same marker the controller's replacements take their spares
from. Each returns an `ActionResult`; the facade (`PoolController`) records it by key and audits
it under the console's operation name written as an audit trace (`enableHaRedundancy`,
`disableHaRedundancy`; listing a pool's jobs is audited as `listPoolJobs`).

Decisions where the console says no more:
- enabling is refused for a node that is not in a pool, that is not Available (an isolated,
  repairing, replacing, resetting or rebooting node is not "without any service" but faulty or
  busy), or that runs work (training jobs or pods holding accelerators; DaemonSet pods do not
  count, as for releasing a node);
- disabling is refused for a node that is not a Spare, and for a Spare a queued or running
  replacement has picked (taking it away would strand the replacement);
- a pool's jobs are the training jobs the cluster interface attributes to the pool, plus any job
  with a pod on one of the pool's nodes (a job whose pool label is missing still shows).
"""

from __future__ import annotations

from poolwatch.cluster.model import NodeStatus, TrainingJob
from poolwatch.core.actions import ActionResult

from .context import Context
from .pools import STATUS_LABEL

ENABLE_HA = "enableHaRedundancy"
DISABLE_HA = "disableHaRedundancy"
LIST_JOBS = "listPoolJobs"


def enable_ha(ctx: Context, node: str) -> ActionResult:
    found = ctx.nodes().get(node)
    if found is None:
        return ActionResult("refused", f"no node {node!r}")
    if not found.pool:
        return ActionResult("refused", f"node {node} is in no pool")
    if found.status is NodeStatus.SPARE:
        return ActionResult("already", f"node {node} is already an HA redundant node")
    if found.status is not NodeStatus.AVAILABLE:
        return ActionResult("refused", f"node {node} is {found.status.value}: only an Available "
                                       "node can become an HA redundant node")  # fmt: skip
    busy = ctx.busy_nodes().get(node)
    if busy:
        why = "only a node without any service can become an HA redundant node"
        return ActionResult("refused", f"node {node} runs work ({', '.join(busy)}): {why}")
    ctx.backend.label_node(node, {STATUS_LABEL: NodeStatus.SPARE.value})
    ctx.backend.cordon(node, True)
    return ActionResult("done", f"node {node} is an HA redundant node of pool {found.pool}")


def disable_ha(ctx: Context, node: str) -> ActionResult:
    found = ctx.nodes().get(node)
    if found is None:
        return ActionResult("refused", f"no node {node!r}")
    if found.status is not NodeStatus.SPARE:
        return ActionResult("refused", f"node {node} is {found.status.value}, not an HA "
                                       "redundant node")  # fmt: skip
    if any(r.spare == node for r in ctx.store.replacements(found.pool, True)):
        return ActionResult("refused", f"node {node} is the spare of a replacement in progress")
    ctx.backend.label_node(node, {STATUS_LABEL: None})
    ctx.backend.cordon(node, False)
    return ActionResult("done", f"node {node} is a normal node of pool {found.pool} again")


def pool_jobs(ctx: Context, pool: str) -> list[TrainingJob]:
    """The pool's training jobs, oldest first (then by namespace and name)."""
    mine = {n.name for n in ctx.backend.nodes() if n.pool == pool}
    on_nodes = {(p.namespace, p.job) for p in ctx.backend.pods() if p.job and p.node in mine}
    jobs = [j for j in ctx.backend.jobs()
            if j.pool == pool or (j.namespace, j.name) in on_nodes]  # fmt: skip
    return sorted(jobs, key=lambda j: (j.created, j.namespace, j.name))
