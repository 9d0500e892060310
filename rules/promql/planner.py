"""Parse and plan: `Query.parse` parses an expression once and `plan` turns its AST into plan
nodes (selectors, functions, aggregations, binary operations), refusing what is outside the
subset with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

from .aggregation import Aggregate
from .base import (
    Ctx,
    EvalError,
    History,
    Node,
    Unsupported,
    Vector,
)
from .binary import Binary, Negate
from .functions import Call, LabelReplace
from .selectors import RangeSelector, Selector, Subquery


class Num(Node):
    kind = "scalar"

    def __init__(self, value: float) -> None:
        self.value = value

    def eval(self, ctx: Ctx, t: int) -> float:
        return self.value


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
