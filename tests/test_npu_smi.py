"""The npu-smi backend on captured outputs of real Ascend hosts (tests/fixtures/ascend/SOURCES.md).

Every test goes through `NpuSmiBackend.read()` with a fake `run` that answers each argv with a
captured output, so the layouts are parsed by the same code path as on a node. The detail views
were captured for one chip; the fake serves the same capture for every chip, with its `NPU ID` and
`Chip ID` lines set to the chip asked for. Tests that need a `NA` or a garbled line edit the
captured text visibly, in the test.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable

import pytest
from helpers import FIXTURES, names, not_about_seed_names, promtool_findings, run_collector, value
from prom_versions import Prometheus

from poolwatch.exporters.node.accelerators.model import BackendUnavailable, Device, Reading
from poolwatch.exporters.node.accelerators.npu_smi import (
    EVERY_RUN,
    NpuSmiBackend,
    NpuSmiError,
    run_npu_smi,
)
from poolwatch.exporters.node.accelerators.npu_smi_parse import parse_overview, parse_view
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.settings import AcceleratorSettings

ASCEND = FIXTURES / "ascend"
MIB = 2**20
UNSUPPORTED = "This device does not support querying {view}.\n"
# view -> capture; "board (card)" is `-t board -i N` without -c
VIEWS_910B = {
    "usages": "t_usages_910B3_nvitop.txt",
    "common": "t_common_910B3_nvitop.txt",
    "memory": "t_memory_910B3_nvitop.txt",
    "health": "t_health_chip_mindcluster_doc.txt",
    "ecc": "t_ecc_mindcluster_doc.txt",
    "ecc-enable": "t_ecc_enable_doc.txt",
    "board": "t_board_chip_mindcluster_doc.txt",
    "board (card)": "t_board_910B3_nvitop.txt",
}


def fixture(name: str) -> str:
    return (ASCEND / name).read_text()


def as_chip(text: str, npu: int, chip: int) -> str:
    text = re.sub(r"^(\s*NPU ID\s*:\s*)\d+", rf"\g<1>{npu}", text, flags=re.M)
    return re.sub(r"^(\s*Chip ID\s*:\s*)\d+", rf"\g<1>{chip}", text, flags=re.M)


class FakeNpuSmi:
    """Answers argv like npu-smi would, from captures; `fail` raises for (view, npu, chip)."""

    def __init__(
        self,
        overview: str,
        views: dict[str, str] | None = None,
        fail: dict[tuple[str, int, int | None], Exception] | None = None,
    ) -> None:
        self.overview, self.views, self.fail = overview, views or {}, fail or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> str:
        self.calls.append(argv)
        args = argv[1:]
        if args == ["info"]:
            return self.overview
        view, npu = args[2], int(args[4])
        chip = int(args[6]) if "-c" in args else None
        if (view, npu, chip) in self.fail:
            raise self.fail[(view, npu, chip)]
        key = view if chip is not None else f"{view} (card)"
        if key not in self.views and view not in self.views:
            return UNSUPPORTED.format(view=view)
        return as_chip(fixture(self.views.get(key, self.views.get(view, ""))), npu, chip or 0)


def backend(overview: str, views: dict[str, str] | None = None, **kw: object) -> NpuSmiBackend:
    return NpuSmiBackend(run=FakeNpuSmi(overview, views, **kw))  # type: ignore[arg-type]


def by_index(reading: Reading) -> dict[str, Device]:
    return {d.index: d for d in reading.devices}


# -- overview layouts ---------------------------------------------------------------------------
def test_910B2_narrow_layout_with_40_nameless_processes() -> None:
    r = backend(fixture("info_910B2_8npu_processes.txt")).read()
    assert not r.problems
    d = by_index(r)
    assert sorted(d) == [str(i) for i in range(8)]
    one = d["1"]
    assert (one.vendor, one.model, one.uuid) == ("huawei", "910B2", "npu1-chip0")
    assert one.memory_used == 61258 * MIB  # printed "61258/ 65536"
    assert one.memory_total == 65536 * MIB
    assert d["0"].memory_used == 3414 * MIB  # printed "3414 / 65536"
    assert d["5"].power == 103.3
    assert d["0"].power == 95.5
    assert d["5"].temperature == 47
    assert d["0"].bus_id == "0000:C1:00.0"
    assert one.utilization == 0.0
    assert one.health_level == 0
    assert one.driver_version == "25.0.rc1.1"
    assert one.aliases == ("Ascend910-1",)
    procs = {i: dev.processes for i, dev in d.items()}
    assert procs["0"] == []  # "No running processes found in NPU 0"
    assert sum(len(p or []) for p in procs.values()) == 40
    counts_mb = {
        i: (len(p or []), sum(x.memory_bytes or 0 for x in p or []) / MIB) for i, p in procs.items()
    }
    assert counts_mb["1"] == (8, 34763)
    assert counts_mb["3"][0] == 8
    assert {(p.pid, p.memory_bytes) for p in procs["4"] or []} == {(875, 17752 * MIB)}
    assert {p.pid for p in procs["6"] or []} == {52781}
    assert counts_mb["7"] == (6, 28904)
    assert max(procs["3"] or [], key=lambda p: p.memory_bytes or 0).pid == 31391


def test_a3_two_chips_per_npu_with_phy_ids_and_dash_power() -> None:
    r = backend(fixture("info_A3_8npu_16chip_processes.txt")).read()
    d = by_index(r)
    assert sorted(d) == sorted(f"{n}-{c}" for n in range(8) for c in range(2))
    assert d["0-0"].power == 211.3
    assert d["0-1"].power is None  # "-": the second die has no power reading of its own
    assert d["7-1"].aliases == ("Ascend910-15",)  # the device plugin uses the Phy-ID
    assert d["7-1"].memory_used == 61631 * MIB
    assert d["4-0"].utilization == 0.08
    assert d["7-1"].uuid == "npu7-chip1"
    assert len(d["0-0"].processes or []) == 8
    assert [(p.pid, p.memory_bytes) for p in d["0-1"].processes or []] == [(929405, 58780 * MIB)]


def test_wide_26_layout_and_five_column_process_table() -> None:
    text = fixture("info_A3_wide_26.0.rc2_EXCERPT.txt")
    text += fixture("info_A3_wide_26.0.rc2_processes_EXCERPT.txt")
    d = by_index(backend(text).read())
    assert sorted(d) == ["0-0", "0-1"]
    assert d["0-0"].driver_version == "26.0.rc2"
    assert d["0-0"].power == 162.6
    assert d["0-1"].power is None
    assert d["0-1"].memory_used == 2874 * MIB
    assert [(p.pid, p.memory_bytes) for p in d["0-0"].processes or []] == [(632268, 197 * MIB)]
    assert d["0-1"].processes == []


@pytest.mark.parametrize(
    ("capture", "index", "model", "ddr", "alias", "processes"),
    [
        ("info_310P3_npu7_22.0.4.txt", "7", "310P3", (1805, 21527), "Ascend310P-0", None),
        ("info_310P3_npu6_25.3.rc1.txt", "6", "310P3", (1839, 21525), "Ascend310P-0", []),
        ("info_310_23.0.0.txt", "0", "310", (577, 7759), "Ascend310-0", []),
    ],
)
def test_310_layouts_sparse_ids_na_power_no_hbm(
    capture: str,
    index: str,
    model: str,
    ddr: tuple[int, int],
    alias: str,
    processes: list[object] | None,
) -> None:
    r = backend(fixture(capture)).read()
    (d,) = r.devices
    assert (d.index, d.model, d.aliases, d.processes) == (index, model, (alias,), processes)
    assert d.memory_total is None
    assert d.memory_used is None
    assert d.power == (12.8 if model == "310" else None)  # 310P prints NA
    extra = {m.name: m.samples for m in r.extra}
    assert extra["poolwatch_npu_ddr_memory_used_bytes"][0].value == ddr[0] * MIB
    assert extra["poolwatch_npu_ddr_memory_total_bytes"][0].value == ddr[1] * MIB
    assert extra["poolwatch_npu_ddr_memory_used_ratio"][0].value == ddr[0] / ddr[1]


def test_310p_duo_two_chips_share_a_bus_id() -> None:
    d = by_index(backend(fixture("info_310P3_duo_2chip_EXCERPT.txt")).read())
    assert sorted(d) == ["1-0", "1-1"]
    assert d["1-0"].bus_id == d["1-1"].bus_id == "0000:01:00.0"
    assert (d["1-0"].aliases, d["1-1"].aliases) == (("Ascend310P-0",), ("Ascend310P-1",))
    assert d["1-1"].temperature == 58


def test_910b_has_no_ddr_series() -> None:
    r = backend(fixture("info_910B3_8npu_named_processes.txt")).read()
    extra = {m.name: m.samples for m in r.extra}
    assert extra["poolwatch_npu_ddr_memory_total_bytes"] == []  # "0 / 0" is not a capacity


# -- detail views -------------------------------------------------------------------------------
def test_detail_views_fill_clocks_ecc_identity_and_npu_only_series() -> None:
    r = backend(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B).read()
    assert not r.problems
    d = by_index(r)["0"]
    assert d.core_clock == 800e6
    assert d.memory_clock == 1600e6
    assert d.memory_temperature == 31
    assert d.error_code == 0  # "Error Code : NA": no error code
    assert d.ecc_errors == {
        ("corrected", "volatile"): 0,
        ("uncorrected", "volatile"): 0,
        ("corrected", "aggregate"): 0,
        ("uncorrected", "aggregate"): 0,
    }
    assert d.retired_pages == {"single_bit": 0, "double_bit": 0}
    assert d.uuid == "42C711D4-20B03704-4A10C8D4-14CC040A-D2102003"  # VDie ID
    assert d.serial == "1023C7991472"
    assert d.firmware_version == "7.1.0.7.220"  # the chip's board view wins over the card's
    assert d.processes
    assert d.processes[0].pid == 3233241
    extra = {m.name: {s.labels["index"]: s.value for s in m.samples} for m in r.extra}
    assert extra["poolwatch_npu_ctrl_cpu_utilization_ratio"]["0"] == 0.07
    assert extra["poolwatch_npu_hbm_ecc_enabled"]["3"] == 1
    assert extra["poolwatch_npu_ai_core_rated_clock_hertz"]["7"] == 1800e6
    assert extra["poolwatch_npu_overall_utilization_ratio"]["0"] == 0


@pytest.mark.parametrize(
    ("capture", "key", "expected"),
    [
        ("t_usages_910B_telegraf.txt", "Ctrlcpu Usage Rate(%)", "6"),
        ("t_usages_ddr_mindcluster_doc.txt", "DDR Capacity(MB)", "13553"),
        ("t_common_910B3_nvitop.txt", "Temperature(C)", "33"),  # not the MCU's 31
        ("t_temp_910B3_nvitop.txt", "NPU Temperature (C)", "33"),
        ("t_power_910B3_nvitop.txt", "NPU Real-time Power(W)", "99.4"),
        ("t_board_mindcluster_doc.txt", "PCI Device ID", "0xD801"),
        ("t_board_910B3_nvitop.txt", "PCIe Bus Info", "0000:C1:00.0"),
        ("t_health_chip_mindcluster_doc.txt", "Health Status", "OK"),
        ("t_ecc_enable_doc.txt", "HBM ECC-Enable Status", "True"),
    ],
)
def test_views_parse_tab_and_space_indented(capture: str, key: str, expected: str) -> None:
    view = parse_view(fixture(capture), 0)
    assert view[key] == expected
    assert "LM75A_TE (C)" not in view  # the MCU block is not the chip's


def test_na_values_are_omitted_never_numbers() -> None:
    text = as_chip(fixture("t_usages_910B3_nvitop.txt"), 2, 0)
    text = text.replace("Aicpu Usage Rate(%)            : 0", "Aicpu Usage Rate(%)            : NA")
    text = text.replace(
        "NPU Utilization(%)             : 0", "NPU Utilization(%)             : N/A"
    )
    views = {**VIEWS_910B}
    r = NpuSmiBackend(run=_with_view(views, "usages", text)).read()
    extra = {m.name: {s.labels["index"] for s in m.samples} for m in r.extra}
    assert "2" not in extra["poolwatch_npu_ai_cpu_utilization_ratio"]
    assert "2" not in extra["poolwatch_npu_overall_utilization_ratio"]
    assert "2" in extra["poolwatch_npu_ctrl_cpu_utilization_ratio"]


def _with_view(views: dict[str, str], view: str, text: str) -> Callable[[list[str], float], str]:
    fake = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), views)

    def run(argv: list[str], timeout: float) -> str:
        if argv[1:5] == ["info", "-t", view, "-i"] and argv[5] == "2":
            return text
        return fake(argv, timeout)

    return run


# -- failures -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("dcmi module initialize failed. ret is -8005\n", "dcmi module initialize failed"),
        (
            fixture("info_910B3_8npu_named_processes.txt").replace("0000:C2:00.0", "bogus-bus   "),
            "bogus-bus",
        ),
        (
            fixture("info_910B2_8npu_processes.txt").replace("95.7        44", "95.7          "),
            "| 1     910B2",
        ),
        (
            fixture("info_310_23.0.0.txt").replace("| 0       0       ", "| 0       x       "),
            "0       x",
        ),
    ],
)
def test_garbage_overview_raises_value_error_naming_the_line(text: str, line: str) -> None:
    with pytest.raises(ValueError, match=re.escape(line)):
        backend(text).read()


def test_garbage_view_line_is_a_problem_naming_the_line() -> None:
    with pytest.raises(ValueError, match="Failed to query"):
        parse_view('Failed to query "usages" result.\n')
    views = {**VIEWS_910B}
    run = _with_view(views, "ecc", 'Failed to query "ecc" result.\n')
    r = NpuSmiBackend(run=run).read()
    assert r.problems == ["npu 2 chip 0: -t ecc: unexpected line in npu-smi view: "
                          "'Failed to query \"ecc\" result.'"]  # fmt: skip
    assert by_index(r)["2"].ecc_errors == {}
    assert by_index(r)["3"].ecc_errors  # the other chips keep theirs


def test_one_chip_timing_out_lands_in_problems_others_are_reported() -> None:
    timeout = NpuSmiError("npu-smi info -t usages -i 3 -c 0 timed out after 8s")
    r = backend(
        fixture("info_910B3_8npu_named_processes.txt"),
        VIEWS_910B,
        fail={("usages", 3, 0): timeout},
    ).read()
    assert r.problems == [f"npu 3 chip 0: -t usages: {timeout}"]
    assert len(r.devices) == 8
    vector = {s.labels["index"] for m in r.extra for s in m.samples if "vector" in m.name}
    assert vector == {str(i) for i in range(8)} - {"3"}
    assert by_index(r)["3"].core_clock == 800e6  # its other views still count


def test_unsupported_view_is_skipped_quietly_from_then_on() -> None:
    fake = FakeNpuSmi(fixture("info_310P3_npu7_22.0.4.txt"), {"usages": VIEWS_910B["usages"]})
    b = NpuSmiBackend(run=fake, intervals=EVERY_RUN)
    assert not b.read().problems
    first = len(fake.calls)
    assert not b.read().problems
    second = fake.calls[first:]
    assert [c[3] for c in second if len(c) > 2] == ["usages"]  # ecc, health, ... not asked again


def test_exit_status_saying_unsupported_counts_as_unsupported() -> None:
    unsupported = NpuSmiError("npu-smi info -t ecc -i 0 -c 0 exited 255: This device does not "
                              "support querying ecc.")  # fmt: skip
    r = backend(
        fixture("info_310_23.0.0.txt"), VIEWS_910B, fail={("ecc", 0, 0): unsupported}
    ).read()
    assert not r.problems


def test_missing_executable_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        run_npu_smi(["/nonexistent/npu-smi", "info"], 1.0)
    with pytest.raises(BackendUnavailable):
        NpuSmiBackend(executable="/nonexistent/npu-smi").read()


def test_default_runner_kills_on_timeout_and_reports_exit_status() -> None:
    with pytest.raises(NpuSmiError, match=re.escape("timed out after 0.2s")):
        run_npu_smi([sys.executable, "-c", "import time; time.sleep(30)"], 0.2)
    script = "print('dcmi module initialize failed. ret is -8005'); raise SystemExit(3)"
    with pytest.raises(NpuSmiError, match="exited 3: dcmi module initialize failed"):
        run_npu_smi([sys.executable, "-c", script], 5.0)


def test_chip_that_disappears_is_reported_lost() -> None:
    full = fixture("info_910B3_8npu_named_processes.txt")
    fake = FakeNpuSmi(full)
    b = NpuSmiBackend(run=fake)
    b.read()
    fake.overview = "\n".join(ln for ln in full.splitlines() if "0000:42:00.0" not in ln and
                              "| 7     910B3" not in ln and "| 7       0" not in ln)  # fmt: skip
    d = by_index(b.read())
    assert d["7"].up is False
    assert d["7"].uuid == "npu7-chip0"
    assert d["6"].up is True


def test_parse_overview_keeps_header_names() -> None:
    ov = parse_overview(fixture("info_310P3_npu7_22.0.4.txt"))
    assert set(ov.chips[0].values) == {
        "Power(W)", "Temp(C)", "Hugepages-Usage(page)", "AICore(%)", "Memory-Usage(MB)",
    }  # fmt: skip
    assert ov.processes is None


# -- through the real collector -----------------------------------------------------------------
def collector(overview: str, views: dict[str, str] | None = None) -> AcceleratorCollector:
    return AcceleratorCollector(AcceleratorSettings(), [(backend(overview, views), True)])


def test_rendered_by_the_collector_with_seed_aliases() -> None:
    ok, s, _ = run_collector(
        collector(fixture("info_910B2_8npu_processes.txt"), VIEWS_910B), compat=("modelarts",)
    )
    assert ok
    used = value(s, "poolwatch_accelerator_memory_used_bytes", vendor="huawei", index="1")
    assert used == 61258 * MIB
    assert value(s, "ma_node_npu_hbm_usage_bytes", index="1") == 61258 * MIB
    assert value(s, "ma_node_npu_hbm_bytes", index="1") == 65536 * MIB
    assert value(s, "ma_node_npu_ai_core_health_status", index="4") == 1
    assert value(s, "ma_node_npu_ai_core_power_usage_watts", index="5") == 103.3
    assert value(s, "poolwatch_accelerator_processes", vendor="huawei", index="1") == 8
    assert value(s, "ma_node_npu_ctrl_cpu_util", index="0") == pytest.approx(7.0)
    assert value(s, "ma_node_npu_hbm_ecc_enable", index="0") == 1
    assert value(s, "ma_node_npu_ai_core_frequency_hertz", index="0") == 800e6
    assert value(s, "ma_node_npu_hbm_single_bit_error_total", index="0") == 0
    assert value(s, "poolwatch_accelerator_backend_up", backend="npu_smi") == 1
    assert "ma_node_npu_ddr_memory_bytes" not in names(s)  # 910B prints DDR 0 / 0


def test_failed_chip_view_marks_the_collector_down_but_keeps_devices() -> None:
    b = backend(
        fixture("info_910B2_8npu_processes.txt"),
        VIEWS_910B,
        fail={("health", 2, 0): NpuSmiError("timed out after 8s")},
    )
    ok, s, _ = run_collector(AcceleratorCollector(AcceleratorSettings(), [(b, True)]))
    assert not ok
    assert value(s, "poolwatch_accelerator_backend_up", backend="npu_smi") == 0
    assert value(s, "poolwatch_accelerator_up", vendor="huawei", index="2") == 1


def test_unparseable_overview_marks_the_collector_down_without_a_crash() -> None:
    ok, s, _ = run_collector(collector("dcmi module initialize failed. ret is -8005\n"))
    assert not ok
    assert value(s, "poolwatch_accelerator_backend_up", backend="npu_smi") == 0


@pytest.mark.integration
def test_sixteen_chip_exposition_passes_promtool(prom: Prometheus) -> None:
    c = collector(fixture("info_A3_8npu_16chip_processes.txt"), VIEWS_910B)
    ok, s, store = run_collector(c, compat=("modelarts",))
    assert ok
    assert len({dict(ls)["index"] for n, ls in s if n == "poolwatch_accelerator_up"}) == 16
    assert not_about_seed_names(promtool_findings(store.body(), prom.promtool)) == set()


def test_garbled_value_names_its_line() -> None:
    text = fixture("info_910B3_8npu_named_processes.txt").replace(
        "| 91.1        32", "| 91.1        3x"
    )
    with pytest.raises(ValueError, match=re.escape("| 1     910B3")):
        parse_overview(text)


def test_views_that_all_hang_stop_at_the_budget_not_the_sum_of_timeouts() -> None:
    """A wedged driver: the overview answers, every per-chip view blocks. The reading must end
    near 1.5 x the per-call timeout with the overview's figures, not after ~90 timeouts."""
    import threading
    import time

    release = threading.Event()
    overview = fixture("info_A3_8npu_16chip_processes.txt")

    def run(argv: list[str], timeout: float) -> str:
        if argv[1:] == ["info"]:
            return overview
        release.wait(timeout)  # blocks like a hung npu-smi until its own timeout
        raise NpuSmiError(f"{' '.join(argv)} timed out after {timeout:g}s")

    b = NpuSmiBackend(timeout=0.2, run=run)
    t0 = time.monotonic()
    reading = b.read()
    took = time.monotonic() - t0
    release.set()
    assert took < 1.0
    assert len(reading.devices) == 16  # the overview still gives every chip
    assert any("not done within 0.3s" in p for p in reading.problems)


