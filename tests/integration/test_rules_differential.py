"""Differential test: the local PromQL engine against the real Prometheus 3.16 (pinned promtool).

Hypothesis draws a data set (a few series of three metrics, with missing samples, stale markers,
NaN and infinities, at a 15 s, 30 s or 1 m scrape interval) and a handful of expressions over
the subset the local engine accepts (selectors, ranges, subqueries, the range functions,
aggregations, arithmetic, comparisons, set operators, math functions). Each expression is
evaluated locally at several times; the answers become the expected samples of a
`promtool test rules` file; promtool evaluates the same expressions on the same series with
Prometheus' own engine and reports each answer that differs. Both sides failing (e.g. duplicate
series in a match) is agreement.

A bounded run is part of the suite (`RULES_DIFF_EXAMPLES`, default 12 examples, a few seconds);
set `RULES_DIFF_EXAMPLES=2000` for a long run. Every disagreement ever found is kept in
`tests/fixtures/rules_differential/regressions.yaml` and replayed first.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURES, pinned_tool
from helpers import expand_series as expand
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwatch.rules.local import History, Series
from poolwatch.rules.model import format_duration
from poolwatch.rules.promql import EvalError, Query

pytestmark = [pytest.mark.integration]

EXAMPLES = int(os.environ.get("RULES_DIFF_EXAMPLES", "12"))
REGRESSIONS = FIXTURES / "rules_differential" / "regressions.yaml"
#: functions whose float results may differ from the C library's in the last place (Go has its
#: own exp, log and pow, assembly or pure Go): compared to 12 significant digits. atan2 is not
#: among them: the engine computes it as Go does, operation for operation
INEXACT = re.compile(r"\b(exp|ln|log2|log10|sqrt|stddev|stdvar|stddev_over_time|"
                     r"stdvar_over_time|predict_linear|deriv)\b|\^")  # fmt: skip

# -- data ---------------------------------------------------------------------------------------

VALUES = ["0", "1", "2", "3", "5", "10", "-1", "-2", "0.5", "1.5", "100", "NaN", "Inf", "-Inf",
          "1e100", "-1e100", "_", "stale"]  # fmt: skip
LABELSETS = ['a="1",b="p"', 'a="2",b="p"', 'a="1",b="q"', 'a="3",b="q"']


@st.composite
def datasets(draw: Any) -> dict[str, Any]:
    interval = draw(st.sampled_from([15, 30, 60]))
    n = draw(st.integers(12, 24))
    series = {}
    for name in ("x", "y", "c"):
        for ls in draw(st.lists(st.sampled_from(LABELSETS), min_size=1, max_size=3, unique=True)):
            if name == "c":  # a counter: mostly rising, sometimes reset
                steps = draw(st.lists(st.sampled_from(["0", "1", "2", "5", "reset", "_"]),
                                      min_size=n, max_size=n))  # fmt: skip
                v, toks = 0.0, []
                for s in steps:
                    if s == "_":
                        toks.append("_")
                        continue
                    v = 0.0 if s == "reset" else v + float(s)
                    toks.append(f"{v:g}")
            else:
                toks = draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n))
            series[f"{name}{{{ls}}}"] = " ".join(toks)
    last = interval * (n - 1)
    times = draw(st.lists(st.integers(1, (last + 120) // 15), min_size=2, max_size=3, unique=True))
    return {"interval": interval, "series": series, "times": [15 * t for t in times]}


# -- expressions --------------------------------------------------------------------------------

SELECTORS = ["x", "y", "c", 'x{a="1"}', 'x{a=~"1|2"}', 'y{b!="p"}', 'c{b=~"p"}', 'x{a!~"2"}',
             'y{a=~"[[:digit:]]"}', 'x{a="1", a="2"}', "nope"]  # fmt: skip
OFFSETS = ["", "", " offset 30s", " offset 1m"]
RANGES = ["30s", "1m", "90s", "2m", "5m"]
SUBQUERIES = ["[2m:30s]", "[5m:1m]", "[1m:15s]", "[3m:1m] offset 30s", "[90s:45s]"]
RANGE_FUNCS = ["rate", "increase", "delta", "irate", "idelta", "changes", "resets", "deriv",
               "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
               "count_over_time", "last_over_time", "present_over_time", "stddev_over_time",
               "stdvar_over_time", "absent_over_time"]  # fmt: skip
MATH = ["abs", "ceil", "floor", "round", "sqrt", "exp", "ln", "log2", "log10"]
AGGS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
GROUPING = ["", " by (a)", " by (b)", " without (a)", " by (a, b)", " without (b)"]
ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
CMP = ["==", "!=", ">", "<", ">=", "<="]
MATCHING = [
    "",
    " on(a)",
    " on(a, b)",
    " ignoring(b)",
    " on()",
    " on(a) group_left()",
    " on(a) group_left(b)",
    " ignoring(b) group_right()",
    " on(b) group_right(a)",
]
NUMBERS = ["0", "1", "-1", "0.5", "2", "3", "1000", "NaN", "Inf", "-Inf", "1001"]


def scalars(depth: int) -> Any:
    base = st.sampled_from(NUMBERS)
    if depth <= 0:
        return base
    return st.one_of(
        base,
        st.just("time()"),
        st.builds(lambda v: f"scalar({v})", vectors(depth - 1)),
        st.builds(lambda a, op, b: f"({a} {op} {b})", base, st.sampled_from(ARITH), base),
    )


def vectors(depth: int) -> Any:
    sel = st.builds(lambda s, o: s + o, st.sampled_from(SELECTORS), st.sampled_from(OFFSETS))
    if depth <= 0:
        return sel
    sub = st.deferred(lambda: vectors(depth - 1))
    plain = st.sampled_from(SELECTORS)
    return st.one_of(
        sel,
        st.builds(
            lambda f, s, r, o: f"{f}({s}[{r}]{o})",
            st.sampled_from(RANGE_FUNCS),
            plain,
            st.sampled_from(RANGES),
            st.sampled_from(OFFSETS),
        ),
        st.builds(
            lambda f, v, q: f"{f}(({v}){q})",
            st.sampled_from(RANGE_FUNCS),
            sub,
            st.sampled_from(SUBQUERIES),
        ),
        st.builds(
            lambda s, r, d: f"predict_linear({s}[{r}], {d})",
            plain,
            st.sampled_from(RANGES),
            st.sampled_from(["60", "-30", "0"]),
        ),
        st.builds(
            lambda q, s, r: f"quantile_over_time({q}, {s}[{r}])",
            st.sampled_from(["0", "0.5", "0.9", "1", "NaN", "-1", "2"]),
            plain,
            st.sampled_from(RANGES),
        ),
        st.builds(lambda f, v: f"{f}({v})", st.sampled_from(MATH), sub),
        st.builds(
            lambda a, g, v: f"{a}{g}({v})", st.sampled_from(AGGS), st.sampled_from(GROUPING), sub
        ),
        st.builds(
            lambda q, g, v: f"quantile{g}({q}, {v})", scalars(0), st.sampled_from(GROUPING), sub
        ),
        st.builds(
            lambda v, op, s: f"({v}) {op} {s}",
            sub,
            st.sampled_from(ARITH + CMP),
            scalars(depth - 1),
        ),
        st.builds(lambda s, op, v: f"{s} {op} bool ({v})", scalars(0), st.sampled_from(CMP), sub),
        st.builds(
            lambda a, op, m, b: f"({a}) {op}{m} ({b})",
            sub,
            st.sampled_from([*ARITH, *CMP, "> bool"]),
            st.sampled_from(MATCHING),
            sub,
        ),
        st.builds(  # set operators take no group_left/group_right
            lambda a, op, m, b: f"({a}) {op}{m} ({b})",
            sub,
            st.sampled_from(["and", "or", "unless"]),
            st.sampled_from([m for m in MATCHING if "group" not in m]),
            sub,
        ),
        st.builds(lambda v: f"-({v})", sub),
        st.builds(lambda v, lo, hi: f"clamp({v}, {lo}, {hi})", sub, scalars(0), scalars(0)),
        st.builds(
            lambda f, v, b: f"{f}({v}, {b})",
            st.sampled_from(["clamp_min", "clamp_max"]),
            sub,
            scalars(0),
        ),
        st.builds(lambda s: f"absent({s})", st.sampled_from(SELECTORS)),
        st.builds(lambda s: f"vector({s})", scalars(depth - 1)),
        st.builds(
            lambda v, src: f'label_join({v}, "d", "-", {src})',
            sub,
            st.sampled_from(['"a"', '"a", "b"', '"b", "nope"', '"a", "a"']),
        ),
        st.builds(
            lambda v, r: f'label_replace({v}, "d", "$1-x", "a", "{r}")',
            sub,
            st.sampled_from(["(.*)", "([12])", "(?:3)", "[[:digit:]]+"]),
        ),
    )


# -- both sides ---------------------------------------------------------------------------------


def history(series: dict[str, str], step_ms: int) -> History:
    h = History()
    for spec, values in series.items():
        name, _, rest = spec.partition("{")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        s = Series(labels | {"__name__": name})
        for i, v in enumerate(expand(values)):
            if v is not None:
                s.append(i * step_ms, v)
        h._add(name, s)
    return h


def _labels(ls: dict[str, str]) -> str:
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(ls.items()) if k != "__name__")
    return f"{ls.get('__name__', '')}{{{inner}}}"


Answer = list[tuple[frozenset[tuple[str, str]], float]] | None  # None: an evaluation error


def local_answers(case: dict[str, Any]) -> dict[tuple[str, int], Answer]:
    h = history(case["series"], case["interval"] * 1000)
    out: dict[tuple[str, int], Answer] = {}
    for expr in case["exprs"]:
        q = Query.parse(expr)
        for t in case["times"]:
            try:
                got = q.eval(h, t * 1000)
            except EvalError:
                out[(expr, t)] = None
                continue
            out[(expr, t)] = [(frozenset(ls.items()), v) for ls, v in got]
    return out


_FAIL = re.compile(r'expr: ("(?:[^"\\]|\\.)*"), time: ([0-9a-z]+),\s*\n\s*exp: (.*)\n\s*got: (.*)')
_ERR = re.compile(r'expr: ("(?:[^"\\]|\\.)*"), time: ([0-9a-z]+), err: (.*)')
_SAMPLE = re.compile(r'(\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\}) (\S+?)(?:, |$)')
_PAIR = re.compile(r'([^\s{=,]+)="((?:[^"\\]|\\.)*)"')


def _parse_samples(text: str) -> list[tuple[frozenset[tuple[str, str]], float]]:
    if text.strip() == "nil":
        return []
    out = []
    for m in _SAMPLE.finditer(text.strip()):
        labels = frozenset((k, json.loads(f'"{v}"')) for k, v in _PAIR.findall(m.group(1)))
        out.append((labels, float(m.group(2))))
    return out


def _same(expr: str, a: Answer, b: Answer) -> bool:
    if a is None or b is None:
        return a is b
    if len(a) != len(b):
        return False
    inexact = INEXACT.search(expr) is not None
    for (la, va), (lb, vb) in zip(sorted(a, key=_key), sorted(b, key=_key), strict=True):
        if la != lb:
            return False
        if va == vb or (va != va and vb != vb):
            continue
        if not (inexact and math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-300)):
            return False
    return True


def _key(s: tuple[frozenset[tuple[str, str]], float]) -> list[tuple[str, str]]:
    return sorted(s[0])


def prometheus_disagreements(case: dict[str, Any], tmp: Path) -> list[str]:
    """Run promtool on `case` with the local answers as expectations; every (expr, time) whose
    answers differ (NaN equal to NaN, both failing equal)."""
    local = local_answers(case)
    tests = []
    for (expr, t), answer in local.items():
        samples = [{"labels": _labels(dict(ls)), "value": v} for ls, v in answer or []]
        tests.append({"expr": expr, "eval_time": format_duration(t), "exp_samples": samples})
    (tmp / "empty.yaml").write_text("groups: []\n")
    doc = {"rule_files": ["empty.yaml"], "evaluation_interval": "15s", "tests": [{
        "interval": f"{case['interval']}s",
        "input_series": [{"series": s, "values": v} for s, v in case["series"].items()],
        "promql_expr_test": tests,
    }]}  # fmt: skip
    path = tmp / "diff-test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    result = subprocess.run([pinned_tool("promtool"), "test", "rules", str(path)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    text = result.stdout + result.stderr
    if result.returncode == 0:
        return [f"{e} at {t}s: Prometheus answered, locally an error"
                for (e, t), a in local.items() if a is None]  # fmt: skip
    theirs: dict[tuple[str, str], Answer] = {}
    for m in _FAIL.finditer(text):
        theirs[(json.loads(m.group(1)), m.group(2))] = _parse_samples(m.group(4))
    for m in _ERR.finditer(text):
        theirs[(json.loads(m.group(1)), m.group(2))] = None
    if not theirs:
        return [f"promtool failed without a comparison: {text[-2000:]}"]
    found = []
    for (expr, t), mine in local.items():
        key = (expr, format_duration(t))
        if key not in theirs:
            if mine is None:
                found.append(f"{expr} at {key[1]}: Prometheus answered, locally an error")
            continue
        if not _same(expr, mine, theirs[key]):
            found.append(f"{expr} at {key[1]}:\n  local      {mine}\n  prometheus {theirs[key]}")
    return found


def _regressions() -> list[dict[str, Any]]:
    return yaml.safe_load(REGRESSIONS.read_text()) or []


@pytest.mark.parametrize("case", _regressions(), ids=lambda c: c.get("why", "")[:50])
def test_regression_cases_agree(case: dict[str, Any], tmp_path: Path) -> None:
    found = prometheus_disagreements(case, tmp_path)
    assert not found, "\n".join(found)


@pytest.mark.timeout(max(120, 2 * EXAMPLES))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])  # fmt: skip
@given(data=datasets(), exprs=st.lists(vectors(2), min_size=4, max_size=8))
def test_local_engine_agrees_with_prometheus(
    data: dict[str, Any], exprs: list[str], tmp_path: Path
) -> None:
    case = {**data, "exprs": exprs}
    found = prometheus_disagreements(case, tmp_path)
    assert not found, (
        "add this case to tests/fixtures/rules_differential/regressions.yaml:\n"
        + yaml.safe_dump([{"why": "found by hypothesis", **case}], width=1000)
        + "\n".join(found)
    )
