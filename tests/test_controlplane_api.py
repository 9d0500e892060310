"""The pool API over the Kubernetes backend on the real kube-apiserver (tests/controlplane.py),
with the real PoolController: the documents test_api_kubernetes.py checks on the stand-in, from
objects the real API server stored, and a pool created through the API that the server's
nodes then carry as labels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane import TestCluster
from controlplane_seed import seed_handbuilt
from fastapi.testclient import TestClient
from test_api import P, error
from test_api_support import AUTH, TOKEN
from test_kubernetes_backend import RecordingBackoff

from poolwatch.api.app import create_app
from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.controller.service import PoolController

pytestmark = pytest.mark.controlplane


@pytest.fixture
def client(
    kube: TestCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    seed_handbuilt(kube)
    cluster = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp_path / "kc"), watch_timeout=5,
                                backoff=RecordingBackoff(), sync_timeout=30.0)  # fmt: skip
    cluster.start()
    deadline = time.monotonic() + 30
    while not cluster.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)
    controller = PoolController(cluster, state_path=tmp_path / "controller.db")
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN)
    try:
        with TestClient(app, headers=AUTH) as c:
            yield c
    finally:
        cluster.stop()


def test_pools_nodes_and_statistics_from_the_real_api_server(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    pools = {p["metadata"]["name"]: p for p in client.get(f"{P}/pools").json()["items"]}
    assert set(pools) == {"pool-h100-a", "pool-910b"}
    assert pools["pool-h100-a"]["spec"]["resources"] == [{"flavor": "p5.48xlarge", "count": 2}]
    assert pools["pool-910b"]["status"]["status"] == "Abnormal"  # its one node is isolated
    first = client.get(f"{P}/pools/pool-h100-a/nodes", params={"limit": 1}).json()
    assert [n["metadata"]["name"] for n in first["items"]] == ["gpu-node-07"]
    token = first["metadata"]["continue"]
    rest = client.get(f"{P}/pools/pool-h100-a/nodes", params={"limit": 1, "continue": token})
    assert [n["metadata"]["name"] for n in rest.json()["items"]] == ["gpu-node-08"]
    stats = client.get(f"{P}/statistics/pools").json()
    assert stats["nodes"]["statuses"] == {"Available": 2, "Isolated": 1}
    assert stats["accelerators"] == {"huawei.com/Ascend910": 8.0, "nvidia.com/gpu": 16.0}


def test_nodes_with_jobs_are_not_released(client: TestClient) -> None:
    resp = client.post(f"{P}/pools/pool-h100-a/nodes/batch-delete",
                       json={"deleteNodeNames": ["gpu-node-08"]})  # fmt: skip
    (result,) = resp.json()["results"]
    assert result["outcome"] == "refused"
    assert "runs jobs" in result["detail"]
    only = {"deleteNodeNames": ["npu-node-03"]}
    body: Any = error(client.post(f"{P}/pools/pool-910b/nodes/batch-delete", json=only), 409,
                      "PW.0201")  # fmt: skip
    assert "last node" in body["error_msg"]
