"""nfs: per-mount, per-operation RPC statistics from /proc/self/mountstats (ma_node_mountstats_*).

Reading mountstats never blocks on a dead server (the kernel keeps these counters locally), so this
collector stays up while a mount hangs; the filesystem collector is the one that sees the hang.
Quirks handled (from real captures):
- a field the kernel wrapped below zero (printed as a u64 near 2^64) is skipped, never exported as
  an absurd counter value;
- the same export mounted twice on one mount point: the last mount (the visible one) wins, so the
  exposition never carries duplicate series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import families, register
from ..settings import NodeExporterSettings, _IncludeExclude

log = logging.getLogger(__name__)
_WRAPPED = 1 << 63  # anything at or above this in a per-op field is a negative value wrapped

# per-op columns: ops trans timeouts bytes_sent bytes_recv queue_ms rtt_ms execute_ms [errors]
_COLUMNS = (
    ("poolwatch_nfs_rpc_operations_total", 1.0),
    ("poolwatch_nfs_rpc_transmissions_total", 1.0),
    ("poolwatch_nfs_rpc_major_timeouts_total", 1.0),
    ("poolwatch_nfs_rpc_sent_bytes_total", 1.0),
    ("poolwatch_nfs_rpc_received_bytes_total", 1.0),
    ("poolwatch_nfs_rpc_backlog_wait_seconds_total", 0.001),
    ("poolwatch_nfs_rpc_rtt_seconds_total", 0.001),
    ("poolwatch_nfs_rpc_execute_seconds_total", 0.001),
)


@dataclass
class NfsMount:
    export: str
    mountpoint: str
    fstype: str
    version: str = ""
    ops: dict[str, list[int]] = field(default_factory=dict)
    # the "bytes:" line: normalread normalwrite directread directwrite serverread serverwrite
    # readpages writepages (counters of the mount's superblock)
    bytes: list[int] = field(default_factory=list)


def parse_mountstats(text: str) -> list[NfsMount]:
    """NFS mounts with their per-op counters; other filesystems are ignored."""
    mounts: list[NfsMount] = []
    current: NfsMount | None = None
    in_ops = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("device "):
            current, in_ops = _device(line, lineno), False
            if current is not None:
                mounts.append(current)
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("opts:"):
            for opt in stripped[5:].strip().split(","):
                if opt.startswith("vers="):
                    current.version = opt[5:]
        elif stripped.startswith("bytes:"):
            try:
                current.bytes = [int(v) for v in stripped[6:].split()]
            except ValueError:
                raise ValueError(f"mountstats line {lineno}: bad bytes line {line!r}") from None
        elif stripped == "per-op statistics":
            in_ops = True
        elif in_ops and ":" in stripped:
            op, _, rest = stripped.partition(":")
            try:
                current.ops[op] = [int(v) for v in rest.split()]
            except ValueError:
                raise ValueError(f"mountstats line {lineno}: bad per-op line {line!r}") from None
    return mounts


def nfs_bytes(text: str) -> list[NfsMount]:
    """The NFS mounts of a mountstats file with their `bytes:` counters only (no version, no
    per-op statistics): what the container collector reads for every container process each
    cycle. The file is searched, not walked line by line: a container's file is mostly other
    mounts and NFSv4.1's 60 per-op lines a mount (a line-by-line walk in Python cost about
    three times more, a full parse six times)."""
    mounts: list[NfsMount] = []
    at = 0
    while (hit := text.find("fstype nfs", at)) != -1:
        start = text.rfind("\n", 0, hit) + 1
        end = text.find("\n", hit)
        end = len(text) if end == -1 else end
        at = end
        line = text[start:end]
        if not line.startswith("device "):
            continue
        mount = _device(line, text.count("\n", 0, start) + 1)
        if mount is None:
            continue
        mounts.append(mount)
        section_end = text.find("\ndevice ", end)
        section = text[end : len(text) if section_end == -1 else section_end]
        found = section.find("bytes:")
        while found != -1 and section[section.rfind("\n", 0, found) + 1 : found].strip(" \t"):
            found = section.find("bytes:", found + 6)  # not at a line's start: keep looking
        if found == -1:
            continue
        line_end = section.find("\n", found)
        raw = section[found + 6 : len(section) if line_end == -1 else line_end]
        try:
            mount.bytes = [int(v) for v in raw.split()]
        except ValueError:
            lineno = text.count("\n", 0, end + found) + 1
            raise ValueError(f"mountstats line {lineno}: bad bytes line {raw.strip()!r}") from None
    return mounts


def _device(line: str, lineno: int) -> NfsMount | None:
    # device <export> mounted on <mountpoint> with fstype <type> [statvers=...]
    words = line.split()
    try:
        on, fs = words.index("on"), words.index("fstype")
    except ValueError:
        raise ValueError(f"mountstats line {lineno}: bad device line {line!r}") from None
    fstype = words[fs + 1] if fs + 1 < len(words) else ""
    if not fstype.startswith("nfs"):
        return None
    return NfsMount(export=words[1], mountpoint=" ".join(words[on + 1 : fs - 1]), fstype=fstype)


class NfsCollector:
    name = "nfs"

    def __init__(self, settings: _IncludeExclude, procfs: Path) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.settings = settings
        self.path = procfs / "self" / "mountstats"

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        text = self.path.read_text(encoding="utf-8", errors="replace")
        latest: dict[str, NfsMount] = {}
        for mount in parse_mountstats(text):
            if self.settings.wants(mount.mountpoint):
                latest[mount.mountpoint] = mount  # the last mount on a path is the visible one
        for mount in latest.values():
            fams["poolwatch_nfs_mount_info"].add_metric(
                [mount.mountpoint, mount.export, mount.fstype, mount.version], 1
            )
            for op, values in sorted(mount.ops.items()):
                labels = [mount.mountpoint, mount.export, op]
                for (name, scale), value in zip(_COLUMNS, values, strict=False):
                    if value >= _WRAPPED:
                        log.debug(
                            "nfs %s %s: wrapped value %d skipped", mount.mountpoint, op, value
                        )
                        continue
                    fams[name].add_metric(labels, value * scale)
        yield from fams.values()


@register("nfs", lambda s: s.collectors.nfs)
def _factory(settings: NodeExporterSettings) -> NfsCollector:
    return NfsCollector(settings.collectors.nfs, settings.roots.procfs)
