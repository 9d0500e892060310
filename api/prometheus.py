"""The pool API's Prometheus: the core client (`poolwatch.core.prometheus`) with the values the
API can write as JSON.

JSON has no NaN or Inf (0/0 in a ratio gives NaN): those are "no value", null. Failures are the
core client's `PrometheusError`, which the routes turn into a 502 in the one error shape: a
monitoring answer is never made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from poolwatch.core.prometheus import PrometheusClient, PrometheusError
from poolwatch.core.prometheus import Series as _Series

__all__ = ["Prometheus", "PrometheusError", "Series"]


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]  # (unix seconds, value); NaN and Inf as None


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.client = PrometheusClient(url, timeout)
        self.url, self.timeout = self.client.url, timeout

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        return [_finite(s) for s in self.client.query(expr, at)]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        return [_finite(s) for s in self.client.query_range(expr, start, end, step)]


def _finite(s: _Series) -> Series:
    return Series(s.labels, [(t, v if math.isfinite(v) else None) for t, v in s.points])
