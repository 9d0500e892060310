"""Prometheus 3's answers, case by case, for what the local PromQL subset used to get wrong.

Each expected value is what Prometheus 3.16 returns for the same data (the differential test in
tests/integration/test_rules_differential.py checks this family of cases against the real
server); here they run without one, so a regression shows in the fast suite."""

from __future__ import annotations

import math

import pytest
from helpers import STALE_NAN

from poolwatch.rules.local import History, Series
from poolwatch.rules.promql import STALE, EvalError, Query, Unsupported, is_stale

NAN = math.nan
INF = math.inf
T = 600_000  # evaluation time, ms


def store(data: dict[str, list[tuple[int, float]]]) -> History:
    """`{'x{a="1"}': [(t_ms, value), ...]}` -> a history."""
    h = History()
    for spec, points in data.items():
        name, _, rest = spec.partition("{")
        labels = dict(p.split("=") for p in rest.rstrip("}").split(",") if p)
        labels = {k: v.strip('"') for k, v in labels.items()}
        s = Series(labels | {"__name__": name})
        for t, v in points:
            s.append(t, v)
        h._add(name, s)
    return h


def ev(expr: str, h: History, t: int = T) -> list[tuple[dict[str, str], float]]:
    return sorted(Query.parse(expr).eval(h, t), key=lambda s: sorted(s[0].items()))


def values(expr: str, h: History, t: int = T) -> list[float]:
    return [v for _, v in ev(expr, h, t)]


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (x != x and y != y) for x, y in zip(a, b, strict=True)
    )


ONE = store({'x{a="1"}': [(T, 1.0)]})


def test_the_stale_marker_is_prometheus_bit_pattern_and_nan_is_a_value() -> None:
    assert is_stale(STALE)
    assert is_stale(STALE_NAN)
    assert not is_stale(NAN)
    assert not is_stale(1.0)
    h = store({'x{a="1"}': [(T - 1000, NAN)], 'y{a="1"}': [(T - 2000, 1.0), (T - 1000, STALE)]})
    assert same(values("x", h), [NAN])  # a NaN sample is a value ...
    assert ev("absent(x)", h) == []  # ... so x is present
    assert ev("y", h) == []  # a stale marker ends the series
    assert ev("absent(y)", h) == [({}, 1.0)]
    assert same(values("x != x", h), [NAN])  # NaN compares unequal to itself, as in Go
    assert ev("x == x", h) == []
    assert values("count_over_time(x[1m])", h) == [1.0]
    assert values("count_over_time(y[1m])", h) == [1.0]  # the marker is not a sample


def test_lookback_and_ranges_are_left_open() -> None:
    h = store({'x{a="1"}': [(T - 300_000, 1.0)], 'c{a="1"}': [(T - 60_000, 1.0), (T, 3.0)]})
    assert ev("x", h) == []  # exactly 5 minutes old: outside the lookback
    assert values("x", h, T - 1) == [1.0]
    assert values("count_over_time(c[1m])", h) == [1.0]  # the sample at t - 1m is outside
    assert ev("rate(c[1m])", h) == []
    assert values("count_over_time(c[1m])", h, T - 1) == [1.0]


def test_subquery_steps_are_left_open() -> None:
    h = store({'x{a="1"}': [(t, 1.0) for t in range(0, T + 1, 60_000)]})
    # [10m:1m] at a multiple of the step: steps T-9m .. T, not T-10m
    assert values("count_over_time(x[10m:1m])", h) == [10.0]
    assert values("count_over_time(x[10m:1m])", h, T - 1) == [10.0]


def test_rate_extrapolation_follows_prometheus_3() -> None:
    # samples 15 s apart from 10 s into a 1m window; first value 1 (the zero point lies 15 s
    # before the first sample, past the window's start: Prometheus 3 checks the threshold first)
    h = store(
        {'c{a="1"}': [(T - 50_000, 1.0), (T - 35_000, 2.0), (T - 20_000, 3.0), (T - 5000, 4.0)]}
    )
    (got,) = values("increase(c[1m])", h)
    sampled, avg = 45.0, 15.0
    to_start = 10.0  # < 1.1 * 15: extrapolated to the start ...
    to_start = min(to_start, sampled * (1.0 / 3.0))  # ... but not below zero (15 s: no change)
    to_end = 5.0
    assert got == 3.0 * ((sampled + to_start + to_end) / sampled)
    assert avg  # (documentation of the spacing)
    (r,) = values("rate(c[1m])", h)
    assert r == 3.0 * ((sampled + to_start + to_end) / sampled / 60.0)


