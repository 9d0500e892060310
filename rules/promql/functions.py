"""PromQL functions: the `*_over_time` family, rates and deltas, regressions, per-sample math,
`clamp*`, `absent*`, `time`/`vector`/`scalar`, `label_replace` and `label_join`.

A new function goes here: a range function that reduces each series' samples to one value
is an entry of `_OVER_TIME`; a per-sample one an entry of `_MATH`; any other a name in
`Call.__init__`'s `known` and its branch in `Call.eval` (or `Call._range`). Anything not
named there is refused when the rule loads. List a new function in the package docstring
(`rules/promql/__init__.py`) and in docs/rules.md too."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import promql_parser as pp

from . import planner
from .base import (
    Ctx,
    EvalError,
    Labels,
    Node,
    Unsupported,
    Vector,
    _drop_name,
    compile_regex,
)
from .floats import _kahan_inc, _kahan_mean, _quantile
from .selectors import RangeSelector, Subquery


def _extrapolated(rng: int, t: int, ts: list[float], vs: list[float], counter: bool,
                  rate: bool) -> float | None:  # fmt: skip
    """promql/functions.go extrapolatedRate (Prometheus 3): the gap to either end of the
    range is extrapolated when under 1.1 average sample intervals, else half an interval; a
    counter is not extrapolated below zero. The factor is computed before it multiplies, in
    Go's order, so the result is the same float."""
    if len(ts) < 2:
        return None
    range_start, range_end = t - rng, t
    result = vs[-1] - vs[0]
    if counter:
        prev = vs[0]
        for v in vs[1:]:
            if v < prev:
                result += prev
            prev = v
    to_start = (ts[0] - range_start) / 1000
    to_end = (range_end - ts[-1]) / 1000
    sampled = (ts[-1] - ts[0]) / 1000
    average = sampled / (len(ts) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if counter:
        to_zero = to_start
        if result > 0 and vs[0] >= 0:
            to_zero = sampled * (vs[0] / result)
        if to_zero < to_start:
            to_start = to_zero
    if to_end >= threshold:
        to_end = average / 2
    factor = 1.0
    if sampled != 0:
        factor = (sampled + to_start + to_end) / sampled
    if rate:
        factor /= rng / 1000
    return result * factor


def _instant_delta(ts: list[float], vs: list[float], rate: bool) -> float | None:
    if len(ts) < 2:
        return None
    prev, last = vs[-2], vs[-1]
    result = last - prev if not (rate and last < prev) else last
    if not rate:
        return result
    interval = (ts[-1] - ts[-2]) / 1000
    return None if interval == 0 else result / interval


def _regression(ts: list[float], vs: list[float], at: float) -> tuple[float, float] | None:
    """promql linearRegression (Kahan sums): (slope, intercept), times relative to `at` (ms)."""
    if len(ts) < 2:
        return None
    n = sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    const = True
    first = vs[0]
    for x_ms, y in zip(ts, vs, strict=True):
        if const and y != first:
            const = False
        x = (x_ms - at) / 1e3
        n += 1.0
        sx, cx = _kahan_inc(x, sx, cx)
        sy, cy = _kahan_inc(y, sy, cy)
        sxy, cxy = _kahan_inc(x * y, sxy, cxy)
        sx2, cx2 = _kahan_inc(x * x, sx2, cx2)
    if const:
        return (math.nan, math.nan) if math.isinf(first) else (0.0, first)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = cov / var
    return slope, sy / n - slope * sx / n


def _kahan_sum(vs: list[float]) -> float:
    """sum_over_time (starts from 0, returns an infinite sum as it is)."""
    total = c = 0.0
    for v in vs:
        total, c = _kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _go_min(vs: list[float]) -> float:
    """min_over_time: a NaN is replaced by any later value (NaN only when all are NaN)."""
    total = sum(vs)
    if total == total:  # no NaN: the built-in is the same and much faster
        return min(vs)
    out = vs[0]
    for v in vs:
        if v < out or out != out:
            out = v
    return out


def _go_max(vs: list[float]) -> float:
    total = sum(vs)
    if total == total:
        return max(vs)
    out = vs[0]
    for v in vs:
        if v > out or out != out:
            out = v
    return out


def _changes(vs: list[float]) -> float:
    """changes(): NaN followed by NaN is no change."""
    return float(sum(1 for a, b in itertools.pairwise(vs) if a != b and not (a != a and b != b)))


def _kahan_variance(vs: list[float]) -> float:
    """stdvar_over_time (Kahan-summed mean and sum of squares)."""
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


_OVER_TIME: dict[str, Callable[[list[float]], float]] = {
    "avg_over_time": _kahan_mean,
    "min_over_time": _go_min,
    "max_over_time": _go_max,
    "sum_over_time": _kahan_sum,
    "count_over_time": lambda vs: float(len(vs)),
    "last_over_time": lambda vs: vs[-1],
    "present_over_time": lambda vs: 1.0,
    "stddev_over_time": lambda vs: math.sqrt(_kahan_variance(vs)),
    "stdvar_over_time": _kahan_variance,
    "changes": _changes,
    "resets": lambda vs: float(sum(1 for a, b in itertools.pairwise(vs) if b < a)),
}
_RATES = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}
_MATH: dict[str, Callable[[float], float]] = {
    "abs": abs, "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "round": lambda v: float(math.floor(v + 0.5)) if math.isfinite(v) else v,
    "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan,
    "exp": lambda v: _go_exp(v),
    "ln": lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log2": lambda v: math.log2(v) if v > 0 else (-math.inf if v == 0 else math.nan),
    "log10": lambda v: math.log10(v) if v > 0 else (-math.inf if v == 0 else math.nan),
}  # fmt: skip


