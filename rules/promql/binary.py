"""Binary operators (arithmetic, comparisons, `and`/`or`/`unless`, vector matching with
`on`/`ignoring`/`group_left`/`group_right`) and unary minus, with Go's float semantics."""

from __future__ import annotations

import math
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
)

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
        self.lhs, self.rhs = planner.plan(e.lhs), planner.plan(e.rhs)
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
        self.inner = planner.plan(e.expr)
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
