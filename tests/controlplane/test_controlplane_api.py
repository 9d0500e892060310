"""The pool API over the Kubernetes backend on the real kube-apiserver
(tests/helpers/controlplane.py), with the real PoolController: the documents
test_api_kubernetes.py checks on the stand-in, from objects the real API server stored, and a
pool created through the API that the server's nodes then carry as labels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from tests.api.test_api import P
from tests.cluster.test_kubernetes_backend import RecordingBackoff
from tests.helpers.api_support import api_over, nodes_with_jobs_are_not_released
from tests.helpers.controlplane import TestCluster
from tests.helpers.controlplane_seed import seed_handbuilt

pytestmark = pytest.mark.controlplane


@pytest.fixture
def client(kube: TestCluster, tmp_path: Path) -> Iterator[TestClient]:
    seed_handbuilt(kube)
    cluster = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp_path / "kc"), watch_timeout=5,
                                backoff=RecordingBackoff(), sync_timeout=30.0)  # fmt: skip
    with api_over(cluster, tmp_path) as c:
        yield c


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
    nodes_with_jobs_are_not_released(client)
