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
"""

from __future__ import annotations

import itertools
import math
import re
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import promql_parser as pp
import re2

LOOKBACK_MS = 300_000
#: Prometheus' stale marker (value.StaleNaN): a NaN that no arithmetic produces
STALE_BITS = 0x7FF0000000000002
STALE: float = struct.unpack("<d", struct.pack("<Q", STALE_BITS))[0]
_RE2 = re2.Options()
_RE2.log_errors = False


def is_stale(v: float) -> bool:
    """Whether `v` is the stale marker (any other NaN is a value)."""
    return v != v and struct.pack("<d", v) == _STALE_BYTES


_STALE_BYTES = struct.pack("<d", STALE)


def compile_regex(value: str) -> Any:
    """A PromQL regular expression as Prometheus 3 compiles it: RE2 syntax, anchored at both
    ends, `.` matching a newline. Unsupported when RE2 refuses it."""
    try:
        return re2.compile(f"^(?s:{value})$", _RE2)
    except re2.error as err:
        msg = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise Unsupported(f"regular expression {value!r}: {msg}") from None


Labels = dict[str, str]
Vector = list[tuple[Labels, float]]
Points = tuple[list[float], list[float]]  # (timestamps ms, values)
Matrix = list[tuple[Labels, list[float], list[float]]]


class Unsupported(ValueError):
    """The expression uses PromQL outside the local subset (the message says what)."""


class EvalError(ValueError):
    """The expression cannot be evaluated on this data (e.g. duplicate series in a match)."""


class Series(Protocol):
    labels: Labels
    ts: Sequence[float]
    vs: Sequence[float]


class History(Protocol):
    def series_of(self, name: str) -> tuple[int, Sequence[Series]]:
        """(a version that changes whenever the set of series changes, the series)."""
        ...


def _ms(td: Any) -> int:
    return 0 if td is None else round(td.total_seconds() * 1000)


class LabelSet(dict):  # type: ignore[type-arg]
    """A stored series' labels, remembering its label set without __name__ once computed (a
    function or an operator drops the name every evaluation; the copy is made once). Neither
    is ever changed in place: whoever changes labels copies them first."""

    __slots__ = ("noname",)


def _drop_name(labels: Labels) -> Labels:
    if "__name__" not in labels:
        return labels
    cached = getattr(labels, "noname", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out = dict(labels)
    del out["__name__"]
    if isinstance(labels, LabelSet):
        labels.noname = out
    return out


@dataclass
class Ctx:
    history: History
    cache: dict[Any, Any] = field(default_factory=dict)  # per evaluation: selector results


# -- plan nodes --------------------------------------------------------------------------------


class Node:
    kind = "vector"  # "scalar" | "vector" | "matrix"
    #: the output's label sets stay distinct when __name__ is dropped
    unique = True
    #: this node drops __name__ from an output that may not be unique: Prometheus then checks
    #: for "vector cannot contain metrics with the same labelset", and so must we (`Distinct`)
    check = False

    def needs(self, extra: int, out: dict[str, int]) -> None:
        """Record, per metric name, how much history (ms before t) an evaluation reads."""
        for child in self.children():
            child.needs(extra, out)

    def children(self) -> Iterable[Node]:
        return ()

    def eval(self, ctx: Ctx, t: int) -> Any:
        raise NotImplementedError


class Num(Node):
    kind = "scalar"

    def __init__(self, value: float) -> None:
        self.value = value

    def eval(self, ctx: Ctx, t: int) -> float:
        return self.value


def _matcher(m: Any) -> Callable[[Labels], bool]:
    name, value, op = m.name, m.value, m.op
    if op == pp.MatchOp.Equal:
        return lambda ls: ls.get(name, "") == value
    if op == pp.MatchOp.NotEqual:
        return lambda ls: ls.get(name, "") != value
    rx = compile_regex(value)
    if op == pp.MatchOp.Re:
        return lambda ls: rx.match(ls.get(name, "")) is not None
    return lambda ls: rx.match(ls.get(name, "")) is None


class Selector(Node):
    def __init__(self, vs: Any) -> None:
        if vs.at is not None:
            raise Unsupported("the @ modifier")
        if vs.matchers.or_matchers:
            raise Unsupported("'or' between matchers")
        matchers = list(vs.matchers.matchers)
        self.name = vs.name or next((m.value for m in matchers if m.name == "__name__"
                                     and m.op == pp.MatchOp.Equal), None)  # fmt: skip
        if self.name is None:
            raise Unsupported("a selector without a metric name")
        rest = [m for m in matchers if not (m.name == "__name__" and m.value == self.name
                                            and m.op == pp.MatchOp.Equal)]  # fmt: skip
        self.preds = [_matcher(m) for m in rest]
        self.equal = {m.name: m.value for m in rest if m.op == pp.MatchOp.Equal}
        self.offset = _ms(vs.offset)
        self.key = str(vs)
        self._cache: tuple[int, list[Series]] | None = None

    def needs(self, extra: int, out: dict[str, int]) -> None:
        need = extra + self.offset + LOOKBACK_MS
        out[self.name] = max(out.get(self.name, 0), need)

    def select(self, history: History) -> list[Series]:
        """The matching series, re-filtered only when the metric's set of series changed."""
        version, series = history.series_of(self.name)
        if self._cache is None or self._cache[0] != version:
            preds = self.preds
            by_label = getattr(history, "by_label", None)
            key = next(((k, v) for k, v in self.equal.items() if v), None)
            if by_label is not None and key is not None:
                series = by_label(self.name, *key)  # the inverted index, as the TSDB has
            # in order of first appearance, as Prometheus' head returns them (by series id)
            picked = [s for s in series if all(p(s.labels) for p in preds)]
            self._cache = (version, picked)
        return self._cache[1]

    def eval(self, ctx: Ctx, t: int) -> Vector:
        key = (self.key, t)  # rules that select the same series at the same time share it
        hit = ctx.cache.get(key)
        if hit is not None:
            return hit
        t -= self.offset
        low = t - LOOKBACK_MS
        series = self.select(ctx.history)
        newest = getattr(ctx.history, "newest", None)
        if newest is not None and newest <= t:
            # no stored sample is newer than t, so each series' value is its last sample:
            # one comprehension instead of the loop below (the engine's usual case)
            out = [(s.labels, v) for s in series  # type: ignore[attr-defined]
                   if low < s.last_t and ((v := s.last_v) == v or not is_stale(v))]  # fmt: skip
            ctx.cache[key] = out
            return out
        out = []
        append = out.append
        for s in series:
            ts = s.ts
            if not ts:
                continue
            last = ts[-1]
            if last <= t:  # the usual case: the newest sample
                if last <= low:  # left-open: a sample exactly 5 minutes old is gone
                    continue
                v = s.vs[-1]
            else:
                i = bisect_right(ts, t) - 1
                if i < 0 or ts[i] <= low:
                    continue
                v = s.vs[i]
            if v == v or not is_stale(v):
                append((s.labels, v))
        ctx.cache[key] = out
        return out


