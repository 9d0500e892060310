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

from poolwatch.app.demo import Demo

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
        ("rules", "poolwatch rule engine", ["/metrics", "/healthz"]),
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


def _post(url: str, doc: dict) -> tuple[int, dict]:
    import json
    import urllib.error

    req = urllib.request.Request(
        url, json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_faults_are_injected_over_http_and_from_the_command_line(demo: Demo) -> None:
    import subprocess
    import sys

    api = f"http://127.0.0.1:{demo.ports.inbox}/api"
    code, doc = _post(f"{api}/inject", {"fault": "gpu_lost", "node": "nosuch"})
    assert code == 404
    assert "gpu-a-node-00" in doc["error"]  # the error lists the nodes there are
    code, doc = _post(f"{api}/inject", {"fault": "melted", "node": "gpu-a-node-03"})
    assert (code, doc["error"].startswith("fault must be one of ecc, gpu_lost")) == (400, True)
    code, doc = _post(f"{api}/inject", {"fault": "ecc", "node": "gpu-a-node-03", "device": "x"})
    assert code == 400
    code, doc = _post(f"{api}/inject", {"fault": "npu_health", "node": "npu-b-node-01"})
    assert (code, doc["device"]) == (200, 0)
    assert demo.cluster.node_faults("npu-b-node-01") == ["npu_health"]
    cli = [sys.executable, "-m", "poolwatch", "demo"]
    done = subprocess.run([*cli, "inject", "cache_full", "gpu-a-node-04", "--data-dir",
                           str(demo.data_dir)], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cache_full" in demo.cluster.node_faults("gpu-a-node-04")
    done = subprocess.run([*cli, "heal", "gpu-a-node-04", "--data-dir", str(demo.data_dir)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert demo.cluster.node_faults("gpu-a-node-04") == []


def test_the_acting_demo_wires_only_the_real_parts(demo: Demo) -> None:
    """No log-only stand-in beside the controller: it logged every isolation the controller
    carried out as "dry-run, no controller configured: logged only"."""
    assert demo.action_sinks == [demo.stack.controller]
    assert demo.notifiers == [demo.stack.notifier]  # no Alertmanager here: the engine notifies
