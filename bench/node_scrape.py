"""Scrape cost of poolwatch's node exporter next to Debian's node_exporter, on this host, one run.

Why: poolwatch collects in the background and serves pre-rendered bytes, so a scrape should cost
no more than node_exporter's (which collects on every scrape, by design), and background collection
should stay cheap at the 15 s interval. This measures both claims on the same machine in one run.

How: poolwatch reads a synthetic node (8 HCAs x 2 ports of InfiniBand counters in a temp sysfs,
copies of this host's /proc files plus 10 NFS mounts x 15 per-op lines in a temp procfs, a small
cache dir) sized to ~2,000 series; node_exporter runs its default collectors on the real /proc and
/sys. Each exporter is scraped by 10 concurrent scrapers (a new connection per GET) after a
warm-up; poolwatch and node_exporter are scraped in alternating rounds of 100, so load from
elsewhere on a shared machine falls on both alike. The scrapers are goroutines of a small Go
program (bench/scraper, built with the local Go toolchain at the start; standard library only):
Go's HTTP client and gzip reader, as in Prometheus. `--client python` scrapes from threads of
this process instead; they share one interpreter lock, so on a 2-core host a large body's
decompression queues the next scrapes behind it and that client's latencies measure the client
more than the exporter. A second poolwatch, every collector (and
every npu-smi view group) 15x faster, runs unscraped to price a collection cycle.

Each scrape asks as Prometheus 3 does (its request headers, PROMETHEUS_HEADERS: the Accept list
and `Accept-Encoding: gzip`) and, as Prometheus does, decompresses the body before it counts the
scrape done; both exporters get the same requests. `--encoding identity` asks for plain bodies
instead (what a client without gzip gets).

Reading the figures: p50/p99/max are client-side latencies in ms of whole scrapes (body read and
decompressed); `body_bytes` is the exposition's size, `wire_bytes` what crossed the socket;
`cpu_s_per_1k` is the exporter's own CPU (utime+stime) per 1,000 scrapes, `client_cpu_s_per_1k`
the Go scraper's (0 with `--client python`); `rss_peak_mb` is VmHWM.
`pct_core_at_15s` is the CPU of one 1 s cycle (idle overhead included) / 15 s; `idle_pct_core_15s`
is what the 15 s instance really used over one unscraped 15 s cycle (CPU is counted in 10 ms
ticks, so that one reads in steps of 0.067 %; the two agree within a tick or two). Series
counts differ on purpose (node_exporter sees this host, poolwatch a busy node): compare costs per
scrape, not per series. The scrapers share the host's cores with the exporter; on a small host
the latencies include that contention. Exit status 0 when every goal passes, 1 otherwise.

Why one long file: a benchmark is a script that is re-run and read next to its results, and
everything here (the synthetic node, starting both exporters, the alternating scrape rounds,
the goals and the report) serves that one comparison; the fake accelerator node it serves
lives apart in fake_node.py.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_node

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NODE_EXPORTER = "prometheus-node-exporter"
PLAIN = ("host", "filesystem", "cache_dir", "infiniband", "nfs")
ACCEL = ("accelerator", "pod_resources", "container")
COLLECTORS = PLAIN + ACCEL  # --no-accelerators drops ACCEL (see main)
IB_COUNTERS = (
    "port_rcv_data", "port_xmit_data", "port_rcv_packets", "port_xmit_packets", "symbol_error",
    "link_error_recovery", "link_downed", "port_rcv_errors", "local_link_integrity_errors",
    "port_rcv_remote_physical_errors", "port_rcv_switch_relay_errors",
    "port_rcv_constraint_errors", "port_xmit_constraint_errors", "port_xmit_wait",
    "port_xmit_discards", "excessive_buffer_overrun_errors", "VL15_dropped",
)  # fmt: skip
NFS_OPS = (
    "NULL", "READ", "WRITE", "COMMIT", "OPEN", "OPEN_CONFIRM", "OPEN_NOATTR", "OPEN_DOWNGRADE",
    "CLOSE", "SETATTR", "FSINFO", "RENEW", "SETCLIENTID", "SETCLIENTID_CONFIRM", "LOCK", "LOCKT",
    "LOCKU", "ACCESS", "GETATTR", "LOOKUP", "LOOKUP_ROOT", "REMOVE", "RENAME", "LINK", "SYMLINK",
    "CREATE", "PATHCONF", "STATFS", "READLINK", "READDIR",
)  # fmt: skip
# What Prometheus 3.16 sends with every scrape (recorded from the pinned build; a test compares):
# it prefers OpenMetrics and takes gzip. The timeout header is the scrape timeout, here get()'s.
PROMETHEUS_HEADERS = {
    "User-Agent": "Prometheus/3.16.0",
    "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.7,"
    "application/openmetrics-text;version=0.0.1;q=0.6,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
HEADERS = dict(PROMETHEUS_HEADERS)  # main() drops Accept-Encoding for --encoding identity
SCRAPER: Path | None = None  # the Go scraper's binary; main() builds it unless --client python
CLIENT_CPU: dict[int, float] = {}  # port -> the Go scraper's CPU seconds spent on it so far
WIRE: dict[int, int] = {}  # port -> bytes on the wire of its last scrape
TICK = os.sysconf("SC_CLK_TCK")
Proc = subprocess.Popen[bytes]


def log(msg: str) -> None:
    print(f"[node_scrape {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build_node(tmp: Path, hcas: int, ports: int, mounts: int, ops: int) -> None:
    """Synthetic sysfs/procfs trees and a cache dir under `tmp`."""
    rnd = random.Random(7)  # noqa: S311 - reproducible counter values, not secrets
    for h in range(hcas):
        hca = tmp / f"sys/class/infiniband/mlx5_{h}"
        for name, text in (("board_id", "MT_0000000223"), ("fw_ver", "20.39.1002"),
                           ("hca_type", "MT4123")):  # fmt: skip
            (hca / name).parent.mkdir(parents=True, exist_ok=True)
            (hca / name).write_text(text + "\n")
        for p in range(1, ports + 1):
            port = hca / "ports" / str(p)
            (port / "counters").mkdir(parents=True)
            (port / "state").write_text("4: ACTIVE\n")
            (port / "phys_state").write_text("5: LinkUp\n")
            (port / "rate").write_text("100 Gb/sec (4X EDR)\n")
            for c in IB_COUNTERS:
                (port / "counters" / c).write_text(f"{rnd.randrange(10**12)}\n")
    proc = tmp / "proc"
    for name in ("stat", "meminfo", "net/dev", "diskstats", "self/mountinfo", "1/mountinfo"):
        (proc / name).parent.mkdir(parents=True, exist_ok=True)
        src = "/proc/self/mountinfo" if name.endswith("mountinfo") else f"/proc/{name}"
        (proc / name).write_text(Path(src).read_text())
    lines = ["device proc mounted on /proc with fstype proc"]
    for m in range(mounts):
        lines += [
            f"device 10.0.0.{m + 1}:/export/ds{m} mounted on /mnt/nfs/ds{m} with fstype nfs4 "
            "statvers=1.1",
            "\topts:\trw,vers=4.1,rsize=1048576,wsize=1048576,hard,proto=tcp,sec=sys",
            f"\tage:\t{rnd.randrange(10**6)}",
            "\tbytes:\t1207640230 0 0 0 1210214218 0 295483 0",
            "\tRPC iostats version: 1.0  p/v: 100003/4 (nfs)",
            "\txprt:\ttcp 832 0 1 0 11 6428 6428 0 12154 0 24 26 5726",
            "\tper-op statistics",
        ]
        for op in NFS_OPS[:ops]:
            n = rnd.randrange(10**7)
            vals = [n, n, 0, n * 160, n * 9000, n // 10, n * 6, n * 7]
            lines.append(f"\t{op:>12}: " + " ".join(map(str, vals)))
        lines.append("")
    (proc / "self/mountstats").write_text("\n".join(lines) + "\n")
    for d in range(4):
        job = tmp / f"root/cache/job-{d}/ckpt"
        job.mkdir(parents=True)
        for f in range(20):
            (job / f"shard-{f}.bin").write_bytes(b"\0" * 4096)


def write_config(tmp: Path, name: str, port: int, interval: float) -> Path:
    each = {"interval": f"{interval:g}s", "timeout": f"{interval * 0.9 if interval < 5 else 10:g}s"}
    coll: dict[str, dict[str, object]] = {c: dict(each) for c in COLLECTORS}
    coll["cache_dir"]["time_budget"] = f"{interval * 0.5 if interval < 5 else 5:g}s"
    coll["filesystem"]["mount_timeout"] = f"{min(interval * 0.5, 5):g}s"
    cfg = {
        "listen": f"127.0.0.1:{port}", "node": "bench-node", "pool": "bench",
        "cache_dir": "/cache", "compat": ["modelarts"],
        "roots": {"procfs": str(tmp / "proc"), "sysfs": str(tmp / "sys"),
                  "rootfs": str(tmp / "root")},
        "collectors": coll,
    }  # fmt: skip
    if "accelerator" in COLLECTORS:  # the fake GPU/NPU/container node of bench/fake_node.py
        # The 1 s instance prices a 15 s cycle: its npu-smi/hccn_tool groups run 15x faster
        # too, so each of its cycles reads what an average 15 s cycle reads.
        from poolwatch.core.catalog.hccn import HCCN_INTERVALS
        from poolwatch.core.catalog.npu import NPU_SMI_INTERVALS

        speed = interval / 15.0
        coll["accelerator"]["npu_smi_intervals"] = {
            g: f"{v * speed:g}s" for g, v in NPU_SMI_INTERVALS.items()
        }
        coll["accelerator"]["hccn_tool_intervals"] = {
            g: f"{v * speed:g}s" for g, v in HCCN_INTERVALS.items()
        }
        extra = fake_node.overrides(tmp)
        cfg |= {k: v for k, v in extra.items() if k not in ("roots", "collectors", "cache_dir")}
        for collector, more in extra["collectors"].items():
            coll[collector] |= more
    else:
        for collector in ACCEL:
            coll[collector] = {"enabled": False}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = "/metrics", timeout: float = 10.0) -> tuple[int, bytes]:
    """One scrape as Prometheus makes it: its headers, and a gzip body decompressed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=HEADERS)
        resp = conn.getresponse()
        body = resp.read()
        WIRE[port] = len(body)
        if resp.getheader("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return resp.status, body
    finally:
        conn.close()


def series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def pw_collected(body: bytes) -> bool:
    """Every poolwatch collector has finished a run (a run always takes > 0 s)."""
    durs = [ln for ln in body.splitlines() if ln.startswith(b"poolwatch_collector_duration_s")]
    return len(durs) == len(COLLECTORS) and all(float(ln.split()[-1]) > 0 for ln in durs)


def wait_ready(name: str, proc: Proc, port: int, ok: Callable[[bytes], bool], until: float) -> None:
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready")
        try:
            status, body = get(port, timeout=2.0)
            if status == 200 and series(body) and ok(body):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready on 127.0.0.1:{port} before the deadline")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_scraper(tmp: Path) -> Path | None:
    """The Go scraper (bench/scraper, standard library only), built into `tmp`; None without Go."""
    go = shutil.which("go")
    if go is None:
        return None
    out = tmp / "scraper"
    env = os.environ | {"GOTOOLCHAIN": "local", "GOFLAGS": "", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-o", str(out), str(HERE / "scraper" / "main.go")],
                   check=True, env=env, timeout=600, cwd=HERE / "scraper")  # fmt: skip
    return out


def scrape(port: int, total: int, workers: int, until: float) -> tuple[list[float], int]:
    """`total` GETs of /metrics from `workers` scrapers, a new connection each; (ms list, errors).

    With the Go scraper built (SCRAPER), its goroutines make them; else this process's threads."""
    if SCRAPER is not None:
        cmd = [str(SCRAPER), f"-url=http://127.0.0.1:{port}/metrics", f"-n={total}",
               f"-c={workers}", f"-deadline={max(until - time.monotonic(), 0.1):.3f}"]  # fmt: skip
        if "Accept-Encoding" not in HEADERS:
            cmd.append("-identity")
        doc = json.loads(subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout)
        if doc["ms"]:
            WIRE[port] = doc["wire_bytes"]
        CLIENT_CPU[port] = CLIENT_CPU.get(port, 0.0) + doc["cpu_s"]
        return doc["ms"], doc["errors"]
    lat: list[float] = []
    failed: list[float] = []

    def worker(n: int) -> None:
        for _ in range(n):
            if time.monotonic() > until:
                return
            t0 = time.perf_counter()
            try:
                ok = get(port)[0] == 200
            except OSError:
                ok = False
            (lat if ok else failed).append((time.perf_counter() - t0) * 1000)  # atomic append

    shares = [total // workers + (i < total % workers) for i in range(workers)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, len(failed)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


def bench(
    name: str, proc: Proc, port: int, args: argparse.Namespace, total: int | None = None
) -> dict:
    total = total or args.scrapes
    _, body = get(port)
    scrape(port, args.warmup, args.concurrency, time.monotonic() + 15)
    log(
        f"{name}: {series(body)} series, {len(body) / 1024:.0f} KiB "
        f"({WIRE.get(port, 0) / 1024:.0f} KiB on the wire); {total} scrapes"
    )
    cpu0, t0, client0 = cpu_seconds(proc.pid), time.monotonic(), CLIENT_CPU.get(port, 0.0)
    lat, errors = scrape(port, total, args.concurrency, time.monotonic() + 45)
    cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
    client = CLIENT_CPU.get(port, 0.0) - client0
    return {
        "series": series(body), "body_bytes": len(body), "wire_bytes": WIRE.get(port, 0),
        "scrapes": len(lat), "errors": errors,
        "wall_s": round(wall, 2), "p50_ms": round(pct(lat, 50), 2),
        "p99_ms": round(pct(lat, 99), 2), "max_ms": round(max(lat, default=float("nan")), 2),
        "cpu_s_per_1k": round(cpu / max(len(lat), 1) * 1000, 3),
        "client_cpu_s_per_1k": round(client / max(len(lat), 1) * 1000, 3),
        "rss_peak_mb": round(peak_rss_mb(proc.pid), 1),
    }  # fmt: skip


def bench_pair(
    a: tuple[str, Proc, int], b: tuple[str, Proc, int], args: argparse.Namespace, rounds: int = 10
) -> tuple[dict, dict]:
    """`bench` for two exporters at once: `rounds` alternating batches of scrapes each."""
    lat: dict[str, list[float]] = {a[0]: [], b[0]: []}
    errors = dict.fromkeys(lat, 0)
    cpu = dict.fromkeys(lat, 0.0)
    wall = dict.fromkeys(lat, 0.0)
    bodies = {}
    for name, _proc, port in (a, b):
        bodies[name] = get(port)[1]
        scrape(port, args.warmup, args.concurrency, time.monotonic() + 15)
        log(
            f"{name}: {series(bodies[name])} series, {len(bodies[name]) / 1024:.0f} KiB "
            f"({WIRE.get(port, 0) / 1024:.0f} KiB on the wire)"
        )
    log(f"{args.scrapes} scrapes each, in {rounds} alternating rounds")
    client0 = {name: CLIENT_CPU.get(port, 0.0) for name, _proc, port in (a, b)}
    for _ in range(rounds):
        for name, proc, port in (a, b):
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            got, failed = scrape(port, args.scrapes // rounds, args.concurrency, t0 + 45)
            cpu[name] += cpu_seconds(proc.pid) - cpu0
            wall[name] += time.monotonic() - t0
            lat[name] += got
            errors[name] += failed
    out = []
    for name, proc, port in (a, b):
        ms, body = lat[name], bodies[name]
        out.append({
            "series": series(body), "body_bytes": len(body), "wire_bytes": WIRE.get(port, 0),
            "scrapes": len(ms),
            "errors": errors[name], "wall_s": round(wall[name], 2),
            "p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms, default=float("nan")), 2),
            "cpu_s_per_1k": round(cpu[name] / max(len(ms), 1) * 1000, 3),
            "client_cpu_s_per_1k": round(
                (CLIENT_CPU.get(port, 0.0) - client0[name]) / max(len(ms), 1) * 1000, 3),
            "rss_peak_mb": round(peak_rss_mb(proc.pid), 1),
        })  # fmt: skip
    return out[0], out[1]


def start(cmd: list[str], logfile: Path) -> Proc:
    with logfile.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def stop(procs: list[Proc]) -> None:
    """SIGTERM, then SIGKILL whatever is still there after 5 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def poolwatch_cmd(config: Path) -> list[str]:
    if "accelerator" in COLLECTORS:
        fake = str(HERE / "fake_node.py")
        return [
            sys.executable,
            fake,
            "serve",
            "--tree",
            str(config.parent),
            "--config",
            str(config),
        ]
    return [
        sys.executable,
        "-m",
        "poolwatch.app.cli",
        "node-exporter",
        "run",
        "--config",
        str(config),
    ]


def accelerator_cycles(tmp: Path) -> dict[str, dict]:
    """CPU of one accelerator cycle, npu-smi in-process and as a process per call."""
    out = {}
    for mode, flag in (("in_process", []), ("npu_smi_processes", ["--spawn"])):
        log(f"accelerator cycle CPU ({mode})")
        res = subprocess.run(
            [sys.executable, str(HERE / "fake_node.py"), "cycle", "--tree", str(tmp / mode),
             "--cycles", "20", *flag],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        out[mode] = json.loads(res.stdout)
    return out


def collector_health(body: bytes) -> dict[str, dict[str, float]]:
    """collector -> {up, errors, duration_s} from poolwatch's own health series."""
    keys = {"poolwatch_collector_up": "up", "poolwatch_collector_errors_total": "errors",
            "poolwatch_collector_duration_seconds": "duration_s"}  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for ln in body.decode().splitlines():
        name = ln.split("{", 1)[0]
        if name in keys:
            coll = ln.split('collector="', 1)[1].split('"', 1)[0]
            out.setdefault(coll, {})[keys[name]] = round(float(ln.split()[-1]), 4)
    return out


def log_problems(path: Path) -> dict[str, int]:
    """Warning and error lines of an exporter's log, timestamps cut, with their counts."""
    marks = ("WARNING", "ERROR", "Traceback", "level=warn", "level=error")
    seen: Counter[str] = Counter()
    for ln in path.read_text().splitlines():
        if any(m in ln for m in marks):
            ln = re.sub(r"^(ts=\S+|\d{4}-\d\d-\d\d \S+) ", "", ln)
            seen[re.sub(r" duration_seconds=\S+", "", ln)] += 1
    return dict(seen.most_common(10))


def budget_check(body: bytes, variant: str, args: argparse.Namespace) -> dict:
    """The real series count per unit against `poolwatch catalog budget` for this shape.

    The multipliers come from the bench's own inputs; the host's own (network devices, disks,
    filesystems, cache directories) from the distinct label values in the exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    from poolwatch.core import catalog
    from poolwatch.core.catalog import budget

    owner = {a.name: s for s in catalog.ALL_SPECS for a in s.aliases}
    real: Counter[str] = Counter()
    distinct: dict[str, set[str]] = {"net": set(), "disk": set(), "fs": set(), "dir": set()}
    for fam in text_string_to_metric_families(body.decode()):
        for sample in fam.samples:
            name = sample.name
            spec = None
            for candidate in (name, name.removesuffix("_total"), name + "_total"):
                try:
                    spec = catalog.by_name(candidate)
                    break
                except catalog.CatalogError:
                    spec = owner.get(candidate)
                    if spec is not None:
                        break
            if spec is None:
                raise RuntimeError(f"{name}: in the exposition but not in the catalog")
            real[budget.unit_of_sample(spec, sample.labels)] += 1
            if spec.name.startswith("poolwatch_node_network_"):
                distinct["net"].add(sample.labels["device"])
            elif spec.name.startswith("poolwatch_node_disk_"):
                distinct["disk"].add(sample.labels["device"])
            elif spec.collector == "filesystem":
                distinct["fs"].add(sample.labels.get("path", ""))
            elif spec.collector == "cache_dir":
                distinct["dir"].add(sample.labels["directory"])
    accel = variant != "plain"
    shape = budget.Shape(
        gpus=fake_node.GPUS if accel else 0, npu_chips=fake_node.NPUS if accel else 0,
        containers=fake_node.CONTAINERS if accel else 0,
        gpu_holders=8 if accel else 0, npu_holders=fake_node.NPUS if accel else 0,
        ib_ports=args.hcas * args.ports, ib_hcas=args.hcas, npu_ports=0,
        net_devices=len(distinct["net"]), disks=len(distinct["disk"]),
        nfs_mounts=args.nfs_mounts, nfs_ops=args.nfs_ops, filesystems=len(distinct["fs"]),
        cache_dirs=len(distinct["dir"]), nvlinks=0,  # the fake GPUs report no NVLink
        backends=3 if accel else 0, vendors=2 if accel else 0, tools=2 if accel else 0,
    )  # fmt: skip
    collectors = len(COLLECTORS)
    limit = budget.budget(catalog.ALL_SPECS, shape, ["modelarts"], "needed", collectors)
    units = {
        u: {"real": real.get(u, 0), "budget": limit[u]}
        for u in budget.UNITS if real.get(u, 0) or limit[u]
    }  # fmt: skip
    over = [u for u, v in units.items() if v["real"] > v["budget"]]
    return {
        "shape": dict(budget.as_dict(shape)), "units": units, "over_budget": over,
        "real_total": sum(real.values()), "budget_total": limit["total"],
    }  # fmt: skip


def run(
    args: argparse.Namespace, tmp: Path, procs: list[Proc], stops: list[Callable[[], object]]
) -> dict:
    build_node(tmp, args.hcas, args.ports, args.nfs_mounts, args.nfs_ops)
    cycles = accelerator_cycles(tmp) if "accelerator" in COLLECTORS else {}
    if cycles:
        fake_node.build(tmp)
        kubelet = fake_node.start_kubelet(tmp, fake_node._pods())
        stops.append(lambda: kubelet.stop(0))
    p15, p1, pne = free_port(), free_port(), free_port()
    pw = start(poolwatch_cmd(write_config(tmp, "pw15", p15, 15)), tmp / "pw15.log")
    bg = start(poolwatch_cmd(write_config(tmp, "pw1", p1, 1)), tmp / "pw1.log")
    procs += [pw, bg]
    until = time.monotonic() + 30
    wait_ready("poolwatch (15 s)", pw, p15, pw_collected, until)
    wait_ready("poolwatch (1 s)", bg, p1, pw_collected, until)
    # Phase 1, nobody scrapes. The window starts mid-cycle and lasts whole 15 s cycles, so the
    # 15 s instance does exactly one collection per 15 s in it (and, before phase 2, the second
    # collection that brings the rate aliases); the 1 s instance prices one collection cycle.
    window = 15.0 * args.idle_cycles
    log(f"both poolwatch instances up; {7.5 + window:g} s without scrapes")
    time.sleep(7.5)
    c15, c1, t0 = cpu_seconds(pw.pid), cpu_seconds(bg.pid), time.monotonic()
    time.sleep(window)
    wall = time.monotonic() - t0
    cpu15, cpu1 = cpu_seconds(pw.pid) - c15, cpu_seconds(bg.pid) - c1
    per_cycle = cpu1 / wall  # the 1 s instance runs one cycle per second
    background = {
        "window_s": round(wall, 1), "cpu_s_1s_interval": round(cpu1, 3),
        "cpu_s_per_cycle": round(per_cycle, 4),
        "pct_core_at_15s": round(per_cycle / 15 * 100, 3),
        "idle_pct_core_15s": round(cpu15 / wall * 100, 3),
        "rss_peak_mb_1s": round(peak_rss_mb(bg.pid), 1),
        "collectors_1s": collector_health(get(p1)[1]),
    }  # fmt: skip
    # Worst case: the 1 s instance collects all the time, so every scrape overlaps a collection
    # (a real 15 s scrape lands in one now and then; rendering competes for the GIL).
    # 5x the scrapes, so the run spans several collections rather than one.
    busy = bench("poolwatch (collecting every 1 s)", bg, p1, args, total=5 * args.scrapes)
    bg.terminate()
    # Phase 2: poolwatch (15 s) and node_exporter, scraped in alternating rounds, so load from
    # elsewhere on a shared machine falls on both alike.
    ne = start([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{pne}"], tmp / "ne.log")
    procs.append(ne)
    wait_ready("node_exporter", ne, pne, lambda _b: True, time.monotonic() + 20)
    pw_res, ne_res = bench_pair(("poolwatch", pw, p15), ("node_exporter", ne, pne), args)
    pw_res["collectors"] = collector_health(get(p15)[1])
    series_budget = budget_check(get(p15)[1], "plain" if "accelerator" not in COLLECTORS
                                 else "accelerators", args)  # fmt: skip
    pw.terminate()
    stop([pw, bg, ne])  # so their logs are complete
    logs = {n: log_problems(tmp / f"{n}.log") for n in ("pw15", "pw1", "ne")}
    return {"poolwatch": pw_res, "poolwatch_collecting": busy, "node_exporter": ne_res,
            "accelerator_cycle": cycles, "series_budget": series_budget,
            "background": background, "log_problems": logs}  # fmt: skip


def report(res: dict, variant: str) -> dict[str, dict]:
    """Print one variant's table; return its goals: background <= 1 % of a core at 15 s, peak RSS
    <= 80 MB, scrape p99 <= 0.25 x node_exporter's, every unit within the series budget; on the
    accelerator node also the accelerator cycle and <= 50 ms of npu-smi children per cycle."""
    pw, ne, bg = res["poolwatch"], res["node_exporter"], res["background"]
    busy = res["poolwatch_collecting"]
    how = "gzip, as Prometheus asks" if "Accept-Encoding" in HEADERS else "identity"
    print(f"\n== {variant} node == (scrapes: {how})")
    print(f"{'exporter':<14}{'series':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'cpu s/1k':>10}{'client/1k':>10}{'rss MB':>8}{'errors':>8}")  # fmt: skip
    for name, r in (("poolwatch", pw), ("pw collecting", busy), ("node_exporter", ne)):
        print(f"{name:<14}{r['series']:>8}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}"
              f"{r['cpu_s_per_1k']:>10.3f}{r['client_cpu_s_per_1k']:>10.3f}"
              f"{r['rss_peak_mb']:>8.1f}{r['errors']:>8}")  # fmt: skip
    for mode, c in res["accelerator_cycle"].items():
        print(f"accelerator cycle ({mode}): {c['cpu_ms_exporter']:.1f} ms CPU in the exporter, "
              f"{c['cpu_ms_npu_smi_children']:.1f} ms in npu-smi children; "
              f"{c['gpus']} GPUs, {c['npus']} NPUs, {c['containers']} containers")  # fmt: skip
    print(f"poolwatch background: {bg['cpu_s_per_cycle'] * 1000:.1f} ms CPU per collection cycle "
          f"-> {bg['pct_core_at_15s']:.3f} % of a core at 15 s "
          f"(measured unscraped at 15 s: {bg['idle_pct_core_15s']:.3f} %)")  # fmt: skip
    goals = {
        "p99_ratio": (round(pw["p99_ms"] / ne["p99_ms"], 3), 0.25,
                      "p99 ratio poolwatch/node_exporter"),
        "p99_ratio_collecting": (round(busy["p99_ms"] / ne["p99_ms"], 3), 1.0,
                                 "p99 ratio, every scrape during a collection"),
        "background_pct_core_at_15s": (bg["pct_core_at_15s"], 1.0,
                                       "background % of one core at 15 s"),
        "poolwatch_rss_peak_mb": (pw["rss_peak_mb"], 80.0, "poolwatch peak RSS MB"),
        "series_units_over_budget": (len(res["series_budget"]["over_budget"]), 0,
                                     "units whose real series exceed the catalog budget"),
    }  # fmt: skip
    sb = res["series_budget"]
    print(
        f"series: {sb['real_total']} real, {sb['budget_total']} budget (poolwatch catalog "
        f"--budget); per unit real/budget: "
        + ", ".join(f"{u} {v['real']}/{v['budget']}" for u, v in sb["units"].items())
    )
    if variant != "plain":
        ms = res["accelerator_cycle"]["in_process"]["cpu_ms_exporter"]
        goals["accelerator_cycle_cpu_ms"] = (ms, 50.0, "accelerator cycle CPU ms (fakes)")
        kids = res["accelerator_cycle"]["npu_smi_processes"]["cpu_ms_npu_smi_children"]
        goals["npu_smi_children_cpu_ms"] = (
            kids,
            50.0,
            "npu-smi children CPU ms per 15 s cycle, average",
        )
    out = {}
    for key, (value, limit, text) in goals.items():
        ok = value <= limit
        print(f"{'PASS' if ok else 'FAIL'}  {text}: {value:g} <= {limit:g}")
        out[key] = {"value": value, "limit": limit, "pass": ok}
    return out


def run_variant(args: argparse.Namespace, variant: str) -> dict | None:
    global COLLECTORS
    COLLECTORS = PLAIN if variant == "plain" else PLAIN + ACCEL
    procs: list[Proc] = []
    stops: list[Callable[[], object]] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"node_scrape-{variant}-"))
    log(f"--- {variant} node ---")
    try:
        return run(args, tmp, procs, stops)
    except RuntimeError as err:
        log(f"failed: {err}")
        for f in sorted(tmp.glob("*.log")):
            log(f"{f.name}:\n" + "\n".join(f.read_text().splitlines()[-10:]))
        return None
    finally:
        stop(procs)
        for fn in stops:
            fn()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=1000, help="scrapes per exporter")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up scrapes per exporter")
    ap.add_argument("--concurrency", type=int, default=10, help="scraper threads")
    ap.add_argument("--idle-cycles", type=int, default=1, help="15 s cycles left unscraped")
    ap.add_argument("--hcas", type=int, default=8)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--nfs-mounts", type=int, default=10)
    ap.add_argument("--nfs-ops", type=int, default=15)
    ap.add_argument("--encoding", choices=["gzip", "identity"], default="gzip",
                    help="gzip: ask as Prometheus does (default); identity: plain")  # fmt: skip
    ap.add_argument("--client", choices=["go", "python"], default="go",
                    help="who scrapes: go (default; Go's net/http and gzip, as Prometheus) or "
                         "python (threads of this process)")  # fmt: skip
    ap.add_argument("--only", choices=["plain", "accelerators"],
                    help="run one node variant (default: both)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE / "results" / "node_scrape.json")
    args = ap.parse_args()
    if args.encoding == "identity":
        HEADERS.pop("Accept-Encoding", None)
    if shutil.which(NODE_EXPORTER) is None:
        log(f"{NODE_EXPORTER} not on PATH (apt install prometheus-node-exporter)")
        return 2
    version = subprocess.run([NODE_EXPORTER, "--version"], capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
    global SCRAPER
    if args.client == "go":
        try:
            SCRAPER = build_scraper(Path(tempfile.mkdtemp(prefix="node_scrape-client-")))
        except (OSError, subprocess.SubprocessError) as err:
            log(f"cannot build the Go scraper ({err}); use --client python")
            return 2
        if SCRAPER is None:
            log("go is not on PATH: install Go, or use --client python")
            return 2
    results: dict[str, dict] = {}
    for variant in [args.only] if args.only else ["plain", "accelerators"]:
        res = run_variant(args, variant)
        if res is None:
            return 1
        res["goals"] = report(res, variant)
        results[variant] = res
    doc = {
        **results,
        "params": vars(args) | {"out": str(args.out)},
        "host": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "node_exporter": (version.stdout or version.stderr).splitlines()[0],
            "kernel": platform.release(),
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {args.out}")
    ok = all(g["pass"] for r in results.values() for g in r["goals"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
