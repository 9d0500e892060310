"""Automatic job restarts on the real kube-apiserver (tests/helpers/controlplane.py): a training
job that failed because of the platform is re-created (MA-J-04/06), one that failed by the
user's own error is not, the cap of three consecutive unconditional restarts holds, and a hung
job restarts only its hung pods where its restart policy lets the operator re-create them
(MA-J-05).

No job operator runs here (no training-operator): the test plays it where the controller depends
on it, setting the Failed condition on the job's status subresource and the pods' end states as
the operator and the kubelet would. What the controller writes (the job deleted and created
again, evictions, events) is the API server's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.cluster.model import JobStatus
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction
from tests.cluster.test_kubernetes_backend import RecordingBackoff
from tests.helpers import until
from tests.helpers.controlplane import ApiError, TestCluster, now_rfc3339

pytestmark = pytest.mark.controlplane

JOB_LABEL = "training.kubeflow.org/job-name"
TYPE_LABEL = "training.kubeflow.org/replica-type"
RETRY = "fault-tolerance/job-retry-num"
UNCONDITIONAL = "fault-tolerance/job-unconditional-retry"
HANG = "fault-tolerance/restart-upon-suspension"


def pytorchjob(name: str, annotations: dict[str, str], policy: str = "OnFailure") -> dict:
    template = {
        "spec": {
            "containers": [
                {
                    "name": "pytorch",
                    "image": "trainer:1",
                    "resources": {"limits": {"nvidia.com/gpu": "8"}},
                }
            ]
        }
    }
    replica = {"replicas": 1, "restartPolicy": policy, "template": template}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "annotations": annotations, "labels": {"team": "nlp"}},
        "spec": {"pytorchReplicaSpecs": {"Master": replica, "Worker": {**replica, "replicas": 2}}},
    }  # fmt: skip


class Jobs:
    """The training operator's and the kubelets' part, through the admin client."""

    def __init__(self, kube: TestCluster) -> None:
        self.kube, self.ns = kube, kube.namespace
        self.base = f"/apis/kubeflow.org/v1/namespaces/{self.ns}/pytorchjobs"

    def create(self, name: str, annotations: dict[str, str], policy: str = "OnFailure") -> dict:
        return self.kube.api.post(self.base, pytorchjob(name, annotations, policy))

    def get(self, name: str) -> dict:
        return self.kube.api.get(f"{self.base}/{name}")

    def pods(self, name: str, node: str, state: str = "Running", code: int = 0) -> list[str]:
        """The job's master and workers on `node`; `state` Failed ends them with exit `code`."""
        uid = self.get(name)["metadata"]["uid"]
        owner = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": name,
                 "uid": uid, "controller": True}  # fmt: skip
        names = []
        for rtype, index in (("master", 0), ("worker", 0), ("worker", 1)):
            pod = f"{name}-{rtype}-{index}-{uid[:5]}"
            labels = {JOB_LABEL: name, TYPE_LABEL: rtype}
            self.kube.kubelet.pod(self.ns, pod, node, labels=labels, owner=owner)
            if state == "Failed":
                stamp = now_rfc3339()
                ended = {"exitCode": code, "reason": "OOMKilled" if code == 137 else "Error",
                         "finishedAt": stamp}  # fmt: skip
                status = {"phase": "Failed", "containerStatuses": [{
                    "name": "pytorch", "image": "trainer:1", "imageID": "", "ready": False,
                    "restartCount": 0, "state": {"terminated": ended}}]}  # fmt: skip
                self.kube.api.patch(f"/api/v1/namespaces/{self.ns}/pods/{pod}/status",
                                    {"status": status})  # fmt: skip
            names.append(pod)
        return names

    def fail(self, name: str) -> None:
        stamp = now_rfc3339()
        cond = {"type": "Failed", "status": "True", "reason": "PyTorchJobFailed",
                "lastTransitionTime": stamp, "lastUpdateTime": stamp}  # fmt: skip
        status = {"conditions": [cond], "completionTime": stamp}
        self.kube.api.patch(f"{self.base}/{name}/status", {"status": status})


