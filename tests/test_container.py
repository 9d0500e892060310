"""The container collector on a fake cgroup v2 + procfs tree built from captured files.

tests/fixtures/cgroup/ holds files captured on a cgroup v2 host (see its SOURCE.md); each test
copies them into a kubepods hierarchy in tmp_path and changes only the values it needs.
"""

import json
import shutil
from pathlib import Path

import pytest
from helpers import (
    FIXTURES,
    names,
    not_about_seed_names,
    parse,
    promtool_findings,
    run_collector,
    value,
)
from prom_versions import Prometheus

from poolwatch.core import catalog
from poolwatch.exporters.node.attribution.cgroup import PodNames
from poolwatch.exporters.node.attribution.pod_labels import parse_pod_list_requests
from poolwatch.exporters.node.attribution.pod_resources import training_job_of
from poolwatch.exporters.node.collectors import container as collector_module
from poolwatch.exporters.node.collectors.container import (
    ContainerCollector,
    keyed_value,
    parse_io_stat,
)
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.settings import ContainerSettings, NodeExporterSettings
from poolwatch.exporters.node.store import ExpositionStore

CG = FIXTURES / "cgroup"
MIB = 1048576
WORKING_SET = 4964352 - 425984  # memory.current - inactive_file of the captured cgroup
DISK_READ = 127950848 + 658732032  # rbytes over the devices in the captured io.stat
HOST_NS, POD_NS = "net:[4026531833]", "net:[4026532417]"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A cgroup v2 mount, a procfs and the kubelet's log directories under one tmp_path."""

    def __init__(self, base: Path) -> None:
        self.cgroup, self.proc, self.root = base / "cgroup", base / "proc", base / "root"
        self.cgroup.mkdir()
        (self.cgroup / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
        (self.cgroup / "system.slice/containerd.service").mkdir(parents=True)
        (self.cgroup / "system.slice/containerd.service/cpu.stat").write_text("usage_usec 1\n")
        (self.root / "var/log/containers").mkdir(parents=True)
        (self.root / "var/log/pods").mkdir(parents=True)
        self._pid = 1000
        self.process(1, "systemd", HOST_NS)

    def process(self, pid: int, comm: str, netns: str) -> int:
        d = self.proc / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        (d / "ns/net").symlink_to(netns)
        (d / "net").mkdir()
        shutil.copy(CG / "net_dev", d / "net/dev")
        return pid

    def pod(
        self,
        ns: str,
        pod: str,
        uid: str,
        containers: dict[str, str],
        qos: str = "burstable",
        netns: str = POD_NS,
        logs: bool = True,
    ) -> dict[str, Path]:
        """A pod with a pause sandbox and `containers` (name -> 64-hex id); their cgroup dirs."""
        u = uid.replace("-", "_")
        qos_dir = (
            f"kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice" if qos else f"kubepods-pod{u}.slice"
        )
        pod_dir = self.cgroup / "kubepods.slice" / qos_dir
        sandbox = self.container_dir(pod_dir, uid[:8] * 8, "pause", netns)
        (sandbox / "cpu.stat").write_text("usage_usec 19585\n")
        dirs = {}
        for name, cid in containers.items():
            dirs[name] = self.container_dir(pod_dir, cid, "python", netns)
            if logs:
                d = self.root / "var/log/pods" / f"{ns}_{pod}_{uid}" / name
                d.mkdir(parents=True)
                (self.root / "var/log/containers" / f"{pod}_{ns}_{name}-{cid}.log").symlink_to(
                    f"/var/log/pods/{ns}_{pod}_{uid}/{name}/0.log"
                )
        return dirs

    def container_dir(self, pod_dir: Path, cid: str, comm: str, netns: str) -> Path:
        d = pod_dir / f"cri-containerd-{cid}.scope"
        d.mkdir(parents=True)
        for f in ("cpu.stat", "memory.current", "memory.stat", "memory.max", "io.stat"):
            shutil.copy(CG / f, d / f)
        (d / "cpu.max").write_text("200000 100000\n")
        self._pid += 1
        (d / "cgroup.procs").write_text(f"{self.process(self._pid, comm, netns)}\n")
        return d

    def collector(self, clock: Clock | None = None) -> ContainerCollector:
        names = PodNames(
            self.root / "var/log/pods", self.root / "var/log/containers", training_job_of
        )
        return ContainerCollector(
            ContainerSettings(), self.cgroup, self.proc, names, clock or Clock()
        )


BERT_UID = "7f3b2c1a-9d4e-4b8f-a2c6-1e5d9f0b3a47"
LLAMA_UID = "0b9e6d2f-3c71-4a58-b4e2-9f6a1d7c8e05"
CID = {k: (k * 8 + "0123456789abcdef" * 4)[:64] for k in "abcdef"}
BERT = {"namespace": "team-a", "pod": "bert-large-worker-0", "container": "pytorch"}
LLAMA = {"namespace": "team-b", "pod": "llama-master-0", "container": "ascend"}


@pytest.fixture
def node(tmp_path: Path) -> Node:
    n = Node(tmp_path)
    n.pod("team-a", "bert-large-worker-0", BERT_UID, {"pytorch": CID["a"]})
    llama = n.pod("team-b", "llama-master-0", LLAMA_UID, {"ascend": CID["c"]}, qos="")
    (llama["ascend"] / "memory.max").write_text("8589934592\n")
    (llama["ascend"] / "cpu.max").write_text("max 100000\n")
    return n


def test_one_collection_reads_every_file(node: Node) -> None:
    ok, s, _ = run_collector(node.collector(), ("modelarts",))
    assert ok
    bert = {**BERT, "training_job": "bert-large"}
    assert value(s, "poolwatch_container_cpu_seconds_total", **bert) == pytest.approx(5.566384)
    assert value(s, "poolwatch_container_cpu_limit_cores", **bert) == 2.0
    assert value(s, "ma_container_cpu_limit_core", **bert) == 2.0
    assert value(s, "poolwatch_container_memory_used_bytes", **bert) == WORKING_SET
    assert value(s, "ma_container_memory_used_megabytes", **bert) == pytest.approx(
        WORKING_SET / MIB
    )
    assert value(s, "poolwatch_container_disk_read_bytes_total", **bert) == DISK_READ
    assert value(s, "poolwatch_container_disk_written_bytes_total", **bert) == 253952
    # no limit: no limit series and no ratio, rather than a made-up one
    assert not [
        k
        for k in s
        if k[0] == "poolwatch_container_memory_limit_bytes" and ("pod", BERT["pod"]) in k[1]
    ]
    llama = {**LLAMA, "training_job": "llama"}
    assert value(s, "poolwatch_container_memory_limit_bytes", **llama) == 8 << 30
    assert value(s, "ma_container_memory_capacity_megabytes", **llama) == 8192
    assert value(s, "poolwatch_container_memory_used_ratio", **llama) == pytest.approx(
        WORKING_SET / (8 << 30)
    )
    assert value(s, "ma_container_memory_util", **llama) == pytest.approx(
        100 * WORKING_SET / (8 << 30)
    )
    assert not [
        k
        for k in s
        if k[0] == "poolwatch_container_cpu_limit_cores" and ("pod", LLAMA["pod"]) in k[1]
    ]
    # the first collection has no interval: no used cores yet
    assert "poolwatch_container_cpu_used_cores" not in names(s)
    # network: once per pod, container "", summed over eth0 and the ifb*s, lo (6131) left out
    net = {"namespace": "team-a", "pod": "bert-large-worker-0", "container": ""}
    assert value(s, "poolwatch_container_network_receive_bytes_total", **net) == 625
    assert value(s, "poolwatch_container_network_transmit_packets_total", **net) == 18
    per_pod = [ls for n, ls in s if n == "poolwatch_container_network_receive_bytes_total"]
    assert len(per_pod) == 2  # one series per pod, no per-interface split
    # the pause sandboxes are not containers
    containers = {
        dict(ls)["container"] for n, ls in s if n == "poolwatch_container_cpu_seconds_total"
    }
    assert containers == {"pytorch", "ascend"}


def test_rates_and_used_cores_between_two_collections(node: Node) -> None:
    clock = Clock()
    c = node.collector(clock)
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    runner = Runner([c], store, ("modelarts",))
    assert runner.run_once(c)
    first = parse(store.body())
    assert "ma_container_disk_read_kilobytes" not in names(first)  # no interval yet
    bert = next(
        iter(node.cgroup.glob(f"kubepods.slice/*/*{BERT_UID.replace('-', '_')}*/*{CID['a']}*"))
    )
    (bert / "cpu.stat").write_text(
        f"usage_usec {5566384 + 15_000_000}\nuser_usec 1\nsystem_usec 1\n"
    )
    read, written = DISK_READ + 1024 * 1000, 253952 + 2048 * 1000
    (bert / "io.stat").write_text(f"254:0 rbytes={read} wbytes={written} rios=9 wios=9\n253:0 \n")
    clock.now += 10.0
    assert runner.run_once(c)
    s = parse(store.body())
    labels = {**BERT, "training_job": "bert-large"}
    assert value(s, "poolwatch_container_cpu_used_cores", **labels) == pytest.approx(1.5)
    assert value(s, "ma_container_cpu_used_core", **labels) == pytest.approx(1.5)
    assert value(s, "poolwatch_container_cpu_used_ratio", **labels) == pytest.approx(0.75)
    assert value(s, "ma_container_cpu_util", **labels) == pytest.approx(75.0)
    read = value(s, "ma_container_disk_read_kilobytes", **labels)
    write = value(s, "ma_container_disk_write_kilobytes", **labels)
    assert read > 0
    assert write == pytest.approx(2 * read)  # same interval, twice the bytes
    llama = {**LLAMA, "training_job": "llama"}
    assert value(s, "poolwatch_container_cpu_used_cores", **llama) == 0.0
    assert "poolwatch_container_cpu_used_ratio" not in {
        n for n, ls in s if ("pod", LLAMA["pod"]) in ls
    }
    # the network counters did not move: the rate aliases are there, and zero
    net = {"pod": BERT["pod"], "container": ""}
    for seed in (
        "ma_container_network_receive_bytes", "ma_container_network_transmit_bytes",
        "ma_container_network_receive_packets", "ma_container_network_transmit_packets",
        "ma_container_network_receive_error_packets", "ma_container_network_transmit_error_packets",
    ):  # fmt: skip
        assert value(s, seed, **net) == 0.0


def test_a_garbled_file_drops_that_container_and_names_the_file(node: Node) -> None:
    bert = next(iter(node.cgroup.glob(f"kubepods.slice/*/*/*{CID['a']}*")))
    (bert / "memory.current").write_text("4964352 bytes\n")
    ok, s, store = run_collector(node.collector())
    assert not ok
    error = store.states()[0].last_error
    assert "memory.current" in error
    assert str(bert) in error
    pods = {dict(ls)["pod"] for n, ls in s if n == "poolwatch_container_cpu_seconds_total"}
    assert pods == {"llama-master-0"}  # bert skipped whole, not half-reported; llama still there


def test_a_missing_required_file_is_named_and_optional_ones_are_not_errors(node: Node) -> None:
    bert = next(iter(node.cgroup.glob(f"kubepods.slice/*/*/*{CID['a']}*")))
    llama = next(iter(node.cgroup.glob(f"kubepods.slice/*/*{CID['c']}*")))
    (bert / "cpu.stat").unlink()
    (llama / "io.stat").unlink()  # io controller not enabled: no disk series, no error
    ok, s, store = run_collector(node.collector())
    assert not ok
    assert "cpu.stat: missing" in store.states()[0].last_error
    assert "io.stat" not in store.states()[0].last_error
    assert value(s, "poolwatch_container_memory_used_bytes", pod="llama-master-0") == WORKING_SET
    assert not [
        n
        for n, ls in s
        if n.startswith("poolwatch_container_disk") and ("pod", "llama-master-0") in ls
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ((CG / "io.stat").read_text(), (DISK_READ, 253952)),  # device lines without counters
        ("", (0, 0)),
        (
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=5\n",
            (15, 25),
        ),
    ],
)
def test_io_stat(text: str, expected: tuple[int, int]) -> None:
    assert parse_io_stat(text) == expected


