"""The rule engine: fingerprints, the SQLite store, every alert transition against a fake source
with a deterministic clock, and one run against a real Prometheus on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from prom_versions import Prometheus
from prometheus_client import CollectorRegistry, generate_latest

from poolwatch.rules import compile as compiler
from poolwatch.rules.engine import ENGINE_ALERT, Engine, run_files
from poolwatch.rules.fingerprint import OFFSET64, fingerprint, fingerprint_int
from poolwatch.rules.model import Group
from poolwatch.rules.sources import PrometheusSource, SourceError
from poolwatch.rules.state import AlertState, StateStore

EXPR = "(poolwatch_collector_up) == 0"  # compile.expression of the rule below


def group(**rule: object) -> Group:
    base = {
        "name": "PoolwatchCollectorDown",
        "expr": "poolwatch_collector_up",
        "op": "==",
        "threshold": 0,
        "for": "5m",
        "severity": "warning",
        "annotations": {"summary": "s", "description": "d", "runbook": "r"},
    }
    return Group.model_validate({"group": "collector", "interval": "1m", "rules": [base | rule]})


class FakeSource:
    """Answers per expression from `results`; raises SourceError while `down`."""

    def __init__(self) -> None:
        self.results: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.down = False
        self.queries: list[tuple[str, float]] = []

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        self.queries.append((expr, at))
        if self.down:
            raise SourceError("connection refused")
        return self.results.get(expr, [])


SERIES = {"__name__": "poolwatch_collector_up", "collector": "nfs", "node": "n1"}


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
    from poolwatch.rules.engine import message

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


# -- the Prometheus source ----------------------------------------------------------------------


def test_prometheus_source_down_is_a_source_error() -> None:
    src = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(SourceError):
        src.query("up", 0.0)
    with pytest.raises(ValueError, match="http"):
        PrometheusSource("file:///etc/passwd")


class _Gauge(http.server.BaseHTTPRequestHandler):
    value = 1.0
    body = b""

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/query"):
            body, code = type(self).body, 200 if type(self).body else 500
        else:
            text = f'poolwatch_collector_up{{collector="nfs",node="n1"}} {type(self).value}\n'
            body, code = text.encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_source_error_document_and_bad_json_are_source_errors() -> None:
    class Bad(_Gauge):
        body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'

    with serve(Bad) as port:
        with pytest.raises(SourceError, match="parse error"):
            PrometheusSource(f"http://127.0.0.1:{port}").query("up", 0.0)
        Bad.body = b"not json"
        with pytest.raises(SourceError):
            PrometheusSource(f"http://127.0.0.1:{port}").query("up", 0.0)


@pytest.mark.integration
def test_engine_fires_against_a_real_prometheus(tmp_path: Path, prom: Prometheus) -> None:
    from integration.conftest import process  # the shared start-and-poll helper

    class Gauge(_Gauge):
        value = 1.0

    with serve(Gauge) as target:
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: gauge\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
        )
        cmd = [
            prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "prometheus.log"
        with process(cmd, log, f"{base}/-/ready"):
            src = PrometheusSource(base, timeout=5.0)
            e = Engine(
                [group(**{"for": None, "periods": 1})],
                src,
                StateStore(tmp_path / "s.db"),
                reminder_wait=3600.0,
                grace=60.0,
            )
            deadline = time.monotonic() + 30
            while not src.query("poolwatch_collector_up", time.time()):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert [a for a in e.evaluate() if a.rule != ENGINE_ALERT] == []  # healthy: quiet

            Gauge.value = 0.0  # the collector stops answering
            deadline = time.monotonic() + 30
            while not (alerts := [a for a in e.evaluate() if a.state == "firing"]):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            [a] = alerts
            assert a.labels["alertname"] == "PoolwatchCollectorDown"
            assert (a.labels["job"], a.labels["node"]) == ("gauge", "n1")
            assert [k for k, _ in e.due_notifications()] == ["firing"]
            assert e.failures == {}


def test_run_files_evaluates_until_stopped(source: FakeSource, tmp_path: Path) -> None:
    rule_file = tmp_path / "collector.yaml"
    rule_file.write_text(
        "group: collector\ninterval: 1m\nrules:\n"
        "  - name: PoolwatchCollectorDown\n    expr: poolwatch_collector_up\n"
        '    op: "=="\n    threshold: 0\n    periods: 1\n    severity: warning\n'
        "    annotations: {summary: s, description: d, runbook: r}\n"
    )
    source.results[EXPR] = [(SERIES, 0.0)]
    stop = threading.Event()
    sent: list[str] = []

    class Notifier:
        def notify(self, messages: list) -> bool:
            sent.extend(m.kind for m in messages)
            stop.set()
            return True

    e = run_files([rule_file], source, tmp_path / "s.db", 0.01, stop, [Notifier()], sinks=[])
    assert sent == ["firing"]
    assert [a.notified for a in e.alerts.values()] == ["firing"]


RULE_FILE = """\
group: reload
interval: 1m
rules:
  - name: PoolwatchCollectorDownForTest
    expr: poolwatch_collector_up
    op: "<"
    threshold: 1
    for: 1m
    severity: warning
    annotations: {summary: s, description: d, runbook: r}
