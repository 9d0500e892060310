"""The core Prometheus client against a real Prometheus (each version the tests know), and the
callers that use it: the rule engine's source, the dashboard renderer, the pool API."""

from __future__ import annotations

import contextlib
import http.server
import math
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolwatch.api.prometheus import Prometheus as ApiPrometheus
from poolwatch.core.prometheus import PrometheusClient, PrometheusError, Series
from poolwatch.rules.sources import PrometheusSource, SourceError
from tests.helpers import free_port
from tests.helpers.prom_versions import Prometheus


@pytest.fixture
def prom_url(tmp_path: Path, prom: Prometheus) -> Iterator[str]:
    """A real Prometheus with nothing to scrape: queries of constants answer alike everywhere."""
    from tests.integration.conftest import prometheus_on

    with prometheus_on(prom, tmp_path, "global: {scrape_interval: 1s}\n") as base:
        yield base


@pytest.mark.integration
def test_queries_against_a_real_prometheus(prom_url: str) -> None:
    client = PrometheusClient(prom_url + "/", timeout=5.0)
    assert client.url == prom_url
    now = time.time()
    (s,) = client.query('label_replace(vector(2), "pool", "gpu-a", "", "")', now)
    assert s.labels == {"pool": "gpu-a"}
    assert s.points == [(pytest.approx(now, abs=0.001), 2.0)]
    assert client.query("1 + 1", now) == [Series({}, [(pytest.approx(now, abs=0.001), 2.0)])]
    (r,) = client.query_range("vector(3)", now - 60, now, 15)
    assert [v for _, v in r.points] == [3.0] * 5
    (nan,) = client.query("vector(0/0)", now)  # NaN as Prometheus sends it
    assert math.isnan(nan.points[0][1])
    with pytest.raises(PrometheusError, match=r"parse error"):
        client.query("sum(", now)
    with pytest.raises(PrometheusError, match="expected a vector, got matrix"):
        client.query("vector(1)[1m:15s]", now)
    # the callers: the rule engine's source (its own error type), the pool API (NaN as null)
    source = PrometheusSource(prom_url, timeout=5.0)
    assert source.query("vector(4)", now) == [({}, 4.0)]
    with pytest.raises(SourceError, match=r"parse error"):
        source.query("sum(", now)
    (api,) = ApiPrometheus(prom_url).query("vector(0/0)", now)
    assert api.points[0][1] is None


@pytest.mark.integration
def test_the_demo_site_draws_a_dashboard_with_the_core_client(prom_url: str) -> None:
    """The demo's /dashboards/ pages query Prometheus through the same client."""
    from poolwatch.app.demo_inbox import Inbox
    from poolwatch.app.demo_site import Site

    class Demo:  # the two things the site asks the running demo for dashboards
        def prometheus_url(self) -> str:
            return prom_url

        def dashboard_span(self) -> float:
            return 600.0

    site = Site.__new__(Site)  # not started: the page is drawn without serving it
    site.demo, site.inbox, site.rendered = Demo(), Inbox.__new__(Inbox), {}
    site.render_lock = threading.Lock()
    page = site.dashboard("poolwatch-ma-node")
    assert page is not None
    assert b"<html" in page
    assert prom_url.encode() in page  # drawn from that Prometheus


def test_a_dead_prometheus_is_an_error_that_names_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusError, match=f"cannot query Prometheus at {url}"):
        PrometheusClient(url, timeout=1.0).query("up", 0.0)
    with pytest.raises(SourceError, match=f"cannot query Prometheus at {url}"):
        PrometheusSource(url, timeout=1.0).query("up", 0.0)


@pytest.mark.parametrize("url", ["localhost:9090", "file:///etc/passwd", "http://", "ftp://h"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"expected http\(s\)://host:port"):
        PrometheusClient(url)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Stand-in for Prometheus: Prometheus does not report the timeout a query asked for, so
    this records the query parameters instead, and answers with a fixed document."""

    seen: list[dict[str, list[str]]] = []  # noqa: RUF012 - shared with the test on purpose
    body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'

    def do_GET(self) -> None:
        type(self).seen.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_caller_tells_prometheus_its_timeout() -> None:
    """Prometheus stops evaluating a query nobody waits for any more. Only the rule engine's
    source sent the timeout before; the dashboards and the pool API now do too."""
    _Recorder.seen = []
    with _serve() as url:
        PrometheusSource(url, timeout=7.0).query("up", 0.0)
        ApiPrometheus(url, timeout=3.0).query("up", 0.0)
        PrometheusClient(url, timeout=15.0).query("up")
    assert [q["timeout"] for q in _Recorder.seen] == [["7s"], ["3s"], ["15s"]]
    assert "time" not in _Recorder.seen[2]  # no time: Prometheus' now


def test_a_malformed_answer_is_an_error() -> None:
    _Recorder.body = b'{"status":"success","data":{"resultType":"vector","result":[{"x":1}]}}'
    try:
        with _serve() as url, pytest.raises(PrometheusError, match="malformed result"):
            PrometheusClient(url).query("up", 0.0)
    finally:
        _Recorder.body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
