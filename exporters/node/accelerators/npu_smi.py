"""Huawei Ascend NPUs through the `npu-smi` tool (parsing lives in `npu_smi_parse.py`).

One reading runs `npu-smi info` (the overview: every chip's name, health, power, temperature, AI
core busy share, DDR and HBM use, bus id, and the process table), then the per-chip views
`npu-smi info -t <type> -i <npu> -c <chip>` for what the overview lacks: `usages` (vector/cube/AI
CPU/control CPU busy, HBM bandwidth, overall utilisation), `common` (AI core clocks), `memory`
(HBM clock and temperature), `health` (error code) and `ecc` (HBM ECC counts, isolated pages);
per NPU `ecc-enable`, and the `board` views (VDie ID as UUID, serial, firmware).

Each field is read as often as it changes: every npu-smi call is a process (tens of ms of CPU on
a real node), and a 16-chip A3 node would otherwise start ~90 of them every 15 s. The overview
(utilisation, memory, temperature, power, health, processes) is read every run; the detail views
come in groups (`GROUPS`), each with its own interval (`DEFAULT_INTERVALS`, configurable). A
group not due this run is served from its last good reading (at most one interval old, which the
catalog's help says); a group whose call fails is dropped at once (its series go away) and
retried next run. `health` is also read at once for a chip whose overview health is not OK, and
every group of a chip is read again when its bus id changes (a card swapped).

Why it is shaped like this:
- npu-smi is an external command that can hang when a device misbehaves: every call has a timeout
  and the child is killed (its whole process group) when it expires; views run on a bounded pool
  (`max_workers`), so 16 A3 chips cost about 80 short calls, not 80 parallel processes;
- one chip's view failing (timeout, garbage) must not hide the other chips: it becomes a line in
  `Reading.problems` and that chip's fields from the view are simply absent;
- a view the card does not have ("This device does not support querying ecc") is not a failure:
  it is skipped from then on, and logged once;
- a chip that was seen and is no longer listed is reported `up 0` with its last identity.
Device ids: `index` is the NPU id, or "<npu>-<chip>" on NPUs with more than one chip (A3, 300I
Duo); `uuid` is the VDie ID (words joined by "-", as HAMi's device plugin writes it), else
"npu<id>-chip<chip>"; `aliases` are the ids Ascend's Kubernetes device plugin lists
("Ascend910-<id>", "Ascend310P-<id>", "Ascend310-<id>"), with the chip's Phy-ID (A3) or Device
column (310/310P) as id where the overview has one, else the NPU id. Health is npu-smi's word
mapped OK 0, Warning 1, Alarm 2, Critical 3; any other word (UNKNOWN, NA) counts as 3. The
health view's `Error Code : NA` means "no error code" and is exported as 0; with several codes
the first one is exported.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace

from prometheus_client.core import Metric

from poolwatch.core import catalog
from poolwatch.core.catalog.npu import NPU_SMI_INTERVALS, NPU_SPECS

from .model import BackendUnavailable, Device, ProcessUse, Reading
from .npu_smi_parse import (
    ChipFacts,
    ChipRow,
    Overview,
    ViewUnsupported,
    fraction,
    health_level,
    number,
    parse_overview,
    parse_view,
    view_facts,
)

log = logging.getLogger(__name__)
MIB = 2**20
# group -> its views as (view, per chip?); a per-card view is asked once per NPU
GROUPS: dict[str, tuple[tuple[str, bool], ...]] = {
    "utilization": (("usages", True),),
    "clocks": (("common", True), ("memory", True)),
    "health": (("health", True),),
    "ecc": (("ecc", True),),
    "inventory": (("board", True), ("board", False), ("ecc-enable", False)),
}
DEFAULT_INTERVALS = NPU_SMI_INTERVALS  # seconds between readings (0: every run); configurable
EVERY_RUN = dict.fromkeys(GROUPS, 0.0)
Runner = Callable[[list[str], float], str]


class NpuSmiError(RuntimeError):
    """npu-smi exited non-zero or timed out; the message carries its last output line."""


def run_npu_smi(argv: list[str], timeout: float) -> str:
    """Run npu-smi without a shell; kill its process group when `timeout` expires."""
    if shutil.which(argv[0]) is None:
        raise BackendUnavailable(f"{argv[0]} not found")
    cmd = " ".join(argv)
    try:
        proc = subprocess.Popen(  # fixed argv, no shell
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError:
        raise BackendUnavailable(f"{argv[0]} not found") from None
    with proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise NpuSmiError(f"{cmd} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        last = ((out or "") + (err or "")).strip().splitlines()[-1:] or [""]
        raise NpuSmiError(f"{cmd} exited {proc.returncode}: {last[0].strip()}")
    return out


@dataclass(frozen=True)
class _Job:
    npu: int
    chip: int | None  # None: card-level view, or a layout without chip ids
    view: str
    per_chip: bool = True
    group: str = ""

    @property
    def kind(self) -> str:
        """The view and its scope: a card may have `-t board -i` but not `-t board -i -c`."""
        return self.view if self.per_chip else f"{self.view} (card)"

    def args(self) -> list[str]:
        chip = ["-c", str(self.chip)] if self.per_chip and self.chip is not None else []
        return ["info", "-t", self.view, "-i", str(self.npu), *chip]


def _plugin_prefix(model: str) -> str:
    """The device plugin's name for the card family (its device ids are "<prefix>-<id>")."""
    name = model.upper().removeprefix("ASCEND").strip()
    for family in ("310P", "310B", "310"):
        if name.startswith(family):
            return "Ascend" + family
    return "Ascend910"


