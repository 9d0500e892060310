"""Across a restart of the controller on Kubernetes (its pod restarted on the same state file),
every pool event is notified once: on the real kube-apiserver (tests/helpers/controlplane.py).

On Kubernetes the controller derives the pool events from the node counts and the pool status,
keeping the last ones it reported in its state. A restarted controller must not report a change
again, and must report a change made while it was down: these tests cordon nodes through the API
server, stop the controller, start a new one (and a new backend, as a new pod would) on the same
state file, and count both the notices and the core/v1 Events the API server stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from tests.cluster.test_kubernetes_backend import RecordingBackoff
from tests.helpers import until
from tests.helpers.controller_support import Recorder
from tests.helpers.controlplane import TestCluster

pytestmark = pytest.mark.controlplane
CHANGE = "PoolwatchControllerPoolResourcesStatusChange"


class Pod:
    """One controller 'pod': its own backend (informers) and a controller on the state file."""

    def __init__(self, kube: TestCluster, tmp: Path, state: Path) -> None:
        self.backend = KubernetesCluster(kubeconfig=kube.kubeconfig(tmp / f"kc-{time.time()}"),
                                         watch_timeout=5, backoff=RecordingBackoff(),
                                         sync_timeout=30.0)  # fmt: skip
        self.backend.start()
        until(self.backend.healthy, 30)
        self.told = Recorder()
        settings = ControllerSettings(dry_run=False, backend="kubernetes", state_path=state)
        self.ctl = PoolController(self.backend, settings, self.told)

    def changes(self) -> list[str]:
        return [m.annotations["description"] for m in self.told.messages
                if m.labels["alertname"] == CHANGE]  # fmt: skip

    def stop(self) -> None:
        self.ctl.store.close()
        self.backend.stop()


@pytest.fixture
def pods(kube: TestCluster, tmp_path: Path) -> Iterator[Callable[[], Pod]]:
    made: list[Pod] = []

    def start() -> Pod:
        made.append(Pod(kube, tmp_path, tmp_path / "controller.db"))
        return made[-1]

    yield start
    for pod in made:
        pod.backend.stop()


def test_a_restarted_controller_reports_each_pool_change_once(
    kube: TestCluster, pods: Callable[[], Pod]
) -> None:
    pool = f"pool-{kube.test_id}"
    names = [f"n{i}-{kube.test_id}" for i in range(4)]
    for name in names:
        kube.kubelet.node(name, {"poolwatch.io/pool": pool})

    def counts(pod: Pod, want: str) -> None:
        """Wait until this pod's informer shows the pool with `want` Available nodes."""
        until(lambda: sum(n.pool == pool and n.status.value == "Available"
                          for n in pod.backend.nodes()) == int(want))  # fmt: skip

    def cordon(name: str, flag: bool) -> None:
        kube.api.patch(f"/api/v1/nodes/{name}", {"spec": {"unschedulable": flag}})

    def stored() -> list[str]:
        items = kube.api.get("/api/v1/namespaces/default/events")["items"]
        return sorted(e["message"] for e in items if e["involvedObject"]["name"] == pool
                      and e["reason"] == "PoolResourcesStatusChange")  # fmt: skip

    first = pods()
    counts(first, "4")
    first.ctl.reconcile()  # the first look sets the baseline: nothing to report
    assert first.changes() == []
    cordon(names[0], True)
    counts(first, "3")
    first.ctl.reconcile()
    first.ctl.reconcile()
    assert len(first.changes()) == 1
    assert "from 4/0/0/0 to 3/1/0/0" in first.changes()[0]
    first.stop()

    # restarted with nothing changed: nothing to report
    second = pods()
    counts(second, "3")
    second.ctl.reconcile()
    assert second.changes() == []
    second.stop()

    # changed while no controller ran: the next one reports it, once
    cordon(names[1], True)
    third = pods()
    counts(third, "2")
    third.ctl.reconcile()
    third.ctl.reconcile()
    assert len(third.changes()) == 1
    assert "from 3/1/0/0 to 2/2/0/0" in third.changes()[0]
    third.stop()

    told = first.changes() + second.changes() + third.changes()
    until(lambda: len(stored()) >= 2)
    assert sorted(told) == stored()  # the API server holds each event once, as told


def test_a_restarted_controller_keeps_a_pool_without_spares_abnormal(
    kube: TestCluster, pods: Callable[[], Pod]
) -> None:
    """No spare for an isolated node: the pool is Abnormal. On Kubernetes that mark is held in
    the controller's process (there is no Pool object to write), so a new controller on the
    same state must mark the pool again, without telling the operator a second time."""
    from poolwatch.cluster.model import PoolStatus
    from tests.helpers.controller_support import isolate

    pool = f"pool-{kube.test_id}"
    names = [f"n{i}-{kube.test_id}" for i in range(2)]
    for name in names:
        kube.kubelet.node(name, {"poolwatch.io/pool": pool})

    def status(pod: Pod) -> PoolStatus:
        return next(p.status for p in pod.backend.pools() if p.name == pool)

    first = pods()
    until(lambda: sum(n.pool == pool for n in first.backend.nodes()) == 2)
    result = first.ctl.submit(isolate(names[0], "A050104"))
    assert result.outcome == "deferred", result.detail  # waits for a spare
    assert status(first) is PoolStatus.ABNORMAL
    assert first.told.names().count("PoolwatchControllerNoSpare") == 1
    first.stop()

    second = pods()
    until(lambda: sum(n.pool == pool for n in second.backend.nodes()) == 2)
    second.ctl.reconcile()
    assert status(second) is PoolStatus.ABNORMAL
    assert "PoolwatchControllerNoSpare" not in second.told.names()
    second.stop()


class Killed(Exception):
    """The controller's process ends here."""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_controller_dying_as_it_reports_a_change_reports_it_once(
    kube: TestCluster, pods: Callable[[], Pod], when: str
) -> None:
    """The controller dies just `when` it keeps the counts of a pool change it told: the change
    is told once, by this controller or the next one on the same state."""
    pool = f"pool-{kube.test_id}"
    names = [f"n{i}-{kube.test_id}" for i in range(3)]
    for name in names:
        kube.kubelet.node(name, {"poolwatch.io/pool": pool})

    def available(pod: Pod, want: int) -> None:
        until(lambda: sum(n.pool == pool and n.status.value == "Available"
                          for n in pod.backend.nodes()) == want)  # fmt: skip

    first = pods()
    available(first, 3)
    first.ctl.reconcile()  # the baseline
    kube.api.patch(f"/api/v1/nodes/{names[0]}", {"spec": {"unschedulable": True}})
    available(first, 2)
    real = first.ctl.store.set_pool

    def dies(name: str, **fields: object) -> None:
        if "counts" in fields and when == "before":
            raise Killed
        real(name, **fields)
        if "counts" in fields:
            raise Killed

    first.ctl.store.set_pool = dies  # type: ignore[method-assign]
    with pytest.raises(Killed):
        first.ctl.reconcile()
    first.stop()

    second = pods()
    available(second, 2)
    second.ctl.reconcile()
    second.ctl.reconcile()
    told = first.changes() + second.changes()
    assert len(told) == 1, told
    assert "from 3/0/0/0 to 2/1/0/0" in told[0]
