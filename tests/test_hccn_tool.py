"""The hccn_tool backend on published outputs (tests/fixtures/hccn/SOURCES.md).

Parsers are tested on the fixtures directly; `HccnToolBackend.read()` runs with a fake `run` that
answers each `hccn_tool -i <id> -<view> -g` argv with a fixture, so every layout goes through the
same code path as on a node. The fixtures are documentation examples, some with elided lines: tests
that need a line the documentation left out (a DOWN link, the other `-stat` counters, the current
four-lane optical layout) add it visibly, in hccn_tool's own line format.
"""

from __future__ import annotations

import csv
import logging
import re
import stat
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES
from prometheus_client.core import Metric

from poolwatch.core import catalog
from poolwatch.core.catalog.hccn import HCCN_SPECS
from poolwatch.exporters.node import compat
from poolwatch.exporters.node.accelerators.hccn_tool import (
    DEFAULT_PATH,
    STAT_COUNTERS,
    HccnToolBackend,
    LinkStat,
    davinci_ids,
    parse_link,
    parse_link_stat,
    parse_optical,
    parse_stat,
)
from poolwatch.exporters.node.accelerators.model import BackendUnavailable, Reading
from poolwatch.exporters.node.accelerators.npu_smi import NpuSmiError
from poolwatch.exporters.node.compat import CompatExpander

HCCN = FIXTURES / "hccn"
SEEDS = {r["name"] for r in csv.DictReader((FIXTURES / "spec/seed-metrics.csv").open())}
UNSUPPORTED = "This device does not support this function.\n"  # hccn_tool's own wording


def fixture(name: str) -> str:
    return (HCCN / name).read_text()


# The counters the documentation's -stat example elides, in hccn_tool's `name:count` form.
STAT_ELIDED = """\
mac_rx_pfc_pkt_num:17
mac_tx_total_pkt_num:900
mac_tx_total_oct_num:123456789
mac_tx_bad_pkt_num:1
mac_rx_total_pkt_num:800
mac_rx_total_oct_num:987654321
mac_rx_bad_pkt_num:2
roce_rx_all_pkt_num:5000
roce_rx_err_pkt_num:3
roce_tx_all_pkt_num:6000
roce_tx_err_pkt_num:4
"""

# The current optical layout (four lanes, temperature, Vcc), in hccn_tool's `key : value` form.
OPTICAL_4_LANES = """\
optical info:
present              : present
temperature          : 45 C
high power enable reg: enabled
vendor name          : HUAWEI
Vcc                  : 3280.00 mV
Tx Power0            : 0.8234 mW
Rx Power0            : 0.7000 mW
Tx Power1            : 0.8000 mW
Rx Power1            : 0.0000 mW
Tx Power2            : 0.8100 mW
Rx Power2            : 0.6900 mW
Tx Power3            : 0.8200 mW
Rx Power3            : 0.6800 mW
Vcc High Thres       : 3465.00 mV
Tx Los Flag          : 0x0
"""


def full_stat() -> str:
    return fixture("stat_mindcluster_doc_EXCERPT.txt") + STAT_ELIDED


VIEWS = {
    "link": fixture("link_mindcluster_doc.txt"),
    "link_stat": fixture("link_stat_devid_hccl_doc.txt"),
    "stat": full_stat(),
    "optical": OPTICAL_4_LANES,
}


class FakeHccnTool:
    """Answers argv like hccn_tool would: `views[view]`, per-device `overrides[(view, dev)]`
    (a text, or an exception to raise)."""

    def __init__(
        self,
        views: dict[str, str] | None = None,
        overrides: dict[tuple[str, int], str | Exception] | None = None,
    ) -> None:
        self.views = dict(VIEWS if views is None else views)
        self.overrides = overrides or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> str:
        self.calls.append(argv)
        assert argv[1] == "-i", argv
        assert argv[4] == "-g", argv
        dev, view = int(argv[2]), argv[3].removeprefix("-")
        answer = self.overrides.get((view, dev), self.views.get(view))
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            raise NpuSmiError(f"{' '.join(argv)} exited 1: unknown view")
        return answer

    def views_of(self, dev: int) -> list[str]:
        return [c[3] for c in self.calls if c[2] == str(dev)]


