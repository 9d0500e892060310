"""Bounded fuzzing of every node-exporter parser and renderer: no exception escapes a collector.

Inputs are the real captures under tests/fixtures, mutated (tokens swapped for `NA`, `-`, huge
numbers, text; lines dropped, duplicated, cut; bytes that are not UTF-8) or replaced by noise; file
and directory names are arbitrary bytes. Two properties:

* a parser raises nothing but `ValueError` (with its subclasses, and the module's own "view not
  supported" signal): a clear error the collector turns into a problem line, never an `IndexError`;
* a collector run through the real runner never raises, and what it stores is a valid exposition
  in strict UTF-8 that Prometheus's text parser reads, with `up` 0 or 1.

Each test is held to a fixed number of examples (a few seconds each on a loaded 2-core machine);
hypothesis prints the failing input, which then becomes an ordinary test.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poolwatch.exporters.node.accelerators import hccn_tool, npu_smi_parse
from poolwatch.exporters.node.accelerators.npu_smi import NpuSmiBackend
from poolwatch.exporters.node.attribution.cgroup import (
    PodNames,
    parse_cgroup_path,
    parse_proc_cgroup,
)
from poolwatch.exporters.node.collectors import container, host, infiniband, nfs
from poolwatch.exporters.node.collectors.accelerator import AcceleratorCollector
from poolwatch.exporters.node.collectors.cache_dir import CacheDirCollector
from poolwatch.exporters.node.collectors.filesystem import read_mounts
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.settings import (
    AcceleratorSettings,
    CacheDirSettings,
    ContainerSettings,
    HostSettings,
    _IncludeExclude,
)
from poolwatch.exporters.node.store import ExpositionStore
from tests.helpers import FIXTURES, parse

BOUNDED = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same inputs every run: a failure here is reproducible in CI
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ODD = [
    "", "-", "NA", "N/A", "nan", "inf", "-inf", "-1", "0", "1e400", "99999999999999999999999",
    "0x", "0xZZ", ":", "|", "/", "=", "abc", "é", "\ufffd", " ", "\t", "\n", '"', "\\", "%s",
]  # fmt: skip
_SPLIT = re.compile(r"(\s+|[:|/=,])")


@st.composite
def mutated(draw: st.DrawFn, original: str) -> bytes:
    """`original` with a few random edits, as bytes (some of them not UTF-8)."""
    lines = original.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        op = draw(st.sampled_from(["token", "token", "drop", "dup", "cut", "insert"]))
        if not lines:
            lines = [""]
        if op == "token":
            words = _SPLIT.split(lines[i])
            j = draw(st.integers(0, len(words) - 1))
            words[j] = draw(st.one_of(st.sampled_from(ODD), st.text(max_size=8)))
            lines[i] = "".join(words)
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:
            lines.insert(i, draw(st.text(max_size=40)) + "\n")
    data = "".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # now and then, a byte that is not UTF-8
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]))
            + data[at:]
        )
    return data


def inputs(original: str) -> st.SearchStrategy[bytes]:
    """Mostly mutations of a real capture, sometimes pure noise."""
    return st.one_of(mutated(original), mutated(original), st.binary(max_size=300))


def as_text(data: bytes) -> str:
    """What `Path.read_text()` would give, or the UnicodeDecodeError (a ValueError) it raises."""
    return data.decode("utf-8")


def only_clear_errors(fn: Callable[[str], object], data: bytes, *allowed: type) -> None:
    try:
        fn(as_text(data))
    except (ValueError, *allowed):
        pass


def run_checked(collector: object) -> None:
    """One run through the real runner: it must not raise, and the store stays valid."""
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    runner = Runner([collector], store, ("modelarts",))  # type: ignore[list-item]
    ok = runner.run_once(collector)  # type: ignore[arg-type]
    assert ok in (True, False)
    s = parse(store.body().decode("utf-8"))  # strict UTF-8, and parseable
    name = collector.name  # type: ignore[attr-defined]
    up = [
        v for (n, ls), v in s.items() if n == "poolwatch_collector_up" and ("collector", name) in ls
    ]
    assert up == [1.0 if ok else 0.0]
    if not ok:
        assert store.states()[0].last_error


def fixture(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text()


# -- parsers ------------------------------------------------------------------------------------
PROC = {
    "stat": host.parse_stat,
    "meminfo": host.parse_meminfo,
    "net/dev": host.parse_net_dev,
    "diskstats": host.parse_diskstats,
    "self/mountstats": nfs.parse_mountstats,
}


@BOUNDED
@given(st.sampled_from(sorted(PROC)), st.data())
def test_procfs_parsers_raise_only_clear_errors(name: str, data: st.DataObject) -> None:
    only_clear_errors(PROC[name], data.draw(inputs(fixture("proc", name))))


@BOUNDED
@given(st.data())
def test_the_container_collectors_nfs_bytes_reader_raises_only_clear_errors(
    data: st.DataObject,
) -> None:
    only_clear_errors(nfs.nfs_bytes, data.draw(inputs(fixture("proc", "self/mountstats"))))


CGROUP = {
    "cpu.stat": container.parse_keyed,
    "memory.stat": container.parse_keyed,
    "io.stat": container.parse_io_stat,
    "memory.max": container.parse_max,
}


@BOUNDED
@given(st.sampled_from(sorted(CGROUP)), st.data())
def test_cgroup_parsers_raise_only_clear_errors(name: str, data: st.DataObject) -> None:
    only_clear_errors(
        CGROUP[name], data.draw(inputs(fixture("cgroup", name))), container.CgroupFileError
    )
    only_clear_errors(container.parse_cpu_max, data.draw(inputs("200000 100000\n")))
    proc_cgroup = "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + "a" * 64 + ".scope\n"
    only_clear_errors(parse_proc_cgroup, data.draw(inputs(proc_cgroup)))
    only_clear_errors(parse_cgroup_path, data.draw(inputs(proc_cgroup[3:])))


NPU_SMI = sorted(p.name for p in (FIXTURES / "ascend").glob("*.txt") if "source" not in p.name)


@BOUNDED
@given(st.sampled_from(NPU_SMI), st.data())
def test_npu_smi_parsers_raise_only_clear_errors(name: str, data: st.DataObject) -> None:
    raw = data.draw(inputs(fixture("ascend", name)))
    if name.startswith("info"):
        only_clear_errors(npu_smi_parse.parse_overview, raw, npu_smi_parse.ViewUnsupported)
        return
    view = name.split("_")[1]

    def facts(text: str) -> object:
        parsed = npu_smi_parse.parse_view(text, data.draw(st.sampled_from([None, 0, 1])))
        return npu_smi_parse.view_facts(view, data.draw(st.booleans()), parsed)

    only_clear_errors(facts, raw, npu_smi_parse.ViewUnsupported)


HCCN = {
    "link_mindcluster_doc.txt": hccn_tool.parse_link,
    "link_stat_device_mindcluster_doc.txt": hccn_tool.parse_link_stat,
    "link_stat_devid_hccl_doc.txt": hccn_tool.parse_link_stat,
    "stat_mindcluster_doc_EXCERPT.txt": hccn_tool.parse_stat,
    "optical_mindcluster_doc_EXCERPT.txt": hccn_tool.parse_optical,
}


@BOUNDED
@given(st.sampled_from(sorted(HCCN)), st.data())
def test_hccn_tool_parsers_raise_only_clear_errors(name: str, data: st.DataObject) -> None:
    only_clear_errors(
        HCCN[name], data.draw(inputs(fixture("hccn", name))), hccn_tool.ViewUnsupported
    )


@BOUNDED
@given(st.data())
def test_mount_table_parser_raises_only_clear_errors(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        procfs = Path(tmp)
        (procfs / "self").mkdir()
        (procfs / "self/mountinfo").write_bytes(data.draw(inputs(fixture("proc/self/mountinfo"))))
        only_clear_errors(lambda _: read_mounts(procfs), b"")


# -- collectors, through the runner ---------------------------------------------------------------
@BOUNDED
@given(st.sampled_from(["stat", "meminfo", "net/dev", "diskstats"]), st.data())
def test_host_collector_survives_any_procfs_file(name: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        procfs = Path(tmp) / "proc"
        shutil.copytree(FIXTURES / "proc", procfs)
        (procfs / name).write_bytes(data.draw(inputs(fixture("proc", name))))
        run_checked(host.HostCollector(HostSettings(), procfs))


@BOUNDED
@given(st.data())
def test_nfs_collector_survives_any_mountstats(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        procfs = Path(tmp)
        (procfs / "self").mkdir()
        (procfs / "self/mountstats").write_bytes(data.draw(inputs(fixture("proc/self/mountstats"))))
        run_checked(nfs.NfsCollector(_IncludeExclude(), procfs))


IB_FILES = sorted(
    str(p.relative_to(FIXTURES / "sys")) for p in (FIXTURES / "sys").rglob("*") if p.is_file()
)
NAMES = (
    st.binary(min_size=1, max_size=12)
    .filter(lambda b: b not in (b".", b".."))
    .map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_"))
)


@BOUNDED
@given(st.sampled_from(IB_FILES), st.data())
def test_infiniband_collector_survives_any_sysfs_file_and_device_name(
    name: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sysfs = Path(tmp) / "sys"
        shutil.copytree(FIXTURES / "sys", sysfs)
        (sysfs / name).write_bytes(data.draw(inputs(fixture("sys", name))))
        ib = os.fsencode(sysfs / "class/infiniband")
        os.rename(os.path.join(ib, b"mlx5_0"), os.path.join(ib, data.draw(NAMES)))
        run_checked(infiniband.InfinibandCollector(_IncludeExclude(), sysfs))


@BOUNDED
@given(st.lists(NAMES, min_size=1, max_size=6, unique=True))
def test_cache_dir_collector_survives_any_directory_names(names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            os.mkdir(os.path.join(os.fsencode(tmp), n))
        run_checked(CacheDirCollector(CacheDirSettings(), Path(tmp)))


class _Npu:
    """npu-smi as a function: `info` from a capture, every view from a (mutated) capture."""

    def __init__(self, overview: bytes, view: bytes) -> None:
        self.overview, self.view = overview, view

    def __call__(self, argv: list[str], timeout: float) -> str:
        return (self.overview if argv[1:] == ["info"] else self.view).decode("utf-8")


VIEWS = sorted(n for n in NPU_SMI if n.startswith("t_"))
INFOS = sorted(n for n in NPU_SMI if n.startswith("info"))


@BOUNDED
@given(st.sampled_from(INFOS), st.sampled_from(VIEWS), st.data())
def test_accelerator_collector_survives_any_npu_smi_output(
    info: str, view: str, data: st.DataObject
) -> None:
    overview = data.draw(
        st.one_of(st.just(fixture("ascend", info).encode()), inputs(fixture("ascend", info)))
    )
    run = _Npu(overview, data.draw(inputs(fixture("ascend", view))))
    backend = NpuSmiBackend(run=run, max_workers=1)
    run_checked(AcceleratorCollector(AcceleratorSettings(), [(backend, True)]))


@BOUNDED
@given(st.data())
def test_accelerator_collector_survives_any_hccn_tool_output(data: st.DataObject) -> None:
    answers = {
        n.split("_mindcluster")[0].split("_device")[0]: data.draw(inputs(fixture("hccn", n)))
        for n in HCCN
    }

    def run(argv: list[str], timeout: float) -> str:
        view = argv[3].removeprefix("-")
        return answers.get(view, answers["link"]).decode("utf-8")

    backend = hccn_tool.HccnToolBackend(device_ids=lambda: [0, 1], run=run, max_workers=1)
    run_checked(AcceleratorCollector(AcceleratorSettings(), [(backend, False)]))


@BOUNDED
@given(
    st.sampled_from(["cpu.stat", "memory.stat", "io.stat", "memory.max", "memory.current"]),
    st.data(),
)
def test_container_collector_survives_any_cgroup_file_and_directory_name(
    name: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cgroup, proc = root / "cgroup", root / "proc"
        pod = cgroup / "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice"
        cid = "c" * 64
        scope = pod / f"cri-containerd-{cid}.scope"
        scope.mkdir(parents=True)
        (cgroup / "cgroup.controllers").write_text("cpu io memory pids\n")
        for f in ("cpu.stat", "memory.current", "memory.stat", "memory.max", "io.stat"):
            shutil.copy(FIXTURES / "cgroup" / f, scope / f)
        (scope / "cpu.max").write_text("200000 100000\n")
        (scope / "cgroup.procs").write_text("4242\n")
        (scope / name).write_bytes(data.draw(inputs(fixture("cgroup", name))))
        odd = os.path.join(os.fsencode(pod), data.draw(NAMES))
        if not os.path.exists(odd):
            os.mkdir(odd)  # a stray directory with any name next to the container
        (proc / "4242/net").mkdir(parents=True)
        (proc / "4242/comm").write_text("python\n")
        shutil.copy(FIXTURES / "cgroup/net_dev", proc / "4242/net/dev")
        (root / "pods").mkdir()
        (root / "containers").mkdir()
        os.mkdir(os.path.join(os.fsencode(root / "pods"), data.draw(NAMES)))  # any pod log dir
        names = PodNames(root / "pods", root / "containers")
        run_checked(container.ContainerCollector(ContainerSettings(), cgroup, proc, names))


@BOUNDED
@given(st.sampled_from(["cpu.stat", "memory.stat"]), st.data())
def test_keyed_value_agrees_with_the_full_parse(name: str, data: st.DataObject) -> None:
    """The collector reads one key without parsing the file; it must say what the full parse
    says, or raise a ValueError where the full parse would fail on that line."""
    text = data.draw(inputs(fixture("cgroup", name))).decode("utf-8", "replace")
    key = data.draw(st.sampled_from(["usage_usec", "inactive_file", "active_file", "anon"]))
    try:
        expected = container.parse_keyed(text).get(key)
    except ValueError:
        return  # some line does not parse: the collector may or may not reach it
    assert container.keyed_value(text, key) == expected
