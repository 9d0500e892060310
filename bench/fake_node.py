"""A busy accelerator node made of fakes fed with captured values, for bench/node_scrape.py.

- 8 GPUs: the fake pynvml of tests/helpers/nvml_fake.py, each GPU the H100-under-load capture
  with its own UUID (NVML calls are in-process Python, as pynvml's ctypes calls are);
- 16 NPUs: an `npu-smi` stand-in shell script that prints the captured Atlas A3 overview (8 NPUs
  x 2 chips) and the captured 910B per-chip views: every npu-smi call is a process, as on a node;
- 200 containers: a cgroup v2 tree, a procfs and the kubelet's log directories built from the
  cgroup capture (tests/exporters/test_container.py's Node), 24 of them holding one device
  each, as a real kubelet pod-resources gRPC server on a unix socket lists them; each container
  process has the files hang detection reads (`io`, its own mount namespace, a `mountstats` with
  the runtime's mounts and one NFSv4.1 dataset volume: `process_files`).

`python bench/fake_node.py serve --tree DIR --config FILE` runs the exporter on a node built with
`build` (the caller runs the fake kubelet: `start_kubelet`);
`python bench/fake_node.py cycle --tree DIR --cycles N` prints the CPU of one full accelerator
collection cycle (collect + render; npu-smi children included), averaged over N cycles 15 s
apart on a fake clock (npu-smi's view groups have their own intervals), as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import stat
import sys
import time
from concurrent import futures
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

import grpc  # noqa: E402

from poolwatch.exporters.node.attribution.podresources import api_pb2, api_pb2_grpc  # noqa: E402
from tests.exporters.test_container import Node  # noqa: E402
from tests.exporters.test_npu_smi import VIEWS_910B  # noqa: E402
from tests.helpers.nvml_fake import FakeGpu, FakeNvml, read_query_csv  # noqa: E402

FIX = HERE.parent / "tests" / "fixtures"
GPUS, NPUS, CONTAINERS = 8, 16, 200
A3 = "info_A3_8npu_16chip_processes.txt"


def gpus() -> list[FakeGpu]:
    (row,) = read_query_csv(FIX / "nvidia" / "nvidia-smi_query-gpu_csv_H100_load.csv")
    out = []
    for i in range(GPUS):
        q = dict(row, uuid=f"GPU-bench0000-0000-0000-0000-{i:012d}", **{"pci.bus_id": f"0:{i}"})
        out.append(FakeGpu(q, procs=[(50000 + i, 2566 << 20)]))
    return out


def npu_smi_script(tree: Path) -> Path:
    """A POSIX sh stand-in for npu-smi answering from the captures (one process per call)."""
    views = {k: FIX / "ascend" / v for k, v in VIEWS_910B.items()}
    cases = "\n".join(
        f'  "{k.replace(" (card)", "")}{"" if "(card)" in k else "+c"}") file="{p}" ;;'
        for k, p in views.items()
    )
    script = tree / "npu-smi"
    script.write_text(f"""#!/bin/sh
[ "$*" = info ] && exec cat "{FIX / "ascend" / A3}"
view=$3; npu=$5; chip=${{7:-0}}; key=$view; [ -n "$7" ] && key="$view+c"
case "$key" in
{cases}
  *) echo "This device does not support querying $view."; exit 0 ;;
esac
exec sed -e "s/^\\([[:space:]]*NPU ID[[:space:]]*:[[:space:]]*\\)[0-9]*/\\1$npu/" \\
         -e "s/^\\([[:space:]]*Chip ID[[:space:]]*:[[:space:]]*\\)[0-9]*/\\1$chip/" "$file"
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def build(tree: Path) -> list[tuple[str, str, str]]:
    """The cgroup/procfs/log trees; returns (namespace, pod, uid) per pod."""
    node = Node(tree)
    pods = _pods()
    for i, (ns, pod, uid) in enumerate(pods):
        node.pod(ns, pod, uid, {"pytorch": f"c{i:063x}"})
    npu_smi_script(tree)
    process_files(tree / "proc")
    (tree / "root" / "cache" / "job-0").mkdir(parents=True, exist_ok=True)
    return pods


