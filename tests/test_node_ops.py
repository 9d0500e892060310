"""Operator controls on the simulated pool with the real PoolController, through the pool API:
return an isolated node to service, enable and disable HA redundancy on a node, list a pool's
training jobs; each leaves its audit record under its operation name. The CLI verbs
(`poolwatch controller restore|ha|jobs`) are run against the same simulated pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import busy_job, error
from test_api_support import AUTH, TOKEN, StubPrometheus, controller_over, quiet_cluster, serve_stub

from poolwatch.api.app import create_app
from poolwatch.api.upgrade import SimulatedStep, UpgradeManager
from poolwatch.cluster.model import NodeStatus
from poolwatch.cluster.simulated.spec import JobRequest

P = "/v2/proj-1"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    cluster = quiet_cluster()
    controller = controller_over(cluster, tmp_path)
    upgrades = UpgradeManager(controller, cluster, SimulatedStep(cluster), lambda: cluster.now,
                              autorun=False)  # fmt: skip
    for url in serve_stub(StubPrometheus()):
        app = create_app(controller, cluster, url, TOKEN, upgrades=upgrades,
                         clock=lambda: cluster.now)  # fmt: skip
        with TestClient(app, headers=AUTH) as client:
            yield {"client": client, "cluster": cluster, "controller": controller}


def status(cluster: Any, name: str) -> NodeStatus:
    return next(n for n in cluster.nodes() if n.name == name).status


def audit(controller: Any) -> list[tuple[str, str, str]]:
    return [(r.operation, r.target, r.outcome) for r in controller.store.audit_trail(100)]


def test_an_isolated_node_is_restored_through_the_api(world: dict[str, Any]) -> None:
    client, cluster, ctl = world["client"], world["cluster"], world["controller"]
    assert ctl.isolate("gpu-a-node-01", "A050101", "ECC", "iso-1").outcome == "done"
    assert status(cluster, "gpu-a-node-01") is NodeStatus.ISOLATED
    resp = client.post(f"{P}/pools/gpu-a/nodes/gpu-a-node-01/restore",
                       json={"reason": "card replaced"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["outcome"] == "done"
    node = next(n for n in cluster.nodes() if n.name == "gpu-a-node-01")
    assert node.status is NodeStatus.AVAILABLE
    assert not node.taints
    assert not node.unschedulable
    assert ("restore", "gpu-a-node-01", "done") in audit(ctl)
    # the same request again is the same key: answered, not done twice
    again = client.post(f"{P}/pools/gpu-a/nodes/gpu-a-node-01/restore",
                        json={"reason": "card replaced"})  # fmt: skip
    assert again.json()["result"]["outcome"] == "already"
    # isolated again with the same code, restored again
    assert ctl.isolate("gpu-a-node-01", "A050101", "ECC again", "iso-1b").outcome == "done"
    again = client.post(f"{P}/pools/gpu-a/nodes/gpu-a-node-01/restore", json={"reason": "reset"})
    assert again.json()["result"]["outcome"] == "done"
    assert status(cluster, "gpu-a-node-01") is NodeStatus.AVAILABLE
    error(client.post(f"{P}/pools/gpu-a/nodes/npu-b-node-00/restore", json={"reason": "x"}),
          404, "PW.0105", "node_name")  # fmt: skip
    error(client.post(f"{P}/pools/gpu-a/nodes/gpu-a-node-01/restore", json={}), 400, "PW.0100")


def test_ha_redundancy_is_enabled_on_an_idle_node_only_and_disabled_on_a_spare(
    world: dict[str, Any],
) -> None:
    client, cluster, ctl = world["client"], world["cluster"], world["controller"]
    busy = busy_job(cluster)
    url = f"{P}/pools/gpu-a/nodes/{busy}/ha-redundancy"
    body = error(client.put(url, json={"enabled": True}), 409, "PW.0201")
    assert "runs work" in body["error_msg"]
    assert status(cluster, busy) is NodeStatus.AVAILABLE
    idle = next(n.name for n in cluster.nodes() if n.pool == "gpu-a" and n.name != busy
                and n.status is NodeStatus.AVAILABLE)  # fmt: skip
    url = f"{P}/pools/gpu-a/nodes/{idle}/ha-redundancy"
    resp = client.put(url, json={"enabled": True})
    assert resp.json()["result"]["outcome"] == "done", resp.text
    node = next(n for n in cluster.nodes() if n.name == idle)
    assert node.status is NodeStatus.SPARE
    assert node.unschedulable
    resp = client.put(url, json={"enabled": False})
    assert resp.json()["result"]["outcome"] == "done", resp.text
    node = next(n for n in cluster.nodes() if n.name == idle)
    assert node.status is NodeStatus.AVAILABLE
    assert not node.unschedulable
    # and again: a node can go back and forth (each request is its own)
    assert client.put(url, json={"enabled": True}).json()["result"]["outcome"] == "done"
    assert client.put(url, json={"enabled": True}).json()["result"]["outcome"] == "already"
    assert client.put(url, json={"enabled": False}).json()["result"]["outcome"] == "done"
    # disabling a node that is not HA redundant is refused with the reason
    body = error(client.put(url, json={"enabled": False}), 409, "PW.0201")
    assert "not an HA redundant node" in body["error_msg"]
    # an isolated node is not "without any service": refused
    assert ctl.isolate(idle, "A050101", "ECC", "iso-2").outcome == "done"
    body = error(client.put(url, json={"enabled": True}), 409, "PW.0201")
    assert "Isolated" in body["error_msg"]
    trail = audit(ctl)
    assert ("enableHaRedundancy", busy, "refused") in trail
    assert ("enableHaRedundancy", idle, "done") in trail
    assert ("disableHaRedundancy", idle, "done") in trail
    assert ("disableHaRedundancy", idle, "refused") in trail


def test_a_pools_jobs_are_listed_and_the_listing_is_audited(world: dict[str, Any]) -> None:
    client, cluster, ctl = world["client"], world["cluster"], world["controller"]
    a = cluster.submit(JobRequest("team-a", "gpu-a", workers=1, per_worker=8, duration=3600))
    b = cluster.submit(JobRequest("team-b", "gpu-a", workers=2, per_worker=8, duration=3600))
    other = cluster.submit(JobRequest("team-c", "npu-b", workers=1, per_worker=8, duration=3600))
    doc = client.get(f"{P}/pools/gpu-a/jobs").json()
    assert doc["kind"] == "JobList"
    names = {(j["metadata"]["namespace"], j["metadata"]["name"]) for j in doc["items"]}
    assert names == {("team-a", a.name), ("team-b", b.name)}
    assert ("team-c", other.name) not in names
    first = client.get(f"{P}/pools/gpu-a/jobs", params={"limit": 1}).json()
    assert len(first["items"]) == 1
    assert first["metadata"]["remainingItemCount"] == 1
    rest = client.get(f"{P}/pools/gpu-a/jobs",
                      params={"continue": first["metadata"]["continue"]}).json()  # fmt: skip
    assert len(rest["items"]) == 1
    assert rest["items"][0] != first["items"][0]
    assert ("listPoolJobs", "gpu-a", "done") in audit(ctl)
    error(client.get(f"{P}/pools/nope/jobs"), 404, "PW.0102")