@pytest.fixture
def cluster(kube: TestCluster, tmp_path: Path) -> Iterator[KubernetesCluster]:
    backend = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp_path / "kc"), watch_timeout=5,
                                backoff=RecordingBackoff(), sync_timeout=30.0)  # fmt: skip
    backend.start()
    try:
        until(backend.healthy, 30)
        yield backend
    finally:
        backend.stop()


def failed_pods_seen(cluster: KubernetesCluster, ns: str, names: list[str]) -> None:
    """Wait until the backend's informer has these pods as Failed (the evidence it reads)."""
    until(lambda: {p.name for p in cluster.pods() if p.namespace == ns and p.phase == "Failed"}
          >= set(names))  # fmt: skip


def make_node(kube: TestCluster, cluster: KubernetesCluster, name: str) -> None:
    """A node of this test's pool, once the backend's informer has it (else "no node")."""
    kube.kubelet.node(name, {"poolwatch.io/pool": f"pool-{kube.test_id}"})
    until(lambda: any(n.name == name for n in cluster.nodes()))


def controller(cluster: KubernetesCluster, clock: list[float], **kw: Any) -> PoolController:
    settings = ControllerSettings(dry_run=False, backend="kubernetes", **kw)
    return PoolController(cluster, settings, clock=lambda: clock[0])


def seen(cluster: KubernetesCluster, ns: str, name: str, uid: str = "", status: Any = None) -> Any:
    """The job as the backend's informers have it, once it is that object in that status."""

    def look() -> Any:
        for j in cluster.jobs():
            if (
                (j.namespace, j.name) == (ns, name)
                and (not uid or j.uid == uid)
                and (status is None or j.status is status)
            ):
                return j
        return None

    return until(look)


def test_a_platform_failure_is_re_created_and_a_user_failure_is_not(
    kube: TestCluster, cluster: KubernetesCluster
) -> None:
    """Both jobs opted in to auto restart (retry-num 3), neither to unconditional restart: the
    one whose node the controller isolated is deleted and created again with the same spec, a
    fresh status and its restart count; the one that exited with an error on a healthy node
    fails for good once the grace for a late isolation is over, with an audit record, a notice
    and a job event saying why."""
    ns, jobs = kube.namespace, Jobs(kube)
    sick, fine = f"gpu-sick-{kube.test_id}", f"gpu-fine-{kube.test_id}"
    for node in (sick, fine):
        make_node(kube, cluster, node)
    clock = [time.time()]
    ctl = controller(cluster, clock, failure_grace=300)
    old = jobs.create("hw-fault", {RETRY: "3"})
    jobs.create("user-bug", {RETRY: "3"})
    failed_pods_seen(cluster, ns, jobs.pods("hw-fault", sick, "Failed", 1))  # the card died
    failed_pods_seen(cluster, ns, jobs.pods("user-bug", fine, "Failed", 1))
    assert ctl.isolate(sick, "A050203", "card lost", "iso-1").outcome == "done"
    jobs.fail("hw-fault")
    jobs.fail("user-bug")
    bug = seen(cluster, ns, "user-bug", status=JobStatus.FAILED)
    seen(cluster, ns, "hw-fault", status=JobStatus.FAILED)

    ctl.reconcile()
    new = jobs.get("hw-fault")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["spec"] == old["spec"]
    assert "status" not in new or not new["status"].get("conditions")
    marks = new["metadata"]["annotations"]
    assert marks["poolwatch.io/restarts"] == "1"
    assert marks["poolwatch.io/restarted-from"] == old["metadata"]["uid"]
    assert marks[RETRY] == "3"
    assert "poolwatch.io/requeued" in marks
    assert new["metadata"]["labels"] == {"team": "nlp"}
    assert ctl.store.restarts(f"{ns}/hw-fault")[0] == 1
    # the user's failure waits out the grace for a late isolation, then stands
    assert jobs.get("user-bug")["metadata"]["uid"] == bug.uid
    clock[0] += 400  # past the grace, counted from when it failed
    ctl.reconcile()
    assert jobs.get("user-bug")["metadata"]["uid"] == bug.uid
    trail = [(r.operation, r.target, r.outcome) for r in ctl.store.audit_trail()]
    assert ("autoRestart", f"{ns}/hw-fault", "done") in trail
    assert ("autoRestart", f"{ns}/user-bug", "refused") in trail
    events = kube.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
    by_reason = {(e["involvedObject"]["name"], e["reason"]): e["message"] for e in events}
    assert by_reason[("hw-fault", "JobRestarted")] == "The training job has been restarted."
    assert "not an environmental fault" in by_reason[("user-bug", "JobNotRestarted")]
    notices = [m for _, m in ctl.store.messages()] + ctl.store.sent_messages()
    said = [m["labels"]["alertname"] for m in notices]
    assert said.count("PoolwatchControllerJobRestarted") == 1
    assert said.count("PoolwatchControllerJobNotRestarted") == 1
    ctl.reconcile()  # each failure is decided once
    assert [r.target for r in ctl.store.audit_trail() if r.operation == "autoRestart"].count(
        f"{ns}/user-bug"
    ) == 1


