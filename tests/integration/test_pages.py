"""Every server's pages in a real headless Chromium: the index page of the alerts receiver, the
controller and the pool API, and the pool API's Swagger UI drawn from the bundled files with no
network (the page names no other host; the browser renders the operations)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from browser import dom, ink, needs_chromium, screenshot
from helpers import free_block

from poolwatch.demo import Demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), needs_chromium]


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    d = Demo(free_block(), tmp_path_factory.mktemp("pages") / "demo", prometheus=False,
             speed=0.0, acting=True)  # fmt: skip
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize(
    ("port", "title", "links"),
    [
        ("alerts", "poolwatch alerts receiver", ["/status", "/metrics"]),
        ("controller", "poolwatch controller", ["/metrics", "/healthz"]),
        ("api", "poolwatch pool API", ["/docs", "/openapi.json"]),
        ("inbox", "poolwatch demo", ["Every part", "/inbox", "/pool"]),
    ],
)
def test_every_server_has_an_index_page(demo: Demo, tmp_path: Path, port: str, title: str,
                                        links: list[str]) -> None:  # fmt: skip
    url = f"http://127.0.0.1:{getattr(demo.ports, port)}/"
    page = dom(url, budget_ms=2000)
    assert f"<h1>{title}</h1>" in page
    for link in links:
        assert link in page
    shot = screenshot(url, tmp_path / f"{port}.png", size="1000,600", budget_ms=2000)
    assert ink(shot) > 0.01


def test_swagger_ui_draws_the_pool_api_offline(demo: Demo, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{demo.ports.api}"
    html = _text(f"{base}/docs")
    assert "/docs/static/swagger-ui-bundle.js" in html
    assert "https://" not in html  # nothing from a CDN
    assert _text(f"{base}/docs/static/swagger-ui-bundle.js").startswith("/*!")
    page = dom(f"{base}/docs", budget_ms=10000)
    assert 'class="swagger-ui' in page
    assert "/v2/{project_id}/pools" in page  # the operations, drawn by Swagger UI's script
    shot = screenshot(f"{base}/docs", tmp_path / "swagger.png", budget_ms=8000)
    assert ink(shot) > 0.05


def test_the_inbox_page_shows_messages_newest_first_with_their_severity(demo: Demo) -> None:
    """Posted the way apprise's json:// target posts (the alerts layer's subject as title)."""
    site = f"http://127.0.0.1:{demo.ports.inbox}"
    for title in ("[c] FIRING CRITICAL PoolwatchNodeNotReady on n1",
                  "[c] RESOLVED CRITICAL PoolwatchNodeNotReady on n1"):  # fmt: skip
        body = f'{{"version": "1.0", "title": "{title}", "message": "m", "type": "info"}}'
        req = urllib.request.Request(f"{site}/inbox", body.encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
        urllib.request.urlopen(req, timeout=5).close()
        time.sleep(0.01)
    page = dom(f"{site}/inbox", budget_ms=2000)
    resolved, firing = page.index('data-kind="resolved"'), page.index('data-kind="firing"')
    assert resolved < firing  # newest first
    assert "#c92a2a" in page  # critical's colour
