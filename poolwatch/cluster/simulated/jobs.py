"""Training jobs in the simulation: the generator, gang placement and the job lifecycle.

Lifecycle: Pending (queued; no pods yet, as with a Volcano gang that has not been admitted) ->
Creating (pods bound to nodes, containers starting; stays here while a node's kubelet directory
is read-only) -> Running -> Completed | Failed | Terminated (auto stop at `max_runtime`). A hung
job (its drawn outcome, or `hang` struck on it) stays Running with its devices held and idle and
its I/O stopped (see nodeview); Kubernetes shows nothing, which is the point: spotting it is
poolwatch's job (the hang rule, MA-J-02). `unhang` lets it go on where it stopped. A fault
under a job stalls it the same way, and it fails `fault_fail_after` later unless its pods are
evicted first; an eviction restarts the whole gang.
"""

from __future__ import annotations

import math

from poolwatch.cluster.model import JobStatus, NodeStatus
from poolwatch.cluster.simulated.spec import JobRequest, check_hang_detect
from poolwatch.cluster.simulated.state import CPU_PER_ACCEL, MEMORY_PER_ACCEL, SimJob, SimPod, World
from poolwatch.core.vocabulary import OWNER_LABEL

RETRY_BLOCKED = 60.0  # how often a pod on a read-only kubelet dir retries its start
_NAMES = ("llama-pretrain", "gpt-sft", "bert-finetune", "resnet50", "vit-large", "qwen-lora")
_CONTAINER = {"PyTorchJob": "pytorch", "MPIJob": "mpi", "vcjob": "main", "Job": "main"}
_JOB_LABEL = {
    "PyTorchJob": "training.kubeflow.org/job-name",
    "MPIJob": "training.kubeflow.org/job-name",
    "vcjob": "volcano.sh/job-name",
    "Job": "job-name",
}
_PRIORITIES = (("1", 6.0), ("2", 3.0), ("3", 1.0))
QUEUE_LABEL = "volcano.sh/queue-name"  # Volcano's pod label for the queue


def _pick(world: World, weighted: tuple[tuple[str, float], ...] | list[tuple[str, float]]) -> str:
    names, weights = zip(*weighted, strict=True)
    return world.rng.choices(names, weights=weights)[0]


def generate(world: World, pool: str) -> JobRequest | None:
    """A random job for `pool` that fits one node per worker and the team's quota."""
    spec, rng = world.spec, world.rng
    if not spec.teams:
        return None
    team = spec.teams[rng.choices(range(len(spec.teams)), [t.weight for t in spec.teams])[0]]
    kind = _pick(world, spec.kinds)
    pspec = spec.pool(pool)
    hard = quota_hard(world, team.share)[pspec.resource]
    sizes = [
        s for s in spec.sizes
        if s.per_worker <= pspec.accelerators and s.workers * s.per_worker <= hard
        and (kind != "Job" or s.workers == 1) and s.workers <= pspec.nodes - pspec.ha_spares
    ]  # fmt: skip
    if not sizes:
        return None
    size = rng.choices(sizes, [s.weight for s in sizes])[0]
    low, high = spec.duration
    duration = math.exp(rng.uniform(math.log(low), math.log(high)))
    draw = rng.random()
    outcome = "fail" if draw < spec.fail_probability else "complete"
    if spec.fail_probability <= draw < spec.fail_probability + spec.hang_probability:
        outcome = "hang"
    if outcome != "complete":
        duration *= rng.uniform(0.1, 0.9)  # it fails or hangs part-way through
    return JobRequest(
        namespace=team.namespace, pool=pool, workers=size.workers, per_worker=size.per_worker,
        kind=kind, name=f"{rng.choice(_NAMES)}-{next(world.job_seq):04d}",
        owner=rng.choice(team.owners), queue=team.queue, priority=_pick(world, _PRIORITIES),
        outcome=outcome, duration=round(duration, 3), annotations=spec.job_annotations,
    )  # fmt: skip


def quota_hard(world: World, share: float) -> dict[str, float]:
    """A team's hard quota per accelerator resource: its share of all devices, rounded up."""
    return {res: float(math.ceil(share * total - 1e-9)) for res, total in world.capacity.items()}


