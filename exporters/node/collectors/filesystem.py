"""filesystem: size, use and state of the filesystems holding the configured paths.

This is the data behind the seeds' cache-space and container-space alarms (> 90 %, critical). The
cache directory (`cache_dir`, purpose "cache") is required: if it is missing the collector reports
`poolwatch_filesystem_device_error{error="missing"}` and goes down. Optional paths (container
engine,
kubelet) that do not exist on this host are skipped.

Stuck mounts cost one thread, never a scrape (the node_exporter approach): statvfs runs in a small
bounded pool under `mount_timeout`; a path whose call hung is marked in flight and reported as
`error="timeout"` without a new call until the hung one returns.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from prometheus_client.core import Metric

from ..collector import PartialFailure, families, register
from ..settings import FilesystemPath, FilesystemSettings, NodeExporterSettings

log = logging.getLogger(__name__)
StatFn = Callable[[str], os.statvfs_result]


class StuckMount(OSError):
    """statvfs did not return within the mount timeout (or an earlier call is still hung)."""


class StatGuard:
    """statvfs in a bounded worker pool, with a per-path in-flight mark."""

    def __init__(self, workers: int, timeout: float, statvfs: StatFn = os.statvfs) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="statvfs")
        self._timeout = timeout
        self._statvfs = statvfs
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    def stat(self, path: str) -> os.statvfs_result:
        with self._lock:
            if path in self._inflight:
                raise StuckMount(errno.ETIMEDOUT, "an earlier statvfs is still hung", path)
            self._inflight.add(path)
        future = self._pool.submit(self._statvfs, path)
        future.add_done_callback(lambda _f: self._release(path))
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout:
            raise StuckMount(errno.ETIMEDOUT, f"statvfs hung > {self._timeout:g}s", path) from None

    def _release(self, path: str) -> None:
        with self._lock:
            self._inflight.discard(path)


def read_mounts(procfs: Path) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount, from PID 1's mountinfo (the host's namespace)."""
    for candidate in (procfs / "1/mountinfo", procfs / "self/mountinfo"):
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        mounts = []
        for line in text.splitlines():
            left, sep, right = line.partition(" - ")
            fields = left.split()
            if sep and len(fields) >= 5 and right.split():
                point = fields[4].replace("\\040", " ").replace("\\011", "\t")
                mounts.append((point, right.split()[0]))
        return mounts
    return []


def mount_of(path: str, mounts: list[tuple[str, str]]) -> tuple[str, str]:
    """The longest mount point that contains `path` (the last one mounted wins a tie)."""
    best = ("/", "")
    for point, fstype in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def _error_kind(err: OSError) -> str:
    if isinstance(err, StuckMount):
        return "timeout"
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return "missing"
    if isinstance(err, PermissionError):
        return "permission"
    return "io"


class FilesystemCollector:
    name = "filesystem"

    def __init__(
        self,
        settings: FilesystemSettings,
        paths: list[FilesystemPath],
        roots: tuple[Path, Path],
        statvfs: StatFn = os.statvfs,
    ) -> None:
        self.interval, self.timeout = settings.interval, settings.timeout
        self.paths = paths
        self.procfs, self.rootfs = roots
        self.guard = StatGuard(settings.stat_workers, settings.mount_timeout, statvfs)

    def _host_path(self, path: Path) -> str:
        return str(self.rootfs / path.relative_to(path.anchor)) if path.is_absolute() else str(path)

    def _in_host(self, resolved: str) -> str:
        """A resolved path under rootfs, as the host (and its mountinfo) names it."""
        root = str(self.rootfs)
        if root == "/":
            return resolved
        rel = os.path.relpath(resolved, root)
        return "/" if rel == "." else "/" + rel

    def collect(self) -> Iterator[Metric]:
        fams = families(self.name)
        mounts = read_mounts(self.procfs)
        problems = []
        for entry in self.paths:
            problem = self._measure(entry, mounts, fams)
            if problem:
                problems.append(problem)
        yield from fams.values()
        if problems:
            raise PartialFailure("; ".join(problems))

    def _measure(
        self, entry: FilesystemPath, mounts: list[tuple[str, str]], fams: dict[str, Metric]
    ) -> str:
        path = str(entry.path)
        host_path = self._host_path(entry.path)
        try:
            st = self.guard.stat(host_path)
            resolved = os.path.realpath(host_path)
        except OSError as err:
            kind = _error_kind(err)
            if kind == "missing" and not entry.required:
                return ""
            fams["poolwatch_filesystem_device_error"].add_metric([path, entry.purpose, kind], 1)
            return f"{path} ({entry.purpose}): {kind}: {err.strerror or err}"
        in_host = self._in_host(resolved)
        point, fstype = mount_of(in_host, mounts)
        if entry.require_mount and point != in_host:
            fams["poolwatch_filesystem_device_error"].add_metric(
                [path, entry.purpose, "not_a_mount"], 1
            )
            return f"{path} ({entry.purpose}): not a mount point (it lives on {point})"
        labels = [path, entry.purpose, point, fstype]
        size = st.f_blocks * st.f_frsize
        free = st.f_bfree * st.f_frsize
        avail = st.f_bavail * st.f_frsize
        used = size - free
        fams["poolwatch_filesystem_size_bytes"].add_metric(labels, size)
        fams["poolwatch_filesystem_used_bytes"].add_metric(labels, used)
        fams["poolwatch_filesystem_available_bytes"].add_metric(labels, avail)
        if used + avail > 0:
            fams["poolwatch_filesystem_used_ratio"].add_metric(labels, used / (used + avail))
        fams["poolwatch_filesystem_inodes"].add_metric(labels, st.f_files)
        fams["poolwatch_filesystem_inodes_free"].add_metric(labels, st.f_ffree)
        fams["poolwatch_filesystem_readonly"].add_metric(
            labels, 1.0 if st.f_flag & os.ST_RDONLY else 0.0
        )
        return ""


@register("filesystem", lambda s: s.collectors.filesystem)
def _factory(settings: NodeExporterSettings) -> FilesystemCollector:
    return FilesystemCollector(
        settings.collectors.filesystem,
        settings.filesystem_paths(),
        (settings.roots.procfs, settings.roots.rootfs),
    )