class RangeSelector(Node):
    kind = "matrix"

    def __init__(self, ms: Any) -> None:
        self.sel = Selector(ms.vector_selector)
        self.range = _ms(ms.range)

    def needs(self, extra: int, out: dict[str, int]) -> None:
        need = extra + self.sel.offset + self.range
        out[self.sel.name] = max(out.get(self.sel.name, 0), need)

    def eval(self, ctx: Ctx, t: int) -> Matrix:
        t -= self.sel.offset
        low = t - self.range
        out: Matrix = []
        for s in self.sel.select(ctx.history):
            ts = s.ts
            lo = bisect_right(ts, low)  # left-open: a sample exactly at t - range is outside
            hi = len(ts) if ts and ts[-1] <= t else bisect_right(ts, t)
            if lo >= hi:
                continue
            tt, vv = ts[lo:hi], s.vs[lo:hi]  # copies made in C (arrays), read-only below
            total = sum(vv)  # NaN only when a NaN (or inf - inf) is in the window: rare
            if total != total and any(v != v for v in vv):
                # stale markers are not samples; other NaNs are
                keep = [i for i, v in enumerate(vv) if not is_stale(v)]
                tt, vv = [tt[i] for i in keep], [vv[i] for i in keep]
            if tt:
                out.append((s.labels, tt, vv))
        return out