def submit(world: World, req: JobRequest) -> SimJob:
    pspec = world.spec.pool(req.pool)
    if req.kind not in _CONTAINER:
        raise ValueError(f"kind must be one of {sorted(_CONTAINER)}, not {req.kind!r}")
    if req.workers < 1 or not 1 <= req.per_worker <= pspec.accelerators or req.duration <= 0:
        raise ValueError(f"a job needs workers >= 1, 1 <= per_worker <= {pspec.accelerators}")
    team = world.spec.team(req.namespace)
    name = req.name or f"{_NAMES[0]}-{next(world.job_seq):04d}"
    key = f"{req.namespace}/{name}"
    if key in world.jobs:
        raise ValueError(f"job {key} already exists")
    detect = world.spec.hang_detect_minutes
    if req.hang_detect_minutes is not None:
        check_hang_detect(detect := req.hang_detect_minutes)
    job = SimJob(
        name=name, namespace=req.namespace, uid=world.uid("job", key, next(world.serial)),
        kind=req.kind, pool=req.pool, resource=pspec.resource,
        owner=req.owner or (team.owners[0] if team and team.owners else ""),
        queue=req.queue or (team.queue if team else "default"), priority=req.priority,
        workers=req.workers, per_worker=req.per_worker, outcome=req.outcome,
        duration=req.duration, created=world.now, annotations=tuple(sorted(req.annotations)),
        hang_detect_minutes=detect,
    )  # fmt: skip
    world.jobs[key] = job
    world.touch("job", key)
    _job_event(world, job, "JobCreated", "Training job created.")
    world.want_placement = True
    return job


def _job_event(world: World, job: SimJob, reason: str, message: str, warn: bool = False) -> None:
    world.event("Job", job.name, reason, message, "Warning" if warn else "Normal",
                pool=job.pool, namespace=job.namespace, involved_kind=job.kind)  # fmt: skip


def arrive(world: World, pool: str) -> None:
    """A Poisson arrival: submit a generated job unless the pool's queue is full."""
    waiting = sum(
        1 for j in world.jobs.values() if j.pool == pool and j.status is JobStatus.PENDING
    )
    if waiting < world.spec.max_pending and (req := generate(world, pool)) is not None:
        submit(world, req)
    world.at(world.now + world.rng.expovariate(world.spec.jobs_per_hour / 3600.0), arrive, pool)


def place_pending(world: World) -> None:
    """Gang-place queued jobs: every worker gets a node, or the job stays Pending.

    Highest priority first, then oldest; a job that does not fit does not block smaller ones
    behind it (backfill). Workers bin-pack onto the fullest nodes that still fit them, which keeps
    whole nodes free for 8-device workers."""
    pending = [j for j in world.jobs.values() if j.status is JobStatus.PENDING]
    pending.sort(key=lambda j: (-_rank(j.priority), j.created))
    free: dict[str, dict[str, list[int]]] = {}  # pool -> node -> idle devices, this round
    misfits: dict[str, list[tuple[int, int]]] = {}  # shapes that did not fit this round
    for job in pending:
        failed = misfits.setdefault(job.pool, [])
        if any(job.workers >= w and job.per_worker >= p for w, p in failed):
            continue  # a smaller gang did not fit, so this one cannot
        if not _quota_allows(world, job):
            continue
        if job.pool not in free:
            free[job.pool] = {
                n.name: world.idle(n)
                for n in world.pool_nodes[job.pool]
                if n.status is NodeStatus.AVAILABLE
            }
        placement = _fit(free[job.pool], job)
        if placement is None:
            failed.append((job.workers, job.per_worker))
            continue
        _bind(world, job, placement)
        for node, devices in placement:
            free[job.pool][node] = [i for i in free[job.pool][node] if i not in devices]


def _rank(priority: str) -> int:
    return int(priority) if priority.isdigit() else 0


def _quota_allows(world: World, job: SimJob) -> bool:
    team = world.spec.team(job.namespace)
    if team is None:
        return True
    want = job.workers * job.per_worker
    hard = quota_hard(world, team.share).get(job.resource, 0.0)
    for used in (world.ns_used.get(job.namespace, {}), world.queue_used.get(job.queue, {})):
        if used.get(job.resource, 0.0) + want > hard:
            return False
    return True


def _fit(free: dict[str, list[int]], job: SimJob) -> list[tuple[str, tuple[int, ...]]] | None:
    """Each worker on the node with the fewest idle devices that still holds it (ties: name)."""
    taken: dict[str, int] = {}
    out = []
    for _ in range(job.workers):
        best: tuple[int, str] | None = None
        for name, idle in free.items():
            left = len(idle) - taken.get(name, 0)
            if left >= job.per_worker and (best is None or (left, name) < best):
                best = (left, name)
        if best is None:
            return None
        name, start = best[1], taken.get(best[1], 0)
        out.append((name, tuple(free[name][start : start + job.per_worker])))
        taken[name] = start + job.per_worker
    return out