# -- per-group intervals ------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _views_asked(fake: FakeNpuSmi, since: int) -> list[str]:
    return sorted(
        {c[3] if "-c" in c else c[3] + " (card)" for c in fake.calls[since:] if len(c) > 2}
    )


def test_each_group_is_read_at_its_own_interval_and_served_in_between() -> None:
    fake = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    clock = Clock()
    b = NpuSmiBackend(run=fake, clock=clock)  # the defaults: 30 s, 120 s, 300 s, 60 s, 1 h
    first = b.read()
    assert first.processes == ("npu-smi", len(fake.calls))
    full = len(fake.calls)
    assert full == 1 + 8 * 6 + 8 * 2  # info, 6 chip views and 2 card views per NPU
    mark, clock.now = len(fake.calls), clock.now + 15
    r = b.read()
    assert fake.calls[mark:] == [["npu-smi", "info"]]  # only the overview: nothing else due
    assert r.processes == ("npu-smi", 1)
    d = by_index(r)["3"]
    assert d.core_clock == 800e6  # served from the last reading, not dropped
    assert d.ecc_errors
    assert d.uuid == "42C711D4-20B03704-4A10C8D4-14CC040A-D2102003"
    vector = {s.labels["index"] for m in r.extra for s in m.samples if "vector" in m.name}
    assert vector == {str(i) for i in range(8)}
    mark, clock.now = len(fake.calls), clock.now + 15  # 30 s after the first reading
    b.read()
    assert _views_asked(fake, mark) == ["usages"]
    mark, clock.now = len(fake.calls), clock.now + 30  # 60 s
    b.read()
    assert _views_asked(fake, mark) == ["ecc", "usages"]
    mark, clock.now = len(fake.calls), clock.now + 60  # 120 s
    b.read()
    assert _views_asked(fake, mark) == ["common", "ecc", "memory", "usages"]
    per_15s = (full + 1 + 8 + 1 + 8 + 8 + 1 + 8 * 4) / 5
    assert per_15s < full / 2