# What a training container's process shows in /proc/<pid>/mountstats: the container runtime's
# mounts, then one NFS volume (the job's dataset) with NFSv4.1's per-op statistics.
CONTAINER_MOUNTS = (
    "overlay / overlay", "proc /proc proc", "tmpfs /dev tmpfs", "devpts /dev/pts devpts",
    "mqueue /dev/mqueue mqueue", "sysfs /sys sysfs", "cgroup /sys/fs/cgroup cgroup2",
    "/dev/nvme0n1p1 /etc/hosts ext4", "/dev/nvme0n1p1 /dev/termination-log ext4",
    "/dev/nvme0n1p1 /etc/hostname ext4", "/dev/nvme0n1p1 /etc/resolv.conf ext4",
    "shm /dev/shm tmpfs", "tmpfs /run/secrets/kubernetes.io/serviceaccount tmpfs",
)  # fmt: skip
NFS4_OPS = (
    "NULL", "READ", "WRITE", "COMMIT", "OPEN", "OPEN_CONFIRM", "OPEN_NOATTR", "OPEN_DOWNGRADE",
    "CLOSE", "SETATTR", "FSINFO", "RENEW", "SETCLIENTID", "SETCLIENTID_CONFIRM", "LOCK", "LOCKT",
    "LOCKU", "ACCESS", "GETATTR", "LOOKUP", "LOOKUP_ROOT", "REMOVE", "RENAME", "LINK", "SYMLINK",
    "CREATE", "PATHCONF", "STATFS", "READLINK", "READDIR", "SERVER_CAPS", "DELEGRETURN", "GETACL",
    "SETACL", "FS_LOCATIONS", "RELEASE_LOCKOWNER", "SECINFO", "FSID_PRESENT", "EXCHANGE_ID",
    "CREATE_SESSION", "DESTROY_SESSION", "SEQUENCE", "GET_LEASE_TIME", "RECLAIM_COMPLETE",
    "LAYOUTGET", "GETDEVICEINFO", "LAYOUTCOMMIT", "LAYOUTRETURN", "SECINFO_NO_NAME",
    "TEST_STATEID", "FREE_STATEID", "GETDEVICELIST", "BIND_CONN_TO_SESSION", "DESTROY_CLIENTID",
    "SEEK", "ALLOCATE", "DEALLOCATE", "LAYOUTSTATS", "CLONE", "COPY",
)  # fmt: skip


def process_files(proc: Path) -> int:
    """What the container collector reads per container process for hang detection: `io`, the
    mount namespace link and `mountstats`, for every container process (not the sandboxes) of
    the tree `build` made. The host's pid 1 gets its own mount namespace. Returns how many."""
    (proc / "1" / "ns" / "mnt").symlink_to("mnt:[4026531841]")
    done = 0
    for d in sorted(proc.iterdir(), key=lambda p: p.name):
        if not d.name.isdigit() or (d / "comm").read_text().strip() != "python":
            continue
        pid = int(d.name)
        (d / "io").write_text(
            f"rchar: {pid * 7_919_000}\nwchar: {pid * 104_000}\nsyscr: {pid * 31}\n"
            f"syscw: {pid * 5}\nread_bytes: {pid * 4096}\nwrite_bytes: 0\n"
            "cancelled_write_bytes: 0\n"
        )
        (d / "ns" / "mnt").symlink_to(f"mnt:[40265{pid:05d}]")
        lines = [f"device {m.split()[0]} mounted on {m.split()[1]} with fstype {m.split()[2]}"
                 for m in CONTAINER_MOUNTS]  # fmt: skip
        lines += [
            "device 10.0.0.9:/export/datasets mounted on /data with fstype nfs4 statvers=1.1",
            "\topts:\tro,vers=4.1,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,"
            "timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.21,local_lock=none",
            f"\tage:\t{pid * 13}",
            "\tcaps:\tcaps=0x3ffbffff,wtmult=512,dtsize=1048576,bsize=0,namlen=255",
            "\tnfsv4:\tbm0=0xfdffbfff,bm1=0x40fdbe3e,bm2=0x60803,acl=0x3,sessions,pnfs=not "
            "configured,lease_time=90,lease_expired=0",
            "\tsec:\tflavor=1,pseudoflavor=1",
            "\tevents:\t52 226 0 0 1 13 398 0 0 331 0 47 0 0 77 0 0 77 0 0 0 0 0 0 0 0 0",
            f"\tbytes:\t{pid * 1_207_640} 0 0 0 {pid * 1_210_214} 0 {pid * 295} 0",
            "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)",
            "\txprt:\ttcp 832 0 1 0 11 6428 6428 0 12154 0 24 26 5726",
            "\tper-op statistics",
        ]
        for k, op in enumerate(NFS4_OPS):
            n = (pid * (k + 3)) % 9_999_991
            lines.append(f"\t{op:>12}: {n} {n} 0 {n * 160} {n * 9000} {n // 10} {n * 6} {n * 7} 0")
        (d / "mountstats").write_text("\n".join(lines) + "\n\n")
        done += 1
    return done


class Kubelet(api_pb2_grpc.PodResourcesListerServicer):
    """Lists one device for each of the first 24 pods: 8 GPUs, then 16 NPU chips."""

    def __init__(self, pods: list[tuple[str, str, str]]) -> None:
        devices = [("nvidia.com/gpu", f"GPU-bench0000-0000-0000-0000-{i:012d}") for i in range(8)]
        devices += [("huawei.com/Ascend910", f"Ascend910-{i}") for i in range(NPUS)]
        self.response = api_pb2.ListPodResourcesResponse(pod_resources=[
            api_pb2.PodResources(name=pod, namespace=ns, containers=[api_pb2.ContainerResources(
                name="pytorch",
                devices=[api_pb2.ContainerDevices(resource_name=res, device_ids=[dev])]
                if k < len(devices) else [],
            )])
            for k, ((ns, pod, _uid), (res, dev)) in enumerate(
                zip(pods, devices + [("", "")] * len(pods), strict=False)
            )
        ])  # fmt: skip

    def List(self, request, context):
        return self.response


