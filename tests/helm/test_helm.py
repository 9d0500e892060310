"""The Helm chart (helm/poolwatch) through the real Helm: `helm lint --strict` and `helm
template` for every example value set, Helm's own schema errors for bad values, every manifest
against the Kubernetes schema (kubernetes-validate), and the properties the chart promises:
security, least-privilege RBAC, the CLI contract's ports and flags, the monitoring objects
kube-prometheus-stack selects, notification targets from a Secret. (Installing it into a real API
server is tests/helm/test_helm_install.py.)

Why one long file: every test reads the same renders of the chart (`rendered`, one `helm
template` per example value set, cached for the session); the sections below (values and the
schema, the Kubernetes schema, security, the DaemonSet, the cross-part contract, RBAC,
monitoring objects, notifications, the CLI contract) are the chart's promises, one each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.helpers import pinned_tool
from tests.helpers.helm_chart import CHART, EXAMPLES, Helm, HelmError, Rendered
from tests.helpers.prom_versions import Prometheus

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
#: the chart's kubeVersion floor, and a recent release: a removed API fails one of them
KUBE_VERSIONS = ("1.25.0", "1.30.0")
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "AlertmanagerConfig"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}
PARTS = {  # component -> (values key, first args, port) from the cross-part contract
    "cluster-exporter": ("clusterExporter", ["cluster-exporter", "run"], 9477),
    "rules": ("rules", ["rules", "run"], 9480),
    "alerts": ("alerts", ["alerts", "serve"], 9481),
    "controller": ("controller", ["controller", "run"], 9482),
    "api": ("api", ["api", "serve"], 9483),
}


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned Helm (scripts/tools.sh), with its own empty home."""
    return Helm(pinned_tool("helm"), tmp_path_factory.mktemp("helm-home"))


@cache
def _rendered(helm: Helm, example: str) -> Rendered:
    values = [CHART / "examples" / example] if example else []
    return helm.template(values)


@pytest.fixture(params=[p.name for p in EXAMPLES])
def rendered(request: pytest.FixtureRequest, helm: Helm) -> Rendered:
    """`helm template` for each example value set, defaults-values.yaml being the defaults
    (cached per session)."""
    return _rendered(helm, request.param)


# --- values and the schema ------------------------------------------------------------------


def test_schema_is_draft7_and_describes_every_value() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    missing = []

    def walk(node: dict[str, Any], path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub and "$ref" not in sub:
                missing.append(f"{path}{key}")
            walk(sub, f"{path}{key}.")

    walk(SCHEMA, "")
    assert missing == []


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict_is_clean(helm: Helm, example: Path | None) -> None:
    """`helm lint --strict` checks the values against values.schema.json and renders every
    template, failing on any reference to a value that does not exist."""
    out = helm.lint([example] if example else [])
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out
    assert "[ERROR]" not in out


SCHEMA_ERROR = "values don't meet the specifications of the schema(s)"


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"controller": {"replicas": "two"}}, "at '/controller/replicas': got string"),
        ({"logLevel": "verbose"}, "at '/logLevel': value must be one of"),
        # a misspelt key is not ignored
        ({"nodeExportr": {"enabled": False}}, "additional properties 'nodeExportr' not allowed"),
        ({"nodeExporter": {"gpu": "maybe"}}, "at '/nodeExporter/gpu': value must be one of"),
        ({"nodeExporter": {"port": 70000}}, "at '/nodeExporter/port': maximum"),
        ({"rules": {"resources": {"requests": {"cpu": "lots"}}}},
         "at '/rules/resources/requests/cpu': 'lots' does not match"),
        # limits are required: a null deletes the default, as Helm coalesces values
        ({"rules": {"resources": {"limits": None}}},
         "at '/rules/resources': missing property 'limits'"),
        ({"alerts": {"targetsSecret": {"urls": {"mail": "smtp.example.com"}}}},
         "at '/alerts/targetsSecret/urls/mail': 'smtp.example.com' does not match"),
        ({"monitoring": {"nodeExporterMonitor": "Probe"}},
         "at '/monitoring/nodeExporterMonitor': value must be one of"),
        ({"monitoring": {"interval": 30}}, "at '/monitoring/interval': got number, want string"),
        ({"prometheusUrl": "prometheus:9090"}, "at '/prometheusUrl': 'prometheus:9090' does not"),
        ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match"),
        ({"dashboards": {"labels": {"grafana_dashboard": 1}}},
         "at '/dashboards/labels/grafana_dashboard': got number, want string"),
    ],
)  # fmt: skip
def test_bad_values_fail_with_helms_schema_error(
    helm: Helm, override: dict[str, Any], where: str
) -> None:
    """Each kind of bad value stops `helm template` (and so `helm install`) and `helm lint
    --strict`, with Helm's own schema error naming the value."""
    values = helm.write_values(override)
    with pytest.raises(HelmError) as err:
        helm.template([values])
    assert SCHEMA_ERROR in str(err.value)
    assert where in str(err.value), str(err.value)
    with pytest.raises(HelmError) as err:
        helm.lint([values])
    assert where in str(err.value), str(err.value)


