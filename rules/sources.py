"""Where the engine gets its numbers: a Prometheus server over the HTTP API.

A source answers `query(expr, at) -> [(labels, value)]` (an instant query) and
`query_range(expr, start, end, step) -> [(labels, [(t, value)])]`. Every failure (connection
refused, timeout, HTTP error, a Prometheus error document, a body that is not JSON) is a
`SourceError`, so the engine has one thing to catch.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

Sample = tuple[dict[str, str], float]


class SourceError(Exception):
    """The source could not answer; the engine skips the rule and counts the failure."""


class Source(Protocol):
    def query(self, expr: str, at: float) -> list[Sample]: ...


class PrometheusSource:
    """Instant and range queries against `url` (e.g. http://prometheus:9090)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        params = {**params, "timeout": f"{self.timeout:g}s"}
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 (http only)
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as err:  # Prometheus sends its error document with 4xx/5xx
            try:
                doc = json.loads(err.read())
            except (ValueError, OSError):
                raise SourceError(f"{self.url}: HTTP {err.code}") from None
        except (OSError, ValueError) as err:  # URLError, timeouts and bad JSON
            raise SourceError(f"{self.url}: {err}") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            detail = doc.get("error", doc) if isinstance(doc, dict) else doc
            raise SourceError(f"{self.url}: query failed: {detail}")
        return doc.get("data", {})

    def query(self, expr: str, at: float) -> list[Sample]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        kind, result = data.get("resultType"), data.get("result")
        try:
            if kind == "vector":
                return [(dict(r["metric"]), float(r["value"][1])) for r in result]
            if kind == "scalar":
                return [({}, float(result[1]))]
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise SourceError(f"{self.url}: malformed result: {err}") from None
        raise SourceError(f"{self.url}: expected a vector, got {kind}")

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise SourceError(f"{self.url}: expected a matrix, got {data.get('resultType')}")
        try:
            return [
                (dict(r["metric"]), [(float(t), float(v)) for t, v in r["values"]])
                for r in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise SourceError(f"{self.url}: malformed result: {err}") from None
