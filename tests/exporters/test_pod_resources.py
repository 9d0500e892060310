"""Pod attribution of accelerators: a real gRPC kubelet on a unix socket, and the cgroup fallback.

The fake kubelet serves `PodResourcesLister.List` from the generated stubs, fed with the device-id
shapes of NVIDIA dcgm-exporter's mock kubelet (tests/fixtures/kubelet/, see its .source.txt).
"""

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from poolwatch.exporters.node.attribution.cgroup import (
    PodIndex,
    parse_cgroup_path,
    parse_proc_cgroup,
)
from poolwatch.exporters.node.attribution.owners import DeviceOwners, Owner
from poolwatch.exporters.node.attribution.pod_resources import shared_owners, training_job_of
from poolwatch.exporters.node.attribution.podresources import api_pb2, api_pb2_grpc
from poolwatch.exporters.node.collectors import pod_resources as collector_module
from poolwatch.exporters.node.collectors.pod_resources import PodResourcesCollector
from poolwatch.exporters.node.settings import NodeExporterSettings, PodResourcesSettings
from tests.helpers import FIXTURES, run_collector, value

CAPTURE = json.loads(
    (FIXTURES / "kubelet/dcgm-exporter_test_ListPodResourcesResponse_DERIVED.json").read_text()
)
UUID = "b8ea3855-276c-c9cb-b366-c6fa655957c5"  # the capture's GPU, listed without `GPU-`
UUID2 = "5f3c9e21-8a4b-4d7e-9c1f-2b6a8d0e4f13"
UUID3 = "c0ffee00-1234-4abc-8def-0123456789ab"
BERT_UID = "7f3b2c1a-9d4e-4b8f-a2c6-1e5d9f0b3a47"
LLAMA_UID = "0b9e6d2f-3c71-4a58-b4e2-9f6a1d7c8e05"
STATIC_UID = "3f2a9c0d8e7b6a5f4e3d2c1b0a998877"  # a static pod's uid is its manifest hash
CTR = {name: (name[0] * 8 + "0123456789abcdef" * 4)[:64] for name in "abcdef"}


# --- a fake kubelet -------------------------------------------------------------------------------
def capture_pods() -> list[api_pb2.PodResources]:
    """The capture's examples (one pod each, all named gpu-pod-0: renamed gpu-pod-<k> to keep
    them apart), then one pod per device-id variant the dcgm-exporter tests use."""
    pods = []
    for k, example in enumerate(CAPTURE["examples"]):
        (pod,) = example["podResources"]
        msg = json_format.ParseDict(pod, api_pb2.PodResources())
        msg.name = f"gpu-pod-{k}"
        pods.append(msg)
    for k, device_id in enumerate(
        CAPTURE["device_id_variants_used_in_dcgm_exporter_kubernetes_test_go"]
    ):
        pods.append(pod_msg("default", f"variant-{k}", "default", {"nvidia.com/gpu": [device_id]}))
    return pods


def pod_msg(
    ns: str, name: str, container: str, devices: dict[str, list[str]]
) -> api_pb2.PodResources:
    return api_pb2.PodResources(
        name=name,
        namespace=ns,
        containers=[
            api_pb2.ContainerResources(
                name=container,
                devices=[
                    api_pb2.ContainerDevices(resource_name=r, device_ids=ids)
                    for r, ids in devices.items()
                ],
                cpu_ids=[2, 3],
            )
        ],
    )


def training_pods() -> list[api_pb2.PodResources]:
    return [
        pod_msg(
            "team-a",
            "bert-large-worker-0",
            "pytorch",
            {
                "nvidia.com/gpu": [f"GPU-{UUID2}", f"{UUID3}::1"],
                "example.com/fpga": ["fpga-0"],  # not an accelerator we attribute
            },
        ),
        pod_msg("team-b", "llama-master-0", "ascend", {"huawei.com/Ascend910": ["Ascend910-0"]}),
        pod_msg("team-b", "llama-master-0-sidecar-x", "log", {}),  # no devices
    ]


class FakeKubelet(api_pb2_grpc.PodResourcesListerServicer):
    def __init__(self) -> None:
        self.pods: list[api_pb2.PodResources] = []
        self.delay = 0.0
        self.release = threading.Event()

    def List(self, request, context):
        if self.delay:
            self.release.wait(self.delay)
        return api_pb2.ListPodResourcesResponse(pod_resources=self.pods)


