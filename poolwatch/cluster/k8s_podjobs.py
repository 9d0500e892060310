"""Training jobs made of plain pods: pods that carry the configured job label and no controller.

A pod with the job label (`poolwatch.io/job` by default) and no controller ownerReference is part
of the job the label names; one TrainingJob (kind "Pod") per namespace and label value, with a
uid derived from both:

| its pods                               | JobStatus |
|----------------------------------------|-----------|
| any Failed                             | Failed    |
| all Succeeded                          | Completed |
| any Running                            | Running   |
| any Unknown                            | Abnormal  |
| any bound to a node (still Pending)    | Creating  |
| otherwise                              | Pending   |

Workers: the number of pods; accelerators: the sum of their requests; restarts: the sum of
their containers' restart counts; pool: the pool of the node the first of them runs on. A pod
owned by a Kubeflow job kind poolwatch does not read (XGBoostJob, PaddleJob, ...) is counted as
"pod: owned by an unsupported job kind", so such jobs are not silently invisible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from poolwatch.cluster.kubernetes.jobs import QUEUE_ANNOTATION, REPLICA_SPECS, TERMINAL, controller
from poolwatch.cluster.kubernetes.read import (
    QUEUE_LABELS,
    Context,
    as_dict,
    as_int,
    as_list,
    as_str,
    derived_uid,
    dig,
    first_label,
    is_accelerator,
    str_map,
    timestamp,
)
from poolwatch.cluster.model import JobStatus, Pod, TrainingJob


@dataclass(frozen=True)
class PodJobPart:
    """What one plain pod adds to its job."""

    namespace: str
    job: str
    pod: Pod
    created: float
    started: float | None
    finished: float | None
    restarts: int
    priority: str
    queue: str
    owner: str


def pod_job_part(raw: Any, pod: Pod, ctx: Context) -> PodJobPart | None:
    """The pod's share of a plain-pod job, or None: no job label, or a controller owns it."""
    meta = as_dict(dig(raw, "metadata"))
    owner = controller(meta)
    if owner is not None:
        group = as_str(owner.get("apiVersion")).split("/")[0]
        kind = as_str(owner.get("kind"))
        if group == "kubeflow.org" and kind not in REPLICA_SPECS:
            ctx.note("pod: owned by an unsupported job kind", f"{pod.namespace}/{pod.name}: {kind}")
        return None
    labels = dict(pod.labels)
    job = labels.get(ctx.job_label, "")
    if not job:
        return None
    status, annotations = dig(raw, "status"), str_map(meta.get("annotations"))
    containers = as_list(dig(status, "containerStatuses"))
    ends = [timestamp(dig(c, "state", "terminated", "finishedAt")) for c in containers]
    return PodJobPart(
        namespace=pod.namespace,
        job=job,
        pod=pod,
        created=timestamp(meta.get("creationTimestamp")) or 0.0,
        started=timestamp(dig(status, "startTime")),
        finished=max((t for t in ends if t is not None), default=None),
        restarts=sum(as_int(dig(c, "restartCount")) for c in containers),
        priority=as_str(dig(raw, "spec", "priorityClassName")),
        queue=first_label(labels, QUEUE_LABELS) or annotations.get(QUEUE_ANNOTATION, ""),
        owner=labels.get(ctx.owner_label, "") or annotations.get(ctx.owner_label, ""),
    )


def _pods_status(phases: Counter[str], total: int, bound: bool) -> JobStatus:
    if phases["Failed"]:
        return JobStatus.FAILED
    if phases["Succeeded"] == total:
        return JobStatus.COMPLETED
    if phases["Running"]:
        return JobStatus.RUNNING
    if phases["Unknown"]:
        return JobStatus.ABNORMAL
    return JobStatus.CREATING if bound else JobStatus.PENDING


def pod_job_from(
    namespace: str, job: str, parts: Iterable[PodJobPart], ctx: Context
) -> TrainingJob | None:
    """The plain-pod job `namespace/job` from its pods' parts; None when no pod is left."""
    parts = sorted(parts, key=lambda p: (p.created, p.pod.name))
    if not parts:
        return None
    phases = Counter(p.pod.phase for p in parts)
    status = _pods_status(phases, len(parts), any(p.pod.node for p in parts))
    accels: Counter[str] = Counter()
    for p in parts:
        accels.update({r: q for r, q in p.pod.requests if is_accelerator(r)})
    started = [p.started for p in parts if p.started is not None]
    finished = [p.finished for p in parts if p.finished is not None]
    nodes = [p.pod.node for p in parts if p.pod.node]
    return TrainingJob(
        name=job,
        namespace=namespace,
        uid=derived_uid("pod-job", namespace, job),
        kind="Pod",
        status=status,
        pool=ctx.pool_of_node(nodes[0]) if nodes else "",
        owner=next((p.owner for p in parts if p.owner), ""),
        queue=next((p.queue for p in parts if p.queue), ""),
        priority=next((p.priority for p in parts if p.priority), ""),
        accelerator_resource=min(accels, key=lambda r: (-accels[r], r)) if accels else "",
        accelerators_requested=sum(accels.values()),
        workers=len(parts),
        restarts=sum(p.restarts for p in parts),
        created=parts[0].created,
        started=min(started, default=None),
        finished=max(finished, default=None) if status in TERMINAL else None,
    )
