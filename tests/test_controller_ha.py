"""Two real `poolwatch controller run` processes on one Lease; the leader is killed (SIGKILL) in
the middle of an HA replacement; the standby takes the Lease over within the lease duration and
finishes the replacement without doing any step twice, as the shared audit trail shows.

Each process talks to the API server through its own delaying `TcpProxy` (0.4 s): its writes
take that long to be answered, which leaves a window between two steps of the replacement to
kill it in.
Both share the state file (`--state` on one volume, as the chart's ReadWriteMany persistence
gives two replicas).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from controller_lag_support import Api, RealApi, StubApi, live_nodes, node_body, until
from helpers import free_port
from tcpproxy import TcpProxy

from poolwatch.cluster.model import NodeStatus
from poolwatch.core.actions import NodeAction

ROOT = Path(__file__).resolve().parent.parent
LEASE = "poolwatch-controller"
DURATION, RENEW, LAG = 4, 0.3, 0.4
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def api(kube: Any, tmp_path: Path) -> Api:
    """The session's real kube-apiserver, this test's share of it (tests/controlplane.py)."""
    return RealApi(kube, tmp_path / "api")


def _micro(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class Replica:
    """One `poolwatch controller run` process, through its own lagging proxy."""

    def __init__(self, api: Api, name: str, state: Path, tmp: Path) -> None:
        self.name, self.port = name, free_port()
        self.proxy = TcpProxy(api.host[1], LAG)
        kubeconfig = tmp / f"{name}.kubeconfig"
        kubeconfig.write_text(api.kubeconfig(f"{api.scheme}://127.0.0.1:{self.proxy.port}"))
        config = tmp / f"{name}.yaml"
        config.write_text(json.dumps({
            "backend": "kubernetes", "kubeconfig": str(kubeconfig), "dry_run": False,
            "listen": f"127.0.0.1:{self.port}", "state_path": str(state), "interval": 0.3,
            "lease": {"duration": DURATION, "renew": RENEW, "identity": name,
                      "namespace": api.namespace},
        }))  # fmt: skip
        env = {k: v for k, v in os.environ.items()
               if k not in PROXY_VARS and not k.startswith("POOLWATCH_")}  # fmt: skip
        self.log = (tmp / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poolwatch", "controller", "run", "--config", str(config),
             "--log-level", "info"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def healthz(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return ""

    def post(self, action: NodeAction, answers: list[object]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/actions", json.dumps(action.to_json()).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                answers.append(json.loads(r.read()))
        except OSError as err:  # killed before it answered: the engine would send it again
            answers.append(err)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proxy.close()
        self.log.close()


def holder(api: Api) -> str:
    lease = api.lease(api.namespace, LEASE) or {}
    return str(lease.get("spec", {}).get("holderIdentity") or "")


def audit(state: Path) -> list[list[str]]:
    out = subprocess.run(
        [sys.executable, "-m", "poolwatch", "controller", "audit", "--state", str(state),
         "--limit", "1000"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


@pytest.mark.controlplane
def test_the_standby_takes_over_mid_replacement_and_does_no_step_twice(
    api: Api, tmp_path: Path
) -> None:
    names = [f"ha-{i:02d}" for i in range(10)]
    for i, name in enumerate(names):
        api.create_node(node_body(name, spare=i >= 8))
    state = tmp_path / "state.db"
    a = Replica(api, "ctl-a", state, tmp_path)
    replicas = [a]
    try:
        until(lambda: holder(api) == "ctl-a", 30)
        b = Replica(api, "ctl-b", state, tmp_path)
        replicas.append(b)
        until(lambda: "standby" in b.healthz(), 30)
        until(lambda: "leader" in a.healthz(), 30)

        answers: list[object] = []
        action = NodeAction("isolate", "ha:1", node="ha-00", fault_code="A050101",
                            reason="PoolwatchGpuXid79")  # fmt: skip
        threading.Thread(target=a.post, args=(action, answers), daemon=True).start()

        def replacing() -> bool:
            live = {n.name: n for n in live_nodes(api)}
            return dict(live["ha-00"].labels).get("poolwatch.io/status") == "Replacing"

        until(replacing, 30, step=0.01)
        spare_before = {n.name: n for n in live_nodes(api)}["ha-08"]
        renewed = _micro(api.lease(api.namespace, LEASE)["spec"]["renewTime"])
        a.proc.kill()  # SIGKILL: no release of the Lease, no clean-up
        killed = time.time()
        assert dict(spare_before.labels).get("poolwatch.io/status") == "Spare", "killed too late"

        until(lambda: holder(api) == "ctl-b", 30, step=0.01)
        took = time.time()
        # not before the Lease expired, and within a renew period (plus the API's lag) of it
        assert took - killed <= DURATION + RENEW + 0.5, (took - renewed, took - killed)
        assert took - renewed <= DURATION + RENEW + 1.0, (took - renewed, took - killed)
        sys.stderr.write(
            f"takeover {took - killed:.2f} s after the kill, {took - renewed:.2f} s "
            f"after the last renewal (lease {DURATION} s)\n"
        )

        def finished() -> bool:
            live = {n.name: n for n in live_nodes(api)}
            return (live["ha-00"].status is NodeStatus.REPAIRING
                    and live["ha-08"].status is NodeStatus.AVAILABLE)  # fmt: skip

        until(finished, 30)
        until(lambda: "leader" in b.healthz(), 10)
        again: list[object] = []  # the rule engine sends the unanswered action again
        b.post(action, again)
        assert isinstance(again[0], dict)
        assert again[0]["outcome"] == "already", again
    finally:
        for r in replicas:
            r.stop()
    assert answers
    assert isinstance(answers[0], OSError)  # the leader died before it answered

    trail = audit(state)
    steps = [detail.removesuffix(": found done") for _, op, target, _, detail in trail
             if op == "replaceNode" and target == "ha-00"]  # fmt: skip
    assert sorted(steps) == sorted([
        "label ha-00 Replacing", "take ha-08 out of the spares", "uncordon ha-08",
        "label ha-00 Repairing: replaced by ha-08",
    ]), trail  # fmt: skip
    found = [d for _, op, _, outcome, d in trail if op == "replaceNode" and outcome == "already"]
    assert found == ["label ha-00 Replacing: found done"], trail  # the step the dead leader did
    live = {n.name: n for n in live_nodes(api)}
    assert live["ha-09"].status is NodeStatus.SPARE  # no second spare taken
    if isinstance(api, StubApi):  # the stub also records the requests: each write went once
        patches = [json.dumps(body, sort_keys=True) for m, p, _, _, body in api.stub.requests
                   if m == "PATCH" and p.startswith("/api/v1/nodes/")]  # fmt: skip
        assert len(patches) == len(set(patches)), patches


def test_a_leader_that_could_not_renew_stops_acting_before_its_lease_expires() -> None:
    """No API server needed: the simulated pool keeps the Lease. After its last renewal a
    leader acts for the lease duration less one renew period, then refuses every decision
    (answered `failed`, nothing written) until it renews again."""
    from test_controller_support import controller, isolate, sim

    from poolwatch.controller.leader import LeaderElector
    from poolwatch.controller.settings import LeaseSettings

    cluster = sim(nodes=10, spares=1)
    now = [1_790_000_000.0]
    elector = LeaderElector(cluster, LeaseSettings(duration=15, renew=5, identity="a"),
                            clock=lambda: now[0])  # fmt: skip
    ctl = controller(cluster)
    ctl.may_act = elector.leading
    assert elector.step()
    now[0] += 9.9  # renew missed (the API was slow): still within 15 - 5 s
    assert elector.leading()
    now[0] += 0.2
    assert not elector.leading()
    result = ctl.submit(isolate("p0-node-00", key="late"))
    assert result.outcome == "failed"
    assert "does not hold the leader Lease" in result.detail
    assert {n.name: n.status for n in cluster.nodes()}["p0-node-00"] is NodeStatus.AVAILABLE
    assert elector.step()  # renewed: it acts again
    assert ctl.submit(isolate("p0-node-00", key="late")).outcome == "done"
