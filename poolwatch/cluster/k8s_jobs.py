"""Training jobs from Kubeflow, Volcano, batch/v1 and plain pods, in the seeds' job statuses.

Status mapping (spec/statuses-and-events.md section 5.1; the seeds' terminal set is Completed,
Failed, Terminated, Abnormal). A job with `metadata.deletionTimestamp` that has not finished is
Terminated whatever the table says.

Kubeflow PyTorchJob, TFJob, MPIJob (kubeflow.org/v1, and MPIJob v2beta1 of the MPI operator):
the `status.conditions` with status "True", first match in this order:

| condition type | JobStatus |   | condition type | JobStatus |
|----------------|-----------|---|----------------|-----------|
| Failed         | Failed    |   | Running        | Running   |
| Succeeded      | Completed |   | Created        | Creating  |
| Suspended      | Pending   |   | (none at all)  | Pending   |
| Restarting     | Running   |   | (only unknown) | Abnormal, counted |

Volcano vcjob (batch.volcano.sh/v1alpha1), `status.state.phase`:

| phase                              | JobStatus  |
|------------------------------------|------------|
| Pending, or no status yet          | Pending    |
| Running, Restarting, Completing    | Running    |
| Completed                          | Completed  |
| Failed                             | Failed     |
| Aborting, Aborted, Terminating, Terminated | Terminated |
| anything else                      | Abnormal, counted |

batch/v1 Job: condition Failed or FailureTarget -> Failed; Complete or SuccessCriteriaMet ->
Completed; Suspended -> Pending; else `status.ready` > 0 -> Running, `status.active` > 0 ->
Creating (Running on servers before 1.24, which do not report `ready`); else Pending. A Job
controlled by a Kubeflow or Volcano job (the MPI operator's launcher) is part of that job and is
not listed on its own.

Plain pods (a job label, no controller): see k8s_podjobs.py.

Restarts: vcjob `status.retryCount`; batch Job `status.failed` (each failed pod was retried);
Kubeflow records none (0). Workers: the sum of the
replica counts (batch: `parallelism`). Accelerators: per-pod requests of the template times its
replicas. Pool: the pool label in a template's nodeSelector or in a required node affinity term
(`In` with one value), else the pool label on the job itself. Queue and priority: the scheduling
policy of Kubeflow, `spec.queue`/`priorityClassName` of Volcano, else the pod template's
`priorityClassName` and the queue label (`volcano.sh/queue-name`, `kueue.x-k8s.io/queue-name`) or
Volcano's queue annotation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from poolwatch.cluster.kubernetes.read import (
    QUEUE_LABELS,
    Context,
    Odd,
    as_dict,
    as_int,
    as_list,
    as_str,
    dig,
    first_label,
    identity,
    is_accelerator,
    pod_requests,
    str_map,
    timestamp,
)
from poolwatch.cluster.model import JobStatus, TrainingJob

REPLICA_SPECS = {"PyTorchJob": "pytorchReplicaSpecs", "TFJob": "tfReplicaSpecs"}
REPLICA_SPECS["MPIJob"] = "mpiReplicaSpecs"
JOB_GROUPS = ("kubeflow.org", "batch.volcano.sh")  # a controller in these groups owns training
QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TERMINATED, JobStatus.ABNORMAL}
_KUBEFLOW = (
    ("Failed", JobStatus.FAILED),
    ("Succeeded", JobStatus.COMPLETED),
    ("Suspended", JobStatus.PENDING),
    ("Restarting", JobStatus.RUNNING),
    ("Running", JobStatus.RUNNING),
    ("Created", JobStatus.CREATING),
)
_VOLCANO = {
    "Pending": JobStatus.PENDING,
    "Running": JobStatus.RUNNING,
    "Restarting": JobStatus.RUNNING,
    "Completing": JobStatus.RUNNING,
    "Completed": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "Aborting": JobStatus.TERMINATED,
    "Aborted": JobStatus.TERMINATED,
    "Terminating": JobStatus.TERMINATED,
    "Terminated": JobStatus.TERMINATED,
}


@dataclass(frozen=True)
class _Demand:
    workers: int = 0
    accelerator: str = ""
    accelerators: float = 0.0
    pool: str = ""
    priority: str = ""


def _affinity_pool(spec: Any, keys: tuple[str, ...]) -> str:
    terms = dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    for term in as_list(dig(terms, "nodeSelectorTerms")):
        for expr in as_list(dig(term, "matchExpressions")):
            values = as_list(dig(expr, "values"))
            if dig(expr, "key") in keys and dig(expr, "operator") == "In" and len(values) == 1:
                return as_str(values[0])
    return ""


def _demand(replicas: Iterable[tuple[int, Any]], what: str, ctx: Context) -> _Demand:
    """What the pod templates ask for: [(replicas, template)] -> workers, accelerators, ..."""
    workers, accels, pool, priority = 0, Counter[str](), "", ""
    for count, template in replicas:
        spec = dig(template, "spec")
        workers += count
        for resource, amount in pod_requests(spec, what, ctx.note).items():
            if is_accelerator(resource):
                accels[resource] += count * amount
        pool = pool or first_label(str_map(dig(spec, "nodeSelector")), ctx.pool_labels)
        pool = pool or _affinity_pool(spec, ctx.pool_labels)
        priority = priority or as_str(dig(spec, "priorityClassName"))
    top = min(accels, key=lambda r: (-accels[r], r)) if accels else ""
    return _Demand(workers, top, sum(accels.values()), pool, priority)


def controller(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    refs = [as_dict(r) for r in as_list(meta.get("ownerReferences"))]
    return next((r for r in refs if r.get("controller") is True), None)


def _when(conditions: list[Any], kinds: Iterable[str]) -> float | None:
    for c in conditions:
        if dig(c, "type") in kinds and dig(c, "status") == "True":
            return timestamp(dig(c, "lastTransitionTime"))
    return None


FT_PREFIX = "fault-tolerance/"  # the seed's job restart annotations


def _job(
    raw: Any, ctx: Context, kind: str, status: JobStatus, demand: _Demand, **kw: Any
) -> TrainingJob:
    meta, name, namespace, uid = identity(raw, kind)
    labels, annotations = str_map(meta.get("labels")), str_map(meta.get("annotations"))
    if meta.get("deletionTimestamp") and status not in TERMINAL:
        status = JobStatus.TERMINATED
    queue = kw.pop("queue", "") or first_label(labels, QUEUE_LABELS)
    finished = kw.pop("finished", None)
    return TrainingJob(
        name=name,
        namespace=namespace,
        uid=uid,
        kind=kind,
        status=status,
        pool=demand.pool or first_label(labels, ctx.pool_labels),
        owner=labels.get(ctx.owner_label, "") or annotations.get(ctx.owner_label, ""),
        queue=queue or annotations.get(QUEUE_ANNOTATION, ""),
        priority=kw.pop("priority", "") or demand.priority,
        accelerator_resource=demand.accelerator,
        accelerators_requested=demand.accelerators,
        workers=max(demand.workers, 0),
        created=timestamp(meta.get("creationTimestamp")) or 0.0,
        finished=finished if status in TERMINAL else None,
        annotations=fault_tolerance(annotations),
        **kw,
    )


def fault_tolerance(annotations: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The `fault-tolerance/*` annotations (MA-J-04/06) the controller reads, sorted."""
    return tuple(sorted((k, v) for k, v in annotations.items() if k.startswith(FT_PREFIX)))


