"""The Ascend NPU's own network port (link, RoCE and MAC counters, optical module) via `hccn_tool`.

npu-smi knows nothing of the NPU's RoCE port; Huawei's `hccn_tool -i <device id> <view> -g` does.
This backend reports no devices (the NPUs come from the npu-smi backend), only the
`poolwatch_npu_link_*`, `poolwatch_npu_port_*`, `poolwatch_npu_roce_*` and
`poolwatch_npu_optical_*` families of `poolwatch/catalog/hccn.py`, labelled by `device_id`: the
chip's physical id, which is what `-i` takes (0-7 on 8-NPU nodes, 0-15 on A3) and the N of
`/dev/davinciN`. By default the ids are those `/dev/davinciN` nodes (under `dev_root`), so the
backend needs neither npu-smi nor a device plugin.

One reading runs four views per device: `-link -g`, `-link_stat -g`, `-stat -g`, `-optical -g`.

Why it is shaped like this (the same rules as the npu-smi backend, whose runner it uses):
- every call has a timeout and the child's process group is killed when it expires; devices run on
  a bounded pool (`max_workers`), each device's views one after the other, and a device whose view
  timed out is left alone for the rest of that reading: a hung port costs one timeout, not four;
- one device's view failing (timeout, non-zero exit, unparseable output) is a `Reading.problems`
  line, and that device's families from the view are absent; the other devices are reported;
- a view that says the device does not support it ("This device does not support this function.",
  the text hccn_tool's sources print) is skipped for that device from then on, logged once. It is
  kept per view and device: one port may have an optical module and the next a copper cable;
- `hccn_tool` missing (not on PATH, not at /usr/local/Ascend/driver/tools/hccn_tool, where the
  driver installs it) raises `BackendUnavailable`; no `/dev/davinci*` is an empty reading.

Output quirks, from published outputs (tests/fixtures/hccn/SOURCES.md) or, where marked, from the
format strings of hccn_tool's C sources:
- `-link -g` prints exactly one line, `link status: UP` or `link status: DOWN`;
- `-link_stat -g` prefixes every line with `[device N]` (drivers of 2023) or `[devid N]` (2025);
  only the newer format has `link down count`. Times are `asctime()` in the node's local time, with
  a space-padded day (`Oct  5`), no zone; the change records (newest first, a bounded history) are
  checked but not exported. With no change on record the records line reads `link change records :
  NA` (sources; no such capture was found);
- `-stat -g` is a `packet statistics:` line and `name:count` lines without blanks around the colon;
  counters the backend does not map (roce_cqe_num, nic_*) are read and ignored;
- `-optical -g` is `optical info:` then `key : value` lines, keys padded to a column except
  `high power enable reg:`, which fills it. Readings carry their unit (`45 C`, `3280.00 mV`,
  `0.8234 mW`); a missing one is `NA`, `not supported` or `get failed` and is omitted. Older
  drivers print one `Tx Power`/`Rx Power`, current ones `Tx Power0`-`Tx Power3` (sources; the
  unnumbered form then only as `NA` without a module): the unnumbered reading is lane 0. A module
  shared by two NPUs shows each its own four lanes (sources).
Anything else raises `ValueError` naming the line, so a layout we do not know is a problem line in
the log, never a silently wrong number.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from poolwatch.core import catalog
from poolwatch.core.catalog.hccn import HCCN_INTERVALS, HCCN_SPECS
from poolwatch.core.catalog.model import MetricSpec

from .model import BackendUnavailable, Reading
from .npu_smi import NpuSmiError, run_npu_smi

log = logging.getLogger(__name__)
Runner = Callable[[list[str], float], str]
DEFAULT_PATH = "/usr/local/Ascend/driver/tools/hccn_tool"  # where the Ascend driver installs it
VIEWS = ("link", "link_stat", "stat", "optical")  # each `hccn_tool -i <id> -<view> -g`
_MISSING = {"", "na", "n/a", "-", "not supported", "get failed", "unknown"}
_UNSUPPORTED = re.compile(r"not support", re.IGNORECASE)
_DAVINCI = re.compile(r"davinci(\d+)")
_LINK = re.compile(r"link status\s*:\s*(\S+)", re.IGNORECASE)
_LINK_STAT_PREFIX = re.compile(r"\[(?:device|devid) \d+\]")
_LINK_STAT_KEY = re.compile(
    r"(current time|link up count|link down count|link change records)\s*:\s*(.*)"
)
_ASCTIME = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}"
_RECORD = re.compile(rf"({_ASCTIME})\s+LINK (UP|DOWN)")
_STAT = re.compile(r"([a-z0-9_]+)\s*:\s*(\S*)")
_POWER_KEY = re.compile(r"(tx|rx) power(\d*)")
_NUMBER = r"-?\d+(?:\.\d+)?"

# family -> `hccn_tool -stat -g` counter it exports
STAT_COUNTERS = {
    "poolwatch_npu_port_receive_bytes_total": "mac_rx_total_oct_num",
    "poolwatch_npu_port_transmit_bytes_total": "mac_tx_total_oct_num",
    "poolwatch_npu_port_receive_packets_total": "mac_rx_total_pkt_num",
    "poolwatch_npu_port_transmit_packets_total": "mac_tx_total_pkt_num",
    "poolwatch_npu_port_receive_bad_packets_total": "mac_rx_bad_pkt_num",
    "poolwatch_npu_port_transmit_bad_packets_total": "mac_tx_bad_pkt_num",
    "poolwatch_npu_port_receive_pause_frames_total": "mac_rx_mac_pause_num",
    "poolwatch_npu_port_transmit_pause_frames_total": "mac_tx_mac_pause_num",
    "poolwatch_npu_port_receive_pfc_frames_total": "mac_rx_pfc_pkt_num",
    "poolwatch_npu_port_transmit_pfc_frames_total": "mac_tx_pfc_pkt_num",
    "poolwatch_npu_roce_receive_packets_total": "roce_rx_all_pkt_num",
    "poolwatch_npu_roce_transmit_packets_total": "roce_tx_all_pkt_num",
    "poolwatch_npu_roce_receive_errors_total": "roce_rx_err_pkt_num",
    "poolwatch_npu_roce_transmit_errors_total": "roce_tx_err_pkt_num",
}


class ViewUnsupported(Exception):
    """hccn_tool says this device does not support the view."""


# -- parsers -------------------------------------------------------------------------------------
@dataclass
class LinkStat:
    up_count: int
    down_count: int | None  # None: the driver prints no link down count
    records: list[tuple[str, bool]] = field(default_factory=list)  # (local time, up), newest first


@dataclass
class Optical:
    present: bool | None = None
    temperature: float | None = None  # celsius
    vcc: float | None = None  # volts
    tx_power: dict[str, float] = field(default_factory=dict)  # lane -> watts
    rx_power: dict[str, float] = field(default_factory=dict)


def _lines(text: str) -> Iterable[tuple[str, str]]:
    """(stripped line, raw line) for every non-blank line."""
    for raw in text.splitlines():
        if raw.strip():
            yield raw.strip(), raw


def parse_link(text: str) -> bool:
    """`hccn_tool -i N -link -g` -> True for UP, False for DOWN."""
    lines = list(_lines(text))
    if len(lines) != 1:
        raise ValueError(f"hccn_tool -link -g: expected one 'link status:' line, got {text!r}")
    line, raw = lines[0]
    m = _LINK.fullmatch(line)
    if not m or m.group(1).upper() not in ("UP", "DOWN"):
        raise ValueError(f"hccn_tool -link -g: not 'link status: UP|DOWN': {raw!r}")
    return m.group(1).upper() == "UP"


def _count(value: str, raw: str) -> int:
    if not value.isdigit():
        raise ValueError(f"hccn_tool: expected a count, got {value!r}: {raw!r}")
    return int(value)


def parse_link_stat(text: str) -> LinkStat:
    """`hccn_tool -i N -link_stat -g` -> link up/down counts and the change records."""
    up: int | None = None
    down: int | None = None
    records: list[tuple[str, bool]] = []
    for line, raw in _lines(text):
        line = _LINK_STAT_PREFIX.sub("", line, count=1).strip()
        key = _LINK_STAT_KEY.fullmatch(line)
        record = _RECORD.fullmatch(line)
        if key and key.group(1) == "link up count":
            up = _count(key.group(2), raw)
        elif key and key.group(1) == "link down count":
            down = _count(key.group(2), raw)
        elif key and key.group(1) == "link change records":
            if key.group(2) not in ("", "NA"):
                raise ValueError(f"hccn_tool -link_stat -g: unexpected records value: {raw!r}")
        elif key:  # current time
            if not re.fullmatch(_ASCTIME, key.group(2)):
                raise ValueError(f"hccn_tool -link_stat -g: not a time: {raw!r}")
        elif record:
            records.append((record.group(1), record.group(2) == "UP"))
        else:
            raise ValueError(f"hccn_tool -link_stat -g: unexpected line: {raw!r}")
    if up is None:
        raise ValueError(f"hccn_tool -link_stat -g: no 'link up count' line in {text!r}")
    return LinkStat(up, down, records)


def parse_stat(text: str) -> dict[str, int]:
    """`hccn_tool -i N -stat -g` -> every `name:count` counter."""
    counters: dict[str, int] = {}
    for line, raw in _lines(text):
        if line == "packet statistics:":
            continue
        m = _STAT.fullmatch(line)
        if not m:
            raise ValueError(f"hccn_tool -stat -g: not a 'name:count' line: {raw!r}")
        if m.group(1) in counters:
            raise ValueError(f"hccn_tool -stat -g: {m.group(1)} twice: {raw!r}")
        counters[m.group(1)] = _count(m.group(2), raw)
    if not counters:
        raise ValueError(f"hccn_tool -stat -g: no counters in {text!r}")
    return counters


def _reading(value: str, unit: str, raw: str) -> float | None:
    """`45 C`, `3280.00 mV`, `0.8234 mW` -> the number; the "no value" spellings -> None."""
    if value.lower() in _MISSING:
        return None
    m = re.fullmatch(rf"({_NUMBER})\s*{unit}", value)
    if not m:
        raise ValueError(f"hccn_tool -optical -g: expected a reading in {unit}, got {raw!r}")
    return float(m.group(1))


def parse_optical(text: str) -> Optical:
    """`hccn_tool -i N -optical -g` -> presence, temperature, Vcc (V) and lane powers (W)."""
    out = Optical()
    for line, raw in _lines(text):
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"hccn_tool -optical -g: not a 'key : value' line: {raw!r}")
        key, value = key.strip().lower(), value.strip()
        power = _POWER_KEY.fullmatch(key)
        if key == "present":
            if value.lower() not in ("present", "not present"):
                raise ValueError(f"hccn_tool -optical -g: unknown presence: {raw!r}")
            out.present = value.lower() == "present"
        elif key == "temperature":
            out.temperature = _reading(value, "C", raw)
        elif key == "vcc":
            mv = _reading(value, "mV", raw)
            out.vcc = None if mv is None else mv / 1000.0
        elif power:
            lanes = out.tx_power if power.group(1) == "tx" else out.rx_power
            lane = power.group(2) or "0"
            if lane in lanes:
                raise ValueError(f"hccn_tool -optical -g: lane {lane} twice: {raw!r}")
            mw = _reading(value, "mW", raw)
            if mw is not None:
                lanes[lane] = mw / 1000.0
    return out


def davinci_ids(dev_root: Path | str = "/dev") -> list[int]:
    """The N of every `/dev/davinciN` (davinci_manager and the like are not chips)."""
    try:
        names = os.listdir(dev_root)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := _DAVINCI.fullmatch(n)))


def _unsupported(text: str) -> bool:
    lines = [line for line, _ in _lines(text)]
    return bool(lines) and all(_UNSUPPORTED.search(line) for line in lines)


PARSERS: dict[str, Callable[[str], object]] = {
    "link": parse_link,
    "link_stat": parse_link_stat,
    "stat": parse_stat,
    "optical": parse_optical,
}


# -- the backend ---------------------------------------------------------------------------------
@dataclass
class _Port:
    device_id: int
    views: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _new_family(spec: MetricSpec) -> Metric:
    """The catalog's family; built from the same spec where the catalog index does not hold it."""
    try:
        return catalog.new_family(spec.name)
    except catalog.CatalogError:
        cls = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
        return cls(spec.family_name, spec.help, labels=list(spec.labels))


