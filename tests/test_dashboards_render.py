"""The pieces of `poolwatch dashboards render` that need no Prometheus: units, thresholds,
titles, legends and Grafana's table transformations, on the generated dashboards' own panels.
(The live drawing of every dashboard runs in tests/integration/test_demo_story.py.)"""

from __future__ import annotations

from pathlib import Path

from poolwatch.dashboards import registry
from poolwatch.dashboards.render import fmt_value, threshold_color, title_text
from poolwatch.dashboards.render_data import Series, legend, table_rows, variable_texts


def test_values_read_as_grafana_shows_them_in_each_unit_the_dashboards_use() -> None:
    assert fmt_value(0.953, "percentunit") == "95.3%"
    assert fmt_value(3 * 1024**3, "bytes") == "3 GiB"
    assert fmt_value(1536, "Bps") == "1.5 KiB/s"
    assert fmt_value(71.5, "celsius") == "71.5 °C"
    assert fmt_value(400, "watt") == "400 W"
    assert fmt_value(12, "") == "12"
    assert fmt_value(2_500_000, "none") == "2.5 M"
    assert fmt_value(float("nan"), "") == "-"


def test_threshold_colours_follow_the_steps_reached() -> None:
    steps = [{"color": "green", "value": None}, {"color": "red", "value": 0.9}]
    assert threshold_color(0.5, steps) == "#2f9e44"
    assert threshold_color(0.95, steps) == "#e03131"


def test_titles_and_legends_fill_in_variables_and_labels() -> None:
    model = registry.dashboards()["poolwatch-ma-node"]
    values = {"accel": "huawei", "pool": ".*", "node": ".*"}
    texts = variable_texts(model, values)
    assert title_text("${accel:text} utilization", values, texts) == "NPU utilization"
    assert legend("{{node}} #{{index}}", {"node": "n1", "index": "3"}) == "n1 #3"
    assert legend("{{pool}}", {}) == ""  # a label the series lacks shows as nothing


def test_a_table_panel_merges_its_queries_by_labels_in_the_configured_columns() -> None:
    model = registry.dashboards()["poolwatch-ma-pool"]
    [panel] = [p for p in model["panels"] if p["type"] == "table"]
    results = {
        "A": [Series({"pool": "gpu-a", "resource": "r", "task_cards": "8"}, [(0, 5.0)])],
        "B": [Series({"pool": "gpu-a", "resource": "r", "task_cards": "8"}, [(0, 2.0)])],
    }
    header, rows = table_rows(panel, results)
    assert header == ["Resource Pool", "Task Cards", "Idle Cards", "Fragments"]
    assert rows == [["gpu-a", "8", 5.0, 2.0]]


def test_render_names_a_prometheus_it_cannot_reach_and_exits_1(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    done = subprocess.run([sys.executable, "-m", "poolwatch", "dashboards", "render",
                           "--prometheus", url, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1
    assert f"cannot query Prometheus at {url}" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "poolwatch", "dashboards", "render",
                          "--prometheus", "localhost:9090", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "expected http(s)://host:port" in bad.stderr