def _settings_objects() -> list[list[str]]:
    """Paths of every settings object of values.schema.json that closes its keys
    (additionalProperties false); fails on one that leaves them open, resource maps aside."""
    found: list[list[str]] = []

    def walk(node: dict[str, Any], path: list[str]) -> None:
        if "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
        for sub in node.get("allOf", []) + node.get("anyOf", []) + node.get("oneOf", []):
            walk(sub, path)
        if "properties" not in node:
            return
        closed = node.get("additionalProperties", True) is False
        # resource requests/limits take any resource name (ephemeral-storage, hugepages-2Mi)
        assert closed or path[-1] in ("requests", "limits"), f"{'.'.join(path)} takes any key"
        if closed:
            found.append(path)
        for key, sub in node["properties"].items():
            walk(sub, [*path, key])

    walk(SCHEMA, [])
    return found


def test_a_misspelt_key_at_any_depth_stops_helm(helm: Helm) -> None:
    """values.schema.json closes every settings object, so Helm refuses an unknown key at any
    depth, naming where (one values file with a misspelt key in each object)."""
    paths = _settings_objects()
    assert len(paths) > 20
    values: dict[str, Any] = {}
    for path in paths:
        node = values
        for key in path:
            node = node.setdefault(key, {})
        node["zzMisspelt"] = True
    with pytest.raises(HelmError) as err:
        helm.template([helm.write_values(values)])
    for path in paths:
        where = "/" + "/".join(path) if path else ""
        assert f"at '{where}': additional properties 'zzMisspelt' not allowed" in str(err.value)


# --- every manifest against the Kubernetes schema -------------------------------------------


def _check_operator_object(doc: dict[str, Any]) -> None:
    """The CRDs kubernetes-validate does not ship: the fields the operator needs, checked here."""
    spec = doc["spec"]
    if doc["kind"] == "AlertmanagerConfig":
        assert doc["apiVersion"] == "monitoring.coreos.com/v1alpha1"
        names = [r["name"] for r in spec["receivers"]]
        assert spec["route"]["receiver"] in names
        for r in spec["receivers"]:
            for hook in r["webhookConfigs"]:
                assert hook["url"].endswith("/alertmanager")
        return
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    if doc["kind"] == "PrometheusRule":
        assert spec["groups"], "an empty PrometheusRule"
        for group in spec["groups"]:
            assert set(group) <= {"name", "interval", "rules"}
            assert group["rules"]
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}
                assert isinstance(rule["expr"], str)
                assert ("alert" in rule) != ("record" in rule)
        return
    endpoints = spec["endpoints" if doc["kind"] == "ServiceMonitor" else "podMetricsEndpoints"]
    assert spec["selector"]["matchLabels"]
    assert endpoints
    for ep in endpoints:
        assert ep["port"] == "http"
        assert ep["path"] == "/metrics"


_VALIDATED: set[tuple[str, str]] = set()  # (version, document): the same object is checked once


def test_every_manifest_is_valid_kubernetes(rendered: Rendered) -> None:
    assert rendered.docs
    for doc in rendered.docs:
        if doc["kind"] in OPERATOR_KINDS:
            _check_operator_object(doc)
            continue
        for version in KUBE_VERSIONS:
            key = (version, json.dumps(doc, sort_keys=True))
            if key in _VALIDATED:
                continue
            _VALIDATED.add(key)
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {err}")


def test_helm_enforces_the_charts_kubernetes_floor(helm: Helm) -> None:
    """Chart.yaml's kubeVersion (the oldest release whose APIs every manifest uses, checked
    above): Helm renders for it and refuses an older cluster."""
    floor = KUBE_VERSIONS[0]
    assert helm.template(extra=["--kube-version", floor]).workloads()
    with pytest.raises(HelmError, match=r"chart requires kubeVersion: >=1\.25\.0-0"):
        helm.template(extra=["--kube-version", "1.24.9"])


def test_names_fit_kubernetes_limits_and_selectors_are_distinct(helm: Helm) -> None:
    long = "a-very-long-release-name-for-a-training-cluster-in-re"  # Helm's longest: 53
    assert len(long) == 53
    with pytest.raises(HelmError, match="release name"):
        helm.template(name=long + "g")
    out = helm.template(name=long)
    for doc in out.docs:
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
    selectors = [yaml.safe_dump(w["spec"]["selector"]) for w in out.workloads()]
    assert len(selectors) == len(set(selectors)) == 6


# --- security ---------------------------------------------------------------------------------


def _pods(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [(w["metadata"]["name"], w["spec"]["template"]["spec"]) for w in rendered.workloads()]


def test_pods_are_locked_down(rendered: Rendered) -> None:
    for name, pod in _pods(rendered):
        psc = pod["securityContext"]
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # the node exporter alone shares the node's network namespace (host NIC counters)
        assert pod.get("hostNetwork", False) is name.endswith("node-exporter"), name
        assert not pod.get("hostPID")
        assert not pod.get("hostIPC")
        # the NPU example runs the node exporter as root on purpose (npu-smi); nothing else may
        root_ok = name.endswith("node-exporter") and _runs_as_root_on_purpose(rendered)
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            # as root, the node exporter keeps one capability: reading private cache directories
            caps = {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]} if root_ok else {"drop": ["ALL"]}
            assert sc["capabilities"] == caps, name
            assert not sc.get("privileged"), name
            if not root_ok:
                assert sc["runAsNonRoot"] is True, name
                assert psc["runAsNonRoot"] is True, name
                assert psc["runAsUser"] != 0, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name} {kind}"
            # a web config Secret (web-config example: TLS on) turns the probes to HTTPS
            web = any(v["name"] == "web-config" for v in pod.get("volumes", []))
            tls = {"scheme": "HTTPS"} if web else {}
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http", **tls}, name
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert "http" in ports, name


