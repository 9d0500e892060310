"""A decision's reason names the fault code ModelArts documents, and the alert that asked for it
apart, as an alert: wherever the reason is shown (controller/reasons.py).

The actions are the ones the real rule engine makes from a shipped rule (its reason is
`<alertname>: <summary>`, its key is built from the alert's fingerprint, its labels carry the
alert name and the rule's alarm ids). The reasons are read where an operator reads them: the
audit trail as `poolwatch controller audit` prints it, the node event, the notices; on
Kubernetes, the events as the real kube-apiserver stored them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction
from poolwatch.core.fault_codes import FAULT_CODES
from poolwatch.rules import loader
from poolwatch.rules.compiled import compile_groups
from poolwatch.rules.fingerprint import fingerprint
from poolwatch.rules.state import AlertState
from tests.cluster.test_kubernetes_backend import RecordingBackoff
from tests.helpers import until
from tests.helpers.controller_support import T0, Recorder, controller, sim, submit_job
from tests.helpers.controlplane import TestCluster

RULE = "PoolwatchGpuRetiredPagesHigh"  # isolates with A050104 and asks for a replacement
CODE = "A050104"
MEANT = "fault code A050104 (ECC error occurred 64 times)"


def rule_actions(node: str, pool: str) -> tuple[str, list[NodeAction]]:
    """(the alert's fingerprint, the actions the rule engine sends for it) for RULE firing on
    GPU 0 of `node`."""
    rule = next(r for r in compile_groups(loader.load(loader.default_files()))
                if r.rule.name == RULE)  # fmt: skip
    labels = rule.alert_labels({"node": node, "pool": pool, "index": "0"})
    fp = fingerprint(labels)
    state = AlertState(RULE, labels, dict(rule.annotations), "firing", fp, T0, T0)
    return fp, rule.node_actions(state)


def audit_lines(state: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "poolwatch", "controller", "audit", "--state", str(state)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.splitlines()


def check_reason(text: str, fp: str) -> None:
    """The one form of a reason: every fault code it names is a documented one (with its
    meaning), the alert is named as an alert, never where the code belongs, and the alert's
    fingerprint is not in it."""
    assert fp not in text, text
    for code in re.findall(r"fault code (\S+)", text):
        assert code in FAULT_CODES, f"not a fault code: {code!r} in {text!r}"
    assert not re.search(r"fault code A\d{6}: Poolwatch", text), text
    if RULE in text:
        assert f"alert {RULE}" in text, text


def test_every_reason_names_the_fault_code_and_the_alert_apart(tmp_path: Path) -> None:
    state = tmp_path / "controller.db"
    cluster, told = sim(nodes=8, spares=0), Recorder()
    ref = submit_job(cluster, "train")
    victim = next(p.node for p in cluster.pods())
    ctl = controller(cluster, told, state_path=state)
    fp, actions = rule_actions(victim, "p0")
    assert [a.kind for a in actions] == ["isolate", "replace"]
    assert RULE in actions[0].reason
    assert fp in actions[0].key

    results = [ctl.submit(a) for a in actions]
    ctl.reconcile()

    isolated = results[0].detail
    assert isolated.startswith(f"node {victim} isolated: {MEANT}; alert {RULE}: "), isolated
    events = {e.reason: e.message for e in cluster.events() if e.name == victim}
    assert events["NodeIsolated"].startswith(f"Node isolated, {MEANT}; alert {RULE}: ")
    by_op = {}
    for line in audit_lines(state):
        _, op, target, _, detail = line.split("\t", 4)
        by_op.setdefault(op, []).append((target, detail))
        check_reason(detail, fp)
    assert any(MEANT in d for t, d in by_op["action:isolate"] if t == victim)
    restarted = dict(by_op["restartJob"])[ref]
    assert f"node {victim} isolated, {MEANT}" in restarted, restarted
    notices = {m.labels["alertname"]: m for m in told.messages}
    job = notices["PoolwatchControllerJobRestarted"]
    assert job.labels["fault_code"] == CODE
    assert job.labels["alert"] == RULE
    assert MEANT in job.annotations["description"]
    assert (
        f"{victim} with {MEANT}" in notices["PoolwatchControllerNoSpare"].annotations["description"]
    )
    for m in told.messages:
        check_reason(m.annotations["description"], fp)
    for e in cluster.events():
        check_reason(e.message, fp)


def test_a_dry_run_and_a_job_restart_asked_by_an_alert_say_the_same(tmp_path: Path) -> None:
    """The dry run's notice and answer, and a rule's restart-job for a job on the isolated
    node, carry the code first and the alert apart, like the isolation itself."""
    cluster, told = sim(nodes=8, spares=1), Recorder()
    ref = submit_job(cluster, "train")
    victim = next(p.node for p in cluster.pods())
    fp, actions = rule_actions(victim, "p0")
    dry = controller(cluster, told, dry_run=True).submit(actions[0])
    assert dry.outcome == "dry-run"
    assert dry.detail.endswith(f": {MEANT}; alert {RULE}: "
                               f"{actions[0].reason.split(': ', 1)[1].rstrip('.')}")  # fmt: skip
    note = next(m for m in told.messages if m.labels["alertname"] == "PoolwatchControllerDryRun")
    assert note.labels["fault_code"] == CODE
    assert note.labels["alert"] == RULE
    assert note.annotations["description"].startswith(MEANT)

    ctl = controller(cluster, Recorder(), keep_jobs_codes=(CODE,))  # isolates, keeps the job
    assert ctl.submit(actions[0]).outcome in ("done", "deferred")
    hang = NodeAction("restart-job", f"{fp}:restart-job:x", node=victim, job=ref,
                      reason="PoolwatchJobHang: A training job seems to hang.",
                      labels={"alertname": "PoolwatchJobHang", "node": victim})  # fmt: skip
    done = ctl.submit(hang)
    assert done.outcome == "done", done.detail
    assert f"node {victim} isolated, {MEANT}; alert PoolwatchJobHang: " in done.detail
    check_reason(done.detail, fp)


# -- on the real kube-apiserver -------------------------------------------------------------------


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


@pytest.mark.controlplane
def test_on_kubernetes_the_stored_events_and_the_audit_name_the_fault_code(
    kube: TestCluster, cluster: KubernetesCluster, tmp_path: Path
) -> None:
    pool, node = f"pool-{kube.test_id}", f"gpu-{kube.test_id}"
    kube.kubelet.node(node, {"poolwatch.io/pool": pool})
    kube.kubelet.node(f"spare-{kube.test_id}", {"poolwatch.io/pool": pool})
    until(lambda: sum(n.pool == pool for n in cluster.nodes()) == 2)
    state = tmp_path / "controller.db"
    settings = ControllerSettings(dry_run=False, backend="kubernetes", state_path=state,
                                  breaker_ratio=0.5, replace_codes=())  # fmt: skip
    ctl = PoolController(cluster, settings, Recorder())
    fp, actions = rule_actions(node, pool)

    result = ctl.submit(actions[0])

    assert result.outcome == "done", result.detail
    stored = kube.api.get(f"/api/v1/nodes/{node}")
    assert {"key": "poolwatch.io/fault", "value": CODE, "effect": "NoSchedule"} in (
        stored["spec"]["taints"]
    )

    def isolated_event() -> str:
        items = kube.api.get("/api/v1/namespaces/default/events")["items"]
        return next((e["message"] for e in items if e["involvedObject"]["name"] == node
                     and e["reason"] == "NodeIsolated"), "")  # fmt: skip

    message = until(isolated_event)
    assert message.startswith(f"Node isolated, {MEANT}; alert {RULE}: "), message
    check_reason(message, fp)
    lines = [line.split("\t") for line in audit_lines(state)]
    isolate = [d for _, op, target, _, d in lines if op == "action:isolate" and target == node]
    assert isolate
    assert isolate[0].startswith(f"node {node} isolated: {MEANT}; alert {RULE}")
    for *_, detail in lines:
        check_reason(detail, fp)
