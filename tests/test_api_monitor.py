"""Real-time usage and pool monitoring against a stub Prometheus HTTP API: which queries the
API sends, how it folds periods, and how it answers bad parameters and a dead Prometheus.
(tests/integration/test_api_prometheus.py does the same against a real Prometheus.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import P, error
from test_api_support import TOKEN, StubPrometheus, controller_over, quiet_cluster, serve_stub

from poolwatch.api.app import create_app
from poolwatch.api.queries import MONITOR_NAMES, USAGE

NOW_MS = 1_760_000_000_000


@pytest.fixture
def stub() -> StubPrometheus:
    return StubPrometheus()


@pytest.fixture
def client(tmp_path: Path, stub: StubPrometheus) -> Iterator[TestClient]:
    cluster = quiet_cluster()
    for url in serve_stub(stub):
        app = create_app(controller_over(cluster, tmp_path), cluster, url, TOKEN,
                         clock=lambda: NOW_MS / 1000, resolution="15s")  # fmt: skip
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            yield c


def monitor(client: TestClient, **params: Any) -> Any:
    return client.get(f"{P}/pools/gpu-a/monitor", params=params)


def test_default_monitoring_is_the_latest_hour_by_minute_maximum(
    client: TestClient, stub: StubPrometheus
) -> None:
    doc = monitor(client, metrics="accelerator_util").json()
    assert doc["statistics"] == "maximum"
    assert doc["period"] == 60
    assert doc["timeRange"] == {"startMillis": NOW_MS - 3_600_000, "endMillis": NOW_MS,
                                "durationMinutes": 60}  # fmt: skip
    (series,) = doc["metrics"]
    expected = ('max_over_time((avg(poolwatch_accelerator_utilization_ratio{pool="gpu-a"}))'
                "[60s:15s])")  # fmt: skip
    assert series["query"] == expected
    (q,) = [q for q in stub.queries if q["path"] == "/api/v1/query_range"]
    assert q["query"] == expected
    assert float(q["start"]) == NOW_MS / 1000 - 3600 + 60  # the first window ends here
    assert float(q["end"]) == NOW_MS / 1000
    assert float(q["step"]) == 60
    points = series["datapoints"]
    assert len(points) == 60
    # each point is stamped with the start of its window; the stub's value is t % 1000
    assert points[0] == {"timestamp": NOW_MS - 3_600_000, "value": (NOW_MS / 1000 - 3540) % 1000}
    assert points[-1]["timestamp"] == NOW_MS - 60_000


@pytest.mark.parametrize(("stat", "fn"), [
    ("maximum", "max_over_time"), ("minimum", "min_over_time"), ("sum", "sum_over_time"),
    ("average", "avg_over_time"), ("sampleCount", "count_over_time"),
])  # fmt: skip
def test_each_statistic_folds_with_its_function(client: TestClient, stat: str, fn: str) -> None:
    doc = monitor(client, statistics=stat, period=300, metrics="cpu_used").json()
    assert doc["metrics"][0]["query"].startswith(f"{fn}((sum(poolwatch_node_cpu_used_cores")
    assert doc["metrics"][0]["query"].endswith("[300s:15s])")
    assert len(doc["metrics"][0]["datapoints"]) == 12


def test_blank_parameters_take_the_seed_defaults(client: TestClient) -> None:
    doc = monitor(client, time_range="", statistics="", period="", metrics="nodes_available")
    assert doc.status_code == 200, doc.text
    assert doc.json()["statistics"] == "maximum"
    assert doc.json()["period"] == 60
    assert doc.json()["timeRange"]["durationMinutes"] == 60


def test_every_metric_by_default(client: TestClient) -> None:
    doc = monitor(client, time_range="-1.-1.10").json()
    assert [m["name"] for m in doc["metrics"]] == list(MONITOR_NAMES)
    assert all(len(m["datapoints"]) == 10 for m in doc["metrics"])


def test_a_range_shorter_than_a_period_has_no_points(client: TestClient) -> None:
    start = NOW_MS - 30 * 60_000
    doc = monitor(client, time_range=f"{start}.{start + 120_000}.2", period=300).json()
    assert all(m["datapoints"] == [] for m in doc["metrics"])


@pytest.mark.parametrize(("params", "code", "parameter"), [
    ({"time_range": "-1.-1.1441"}, "PW.0401", "time_range"),
    ({"time_range": "-1.-1.7201", "period": "300"}, "PW.0401", "time_range"),
    ({"time_range": "-1.-1.0"}, "PW.0401", "time_range"),
    ({"time_range": "yesterday"}, "PW.0401", "time_range"),
    ({"statistics": "median"}, "PW.0403", "statistics"),
    ({"statistics": "Maximum"}, "PW.0403", "statistics"),
    ({"period": "120"}, "PW.0402", "period"),
    ({"metrics": "gpu_temperature"}, "PW.0100", "metrics"),
])  # fmt: skip
def test_bad_monitoring_parameters(
    client: TestClient, stub: StubPrometheus, params: dict[str, str], code: str, parameter: str
) -> None:
    error(monitor(client, **params), 400, code, parameter)
    assert stub.queries == []  # nothing is asked of Prometheus for a bad request


def test_a_long_range_at_a_coarse_period_is_fine(client: TestClient) -> None:
    doc = monitor(client, time_range="-1.-1.86400", period="3600", metrics="cache_used").json()
    assert len(doc["metrics"][0]["datapoints"]) == 1440


def test_usage_reads_every_figure_per_pool(client: TestClient, stub: StubPrometheus) -> None:
    stub.instant = {
        USAGE["accelerators"]["total"]: [({"pool": "gpu-a"}, 64), ({"pool": "npu-b"}, 32)],
        USAGE["accelerators"]["allocated"]: [({"pool": "gpu-a"}, 8)],
        USAGE["cpu"]["usedCores"]: [({"pool": "npu-b"}, 3.5), ({"pool": "elsewhere"}, 1)],
        USAGE["cache"]["maxUsedRatio"]: [({"pool": "gpu-a"}, float("nan"))],
    }
    doc = client.get(f"{P}/metrics/runtime/pools").json()
    assert doc["time"] == NOW_MS
    items = {i["pool"]: i for i in doc["items"]}
    assert set(items) == {"gpu-a", "npu-b"}
    assert items["gpu-a"]["accelerators"]["total"] == 64
    assert items["gpu-a"]["accelerators"]["allocated"] == 8
    assert items["npu-b"]["accelerators"]["allocated"] is None  # no series: no figure
    assert items["npu-b"]["cpu"]["usedCores"] == 3.5
    assert items["gpu-a"]["cache"]["maxUsedRatio"] is None  # NaN is no figure, not a crash
    sent = [q["query"] for q in stub.queries]
    assert sent == [e for fig in USAGE.values() for e in fig.values()]
    assert all(float(q["time"]) == NOW_MS / 1000 for q in stub.queries)


def test_a_dead_prometheus_is_a_502_never_zeros(client: TestClient, stub: StubPrometheus) -> None:
    stub.down = True
    body = error(client.get(f"{P}/metrics/runtime/pools"), 502, "PW.0301")
    assert "stub is down" in body["error_msg"]
    error(monitor(client), 502, "PW.0301")


def test_an_unreachable_prometheus_is_a_502(tmp_path: Path) -> None:
    cluster = quiet_cluster()
    app = create_app(controller_over(cluster, tmp_path), cluster, "http://127.0.0.1:9", TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        error(c.get(f"{P}/metrics/runtime/pools"), 502, "PW.0301")
