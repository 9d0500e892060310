"""The pool API on the simulated pool, with the real PoolController: every operation, the
seed's parameter edge cases, auth and the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api_support import (
    AUTH,
    TOKEN,
    StubPrometheus,
    controller_over,
    quiet_cluster,
    serve_stub,
)

from poolwatch.api.app import create_app
from poolwatch.api.upgrade import SimulatedStep, UpgradeManager
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import JobRequest

P = "/v2/proj-1"


@pytest.fixture
def stub() -> StubPrometheus:
    return StubPrometheus()


@pytest.fixture
def world(tmp_path: Path, stub: StubPrometheus) -> Iterator[dict[str, Any]]:
    cluster = quiet_cluster()
    controller = controller_over(cluster, tmp_path)
    upgrades = UpgradeManager(controller, cluster, SimulatedStep(cluster), lambda: cluster.now,
                              autorun=False)  # fmt: skip
    for url in serve_stub(stub):
        app = create_app(controller, cluster, url, TOKEN, upgrades=upgrades,
                         clock=lambda: cluster.now)  # fmt: skip
        with TestClient(app, headers=AUTH) as client:
            yield {"client": client, "cluster": cluster, "controller": controller,
                   "upgrades": upgrades}  # fmt: skip


def error(resp: Any, status: int, code: str, parameter: str | None = None) -> dict[str, str]:
    """The one error shape, with this status, code and parameter."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "error_msg", "parameter"}
    assert body["error_code"] == code
    if parameter is not None:
        assert body["parameter"] == parameter
        assert parameter in body["error_msg"]
    return body


def busy_job(cluster: SimulatedCluster, pool: str = "gpu-a", duration: float = 1800.0) -> str:
    job = cluster.submit(JobRequest("team-a", pool, workers=1, per_worker=8, duration=duration))
    pods = [p.node for p in cluster.pods() if p.job == job.name]
    assert pods, "the job was placed"
    return pods[0]