class Subquery(Node):
    kind = "matrix"

    def __init__(self, e: Any) -> None:
        if e.at is not None:
            raise Unsupported("the @ modifier")
        self.inner = plan(e.expr)
        if self.inner.kind != "vector":
            raise Unsupported("a subquery of a scalar")
        self.unique = self.inner.unique
        self.range, self.offset = _ms(e.range), _ms(e.offset)
        self.step = _ms(e.step)
        if self.step <= 0:
            raise Unsupported("a subquery without a step (the default is the global interval)")

    def children(self) -> Iterable[Node]:
        return (self.inner,)

    def needs(self, extra: int, out: dict[str, int]) -> None:
        self.inner.needs(extra + self.offset + self.range, out)

    def eval(self, ctx: Ctx, t: int) -> Matrix:
        end = t - self.offset
        begin = end - self.range
        start = self.step * (begin // self.step)
        if start <= begin:  # left-open, as in Prometheus 3
            start += self.step
        series: dict[tuple[tuple[str, str], ...], tuple[Labels, list[float], list[float]]] = {}
        for at in range(start, end + 1, self.step):
            for labels, v in self.inner.eval(ctx, at):
                key = tuple(sorted(labels.items()))
                entry = series.get(key)
                if entry is None:
                    entry = series[key] = (labels, [], [])
                entry[1].append(float(at))
                entry[2].append(v)
        return list(series.values())


# -- functions ---------------------------------------------------------------------------------


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


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """util/kahansum.Inc (Neumaier's variant); the compensation resets once the sum is
    infinite."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


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


def _kahan_mean(vs: list[float]) -> float:
    """avg_over_time and the avg aggregation as Prometheus 3 computes them: a compensated
    sum divided by the count, switching to a compensated incremental mean only when the sum
    overflows."""
    total, c = vs[0], 0.0
    mean = 0.0
    incremental = False
    count = 1.0
    for v in vs[1:]:
        count += 1
        if not incremental:
            new_total, new_c = _kahan_inc(v, total, c)
            if not math.isinf(new_total):
                total, c = new_total, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = _kahan_inc(v / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def _kahan_sum(vs: list[float]) -> float:
    """sum_over_time (starts from 0, returns an infinite sum as it is)."""
    total = c = 0.0
    for v in vs:
        total, c = _kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _sum(vs: list[float]) -> float:
    """The sum aggregation (starts from the first value; adds the compensation at the end)."""
    total, c = vs[0], 0.0
    for v in vs[1:]:
        total, c = _kahan_inc(v, total, c)
    return total + c


def _nan_first(v: float) -> tuple[bool, float]:
    """Sort key of Go's vectorByValueHeap: NaN below every number."""
    return (v == v, v)


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


def _variance(vs: list[float]) -> float:
    """The stdvar aggregation."""
    count = mean = aux = 0.0
    for v in vs:
        count += 1
        delta = v - mean
        mean += delta / count
        aux += delta * (v - mean)
    return aux / count


def _kahan_variance(vs: list[float]) -> float:
    """stdvar_over_time (Kahan-summed mean and sum of squares)."""
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _quantile(q: float, vs: list[float]) -> float:
    """promql quantile(): linear interpolation between the two nearest ranks; NaN for an
    empty set or a NaN φ; NaN values sort below every number."""
    if not vs or q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(vs, key=_nan_first)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    if weight == 0:
        return ordered[int(lower)]
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


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
        self.inner = plan(e.args[0])
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
        self.args = [plan(a) for a in e.args]
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


# -- aggregation -------------------------------------------------------------------------------

_AGGS = (
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "quantile",
    "topk",
    "bottomk",
)


class Aggregate(Node):
    def __init__(self, e: Any) -> None:
        self.op = str(e.op)
        if self.op not in _AGGS:
            raise Unsupported(f"the aggregation {self.op}")
        self.inner = plan(e.expr)
        self.param = plan(e.param) if e.param is not None else None
        if self.param is not None and self.param.kind != "scalar":
            raise Unsupported(f"a non-scalar parameter of {self.op}")
        mod = e.modifier
        self.without = mod is not None and mod.type == pp.AggModifierType.Without
        self.labels = list(mod.labels) if mod is not None else []

    def children(self) -> Iterable[Node]:
        return (self.inner,) if self.param is None else (self.inner, self.param)

    def eval(self, ctx: Ctx, t: int) -> Vector:
        groups: dict[tuple[str, ...], tuple[Labels, list[float]]] = {}
        by, without = self.labels, self.without
        drop = {*by, "__name__"}
        samples = self.inner.eval(ctx, t)
        if self.op in ("topk", "bottomk"):
            return self._k(samples, self.param.eval(ctx, t))  # type: ignore[union-attr]
        one = by[0] if len(by) == 1 and not without else None
        for ls, v in samples:
            if one is not None:  # the common `by (node)`: no tuple to build
                key = ls.get(one, "")  # type: ignore[assignment]
                g = groups.get(key)  # type: ignore[arg-type]
                if g is None:
                    groups[key] = ({one: key} if key else {}, [v])  # type: ignore[index]
                else:
                    g[1].append(v)
                continue
            if without:
                out = {k: x for k, x in ls.items() if k not in drop}
                key = tuple(sorted(out.items()))  # type: ignore[arg-type]
            else:
                key = tuple(ls.get(k, "") for k in by)
                out = {k: x for k, x in zip(by, key, strict=True) if x}
            g = groups.get(key)  # type: ignore[arg-type]
            if g is None:
                groups[key] = (out, [v])  # type: ignore[index]
            else:
                g[1].append(v)
        op = self.op
        result: Vector = []
        for out, vs in groups.values():
            if op == "sum":
                value = _sum(vs)
            elif op == "avg":
                value = _kahan_mean(vs)
            elif op == "min":
                value = vs[0]
                for v in vs[1:]:
                    if value > v or value != value:
                        value = v
            elif op == "max":
                value = vs[0]
                for v in vs[1:]:
                    if value < v or value != value:
                        value = v
            elif op == "count":
                value = float(len(vs))
            elif op == "group":
                value = 1.0
            elif op == "stdvar":
                value = _variance(vs)
            elif op == "quantile":
                value = _quantile(self.param.eval(ctx, t), vs)  # type: ignore[union-attr]
            else:
                value = math.sqrt(_variance(vs))
            result.append((out, value))
        return result

    def _k(self, samples: Vector, k: float) -> Vector:
        """topk/bottomk: the k largest (smallest) samples per group, their labels kept whole;
        NaN ranks last. Which of several equal samples is kept is unspecified, as in
        Prometheus."""
        if k != k:
            raise EvalError("Parameter value is NaN")
        if k < 1:
            return []
        if k >= 2**63:
            raise EvalError(f"Scalar value {k} overflows int64")
        n = int(min(k, len(samples)))
        by, without = self.labels, self.without
        groups: dict[tuple[Any, ...], list[tuple[Labels, float]]] = {}
        for ls, v in samples:
            if without:
                key = tuple(
                    sorted((a, b) for a, b in ls.items() if a not in by and a != "__name__")
                )
            else:
                key = tuple(ls.get(a, "") for a in by)
            groups.setdefault(key, []).append((ls, v))
        top = self.op == "topk"
        out: Vector = []
        for members in groups.values():
            members.sort(key=lambda s: (s[1] != s[1], -s[1] if top else s[1]))
            out += members[:n]
        return out


# -- binary operators --------------------------------------------------------------------------

_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else (math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1, b)),  # noqa: E501
    "%": lambda a, b: _go_mod(a, b),
    "^": lambda a, b: _pow(a, b),
    "atan2": lambda a, b: _go_atan2(a, b),
}  # fmt: skip
_CMP: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}  # fmt: skip


