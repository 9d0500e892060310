"""Each part with only its own ServiceAccount's rights: the chart's ServiceAccounts, ClusterRoles,
Roles and bindings, rendered by the pinned `helm template` and applied to the real API server
(RBAC on). Each part does its real job with a token of its own account, and is refused what it
must not do: the cluster exporter and the pool API read but cannot patch a node, the node
exporter lists the pods of its node but cannot read nodes, the rule engine and the alerts
receiver get nothing, and the controller writes only what its job needs (nodes, evictions,
events, its Lease in the release namespace) and cannot delete a node."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from controlplane import TEST_LABEL, Api, ApiError, TestCluster
from controlplane_seed import seed_handbuilt
from test_kubernetes_backend import RecordingBackoff, until

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.cluster.kubernetes.write import ClusterWriteError
from poolwatch.cluster.model import Event, Lease

pytestmark = pytest.mark.controlplane
CHART = Path(__file__).parent.parent / "helm" / "poolwatch"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
CLUSTER_SCOPED = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}
NAMESPACED = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}


class Chart:
    """The chart's RBAC, applied for one release in the test's namespace."""

    def __init__(self, kube: TestCluster, tmp_path: Path) -> None:
        self.kube, self.tmp_path = kube, tmp_path
        self.release = f"pw-{kube.test_id}"
        rendered = subprocess.run(
            [str(kube.plane.bin_dir / "helm"), "template", self.release, str(CHART),
             "--namespace", kube.namespace],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        self.docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
        for doc in self.docs:
            labels = doc["metadata"].setdefault("labels", {})
            labels[TEST_LABEL] = kube.test_id
            if doc["kind"] in CLUSTER_SCOPED:
                path = f"/apis/rbac.authorization.k8s.io/v1/{CLUSTER_SCOPED[doc['kind']]}"
            else:
                path = NAMESPACED[doc["kind"]].format(ns=kube.namespace)
            kube.api.post(path, doc)

    def account(self, component: str) -> str:
        return f"{self.release}-poolwatch-{component}"

    def api(self, component: str) -> Api:
        return self.kube.plane.as_service_account(self.kube.namespace, self.account(component))

    def kubeconfig(self, component: str) -> Path:
        return self.kube.plane.service_account_kubeconfig(
            self.tmp_path / f"{component}.kubeconfig", self.kube.namespace,
            self.account(component))  # fmt: skip

    def backend(self, component: str, **kwargs: Any) -> KubernetesCluster:
        settings = {"watch_timeout": 5, "backoff": RecordingBackoff(), "sync_timeout": 30.0}
        return KubernetesCluster(kubeconfig=self.kubeconfig(component), **(settings | kwargs))


@pytest.fixture
def chart(kube: TestCluster, tmp_path: Path) -> Chart:
    seed_handbuilt(kube)
    return Chart(kube, tmp_path)


@pytest.fixture
def backends() -> Iterator[Callable[[KubernetesCluster], KubernetesCluster]]:
    made: list[KubernetesCluster] = []

    def keep(cluster: KubernetesCluster) -> KubernetesCluster:
        made.append(cluster)
        return cluster

    yield keep
    for cluster in made:
        cluster.stop()


def refused(call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as err:
        call()
    assert err.value.status == 403, err.value
    return err.value


def eventually(call: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The RBAC authorizer reads bindings through its own informer: a new binding takes a
    moment to count."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError as err:
            if err.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_cluster_exporter_reads_everything_and_writes_nothing(
    chart: Chart, backends: Callable[[KubernetesCluster], KubernetesCluster]
) -> None:
    api = chart.api("cluster-exporter")
    eventually(lambda: api.get("/api/v1/nodes"))
    cluster = backends(chart.backend("cluster-exporter"))
    assert {n.name for n in cluster.nodes()} == {"gpu-node-07", "gpu-node-08", "npu-node-03"}
    assert {j.name for j in cluster.jobs()} >= {"bert-large-ft", "gpt-pretrain", "allreduce"}
    assert {q.name for q in cluster.quotas()} >= {"team-a-gpu", "training", "root"}
    # every list and watch allowed: all synced, none down with a 403
    until(lambda: all(s == "synced" for s in cluster.informers().values()),
          what=cluster.informers)  # fmt: skip
    with pytest.raises(ClusterWriteError, match="403"):
        cluster.cordon("gpu-node-07")
    with pytest.raises(ClusterWriteError, match="403"):
        cluster.evict(chart.kube.namespace, "sweep-17-a")
    refused(lambda: api.patch("/api/v1/nodes/gpu-node-07", {"spec": {"unschedulable": True}}))
    refused(lambda: api.get(f"/api/v1/namespaces/{chart.kube.namespace}/secrets"))


def test_the_pool_api_reads_but_does_not_write_nodes_by_default(
    chart: Chart, backends: Callable[[KubernetesCluster], KubernetesCluster]
) -> None:
    api = chart.api("api")
    eventually(lambda: api.get("/api/v1/nodes"))
    cluster = backends(chart.backend("api"))
    assert {p.name for p in cluster.pools()} >= {"pool-h100-a", "pool-910b"}
    with pytest.raises(ClusterWriteError, match="403"):
        cluster.label_node("gpu-node-07", {"poolwatch.io/pool": "pool-new"})


def test_the_controller_writes_what_its_job_needs_and_nothing_more(
    chart: Chart, backends: Callable[[KubernetesCluster], KubernetesCluster]
) -> None:
    kube, ns = chart.kube, chart.kube.namespace
    api = chart.api("controller")
    eventually(lambda: api.get("/api/v1/nodes"))
    cluster = backends(chart.backend("controller"))
    cluster.start()
    assert {n.name for n in cluster.nodes()} >= {"gpu-node-07"}
    cluster.taint_node("gpu-node-07", "poolwatch.io/fault", "A050101", "NoSchedule")
    cluster.cordon("gpu-node-07")
    cluster.label_node("gpu-node-07", {"poolwatch.io/status": "Isolated"})
    stored = kube.api.get("/api/v1/nodes/gpu-node-07")
    assert stored["spec"]["unschedulable"] is True
    assert stored["metadata"]["labels"]["poolwatch.io/status"] == "Isolated"
    cluster.evict(ns, "sweep-17-a")
    assert kube.api.get(f"/api/v1/namespaces/{ns}/pods/sweep-17-a")["metadata"][
        "deletionTimestamp"]  # fmt: skip
    cluster.record_event(Event("", "Node", "gpu-node-07", "NodeIsolated", "Warning", "A050101",
                               time.time()))  # fmt: skip
    until(lambda: ("PyTorchJob", "bert-large-ft") in {(j.kind, j.name) for j in cluster.jobs()})
    assert cluster._writer.prioritize_job(ns, "bert-large-ft", "training-high")  # a restart
    now = time.time()
    lease = cluster.write_lease(Lease("poolwatch-controller", ns, "me", 15.0, now, now))
    assert cluster.read_lease(ns, "poolwatch-controller") == lease
    # and no more than that
    elsewhere = kube.new_namespace("other")
    with pytest.raises(ClusterWriteError, match="403"):
        cluster.write_lease(Lease("poolwatch-controller", elsewhere, "me", 15.0, now, now))
    refused(lambda: api.delete("/api/v1/nodes/gpu-node-07", missing_ok=False))
    refused(lambda: api.post("/api/v1/nodes", {"metadata": {"name": f"x-{kube.test_id}"}}))
    refused(lambda: api.get(f"/api/v1/namespaces/{ns}/secrets"))


def test_the_node_exporter_lists_the_pods_of_its_node_and_nothing_else(chart: Chart) -> None:
    api = chart.api("node-exporter")
    pods = eventually(lambda: api.get("/api/v1/pods", fieldSelector="spec.nodeName=gpu-node-07"))
    assert pods["items"]
    assert {p["spec"]["nodeName"] for p in pods["items"]} == {"gpu-node-07"}
    refused(lambda: api.get("/api/v1/nodes"))
    refused(lambda: api.get("/api/v1/pods", watch="1"))
    refused(lambda: api.delete(f"/api/v1/namespaces/{chart.kube.namespace}/pods/sweep-17-a",
                               missing_ok=False))  # fmt: skip


@pytest.mark.parametrize("component", ["rules", "alerts"])
def test_the_rule_engine_and_alerts_receiver_get_no_kubernetes_access(
    chart: Chart, component: str
) -> None:
    account = next(d for d in chart.docs if d["kind"] == "ServiceAccount"
                   and d["metadata"]["name"] == chart.account(component))  # fmt: skip
    assert account["automountServiceAccountToken"] is False  # no token in their pods at all
    api = chart.api(component)  # and even a token minted for the account reads nothing
    for path in ("/api/v1/nodes", "/api/v1/pods", "/api/v1/events"):
        refused(lambda path=path: api.get(path))


def test_a_backend_without_the_rights_says_which_it_needs(
    chart: Chart, backends: Callable[[KubernetesCluster], KubernetesCluster]
) -> None:
    """The node exporter's account cannot list nodes: the backend stays down and says what the
    ServiceAccount lacks, in the words an operator needs to fix the role."""
    eventually(lambda: chart.api("node-exporter").get("/api/v1/pods", limit=1))
    cluster = backends(chart.backend("node-exporter", sync_timeout=5.0))
    cluster.start()
    until(lambda: "down" in cluster.informers()["nodes"], what=cluster.informers)
    said = cluster.informers()["nodes"]
    assert "HTTP 403" in said
    assert "needs list and watch on nodes" in said
    assert not cluster.healthy()
