"""The local PromQL subset agrees with Prometheus itself, value for value.

Each expression is evaluated by rules/promql.py over series written in promtool's expanding
notation; the answers become the expected samples of a `promtool test rules` file, and the real
promtool (Prometheus 3.16's engine, pinned) must find exactly those samples (it compares floats
exactly). Only Prometheus 3 is compared: the local engine follows Prometheus 3's semantics
(left-open windows, its rate extrapolation), which 2.42 answers differently at window edges.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import expand_series as expand
from helpers import pinned_tool

from poolwatch.rules.local import History, Series
from poolwatch.rules.promql import Query

pytestmark = [
    pytest.mark.integration,
]

STEP_S = 15
#: promtool input series: labels -> values ('_' missing, 'stale' a stale marker)
SERIES = {
    'c_total{node="n1", pool="p"}': "0+15x20 300 310 320 5+5x20",  # a counter reset at 21
    'c_total{node="n2", pool="p"}': "100+7x45",
    'c_total{node="n3", pool="q"}': "0+1x10 stale",  # goes stale at 165 s
    'g{node="n1", pool="p", d="0"}': "0.5 0.9 0.95 0.2 0.97 0.99 0.99 0.1 0.98 0.99x30",
    'g{node="n1", pool="p", d="1"}': "0.1+0.02x45",
    'g{node="n2", pool="p", d="0"}': "1 _ _ 3 _x10 4 4 _x5 7x20",
    'g{node="n3", pool="q", d="0"}': "0.3x10",  # last sample at 150 s: gone at 450 s (lookback)
    'h{node="n1"}': "10x45",
    'info{node="n1", team="a"}': "1x45",
    'info{node="n2", team="b"}': "1x45",
    'h{node="n2"}': "20x45",
}
EXPRS = [
    "rate(c_total[1m])",
    "increase(c_total[5m])",
    "floor(increase(c_total[2m]))",
    "irate(c_total[1m])",
    "delta(g[2m])",
    "idelta(g[1m])",
    "avg_over_time(g[3m])",
    "max_over_time(g[2m]) > 0.9",
    "min_over_time(g[2m])",
    "sum_over_time(g[1m])",
    "count_over_time(g[5m])",
    "last_over_time(g[10m])",
    "stddev_over_time(g[4m])",
    "changes(g[5m])",
    "resets(c_total[10m])",
    "deriv(g[5m])",
    "predict_linear(g[5m], 3600)",
    "avg_over_time((g > bool 0.9)[5m:1m]) * 100 > 50",
    "avg_over_time((g > bool 0.9)[10m:1m]) * 100",
    "g > 0.9",
    "g >= bool 0.99",
    "0.5 < g",
    "g * 100",
    "1 - g",
    "-g",
    "abs(-g)",
    "clamp_max(g, 0.5)",
    "sum by (node) (g)",
    "avg by (node) (floor(g * 4))",  # exact: promtool loads series in random order
    "max without (d) (g)",
    "min(g)",
    "count by (pool) (g)",
    "sum(rate(c_total[2m])) by (pool) > 0",
    "sum by (node) (g) / on(node) h",
    "sum by (node) (g) + ignoring(pool) h",
    "g and on(node) h",
    'g unless on(node) h{node="n1"}',
    "h or g",
    'absent(g{node="none", pool="p"})',
    'absent(g{node="n1"})',
    "g offset 2m",
    "rate(c_total[1m] offset 1m)",
    'g{node=~"n[12]", d!="1"}',
    'g{pool!~"q|r"} > bool 0.5',
    "vector(1) + 2",
    'label_replace(h, "host", "node-$1", "node", "n(.*)")',
    'label_replace(g, "pool", "", "pool", "q")',
    'label_replace(g, "x", "${1}y$$z$2", "node", "(n)([12])")',
    'label_join(g, "id", "/", "node", "d", "missing")',
    "g * on(node) group_left(team) info",
    "info * on(node) group_right(team) g",
    "g > bool on(node) group_left h / 20",
    "g > on(node) group_left(team) (info * 0.5)",
    "quantile_over_time(0.5, g[5m])",
    "quantile_over_time(0.9, c_total[3m])",
    "quantile by (pool) (0.75, g)",
    "topk(1, h)",
    "bottomk by (node) (1, h)",
    "sum(g) > bool 100",
]
EVAL_TIMES = [150, 240, 330, 480, 675]


def history() -> History:
    h = History()
    for spec, values in SERIES.items():
        name, _, rest = spec.partition("{")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', rest)) | {"__name__": name}
        s = Series(labels)
        for i, v in enumerate(expand(values)):
            if v is not None:
                s.append(i * STEP_S * 1000.0, v)
        h._add(name, s)
    return h


def _labels(ls: dict[str, str]) -> str:
    name = ls.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(ls.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


def test_local_promql_matches_promtool(tmp_path: Path) -> None:
    h = history()
    tests = []
    for expr in EXPRS:
        q = Query.parse(expr)
        for t in EVAL_TIMES:
            got = q.eval(h, t * 1000)
            tests.append({
                "expr": expr, "eval_time": f"{t}s",
                "exp_samples": [{"labels": _labels(ls), "value": v}
                                for ls, v in got],
            })  # fmt: skip
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    doc = {
        "rule_files": ["empty.yaml"],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": f"{STEP_S}s",
            "input_series": [{"series": s, "values": v} for s, v in SERIES.items()],
            "promql_expr_test": tests,
        }],
    }  # fmt: skip
    path = tmp_path / "promql-test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cmd = [pinned_tool("promtool"), "test", "rules", str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert sum(1 for t in tests if t["exp_samples"]) > len(tests) * 0.6  # not vacuous