def _xatan(x: float) -> float:
    """Go's math.xatan (Cephes), operation for operation: Go's Atan is pure Go on every
    platform, and libm's differs from it in the last place."""
    p0, p1, p2 = (
        -8.750608600031904122785e-01,
        -1.615753718733365076637e01,
        -7.500855792314704667340e01,
    )
    p3, p4 = -1.228866684490136173410e02, -6.485021904942025371773e01
    q0, q1, q2 = 2.485846490142306297962e01, 1.650270098316988542046e02, 4.328810604912902668951e02
    q3, q4 = 4.853903996359136964868e02, 1.945506571482613964425e02
    z = x * x
    z = (
        z
        * ((((p0 * z + p1) * z + p2) * z + p3) * z + p4)
        / (((((z + q0) * z + q1) * z + q2) * z + q3) * z + q4)
    )
    return x * z + x


def _go_atan(x: float) -> float:
    more_bits, tan3pio8 = 6.123233995736765886130e-17, 2.41421356237309504880
    if x == 0:
        return x
    sign, x = (1.0, x) if x > 0 else (-1.0, -x)
    if x <= 0.66:
        r = _xatan(x)
    elif x > tan3pio8:
        r = math.pi / 2 - _xatan(1 / x) + more_bits
    else:
        r = math.pi / 4 + _xatan((x - 1) / (x + 1)) + 0.5 * more_bits
    return sign * r