def _bind(world: World, job: SimJob, placement: list[tuple[str, tuple[int, ...]]]) -> None:
    job.pods = []
    for i, (node, devices) in enumerate(placement):
        name = f"{job.name}-worker-{i}"
        key = f"{job.namespace}/{name}"
        pod = SimPod(
            name=name, namespace=job.namespace, uid=world.uid("pod", key, next(world.serial)),
            node=node, job=job.key, container=_CONTAINER[job.kind],
            requests={job.resource: float(job.per_worker), "cpu": CPU_PER_ACCEL * job.per_worker,
                      "memory": MEMORY_PER_ACCEL * job.per_worker},
            devices=devices,
            labels=tuple(sorted({_JOB_LABEL[job.kind]: job.name, QUEUE_LABEL: job.queue,
                                 OWNER_LABEL: job.owner}.items())),
        )  # fmt: skip
        world.add_pod(pod, job.queue)
        job.pods.append(key)
    job.status = JobStatus.CREATING
    world.touch("job", job.key)
    world.at(world.now + world.spec.startup_seconds, start, job.key, job.generation)


def _current(world: World, key: str, generation: int, *statuses: JobStatus) -> SimJob | None:
    job = world.jobs.get(key)
    if job is None or job.generation != generation or job.status not in statuses:
        return None
    return job


def start(world: World, key: str, generation: int) -> None:
    job = _current(world, key, generation, JobStatus.CREATING)
    if job is None:
        return
    if any("kubelet_readonly" in world.nodes[world.pods[p].node].faults for p in job.pods):
        world.at(world.now + RETRY_BLOCKED, start, key, generation)  # containers cannot start
        return
    job.status, job.started = JobStatus.RUNNING, world.now
    for p in job.pods:
        world.pods[p].phase = "Running"
        world.touch("pod", p)
    world.touch("job", key)
    _job_event(world, job, "JobStarted", "The training job starts to run.")
    world.at(world.now + job.duration, _outcome, key, generation)
    if world.spec.max_runtime is not None:
        world.at(job.started + world.spec.max_runtime, _auto_stop, key, generation)


def _outcome(world: World, key: str, generation: int) -> None:
    job = _current(world, key, generation, JobStatus.RUNNING)
    if job is None or job.stalled or job.hung:
        return  # a stalled job's fate is the fault's; a hung one's waits for unhang
    if job.started is not None and world.now < job.started + job.duration + job.hung_for - 1e-6:
        return  # it was hung for a while: its outcome comes later (unhang scheduled it)
    if job.outcome == "hang":
        hang(world, job)
    elif job.outcome == "fail":
        finish(world, job, JobStatus.FAILED)
    else:
        finish(world, job, JobStatus.COMPLETED)


def _auto_stop(world: World, key: str, generation: int) -> None:
    job = _current(world, key, generation, JobStatus.RUNNING)
    if job is not None:
        finish(world, job, JobStatus.TERMINATED)


def hang(world: World, job: SimJob) -> None:
    """The job hangs now: its processes block (a deadlocked collective, a stuck data loader), so
    its accelerators stop computing and its I/O stops; nothing in Kubernetes changes."""
    if job.status is not JobStatus.RUNNING or job.hung or job.stalled:
        state = "hung" if job.hung else "stalled by a fault" if job.stalled else job.status
        raise ValueError(f"job {job.key} is {state}: only a running job can hang")
    job.hung, job.hung_since = True, world.now
    world.touch("job", job.key)


def unhang(world: World, job: SimJob) -> bool:
    """The hang clears (heal): the job computes again and its I/O counters go on from where they
    stopped; the time it was hung does not count towards its running time. A job whose drawn
    fate was this hang then completes after half as long again as it ran. False when it was not
    hung."""
    if not job.hung:
        return False
    since = job.hung_since if job.hung_since is not None else world.now
    job.hung_for += max(0.0, world.now - since)
    job.hung, job.hung_since = False, None
    if job.outcome == "hang":
        job.outcome, job.duration = "complete", job.duration * 1.5
    if job.started is not None:
        due = max(world.now, job.started + job.duration + job.hung_for)
        world.at(due, _outcome, job.key, job.generation)
    world.touch("job", job.key)
    return True