def _go_exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


_NAME = re.compile(r"[A-Za-z0-9_]+")


def _go_expand(template: str, m: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}; $$ is a dollar; an unknown group is empty;
    a malformed reference keeps its $ as text."""
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if template.startswith("${", i):
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end != -1 else ""
            if end == -1 or not _NAME.fullmatch(name):
                out.append("$")
                i += 1
                continue
            i = end + 1
        else:
            nm = _NAME.match(template, i + 1)
            if nm is None:
                out.append("$")
                i += 1
                continue
            name, i = nm.group(0), nm.end()
        try:
            group = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:  # no such group
            group = None
        out.append(group or "")
    return "".join(out)


class LabelReplace(Node):
    """label_replace(v, dst, replacement, src, regex) and label_join(v, dst, sep, src...)."""

    def __init__(self, e: Any) -> None:
        self.name = e.func.name
        self.inner = planner.plan(e.args[0])
        strings = []
        for a in e.args[1:]:
            if not isinstance(a, pp.StringLiteral):
                raise Unsupported(f"{self.name}() with a non-literal argument")
            strings.append(a.val)
        self.dst = strings[0]
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", self.dst):
            raise Unsupported(f"{self.name}(): invalid destination label {self.dst!r}")
        if self.name == "label_replace":
            self.replacement, self.src = strings[1], strings[2]
            self.regex = compile_regex(strings[3])
        else:
            self.sep, self.srcs = strings[1], strings[2:]

    def children(self) -> Iterable[Node]:
        return (self.inner,)

    def eval(self, ctx: Ctx, t: int) -> Vector:
        out: Vector = []
        seen: set[Any] = set()
        for ls, v in self.inner.eval(ctx, t):
            if self.name == "label_replace":
                m = self.regex.match(ls.get(self.src, ""))
                if m is None:
                    new = ls
                else:
                    new = dict(ls)
                    value = _go_expand(self.replacement, m)
                    if value:
                        new[self.dst] = value
                    else:
                        new.pop(self.dst, None)
            else:
                new = dict(ls)
                value = self.sep.join(ls.get(src, "") for src in self.srcs)
                if value:
                    new[self.dst] = value
                else:
                    new.pop(self.dst, None)
            key = tuple(sorted(new.items()))
            if key in seen:
                raise EvalError("vector cannot contain metrics with the same labelset")
            seen.add(key)
            out.append((new, v))
        return out


class Call(Node):
    def __init__(self, e: Any) -> None:
        self.name = name = e.func.name
        known = {*_OVER_TIME, *_RATES, *_MATH, "irate", "idelta", "deriv", "predict_linear",
                 "clamp", "clamp_min", "clamp_max", "absent", "absent_over_time", "time",
                 "vector", "scalar", "quantile_over_time"}  # fmt: skip
        if name not in known:
            raise Unsupported(f"the function {name}()")
        self.args = [planner.plan(a) for a in e.args]
        if name == "round" and len(self.args) > 1:
            raise Unsupported("round() with a 'to nearest' argument")
        self.kind = {"time": "scalar", "scalar": "scalar"}.get(name, "vector")
        data = self.args[1] if name == "quantile_over_time" else (self.args or [None])[0]
        if name == "last_over_time" and data is not None:
            self.unique = data.unique  # keeps the name
        elif name not in ("absent", "absent_over_time", "vector", "time", "scalar"):
            self.check = data is not None and not data.unique
        self.absent_labels: Labels = {}
        if name in ("absent", "absent_over_time"):
            arg = e.args[0]
            vs = arg.vector_selector if isinstance(arg, pp.MatrixSelector) else arg
            if isinstance(vs, pp.VectorSelector):
                self.absent_labels = _absent_labels(vs)

    def children(self) -> Iterable[Node]:
        return self.args

    def eval(self, ctx: Ctx, t: int) -> Any:
        name, args = self.name, self.args
        if name == "time":
            return t / 1000.0
        if name == "vector":
            return [({}, args[0].eval(ctx, t))]
        if name == "scalar":
            vec = args[0].eval(ctx, t)
            return vec[0][1] if len(vec) == 1 else math.nan
        if name in ("absent", "absent_over_time"):
            return [] if args[0].eval(ctx, t) else [(dict(self.absent_labels), 1.0)]
        if name in _MATH:
            fn = _MATH[name]
            return [(_drop_name(ls), fn(v)) for ls, v in args[0].eval(ctx, t)]
        if name.startswith("clamp"):
            vec = args[0].eval(ctx, t)
            lo, hi = -math.inf, math.inf
            if name == "clamp":
                lo, hi = args[1].eval(ctx, t), args[2].eval(ctx, t)
                if lo > hi:
                    return []
            elif name == "clamp_min":
                lo = args[1].eval(ctx, t)
            else:
                hi = args[1].eval(ctx, t)
            # Go's math.Max(lo, math.Min(hi, v)): a NaN anywhere gives NaN
            return [(_drop_name(ls), _clamp(v, lo, hi)) for ls, v in vec]
        return self._range(ctx, t)

    def _range(self, ctx: Ctx, t: int) -> Vector:
        name, arg = self.name, self.args[0]
        if name == "quantile_over_time":
            q = arg.eval(ctx, t)
            return [(_drop_name(ls), _quantile(q, vs)) for ls, _, vs in self.args[1].eval(ctx, t)]
        matrix = arg.eval(ctx, t)
        out: Vector = []
        rng = getattr(arg, "range", 0)
        keep_name = name == "last_over_time"
        if name in _OVER_TIME:
            fn = _OVER_TIME[name]
            for ls, _, vs in matrix:
                out.append((ls if keep_name else _drop_name(ls), fn(vs)))
            return out
        for ls, ts, vs in matrix:
            value: float | None
            if name in _RATES:
                counter, rate = _RATES[name]
                value = _extrapolated(rng, t - _offset(arg), ts, vs, counter, rate)
            elif name in ("irate", "idelta"):
                value = _instant_delta(ts, vs, name == "irate")
            elif name == "deriv":
                fit = _regression(ts, vs, ts[0])
                value = None if fit is None else fit[0]
            else:  # predict_linear
                fit = _regression(ts, vs, float(t))
                ahead = self.args[1].eval(ctx, t)
                value = None if fit is None else fit[1] + fit[0] * ahead
            if value is not None:
                out.append((_drop_name(ls), value))
        return out


def _go_max2(x: float, y: float) -> float:
    """Go's math.Max: +Inf wins over NaN, NaN over any other number, +0 over -0."""
    if x == math.inf or y == math.inf:
        return math.inf
    if x != x or y != y:
        return math.nan
    if x == 0 and y == 0:
        return x if math.copysign(1, x) > 0 else y
    return x if x > y else y


