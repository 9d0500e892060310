"""Rolling driver upgrades on a simulated pool with the real PoolController: batches, the
secure mode's wait for jobs, forcible mode, refusals, a failed step, and the pool events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from poolwatch.api.app import create_app
from poolwatch.api.upgrade import (
    DRIVER_LABEL,
    CommandStep,
    SimulatedStep,
    Upgrade,
    UpgradeManager,
    UpgradePlan,
)
from poolwatch.cluster.model import Pod
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import STATUS_LABEL, JobRequest
from poolwatch.controller.service import PoolController
from tests.api.test_api import P, error
from tests.helpers.api_support import AUTH, TOKEN, controller_over, quiet_cluster

GPU_NODES = [f"gpu-a-node-{i:02d}" for i in range(8)]  # 07 is the HA spare


@pytest.fixture
def cluster() -> SimulatedCluster:
    return quiet_cluster()


@pytest.fixture
def controller(cluster: SimulatedCluster, tmp_path: Path) -> PoolController:
    return controller_over(cluster, tmp_path)


def upgrade(controller: PoolController, cluster: SimulatedCluster, **plan: Any) -> Upgrade:
    args = {"pool": "gpu-a", "version": "550.54.15"} | plan
    step = plan.pop("step", None) or SimulatedStep(cluster)
    args.pop("step", None)
    return Upgrade(controller, cluster, UpgradePlan(**args), step, clock=lambda: cluster.now)


def reasons(cluster: SimulatedCluster) -> list[str]:
    return [e.reason for e in sorted(cluster.events(), key=lambda e: e.time)
            if e.pool == "gpu-a" and e.reason.startswith("DriverUpgrade")]  # fmt: skip


def status(cluster: SimulatedCluster) -> dict[str, tuple[str, str]]:
    return {n.name: (n.status.value, n.fault_code) for n in cluster.nodes() if n.pool == "gpu-a"}


def job_on(cluster: SimulatedCluster, duration: float) -> str:
    job = cluster.submit(JobRequest("team-a", "gpu-a", workers=1, per_worker=8,
                                    duration=duration))  # fmt: skip
    return next(p.node for p in cluster.pods() if p.job == job.name)


def test_batch_sizes() -> None:
    assert UpgradePlan("p", "535.161.08").batch_size(8) == 2  # 25 % by default, the seed's example
    assert (
        UpgradePlan("p", "535.161.08", batch_percent=10).batch_size(8) == 1
    )  # rounded up, at least 1
    assert UpgradePlan("p", "535.161.08", batch_percent=50).batch_size(7) == 4
    assert UpgradePlan("p", "535.161.08", batch_nodes=3).batch_size(8) == 3
    with pytest.raises(ValueError, match="not both"):
        UpgradePlan("p", "535.161.08", batch_percent=10, batch_nodes=2)
    with pytest.raises(ValueError, match="percent"):
        UpgradePlan("p", "535.161.08", batch_percent=0)
    with pytest.raises(ValueError, match="version"):
        UpgradePlan("p", " ")


def test_secure_upgrade_isolates_waits_for_jobs_and_returns_nodes(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    busy = job_on(cluster, duration=1800)
    up = upgrade(controller, cluster, batch_nodes=3)
    assert up.start().outcome == "done"
    assert controller.pool_activity("gpu-a") == "upgrading"
    up.advance()
    # idle nodes first ("instances without services"): the busy node is left for the end
    first = [n.name for n in up.nodes.values() if n.batch == 1]
    assert busy not in first
    assert len(first) == 3
    assert all(status(cluster)[n] == ("Available", "") for n in first)  # upgraded, returned
    while up.batch < 3:
        up.advance()
    third = [n.name for n in up.nodes.values() if n.batch == 3]
    assert busy in third
    assert status(cluster)[busy] == ("Isolated", "A200001")  # no new job lands there
    for _ in range(5):
        up.advance()
    assert up.nodes[busy].state == "draining"  # its job still runs: it waits
    assert up.phase == "running"
    assert any(p.node == busy and p.phase in ("Pending", "Running") for p in cluster.pods())
    cluster.step(1900)  # the job finishes
    while not up.advance():
        pass
    assert up.phase == "done"
    assert {n.state for n in up.nodes.values()} == {"done"}
    assert all(dict(n.labels)[DRIVER_LABEL] == "550.54.15" for n in cluster.nodes()
               if n.pool == "gpu-a")  # fmt: skip
    assert status(cluster)[busy] == ("Available", "")
    assert status(cluster)["gpu-a-node-07"] == ("Spare", "")  # the spare stays a spare
    assert controller.pool_activity("gpu-a") is None
    assert reasons(cluster) == ["DriverUpgradeStarted"] + [
        "DriverUpgradeBatchStarted", "DriverUpgradeBatchFinished"] * 3 + [
        "DriverUpgradeCompleted"]  # fmt: skip
    # the job was never disturbed: it completed
    assert {j.status.value for j in cluster.jobs()} == {"Completed"}


def test_secure_mode_gives_up_on_a_node_whose_jobs_outlast_the_wait(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    busy = job_on(cluster, duration=10 * 3600)
    up = upgrade(controller, cluster, batch_nodes=8, wait_timeout=600)
    up.start()
    up.advance()
    assert up.nodes[busy].state == "draining"
    cluster.step(601)
    while not up.advance():
        pass
    assert up.nodes[busy].state == "skipped"
    assert "jobs still running" in up.nodes[busy].detail
    assert status(cluster)[busy] == ("Available", "")  # returned, not upgraded
    assert DRIVER_LABEL not in dict(next(n for n in cluster.nodes() if n.name == busy).labels)
    assert up.phase == "done"


def test_forcible_upgrade_does_not_wait(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    busy = job_on(cluster, duration=1800)
    up = upgrade(controller, cluster, mode="forcible", batch_percent=100)
    up.start()
    assert up.advance() is False  # one batch, all nodes, at once
    assert up.nodes[busy].state == "done"
    assert up.advance() is True
    assert up.phase == "done"
    assert status(cluster)[busy] == ("Available", "")


@pytest.mark.parametrize(("marker", "activity"), [("Resetting", "resetting")])
def test_refused_while_the_pool_resets(
    cluster: SimulatedCluster, controller: PoolController, marker: str, activity: str
) -> None:
    cluster.label_node("gpu-a-node-03", {STATUS_LABEL: marker})
    assert controller.pool_activity("gpu-a") == activity
    up = upgrade(controller, cluster)
    result = up.start()
    assert result.outcome == "refused"
    assert activity in result.detail
    assert up.advance() is True
    assert up.phase == "refused"
    assert status(cluster)["gpu-a-node-00"] == ("Available", "")  # nothing was touched
    assert reasons(cluster) == ["DriverUpgradeRefused"]
    assert controller.pool_activity("gpu-a") == activity  # not marked upgrading


class Replacing:
    """The real controller, except that the pool is replacing a node right now (the
    simulation's spares make a replacement finish at once, so it is never caught mid-way)."""

    def __init__(self, real: PoolController) -> None:
        self.real = real

    def pool_activity(self, pool: str) -> str | None:
        return "replacing"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_refused_while_replacing(cluster: SimulatedCluster, controller: PoolController) -> None:
    up = upgrade(Replacing(controller), cluster)  # type: ignore[arg-type]
    result = up.start()
    assert result.outcome == "refused"
    assert "replacing" in result.detail
    assert reasons(cluster) == ["DriverUpgradeRefused"]
    assert status(cluster)["gpu-a-node-00"] == ("Available", "")


def test_refused_twice_and_for_unknown_pools(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    first = upgrade(controller, cluster)
    assert first.start().outcome == "done"
    second = upgrade(controller, cluster)
    assert "already being upgraded" in second.start().detail
    assert upgrade(controller, cluster, pool="nope").start().outcome == "refused"


def test_a_failed_step_stops_the_rollout_and_leaves_the_node_isolated(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    step = SimulatedStep(cluster, fail={"gpu-a-node-01"})
    up = upgrade(controller, cluster, batch_nodes=2, step=step)
    up.start()
    while not up.advance():
        pass
    assert up.phase == "failed"
    assert up.nodes["gpu-a-node-01"].state == "failed"
    assert status(cluster)["gpu-a-node-01"] == ("Isolated", "A200001")
    assert up.nodes["gpu-a-node-00"].state == "done"
    assert [n.state for n in up.nodes.values()].count("queued") == 6  # later batches untouched
    assert step.calls == ["gpu-a-node-00", "gpu-a-node-01"]
    assert reasons(cluster)[-2:] == ["DriverUpgradeBatchFinished", "DriverUpgradeFailed"]
    assert "DriverUpgradeNodeFailed" in reasons(cluster)
    failed = next(e.message for e in cluster.events() if e.reason == "DriverUpgradeNodeFailed")
    assert "stays isolated (fault code A200001 (The GPU is being upgraded))" in failed
    assert controller.pool_activity("gpu-a") is None


class Watching(SimulatedStep):
    """Records how each node looks at the moment its driver is installed."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        super().__init__(cluster)
        self.seen: dict[str, tuple[str, str]] = {}

    def upgrade(self, node: str, pool: str, version: str) -> Any:
        n = next(x for x in self.backend.nodes() if x.name == node)
        self.seen[node] = (n.status.value, n.fault_code)
        return super().upgrade(node, pool, version)


@pytest.mark.parametrize(("pool", "code"), [("gpu-a", "A200001"), ("npu-b", "A200002")])
def test_nodes_are_isolated_with_the_upgrade_code_while_upgraded(
    cluster: SimulatedCluster, controller: PoolController, pool: str, code: str
) -> None:
    step = Watching(cluster)
    up = upgrade(controller, cluster, pool=pool, version="550.54.15", step=step, batch_nodes=1)
    up.start()
    while not up.advance():
        pass
    spare = f"{pool}-node-{3 if pool == 'npu-b' else 7:02d}"
    assert step.seen.pop(spare) == ("Spare", "")  # spares are upgraded in place
    assert set(step.seen.values()) == {("Isolated", code)}
    assert all(n.fault_code == "" for n in cluster.nodes())  # and all returned after


def test_command_step_runs_per_node(cluster: SimulatedCluster, tmp_path: Path) -> None:
    script = tmp_path / "upgrade.py"
    script.write_text(
        "import os, sys\n"
        "print('installed', os.environ['POOLWATCH_VERSION'], 'on', os.environ['POOLWATCH_NODE'])\n"
        "sys.exit(3 if os.environ['POOLWATCH_NODE'].endswith('01') else 0)\n"
    )
    step = CommandStep([sys.executable, str(script)], cluster, timeout=30)
    ok = step.upgrade("gpu-a-node-00", "gpu-a", "551.0")
    assert ok.ok
    assert ok.detail == "installed 551.0 on gpu-a-node-00"
    labels = dict(next(n for n in cluster.nodes() if n.name == "gpu-a-node-00").labels)
    assert labels[DRIVER_LABEL] == "551.0"
    bad = step.upgrade("gpu-a-node-01", "gpu-a", "551.0")
    assert not bad.ok
    assert bad.detail.startswith("exit 3")
    missing = CommandStep([str(tmp_path / "nope")], cluster).upgrade("gpu-a-node-02", "gpu-a", "1")
    assert not missing.ok


def test_already_upgraded_nodes_are_skipped(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    for name in GPU_NODES[:7]:
        cluster.label_node(name, {DRIVER_LABEL: "550.54.15"})
    up = upgrade(controller, cluster)
    up.start()
    while not up.advance():
        pass
    assert [n.name for n in up.nodes.values() if n.state == "done"] == ["gpu-a-node-07"]
    everything = upgrade(controller, cluster)
    assert "no node to upgrade" in everything.start().detail


def test_through_the_api(cluster: SimulatedCluster, controller: PoolController) -> None:
    manager = UpgradeManager(controller, cluster, SimulatedStep(cluster), lambda: cluster.now,
                             autorun=False)  # fmt: skip
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN, upgrades=manager,
                     clock=lambda: cluster.now)  # fmt: skip
    with TestClient(app, headers=AUTH) as client:
        url = f"{P}/pools/gpu-a/driver-upgrade"
        error(client.get(url), 404, "PW.0102")
        body = {"driver": {"gpuVersion": "550.54.15", "updateStrategy": "force"},
                "batchPercent": 50}  # fmt: skip
        resp = client.post(url, json=body)
        assert resp.status_code == 202, resp.text
        assert resp.json()["mode"] == "forcible"
        assert resp.json()["phase"] == "running"
        error(client.post(url, json=body), 409, "PW.0201")  # one at a time
        for _ in range(5):
            manager.advance_all()
        doc = client.get(url).json()
        assert doc["phase"] == "done"
        assert doc["batch"] == 2
        assert {n["state"] for n in doc["nodes"]} == {"done"}
        both = {"driver": {"gpuVersion": "535.161.08"}, "batchPercent": 10, "batchNodes": 1}
        error(client.post(url, json=both), 400, "PW.0100", "batchNodes")
        error(client.post(url, json={"driver": {}}), 400, "PW.0100", "driver.gpuVersion")
        cluster.label_node("gpu-a-node-03", {STATUS_LABEL: "Resetting"})
        refused = error(
            client.post(url, json={"driver": {"gpuVersion": "560.35.03"}}), 409, "PW.0201"
        )
        assert "resetting" in refused["error_msg"]


def test_abort_returns_the_batch_and_a_rerun_continues(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    busy = job_on(cluster, duration=3600)
    up = upgrade(controller, cluster, batch_nodes=8)
    up.start()
    up.advance()
    assert status(cluster)[busy] == ("Isolated", "A200001")
    up.abort("operator said stop")
    assert up.phase == "aborted"
    assert status(cluster)[busy] == ("Available", "")
    assert controller.pool_activity("gpu-a") is None
    assert reasons(cluster)[-1] == "DriverUpgradeAborted"
    again = upgrade(controller, cluster, mode="forcible")
    assert again.start().outcome == "done"
    assert [n.name for n in again.nodes.values() if n.state == "queued"] == [busy]


def test_without_a_step_the_api_refuses_upgrades(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN)  # no upgrade_step
    with TestClient(app, headers=AUTH) as client:
        resp = client.post(
            f"{P}/pools/gpu-a/driver-upgrade", json={"driver": {"gpuVersion": "535.161.08"}}
        )
        body = error(resp, 409, "PW.0201")
        assert "no upgrade step" in body["error_msg"]
    assert status(cluster)["gpu-a-node-00"] == ("Available", "")
    assert controller.pool_activity("gpu-a") is None


def test_delete_aborts_a_running_upgrade_and_recovers_a_dead_one(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    busy = job_on(cluster, duration=3600)
    manager = UpgradeManager(controller, cluster, SimulatedStep(cluster), lambda: cluster.now,
                             autorun=False)  # fmt: skip
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN, upgrades=manager)
    url = f"{P}/pools/gpu-a/driver-upgrade"
    with TestClient(app, headers=AUTH) as client:
        error(client.delete(url), 409, "PW.0201", "pool_name")  # nothing to abort
        client.post(url, json={"driver": {"gpuVersion": "535.161.09"}, "batchNodes": 8})
        manager.advance_all()
        assert status(cluster)[busy] == ("Isolated", "A200001")
        resp = client.delete(url)
        assert resp.json() == {"pool": "gpu-a", "result": "aborted", "nodes": [busy]}
        assert status(cluster)[busy] == ("Available", "")
        assert client.get(url).json()["phase"] == "aborted"
    # a server that died mid-upgrade: the node stays isolated and the pool marked upgrading
    dead = upgrade(controller, cluster, version="535.161.10", batch_nodes=8)
    dead.start()
    dead.advance()
    assert status(cluster)[busy] == ("Isolated", "A200001")
    fresh = UpgradeManager(controller, cluster, SimulatedStep(cluster), lambda: cluster.now,
                           autorun=False)  # fmt: skip
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN, upgrades=fresh)
    with TestClient(app, headers=AUTH) as client:
        resp = client.delete(url)
        assert resp.json() == {"pool": "gpu-a", "result": "recovered", "nodes": [busy]}
    assert status(cluster)[busy] == ("Available", "")
    assert controller.pool_activity("gpu-a") is None


class WithExtraPods:
    """The simulated cluster plus pods that are no training job's, as a real node has."""

    def __init__(self, cluster: SimulatedCluster, extra: list[Pod]) -> None:
        self.cluster, self.extra = cluster, extra

    def pods(self) -> list[Pod]:
        return self.cluster.pods() + self.extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)


def test_secure_mode_waits_for_services_not_for_daemonsets(
    cluster: SimulatedCluster, controller: PoolController
) -> None:
    plugin = Pod("nvidia-device-plugin-x", "kube-system", "u1", "gpu-a-node-00", "Running")
    service = Pod("triton-0", "serving", "u2", "gpu-a-node-01", "Running",
                  requests=(("cpu", 4.0), ("nvidia.com/gpu", 1.0)))  # fmt: skip
    backend = WithExtraPods(cluster, [plugin, service])
    up = Upgrade(controller, backend, UpgradePlan("gpu-a", "550.54.15", batch_nodes=8),  # type: ignore[arg-type]
                 SimulatedStep(cluster), clock=lambda: cluster.now)  # fmt: skip
    up.start()
    up.advance()
    assert up.nodes["gpu-a-node-00"].state == "done"  # a device plugin never ends: not waited for
    assert up.nodes["gpu-a-node-01"].state == "draining"  # an inference service holds a GPU
    backend.extra = [plugin]
    assert up.advance() is False
    assert up.nodes["gpu-a-node-01"].state == "done"
