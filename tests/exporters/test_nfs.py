"""The NFS collector on the real mountstats capture (prometheus/procfs fixture)."""

from pathlib import Path

import pytest

from poolwatch.exporters.node.collectors.nfs import NfsCollector, nfs_bytes, parse_mountstats
from poolwatch.exporters.node.settings import _IncludeExclude
from tests.helpers import FIXTURES, names, run_collector, value

CAPTURE = (FIXTURES / "proc/self/mountstats").read_text()


def test_parse_capture_keeps_only_nfs_mounts() -> None:
    mounts = parse_mountstats(CAPTURE)
    assert [(m.export, m.mountpoint, m.fstype, m.version) for m in mounts] == [
        ("192.168.1.1:/srv/test", "/mnt/nfs/test", "nfs4", "4.0")
    ]
    assert mounts[0].ops["READ"] == [1298, 1298, 0, 207680, 1210292152, 6, 79386, 79407]


def test_collector_values_and_wrapped_field() -> None:
    ok, s, _ = run_collector(NfsCollector(_IncludeExclude(), FIXTURES / "proc"))
    assert ok
    read = {"mountpoint": "/mnt/nfs/test", "operation": "READ"}
    assert value(s, "poolwatch_nfs_rpc_operations_total", **read) == 1298
    assert value(s, "poolwatch_nfs_rpc_rtt_seconds_total", **read) == pytest.approx(79.386)
    assert value(s, "poolwatch_nfs_rpc_backlog_wait_seconds_total", **read) == pytest.approx(0.006)
    assert value(s, "poolwatch_nfs_rpc_received_bytes_total", **read) == 1210292152
    access = {"operation": "ACCESS"}
    assert value(s, "poolwatch_nfs_rpc_operations_total", **access) == 2927395007
    # the queue field is 18446743919241604546, a negative value the kernel wrapped: not exported
    backlog = [ls for n, ls in s if n == "poolwatch_nfs_rpc_backlog_wait_seconds_total"]
    assert ("operation", "ACCESS") not in {kv for ls in backlog for kv in ls}
    assert value(s, "poolwatch_nfs_rpc_rtt_seconds_total", **access) == pytest.approx(1667369.447)
    assert value(s, "poolwatch_nfs_mount_info", export="192.168.1.1:/srv/test", version="4.0") == 1


def test_seed_aliases_are_average_ms_per_operation(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    stats = tmp_path / "self/mountstats"
    head = "device srv:/x mounted on /mnt/x with fstype nfs statvers=1.1\n\tper-op statistics\n"
    stats.write_text(head + "\t READ: 10 10 0 0 0 20 100 120\n")
    c = NfsCollector(_IncludeExclude(), tmp_path)
    from poolwatch.exporters.node.runner import Runner
    from poolwatch.exporters.node.store import ExpositionStore
    from tests.helpers import parse

    store = ExpositionStore({"node": "n", "pool": ""})
    runner = Runner([c], store, ("modelarts",))
    runner.run_once(c)
    assert "ma_node_mountstats_read_rtt" not in names(parse(store.body()))  # no interval yet
    stats.write_text(head + "\t READ: 14 14 0 0 0 28 180 210\n")
    runner.run_once(c)
    s = parse(store.body())
    assert value(s, "ma_node_mountstats_read_rtt") == pytest.approx(80 / 4)  # ms per op
    assert value(s, "ma_node_mount_stats_read_rtt") == pytest.approx(20.0)
    assert value(s, "ma_node_mountstats_read_backlog_wait") == pytest.approx(2.0)
    stats.write_text(head + "\t READ: 14 14 0 0 0 28 180 210\n")
    runner.run_once(c)  # no operations in the interval: no wait, not a division by zero
    assert value(parse(store.body()), "ma_node_mountstats_read_rtt") == 0


def test_same_mountpoint_twice_gives_no_duplicate_series(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    one = (
        "device a:/x mounted on /mnt/x with fstype nfs4\n"
        "\tper-op statistics\n\t READ: 1 1 0 0 0 0 0 0\n"
    )
    two = one.replace("READ: 1 ", "READ: 9 ")
    (tmp_path / "self/mountstats").write_text(one + two)
    ok, s, _ = run_collector(NfsCollector(_IncludeExclude(), tmp_path))
    assert ok
    assert value(s, "poolwatch_nfs_rpc_operations_total", operation="READ") == 9


def test_malformed_mountstats_marks_collector_down_with_line(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    bad = "device a:/x mounted on /mnt/x with fstype nfs4\n\tper-op statistics\n\t READ: 1 x 0\n"
    (tmp_path / "self/mountstats").write_text(bad)
    with pytest.raises(ValueError, match="line 3"):
        parse_mountstats(bad)
    ok, s, store = run_collector(NfsCollector(_IncludeExclude(), tmp_path))
    assert not ok
    assert value(s, "poolwatch_collector_up", collector="nfs") == 0
    assert "line 3" in store.states()[0].last_error
    assert not [n for n in names(s) if n.startswith("poolwatch_nfs")]


def test_the_bytes_only_reader_agrees_with_the_full_parse() -> None:
    """The container collector's fast reader sees the same NFS mounts and bytes as the full
    parse, on the capture and on a container's file (two NFS mounts among runtime mounts, the
    bytes line in other places of the section)."""
    text = CAPTURE + (
        "device overlay mounted on / with fstype overlay\n"
        "device 10.0.0.9:/ds mounted on /data with fstype nfs statvers=1.1\n"
        "\topts:\tro,vers=3\n\tbytes:\t5 6 7 8 9 10 11 12\n\tper-op statistics\n"
        "\t        READ: 1 1 0 2 3 0 4 5\n"
        "device 10.0.0.9:/ck mounted on /ckpt with fstype nfs4 statvers=1.1\n"
        "\tage:\t7\n\tper-op statistics\n\t       WRITE: 1 1 0 2 3 0 4 5\n"
    )
    full = [(m.export, m.mountpoint, m.fstype, m.bytes) for m in parse_mountstats(text)]
    fast = [(m.export, m.mountpoint, m.fstype, m.bytes) for m in nfs_bytes(text)]
    assert fast == full
    assert [m.bytes for m in nfs_bytes(text)][1:] == [[5, 6, 7, 8, 9, 10, 11, 12], []]
    with pytest.raises(ValueError, match="line 2: bad bytes line"):
        nfs_bytes("device a:/x mounted on /x with fstype nfs\n\tbytes:\t1 x\n")
