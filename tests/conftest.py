import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real etcd + kube-apiserver for the whole session (tests/helpers/controlplane.py), with the
    CRDs poolwatch reads. The binaries are the pinned ones scripts/tools.sh builds (the test is
    skipped only when Go is missing); CONTROLPLANE_BIN_DIR names a directory holding
    `etcd` and `kube-apiserver` to use instead."""
    from tests.helpers import pinned_bin_dir
    from tests.helpers.controlplane import control_plane

    override = os.environ.get("CONTROLPLANE_BIN_DIR")
    bin_dir = Path(override) if override else pinned_bin_dir()
    with control_plane(bin_dir, tmp_path_factory.mktemp("controlplane")) as plane:
        yield plane


@pytest.fixture
def kube(kube_apiserver: Any) -> Iterator[Any]:
    """This test's share of the control plane (controlplane.TestCluster): its own namespace,
    a label for its nodes, the admin client and the kubelet stand-in; removed afterwards."""
    from tests.helpers.controlplane import TestCluster

    cluster = TestCluster.make(kube_apiserver)
    try:
        yield cluster
    finally:
        cluster.cleanup()


# every test that runs Prometheus, promtool, Alertmanager or amtool takes one of these fixtures
# and so runs on Debian's version and on the pinned current one (tests/helpers/prom_versions.py)
from tests.helpers.prom_versions import alertmanager, prom  # noqa: E402, F401


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test talks to 127.0.0.1 only: a proxy the environment names must not be used."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
