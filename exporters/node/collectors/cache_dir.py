"""cache_dir: disk usage of each workload's directory under the cache root (seed notebook cache).

A bounded walk: it stops at `time_budget` seconds or `max_entries` entries, whichever comes first,
and says so per directory (`poolwatch_cache_dir_walk_truncated 1`, usage then a lower bound).
Directories it did not reach this time are reported as truncated with no usage figure, never with a
stale one; the next walk starts where this one stopped, so on a huge cache every directory still
gets its turn. The walk stays on the cache filesystem (mounts inside it are skipped) and never
follows symlinks. Usage is allocated space (st_blocks x 512), as `du` reports it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import families, register
from ..settings import CacheDirSettings, NodeExporterSettings


class _Budget:
    def __init__(self, seconds: float, entries: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.entries = entries

    def spend(self) -> bool:
        """Count one entry; False once the budget is gone (time checked every 256 entries)."""
        self.entries -= 1
        if self.entries < 0:
            return False
        return self.entries & 0xFF or time.monotonic() < self.deadline


def walk_usage(top: bytes, device: int, budget: _Budget) -> tuple[int, int, bool]:
    """(bytes allocated, entries counted, complete?) under `top`, without leaving `device`."""
    used, count, stack = 0, 0, [top]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if not budget.spend():
                        return used, count, False
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished between readdir and stat: a live cache churns
                    if st.st_dev != device:
                        continue
                    used += st.st_blocks * 512
                    count += 1
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue  # unreadable subdirectory: count what we can
    return used, count, True


def label(name: bytes) -> str:
    """The `directory` label of a name as the kernel stores it: bytes that are not UTF-8 are
    written as `\\xff` escapes, so the label stays valid and tells the operator what to look for."""
    return name.decode("utf-8", "backslashreplace")


class CacheDirCollector:
    name = "cache_dir"

    def __init__(self, settings: CacheDirSettings, root: Path) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.settings = settings
        self.root = root
        self._start = 0  # rotation offset: where the last truncated walk stopped

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        root = str(self.root)
        fs = os.statvfs(root)  # raises for a missing cache root: the runner marks us down
        device = os.stat(root).st_dev
        size = fs.f_blocks * fs.f_frsize
        # bytes, so a name that is not UTF-8 (`mkdir $'bad\\xff'`) is walked like any other
        with os.scandir(os.fsencode(root)) as it:
            dirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        dirs = dirs[: self.settings.max_dirs]
        if dirs:
            self._start %= len(dirs)
        order = dirs[self._start :] + dirs[: self._start]
        budget = _Budget(self.settings.time_budget, self.settings.max_entries)
        for i, name in enumerate(order):
            if budget.entries <= 0 or time.monotonic() >= budget.deadline:
                for left in order[i:]:
                    fams["poolwatch_cache_dir_walk_truncated"].add_metric([label(left)], 1)
                self._start = (self._start + i) % len(dirs)
                break
            used, count, complete = walk_usage(
                os.path.join(os.fsencode(root), name), device, budget
            )
            lv = [label(name)]
            fams["poolwatch_cache_dir_usage_bytes"].add_metric(lv, used)
            fams["poolwatch_cache_dir_files"].add_metric(lv, count)
            if size > 0:
                fams["poolwatch_cache_dir_used_ratio"].add_metric(lv, used / size)
            fams["poolwatch_cache_dir_walk_truncated"].add_metric(lv, 0 if complete else 1)
        yield from fams.values()


@register("cache_dir", lambda s: s.collectors.cache_dir)
def _factory(settings: NodeExporterSettings) -> CacheDirCollector:
    cache, rootfs = settings.cache_dir, settings.roots.rootfs
    root = rootfs / cache.relative_to(cache.anchor) if cache.is_absolute() else cache
    return CacheDirCollector(settings.collectors.cache_dir, root)
