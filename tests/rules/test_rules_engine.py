"""The rule engine: fingerprints, the SQLite store and every alert transition against a fake
source with a deterministic clock. The Prometheus source is tested in test_rules_sources.py,
running rule files (reload, the CLI) in test_rules_runner.py."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from poolwatch.rules import compile as compiler
from poolwatch.rules.engine import ENGINE_ALERT, Engine
from poolwatch.rules.fingerprint import OFFSET64, fingerprint, fingerprint_int
from poolwatch.rules.model import Group
from poolwatch.rules.state import AlertState, StateStore
from tests.helpers.rules_fakes import EXPR, SERIES, FakeSource, group


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


def engine(source: FakeSource, path: Path, g: Group | None = None, **kw: float) -> Engine:
    kw = {"reminder_wait": 3600.0, "grace": 120.0} | kw
    return Engine([g or group()], source, StateStore(path), clock=lambda: 0.0, **kw)


def states(alerts: list[AlertState]) -> list[str]:
    return [a.state for a in alerts if a.rule != ENGINE_ALERT]


# -- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_of_the_empty_set_is_the_fnv_offset_basis() -> None:
    assert fingerprint_int({}) == OFFSET64 == 0xCBF29CE484222325
    assert fingerprint({}) == "cbf29ce484222325"


def test_fingerprint_matches_prometheus_common() -> None:
    # prometheus/common model/signature_test.go TestLabelsToSignature (same hash as Fingerprint)
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint_int(labels) == 5799056148416392346


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def test_fingerprint_is_fnv1a_over_sorted_names_and_values_with_0xff() -> None:
    labels = {"b": "2", "alertname": "X", "a": "1"}
    expected = _fnv1a(b"a\xff1\xffalertname\xffX\xffb\xff2\xff")
    assert fingerprint(labels) == f"{expected:016x}"
    assert fingerprint({"a": "1"}) != fingerprint({"a1": ""})  # the separator keeps them apart
    assert len(fingerprint({"z": "é"})) == 16


# -- the store ----------------------------------------------------------------------------------


def test_store_round_trips_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    a = AlertState("R", {"b": "1", "a": "2"}, {"summary": "s"}, "firing", "00ff", 1.0, 2.0, value=3)
    store.save([a])
    store.close()
    assert StateStore(path).load() == {"00ff": a}
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    StateStore(path).save([], ["00ff"])
    assert StateStore(path).load() == {}


# -- transitions --------------------------------------------------------------------------------


def test_the_engine_queries_the_compiled_expression(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db")
    e.evaluate(10.0)
    assert source.queries == [(EXPR, 10.0)]
    assert compiler.expression(group().rules[0]) == EXPR


def test_pending_then_firing_after_for_then_resolved(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db")
    source.results[EXPR] = [(SERIES, 0.0)]
    [a] = e.evaluate(0.0)
    assert a.state == "pending"
    assert a.active_since == 0.0
    assert e.due_notifications(0.0) == []
    assert dict(a.labels) == {
        "alertname": "PoolwatchCollectorDown",
        "collector": "nfs",
        "node": "n1",
        "severity": "warning",
    }
    assert a.fingerprint == fingerprint(a.labels)
    assert a.annotations["runbook_url"] == "r"
    assert states(e.evaluate(240.0)) == ["pending"]
    [a] = e.evaluate(300.0)
    assert (a.state, a.fired_at) == ("firing", 300.0)
    [(kind, due)] = e.due_notifications(300.0)
    assert kind == "firing"
    assert due == a
    e.ack(kind, due, 300.0)
    assert e.due_notifications(360.0) == []

    source.results[EXPR] = []
    [a] = e.evaluate(360.0)
    assert (a.state, a.resolved_at) == ("resolved", 360.0)
    [(kind, due)] = e.due_notifications(360.0)
    assert kind == "resolved"
    e.ack(kind, due, 360.0)
    assert e.alerts == {}
    assert e.store.load() == {}


def test_pending_that_stops_matching_is_dropped_silently(
    source: FakeSource, tmp_path: Path
) -> None:
    e = engine(source, tmp_path / "s.db")
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    source.results[EXPR] = []
    assert e.evaluate(60.0) == []
    assert e.due_notifications(60.0) == []
    assert e.store.load() == {}


def test_periods_one_fires_at_once(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    [a] = e.evaluate(0.0)
    assert a.state == "firing"
    assert [k for k, _ in e.due_notifications(0.0)] == ["firing"]


def test_periods_three_hold_two_intervals(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 3}))
    source.results[EXPR] = [(SERIES, 0.0)]
    assert [states(e.evaluate(t)) for t in (0.0, 60.0, 120.0)] == [
        ["pending"],
        ["pending"],
        ["firing"],
    ]


def test_reminder_after_reminder_wait(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    [(kind, a)] = e.due_notifications(0.0)
    e.ack(kind, a, 0.0)
    e.evaluate(3000.0)
    assert e.due_notifications(3000.0) == []
    e.evaluate(3600.0)
    [(kind, a)] = e.due_notifications(3600.0)
    assert kind == "reminder"
    e.ack(kind, a, 3600.0)
    assert e.alerts[a.fingerprint].last_notified == 3600.0
    assert e.due_notifications(3700.0) == []


def test_unacked_notification_stays_due(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    e.evaluate(60.0)
    assert [k for k, _ in e.due_notifications(60.0)] == ["firing"]


def test_resolve_never_sent_for_an_unnotified_alert(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    source.results[EXPR] = []
    [a] = e.evaluate(60.0)
    assert a.state == "resolved"
    assert [k for k, _ in e.due_notifications(60.0)] == []  # never told, so nothing to take back
    assert e.evaluate(120.0) == []


def test_each_series_is_its_own_alert(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    other = SERIES | {"collector": "ib"}
    source.results[EXPR] = [(SERIES, 0.0), (other, 0.0)]
    alerts = e.evaluate(0.0)
    assert len({a.fingerprint for a in alerts}) == 2
    source.results[EXPR] = [(other, 0.0)]
    by_collector = {a.labels["collector"]: a.state for a in e.evaluate(60.0)}
    assert by_collector == {"nfs": "resolved", "ib": "firing"}


def test_clear_keeps_a_firing_alert_until_the_clear_value(
    source: FakeSource, tmp_path: Path
) -> None:
    g = group(**{"expr": "poolwatch_collector_up", "op": "<", "threshold": 1, "clear": 2})
    g = Group.model_validate(
        {"group": "x", "interval": "1m", "rules": [g.rules[0].model_dump(by_alias=True)]}
    )
    e = engine(source, tmp_path / "s.db", g)
    hold = "(poolwatch_collector_up) < 2"
    e.evaluate(0.0)
    assert source.queries[-1][0] == hold  # the compiled expression's hold half, ALERTS aside
    source.results[hold] = [(SERIES, 1.5)]  # in the band, not firing: nothing
    assert e.evaluate(0.0) == []
    source.results[hold] = [(SERIES, 0.5)]
    assert states(e.evaluate(60.0)) == ["pending"]
    assert states(e.evaluate(360.0)) == ["firing"]
    source.results[hold] = [(SERIES, 1.5)]  # back in the band: still firing
    assert states(e.evaluate(420.0)) == ["firing"]
    source.results[hold] = []  # above the clear value
    assert states(e.evaluate(480.0)) == ["resolved"]


def test_a_removed_rule_resolves_its_alerts(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    e.set_groups([])
    assert states(e.evaluate(60.0)) == ["resolved"]


# -- restart ------------------------------------------------------------------------------------


def test_restart_neither_refires_nor_forgets(source: FakeSource, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    e = engine(source, path)
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    e.evaluate(300.0)
    [(kind, a)] = e.due_notifications(300.0)
    e.ack(kind, a, 300.0)
    e.store.close()

    again = engine(source, path)
    assert again.alerts == {a.fingerprint: again.alerts[a.fingerprint]}
    [b] = again.evaluate(360.0)
    assert (b.state, b.active_since, b.fired_at) == ("firing", 0.0, 300.0)
    assert again.due_notifications(360.0) == []  # not re-sent as new
    again.evaluate(3900.0)
    assert [k for k, _ in again.due_notifications(3900.0)] == ["reminder"]


def test_restart_keeps_a_pending_alerts_start(source: FakeSource, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    source.results[EXPR] = [(SERIES, 0.0)]
    engine(source, path).evaluate(0.0)
    assert states(engine(source, path).evaluate(300.0)) == ["firing"]


def test_restart_still_sends_an_unacked_resolve(source: FakeSource, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    e = engine(source, path, group(**{"for": None, "periods": 1}))
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    [(kind, a)] = e.due_notifications(0.0)
    e.ack(kind, a, 0.0)
    source.results[EXPR] = []
    e.evaluate(60.0)
    again = engine(source, path, group(**{"for": None, "periods": 1}))
    assert [k for k, _ in again.due_notifications(60.0)] == ["resolved"]


# -- a failing source ---------------------------------------------------------------------------


def test_failing_source_keeps_states_counts_and_fires_engine_alert_after_grace(
    source: FakeSource, tmp_path: Path
) -> None:
    e = engine(source, tmp_path / "s.db", grace=120.0)
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    source.down = True
    alerts = e.evaluate(400.0)  # would have fired at 300 had the query answered
    mine = [a for a in alerts if a.rule != ENGINE_ALERT]
    assert [(a.state, a.active_since) for a in mine] == [("pending", 0.0)]
    assert e.failures["PoolwatchCollectorDown"] == 1
    [engine_alert] = [a for a in alerts if a.rule == ENGINE_ALERT]
    assert engine_alert.state == "pending"
    e.evaluate(460.0)
    alerts = e.evaluate(520.0)
    [engine_alert] = [a for a in alerts if a.rule == ENGINE_ALERT]
    assert (engine_alert.state, engine_alert.fired_at) == ("firing", 520.0)
    assert dict(engine_alert.labels) == {"alertname": ENGINE_ALERT, "severity": "critical"}
    assert e.failures["PoolwatchCollectorDown"] == 3
    [(kind, due)] = e.due_notifications(520.0)
    assert (kind, due.rule) == ("firing", ENGINE_ALERT)
    e.ack(kind, due, 520.0)

    source.down = False
    alerts = e.evaluate(580.0)
    assert {a.rule: a.state for a in alerts} == {
        "PoolwatchCollectorDown": "firing",
        ENGINE_ALERT: "resolved",
    }


def test_notifications_carry_absolute_runbook_urls_with_a_base(
    source: FakeSource, tmp_path: Path
) -> None:
    from poolwatch.rules.compiled import message

    g = group(
        **{
            "for": None,
            "periods": 1,
            "annotations": {
                "summary": "s",
                "description": "d",
                "runbook": "docs/rules.md#poolwatchcollectordown",
            },
        }
    )
    e = Engine([g], source, StateStore(tmp_path / "s.db"), clock=lambda: 0.0, grace=0.0,
               runbook_base="https://docs.example.com/pw/")  # fmt: skip
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    [(kind, due)] = e.due_notifications(0.0)
    sent = message(kind, due, 3600.0)
    assert sent.annotations["runbook_url"] == (
        "https://docs.example.com/pw/docs/rules.md#poolwatchcollectordown"
    )
    source.down = True  # the engine's own alert links to its runbook under the same base
    [mine] = [a for a in e.evaluate(60.0) if a.rule == ENGINE_ALERT]
    assert mine.annotations["runbook_url"] == (
        "https://docs.example.com/pw/docs/rules.md#poolwatchruleenginefailing"
    )


def test_the_engine_refuses_a_bad_runbook_base(source: FakeSource, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        Engine([group()], source, StateStore(tmp_path / "s.db"), runbook_base="docs.example.com")


def test_a_short_outage_does_not_fire_the_engine_alert(source: FakeSource, tmp_path: Path) -> None:
    e = engine(source, tmp_path / "s.db", grace=120.0)
    source.down = True
    e.evaluate(0.0)
    source.down = False
    assert e.evaluate(60.0) == []
    source.down = True
    assert [a.state for a in e.evaluate(120.0)] == ["pending"]  # the clock starts again


# -- self-metrics -------------------------------------------------------------------------------


def test_self_metrics(source: FakeSource, tmp_path: Path) -> None:
    ticks = iter([0.0, 0.25, 1.0, 1.5])
    e = engine(source, tmp_path / "s.db", group(**{"for": None, "periods": 1}))
    e.timer = lambda: next(ticks)
    source.results[EXPR] = [(SERIES, 0.0)]
    e.evaluate(0.0)
    source.down = True
    e.evaluate(60.0)
    registry = CollectorRegistry()
    registry.register(e)
    text = generate_latest(registry).decode()
    assert "poolwatch_rules_evaluation_duration_seconds_total 0.75" in text
    assert "poolwatch_rules_last_evaluation_duration_seconds 0.5" in text
    assert "poolwatch_rules_evaluations_total 2.0" in text
    assert 'poolwatch_rules_evaluation_failures_total{rule="PoolwatchCollectorDown"} 1.0' in text
    assert 'poolwatch_rules_alerts{state="firing"} 1.0' in text
    assert 'poolwatch_rules_alerts{state="pending"} 1.0' in text  # the engine's own alert


def test_health_goes_bad_when_evaluations_stop(source: FakeSource, tmp_path: Path) -> None:
    e = Engine([group()], source, StateStore(tmp_path / "s.db"))
    ok, text = e.health(1.0)
    assert ok
    assert text.startswith("ok: 1 rules")
    e._last_cycle -= 61
    ok, text = e.health(1.0)
    assert not ok
    assert "no evaluation for 61s" in text
    e.evaluate()
    assert e.health(1.0)[0]
