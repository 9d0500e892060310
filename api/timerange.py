"""The seed's monitoring parameters: `time_range`, `statistics` and `period` (pool-api.md s4).

`time_range` is `startMillis.endMillis.durationMinutes`; `-1` means "derive it from the other two"
and the default `-1.-1.60` is the latest hour. The seed also caps one request at 1,440 points
(`durationMinutes x 60 / period <= 1440`). Every error names the parameter it is about, because
that is what a caller of a query API needs to fix the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ApiError

DEFAULT_TIME_RANGE = "-1.-1.60"
PERIODS = (60, 300, 900, 3600)
STATISTICS = ("maximum", "minimum", "sum", "average", "sampleCount")
MAX_POINTS = 1440
_FORMAT = re.compile(r"^(-?\d{1,16})\.(-?\d{1,16})\.(-?\d{1,16})$")


@dataclass(frozen=True)
class TimeRange:
    """A resolved range in unix milliseconds, with the duration the caller gave."""

    start_ms: int
    end_ms: int
    duration_minutes: int


def parse_period(raw: str | int | None) -> int:
    if raw is None or raw == "":
        return 60
    try:
        period = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "PW.0402", f"period: expected one of {_names(PERIODS)}, got {raw!r}",
                       "period") from None  # fmt: skip
    if period not in PERIODS:
        raise ApiError(400, "PW.0402", f"period: expected one of {_names(PERIODS)}, got {period}",
                       "period")  # fmt: skip
    return period


def parse_statistics(raw: str | None) -> str:
    if raw is None or raw == "":
        return "maximum"
    if raw not in STATISTICS:
        raise ApiError(400, "PW.0403",
                       f"statistics: expected one of {_names(STATISTICS)}, got {raw!r}",
                       "statistics")  # fmt: skip
    return raw


def resolve(raw: str | None, period: int, now_ms: int) -> TimeRange:
    """The seed's rules, in the seed's order (pool-api.md s4 pseudo-code)."""
    text = DEFAULT_TIME_RANGE if raw is None or raw == "" else raw
    m = _FORMAT.match(text)
    if m is None:
        raise _bad(f"expected startMillis.endMillis.durationMinutes, got {text!r}")
    s, e, d = (int(g) for g in m.groups())
    if d <= 0:
        raise _bad(f"durationInMinutes must be > 0, got {d}")
    for name, value in (("startTimeInMillis", s), ("endTimeInMillis", e)):
        if value < -1:
            raise _bad(f"{name} must be -1 or a time in milliseconds, got {value}")
    span = d * 60 * 1000
    if s == -1 and e == -1:
        e = now_ms
        s = e - span
    elif s == -1:
        s = e - span
    elif e == -1:
        e = min(s + span, now_ms)
    if e <= s:
        raise _bad(f"the end ({e}) must be later than the start ({s})")
    if d < (e - s) / 60000 - 1:
        raise _bad(f"durationInMinutes ({d}) must be at least (end - start) in minutes - 1 "
                   f"({(e - s) / 60000 - 1:g})")  # fmt: skip
    if d * 60 / period > MAX_POINTS:
        raise _bad(f"durationInMinutes x 60 / period = {d * 60 / period:g} points; at most "
                   f"{MAX_POINTS} per request (at period {period} the longest duration is "
                   f"{MAX_POINTS * period // 60} minutes)")  # fmt: skip
    return TimeRange(s, e, d)


def _bad(detail: str) -> ApiError:
    return ApiError(400, "PW.0401", f"time_range: {detail}", "time_range")


def _names(values: tuple[object, ...]) -> str:
    return ", ".join(map(str, values))
