"""The InfiniBand collector on the captured sysfs tree of three real HCAs (procfs fixtures)."""

from pathlib import Path

from helpers import FIXTURES, names, run_collector, value

from poolwatch.exporters.node.collectors.infiniband import (
    InfinibandCollector,
    parse_rate,
    parse_state,
)
from poolwatch.exporters.node.settings import _IncludeExclude


def collector(sysfs: Path = FIXTURES / "sys", **kw: str) -> InfinibandCollector:
    return InfinibandCollector(_IncludeExclude(**kw), sysfs)


def test_data_counters_are_bytes_and_seed_aliases_keep_words() -> None:
    ok, s, _ = run_collector(collector(), compat=("modelarts",))
    assert ok
    rcv = value(s, "poolwatch_infiniband_port_data_received_bytes_total", device="hfi1_0", port="1")
    assert rcv == 345091702026 * 4
    xmit = value(
        s, "poolwatch_infiniband_port_data_transmitted_bytes_total", device="mlx5_0", port="1"
    )
    assert xmit == 2880761508848 * 4
    words = value(s, "ma_node_infiniband_port_received_data_bytes_total", device="hfi1_0")
    assert words == 345091702026
    assert value(s, "infiniband_port_rcv_data_total", device="hfi1_0") == 345091702026
    assert value(s, "infiniband_port_transmit_wait_total", device="mlx4_0", port="2") == 3846


def test_port_state_rate_and_identity() -> None:
    _, s, _ = run_collector(collector())
    assert value(s, "poolwatch_infiniband_port_state", device="mlx5_0", port="1") == 4
    assert value(s, "poolwatch_infiniband_port_physical_state", device="hfi1_0", port="1") == 5
    rate = value(s, "poolwatch_infiniband_port_rate_bytes_per_second", device="hfi1_0", port="1")
    assert rate == 100e9 / 8
    info = value(s, "poolwatch_infiniband_info", device="mlx4_0", firmware_version="2.31.5050")
    assert info == 1
    assert value(s, "poolwatch_infiniband_port_vl15_dropped_total", device="mlx4_0", port="1") >= 0
    # every sample carries the node identity the runner adds
    assert value(s, "poolwatch_infiniband_port_state", device="mlx4_0", port="2", node="n1") == 4


def test_parsers_handle_real_formats() -> None:
    assert parse_state("4: ACTIVE") == 4
    assert parse_state("5: LinkUp\n") == 5
    assert parse_state("garbage") is None
    assert parse_rate("25 Gb/sec (1X EDR)") == 25e9 / 8
    assert parse_rate("2.5 Gb/sec (1X SDR)") == 2.5e9 / 8
    assert parse_rate("") is None


def test_include_filter_and_no_infiniband_is_not_a_failure(tmp_path: Path) -> None:
    ok, s, _ = run_collector(collector(include="mlx4_.*"))
    assert ok
    devices = {dict(ls).get("device") for n, ls in s if n.startswith("poolwatch_infiniband_port")}
    assert devices == {"mlx4_0"}
    ok, s, _ = run_collector(collector(sysfs=tmp_path))  # a node without InfiniBand
    assert ok
    assert value(s, "poolwatch_collector_up", collector="infiniband") == 1
    assert not [n for n in names(s) if n.startswith("poolwatch_infiniband")]


def test_garbage_counter_is_skipped_and_the_rest_reported(tmp_path: Path) -> None:
    port = tmp_path / "class/infiniband/mlx5_9/ports/1"
    (port / "counters").mkdir(parents=True)
    (port / "state").write_text("4: ACTIVE\n")
    (port / "counters/port_rcv_data").write_text("N/A\n")
    (port / "counters/symbol_error").write_text("7\n")
    ok, s, _ = run_collector(collector(sysfs=tmp_path))
    assert ok
    assert value(s, "poolwatch_infiniband_port_symbol_errors_total", device="mlx5_9") == 7
    assert "poolwatch_infiniband_port_data_received_bytes_total" not in names(s)


def test_hca_without_ports_marks_collector_down_but_keeps_other_series(tmp_path: Path) -> None:
    (tmp_path / "class/infiniband/broken0").mkdir(parents=True)
    good = tmp_path / "class/infiniband/mlx5_0/ports/1"
    good.mkdir(parents=True)
    (good / "state").write_text("4: ACTIVE\n")
    ok, s, _ = run_collector(collector(sysfs=tmp_path))
    assert not ok
    assert value(s, "poolwatch_collector_up", collector="infiniband") == 0
    assert value(s, "poolwatch_infiniband_port_state", device="mlx5_0") == 4