def test_a_group_whose_call_fails_goes_away_and_comes_back() -> None:
    fake = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    clock = Clock()
    b = NpuSmiBackend(run=fake, clock=clock)
    assert by_index(b.read())["2"].ecc_errors
    fake.fail[("ecc", 2, 0)] = NpuSmiError("npu-smi info -t ecc -i 2 -c 0 exited 1: busy")
    clock.now += 60
    r = b.read()
    assert "npu 2 chip 0: -t ecc" in r.problems[0]
    assert by_index(r)["2"].ecc_errors == {}  # gone, not the minute-old figures
    assert by_index(r)["2"].core_clock == 800e6  # its other groups are still served
    assert by_index(r)["3"].ecc_errors
    del fake.fail[("ecc", 2, 0)]
    clock.now += 15  # retried at the next run, not a minute later
    assert by_index(b.read())["2"].ecc_errors


def test_health_is_read_at_once_when_the_overview_says_a_chip_is_not_ok() -> None:
    text = fixture("info_910B3_8npu_named_processes.txt")
    fake = FakeNpuSmi(text, VIEWS_910B)
    clock = Clock()
    b = NpuSmiBackend(run=fake, clock=clock)
    b.read()
    row = next(ln for ln in text.splitlines() if re.match(r"\|\s*5\s+910B3", ln))
    fake.overview = text.replace(row, row.replace("OK     ", "Alarm  ", 1))
    assert fake.overview != text
    mark, clock.now = len(fake.calls), clock.now + 15
    b.read()
    asked = [(c[3], c[5]) for c in fake.calls[mark:] if len(c) > 2]
    assert asked == [("health", "5")]