def test_the_fourth_consecutive_failure_is_not_restarted(
    kube: TestCluster, cluster: KubernetesCluster
) -> None:
    """Unconditional auto restart with a budget of 8: three platform failures in a row are
    re-created, the fourth is refused (the seed's cap of three consecutive unconditional
    restarts) and recorded; the job stays Failed."""
    ns, jobs = kube.namespace, Jobs(kube)
    sick = f"gpu-flaky-{kube.test_id}"
    make_node(kube, cluster, sick)
    clock = [time.time()]
    ctl = controller(cluster, clock, failure_grace=0)
    assert ctl.isolate(sick, "A050203", "card lost", "iso-1").outcome == "done"
    jobs.create("flaky", {RETRY: "8", UNCONDITIONAL: "true"})
    uids = []
    for attempt in range(4):
        uid = jobs.get("flaky")["metadata"]["uid"]
        uids.append(uid)
        failed_pods_seen(cluster, ns, jobs.pods("flaky", sick, "Failed", 1))
        jobs.fail("flaky")
        seen(cluster, ns, "flaky", uid=uid, status=JobStatus.FAILED)
        clock[0] += 60  # it fails a minute after each restart: the streak goes on
        ctl.reconcile()
        stored = jobs.get("flaky")
        if attempt < 3:
            assert stored["metadata"]["uid"] != uid, f"restart {attempt + 1}"
            assert stored["metadata"]["annotations"]["poolwatch.io/restarts"] == str(attempt + 1)
            seen(cluster, ns, "flaky", uid=stored["metadata"]["uid"])
        else:
            assert stored["metadata"]["uid"] == uid  # the 4th: not restarted
    assert len(set(uids)) == 4
    trail = ctl.store.audit_trail()
    results = [(r.outcome, r.detail) for r in trail if r.operation == "autoRestart"]
    assert [o for o, _ in results] == ["done", "done", "done", "refused"]
    assert "3 unconditional restarts in a row (cap 3, MA-J-04)" in results[-1][1]
    assert ctl.store.restarts(f"{ns}/flaky")[:2] == (3, 3)


def test_a_hung_job_restarts_only_its_hung_pods_where_its_policy_allows(
    kube: TestCluster, cluster: KubernetesCluster
) -> None:
    """Restart upon suspension at the pod level: a PyTorchJob whose replicas restart OnFailure
    loses only the hung pod (evicted; its operator re-creates it), the other two keep running
    and the job is not re-queued. With restartPolicy Never a lost pod would fail the whole job,
    so every pod is evicted and the job waits in the queue as any re-issued job."""
    ns, jobs = kube.namespace, Jobs(kube)
    node = f"gpu-hang-{kube.test_id}"
    make_node(kube, cluster, node)
    clock = [time.time()]
    ctl = controller(cluster, clock)
    opted = {RETRY: "3", HANG: "true"}
    jobs.create("gentle", opted)
    jobs.create("strict", opted, policy="Never")
    gentle = jobs.pods("gentle", node)
    strict = jobs.pods("strict", node)
    for name in ("gentle", "strict"):
        until(lambda n=name: len([p for p in cluster.pods() if p.job == n]) == 3)
    hung = gentle[2]
    labels = {"alertname": "PoolwatchJobHang", "pod": hung}
    done = ctl.submit(NodeAction("restart-job", "hang-1", job=f"{ns}/gentle", labels=labels))
    assert done.outcome == "done", done.detail
    assert "pod-level" in done.detail
    left = {p["metadata"]["name"]: p for p in kube.api.get(f"/api/v1/namespaces/{ns}/pods")
            ["items"]}  # fmt: skip
    assert left[hung]["metadata"].get("deletionTimestamp")  # evicted: the kubelet finishes it
    for other in gentle[:2]:
        assert not left[other]["metadata"].get("deletionTimestamp")
    assert f"{ns}/gentle" not in [ref for ref, _, _ in ctl.store.requeued()]
    assert ctl.store.restarts(f"{ns}/gentle")[2] == 1  # the hang streak counts it

    labels = {"alertname": "PoolwatchJobHang", "pod": strict[0]}
    done = ctl.submit(NodeAction("restart-job", "hang-2", job=f"{ns}/strict", labels=labels))
    assert done.outcome == "done", done.detail
    assert "pod-level" not in done.detail
    left = {p["metadata"]["name"]: p for p in kube.api.get(f"/api/v1/namespaces/{ns}/pods")
            ["items"]}  # fmt: skip
    assert all(left[p]["metadata"].get("deletionTimestamp") for p in strict)
    assert f"{ns}/strict" in [ref for ref, _, _ in ctl.store.requeued()]


