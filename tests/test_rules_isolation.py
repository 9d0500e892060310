"""One failing rule never silences the others.

Each rule kind (for, periods, window, clear) gets a rule whose evaluation raises, each with a
different exception type, next to healthy rules of every kind: the healthy ones fire and are
dispatched, the broken ones are counted in `poolwatch_rules_evaluation_failures_total{rule}` with
their last error kept, and, over the local source, the shipped PoolwatchRuleFailing alert fires
for a rule that keeps failing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from poolwatch.core.actions import AlertMessage
from poolwatch.rules.engine import ENGINE_ALERT, Engine, compile_groups
from poolwatch.rules.loader import DEFAULT_DIR, load
from poolwatch.rules.local import LocalSource, Target
from poolwatch.rules.model import Group
from poolwatch.rules.state import StateStore

KINDS: dict[str, dict[str, Any]] = {
    "For": {"for": "0s"},
    "Periods": {"periods": 1},
    "Window": {"window": {"range": "5m", "step": "1m", "percent": 10}},
    "Clear": {"for": "0s", "clear": 0.5},
}
#: one exception type per rule kind, none of them the source's own SourceError
RAISES: dict[str, BaseException] = {
    "For": ValueError("quantile must be a number"),
    "Periods": ZeroDivisionError("float division by zero"),
    "Window": KeyError("node"),
    "Clear": RecursionError("maximum recursion depth exceeded"),
}
EXTRA: list[BaseException] = [TypeError("x"), OverflowError("y"), AttributeError("z"),
                              IndexError("w"), LookupError("v"), RuntimeError("u")]  # fmt: skip


def rule(name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name, "expr": "poolwatch_collector_up", "op": ">", "threshold": 0.9,
        "severity": "warning", **KINDS[kind],
        "annotations": {"summary": "s", "description": "d {{ $value }}", "runbook": "r"},
    }  # fmt: skip


class Source:
    """Answers every expression with one series at 1; raises for the broken rules' queries."""

    def __init__(self, broken: dict[str, BaseException]) -> None:
        self.broken = broken  # expression -> what its query raises

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        if expr in self.broken:
            raise self.broken[expr]
        return [({"__name__": "poolwatch_collector_up", "node": "n1", "collector": "nfs"}, 1.0)]


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[AlertMessage]] = []

    def notify(self, messages: list[AlertMessage]) -> bool:
        self.batches.append(messages)
        return True


def build(tmp_path: Path, raises: dict[str, BaseException]) -> tuple[Engine, Source]:
    rules = [rule(f"PoolwatchGood{k}", k) for k in KINDS]
    for i, kind in enumerate(raises):
        # a distinct expression per broken rule, so the source can tell them apart
        r = rule(f"PoolwatchBroken{kind}", kind) | {"threshold": 0.8 - i / 100}
        if "clear" in r:
            r["clear"] = 0.4
        rules.append(r)
    g = Group.model_validate({"group": "g", "interval": "1m", "rules": rules})
    queries = {c.rule.name: c.query for c in compile_groups([g])}
    src = Source({queries[f"PoolwatchBroken{k}"]: err for k, err in raises.items()})
    return Engine([g], src, StateStore(tmp_path / "s.db"), clock=lambda: 0.0), src


def test_an_exception_in_one_rule_of_each_kind_is_that_rules_failure(tmp_path: Path) -> None:
    engine, _ = build(tmp_path, RAISES)
    alerts = engine.evaluate(1000.0)
    firing = sorted(a.rule for a in alerts if a.state == "firing")
    assert firing == sorted(f"PoolwatchGood{k}" for k in KINDS)
    out = Recorder()
    engine.dispatch([out], [], 1000.0)
    assert sorted(m.labels["alertname"] for m in out.batches[0]) == firing
    for kind, err in RAISES.items():
        name = f"PoolwatchBroken{kind}"
        assert engine.failures[name] == 1
        when, text = engine.last_errors[name]
        assert when == 1000.0
        assert text.startswith(type(err).__name__)
    # a rule's failure is not the source's: the engine-wide alert stays quiet
    assert all(a.rule != ENGINE_ALERT for a in alerts)
    reg = CollectorRegistry()
    reg.register(engine)
    text = generate_latest(reg).decode()
    assert 'poolwatch_rules_evaluation_failures_total{rule="PoolwatchBrokenWindow"} 1.0' in text
    assert 'poolwatch_rules_evaluation_failures_total{rule="PoolwatchGoodWindow"} 0.0' in text


