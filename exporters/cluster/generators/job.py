"""Training job families: identity (`_info`, with owner, queue/VC, priority, kind), status as a
state set over the seed's statuses, times, requested accelerators, workers, restarts.

Duration is not a gauge: it would change every second without a watch event, and a stored value
would be stale by the next scrape. It is `completion (or time()) - start` in PromQL, as
kube-state-metrics leaves `kube_job_status_start_time` to its users.
"""

from __future__ import annotations

from collections.abc import Iterable

from poolwatch.cluster.model import JobStatus, TrainingJob

from . import Sample, family, missing, odd_quantities, odd_time, state_set

JOB_STATUSES = tuple(s.value for s in JobStatus)

#: job kinds the exporter knows by default: Kubeflow training operators, Volcano, batch, bare pods
DEFAULT_KINDS = (
    "PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "MXJob", "JAXJob", "vcjob",
    "Job", "Pod",
)  # fmt: skip


def check(job: object, kinds: frozenset[str] = frozenset(DEFAULT_KINDS)) -> str | None:
    if not isinstance(job, TrainingJob):
        return "wrong_type"
    reason = missing(name=job.name, namespace=job.namespace, uid=job.uid, kind=job.kind)
    if reason:
        return reason
    if job.kind not in kinds:
        return "unknown_job_kind"
    if job.status not in JOB_STATUSES:
        return "unknown_status"
    if not isinstance(job.restarts, int) or not isinstance(job.workers, int):
        return "bad_quantity"
    if job.restarts < 0 or job.workers < 0:
        return "negative_quantity"
    reason = odd_quantities([("", job.accelerators_requested)])
    if reason:
        return reason
    if job.accelerators_requested > 0 and not job.accelerator_resource:
        return "missing_accelerator_resource"
    return odd_time(job.created, job.started, job.finished)


def _id(j: TrainingJob) -> tuple[str, str, str]:
    return j.pool, j.namespace, j.name


def _info(j: TrainingJob) -> Iterable[Sample]:
    yield (
        *_id(j), j.uid, j.kind, j.owner, j.queue, j.priority, j.accelerator_resource,
    ), 1.0  # fmt: skip


def _time(attr: str):
    def samples(j: TrainingJob) -> Iterable[Sample]:
        t = getattr(j, attr)
        if t:
            yield _id(j), float(t)

    return samples


def _requested(j: TrainingJob) -> Iterable[Sample]:
    if j.accelerator_resource:
        yield (*_id(j), j.accelerator_resource), float(j.accelerators_requested)


JOB = [
    family("poolwatch_training_job_info", _info),
    family("poolwatch_training_job_status", lambda j: state_set(j.status, JOB_STATUSES, _id(j))),
    family("poolwatch_training_job_created_timestamp_seconds", _time("created")),
    family("poolwatch_training_job_start_timestamp_seconds", _time("started")),
    family("poolwatch_training_job_completion_timestamp_seconds", _time("finished")),
    family("poolwatch_training_job_accelerators_requested", _requested),
    family("poolwatch_training_job_workers", lambda j: [(_id(j), float(j.workers))]),
    family("poolwatch_training_job_restarts_total", lambda j: [(_id(j), float(j.restarts))]),
    family(
        "poolwatch_training_job_hang_detect_seconds",
        lambda j: [(_id(j), 60.0 * j.hang_detect_minutes)],
    ),
]


def allocation(j: TrainingJob) -> tuple[tuple[str, str, str, str], float] | None:
    """The (pool, owner, queue, resource) key and the accelerators a job holds while Running."""
    if j.status != JobStatus.RUNNING or not j.accelerator_resource:
        return None
    return (j.pool, j.owner, j.queue, j.accelerator_resource), float(j.accelerators_requested)