def test_sum_and_avg_use_compensated_summation() -> None:
    h = store({f'x{{a="{i}"}}': [(T, v)] for i, v in enumerate([2.0, 8.0, 1e100, -1e100])})
    assert values("sum(x)", h) == [10.0]
    assert values("avg(x)", h) == [2.5]
    r = store({'x{a="1"}': [(T - 3000 + i * 1000, v) for i, v in enumerate([1e100, 1.0, -1e100])]})
    assert values("sum_over_time(x[1m])", r) == [1.0]
    assert values("avg_over_time(x[1m])", r) == [1.0 / 3.0]


def test_absent_with_two_matchers_on_one_label() -> None:
    empty = History()
    assert ev('absent(nope{job="a", job="b", foo="bar"})', empty) == [({"foo": "bar"}, 1.0)]
    assert ev('absent(nope{job!="a", job="b"})', empty) == [({}, 1.0)]
    assert ev('absent(nope{job="b", foo!="x"})', empty) == [({"job": "b"}, 1.0)]
    assert ev('absent(nope{job="b", job=~"c"})', empty) == [({}, 1.0)]
    assert ev('absent_over_time(nope{job="a", job="a"}[5m])', empty) == [({}, 1.0)]


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("(-3) ^ 1001", -INF),
        ("(-3) ^ 1000", INF),
        ("(-8) ^ (1/3)", NAN),
        ("0 ^ -1", INF),
        ("-0 ^ -1", -INF),  # parsed as -(0 ^ -1)
        ("NaN ^ 0", 1.0),
        ("1 ^ NaN", 1.0),
        ("2 ^ -1075", 0.0),
        ("Inf % 2", NAN),
        ("5 % Inf", 5.0),
        ("5 % 0", NAN),
        ("-5 % 3", -2.0),
    ],
)
def test_scalar_arithmetic_is_gos(expr: str, want: float) -> None:
    assert same(values(expr, History()), [want])


def test_modulo_and_power_with_infinities_in_a_vector_do_not_raise() -> None:
    h = store({'x{a="1"}': [(T, INF)], 'x{a="2"}': [(T, -3.0)]})
    assert same(values("x % 2", h), [NAN, -1.0])
    assert same(values("x ^ 1001", h), [INF, -INF])


def test_quantile_with_a_nan_phi_or_nan_values() -> None:
    h = store({f'x{{a="{i}"}}': [(T, v)] for i, v in enumerate([3.0, NAN, 1.0, 2.0])})
    assert same(values("quantile(scalar(missing), x)", h), [NAN])
    assert same(values("quantile(0, x)", h), [NAN])  # NaN sorts first
    assert values("quantile(1, x)", h) == [3.0]
    assert values("quantile(0.5, x)", h) == [1.5]
    r = store({'x{a="1"}': [(T - 2000, NAN), (T - 1000, 4.0)]})
    assert same(values("quantile_over_time(scalar(missing), x[1m])", r), [NAN])


def test_min_and_max_over_time_skip_nan_unless_all_are() -> None:
    h = store({
        'x{a="1"}': [(T - 3000, NAN), (T - 2000, 2.0), (T - 1000, 1.0)],
        'x{a="2"}': [(T - 3000, 5.0), (T - 2000, NAN)],
        'x{a="3"}': [(T - 3000, NAN), (T - 2000, NAN)],
    })  # fmt: skip
    assert same(values("min_over_time(x[1m])", h), [1.0, 5.0, NAN])
    assert same(values("max_over_time(x[1m])", h), [2.0, 5.0, NAN])
    assert same(values("changes(x[1m])", h), [2.0, 1.0, 0.0])  # NaN to NaN is no change


