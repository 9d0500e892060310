"""`rules.overrides` in the chart: the rule engine gets the file (--overrides), and the chart's
own PrometheusRule and rules ConfigMap carry the same overrides, compiled in the chart's
templates from files/rule-model/ (helm/sync.py). Rendered with the real Helm, checked with the
real promtool, and compared with `poolwatch rules compile --overrides` of the same file.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import pinned_tool
from tests.helpers.helm_chart import ROOT, Helm, HelmError, Rendered
from tests.helpers.prom_versions import Prometheus

#: one override of every kind the engine accepts, two in one group next to a disabled rule
OVERRIDES: dict[str, Any] = {
    "PoolwatchNodeCacheSpaceAlmostFull": {
        "threshold": 0.95, "clear": 0.875, "for": "10m", "severity": "critical",
        "labels": {"team": "storage", "area": "cache"},
        "actions": ["notify", {"isolate": "A050104"}],
    },
    "PoolwatchContainerSpaceAlmostFull": {"disabled": True},
    "PoolwatchCacheDirAlmostFull": {"threshold": 0.97},
    "PoolwatchCacheFillsWithinHours": {"threshold": 0.00001},  # Go writes 1e-05: no dot
    "PoolwatchNodeCpuHigh": {"disabled": True},
    "PoolwatchNodeMemoryHigh": {"threshold": 1234567.5, "periods": 5},
    "PoolwatchGpuRetiredPagesHigh": {"threshold": 70, "for": 0},
    # a window rule given a plain timing, and one whose threshold only changes
    "PoolwatchNodeCpuBusyMostOfTheTime": {"threshold": 0.85, "periods": 3},
    "PoolwatchNfsAlmostFull": {"threshold": 0.05},
}  # fmt: skip


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned Helm (scripts/tools.sh), with its own empty home."""
    return Helm(pinned_tool("helm"), tmp_path_factory.mktemp("helm-home"))


def _render(helm: Helm, overrides: dict[str, Any], **more: Any) -> Rendered:
    return helm.template([helm.write_values({"rules": {"overrides": overrides}, **more})])


def _alerts(rendered: Rendered) -> dict[str, dict[str, Any]]:
    spec = rendered.one("PrometheusRule", "-rules")["spec"]
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"]}


def test_overrides_change_exactly_what_they_say(helm: Helm) -> None:
    shipped = _alerts(_render(helm, {}))
    changed = _alerts(_render(helm, {
        "PoolwatchCacheDirAlmostFull": {"threshold": 0.97},
        "PoolwatchNodeMemoryHigh": {"for": "7m"},
        "PoolwatchNodeCpuHigh": {"disabled": True},
    }))  # fmt: skip
    assert set(shipped) - set(changed) == {"PoolwatchNodeCpuHigh"}
    for name in set(changed) - {"PoolwatchCacheDirAlmostFull", "PoolwatchNodeMemoryHigh"}:
        assert changed[name] == shipped[name], name
    # a threshold: the comparison's number and the texts that quote it, nothing else
    before, after = shipped["PoolwatchCacheDirAlmostFull"], changed["PoolwatchCacheDirAlmostFull"]
    assert before["expr"].endswith(" > 0.9")
    assert "90 %" in before["annotations"]["summary"]
    want = copy.deepcopy(before)
    want["expr"] = before["expr"].removesuffix(" > 0.9") + " > 0.97"
    for key in ("summary", "description"):
        want["annotations"][key] = before["annotations"][key].replace("90 %", "97 %")
    assert after == want
    # a `for`: that key only
    before, after = shipped["PoolwatchNodeMemoryHigh"], changed["PoolwatchNodeMemoryHigh"]
    assert before["for"] == "1m"
    assert after == {**before, "for": "7m"}


def test_the_chart_and_the_engines_compiler_agree(helm: Helm, tmp_path: Path) -> None:
    """The same overrides file through `poolwatch rules compile --overrides` and through the
    chart gives the same rule groups (the chart leaves out a group whose rules are all
    disabled; none is here)."""
    rendered = _render(helm, OVERRIDES)
    chart = rendered.one("PrometheusRule", "-rules")["spec"]["groups"]
    # the very file the chart gives the engine, and one an operator wrote in their own key
    # order (the labels team before area): Helm's maps have no order, so it must not matter
    given = rendered.one("ConfigMap", "-rules-overrides")["data"]["overrides.yaml"]
    assert yaml.safe_load(given) == OVERRIDES
    for name, text in (("chart", given), ("own", yaml.safe_dump(OVERRIDES, sort_keys=False))):
        file = tmp_path / f"{name}.yaml"
        file.write_text(text)
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "poolwatch", "rules", "compile", "--overrides",
                        str(file), "--out", str(out)], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        compiled = [g for p in sorted(out.glob("*.rules.yaml"))
                    for g in yaml.safe_load(p.read_text())["groups"]]  # fmt: skip
        assert chart == compiled, name
    alerts = _alerts(rendered)
    assert "PoolwatchNodeCpuHigh" not in alerts
    cache = alerts["PoolwatchNodeCacheSpaceAlmostFull"]
    assert cache["for"] == "10m"
    assert cache["labels"]["severity"] == "critical"
    assert "ignoring(alertname, alertstate, severity, seed_ids, area, team)" in cache["expr"]
    assert cache["annotations"]["actions"] == "notify isolate:A050104"
    assert alerts["PoolwatchNodeMemoryHigh"]["for"] == "4m"  # (5 - 1) x 1m
    assert "> 1234567.5" in alerts["PoolwatchNodeMemoryHigh"]["expr"]
    assert "for" not in alerts["PoolwatchGpuRetiredPagesHigh"]
    assert not alerts["PoolwatchNodeCpuBusyMostOfTheTime"]["expr"].startswith("avg_over_time")


