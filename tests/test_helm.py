"""The Helm chart (helm/poolwatch), rendered without helm: values against values.schema.json,
every manifest against the Kubernetes schema (kubernetes-validate), and the properties the chart
promises: security, least-privilege RBAC, the CLI contract's ports and flags, the monitoring
objects kube-prometheus-stack selects, notification targets from a Secret."""

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
from helm_render.harness import (
    CHART,
    BuildUnavailable,
    Rendered,
    Renderer,
    RenderError,
    build,
    cache_dir,
)

EXAMPLES = sorted((CHART / "examples").glob("*-values.yaml"))
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
#: the chart's kubeVersion floor, and a recent release: a removed API fails one of them
KUBE_VERSIONS = ("1.25.0", "1.30.0")
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "AlertmanagerConfig"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}
PARTS = {  # component -> (values key, first args, port) from the cross-part contract
    "cluster-exporter": ("clusterExporter", ["cluster-exporter"], 9477),
    "rules": ("rules", ["rules", "run"], 9480),
    "alerts": ("alerts", ["alerts", "serve"], 9481),
    "controller": ("controller", ["controller", "run"], 9482),
    "api": ("api", ["api", "serve"], 9483),
}


@pytest.fixture(scope="session")
def renderer(request: pytest.FixtureRequest) -> Renderer:
    try:
        return Renderer(build(cache_dir(request.config)))
    except BuildUnavailable as err:
        pytest.skip(f"chart renderer not buildable: {err}")


@cache
def _rendered(binary: Path, example: str) -> Rendered:
    values = [CHART / "examples" / example] if example else []
    return Renderer(binary).render(values)


@pytest.fixture(params=[p.name for p in EXAMPLES])
def rendered(request: pytest.FixtureRequest, renderer: Renderer) -> Rendered:
    """The chart rendered for each example value set, defaults-values.yaml being the defaults
    (cached per session)."""
    return _rendered(renderer.binary, request.param)


def _values(*overrides: dict[str, Any]) -> dict[str, Any]:
    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
                continue
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # as Helm coalesces: maps merge key by key, a null deletes the default
    for o in overrides:
        values = merge(values, o)
    return values


def _schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)
    ]


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


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_values_match_schema(example: Path) -> None:
    assert _schema_errors(_values(yaml.safe_load(example.read_text()) or {})) == []


def test_default_values_match_schema() -> None:
    assert _schema_errors(_values()) == []


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"controller": {"replicas": "two"}}, "controller.replicas"),
        ({"logLevel": "verbose"}, "logLevel"),
        ({"nodeExportr": {"enabled": False}}, "nodeExportr"),  # a misspelt key is not ignored
        ({"nodeExporter": {"gpu": "maybe"}}, "nodeExporter.gpu"),
        ({"nodeExporter": {"port": 70000}}, "nodeExporter.port"),
        ({"rules": {"resources": {"requests": {"cpu": "lots"}}}}, "rules.resources"),
        ({"rules": {"resources": {"limits": None}}}, "rules.resources"),  # limits are required
        ({"alerts": {"targetsSecret": {"urls": {"mail": "smtp.example.com"}}}}, "alerts"),
        ({"monitoring": {"nodeExporterMonitor": "Probe"}}, "monitoring.nodeExporterMonitor"),
        ({"monitoring": {"interval": 30}}, "monitoring.interval"),
        ({"prometheusUrl": "prometheus:9090"}, "prometheusUrl"),
        ({"image": {"digest": "latest"}}, "image.digest"),
        ({"dashboards": {"labels": {"grafana_dashboard": 1}}}, "dashboards.labels"),
    ],
)
def test_bad_values_fail_the_schema(override: dict[str, Any], where: str) -> None:
    errors = _schema_errors(_values(override))
    assert errors, f"{override} passed the schema"
    assert any(e.startswith(where) or e.startswith(": Additional") for e in errors), errors


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