def _resolve(executable: str) -> str | None:
    if shutil.which(executable):
        return executable
    if executable == "hccn_tool" and shutil.which(DEFAULT_PATH):
        return DEFAULT_PATH
    return None


class HccnToolBackend:
    name = "hccn_tool"

    def __init__(
        self,
        executable: str = "hccn_tool",
        device_ids: Callable[[], list[int]] | None = None,
        timeout: float = 5.0,
        run: Runner | None = None,
        max_workers: int = 4,
        dev_root: Path | str = "/dev",
        intervals: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executable, self.timeout, self.max_workers = executable, timeout, max_workers
        self.device_ids = device_ids or (lambda: davinci_ids(dev_root))
        self.run: Runner = run or run_npu_smi
        self._own_runner = run is None
        self._unsupported: set[tuple[str, int]] = set()  # (view, device id) said "not supported"
        self._lock = threading.Lock()
        # seconds between readings of each view; in between, the last good reading is served
        self.intervals = {**HCCN_INTERVALS, **(intervals or {})}
        self.clock = clock
        self._cache: dict[tuple[str, int], tuple[float, object]] = {}
        self.calls = 0  # hccn_tool processes started by the last reading

    def read(self) -> Reading:
        """One reading of every device's port; raises BackendUnavailable without hccn_tool."""
        exe = self.executable
        if self._own_runner:
            found = _resolve(self.executable)
            if found is None:
                raise BackendUnavailable(f"{self.executable} not found (PATH, {DEFAULT_PATH})")
            exe = found
        ids = sorted(set(self.device_ids()))
        reading = Reading()
        fams = {spec.name: _new_family(spec) for spec in HCCN_SPECS}
        self.calls = 0
        self._cache = {k: v for k, v in self._cache.items() if k[1] in ids}
        if ids:
            # One budget for the whole reading (2 x the per-call timeout): with calls run one at
            # a time, a wedged tool would otherwise cost devices x timeout, far past the
            # collector's deadline. Ports not read by then are reported, not waited for.
            deadline = time.monotonic() + self.timeout * 2
            pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="hccn_tool")
            try:
                futures = [(dev, pool.submit(self._port, exe, dev)) for dev in ids]
                late = []
                for dev, future in futures:
                    try:
                        port = future.result(timeout=max(deadline - time.monotonic(), 0))
                    except FutureTimeout:
                        future.cancel()
                        late.append(dev)
                        continue
                    reading.problems += port.problems
                    _export(port, fams)
                if late:
                    reading.problems.append(
                        f"hccn_tool: devices {late} not read within {self.timeout * 2:g}s"
                    )
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        reading.extra = list(fams.values())
        reading.processes = ("hccn_tool", self.calls)
        return reading

    def _call(self, exe: str, view: str, dev: int) -> str:
        argv = [exe, "-i", str(dev), f"-{view}", "-g"]
        with self._lock:
            self.calls += 1
        try:
            out = self.run(argv, self.timeout)
        except NpuSmiError as err:
            if _UNSUPPORTED.search(str(err)):
                raise ViewUnsupported(str(err)) from None
            raise
        if _unsupported(out):
            raise ViewUnsupported(out.strip())
        return out

    def _port(self, exe: str, dev: int) -> _Port:
        port = _Port(dev)
        now = self.clock()
        for view in VIEWS:
            if (view, dev) in self._unsupported:
                continue
            cached = self._cache.get((view, dev))
            if cached is not None and now - cached[0] < self.intervals.get(view, 0.0):
                port.views[view] = cached[1]  # not due: the last good reading
                continue
            self._cache.pop((view, dev), None)  # due: what fails now goes away
            try:
                port.views[view] = PARSERS[view](self._call(exe, view, dev))
                self._cache[(view, dev)] = (now, port.views[view])
            except ViewUnsupported as err:
                with self._lock:
                    new = (view, dev) not in self._unsupported
                    self._unsupported.add((view, dev))
                if new:
                    log.info(
                        "hccn_tool -%s -g unsupported on device %d (%s); skipped", view, dev, err
                    )
            except BackendUnavailable:
                raise
            except Exception as err:  # noqa: BLE001 - one port's view must not lose the others
                port.problems.append(f"device {dev}: -{view} -g: {err}")
                if isinstance(err, NpuSmiError) and "timed out" in str(err):
                    port.problems.append(f"device {dev}: its other views skipped this reading")
                    break
        return port


