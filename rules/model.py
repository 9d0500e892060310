"""The rule file schema: one group per YAML file, every field typed, unknown fields rejected.

Validation that needs only the rule itself lives here (the expression parses as PromQL, every metric
it names is in the catalog, exactly one timing style, a clear threshold on the quiet side of the
threshold, known fault codes); checks across rules and files (duplicate names) are the loader's.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import promql_parser
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from poolwatch.core.catalog import IDENTITY_LABELS, CatalogError, all_alias_names, by_name

from .fault_codes import FAULT_CODES

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["info", "suggestion", "warning", "major", "critical"]
#: labels a rule may not set itself: the compiler owns them
RESERVED_LABELS = frozenset({"alertname", "alertstate", "severity", "seed_ids"})
#: target labels Prometheus adds to every scraped series, on top of the runner's identity labels
TARGET_LABELS = ("instance", "job")

#: Prometheus' model.ParseDuration: units largest first, each at most once; "0" alone too
_DURATION = re.compile(r"^(?:0|(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?)$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def duration_seconds(text: str) -> float:
    """A Prometheus duration ('1m', '1h30m') in seconds."""
    return sum(int(n) * _SECONDS[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest Prometheus duration ('90s' -> '1m30s', 0 -> '0s')."""
    ms = round(seconds * 1000)
    out = ""
    for unit in ("d", "h", "m", "s"):
        size = _SECONDS[unit] * 1000
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out + (f"{ms}ms" if ms else "") or "0s"


def _check_duration(value: str) -> str:
    """Every duration Prometheus accepts (`0s` and `0` included), nothing it refuses."""
    if not value or not _DURATION.match(value):
        raise ValueError(
            f"expected a Prometheus duration such as 0s, 30s, 2m or 1h30m, got {value!r}"
        )
    return value


def _check_positive(value: str) -> str:
    if duration_seconds(value) <= 0:
        raise ValueError(f"must be longer than 0s, got {value!r}")
    return value


def _zero(value: object) -> object:
    """YAML reads `for: 0` as a number; Prometheus reads it as the duration "0"."""
    return "0" if value == 0 and type(value) is int else value


#: any duration Prometheus accepts (a rule's `for`)
Duration = Annotated[str, BeforeValidator(_zero), Strict(), AfterValidator(_check_duration)]
#: a duration that must be positive (an interval, a range, a step)
Period = Annotated[str, Strict(), AfterValidator(_check_duration), AfterValidator(_check_positive)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def metric_selectors(expr: str) -> list[tuple[str | None, list[str]]]:
    """(metric name, label names matched) of each selector; ValueError if `expr` does not parse."""
    found: list[tuple[str | None, list[str]]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), None)
            found.append((name, [m.name for m in matchers if m.name != "__name__"]))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _check_expr(expr: str) -> str:
    try:
        selectors = metric_selectors(expr)
    except ValueError as err:
        raise ValueError(f"not valid PromQL: {err}") from None
    aliases = all_alias_names()
    for name, labels in selectors:
        if name is None:
            raise ValueError("a selector has no metric name")
        try:
            spec = aliases.get(name) or by_name(name)
        except CatalogError as err:
            raise ValueError(f"names {err}") from None
        known = {*spec.labels, *IDENTITY_LABELS, *TARGET_LABELS}
        unknown = sorted(set(labels) - known)
        if unknown:
            missing = ", ".join(unknown)
            raise ValueError(f"matches {name} on label(s) {missing} it does not have")
    return expr


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key in labels:
        if not _LABEL.match(key):
            raise ValueError(f"{key!r} is not a valid label name")
        if key in RESERVED_LABELS:
            raise ValueError(f"label {key!r} is set by the compiler")
    return labels


def _check_fault_code(code: str) -> str:
    if code not in FAULT_CODES:
        raise ValueError(f"unknown fault code {code!r} (see rules/fault_codes.py)")
    return code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Window(_Strict):
    """Fire when the comparison held in more than `percent` % of the `step` samples over `range`."""

    range: Period
    step: Period
    percent: Annotated[Number, Field(ge=0, lt=100)]


class Annotations(_Strict):
    summary: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    runbook: Annotated[str, Field(min_length=1)]


class Isolate(_Strict):
    isolate: Annotated[str, Strict(), AfterValidator(_check_fault_code)]


Action = Literal["notify", "replace", "restart-job"] | Isolate


class Rule(_Strict):
    #: any alert name Prometheus accepts (a non-empty string); the shipped rules keep to
    #: `Poolwatch[A-Z]...` by a test, an operator's own rules need not
    name: Annotated[str, Strict(), Field(min_length=1)]
    seed: list[Annotated[str, Strict(), Field(pattern=r"^[A-Z]+(-[A-Z]+)?-\d\d$")]] = []
    expr: Annotated[str, Strict(), AfterValidator(_check_expr)]
    op: Op
    threshold: Number
    clear: Number | None = None
    for_: Duration | None = Field(default=None, alias="for")
    periods: Annotated[int, Strict(), Field(ge=1)] | None = None
    window: Window | None = None
    severity: Severity
    labels: Annotated[dict[str, Annotated[str, Strict()]], AfterValidator(_check_labels)] = {}
    annotations: Annotations
    actions: list[Action] = ["notify"]
    dry_run: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _one_timing(self) -> Rule:
        timing = {"for": self.for_, "periods": self.periods, "window": self.window}
        styles = ", ".join(k for k, v in timing.items() if v is not None)
        if len(styles.split(", ")) != 1 or not styles:
            raise ValueError(f"set exactly one of for, periods, window (got {styles or 'none'})")
        if self.clear is not None:
            if self.window is not None or self.op in ("==", "!="):
                raise ValueError("clear (hysteresis) needs op > >= < <= and for or periods")
            if self.op in (">", ">=") and not self.clear < self.threshold:
                raise ValueError(f"clear must be below threshold for op {self.op}")
            if self.op in ("<", "<=") and not self.clear > self.threshold:
                raise ValueError(f"clear must be above threshold for op {self.op}")
        return self


class Group(_Strict):
    """One rule file. Rules are validated one by one by the loader, so errors are per rule."""

    group: Annotated[str, Strict(), Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    interval: Period
    rules: list[Rule]