def serve(sock: Path, add: Callable[[grpc.Server], None]) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add(server)
    assert server.add_insecure_port(f"unix://{sock}")
    server.start()
    return server


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[tuple[FakeKubelet, Path]]:
    sock = tmp_path / "kubelet.sock"
    fake = FakeKubelet()
    server = serve(sock, lambda s: api_pb2_grpc.add_PodResourcesListerServicer_to_server(fake, s))
    yield fake, sock
    fake.release.set()
    server.stop(grace=None).wait(5)


# --- a fake node: procfs and the kubelet's log directories ---------------------------------------
def log_dirs(root: Path, pods: list[tuple[str, str, str, dict[str, str]]]) -> None:
    """/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the /var/log/containers links."""
    (root / "var/log/containers").mkdir(parents=True, exist_ok=True)
    for ns, pod, uid, containers in pods:
        for container, cid in containers.items():
            d = root / "var/log/pods" / f"{ns}_{pod}_{uid}" / container
            d.mkdir(parents=True)
            (d / "0.log").write_text("")
            link = root / "var/log/containers" / f"{pod}_{ns}_{container}-{cid}.log"
            link.symlink_to(f"/var/log/pods/{ns}_{pod}_{uid}/{container}/0.log")


def process(procfs: Path, pid: int, cgroup: str, comm: str = "python") -> None:
    d = procfs / str(pid)
    d.mkdir(parents=True)
    (d / "cgroup").write_text(cgroup)
    (d / "comm").write_text(comm + "\n")


def systemd_path(qos: str, uid: str, runtime: str, cid: str) -> str:
    u = uid.replace("-", "_")
    pod = f"kubepods-{qos}-pod{u}.slice" if qos else f"kubepods-pod{u}.slice"
    qos_dir = f"kubepods-{qos}.slice/" if qos else ""
    return f"/kubepods.slice/{qos_dir}{pod}/{runtime}-{cid}.scope"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """Processes of a training node, with realistic /proc/<pid>/cgroup lines."""
    root = tmp_path / "root"
    log_dirs(
        root,
        [
            ("team-a", "bert-large-worker-0", BERT_UID, {"pytorch": CTR["a"]}),
            ("team-b", "llama-master-0", LLAMA_UID, {"ascend": CTR["c"]}),
            ("kube-system", "etcd-node1", STATIC_UID, {"etcd": CTR["e"]}),
        ],
    )
    proc = tmp_path / "proc"
    process(proc, 1, "0::/init.scope\n", "systemd")
    process(proc, 812, "0::/system.slice/containerd.service\n", "containerd")
    # bert: cgroup v2, systemd driver, burstable; its sandbox holds only `pause`
    process(
        proc,
        4101,
        "0::" + systemd_path("burstable", BERT_UID, "cri-containerd", CTR["b"]) + "\n",
        "pause",
    )
    for pid in (4150, 4151):
        process(
            proc,
            pid,
            "0::" + systemd_path("burstable", BERT_UID, "cri-containerd", CTR["a"]) + "\n",
        )
    # llama: cgroup v1 hybrid lines, cgroupfs driver, Guaranteed (directly under /kubepods)
    v1 = f"/kubepods/pod{LLAMA_UID}/{CTR['c']}"
    process(proc, 5200, f"12:memory:{v1}\n11:cpu,cpuacct:{v1}\n1:name=systemd:{v1}\n0::/\n")
    # etcd: static pod, CRI-O, besteffort, plus its conmon which is not the container
    crio = systemd_path("besteffort", STATIC_UID, "crio", CTR["e"])
    process(proc, 6300, f"0::{crio}\n", "etcd")
    conmon = crio.replace("/crio-", "/crio-conmon-")
    process(proc, 6299, f"0::{conmon}\n", "conmon")
    # a container without a log link (docker, cgroupfs driver, a pod uid nobody knows)
    unknown = "11111111-2222-4333-8444-555555555555"
    process(proc, 7000, f"0::/kubepods/besteffort/pod{unknown}/{CTR['f']}\n", "sleep")
    return tmp_path


def make(settings: PodResourcesSettings, base: Path, owners: DeviceOwners) -> PodResourcesCollector:
    index = PodIndex(
        base / "proc",
        base / "root/var/log/pods",
        base / "root/var/log/containers",
        job_of=training_job_of,
    )
    return PodResourcesCollector(settings, index, owners)


BERT = Owner("team-a", "bert-large-worker-0", "pytorch", "bert-large", BERT_UID)
LLAMA = Owner("team-b", "llama-master-0", "ascend", "llama", LLAMA_UID)


