"""Aggregations: `sum avg min max count group stddev stdvar quantile topk bottomk` with
`by`/`without`."""

from __future__ import annotations

import math
from collections.abc import Iterable
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
)
from .floats import _kahan_inc, _kahan_mean, _quantile


def _sum(vs: list[float]) -> float:
    """The sum aggregation (starts from the first value; adds the compensation at the end)."""
    total, c = vs[0], 0.0
    for v in vs[1:]:
        total, c = _kahan_inc(v, total, c)
    return total + c


def _variance(vs: list[float]) -> float:
    """The stdvar aggregation."""
    count = mean = aux = 0.0
    for v in vs:
        count += 1
        delta = v - mean
        mean += delta / count
        aux += delta * (v - mean)
    return aux / count


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
        self.inner = planner.plan(e.expr)
        self.param = planner.plan(e.param) if e.param is not None else None
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