def _export(port: _Port, fams: dict[str, Metric]) -> None:
    dev = [str(port.device_id)]
    link = port.views.get("link")
    if isinstance(link, bool):
        fams["poolwatch_npu_link_up"].add_metric(dev, 1.0 if link else 0.0)
    stat = port.views.get("link_stat")
    if isinstance(stat, LinkStat):
        fams["poolwatch_npu_link_up_transitions_total"].add_metric(dev, stat.up_count)
        if stat.down_count is not None:
            fams["poolwatch_npu_link_down_transitions_total"].add_metric(dev, stat.down_count)
    counters = port.views.get("stat")
    if isinstance(counters, dict):
        for family, key in STAT_COUNTERS.items():
            if key in counters:
                fams[family].add_metric(dev, counters[key])
    optical = port.views.get("optical")
    if isinstance(optical, Optical):
        if optical.present is not None:
            fams["poolwatch_npu_optical_present"].add_metric(dev, 1.0 if optical.present else 0.0)
        if optical.temperature is not None:
            fams["poolwatch_npu_optical_temperature_celsius"].add_metric(dev, optical.temperature)
        if optical.vcc is not None:
            fams["poolwatch_npu_optical_supply_voltage_volts"].add_metric(dev, optical.vcc)
        for lane, watts in sorted(optical.tx_power.items()):
            fams["poolwatch_npu_optical_transmit_power_watts"].add_metric([*dev, lane], watts)
        for lane, watts in sorted(optical.rx_power.items()):
            fams["poolwatch_npu_optical_receive_power_watts"].add_metric([*dev, lane], watts)
