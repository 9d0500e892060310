"""A controller that dies in the middle of a job's give-up, a job's restart, a failure's grace or
an action finishes the work after its restart (on the same state file), once.

The process dies where a test raises `Died`: a BaseException, as a killed process does not run
the `except Exception` handlers on its way out. The simulated pool stands in for the cluster
(its writes are the same calls a Kubernetes backend gets); the real-API-server versions of the
give-up and the restart are in tests/controlplane/test_controlplane_resume.py.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from poolwatch.cluster.simulated.spec import JobRequest
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from tests.helpers.controller_support import (
    RETRY,
    Proxy,
    Recorder,
    isolate,
    sim,
    submit_job,
)


class Died(BaseException):
    """The controller's process ends here."""


def started(cluster: Any, told: Recorder, state: Path, **kw: Any) -> PoolController:
    settings = ControllerSettings(dry_run=False, state_path=state, **kw)
    return PoolController(cluster, settings, told, clock=lambda: cluster.now)


def job_of(cluster: Any, ref: str) -> Any:
    return next(j for j in cluster.jobs() if f"{j.namespace}/{j.name}" == ref)


class DiesAtStop(Proxy):
    """The controller dies as it asks the cluster to stop a job."""

    def stop_job(self, namespace: str, name: str, reason: str) -> None:
        raise Died


def test_a_give_up_cut_short_is_finished_by_the_next_controller(tmp_path: Path) -> None:
    """A re-issued job waited 30 minutes: the controller records that it gave up on it and dies
    before it stops the job. The next controller on the same state stops it and tells the
    operator, once; it is not restarted as a failure of its own."""
    state = tmp_path / "controller.db"
    cluster = sim(nodes=3, spares=0)
    big = submit_job(cluster, "big")
    node = next(p.node for p in cluster.pods())
    for other in {"p0-node-00", "p0-node-01", "p0-node-02"} - {node}:
        cluster.cordon(other)  # nowhere else to go: it waits in the queue
    first = Recorder()
    ctl = started(DiesAtStop(cluster), first, state, breaker_ratio=1.0)
    assert ctl.submit(isolate(node, "A050203")).outcome in ("done", "deferred")
    assert job_of(cluster, big).status.value == "Pending"
    cluster.step(31 * 60)
    with pytest.raises(Died):
        ctl.reconcile()
    ctl.store.close()
    assert job_of(cluster, big).status.value == "Pending"  # given up on, not stopped

    second = Recorder()
    after = started(cluster, second, state, breaker_ratio=1.0)
    after.reconcile()
    assert job_of(cluster, big).status.value == "Failed"  # it exits (MA-J-03)
    cluster.step(60)
    after.reconcile()
    after.reconcile()
    told = [m for r in (first, second) for m in r.messages
            if m.labels["alertname"] == "PoolwatchControllerJobRequeueTimeout"]  # fmt: skip
    assert len(told) == 1
    trail = [(r.operation, r.outcome) for r in after.store.audit_trail()]
    assert trail.count(("stopJob", "done")) == 1
    assert trail.count(("requeueTimeout", "failed")) == 1
    assert [e.message for e in cluster.events()].count("Failed to be queued.") == 1
    assert job_of(cluster, big).restarts == 1  # its exit is the verdict: not restarted again


class NoFailureTime(Proxy):
    """A backend whose failed jobs carry no failure time of their own: a stand-in for a batch
    Job, whose Failed status sets no completionTime (the simulated pool always sets one)."""

    def jobs(self) -> list[Any]:
        return [replace(j, finished=None) for j in self.inner.jobs()]