@pytest.mark.parametrize("err", EXTRA, ids=lambda e: type(e).__name__)
def test_any_exception_type_is_contained(tmp_path: Path, err: BaseException) -> None:
    engine, _ = build(tmp_path, {"For": err})
    alerts = engine.evaluate(60.0)
    assert len([a for a in alerts if a.state == "firing"]) == len(KINDS)
    assert engine.failures["PoolwatchBrokenFor"] == 1


def test_a_rule_failing_half_way_keeps_its_alerts_as_they_were(tmp_path: Path) -> None:
    engine, src = build(tmp_path, {})
    engine.evaluate(0.0)
    before = {a.fingerprint: a for a in engine.alerts.values() if a.rule == "PoolwatchGoodFor"}
    # the annotation template raises while the rule's alerts are being updated
    import poolwatch.rules.engine as mod

    real = mod.expand_all

    def boom(annotations: Any, series: Any, value: float) -> Any:
        if "summary" in annotations and value == 2.0:
            raise ValueError("template")
        return real(annotations, series, value)

    src.query = lambda expr, at: [({"node": "n1", "collector": "nfs"}, 2.0)]  # type: ignore[method-assign]
    mod.expand_all = boom  # type: ignore[assignment]
    try:
        engine.evaluate(60.0)
    finally:
        mod.expand_all = real  # type: ignore[assignment]
    after = {a.fingerprint: a for a in engine.alerts.values() if a.rule == "PoolwatchGoodFor"}
    assert after == before
    assert engine.failures["PoolwatchGoodFor"] == 1


def test_the_shipped_rule_alerts_on_a_rule_that_keeps_failing_locally(tmp_path: Path) -> None:
    """Over the local source, with a real exporter page: a rule that raises on the data at
    every evaluation (duplicate series on the 'one' side of a match) makes the shipped
    PoolwatchRuleFailing fire after its 10 minutes, while the other shipped rules go on."""
    page = (
        'poolwatch_collector_up{node="n1",pool="p",collector="nfs"} 0\n'
        'poolwatch_collector_up{node="n1",pool="p",collector="gpu"} 1\n'
    )
    shipped = load([DEFAULT_DIR / "collector.yaml"])
    broken = Group.model_validate({"group": "mine", "interval": "1m", "rules": [{
        "name": "PoolwatchMine", "expr": "poolwatch_collector_up + on() poolwatch_collector_up",
        "op": ">", "threshold": 0, "for": "0s", "severity": "warning",
        "annotations": {"summary": "s", "description": "d", "runbook": "r"},
    }]})  # fmt: skip
    now = [1_700_000_000.0]
    src = LocalSource([Target("http://10.0.0.1:9476/metrics", "node")], 60.0, 3600.0,
                      clock=lambda: now[0], fetch=lambda url, timeout: page)  # fmt: skip
    engine = Engine([*shipped, broken], src, StateStore(tmp_path / "s.db"), clock=lambda: now[0])
    assert not engine.refused, engine.refused
    names = {c.rule.name for c in compile_groups(shipped)}
    assert "PoolwatchRuleFailing" in names
    for _ in range(20):
        src.scrape_once()
        engine.evaluate()
        now[0] += 60
    firing = {(a.rule, a.labels.get("rule", a.labels.get("collector")))
              for a in engine.alerts.values() if a.state == "firing"}  # fmt: skip
    assert ("PoolwatchRuleFailing", "PoolwatchMine") in firing
    assert ("PoolwatchCollectorDown", "nfs") in firing
    assert engine.failures["PoolwatchMine"] == 20
    assert "duplicate" in engine.last_errors["PoolwatchMine"][1]


def test_a_source_failing_to_record_the_engines_own_series_does_not_stop_the_cycle(
    tmp_path: Path,
) -> None:
    engine, src = build(tmp_path, {})

    def boom(samples: object, at: float) -> None:
        raise OSError("disk full")

    src.record_self = boom  # type: ignore[attr-defined]
    alerts = engine.evaluate(0.0)
    assert len([a for a in alerts if a.state == "firing"]) == len(KINDS)
    out = Recorder()
    engine.dispatch([out], [], 0.0)
    assert len(out.batches[0]) == len(KINDS)
