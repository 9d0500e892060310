"""Faults of the real control plane, with the real `poolwatch cluster-exporter` process watching:
etcd stopped (for up to 30 s), the API server restarted, and stored objects that fail
conversion. Each time: the exporter does not crash, says `poolwatch_cluster_up 0` with no
figures while the cluster cannot be read, and afterwards serves what is true now, not what it
had before.

(A watch cut mid-stream, an unreachable API server and a CRD deleted while watched are in
test_controlplane_backend.py and test_controlplane_exporter.py.)
"""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import pytest

from poolwatch.cluster.kubernetes.backend import ClusterUnavailable, KubernetesCluster
from tests.cluster.test_kubernetes_backend import until
from tests.controlplane.test_controlplane_exporter import FIGURES, exporter, nodes_in, poll, scrape
from tests.helpers import value
from tests.helpers.controlplane import TestCluster
from tests.helpers.controlplane_crds import CRDS
from tests.helpers.controlplane_seed import seed_handbuilt

pytestmark = pytest.mark.controlplane
ETCD_DOWN_AT_MOST = 30.0


def test_etcd_stopped_is_up_0_and_no_figures_then_the_truth(
    kube: TestCluster, tmp_path: Path
) -> None:
    """While etcd is down the API server keeps its watches open and silent, and its watch
    cache still answers; only its /readyz says it cannot read its store. poolwatch asks it."""
    seed_handbuilt(kube)
    log = tmp_path / "exporter.log"
    backend = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp_path / "kc"), ready_probe=1.0)
    with backend, exporter(kube.kubeconfig(tmp_path / "kc"), log) as port:
        poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
        until(backend.healthy)
        assert kube.plane.etcd is not None
        began = time.monotonic()
        kube.plane.etcd.stop()
        try:
            s = poll(port, 0, timeout=ETCD_DOWN_AT_MOST - 5, log=log)
            noticed = time.monotonic() - began
            assert not [k for k in s if k[0].startswith(FIGURES)]
            time.sleep(max(0.0, min(5.0, ETCD_DOWN_AT_MOST - noticed)))
            s = scrape(port)
            assert s is not None  # still serving, still saying 0
            assert value(s, "poolwatch_cluster_up") == 0
            until(lambda: not backend.healthy())
            with pytest.raises(ClusterUnavailable, match=r"not ready.*etcd"):
                backend.nodes()  # a reader gets no figures, and the reason
        finally:
            kube.plane.start_etcd()
        assert "not ready" in log.read_text()  # and the log says why
        poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
        kube.api.delete("/api/v1/nodes/gpu-node-08")
        poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 1, log=log)
        # this process's own probe of /readyz says ready again on its next look (the
        # exporter's may have looked a moment earlier): until then a reader is refused
        until(backend.healthy)
        until(lambda: "gpu-node-08" not in {n.name for n in backend.nodes()})
    print(f"etcd down: up 0 after {noticed:.1f} s")  # noqa: T201 - for the record


def test_the_api_server_restarted_is_up_0_meanwhile_and_fresh_after(
    kube: TestCluster, tmp_path: Path
) -> None:
    seed_handbuilt(kube)
    log = tmp_path / "exporter.log"
    with exporter(kube.kubeconfig(tmp_path / "kc"), log) as port:
        poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
        seen: list[float] = []
        done = threading.Event()

        def watch_up() -> None:
            while not done.is_set():
                s = scrape(port)
                if s is not None:
                    seen.append(value(s, "poolwatch_cluster_up"))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch_up, daemon=True)
        watcher.start()
        kube.plane.restart_apiserver()
        kube.api.delete("/api/v1/nodes/gpu-node-08")
        poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 1, log=log)
        done.set()
        watcher.join(5)
        assert 0 in seen  # the gap was reported, not papered over
        for _ in range(10):  # and once back, it stays back (a scrape in flight may end late)
            s = scrape(port)
            assert s is not None
            assert value(s, "poolwatch_cluster_up") == 1
            time.sleep(0.3)


def test_objects_that_fail_conversion_make_the_kind_unreadable_not_the_exporter_crash(
    kube: TestCluster, tmp_path: Path
) -> None:
    """A conversion webhook that does not answer: every MPIJob read at v1 (stored at v2beta1)
    fails, so the API server fails the whole v1 list. The jobs cannot be read: up 0."""
    seed_handbuilt(kube)  # the MPIJob allreduce, stored at v2beta1
    original = next(c for c in CRDS if c["metadata"]["name"] == "mpijobs.kubeflow.org")
    broken = copy.deepcopy(original)
    broken["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"],
                    "clientConfig": {"url": "https://127.0.0.1:9/convert"}},
    }  # fmt: skip
    log = tmp_path / "exporter.log"
    with exporter(kube.kubeconfig(tmp_path / "kc"), log) as port:
        s = poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
        try:
            kube.plane.install_crds((broken,))
            path = f"/apis/kubeflow.org/v1/namespaces/{kube.namespace}/mpijobs"
            # the API server re-initialises the kind's storage after the CRD change and answers
            # 429 "storage is (re)initializing" for a moment: wait that out, then the webhook fails
            deadline = time.monotonic() + 30
            while True:
                try:
                    kube.api.get(path)
                    message = "the read succeeded through a webhook that does not answer"
                except Exception as err:  # noqa: BLE001 - the message says which failure it is
                    message = str(err)
                if "(re)initializing" not in message or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
            assert "conversion webhook" in message, message
            s = poll(port, 0, log=log)
            assert not [k for k in s if k[0].startswith(FIGURES)]
        finally:
            kube.plane.install_crds((original,))
        s = poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
        assert "conversion" in log.read_text()  # the cause is in the log
