"""The demo's speed scaling of rule periods (poolwatch.demo_rules) and the saved simulated pool
(poolwatch.cluster.sim_persist)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from poolwatch.app import demo_rules
from poolwatch.cluster.simulated import persist as sim_persist
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.rules.loader import default_files, load


def test_range_and_subquery_durations_scale_but_label_regexes_do_not() -> None:
    expr = 'floor(increase(x[24h])) + rate(y[10m:1m]) + max_over_time(z{a=~"[0-9]+"}[1h:])'
    assert demo_rules.scale_expr(expr, 20, 4) == (
        'floor(increase(x[1h12m])) + rate(y[30s:4s]) + max_over_time(z{a=~"[0-9]+"}[3m:])'
    )
    assert demo_rules.scale_expr(expr, 1, 4) == expr


def test_offsets_scale_and_timestamps_stretch_into_simulated_seconds() -> None:
    """The hang rule's "unchanged for N minutes" is `time()` minus a `time()` of the past, and
    its median test compares `[5m]` with `[5m] offset 5m`: at speed 20 both must keep meaning
    simulated minutes, or the rule never fires in a fast demo."""
    expr = (
        "floor((time() - max_over_time((x * 0 + time())[12h:5m])) / 60) >= 10 and "
        "quantile_over_time(0.5, u[5m]) - quantile_over_time(0.5, u[5m] offset 5m) and "
        '(time() - xid_last_timestamp_seconds{xid="95"}) < bool 900 and '
        "changes(b_timestamp_seconds[1h])"
    )  # fmt: skip
    assert demo_rules.scale_expr(expr, 20, 4) == (
        "floor(((time() * 20) - max_over_time((x * 0 + (time() * 20))[36m:15s])) / 60) >= 10 and "
        "quantile_over_time(0.5, u[15s]) - quantile_over_time(0.5, u[15s] offset 15s) and "
        '((time() * 20) - (xid_last_timestamp_seconds{xid="95"} * 20)) < bool 900 and '
        "changes(b_timestamp_seconds[3m])"
    )  # fmt: skip
    assert demo_rules.scale_expr(expr, 1, 4) == expr


def test_every_shipped_rule_file_scales_loads_and_keeps_its_periods_count(tmp_path: Path) -> None:
    scaled, prom = demo_rules.write(default_files(), tmp_path, 20, 2)
    originals = {g.group.group: g.group for g in load(default_files())}
    for loaded in load(scaled):
        group, original = loaded.group, originals[loaded.group.group]
        assert (group.interval, original.interval) == ("3s", "1m")
        for new, old in zip(group.rules, original.rules, strict=True):
            assert new.periods == old.periods  # "two periods" stays two periods
            if old.for_:
                assert new.for_ != old.for_
    compiled = yaml.safe_load((prom / "fault.rules.yaml").read_text())
    lost = compiled["groups"][0]
    assert lost["interval"] == "3s"
    assert all(r.get("for", "3s") == "3s" for r in lost["rules"])


def test_a_saved_pool_resumes_exactly_where_it_stood(tmp_path: Path) -> None:
    """The resumed pool equals the saved one, and both go on identically (same random draws,
    same scheduled repairs and job ends)."""
    first = SimulatedCluster(clock=lambda: 1000.0)
    first.step(3000)
    node = first.nodes()[0].name
    first.inject("gpu_lost", node)
    first.taint_node(node, "poolwatch.io/fault", "A050203", "NoSchedule")
    path = tmp_path / "simulation.pickle"
    sim_persist.save(first, path)
    assert path.stat().st_mode & 0o777 == 0o600
    resumed = sim_persist.load(path, seed=1)

    def state(c: SimulatedCluster) -> tuple[list[str], ...]:
        return tuple(sorted(map(repr, objs)) for objs in (c.nodes(), c.jobs(), c.pods(),
                     c.events(), c.pools(), c.quotas()))  # fmt: skip

    assert state(resumed) == state(first)
    assert "gpu_lost" in resumed.node_faults(node)
    first.step(5000)
    resumed.step(5000)
    assert state(resumed) == state(first)


def test_a_pool_saved_with_another_seed_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "simulation.pickle"
    sim_persist.save(SimulatedCluster(), path)
    with pytest.raises(sim_persist.StateMismatch, match="seed 1, not 2"):
        sim_persist.load(path, seed=2)
