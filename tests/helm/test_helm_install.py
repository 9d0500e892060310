"""The chart installed by the real Helm into a real API server (etcd + kube-apiserver, the
control-plane fixture), with the Prometheus Operator's CRDs generated from its Go API module by
controller-gen (scripts/tools.sh): for every example value set, `helm install`, `helm upgrade`
and `helm uninstall`.

Before the install, every object of the example is sent to the server as a dry run with strict
field validation, so the server's own schemas (the CRDs' for ServiceMonitor, PodMonitor,
PrometheusRule and AlertmanagerConfig) reject an unknown or misplaced field, not only a wrong
type. After it, every object Helm reports exists. Then the workloads are scheduled onto the
test's Nodes.

The control plane has no controllers, no scheduler and no kubelets, so this test plays the
DaemonSet and ReplicaSet controllers and the scheduler (the part a stand-in must do): it creates
each workload's pods from its pod template, as the controllers would, and binds each one (the
Binding subresource, as kube-scheduler does) to a node it chooses by the scheduler's filters the
chart relies on: nodeSelector, required node affinity, and taints against tolerations. The API
server still validates and admits every pod (Pod Security admission included: the namespace
enforces the "privileged" level for the DaemonSet's host paths, and the Deployments' pods are
also admitted by a namespace that enforces "restricted"). Building kube-scheduler and
kube-controller-manager from k8s.io/kubernetes would cost as much again as kube-apiserver for a
placement the four filters above decide.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import pinned_bin_dir, pinned_tool
from tests.helpers.helm_chart import CHART, EXAMPLES, Helm, HelmError, load_yaml, parse_manifests

pytestmark = [pytest.mark.integration, pytest.mark.controlplane, pytest.mark.timeout(300)]

#: what stays after `helm uninstall` on purpose: the claims (helm.sh/resource-policy: keep)
KEPT = {"PersistentVolumeClaim"}


@cache
def operator_crds() -> tuple[dict[str, Any], ...]:
    """The Prometheus Operator's CRDs that scripts/tools.sh generated with controller-gen."""
    directory = pinned_bin_dir().parent / "crds" / "prometheus-operator"
    docs = [d for p in sorted(directory.glob("*.yaml")) for d in load_yaml(p.read_text())]
    kinds = {d["spec"]["names"]["kind"] for d in docs}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "AlertmanagerConfig"} <= kinds, (
        f"scripts/tools.sh generated {sorted(kinds)} in {directory}"
    )
    return tuple(docs)


@pytest.fixture(scope="module")
def plane(kube_apiserver: Any) -> Any:
    """The session's API server with the operator's CRDs established."""
    kube_apiserver.install_crds(operator_crds())
    return kube_apiserver