# --- the kubelet answers ------------------------------------------------------------------------
def test_allocations_owners_and_pids_from_a_real_grpc_kubelet(
    kubelet: tuple[FakeKubelet, Path], node: Path
) -> None:
    fake, sock = kubelet
    fake.pods = [*capture_pods(), *training_pods()]
    owners = DeviceOwners()
    c = make(PodResourcesSettings(socket=sock), node, owners)
    ok, s, _ = run_collector(c)
    assert ok
    assert owners.mode == "pod-resources"
    assert value(s, "poolwatch_attribution_mode", mode="pod-resources") == 1
    assert value(s, "poolwatch_attribution_mode", mode="cgroup") == 0
    assert value(s, "poolwatch_attribution_mode", mode="none") == 0

    info = "poolwatch_accelerator_allocation_info"
    assert value(s, info, resource="nvidia.com/gpu", device_id=UUID, pod="gpu-pod-0") == 1
    assert value(s, info, device_id=f"MIG-{UUID}", resource="nvidia.com/mig-1g.10gb") == 1
    assert value(s, info, device_id="nvidia0/gi7/vgpu0", resource="nvidia.com/mig-1g.5gb") == 1
    assert value(s, info, device_id=f"{UUID3}::1", namespace="team-a", container="pytorch") == 1
    assert value(s, info, device_id="Ascend910-0", training_job="llama") == 1
    assert not [k for k in s if k[0] == info and dict(k[1])["resource"] == "example.com/fpga"]
    assert len([k for k in s if k[0] == info]) == 3 + 6 + 3  # examples, variants, training pods

    # lookups by the ids a driver reports: GPU- prefixed or not, any case, `::n` replicas
    gpu0 = Owner("default", "gpu-pod-0", "default", "gpu")  # reads as Volcano <job>-<task>-<n>
    assert gpu0 in owners.owners((f"GPU-{UUID}",))
    variant4 = Owner("default", "variant-4", "default", "")  # listed as `<uuid>::`
    assert variant4 in owners.owners((f"GPU-{UUID}",))
    assert owners.owners((UUID2.upper(),)) == (BERT,)
    assert owners.owners((f"GPU-{UUID3}",)) == (BERT,)  # listed as the replica <uuid>::1
    assert owners.owners((f"mig-{UUID}",)) == (
        Owner("default", "gpu-pod-1", "default", "gpu"),
        Owner("default", "variant-1", "default", ""),
    )
    assert owners.owners(("Ascend910-0",)) == (LLAMA,)
    assert owners.owners(("fpga-0",)) == ()
    # the pid map is keyed by the same owners, so the accelerator collector can join the two
    assert owners.pids_of(BERT) == {4150, 4151}  # not the sandbox's pause (4101)
    assert owners.pids_of(LLAMA) == {5200}


def test_resource_patterns_filter_devices(kubelet: tuple[FakeKubelet, Path], node: Path) -> None:
    fake, sock = kubelet
    fake.pods = [*capture_pods(), *training_pods()]
    owners = DeviceOwners()
    settings = PodResourcesSettings(socket=sock, resources=["nvidia.com/mig-*", "huawei.com/*"])
    ok, s, _ = run_collector(make(settings, node, owners))
    assert ok
    resources = {
        dict(ls)["resource"] for n, ls in s if n == "poolwatch_accelerator_allocation_info"
    }
    assert resources == {"nvidia.com/mig-1g.10gb", "nvidia.com/mig-1g.5gb", "huawei.com/Ascend910"}
    assert owners.owners((UUID2,)) == ()


@pytest.mark.parametrize(
    ("pod", "job"),
    [
        ("bert-large-worker-0", "bert-large"),  # Kubeflow PyTorchJob
        ("bert-large-master-0", "bert-large"),
        ("resnet-ps-2", "resnet"),  # TFJob
        ("resnet-chief-0", "resnet"),
        ("resnet-evaluator-0", "resnet"),
        ("allreduce-launcher", "allreduce"),  # MPIJob v1
        ("allreduce-launcher-x7k2p", "allreduce"),  # MPIJob v2: the launcher is a batch Job
        ("allreduce-worker-15", "allreduce"),
        ("llm-sft-mpimaster-0", "llm-sft"),  # Volcano <job>-<task>-<n>
        ("llm-sft-trainer-3", "llm-sft"),
        ("eval-run-0-b9xq4", "eval-run"),  # indexed batch/v1 Job
        ("nightly-eval-b9xq4", "nightly-eval"),  # batch/v1 Job
        ("jupyter-7c5ddbdf54-x7k2p", ""),  # a Deployment's pod: not a job
        ("redis-0", ""),  # a StatefulSet with a one-word name
        ("debug", ""),
    ],
)
def test_training_job_from_pod_name(pod: str, job: str) -> None:
    assert training_job_of(pod) == job


