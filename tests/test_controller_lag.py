"""The controller's limits hold when its informers lag behind its own writes.

A burst of 8 isolations (fault codes that call for a replacement) in a 10-node pool with 2 HA
spares and a breaker limit of 2 (20 %), on the real kube-apiserver through the real `kubernetes`
client: directly, and with the informers reading through a proxy that delivers the API server's
answers 10, 100 or 300 ms late while the writes go direct. Checked on the API server itself
after every step: never more than 2 nodes out of service or tainted, never more replacements in
flight or in 24 h than POL-01/02 allow, and every action's answer agrees with its replacement
(done, or failed with the reason; never `done` for a replacement that failed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from controller_lag_support import (
    POOL,
    Api,
    RealApi,
    consistent,
    lagged_backend,
    limits_for,
    live_nodes,
    node_body,
    until,
)
from helpers import parse, value
from test_controller_support import Proxy, controller, isolate, sim

from poolwatch.cluster.model import NodeStatus
from poolwatch.controller.metrics import exposition
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction

CLOCK = [1_790_000_000.0]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def api(kube: Any, tmp_path: Path) -> Api:
    """The session's real kube-apiserver, this test's share of it (tests/controlplane.py)."""
    return RealApi(kube, tmp_path)


def seed_pool(api: Api, nodes: int = 10, spares: int = 2) -> list[str]:
    names = [f"lag-{i:02d}" for i in range(nodes)]
    for i, name in enumerate(names):
        api.create_node(node_body(name, spare=i >= nodes - spares))
    return names


@pytest.mark.controlplane
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.1, 0.3])
def test_burst_of_isolations_holds_the_limits_under_watch_lag(api: Api, delay: float) -> None:
    names = seed_pool(api)
    with lagged_backend(api, delay) as (backend, _):
        until(lambda: len([n for n in backend.nodes() if n.pool == POOL]) == 10)
        ctl = PoolController(backend, ControllerSettings(dry_run=False, breaker_ratio=0.2),
                             clock=lambda: CLOCK[0])  # fmt: skip
        limits = limits_for(ctl, 10)
        assert limits.breaker == 2
        results = {}
        for i, name in enumerate(names[:8]):
            action = NodeAction("isolate", f"burst:{name}", node=name, fault_code="A050101",
                                reason="PoolwatchGpuXid79")  # fmt: skip
            results[name] = ctl.submit(action)
            limits.check(api, ctl, f"after isolation {i + 1}")
        for step in range(20):  # the control loop finishes what the burst started
            ctl.reconcile()
            limits.check(api, ctl, f"after reconcile {step + 1}")
            if not ctl.store.replacements(POOL, True):
                break
        assert limits.violations == [], limits.violations
        assert [why for n, r in results.items() if (why := consistent(r, ctl, n))] == []
        reps = ctl.store.replacements(POOL)
        assert reps, "no replacement started"
        assert all(r.state == "done" or (r.state == "failed" and r.detail) for r in reps), reps
        done = [r for r in reps if r.state == "done"]
        assert len(done) == 2, reps  # two spares: both in service, both faulty nodes Repairing
        nodes = {n.name: n for n in live_nodes(api)}
        assert sorted(n for n, v in nodes.items() if v.status in (NodeStatus.REPAIRING,)) == sorted(
            r.node for r in done
        )
        refused = [r for r in results.values() if r.outcome == "refused"]
        assert len(refused) == 6
        assert all("circuit breaker" in r.detail for r in refused)


@pytest.mark.controlplane
def test_the_controller_refuses_to_act_while_its_view_is_not_current(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The watch lags 1.5 s, and a decision waits at most 0.3 s for the controller's own write
    to show: the isolation is written, its replacement is not started from a view that does not
    show it; the action answers `failed` with the reason (the engine re-sends it), the metric
    says 0 and one warning says why. Once the view catches up, the next step goes on."""
    names = seed_pool(api)
    with lagged_backend(api, 1.5) as (backend, _):
        until(lambda: len([n for n in backend.nodes() if n.pool == POOL]) == 10)
        assert backend.await_view(10) == ""
        ctl = PoolController(backend, ControllerSettings(dry_run=False, view_timeout=0.3),
                             clock=lambda: CLOCK[0])  # fmt: skip
        caplog.set_level(logging.INFO, logger="poolwatch.controller.service")
        action = NodeAction("isolate", "stale:1", node=names[0], fault_code="A050101",
                            reason="PoolwatchGpuXid79")  # fmt: skip
        result = ctl.submit(action)
        assert result.outcome == "failed", result
        assert "view of the cluster is not current" in result.detail
        assert "resourceVersion" in result.detail
        series = parse(exposition(ctl, True, None))
        assert value(series, "poolwatch_controller_view_current") == 0.0
        assert value(series, "poolwatch_controller_view_stale_total") >= 1.0
        warned = [r for r in caplog.records if "takes no decision" in r.getMessage()]
        assert len(warned) == 1
        assert warned[0].levelno == logging.WARNING
        live = {n.name: n for n in live_nodes(api)}
        assert live[names[0]].status is NodeStatus.ISOLATED  # written, and nothing after it
        assert [n for n, v in live.items() if v.status is NodeStatus.SPARE] == names[8:]
        assert all(r.state == "queued" for r in ctl.store.replacements(POOL))
        ctl.settings.view_timeout = 5.0  # longer than the lag: the view catches up in time
        assert ctl.submit(action).outcome in ("done", "deferred")  # the re-send goes on
        ctl.reconcile()
        assert value(parse(exposition(ctl, True, None)), "poolwatch_controller_view_current") == 1
        assert any("current again" in r.getMessage() for r in caplog.records)
        until(lambda: [r for r in ctl.store.replacements(POOL) if r.state == "done"], 10)


