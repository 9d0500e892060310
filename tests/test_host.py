"""The host collector on /proc files captured on the development VM."""

from pathlib import Path

import pytest
from helpers import FIXTURES, names, run_collector, value

from poolwatch.exporters.node.collectors.host import (
    HostCollector,
    parse_diskstats,
    parse_meminfo,
    parse_net_dev,
    parse_stat,
)
from poolwatch.exporters.node.settings import HostSettings


def test_parsers_on_captured_files() -> None:
    cores, modes = parse_stat((FIXTURES / "proc/stat").read_text())
    assert cores == 2
    assert modes["user"] == 4096
    assert modes["iowait"] == 398
    mem = parse_meminfo((FIXTURES / "proc/meminfo").read_text())
    assert mem["MemTotal"] == 24683656 * 1024
    net = parse_net_dev((FIXTURES / "proc/net/dev").read_text())
    assert net["eth0"][0] == 64791006
    assert net["eth0"][8] == 120211
    disks = parse_diskstats((FIXTURES / "proc/diskstats").read_text())
    assert disks["vda"][:2] == ("254", "0")
    assert disks["vda"][2][2] == 2240666  # sectors read


def test_collector_units_filters_and_aliases() -> None:
    ok, s, _ = run_collector(HostCollector(HostSettings(), FIXTURES / "proc"), ("modelarts",))
    assert ok
    assert value(s, "poolwatch_node_cpu_cores") == 2
    assert value(s, "poolwatch_node_cpu_seconds_total", mode="iowait") == pytest.approx(3.98)
    assert value(s, "ma_node_cpu_iowait_counter") == pytest.approx(398)
    assert value(s, "poolwatch_node_memory_total_bytes") == 24683656 * 1024
    assert value(s, "ma_node_memory_total_megabytes") == pytest.approx(24683656 / 1024)
    assert value(s, "poolwatch_node_disk_read_bytes_total", device="vda") == 2240666 * 512
    assert value(s, "ma_node_disk_read_bytes_total", device="vda") == 2240666 * 512
    assert value(s, "poolwatch_node_disk_read_time_seconds_total", device="vda") == 10.227
    assert value(s, "poolwatch_node_disk_info", device="vda", major="254", minor="0") == 1
    assert value(s, "poolwatch_node_network_receive_bytes_total", device="eth0") == 64791006
    devices = {dict(ls).get("device") for n, ls in s if n.startswith("poolwatch_node_disk")}
    assert devices == {"vda"}  # loop*, zram* are excluded by default
    nics = {dict(ls).get("device") for n, ls in s if n.startswith("poolwatch_node_network")}
    assert "lo" not in nics
    assert "eth0" in nics
    # the same /proc/stat twice gives no interval, so no utilisation rather than a made-up one
    assert "poolwatch_node_cpu_used_ratio" not in names(s)


def test_cpu_utilisation_between_two_collections(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    for f in ("meminfo", "diskstats", "net/dev"):
        (tmp_path / f).write_text((FIXTURES / "proc" / f).read_text())
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n")
    c = HostCollector(HostSettings(), tmp_path)
    stat.write_text("cpu  250 0 150 800 200 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n")
    _, s, _ = run_collector(c, ("modelarts",))
    # busy 200 of 400 jiffies (idle and iowait count as idle)
    assert value(s, "poolwatch_node_cpu_used_ratio") == pytest.approx(0.5)
    assert value(s, "poolwatch_node_cpu_used_cores") == pytest.approx(0.5)
    assert value(s, "ma_node_cpu_util") == pytest.approx(50.0)


def test_unreadable_proc_marks_host_down(tmp_path: Path) -> None:
    ok, s, store = run_collector(HostCollector(HostSettings(), tmp_path))
    assert not ok
    assert value(s, "poolwatch_collector_up", collector="host") == 0
    assert "stat" in store.states()[0].last_error