def _go_atan2(y: float, x: float) -> float:
    """Go's math.Atan2 (special cases, then Atan and the quadrant)."""
    if y != y or x != x:
        return math.nan
    if y == 0:
        return (
            math.copysign(0.0, y)
            if x >= 0 and math.copysign(1, x) > 0
            else math.copysign(math.pi, y)
        )
    if x == 0:
        return math.copysign(math.pi / 2, y)
    if math.isinf(x):
        if x > 0:
            return math.copysign(math.pi / 4, y) if math.isinf(y) else math.copysign(0.0, y)
        return math.copysign(3 * math.pi / 4, y) if math.isinf(y) else math.copysign(math.pi, y)
    if math.isinf(y):
        return math.copysign(math.pi / 2, y)
    q = _go_atan(y / x)
    if x < 0:
        return q + math.pi if q <= 0 else q - math.pi
    return q


def _go_mod(a: float, b: float) -> float:
    """Go's math.Mod: NaN for an infinite dividend, a zero or NaN divisor; `a` for an
    infinite divisor; otherwise C's fmod (the sign of the dividend)."""
    if b == 0 or math.isinf(a) or a != a or b != b:
        return math.nan
    if math.isinf(b):
        return a
    return math.fmod(a, b)


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2) != 0


def _pow(a: float, b: float) -> float:
    """Go's math.Pow, special cases included: an overflow keeps the sign of an odd power of
    a negative base ((-3)^1001 is -Inf), 0 to a negative power is ±Inf, a negative base to a
    fractional power is NaN."""
    if b == 0 or a == 1:
        return 1.0
    if a != a or b != b:
        return math.nan
    if a == 0 and b < 0:
        return math.copysign(math.inf, a) if _odd_integer(b) else math.inf
    try:
        return math.pow(a, b)
    except OverflowError:
        return -math.inf if a < 0 and _odd_integer(b) else math.inf
    except ValueError:  # a negative base and a fractional exponent
        return math.nan


