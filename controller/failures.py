"""Why a training job failed: the platform under it, or the user's own code (MA-J-04, MA-J-06).

The seed's fault-tolerance scenarios (statuses-and-events.md section 5.4): a hardware fault that
makes the job exit is re-issued (scenario 3); "hardware fine, user service fails" ends in the
failure state (scenario 4), unless the job asked for unconditional auto restart. Kubernetes does
not say which it was, so the evidence is read from the job's pods and the nodes under them:

| evidence (first match, over the job's pods)                        | cause     |
|--------------------------------------------------------------------|-----------|
| a pod's node is isolated (`poolwatch.io/fault`, except with the    | platform  |
| codes that leave jobs running, a driver upgrade's) or gone         |           |
| a pod's node is not Ready (or Unknown)                             | platform  |
| a pod ended for a platform reason: Evicted, NodeLost, Shutdown, ... | platform  |
| a pod was OOM-killed or its container exited non-zero              | user      |
| nothing of the above (e.g. the operator already deleted the pods)  | user      |

A container that exits non-zero because its accelerator died looks like the user's error to
Kubernetes; it becomes a platform failure once the node under it is isolated. The rules isolate a
node some minutes after the fault, so the controller waits `failure_grace` after a job failed
before it calls the failure the user's (controller/service.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from poolwatch.cluster.model import Node, Pod, TrainingJob

from .pools import fault_of
from .reasons import fault

FailureCause = Literal["platform", "user"]

#: pod reasons (`Pod.reason`) that say the platform took the pod away, not the user's code:
#: kubelet evictions (node pressure), a lost or shut-down node, admission failures on the node,
#: the taint manager (NoExecute), the Eviction API and preemption
PLATFORM_REASONS = frozenset(
    {
        "Evicted",
        "NodeLost",
        "Shutdown",
        "NodeShutdown",
        "Terminated",
        "UnexpectedAdmissionError",
        "NodeAffinity",
        "OutOfcpu",
        "OutOfmemory",
        "DeletionByTaintManager",
        "DeletionByPodGC",
        "EvictionByEvictionAPI",
        "TerminationByKubelet",
        "PreemptionByScheduler",
        "PreemptionByKubeScheduler",
    }
)


def classify(
    job: TrainingJob, pods: Iterable[Pod], nodes: Mapping[str, Node],
    benign: Iterable[str] = (),
) -> tuple[FailureCause, str]:  # fmt: skip
    """(cause, the evidence in words) for a failed `job`, from its pods and the nodes. An
    isolation with a `benign` code (a driver upgrade's, which leaves jobs running) is no fault
    of the node's."""
    benign = frozenset(benign)
    user = ""
    for pod in pods:
        where = f"pod {pod.name}"
        if pod.node:
            node = nodes.get(pod.node)
            if node is None:
                return "platform", f"{where}: its node {pod.node} is gone"
            if (code := fault_of(node)) and code not in benign:
                return "platform", f"{where}: its node {pod.node} is isolated, {fault(code)}"
            if dict(node.conditions).get("Ready", "True") != "True":
                return "platform", f"{where}: its node {pod.node} is not Ready"
        if pod.reason in PLATFORM_REASONS:
            return "platform", f"{where}: {pod.reason}"
        if pod.reason and not user:
            user = f"{where}: {pod.reason}"
    return "user", user or f"no pod of job {job.namespace}/{job.name} shows a platform fault"
