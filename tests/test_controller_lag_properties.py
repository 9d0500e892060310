"""Property-based, through the real kube-apiserver with a lagging watch: random fault sequences
(isolations with codes that call for a replacement or not, restores, control-loop steps) on
random pools, with the informers 0-100 ms behind the API server. After every step, on what the
API server holds: the breaker's limit on nodes out of service and tainted, POL-01/02 on
replacements, and no action answered `done` for a replacement that failed.

Bounded for the suite: a few examples of a few steps each, one backend for all of them (each
example gets a pool of its own, and a fresh controller).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from controller_lag_support import (
    Api,
    RealApi,
    consistent,
    lagged_backend,
    limits_for,
    node_body,
    until,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwatch.cluster.kubernetes.backend import KubernetesCluster
from poolwatch.controller.service import PoolController
from poolwatch.controller.settings import ControllerSettings
from poolwatch.core.actions import NodeAction

CODES = ("A050101", "A050104", "A050146", "A050202")  # replaced, replaced, isolate only (2)
POOLS = itertools.count()
CLOCK = [1_790_000_000.0]

step = st.one_of(
    st.tuples(st.just("fault"), st.integers(0, 19), st.sampled_from(CODES)),
    st.tuples(st.just("fault"), st.integers(0, 19), st.sampled_from(CODES)),
    st.tuples(st.just("restore"), st.integers(0, 19), st.just("")),
    st.tuples(st.just("reconcile"), st.just(0), st.just("")),
)


LAGS = (0.0, 0.01, 0.05, 0.1)


@pytest.fixture(scope="module")
def lagged(
    kube_apiserver: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, dict[float, KubernetesCluster]]]:
    """One backend per lag on the session's real kube-apiserver, each reading through its own
    delaying proxy, shared by every example (their pools' nodes removed at the end)."""
    from controlplane import TestCluster

    kube = TestCluster.make(kube_apiserver)
    api = RealApi(kube, tmp_path_factory.mktemp("lag-properties"))
    try:
        with contextlib.ExitStack() as stack:
            backends = {lag: stack.enter_context(lagged_backend(api, lag))[0] for lag in LAGS}
            for backend in backends.values():
                assert backend.await_view(30) == ""
            yield api, backends
    finally:
        kube.cleanup()


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    size=st.integers(5, 15),
    spares=st.integers(0, 3),
    lag=st.sampled_from(LAGS),
    steps=st.lists(step, min_size=1, max_size=8),
)
@pytest.mark.controlplane
def test_limits_hold_under_random_faults_and_lag(
    lagged: tuple[Api, dict[float, KubernetesCluster]],
    size: int,
    spares: int,
    lag: float,
    steps: list[tuple[str, int, str]],
) -> None:
    api, backends = lagged
    backend = backends[lag]
    pool = f"prop-{next(POOLS)}"
    names = [f"{pool}-{i:02d}" for i in range(size)]
    for i, name in enumerate(names):
        api.create_node(node_body(name, pool=pool, spare=i >= size - spares))
    until(lambda: sum(n.pool == pool for n in backend.nodes()) == size)
    ctl = PoolController(backend, ControllerSettings(dry_run=False), clock=lambda: CLOCK[0])
    limits = limits_for(ctl, size)
    for i, (kind, arg, code) in enumerate(steps):
        node = names[arg % size]
        if kind == "fault":
            action = NodeAction("isolate", f"{pool}:{i}", node=node, fault_code=code,
                                reason="PoolwatchTest")  # fmt: skip
            result = ctl.submit(action)
            assert result.outcome != "failed", result
            assert consistent(result, ctl, node, pool) is None
        elif kind == "restore":
            ctl.restore(node, "repaired", f"{pool}:restore:{i}")
        else:
            ctl.reconcile()
        limits.check(api, ctl, f"step {i + 1} ({kind} {node} {code})", pool)
    assert limits.violations == [], limits.violations
    for r in ctl.store.replacements(pool):
        assert r.state != "failed" or r.detail, r
    for name in names:
        api.delete_node(name)
