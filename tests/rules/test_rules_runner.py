"""Running rule files: the run loop, reloading on change or SIGHUP (a broken file keeps the
previous rules), and `poolwatch rules run` serving its metrics and refusing bad settings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from poolwatch.rules.engine import Engine
from poolwatch.rules.runner import run_files
from poolwatch.rules.state import StateStore
from tests.helpers import free_port
from tests.helpers.rules_fakes import EXPR, SERIES, FakeSource


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


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

    from poolwatch.rules.runner import RuleFiles

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
    with caplog.at_level(logging.ERROR, logger="poolwatch.rules.runner"):
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

    from tests.helpers import parse, value

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
    for args, env, origin in (
        (["--runbook-base-url", "docs.example.com"], {}, "flag --runbook-base-url"),
        ([], {"POOLWATCH_RUNBOOK_BASE_URL": "ftp://docs.example.com"},
         "environment variable POOLWATCH_RUNBOOK_BASE_URL"),
    ):  # fmt: skip
        out = subprocess.run(
            [*cmd, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert out.returncode == 2, out.stderr
        assert origin in out.stderr  # the error names where the bad value came from
        assert "not an absolute http:// or https:// URL" in out.stderr
    assert not (tmp_path / "s.db").exists()  # refused before anything was started