def kubeflow_job_from(raw: Any, ctx: Context, kind: str) -> list[TrainingJob]:
    what = kind.lower()
    identity(raw, what)
    if (raw_kind := raw.get("kind")) is not None and raw_kind != kind:
        raise Odd(f"{what}: unexpected kind", repr(raw_kind))
    specs = as_dict(dig(raw, "spec", REPLICA_SPECS[kind]))
    demand = _demand(
        ((as_int(dig(s, "replicas"), 1), dig(s, "template")) for s in specs.values()), what, ctx
    )
    conditions = as_list(dig(raw, "status", "conditions"))
    true = {as_str(dig(c, "type")) for c in conditions if dig(c, "status") == "True"}
    status = next((s for t, s in _KUBEFLOW if t in true), None)
    if status is None:
        status = JobStatus.ABNORMAL if true else JobStatus.PENDING
        if true:
            ctx.note(f"{what}: unknown condition", f"{raw['metadata']['name']}: {sorted(true)}")
    policy = as_dict(dig(raw, "spec", "runPolicy", "schedulingPolicy"))
    return [
        _job(
            raw,
            ctx,
            kind,
            status,
            demand,
            queue=as_str(policy.get("queue")),
            priority=as_str(policy.get("priorityClass")),
            started=timestamp(dig(raw, "status", "startTime")) or _when(conditions, ["Running"]),
            finished=timestamp(dig(raw, "status", "completionTime"))
            or _when(conditions, ["Succeeded", "Failed"]),
        )
    ]