# --- the kubelet misbehaves ---------------------------------------------------------------------
def test_a_kubelet_past_the_deadline_marks_down_quickly_and_clears_the_mapping(
    kubelet: tuple[FakeKubelet, Path], node: Path
) -> None:
    fake, sock = kubelet
    fake.pods = training_pods()
    owners = DeviceOwners()
    c = make(PodResourcesSettings(socket=sock, timeout=1.0), node, owners)
    assert run_collector(c)[0]
    assert owners.owners((UUID2,)) == (BERT,)
    fake.delay = 30.0
    started = time.monotonic()
    ok, s, store = run_collector(c)
    assert time.monotonic() - started < 1.5
    assert not ok
    assert "no answer within 0.8s" in store.states()[0].last_error
    assert owners.mode == "none"
    assert owners.owners((UUID2,)) == ()  # never served stale
    assert value(s, "poolwatch_attribution_mode", mode="none") == 1
    assert not [k for k in s if k[0] == "poolwatch_accelerator_allocation_info"]


def test_a_kubelet_answering_garbage_marks_down(tmp_path: Path, node: Path) -> None:
    def garbage(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b"\x0a\xff\x01not a ListPodResourcesResponse"

    handler = grpc.method_handlers_generic_handler(
        "v1.PodResourcesLister",
        {"List": grpc.unary_unary_rpc_method_handler(garbage)},  # raw bytes both ways
    )
    sock = tmp_path / "k.sock"
    server = serve(sock, lambda s: s.add_generic_rpc_handlers((handler,)))
    try:
        owners = DeviceOwners()
        owners.replace({UUID2: (BERT,)}, mode="pod-resources")  # what an earlier run found
        ok, _, store = run_collector(make(PodResourcesSettings(socket=sock), node, owners))
    finally:
        server.stop(grace=None).wait(5)
    assert not ok
    assert "kubelet List on" in store.states()[0].last_error
    assert "INTERNAL" in store.states()[0].last_error
    assert owners.mode == "none"
    assert owners.owners((UUID2,)) == ()


# --- no kubelet: the cgroup fallback ------------------------------------------------------------
def test_without_the_socket_pids_come_from_cgroups(
    node: Path, caplog: pytest.LogCaptureFixture
) -> None:
    owners = DeviceOwners()
    owners.replace({UUID2: (BERT,)}, mode="pod-resources")
    c = make(PodResourcesSettings(socket=node / "missing.sock"), node, owners)
    with caplog.at_level(logging.INFO, logger=collector_module.__name__):
        ok, s, _ = run_collector(c)
        assert run_collector(c)[0]
    assert ok
    assert value(s, "poolwatch_attribution_mode", mode="cgroup") == 1
    assert owners.mode == "cgroup"
    assert owners.owners((UUID2,)) == ()  # devices cannot be attributed without the kubelet
    modes = [r.getMessage() for r in caplog.records if "attribution mode" in r.getMessage()]
    assert len(modes) == 1  # said once, on the change, not per run
    assert "cgroup" in modes[0]
    assert "missing.sock" in modes[0]

    index = c.index
    assert index.pids_by_owner() == {
        BERT: {4150, 4151},
        LLAMA: {5200},
        Owner("kube-system", "etcd-node1", "etcd", "", STATIC_UID): {6300},
        # no log link and an unknown pod: the uid as pod name, the id prefix as container
        Owner(
            "",
            "11111111-2222-4333-8444-555555555555",
            CTR["f"][:12],
            "",
            "11111111-2222-4333-8444-555555555555",
        ): {7000},
    }
    assert owners.pids_of(BERT) == {4150, 4151}
    assert index.owner_of_pid(5200) == LLAMA
    assert index.owner_of_pid(4101) is None  # the pod sandbox (pause)
    assert index.owner_of_pid(6299) is None  # CRI-O's conmon
    assert index.owner_of_pid(812) is None  # containerd itself
    assert index.owner_of_pid(99999) is None


def test_a_socket_nobody_listens_on_falls_back_too(tmp_path: Path, node: Path) -> None:
    sock = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))  # the file exists, connect() is refused: a stopped kubelet's socket
    try:
        owners = DeviceOwners()
        ok, series, _ = run_collector(make(PodResourcesSettings(socket=sock), node, owners))
    finally:
        s.close()
    assert ok
    assert owners.mode == "cgroup"
    assert value(series, "poolwatch_attribution_mode", mode="cgroup") == 1


