"""Selectors: instant and range selectors read the history; subqueries evaluate their inner
expression at each step of the range. The evaluator's hot path (`Selector.eval`)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

import promql_parser as pp

from . import planner
from .base import (
    LOOKBACK_MS,
    Ctx,
    History,
    Labels,
    Matrix,
    Node,
    Series,
    Unsupported,
    Vector,
    _ms,
    compile_regex,
    is_stale,
)


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
        self.inner = planner.plan(e.expr)
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