def test_unresolvable_containers_keep_their_uid_and_id(tmp_path: Path) -> None:
    n = Node(tmp_path)
    n.pod("ml", "ghost-0", LLAMA_UID, {"main": CID["e"]}, logs=False)
    ok, s, _ = run_collector(n.collector())
    assert ok
    labels = {"namespace": "", "pod": LLAMA_UID, "container": CID["e"][:12], "training_job": ""}
    assert value(s, "poolwatch_container_memory_used_bytes", **labels) == WORKING_SET


def test_host_network_pods_report_no_network(tmp_path: Path) -> None:
    n = Node(tmp_path)
    n.pod("kube-system", "kube-proxy-x7k2p", BERT_UID, {"kube-proxy": CID["b"]}, netns=HOST_NS)
    ok, s, _ = run_collector(n.collector())
    assert ok
    assert value(s, "poolwatch_container_cpu_seconds_total", container="kube-proxy") > 0
    assert not [k for k in names(s) if k.startswith("poolwatch_container_network")]


def test_no_cgroup_v2_means_nothing_to_report(tmp_path: Path, caplog) -> None:
    c = ContainerCollector(ContainerSettings(), tmp_path, tmp_path, PodNames(tmp_path, tmp_path))
    with caplog.at_level("INFO"):
        ok, s, _ = run_collector(c)
        run_collector(c)
    assert ok
    assert not [k for k in names(s) if k.startswith("poolwatch_container_")]
    assert sum("no cgroup v2" in r.getMessage() for r in caplog.records) == 1  # said once