def volcano_job_from(raw: Any, ctx: Context) -> list[TrainingJob]:
    _, name, _, _ = identity(raw, "vcjob")
    if (raw_kind := raw.get("kind")) is not None and raw_kind != "Job":
        raise Odd("vcjob: unexpected kind", repr(raw_kind))
    tasks = as_list(dig(raw, "spec", "tasks"))
    demand = _demand(
        ((as_int(dig(t, "replicas"), 1), dig(t, "template")) for t in tasks), "vcjob", ctx
    )
    state = as_dict(dig(raw, "status", "state"))
    phase = as_str(state.get("phase"))
    status = _VOLCANO.get(phase or "Pending")
    if status is None:
        ctx.note("vcjob: unknown phase", f"{name}: {phase!r}")
        status = JobStatus.ABNORMAL
    conditions = as_list(dig(raw, "status", "conditions"))  # [{status: <phase>, time}]
    running = [c for c in conditions if dig(c, "status") == "Running"]
    return [
        _job(
            raw,
            ctx,
            "vcjob",
            status,
            demand,
            queue=as_str(dig(raw, "spec", "queue")),
            priority=as_str(dig(raw, "spec", "priorityClassName")),
            restarts=as_int(dig(raw, "status", "retryCount")),
            started=timestamp(dig(running[0], "lastTransitionTime")) if running else None,
            finished=timestamp(state.get("lastTransitionTime")),
        )
    ]


def _batch_status(status: Any) -> JobStatus:
    conditions = as_list(dig(status, "conditions"))
    true = {as_str(dig(c, "type")) for c in conditions if dig(c, "status") == "True"}
    if true & {"Failed", "FailureTarget"}:
        return JobStatus.FAILED
    if true & {"Complete", "SuccessCriteriaMet"}:
        return JobStatus.COMPLETED
    if "Suspended" in true:
        return JobStatus.PENDING
    ready, active = dig(status, "ready"), as_int(dig(status, "active"))
    if isinstance(ready, int) and ready > 0:
        return JobStatus.RUNNING
    if active > 0:
        return JobStatus.CREATING if isinstance(ready, int) else JobStatus.RUNNING
    return JobStatus.PENDING


def batch_job_from(raw: Any, ctx: Context) -> list[TrainingJob]:
    meta, _, _, _ = identity(raw, "job")
    if (raw_kind := raw.get("kind")) is not None and raw_kind != "Job":
        raise Odd("job: unexpected kind", repr(raw_kind))
    owner = controller(meta)
    if owner and as_str(owner.get("apiVersion")).split("/")[0] in JOB_GROUPS:
        return []  # the MPI operator's launcher: part of its MPIJob
    spec, status = dig(raw, "spec"), dig(raw, "status")
    parallelism = as_int(dig(spec, "parallelism"), 1)
    demand = _demand([(parallelism, dig(spec, "template"))], "job", ctx)
    conditions = as_list(dig(status, "conditions"))
    return [
        _job(
            raw,
            ctx,
            "Job",
            _batch_status(status),
            demand,
            restarts=as_int(dig(status, "failed")),
            started=timestamp(dig(status, "startTime")),
            finished=timestamp(dig(status, "completionTime"))
            or _when(conditions, ["Failed", "FailureTarget"]),
        )
    ]