def start_kubelet(tree: Path, pods: list[tuple[str, str, str]]) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_PodResourcesListerServicer_to_server(Kubelet(pods), server)
    server.add_insecure_port(f"unix://{tree / 'kubelet.sock'}")
    server.start()
    return server


def overrides(tree: Path) -> dict:
    """Config keys that point the exporter at the fake node (merged into the bench config)."""
    return {
        "gpu": "on", "npu": "on", "npu_smi": str(tree / "npu-smi"), "cache_dir": "/cache",
        "roots": {"rootfs": str(tree / "root")},
        "collectors": {"pod_resources": {"socket": str(tree / "kubelet.sock")},
                       "container": {"cgroupfs": str(tree / "cgroup")}},
    }  # fmt: skip


def _fake_nvml() -> None:
    sys.modules["pynvml"] = FakeNvml(gpus())  # type: ignore[assignment]


def serve(tree: Path, config: Path) -> None:
    _fake_nvml()
    from poolwatch.core.config import load
    from poolwatch.exporters.node import app
    from poolwatch.exporters.node.settings import NodeExporterSettings

    # the tree and the fake kubelet come from the caller (`build`, `start_kubelet`)
    app.run(load(NodeExporterSettings, config, {}))


def _pods() -> list[tuple[str, str, str]]:
    return [(f"team-{i % 5}", f"train-{i // 8}-worker-{i % 8}", f"{i:08x}-0000-4000-8000-{i:012x}")
            for i in range(CONTAINERS)]  # fmt: skip


def in_process_npu_smi(tree: Path) -> None:
    """Answer npu-smi calls in-process from the same captures (no process per call)."""
    from poolwatch.exporters.node.accelerators import npu_smi
    from tests.exporters.test_npu_smi import FakeNpuSmi, fixture

    fake = FakeNpuSmi(fixture(A3), VIEWS_910B)
    answers: dict[tuple[str, ...], str] = {}

    def run(argv: list[str], timeout: float) -> str:
        # each distinct call is answered once from the captures, then from memory: what is
        # measured is poolwatch's parsing, not the fake re-reading fixture files
        key = tuple(argv)
        if key not in answers:
            answers[key] = fake(argv, timeout)
        return answers[key]

    npu_smi.run_npu_smi = run  # type: ignore[assignment]


def cycle(tree: Path, cycles: int, spawn: bool) -> dict:
    """CPU of one accelerator collection cycle, after a warm-up, with attribution in place.

    `spawn` False answers npu-smi in-process (the cost of poolwatch's own work: NVML calls,
    parsing, attribution, rendering); True runs the stand-in script per call, as on a node."""
    _fake_nvml()
    if not spawn:
        in_process_npu_smi(tree)
    from poolwatch.exporters.node.app import build as build_exporter
    from poolwatch.exporters.node.settings import NodeExporterSettings

    pods = build(tree)
    server = start_kubelet(tree, pods)
    try:
        settings = NodeExporterSettings.model_validate(overrides(tree) | {"compat": ["modelarts"]})
        runner, store = build_exporter(settings)
        by_name = {c.name: c for c in runner.collectors}
        runner.run_once(by_name["pod_resources"])  # the device -> pod mapping
        acc = by_name["accelerator"]
        # npu-smi's and hccn_tool's groups run on their own intervals: a fake clock moves 15 s
        # per cycle, so the cycles read what 15 s cycles read on a node, on average
        now = [0.0]
        for backend, _ in acc.backends:  # type: ignore[attr-defined]
            if hasattr(backend, "clock"):
                backend.clock = lambda: now[0]
        assert runner.run_once(acc), store.states()  # noqa: S101 - a bench precondition
        own0, kids0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        calls = 0
        for _ in range(cycles):
            now[0] += 15.0
            runner.run_once(acc)
            calls += sum(getattr(b, "calls", 0) for b, _ in acc.backends)  # type: ignore[attr-defined]
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (time.process_time() - own0) / cycles
        child = (kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime) / cycles
        series = sum(1 for ln in store.body().splitlines() if not ln.startswith(b"#"))
        return {
            "npu_smi": "a process per call" if spawn else "in-process", "cycles": cycles,
            "gpus": GPUS, "npus": NPUS, "containers": CONTAINERS,
            "cpu_ms_exporter": round(own * 1000, 2),
            "cpu_ms_npu_smi_children": round(child * 1000, 2),
            "wall_ms": round((time.perf_counter() - t0) / cycles * 1000, 2),
            "series_total": series, "tool_processes_per_cycle": round(calls / cycles, 2),
        }  # fmt: skip
    finally:
        server.stop(0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["serve", "cycle", "build"])
    ap.add_argument("--tree", type=Path, required=True)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--spawn", action="store_true", help="run npu-smi as a process per call")
    args = ap.parse_args()
    args.tree.mkdir(parents=True, exist_ok=True)
    if args.mode == "build":
        build(args.tree)
    elif args.mode == "serve":
        serve(args.tree, args.config)
    else:
        sys.stdout.write(json.dumps(cycle(args.tree, args.cycles, args.spawn)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
