"""Overrides: a shipped rule's threshold, clear threshold, timing, severity, labels and actions
changed (or the rule turned off) by name, validated with file:line, carried into the compiled
Prometheus rules and the engine, and shown in the rule's own summary; `poolwatch rules test`
runs an operator's own promtool tests."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from poolwatch.rules import compile as compiler
from poolwatch.rules import verbs
from poolwatch.rules.compiled import compile_groups
from poolwatch.rules.engine import Engine
from poolwatch.rules.loader import DEFAULT_DIR, RuleFileError, default_files, load
from poolwatch.rules.overrides import apply
from poolwatch.rules.state import StateStore
from tests.helpers import pinned_tool

CACHE = "PoolwatchNodeCacheSpaceAlmostFull"


def write(tmp_path: Path, text: str, name: str = "overrides.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def rule_of(groups: list, name: str):  # type: ignore[no-untyped-def]
    return next(r for g in groups for r in g.group.rules if r.name == name)


def test_an_override_changes_the_rule_and_its_summary(tmp_path: Path) -> None:
    path = write(tmp_path, f"""\
        {CACHE}:
          threshold: 0.95
          clear: 0.9
          for: 10m
          severity: major
          labels: {{team: storage}}
          actions: [notify, {{isolate: A050104}}]
        PoolwatchJobHang:
          disabled: true
        """)  # fmt: skip
    shipped = load(default_files())
    groups = apply(shipped, path)
    r = rule_of(groups, CACHE)
    assert (r.threshold, r.clear, r.for_, r.periods, r.severity) == (
        0.95,
        0.9,
        "10m",
        None,
        "major",
    )
    assert r.labels == {"team": "storage"}
    assert all(x.name != "PoolwatchJobHang" for g in groups for x in g.group.rules)
    alert = compiler.alert(r, "1m")
    assert alert["expr"].startswith('((poolwatch_filesystem_used_ratio{purpose="kubelet"}) > 0.95)')
    assert alert["for"] == "10m"
    assert alert["labels"] == {"team": "storage", "severity": "major", "seed_ids": "MA-N-03"}
    assert alert["annotations"]["summary"] == "Node Kubernetes space is over 95 % full."
    assert alert["annotations"]["actions"] == "notify isolate:A050104"
    # the shipped rule is untouched, and still says 90
    shipped_alert = compiler.alert(rule_of(shipped, CACHE), "1m")
    assert shipped_alert["annotations"]["summary"] == "Node Kubernetes space is over 90 % full."


def test_one_rule_disabled_and_another_of_its_group_changed(tmp_path: Path) -> None:
    """Both in one file, the disabled one first: the second override used to crash on the
    place the first left empty."""
    path = write(tmp_path, f"""\
        {CACHE}:
          disabled: true
        PoolwatchContainerSpaceAlmostFull:
          threshold: 0.95
        """)  # fmt: skip
    groups = apply(load(default_files()), path)
    names = [r.name for g in groups for r in g.group.rules]
    assert CACHE not in names
    assert rule_of(groups, "PoolwatchContainerSpaceAlmostFull").threshold == 0.95


def test_periods_replace_for_and_back(tmp_path: Path) -> None:
    groups = apply(load(default_files()), write(tmp_path, f"{CACHE}: {{periods: 5}}\n"))
    assert compiler.alert(rule_of(groups, CACHE), "1m")["for"] == "4m"
    zero = apply(load(default_files()), write(tmp_path, f"{CACHE}: {{for: 0s}}\n", "b.yaml"))
    assert "for" not in compiler.alert(rule_of(zero, CACHE), "1m")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("PoolwatchNope:\n  threshold: 1\n", 1, "rule PoolwatchNope: no loaded rule has this name"),
        (f"{CACHE}:\n  threshold: 0.95\n  colour: red\n", 3, "colour: unknown field"),
        (f"{CACHE}:\n  threshold: high\n", 2, "threshold: Input should be a valid number"),
        (f"{CACHE}:\n  for: 10 minutes\n", 2, "for: expected a Prometheus duration"),
        (f"{CACHE}:\n  severity: fatal\n", 2, "severity: Input should be"),
        (f"{CACHE}:\n  threshold: 0.8\n", 1, "clear must be below threshold"),  # clear 0.85
        (f"{CACHE}:\n  actions: [{{isolate: A0}}]\n", 2, "unknown fault code"),
    ],
)
def test_bad_overrides_are_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RuleFileError) as err:
        apply(load(default_files()), path)
    found = [str(p) for p in err.value.problems]
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in found), found


def test_compile_and_check_carry_the_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        f"{CACHE}: {{threshold: 0.97, clear: 0.93}}\nPoolwatchJobHang: {{disabled: true}}\n",
    )
    out = tmp_path / "out"
    assert verbs.compile_([], out, {}, overrides=path) == 0
    doc = yaml.safe_load((out / "storage.rules.yaml").read_text())
    cache = next(r for r in doc["groups"][0]["rules"] if r["alert"] == CACHE)
    assert "> 0.97" in cache["expr"]
    assert "> 0.93" in cache["expr"]
    assert cache["annotations"]["summary"] == "Node Kubernetes space is over 97 % full."
    job = yaml.safe_load((out / "job.rules.yaml").read_text())
    assert all(r["alert"] != "PoolwatchJobHang" for r in job["groups"][0]["rules"])
    manifest = yaml.safe_load((out / compiler.MANIFEST).read_text())
    assert "> 0.97" in str(manifest)
    bad = write(tmp_path, "PoolwatchNope: {threshold: 1}\n", "bad.yaml")
    assert verbs.check([], overrides=bad) == 1
    assert f"{bad}:1: rule PoolwatchNope" in capsys.readouterr().err


def test_the_engine_fires_at_the_overridden_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, f"{CACHE}: {{threshold: 0.5, clear: 0.4, periods: 1}}\n")
    groups = apply(load([DEFAULT_DIR / "storage.yaml"]), path)

    class Source:
        def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
            labels = {"node": "n1", "mountpoint": "/cache", "purpose": "cache"}
            return [(labels, 0.6)] if "0.4" in expr else []

    engine = Engine(groups, Source(), StateStore(tmp_path / "s.db"), clock=lambda: 0.0)
    (alert,) = [a for a in engine.evaluate(0.0) if a.rule == CACHE]
    assert alert.state == "firing"
    assert alert.annotations["summary"] == "Node Kubernetes space is over 50 % full."
    assert {c.rule.name: c.where for c in compile_groups(groups)}[CACHE].endswith("storage.yaml:8")


OWN_RULES = """\
group: mine
interval: 1m
rules:
  - name: GpuTooHot
    expr: poolwatch_accelerator_temperature_celsius
    op: ">"
    threshold: 85
    for: 0s
    severity: warning
    annotations:
      summary: An accelerator is over {{ $threshold }} °C.
      description: "{{ $labels.node }}: {{ $value }} °C"
      runbook: https://example.com/hot