def test_a_swapped_card_has_every_group_read_again() -> None:
    text = fixture("info_910B3_8npu_named_processes.txt")
    fake = FakeNpuSmi(text, VIEWS_910B)
    clock = Clock()
    b = NpuSmiBackend(run=fake, clock=clock)
    b.read()
    bus = by_index(b.read())["4"].bus_id
    fake.overview = text.replace(bus, "0000:99:00.0")
    mark, clock.now = len(fake.calls), clock.now + 15
    b.read()
    asked = {(c[3], c[5]) for c in fake.calls[mark:] if len(c) > 2}
    assert {n for _, n in asked} == {"4"}
    assert {v for v, _ in asked} == {"usages", "common", "memory", "health", "ecc", "board",
                                     "ecc-enable"}  # fmt: skip


def test_processes_per_run_are_a_series() -> None:
    fake = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    b = NpuSmiBackend(run=fake, clock=Clock())
    ok, s, _ = run_collector(AcceleratorCollector(AcceleratorSettings(), [(b, True)]))
    assert ok
    assert value(s, "poolwatch_npu_tool_processes", tool="npu-smi") == len(fake.calls)


def test_a_view_that_hangs_past_the_budget_is_not_served_from_an_old_reading() -> None:
    """A wedged driver must not keep serving the last good figures as if they were fresh."""
    fake = FakeNpuSmi(fixture("info_910B3_8npu_named_processes.txt"), VIEWS_910B)
    clock = Clock()
    b = NpuSmiBackend(run=fake, clock=clock, timeout=0.2, max_workers=8)
    assert by_index(b.read())["2"].ecc_errors
    slow = threading.Event()

    def hang(argv: list[str], timeout: float) -> str:
        if "ecc" in argv:
            slow.wait(2)
        return fake(argv, timeout)

    b.run = hang
    clock.now += 60
    r = b.read()
    slow.set()
    assert any("not done within" in p for p in r.problems)
    assert all(not d.ecc_errors for d in r.devices)  # dropped, not the minute-old figures
    assert by_index(r)["2"].core_clock == 800e6  # what was not due is still served