"""


def test_rule_files_reload_on_change_and_keep_running_on_a_broken_file(
    source: FakeSource, tmp_path: Path, caplog
) -> None:
    import logging
    import os

    from poolwatch.rules.engine import RuleFiles

    f = tmp_path / "reload.yaml"
    f.write_text(RULE_FILE)
    files = RuleFiles([f])
    eng = Engine(files.load(), source, StateStore(tmp_path / "s.db"))
    assert [c.rule.name for c in eng.rules] == ["PoolwatchCollectorDownForTest"]
    assert files.maybe_reload(eng) is False  # nothing changed
    f.write_text(RULE_FILE.replace("threshold: 1", "threshold: 0.5"))
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert files.maybe_reload(eng) is True
    assert eng.rules[0].rule.threshold == 0.5
    f.write_text(RULE_FILE.replace("threshold: 1", "threshold: one"))
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    with caplog.at_level(logging.ERROR, logger="poolwatch.rules.engine"):
        assert files.maybe_reload(eng) is False
    assert eng.rules[0].rule.threshold == 0.5  # the previous rules keep running
    assert any("reload.yaml:7" in r.getMessage() for r in caplog.records)
    f.write_text(RULE_FILE)
    files._stamp = files._mtimes()  # same mtime as seen: only a request (SIGHUP) reloads now
    files.requested.set()
    assert files.maybe_reload(eng) is True
    assert eng.rules[0].rule.threshold == 1


def test_cli_serves_the_engines_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    import subprocess
    import sys
    import urllib.request

    from helpers import free_port, parse, value

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolwatch", "rules", "run", "--source",
         "prometheus=http://127.0.0.1:1", "--state", str(tmp_path / "s.db"), "--interval", "1s",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline, series = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    series = parse(r.read())
                if value(series, "poolwatch_rules_evaluations_total") >= 2:
                    break
            except (OSError, AssertionError):
                pass
            time.sleep(0.2)
        assert value(series, "poolwatch_rules_evaluations_total") >= 2
        # Prometheus is unreachable: every rule's evaluation is skipped and counted
        assert value(series, "poolwatch_rules_evaluation_failures_total",
                     rule="PoolwatchCollectorDown") >= 1  # fmt: skip
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_a_bad_runbook_base_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import sys

    monkeypatch.delenv("POOLWATCH_RUNBOOK_BASE_URL", raising=False)
    cmd = [
        sys.executable,
        "-m",
        "poolwatch",
        "rules",
        "run",
        "--source",
        "prometheus=http://127.0.0.1:1",
        "--state",
        str(tmp_path / "s.db"),
        "--listen",
        "off",
    ]
    for args, env in (
        (["--runbook-base-url", "docs.example.com"], {}),
        ([], {"POOLWATCH_RUNBOOK_BASE_URL": "ftp://docs.example.com"}),
    ):
        out = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert out.returncode == 2, out.stderr
        assert "--runbook-base-url" in out.stderr
        assert "not an absolute http:// or https:// URL" in out.stderr
    assert not (tmp_path / "s.db").exists()  # refused before anything was started


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
