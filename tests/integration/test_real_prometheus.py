"""The exporter as a real process, linted by the real promtool and scraped by a real Prometheus."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, not_about_seed_names, parse, promtool_findings, value
from prom_versions import Prometheus

from .conftest import process, prom_query

pytestmark = pytest.mark.integration


def _scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read()


def _wait_for(port: int, name: str, deadline_s: float = 15.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        series = parse(_scrape(port))
        if any(n == name for n, _ in series):
            return series
        time.sleep(0.2)
    pytest.fail(f"{name} never appeared")


def test_full_exposition_passes_promtool(exporter: dict, prom: Prometheus) -> None:
    _wait_for(exporter["port"], "poolwatch_node_cpu_used_ratio")
    body = _scrape(exporter["port"])
    findings = promtool_findings(body, prom.promtool)
    # compat is on: promtool flags only the seeds' own names; every canonical name is clean
    assert not_about_seed_names(findings) == set()
    assert any(f.startswith("ma_node_memory_total_megabytes") for f in findings)


def test_prometheus_scrapes_and_stores_the_cache_utilisation(
    exporter: dict, tmp_path: Path, prom: Prometheus
) -> None:
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: poolwatch
    static_configs: [{{targets: ['127.0.0.1:{exporter["port"]}']}}]
"""
    )
    cmd = [
        prom.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with process(cmd, tmp_path / "prometheus.log", f"{base}/-/ready"):
        deadline = time.monotonic() + 30
        stored: list[dict] = []
        while time.monotonic() < deadline:
            up = prom_query(base, 'up{job="poolwatch"}')
            stored = prom_query(base, 'poolwatch_filesystem_used_ratio{purpose="cache"}')
            if up and up[0]["value"][1] == "1" and stored:
                break
            time.sleep(0.5)
        assert up, "Prometheus never scraped the exporter"
        assert up[0]["value"][1] == "1"
        assert stored, (tmp_path / "prometheus.log").read_text()
        st = os.statvfs(exporter["cache"])
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        expected = used / (used + st.f_bavail * st.f_frsize)
        assert float(stored[0]["value"][1]) == pytest.approx(expected, abs=2e-4)
        assert stored[0]["metric"]["node"] == "node-1"
        assert stored[0]["metric"]["pool"] == "pool-a"
        ups = prom_query(base, "poolwatch_collector_up")
        # every collector is up: a host without GPUs, NPUs, kubelet or cgroup v2 has nothing
        # to report for them, which is not a failure
        from poolwatch.exporters.node import collectors  # noqa: F401 - registers every collector
        from poolwatch.exporters.node.collector import REGISTRY

        assert {r["metric"]["collector"]: r["value"][1] for r in ups} == dict.fromkeys(
            REGISTRY, "1"
        )
        # ModelArts' "cache space" is the Kubernetes space, the kubelet disk: never the /cache
        # ratio (the exporter's default kubelet path is optional; absent here, no alias)
        seed = prom_query(base, "ma_node_cache_space_used_percent")
        kubelet = prom_query(base, 'poolwatch_filesystem_used_ratio{purpose="kubelet"}')
        assert len(seed) == len(kubelet)
        for alias, canonical in zip(seed, kubelet, strict=True):
            assert float(alias["value"][1]) == pytest.approx(
                float(canonical["value"][1]) * 100, abs=0.02
            )


def test_exporter_serves_gzip_and_health(exporter: dict) -> None:
    series = _wait_for(exporter["port"], "poolwatch_cache_dir_usage_bytes")
    assert value(series, "poolwatch_cache_dir_usage_bytes", directory="job-a") >= 200_000
    req = urllib.request.Request(
        f"http://127.0.0.1:{exporter['port']}/metrics", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter['port']}/healthz") as resp:
        text = resp.read().decode()
    assert "cache_dir: up" in text


def test_sigterm_stops_cleanly(exporter: dict) -> None:
    proc = exporter["proc"]
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert "shutting down" in exporter["log"].read_text()