def _admitted(jobs: Jobs) -> bool:
    """Whether the API server would create a PyTorchJob now (a dry run through admission): the
    quota admission works from a cache that sees a deleted ResourceQuota a moment later, longer
    on a loaded machine."""
    try:
        jobs.kube.api.post(jobs.base, pytorchjob("probe", {}), dryRun="All")
    except ApiError:
        return False
    return True


def test_a_re_creation_cut_short_is_finished_from_the_saved_copy(
    kube: TestCluster, cluster: KubernetesCluster, tmp_path: Path
) -> None:
    """The API server deletes the failed job but refuses to create it again (a ResourceQuota
    that allows no PyTorchJob, standing in for any failure between the two requests). The copy
    saved before the delete survives a controller restart (the state file), and once the
    create is allowed the next controller creates the job from it: the job is not lost."""
    ns, jobs = kube.namespace, Jobs(kube)
    sick = f"gpu-cut-{kube.test_id}"
    make_node(kube, cluster, sick)
    clock, state = [time.time()], tmp_path / "controller.db"
    ctl = controller(cluster, clock, failure_grace=0, state_path=state)
    assert ctl.isolate(sick, "A050203", "card lost", "iso-1").outcome == "done"
    old = jobs.create("cut", {RETRY: "3"})
    failed_pods_seen(cluster, ns, jobs.pods("cut", sick, "Failed", 1))
    jobs.fail("cut")
    seen(cluster, ns, "cut", status=JobStatus.FAILED)
    counted = {"count/pytorchjobs.kubeflow.org": "0"}
    quota = f"/api/v1/namespaces/{ns}/resourcequotas"
    kube.api.post(quota, {"metadata": {"name": "no-jobs"}, "spec": {"hard": counted}})
    kube.api.patch(f"{quota}/no-jobs/status", {"status": {"hard": counted, "used": counted}})
    ctl.reconcile()
    with pytest.raises(ApiError, match="404"):
        jobs.get("cut")  # deleted, not created again
    assert ctl.store.restarts(f"{ns}/cut")[0] == 1  # the restart is under way
    ctl.store.close()  # the controller stops here

    assert not _admitted(jobs)  # the dry run goes through the quota check
    kube.api.delete(f"{quota}/no-jobs")
    until(lambda: _admitted(jobs))  # the API server's quota check has seen the delete
    after = controller(cluster, clock, failure_grace=0, state_path=state)
    until(lambda: not any(j.name == "cut" and j.namespace == ns for j in cluster.jobs()))
    after.reconcile()
    new = jobs.get("cut")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["spec"] == old["spec"]
    assert new["metadata"]["annotations"]["poolwatch.io/restarts"] == "1"
    trail = [(r.operation, r.outcome) for r in after.store.audit_trail()]
    assert ("recreateJob", "done") in trail
    after.reconcile()  # done once
    assert [r.operation for r in after.store.audit_trail()].count("recreateJob") == 1