def test_names_fit_kubernetes_limits_and_selectors_are_distinct(renderer: Renderer) -> None:
    long = "a-very-long-release-name-for-a-training-cluster-in-region-one"
    out = renderer.render(extra=["--name", long])
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
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert not sc.get("privileged"), name
            if not root_ok:
                assert sc["runAsNonRoot"] is True, name
                assert psc["runAsNonRoot"] is True, name
                assert psc["runAsUser"] != 0, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name} {kind}"
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, name
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


def test_a_node_exporter_only_release_holds_nothing_else(renderer: Renderer) -> None:
    off = [f"{k}.enabled=false" for k, _, _ in PARTS.values()]
    out = renderer.render(sets=[*off, "monitoring.rules.enabled=false", "dashboards.enabled=false"])
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


def test_node_exporter_runs_the_contract_command_with_host_trees(renderer: Renderer) -> None:
    pod = _daemonset(_rendered(renderer.binary, ""))
    c = pod["containers"][0]
    assert c["args"][:5] == [
        "node-exporter", "--listen=0.0.0.0:9476", "--cache-dir=/cache",
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


def test_host_network_is_a_commented_choice(renderer: Renderer) -> None:
    pod = _daemonset(_rendered(renderer.binary, ""))
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # the API server by name still resolves
    off = _daemonset(renderer.render(sets=["nodeExporter.hostNetwork=false"]))
    assert "hostNetwork" not in off
    assert "dnsPolicy" not in off


def test_a_host_cache_dir_elsewhere_is_named_by_its_host_path(renderer: Renderer) -> None:
    pod = _daemonset(renderer.render(sets=["nodeExporter.cacheDir=/data/cache"]))
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


def test_npu_pool_mounts_the_ascend_driver_and_npu_smi(renderer: Renderer) -> None:
    pod = _daemonset(_rendered(renderer.binary, "npu-pool-values.yaml"))
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


def test_nvidia_runtime_class_is_an_option(renderer: Renderer) -> None:
    default = _daemonset(_rendered(renderer.binary, ""))
    assert "runtimeClassName" not in default
    out = renderer.render(sets=["nodeExporter.nvidia.runtimeClassName=nvidia"])
    assert _daemonset(out)["runtimeClassName"] == "nvidia"


# --- the other parts: the cross-part contract ------------------------------------------------


def _container(rendered: Rendered, component: str) -> dict[str, Any]:
    return rendered.one("Deployment", f"-{component}")["spec"]["template"]["spec"]["containers"][0]


def test_parts_run_the_contract_commands_on_their_ports(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "")
    for component, (_, verb, port) in PARTS.items():
        c = _container(out, component)
        assert c["args"][: len(verb)] == verb, component
        assert f"--listen=0.0.0.0:{port}" in c["args"], component
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        svc = out.one("Service", f"-{component}")
        assert svc["spec"]["ports"][0]["port"] == port


def test_rule_engine_reaches_the_receiver_and_the_controller(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "")
    args = _container(out, "rules")["args"]
    alerts = out.one("Service", "-alerts")["metadata"]["name"]
    controller = out.one("Service", "-controller")["metadata"]["name"]
    assert f"--notify-url=http://{alerts}.default.svc:9481/alertmanager" in args
    assert f"--controller-url=http://{controller}.default.svc:9482/actions" in args
    assert "--source=prometheus=http://prometheus-operated.monitoring.svc:9090" in args
    assert "--notify-token-file=/etc/poolwatch/auth/alerts-token" in args
    off = renderer.render(sets=["controller.enabled=false", "alerts.enabled=false"])
    args = _container(off, "rules")["args"]
    assert not [a for a in args if a.startswith(("--notify", "--controller"))]


def test_controller_is_leader_elected_and_dry_run_by_default(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "")
    deploy = out.one("Deployment", "-controller")
    assert deploy["spec"]["replicas"] == 2
    assert "--dry-run" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    config = yaml.safe_load(out.one("ConfigMap", "-controller")["data"]["controller.yaml"])
    assert config["lease"] == {"name": deploy["metadata"]["name"], "namespace": "default"}
    assert config["dry_run"] is True
    assert out.one("PodDisruptionBudget", "-controller")["spec"]["minAvailable"] == 1
    acting = _container(_rendered(renderer.binary, "npu-pool-values.yaml"), "controller")
    assert "--no-dry-run" in acting["args"]


def test_parts_can_be_switched_off_one_by_one(renderer: Renderer) -> None:
    for component, (key, _, _) in PARTS.items():
        out = renderer.render(sets=[f"{key}.enabled=false"])
        names = [d["metadata"]["name"] for d in out.docs if d["kind"] != "PrometheusRule"]
        assert not [n for n in names if n.endswith(f"-{component}")], component
        assert len(out.workloads()) == 5


def test_extra_args_and_env_reach_each_part(renderer: Renderer, tmp_path: Path) -> None:
    keys = [*(k for k, _, _ in PARTS.values()), "nodeExporter"]
    extra = {"extraArgs": ["--x-flag"], "extraEnv": [{"name": "X", "value": "1"}]}
    out = renderer.render([_write_values(tmp_path, dict.fromkeys(keys, extra))])
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
            }  # fmt: skip
        else:
            assert writes == set(), account
        for rule in rules:
            assert "*" not in rule["resources"], account
            assert "*" not in rule["apiGroups"], account
            assert "secrets" not in rule["resources"], account