# -- auth, health, OpenAPI -------------------------------------------------------------------
def test_every_route_needs_the_bearer_token(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    error(client.get(f"{P}/pools", headers={"Authorization": ""}), 401, "PW.0001")
    error(client.get(f"{P}/pools", headers={"Authorization": "Bearer wrong"}), 401, "PW.0001")
    error(client.get(f"{P}/pools", headers={"Authorization": f"Basic {TOKEN}"}), 401, "PW.0001")
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200
    doc = client.get("/openapi.json", headers={"Authorization": ""}).json()
    assert "/v2/{project_id}/pools/{pool_name}/monitor" in doc["paths"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_healthz_follows_the_cluster_backend(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    world["cluster"].reachable = False  # the simulation's API outage
    assert client.get("/healthz").status_code == 503
    world["cluster"].reachable = True
    assert client.get("/healthz").json() == {"status": "ok"}


def test_an_empty_token_is_refused_at_build_time(tmp_path: Path) -> None:
    cluster = quiet_cluster()
    with pytest.raises(ValueError, match="token"):
        create_app(controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", "")


def test_unknown_routes_and_bad_project_ids_answer_in_the_one_shape(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    error(client.get("/v2/p/nothing-here"), 404, "PW.0002")
    error(client.get("/v2/bad%20id/pools"), 400, "PW.0100", "project_id")


# -- list and query pools --------------------------------------------------------------------
def names(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [p["metadata"]["name"] for p in resp.json()["items"]]


def test_list_pools_filters_by_workspace_selector_and_status(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    assert names(client.get(f"{P}/pools")) == ["gpu-a", "npu-b"]
    assert names(client.get(f"{P}/pools", params={"workspaceId": "0"})) == ["gpu-a", "npu-b"]
    assert names(client.get(f"{P}/pools", params={"workspaceId": "7"})) == []
    sel = {"labelSelector": "poolwatch.io/vendor=huawei"}
    assert names(client.get(f"{P}/pools", params=sel)) == ["npu-b"]
    sel = {"labelSelector": "os.modelarts/name in (gpu-a, x),poolwatch.io/vendor!=huawei"}
    assert names(client.get(f"{P}/pools", params=sel)) == ["gpu-a"]
    assert names(client.get(f"{P}/pools", params={"labelSelector": "!os.modelarts/name"})) == []
    assert names(client.get(f"{P}/pools", params={"status": "created"})) == ["gpu-a", "npu-b"]
    assert names(client.get(f"{P}/pools", params={"status": "failed"})) == []
    assert names(client.get(f"{P}/pools", params={"status": "creating"})) == []
    error(client.get(f"{P}/pools", params={"status": "broken"}), 400, "PW.0100", "status")
    bad = client.get(f"{P}/pools", params={"labelSelector": "a in b"})
    error(bad, 400, "PW.0107", "labelSelector")


def test_query_a_pool(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    doc = client.get(f"{P}/pools/gpu-a").json()
    assert doc["kind"] == "Pool"
    assert doc["metadata"]["labels"]["os.modelarts/name"] == "gpu-a"
    assert doc["metadata"]["labels"]["os.modelarts/workspace.id"] == "0"
    assert doc["spec"]["driver"] == {"gpuVersion": "535.161.08"}
    assert doc["spec"]["resources"] == [{"flavor": "nvidia.8x.NVIDIA-H100-80GB-HBM3", "count": 8}]
    assert doc["status"]["nodes"] == {"Available": 7, "Spare": 1}
    assert doc["status"]["phase"] == "created"
    assert doc["status"]["activity"] is None


@pytest.mark.parametrize("bad", ["Gpu-a", "gpu_a", "gpu-a-", "9gpu", "a" * 64])
def test_a_bad_pool_name_is_named(world: dict[str, Any], bad: str) -> None:
    for path in ("", "/nodes", "/monitor"):
        error(world["client"].get(f"{P}/pools/{bad}{path}"), 400, "PW.0101", "pool_name")


def test_an_unknown_pool_is_404(world: dict[str, Any]) -> None:
    error(world["client"].get(f"{P}/pools/nope"), 404, "PW.0102", "pool_name")
    error(world["client"].delete(f"{P}/pools/nope"), 404, "PW.0102", "pool_name")


# -- nodes: pagination and batch delete ------------------------------------------------------
def test_list_nodes_pages_to_the_end(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    seen, token, pages = [], "", 0
    while True:
        params = {"limit": 3} | ({"continue": token} if token else {})
        doc = client.get(f"{P}/pools/gpu-a/nodes", params=params).json()
        pages += 1
        seen += [n["metadata"]["name"] for n in doc["items"]]
        token = doc["metadata"]["continue"]
        assert doc["metadata"]["remainingItemCount"] == 8 - len(seen)
        if not token:
            break
    assert pages == 3
    assert seen == [f"gpu-a-node-{i:02d}" for i in range(8)]
    whole = client.get(f"{P}/pools/gpu-a/nodes").json()
    assert [n["metadata"]["name"] for n in whole["items"]] == seen
    assert whole["metadata"]["continue"] == ""
    spare = whole["items"][-1]
    assert spare["status"]["phase"] == "Spare"
    assert spare["spec"]["unschedulable"] is True


@pytest.mark.parametrize(("params", "code", "parameter"), [
    ({"limit": 0}, "PW.0100", "limit"), ({"limit": 501}, "PW.0100", "limit"),
    ({"limit": "ten"}, "PW.0100", "limit"), ({"continue": "not-a-token"}, "PW.0106", "continue"),
    ({"continue": "eyJ4IjogMX0"}, "PW.0106", "continue"),  # base64 JSON without "after"
])  # fmt: skip
def test_bad_paging_parameters_are_named(
    world: dict[str, Any], params: dict[str, Any], code: str, parameter: str
) -> None:
    error(world["client"].get(f"{P}/pools/gpu-a/nodes", params=params), 400, code, parameter)


def test_batch_delete_releases_through_the_controller(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    cluster: SimulatedCluster = world["cluster"]
    busy = busy_job(cluster)
    idle = next(
        n.name for n in cluster.nodes()
        if n.pool == "gpu-a" and n.name != busy and n.status.value == "Available"
    )  # fmt: skip
    resp = client.post(f"{P}/pools/gpu-a/nodes/batch-delete",
                       json={"deleteNodeNames": [idle, busy]})  # fmt: skip
    assert resp.status_code == 200, resp.text
    results = {r["name"]: r for r in resp.json()["results"]}
    assert results[idle]["outcome"] == "done"
    assert results[busy]["outcome"] == "refused"
    assert "runs jobs" in results[busy]["detail"]
    pools = {n.name: n.pool for n in cluster.nodes()}
    assert pools[idle] == ""
    assert pools[busy] == "gpu-a"
    again = client.post(f"{P}/pools/gpu-a/nodes/batch-delete", json={"deleteNodeNames": [idle]})
    error(again, 400, "PW.0105", "deleteNodeNames[0]")


def test_batch_delete_validates_names(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    url = f"{P}/pools/npu-b/nodes/batch-delete"
    body = {"deleteNodeNames": ["npu-b-node-00", "npu-b-node-00"]}
    error(client.post(url, json=body), 400, "PW.0100", "deleteNodeNames[1]")
    error(client.post(url, json={"deleteNodeNames": []}), 400, "PW.0100", "deleteNodeNames")
    every = {"deleteNodeNames": [f"npu-b-node-{i:02d}" for i in range(4)]}
    error(client.post(url, json=every), 409, "PW.0201", "deleteNodeNames")
    error(client.post(url, json={"nodes": ["x"]}), 400, "PW.0100")


# -- create and delete pools -----------------------------------------------------------------
def pool_body(name: str, count: int = 2, spares: int = 1, selector: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "v2", "kind": "Pool",
        "metadata": {"labels": {"os.modelarts/name": name, "os.modelarts/workspace.id": "0"},
                     "annotations": {"os.modelarts/description": "made by a test"}},
        "spec": {"type": "Dedicate", "scope": ["Train"],
                 "resources": [{"flavor": "nvidia.8x.NVIDIA-H100-80GB-HBM3", "count": count,
                                "nodeSelector": selector, "haSpares": spares}],
                 "driver": {"gpuVersion": "550.54.15", "updateStrategy": "idle"}},
    }  # fmt: skip


def free_two(client: TestClient) -> list[str]:
    names_ = ["gpu-a-node-04", "gpu-a-node-05"]
    resp = client.post(f"{P}/pools/gpu-a/nodes/batch-delete", json={"deleteNodeNames": names_})
    assert [r["outcome"] for r in resp.json()["results"]] == ["done", "done"]
    return names_


def test_create_a_pool_over_free_nodes_then_delete_it(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    cluster: SimulatedCluster = world["cluster"]
    freed = free_two(client)
    resp = client.post(f"{P}/pools", json=pool_body("gpu-c"))
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["result"]["outcome"] == "done"
    assert doc["nodes"] == freed
    assert "gpu-c" in names(client.get(f"{P}/pools"))
    nodes = client.get(f"{P}/pools/gpu-c/nodes").json()["items"]
    assert {n["metadata"]["name"]: n["status"]["phase"] for n in nodes} == {
        freed[0]: "Available", freed[1]: "Spare"}  # fmt: skip
    error(client.post(f"{P}/pools", json=pool_body("gpu-c")), 409, "PW.0103")
    resp = client.delete(f"{P}/pools/gpu-c")
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["outcome"] == "done"
    assert "gpu-c" not in names(client.get(f"{P}/pools"))
    assert {n.name: n.pool for n in cluster.nodes()}[freed[0]] == ""


def test_a_created_pool_keeps_its_workspace_and_job_types(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    free_two(client)
    body = pool_body("gpu-c")
    body["metadata"]["labels"]["os.modelarts/workspace.id"] = "5"
    body["spec"]["scope"] = ["Train", "Infer"]
    resp = client.post(f"{P}/pools", json=body)
    assert resp.status_code == 201, resp.text
    assert names(client.get(f"{P}/pools", params={"workspaceId": "5"})) == ["gpu-c"]
    assert names(client.get(f"{P}/pools")) == ["gpu-a", "npu-b"]  # workspace 0
    doc = client.get(f"{P}/pools/gpu-c").json()
    assert doc["metadata"]["labels"]["os.modelarts/workspace.id"] == "5"
    assert doc["spec"]["scope"] == ["Train", "Infer"]
    stats = client.get(f"{P}/statistics/pools", params={"workspaceId": "5"}).json()
    assert stats["pools"]["total"] == 1
    assert stats["workspaces"] == {"0": 2, "5": 1}
    bad = pool_body("gpu-d")
    bad["metadata"]["labels"]["os.modelarts/workspace.id"] = "no spaces"
    client.delete(f"{P}/pools/gpu-c")
    refused = error(client.post(f"{P}/pools", json=bad), 409, "PW.0201")  # no label value
    assert "workspace 'no spaces'" in refused["error_msg"]
    assert "gpu-d" not in names(client.get(f"{P}/pools", params={"workspaceId": "no spaces"}))


def test_create_pool_checks_name_nodes_and_spares(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    name_field = 'metadata.labels["os.modelarts/name"]'
    for bad in ("9gpu", "Gpu", "gpu-", "gpu_c"):
        error(client.post(f"{P}/pools", json=pool_body(bad)), 400, "PW.0101", name_field)
    nameless = pool_body("x")
    del nameless["metadata"]["labels"]["os.modelarts/name"]
    error(client.post(f"{P}/pools", json=nameless), 400, "PW.0101", name_field)
    error(client.post(f"{P}/pools", json=pool_body("gpu-c")), 409, "PW.0104",
          "spec.resources[0].count")  # fmt: skip
    free_two(client)
    error(client.post(f"{P}/pools", json=pool_body("gpu-c", count=3)), 409, "PW.0104",
          "spec.resources[0].count")  # fmt: skip
    error(client.post(f"{P}/pools", json=pool_body("gpu-c", spares=2)), 400, "PW.0100",
          "spec.resources[0].haSpares")  # fmt: skip
    none_match = pool_body("gpu-c", selector="team=nobody")
    error(client.post(f"{P}/pools", json=none_match), 409, "PW.0104")
    bad_sel = pool_body("gpu-c", selector="a in ()")
    error(client.post(f"{P}/pools", json=bad_sel), 400, "PW.0107",
          "spec.resources[0].nodeSelector")  # fmt: skip
    wrong_scope = pool_body("gpu-c")
    wrong_scope["spec"]["scope"] = ["Batch"]
    error(client.post(f"{P}/pools", json=wrong_scope), 400, "PW.0100", "spec.scope[0]")
    too_many = pool_body("gpu-c", count=31)
    error(client.post(f"{P}/pools", json=too_many), 400, "PW.0100", "spec.resources[0].count")


def test_deleting_a_pool_with_running_jobs_is_refused(world: dict[str, Any]) -> None:
    busy_job(world["cluster"], "npu-b")
    body = error(world["client"].delete(f"{P}/pools/npu-b"), 409, "PW.0201")
    assert "runs jobs" in body["error_msg"]


# -- statistics --------------------------------------------------------------------------------
def test_statistics_count_pools_and_nodes_per_workspace(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    world["cluster"].inject("not_ready", "npu-b-node-01")
    doc = client.get(f"{P}/statistics/pools").json()
    assert doc["workspaceId"] == "0"
    assert doc["pools"] == {"total": 2, "phases": {"created": 2},
                            "statuses": {"Running": 2}}  # fmt: skip
    assert doc["nodes"] == {"total": 12, "statuses": {"Available": 9, "Spare": 2,
                                                      "Unavailable": 1}}  # fmt: skip
    assert doc["accelerators"] == {"huawei.com/Ascend910": 32.0, "nvidia.com/gpu": 64.0}
    assert doc["workspaces"] == {"0": 2}
    empty = client.get(f"{P}/statistics/pools", params={"workspaceId": "9"}).json()
    assert empty["pools"]["total"] == 0
    assert empty["nodes"]["total"] == 0
    assert empty["workspaces"] == {"0": 2}