def test_topk_and_bottomk_rank_nan_last() -> None:
    h = store({f'x{{a="{i}"}}': [(T, v)] for i, v in enumerate([NAN, 1.0, 5.0])})
    assert values("topk(1, x)", h) == [5.0]
    assert values("bottomk(1, x)", h) == [1.0]
    assert same(values("topk(3, x)", h), [NAN, 1.0, 5.0])
    assert values("topk(2, x)", h) == [1.0, 5.0]
    with pytest.raises(EvalError, match="Parameter value is NaN"):
        ev("topk(NaN, x)", h)


def test_clamp_with_nan_bounds() -> None:
    assert same(values("clamp(x, 0, NaN)", ONE), [NAN])
    assert same(values("clamp_min(x, NaN)", ONE), [NAN])
    assert same(values("clamp_max(x, NaN)", ONE), [NAN])
    inf = store({'x{a="1"}': [(T, INF)], 'x{a="2"}': [(T, NAN)]})
    assert same(values("clamp_min(x, NaN)", inf), [INF, NAN])  # Go: +Inf wins over NaN
    assert values("clamp_max(x, -Inf)", inf) == [-INF, -INF]
    assert ev("clamp(x, 2, 1)", ONE) == []
    assert same(values("exp(x * NaN)", ONE), [NAN])


def test_regular_expressions_are_re2_anchored_and_dot_matches_newline() -> None:
    h = store({'x{a="5"}': [(T, 1.0)], 'x{a="b"}': [(T, 2.0)]})
    assert values('x{a=~"[[:digit:]]"}', h) == [1.0]
    assert values('x{a!~"[[:digit:]]+"}', h) == [2.0]
    nl = History()
    s = Series({"__name__": "x", "a": "one\ntwo"})
    s.append(T, 1.0)
    nl._add("x", s)
    assert values('x{a=~"one.two"}', nl) == [1.0]
    assert values('x{a=~"one"}', nl) == []  # anchored
    got = ev('label_replace(x, "b", "$1", "a", "(?s)(.*)two")', nl)
    assert got[0][0]["b"] == "one\n"
    with pytest.raises(Unsupported, match="invalid repetition size"):
        Query.parse('x{a=~"a{1001}"}')  # RE2's (and Go's) limit


def test_the_ingest_fast_path_answers_as_the_general_one() -> None:
    """A history filled by scrapes knows no sample is newer than the last scrape, and selectors
    then take each series' last sample directly; the answers must be those of the general
    search (a history filled by hand, which knows nothing of the kind)."""
    from poolwatch.rules.local import Target

    target = Target("http://10.0.0.1:9476/metrics", "node")
    scraped = History()
    pages = [
        {"1": 1.0, "2": NAN, "3": 5.0},
        {"1": 2.0, "2": 3.0},  # a="3" vanishes: a stale marker
        {"1": INF, "2": 4.0, "3": 6.0},
        {"1": 0.5},
    ]
    for i, page in enumerate(pages):
        samples = [("x", f'x{{a="{a}"}}', {"a": a}, v) for a, v in page.items()]
        scraped.ingest(target, samples, i * 60_000.0)
    by_hand = History()
    for a in ("1", "2", "3"):
        s = Series({"job": "node", "instance": "10.0.0.1:9476", "a": a, "__name__": "x"})
        for i, page in enumerate(pages):
            seen = [j for j in range(i) if a in pages[j]]
            if a in page:
                s.append(i * 60_000.0, page[a])
            elif seen and max(seen) == i - 1:
                s.append(i * 60_000.0, STALE)
        by_hand._add("x", s)
    assert scraped.newest == 180_000.0
    assert by_hand.newest is None
    for expr in ["x", "x > 1", "abs(x)", "sum(x)", "count_over_time(x[5m])", "rate(x[3m])",
                 "max_over_time(x[5m])", "absent(x{a=\"3\"})", "x offset 1m"]:  # fmt: skip
        for t in (180_000, 200_000, 400_000, 500_000):
            assert same_answer(ev(expr, scraped, t), ev(expr, by_hand, t)), (expr, t)


def same_answer(
    a: list[tuple[dict[str, str], float]], b: list[tuple[dict[str, str], float]]
) -> bool:
    return [dict(x) for x, _ in a] == [dict(x) for x, _ in b] and same(
        [v for _, v in a], [v for _, v in b]
    )