"""
OWN_TEST = """\
rule_files: [mine.rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'poolwatch_accelerator_temperature_celsius{node="n1"}'
        values: '80 90 90'
    alert_rule_test:
      - {eval_time: 0m, alertname: GpuTooHot}
      - eval_time: 1m
        alertname: GpuTooHot
        exp_alerts:
          - exp_labels: {node: n1, severity: warning}
            exp_annotations:
              summary: An accelerator is over 85 °C.
              description: 'n1: 90 °C'
              runbook_url: https://example.com/hot
              actions: notify
              dry_run: 'false'
"""


@pytest.mark.integration
def test_rules_test_runs_an_operators_own_promtool_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(tmp_path, OWN_RULES, "mine.yaml")
    test = write(tmp_path, OWN_TEST, "mine-test.yaml")
    promtool = pinned_tool("promtool")
    assert verbs.unit_tests([test], [rules], promtool=promtool) == 0, capsys.readouterr()
    assert "SUCCESS" in capsys.readouterr().out
    # the same test fails once an override raises the threshold past the data
    path = write(tmp_path, "GpuTooHot: {threshold: 95}\n")
    assert verbs.unit_tests([test], [rules], overrides=path, promtool=promtool) == 1
    assert verbs.unit_tests([tmp_path / "missing.yaml"], [rules], promtool=promtool) == 2
    capsys.readouterr()
    if shutil.which("promtool"):  # Debian's 2.x promtool is refused with the reason
        old = shutil.which("promtool")
        if "version 2." in subprocess.run([old, "--version"], capture_output=True, text=True,  # type: ignore[list-item]
                                          check=False).stdout:  # fmt: skip
            assert verbs.unit_tests([test], [rules], promtool=old) == 2
            assert "need Prometheus 3's promtool" in capsys.readouterr().err