class Binary(Node):
    def __init__(self, e: Any) -> None:
        self.op = str(e.op).lower()
        if self.op not in _ARITH and self.op not in _CMP and self.op not in ("and", "or", "unless"):
            raise Unsupported(f"the operator {self.op}")
        self.lhs, self.rhs = plan(e.lhs), plan(e.rhs)
        mod = e.modifier
        self.bool = bool(mod is not None and mod.return_bool)
        self.on: list[str] | None = None
        self.ignoring: list[str] = []
        self.card = "one"  # one-to-one; "left"/"right": group_left/group_right (many-to-one)
        self.include: list[str] = []  # group_x(labels): copied from the "one" side
        if mod is not None:
            fill = getattr(mod, "fill_values", None)
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise Unsupported("fill(), fill_left() and fill_right() in vector matching")
            if mod.card in (pp.VectorMatchCardinality.ManyToOne,
                            pp.VectorMatchCardinality.OneToMany):  # fmt: skip
                left = mod.card == pp.VectorMatchCardinality.ManyToOne
                self.card = "left" if left else "right"
                self.include = list(mod.group_labels or [])
            if mod.matching is not None:
                if mod.matching.type == pp.LabelModifierType.Include:
                    self.on = list(mod.matching.labels)
                else:
                    self.ignoring = list(mod.matching.labels)
        if self.lhs.kind == "scalar" and self.rhs.kind == "scalar":
            self.kind = "scalar"
        elif self.op in ("and", "unless"):
            self.unique = self.lhs.unique
        elif self.op == "or":
            # a right-hand series whose labels (name aside) equal a left-hand one's has the
            # same matching signature and is left out, so names never tell two apart
            self.unique = self.lhs.unique and self.rhs.unique
        elif self.lhs.kind == "scalar" or self.rhs.kind == "scalar":
            vec = self.rhs if self.lhs.kind == "scalar" else self.lhs
            if self.op in _CMP and not self.bool:
                self.unique = vec.unique  # a filter keeps the name
            else:
                self.check = not vec.unique
        for side in (self.lhs, self.rhs):
            if side.kind == "matrix":
                raise Unsupported("a range vector as an operand")

    def children(self) -> Iterable[Node]:
        return (self.lhs, self.rhs)

    def _sig(self, ls: Labels) -> tuple[tuple[str, str], ...]:
        if self.on is not None:
            return tuple((k, ls.get(k, "")) for k in self.on)
        ign = self.ignoring
        return tuple(sorted((k, v) for k, v in ls.items() if k != "__name__" and k not in ign))

    def eval(self, ctx: Ctx, t: int) -> Any:
        op = self.op
        lhs, rhs = self.lhs.eval(ctx, t), self.rhs.eval(ctx, t)
        if self.kind == "scalar":
            if op in _CMP:
                return 1.0 if _CMP[op](lhs, rhs) else 0.0
            return _ARITH[op](lhs, rhs)
        if op in ("and", "or", "unless"):
            return self._set(lhs, rhs)
        if self.lhs.kind == "scalar" or self.rhs.kind == "scalar":
            return self._scalar(lhs, rhs)
        return self._vectors(lhs, rhs)

    def _scalar(self, lhs: Any, rhs: Any) -> Vector:
        swap = self.lhs.kind == "scalar"
        vec, s = (rhs, lhs) if swap else (lhs, rhs)
        op, out = self.op, []
        if op in _CMP and not self.bool and not swap:  # `EXPR > 0.9`, the rule's own comparison
            if op == ">":
                return [(ls, v) for ls, v in vec if v > s]
            if op == "<":
                return [(ls, v) for ls, v in vec if v < s]
            if op == ">=":
                return [(ls, v) for ls, v in vec if v >= s]
            if op == "<=":
                return [(ls, v) for ls, v in vec if v <= s]
            if op == "==":
                return [(ls, v) for ls, v in vec if v == s]
            return [(ls, v) for ls, v in vec if v != s]
        if op in _CMP:
            cmp = _CMP[op]
            for ls, v in vec:
                keep = cmp(s, v) if swap else cmp(v, s)
                if self.bool:
                    out.append((_drop_name(ls), 1.0 if keep else 0.0))
                elif keep:
                    out.append((ls, v))
            return out
        fn = _ARITH[op]
        for ls, v in vec:
            out.append((_drop_name(ls), fn(s, v) if swap else fn(v, s)))
        return out

    def _vectors(self, lhs: Vector, rhs: Vector) -> Vector:
        """Vector matching as promql VectorBinop: nothing when either side is empty; the "one"
        side (rhs, or lhs with group_right) must be unique per signature; one-to-one, two
        samples of the other side may not match the same signature, and many-to-one, two
        results may not have the same labels. These checks come before a comparison filters,
        so a match that would be filtered out still counts."""
        if not lhs or not rhs:
            return []
        swap = self.card == "right"
        many, one = (rhs, lhs) if swap else (lhs, rhs)
        ones: dict[Any, tuple[Labels, float]] = {}
        for ls, v in one:
            sig = self._sig(ls)
            if sig in ones:
                side = "left" if swap else "right"
                raise EvalError(
                    f"found duplicate series for the match group on the {side} hand-side of "
                    "the operation; many-to-many matching not allowed: matching labels must be "
                    "unique on one side"
                )
            ones[sig] = (ls, v)
        out: Vector = []
        seen: set[Any] = set()
        op, cmp = self.op, self.op in _CMP
        one_to_one = self.card == "one"
        for ls, mv in many:
            sig = self._sig(ls)
            match = ones.get(sig)
            if match is None:
                continue
            ols, ov = match
            lv, rv = (ov, mv) if swap else (mv, ov)
            keep = True
            if cmp:
                keep = _CMP[op](lv, rv)
                value = (1.0 if keep else 0.0) if self.bool else lv
            else:
                value = _ARITH[op](lv, rv)
            labels = _drop_name(ls) if (not cmp or self.bool) else ls
            if one_to_one:
                if self.on is not None:
                    labels = {k: labels[k] for k in self.on if labels.get(k)}
                elif self.ignoring:
                    labels = {k: x for k, x in labels.items() if k not in self.ignoring}
                if sig in seen:
                    raise EvalError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )
                seen.add(sig)
            else:
                if self.include:
                    labels = dict(labels)
                    for name in self.include:
                        if ols.get(name):
                            labels[name] = ols[name]
                        else:
                            labels.pop(name, None)
                key = tuple(sorted(labels.items()))
                if key in seen:
                    raise EvalError(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                    )
                seen.add(key)
            if keep or self.bool:
                out.append((labels, value))
        return out

    def _set(self, lhs: Vector, rhs: Vector) -> Vector:
        if self.op == "or":
            sigs = {self._sig(ls) for ls, _ in lhs}
            return lhs + [(ls, v) for ls, v in rhs if self._sig(ls) not in sigs]
        sigs = {self._sig(ls) for ls, _ in rhs}
        want = self.op == "and"
        return [(ls, v) for ls, v in lhs if (self._sig(ls) in sigs) == want]


