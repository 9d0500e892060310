"""The controller on the Kubernetes backend, through the real `kubernetes` client against
tests/k8s_stub.py: the taint, cordon, eviction, event and Lease requests and their bodies."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest
from k8s_stub import KubeApiStub

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.cluster.model import Pool, PoolStatus
from poolwatch.controller.leader import LeaderElector
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings, LeaseSettings
from poolwatch.core.actions import NodeAction

NODES, PODS, JOBS = "/api/v1/nodes", "/api/v1/pods", "/apis/batch/v1/jobs"
T0 = 1_790_000_000.0


def node(name: str, spare: bool = False) -> dict[str, Any]:
    labels = {"poolwatch.io/pool": "gpu", "node.kubernetes.io/instance-type": "gpu.8x.h100"}
    if spare:
        labels["poolwatch.io/status"] = "Spare"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels},
        "spec": {"unschedulable": spare},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"}},
    }  # fmt: skip


def seed(stub: KubeApiStub) -> None:
    for name in ("n0", "n1", "n2"):
        stub.put(NODES, node(name))
    stub.put(NODES, node("n3", spare=True))
    stub.put(JOBS, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "train", "namespace": "team-a", "uid": "uid-job",
                     "annotations": {"fault-tolerance/job-retry-num": "2"}},
        "spec": {"parallelism": 1, "template": {"spec": {"containers": [
            {"name": "w", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]}}},
        "status": {"active": 1, "startTime": "2026-11-22T00:00:00Z"},
    })  # fmt: skip
    stub.put(PODS, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "train-0", "namespace": "team-a", "uid": "uid-pod",
                     "labels": {"batch.kubernetes.io/job-name": "train"}},
        "spec": {"nodeName": "n0", "containers": [
            {"name": "w", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]},
        "status": {"phase": "Running"},
    })  # fmt: skip


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def stub() -> Iterator[KubeApiStub]:
    server = KubeApiStub()
    seed(server)
    yield server
    server.close()


@pytest.fixture
def cluster(stub: KubeApiStub) -> Iterator[KubernetesCluster]:
    config = kubernetes.client.Configuration(host=stub.url)
    config.retries = False
    config.connection_pool_maxsize = 32
    backend = KubernetesCluster(kubernetes.client.ApiClient(config), watch_timeout=5,
                                sync_timeout=30.0, clock=lambda: T0)  # fmt: skip
    yield backend
    backend.stop()


def sent(stub: KubeApiStub, method: str, path: str) -> list[Any]:
    with stub.cond:
        return [body for m, p, _, _, body in stub.requests if (m, p) == (method, path)]


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_isolate_replace_restart_as_api_calls(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    ctl = PoolController(cluster, ControllerSettings(dry_run=False), clock=lambda: T0)
    assert len(cluster.nodes()) == 4
    until(lambda: [p for p in cluster.pods() if p.job == "train"])
    ctl.reconcile()  # the pool's baseline for its events
    result = ctl.submit(NodeAction("isolate", "k1", node="n0", fault_code="A050104",
                                   reason="PoolwatchGpuRetiredPages"))  # fmt: skip
    assert result.outcome == "done", result.detail

    patches = sent(stub, "PATCH", f"{NODES}/n0")
    taint = next(p for p in patches if "taints" in p.get("spec", {}))
    assert taint["spec"]["taints"] == [
        {"key": "poolwatch.io/fault", "value": "A050104", "effect": "NoSchedule"}
    ]
    assert taint["metadata"]["resourceVersion"]  # conditional on what was read
    assert {"spec": {"unschedulable": True}} in patches
    assert {"metadata": {"labels": {"poolwatch.io/status": "Replacing"}}} in patches
    spare = sent(stub, "PATCH", f"{NODES}/n3")
    assert {"metadata": {"labels": {"poolwatch.io/status": None}}} in spare
    assert {"spec": {"unschedulable": False}} in spare
    eviction = sent(stub, "POST", "/api/v1/namespaces/team-a/pods/train-0/eviction")
    assert eviction == [{"apiVersion": "policy/v1", "kind": "Eviction",
                         "metadata": {"name": "train-0", "namespace": "team-a"}}]  # fmt: skip
    events = sent(stub, "POST", "/api/v1/namespaces/default/events")
    isolated = next(e for e in events if e["reason"] == "NodeIsolated")
    assert isolated["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "n0"}
    assert isolated["type"] == "Warning"
    requeued = sent(stub, "PATCH", "/apis/batch/v1/namespaces/team-a/jobs/train")
    assert requeued == [{"metadata": {"annotations": {"poolwatch.io/requeued":
                                                      "2026-09-21T14:13:20Z"}}}]  # fmt: skip
    job_events = sent(stub, "POST", "/api/v1/namespaces/team-a/events")
    assert [e["message"] for e in job_events] == ["The training job has been restarted."]

    def finished() -> bool:  # the watch shows the spare Available: the replacement is done
        ctl.reconcile()
        return ctl.store.replacements("gpu")[0].state == "done"

    until(finished)
    assert {"metadata": {"labels": {"poolwatch.io/status": "Repairing"}}} in sent(
        stub, "PATCH", f"{NODES}/n0"
    )
    pool_events = until(lambda: [e for e in sent(stub, "POST", "/api/v1/namespaces/default/events")
                                 if e["reason"] == "PoolResourcesStatusChange"])  # fmt: skip
    first = pool_events[0]
    assert first["involvedObject"]["kind"] == "Pool"
    assert first["involvedObject"]["apiVersion"] == "poolwatch.io/v1"
    assert re.fullmatch(r"Pool resources status changed, available/abnormal/creating/deleting "
                        r"count from 3/0/0/0 to \d/\d/0/0, timestamp: \d+",
                        first["message"])  # fmt: skip


def test_a_blocked_eviction_fails_the_action_and_says_why(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    stub.evict_status = 429
    ctl = PoolController(cluster, ControllerSettings(dry_run=False), clock=lambda: T0)
    until(lambda: [p for p in cluster.pods() if p.job == "train"])
    result = ctl.submit(NodeAction("restart-job", "r1", job="team-a/train",
                                   labels={"cause": "fault"}))  # fmt: skip
    assert result.outcome == "failed"
    assert "disruption budget" in result.detail


def test_mark_pool_reports_it_abnormal(cluster: KubernetesCluster) -> None:
    cluster.mark_pool("gpu", True)
    assert next(p for p in cluster.pools() if p.name == "gpu").status is PoolStatus.ABNORMAL
    cluster.mark_pool("gpu", False)
    assert next(p for p in cluster.pools() if p.name == "gpu").status is PoolStatus.RUNNING


def test_pool_membership_is_the_pool_label(stub: KubeApiStub, cluster: KubernetesCluster) -> None:
    cluster.set_node_pool("n2", None)
    cluster.set_node_pool("n2", "other")
    assert sent(stub, "PATCH", f"{NODES}/n2") == [
        {
            "metadata": {
                "labels": {
                    "poolwatch.io/pool": None,
                    "poolwatch.io/workspace": None,
                    "poolwatch.io/job-types": None,
                }
            }
        },
        {"metadata": {"labels": {"poolwatch.io/pool": "other"}}},  # no pool "other" to copy
    ]


def daemon_pod(node: str) -> dict[str, Any]:
    """The NVIDIA device plugin's pod, as its DaemonSet puts one on every node."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"nvidia-device-plugin-{node}", "namespace": "kube-system",
                     "uid": f"uid-dp-{node}", "labels": {"name": "nvidia-device-plugin-ds"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                          "name": "nvidia-device-plugin", "uid": "uid-ds",
                                          "controller": True}]},
        "spec": {"nodeName": node, "containers": [
            {"name": "plugin", "resources": {"requests": {"cpu": "50m"}}}]},
        "status": {"phase": "Running"},
    }  # fmt: skip


