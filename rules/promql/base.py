"""What every part of the local PromQL evaluator shares: times, the stale marker, label sets,
the value types, the errors, the history it reads and the plan node every step is."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
