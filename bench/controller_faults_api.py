"""The fault wave of bench/controller_faults.py through a Kubernetes API server, in wall time.

Why: the simulated run proves the controller's arithmetic; this one proves it through the real
client, informers and API server, where every write is answered before its watch event comes
back (read-your-writes) and every request costs what it costs. The API server is the pinned
kube-apiserver 1.36 on etcd 3.6 (`--api real`, started here with tests/controlplane.py), or
tests/k8s_stub.py (`--api stub`) for comparison.

What runs: a pool of `--nodes` nodes (5 % HA spares, cordoned and labelled Spare) and
`--jobs` one-pod training jobs bound to its workers; the `PoolController` on the Kubernetes
backend (its informers read through a proxy that adds `--lag` seconds) reconciling every
`--reconcile` s; `--faults` faults (a node condition written as node-problem-detector does) at
random moments of `--window` s; the rule engine played by a tick every `--eval-interval` s that
submits one `isolate` (A050101, replaced from the spares) per fault seen since the last tick.
A monitor reads the pool from the API server itself every second and checks the limits.

Figures: fault -> decision (wall: from the condition write to the end of the action), the
decision's own wall time, decision -> replacement done, the limits observed, the API server's
memory. Goal: every decision within one evaluation interval (p99), limits held, every
replacement done or failed with its reason.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import kubernetes  # noqa: E402

from poolwatch.cluster.kubernetes.api import load_configuration  # noqa: E402
from poolwatch.cluster.kubernetes.backend import KubernetesCluster  # noqa: E402
from poolwatch.cluster.kubernetes.convert import node_from  # noqa: E402
from poolwatch.cluster.kubernetes.read import Context  # noqa: E402
from poolwatch.controller.pools import FAULT_TAINT, allowed, out_of_service  # noqa: E402
from poolwatch.controller.service import PoolController  # noqa: E402
from poolwatch.controller.settings import ControllerSettings  # noqa: E402
from poolwatch.core.actions import NodeAction  # noqa: E402

POOL, FLAVOR, NS = "bench", "gpu.8x.h100", "bench"
NODES, PODS = "/api/v1/nodes", f"/api/v1/namespaces/{NS}/pods"
SELECTOR = f"poolwatch.io/pool={POOL}"
CONDITION = "GpuEccUncorrectable"  # what the fault writes on the node


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def node_body(name: str, spare: bool) -> dict[str, Any]:
    labels = {"poolwatch.io/pool": POOL, "node.kubernetes.io/instance-type": FLAVOR}
    if spare:
        labels["poolwatch.io/status"] = "Spare"
    res = {"cpu": "96", "memory": "1024Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": spare},
        "status": {"capacity": res, "allocatable": res, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "",
             "lastHeartbeatTime": stamp(), "lastTransitionTime": stamp()}]},
    }  # fmt: skip


def pod_body(name: str, node: str) -> dict[str, Any]:
    res = {"nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"poolwatch.io/job": name},
                     "annotations": {"fault-tolerance/job-retry-num": "3"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30, "containers": [
            {"name": "main", "image": "trainer:1",
             "resources": {"requests": res, "limits": res}}]},
    }  # fmt: skip


class RealServer:
    """The pinned kube-apiserver + etcd, started for the run (tests/controlplane.py)."""

    name = "kube-apiserver"

    def __init__(self, bin_dir: Path, workdir: Path) -> None:
        from controlplane import start_control_plane

        self.plane = start_control_plane(bin_dir, workdir)
        self.admin = self.plane.admin()
        self.host = ("127.0.0.1", self.plane.port)
        self.scheme, self._dir = "https", workdir
        self.admin.post("/api/v1/namespaces", {"metadata": {"name": NS}})
        self.describe = f"kube-apiserver {self.plane.version()} on etcd (pinned builds)"

    def configuration(self, host: str | None = None) -> Any:
        path = self.plane.admin_kubeconfig(self._dir / f"kc-{time.monotonic_ns()}", host)
        cfg = load_configuration(path, {})
        cfg.retries = False
        return cfg

    def create_node(self, body: dict[str, Any]) -> None:
        self.admin.post(NODES, body)

    def create_pod(self, body: dict[str, Any]) -> None:
        self.admin.post(PODS, body)
        status = {"phase": "Running", "startTime": stamp(),
                  "conditions": [{"type": "Ready", "status": "True"}]}  # fmt: skip
        self.admin.patch(f"{PODS}/{body['metadata']['name']}/status", {"status": status})

    def fault(self, node: str) -> None:
        cond = {"type": CONDITION, "status": "True", "reason": "DoubleBitEcc", "message": "",
                "lastHeartbeatTime": stamp(), "lastTransitionTime": stamp()}  # fmt: skip
        self.admin.patch(f"{NODES}/{node}/status", {"status": {"conditions": [cond]}},
                         kind="strategic")  # fmt: skip

    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.admin.get(NODES, labelSelector=SELECTOR).get("items") or [])

    def figures(self) -> str:
        f = self.plane.figures()
        return (
            f"API server RSS {f['apiserver_rss_mib']:.0f} MiB, etcd RSS "
            f"{f['etcd_rss_mib']:.0f} MiB; control plane up in {f['started_s']:.1f} s"
        )

    def close(self) -> None:
        self.plane.stop()


class StubServer:
    """tests/k8s_stub.py in this process (its watch delivers a write as it is made)."""

    name = "stub"

    def __init__(self) -> None:
        from k8s_stub import KubeApiStub

        self.stub = KubeApiStub()
        self.host, self.scheme = ("127.0.0.1", self.stub.port), "http"
        self.describe = "tests/k8s_stub.py (in this process)"

    def configuration(self, host: str | None = None) -> Any:
        cfg = kubernetes.client.Configuration(host=host or self.stub.url)
        cfg.retries = False
        return cfg

    def create_node(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.stub.put(NODES, {**body, "metadata": {**body["metadata"], "uid": f"uid-{name}"}})

    def create_pod(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        meta = {**body["metadata"], "uid": f"uid-pod-{name}"}
        self.stub.put("/api/v1/pods", {**body, "metadata": meta,
                                       "status": {"phase": "Running"}})  # fmt: skip

    def fault(self, node: str) -> None:
        with self.stub.cond:
            obj = self.stub.collections[NODES].objects[("", node)]
            conds = [c for c in obj["status"]["conditions"] if c["type"] != CONDITION]
            conds.append({"type": CONDITION, "status": "True", "reason": "DoubleBitEcc"})
            self.stub.put(NODES, {**obj, "status": {**obj["status"], "conditions": conds}})

    def list_nodes(self) -> list[dict[str, Any]]:
        with self.stub.cond:
            return list(self.stub.collections[NODES].objects.values())

    def figures(self) -> str:
        return "API server: the stub, in this process"

    def close(self) -> None:
        self.stub.close()


@dataclass
class Observed:
    """What the run saw; filled by the threads below."""

    faults: dict[str, float] = field(default_factory=dict)  # node -> when its fault was written
    # node -> (decided at, the decision's wall seconds, outcome, when its evaluation began)
    decided: dict[str, tuple[float, float, str, float]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    max_out: int = 0
    max_tainted: int = 0
    max_flight: int = 0
    monitor_reads: int = 0
    reconcile_wall: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    view_stale: int = 0  # decisions refused because the view was not current
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed(server: Any, nodes: int, spares: int, jobs: int) -> tuple[list[str], float]:
    began = time.monotonic()
    names = [f"bench-{i:04d}" for i in range(nodes)]
    workers = names[: nodes - spares]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: server.create_node(node_body(n, n not in workers)), names))
        list(pool.map(lambda i: server.create_pod(pod_body(f"job-{i:04d}", workers[i])),
                      range(min(jobs, len(workers)))))  # fmt: skip
    return workers, time.monotonic() - began


@contextlib.contextmanager
def open_server(args: argparse.Namespace) -> Iterator[Any]:
    if args.api == "stub":
        server: Any = StubServer()
    else:
        bin_dir = args.bin_dir or Path(tools_bin_dir())
        server = RealServer(bin_dir, Path(tempfile.mkdtemp(prefix="controller-faults-")))
    try:
        yield server
    finally:
        server.close()


def tools_bin_dir() -> str:
    import subprocess

    out = subprocess.run(["bash", str(ROOT / "scripts" / "tools.sh"), "--print-bin-dir"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def run_api(args: argparse.Namespace) -> tuple[list[str], bool]:
    from tcpproxy import TcpProxy

    rng = random.Random(args.seed)  # noqa: S311 - a reproducible benchmark
    spares = round(args.nodes * args.spares)
    with open_server(args) as server:
        workers, seed_s = seed(server, args.nodes, spares, args.jobs)
        proxy = TcpProxy(server.host[1], args.lag)
        read = server.configuration(f"{server.scheme}://127.0.0.1:{proxy.port}")
        read.connection_pool_maxsize = 32
        backend = KubernetesCluster(
            kubernetes.client.ApiClient(read),
            write_api_client=kubernetes.client.ApiClient(server.configuration()),
            watch_timeout=120,
        )
        began = time.monotonic()
        why = backend.await_view(120)
        while sum(n.pool == POOL for n in backend.nodes()) < args.nodes:
            time.sleep(0.1)
        sync_s = time.monotonic() - began
        settings = ControllerSettings(dry_run=False)
        ctl = PoolController(backend, settings)
        ctl.reconcile()
        seen = Observed()
        stop = threading.Event()
        start = time.time()
        strikes = sorted((start + rng.uniform(0, args.window), v)
                         for v in rng.sample(workers, args.faults))  # fmt: skip
        threads = [
            threading.Thread(target=inject, args=(server, strikes, seen, stop), daemon=True),
            threading.Thread(
                target=tick, args=(ctl, seen, stop, args.eval_interval, start), daemon=True
            ),
            threading.Thread(target=reconcile, args=(ctl, seen, stop, args.reconcile), daemon=True),
            threading.Thread(target=monitor, args=(server, ctl, seen, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        deadline = start + args.window + args.settle
        while time.time() < deadline:
            reps = ctl.store.replacements(POOL)
            if (len(seen.decided) == args.faults and reps
                    and not ctl.store.replacements(POOL, True)):  # fmt: skip
                break
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        reps = ctl.store.replacements(POOL)
        seen.view_stale = ctl.stats.get(("view", "stale"), 0)
        figures = server.figures()
        backend.stop()
        proxy.close()
    return report(args, server.describe, figures, seen, reps, settings, seed_s, sync_s, why)


def inject(server: Any, strikes: list[tuple[float, str]], seen: Observed,
           stop: threading.Event) -> None:  # fmt: skip
    for when, node in strikes:
        if stop.wait(max(0.0, when - time.time())):
            return
        server.fault(node)
        with seen.lock:
            seen.faults[node] = time.time()
            seen.pending.append(node)


def tick(ctl: PoolController, seen: Observed, stop: threading.Event, every: float,
         start: float) -> None:  # fmt: skip
    """The rule engine: every `every` s, one isolate per fault seen since the last tick."""
    n = 1
    while not stop.wait(max(0.0, start + n * every - time.time())):
        n += 1
        began = time.time()
        with seen.lock:
            due, seen.pending = seen.pending, []
        for node in due:  # oldest first, as the engine sends what is due
            w0 = time.perf_counter()
            action = NodeAction("isolate", f"PoolwatchGpuEcc:{node}", node=node,
                                fault_code="A050101", reason="PoolwatchGpuEcc")  # fmt: skip
            result = ctl.submit(action)
            seen.decided[node] = (time.time(), time.perf_counter() - w0, result.outcome, began)
            if result.outcome not in ("done", "deferred"):
                seen.errors.append(f"{node}: {result.outcome}: {result.detail}")


def reconcile(ctl: PoolController, seen: Observed, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        w0 = time.perf_counter()
        ctl.reconcile()
        seen.reconcile_wall.append(time.perf_counter() - w0)


def monitor(server: Any, ctl: PoolController, seen: Observed, stop: threading.Event) -> None:
    """The limits, on what the API server holds (not the controller's cache), every second."""
    ctx = Context()
    while not stop.wait(1.0):
        nodes = [node_from(raw, ctx) for raw in server.list_nodes()]
        reps = ctl.store.replacements(POOL)
        seen.max_out = max(seen.max_out, out_of_service(nodes))
        seen.max_tainted = max(seen.max_tainted, sum(
            any(k == FAULT_TAINT for k, _, _ in n.taints) for n in nodes))  # fmt: skip
        seen.max_flight = max(seen.max_flight,
                              sum(r.state in ("starting", "running") for r in reps))  # fmt: skip
        seen.monitor_reads += 1


def report(
    args: argparse.Namespace, describe: str, figures: str, seen: Observed, reps: list[Any],
    s: ControllerSettings, seed_s: float, sync_s: float, why: str,
) -> tuple[list[str], bool]:  # fmt: skip
    total = args.nodes
    done = [r for r in reps if r.state == "done"]
    failed = [r for r in reps if r.state == "failed"]
    to_decision = [seen.decided[n][0] - t for n, t in seen.faults.items() if n in seen.decided]
    to_tick = [seen.decided[n][3] - t for n, t in seen.faults.items() if n in seen.decided]
    tick_to = [(d - b) * 1000 for d, _, _, b in seen.decided.values()]  # queue + decision
    first = sum(0 <= seen.decided[n][3] - t < args.eval_interval
                for n, t in seen.faults.items() if n in seen.decided)  # fmt: skip
    wall_ms = [w * 1000 for _, w, _, _ in seen.decided.values()]
    by_node = {r.node: r for r in reps}
    to_done = [by_node[n].finished_at - seen.faults[n] for n in seen.decided
               if n in by_node and by_node[n].state == "done"]  # fmt: skip
    outcomes: dict[str, int] = {}
    for _, _, out, _ in seen.decided.values():
        outcomes[out] = outcomes.get(out, 0) + 1
    starts = sorted(r.started_at for r in reps if r.started_at)
    day_max = max((sum(a <= b < a + 86400 for b in starts) for a in starts), default=0)
    limits = {
        "nodes out of service (breaker)": (seen.max_out, allowed(s.breaker_ratio, total, 1)),
        "nodes tainted": (seen.max_tainted, allowed(s.breaker_ratio, total, 1)),
        "replacements in flight": (seen.max_flight,
                                   allowed(s.replace_concurrent_ratio, total, s.replace_min)),
        "started in 24 h": (day_max, allowed(s.replace_daily_ratio, total, s.replace_min)),
    }  # fmt: skip
    held = all(v <= cap for v, cap in limits.values())
    p99 = pct(to_decision, 0.99)
    in_time = len(to_decision) == args.faults and p99 <= args.eval_interval
    at_first = first == args.faults
    accounted = all(r.state == "done" or (r.state == "failed" and r.detail) for r in reps)
    rec = [w * 1000 for w in seen.reconcile_wall]
    lines = [
        f"# bench/controller_faults.py --api {args.api}  {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        f"  python {platform.python_version()}  {platform.machine()}",
        f"API server: {describe}; informers through a proxy adding {args.lag * 1000:.0f} ms",
        f"pool: {total} nodes, {round(total * args.spares)} HA spares ({args.spares:.0%}), "
        f"{args.jobs} one-pod jobs; seeded in {seed_s:.1f} s, informers synced in {sync_s:.1f} s"
        + (f" (view: {why})" if why else ""),
        f"wave: {args.faults} faults in {args.window:.0f} s (wall); rule evaluation every "
        f"{args.eval_interval:.0f} s; reconcile every {args.reconcile:.0f} s",
        f"outcomes: {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))}; replacements "
        f"done {len(done)}, failed {len(failed)} of {len(reps)}",
        f"fault -> decision (wall): p50 {pct(to_decision, 0.5):.2f} s, p99 {p99:.2f} s, max "
        f"{max(to_decision, default=0):.2f} s (evaluation interval {args.eval_interval:.0f} s);"
        f" decided at the first evaluation after the fault: {first} of {args.faults}",
        f"  of which the wait for that evaluation: p99 {pct(to_tick, 0.99):.2f} s; evaluation "
        f"-> decision (the controller, queue in the batch included): p50 "
        f"{pct(tick_to, 0.5):.0f} ms, p99 {pct(tick_to, 0.99):.0f} ms",
        f"decision wall time per action: p50 {pct(wall_ms, 0.5):.0f} ms, p99 "
        f"{pct(wall_ms, 0.99):.0f} ms, max {max(wall_ms, default=0):.0f} ms",
        f"fault -> replacement done (wall): p50 {pct(to_done, 0.5):.1f} s, max "
        f"{max(to_done, default=0):.1f} s; reconcile wall p50 {pct(rec, 0.5):.0f} ms, max "
        f"{max(rec, default=0):.0f} ms",
        "limits (observed max / cap, read from the API server every 1 s, "
        f"{seen.monitor_reads} reads): "
        + "; ".join(f"{k} {v}/{cap}" for k, (v, cap) in limits.items()),
        f"decisions refused because the view was not current: {seen.view_stale}; {figures}",
        f"result: fault -> decision p99 within one interval: {'yes' if in_time else 'NO'}; "
        f"every fault decided at the first evaluation after it: {'yes' if at_first else 'NO'}; "
        f"limits "
        f"held: {'yes' if held else 'NO'}; every replacement done or failed with its reason: "
        f"{'yes' if accounted else 'NO'}",
    ]
    lines += [f"  error: {e}" for e in seen.errors[:10]]
    return lines, in_time and held and accounted and not seen.errors
