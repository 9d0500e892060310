"""The cache-directory walk: sizes per workload directory, budgets, rotation, missing root."""

import os
from pathlib import Path

from helpers import run_collector, value

from exporters.node.collectors.cache_dir import CacheDirCollector
from exporters.node.settings import CacheDirSettings


def _tree(root: Path) -> None:
    for job, files in {"job-a": 3, "job-b": 1, "job-c": 0}.items():
        d = root / job / "sub"
        d.mkdir(parents=True)
        for i in range(files):
            (d / f"f{i}").write_bytes(os.urandom(64 * 1024))
    (root / "stray-file").write_bytes(b"x")  # files at the top are not workloads
    (root / "job-b" / "link").symlink_to("/usr")  # never followed


def _du(path: Path) -> int:
    total = 0
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


def test_usage_per_directory_matches_du(tmp_path: Path) -> None:
    _tree(tmp_path)
    ok, s, _ = run_collector(CacheDirCollector(CacheDirSettings(), tmp_path), ("modelarts",))
    assert ok
    for job in ("job-a", "job-b", "job-c"):
        used = value(s, "poolwatch_cache_dir_usage_bytes", directory=job)
        assert used == _du(tmp_path / job)
        assert value(s, "poolwatch_cache_dir_walk_truncated", directory=job) == 0
    assert value(s, "poolwatch_cache_dir_usage_bytes", directory="job-a") >= 3 * 64 * 1024
    assert value(s, "poolwatch_cache_dir_files", directory="job-a") == 4  # sub + 3 files
    size = os.statvfs(tmp_path).f_blocks * os.statvfs(tmp_path).f_frsize
    ratio = value(s, "poolwatch_cache_dir_used_ratio", directory="job-a")
    assert ratio == _du(tmp_path / "job-a") / size
    assert value(s, "ma_container_notebook_cache_dir_util", directory="job-a") == ratio * 100
    assert "stray-file" not in str(s)


def test_entry_budget_truncates_and_rotates(tmp_path: Path) -> None:
    _tree(tmp_path)
    c = CacheDirCollector(CacheDirSettings(max_entries=3), tmp_path)
    _, s, _ = run_collector(c)
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-a") == 1
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-c") == 1
    walked = {dict(ls)["directory"] for n, ls in s if n == "poolwatch_cache_dir_usage_bytes"}
    assert walked == {"job-a"}
    _, s, _ = run_collector(c)  # the next walk starts where this one stopped
    walked = {dict(ls)["directory"] for n, ls in s if n == "poolwatch_cache_dir_usage_bytes"}
    assert walked == {"job-b"}


def test_missing_cache_root_marks_collector_down(tmp_path: Path) -> None:
    ok, s, store = run_collector(CacheDirCollector(CacheDirSettings(), tmp_path / "absent"))
    assert not ok
    assert value(s, "poolwatch_collector_up", collector="cache_dir") == 0
    assert "absent" in store.states()[0].last_error


def test_directory_name_that_is_not_utf8_is_reported_with_a_readable_label(tmp_path: Path) -> None:
    """`mkdir $'/cache/bad\\xff'`: the directory is measured under an escaped name and the run
    succeeds; the exposition stays valid UTF-8."""
    _tree(tmp_path)
    bad = os.path.join(os.fsencode(tmp_path), b"bad\xff")
    os.mkdir(bad)
    with open(os.path.join(bad, b"f"), "wb") as f:
        f.write(os.urandom(8192))
    ok, s, store = run_collector(CacheDirCollector(CacheDirSettings(), tmp_path))
    assert ok, store.states()[0].last_error
    assert value(s, "poolwatch_cache_dir_files", directory="bad\\xff") == 1
    assert value(s, "poolwatch_cache_dir_usage_bytes", directory="job-a") == _du(tmp_path / "job-a")
    store.body().decode("utf-8")  # strict: raises on anything that is not UTF-8
