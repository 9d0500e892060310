"""A small synchronous Prometheus HTTP API client (instant and range queries).

Why not a library: two GET calls and the error envelope are all the API needs, and urllib keeps
the controller free of another dependency. Failures raise `PrometheusError`, which the routes
turn into a 502 in the one error shape: a monitoring answer is never made up.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class PrometheusError(Exception):
    pass


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]  # (unix seconds, value); NaN and Inf as None


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float | None = None) -> list[Series]:
        params = {"query": expr} | ({} if at is None else {"time": f"{at:.3f}"})
        data = self._get("/api/v1/query", params)
        return [Series(r["metric"], [(float(r["value"][0]), _num(r["value"][1]))])
                for r in data.get("result", [])]  # fmt: skip

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        return [Series(r["metric"], [(float(t), _num(v)) for t, v in r["values"]])
                for r in data.get("result", [])]  # fmt: skip

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - URL from config
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            try:
                doc = json.loads(err.read())
            except ValueError:
                raise PrometheusError(f"{self.url}: HTTP {err.code}") from None
        except (OSError, ValueError) as err:
            raise PrometheusError(f"{self.url}: {err}") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"{self.url}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]


def _num(text: str) -> float | None:
    """JSON has no NaN or Inf (0/0 in a ratio gives NaN): those are "no value", null."""
    value = float(text)
    return value if math.isfinite(value) else None
