"""The subset of PromQL a threshold rule needs, evaluated over an in-memory history.

The expression is parsed by `promql_parser` (the Rust port of Prometheus' parser) once, and its
AST turned into a small tree of plan nodes (`plan`); evaluation walks that tree, never the parser's
objects. Anything outside the subset raises `Unsupported` with the reason at plan time, so the
engine refuses the rule when the files load rather than failing at every evaluation.

Supported, with Prometheus 3's semantics (checked value for value against Prometheus 3.16):
* selectors with = != =~ !~ matchers (RE2 regular expressions, anchored, `.` matching a newline,
  as Prometheus compiles them) and `offset`; the 5-minute lookback, left-open (a sample exactly
  5 minutes old is gone); a stale series (one that vanished from its target, or whose target is
  down) has no value, while a sample whose value is NaN is a value like any other;
* range selectors `[d]` and subqueries `(EXPR)[d:step]`, both left-open (a sample exactly at
  `t - d` is outside), with Prometheus' absolute step alignment; `rate`, `increase`, `delta`
  (extrapolated as Prometheus 3 does), `irate`, `idelta`, `deriv`, `predict_linear`, `changes`,
  `resets` and `avg|min|max|sum|count|last|present|stddev|stdvar_over_time`;
* `sum avg min max count group stddev stdvar quantile topk bottomk` with `by`/`without`, and
  `quantile_over_time`;
* arithmetic and comparisons (with `bool`) between scalars and vectors, one-to-one vector matching
  with `on`/`ignoring`, `and`/`or`/`unless`; `__name__` is dropped where Prometheus drops it;
* `abs ceil floor round sqrt exp ln log2 log10 clamp clamp_min clamp_max absent
  absent_over_time time vector scalar`.
`group_left`/`group_right` with included labels, `label_replace`/`label_join`. `sum`, `avg`,
`sum_over_time`, `avg_over_time` use Prometheus' compensated (Kahan-Neumaier) summation.
Not supported (refused when the rule loads, with the reason): `count_values`, `limitk`,
`limit_ratio`, fill modifiers in vector matching, native histograms, `@`, `round` with a second
argument, and the remaining functions.

Times are integer milliseconds, as in Prometheus' TSDB, so range boundaries compare exactly.
Staleness is Prometheus' own stale marker (a NaN with a particular bit pattern, `STALE`), so an
exporter's NaN is kept and compared like any number.

The package, one module per kind of step:
* `base`: times, the stale marker, label sets, value types, errors, the plan node;
* `planner`: parse and plan (`Query`, `plan`), the entry point;
* `selectors`: instant and range selectors, subqueries (the reads of the history);
* `functions`: the functions (a new function goes there; its docstring says where);
* `aggregation`: the aggregation operators;
* `binary`: binary operators and vector matching, unary minus;
* `floats`: compensated sums, means and quantiles shared by functions and aggregations.
"""

from __future__ import annotations

from .base import (
    LOOKBACK_MS,
    STALE,
    STALE_BITS,
    Ctx,
    EvalError,
    History,
    Labels,
    LabelSet,
    Matrix,
    Node,
    Points,
    Series,
    Unsupported,
    Vector,
    compile_regex,
    is_stale,
)
from .planner import Query, plan

__all__ = [
    "LOOKBACK_MS",
    "STALE",
    "STALE_BITS",
    "Ctx",
    "EvalError",
    "History",
    "LabelSet",
    "Labels",
    "Matrix",
    "Node",
    "Points",
    "Query",
    "Series",
    "Unsupported",
    "Vector",
    "compile_regex",
    "is_stale",
    "plan",
]
