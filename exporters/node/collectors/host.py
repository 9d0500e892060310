"""host: CPU, memory, network and disk counters from /proc (seed ma_node_cpu/memory/network/disk).

Reads procfs directly rather than through psutil: the root must be a parameter (a container sees
the host's /proc at /host/proc, tests feed captured trees), and psutil does not expose the
diskstats fields the seeds name (I/Os in progress, weighted I/O time).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import families, register
from ..settings import HostSettings, NodeExporterSettings

_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_IDLE_MODES = {"idle", "iowait"}
_SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's block size


def parse_stat(text: str) -> tuple[int, dict[str, float]]:
    """/proc/stat -> (online CPUs, jiffies per mode summed over CPUs)."""
    cores, modes = 0, {}
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [float(v) for v in line.split()[1:]]
            modes = dict(zip(_CPU_MODES, values, strict=False))
        elif line.startswith("cpu") and line[3:4].isdigit():
            cores += 1
    if not modes:
        raise ValueError("no aggregate 'cpu' line in /proc/stat")
    return cores, modes


def parse_meminfo(text: str) -> dict[str, float]:
    """/proc/meminfo -> bytes by key (MemTotal, MemAvailable, ...)."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            out[key] = float(parts[0]) * scale
    return out


def parse_net_dev(text: str) -> dict[str, list[float]]:
    """/proc/net/dev -> device: [rx bytes, packets, errs, drop, ..., tx bytes, packets, ...]."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if sep:
            out[name.strip()] = [float(v) for v in rest.split()]
    return out


def parse_diskstats(text: str) -> dict[str, tuple[str, str, list[float]]]:
    """/proc/diskstats -> device: (major, minor, the 11 classic counters)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 14:
            out[f[2]] = (f[0], f[1], [float(v) for v in f[3:14]])
    return out


class HostCollector:
    name = "host"

    def __init__(self, settings: HostSettings, procfs: Path) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.procfs = procfs
        self._net_exclude = re.compile(settings.network_device_exclude or "(?!)")
        self._disk_exclude = re.compile(settings.disk_device_exclude or "(?!)")
        self._prev_cpu: dict[str, float] | None = None
        try:  # baseline, so the first collection already has a utilisation figure
            self._prev_cpu = parse_stat(self._read("stat"))[1]
        except (OSError, ValueError):
            self._prev_cpu = None

    def _read(self, name: str) -> str:
        return (self.procfs / name).read_text(encoding="ascii", errors="replace")

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        self._cpu(fams)
        self._memory(fams)
        self._network(fams)
        self._disks(fams)
        yield from fams.values()

    def _cpu(self, fams: dict[str, Metric]) -> None:
        cores, modes = parse_stat(self._read("stat"))
        hz = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        fams["poolwatch_node_cpu_cores"].add_metric([], cores)
        for mode, jiffies in modes.items():
            fams["poolwatch_node_cpu_seconds_total"].add_metric([mode], jiffies / hz)
        prev, self._prev_cpu = self._prev_cpu, modes
        if prev is None:
            return
        total = sum(modes.values()) - sum(prev.values())
        idle = sum(modes[m] - prev.get(m, 0.0) for m in _IDLE_MODES if m in modes)
        if total > 0:
            ratio = min(max((total - idle) / total, 0.0), 1.0)
            fams["poolwatch_node_cpu_used_ratio"].add_metric([], ratio)
            fams["poolwatch_node_cpu_used_cores"].add_metric([], ratio * cores)

    def _memory(self, fams: dict[str, Metric]) -> None:
        mem = parse_meminfo(self._read("meminfo"))
        total = mem["MemTotal"]
        avail = mem.get("MemAvailable", mem.get("MemFree", 0.0))
        fams["poolwatch_node_memory_total_bytes"].add_metric([], total)
        fams["poolwatch_node_memory_available_bytes"].add_metric([], avail)
        if total > 0:
            fams["poolwatch_node_memory_used_ratio"].add_metric([], 1.0 - avail / total)

    def _network(self, fams: dict[str, Metric]) -> None:
        columns = {
            "receive_bytes": 0, "receive_packets": 1, "receive_errors": 2, "receive_drops": 3,
            "transmit_bytes": 8, "transmit_packets": 9, "transmit_errors": 10,
            "transmit_drops": 11,
        }  # fmt: skip
        for dev, values in sorted(parse_net_dev(self._read("net/dev")).items()):
            if self._net_exclude.fullmatch(dev) or len(values) < 12:
                continue
            for key, col in columns.items():
                fams[f"poolwatch_node_network_{key}_total"].add_metric([dev], values[col])

    def _disks(self, fams: dict[str, Metric]) -> None:
        counters = (
            ("reads_completed", 1.0), ("reads_merged", 1.0), ("read_bytes", _SECTOR),
            ("read_time_seconds", 0.001), ("writes_completed", 1.0), ("writes_merged", 1.0),
            ("written_bytes", _SECTOR), ("write_time_seconds", 0.001), ("io_now", 1.0),
            ("io_time_seconds", 0.001), ("io_time_weighted_seconds", 0.001),
        )  # fmt: skip
        for dev, (major, minor, values) in sorted(parse_diskstats(self._read("diskstats")).items()):
            if self._disk_exclude.fullmatch(dev):
                continue
            fams["poolwatch_node_disk_info"].add_metric([dev, major, minor], 1.0)
            for (key, scale), value in zip(counters, values, strict=True):
                name = f"poolwatch_node_disk_{key}" + ("" if key == "io_now" else "_total")
                fams[name].add_metric([dev], value * scale)


@register("host", lambda s: s.collectors.host)
def _factory(settings: NodeExporterSettings) -> HostCollector:
    return HostCollector(settings.collectors.host, settings.roots.procfs)