class Negate(Node):
    def __init__(self, e: Any) -> None:
        self.inner = plan(e.expr)
        self.kind = self.inner.kind
        if self.kind == "matrix":
            raise Unsupported("unary minus on a range vector")
        self.check = self.kind == "vector" and not self.inner.unique

    def children(self) -> Iterable[Node]:
        return (self.inner,)

    def eval(self, ctx: Ctx, t: int) -> Any:
        value = self.inner.eval(ctx, t)
        if self.kind == "scalar":
            return -value
        return [(_drop_name(ls), -v) for ls, v in value]


# -- planning ----------------------------------------------------------------------------------


class Distinct(Node):
    """Prometheus' check after a step that dropped __name__: two series left with the same
    labels are an error ("vector cannot contain metrics with the same labelset")."""

    def __init__(self, inner: Node) -> None:
        self.inner = inner
        self.kind = inner.kind

    def children(self) -> Iterable[Node]:
        return (self.inner,)

    def eval(self, ctx: Ctx, t: int) -> Any:
        out = self.inner.eval(ctx, t)
        if len({frozenset(ls.items()) for ls, _ in out}) != len(out):
            raise EvalError("vector cannot contain metrics with the same labelset")
        return out


def plan(e: Any) -> Node:
    """The plan of one parsed expression; Unsupported naming what is outside the subset."""
    node = _plan(e)
    return Distinct(node) if node.check else node


def _plan(e: Any) -> Node:
    if isinstance(e, pp.ParenExpr):
        return plan(e.expr)
    if isinstance(e, pp.NumberLiteral):
        return Num(float(e.val))
    if isinstance(e, pp.VectorSelector):
        return Selector(e)
    if isinstance(e, pp.MatrixSelector):
        return RangeSelector(e)
    if isinstance(e, pp.SubqueryExpr):
        return Subquery(e)
    if isinstance(e, pp.Call):
        if e.func.name in ("label_replace", "label_join"):
            return LabelReplace(e)
        return Call(e)
    if isinstance(e, pp.AggregateExpr):
        return Aggregate(e)
    if isinstance(e, pp.BinaryExpr):
        return Binary(e)
    if isinstance(e, pp.UnaryExpr):
        return Negate(e)
    raise Unsupported(f"{type(e).__name__} expressions")


@dataclass
class Query:
    """A parsed, planned expression and the history it reads (ms per metric name)."""

    text: str
    root: Node
    needs: dict[str, int]

    @classmethod
    def parse(cls, text: str) -> Query:
        try:
            ast = pp.parse(text)
        except ValueError as err:
            raise Unsupported(f"does not parse: {err}") from None
        root = plan(ast)
        if root.kind == "matrix":
            raise Unsupported("a range vector result")
        needs: dict[str, int] = {}
        root.needs(0, needs)
        return cls(text, root, needs)

    def eval(self, history: History, t_ms: int, ctx: Ctx | None = None) -> Vector:
        value = self.root.eval(ctx or Ctx(history), t_ms)
        if self.root.kind == "scalar":
            return [({}, value)]
        return value