def backend(fake: FakeHccnTool, ids: list[int] | None = None) -> HccnToolBackend:
    """Every view on every reading (the per-view intervals have tests of their own)."""
    every = dict.fromkeys(("link", "link_stat", "stat", "optical"), 0.0)
    return HccnToolBackend(
        device_ids=lambda: [0, 1] if ids is None else ids, run=fake, intervals=every
    )


def samples(reading: Reading, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the family whose exposed name is `name`."""
    fams = {exposed(f): f for f in reading.extra}
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples}


def exposed(fam: Metric) -> str:
    return fam.name + "_total" if fam.type == "counter" else fam.name


def dev(device_id: int, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"device_id": str(device_id), **labels}.items()))


# -- parsers -------------------------------------------------------------------------------------
def test_link_status_up_and_down() -> None:
    text = fixture("link_mindcluster_doc.txt")
    assert parse_link(text) is True
    assert parse_link(text.replace("UP", "DOWN")) is False  # as quoted by npu-exporter


@pytest.mark.parametrize(
    "text", ["link status: UNKNOWN\n", "link status: UP\nlink status: UP\n", "linkstatus UP\n", ""]
)
def test_unknown_link_output_is_an_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="-link -g"):
        parse_link(text)


def test_link_stat_of_2025_has_up_and_down_counts() -> None:
    got = parse_link_stat(fixture("link_stat_devid_hccl_doc.txt"))
    assert (got.up_count, got.down_count) == (2, 1)
    assert got.records == [
        ("Sun Oct  5 10:13:51 2025", True),
        ("Sun Oct  5 10:13:50 2025", False),
        ("Sun Oct  5 10:13:35 2025", True),
    ]


def test_link_stat_of_2023_has_no_down_count() -> None:
    got = parse_link_stat(fixture("link_stat_device_mindcluster_doc.txt"))
    assert (got.up_count, got.down_count) == (2, None)
    assert [up for _, up in got.records] == [True, False, True]


def test_link_stat_without_records_says_na() -> None:
    text = "\n".join(fixture("link_stat_devid_hccl_doc.txt").splitlines()[:4])
    text = text.replace("link change records :", "link change records : NA")  # empty history
    assert parse_link_stat(text) == LinkStat(2, 1, [])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("link up count       : 2", "link up count       : two"),
        ("    Sun Oct  5 10:13:50 2025    LINK DOWN", "    Sun Oct  5 10:13:50 2025    FLAPPED"),
        ("current time        : Tue Oct 28 21:46:46 2025", "current time        : yesterday"),
    ],
)
def test_garbled_link_stat_line_is_named(old: str, new: str) -> None:
    text = fixture("link_stat_devid_hccl_doc.txt")
    assert old in text
    with pytest.raises(ValueError, match=re.escape(repr("[devid 0]" + new))):
        parse_link_stat(text.replace(old, new))


def test_link_stat_without_up_count_is_an_error() -> None:
    text = fixture("link_stat_devid_hccl_doc.txt").replace("link up count", "link ok count")
    with pytest.raises(ValueError, match="-link_stat -g"):
        parse_link_stat(text)


def test_stat_counters_of_the_documented_excerpt() -> None:
    got = parse_stat(fixture("stat_mindcluster_doc_EXCERPT.txt"))
    assert got["mac_tx_mac_pause_num"] == 0
    assert got["mac_tx_pfc_pkt_num"] == 0
    assert got["nic_rx_all_oct_num"] == 482237805
    assert "mac_rx_pfc_pkt_num" not in got  # elided by the documentation


@pytest.mark.parametrize("line", ["mac_tx_pfc_pkt_num:-1", "mac_tx_pfc_pkt_num:NA", "..."])
def test_garbled_stat_line_is_named(line: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(line))):
        parse_stat(fixture("stat_mindcluster_doc_EXCERPT.txt") + line + "\n")


def test_stat_counter_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_stat(fixture("stat_mindcluster_doc_EXCERPT.txt") + "mac_tx_pfc_pkt_num:5\n")


def test_optical_of_the_older_single_lane_layout() -> None:
    got = parse_optical(fixture("optical_mindcluster_doc_EXCERPT.txt"))
    assert got.present is False
    assert got.tx_power == {"0": pytest.approx(4.4035e-3)}  # unnumbered: lane 0, in watts
    assert got.rx_power == {"0": pytest.approx(1.0189e-3)}
    assert got.temperature is None
    assert got.vcc is None


def test_optical_of_the_current_four_lane_layout() -> None:
    got = parse_optical(OPTICAL_4_LANES)
    assert got.present is True
    assert got.temperature == 45.0
    assert got.vcc == pytest.approx(3.28)
    assert got.tx_power == pytest.approx({"0": 8.234e-4, "1": 8e-4, "2": 8.1e-4, "3": 8.2e-4})
    assert got.rx_power["1"] == 0.0  # no light is a reading, not a missing value


def test_optical_missing_readings_are_absent() -> None:
    text = OPTICAL_4_LANES.replace("45 C", "not supported").replace("3280.00 mV", "get failed")
    text = text.replace("Tx Power2            : 0.8100 mW", "Tx Power2            : NA")
    got = parse_optical(text)
    assert got.temperature is None
    assert got.vcc is None
    assert sorted(got.tx_power) == ["0", "1", "3"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Tx Power0            : 0.8234 mW", "Tx Power0            : -0.84 dBm"),
        ("temperature          : 45 C", "temperature          : hot"),
        ("present              : present", "present              : maybe"),
        ("Tx Los Flag          : 0x0", "..."),
        ("Rx Power3            : 0.6800 mW", "Rx Power0            : 0.6800 mW"),
    ],
)
def test_garbled_optical_line_is_named(old: str, new: str) -> None:
    assert old in OPTICAL_4_LANES
    with pytest.raises(ValueError, match=re.escape(repr(new))):
        parse_optical(OPTICAL_4_LANES.replace(old, new))


def test_device_ids_are_the_davinci_nodes(tmp_path: Path) -> None:
    for name in ("davinci0", "davinci1", "davinci10", "davinci_manager", "devmm_svm", "hisi_hdc"):
        (tmp_path / name).touch()
    assert davinci_ids(tmp_path) == [0, 1, 10]
    assert davinci_ids(tmp_path / "missing") == []


# -- the backend ---------------------------------------------------------------------------------
def test_reading_has_no_devices_and_every_family_per_device() -> None:
    fake = FakeHccnTool()
    reading = backend(fake).read()
    assert reading.devices == []
    assert reading.problems == []
    assert {exposed(f) for f in reading.extra} == {s.name for s in HCCN_SPECS}
    assert samples(reading, "poolwatch_npu_link_up") == {dev(0): 1.0, dev(1): 1.0}
    assert samples(reading, "poolwatch_npu_link_up_transitions_total") == {dev(0): 2, dev(1): 2}
    assert samples(reading, "poolwatch_npu_link_down_transitions_total")[dev(1)] == 1
    assert samples(reading, "poolwatch_npu_port_transmit_bytes_total")[dev(0)] == 123456789
    assert samples(reading, "poolwatch_npu_port_receive_pfc_frames_total")[dev(1)] == 17
    assert samples(reading, "poolwatch_npu_roce_transmit_errors_total")[dev(0)] == 4
    assert samples(reading, "poolwatch_npu_optical_present") == {dev(0): 1.0, dev(1): 1.0}
    assert samples(reading, "poolwatch_npu_optical_supply_voltage_volts")[dev(0)] == 3.28
    power = samples(reading, "poolwatch_npu_optical_transmit_power_watts")
    assert len(power) == 8
    assert power[dev(1, lane="3")] == pytest.approx(8.2e-4)
    assert sorted(fake.views_of(0)) == ["-link", "-link_stat", "-optical", "-stat"]


def test_older_driver_has_no_down_transitions() -> None:
    views = {**VIEWS, "link_stat": fixture("link_stat_device_mindcluster_doc.txt")}
    reading = backend(FakeHccnTool(views)).read()
    assert samples(reading, "poolwatch_npu_link_down_transitions_total") == {}
    assert samples(reading, "poolwatch_npu_link_up_transitions_total") == {dev(0): 2, dev(1): 2}


def test_documented_excerpts_export_what_they_hold() -> None:
    views = {
        **VIEWS,
        "stat": fixture("stat_mindcluster_doc_EXCERPT.txt"),
        "optical": fixture("optical_mindcluster_doc_EXCERPT.txt"),
    }
    reading = backend(FakeHccnTool(views), ids=[0]).read()
    assert reading.problems == []
    assert samples(reading, "poolwatch_npu_port_transmit_pause_frames_total") == {dev(0): 0}
    assert samples(reading, "poolwatch_npu_port_receive_pfc_frames_total") == {}  # elided
    assert samples(reading, "poolwatch_npu_optical_present") == {dev(0): 0.0}
    assert samples(reading, "poolwatch_npu_optical_receive_power_watts") == {
        dev(0, lane="0"): pytest.approx(1.0189e-3)
    }


def test_one_garbled_view_is_a_problem_line_and_the_rest_is_reported() -> None:
    garbled = full_stat().replace("mac_tx_pfc_pkt_num:0", "mac_tx_pfc_pkt_num:lots")
    reading = backend(FakeHccnTool(overrides={("stat", 1): garbled})).read()
    assert len(reading.problems) == 1
    assert reading.problems[0].startswith("device 1: -stat -g: ")
    assert "mac_tx_pfc_pkt_num:lots" in reading.problems[0]
    assert samples(reading, "poolwatch_npu_roce_receive_packets_total") == {dev(0): 5000}
    assert samples(reading, "poolwatch_npu_link_up") == {dev(0): 1.0, dev(1): 1.0}
    assert dev(1, lane="0") in samples(reading, "poolwatch_npu_optical_receive_power_watts")


def test_failed_command_is_a_problem_line() -> None:
    err = NpuSmiError("hccn_tool -i 0 -optical -g exited 255: dsmi get optical info fail")
    reading = backend(FakeHccnTool(overrides={("optical", 0): err})).read()
    assert reading.problems == [f"device 0: -optical -g: {err}"]
    assert samples(reading, "poolwatch_npu_optical_present") == {dev(1): 1.0}


def test_a_timed_out_device_is_left_alone_for_the_reading() -> None:
    err = NpuSmiError("hccn_tool -i 1 -link -g timed out after 5s")
    fake = FakeHccnTool(overrides={("link", 1): err})
    reading = backend(fake).read()
    assert fake.views_of(1) == ["-link"]  # one timeout, not four
    assert reading.problems == [
        f"device 1: -link -g: {err}",
        "device 1: its other views skipped this reading",
    ]
    assert samples(reading, "poolwatch_npu_link_up") == {dev(0): 1.0}
    assert dev(0) in samples(reading, "poolwatch_npu_port_receive_bytes_total")


@pytest.mark.parametrize(
    "answer",
    [UNSUPPORTED, NpuSmiError(f"hccn_tool -i 1 -optical -g exited 1: {UNSUPPORTED.strip()}")],
    ids=["printed", "exit status"],
)
def test_unsupported_view_is_skipped_once_with_one_log_line(
    answer: str | Exception, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeHccnTool(overrides={("optical", 1): answer})
    b = backend(fake)
    with caplog.at_level(logging.INFO, logger="poolwatch.exporters.node.accelerators.hccn_tool"):
        first, second = b.read(), b.read()
    assert first.problems == second.problems == []
    assert fake.views_of(1).count("-optical") == 1
    assert fake.views_of(0).count("-optical") == 2  # the other port has its module
    assert len([r for r in caplog.records if "unsupported on device 1" in r.message]) == 1
    assert samples(second, "poolwatch_npu_optical_present") == {dev(0): 1.0}
    assert samples(second, "poolwatch_npu_link_up") == {dev(0): 1.0, dev(1): 1.0}


def test_not_supported_reading_is_not_an_unsupported_view() -> None:
    text = OPTICAL_4_LANES.replace("45 C", "not supported")
    reading = backend(FakeHccnTool({**VIEWS, "optical": text}), ids=[0]).read()
    assert samples(reading, "poolwatch_npu_optical_temperature_celsius") == {}
    assert samples(reading, "poolwatch_npu_optical_present") == {dev(0): 1.0}


def test_no_davinci_devices_is_an_empty_reading() -> None:
    fake = FakeHccnTool()
    reading = backend(fake, ids=[]).read()
    assert reading.problems == []
    assert fake.calls == []
    assert all(f.samples == [] for f in reading.extra)


def test_missing_tool_is_unavailable() -> None:
    b = HccnToolBackend(executable="/nonexistent/hccn_tool", device_ids=lambda: [0])
    with pytest.raises(BackendUnavailable, match="not found"):
        b.read()

    def gone(argv: list[str], timeout: float) -> str:
        raise BackendUnavailable(f"{argv[0]} not found")

    with pytest.raises(BackendUnavailable):
        HccnToolBackend(device_ids=lambda: [0], run=gone).read()


def test_default_executable_falls_back_to_the_driver_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import poolwatch.exporters.node.accelerators.hccn_tool as mod

    monkeypatch.setattr(mod.shutil, "which", lambda p: p if p == DEFAULT_PATH else None)
    assert mod._resolve("hccn_tool") == DEFAULT_PATH
    assert mod._resolve("/opt/other/hccn_tool") is None


def _script(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "hccn_tool"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.mark.skipif(sys.platform != "linux", reason="runs a shell script as hccn_tool")
def test_real_subprocess_argv_and_timeout(tmp_path: Path) -> None:
    # device 0 answers every view like the documentation; device 1 hangs on the first call
    link, link_stat = (HCCN / "link_mindcluster_doc.txt"), (HCCN / "link_stat_devid_hccl_doc.txt")
    stat_file, optical = (HCCN / "stat_mindcluster_doc_EXCERPT.txt"), tmp_path / "optical.txt"
    optical.write_text(OPTICAL_4_LANES)
    exe = _script(
        tmp_path,
        f"""[ "$2" = 1 ] && exec sleep 30
case "$3" in
  -link) cat {link};; -link_stat) cat {link_stat};; -stat) cat {stat_file};;
  -optical) cat {optical};; *) echo "unknown $3"; exit 2;;