def _go_min2(x: float, y: float) -> float:
    """Go's math.Min: -Inf wins over NaN, NaN over any other number, -0 over +0."""
    if x == -math.inf or y == -math.inf:
        return -math.inf
    if x != x or y != y:
        return math.nan
    if x == 0 and y == 0:
        return x if math.copysign(1, x) < 0 else y
    return x if x < y else y


def _clamp(v: float, lo: float, hi: float) -> float:
    """math.Max(lo, math.Min(hi, v)), special cases included."""
    return _go_max2(lo, _go_min2(hi, v))


def _absent_labels(vs: Any) -> Labels:
    """createLabelsForAbsentFunction as Prometheus 3 answers: a label named by exactly one
    matcher, an `=`, is set to its value; a label named by two matchers or more (of any
    kind: `x{job="a", job="b"}`, `x{job!="a", job="b"}`) is left out."""
    matchers = [m for m in vs.matchers.matchers if m.name != "__name__"]
    count: dict[str, int] = {}
    for m in matchers:
        count[m.name] = count.get(m.name, 0) + 1
    return {m.name: m.value for m in matchers
            if m.op == pp.MatchOp.Equal and count[m.name] == 1}  # fmt: skip


def _offset(node: Node) -> int:
    if isinstance(node, RangeSelector):
        return node.sel.offset
    if isinstance(node, Subquery):
        return node.offset
    return 0
