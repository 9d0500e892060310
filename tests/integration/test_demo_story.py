"""The demo's story, end to end, at 20x speed: the scripted fault isolated, the spare swapped in,
the job restarted, the notification in the inbox (through the real Prometheus and Alertmanager),
the pool events; then every dashboard drawn from the live data and each page looked at in a real
headless Chromium (screenshots not blank, expected content in the DOM).

Screenshots stay in the test's tmp_path (pytest keeps the last three runs) to be looked at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from browser import dom, ink, needs_chromium, screenshot
from helpers import free_block

from poolwatch.app.demo import Demo
from poolwatch.app.demo_procs import find_program
from poolwatch.app.demo_scenario import FIRST
from poolwatch.dashboards import registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(420),
    pytest.mark.skipif(not shutil.which("prometheus"), reason="Debian package prometheus missing"),
    pytest.mark.skipif(
        not shutil.which("prometheus-alertmanager") and not shutil.which("alertmanager"),
        reason="Debian package prometheus-alertmanager missing",
    ),
    needs_chromium,
]
SPEED = 20.0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


def _story(demo: Demo, site: str) -> dict[str, Any]:
    """What the story has shown so far."""
    seen: dict[str, Any] = {}
    struck = demo.scenario_struck()
    if not struck:
        return seen
    _, fault, node = struck[0]
    seen["fault"] = (fault, node)
    status = {n.name: str(n.status) for n in demo.cluster.nodes()}
    seen["node status"] = status[node]
    events = [(e.name, e.reason, e.message) for e in demo.cluster.events()]
    seen["replacing"] = [m for n, r, m in events if n == node and r == "NodeReplacing"]
    seen["restarted"] = [j.name for j in demo.cluster.jobs() if j.restarts > 0]
    inbox = _get(f"{site}/inbox.json")["messages"]
    seen["inbox"] = [m["title"] for m in inbox
                     if "PoolwatchAcceleratorLost" in m["alertname"].split(", ")
                     and m["kind"] == "firing" and node in m["title"]]  # fmt: skip
    return seen


def _complete(seen: dict[str, Any]) -> bool:
    return bool(seen.get("inbox") and seen.get("replacing") and seen.get("restarted")
                and seen.get("node status") in ("Isolated", "Replacing", "Repairing"))  # fmt: skip


def test_the_story_dashboards_and_pages(tmp_path: Path) -> None:
    demo = Demo(free_block(), tmp_path / "demo", speed=SPEED, acting=True, scenario=True)
    started = time.monotonic()
    demo.start()
    site = f"http://127.0.0.1:{demo.ports.inbox}"
    try:
        assert set(demo.children) == {"prometheus", "alertmanager"}
        seen: dict[str, Any] = {}
        deadline = started + 180 / SPEED * 10  # three simulated minutes, with room for load
        while time.monotonic() < deadline and not _complete(seen := _story(demo, site)):
            time.sleep(1)
        took = time.monotonic() - started
        assert _complete(seen), seen
        assert seen["fault"][0] == FIRST
        # the spare took the node's place and is in service
        [spare] = [m.split()[-1] for m in seen["replacing"]]
        assert str(next(n for n in demo.cluster.nodes() if n.name == spare).status) == "Available"
        assert took < 120, f"the story took {took:.0f} s at speed {SPEED:g}"

        # the notification came the production way: Prometheus rules -> Alertmanager -> receiver
        prom = f"http://127.0.0.1:{demo.ports.prometheus}"
        groups = _get(f"{prom}/api/v1/rules")["data"]["groups"]
        assert len(groups) >= 9
        am = _get(f"http://127.0.0.1:{demo.ports.alertmanager}/api/v2/alerts")
        assert any(a["labels"]["alertname"] == "PoolwatchAcceleratorLost" for a in am)
        _silence(demo.ports.alertmanager)

        _varied_faults(demo)
        _pages(site, tmp_path)
        _dashboards(site, prom, tmp_path)
    finally:
        demo.stop()


def _varied_faults(demo: Demo) -> None:
    """The story goes on: a different kind of fault every four simulated minutes (12 s here),
    each on a node where it can strike, each showing in the pool's events or node statuses."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(demo.scenario_struck()) < 4:
        time.sleep(1)
    struck = demo.scenario_struck()
    kinds = [fault for _, fault, _ in struck]
    assert len(set(kinds)) >= 4, struck
    assert {"npu_health", "not_ready"} <= set(kinds)
    npu_node = next(node for _, fault, node in struck if fault == "npu_health")
    assert npu_node.startswith("npu-b-")


def _silence(port: int) -> None:
    """A silence set with amtool, Alertmanager's own client, holds the alert back."""
    amtool, _ = find_program("amtool")
    if amtool is None:
        return
    url = f"http://127.0.0.1:{port}"
    done = subprocess.run([amtool, f"--alertmanager.url={url}", "silence", "add",
                           "alertname=PoolwatchAcceleratorLost", "--comment=test",
                           "--author=test", "--duration=1h"],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alerts = _get(f"{url}/api/v2/alerts")
        states = {a["status"]["state"] for a in alerts
                  if a["labels"]["alertname"] == "PoolwatchAcceleratorLost"}  # fmt: skip
        if states == {"suppressed"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"the silence did not take: {states}")


def _look(url: str, path: Path, expect: list[str], min_ink: float = 0.02) -> str:
    page = dom(url)
    for text in expect:
        assert text in page, f"{url}: {text!r} not in the rendered page"
    screenshot(url, path)
    assert ink(path) > min_ink, f"{path} is (nearly) blank"
    return page


def _pages(site: str, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expect = ["poolwatch demo", "Every part", "Alertmanager", "dashboards (drawn live)",
              "pool API (try it)"]  # fmt: skip
    _look(f"{site}/", shots / "landing.png", expect)
    inbox = _look(f"{site}/inbox", shots / "inbox.png", ["PoolwatchAcceleratorLost", "FIRING"])
    assert 'data-kind="firing"' in inbox
    _look(f"{site}/pool", shots / "pool.png", ["NodeReplacing", "Spare", "gpu_lost", "npu_health"])
    _look(f"{site}/alerts", shots / "alerts.png", ["rule engine alerts"])


def _dashboards(site: str, prom: str, tmp_path: Path) -> None:
    """Every dashboard through the CLI, and one served live by the demo, drawn non-blank."""
    out = tmp_path / "rendered"
    cmd = [sys.executable, "-m", "poolwatch", "dashboards", "render", "--prometheus", prom,
           "--out", str(out), "--range", "10m"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    models = registry.dashboards()
    assert sorted(p.stem for p in out.glob("*.html")) == sorted([*models, "index"])
    for uid, model in models.items():
        page = (out / f"{uid}.html").read_text()
        assert page.count('class="panel"') == len(model["panels"]), uid
        assert "<svg" in page or model["panels"][0]["type"] != "timeseries", uid
        # self-contained: nothing to fetch, nothing to run
        assert "<script" not in page, uid
        assert "<link" not in page, uid
        assert 'src="' not in page, uid
    shots = tmp_path / "screenshots"
    page = _look((out / "poolwatch-ma-pool.html").as_uri(), shots / "ma-pool-cli.png",
                 ["Disk Usage", "<svg"], min_ink=0.05)  # fmt: skip
    assert "No data" not in page.split("Disk Usage", 1)[1][:400]
    _look(f"{site}/dashboards/poolwatch-ma-node.html", shots / "ma-node-live.png",
          ["<svg"], min_ink=0.05)  # fmt: skip
    _look(f"{site}/dashboards/", shots / "dashboards-index.png", ["poolwatch dashboards"])