def _runs_as_root_on_purpose(rendered: Rendered) -> bool:
    """nodeExporter.runAsRoot: uid 0 with runAsNonRoot false, as the npu-pool example sets it."""
    (ds,) = rendered.kinds("DaemonSet")
    psc = ds["spec"]["template"]["spec"]["securityContext"]
    return psc["runAsUser"] == 0 and psc["runAsNonRoot"] is False


#: volume types the Pod Security Standard "restricted" allows
RESTRICTED_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
                      "downwardAPI", "csi", "ephemeral"}  # fmt: skip


def test_a_node_exporter_only_release_holds_nothing_else(helm: Helm) -> None:
    off = [f"{k}.enabled=false" for k, _, _ in PARTS.values()]
    out = helm.template(sets=[*off, "monitoring.rules.enabled=false", "dashboards.enabled=false"])
    kinds = sorted({d["kind"] for d in out.docs})
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Service", "ServiceAccount",
                     "ServiceMonitor"]  # fmt: skip


def test_deployments_fit_the_restricted_pod_security_standard(rendered: Rendered) -> None:
    """Only the node exporter needs a privileged namespace (hostPath); every Deployment would
    run in a namespace enforcing `restricted`."""
    for w in rendered.kinds("Deployment"):
        pod = w["spec"]["template"]["spec"]
        for vol in pod.get("volumes", []):
            assert set(vol) - {"name"} <= RESTRICTED_VOLUMES, (w["metadata"]["name"], vol)
        for c in pod["containers"]:
            assert not c.get("ports", [{}])[0].get("hostPort")
            assert set(c["securityContext"].get("capabilities", {}).get("add", [])) == set()


def test_only_the_node_exporter_mounts_host_paths_and_read_only(rendered: Rendered) -> None:
    for name, pod in _pods(rendered):
        host = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
        if not name.endswith("node-exporter"):
            assert host == set(), name
            continue
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        for vol in host:
            assert mounts[vol].get("readOnly") is True, f"hostPath {vol} is writable"


# --- the node exporter DaemonSet ------------------------------------------------------------


