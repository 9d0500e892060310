"""The pool API over the Kubernetes backend (the real client against tests/helpers/k8s_stub.py),
with the real PoolController: the same documents as on the simulated pool, from real object
shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from fastapi.testclient import TestClient

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from tests.api.test_api import P
from tests.cluster.test_kubernetes_backend import RecordingBackoff, seed
from tests.helpers.api_support import api_over, nodes_with_jobs_are_not_released
from tests.helpers.k8s_stub import KubeApiStub


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    stub = KubeApiStub()
    seed(stub)
    config = kubernetes.client.Configuration(host=stub.url)
    config.retries = False
    cluster = KubernetesCluster(kubernetes.client.ApiClient(config), watch_timeout=5,
                                backoff=RecordingBackoff(), sync_timeout=30.0)  # fmt: skip
    try:
        with api_over(cluster, tmp_path) as c:
            yield c
    finally:
        stub.close()


def test_pools_nodes_and_statistics_from_kubernetes_objects(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    pools = {p["metadata"]["name"]: p for p in client.get(f"{P}/pools").json()["items"]}
    assert set(pools) == {"pool-h100-a", "pool-910b"}
    h100 = pools["pool-h100-a"]
    assert h100["spec"]["resources"] == [{"flavor": "p5.48xlarge", "count": 2}]
    assert h100["metadata"]["labels"]["poolwatch.io/vendor"] == "nvidia"
    assert pools["pool-910b"]["status"]["status"] == "Abnormal"  # its one node is isolated
    assert pools["pool-910b"]["status"]["phase"] == "created"
    first = client.get(f"{P}/pools/pool-h100-a/nodes", params={"limit": 1}).json()
    assert [n["metadata"]["name"] for n in first["items"]] == ["gpu-node-07"]
    assert first["items"][0]["status"]["allocatable"]["nvidia.com/gpu"] == 8
    token = first["metadata"]["continue"]
    rest = client.get(f"{P}/pools/pool-h100-a/nodes", params={"limit": 1, "continue": token})
    rest = rest.json()
    assert [n["metadata"]["name"] for n in rest["items"]] == ["gpu-node-08"]
    assert rest["metadata"]["continue"] == ""
    stats = client.get(f"{P}/statistics/pools").json()
    assert stats["nodes"]["statuses"] == {"Available": 2, "Isolated": 1}
    assert stats["accelerators"] == {"huawei.com/Ascend910": 8.0, "nvidia.com/gpu": 16.0}


def test_nodes_with_jobs_are_not_released(client: TestClient) -> None:
    nodes_with_jobs_are_not_released(client)
