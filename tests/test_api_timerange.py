"""The seed's time_range, statistics and period rules (pool-api.md s4), one case per rule."""

from __future__ import annotations

import pytest

from poolwatch.api.errors import ApiError
from poolwatch.api.timerange import parse_period, parse_statistics, resolve

NOW = 1_760_000_000_000  # ms
MIN = 60_000


def test_the_default_is_the_latest_60_minutes() -> None:
    r = resolve(None, 60, NOW)
    assert (r.start_ms, r.end_ms, r.duration_minutes) == (NOW - 60 * MIN, NOW, 60)
    assert resolve("", 60, NOW) == r
    assert resolve("-1.-1.60", 60, NOW) == r


def test_start_minus_one_counts_back_from_the_end() -> None:
    end = NOW - 120 * MIN
    r = resolve(f"-1.{end}.30", 60, NOW)
    assert (r.start_ms, r.end_ms) == (end - 30 * MIN, end)


def test_end_minus_one_counts_forward_and_stops_at_now() -> None:
    start = NOW - 600 * MIN
    assert resolve(f"{start}.-1.30", 60, NOW).end_ms == start + 30 * MIN
    late = NOW - 10 * MIN
    r = resolve(f"{late}.-1.60", 60, NOW)
    assert r.end_ms == NOW  # the calculated end is later than now: now is used


def test_explicit_start_and_end_need_a_duration_that_covers_them() -> None:
    s, e = NOW - 120 * MIN, NOW - 60 * MIN
    assert resolve(f"{s}.{e}.60", 60, NOW).start_ms == s
    assert resolve(f"{s}.{e}.59", 60, NOW).end_ms == e  # >= span - 1 is enough
    with pytest.raises(ApiError, match="durationInMinutes") as err:
        resolve(f"{s}.{e}.58", 60, NOW)
    assert err.value.parameter == "time_range"


@pytest.mark.parametrize(("period", "longest"), [(60, 1440), (300, 7200), (900, 21600),
                                                  (3600, 86400)])  # fmt: skip
def test_the_1440_point_limit_per_period(period: int, longest: int) -> None:
    assert resolve(f"-1.-1.{longest}", period, NOW).duration_minutes == longest
    with pytest.raises(ApiError, match="1440") as err:
        resolve(f"-1.-1.{longest + 1}", period, NOW)
    assert err.value.status == 400
    assert err.value.parameter == "time_range"


@pytest.mark.parametrize("bad", [
    "-1.-1.0", "-1.-1.-5", "1.2", "a.b.c", "-1.-1.60.1", "-2.-1.60", "-1.-3.60",
    f"{NOW}.{NOW - MIN}.60", "1e3.-1.60", "-1.-1." + "9" * 17,
])  # fmt: skip
def test_bad_time_ranges_name_the_parameter(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        resolve(bad, 60, NOW)
    assert err.value.parameter == "time_range"
    assert err.value.message.startswith("time_range: ")


def test_statistics_and_period() -> None:
    assert parse_statistics(None) == "maximum"
    for s in ("maximum", "minimum", "sum", "average", "sampleCount"):
        assert parse_statistics(s) == s
    with pytest.raises(ApiError) as err:
        parse_statistics("median")
    assert err.value.parameter == "statistics"
    assert parse_period(None) == 60
    assert [parse_period(p) for p in ("60", "300", "900", "3600")] == [60, 300, 900, 3600]
    for bad in ("30", "61", "x", "-60"):
        with pytest.raises(ApiError) as err:
            parse_period(bad)
        assert err.value.parameter == "period"
