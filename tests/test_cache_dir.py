"""The cache-directory walk: sizes per workload directory, budgets, rotation, missing root."""

import os
from pathlib import Path

from helpers import run_collector, value

from poolwatch.exporters.node.collectors.cache_dir import CacheDirCollector
from poolwatch.exporters.node.settings import CacheDirSettings


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


def _walked(s) -> set[str]:
    return {dict(ls)["directory"] for n, ls in s if n == "poolwatch_cache_dir_usage_bytes"}


def test_entry_budget_truncates_then_later_runs_finish_the_walk(tmp_path: Path) -> None:
    _tree(tmp_path)
    c = CacheDirCollector(CacheDirSettings(max_entries=3), tmp_path)
    _, s, _ = run_collector(c)
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-a") == 1
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-c") == 1
    assert _walked(s) == {"job-a"}  # a lower bound so far
    assert "poolwatch_cache_dir_measured_timestamp_seconds" not in {n for n, _ in s}
    _, s, _ = run_collector(c)  # the cut walk goes on where it stopped: job-a is finished
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-a") == 0
    assert value(s, "poolwatch_cache_dir_usage_bytes", directory="job-a") == _du(tmp_path / "job-a")
    assert value(s, "poolwatch_cache_dir_measured_timestamp_seconds", directory="job-a") > 0
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="job-c") == 1


def test_a_directory_larger_than_the_budget_is_measured_completely_over_runs(
    tmp_path: Path,
) -> None:
    """Before, every run restarted the walk, so a directory with more entries than the budget
    was truncated forever."""
    _tree(tmp_path)
    deep = tmp_path / "job-big"
    for i in range(6):
        d = deep / f"d{i}"
        d.mkdir(parents=True)
        for j in range(4):
            (d / f"f{j}").write_bytes(b"x" * 5000)
    c = CacheDirCollector(CacheDirSettings(max_entries=5), tmp_path)
    for _ in range(20):
        ok, s, store = run_collector(c)
        truncated = [v for (n, _), v in s.items() if n == "poolwatch_cache_dir_walk_truncated"]
        if not any(truncated):
            break
    assert ok, store.states()[0].last_error
    for job in ("job-a", "job-b", "job-c", "job-big"):
        assert value(s, "poolwatch_cache_dir_walk_truncated", directory=job) == 0
        assert value(s, "poolwatch_cache_dir_usage_bytes", directory=job) == _du(tmp_path / job)
    assert value(s, "poolwatch_cache_dir_files", directory="job-big") == 6 * 5


def test_every_directory_is_covered_beyond_max_dirs(tmp_path: Path) -> None:
    """The largest directories by name, the rest summed under "/others": the total is whole."""
    sizes = {"a": 1, "b": 9, "c": 3, "d": 7, "e": 2}
    for name, blocks in sizes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_bytes(os.urandom(blocks * 8192))
    ok, s, _ = run_collector(CacheDirCollector(CacheDirSettings(max_dirs=3), tmp_path))
    assert ok
    assert _walked(s) == {"b", "d", "/others"}
    others = sum(_du(tmp_path / n) for n in "ace")
    assert value(s, "poolwatch_cache_dir_usage_bytes", directory="/others") == others
    total = sum(v for (n, _), v in s.items() if n == "poolwatch_cache_dir_usage_bytes")
    assert total == sum(_du(tmp_path / n) for n in sizes)
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="/others") == 0


def _as_nobody(fn, *args):
    """Run `fn` in a child as uid/gid 65534 (the chart's default user, no capabilities), so a
    mode-700 directory really is unreadable; as a non-root user, the test's own uid suffices."""
    import multiprocessing

    if os.geteuid() != 0:
        return fn(*args)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()

    def target() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        child.send(fn(*args))

    p = ctx.Process(target=target)
    p.start()
    result = parent.recv()
    p.join()
    return result


def _measure(root: str):
    ok, s, store = run_collector(CacheDirCollector(CacheDirSettings(), Path(root)))
    return ok, s, store.states()[0].last_error


def test_permission_denied_is_incomplete_and_a_partial_failure() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the unprivileged user must reach the tree
        root = Path(tmp)
        for job in ("open", "locked"):
            (root / job / "sub").mkdir(parents=True)
            (root / job / "sub" / "f").write_bytes(os.urandom(64 * 1024))
            os.chmod(root / job, 0o755)  # noqa: S103 - readable by the unprivileged user
            os.chmod(root / job / "sub", 0o755)  # noqa: S103
            os.chmod(root / job / "sub" / "f", 0o644)
        os.chmod(root / "locked" / "sub", 0o700)  # owned by root: 65534 cannot list it
        ok, s, error = _as_nobody(_measure, tmp)
        os.chmod(root / "locked" / "sub", 0o755)  # noqa: S103 - so the cleanup can remove it
    assert not ok  # up 0: the figure is incomplete, not silently low
    assert "could not be read" in error
    assert "locked/sub" in error
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="locked") == 1
    assert value(s, "poolwatch_cache_dir_unreadable_directories", directory="locked") == 1
    assert value(s, "poolwatch_cache_dir_walk_truncated", directory="open") == 0
    assert value(s, "poolwatch_cache_dir_unreadable_directories", directory="open") == 0
    assert value(s, "poolwatch_collector_up", collector="cache_dir") == 0


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