def test_label_names_leave_target_and_identity_labels_to_prometheus() -> None:
    for collector in ("container", "pod_resources"):
        for spec in catalog.families_of(collector):
            assert not {"job", "node", "pool", "instance", "cluster"} & set(spec.labels), spec.name
            assert spec.help.endswith(").")


def test_the_factory_reads_the_hosts_cgroups_under_the_sysfs_root() -> None:
    settings = NodeExporterSettings.model_validate(
        {"roots": {"sysfs": "/host/sys", "rootfs": "/host"}}
    )
    c = collector_module._factory(settings)
    assert c.cgroupfs == Path("/host/sys/fs/cgroup")
    assert c.names.pods_dir == Path("/host/var/log/pods")
    explicit = NodeExporterSettings.model_validate(
        {"collectors": {"container": {"cgroupfs": "/cg"}}}
    )
    assert collector_module._factory(explicit).cgroupfs == Path("/cg")


@pytest.mark.integration
def test_200_containers_pass_promtool(tmp_path: Path, prom: Prometheus) -> None:
    n = Node(tmp_path)
    for i in range(100):
        uid = f"{i:08x}-9d4e-4b8f-a2c6-1e5d9f0b3a47"
        n.pod(
            f"team-{i % 7}",
            f"job{i}-worker-{i % 4}",
            uid,
            {"main": f"a{i:063x}", "sidecar": f"b{i:063x}"},
        )
    clock = Clock()
    c = n.collector(clock)
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    runner = Runner([c], store, ("modelarts",))
    assert runner.run_once(c)
    clock.now += 15
    assert runner.run_once(c)
    body = store.body()
    series = parse(body)
    assert (
        len(
            {
                dict(ls)["container"]
                for n_, ls in series
                if n_ == "poolwatch_container_cpu_used_cores"
            }
        )
        == 2
    )
    assert len([1 for n_, _ in series if n_ == "poolwatch_container_cpu_used_cores"]) == 200
    assert not_about_seed_names(promtool_findings(body, prom.promtool)) == set()