def test_each_part_has_its_own_account_with_just_enough(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "")
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


def test_monitors_carry_the_release_label_and_select_a_service(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "kube-prometheus-stack-values.yaml")
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
    assert not _rendered(renderer.binary, "").kinds("AlertmanagerConfig")  # off by default
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
    pod = renderer.render(sets=["monitoring.nodeExporterMonitor=PodMonitor"])
    pm = pod.one("PodMonitor", "-node-exporter")
    ds = pod.one("DaemonSet", "-node-exporter")
    assert (
        pm["spec"]["selector"]["matchLabels"].items()
        <= ds["spec"]["template"]["metadata"]["labels"].items()
    )


def test_operator_off_creates_no_operator_objects_but_a_rules_configmap(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "operator-off-values.yaml")
    assert not [d for d in out.docs if d["apiVersion"].startswith("monitoring.coreos.com")]
    files = out.one("ConfigMap", "-rules-files")["data"]
    shipped = sorted(p.name for p in (CHART / "files" / "rules").glob("*.rules.yaml"))
    assert sorted(files) == shipped
    assert shipped
    for name in shipped:
        assert files[name] == (CHART / "files" / "rules" / name).read_text()


def _shipped_groups() -> list[dict[str, Any]]:
    groups = []
    for path in sorted((CHART / "files" / "rules").glob("*.rules.yaml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def test_prometheusrule_is_the_compiled_rules(renderer: Renderer) -> None:
    rule = _rendered(renderer.binary, "").one("PrometheusRule", "-rules")
    assert rule["spec"]["groups"] == _shipped_groups()
    assert "{{ $labels." in yaml.safe_dump(rule["spec"])  # Prometheus' templates survive


def test_alerts_can_be_disabled_labelled_and_given_runbooks(
    renderer: Renderer, tmp_path: Path
) -> None:
    groups = _shipped_groups()
    victim = groups[0]["rules"][0]["alert"]
    values = _write_values(tmp_path, {"monitoring": {"rules": {
        "disabled": {victim: True}, "additionalLabels": {"cluster_env": "prod"},
        "runbookBaseUrl": "https://runbooks.example.com/poolwatch/",
    }}})  # fmt: skip
    spec = renderer.render([values]).one("PrometheusRule", "-rules")["spec"]
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


def test_dashboards_are_configmaps_for_the_grafana_sidecar(renderer: Renderer) -> None:
    shipped = sorted((CHART / "files" / "dashboards").glob("*.json"))
    if not shipped:
        pytest.skip("no dashboards yet: dashboards/generated/*.json (poolwatch dashboards build) "
                    "not built, so helm/sync.py copied none")  # fmt: skip
    out = _rendered(renderer.binary, "kube-prometheus-stack-values.yaml")
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


def test_notification_targets_come_from_a_secret(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "notifications-values.yaml")
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


def test_an_existing_targets_secret_is_used_not_created(renderer: Renderer, tmp_path: Path) -> None:
    alerts = {"targets": [{"name": "mail"}], "targetsSecret": {"existingSecret": "my-targets"}}
    values = _write_values(tmp_path, {"alerts": alerts})
    out = renderer.render([values])
    assert not [s for s in out.kinds("Secret") if s["metadata"]["name"].endswith("-targets")]
    vols = out.one("Deployment", "-alerts")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "targets", "secret": {"secretName": "my-targets", "defaultMode": 0o440}} in vols


def test_a_target_without_url_fails_with_its_name(renderer: Renderer, tmp_path: Path) -> None:
    values = _write_values(tmp_path, {"alerts": {"targets": [{"name": "pager"}]}})
    with pytest.raises(RenderError, match='target "pager" has no URL'):
        renderer.render([values])


def test_tokens_are_random_files_not_arguments(renderer: Renderer) -> None:
    a = _rendered(renderer.binary, "").one("Secret", "-auth")["data"]
    b = renderer.render().one("Secret", "-auth")["data"]
    assert set(a) == {"alerts-token", "controller-token", "api-token"}
    assert a["alerts-token"] != b["alerts-token"]
    assert len(a["alerts-token"]) >= 40
    for w in _rendered(renderer.binary, "").workloads():
        args = " ".join(w["spec"]["template"]["spec"]["containers"][0]["args"])
        assert "token=" not in args.replace("token-file=", "")


def test_a_missing_prometheus_url_fails_clearly(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="prometheusUrl is required"):
        renderer.render(sets=["prometheusUrl="])
    out = renderer.render(sets=["prometheusUrl=", "rules.enabled=false", "api.enabled=false"])
    assert len(out.workloads()) == 4


def test_notes_render_for_every_value_set(renderer: Renderer) -> None:
    for values in ([], *([p] for p in EXAMPLES)):
        notes = renderer.notes(values)
        assert "poolwatch 0.1.0 is installed" in notes
        assert ("DRY RUN" in notes) != ("ACTING" in notes)
    assert "examples/prometheus-scrape.yaml" in renderer.notes(
        [CHART / "examples" / "operator-off-values.yaml"]
    )


# --- the chart against the real CLI and settings ----------------------------------------------


def _parse(args: list[str]) -> tuple[bool, str]:
    """Parse `args` with poolwatch's own argument parser (every part registered)."""
    import contextlib
    import io

    from poolwatch import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cli.parser().parse_args(args)
        except SystemExit:
            return False, err.getvalue()
    return True, ""


@pytest.mark.parametrize("example", ["", "npu-pool-values.yaml", "notifications-values.yaml"])
def test_every_container_command_parses_with_poolwatch_cli(
    renderer: Renderer, example: str
) -> None:
    for w in _rendered(renderer.binary, example).workloads():
        args = w["spec"]["template"]["spec"]["containers"][0]["args"]
        ok, err = _parse(args)
        if not ok and "invalid choice" in err and f"'{args[0]}'" in err:
            pytest.skip(f"poolwatch {args[0]} is not registered yet: {err.strip()}")
        assert ok, f"{w['metadata']['name']}: poolwatch {' '.join(args)}\n{err}"


def test_a_flag_poolwatch_does_not_know_is_caught() -> None:
    assert _parse(["rules", "run", "--source=local", "--state=/x", "--no-such-flag"])[0] is False


@pytest.mark.parametrize("example", ["", "notifications-values.yaml", "npu-pool-values.yaml"])
def test_rendered_settings_files_load_with_the_parts_own_models(
    renderer: Renderer, tmp_path: Path, example: str
) -> None:
    from alerts.settings import load_settings
    from controller.settings import ControllerSettings
    from poolwatch.config import load

    out = _rendered(renderer.binary, example)
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


def test_a_simulated_cluster_exporter_gets_no_api_access(renderer: Renderer) -> None:
    out = renderer.render(sets=["clusterExporter.backend=simulated"])
    assert not [
        r for r in out.kinds("ClusterRole") if r["metadata"]["name"].endswith("-cluster-exporter")
    ]
    pod = out.one("Deployment", "-cluster-exporter")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "--backend=simulated" in pod["containers"][0]["args"]


def test_api_node_writes_are_opt_in_and_never_evict(renderer: Renderer) -> None:
    def writes(out: Rendered) -> set[tuple[str, str]]:
        rules = _rules_by_account(out)[out.one("ServiceAccount", "-api")["metadata"]["name"]]
        return {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]
                if v in WRITE_VERBS}  # fmt: skip

    assert writes(_rendered(renderer.binary, "")) == set()
    assert writes(renderer.render(sets=["api.nodeWrites=true"])) == {
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
    renderer: Renderer, tmp_path: Path, example: str, component: str
) -> None:
    """A POOLWATCH_* variable a part does not know, or a settings key it rejects, stops it at
    start-up in the cluster: run the real command with --print-config to find out here."""
    out = _rendered(renderer.binary, example)
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


