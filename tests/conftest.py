import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests import their helpers as a plain module (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real etcd + kube-apiserver for the whole session (tests/controlplane.py), with the
    CRDs poolwatch reads. The binaries are the pinned ones scripts/tools.sh builds (the test is
    skipped only when Go is missing); CONTROLPLANE_BIN_DIR names a directory holding
    `etcd` and `kube-apiserver` to use instead."""
    from controlplane import control_plane
    from helpers import pinned_bin_dir

    override = os.environ.get("CONTROLPLANE_BIN_DIR")
    bin_dir = Path(override) if override else pinned_bin_dir()
    with control_plane(bin_dir, tmp_path_factory.mktemp("controlplane")) as plane:
        yield plane


@pytest.fixture
def kube(kube_apiserver: Any) -> Iterator[Any]:
    """This test's share of the control plane (controlplane.TestCluster): its own namespace,
    a label for its nodes, the admin client and the kubelet stand-in; removed afterwards."""
    from controlplane import TestCluster

    cluster = TestCluster.make(kube_apiserver)
    try:
        yield cluster
    finally:
        cluster.cleanup()


# every test that runs Prometheus, promtool, Alertmanager or amtool takes one of these fixtures
# and so runs on Debian's version and on the pinned current one (tests/prom_versions.py)
from prom_versions import alertmanager, prom  # noqa: E402, F401
