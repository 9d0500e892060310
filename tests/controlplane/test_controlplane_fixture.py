"""The control-plane fixture itself, against the real etcd and kube-apiserver: it starts with
RBAC on, hands out admin and ServiceAccount credentials that the API server honours (and
refuses), serves the CRDs poolwatch reads with the hand-built objects stored as written, plays
the kubelet and the disruption controller well enough for the Eviction API, and leaves nothing
behind a test."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.controlplane import TEST_LABEL, ApiError, ControlPlane, TestCluster
from tests.helpers.tcpproxy import TcpProxy

pytestmark = pytest.mark.controlplane
FIXTURES = Path(__file__).parents[1] / "fixtures" / "kubeapi"
CUSTOM = {  # hand-built object -> its collection (namespaced ones get the test's namespace)
    "pytorchjob_HANDBUILT.json": "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs",
    "mpijob_v2beta1_HANDBUILT.json": "/apis/kubeflow.org/v2beta1/namespaces/{ns}/mpijobs",
    "vcjob_HANDBUILT.json": "/apis/batch.volcano.sh/v1alpha1/namespaces/{ns}/jobs",
    "queue_HANDBUILT.json": "/apis/scheduling.volcano.sh/v1beta1/queues",
    "elasticquotatree_HANDBUILT.json":
        "/apis/scheduling.sigs.k8s.io/v1beta1/namespaces/{ns}/elasticquotatrees",
}  # fmt: skip


def fresh(raw: dict[str, Any], namespace: str | None, test_id: str) -> dict[str, Any]:
    """A fixture object as a client would create it: no server-set metadata."""
    obj = copy.deepcopy(raw)
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    if namespace is not None:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
        meta["labels"] = {**meta.get("labels", {}), TEST_LABEL: test_id}
    return obj


def test_it_is_the_pinned_api_server_with_rbac_on(kube_apiserver: ControlPlane) -> None:
    assert kube_apiserver.version() == "v1.36.3"
    figures = kube_apiserver.figures()
    print("control plane:", json.dumps(figures))  # noqa: T201 - start-up and memory, for the README
    assert figures["apiserver_rss_mib"] > 0
    assert figures["etcd_rss_mib"] > 0
    modes = [a for a in kube_apiserver.apiserver.argv if a.startswith("--authorization-mode")]
    assert modes == ["--authorization-mode=RBAC"]


def test_a_service_account_gets_only_what_rbac_grants(kube: TestCluster) -> None:
    plane, ns = kube.plane, kube.namespace
    sa = plane.as_service_account(ns, "reader")
    with pytest.raises(ApiError) as refused:
        sa.get("/api/v1/nodes")
    assert refused.value.status == 403
    assert f"system:serviceaccount:{ns}:reader" in str(refused.value)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    kube.api.post(f"{rbac}/clusterroles", {
        "metadata": {"name": f"read-nodes-{kube.test_id}", "labels": {TEST_LABEL: kube.test_id}},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "get"]}],
    })  # fmt: skip
    kube.api.post(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": f"read-nodes-{kube.test_id}", "labels": {TEST_LABEL: kube.test_id}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": f"read-nodes-{kube.test_id}"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
    })  # fmt: skip
    kube.kubelet.node(f"n-{kube.test_id}")
    deadline = time.monotonic() + 10  # the RBAC authorizer's informer catches up
    while True:
        try:
            names = {n["metadata"]["name"] for n in sa.get("/api/v1/nodes")["items"]}
            break
        except ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert f"n-{kube.test_id}" in names
    with pytest.raises(ApiError) as patch_refused:
        sa.patch(f"/api/v1/nodes/n-{kube.test_id}", {"spec": {"unschedulable": True}})
    assert patch_refused.value.status == 403


def test_a_kubeconfig_for_a_service_account_works_with_the_official_client(
    kube: TestCluster, tmp_path: Path
) -> None:
    from kubernetes import client, config

    path = kube.plane.service_account_kubeconfig(tmp_path / "kc", kube.namespace, "poolwatch")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    answer = client.AuthenticationV1Api(client.ApiClient(cfg)).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert answer.status.user_info.username == f"system:serviceaccount:{kube.namespace}:poolwatch"


@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_the_crds_store_the_hand_built_objects_as_written(kube: TestCluster, name: str) -> None:
    raw = json.loads((FIXTURES / name).read_text())
    template = CUSTOM[name]
    namespaced = "{ns}" in template
    obj = fresh(raw, kube.namespace if namespaced else None, kube.test_id)
    path = template.format(ns=kube.namespace)
    created = kube.api.post(path, obj)
    assert created["spec"] == raw["spec"]  # nothing pruned, nothing defaulted
    if "status" in raw:  # status goes through its subresource, as the operators write it
        created["status"] = raw["status"]
        stored = kube.api.put(f"{path}/{obj['metadata']['name']}/status", created)
        assert stored["status"] == raw["status"]


def test_a_field_of_the_wrong_type_is_refused_as_the_operators_crd_refuses_it(
    kube: TestCluster,
) -> None:
    raw = json.loads((FIXTURES / "pytorchjob_HANDBUILT.json").read_text())
    obj = fresh(raw, kube.namespace, kube.test_id)
    obj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "many"
    with pytest.raises(ApiError) as refused:
        kube.api.post(f"/apis/kubeflow.org/v1/namespaces/{kube.namespace}/pytorchjobs", obj)
    assert refused.value.status == 422
    assert "replicas" in str(refused.value)


def test_the_kubelet_stand_in_registers_nodes_and_runs_pods(kube: TestCluster) -> None:
    node = f"gpu-{kube.test_id}"
    made = kube.kubelet.node(node, {"poolwatch.io/pool": "p1"})
    assert made["status"]["capacity"]["nvidia.com/gpu"] == "8"
    kube.kubelet.set_ready(node, False)
    got = kube.api.get(f"/api/v1/nodes/{node}")
    ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    kube.kubelet.heartbeat(node)
    pod = kube.kubelet.pod(kube.namespace, "w0", node, requests={"nvidia.com/gpu": "8"})
    assert pod["spec"]["nodeName"] == node
    assert pod["status"]["phase"] == "Running"


def test_an_eviction_is_refused_while_the_budget_allows_none(kube: TestCluster) -> None:
    ns, node = kube.namespace, f"gpu-{kube.test_id}"
    kube.kubelet.node(node)
    for i in range(2):
        kube.kubelet.pod(ns, f"w{i}", node, labels={"app": "train"})
    kube.api.post(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", {
        "metadata": {"name": "train"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "train"}}},
    })  # fmt: skip
    settled = kube.kubelet.settle_pdb(ns, "train")
    assert settled["status"]["disruptionsAllowed"] == 0
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "w0", "namespace": ns}}  # fmt: skip
    with pytest.raises(ApiError) as refused:
        kube.api.post(f"/api/v1/namespaces/{ns}/pods/w0/eviction", eviction)
    assert refused.value.status == 429
    kube.api.patch(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/train",
                   {"spec": {"minAvailable": 1}})  # fmt: skip
    kube.kubelet.settle_pdb(ns, "train")
    kube.api.post(f"/api/v1/namespaces/{ns}/pods/w0/eviction", eviction)
    assert kube.api.get(f"/api/v1/namespaces/{ns}/pods/w0")["metadata"]["deletionTimestamp"]
    assert kube.kubelet.finish_deletions(ns) == ["w0"]
    with pytest.raises(ApiError) as gone:
        kube.api.get(f"/api/v1/namespaces/{ns}/pods/w0")
    assert gone.value.status == 404


def test_cleanup_leaves_nothing_behind(kube_apiserver: ControlPlane) -> None:
    other = TestCluster.make(kube_apiserver)
    node = f"gone-{other.test_id}"
    other.kubelet.node(node)
    other.kubelet.pod(other.namespace, "w0", node)
    queue = fresh(json.loads((FIXTURES / "queue_HANDBUILT.json").read_text()), None,
                  other.test_id)  # fmt: skip
    other.api.post("/apis/scheduling.volcano.sh/v1beta1/queues", queue)
    other.cleanup()
    api = kube_apiserver.admin()
    for path in ("/api/v1/nodes", "/apis/scheduling.volcano.sh/v1beta1/queues"):
        assert api.get(path, labelSelector=other.selector)["items"] == []
    with pytest.raises(ApiError) as gone:
        api.get(f"/api/v1/namespaces/{other.namespace}")
    assert gone.value.status == 404


def test_the_proxy_cuts_a_watch_mid_stream(kube: TestCluster) -> None:
    """The one fault the API server cannot be asked for: a connection cut mid-stream."""
    with TcpProxy(kube.plane.port) as proxy:
        api = kube.plane.admin(proxy.url)
        api.timeout = 30
        ended = threading.Event()

        def watch() -> None:
            conn = api._conn()
            conn.request("GET", f"/api/v1/namespaces/{kube.namespace}/pods?watch=1",
                         headers={"Authorization": f"Bearer {api.token}"})  # fmt: skip
            resp = conn.getresponse()
            try:
                while resp.readline():
                    pass
            except OSError:
                pass
            ended.set()

        threading.Thread(target=watch, daemon=True).start()
        deadline = time.monotonic() + 10
        while proxy.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert not ended.is_set()
        assert proxy.cut() == 1
        assert ended.wait(5)


def test_the_proxy_delays_what_the_server_sends(kube: TestCluster) -> None:
    """Watch lag on demand: every chunk from the API server arrives `delay` seconds late."""
    with TcpProxy(kube.plane.port, delay=0.3) as proxy:
        api = kube.plane.admin(proxy.url)
        api.get("/version")  # the TLS handshake pays the delay too; time a kept-alive request
        began = time.monotonic()
        assert api.get("/version")["gitVersion"] == "v1.36.3"
        delayed = time.monotonic() - began
        assert 0.3 <= delayed < 3.0
        direct = kube.plane.admin()
        direct.get("/version")
        began = time.monotonic()
        direct.get("/version")
        assert time.monotonic() - began < delayed  # the lag is the proxy's
