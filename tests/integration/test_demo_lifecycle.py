"""The demo as a process: one per data directory, children that die with it however it ends,
a clean stop on SIGHUP, and a restart that resumes the simulated pool instead of resetting it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_block

from poolwatch.app.demo import Demo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not shutil.which("prometheus"), reason="Debian package prometheus missing"),
]


def _start(data: Path, base: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolwatch", "demo", "--data-dir", str(data), "--port-base",
         str(base), "--speed", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (data / "demo.json").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    assert (data / "demo.json").exists(), "the demo did not start within 90 s"
    return proc


def _children(data: Path) -> list[int]:
    """Pids of the programs (not poolwatch itself) with the demo's data directory on their
    command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m\0poolwatch\0demo" in b"\0".join(argv):
            continue  # a demo itself
        if any(str(data).encode() in a for a in argv):
            found.append(int(entry.name))
    return found


def _gone(data: Path, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while _children(data):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_second_demo_on_the_same_data_dir_is_refused_and_sigkill_takes_the_children(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    proc = _start(data, free_block())
    try:
        kids = _children(data)
        logs = {p.name: p.read_text() for p in data.glob("*.log")}
        assert len(kids) == 2, (kids, logs)  # Prometheus and Alertmanager
        second = subprocess.run(
            [sys.executable, "-m", "poolwatch", "demo", "--data-dir", str(data), "--port-base",
             str(free_block())], capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"another poolwatch demo (pid {proc.pid}) is using the data directory" in (
            second.stderr
        )
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: only the kernel can clean up
        proc.wait(timeout=10)
        assert _gone(data), f"still running after the demo was killed: {_children(data)}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _children(data):
            os.kill(pid, signal.SIGKILL)


def test_sighup_stops_the_demo_and_its_children_without_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc = _start(data, free_block())
    try:
        time.sleep(5)  # let the story start: rules evaluated, first fault struck
        os.kill(proc.pid, signal.SIGHUP)  # what closing the terminal sends
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert _gone(data, within=5)
        noisy = [line for line in err.splitlines()
                 if " WARNING " in line or " ERROR " in line or "Traceback" in line]  # fmt: skip
        assert not noisy, "\n".join(noisy)
        assert "stopping" in err
    finally:
        if proc.poll() is None:
            proc.kill()


def _inbox(demo: Demo) -> list[dict]:
    url = f"http://127.0.0.1:{demo.ports.inbox}/inbox.json"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["messages"]


def test_a_restarted_demo_resumes_the_pool_and_sends_no_spurious_resolved(tmp_path: Path) -> None:
    """The first run lasts until the scripted fault's alert fires and the node is isolated; the
    second (slower, so the fault's repair is minutes away) must find the node still faulty and
    isolated, the inbox as it was, and never tell the inbox the alert resolved. Before resuming
    existed, the fresh pool had no fault and the engine sent RESOLVED at its first evaluation."""
    data = tmp_path / "demo"
    first = Demo(free_block(), data, prometheus=False, speed=20, acting=True, scenario=True)
    first.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "PoolwatchAcceleratorLost" in m["alertname"].split(", ") for m in _inbox(first)
        ):
            time.sleep(0.5)
        _, _, node = first.scenario_struck()[0]
        status = {n.name: str(n.status) for n in first.cluster.nodes()}[node]
        assert status in ("Isolated", "Replacing", "Repairing")
        before = _inbox(first)
    finally:
        first.stop()
    assert any("PoolwatchAcceleratorLost" in m["alertname"].split(", ") for m in before)

    second = Demo(free_block(), data, prometheus=False, speed=1, rules_interval=1.0,
                  acting=True, scenario=True)  # fmt: skip
    second.start()
    try:
        assert second.resumed
        assert "gpu_lost" in second.cluster.node_faults(node)
        time.sleep(12)  # a dozen evaluations of the rules
        after = _inbox(second)
        assert [m["id"] for m in after[-len(before) :]] == [m["id"] for m in before]
        lost = [m for m in after if "PoolwatchAcceleratorLost" in m["alertname"].split(", ")]
        resolved = [m["title"] for m in lost if m["kind"] == "resolved"]
        assert not resolved
        status = {n.name: str(n.status) for n in second.cluster.nodes()}[node]
        assert status in ("Isolated", "Replacing", "Repairing")
    finally:
        second.stop()