@pytest.mark.controlplane
def test_no_decision_while_the_informers_cannot_watch(api: Api) -> None:
    """The proxy in front of the informers goes away: no list, no watch. An isolation is
    refused with the reason (answered `failed`, so it is sent again) and nothing is written."""
    names = seed_pool(api)
    with lagged_backend(api, 0.0) as (backend, proxy):
        until(lambda: len([n for n in backend.nodes() if n.pool == POOL]) == 10)
        assert backend.await_view(10) == ""
        ctl = PoolController(backend, ControllerSettings(dry_run=False, view_timeout=2.0),
                             clock=lambda: CLOCK[0])  # fmt: skip
        proxy.close()
        until(lambda: backend.informers()["nodes"].startswith("down"), 10)
        result = ctl.submit(NodeAction("isolate", "down:1", node=names[0], fault_code="A050101",
                                       reason="PoolwatchGpuXid79"))  # fmt: skip
        assert result.outcome == "failed"
        assert "view of the cluster is not current" in result.detail
        # the informers say so, and so may the API server's readiness probe (through the proxy)
        assert "not listing and watching" in result.detail or "not ready" in result.detail
        assert ctl.view_current is False
        assert all(n.status is not NodeStatus.ISOLATED for n in live_nodes(api))


class Reverted(Proxy):
    """Another actor takes the fault taint off again as soon as it is written (a second
    controller, an admission webhook): the node is no longer isolated when the replacement
    would start. Simulated backend: the point is the answer, not the API."""

    def taint_node(self, node: str, key: str, value: str, effect: str) -> None:
        super().taint_node(node, key, value, effect)
        self.inner.untaint_node(node, key)


def test_a_replacement_that_fails_is_answered_failed_and_retried() -> None:
    cluster = Reverted(sim(nodes=10, spares=2))
    ctl = controller(cluster)
    action = isolate("p0-node-00", "A050101", key="rev:1")
    first = ctl.submit(action)
    assert first.outcome == "failed", first
    assert "replacement failed: the node is no longer isolated in the pool" in first.detail
    reps = ctl.store.replacements("p0")
    assert [(r.state, r.detail) for r in reps] == [
        ("failed", "the node is no longer isolated in the pool")
    ]
    again = ctl.submit(action)  # not recorded as done: the re-send tries it again
    assert again.outcome == "failed"
    assert len(ctl.store.replacements("p0")) == 2


@pytest.mark.controlplane
def test_no_decision_while_etcd_is_down(api: RealApi, caplog: pytest.LogCaptureFixture) -> None:
    """etcd stopped: the API server keeps the watches open and silent, and only its /readyz
    tells. The controller takes no decision (answered `failed` with the reason, nothing
    written, poolwatch_controller_view_current 0, a warning), and acts again once etcd is back."""
    names = seed_pool(api)
    plane = api.plane
    with lagged_backend(api, 0.0, ready_probe=0.5) as (backend, _):
        assert backend.await_view(30) == ""
        ctl = PoolController(backend, ControllerSettings(dry_run=False, view_timeout=1.0),
                             clock=lambda: CLOCK[0])  # fmt: skip
        action = NodeAction("isolate", "etcd:1", node=names[0], fault_code="A050101",
                            reason="PoolwatchGpuXid79")  # fmt: skip
        caplog.set_level(logging.INFO, logger="poolwatch.controller.service")
        plane.etcd.stop()
        try:
            until(lambda: not backend.healthy(), 30)
            result = ctl.submit(action)
            assert result.outcome == "failed"
            assert "the API server is not ready" in result.detail
            assert value(parse(exposition(ctl, True, None)),
                         "poolwatch_controller_view_current") == 0  # fmt: skip
            assert any("takes no decision" in r.getMessage() for r in caplog.records)
        finally:
            plane.start_etcd()
        assert all(n.status is not NodeStatus.ISOLATED for n in live_nodes(api))
        until(backend.healthy, 60)
        assert ctl.submit(action).outcome == "done"
        assert ctl.view_current


class Stale(Proxy):
    """A backend whose view never catches up (simulated pool; the point is the answers)."""

    def await_view(self, timeout: float) -> str:
        return "nodes seen up to resourceVersion 1, the last node write returned 2"


def test_operator_requests_answer_failed_while_the_view_is_not_current() -> None:
    """The pool API and the upgrades call the facade: they get `failed` with the reason (the
    pool API answers 502 with it), not an exception, and nothing is written."""
    cluster = Stale(sim(nodes=6, spares=1))
    ctl = controller(cluster)
    answers = [
        ctl.isolate("p0-node-00", "A200001", "driver upgrade", "op:1"),
        ctl.restore("p0-node-00", "repaired", "op:2"),
        ctl.release("p0", "p0-node-01", "not needed", "op:3"),
        ctl.delete_pool("p0", "op:4"),
    ]
    for answer in answers:
        assert answer.outcome == "failed", answer
        assert "view of the cluster is not current" in answer.detail
    assert cluster.writes == []
    assert ctl.pool_activity("p0") is None  # a status for the API's views: answered at once
    assert not ctl.view_current
