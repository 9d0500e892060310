"""Where the engine gets its numbers: a Prometheus server over the HTTP API.

A source answers `query(expr, at) -> [(labels, value)]` (an instant query) and
`query_range(expr, start, end, step) -> [(labels, [(t, value)])]`. Every failure (connection
refused, timeout, HTTP error, a Prometheus error document, a body that is not JSON) is a
`SourceError`, so the engine has one thing to catch.
"""

from __future__ import annotations

from typing import Protocol

from poolwatch.core.prometheus import PrometheusClient, PrometheusError

Sample = tuple[dict[str, str], float]


class SourceError(Exception):
    """The source could not answer; the engine skips the rule and counts the failure."""


class Source(Protocol):
    def query(self, expr: str, at: float) -> list[Sample]: ...


class PrometheusSource:
    """Instant and range queries against `url` (e.g. http://prometheus:9090), through the core
    Prometheus client; its failures are this source's `SourceError`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.client = PrometheusClient(url, timeout)
        self.url, self.timeout = self.client.url, timeout

    def query(self, expr: str, at: float) -> list[Sample]:
        try:
            return [(s.labels, s.points[0][1]) for s in self.client.query(expr, at)]
        except PrometheusError as err:
            raise SourceError(str(err)) from None

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        try:
            return [(s.labels, s.points) for s in self.client.query_range(expr, start, end, step)]
        except PrometheusError as err:
            raise SourceError(str(err)) from None
