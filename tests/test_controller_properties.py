"""Property-based: for random fault sequences on random pools, the replacement limits (POL-01,
POL-02) and the circuit breaker are never exceeded, and no node is both Spare and running jobs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_controller_support import SlowSpares, controller

from poolwatch.cluster.model import NodeStatus
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import GPU, PoolSpec, SimulationSpec
from poolwatch.controller.pools import FAULT_TAINT, allowed
from poolwatch.controller.replacer import DAY

CODES = ("A050104", "A050101", "A050203", "A050146")  # replaced, replaced, replaced, isolate only

fault = st.tuples(st.just("fault"), st.integers(0, 99), st.sampled_from(CODES))
op = st.one_of(
    fault,
    fault,
    fault,  # faults are what the limits are about
    st.tuples(st.just("restore"), st.integers(0, 99), st.just("")),
    st.tuples(st.just("arrive"), st.integers(0, 99), st.just("")),
    st.tuples(st.just("wait"), st.sampled_from([60, 3600, 6 * 3600, DAY]), st.just("")),
)


def check(cluster: SlowSpares, ctl, ratio: float) -> None:
    nodes = cluster.nodes()
    total = len(nodes)
    s = ctl.settings
    reps = ctl.store.replacements("p0")
    busy = sum(r.state in ("starting", "running") for r in reps)
    assert busy <= allowed(s.replace_concurrent_ratio, total, s.replace_min)
    starts = sorted(r.started_at for r in reps if r.started_at)
    for i, t in enumerate(starts):  # every 24 h window from a start
        assert sum(t <= u < t + DAY for u in starts[i:]) <= allowed(
            s.replace_daily_ratio, total, s.replace_min
        )
    tainted = sum(any(k == FAULT_TAINT for k, _, _ in n.taints) for n in nodes)
    assert tainted <= allowed(ratio, total, 1)
    spare = {n.name for n in nodes if n.status is NodeStatus.SPARE}
    assert not [p for p in cluster.pods() if p.node in spare and p.phase in ("Pending",
                                                                            "Running")]  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    nodes=st.integers(4, 40),
    spare_ratio=st.sampled_from([0.0, 0.05, 0.1, 0.25]),
    ratio=st.sampled_from([0.1, 0.2, 0.5]),
    seed=st.integers(0, 1000),
    ops=st.lists(op, min_size=1, max_size=30),
)
def test_limits_and_breaker_hold_under_random_faults(
    nodes: int, spare_ratio: float, ratio: float, seed: int, ops: list[tuple[str, int, str]]
) -> None:
    spares = min(nodes - 1, round(nodes * spare_ratio))
    spec = SimulationSpec(
        pools=(PoolSpec("p0", nodes, 8, GPU, "H100", ha_spares=spares),), seed=seed,
        initial_jobs=4, jobs_per_hour=20, fault_interval=None, repair_seconds=None,
    )  # fmt: skip
    cluster = SlowSpares(SimulatedCluster(spec, clock=lambda: 1_700_000_000.0))
    ctl = controller(cluster, breaker_ratio=ratio)
    names = sorted(n.name for n in cluster.nodes())
    for i, (kind, arg, code) in enumerate(ops):
        if kind == "fault":
            ctl.submit(_isolate(names[arg % len(names)], code, i))
        elif kind == "restore":
            ctl.restore(names[arg % len(names)], "repaired", f"restore:{i}")
        elif kind == "arrive" and cluster.held:
            cluster.arrive(cluster.held[arg % len(cluster.held)])
        elif kind == "wait":
            cluster.step(arg)
        ctl.reconcile()
        check(cluster, ctl, ratio)


def _isolate(node: str, code: str, i: int):
    from poolwatch.core.actions import NodeAction

    return NodeAction("isolate", f"fault:{i}", node=node, fault_code=code, reason="random")
