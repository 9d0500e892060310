"""The cluster exporter at scale: 5,000 nodes, 50,000 pods, 10,000 jobs through the API stub.

Why: the cluster exporter keeps each object's lines ready as watch events arrive (the
kube-state-metrics way), so a scrape of a large cluster should only join bytes. This measures it
against the real code path: the exporter process runs the real `kubernetes` client and the
Kubernetes backend against tests/k8s_stub.py (an HTTP API stand-in speaking list + watch JSON),
which this process fills with objects shaped like the fixtures' Nodes, Pods and PyTorchJobs.

Figures: time from the exporter's start to its first complete exposition (every object listed
and rendered), its peak RSS, scrape latency p50/p99 while pods are
modified at 500/s through the watch (two scrapers asking for gzip, as an HA pair of Prometheus
servers does; `--concurrency` raises it), and the render cost per series of our store next to
prometheus-client's own `generate_latest` on the same families (the peer, same run). Goals
(issue 3): first exposition < 60 s, RSS < 1 GB, scrape p99 < 250 ms. Exit 0 when all pass.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from k8s_stub import KubeApiStub  # noqa: E402
from prometheus_client.exposition import generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

PYTORCH = "/apis/kubeflow.org/v1/pytorchjobs"
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[cluster_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def node(i: int, pools: int) -> dict:
    name = f"gpu-node-{i:05d}"
    return {
        "metadata": {"name": name, "uid": f"node-{i:08d}",
                     "labels": {"poolwatch.io/pool": f"pool-{i % pools:02d}",
                                "kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"capacity": {"cpu": "192", "memory": "2048Gi", "nvidia.com/gpu": "8"},
                   "allocatable": {"cpu": "190", "memory": "2000Gi", "nvidia.com/gpu": "8"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


def job(j: int) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": f"job-{j:05d}", "namespace": f"team-{j % 20}",
                     "uid": f"job-{j:08d}", "creationTimestamp": "2026-11-20T08:00:00Z",
                     "labels": {"poolwatch.io/owner": f"user-{j % 97}"}},
        "spec": {"runPolicy": {"schedulingPolicy": {"queue": f"team-{j % 20}"}},
                 "pytorchReplicaSpecs": {"Worker": {"replicas": 5, "template": {"spec": {
                     "containers": [{"name": "pytorch", "resources": {
                         "requests": {"nvidia.com/gpu": "1"}}}]}}}}},
        "status": {"conditions": [{"type": "Running", "status": "True"}],
                   "startTime": "2026-11-20T08:01:00Z"},
    }  # fmt: skip


def pod(k: int, nodes: int, phase: str = "Running") -> dict:
    j = k // 5
    return {
        "metadata": {"name": f"job-{j:05d}-worker-{k % 5}", "namespace": f"team-{j % 20}",
                     "uid": f"pod-{k:08d}",
                     "labels": {"training.kubeflow.org/job-name": f"job-{j:05d}"},
                     "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                                          "name": f"job-{j:05d}", "uid": f"job-{j:08d}",
                                          "controller": True}]},
        "spec": {"nodeName": f"gpu-node-{k % nodes:05d}",
                 "containers": [{"name": "pytorch", "resources": {
                     "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"}}}]},
        "status": {"phase": phase},
    }  # fmt: skip


def fill(stub: KubeApiStub, nodes: int, pods: int, jobs: int, pools: int) -> None:
    stub.install(PYTORCH, "PyTorchJob", "kubeflow.org/v1")
    for i in range(nodes):
        stub.put("/api/v1/nodes", node(i, pools), quiet=True)
    for j in range(jobs):
        stub.put(PYTORCH, job(j), quiet=True)
    for k in range(pods):
        stub.put("/api/v1/pods", pod(k, nodes), quiet=True)


def get(port: int, timeout: float = 30.0, gzipped: bool = False) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Accept-Encoding": "gzip"} if gzipped else {}
        conn.request("GET", "/metrics", headers=headers)
        return conn.getresponse().read()
    finally:
        conn.close()


def complete(body: bytes, nodes: int, pods: int) -> bool:
    """Every node and every pod's job is in the exposition, and the exporter is up."""
    text = body.decode(errors="replace")
    return (
        "poolwatch_cluster_up 1.0" in text
        and text.count("poolwatch_cluster_node_info{") >= nodes
        and text.count("poolwatch_training_job_info{") >= pods // 5
    )


def proc_stat(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
               if ln.startswith("VmHWM:"))  # fmt: skip
    return (int(fields[11]) + int(fields[12])) / TICK, int(rss.split()[1]) / 1024