def test_daemonset_pods_do_not_block_release_and_pools_keep_their_workspace(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    for name in ("n0", "n1", "n2", "n3"):
        stub.put(PODS, daemon_pod(name))
    ctl = PoolController(cluster, ControllerSettings(dry_run=False), clock=lambda: T0)
    until(lambda: len(cluster.pods()) == 5)
    busy = ctl.release("gpu", "n0", "move", "r0")
    assert (busy.outcome, busy.detail) == ("refused", "node n0 runs jobs: team-a/train")
    freed = ctl.release("gpu", "n1", "move", "r1")
    assert freed.outcome == "done", freed.detail
    assert {"metadata": {"labels": {"poolwatch.io/pool": None, "poolwatch.io/workspace": None,
                                    "poolwatch.io/job-types": None}}} in sent(
        stub, "PATCH", f"{NODES}/n1")  # fmt: skip
    until(lambda: {n.name: n.pool for n in cluster.nodes()}["n1"] == "")
    pool = Pool("new-1", "", PoolStatus.CREATING, workspace="5", job_types=("Train", "Infer"))
    made = ctl.create_pool(pool, ["n1"], "c1")
    assert made.outcome == "done", made.detail
    assert {"metadata": {"labels": {"poolwatch.io/pool": "new-1", "poolwatch.io/workspace": "5",
                                    "poolwatch.io/job-types": "Train.Infer"}}} in sent(
        stub, "PATCH", f"{NODES}/n1")  # fmt: skip
    created = until(lambda: next((p for p in cluster.pools() if p.name == "new-1"), None))
    assert (created.workspace, created.job_types) == ("5", ("Train", "Infer"))
    gpu = next(p for p in cluster.pools() if p.name == "gpu")
    assert (gpu.workspace, gpu.job_types) == ("", ())  # labelled by hand: none
    deleted = ctl.delete_pool("new-1", "d1")  # its node still runs the device plugin
    assert deleted.outcome == "done", deleted.detail


def test_leader_election_on_a_lease(stub: KubeApiStub, cluster: KubernetesCluster) -> None:
    now = [T0]
    lease = LeaseSettings(identity="a", duration=15, renew=5)
    a = LeaderElector(cluster, lease, clock=lambda: now[0])
    b = LeaderElector(cluster, lease.model_copy(update={"identity": "b"}), clock=lambda: now[0])
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"

    assert a.step()
    created = sent(stub, "POST", path)
    assert created[0]["metadata"]["name"] == "poolwatch-controller"
    assert created[0]["spec"]["holderIdentity"] == "a"
    assert created[0]["spec"]["leaseDurationSeconds"] == 15
    assert created[0]["spec"]["renewTime"] == "2026-09-21T14:13:20.000000Z"  # RFC3339Micro
    assert not b.step()  # a holds it and renewed just now
    now[0] += 5
    assert a.step()
    renewed = sent(stub, "PUT", f"{path}/poolwatch-controller")
    assert renewed[-1]["metadata"]["resourceVersion"]  # conditional on the version read
    assert renewed[-1]["spec"]["renewTime"] == "2026-09-21T14:13:25.000000Z"
    now[0] += 16  # a stopped renewing: b takes over
    assert b.step()
    assert stub.leases[("default", "poolwatch-controller")]["spec"]["leaseTransitions"] == 1
    assert not a.step()
    b.release()
    assert stub.leases[("default", "poolwatch-controller")]["spec"]["holderIdentity"] == ""
    assert a.step()  # a released Lease is free at once


def test_a_lost_race_for_the_lease_is_a_standby(stub: KubeApiStub,
                                                cluster: KubernetesCluster) -> None:  # fmt: skip
    a = LeaderElector(cluster, LeaseSettings(identity="a"), clock=lambda: T0)
    assert a.step()
    with stub.cond:  # someone else renewed in between: our PUT carries a stale version
        stub.leases[("default", "poolwatch-controller")]["metadata"]["resourceVersion"] = "1"
    stale = cluster.read_lease("default", "poolwatch-controller")
    with stub.cond:
        stub.leases[("default", "poolwatch-controller")]["metadata"]["resourceVersion"] = "2"
    from poolwatch.cluster.backend import LeaseConflict

    with pytest.raises(LeaseConflict):
        cluster.write_lease(stale)  # type: ignore[arg-type]


def test_a_reissued_kubeflow_job_gets_the_priority_class(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    path = "/apis/kubeflow.org/v1/pytorchjobs"
    stub.install(path, "PyTorchJob", "kubeflow.org/v1")
    stub.put(path, {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": "llm", "namespace": "team-a", "uid": "uid-llm"},
        "spec": {"pytorchReplicaSpecs": {"Worker": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "w", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]}}}}},
    })  # fmt: skip
    cluster.requeue_priority_class = "training-high"
    until(lambda: [j for j in cluster.jobs() if j.name == "llm"])
    cluster.prioritize_job("team-a", "llm")
    patch = sent(stub, "PATCH", "/apis/kubeflow.org/v1/namespaces/team-a/pytorchjobs/llm")
    assert patch[0]["spec"] == {"runPolicy": {"schedulingPolicy": {"priorityClass":
                                                                   "training-high"}}}  # fmt: skip
    assert stub.collections[path].objects[("team-a", "llm")]["metadata"]["annotations"] == {
        "poolwatch.io/requeued": "2026-09-21T14:13:20Z"
    }


