"""One client for the Prometheus HTTP query API (instant and range queries), for every part that
asks Prometheus: the rule engine's source, the dashboard renderer, the pool API's monitoring.

Why not a library: two GET calls and the error envelope are all poolwatch needs, and urllib keeps
the parts free of another dependency. Why one: the three copies had drifted apart (only one told
Prometheus to stop evaluating when the client gives up, only one checked the result type, their
URL checks and messages differed).

Every failure (connection refused, timeout, an HTTP error, Prometheus' error document, a body that
is not JSON, a result of the wrong shape) is a `PrometheusError` whose message names the server
and why, so a caller has one thing to catch. Values are floats as Prometheus sends them: `NaN`
and `±Inf` included (a ratio of 0/0 is NaN); a caller that writes JSON decides what they become.
The query's `timeout` is sent with it, so Prometheus stops evaluating a query nobody waits for.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 10.0


class PrometheusError(Exception):
    """Prometheus did not answer or refused the query; the message names the server and why."""


@dataclass(frozen=True)
class Series:
    """One series of a result: its labels and its (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


def check_url(url: str) -> str:
    """`url` without a trailing slash; ValueError unless it is http(s)://host[:port][/path]."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected http(s)://host:port, got {url!r}")
    return url.rstrip("/")


class PrometheusClient:
    """Instant and range queries against the Prometheus at `url` (e.g. http://prometheus:9090),
    each bounded by `timeout` seconds (on the connection, and on Prometheus' evaluation)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = check_url(url)
        self.timeout = timeout

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        """An instant query at unix time `at` (None: Prometheus' now). A scalar result is one
        series without labels; a result that is neither a vector nor a scalar is an error."""
        params = {"query": expr} | ({} if at is None else {"time": f"{at:.3f}"})
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        try:
            if kind == "vector":
                return [Series(dict(r["metric"]), [_point(r["value"])]) for r in result]
            if kind == "scalar":
                return [Series({}, [_point(result)])]
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise PrometheusError(f"Prometheus at {self.url}: malformed result: {err}") from None
        raise PrometheusError(f"Prometheus at {self.url}: expected a vector, got {kind}")

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from `start` to `end` (unix seconds) every `step` seconds."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise PrometheusError(
                f"Prometheus at {self.url}: expected a matrix, got {data.get('resultType')}"
            )
        try:
            return [Series(dict(r["metric"]), [_point(p) for p in r["values"]])
                    for r in data["result"]]  # fmt: skip
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise PrometheusError(f"Prometheus at {self.url}: malformed result: {err}") from None

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        params = {**params, "timeout": f"{self.timeout:g}s"}
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as err:  # Prometheus sends its error document with 4xx/5xx
            try:
                doc = json.loads(err.read())
            except (ValueError, OSError):
                raise PrometheusError(
                    f"Prometheus at {self.url} answered HTTP {err.code}"
                ) from None
        except (OSError, ValueError) as err:  # URLError, timeouts and bad JSON
            raise PrometheusError(f"cannot query Prometheus at {self.url}: {err}") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            detail = (f"{doc.get('errorType', 'error')}: {doc.get('error', doc)}"
                      if isinstance(doc, dict) else repr(doc))  # fmt: skip
            raise PrometheusError(f"Prometheus at {self.url}: {detail}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus at {self.url}: malformed result: no data")
        return data


def _point(pair: Any) -> tuple[float, float]:
    """[1700000000.5, "0.25"] -> (1700000000.5, 0.25); "NaN" and "+Inf" stay floats."""
    return float(pair[0]), float(pair[1])