def scrape_under_churn(stub: KubeApiStub, port: int, args: argparse.Namespace) -> dict:
    stop = threading.Event()
    changes = 0

    def churn() -> None:
        nonlocal changes
        k, interval = 0, 1.0 / args.events_per_second
        nxt = time.monotonic()
        while not stop.is_set():
            stub.put(
                "/api/v1/pods",
                pod(k % args.pods, args.nodes, "Running" if (k // args.pods) % 2 else "Pending"),
            )
            changes += 1
            k += 1
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))

    lat: list[float] = []
    lock = threading.Lock()

    def scraper() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            get(port, gzipped=True)  # as Prometheus asks; the body is not decompressed here
            with lock:
                lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=churn)] + [
        threading.Thread(target=scraper) for _ in range(args.concurrency)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    lat.sort()
    pct = lambda q: round(lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000, 1)  # noqa: E731
    rate = round(changes / (time.monotonic() - t0), 1)
    return {"scrapes": len(lat), "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100),
            "changes": changes, "changes_per_s": rate}  # fmt: skip


def render_cost(body: bytes) -> dict:
    """Per-series cost of rendering these families: ours (the store's join is cached, so this
    times a full render of the same families) against generate_latest."""
    from exporters.node.store import render

    families = list(text_string_to_metric_families(body.decode()))
    series = sum(len(f.samples) for f in families)
    runs = {}
    for name, fn in (("poolwatch render", lambda: render(families)),
                     ("generate_latest", lambda: generate_latest(_Fams(families)))):  # fmt: skip
        t0 = time.perf_counter()
        fn()
        runs[name] = round((time.perf_counter() - t0) / series * 1e6, 2)
    return {"series": series, "us_per_series": runs,
            "ratio": round(runs["poolwatch render"] / runs["generate_latest"], 2)}  # fmt: skip


class _Fams:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self) -> list:
        return self.families


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pods", type=int, default=50000)
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--pools", type=int, default=10)
    ap.add_argument("--events-per-second", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="scraping under churn")
    # two scrapers: an HA pair of Prometheus servers, each asking for gzip, as they do
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cluster_scale.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cluster_scale-"))
    stub = KubeApiStub()
    log(f"filling the API stub: {args.nodes} nodes, {args.pods} pods, {args.jobs} jobs")
    fill(stub, args.nodes, args.pods, args.jobs, args.pools)
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": stub.url}}],
        "users": [{"name": "stub", "user": {}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
    }))  # fmt: skip
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "poolwatch.cli", "cluster-exporter", "--backend", "kubernetes",
           "--kubeconfig", str(kubeconfig), "--listen", f"127.0.0.1:{port}",
           "--log-level", "warning"]  # fmt: skip
    logf = (tmp / "exporter.log").open("wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=HERE.parent)
    try:
        body = b""
        while time.monotonic() - t0 < 300:
            if proc.poll() is not None:
                raise RuntimeError((tmp / "exporter.log").read_text()[-2000:])
            try:
                body = get(port)
            except OSError:
                body = b""
            if complete(body, args.nodes, args.pods):
                break
            time.sleep(0.5)
        first = time.monotonic() - t0
        log(f"first complete exposition after {first:.1f} s, {len(body) / 2**20:.1f} MiB")
        churn = scrape_under_churn(stub, port, args)
        cpu, rss = proc_stat(proc.pid)
        cost = render_cost(get(port))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        stub.close()
    goals = {"first_exposition_s": (round(first, 1), 60.0), "rss_peak_mb": (round(rss), 1024.0),
             "scrape_p99_ms": (churn["p99_ms"], 250.0)}  # fmt: skip
    print(
        f"objects: {args.nodes} nodes, {args.pods} pods, {args.jobs} jobs; "
        f"exposition {cost['series']} series"
    )
    print(
        f"scrapes under {churn['changes_per_s']}/s pod changes: {churn['scrapes']} scrapes, "
        f"p50 {churn['p50_ms']} ms, p99 {churn['p99_ms']} ms, max {churn['max_ms']} ms"
    )
    print(
        f"render cost per series: poolwatch {cost['us_per_series']['poolwatch render']} us, "
        f"generate_latest {cost['us_per_series']['generate_latest']} us "
        f"(ratio {cost['ratio']}); exporter CPU {cpu:.1f} s in all"
    )
    ok = True
    for key, (value, limit) in goals.items():
        ok &= value <= limit
        print(f"{'PASS' if value <= limit else 'FAIL'}  {key}: {value:g} <= {limit:g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "first_exposition_s": round(first, 1), "rss_peak_mb": round(rss, 1), "churn": churn,
        "render_cost": cost, "exporter_cpu_s": round(cpu, 1), "params": vars(args) | {
            "out": str(args.out)}, "host": {"nproc": os.cpu_count(),
                                           "python": platform.python_version()},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }, indent=2) + "\n")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