def test_container_series_name_jobs_as_the_allocations_do() -> None:
    """The container collector asks the same pod-label source as pod_resources, so a job
    label gives both the same training_job."""
    from poolwatch.exporters.node.attribution.pod_labels import TrainingJobs, shared_pod_labels

    c = collector_module._factory(NodeExporterSettings())
    assert isinstance(c.names.jobs, TrainingJobs)
    assert c.names.jobs.labels is shared_pod_labels()
    assert c.names.jobs.keys[0] == "training.kubeflow.org/job-name"
    assert c.names.jobs("ns", "bert-large-worker-0") == "bert-large"  # no API here: the name


def _pod(ns: str, name: str, container: str, requests: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {"namespace": ns, "name": name, "labels": {}},
        "spec": {"containers": [{"name": container, "resources": {"requests": requests}}]},
    }


def test_a_container_without_a_limit_is_measured_against_its_request(node: Node) -> None:
    """The ModelArts container CPU and memory alarms divide by what the container applied for:
    a request-only training pod gets its ratios over the pod spec's requests (read from the same
    PodList the node exporter lists for training-job labels), labelled basis="request"; a limit,
    where there is one, stays the denominator (basis="limit")."""
    body = json.dumps({
        "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
        "items": [
            _pod("team-a", "bert-large-worker-0", "pytorch", {"cpu": "4", "memory": "4Gi"}),
            _pod("team-b", "llama-master-0", "ascend", {"cpu": "500m", "memory": "1Gi"}),
        ],
    }).encode()  # fmt: skip
    _, requests, rv = parse_pod_list_requests(body)
    assert rv == "7"
    assert requests[("team-b", "llama-master-0", "ascend")] == (0.5, 1 << 30)
    clock = Clock()
    c = node.collector(clock)
    c.requests = lambda ns, pod, ctr: requests.get((ns, pod, ctr), (None, None))
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    runner = Runner([c], store, ("modelarts",))
    assert runner.run_once(c)
    llama_dir = next(iter(node.cgroup.rglob(f"*{CID['c']}*.scope")))
    llama_cpu = llama_dir / "cpu.stat"
    usec = keyed_value(llama_cpu.read_text(), "usage_usec") or 0
    llama_cpu.write_text(f"usage_usec {usec + 4_000_000}\n")  # 0.4 cores over 10 s
    clock.now += 10.0
    assert runner.run_once(c)
    s = parse(store.body())
    bert = {**BERT, "training_job": "bert-large"}
    llama = {**LLAMA, "training_job": "llama"}
    # bert: CPU limit 2 cores (limit wins over the 4-core request), memory without a limit
    assert value(s, "poolwatch_container_memory_used_ratio", **bert, basis="request") == (
        pytest.approx(WORKING_SET / (4 << 30))
    )
    assert value(s, "ma_container_memory_util", **bert, basis="request") == pytest.approx(
        100 * WORKING_SET / (4 << 30)
    )
    assert value(s, "poolwatch_container_cpu_used_ratio", **bert, basis="limit") == 0.0
    # llama: memory limit 8Gi, CPU without a limit: 0.4 cores over the 0.5-core request
    assert value(s, "poolwatch_container_memory_used_ratio", **llama, basis="limit") == (
        pytest.approx(WORKING_SET / (8 << 30))
    )
    assert value(s, "poolwatch_container_cpu_used_ratio", **llama, basis="request") == (
        pytest.approx(0.8)
    )
    assert value(s, "ma_container_cpu_util", **llama, basis="request") == pytest.approx(80.0)