def test_the_failure_grace_is_not_restarted_by_a_controller_restart(tmp_path: Path) -> None:
    """A job failed by itself (no platform evidence): it is called the user's `failure_grace`
    after the failure was first seen. A controller restarted within the grace decides when
    the grace ends, not a whole grace after its own start."""
    state = tmp_path / "controller.db"
    inner = sim(nodes=4, spares=0)
    cluster = NoFailureTime(inner)
    inner.submit(JobRequest("team-a", "p0", workers=1, per_worker=8, name="bug",
                            duration=120.0, outcome="fail", annotations=RETRY))  # fmt: skip
    inner.step(300)
    assert job_of(cluster, "team-a/bug").status.value == "Failed"
    ctl = started(cluster, Recorder(), state, failure_grace=300)
    ctl.reconcile()  # first seen now: the grace for a late isolation begins
    ctl.store.close()
    inner.step(200)

    def decided(c: PoolController) -> list[str]:
        return [r.outcome for r in c.store.audit_trail() if r.operation == "autoRestart"]

    told = Recorder()
    after = started(cluster, told, state, failure_grace=300)
    after.reconcile()
    assert decided(after) == []  # 200 s of 300: a late isolation may still come
    inner.step(110)
    after.reconcile()
    assert decided(after) == ["refused"]  # the user's: retry-num alone does not restart it
    assert "PoolwatchControllerJobNotRestarted" in told.names()


class DiesAtTaint(Proxy):
    """The controller dies as it taints a node (the first write of an isolation)."""

    def taint_node(self, node: str, key: str, value: str, effect: str) -> None:
        raise Died


def audit_lines(state: Path) -> list[list[str]]:
    """`poolwatch controller audit` on the state file: its lines, split at the tabs."""
    out = subprocess.run([sys.executable, "-m", "poolwatch", "controller", "audit", "--state",
                          str(state)], capture_output=True, text=True, check=True)  # fmt: skip
    return [line.split("\t") for line in out.stdout.splitlines()]


def test_an_action_cut_short_is_on_the_audit_trail(tmp_path: Path) -> None:
    """The controller dies in the middle of an isolation: the audit trail shows it was tried
    (`started`) before any restart, the next controller marks it `interrupted`, and the rule
    engine's re-sent action is done and audited on its own line."""
    state = tmp_path / "controller.db"
    cluster = sim(nodes=4, spares=1)
    ctl = started(DiesAtTaint(cluster), Recorder(), state)
    action = isolate("p0-node-00", "A050104")
    with pytest.raises(Died):
        ctl.submit(action)
    ctl.store.close()
    [line] = audit_lines(state)
    assert line[1:4] == ["action:isolate", "p0-node-00", "started"]
    assert "PoolwatchTest: a test fault" in line[4]  # the reason it was asked for

    after = started(cluster, Recorder(), state)
    after.reconcile()
    assert after.submit(action).outcome == "done"
    after.store.close()
    lines = audit_lines(state)
    outcomes = [(ln[1], ln[3]) for ln in lines if ln[1] == "action:isolate"]
    assert outcomes == [("action:isolate", "interrupted"), ("action:isolate", "done")]
    assert lines[0][4].startswith("the controller stopped before this ended")


class RefusesOneStop(Proxy):
    """The API refuses the first stop of a job (it is down for a moment)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.refused = 0

    def stop_job(self, namespace: str, name: str, reason: str) -> None:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("connection refused")
        self.inner.stop_job(namespace, name, reason)


def test_a_refused_stop_is_tried_again(tmp_path: Path) -> None:
    """A job given up on whose stop the API refused is stopped at the next step; the operator
    hears of the give-up once, when it is done."""
    cluster = sim(nodes=3, spares=0)
    big = submit_job(cluster, "big")
    node = next(p.node for p in cluster.pods())
    for other in {"p0-node-00", "p0-node-01", "p0-node-02"} - {node}:
        cluster.cordon(other)
    told = Recorder()
    ctl = started(RefusesOneStop(cluster), told, tmp_path / "c.db", breaker_ratio=1.0)
    assert ctl.submit(isolate(node, "A050203")).outcome in ("done", "deferred")
    cluster.step(31 * 60)
    ctl.reconcile()
    assert job_of(cluster, big).status.value == "Pending"
    assert "PoolwatchControllerJobRequeueTimeout" not in told.names()
    ctl.reconcile()
    assert job_of(cluster, big).status.value == "Failed"
    ctl.reconcile()
    assert told.names().count("PoolwatchControllerJobRequeueTimeout") == 1
    stops = [r.outcome for r in ctl.store.audit_trail() if r.operation == "stopJob"]
    assert stops == ["failed", "done"]