class Discovery:
    """The API server's own resource list: (apiVersion, kind) -> (collection path template,
    namespaced, verbs)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.kinds: dict[tuple[str, str], tuple[str, bool, list[str]]] = {}
        groups = ["/api/v1"] + [
            f"/apis/{v['groupVersion']}" for g in api.get("/apis")["groups"] for v in g["versions"]
        ]
        for base in groups:
            for r in api.get(base)["resources"]:
                if "/" in r["name"]:
                    continue  # a subresource
                version = base.removeprefix("/api/").removeprefix("/apis/")
                entry = (f"{base}/{{ns}}{r['name']}", r["namespaced"], r["verbs"])
                self.kinds.setdefault((version, r["kind"]), entry)

    def collection(self, doc: dict[str, Any], namespace: str) -> str:
        template, namespaced, _ = self.kinds[(doc["apiVersion"], doc["kind"])]
        ns = doc["metadata"].get("namespace") or namespace
        return template.format(ns=f"namespaces/{ns}/" if namespaced else "")

    def listable(self) -> Iterator[tuple[str, str, bool]]:
        for (_, kind), (template, namespaced, verbs) in self.kinds.items():
            if "list" in verbs and "delete" in verbs:
                yield kind, template, namespaced


@pytest.fixture(scope="module")
def discovery(plane: Any) -> Discovery:
    return Discovery(plane.admin())


# --- the scheduler's filters the chart relies on --------------------------------------------


def _matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    number = labels.get(key)
    if number is None or not number.lstrip("-").isdigit():
        return False
    return int(number) > int(values[0]) if op == "Gt" else int(number) < int(values[0])


def _tolerated(taint: dict[str, str], tolerations: list[dict[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists" and (
            not t.get("key") or t["key"] == taint["key"]
        ):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def fits(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """kube-scheduler's NodeUnschedulable, NodeAffinity (nodeSelector and the required terms,
    ORed, their expressions ANDed) and TaintToleration filters."""
    labels = node["metadata"].get("labels", {})
    tolerations = pod.get("tolerations", [])
    if node["spec"].get("unschedulable") and not _tolerated(
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, tolerations
    ):
        return False
    if not pod.get("nodeSelector", {}).items() <= labels.items():
        return False
    required = (pod.get("affinity", {}).get("nodeAffinity", {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))  # fmt: skip
    if required and not any(
        all(_matches(e, labels) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    ):
        return False
    return all(
        _tolerated(t, tolerations)
        for t in node["spec"].get("taints", [])
        if t["effect"] in ("NoSchedule", "NoExecute")
    )


# --- the test's nodes -----------------------------------------------------------------------


def _nodes(kube: Any) -> dict[str, str]:
    """Four nodes (role -> name): two NVIDIA nodes (one isolated by poolwatch's taint), an Ascend
    node, and a CPU node with no accelerator."""
    names = {role: f"{role}-{kube.test_id}" for role in ("gpu", "gpu-isolated", "npu", "cpu")}
    gpu = {"nvidia.com/gpu.present": "true"}
    kube.kubelet.node(names["gpu"], gpu)
    kube.kubelet.node(names["gpu-isolated"], gpu,
                      taints=[{"key": "poolwatch.io/fault", "value": "A050104",
                               "effect": "NoSchedule"}])  # fmt: skip
    kube.kubelet.node(names["npu"], {"accelerator": "huawei-Ascend910"},
                      accelerator="huawei.com/Ascend910")  # fmt: skip
    kube.kubelet.node(names["cpu"], {}, accelerator="")
    for name in names.values():  # the node lifecycle controller's part: Ready nodes lose the
        node = kube.api.get(f"/api/v1/nodes/{name}")  # not-ready taint admission gave them
        taints = [t for t in node["spec"].get("taints", [])
                  if t["key"] != "node.kubernetes.io/not-ready"]  # fmt: skip
        kube.api.patch(f"/api/v1/nodes/{name}", {"spec": {"taints": taints or None}})
    return names


#: example -> the nodes (by role) its node exporter DaemonSet must run on
DAEMONSET_NODES = {
    "defaults-values.yaml": {"gpu", "gpu-isolated", "npu"},
    "kube-prometheus-stack-values.yaml": {"gpu", "gpu-isolated", "npu"},
    "notifications-values.yaml": {"gpu", "gpu-isolated", "npu"},
    "npu-pool-values.yaml": {"npu"},
    "operator-off-values.yaml": {"gpu", "gpu-isolated", "npu"},
    "web-config-values.yaml": {"gpu", "gpu-isolated", "npu"},
}


def _schedule(
    kube: Any, namespace: str, workloads: list[dict[str, Any]], nodes: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """Play the DaemonSet/ReplicaSet controllers and the scheduler: pods from each workload's
    template, created through the API and bound to fitting nodes. Returns workload -> nodes."""
    placed: dict[str, list[str]] = {}
    for w in workloads:
        name, spec = w["metadata"]["name"], w["spec"]
        template = spec["template"]
        fitting = [n["metadata"]["name"] for n in nodes if fits(template["spec"], n)]
        if w["kind"] == "DaemonSet":
            targets = fitting
        else:  # spread the replicas as the scheduler's default spreading would
            assert fitting, f"no node fits {name}"
            targets = [fitting[i % len(fitting)] for i in range(spec.get("replicas", 1))]
        placed[name] = targets
        for i, node in enumerate(targets):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**template["metadata"], "name": f"{name}-{i}"},
                "spec": template["spec"],
            }
            kube.api.post(f"/api/v1/namespaces/{namespace}/pods", pod)
            kube.kubelet.bind(namespace, pod["metadata"]["name"], node)
            bound = kube.api.get(f"/api/v1/namespaces/{namespace}/pods/{name}-{i}")
            assert bound["spec"]["nodeName"] == node
    return placed


# --- the test ---------------------------------------------------------------------------------


def _helm(plane: Any, tmp_path: Path) -> Helm:
    kubeconfig = plane.admin_kubeconfig(tmp_path / "kubeconfig")
    return Helm(pinned_tool("helm"), tmp_path / "helm-home", kubeconfig)


def _release_objects(
    api: Any, discovery: Discovery, namespaces: list[str], release: str
) -> list[tuple[str, str, str]]:
    """Every object labelled as `release`'s (any kind the server serves), as
    (kind, namespace, name): what `helm uninstall` must have removed."""
    found = []
    selector = f"app.kubernetes.io/instance={release}"
    for kind, template, namespaced in discovery.listable():
        for ns in namespaces if namespaced else [""]:
            path = template.format(ns=f"namespaces/{ns}/" if namespaced else "")
            with contextlib.suppress(Exception):
                for item in api.get(path, labelSelector=selector)["items"]:
                    found.append((kind, ns, item["metadata"]["name"]))
    return found


def _release_secrets(api: Any, namespace: str) -> list[str]:
    """Helm's release records (Secrets of type helm.sh/release.v1, label owner=helm)."""
    items = api.get(f"/api/v1/namespaces/{namespace}/secrets", labelSelector="owner=helm")
    return [s["metadata"]["name"] for s in items["items"]]


def _enforce(api: Any, namespace: str, level: str) -> None:
    """Pod Security admission for `namespace` at `level` (privileged, baseline, restricted)."""
    labels = {"pod-security.kubernetes.io/enforce": level}
    api.patch(f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": labels}})


@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_install_upgrade_uninstall_each_example(
    plane: Any, discovery: Discovery, kube: Any, tmp_path: Path, example: str
) -> None:
    helm = _helm(plane, tmp_path)
    api = kube.api
    ns = kube.namespace
    release = f"pw-{kube.test_id}"  # its ClusterRoles are cluster-wide: one name per test
    # the DaemonSet mounts host paths and shares the host network: "privileged", as documented
    _enforce(api, ns, "privileged")
    values = [CHART / "examples" / example]
    manifests = parse_manifests(
        helm.run(["template", release, str(CHART), "-n", ns, *helm.value_args(values)])
    )
    namespaces = sorted({d["metadata"].get("namespace", ns) for d in manifests} | {ns})
    for other in namespaces:
        if other != ns:  # e.g. the dashboards' ConfigMaps go to "monitoring"
            with contextlib.suppress(Exception):
                api.post("/api/v1/namespaces", {"metadata": {"name": other}})
            if other not in kube.namespaces:
                kube.namespaces.append(other)

    # 1. the server validates every object, strictly (an unknown field is an error)
    for doc in manifests:
        path = discovery.collection(doc, ns)
        api.post(path, doc, dryRun="All", fieldValidation="Strict")

    # 2. helm install: every object exists afterwards
    try:
        _install_and_check(helm, api, discovery, kube, example, release, manifests, namespaces)
    finally:  # whatever failed, leave no cluster-wide objects to the next test
        with contextlib.suppress(HelmError):
            helm.run(["uninstall", release, "-n", ns], cluster=True)


def _install_and_check(
    helm: Helm,
    api: Any,
    discovery: Discovery,
    kube: Any,
    example: str,
    release: str,
    manifests: list[dict[str, Any]],
    namespaces: list[str],
) -> None:
    ns = kube.namespace
    values = [CHART / "examples" / example]
    out = json.loads(helm.run(["install", release, str(CHART), "-n", ns, "-o", "json",
                               *helm.value_args(values)], cluster=True))  # fmt: skip
    assert out["info"]["status"] == "deployed"
    installed = parse_manifests(out["manifest"])
    assert len(installed) == len(manifests)
    for doc in installed:
        path = discovery.collection(doc, ns)
        got = api.get(f"{path}/{doc['metadata']['name']}")
        assert got["kind"] == doc["kind"]
        assert got["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"

    # 3. the workloads land on the right nodes, through the API's own admission
    names = _nodes(kube)
    nodes = [api.get(f"/api/v1/nodes/{n}") for n in names.values()]
    workloads = [d for d in installed if d["kind"] in ("DaemonSet", "Deployment")]
    placed = _schedule(kube, ns, workloads, nodes)
    role_of = {v: k for k, v in names.items()}
    (daemonset,) = [w["metadata"]["name"] for w in workloads if w["kind"] == "DaemonSet"]
    assert {role_of[n] for n in placed[daemonset]} == DAEMONSET_NODES[example]
    for w in workloads:
        if w["kind"] == "Deployment":
            on = {role_of[n] for n in placed[w["metadata"]["name"]]}
            assert on, w["metadata"]["name"]
            assert "gpu-isolated" not in on, (w["metadata"]["name"], on)
    restricted = kube.new_namespace("restricted")
    _enforce(api, restricted, "restricted")
    for w in workloads:
        if w["kind"] == "Deployment":
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa-check"},
                   "spec": w["spec"]["template"]["spec"]}  # fmt: skip
            api.post(f"/api/v1/namespaces/{restricted}/pods", pod, dryRun="All")

    # 4. helm upgrade with the same example: accepted, and the random tokens are kept
    auth = [
        d for d in installed if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-auth")
    ]
    before = (
        api.get(f"/api/v1/namespaces/{ns}/secrets/{auth[0]['metadata']['name']}") if auth else None
    )
    up = json.loads(helm.run(["upgrade", release, str(CHART), "-n", ns, "-o", "json",
                              "--set", "logLevel=debug", *helm.value_args(values)],
                             cluster=True))  # fmt: skip
    assert up["info"]["status"] == "deployed"
    assert up["version"] == 2
    if before is not None:
        after = api.get(f"/api/v1/namespaces/{ns}/secrets/{before['metadata']['name']}")
        assert after["data"] == before["data"], "an upgrade must keep the tokens"
    debug = 0
    for doc in parse_manifests(up["manifest"]):
        if doc["kind"] in ("DaemonSet", "Deployment"):
            live = api.get(f"{discovery.collection(doc, ns)}/{doc['metadata']['name']}")
            args = live["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args == doc["spec"]["template"]["spec"]["containers"][0]["args"]
            debug += "--log-level=debug" in args
    assert debug >= 1, "the upgrade's new setting did not reach the workloads"

    # 5. helm uninstall leaves nothing behind but the claims (kept by design)
    for w, targets in placed.items():  # the garbage collector's part: the pods made above
        for i in range(len(targets)):
            api.delete(f"/api/v1/namespaces/{ns}/pods/{w}-{i}", grace=0)
    helm.run(["uninstall", release, "-n", ns, "--wait"], cluster=True)
    left = _release_objects(api, discovery, namespaces, release)
    kept = {(d["kind"], ns, d["metadata"]["name"]) for d in installed if d["kind"] in KEPT}
    assert set(left) == kept, left
    assert _release_secrets(api, ns) == []
    for _, _, name in kept:  # the claims are the operator's to delete
        api.delete(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")


def test_bad_values_stop_the_install_before_anything_is_created(
    plane: Any, discovery: Discovery, kube: Any, tmp_path: Path
) -> None:
    """values.schema.json is checked before Helm sends anything: a misspelt key fails the
    install with Helm's schema error and leaves the namespace as it was, no release recorded."""
    helm = _helm(plane, tmp_path)
    release = f"pw-{kube.test_id}"
    values = helm.write_values({"nodeExporter": {"tolerateIsolaton": False}})
    with pytest.raises(HelmError) as err:
        helm.run(["install", release, str(CHART), "-n", kube.namespace, "-f", str(values)],
                 cluster=True)  # fmt: skip
    assert "additional properties 'tolerateIsolaton' not allowed" in str(err.value)
    assert _release_objects(kube.api, discovery, [kube.namespace], release) == []
    assert _release_secrets(kube.api, kube.namespace) == []