def test_requests_of_a_pod_list_skip_what_is_not_a_request() -> None:
    body = json.dumps({
        "kind": "PodList", "items": [
            _pod("ns", "a", "main", {"cpu": "lots", "memory": "0"}),
            {"metadata": {"namespace": "ns", "name": "b"}, "spec": {"containers": "x"}},
            {"metadata": {"namespace": "ns", "name": "c"},
             "spec": {"containers": [{"name": "main"}]}},
        ],
    }).encode()  # fmt: skip
    labels, requests, _ = parse_pod_list_requests(body)
    assert set(labels) == {("ns", "a"), ("ns", "b"), ("ns", "c")}
    assert requests == {("ns", "a", "main"): (None, None), ("ns", "c", "main"): (None, None)}


def test_process_io_counts_what_the_processes_read_and_write_whatever_the_source(
    node: Node,
) -> None:
    """/proc/<pid>/io rchar and wchar summed over a container's processes: reads over NFS or from
    the page cache, which io.stat (block devices) never sees, are counted; a process whose file
    is missing (exited) or garbled is left out, and a container with none has no series."""
    bert = next(iter(node.cgroup.rglob(f"*{CID['a']}*.scope")))
    pid = int((bert / "cgroup.procs").read_text().split()[0])
    second = node.process(900, "python", "net:[4026532999]")
    (bert / "cgroup.procs").write_text(f"{pid}\n{second}\n901\n")
    io = "rchar: {}\nwchar: {}\nsyscr: 10\nsyscw: 5\nread_bytes: 0\nwrite_bytes: 0\n"
    (node.proc / str(pid) / "io").write_text(io.format(5_000_000, 1_000))
    (node.proc / str(second) / "io").write_text(io.format(250, 24))
    ok, s, _ = run_collector(node.collector(), ())
    assert ok
    bert_labels = {**BERT, "training_job": "bert-large"}
    name = "poolwatch_container_process_io_bytes_total"
    assert value(s, name, **bert_labels, direction="read") == 5_000_250
    assert value(s, name, **bert_labels, direction="write") == 1_024
    # the llama container's process has no io file: no series rather than a zero
    assert not [k for k in s if k[0] == name and ("pod", LLAMA["pod"]) in k[1]]
    (node.proc / str(second) / "io").write_text("rchar: lots\n")
    ok, s, _ = run_collector(node.collector(), ())
    assert value(s, name, **bert_labels, direction="read") == 5_000_000
