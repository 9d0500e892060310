"""Pool monitoring and real-time usage against a real Prometheus scraping `poolwatch demo`.

The simulation is frozen (speed 0), so every figure is also known from the simulator. Each
figure the API returns is checked two ways: against the same PromQL written out by hand here
and evaluated by Prometheus at the same instant, and against the simulation's own truth."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import free_block
from prom_versions import Prometheus

from poolwatch.api.app import create_app
from poolwatch.app.demo import Demo
from poolwatch.controller.service import PoolController

from .conftest import get_json, prom_query, running_version, use_prometheus

pytestmark = pytest.mark.integration
TOKEN = "integration-token"  # noqa: S105 - a test token


def _at(base: str, expr: str, at: float) -> float | None:
    doc = get_json(f"{base}/api/v1/query?time={at:.3f}&query={_q(expr)}")
    result = doc["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _q(expr: str) -> str:
    import urllib.parse

    return urllib.parse.quote(expr)


def test_monitoring_and_usage_equal_promql_and_the_simulation(
    tmp_path: Path, prom: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = use_prometheus(prom, tmp_path, monkeypatch)
    demo = Demo(free_block(), tmp_path / "demo", speed=0.0, scrape_interval="1s")
    demo.start()
    try:
        assert demo.prometheus is not None
        base = f"http://127.0.0.1:{demo.ports.prometheus}"
        assert running_version(base) == on_path, "the demo did not run the Prometheus on PATH"
        samples = 'count_over_time(poolwatch_pool_nodes{pool="gpu-a",status="Available"}[1m])'
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                got = prom_query(base, samples)
            except OSError:
                got = []
            if got and float(got[0]["value"][1]) >= 6:
                break
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus did not scrape the demo six times in 45 s")
        cluster = demo.cluster
        controller = PoolController(cluster, state_path=tmp_path / "controller.db")
        app = create_app(controller, cluster, base, TOKEN)
        client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})

        end = int((time.time() - 1) * 1000)
        doc = client.get(
            "/v2/p/pools/gpu-a/monitor",
            params={"time_range": f"-1.{end}.2", "period": 60, "statistics": "maximum"},
        ).json()
        assert doc["timeRange"] == {"startMillis": end - 120_000, "endMillis": end,
                                    "durationMinutes": 2}  # fmt: skip
        series = {m["name"]: m for m in doc["metrics"]}
        # by hand: the maximum over each minute of the pool's Available nodes
        hand = 'max_over_time((sum(poolwatch_pool_nodes{pool="gpu-a",status="Available"}))[60s:])'
        nodes = series["nodes_available"]
        assert nodes["query"] == hand
        assert nodes["datapoints"], "the last window holds the demo's samples"
        truth = Counter(n.status.value for n in cluster.nodes() if n.pool == "gpu-a")
        for p in nodes["datapoints"]:
            assert p["value"] == _at(base, hand, p["timestamp"] / 1000 + 60)
            assert p["value"] == truth["Available"]
        allocated = series["accelerators_allocated"]["datapoints"]
        held = sum(q for pod in cluster.pods() if pod.phase in ("Pending", "Running")
                   for r, q in pod.requests if r == "nvidia.com/gpu"
                   and pod.node.startswith("gpu-a"))  # fmt: skip
        assert [p["value"] for p in allocated] == [held] * len(allocated)

        counted = client.get(
            "/v2/p/pools/gpu-a/monitor",
            params={"time_range": f"-1.{end}.2", "statistics": "sampleCount",
                    "metrics": "nodes_available,cache_used"},
        ).json()  # fmt: skip
        hand = ('count_over_time((sum(poolwatch_pool_nodes{pool="gpu-a",status="Available"}))'
                "[60s:])")  # fmt: skip
        by_name = {m["name"]: m for m in counted["metrics"]}
        points = by_name["nodes_available"]["datapoints"]
        assert points
        for p in points:
            assert p["value"] == _at(base, hand, p["timestamp"] / 1000 + 60)
            assert p["value"] >= 3  # about one point per evaluation interval (1 s) with data
        cache = by_name["cache_used"]
        hand = ('count_over_time((max(poolwatch_filesystem_used_ratio{pool="gpu-a",'
                'purpose="cache"}))[60s:])')  # fmt: skip
        assert cache["query"] == hand
        for p in cache["datapoints"]:
            assert p["value"] == _at(base, hand, p["timestamp"] / 1000 + 60)

        usage = client.get("/v2/p/metrics/runtime/pools").json()
        items = {i["pool"]: i for i in usage["items"]}
        at = usage["time"] / 1000
        for pool, devices in (("gpu-a", 64.0), ("npu-b", 32.0)):
            hand = f'sum(poolwatch_pool_accelerators{{pool="{pool}"}})'
            assert items[pool]["accelerators"]["total"] == _at(base, hand, at) == devices
            hand = f'max(poolwatch_filesystem_used_ratio{{pool="{pool}",purpose="cache"}})'
            assert items[pool]["cache"]["maxUsedRatio"] == pytest.approx(_at(base, hand, at))
        assert items["gpu-a"]["accelerators"]["allocated"] == held
        assert items["gpu-a"]["cpu"]["usedCores"] is None  # simulated nodes export no host CPU
    finally:
        demo.stop()