@pytest.mark.integration
def test_overridden_rules_pass_promtool(helm: Helm, tmp_path: Path, prom: Prometheus) -> None:
    spec = _render(helm, OVERRIDES).one("PrometheusRule", "-rules")["spec"]
    rules = tmp_path / "chart.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": spec["groups"]}))
    result = subprocess.run([prom.promtool, "check", "rules", str(rules)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr


def test_the_rules_configmap_carries_the_overrides(helm: Helm) -> None:
    off = {"operator": False, "rules": {"configMap": True}}
    rendered = _render(helm, OVERRIDES, monitoring=off)
    files = rendered.one("ConfigMap", "-rules-files")["data"]
    groups = {g["name"]: g for text in files.values() for g in yaml.safe_load(text)["groups"]}
    with_operator = _render(helm, OVERRIDES).one("PrometheusRule", "-rules")["spec"]["groups"]
    assert groups == {g["name"]: g for g in with_operator}
    assert files.keys() == {g["name"].removeprefix("poolwatch-") + ".rules.yaml"
                            for g in with_operator}  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"PoolwatchNope": {"threshold": 1}},
         "rules.overrides.PoolwatchNope: no shipped rule has this name"),
        ({"PoolwatchNodeCpuHigh": {"treshold": 1}},
         "rules.overrides.PoolwatchNodeCpuHigh.treshold: unknown field"),
        ({"PoolwatchNodeCpuHigh": {"threshold": "0.9"}},
         "rules.overrides.PoolwatchNodeCpuHigh.threshold: expected a number, got string"),
        ({"PoolwatchNodeCpuHigh": {"for": "10x"}},
         "rules.overrides.PoolwatchNodeCpuHigh.for: expected a Prometheus duration"),
        ({"PoolwatchNodeCpuHigh": {"periods": 0}},
         "rules.overrides.PoolwatchNodeCpuHigh.periods: expected a whole number"),
        ({"PoolwatchNodeCpuHigh": {"severity": "urgent"}},
         "rules.overrides.PoolwatchNodeCpuHigh.severity: expected one of"),
        ({"PoolwatchNodeCpuHigh": {"clear": 0.99}},
         "rules.overrides.PoolwatchNodeCpuHigh.clear: must be below the threshold"),
        ({"PoolwatchNodeCpuBusyMostOfTheTime": {"clear": 0.5}},
         "rules.overrides.PoolwatchNodeCpuBusyMostOfTheTime.clear: clear (hysteresis) needs"),
        ({"PoolwatchNodeCpuHigh": {"labels": {"severity": "x"}}},
         "rules.overrides.PoolwatchNodeCpuHigh.labels.severity: this label is set by"),
        ({"PoolwatchNodeCpuHigh": {"labels": {"team": 1}}},
         "rules.overrides.PoolwatchNodeCpuHigh.labels.team: expected a string"),
        ({"PoolwatchNodeCpuHigh": {"actions": [{"isolate": "X1"}]}},
         "rules.overrides.PoolwatchNodeCpuHigh.actions[0].isolate: unknown fault code X1"),
        ({"PoolwatchNodeCpuHigh": {"actions": ["page"]}},
         "rules.overrides.PoolwatchNodeCpuHigh.actions[0]: expected notify"),
        ({"PoolwatchNodeCpuHigh": {"disabled": "yes"}},
         "rules.overrides.PoolwatchNodeCpuHigh.disabled: expected true or false"),
    ],
)  # fmt: skip
def test_an_override_the_chart_cannot_apply_fails_naming_the_key(
    helm: Helm, tmp_path: Path, override: dict[str, Any], message: str
) -> None:
    """Each of these the engine refuses too (checked here with `rules check --overrides`), so
    neither side may run with the shipped rule instead."""
    with pytest.raises(HelmError) as err:
        _render(helm, override)
    assert message in str(err.value)
    # with no PrometheusRule to render, the engine's values are still checked
    with pytest.raises(HelmError) as err:
        _render(helm, override, monitoring={"operator": False})
    assert message in str(err.value)
    file = tmp_path / "overrides.yaml"
    file.write_text(yaml.safe_dump(override))
    engine = subprocess.run([sys.executable, "-m", "poolwatch", "rules", "check", "--overrides",
                             str(file)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert engine.returncode != 0, engine.stdout