class NpuSmiBackend:
    name = "npu_smi"

    def __init__(
        self,
        executable: str = "npu-smi",
        timeout: float = 8.0,
        run: Runner | None = None,
        max_workers: int = 4,
        intervals: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executable, self.timeout = executable, timeout
        self.run: Runner = run or run_npu_smi
        self.max_workers = max_workers
        self.intervals = {**DEFAULT_INTERVALS, **(intervals or {})}
        self.clock = clock
        self._unsupported: set[str] = set()  # view kinds this node's cards do not have
        # the last good reading of each view, with when it was read: job -> (at, facts)
        self._cache: dict[_Job, tuple[float, ChipFacts]] = {}
        self._bus: dict[int, str] = {}  # NPU -> the bus id its cached views were read on
        self._multi: set[int] = set()  # NPUs seen with more than one chip
        self._known: dict[tuple[int, int | None], Device] = {}
        self.calls = 0  # npu-smi processes started by the last reading

    def read(self) -> Reading:
        """One reading of every chip; raises for a failed or unreadable `npu-smi info`."""
        self.calls = 0
        overview = parse_overview(self._call(["info"]))
        counts = Counter(row.npu for row in overview.chips)
        self._multi |= {npu for npu, n in counts.items() if n > 1}
        reading = Reading()
        self._refresh(overview.chips, reading.problems)
        extra = {spec.name: catalog.new_family(spec.name) for spec in NPU_SPECS}
        seen: set[tuple[int, int | None]] = set()
        for row in overview.chips:
            facts = self._chip_facts(row)
            device = self._device(row, overview, facts)
            self._extra(device, row, facts, extra)
            reading.devices.append(device)
            seen.add((row.npu, row.chip))
            self._known[(row.npu, row.chip)] = device
        for key, last in self._known.items():
            if key not in seen:  # listed before, gone now: fell off the bus
                reading.devices.append(replace(last, up=False, processes=None))
        del extra["poolwatch_npu_tool_processes"]  # the collector's, from `processes`
        reading.extra = list(extra.values())
        reading.processes = ("npu-smi", self.calls)
        return reading

    # -- running npu-smi -------------------------------------------------------------------------
    def _call(self, args: list[str]) -> str:
        argv = [self.executable, *args]
        self.calls += 1
        try:
            return self.run(argv, self.timeout)
        except NpuSmiError as err:
            if "does not support" in str(err):
                raise ViewUnsupported(str(err)) from None
            raise

    def _jobs(self, chips: list[ChipRow]) -> list[_Job]:
        """Every view of every chip and card, whether due or not."""
        jobs: list[_Job] = []
        npus: dict[int, None] = {}
        for row in chips:
            npus.setdefault(row.npu)
            for group, views in GROUPS.items():
                jobs += [_Job(row.npu, row.chip, v, True, group) for v, per in views if per]
        for npu in npus:
            for group, views in GROUPS.items():
                jobs += [_Job(npu, None, v, False, group) for v, per in views if not per]
        return [j for j in jobs if j.kind not in self._unsupported]

    def _refresh(self, chips: list[ChipRow], problems: list[str]) -> None:
        """Read the views that are due and update the cache; drop what failed or is gone."""
        now = self.clock()
        bus = {row.npu: row.bus_id for row in chips}
        swapped = {npu for npu, b in bus.items() if self._bus.get(npu, b) != b}
        self._bus = bus
        unhealthy = {(r.npu, r.chip) for r in chips if health_level(r.health) != 0}
        jobs = self._jobs(chips)
        live = set(jobs)
        self._cache = {j: v for j, v in self._cache.items() if j in live and j.npu not in swapped}
        due = [j for j in jobs if self._due(j, now, unhealthy)]
        results = self._fetch(due, problems)
        for job in due:
            if job in results:
                self._cache[job] = (now, results[job])
            else:  # failed, unsupported or not done within the budget: gone, never stale
                self._cache.pop(job, None)

    def _due(self, job: _Job, now: float, unhealthy: set[tuple[int, int | None]]) -> bool:
        cached = self._cache.get(job)
        if cached is None:
            return True
        if job.group == "health" and (job.npu, job.chip) in unhealthy:
            return True
        return now - cached[0] >= self.intervals.get(job.group, 0.0)

    def _view(self, job: _Job) -> ChipFacts:
        view = parse_view(self._call(job.args()), job.chip if job.per_chip else None)
        return view_facts(job.view, job.per_chip, view)

    def _fetch(self, jobs: list[_Job], problems: list[str]) -> dict[_Job, ChipFacts]:
        """Run the views on the pool within one budget (1.5 x the per-call timeout).

        Without it, a wedged driver that makes every view hang would cost ~90 calls x the
        timeout / workers, far past the collector's own deadline, and the collector would stay
        down (its runner starts no new run while one hangs) for minutes. Views still waiting at
        the deadline are cancelled and reported; a running call is left to its own timeout."""
        results: dict[_Job, ChipFacts] = {}
        if not jobs:
            return results
        deadline = time.monotonic() + self.timeout * 1.5
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="npu-smi")
        try:
            futures = [(job, pool.submit(self._view, job)) for job in jobs]
            skipped = 0
            for job, future in futures:
                try:
                    results[job] = future.result(timeout=max(deadline - time.monotonic(), 0))
                except FutureTimeout:
                    future.cancel()
                    skipped += 1
                except ViewUnsupported as err:
                    if job.kind not in self._unsupported:
                        log.info("npu-smi view %s not supported here (%s); skipped", job.kind, err)
                    self._unsupported.add(job.kind)
                except Exception as err:  # noqa: BLE001 - one chip's view must not lose the others
                    chip = "" if job.chip is None or not job.per_chip else f" chip {job.chip}"
                    problems.append(f"npu {job.npu}{chip}: -t {job.view}: {err}")
            if skipped:
                problems.append(f"{skipped} npu-smi views not done within {self.timeout * 1.5:g}s")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results

    # -- building devices ------------------------------------------------------------------------
    def _chip_facts(self, row: ChipRow) -> ChipFacts:
        """The chip's cached views, chip-level first (they win over the card's)."""
        facts = ChipFacts()
        for job, (_, got) in self._cache.items():
            if job.npu == row.npu and job.per_chip and job.chip == row.chip:
                facts.fill(got)
        for job, (_, got) in self._cache.items():
            if job.npu == row.npu and not job.per_chip:
                facts.fill(got)
        return facts

    def _device(self, row: ChipRow, overview: Overview, facts: ChipFacts) -> Device:
        v = row.values
        hbm_used, hbm_total = _pair(v, "HBM-Usage(MB)")
        multi = row.npu in self._multi and row.chip is not None
        chip = row.chip if row.chip is not None else 0
        index = f"{row.npu}-{chip}" if multi else str(row.npu)
        alias_id = row.phy_id if row.phy_id is not None else row.npu
        health = facts.health if facts.health is not None else health_level(row.health)
        return Device(
            vendor="huawei", model=row.name, index=index,
            uuid=facts.uuid or f"npu{row.npu}-chip{chip}", serial=facts.serial,
            bus_id=row.bus_id, driver_version=overview.version or facts.driver,
            firmware_version=facts.firmware, health_level=health, error_code=facts.error_code,
            utilization=_div(number(v.get("AICore(%)", ""), "AICore(%)"), 100.0),
            memory_total=_mul(hbm_total, MIB), memory_used=_mul(hbm_used, MIB),
            temperature=number(v.get("Temp(C)", ""), "Temp(C)"),
            memory_temperature=facts.memory_temperature,
            power=number(v.get("Power(W)", ""), "Power(W)"),
            core_clock=facts.core_clock, memory_clock=facts.memory_clock,
            ecc_errors=dict(facts.ecc), retired_pages=dict(facts.retired),
            processes=self._processes(row, overview),
            aliases=(f"{_plugin_prefix(row.name)}-{alias_id}",),
        )  # fmt: skip

    @staticmethod
    def _processes(row: ChipRow, overview: Overview) -> list[ProcessUse] | None:
        if overview.processes is None or row.npu not in overview.processes:
            return None  # no process table, or this NPU is not in it: unknown, not "none"
        chip = row.chip if row.chip is not None else 0
        return [
            ProcessUse(p.pid, _mul(p.memory_mb, MIB))
            for p in overview.processes[row.npu]
            if p.chip == chip
        ]

    @staticmethod
    def _extra(d: Device, row: ChipRow, facts: ChipFacts, extra: dict[str, Metric]) -> None:
        labels = d.labels()
        ddr_used, ddr_total = _pair(row.values, "Memory-Usage(MB)")
        if not ddr_total:  # 910B/A3 print a constant 0 / 0: no DDR to report
            ddr_used = None
        values = {
            "poolwatch_npu_vector_core_utilization_ratio": facts.vector,
            "poolwatch_npu_cube_core_utilization_ratio": facts.cube,
            "poolwatch_npu_ai_cpu_utilization_ratio": facts.ai_cpu,
            "poolwatch_npu_ctrl_cpu_utilization_ratio": facts.ctrl_cpu,
            "poolwatch_npu_overall_utilization_ratio": facts.overall,
            "poolwatch_npu_hbm_bandwidth_utilization_ratio": facts.hbm_bandwidth,
            "poolwatch_npu_ddr_memory_total_bytes": _mul(ddr_total or None, MIB),
            "poolwatch_npu_ddr_memory_used_bytes": _mul(ddr_used, MIB),
            "poolwatch_npu_ddr_memory_used_ratio": _div(ddr_used, ddr_total or None),
            "poolwatch_npu_hbm_ecc_enabled": facts.ecc_enabled,
            "poolwatch_npu_ai_core_rated_clock_hertz": facts.rated_clock,
        }
        for name, value in values.items():
            if value is not None:
                extra[name].add_metric(labels, value)


def _pair(values: dict[str, str], column: str) -> tuple[float | None, float | None]:
    return fraction(values[column], column) if column in values else (None, None)


def _mul(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _div(value: float | None, by: float | None) -> float | None:
    return None if value is None or not by else value / by
