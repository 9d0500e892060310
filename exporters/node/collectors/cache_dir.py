"""cache_dir: disk usage of each workload's directory under the cache root (seed notebook cache).

A bounded walk: a run stops at `time_budget` seconds or `max_entries` entries, whichever comes
first. A directory whose walk the budget cut is not started over: its walk is kept (the
directories still to list, the sums so far) and finished by the next runs, so on a huge cache
every directory is measured completely in turn, however many runs that takes. Each directory's
series then show its last finished walk, with `poolwatch_cache_dir_measured_timestamp_seconds`
saying when that walk finished; a directory never finished yet shows the lower bound walked so
far (or no usage at all) with `poolwatch_cache_dir_walk_truncated 1`.

A subdirectory the exporter may not list or stat (permission denied: the chart runs it as an
unprivileged user, an I/O error) is not silently skipped: the directory's figure is a lower bound,
`walk_truncated` is 1, `poolwatch_cache_dir_unreadable_directories` counts them, and the run is a
partial failure (`up 0`) whose message names the first one.

Every directory is covered: the rotation walks all of them. `max_dirs` caps the series, not the
walk: the `max_dirs - 1` largest are reported under their own names and the rest summed under
`directory="/others"`, a name no directory can have. Names are read as bytes; those that are not
UTF-8 are labelled with `\\xNN` escapes. The walk stays on the cache filesystem (mounts inside it
are skipped) and never follows symlinks. Usage is allocated space (st_blocks x 512), as `du`
reports it. A walk that spans several runs adds up a tree that changed meanwhile: the figure is
as good as `du` run during the same minutes.
"""

from __future__ import annotations

import errno
import heapq
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import PartialFailure, families, register
from ..settings import CacheDirSettings, NodeExporterSettings

OTHERS = "/others"  # the label of the summed rest: "/" cannot occur in a directory name


