"""Job restarts: a training job restarted within its own settings (MA-J-02..06), as the rule
engine asks (`restart-job`), as an isolation of its node implies, or because it failed.

A running job has its pods evicted (a hung one only its hung pods, where each replica's restart
policy makes its operator re-create them); a failed one (final for its operator) is re-created
from its own spec, with a copy kept in the store until the create succeeded, so a re-creation cut
short is finished (`pending_recreations`). A restarted job is re-queued first and gives up when it
has not run again within `requeue_timeout` (MA-J-03, `requeued`). Failures are decided once each
(`failed_jobs`): a platform-caused one is restarted, a user's one only as its settings allow.

Each of these survives the controller dying midway (a restart on the same state file finishes
it, once): a running job's restart keeps its plan (pods by uid, count) from before its first
eviction (`_evict`), a give-up is recorded before the stop (`stopping`, `_give_up`), and a
failure without a time of its own keeps the time it was first seen (`Store.first_seen`).

`JobRestarts` acts through a `Context` (controller/context.py) and nothing else; the facade
(`PoolController`) and the isolation (controller/isolation.py) call its public methods.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from poolwatch.cluster.backend import CreatePending
from poolwatch.cluster.model import Event, JobStatus, Pod, TrainingJob
from poolwatch.core.actions import ActionResult, NodeAction
from poolwatch.core.vocabulary import RESTARTED_FROM_ANNOTATION, RESTARTS_ANNOTATION

from . import failures, jobs, pools, reasons
from .context import Context, Halted

log = logging.getLogger(__name__.rsplit(".", 1)[0] + ".service")  # the controller's one name
TERMINAL_PODS = ("Succeeded", "Failed")
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"  # set by the Kubeflow operators
RECREATE, RECREATE_KIND = "recreate:", "recreateJob"  # a job's copy kept while re-created
RESTART_KIND = "restartJob"  # a running job's restart, its plan kept while its pods are evicted


class JobRestarts:
    """Restart, re-create and re-queue training jobs (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # the same objects as the context's (none is ever replaced): shorter to read
        self.backend, self.store, self.settings = ctx.backend, ctx.store, ctx.settings
        self.clock, self.stats = ctx.clock, ctx.stats
        self._stop_failed: set[str] = set()  # jobs whose stop the API refused (audited once)

    def action(self, a: NodeAction, dry: bool) -> ActionResult:
        """The rule engine's `restart-job`: its cause from the alert (a fault when the same
        alert isolated the job's node), then `restart`."""
        if a.job.count("/") != 1:
            return ActionResult("refused", f"job: expected namespace/name, got {a.job!r}")
        labels = dict(a.labels)
        cause = jobs.cause_of(labels.get("alertname", a.reason), labels)
        node = self.ctx.nodes().get(a.node) if a.node else None
        why = reasons.asked(a.reason, labels)
        about = {"alert": reasons.alert_name(labels)}
        if node is not None and (code := pools.fault_of(node)):
            cause = "fault"  # the same alert isolated the job's node: an environmental fault
            why = f"node {node.name} isolated, {reasons.because(code, why)}"
            about["fault_code"] = code
        # the hung pods, when the alert names them (a per-pod rule's `pod` label)
        hung = tuple(p for p in labels.get("pod", "").split(",") if p) if cause == "hang" else ()
        return self.restart(a.job, cause, a.key, dry, why, hung=hung, about=about)

    def restart(
        self, ref: str, cause: jobs.Cause, key: str, dry: bool, reason: str,
        failed: bool = False, hung: tuple[str, ...] = (), about: dict[str, str] | None = None,
    ) -> ActionResult:  # fmt: skip
        """Restart a job within its settings (jobs.decide). A running job: its pods are
        evicted (a hung one: only the hung pods where its kind allows, see _pod_level); a
        `failed` one (ended, final for its operator) is re-created. `reason`: why, in the words
        of controller/reasons.py (the fault code of the node under it first), kept in the
        result's detail (so in the audit record) and the notice; `about`: the notice's
        `fault_code` and `alert` labels."""
        about = about or {}
        namespace, name = ref.split("/", 1)
        job = next((j for j in self.backend.jobs() if (j.namespace, j.name) == (namespace, name)),
                   None)  # fmt: skip
        if job is None:
            return ActionResult("refused", f"no job {ref}")
        if not dry and (plan := self._started(key)) is not None:  # begun before a restart
            log.info("job %s: finishing the restart begun under key %s", ref, key)
            return self._evict(job, key, plan, reason, about, fresh=False)
        now = self.clock()
        waiting = {job: since for job, since, _ in self.store.requeued()}
        if ref in waiting:  # restarted already (its node's isolation did it): once is enough
            return ActionResult("already", f"job {ref} was restarted at {int(waiting[ref])} "
                                           "and waits to run again")  # fmt: skip
        # a job that already failed has no pods to evict: only re-creating it restarts it
        failed = failed or job.status is JobStatus.FAILED
        verdict = jobs.decide(job, cause, self.store.restarts(ref), now, self.settings)
        if not verdict.allowed:
            self.ctx.tell("JobNotRestarted", f"{key}:{ref}", f"job {ref} not restarted",
                          f"{verdict.detail}: {reason}" if reason else verdict.detail,
                          {"job": ref, "pool": job.pool, **about}, "warning")  # fmt: skip
            if failed:  # the failure stands: say so on the job, as its restarts are
                self.ctx.event(Event("", "Job", name, "JobNotRestarted", "Warning",
                                     f"The training job was not restarted: {verdict.detail}.", now,
                                     job.pool, namespace))  # fmt: skip
            return ActionResult("refused", f"job {ref}: {verdict.detail}")
        if failed:
            return self._reissue(job, verdict, key, dry, reason, about)
        pods = [p for p in self.backend.pods() if p.namespace == namespace and p.job == name
                and p.phase not in TERMINAL_PODS]  # fmt: skip
        level = "job"
        if cause == "hang":
            chosen, why = self._pod_level(job, pods, hung)
            if chosen:
                pods, level = chosen, "pod"
            else:
                log.info("hung job %s: whole-job restart (%s)", ref, why)
        if dry:
            return ActionResult("dry-run", f"job {ref} would be restarted ({len(pods)} pods "
                                           f"evicted): {_why(verdict.detail, reason)}")  # fmt: skip
        plan = {"level": level, "pods": [[p.name, p.uid] for p in pods], "evicted": [],
                "counts": [verdict.total, verdict.streak, verdict.hang_streak],
                "detail": verdict.detail, "at": now}  # fmt: skip
        self.store.record_action(key, RESTART_KIND, "started", json.dumps(plan), now)
        return self._evict(job, key, plan, reason, about, fresh=True)

    def _evict(
        self, job: TrainingJob, key: str, plan: dict[str, Any], reason: str,
        about: dict[str, str], fresh: bool,
    ) -> ActionResult:  # fmt: skip
        """Carry out a restart's `plan` (saved under `key` as `started` before the first
        eviction): evict its pods one by one, each eviction saved with the restart count before
        the next, so a controller that dies midway resumes the plan (a re-sent key) and evicts
        only the planned pods still there by uid, never the ones their operator re-created.
        A blocked first eviction of a fresh plan costs nothing: the plan is dropped and the
        re-send decides again."""
        ref, at = f"{job.namespace}/{job.name}", plan["at"]
        live = {p.uid for p in self.backend.pods() if p.namespace == job.namespace
                and p.job == job.name and p.phase not in TERMINAL_PODS}  # fmt: skip
        done = set(plan["evicted"])
        for name, uid in plan["pods"]:
            if uid in done or uid not in live:  # evicted already (before a restart), or gone
                continue
            try:
                self.backend.evict(job.namespace, name)
            except KeyError:  # gone already (the simulated job restarts as a whole)
                continue
            except Exception:
                if done:  # the restart counts once a pod went: it stands with those
                    self._settle(job, key, plan)
                elif fresh:
                    self.store.forget_action(key)
                raise
            done.add(uid)
            plan["evicted"] = sorted(done)
            with self.store.tx():  # the count goes with the first eviction, each one saved
                self.store.record_action(key, RESTART_KIND, "started", json.dumps(plan), at)
                self.store.set_restarts(ref, *plan["counts"], at)
        if done or not plan["pods"] or not fresh:
            self._settle(job, key, plan)
        detail = plan["detail"]
        if plan["level"] == "pod":
            names = [n for n, _ in plan["pods"]]
            detail = (
                f"{detail}; pod-level: {', '.join(names)} "
                "evicted, its operator re-creates them, the other pods keep running"
            )
            self._restarted(job, detail, key, reason, at, about)
            return ActionResult("done", f"job {ref} restarted: {_why(detail, reason)}")
        try:  # MA-J-03: the re-issued job queues first
            self.backend.prioritize_job(job.namespace, job.name)
        except Exception as err:  # noqa: BLE001 - its restart stands; only the order is lost
            log.warning("job %s restarted but not prioritized: %r", ref, err)
        self._restarted(job, detail, key, reason, at, about)
        return ActionResult("done", f"job {ref} restarted: {_why(detail, reason)}")

    def _settle(self, job: TrainingJob, key: str, plan: dict[str, Any]) -> None:
        """A restart's evictions are over: its count, its wait in the queue (a job-level one)
        and the end of its plan, in one transaction."""
        ref, at = f"{job.namespace}/{job.name}", plan["at"]
        with self.store.tx():
            self.store.set_restarts(ref, *plan["counts"], at)
            if plan["level"] == "job":  # a pod-level restart leaves the job where it is
                # with the job's own uid: should its operator fail it for the pods lost,
                # failed_jobs finishes this restart by re-creating it
                gone = [uid for _, uid in plan["pods"]] + [f"job:{job.uid}"]
                self.store.requeue(ref, at, gone)  # MA-J-03
            self.store.record_action(key, RESTART_KIND, "done", json.dumps(plan), at)

    def _started(self, key: str) -> dict[str, Any] | None:
        """The plan of a restart under `key` that a controller began and did not finish."""
        seen = self.store.action(key)
        if seen is None or seen[0] != "started":
            return None
        plan: dict[str, Any] = json.loads(seen[1])
        return plan

    def _pod_level(
        self, job: TrainingJob, pods: list[Pod], hung: tuple[str, ...]
    ) -> tuple[list[Pod], str]:
        """MA-J-05's "restart at the process level", as near as Kubernetes allows: evict only
        the hung pods (all of the job's when the alert names none) and let the job's operator
        re-create them while the others keep running. Only where each affected replica's
        restart policy makes the operator re-create a lost pod (jobs.POD_RESTART_POLICIES);
        else ([], why) and the whole job restarts."""
        policies = dict(job.restart_policies)
        if not policies:
            return [], f"a {job.kind} has no per-replica restart policy"
        chosen = [p for p in pods if not hung or p.name in hung]
        if not chosen:
            return [], f"none of the hung pods {', '.join(hung)} is running"
        for pod in chosen:
            rtype = dict(pod.labels).get(REPLICA_TYPE_LABEL, "")
            policy = next((v for k, v in policies.items() if k.lower() == rtype.lower()), "")
            if policy not in jobs.POD_RESTART_POLICIES:
                return [], (f"pod {pod.name}: replica {rtype or '?'} has restart policy "
                            f"{policy or '(none set)'}")  # fmt: skip
        return chosen, ""

    def _reissue(
        self, job: TrainingJob, verdict: jobs.Decision, key: str, dry: bool, reason: str,
        about: dict[str, str],
    ) -> ActionResult:  # fmt: skip
        """Restart a failed job by re-creating it (same spec, fresh status), annotated with its
        restart count; it then waits in the queue like any re-issued job (MA-J-03)."""
        ref = f"{job.namespace}/{job.name}"
        if dry:
            return ActionResult("dry-run", f"failed job {ref} would be re-created: "
                                           f"{_why(verdict.detail, reason)}")  # fmt: skip
        now = self.clock()
        old = [p.uid for p in self.backend.pods() if p.namespace == job.namespace
               and p.job == job.name]  # fmt: skip
        marks = {RESTARTS_ANNOTATION: str(verdict.total),
                 RESTARTED_FROM_ANNOTATION: job.uid}  # fmt: skip
        try:
            self._recreate(job, marks, now)
        except ValueError as err:  # plain pods: nothing to re-create from
            return ActionResult("refused", f"job {ref}: {err}")
        self.store.set_restarts(ref, verdict.total, verdict.streak, verdict.hang_streak, now)
        self.store.requeue(ref, now, old)  # MA-J-03
        detail = f"{verdict.detail}; re-created"
        self._restarted(job, detail, key, reason, now, about)
        return ActionResult("done", f"job {ref} restarted: {_why(detail, reason)}")

    def _recreate(self, job: TrainingJob, marks: dict[str, str], now: float) -> None:
        """backend.recreate_job, with the copy of the job kept in the store from before its
        delete until its create succeeded: a re-creation cut short in between (the API failing
        on the create, this process stopping) is finished by pending_recreations."""
        key = f"{RECREATE}{job.namespace}/{job.name}"

        def save(manifest: str) -> None:
            self.store.record_action(key, RECREATE_KIND, "pending", manifest, now)

        try:
            self.backend.recreate_job(job.namespace, job.name, marks, save)
        except CreatePending as err:  # deleted: the restart is under way, the copy finishes it
            log.warning("job %s re-created only in part, finished from its copy: %s", job.name,
                        err)  # fmt: skip
            return
        if self.store.action(key) is not None:
            self.store.record_action(key, RECREATE_KIND, "done", "", now)

    def pending_recreations(self, now: float) -> None:
        """Finish the re-creations cut short: a job there under a new uid needs none; a missing
        one is created from its saved copy. While the old object (the uid the copy was made
        from) is in view, nothing is decided: either the view has not seen its delete yet, or
        the delete failed and the failure watch tries the whole re-creation again."""
        pending = self.store.actions_with(RECREATE_KIND, "pending")
        if not pending:
            return
        there = {f"{RECREATE}{j.namespace}/{j.name}": j.uid for j in self.backend.jobs()}
        for key, manifest in pending:
            ref = key.removeprefix(RECREATE)
            if key in there:
                if there[key] != jobs.copied_from(manifest):
                    self.store.record_action(key, RECREATE_KIND, "done", "", now)
                continue
            try:
                self.backend.create_job(manifest)
            except Exception as err:  # noqa: BLE001 - kept, and tried again next step
                log.warning("job %s: re-creating it from its saved copy failed: %r", ref, err)
                self.ctx.audit(RECREATE_KIND, ref, ActionResult("failed", repr(err)[:200]), key)
                continue
            self.store.record_action(key, RECREATE_KIND, "done", "", now)
            self.ctx.audit(RECREATE_KIND, ref, ActionResult("done", "created from the copy saved "
                                                            "before its delete"), key)  # fmt: skip

    def _restarted(
        self, job: TrainingJob, detail: str, key: str, reason: str, now: float,
        about: dict[str, str],
    ) -> None:  # fmt: skip
        """The seed's job event and a notice, for a restart done."""
        ref = f"{job.namespace}/{job.name}"
        if not getattr(self.backend, "emits_pool_events", False):
            self.ctx.event(Event("", "Job", job.name, "JobRestarted", "Normal",
                                 "The training job has been restarted.", now, job.pool,
                                 job.namespace))  # fmt: skip
        self.ctx.tell("JobRestarted", f"{key}:{ref}", f"job {ref} restarted",
                      _why(detail, reason), {"job": ref, "pool": job.pool, **about},
                      "info")  # fmt: skip

    def failed_jobs(self, now: float) -> None:
        """MA-J-04/06: restart the jobs that failed, per their own settings. Each failure (job
        uid and failure time) is decided once; a job without the auto restart annotation is
        left alone, unannounced. A failure with no platform evidence is called the user's only
        `failure_grace` after it happened (failures.py). A job that failed because the
        controller evicted its pods for a restart (a restart policy that fails the job on a lost
        pod) is re-created to finish that restart, without counting it again."""
        failed = [j for j in self.backend.jobs() if j.status is JobStatus.FAILED]
        keys = {f"failed:{j.uid}:{int(j.finished or 0)}" for j in failed}
        # the first-seen times of failures decided or of jobs deleted before their verdict
        self.store.forget_seen({k for k in keys if self.store.action(k) is None})
        if not failed:
            return
        s, evicted = self.settings, {ref: set(uids) for ref, _, uids in self.store.requeued()}
        nodes, pods = {n.name: n for n in self.backend.nodes()}, self.backend.pods()
        for job in failed:
            ref = f"{job.namespace}/{job.name}"
            key = f"failed:{job.uid}:{int(job.finished or 0)}"
            if self.store.action(key) is not None or self.store.action(f"gave-up:{job.uid}"):
                continue
            if s.retry_annotation not in dict(job.annotations):  # auto restart not asked for
                self.store.record_action(key, "jobFailed", "ignored", "no auto restart", now)
                continue
            # the grace counts from the failure's own time (its Failed condition), else from
            # when a controller first saw it, kept in the state: a restart does not restart it
            since = job.finished or self.store.first_seen(key, now)
            its = [p for p in pods if p.namespace == job.namespace and p.job == job.name]
            try:
                if f"job:{job.uid}" in evicted.get(ref, ()):
                    result = self._complete_restart(job, key, s.dry_run)
                else:
                    cause, why = failures.classify(job, its, nodes, s.keep_jobs_codes)
                    if cause == "user" and now - since < s.failure_grace:
                        continue  # an isolation of its node may still come
                    if ref in evicted:  # re-issued, and failed again before it ran
                        self.store.end_requeue(ref, "failed")
                    result = self.restart(ref, "fault" if cause == "platform" else "requested",
                                          key, s.dry_run, f"job failed ({cause}: {why})",
                                          failed=True)  # fmt: skip
            except Halted:
                raise
            except Exception as err:  # noqa: BLE001 - tried again next step
                log.warning("failed job %s: restart failed: %r", ref, err)
                self.ctx.audit("autoRestart", ref, ActionResult("failed", repr(err)[:200]), key)
                continue
            self.store.record_action(key, "jobFailed", result.outcome, result.detail, now)
            self.stats[("autoRestart", result.outcome)] += 1
            self.ctx.audit("autoRestart", ref, result, key)
            log.info("failed job %s: %s, %s", ref, result.outcome, result.detail)

    def _complete_restart(self, job: TrainingJob, key: str, dry: bool) -> ActionResult:
        """The job failed because the controller evicted its pods for a restart (a replica
        restart policy of Never): re-create it to finish that restart, counted once already."""
        ref = f"{job.namespace}/{job.name}"
        if dry:
            return ActionResult("dry-run", f"job {ref} would be re-created")
        total = self.store.restarts(ref)[0]
        marks = {RESTARTS_ANNOTATION: str(total), RESTARTED_FROM_ANNOTATION: job.uid}
        try:
            self._recreate(job, marks, self.clock())
        except ValueError as err:
            return ActionResult("refused", f"job {ref}: {err}")
        return ActionResult("done", f"job {ref} re-created to complete restart {total}")

    def restart_jobs_on(self, node: str, key: str, code: str, alert: str = "") -> str:
        """Restart the jobs with a live pod on `node`, isolated with fault `code` (at the
        request of `alert`, a rule's); what happened, for the action's detail."""
        refs = sorted({f"{p.namespace}/{p.job}" for p in self.backend.pods()
                       if p.node == node and p.job and p.phase not in TERMINAL_PODS})  # fmt: skip
        said = []
        for ref in refs:
            try:
                result = self.restart(ref, "fault", f"{key}:{ref}", False,
                                      f"node {node} isolated, {reasons.fault(code)}",
                                      about={"fault_code": code, "alert": alert})  # fmt: skip
            except Exception as err:  # noqa: BLE001 - the isolation and replacement go on
                log.warning("job %s on isolated node %s not restarted: %r", ref, node, err)
                result = ActionResult("failed", f"{type(err).__name__}: {err}")
            self.ctx.audit("restartJob", ref, result, key)
            why = result.detail.removeprefix(f"job {ref}: ")
            said.append(f"{ref} restarted" if result.outcome == "done" else
                        f"{ref} not restarted ({why})")  # fmt: skip
        return "; ".join(said)

    def requeued(self, now: float) -> None:
        """MA-J-03: a re-issued job that has not run again within requeue_timeout gives up.
        Running again means a Running pod that is not one of those evicted (by uid: operators
        recreate pods under the same names), not the job's status alone (a batch Job's
        startTime and status outlive its pods). Giving up is two steps: the verdict is recorded
        (`stopping`, with the mark that keeps failed_jobs from restarting the failure it makes),
        then the job is stopped and the notice queued with the end (`gave-up`); a controller
        that died in between finds the job `stopping` here and finishes it, once."""
        for ref, since in self.store.requeued_in("stopping"):
            self._give_up(ref, since, now)
        waiting = self.store.requeued()
        if not waiting:
            return
        by_ref = {f"{j.namespace}/{j.name}": j for j in self.backend.jobs()}
        fresh: set[str] = set()  # jobs with a Running pod that was not evicted
        gone = {uid for _, _, uids in waiting for uid in uids}
        for p in self.backend.pods():
            if p.phase == "Running" and p.uid not in gone:
                fresh.add(f"{p.namespace}/{p.job}")
        for ref, since, _ in waiting:
            job = by_ref.get(ref)
            if job is None and now - since < self.settings.view_timeout:
                continue  # re-created: the view may show the old one gone, the new not yet
            if job is None or job.status.value in ("Completed", "Failed", "Terminated"):
                self.store.end_requeue(ref, "ended")
            elif job.status.value == "Running" and ref in fresh:  # a new pod runs: it is back
                self.store.end_requeue(ref, "running")
            elif now - since >= self.settings.requeue_timeout:
                with self.store.tx():  # the verdict, before anything is stopped
                    self.store.end_requeue(ref, "stopping")
                    # the failure this exit makes is the controller's verdict: not restarted
                    self.store.record_action(f"gave-up:{job.uid}", "requeueTimeout", "done",
                                             ref, now)  # fmt: skip
                    self.ctx.audit("requeueTimeout", ref,
                                   ActionResult("failed", "waited too long"), "")  # fmt: skip
                self._give_up(ref, since, now)

    def _give_up(self, ref: str, since: float, now: float) -> None:
        """Stop a re-issued job given up on (`stopping`): its event, the stop, then the notice
        and the end of its wait in one transaction. A stop that failed on the API is tried
        again next step; a job that is gone needs no stop."""
        namespace, name = ref.split("/", 1)
        self.ctx.fence()
        job = next((j for j in self.backend.jobs() if (j.namespace, j.name) == (namespace, name)),
                   None)  # fmt: skip
        pool = job.pool if job is not None else ""
        if job is not None and not self._stop_job(namespace, name, ref, pool, now):
            return  # kept `stopping`: tried again next step
        self.ctx.tell("JobRequeueTimeout", ref, f"re-issued job {ref} gave up",
                      f"it waited {int(now - since)} s in the queue (limit "
                      f"{int(self.settings.requeue_timeout)} s, MA-J-03)",
                      {"job": ref, "pool": pool}, "warning",
                      then=lambda: self.store.end_requeue(ref, "gave-up"))  # fmt: skip

    def _stop_job(self, namespace: str, name: str, ref: str, pool: str, now: float) -> bool:
        """A re-issued job that waited too long exits (MA-J-03), as far as the backend can,
        with its event; False when the API refused the stop (tried again next step)."""
        try:
            self.backend.stop_job(namespace, name, "Failed to be queued.")
        except KeyError:  # gone meanwhile: nothing left to stop
            return True
        except Exception as err:  # noqa: BLE001 - the verdict stands; the stop is retried
            if ref not in self._stop_failed:  # each step tries again: audited, logged once
                self._stop_failed.add(ref)
                self.ctx.audit("stopJob", ref, ActionResult("failed", repr(err)[:200]), "")
                log.warning("re-issued job %s not stopped (tried again each step): %r", ref, err)
            return False
        self._stop_failed.discard(ref)
        self.ctx.event(Event("", "Job", name, "JobRequeueTimeout", "Warning",
                             "Failed to be queued.", now, pool, namespace))  # fmt: skip
        self.ctx.audit("stopJob", ref, ActionResult("done", "Failed to be queued."), "")
        return True


def _why(detail: str, reason: str) -> str:
    """A restart's detail and, after it, its reason (controller/reasons.py)."""
    return f"{detail}; {reason}" if reason else detail
