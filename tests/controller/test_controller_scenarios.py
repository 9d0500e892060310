"""The controller on the simulated pool: one scenario per rule (isolation, HA replacement within
POL-01..03, no spare, breaker, conflicts, job restarts MA-J-03..06, pools, dry-run, idempotency,
a restart mid-replacement).

Why one long file: every scenario drives the same simulated pool and controller through the same
helpers (tests/helpers/controller_support.py) and reads as one table of the controller's rules;
the sections follow the rules in the order docs/controller.md lists them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poolwatch.cluster.model import NodeStatus, Pod, Pool, PoolStatus
from poolwatch.cluster.simulated.spec import JobRequest
from poolwatch.cluster.workload import busy_nodes
from poolwatch.controller.pools import FAULT_TAINT
from poolwatch.core.actions import NodeAction
from tests.helpers.controller_support import (
    RETRY,
    CrashOnce,
    Recorder,
    SlowSpares,
    controller,
    isolate,
    of_status,
    sim,
    statuses,
    submit_job,
)


def job_of(cluster, ref: str):
    ns, name = ref.split("/")
    return next(j for j in cluster.jobs() if (j.namespace, j.name) == (ns, name))


def node_of(cluster, name: str):
    return next(n for n in cluster.nodes() if n.name == name)


def pool_of(cluster, name: str = "p0"):
    return next(p for p in cluster.pools() if p.name == name)


def test_single_fault_isolates_swaps_the_spare_restarts_the_job_and_tells() -> None:
    cluster, told = sim(nodes=8, spares=1), Recorder()
    ref = submit_job(cluster, "train")
    victim = next(p.node for p in cluster.pods())
    ctl = controller(cluster, told)

    result = ctl.submit(isolate(victim, "A050104"))

    assert result.outcome == "done", result.detail
    node = node_of(cluster, victim)
    assert (FAULT_TAINT, "A050104", "NoSchedule") in node.taints
    assert node.unschedulable
    assert node.status is NodeStatus.REPAIRING
    assert node.fault_code == "A050104"
    assert statuses(cluster)["p0-node-07"] == "Available"  # the spare took its place
    assert of_status(cluster, NodeStatus.SPARE) == []
    cluster.step(60)
    job = job_of(cluster, ref)
    assert job.priority == "3"  # re-issued at the highest priority (MA-J-03)
    assert job.restarts == 1
    assert job.status.value == "Running"
    assert all(p.node != victim for p in cluster.pods())
    reasons = [(e.reason, e.message) for e in cluster.events()]
    assert ("NodeIsolated", "Node isolated, fault code A050104 (ECC error occurred 64 times); "
            "alert PoolwatchTest: a test fault") in reasons  # fmt: skip
    assert any(r == "PoolResourcesStatusChange" and "from 7/0/0/0 to 6/1/0/0" in m
               for r, m in reasons)  # fmt: skip
    ctl.reconcile()
    assert {"PoolwatchControllerJobRestarted", "PoolwatchControllerNodeReplaced",
            "PoolwatchControllerPoolResourcesStatusChange"} <= set(told.names())  # fmt: skip
    ops = [(a.operation, a.outcome) for a in ctl.store.audit_trail()]
    assert ("replaceNode", "done") in ops
    assert ("restartJob", "done") in ops


def test_dry_run_is_the_default_and_changes_nothing() -> None:
    cluster, told = sim(), Recorder()
    from poolwatch.controller.service import PoolController

    ctl = PoolController(cluster, notifier=told, clock=lambda: cluster.now)
    before = statuses(cluster)
    result = ctl.submit(isolate("p0-node-01"))
    assert result.outcome == "dry-run"
    assert "would be tainted" in result.detail
    assert statuses(cluster) == before
    assert told.names() == ["PoolwatchControllerDryRun"]
    assert ctl.submit(NodeAction("isolate", "k", node="p0-node-01", fault_code="A050104",
                                 dry_run=True)).outcome == "dry-run"  # fmt: skip


def test_a_key_is_done_once() -> None:
    cluster = SlowSpares(sim())
    ctl = controller(cluster)
    assert ctl.submit(isolate("p0-node-01", key="k1")).outcome == "done"
    writes = len(cluster.writes)
    again = ctl.submit(isolate("p0-node-01", key="k1"))
    assert again.outcome == "already"
    assert "k1 was handled (done)" in again.detail
    assert len(cluster.writes) == writes


def test_bad_actions_are_refused_not_raised() -> None:
    ctl = controller(sim())
    assert ctl.submit(isolate("nope")).outcome == "refused"
    assert ctl.submit(NodeAction("isolate", "k", node="p0-node-01")).outcome == "refused"
    assert ctl.submit(NodeAction("restart-job", "k2", job="no-slash")).outcome == "refused"
    assert ctl.submit(NodeAction("restart-job", "k3", job="a/b")).detail == "no job a/b"


def test_concurrent_replacements_wait_for_the_5_percent_limit() -> None:
    cluster = SlowSpares(sim(nodes=20, spares=4))
    ctl = controller(cluster, breaker_ratio=0.5)
    results = [ctl.submit(isolate(f"p0-node-0{i}")) for i in range(3)]
    assert [r.outcome for r in results] == ["done", "deferred", "deferred"]
    assert "(POL-02)" in results[1].detail
    assert ctl.pool_activity("p0") == "replacing"
    cluster.arrive()
    ctl.reconcile()  # the first is done, the second starts (its spare is held again)
    states = [r.state for r in ctl.store.replacements("p0")]
    assert states == ["done", "running", "queued"]
    assert len(cluster.held) == 1


def test_daily_limit_of_20_percent_then_the_24h_timeout() -> None:
    cluster, told = sim(nodes=10, spares=5), Recorder()
    ctl = controller(cluster, told, breaker_ratio=0.5)
    outcomes = [ctl.submit(isolate(f"p0-node-0{i}")).outcome for i in range(3)]
    assert outcomes == ["done", "done", "deferred"]
    assert "(POL-01)" in ctl.store.replacements("p0")[-1].detail
    cluster.step(23 * 3600)
    ctl.reconcile()
    assert ctl.store.replacements("p0")[-1].state == "queued"
    cluster.step(3600)
    ctl.reconcile()
    last = ctl.store.replacements("p0")[-1]
    assert last.state == "failed"
    assert "(POL-03)" in last.detail
    assert "PoolwatchControllerReplacementFailed" in told.names()


def test_no_spare_keeps_the_node_isolated_marks_the_pool_abnormal_and_tells() -> None:
    cluster, told = sim(nodes=4, spares=0), Recorder()
    ctl = controller(cluster, told, breaker_ratio=0.5)
    result = ctl.submit(isolate("p0-node-01"))
    assert result.outcome == "deferred"
    assert "no spare" in result.detail
    assert statuses(cluster)["p0-node-01"] == "Isolated"
    assert pool_of(cluster).status is PoolStatus.ABNORMAL
    assert any(e.message == "Pool status changed, from Running to Abnormal" for e in
               cluster.events())  # fmt: skip
    assert "PoolwatchControllerNoSpare" in told.names()
    assert ctl.submit(isolate("p0-node-01")).outcome == "deferred"  # same key: still queued
    assert ctl.restore("p0-node-01", "fixed", "r1").outcome == "done"
    ctl.reconcile()
    assert pool_of(cluster).status is PoolStatus.RUNNING
    assert statuses(cluster)["p0-node-01"] == "Available"


def test_breaker_trips_stops_all_isolation_and_closes_after_cooldown() -> None:
    cluster, told = sim(nodes=10, spares=1), Recorder()
    ctl = controller(cluster, told)  # 20 %: at most 2 of 10 nodes out
    assert ctl.submit(isolate("p0-node-01")).outcome == "done"  # replaced, Repairing: 1 out
    assert ctl.submit(isolate("p0-node-02")).outcome == "deferred"  # no spare: 2 out
    third = ctl.submit(isolate("p0-node-03"))
    assert third.outcome == "refused"
    assert "circuit breaker" in third.detail
    assert ctl.breaker_open("p0")
    assert statuses(cluster)["p0-node-03"] == "Available"
    assert "PoolwatchControllerBreakerOpen" in told.names()
    assert ctl.submit(isolate("p0-node-04")).outcome == "refused"
    ctl.restore("p0-node-02", "fixed", "r2")
    ctl.reconcile()
    assert ctl.breaker_open("p0")  # cooling down
    cluster.step(601)
    ctl.reconcile()
    assert not ctl.breaker_open("p0")
    assert ctl.submit(isolate("p0-node-03", key="again")).outcome in ("done", "deferred")


def test_no_replacement_while_upgrading_or_resetting() -> None:
    cluster = sim(nodes=10, spares=2)
    ctl = controller(cluster, breaker_ratio=0.5)
    ctl.set_upgrading("p0", True)
    assert ctl.pool_activity("p0") == "upgrading"
    result = ctl.submit(isolate("p0-node-01"))
    assert result.outcome == "deferred"
    assert "driver upgrade" in result.detail
    ctl.set_upgrading("p0", False)
    cluster.label_node("p0-node-05", {"poolwatch.io/status": "Resetting"})
    assert ctl.pool_activity("p0") == "resetting"
    ctl.reconcile()
    assert "resetting" in ctl.store.replacements("p0")[0].detail
    cluster.label_node("p0-node-05", {"poolwatch.io/status": None})
    ctl.reconcile()
    assert ctl.store.replacements("p0")[0].state == "done"


def test_a_restart_mid_replacement_resumes_with_the_same_spare(tmp_path: Path) -> None:
    inner = sim(nodes=20, spares=3)
    ref = submit_job(inner, "train")
    victim = next(p.node for p in inner.pods())
    crashing = CrashOnce(inner)
    first = controller(crashing, state_path=tmp_path / "c.db")
    assert first.submit(isolate(victim, key="k1")).outcome == "failed"
    spare = first.store.replacements("p0")[0].spare
    assert statuses(inner)[victim] == "Replacing"
    assert spare
    first.store.close()

    again = Recorder()
    proxy = CrashOnce(inner)
    proxy.crashed = True
    second = controller(proxy, again, state_path=tmp_path / "c.db")
    second.reconcile()
    assert [r.state for r in second.store.replacements("p0")] == ["done"]
    assert statuses(inner)[spare] == "Available"
    assert statuses(inner)[victim] == "Repairing"
    assert len(of_status(inner, NodeStatus.SPARE)) == 2  # no second spare taken
    assert [w for w in proxy.writes if w[0] in ("taint", "evict")] == []  # nothing redone
    assert job_of(inner, ref).restarts == 1
    assert sum(e.reason == "NodeIsolated" for e in inner.events()) == 1
    assert second.submit(isolate(victim, key="k1")).outcome == "already"


def test_job_restart_follows_its_fault_tolerance_settings() -> None:
    cluster, told = sim(nodes=8, spares=0), Recorder()
    ctl = controller(cluster, told)
    off = submit_job(cluster, "off", per_worker=1, annotations=())
    on = submit_job(cluster, "on", per_worker=1,
                    annotations=(("fault-tolerance/job-retry-num", "8"),
                                 ("fault-tolerance/job-unconditional-retry", "true")))  # fmt: skip
    bare = submit_job(cluster, "bare", per_worker=1)  # retry 3, not unconditional
    opt_in = (("fault-tolerance/job-retry-num", "3"),
              ("fault-tolerance/restart-upon-suspension", "true"))  # fmt: skip
    hangs = submit_job(cluster, "hangs", per_worker=1, annotations=opt_in)

    def restart(ref: str, n: int, alert: str = "PoolwatchJobFailed") -> str:
        cluster.step(60)  # the last restart ran again (Running): no longer waiting
        ctl.reconcile()
        return ctl.submit(NodeAction("restart-job", f"{ref}:{n}", job=ref,
                                     labels={"alertname": alert})).outcome  # fmt: skip

    assert restart(off, 0) == "refused"  # MA-J-06: no annotation, no restart
    assert restart(bare, 0) == "refused"  # not environmental, not unconditional (MA-J-04)
    assert [restart(on, i) for i in range(4)] == ["done", "done", "done", "refused"]  # MA-J-04
    assert "PoolwatchControllerJobNotRestarted" in told.names()
    # MA-J-05: restart upon suspension only for a job that opted in, at most 3 in a row
    assert restart(bare, 10, "PoolwatchJobHung") == "refused"
    assert [restart(hangs, 10 + i, "PoolwatchJobHung") for i in range(4)] == [
        "done", "done", "done", "refused"]  # MA-J-05 (and the budget of 3, MA-J-06)  # fmt: skip
    cluster.step(2 * 3600)  # a streak ends after streak_reset of running
    assert restart(on, 9) == "done"
    assert job_of(cluster, on).restarts == 4


def test_a_job_is_restarted_once_per_fault() -> None:
    cluster = sim(nodes=4, spares=1)
    ref = submit_job(cluster, "train")
    node = next(p.node for p in cluster.pods())
    ctl = controller(cluster)
    # the engine sends isolate, replace (no code) and restart-job for one firing alert
    labels = {"alertname": "PoolwatchAcceleratorLost", "node": node}
    assert ctl.submit(isolate(node, "A050203")).outcome == "done"
    replace = ctl.submit(NodeAction("replace", "r", node=node, labels=labels))
    assert replace.outcome == "already"
    assert node_of(cluster, node).fault_code == "A050203"  # not overwritten by A050802
    again = ctl.submit(NodeAction("restart-job", "j", node=node, job=ref, labels=labels))
    assert again.outcome == "already"
    assert "waits to run again" in again.detail
    assert job_of(cluster, ref).restarts == 1


def test_a_requeued_job_gives_up_after_30_minutes() -> None:
    cluster, told = sim(nodes=3, spares=0), Recorder()
    big = submit_job(cluster, "big")
    node = next(p.node for p in cluster.pods())
    for other in {"p0-node-00", "p0-node-01", "p0-node-02"} - {node}:
        cluster.cordon(other)  # nowhere else to go
    ctl = controller(cluster, told, breaker_ratio=1.0)
    assert ctl.submit(isolate(node, "A050203")).outcome in ("done", "deferred")
    assert job_of(cluster, big).status.value == "Pending"
    assert job_of(cluster, big).restarts == 1
    cluster.step(29 * 60)
    ctl.reconcile()
    assert "PoolwatchControllerJobRequeueTimeout" not in told.names()
    cluster.step(60)
    ctl.reconcile()
    assert "PoolwatchControllerJobRequeueTimeout" in told.names()
    assert any(e.message == "Failed to be queued." for e in cluster.events())
    # the job exits rather than staying pending (MA-J-03)
    assert job_of(cluster, big).status.value == "Failed"
    assert ("stopJob", big, "done") in {
        (r.operation, r.target, r.outcome) for r in ctl.store.audit_trail(50)
    }


def test_upgrade_isolation_keeps_jobs_and_skips_the_breaker() -> None:
    cluster = sim(nodes=4, spares=0)
    ref = submit_job(cluster, "train")
    node = next(p.node for p in cluster.pods())
    ctl = controller(cluster)
    for n in ("p0-node-00", "p0-node-01", "p0-node-02"):
        assert ctl.isolate(n, "A200001", "driver upgrade", f"up:{n}").outcome == "done"
    assert job_of(cluster, ref).restarts == 0
    assert statuses(cluster)[node] == "Isolated"
    assert ctl.store.replacements() == []
    assert ctl.restore(node, "upgraded", f"done:{node}").outcome == "done"
    assert statuses(cluster)[node] == "Available"


def test_a_repaired_node_becomes_the_new_spare() -> None:
    cluster = sim(nodes=8, spares=1)
    ctl = controller(cluster)
    ctl.submit(isolate("p0-node-02"))
    assert statuses(cluster)["p0-node-02"] == "Repairing"
    assert ctl.restore("p0-node-02", "card replaced", "fix").outcome == "done"
    assert of_status(cluster, NodeStatus.SPARE) == ["p0-node-02"]
    assert not node_of(cluster, "p0-node-02").taints


def test_pools_are_created_released_and_deleted() -> None:
    cluster = sim(nodes=6, spares=1, pools=2)
    ctl = controller(cluster)
    bad = ctl.create_pool(Pool("Bad-", "", PoolStatus.CREATING), ["p1-node-00"], "c0")
    assert bad.outcome == "refused"
    assert "lowercase letter" in bad.detail
    busy = ctl.create_pool(Pool("new-1", "", PoolStatus.CREATING), ["p1-node-00"], "c1")
    assert busy.outcome == "refused"
    assert "is in pool p1" in busy.detail
    for n in ("p1-node-00", "p1-node-01", "p1-node-02"):
        assert ctl.release("p1", n, "move", f"rel:{n}").outcome == "done"
    assert {n.name for n in cluster.nodes() if n.pool == ""} == {"p1-node-00", "p1-node-01",
                                                                "p1-node-02"}  # fmt: skip
    made = ctl.create_pool(Pool("new-1", "", PoolStatus.CREATING, ha_spares=1),
                           ["p1-node-00", "p1-node-01", "p1-node-02"], "c2")  # fmt: skip
    assert made.outcome == "done", made.detail
    assert pool_of(cluster, "new-1").status is PoolStatus.RUNNING
    assert of_status(cluster, NodeStatus.SPARE, "new-1") == ["p1-node-02"]
    assert ctl.create_pool(Pool("new-1", "", PoolStatus.CREATING), [], "c2").outcome == "already"
    ref = submit_job(cluster, "train", pool="new-1")
    refused = ctl.delete_pool("new-1", "d1")
    assert refused.outcome == "refused"
    assert ref in refused.detail
    cluster.step(11 * 3600)  # the job completes
    assert ctl.delete_pool("new-1", "d2").outcome == "done"
    assert "new-1" not in {p.name for p in cluster.pools()}
    assert [a.operation for a in ctl.store.audit_trail() if a.outcome == "done"][-1] == (
        "DeletePoolV2"
    )


def test_daemonset_pods_do_not_keep_a_node_or_pool_busy() -> None:
    cluster = sim(nodes=4, spares=0, pools=2, daemonsets=("nvidia-device-plugin",))
    plugins = {p.node for p in cluster.pods() if p.namespace == "kube-system"}
    assert plugins == {n.name for n in cluster.nodes()}  # one on every node, Running
    ctl = controller(cluster)
    ref = submit_job(cluster, "train", pool="p1")
    busy = next(p.node for p in cluster.pods() if p.job == "train")
    freed = ctl.release("p0", "p0-node-00", "move", "r0")
    assert freed.outcome == "done", freed.detail
    refused = ctl.release("p1", busy, "move", "r1")
    assert refused.outcome == "refused"
    assert refused.detail == f"node {busy} runs jobs: {ref}"  # the plugin is not named
    deleted = ctl.delete_pool("p0", "d0")
    assert deleted.outcome == "done", deleted.detail
    assert ctl.delete_pool("p1", "d1").detail == f"pool p1 runs jobs: {ref}"


def test_pods_holding_accelerators_count_as_work_daemonsets_do_not() -> None:
    gpu = (("nvidia.com/gpu", 1.0),)
    pods = [
        Pod("plugin", "kube-system", "u1", "n1", "Running", requests=(("cpu", 0.1),)),
        Pod("serve-0", "team-a", "u2", "n2", "Running", requests=gpu),  # inference, no job
        Pod("w-0", "team-a", "u3", "n3", "Pending", job="train"),
        Pod("w-1", "team-a", "u4", "n4", "Succeeded", job="train", requests=gpu),
        Pod("w-2", "team-a", "u5", "", "Pending", job="train", requests=gpu),  # not bound
    ]
    assert busy_nodes(pods) == {"n2": ["team-a/serve-0"], "n3": ["team-a/train"]}


def test_the_only_node_of_a_pool_is_not_released() -> None:
    cluster = sim(nodes=2, spares=0)
    ctl = controller(cluster)
    assert ctl.release("p0", "p0-node-00", "x", "a").outcome == "done"
    only = ctl.release("p0", "p0-node-01", "x", "b")
    assert only.outcome == "refused"
    assert "only node" in only.detail


def test_notices_wait_in_the_outbox_while_the_notifier_is_down() -> None:
    cluster, told = sim(nodes=4, spares=0), Recorder()
    told.down = True
    ctl = controller(cluster, told, breaker_ratio=0.5)
    ctl.submit(isolate("p0-node-01"))
    assert told.messages == []
    assert ctl.store.messages()
    told.down = False
    ctl.reconcile()
    assert "PoolwatchControllerNoSpare" in told.names()
    assert not ctl.store.messages()


@pytest.mark.parametrize("name", ["a", "pool-1", "x9-y"])
def test_good_pool_names(name: str) -> None:
    from poolwatch.controller.pools import check_pool_name

    assert check_pool_name(name) is None


@pytest.mark.parametrize("name", ["", "1pool", "Pool", "pool-", "po_ol", "a" * 64])
def test_bad_pool_names(name: str) -> None:
    from poolwatch.controller.pools import check_pool_name

    assert check_pool_name(name) is not None


def test_a_failed_action_is_tried_again_with_the_same_key() -> None:
    cluster = CrashOnce(sim(nodes=8, spares=1))
    ctl = controller(cluster)
    first = ctl.submit(isolate("p0-node-01", key="k"))
    assert first.outcome == "failed"
    assert "killed mid-replacement" in first.detail
    assert ctl.store.action("k") is None  # not recorded: the engine may send it again
    again = ctl.submit(isolate("p0-node-01", key="k"))
    assert again.outcome == "already"  # isolated, and its replacement resumes in the loop
    assert "Replacing" in again.detail
    ctl.reconcile()
    assert statuses(cluster.inner)["p0-node-01"] == "Repairing"


def test_a_dry_run_never_opens_the_breaker() -> None:
    cluster = sim(nodes=4, spares=0)
    ctl = controller(cluster, breaker_ratio=0.25)
    cluster.cordon("p0-node-00")  # one node out already: the limit for 4 nodes is 1
    result = ctl.submit(NodeAction("isolate", "d", node="p0-node-01", fault_code="A050104",
                                   dry_run=True))  # fmt: skip
    assert result.outcome == "refused"
    assert "would open" in result.detail
    assert not ctl.breaker_open("p0")


def test_a_replacement_left_by_a_controller_without_state_is_adopted() -> None:
    cluster, told = sim(nodes=8, spares=1), Recorder()
    first = controller(CrashOnce(cluster))  # in-memory state, lost with the process
    first.submit(isolate("p0-node-01"))
    assert statuses(cluster)["p0-node-01"] == "Replacing"
    second = controller(cluster, told)
    second.reconcile()
    assert statuses(cluster)["p0-node-01"] == "Repairing"
    assert "PoolwatchControllerReplacementAdopted" in told.names()


def test_failed_jobs_restart_per_cause_and_settings_as_on_kubernetes() -> None:
    """The failure watch on the simulated pool, as test_controlplane_jobs.py on the API server:
    a job failed by a fault under it (its node isolated after the failure) is re-issued; one
    that failed by itself on a healthy node is not, with retry-num alone; with unconditional
    restart on, three failures in a row are re-issued and the fourth is not, and recorded."""
    cluster, told = sim(nodes=6, spares=0), Recorder()
    ctl = controller(cluster, told, failure_grace=120, breaker_ratio=1.0)
    hw = submit_job(cluster, "hw", per_worker=8)
    node = next(p.node for p in cluster.pods() if p.job == "hw")
    unconditional = (("fault-tolerance/job-retry-num", "8"),
                     ("fault-tolerance/job-unconditional-retry", "true"))  # fmt: skip
    for name, opts in (("bug", RETRY), ("flaky", unconditional)):
        cluster.submit(JobRequest("team-a", "p0", workers=1, per_worker=8, name=name,
                                  duration=300.0, outcome="fail", annotations=opts))  # fmt: skip
    cluster.step(60)
    cluster.inject("ecc", node)
    cluster.step(700)  # the fault stalls hw, then fails it; bug and flaky fail by themselves
    assert {j.name: j.status.value for j in cluster.jobs()} == {
        "hw": "Failed", "bug": "Failed", "flaky": "Failed"}  # fmt: skip
    assert ctl.submit(isolate(node, "A050101")).outcome in ("done", "deferred")  # no spare
    ctl.reconcile()
    assert job_of(cluster, hw).status.value != "Failed"  # re-issued: queued or placed again
    assert job_of(cluster, hw).restarts == 1
    assert job_of(cluster, "team-a/bug").status.value == "Failed"  # within the grace still
    cluster.step(130)
    ctl.reconcile()
    assert job_of(cluster, "team-a/bug").status.value == "Failed"
    for attempt in range(3):  # flaky fails again after each restart, within the streak
        assert job_of(cluster, "team-a/flaky").restarts == attempt + 1
        cluster.stop_job("team-a", "flaky", "its code fails again")
        cluster.step(130)
        ctl.reconcile()
    flaky = job_of(cluster, "team-a/flaky")
    assert (flaky.status.value, flaky.restarts) == ("Failed", 3)
    trail = [(r.target, r.outcome) for r in ctl.store.audit_trail() if r.operation ==
             "autoRestart"]  # fmt: skip
    assert trail.count(("team-a/flaky", "done")) == 3
    assert ("team-a/flaky", "refused") in trail
    assert ("team-a/bug", "refused") in trail
    assert ("team-a/hw", "done") in trail
    assert "PoolwatchControllerJobNotRestarted" in told.names()


def test_a_restart_job_action_for_a_failed_job_re_creates_it() -> None:
    """A failed job has no live pod to evict: a restart-job action for it used to count a
    restart and change nothing. It is re-issued now."""
    cluster = sim(nodes=4, spares=0)
    opts = (("fault-tolerance/job-retry-num", "3"),
            ("fault-tolerance/job-unconditional-retry", "true"))  # fmt: skip
    cluster.submit(JobRequest("team-a", "p0", workers=1, per_worker=8, name="dead",
                              duration=120.0, outcome="fail", annotations=opts))  # fmt: skip
    cluster.step(300)
    assert job_of(cluster, "team-a/dead").status.value == "Failed"
    ctl = controller(cluster, failure_grace=3600)  # the failure watch keeps out of it here
    done = ctl.submit(NodeAction("restart-job", "r1", job="team-a/dead",
                                 labels={"alertname": "PoolwatchJobFailed"}))  # fmt: skip
    assert done.outcome == "done", done.detail
    assert "re-created" in done.detail
    dead = job_of(cluster, "team-a/dead")
    assert dead.status.value != "Failed"
    assert dead.restarts == 1


def test_a_saved_job_copy_waits_while_the_old_job_is_in_view() -> None:
    """The copy kept for a re-creation cut short (JobRestarts.pending_recreations): while the
    job it was made from still shows (a view behind the delete, or a delete that failed)
    nothing is decided; a job of that name under another uid finishes it."""
    cluster = sim(nodes=4, spares=0)
    ref = submit_job(cluster, "train")
    job = job_of(cluster, ref)
    ctl = controller(cluster)

    def pending(copied_from: str) -> None:
        manifest = json.dumps(
            {
                "metadata": {
                    "name": "train",
                    "namespace": "team-a",
                    "annotations": {"poolwatch.io/restarted-from": copied_from},
                }
            }
        )
        ctl.store.record_action("recreate:team-a/train", "recreateJob", "pending", manifest, 0.0)

    pending(job.uid)
    ctl.reconcile()
    assert ctl.store.action("recreate:team-a/train")[0] == "pending"
    pending("an-older-uid")
    ctl.reconcile()
    assert ctl.store.action("recreate:team-a/train")[0] == "done"