esac""",
    )
    b = HccnToolBackend(executable=str(exe), device_ids=lambda: [0, 1], timeout=0.5)
    reading = b.read()
    assert reading.problems[0].startswith("device 1: -link -g: ")
    assert "timed out after 0.5s" in reading.problems[0]
    assert samples(reading, "poolwatch_npu_link_up") == {dev(0): 1.0}
    assert samples(reading, "poolwatch_npu_optical_temperature_celsius") == {dev(0): 45.0}


# -- the catalog entries -------------------------------------------------------------------------
def test_specs_follow_the_catalog_conventions() -> None:
    for spec in HCCN_SPECS:
        assert re.fullmatch(r"poolwatch_npu_[a-z0-9_]+", spec.name)
        assert spec.name.endswith("_total") == (spec.type == "counter")
        assert spec.collector == "accelerator"
        assert spec.labels in (("device_id",), ("device_id", "lane"))
        assert spec.help.endswith(")."), spec.name
        assert "(accelerator; hccn_tool -" in spec.help, spec.name
        if spec.unit:
            assert f"_{spec.unit}" in spec.name, spec.name


def test_no_name_clashes_with_the_rest_of_the_catalog() -> None:
    others = [s for s in catalog.ALL_SPECS if s.name not in {h.name for h in HCCN_SPECS}]
    catalog._index([*others, *HCCN_SPECS])  # raises CatalogError on a clash


def test_aliases_are_the_npu_roce_and_optical_seeds() -> None:
    aliases = {a.name for s in HCCN_SPECS for a in s.aliases}
    assert aliases <= SEEDS
    wanted = {n for n in SEEDS if n.startswith(("ma_node_npu_roce_", "ma_node_npu_optical_"))}
    assert aliases == wanted


def test_stat_counters_are_counter_families_named_in_their_help() -> None:
    by_name = {s.name: s for s in HCCN_SPECS}
    for family, counter in STAT_COUNTERS.items():
        assert by_name[family].type == "counter"
        assert by_name[family].help.endswith(f"hccn_tool -stat -g {counter}).")


def test_seed_aliases_in_seed_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """mW per lane, mV, and the RoCE byte rates, through the exporter's own alias expander (the
    catalog index is extended here only until the lead wires HCCN_SPECS in)."""
    mine = {s.name: s for s in HCCN_SPECS}
    real = catalog.by_name
    monkeypatch.setattr(compat.catalog, "by_name", lambda n: mine.get(n) or real(n))
    x = CompatExpander(["modelarts"])
    fake = FakeHccnTool()
    first = {f.name: f for f in x.expand(backend(fake, ids=[0]).read().extra, at=100.0)}
    assert first["ma_node_npu_optical_tx_power3"].samples[0].value == pytest.approx(0.82)
    assert first["ma_node_npu_optical_rx_power1"].samples[0].value == 0.0
    assert first["ma_node_npu_optical_vcc"].samples[0].value == pytest.approx(3280.0)
    assert first["ma_node_npu_optical_temperature"].samples[0].value == 45.0
    assert first["ma_node_npu_roce_tx_rate_bytes_per_second"].samples == []  # needs two readings
    assert first["ma_node_npu_roce_mac_rx_pfc_packets"].samples[0].value == 17
    fake.views["stat"] = full_stat().replace("123456789", "123466789")  # +10000 bytes sent
    second = {f.name: f for f in x.expand(backend(fake, ids=[0]).read().extra, at=110.0)}
    rate = second["ma_node_npu_roce_tx_rate_bytes_per_second"].samples[0]
    assert rate.value == pytest.approx(1000.0)
    assert rate.labels == {"device_id": "0"}


def test_a_wedged_tool_costs_one_budget_not_devices_times_timeout() -> None:
    import threading
    import time

    release = threading.Event()

    def run(argv: list[str], timeout: float) -> str:
        release.wait(timeout)  # hangs until its own timeout, like a wedged hccn_tool
        raise NpuSmiError(f"{' '.join(argv)} timed out after {timeout:g}s")

    b = HccnToolBackend(device_ids=lambda: list(range(16)), run=run, timeout=0.2, max_workers=1)
    t0 = time.monotonic()
    reading = b.read()
    release.set()
    assert time.monotonic() - t0 < 1.0
    assert any("not read within 0.4s" in p for p in reading.problems)


def test_link_stats_and_optical_every_minute_link_and_counters_every_run() -> None:
    fake = FakeHccnTool()
    now = [100.0]
    b = HccnToolBackend(device_ids=lambda: [0, 1], run=fake, clock=lambda: now[0])
    first = b.read()
    assert first.processes == ("hccn_tool", 8)
    now[0] += 15
    mark = len(fake.calls)
    r = b.read()
    assert sorted({c[3] for c in fake.calls[mark:]}) == ["-link", "-stat"]
    assert r.processes == ("hccn_tool", 4)
    # served from the last reading in between, not dropped
    assert samples(r, "poolwatch_npu_optical_present") == samples(
        first, "poolwatch_npu_optical_present"
    )
    assert samples(r, "poolwatch_npu_link_up_transitions_total")
    now[0] += 45
    mark = len(fake.calls)
    b.read()
    assert len(fake.calls) - mark == 8  # a minute on: every view again


def test_an_optical_reading_that_fails_goes_away() -> None:
    fake = FakeHccnTool()
    now = [100.0]
    b = HccnToolBackend(device_ids=lambda: [0, 1], run=fake, clock=lambda: now[0])
    assert samples(b.read(), "poolwatch_npu_optical_present")
    fake.overrides[("optical", 1)] = NpuSmiError("hccn_tool -i 1 -optical -g exited 1: busy")
    now[0] += 60
    r = b.read()
    assert [dict(k)["device_id"] for k in samples(r, "poolwatch_npu_optical_present")] == ["0"]
