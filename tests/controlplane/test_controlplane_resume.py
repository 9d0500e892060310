"""A controller that dies in the middle of a job's give-up or a job's restart finishes it after
its restart (on the same state file), once: on the real kube-apiserver
(tests/helpers/controlplane.py), whose objects show what was stopped and what was evicted.

No job operator runs here: the test plays it (pods created and re-created as an operator
would). The process dies where a test raises `Died`, a BaseException, as a killed process does
not run the `except Exception` handlers on its way out.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction
from tests.controlplane.test_controlplane_jobs import RETRY, Jobs, cluster, make_node
from tests.helpers import until
from tests.helpers.controller_support import Recorder
from tests.helpers.controlplane import TestCluster

pytestmark = pytest.mark.controlplane
__all__ = ["cluster"]  # the fixture, shared with the job tests


class Died(BaseException):
    """The controller's process ends here."""


def controller(
    backend: KubernetesCluster, clock: list[float], state: Path, told: Recorder
) -> PoolController:
    settings = ControllerSettings(dry_run=False, backend="kubernetes", state_path=state)
    return PoolController(backend, settings, told, clock=lambda: clock[0])


def pods_of(kube: TestCluster, name: str) -> dict[str, Any]:
    items = kube.api.get(f"/api/v1/namespaces/{kube.namespace}/pods")["items"]
    return {p["metadata"]["name"]: p for p in items if p["metadata"]["name"].startswith(name)}


def test_a_give_up_cut_short_is_finished_by_the_next_controller(
    kube: TestCluster, cluster: KubernetesCluster, tmp_path: Path
) -> None:
    """A restarted job has waited 30 minutes without running again: the controller records
    that it gave up and dies before it suspends the job. The next controller on the same state
    suspends it (the job exits, MA-J-03) and tells the operator once."""
    ns, jobs = kube.namespace, Jobs(kube)
    node = f"gpu-wait-{kube.test_id}"
    make_node(kube, cluster, node)
    clock, state = [time.time()], tmp_path / "controller.db"
    first = Recorder()
    ctl = controller(cluster, clock, state, first)
    jobs.create("waits", {RETRY: "3"})
    jobs.pods("waits", node)
    until(lambda: len([p for p in cluster.pods() if p.job == "waits"]) == 3)
    done = ctl.submit(NodeAction("restart-job", "r-1", job=f"{ns}/waits",
                                 labels={"cause": "fault"}))  # fmt: skip
    assert done.outcome == "done", done.detail
    assert f"{ns}/waits" in [ref for ref, _, _ in ctl.store.requeued()]
    clock[0] += 31 * 60

    def dies(namespace: str, name: str, reason: str) -> None:
        raise Died

    real = cluster.stop_job
    cluster.stop_job = dies  # type: ignore[method-assign]
    try:
        with pytest.raises(Died):
            ctl.reconcile()
    finally:
        cluster.stop_job = real  # type: ignore[method-assign]
    ctl.store.close()
    assert not jobs.get("waits")["spec"].get("runPolicy", {}).get("suspend")  # not stopped

    second = Recorder()
    after = controller(cluster, clock, state, second)
    after.reconcile()
    stored = jobs.get("waits")
    assert stored["spec"]["runPolicy"]["suspend"] is True
    assert stored["metadata"]["annotations"]["poolwatch.io/stopped"] == "Failed to be queued."
    after.reconcile()
    told = [m for r in (first, second) for m in r.messages
            if m.labels["alertname"] == "PoolwatchControllerJobRequeueTimeout"]  # fmt: skip
    assert len(told) == 1
    trail = [(r.operation, r.outcome) for r in after.store.audit_trail()]
    assert trail.count(("stopJob", "done")) == 1


def test_a_restart_cut_short_is_finished_without_evicting_the_new_pods(
    kube: TestCluster, cluster: KubernetesCluster, tmp_path: Path
) -> None:
    """The controller restarts a job and dies after its first eviction. The job's operator
    re-creates the evicted pod (same name, new uid). The rule engine sends the same action
    again to the next controller on the same state: it evicts the two pods the first one did
    not get to, not the re-created one, and counts the restart once."""
    ns, jobs = kube.namespace, Jobs(kube)
    node = f"gpu-cut-{kube.test_id}"
    make_node(kube, cluster, node)
    clock, state = [time.time()], tmp_path / "controller.db"
    first = Recorder()
    ctl = controller(cluster, clock, state, first)
    jobs.create("halved", {RETRY: "3"})
    names = jobs.pods("halved", node)
    until(lambda: len([p for p in cluster.pods() if p.job == "halved"]) == 3)
    action = NodeAction("restart-job", "r-cut", job=f"{ns}/halved", labels={"cause": "fault"})
    real, calls = cluster.evict, []

    def dies_at_the_second(namespace: str, pod: str) -> None:
        if calls:
            ctl.store.close()  # the process is gone: nothing more is written
            raise Died
        calls.append(pod)
        real(namespace, pod)

    cluster.evict = dies_at_the_second  # type: ignore[method-assign]
    try:
        # a cleanup that a killed process would never run meets the closed store
        with pytest.raises((Died, sqlite3.ProgrammingError)):
            ctl.submit(action)
    finally:
        cluster.evict = real  # type: ignore[method-assign]
    [gone] = calls
    assert kube.kubelet.finish_deletions(ns) == [gone]
    owner = pods_of(kube, names[1])[names[1]]["metadata"]["ownerReferences"][0]
    labels = pods_of(kube, names[1])[names[1]]["metadata"]["labels"]
    kube.kubelet.pod(ns, gone, node, labels=labels, owner=owner)  # its operator's new pod
    new_uid = pods_of(kube, gone)[gone]["metadata"]["uid"]
    until(lambda: any(p.uid == new_uid for p in cluster.pods()))

    second = Recorder()
    after = controller(cluster, clock, state, second)
    done = after.submit(action)
    assert done.outcome == "done", done.detail
    left = pods_of(kube, "halved")
    assert not left[gone]["metadata"].get("deletionTimestamp"), "the new pod was evicted"
    for other in set(names) - {gone}:
        assert left[other]["metadata"].get("deletionTimestamp"), f"{other} not evicted"
    assert after.store.restarts(f"{ns}/halved")[0] == 1
    assert f"{ns}/halved" in [ref for ref, _, _ in after.store.requeued()]
    assert after.submit(action).outcome == "already"
    told = [m for r in (first, second) for m in r.messages
            if m.labels["alertname"] == "PoolwatchControllerJobRestarted"]  # fmt: skip
    assert len(told) == 1