def stall(world: World, key: str) -> None:
    """A fault hit a device or node under the job: its collectives stop, it fails later."""
    job = _current(world, key, world.jobs[key].generation, JobStatus.CREATING, JobStatus.RUNNING)
    if job is not None and not job.stalled:
        job.stalled = True
        world.at(world.now + world.spec.fault_fail_after, _fail_stalled, key, job.generation)


def _fail_stalled(world: World, key: str, generation: int) -> None:
    job = _current(world, key, generation, JobStatus.CREATING, JobStatus.RUNNING)
    if job is not None:
        finish(world, job, JobStatus.FAILED)


_ENDINGS = {
    JobStatus.COMPLETED: ("JobCompleted", "Training job completed.", "Succeeded"),
    JobStatus.FAILED: ("JobFailed", "Failed to run the training job.", "Failed"),
    JobStatus.TERMINATED: ("JobTerminated", "The training job has been stopped. (Maximum running "
                           "duration: {hours})", "Failed"),
}  # fmt: skip


def finish(world: World, job: SimJob, status: JobStatus) -> None:
    reason, message, phase = _ENDINGS[status]
    job.status, job.finished, job.hung, job.stalled = status, world.now, False, False
    job.hung_since, job.hung_for = None, 0.0
    for p in job.pods:
        if p in world.pods:
            if phase == "Failed":  # the training process exits non-zero (a fault under it or
                world.pods[p].reason = "Error:1"  # the user's code: Kubernetes cannot tell)
            world.end_pod(p, phase, job.queue)
    world.touch("job", job.key)
    hours = (world.spec.max_runtime or 0) / 3600
    text = message.format(hours=f"{hours:g} hour" + ("" if hours == 1 else "s"))
    _job_event(world, job, reason, text, warn=phase == "Failed")
    world.at(world.now + world.spec.job_ttl, _forget, job.key, job.generation)


def _forget(world: World, key: str, generation: int) -> None:
    job = _current(world, key, generation, *_ENDINGS)
    if job is None:
        return
    for p in job.pods:
        if p in world.pods:
            world.end_pod(p, world.pods[p].phase, job.queue, delete=True)
    del world.jobs[key]
    world.touch("job", key)


def evict(world: World, key: str) -> None:
    """Evict one pod. A gang loses a worker, so an active job restarts as a whole: its pods go,
    it queues again with the cause cleared (a restart fixes a transient hang or fault), or it
    fails once it has used up `max_restarts`."""
    pod = world.pods[key]
    job = world.jobs.get(pod.job)
    active = job is not None and job.status in (JobStatus.CREATING, JobStatus.RUNNING)
    world.end_pod(key, pod.phase, job.queue if job else "", delete=True)
    if job is None or not active:
        return
    if job.restarts >= world.spec.max_restarts:
        finish(world, job, JobStatus.FAILED)
        return
    for p in job.pods:
        if p in world.pods:
            world.end_pod(p, "Failed", job.queue, delete=True)
    job.pods, job.restarts, job.generation = [], job.restarts + 1, job.generation + 1
    job.status, job.started, job.hung, job.stalled = JobStatus.PENDING, None, False, False
    job.hung_since, job.hung_for = None, 0.0
    job.outcome = "complete"
    world.touch("job", job.key)
    _job_event(world, job, "JobRestarted", "The training job has been restarted.")
    world.want_placement = True


def reissue(world: World, key: str, annotations: dict[str, str]) -> None:
    """Re-create a job that ended (the controller's automatic restart of a failed job): its
    old pods go and it queues again as a fresh job of the same spec, carrying `annotations`."""
    job = world.jobs[key]
    for p in job.pods:
        if p in world.pods:
            world.end_pod(p, world.pods[p].phase, job.queue, delete=True)
    job.pods, job.restarts, job.generation = [], job.restarts + 1, job.generation + 1
    job.status, job.started, job.finished = JobStatus.PENDING, None, None
    job.hung, job.stalled, job.outcome = False, False, "complete"
    job.hung_since, job.hung_for = None, 0.0
    job.annotations = tuple(sorted({**dict(job.annotations), **annotations}.items()))
    world.touch("job", job.key)
    _job_event(world, job, "JobRestarted", "The training job has been restarted.")
    world.want_placement = True
