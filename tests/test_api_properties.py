"""Properties of the parameter parsers: whatever a caller sends, the answer is a resolved range
that keeps the seed's rules, or an ApiError naming the parameter; never another exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from poolwatch.api import selectors
from poolwatch.api.errors import ApiError
from poolwatch.api.timerange import MAX_POINTS, PERIODS, resolve

NOW = 1_760_000_000_000
times = st.one_of(st.just(-1), st.integers(-5, NOW + 10**9))
durations = st.integers(-3, 100_000)


def attempt(fn: Callable[..., Any], *args: Any) -> tuple[Any, ApiError | None]:
    """(result, None), or (None, the ApiError): any other exception fails the test."""
    try:
        return fn(*args), None
    except ApiError as err:
        return None, err


@settings(max_examples=400, deadline=None)
@given(start=times, end=times, duration=durations, period=st.sampled_from(PERIODS))
def test_resolve_keeps_the_seed_rules(start: int, end: int, duration: int, period: int) -> None:
    r, err = attempt(resolve, f"{start}.{end}.{duration}", period, NOW)
    if err is not None:
        assert err.parameter == "time_range"
        assert err.status == 400
        return
    assert r.duration_minutes == duration > 0
    assert duration * 60 / period <= MAX_POINTS
    assert r.start_ms < r.end_ms
    assert duration >= (r.end_ms - r.start_ms) / 60000 - 1
    if end == -1:
        assert r.end_ms <= NOW  # a calculated end never passes now
    if start != -1:
        assert r.start_ms == start
    if end != -1:
        assert r.end_ms == end


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_resolve_never_crashes_on_text(text: str) -> None:
    _, err = attempt(resolve, text, 60, NOW)
    assert err is None or err.parameter == "time_range"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.dictionaries(st.text(max_size=8), st.text(max_size=8)))
def test_selectors_parse_or_name_the_parameter(text: str, labels: dict[str, str]) -> None:
    match, err = attempt(selectors.parse, text)
    if err is not None:
        assert err.parameter == "labelSelector"
        assert err.code == "PW.0107"
        return
    assert match(labels) in (True, False)


@given(st.from_regex(r"[a-z][a-z0-9.-]{0,10}[a-z0-9]", fullmatch=True),
       st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))  # fmt: skip
def test_equality_and_its_negation_split_every_label_map(key: str, value: str) -> None:
    eq, ne = selectors.parse(f"{key}={value}"), selectors.parse(f"{key}!={value}")
    for labels in ({}, {key: value}, {key: value + "x"}):
        assert eq(labels) != ne(labels)
    assert selectors.parse(f"{key} in ({value}, other)")({key: value})
    assert not selectors.parse(f"{key} notin ({value})")({key: value})
    assert selectors.parse(f"!{key}")({})
    assert not selectors.parse(key)({})