class _Budget:
    def __init__(self, seconds: float, entries: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.entries = entries
        self.progressed = False  # every run finishes at least one directory listing

    def spend(self) -> bool:
        """Count one entry; False once the budget is gone (time checked every 256 entries)."""
        self.entries -= 1
        if not self.progressed:
            return True
        if self.entries < 0:
            return False
        return bool(self.entries & 0xFF) or time.monotonic() < self.deadline

    def gone(self) -> bool:
        return self.entries <= 0 or time.monotonic() >= self.deadline


@dataclass
class _Walk:
    """One directory's walk, possibly spread over several runs."""

    stack: list[bytes]
    used: int = 0
    count: int = 0
    unreadable: int = 0
    first_unreadable: str = ""


@dataclass
class _Figure:
    """What is served for one directory: a finished walk, or the lower bound of one under way."""

    used: int
    count: int
    unreadable: int = 0
    complete: bool = False
    at: float | None = None  # wall clock when the walk finished
    first_unreadable: str = ""


_GONE = (errno.ENOENT, errno.ENOTDIR)  # vanished between readdir and use: a live cache churns


def resume(walk: _Walk, device: int, budget: _Budget) -> bool:
    """Go on with `walk` until it is done (True) or the budget is gone (False).

    The unit of progress is one directory listing: a listing the budget cuts is not counted and
    stays on the stack, so a resumed walk never counts an entry twice."""
    while walk.stack:
        if budget.progressed and budget.gone():
            return False
        current = walk.stack.pop()
        used = count = 0
        subdirs: list[bytes] = []
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if not budget.spend():
                        walk.stack.append(current)
                        return False
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as err:
                        if err.errno not in _GONE:
                            _unreadable(walk, entry.path, err)
                        continue
                    if st.st_dev != device:
                        continue
                    used += st.st_blocks * 512
                    count += 1
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(entry.path)
        except OSError as err:
            if err.errno not in _GONE:
                _unreadable(walk, current, err)
            continue
        walk.used += used
        walk.count += count
        walk.stack.extend(subdirs)
        budget.progressed = True
    return True


def _unreadable(walk: _Walk, path: bytes, err: OSError) -> None:
    walk.unreadable += 1
    if not walk.first_unreadable:
        walk.first_unreadable = f"{label(path)}: {err.strerror or err}"


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
        self._walks: dict[bytes, _Walk] = {}  # walks the budget cut, finished by later runs
        self._done: dict[bytes, _Figure] = {}  # the last finished walk of each directory
        self._next = b""  # the rotation goes on from the first name >= this one

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        root = os.fsencode(self.root)
        fs = os.statvfs(root)  # raises for a missing cache root: the runner marks us down
        device = os.stat(root).st_dev
        size = fs.f_blocks * fs.f_frsize
        # bytes, so a name that is not UTF-8 (`mkdir $'bad\xff'`) is walked like any other
        with os.scandir(root) as it:
            dirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        present = set(dirs)
        self._walks = {k: v for k, v in self._walks.items() if k in present}
        self._done = {k: v for k, v in self._done.items() if k in present}
        self._walk(root, dirs, device)
        figures = {name: self._figure(name) for name in dirs}
        for name, fig in self._limit(figures).items():
            self._emit(fams, name, fig, size)
        yield from fams.values()
        bad = [(n, f) for n, f in figures.items() if f is not None and f.unreadable]
        if bad:
            total = sum(f.unreadable for _, f in bad)
            raise PartialFailure(
                f"{total} subdirectories under {len(bad)} cache directories could not be read, "
                f"so their usage is a lower bound (first: {bad[0][1].first_unreadable})"
            )

    def _walk(self, root: bytes, dirs: list[bytes], device: int) -> None:
        """Walk in rotation from where the last run stopped, until the budget is gone."""
        budget = _Budget(self.settings.time_budget, self.settings.max_entries)
        start = next((i for i, n in enumerate(dirs) if n >= self._next), 0)
        order = dirs[start:] + dirs[:start]
        for name in order:
            if budget.progressed and budget.gone():
                self._next = name
                return
            walk = self._walks.pop(name, None) or _Walk([os.path.join(root, name)])
            if not resume(walk, device, budget):
                self._walks[name] = walk
                self._next = name
                return
            self._done[name] = _Figure(
                walk.used, walk.count, walk.unreadable, True, time.time(), walk.first_unreadable
            )
        self._next = b""  # a full round this run: the next one starts at the first name

    def _figure(self, name: bytes) -> _Figure | None:
        done = self._done.get(name)
        if done is not None:
            return done
        walk = self._walks.get(name)
        if walk is not None:  # never finished yet: the lower bound so far
            return _Figure(
                walk.used, walk.count, walk.unreadable, False, None, walk.first_unreadable
            )
        return None

    def _limit(self, figures: dict[bytes, _Figure | None]) -> dict[str, _Figure | None]:
        """Every directory by name, or the largest `max_dirs - 1` and the rest summed."""
        cap = self.settings.max_dirs
        if len(figures) <= cap:
            return {label(n): f for n, f in figures.items()}
        keep = heapq.nlargest(max(cap - 1, 0), figures, key=lambda n: _size(figures[n]))
        out: dict[str, _Figure | None] = {label(n): figures[n] for n in sorted(keep)}
        rest = _Figure(0, 0, 0, True)
        times = []
        for n, f in figures.items():
            if label(n) in out:
                continue
            if f is None:
                rest.complete = False
                continue
            rest.used, rest.count, rest.unreadable = (
                rest.used + f.used,
                rest.count + f.count,
                rest.unreadable + f.unreadable,
            )
            rest.complete = rest.complete and f.complete
            if f.at is not None:
                times.append(f.at)
        rest.at = min(times) if times and rest.complete else None
        out[OTHERS] = rest
        return out

    @staticmethod
    def _emit(fams: dict[str, Metric], directory: str, fig: _Figure | None, size: int) -> None:
        lv = [directory]
        if fig is None:  # not reached yet: no figure at all, never a made-up one
            fams["poolwatch_cache_dir_walk_truncated"].add_metric(lv, 1)
            return
        fams["poolwatch_cache_dir_usage_bytes"].add_metric(lv, fig.used)
        fams["poolwatch_cache_dir_files"].add_metric(lv, fig.count)
        if size > 0:
            fams["poolwatch_cache_dir_used_ratio"].add_metric(lv, fig.used / size)
        incomplete = not fig.complete or fig.unreadable > 0
        fams["poolwatch_cache_dir_walk_truncated"].add_metric(lv, 1 if incomplete else 0)
        fams["poolwatch_cache_dir_unreadable_directories"].add_metric(lv, fig.unreadable)
        if fig.at is not None:
            fams["poolwatch_cache_dir_measured_timestamp_seconds"].add_metric(lv, fig.at)


def _size(fig: _Figure | None) -> int:
    return -1 if fig is None else fig.used


@register("cache_dir", lambda s: s.collectors.cache_dir)
def _factory(settings: NodeExporterSettings) -> CacheDirCollector:
    cache, rootfs = settings.cache_dir, settings.roots.rootfs
    root = rootfs / cache.relative_to(cache.anchor) if cache.is_absolute() else cache
    return CacheDirCollector(settings.collectors.cache_dir, root)