def test_no_spare_left_is_a_pool_status_change_event(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    ctl = PoolController(cluster, ControllerSettings(dry_run=False, breaker_ratio=0.5,
                                                     replace_daily_ratio=0.5),
                         clock=lambda: T0)  # fmt: skip
    assert len(cluster.nodes()) == 4
    ctl.reconcile()  # baseline: Running, 3/0/0/0
    assert ctl.submit(NodeAction("isolate", "a", node="n0", fault_code="A050104")).outcome == "done"
    until(lambda: ctl.reconcile() or ctl.store.replacements("gpu")[0].state == "done")
    until(lambda: [n for n in cluster.nodes() if n.name == "n1" and n.status.value == "Available"])
    second = ctl.submit(NodeAction("isolate", "b", node="n1", fault_code="A050104"))
    assert second.outcome == "deferred"
    assert "no spare" in second.detail
    ctl.reconcile()
    events = sent(stub, "POST", "/api/v1/namespaces/default/events")
    status = [e for e in events if e["reason"] == "PoolStatusChange"]
    assert [(e["type"], e["message"]) for e in status] == [
        ("Warning", "Pool status changed, from Running to Abnormal")
    ]
    assert next(p for p in cluster.pools() if p.name == "gpu").status is PoolStatus.ABNORMAL


def test_a_blocked_eviction_does_not_stop_the_isolation(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    stub.evict_status = 429
    ctl = PoolController(cluster, ControllerSettings(dry_run=False), clock=lambda: T0)
    until(lambda: [p for p in cluster.pods() if p.job == "train"])
    result = ctl.submit(NodeAction("isolate", "k", node="n0", fault_code="A050104"))
    assert result.outcome == "done"
    assert "team-a/train not restarted (EvictionBlocked" in result.detail
    assert ctl.store.restarts("team-a/train")[0] == 0  # a blocked eviction costs no budget
    assert "replacement" in result.detail


def test_a_batch_job_runs_again_only_with_a_new_pod(
    stub: KubeApiStub, cluster: KubernetesCluster
) -> None:
    now = [T0]
    ctl = PoolController(cluster, ControllerSettings(dry_run=False), clock=lambda: now[0])
    until(lambda: [p for p in cluster.pods() if p.job == "train"])
    restart = NodeAction("restart-job", "r", job="team-a/train", labels={"cause": "fault"})
    assert ctl.submit(restart).outcome == "done"
    until(lambda: not [p for p in cluster.pods() if p.job == "train"])
    now[0] += 31 * 60  # the Job object still says active: that is not running again
    ctl.reconcile()
    timeouts = [e for e in sent(stub, "POST", "/api/v1/namespaces/team-a/events")
                if e["reason"] == "JobRequeueTimeout"]  # fmt: skip
    assert [e["message"] for e in timeouts] == ["Failed to be queued."]

    stub.put(PODS, {  # the next restart's new pod comes up within the 30 minutes
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "train-1", "namespace": "team-a", "uid": "uid-pod-1",
                     "labels": {"batch.kubernetes.io/job-name": "train"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "w"}]},
        "status": {"phase": "Running"},
    })  # fmt: skip
    until(lambda: [p for p in cluster.pods() if p.uid == "uid-pod-1"])
    assert ctl.submit(NodeAction("restart-job", "r2", job="team-a/train",
                                 labels={"cause": "fault"})).outcome == "done"  # fmt: skip
    stub.put(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "train-1",
                "namespace": "team-a",
                "uid": "uid-pod-2",
                "labels": {"batch.kubernetes.io/job-name": "train"},
            },
            "spec": {"nodeName": "n1", "containers": [{"name": "w"}]},
            "status": {"phase": "Running"},
        },
    )  # fmt: skip  (same name, new uid: recreated)
    until(lambda: [p for p in cluster.pods() if p.uid == "uid-pod-2"])
    ctl.reconcile()
    assert ctl.store.requeued() == []
