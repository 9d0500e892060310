"""The Kubernetes backend against the real kube-apiserver and etcd (tests/helpers/controlplane.py).

The same behaviours tests/cluster/test_kubernetes_backend.py checks on its stand-in, checked again
on the real thing: the hand-built objects converted after a real list; list + watch with the
versions the server gives (first list from the watch cache, watch from the list's version with
bookmarks); real changes arriving as differences; a watch cut mid-stream by a TCP proxy and
resumed without a relist; 410 Gone after an API server restart, and the relist; a CRD deleted
and installed again while watched; labels, cordon and taints as the server stores them;
evictions through the Eviction API that a PodDisruptionBudget refuses; events written and read
back; the Lease's conditional writes; credentials the server refuses.

What the stand-in still checks alone is what a real server will not do: send garbage JSON, an
object without uid or of the wrong kind, a node with a negative quantity, a scripted 409 between
a read and a write (see test_kubernetes_backend.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from poolwatch.cluster import JobStatus, NodeStatus, PoolStatus
from poolwatch.cluster.backend import LeaseConflict
from poolwatch.cluster.kubernetes.api import USER_AGENT
from poolwatch.cluster.kubernetes.backend import ClusterUnavailable, KubernetesCluster
from poolwatch.cluster.kubernetes.write import ClusterWriteError, EvictionBlocked
from poolwatch.cluster.model import Event, Lease
from tests.cluster.test_kubernetes_backend import Recorder, RecordingBackoff, until
from tests.helpers.controlplane import ApiError, TestCluster
from tests.helpers.controlplane_crds import CRDS
from tests.helpers.controlplane_seed import Seeded, clean, fixture, seed_handbuilt
from tests.helpers.tcpproxy import TcpProxy

pytestmark = pytest.mark.controlplane
Make = Callable[..., KubernetesCluster]


@pytest.fixture
def make(kube: TestCluster, tmp_path: Path) -> Iterator[Make]:
    """Backends that find the API server through a kubeconfig (admin token, the test CA), as
    `poolwatch ... --kubeconfig` does; `server` points one at a proxy instead."""
    made: list[KubernetesCluster] = []

    def build(server: str | None = None, **kwargs: Any) -> KubernetesCluster:
        path = kube.kubeconfig(tmp_path / f"kubeconfig-{len(made)}", server)
        settings: dict[str, Any] = {"watch_timeout": 5, "backoff": RecordingBackoff(),
                                    "sync_timeout": 30.0}  # fmt: skip
        cluster = KubernetesCluster(kubeconfig=path, **(settings | kwargs))
        made.append(cluster)
        return cluster

    yield build
    for cluster in made:
        cluster.stop()


@pytest.fixture
def seeded(kube: TestCluster) -> Seeded:
    return seed_handbuilt(kube)


def informer(cluster: KubernetesCluster, name: str) -> Any:
    return next(i for i in cluster._informers if i.resource.name == name)


def queries(entries: list[dict[str, Any]], path: str) -> list[str]:
    """The query strings of the audited requests for collection `path`."""
    out = []
    for e in entries:
        uri = e["requestURI"]
        base, _, query = uri.partition("?")
        if base == path:
            out.append(query)
    return out


# --- the objects, converted -----------------------------------------------------------------------
def test_the_hand_built_objects_convert_after_a_real_list(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    cluster = make()
    ns = kube.namespace
    nodes = {n.name: n for n in cluster.nodes()}
    assert set(nodes) == {"gpu-node-07", "gpu-node-08", "npu-node-03"}
    gpu = nodes["gpu-node-07"]
    assert (gpu.pool, gpu.status, gpu.fault_code) == ("pool-h100-a", NodeStatus.AVAILABLE, "")
    assert gpu.allocatable_of("nvidia.com/gpu") == 8.0
    assert gpu.allocatable_of("cpu") == 191.5
    npu = nodes["npu-node-03"]
    assert (npu.status, npu.fault_code) == (NodeStatus.ISOLATED, "A050122")
    pools = {p.name: p for p in cluster.pools()}
    assert pools["pool-h100-a"].status is PoolStatus.RUNNING
    assert pools["pool-910b"].status is PoolStatus.ABNORMAL

    jobs = {(j.kind, j.name): j for j in cluster.jobs()}
    bert = jobs[("PyTorchJob", "bert-large-ft")]
    assert (bert.status, bert.namespace, bert.pool) == (JobStatus.RUNNING, ns, "pool-h100-a")
    assert (bert.workers, bert.accelerators_requested, bert.owner) == (2, 8.0, "alice")
    gpt = jobs[("vcjob", "gpt-pretrain")]
    assert (gpt.status, gpt.workers, gpt.restarts) == (JobStatus.RUNNING, 3, 1)
    mpi = jobs[("MPIJob", "allreduce")]
    assert (mpi.status, mpi.workers) == (JobStatus.COMPLETED, 3)
    assert jobs[("Job", "nightly-eval-29401440")].status is JobStatus.COMPLETED
    assert ("Job", "allreduce-launcher") not in jobs  # its owner is the MPIJob: part of it
    sweep = jobs[("Pod", "sweep-17")]
    assert (sweep.status, sweep.workers, sweep.pool) == (JobStatus.RUNNING, 2, "pool-h100-a")

    quotas = {(q.kind, q.name): q for q in cluster.quotas()}
    assert dict(quotas[("ResourceQuota", "team-a-gpu")].hard)["requests.nvidia.com/gpu"] == 16.0
    assert dict(quotas[("Queue", "training")].used)["nvidia.com/gpu"] == 24.0
    assert dict(quotas[("ElasticQuota", "root")].hard)["cpu"] == 999900.0
    assert {"algorithm-text", "infrastructure"} <= {n for _, n in quotas}

    events = {e.reason: e for e in cluster.events()}
    assert {"NodeNotReady", "SuccessfulCreatePod", "ExecuteAction"} <= set(events)
    assert (events["NodeNotReady"].kind, events["NodeNotReady"].pool) == ("Node", "pool-h100-a")
    created = events["SuccessfulCreatePod"]
    assert (created.kind, created.name, created.namespace) == ("Job", "bert-large-ft", ns)
    assert cluster.healthy()


# --- list and watch -------------------------------------------------------------------------------
def test_first_list_from_the_cache_then_a_watch_from_its_version_with_bookmarks(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    mark = kube.plane.audit_mark()
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    nodes = informer(cluster, "nodes")
    listed_at = nodes.resource_version
    until(lambda: queries(kube.plane.audit_since(mark, USER_AGENT, "ResponseStarted"),
                          "/api/v1/nodes"))  # fmt: skip
    done = kube.plane.audit_since(mark, USER_AGENT)
    lists = [q for q in queries(done, "/api/v1/nodes") if "watch=" not in q]
    assert lists == ["resourceVersion=0"]
    watches = queries(kube.plane.audit_since(mark, USER_AGENT, "ResponseStarted"), "/api/v1/nodes")
    assert "allowWatchBookmarks=true" in watches[0]
    assert f"resourceVersion={listed_at}" in watches[0]
    assert "timeoutSeconds=5" in watches[0]
    # the server ends each watch after 5 s; the informer watches on from where it was, and the
    # bookmark a real server sends before the end keeps that place current: never a relist
    until(lambda: len(queries(kube.plane.audit_since(mark, USER_AGENT, "ResponseStarted"),
                              "/api/v1/nodes")) >= 3, timeout=30)  # fmt: skip
    done = kube.plane.audit_since(mark, USER_AGENT)
    assert [q for q in queries(done, "/api/v1/nodes") if "watch=" not in q] == lists
    assert nodes.relists == 0
    assert int(nodes.resource_version) >= int(listed_at)


def test_real_changes_arrive_as_differences(kube: TestCluster, seeded: Seeded, make: Make) -> None:
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    api, ns = kube.api, kube.namespace
    mark = rec.mark()
    for node in ("gpu-node-07", "gpu-node-08"):  # the pool's every node cordoned
        api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}})
    rec.wait(mark, ("MODIFIED", "node", "gpu-node-07"), ("MODIFIED", "pool", "pool-h100-a"))
    until(lambda: rec.last("pool", "pool-h100-a").status is PoolStatus.ABNORMAL)
    assert rec.last("node", "gpu-node-07").status is NodeStatus.UNAVAILABLE

    path = f"/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs/bert-large-ft"
    job = api.get(path)
    job["status"]["conditions"][-1]["status"] = "False"
    job["status"]["conditions"].append({"type": "Failed", "status": "True", "reason": "OOM"})
    mark = rec.mark()
    api.put(f"{path}/status", job)
    for pod in ("sweep-17-a", "sweep-17-b"):
        api.delete(f"/api/v1/namespaces/{ns}/pods/{pod}", grace=0)
    rec.wait(mark, ("MODIFIED", "job", "bert-large-ft"), ("DELETED", "job", "sweep-17"))
    assert rec.last("job", "bert-large-ft").status is JobStatus.FAILED
    assert ("DELETED", "pod", "sweep-17-a") in rec.since(mark)
    # a heartbeat changes the node's resourceVersion but nothing poolwatch shows: no event
    mark = rec.mark()
    kube.kubelet.set_condition("gpu-node-08", "Ready", "True", "KubeletReady")
    api.patch(f"/api/v1/namespaces/{seeded.quota_namespace}/resourcequotas/team-a-gpu/status",
              {"status": {"used": {"pods": "3"}}})  # fmt: skip
    rec.wait(mark, ("MODIFIED", "quota", "team-a-gpu"))
    assert not [e for e in rec.since(mark) if e[2] == "gpu-node-08"]


def test_a_watch_cut_mid_stream_is_resumed_from_its_version_without_a_relist(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    with TcpProxy(kube.plane.port) as proxy:
        cluster = make(proxy.url)
        rec = Recorder(cluster)
        rec.synced()
        pods = informer(cluster, "pods")
        until(lambda: pods._active is not None, what="a pods watch open")
        before = pods.resource_version
        mark = kube.plane.audit_mark()
        assert proxy.cut() >= 1
        kube.api.delete(f"/api/v1/namespaces/{kube.namespace}/pods/scratch-shell", grace=0)
        seen = rec.mark()
        rec.wait(seen, ("DELETED", "pod", "scratch-shell"))
        assert pods.relists == 0
        assert pods.reconnects >= 1
        done = kube.plane.audit_since(mark, USER_AGENT, "ResponseStarted")
        resumed = queries(done, "/api/v1/pods")
        # resumed from the version it had reached: `before`, or a later one when events from
        # elsewhere in the cluster (the previous test's cleanup) arrived before the cut
        versions = [int(v) for q in resumed for v in re.findall(r"resourceVersion=(\d+)", q)]
        assert any(v >= int(before) for v in versions), resumed
        assert not [q for q in queries(kube.plane.audit_since(mark, USER_AGENT), "/api/v1/pods")
                    if "watch=" not in q]  # fmt: skip
        until(cluster.healthy, what="healthy again (its readiness probe went through the cut too)")


def test_410_gone_after_an_api_server_restart_relists_and_emits_the_differences(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    """What the watch misses while the API server restarts (its watch cache starts again at
    the current version, so an informer's older version is 410 Gone) comes as differences."""
    with TcpProxy(kube.plane.port) as proxy:
        cluster = make(proxy.url)
        rec = Recorder(cluster)
        rec.synced()
        mark = rec.mark()
        proxy.refuse()  # the informers lose the API server
        api = kube.api
        api.delete("/api/v1/nodes/gpu-node-08")
        api.patch("/api/v1/nodes/npu-node-03", {"spec": {"taints": None}})
        node = clean(fixture("nodelist_HANDBUILT.json")["items"][0], None, kube.test_id)
        node["metadata"]["name"] = "gpu-node-09"
        api.post("/api/v1/nodes", node)
        kube.plane.restart_apiserver()
        audit = kube.plane.audit_mark()
        proxy.allow()
        seen = rec.wait(
            mark,
            ("DELETED", "node", "gpu-node-08"),
            ("MODIFIED", "node", "npu-node-03"),
            ("ADDED", "node", "gpu-node-09"),
            ("MODIFIED", "pool", "pool-910b"),
        )
        assert ("ADDED", "node", "gpu-node-07") not in seen  # unchanged: not emitted again
        nodes = informer(cluster, "nodes")
        assert nodes.relists >= 1
        relists = [q for q in queries(kube.plane.audit_since(audit, USER_AGENT), "/api/v1/nodes")
                   if "watch=" not in q]  # fmt: skip
        assert "" in relists  # a consistent read: no resourceVersion at all
        # the readiness probe went through the refusing proxy too: until it passes again, reading
        # is refused (ClusterUnavailable), by design; the watch above needed no probe
        until(cluster.healthy)
        assert sorted(n.name for n in cluster.nodes()) == [
            "gpu-node-07", "gpu-node-09", "npu-node-03"]  # fmt: skip


def test_a_crd_deleted_and_installed_again_while_watched(kube: TestCluster, make: Make) -> None:
    tfjobs = next(c for c in CRDS if c["metadata"]["name"] == "tfjobs.kubeflow.org")
    path = f"/apis/kubeflow.org/v1/namespaces/{kube.namespace}/tfjobs"
    job = clean(fixture("pytorchjob_HANDBUILT.json"), kube.namespace, kube.test_id)
    job["kind"], job["apiVersion"] = "TFJob", "kubeflow.org/v1"
    job["spec"]["tfReplicaSpecs"] = job["spec"].pop("pytorchReplicaSpecs")
    job["metadata"]["name"] = "tf-resnet"
    kube.api.post(path, job)
    cluster = make(absent_retry=0.5)
    rec = Recorder(cluster)
    rec.synced()
    assert ("TFJob", "tf-resnet") in {(j.kind, j.name) for j in cluster.jobs()}
    mark = rec.mark()
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tfjobs.kubeflow.org"
    try:
        kube.api.delete(crd_path)
        rec.wait(mark, ("DELETED", "job", "tf-resnet"))
        until(lambda: cluster.informers()["tfjobs.kubeflow.org/v1"] == "absent")
        assert cluster.healthy()  # a CRD that is not there is nothing to see, not a failure
        assert "tf-resnet" not in {j.name for j in cluster.jobs()}
    finally:
        until(lambda: _gone(kube, crd_path), timeout=60, what="the CRD removed")
        kube.plane.install_crds((tfjobs,))
    mark = rec.mark()
    kube.api.post(path, job)
    rec.wait(mark, ("ADDED", "job", "tf-resnet"))
    until(lambda: cluster.informers()["tfjobs.kubeflow.org/v1"] == "synced")


def _gone(kube: TestCluster, path: str) -> bool:
    try:
        kube.api.get(path)
    except ApiError as err:
        return err.status == 404
    return False


def test_an_unknown_phase_is_counted_and_the_watch_goes_on(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    """Of the odd objects, the one a real server stores: a phase poolwatch does not know."""
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    path = f"/apis/batch.volcano.sh/v1alpha1/namespaces/{kube.namespace}/jobs/gpt-pretrain"
    job = kube.api.get(path)
    job["status"]["state"]["phase"] = "Exploded"
    mark = rec.mark()
    kube.api.put(f"{path}/status", job)
    kube.api.delete("/api/v1/nodes/gpu-node-08")
    rec.wait(mark, ("MODIFIED", "job", "gpt-pretrain"), ("DELETED", "node", "gpu-node-08"))
    assert rec.last("job", "gpt-pretrain").status is JobStatus.ABNORMAL
    assert cluster.skipped["vcjob: unknown phase"] >= 1
    assert cluster.healthy()


# --- the write side -------------------------------------------------------------------------------
def test_labels_cordon_and_taints_as_the_server_stores_them(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    api = kube.api
    cluster.label_node("gpu-node-07", {"poolwatch.io/status": "Repairing",
                                       "nvidia.com/gpu.count": None})  # fmt: skip
    labels = api.get("/api/v1/nodes/gpu-node-07")["metadata"]["labels"]
    assert labels["poolwatch.io/status"] == "Repairing"
    assert "nvidia.com/gpu.count" not in labels
    until(lambda: rec.last("node", "gpu-node-07").status is NodeStatus.REPAIRING)

    cluster.cordon("gpu-node-08")
    assert api.get("/api/v1/nodes/gpu-node-08")["spec"]["unschedulable"] is True
    until(lambda: rec.last("pool", "pool-h100-a").status is PoolStatus.ABNORMAL)
    cluster.cordon("gpu-node-08", False)
    assert not api.get("/api/v1/nodes/gpu-node-08")["spec"].get("unschedulable")

    cluster.taint_node("gpu-node-08", "poolwatch.io/fault", "A050101", "NoSchedule")
    cluster.taint_node("gpu-node-08", "poolwatch.io/fault", "A050101", "NoSchedule")  # no-op
    cluster.taint_node("gpu-node-08", "poolwatch.io/fault", "A050203", "NoExecute")
    taints = [t for t in api.get("/api/v1/nodes/gpu-node-08")["spec"]["taints"]
              if t["key"].startswith("poolwatch.io/")]  # fmt: skip
    assert [(t["key"], t["value"], t["effect"]) for t in taints] == [
        ("poolwatch.io/fault", "A050101", "NoSchedule"),
        ("poolwatch.io/fault", "A050203", "NoExecute"),
    ]
    assert taints[1]["timeAdded"].endswith("Z")  # the API server accepted poolwatch's time
    until(lambda: rec.last("node", "gpu-node-08").status is NodeStatus.ISOLATED)
    cluster.untaint_node("gpu-node-08", "poolwatch.io/fault")
    left = api.get("/api/v1/nodes/gpu-node-08")["spec"].get("taints") or []
    assert not [t for t in left if t["key"].startswith("poolwatch.io/")]
    until(lambda: rec.last("node", "gpu-node-08").status is NodeStatus.AVAILABLE)
    with pytest.raises(ClusterWriteError, match=r"label no-such-node: HTTP 404"):
        cluster.label_node("no-such-node", {"a": "b"})
    with pytest.raises(ClusterWriteError, match="HTTP 422"):  # the server's own validation
        cluster.label_node("gpu-node-07", {"poolwatch.io/status": "not a label value!"})


def test_an_eviction_a_disruption_budget_refuses_is_not_forced(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    api, ns = kube.api, kube.namespace
    kube.kubelet.set_phase(ns, "sweep-17-a", "Running")  # running and ready: healthy
    api.post(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", {
        "metadata": {"name": "sweep"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"poolwatch.io/job": "sweep-17"}}},
    })  # fmt: skip
    assert kube.kubelet.settle_pdb(ns, "sweep")["status"]["disruptionsAllowed"] == 0
    with pytest.raises(EvictionBlocked, match="disruption budget") as blocked:
        cluster.evict(ns, "sweep-17-a")
    assert blocked.value.status == 429
    pod = api.get(f"/api/v1/namespaces/{ns}/pods/sweep-17-a")
    assert not pod["metadata"].get("deletionTimestamp")  # not deleted some other way
    api.patch(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/sweep",
              {"spec": {"minAvailable": 0}})  # fmt: skip
    kube.kubelet.settle_pdb(ns, "sweep")
    mark = rec.mark()
    cluster.evict(ns, "sweep-17-a")
    assert api.get(f"/api/v1/namespaces/{ns}/pods/sweep-17-a")["metadata"]["deletionTimestamp"]
    kube.kubelet.finish_deletions(ns)  # the kubelet stops the pod and confirms
    rec.wait(mark, ("DELETED", "pod", "sweep-17-a"), ("MODIFIED", "job", "sweep-17"))
    assert rec.last("job", "sweep-17").workers == 1
    cluster.evict(ns, "sweep-17-a")  # already gone: what the eviction wanted


def test_events_are_written_and_read_back(kube: TestCluster, seeded: Seeded, make: Make) -> None:
    cluster = make()
    rec = Recorder(cluster)
    rec.synced()
    ns, t = kube.namespace, time.time() // 1
    cluster.record_event(Event("", "Node", "gpu-node-07", "NodeIsolated", "Abnormal", "A050101", t))
    cluster.record_event(Event("", "Job", "bert-large-ft", "JobRestarted", "Warning", "restarted",
                               t, namespace=ns))  # fmt: skip
    stored = kube.api.get("/api/v1/namespaces/default/events")["items"]
    node = next(e for e in stored if e["reason"] == "NodeIsolated")
    assert node["involvedObject"]["name"] == "gpu-node-07"
    assert node["source"]["component"] == "poolwatch"
    job = next(e for e in kube.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
               if e["reason"] == "JobRestarted")  # fmt: skip
    bert = kube.api.get(f"/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs/bert-large-ft")
    real_uid = bert["metadata"]["uid"]
    assert job["involvedObject"]["uid"] == real_uid
    assert job["involvedObject"]["kind"] == "PyTorchJob"
    until(lambda: {"NodeIsolated", "JobRestarted"} <= {e.reason for e in cluster.events()})
    back = {e.reason: e for e in cluster.events()}
    assert (back["NodeIsolated"].kind, back["NodeIsolated"].pool) == ("Node", "pool-h100-a")
    assert (back["JobRestarted"].kind, back["JobRestarted"].namespace) == ("Job", ns)


def test_lease_writes_are_conditional(kube: TestCluster, make: Make) -> None:
    cluster = make()
    ns = kube.namespace
    assert cluster.read_lease(ns, "poolwatch-controller") is None
    now = time.time()
    mine = cluster.write_lease(Lease("poolwatch-controller", ns, "a", 15.0, now, now))
    assert mine.resource_version
    with pytest.raises(LeaseConflict):  # a create when it exists
        cluster.write_lease(Lease("poolwatch-controller", ns, "b", 15.0, now, now))
    renewed = cluster.write_lease(Lease("poolwatch-controller", ns, "a", 15.0, now, now + 5,
                                        resource_version=mine.resource_version))  # fmt: skip
    with pytest.raises(LeaseConflict):  # a replace from a stale read
        cluster.write_lease(Lease("poolwatch-controller", ns, "b", 15.0, now, now + 6, 1,
                                  resource_version=mine.resource_version))  # fmt: skip
    read = cluster.read_lease(ns, "poolwatch-controller")
    assert read is not None
    assert (read.holder, read.resource_version) == ("a", renewed.resource_version)
    assert read.renewed == pytest.approx(now + 5, abs=1e-3)


# --- credentials and reachability -----------------------------------------------------------------
def test_credentials_the_server_refuses_are_a_failure_that_names_the_cause(
    kube: TestCluster, tmp_path: Path
) -> None:
    from tests.helpers.controlplane import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kc", kube.plane.url, kube.plane.ca_file, "wrong", "x")
    with KubernetesCluster(kubeconfig=path, backoff=RecordingBackoff(),
                           sync_timeout=5.0) as cluster:  # fmt: skip
        until(lambda: "down" in cluster.informers()["nodes"])
        assert "401" in cluster.informers()["nodes"]
        assert not cluster.healthy()
        with pytest.raises(ClusterUnavailable, match="401"):
            cluster.nodes()


def test_an_unreachable_api_is_unhealthy_serves_nothing_stale_and_recovers(
    kube: TestCluster, seeded: Seeded, make: Make
) -> None:
    with TcpProxy(kube.plane.port) as proxy:
        cluster = make(proxy.url)
        rec = Recorder(cluster)
        rec.synced()
        proxy.refuse()
        until(lambda: not cluster.healthy(), what="unhealthy")
        until(lambda: "down" in cluster.informers()["nodes"], what="nodes down")
        with pytest.raises(ClusterUnavailable, match="nodes"):
            cluster.nodes()
        kube.api.delete("/api/v1/nodes/gpu-node-08")  # meanwhile
        mark = rec.mark()
        proxy.allow()
        until(cluster.healthy, what="healthy again")
        rec.wait(mark, ("DELETED", "node", "gpu-node-08"))
        assert "gpu-node-08" not in {n.name for n in cluster.nodes()}
