"""The filesystem collector: real statvfs on temporary paths, errors, and a hung mount."""

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import FIXTURES, names, run_collector, value

from poolwatch.exporters.node.collectors.filesystem import (
    FilesystemCollector,
    mount_of,
    read_mounts,
)
from poolwatch.exporters.node.settings import FilesystemPath, FilesystemSettings


def make(paths, statvfs=os.statvfs, procfs=Path("/proc"), **kw) -> FilesystemCollector:
    settings = FilesystemSettings(**kw)
    return FilesystemCollector(settings, paths, (procfs, Path("/")), statvfs)


def test_cache_dir_figures_equal_statvfs(tmp_path: Path) -> None:
    c = make([FilesystemPath(path=tmp_path, purpose="cache")])
    kube = make([FilesystemPath(path=tmp_path, purpose="kubelet")])
    ok, s, _ = run_collector(c, ("modelarts",))
    st = os.statvfs(tmp_path)
    assert ok
    size = st.f_blocks * st.f_frsize
    assert value(s, "poolwatch_filesystem_size_bytes", purpose="cache") == size
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    ratio = value(s, "poolwatch_filesystem_used_ratio", path=str(tmp_path))
    assert ratio == pytest.approx(used / (used + st.f_bavail * st.f_frsize), abs=1e-3)
    assert value(s, "poolwatch_filesystem_readonly", purpose="cache") == 0
    # ModelArts' "cache space" is the Kubernetes space: the kubelet disk, not /cache
    assert "ma_node_cache_space_used_percent" not in {name for name, _ in s}
    ok, s, _ = run_collector(kube, ("modelarts",))
    assert ok
    assert value(s, "ma_node_cache_space_used_percent") == pytest.approx(ratio * 100)
    assert value(s, "ma_node_cache_space_capacity_megabytes") == pytest.approx(size / 2**20)


def test_missing_cache_dir_is_an_error_but_optional_paths_are_skipped(tmp_path: Path) -> None:
    present = tmp_path / "docker"
    present.mkdir()
    c = make([
        FilesystemPath(path=tmp_path / "nope", purpose="cache"),
        FilesystemPath(path=tmp_path / "kubelet", purpose="kubelet", required=False),
        FilesystemPath(path=present, purpose="container", required=False),
    ])  # fmt: skip
    ok, s, store = run_collector(c)
    assert not ok
    assert value(s, "poolwatch_filesystem_device_error", purpose="cache", error="missing") == 1
    assert value(s, "poolwatch_filesystem_size_bytes", purpose="container") > 0
    assert value(s, "poolwatch_collector_up", collector="filesystem") == 0
    assert "kubelet" not in str(s)
    assert "nope" in store.states()[0].last_error


def test_require_mount_reports_a_plain_directory(tmp_path: Path) -> None:
    c = make([FilesystemPath(path=tmp_path, purpose="cache", require_mount=True)])
    ok, s, store = run_collector(c)
    assert not ok
    assert value(s, "poolwatch_filesystem_device_error", error="not_a_mount") == 1
    assert "not a mount point" in store.states()[0].last_error


def test_hung_mount_costs_one_thread_never_the_collection(tmp_path: Path) -> None:
    """A dead NFS server makes statvfs block in the kernel; here a stand-in blocks on an event."""
    dead, fine = tmp_path / "dead-nfs", tmp_path / "fine"
    dead.mkdir()
    fine.mkdir()
    unblock = threading.Event()
    calls: list[str] = []

    def statvfs(path: str) -> os.statvfs_result:
        calls.append(path)
        if path == str(dead):
            unblock.wait(10)
        return os.statvfs(path)

    c = make(
        [FilesystemPath(path=fine, purpose="cache"), FilesystemPath(path=dead, purpose="nfs")],
        statvfs,
        mount_timeout=0.2,
    )
    t0 = time.monotonic()
    ok, s, _ = run_collector(c)
    assert time.monotonic() - t0 < 1.0
    assert not ok
    assert value(s, "poolwatch_filesystem_device_error", purpose="nfs", error="timeout") == 1
    assert value(s, "poolwatch_filesystem_size_bytes", purpose="cache") > 0
    # the next run reports the mount stuck without issuing a second statvfs on it
    ok, s, _ = run_collector(c)
    assert calls.count(str(dead)) == 1
    assert value(s, "poolwatch_filesystem_device_error", purpose="nfs", error="timeout") == 1
    unblock.set()
    time.sleep(0.1)
    ok, s, _ = run_collector(c)
    assert ok
    assert "poolwatch_filesystem_device_error" not in names(s)
    assert value(s, "poolwatch_filesystem_size_bytes", purpose="nfs") > 0


def test_mount_lookup_uses_mountinfo() -> None:
    mounts = read_mounts(FIXTURES / "proc")
    assert ("/mnt/nfs/test", "nfs4") in mounts
    assert mount_of("/mnt/nfs/test/a/b", mounts) == ("/mnt/nfs/test", "nfs")  # last mount wins
    assert mount_of("/var/lib/x", mounts) == ("/", "ext4")
