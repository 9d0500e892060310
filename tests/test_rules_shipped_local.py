"""Every shipped promtool unit test, replayed through the engine in local mode.

`rules/default/tests/*-test.yaml` say, series in and alerts out, what Prometheus fires for each
shipped rule (the suite runs them with the real promtool). Here the same input series fill the
local source's history, the engine evaluates the same groups every evaluation interval, and at
each `eval_time` its firing alerts must be exactly the expected ones: same labels, same rendered
annotations. So the local engine and Prometheus agree rule by rule, not only on the PromQL."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import expand_series as expand

from poolwatch.rules.engine import Engine
from poolwatch.rules.loader import DEFAULT_DIR, default_files, load
from poolwatch.rules.local import History, LocalSource, Series
from poolwatch.rules.model import duration_seconds
from poolwatch.rules.state import StateStore

TESTS = sorted((DEFAULT_DIR / "tests").glob("*-test.yaml"))


def history(series: list[dict[str, str]], step_ms: float) -> History:
    h = History()
    for item in series:
        spec = item["series"]
        name, _, rest = spec.partition("{")
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        s = Series(labels | {"__name__": name})
        for i, v in enumerate(expand(item["values"])):
            if v is not None:
                s.append(i * step_ms, v)
        h._add(name, s)
    return h


@functools.cache
def _groups() -> dict[str, Any]:
    return {item.group.group: item.group for item in load(default_files())}


def _cases() -> list[Any]:
    cases = []
    for path in TESTS:
        doc = yaml.safe_load(path.read_text())
        for i, test in enumerate(doc["tests"]):
            cases.append(pytest.param(path, doc, test, id=f"{path.stem}:{i}"))
    return cases


@pytest.mark.parametrize(("path", "doc", "test"), _cases())
def test_shipped_unit_test_through_the_local_engine(
    path: Path, doc: dict[str, Any], test: dict[str, Any]
) -> None:
    groups = _groups()
    wanted = [groups[f.removesuffix(".rules.yaml")] for f in doc["rule_files"]]
    step = duration_seconds(test.get("interval", "1m"))
    every = duration_seconds(doc.get("evaluation_interval", "1m"))
    source = LocalSource([])
    engine = Engine(wanted, source, StateStore(":memory:"))
    assert engine.refused == {}
    fresh = history(test["input_series"], step * 1000)
    fresh.keep = source.store.keep  # the retention the engine's rules asked for
    source.store = fresh
    checks: dict[float, list[dict[str, Any]]] = {}
    for check in test.get("alert_rule_test", []):
        checks.setdefault(duration_seconds(check["eval_time"]) if check["eval_time"] != "0m"
                          else 0.0, []).append(check)  # fmt: skip
    t, last = 0.0, max(checks, default=0.0)
    while t <= last:
        engine.evaluate(t)
        for check in checks.get(t, []):
            name = check["alertname"]
            got = {
                (frozenset(a.labels.items()), frozenset(a.annotations.items()))
                for a in engine.alerts.values() if a.rule == name and a.state == "firing"
            }  # fmt: skip
            want = {
                (frozenset((dict(e.get("exp_labels", {})) | {"alertname": name}).items()),
                 frozenset({k: str(v) for k, v in e.get("exp_annotations", {}).items()}.items()))
                for e in check.get("exp_alerts") or []
            }  # fmt: skip
            assert got == want, f"{name} at {check['eval_time']}: got {got}, want {want}"
        t += every