def test_the_kubelet_coming_back_is_logged_once(
    kubelet: tuple[FakeKubelet, Path], node: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, sock = kubelet
    fake.pods = training_pods()
    owners = DeviceOwners()
    c = make(PodResourcesSettings(socket=node / "missing.sock"), node, owners)
    with caplog.at_level(logging.INFO, logger=collector_module.__name__):
        run_collector(c)
        c.socket = sock
        run_collector(c)
        run_collector(c)
    modes = [r.getMessage() for r in caplog.records if "attribution mode" in r.getMessage()]
    assert [m.split(" (")[0] for m in modes] == [
        "pod attribution mode cgroup",
        "pod attribution mode pod-resources",
    ]
    assert owners.owners((UUID2,)) == (BERT,)


@pytest.mark.parametrize(
    ("line", "uid", "cid"),
    [
        (
            "0::" + systemd_path("burstable", BERT_UID, "cri-containerd", CTR["a"]),
            BERT_UID,
            CTR["a"],
        ),
        ("0::" + systemd_path("besteffort", BERT_UID, "crio", CTR["a"]), BERT_UID, CTR["a"]),
        ("0::" + systemd_path("", BERT_UID, "docker", CTR["a"]), BERT_UID, CTR["a"]),
        (f"0::/kubepods/burstable/pod{BERT_UID}/{CTR['a']}", BERT_UID, CTR["a"]),
        (f"0::/kubepods/pod{BERT_UID}/{CTR['a']}", BERT_UID, CTR["a"]),
        (f"4:memory:/kubepods/besteffort/pod{BERT_UID}/{CTR['a']}", BERT_UID, CTR["a"]),
        # kind: kubelet in a container with its own slice; a cgroup nested in the container's
        (
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
            f"kubelet-kubepods-besteffort-pod{BERT_UID.replace('-', '_')}.slice/"
            f"cri-containerd-{CTR['a']}.scope/init.scope",
            BERT_UID,
            CTR["a"],
        ),
        (f"0::/kubepods/burstable/pod{BERT_UID}", BERT_UID, ""),  # the pod's own cgroup
    ],
)
def test_cgroup_lines(line: str, uid: str, cid: str) -> None:
    ref = parse_proc_cgroup(line + "\n")
    assert ref is not None
    assert (ref.pod_uid, ref.container_id) == (uid, cid)


@pytest.mark.parametrize(
    "path",
    [
        "/system.slice/containerd.service",
        "/user.slice/user-1000.slice/session-3.scope",
        systemd_path("burstable", BERT_UID, "crio-conmon", CTR["a"]),
        "/kubepods.slice/kubepods-burstable.slice",
        "/",
    ],
)
def test_cgroups_that_are_not_containers(path: str) -> None:
    ref = parse_cgroup_path(path)
    assert ref is None or not ref.container_id


def test_the_factory_shares_one_device_owners_with_the_process() -> None:
    settings = NodeExporterSettings()
    c = collector_module._factory(settings)
    assert c.owners is shared_owners()
    assert c.socket == Path("/var/lib/kubelet/pod-resources/kubelet.sock")
    assert c.index.names.pods_dir == Path("/var/log/pods")


@pytest.mark.parametrize("enabled", [False, True])
def test_grpc_is_loaded_only_for_the_pod_resources_collector(tmp_path: Path, enabled: bool) -> None:
    """gRPC and the kubelet's messages add about 22 MB to the process: a node exporter whose
    pod-resources collector is off (a node without accelerators) never loads them."""
    code = (
        "import sys\n"
        "from poolwatch.exporters.node import app\n"
        "from poolwatch.exporters.node.settings import NodeExporterSettings\n"
        "s = NodeExporterSettings.model_validate({'collectors': {'pod_resources': {"
        f"'enabled': {enabled}, 'socket': '{tmp_path / 'none.sock'}'}}}}}})\n"
        "app.collect_once(s)\n"
        "print('grpc' in sys.modules, 'google.protobuf' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.split() == [str(enabled)] * 2