def _daemonset(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("DaemonSet", "-node-exporter")["spec"]["template"]["spec"]


def test_node_exporter_runs_the_contract_command_with_host_trees(helm: Helm) -> None:
    pod = _daemonset(_rendered(helm, ""))
    c = pod["containers"][0]
    assert c["args"][:6] == [
        "node-exporter", "run", "--listen=0.0.0.0:9476", "--cache-dir=/cache",
        "--path.procfs=/host/proc", "--path.sysfs=/host/sys",
    ]  # fmt: skip
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    hosts = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert {(hosts[n], mounts[n]) for n in hosts} == {
        ("/proc", "/host/proc"), ("/sys", "/host/sys"), ("/cache", "/host/root/cache"),
        ("/var/log/pods", "/host/root/var/log/pods"),
        ("/var/log/containers", "/host/root/var/log/containers"),
        ("/var/lib/kubelet/pod-resources", "/var/lib/kubelet/pod-resources"),
    }  # fmt: skip
    assert "--path.rootfs=/host/root" in c["args"]
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"]["value"] == "utility"


def test_host_network_is_a_commented_choice(helm: Helm) -> None:
    pod = _daemonset(_rendered(helm, ""))
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # the API server by name still resolves
    off = _daemonset(helm.template(sets=["nodeExporter.hostNetwork=false"]))
    assert "hostNetwork" not in off
    assert "dnsPolicy" not in off


def test_a_host_cache_dir_elsewhere_is_named_by_its_host_path(helm: Helm) -> None:
    pod = _daemonset(helm.template(sets=["nodeExporter.cacheDir=/data/cache"]))
    c = pod["containers"][0]
    assert "--cache-dir=/data/cache" in c["args"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    hosts = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert (hosts["cache"], mounts["cache"]) == ("/data/cache", "/host/root/data/cache")


def test_node_exporter_tolerates_the_isolation_taint(rendered: Rendered) -> None:
    tolerations = _daemonset(rendered)["tolerations"]
    assert {
        "key": "poolwatch.io/fault",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in tolerations


def test_npu_pool_mounts_the_ascend_driver_and_npu_smi(helm: Helm) -> None:
    pod = _daemonset(_rendered(helm, "npu-pool-values.yaml"))
    c = pod["containers"][0]
    hosts = {
        v["hostPath"]["path"]: v["hostPath"]["type"] for v in pod["volumes"] if "hostPath" in v
    }
    assert hosts["/usr/local/Ascend/driver"] == "Directory"
    assert hosts["/usr/local/sbin/npu-smi"] == "File"
    assert hosts["/dev"] == "Directory"  # hccn_tool lists /dev/davinciN under --path.rootfs
    assert "--npu-smi=/usr/local/sbin/npu-smi" in c["args"]
    assert "--gpu=off" in c["args"]
    assert pod["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
    assert "affinity" not in pod
    assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in c["env"]}


def test_nvidia_runtime_class_is_an_option(helm: Helm) -> None:
    default = _daemonset(_rendered(helm, ""))
    assert "runtimeClassName" not in default
    out = helm.template(sets=["nodeExporter.nvidia.runtimeClassName=nvidia"])
    assert _daemonset(out)["runtimeClassName"] == "nvidia"


# --- the other parts: the cross-part contract ------------------------------------------------


def _container(rendered: Rendered, component: str) -> dict[str, Any]:
    return rendered.one("Deployment", f"-{component}")["spec"]["template"]["spec"]["containers"][0]


def test_parts_run_the_contract_commands_on_their_ports(helm: Helm) -> None:
    out = _rendered(helm, "")
    for component, (_, verb, port) in PARTS.items():
        c = _container(out, component)
        assert c["args"][: len(verb)] == verb, component
        assert f"--listen=0.0.0.0:{port}" in c["args"], component
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        svc = out.one("Service", f"-{component}")
        assert svc["spec"]["ports"][0]["port"] == port


def test_rule_engine_reaches_the_receiver_and_the_controller(helm: Helm) -> None:
    out = _rendered(helm, "")
    args = _container(out, "rules")["args"]
    alerts = out.one("Service", "-alerts")["metadata"]["name"]
    controller = out.one("Service", "-controller")["metadata"]["name"]
    assert f"--notify-url=http://{alerts}.default.svc:9481/alertmanager" in args
    assert f"--controller-url=http://{controller}.default.svc:9482/actions" in args
    assert "--source=prometheus=http://prometheus-operated.monitoring.svc:9090" in args
    assert "--notify-token-file=/etc/poolwatch/auth/alerts-token" in args
    off = helm.template(sets=["controller.enabled=false", "alerts.enabled=false"])
    args = _container(off, "rules")["args"]
    assert not [a for a in args if a.startswith(("--notify", "--controller"))]


def test_controller_notices_reach_the_receiver_with_its_token(helm: Helm) -> None:
    """Without this the controller's notices (no spare, breaker open) reached its log only."""
    out = _rendered(helm, "")
    deploy = out.one("Deployment", "-controller")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    alerts = out.one("Service", "-alerts")["metadata"]["name"]
    assert f"--notify-url=http://{alerts}.default.svc:9481/alertmanager" in args
    assert "--notify-token-file=/etc/poolwatch/auth/alerts-token" in args
    (auth,) = [v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "auth"]
    assert {"key": "alerts-token", "path": "alerts-token"} in auth["secret"]["items"]
    off = helm.template(sets=["alerts.enabled=false"])
    args = _container(off, "controller")["args"]
    assert not [a for a in args if a.startswith("--notify")]


def test_controller_is_leader_elected_and_dry_run_by_default(helm: Helm) -> None:
    out = _rendered(helm, "")
    deploy = out.one("Deployment", "-controller")
    assert deploy["spec"]["replicas"] == 2
    assert "--dry-run" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    config = yaml.safe_load(out.one("ConfigMap", "-controller")["data"]["controller.yaml"])
    assert config["lease"] == {"name": deploy["metadata"]["name"], "namespace": "default"}
    assert config["dry_run"] is True
    assert out.one("PodDisruptionBudget", "-controller")["spec"]["minAvailable"] == 1
    acting = _container(_rendered(helm, "npu-pool-values.yaml"), "controller")
    assert "--no-dry-run" in acting["args"]


def test_parts_can_be_switched_off_one_by_one(helm: Helm) -> None:
    for component, (key, _, _) in PARTS.items():
        out = helm.template(sets=[f"{key}.enabled=false"])
        names = [d["metadata"]["name"] for d in out.docs if d["kind"] != "PrometheusRule"]
        assert not [n for n in names if n.endswith(f"-{component}")], component
        assert len(out.workloads()) == 5


def test_extra_args_and_env_reach_each_part(helm: Helm, tmp_path: Path) -> None:
    keys = [*(k for k, _, _ in PARTS.values()), "nodeExporter"]
    extra = {"extraArgs": ["--x-flag"], "extraEnv": [{"name": "X", "value": "1"}]}
    out = helm.template([_write_values(tmp_path, dict.fromkeys(keys, extra))])
    assert len(out.workloads()) == 6
    for w in out.workloads():
        c = w["spec"]["template"]["spec"]["containers"][0]
        assert c["args"][-1] == "--x-flag", w["metadata"]["name"]
        assert {"name": "X", "value": "1"} in c["env"], w["metadata"]["name"]


def _write_values(directory: Path, values: dict[str, Any]) -> Path:
    path = directory / f"values-{len(list(directory.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


# --- RBAC -------------------------------------------------------------------------------------


def _rules_by_account(rendered: Rendered) -> dict[str, list[dict[str, Any]]]:
    roles = {(r["kind"], r["metadata"]["name"]): r["rules"] for r in rendered.docs
             if r["kind"] in ("ClusterRole", "Role")}  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {
        sa["metadata"]["name"]: [] for sa in rendered.kinds("ServiceAccount")
    }
    for b in rendered.kinds("ClusterRoleBinding") + rendered.kinds("RoleBinding"):
        for s in b["subjects"]:
            out[s["name"]] += roles[(b["roleRef"]["kind"], b["roleRef"]["name"])]
    return out


def test_only_the_controller_writes(rendered: Rendered) -> None:
    for account, rules in _rules_by_account(rendered).items():
        writes = {
            (g, r, v)
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
            if v in WRITE_VERBS
        }
        if account.endswith("-controller"):
            assert writes == {
                ("", "nodes", "patch"), ("", "nodes", "update"), ("", "pods", "delete"),
                ("", "pods/eviction", "create"), ("", "events", "create"),
                ("", "events", "patch"), ("coordination.k8s.io", "leases", "create"),
                ("coordination.k8s.io", "leases", "update"),
                ("kubeflow.org", "pytorchjobs", "patch"), ("kubeflow.org", "tfjobs", "patch"),
                ("kubeflow.org", "mpijobs", "patch"), ("batch.volcano.sh", "jobs", "patch"),
                ("batch", "jobs", "patch"),  # a restarted job's requeue mark and priority
            } | {  # a failed job's automatic restart re-creates it
                (g, r, v) for g, r in (("kubeflow.org", "pytorchjobs"), ("kubeflow.org", "tfjobs"),
                                       ("kubeflow.org", "mpijobs"), ("batch.volcano.sh", "jobs"),
                                       ("batch", "jobs"))
                for v in ("create", "delete")
            }  # fmt: skip
        else:
            assert writes == set(), account
        for rule in rules:
            assert "*" not in rule["resources"], account
            assert "*" not in rule["apiGroups"], account
            assert "secrets" not in rule["resources"], account


def test_each_part_has_its_own_account_with_just_enough(helm: Helm) -> None:
    out = _rendered(helm, "")
    rules = _rules_by_account(out)
    by_component = {name.rsplit("poolwatch-", 1)[1]: r for name, r in rules.items()}
    read = {"get", "list", "watch"}
    assert {v for r in by_component["cluster-exporter"] for v in r["verbs"]} == read
    assert {v for r in by_component["api"] for v in r["verbs"]} == read
    assert by_component["node-exporter"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    ]
    assert by_component["rules"] == []
    assert by_component["alerts"] == []
    leases = out.one("Role", "-controller-lease")
    assert leases["rules"][0]["resources"] == ["leases"]
    for w in out.workloads():
        pod = w["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == w["metadata"]["name"]
        if w["metadata"]["name"].endswith(("-rules", "-alerts")):
            assert pod["automountServiceAccountToken"] is False


# --- monitoring objects -----------------------------------------------------------------------


def test_monitors_carry_the_release_label_and_select_a_service(helm: Helm) -> None:
    out = _rendered(helm, "kube-prometheus-stack-values.yaml")
    monitors = [d for d in out.docs if d["kind"] in OPERATOR_KINDS]
    assert {d["kind"] for d in monitors} == OPERATOR_KINDS - {"PodMonitor"}
    amc = out.one("AlertmanagerConfig", "-alerts")["spec"]
    hook = amc["receivers"][0]["webhookConfigs"][0]
    alerts_svc = out.one("Service", "-alerts")["metadata"]["name"]
    assert hook["url"] == f"http://{alerts_svc}.default.svc:9481/alertmanager"
    assert hook["httpConfig"]["authorization"]["credentials"]["key"] == "alerts-token"
    assert amc["route"]["matchers"] == [
        {"name": "alertname", "matchType": "=~", "value": "Poolwatch.*"}
    ]
    assert not _rendered(helm, "").kinds("AlertmanagerConfig")  # off by default
    rules = out.one("Deployment", "-rules")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in rules if a.startswith("--notify")]  # one way in for each alert
    assert [a for a in rules if a.startswith("--controller-url")]
    for m in monitors:
        assert m["metadata"]["labels"]["release"] == "kps", m["metadata"]["name"]
    services = out.kinds("Service")
    for sm in out.kinds("ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        hits = [s for s in services if sel.items() <= s["metadata"]["labels"].items()]
        assert len(hits) == 1, sm["metadata"]["name"]
        assert "http" in [p["name"] for p in hits[0]["spec"]["ports"]]
    assert len(out.kinds("ServiceMonitor")) == 5  # the pool API serves no /metrics
    alerts = out.one("ServiceMonitor", "-alerts")["spec"]["endpoints"][0]["authorization"]
    secret = out.one("Secret", "-auth")
    assert alerts["credentials"] == {"name": secret["metadata"]["name"], "key": "alerts-token"}
    pod = helm.template(sets=["monitoring.nodeExporterMonitor=PodMonitor"])
    pm = pod.one("PodMonitor", "-node-exporter")
    ds = pod.one("DaemonSet", "-node-exporter")
    assert (
        pm["spec"]["selector"]["matchLabels"].items()
        <= ds["spec"]["template"]["metadata"]["labels"].items()
    )


def test_operator_off_creates_no_operator_objects_but_a_rules_configmap(helm: Helm) -> None:
    out = _rendered(helm, "operator-off-values.yaml")
    assert not [d for d in out.docs if d["apiVersion"].startswith("monitoring.coreos.com")]
    files = out.one("ConfigMap", "-rules-files")["data"]
    shipped = sorted(p.name for p in (CHART / "files" / "rules").glob("*.rules.yaml"))
    assert sorted(files) == shipped
    assert shipped
    for name in shipped:  # the same groups (the chart compiles them itself, for the overrides)
        assert yaml.safe_load(files[name]) == yaml.safe_load(
            (CHART / "files" / "rules" / name).read_text()
        )


def _shipped_groups() -> list[dict[str, Any]]:
    groups = []
    for path in sorted((CHART / "files" / "rules").glob("*.rules.yaml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def test_prometheusrule_is_the_compiled_rules(helm: Helm) -> None:
    rule = _rendered(helm, "").one("PrometheusRule", "-rules")
    assert rule["spec"]["groups"] == _shipped_groups()
    assert "{{ $labels." in yaml.safe_dump(rule["spec"])  # Prometheus' templates survive


def test_alerts_can_be_disabled_labelled_and_given_runbooks(helm: Helm, tmp_path: Path) -> None:
    groups = _shipped_groups()
    victim = groups[0]["rules"][0]["alert"]
    values = _write_values(tmp_path, {"monitoring": {"rules": {
        "disabled": {victim: True}, "additionalLabels": {"cluster_env": "prod"},
        "runbookBaseUrl": "https://runbooks.example.com/poolwatch/",
    }}})  # fmt: skip
    spec = helm.template([values]).one("PrometheusRule", "-rules")["spec"]
    alerts = [r for g in spec["groups"] for r in g["rules"]]
    assert victim not in {r["alert"] for r in alerts}
    assert len(alerts) == sum(len(g["rules"]) for g in groups) - sum(
        1 for g in groups for r in g["rules"] if r["alert"] == victim
    )
    for r in alerts:
        assert r["labels"]["cluster_env"] == "prod"
        assert r["labels"]["severity"]
        assert r["annotations"]["runbook_url"].startswith(
            "https://runbooks.example.com/poolwatch/docs/"
        )
    # the rule engine's own notifications (and its own alert) get the same base
    args = _container(helm.template([values]), "rules")["args"]
    assert "--runbook-base-url=https://runbooks.example.com/poolwatch/" in args
    assert not [a for a in _container(_rendered(helm, ""), "rules")["args"] if "runbook" in a]


def test_dashboards_are_configmaps_for_the_grafana_sidecar(helm: Helm) -> None:
    shipped = sorted((CHART / "files" / "dashboards").glob("*.json"))
    if not shipped:
        pytest.skip("no dashboards yet: dashboards/generated/*.json (poolwatch dashboards build) "
                    "not built, so helm/sync.py copied none")  # fmt: skip
    out = _rendered(helm, "kube-prometheus-stack-values.yaml")
    maps = [c for c in out.kinds("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")]
    assert len(maps) == len(shipped)
    assert len({cm["metadata"]["name"] for cm in maps}) == len(maps)
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Poolwatch"}
        ((name, body),) = cm["data"].items()
        assert json.loads(body) == json.loads((CHART / "files" / "dashboards" / name).read_text())


# --- notifications and tokens -----------------------------------------------------------------


def test_notification_targets_come_from_a_secret(helm: Helm) -> None:
    out = _rendered(helm, "notifications-values.yaml")
    secret = out.one("Secret", "-targets")
    assert set(secret["stringData"]) == {"oncall-mail", "team-webhook"}
    config = yaml.safe_load(out.one("ConfigMap", "-alerts")["data"]["alerts.yaml"])
    assert [t["url_file"] for t in config["targets"]] == [
        "/etc/poolwatch/targets/oncall-mail", "/etc/poolwatch/targets/team-webhook",
    ]  # fmt: skip
    assert config["targets"][1]["rate_limit"] == {"messages": 20, "per": "60s"}
    assert config["cluster_name"] == "training-prod"
    assert config["outbox"] == "/data/outbox.sqlite"
    assert "CHANGE-ME" not in out.one("ConfigMap", "-alerts")["data"]["alerts.yaml"]
    pod = out.one("Deployment", "-alerts")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["targets"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert vols["data"]["persistentVolumeClaim"]["claimName"].endswith("-alerts")
    assert [s["metadata"]["name"] for s in out.kinds("Secret")] == [secret["metadata"]["name"]]
    assert vols["auth"]["secret"]["secretName"] == "poolwatch-tokens"


def test_an_existing_targets_secret_is_used_not_created(helm: Helm, tmp_path: Path) -> None:
    alerts = {"targets": [{"name": "mail"}], "targetsSecret": {"existingSecret": "my-targets"}}
    values = _write_values(tmp_path, {"alerts": alerts})
    out = helm.template([values])
    assert not [s for s in out.kinds("Secret") if s["metadata"]["name"].endswith("-targets")]
    vols = out.one("Deployment", "-alerts")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "targets", "secret": {"secretName": "my-targets", "defaultMode": 0o440}} in vols


def test_a_target_without_url_fails_with_its_name(helm: Helm, tmp_path: Path) -> None:
    values = _write_values(tmp_path, {"alerts": {"targets": [{"name": "pager"}]}})
    with pytest.raises(HelmError, match='target "pager" has no URL'):
        helm.template([values])


def test_tokens_are_random_files_not_arguments(helm: Helm) -> None:
    a = _rendered(helm, "").one("Secret", "-auth")["data"]
    b = helm.template().one("Secret", "-auth")["data"]
    assert set(a) == {"alerts-token", "controller-token", "api-token"}
    assert a["alerts-token"] != b["alerts-token"]
    assert len(a["alerts-token"]) >= 40
    for w in _rendered(helm, "").workloads():
        args = " ".join(w["spec"]["template"]["spec"]["containers"][0]["args"])
        assert "token=" not in args.replace("token-file=", "")


def test_a_missing_prometheus_url_fails_clearly(helm: Helm) -> None:
    with pytest.raises(HelmError, match="prometheusUrl is required by the rule engine"):
        helm.template(sets=["prometheusUrl="])
    out = helm.template(sets=["prometheusUrl=", "rules.enabled=false", "api.enabled=false"])
    assert len(out.workloads()) == 4


def test_notes_render_for_every_value_set(helm: Helm) -> None:
    for values in ([], *([p] for p in EXAMPLES)):
        notes = helm.notes(values)
        assert "poolwatch 0.1.0 is installed" in notes
        assert ("DRY RUN" in notes) != ("ACTING" in notes)
    assert "examples/prometheus-scrape.yaml" in helm.notes(
        [CHART / "examples" / "operator-off-values.yaml"]
    )


# --- the chart against the real CLI and settings ----------------------------------------------


def _parse(args: list[str]) -> tuple[bool, str]:
    """Parse `args` with poolwatch's own argument parser (every part registered)."""
    import contextlib
    import io

    from poolwatch.app import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cli.parser().parse_args(args)
        except SystemExit:
            return False, err.getvalue()
    return True, ""


@pytest.mark.parametrize("example", ["", "npu-pool-values.yaml", "notifications-values.yaml"])
def test_every_container_command_parses_with_poolwatch_cli(helm: Helm, example: str) -> None:
    for w in _rendered(helm, example).workloads():
        args = w["spec"]["template"]["spec"]["containers"][0]["args"]
        ok, err = _parse(args)
        if not ok and "invalid choice" in err and f"'{args[0]}'" in err:
            pytest.skip(f"poolwatch {args[0]} is not registered yet: {err.strip()}")
        assert ok, f"{w['metadata']['name']}: poolwatch {' '.join(args)}\n{err}"


def test_a_flag_poolwatch_does_not_know_is_caught() -> None:
    assert _parse(["rules", "run", "--source=local", "--state=/x", "--no-such-flag"])[0] is False


@pytest.mark.parametrize("example", ["", "notifications-values.yaml", "npu-pool-values.yaml"])
def test_rendered_settings_files_load_with_the_parts_own_models(
    helm: Helm, tmp_path: Path, example: str
) -> None:
    from poolwatch.alerts.settings import load_settings
    from poolwatch.controller.settings import ControllerSettings
    from poolwatch.core.config import load

    out = _rendered(helm, example)
    controller = tmp_path / "controller.yaml"
    controller.write_text(out.one("ConfigMap", "-controller")["data"]["controller.yaml"])
    settings = load(ControllerSettings, controller, {}, {})
    assert settings.lease.namespace == "default"
    assert settings.dry_run is (example != "npu-pool-values.yaml")
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(out.one("ConfigMap", "-alerts")["data"]["alerts.yaml"])
    receiver = load_settings(alerts, {})
    assert str(receiver.outbox) == "/data/outbox.sqlite"
    assert [str(t.url_file) for t in receiver.targets] == [
        f"/etc/poolwatch/targets/{t.name}" for t in receiver.targets
    ]


def test_a_simulated_cluster_exporter_gets_no_api_access(helm: Helm) -> None:
    out = helm.template(sets=["clusterExporter.backend=simulated"])
    assert not [
        r for r in out.kinds("ClusterRole") if r["metadata"]["name"].endswith("-cluster-exporter")
    ]
    pod = out.one("Deployment", "-cluster-exporter")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "--backend=simulated" in pod["containers"][0]["args"]


def test_api_node_writes_are_opt_in_and_never_evict(helm: Helm) -> None:
    def writes(out: Rendered) -> set[tuple[str, str]]:
        rules = _rules_by_account(out)[out.one("ServiceAccount", "-api")["metadata"]["name"]]
        return {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]
                if v in WRITE_VERBS}  # fmt: skip

    assert writes(_rendered(helm, "")) == set()
    assert writes(helm.template(sets=["api.nodeWrites=true"])) == {
        ("nodes", "patch"), ("nodes", "update"), ("events", "create"), ("events", "patch"),
    }  # fmt: skip


def _value_keys_without_comment() -> list[str]:
    """Keys of values.yaml that the schema knows (settings, not data inside them) and that have
    no comment line right above them."""

    def props(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return node.get("properties", {})

    missing, stack = [], []  # stack: (indent, schema node of that key)
    lines = (CHART / "values.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        key = line.lstrip(" ")
        indent = len(line) - len(key)
        if not key or key.startswith(("#", "-")) or ":" not in key:
            continue
        name = key.split(":", 1)[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else SCHEMA
        node = props(parent).get(name)
        if node is None:
            continue  # data inside a setting (an affinity, a resource list)
        if not lines[i - 1].lstrip().startswith("#"):
            missing.append(f"values.yaml:{i + 1}: {name}")
        # a resources block is documented as a whole; requests/limits inside it are data
        stack.append((indent, {} if name == "resources" else node))
    return missing


def test_values_yaml_documents_every_setting() -> None:
    assert _value_keys_without_comment() == []


def _print_config(w: dict[str, Any], files: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    """Run the workload's real command with --print-config, under the container's environment
    (downward-API values filled in) and with the mounted config files at `files`."""
    c = w["spec"]["template"]["spec"]["containers"][0]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", "from-the-downward-api")
    args = [f"{a.split('=', 1)[0]}={files[a]}" if a in files else a for a in c["args"]]
    cmd = [sys.executable, "-m", "poolwatch", *args, "--print-config"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("example", "component"),
    [
        ("", "node-exporter"), ("npu-pool-values.yaml", "node-exporter"),
        ("", "cluster-exporter"), ("", "controller"), ("notifications-values.yaml", "alerts"),
    ],
)  # fmt: skip
def test_each_part_accepts_the_charts_environment_and_settings(
    helm: Helm, tmp_path: Path, example: str, component: str
) -> None:
    """A POOLWATCH_* variable a part does not know, or a settings key it rejects, stops it at
    start-up in the cluster: run the real command with --print-config to find out here."""
    out = _rendered(helm, example)
    kind = "DaemonSet" if component == "node-exporter" else "Deployment"
    workload = out.one(kind, f"-{component}")
    files = {}
    for cm in out.kinds("ConfigMap"):
        for key, body in cm.get("data", {}).items():
            if key in ("controller.yaml", "alerts.yaml"):
                (tmp_path / key).write_text(body)
                files[f"--config=/etc/poolwatch/{key}"] = tmp_path / key
    result = _print_config(workload, files)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    if component == "node-exporter":
        assert printed["roots"]["procfs"] == "/host/proc"
        assert printed["cache_dir"] == "/cache"
        assert printed["roots"]["rootfs"] == "/host/root"
    if component == "controller":
        assert printed["lease"]["name"] == workload["metadata"]["name"]


def test_an_environment_variable_a_part_rejects_is_caught(helm: Helm, tmp_path: Path) -> None:
    env = [{"name": "POOLWATCH_SCRAPE_TIMEOUT", "value": "5s"}]  # not a node exporter setting
    values = _write_values(tmp_path, {"nodeExporter": {"extraEnv": env}})
    workload = helm.template([values]).one("DaemonSet", "-node-exporter")
    result = _print_config(workload, {})
    assert result.returncode == 2
    assert "POOLWATCH_SCRAPE_TIMEOUT" in result.stderr


def test_the_log_level_variable_is_not_taken_for_a_setting(helm: Helm, tmp_path: Path) -> None:
    env = [{"name": "POOLWATCH_LOG_LEVEL", "value": "debug"}]  # --log-level's default
    values = _write_values(tmp_path, {"nodeExporter": {"extraEnv": env}})
    workload = helm.template([values]).one("DaemonSet", "-node-exporter")
    assert _print_config(workload, {}).returncode == 0


def test_controller_state_can_live_on_a_claim(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"ReadWriteOnce needs controller\.replicas: 1"):
        helm.template(sets=["controller.persistence.enabled=true"])
    one = helm.template(sets=["controller.persistence.enabled=true", "controller.replicas=1"])
    deploy = one.one("Deployment", "-controller")
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        "--state=/data/controller.sqlite"
        in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert one.one("PersistentVolumeClaim", "-controller")["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    shared = helm.template(
        sets=[
            "controller.persistence.enabled=true",
            "controller.persistence.accessMode=ReadWriteMany",
        ]
    )
    assert shared.one("Deployment", "-controller")["spec"]["replicas"] == 2
    assert shared.one("PersistentVolumeClaim", "-controller")["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    for doc in one.docs + shared.docs:
        if doc["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(doc, KUBE_VERSIONS[-1], strict=True)


def test_network_policies_admit_the_release_and_allow_from_only(helm: Helm) -> None:
    out = _rendered(helm, "notifications-values.yaml")
    policies = out.kinds("NetworkPolicy")
    assert len(policies) == len(out.workloads()) == 6
    assert not _rendered(helm, "").kinds("NetworkPolicy")
    for w in out.workloads():
        pod_labels = w["spec"]["template"]["metadata"]["labels"]
        selects = [
            p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items() for p in policies
        ]
        (policy,) = [p for p, hit in zip(policies, selects, strict=True) if hit]
        (rule,) = policy["spec"]["ingress"]
        port = w["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
        own, monitoring = rule["from"]
        assert own["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "release-name"
        assert monitoring == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
        }


@pytest.mark.integration
def test_the_prometheusrule_passes_promtool(helm: Helm, tmp_path: Path, prom: Prometheus) -> None:
    """What the operator hands Prometheus (the PrometheusRule's groups, after the chart dropped
    disabled alerts and added labels) is a rule file promtool accepts."""
    victim = _shipped_groups()[0]["rules"][0]["alert"]
    values = _write_values(tmp_path, {"monitoring": {"rules": {
        "disabled": {victim: True}, "additionalLabels": {"cluster_env": "prod"},
    }}})  # fmt: skip
    spec = helm.template([values]).one("PrometheusRule", "-rules")["spec"]
    rules = tmp_path / "chart.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": spec["groups"]}))
    result = subprocess.run([prom.promtool, "check", "rules", str(rules)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr
