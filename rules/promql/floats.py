"""Float arithmetic as Prometheus computes it, shared by the functions and the aggregations:
compensated (Kahan-Neumaier) sums and means, and quantiles with NaN sorted first."""

from __future__ import annotations

import math


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """util/kahansum.Inc (Neumaier's variant); the compensation resets once the sum is
    infinite."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def _kahan_mean(vs: list[float]) -> float:
    """avg_over_time and the avg aggregation as Prometheus 3 computes them: a compensated
    sum divided by the count, switching to a compensated incremental mean only when the sum
    overflows."""
    total, c = vs[0], 0.0
    mean = 0.0
    incremental = False
    count = 1.0
    for v in vs[1:]:
        count += 1
        if not incremental:
            new_total, new_c = _kahan_inc(v, total, c)
            if not math.isinf(new_total):
                total, c = new_total, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = _kahan_inc(v / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def _nan_first(v: float) -> tuple[bool, float]:
    """Sort key of Go's vectorByValueHeap: NaN below every number."""
    return (v == v, v)


def _quantile(q: float, vs: list[float]) -> float:
    """promql quantile(): linear interpolation between the two nearest ranks; NaN for an
    empty set or a NaN φ; NaN values sort below every number."""
    if not vs or q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(vs, key=_nan_first)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    if weight == 0:
        return ordered[int(lower)]
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight
