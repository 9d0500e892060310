"""The cluster exporter at scale on a real kube-apiserver, beside kube-state-metrics.

Why: the cluster exporter keeps each object's lines ready as watch events arrive (the
kube-state-metrics way), so a scrape of a large cluster should only join bytes. This measures it
on the real path: the pinned etcd and kube-apiserver (started as the tests start them,
tests/controlplane.py) hold nodes, pods and PyTorchJobs created through the API; then
`poolwatch cluster-exporter` and kube-state-metrics (the pinned build, with a custom-resource
config for PyTorchJobs so both read the same objects) are started one after the other and each
is timed to its first complete exposition; then both run while pods change through the API
(status patches, as kubelets make them), each scraped by two scrapers asking for gzip (an HA pair
of Prometheus servers).

Figures, for both programs: seconds to the first complete exposition (every node, pod and job in
it), peak RSS, scrape latency p50/p99 under change, CPU seconds per minute under change; and
poolwatch's ratio to kube-state-metrics for each. Goals: poolwatch's first exposition < 60 s,
RSS < 1 GB, scrape p99 < 250 ms, and each ratio <= 1.0 (first exposition, RSS, CPU) while it
also serves the pool, job and quota families kube-state-metrics has not. Exit 0 when all pass.

The default is the full scale (5,000 nodes, 50,000 pods, 10,000 PyTorchJobs); creating them
through one API server on a small machine takes minutes, so `--scale 0.2` runs a fifth of it.
Nodes are created through the API and never heartbeat (no kubelets, no kwok): neither program
reads heartbeats, and 5,000 heartbeating nodes would load the API server, not the exporters.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from controlplane import Api, ControlPlane, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
NAMESPACES = 20
KSM_CRS = """\
kind: CustomResourceStateMetrics
spec:
  resources:
    - groupVersionKind: {group: kubeflow.org, version: v1, kind: PyTorchJob}
      metricNamePrefix: kube_pytorchjob
      labelsFromPath:
        namespace: [metadata, namespace]
        name: [metadata, name]
      metrics:
        - name: info
          help: A PyTorchJob, value 1.
          each:
            type: Info
            info:
              labelsFromPath:
                queue: [spec, runPolicy, schedulingPolicy, queue]
        - name: status_condition
          help: The PyTorchJob's conditions.
          each:
            type: Gauge
            gauge:
              path: [status, conditions]
              labelsFromPath:
                type: [type]
              valueFrom: [status]
"""


def log(msg: str) -> None:
    print(f"[cluster_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bin_dir() -> Path:
    """The pinned tools: CONTROLPLANE_BIN_DIR, or what scripts/tools.sh builds."""
    if override := os.environ.get("CONTROLPLANE_BIN_DIR"):
        return Path(override)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "tools.sh"), "--print-bin-dir"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


# -- the objects ----------------------------------------------------------------------------------
def node(i: int, pools: int) -> dict[str, Any]:
    name = f"gpu-node-{i:05d}"
    resources = {"cpu": "192", "memory": "2048Gi", "nvidia.com/gpu": "8", "pods": "110"}
    return {
        "metadata": {"name": name, "labels": {"poolwatch.io/pool": f"pool-{i % pools:02d}",
                                              "kubernetes.io/hostname": name}},
        "status": {"capacity": resources, "allocatable": resources,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "lastHeartbeatTime": "2026-11-20T08:00:00Z",
                                   "lastTransitionTime": "2026-11-20T08:00:00Z"}]},
    }  # fmt: skip


def job(j: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": f"job-{j:05d}", "labels": {"poolwatch.io/owner": f"user-{j % 97}"}},
        "spec": {"runPolicy": {"schedulingPolicy": {"queue": f"team-{j % NAMESPACES}"}},
                 "pytorchReplicaSpecs": {"Worker": {"replicas": 5, "template": {"spec": {
                     "containers": [{"name": "pytorch", "image": "trainer:1", "resources": {
                         "requests": {"nvidia.com/gpu": "1"}}}]}}}}},
    }  # fmt: skip


JOB_STATUS = {"conditions": [{"type": "Created", "status": "True"},
                             {"type": "Running", "status": "True"}],
              "startTime": "2026-11-20T08:01:00Z"}  # fmt: skip


def pod(k: int, nodes: int, job_uid: str) -> dict[str, Any]:
    j = k // 5
    gpu = {"nvidia.com/gpu": "1"}
    return {
        "metadata": {"name": f"job-{j:05d}-worker-{k % 5}",
                     "labels": {"training.kubeflow.org/job-name": f"job-{j:05d}"},
                     "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                                          "name": f"job-{j:05d}", "uid": job_uid,
                                          "controller": True}]},
        "spec": {"nodeName": f"gpu-node-{k % nodes:05d}",
                 "containers": [{"name": "pytorch", "image": "trainer:1", "resources": {
                     "requests": {"cpu": "8", "memory": "64Gi", **gpu}, "limits": gpu}}]},
    }  # fmt: skip


def ns_of(j: int) -> str:
    return f"team-{j % NAMESPACES}"


def fill(api: Api, args: argparse.Namespace) -> dict[str, float]:
    """Create everything through the API with `args.writers` connections; seconds per kind."""
    took: dict[str, float] = {}
    for n in range(NAMESPACES):
        api.post("/api/v1/namespaces", {"metadata": {"name": f"team-{n}"}})
    with ThreadPoolExecutor(args.writers) as pool:
        t0 = time.monotonic()
        list(pool.map(lambda i: api.post("/api/v1/nodes", node(i, args.pools)), range(args.nodes)))
        took["nodes"] = time.monotonic() - t0
        log(f"{args.nodes} nodes in {took['nodes']:.0f} s")

        def make_job(j: int) -> str:
            base = f"/apis/kubeflow.org/v1/namespaces/{ns_of(j)}/pytorchjobs"
            made = api.post(base, job(j))
            made["status"] = JOB_STATUS
            api.put(f"{base}/{made['metadata']['name']}/status", made)
            return str(made["metadata"]["uid"])

        t0 = time.monotonic()
        uids = list(pool.map(make_job, range(args.jobs)))
        took["jobs"] = time.monotonic() - t0
        log(f"{args.jobs} PyTorchJobs (with status) in {took['jobs']:.0f} s")
        t0 = time.monotonic()
        list(pool.map(lambda k: api.post(f"/api/v1/namespaces/{ns_of(k // 5)}/pods",
                                         pod(k, args.nodes, uids[(k // 5) % len(uids)])),
                      range(args.pods)))  # fmt: skip
        took["pods"] = time.monotonic() - t0
        log(f"{args.pods} pods in {took['pods']:.0f} s")
    return took


# -- measuring -------------------------------------------------------------------------------------
def get(port: int, timeout: float = 60.0, gzipped: bool = False) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzipped else {})
        return conn.getresponse().read()
    finally:
        conn.close()


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, peak RSS MiB)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
               if ln.startswith("VmHWM:"))  # fmt: skip
    return (int(fields[11]) + int(fields[12])) / TICK, int(rss.split()[1]) / 1024


class Program:
    """One exporter under test: how to start it, and what its complete exposition contains."""

    def __init__(
        self, name: str, port: int, argv: list[str], markers: dict[str, int], log_path: Path
    ) -> None:
        self.name, self.port, self.argv = name, port, argv
        self.markers, self.log_path = markers, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.first_s = 0.0
        self.size_mib = 0.0

    def start_and_wait(self, limit: float) -> None:
        with self.log_path.open("wb") as out:
            t0 = time.monotonic()
            # no POOLWATCH_* settings from this shell leak into the exporter
            env = {k: v for k, v in os.environ.items() if not k.startswith("POOLWATCH_")}
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=ROOT, env=env)  # fmt: skip
        while time.monotonic() - t0 < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                body = get(self.port)
            except OSError:
                body = b""
            if self.complete(body):
                self.first_s = time.monotonic() - t0
                self.size_mib = len(body) / 2**20
                log(f"{self.name}: first complete exposition after {self.first_s:.1f} s, "
                    f"{self.size_mib:.1f} MiB")  # fmt: skip
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name}: no complete exposition within {limit:.0f} s")

    def complete(self, body: bytes) -> bool:
        text = body.decode(errors="replace")
        return all(text.count(marker) >= count for marker, count in self.markers.items())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def scrape_for(port: int, seconds: float) -> list[float]:
    """Scrape (gzip, as Prometheus asks) back to back for `seconds`; the latencies."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        get(port, gzipped=True)
        out.append(time.perf_counter() - t0)
    return out


def under_change(api: Api, programs: list[Program], args: argparse.Namespace) -> dict[str, Any]:
    """Pods change phase through the API at the asked rate (as fast as the API server allows)
    while every program is scraped by `args.concurrency` scrapers; per program: latency
    percentiles and CPU seconds per minute."""
    stop = threading.Event()
    changes = [0]

    def churn(worker: int) -> None:
        k = worker
        interval = args.writers / args.changes_per_second
        nxt = time.monotonic()
        while not stop.is_set():
            phase = "Running" if (k // args.pods) % 2 == 0 else "Pending"
            name = f"job-{(k % args.pods) // 5:05d}-worker-{k % 5}"
            path = f"/api/v1/namespaces/{ns_of((k % args.pods) // 5)}/pods/{name}/status"
            try:
                api.patch(path, {"status": {"phase": phase}})
                changes[0] += 1
            except Exception as err:  # noqa: BLE001 - counted as not a change, run goes on
                log(f"change failed: {err}")
            k += args.writers
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(args.writers)]
    cpu0 = {p.name: proc_stat(p.proc.pid)[0] for p in programs if p.proc}
    # scrapers in processes of their own: the writers' threads must not slow the measurement
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(programs) * args.concurrency) as scrapers:
        t0 = time.monotonic()
        for t in threads:
            t.start()
        jobs = [(p.name, scrapers.apply_async(scrape_for, (p.port, args.seconds)))
                for p in programs for _ in range(args.concurrency)]  # fmt: skip
        lat: dict[str, list[float]] = {p.name: [] for p in programs}
        for name, result in jobs:
            lat[name] += result.get(timeout=args.seconds + 300)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - t0
    out: dict[str, Any] = {"changes": changes[0],
                           "changes_per_s": round(changes[0] / elapsed, 1)}  # fmt: skip
    for p in programs:
        if p.proc is None:
            continue
        cpu, rss = proc_stat(p.proc.pid)
        xs = sorted(lat[p.name])
        pct = lambda q, xs=xs: round(xs[min(len(xs) - 1, int(q / 100 * len(xs)))] * 1000, 1)  # noqa: E731
        out[p.name] = {"scrapes": len(xs), "p50_ms": pct(50), "p99_ms": pct(99),
                       "cpu_s_per_min": round((cpu - cpu0[p.name]) / elapsed * 60, 1),
                       "rss_peak_mib": round(rss, 1)}  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="of 5,000/50,000/10,000")
    ap.add_argument("--pools", type=int, default=10)
    ap.add_argument("--changes-per-second", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="scraping under change")
    ap.add_argument("--concurrency", type=int, default=2, help="scrapers per program")
    ap.add_argument("--writers", type=int, default=8,
                    help="API connections creating and changing objects")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cluster_scale.json")
    args = ap.parse_args()
    args.nodes, args.pods = round(5000 * args.scale), round(50000 * args.scale)
    args.jobs = round(10000 * args.scale)
    tools = bin_dir()
    tmp = Path(tempfile.mkdtemp(prefix="cluster_scale-"))
    plane = ControlPlane(tools, tmp / "plane", audit=False)
    programs: list[Program] = []
    try:
        plane.start()
        log(f"API server {plane.version()} ready in {plane.started_s:.1f} s; creating "
            f"{args.nodes} nodes, {args.pods} pods, {args.jobs} PyTorchJobs")  # fmt: skip
        api = plane.admin()
        took = fill(api, args)
        kubeconfig = plane.admin_kubeconfig(tmp / "kubeconfig")
        version = plane.version()
        pw_port, ksm_port = free_port(), free_port()
        poolwatch = Program(
            "poolwatch", pw_port,
            [sys.executable, "-m", "poolwatch.app.cli", "cluster-exporter", "--kubeconfig",
             str(kubeconfig), "--listen", f"127.0.0.1:{pw_port}", "--log-level", "warning"],
            {"poolwatch_cluster_up 1.0": 1, "poolwatch_cluster_node_info{": args.nodes,
             "poolwatch_training_job_info{": args.jobs},
            tmp / "poolwatch.log",
        )  # fmt: skip
        crs = tmp / "crs.yaml"
        crs.write_text(KSM_CRS)
        ksm = Program(
            "kube-state-metrics", ksm_port,
            [str(tools / "kube-state-metrics"), "--kubeconfig", str(kubeconfig),
             "--host", "127.0.0.1", "--port", str(ksm_port), "--telemetry-host", "127.0.0.1",
             "--telemetry-port", str(free_port()), "--resources", "nodes,pods",
             "--custom-resource-state-config-file", str(crs)],
            {"kube_node_info{": args.nodes, "kube_pod_info{": args.pods,
             "kube_pytorchjob_info{": args.jobs},
            tmp / "kube-state-metrics.log",
        )  # fmt: skip
        programs = [poolwatch, ksm]
        for program in programs:  # one at a time: each has the machine to itself while listing
            program.start_and_wait(600)
        log(f"both serving; {args.seconds:.0f} s of pod changes at up to "
            f"{args.changes_per_second:.0f}/s with {args.concurrency} scrapers each")  # fmt: skip
        change = under_change(api, programs, args)
        server_rss = {"apiserver_rss_mib": round(plane.apiserver.rss_bytes() / 2**20, 1),
                      "etcd_rss_mib": round(plane.etcd.rss_bytes() / 2**20, 1)}  # fmt: skip
    finally:
        for program in programs:
            program.stop()
        plane.stop()
    rows = {}
    for p in programs:
        rows[p.name] = {"first_exposition_s": round(p.first_s, 1),
                        "exposition_mib": round(p.size_mib, 1), **change[p.name]}  # fmt: skip
    ratio = {key: round(rows["poolwatch"][key] / rows["kube-state-metrics"][key], 2)
             for key in ("first_exposition_s", "rss_peak_mib", "cpu_s_per_min", "p99_ms")
             if rows["kube-state-metrics"][key]}  # fmt: skip
    print(f"objects: {args.nodes} nodes, {args.pods} pods, {args.jobs} PyTorchJobs on "
          f"kube-apiserver {version}; created in {sum(took.values()):.0f} s; "
          f"{change['changes_per_s']}/s pod changes achieved")  # fmt: skip
    header = f"{'':22}{'poolwatch':>12}{'kube-state-metrics':>20}{'ratio':>8}"
    print(header)
    for key, unit in (("first_exposition_s", "s"), ("rss_peak_mib", "MiB"),
                      ("cpu_s_per_min", "CPU s/min"), ("p50_ms", "ms"), ("p99_ms", "ms"),
                      ("exposition_mib", "MiB")):  # fmt: skip
        pw, peer = rows["poolwatch"][key], rows["kube-state-metrics"][key]
        print(f"{key + ' (' + unit + ')':22}{pw:>12}{peer:>20}{ratio.get(key, ''):>8}")
    goals = {"first_exposition_s": (rows["poolwatch"]["first_exposition_s"], 60.0),
             "rss_peak_mib": (rows["poolwatch"]["rss_peak_mib"], 1024.0),
             "scrape_p99_ms": (rows["poolwatch"]["p99_ms"], 250.0)}  # fmt: skip
    goals |= {f"ratio {k}": (ratio[k], 1.0) for k in ("first_exposition_s", "rss_peak_mib",
                                                      "cpu_s_per_min") if k in ratio}  # fmt: skip
    ok = True
    for key, (value, limit) in goals.items():
        ok &= value <= limit
        print(f"{'PASS' if value <= limit else 'FAIL'}  {key}: {value:g} <= {limit:g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "programs": rows, "ratio_poolwatch_to_ksm": ratio, "change": {
            "changes": change["changes"], "changes_per_s": change["changes_per_s"]},
        "create_s": {k: round(v, 1) for k, v in took.items()}, "control_plane": server_rss,
        "versions": {"kube-apiserver": version, "etcd": "v3.6.17",
                     "kube-state-metrics": "v2.19.1"},
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "host": {"nproc": os.cpu_count(), "python": platform.python_version(),
                 "loadavg": os.getloadavg()},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }, indent=2) + "\n")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