def test_an_environment_variable_a_part_rejects_is_caught(
    renderer: Renderer, tmp_path: Path
) -> None:
    env = [{"name": "POOLWATCH_SCRAPE_TIMEOUT", "value": "5s"}]  # not a node exporter setting
    values = _write_values(tmp_path, {"nodeExporter": {"extraEnv": env}})
    workload = renderer.render([values]).one("DaemonSet", "-node-exporter")
    result = _print_config(workload, {})
    assert result.returncode == 2
    assert "POOLWATCH_SCRAPE_TIMEOUT" in result.stderr


def test_the_log_level_variable_is_not_taken_for_a_setting(
    renderer: Renderer, tmp_path: Path
) -> None:
    env = [{"name": "POOLWATCH_LOG_LEVEL", "value": "debug"}]  # --log-level's default
    values = _write_values(tmp_path, {"nodeExporter": {"extraEnv": env}})
    workload = renderer.render([values]).one("DaemonSet", "-node-exporter")
    assert _print_config(workload, {}).returncode == 0


def test_controller_state_can_live_on_a_claim(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"ReadWriteOnce needs controller\.replicas: 1"):
        renderer.render(sets=["controller.persistence.enabled=true"])
    one = renderer.render(sets=["controller.persistence.enabled=true", "controller.replicas=1"])
    deploy = one.one("Deployment", "-controller")
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        "--state=/data/controller.sqlite"
        in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert one.one("PersistentVolumeClaim", "-controller")["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    shared = renderer.render(
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


def test_network_policies_admit_the_release_and_allow_from_only(renderer: Renderer) -> None:
    out = _rendered(renderer.binary, "notifications-values.yaml")
    policies = out.kinds("NetworkPolicy")
    assert len(policies) == len(out.workloads()) == 6
    assert not _rendered(renderer.binary, "").kinds("NetworkPolicy")
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
def test_the_prometheusrule_passes_promtool(renderer: Renderer, tmp_path: Path) -> None:
    """What the operator hands Prometheus (the PrometheusRule's groups, after the chart dropped
    disabled alerts and added labels) is a rule file promtool accepts."""
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: prometheus)")
    victim = _shipped_groups()[0]["rules"][0]["alert"]
    values = _write_values(tmp_path, {"monitoring": {"rules": {
        "disabled": {victim: True}, "additionalLabels": {"cluster_env": "prod"},
    }}})  # fmt: skip
    spec = renderer.render([values]).one("PrometheusRule", "-rules")["spec"]
    rules = tmp_path / "chart.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": spec["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(rules)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr
