"""The rule engine in local mode against Prometheus: 1,000 rules over 100,000 series.

Why: the embedded default (no Prometheus) evaluates the rules in Python over its own in-memory
history; it must keep up with what Prometheus itself spends on the same rules. One run serves a
synthetic pool (1,250 GPU nodes x 8 devices, catalog metrics only: utilisation, memory,
temperature, power, ECC counters, filesystems, containers = 100,000 series) from one HTTP
endpoint; a real Prometheus (3.16, pinned by scripts/tools.sh) scrapes it and evaluates the
1,000 compiled rules (20 rule shapes x 50 pools: thresholds, hysteresis, aggregations,
*_over_time, rate/increase, arithmetic, the percent-window subquery); the local source
scrapes the same endpoint and the engine evaluates the same rule files.

Figures: Prometheus' own `prometheus_rule_group_last_duration_seconds` summed over the groups
(its whole rule-evaluation time for one round; the groups run concurrently, so the sum is the
CPU-side cost and the max the wall-clock floor), read while this process sits idle; then
Prometheus is stopped and the engine's evaluation cycle is timed (cold: the first cycle, which
also filters each selector's series once; warm: later cycles). Every rule is evaluated on its
own (a rule that raises is that rule's failure), as in production. Goal: warm cycle /
Prometheus sum <= 0.25, with the same number of pending+firing alerts per rule shape on both
sides. The local source's ingest cost per scrape interval (one scrape of every series: fetch,
parse, append) is reported apart. Writes bench/results/rules_eval.txt. Exit 0 when both hold.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

import yaml  # noqa: E402

from poolwatch.rules import compile as compiler  # noqa: E402
from poolwatch.rules.engine import Engine  # noqa: E402
from poolwatch.rules.local import LocalSource, Target  # noqa: E402
from poolwatch.rules.model import Group  # noqa: E402
from poolwatch.rules.state import StateStore  # noqa: E402

POOLS, NODES_PER_POOL, DEVICES = 50, 25, 8
A = "poolwatch_accelerator_"
ANN = {"summary": "s", "description": "d", "runbook": "r"}


def log(msg: str) -> None:
    print(f"[rules_eval {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _u(*parts: object) -> float:
    """A fixed pseudo-random number in [0, 1) from `parts` (no RNG state: reproducible)."""
    h = 2166136261
    for ch in repr(parts).encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h / 2**32


def exposition(scrape: int) -> bytes:
    """100,000 series; counters advance with `scrape` so rate/increase have something to do."""
    out: list[str] = []
    for p in range(POOLS):
        pool = f"pool-{p:02d}"
        for n in range(NODES_PER_POOL):
            node = f"node-{p:02d}-{n:02d}"
            ident = f'node="{node}",pool="{pool}"'
            for d in range(DEVICES):
                dev = (f'{ident},vendor="nvidia",model="H100",index="{d}",'
                       f'uuid="GPU-{p:02d}{n:02d}{d}"')  # fmt: skip
                r = _u(p, n, d)
                util = 0.0 if r < 0.01 else 0.5 + 0.5 * _u(p, n, d, "u")
                out.append(f"{A}utilization_ratio{{{dev}}} {util}")
                out.append(f"{A}memory_used_ratio{{{dev}}} {0.99 if r > 0.99 else 0.6 * r}")
                out.append(f"{A}temperature_celsius{{{dev}}} {40 + 55 * _u(p, n, d, 't'):.1f}")
                out.append(f"{A}power_watts{{{dev}}} {100 + 600 * _u(p, n, d, 'w'):.1f}")
                bad = 1 if _u(p, n, d, "e") < 0.005 else 0
                for error, rate in (("corrected", 3 * bad), ("uncorrected", bad)):
                    for scope in ("volatile", "aggregate"):
                        out.append(f'{A}ecc_errors_total{{{dev},error="{error}",'
                                   f'scope="{scope}"}} {rate * scrape}')  # fmt: skip
            for purpose in ("cache", "container", "kubelet", "root"):
                used = 0.95 if _u(p, n, purpose) < 0.02 else 0.5 * _u(p, n, purpose, 1)
                fs = f'path="/{purpose}",purpose="{purpose}",mountpoint="/{purpose}",fstype="ext4"'
                out.append(f"poolwatch_filesystem_used_ratio{{{ident},{fs}}} {used}")
            for c in range(12):
                cpu = 0.99 if _u(p, n, c) < 0.01 else 0.7 * _u(p, n, c, 1)
                out.append(f'poolwatch_container_cpu_used_ratio{{{ident},namespace="ns-{p:02d}",'
                           f'pod="job-{n:02d}-worker-{c}",container="main",'
                           f'training_job="job-{n:02d}"}} {cpu}')  # fmt: skip
    return ("\n".join(out) + "\n").encode()


#: 20 rule shapes; each becomes one rule per pool ({P} is its matcher)
SHAPES: list[dict[str, Any]] = [
    {"expr": A + "utilization_ratio{P}", "op": "<", "threshold": 0.05, "periods": 2},
    {"expr": A + "memory_used_ratio{P}", "op": ">", "threshold": 0.95, "periods": 2},
    {"expr": A + "temperature_celsius{P}", "op": ">", "threshold": 93, "periods": 2},
    {"expr": A + "power_watts{P}", "op": ">", "threshold": 695, "for": "1m"},
    {"expr": "avg by (node) (" + A + "utilization_ratio{P})", "op": "<", "threshold": 0.2,
     "periods": 2},
    {"expr": "max by (node) (" + A + "temperature_celsius{P})", "op": ">", "threshold": 94.5,
     "periods": 1},
    {"expr": "max_over_time(" + A + "temperature_celsius{P}[5m])", "op": ">", "threshold": 94,
     "periods": 1},
    {"expr": "avg_over_time(" + A + "utilization_ratio{P}[5m])", "op": "<", "threshold": 0.02,
     "periods": 2},
    {"expr": "rate(" + A + 'ecc_errors_total{P, error="corrected", scope="volatile"}[2m])',
     "op": ">", "threshold": 0.1, "periods": 1},
    {"expr": "increase(" + A + 'ecc_errors_total{P, error="uncorrected", scope="volatile"}[5m])',
     "op": ">", "threshold": 0, "periods": 1},
    {"expr": A + 'ecc_errors_total{P, error="uncorrected", scope="aggregate"}', "op": ">",
     "threshold": 10, "periods": 1},
    {"expr": 'poolwatch_filesystem_used_ratio{P, purpose="cache"}', "op": ">", "threshold": 0.9,
     "clear": 0.85, "periods": 2},
    {"expr": 'poolwatch_filesystem_used_ratio{P, purpose="container"}', "op": ">",
     "threshold": 0.9, "clear": 0.85, "periods": 2},
    {"expr": "poolwatch_container_cpu_used_ratio{P}", "op": ">", "threshold": 0.98, "periods": 3},
    {"expr": "count by (node) (" + A + "utilization_ratio{P} < 0.01)", "op": ">",
     "threshold": 1, "periods": 1},
    {"expr": "sum by (pool) (" + A + "power_watts{P}) / 1000", "op": ">", "threshold": 200,
     "periods": 2},
    {"expr": A + "utilization_ratio{P} * 100", "op": "<", "threshold": 1, "periods": 2},
    {"expr": A + "memory_used_ratio{P}", "op": ">", "threshold": 0.98, "clear": 0.9,
     "periods": 2},
    {"expr": A + "temperature_celsius{P}", "op": ">", "threshold": 90,
     "window": {"range": "5m", "step": "1m", "percent": 90}},
    {"expr": "min by (node) (" + A + "memory_used_ratio{P})", "op": "<", "threshold": 0.001,
     "periods": 2},
]  # fmt: skip


def groups(interval: str) -> list[Group]:
    out = []
    for i, shape in enumerate(SHAPES):
        rules = []
        for p in range(POOLS):
            matcher = f'pool="pool-{p:02d}"'
            expr = (
                shape["expr"]
                .replace("{P,", "{" + matcher + ",")
                .replace("{P}", "{" + matcher + "}")
            )
            rules.append(shape | {"expr": expr, "name": f"PoolwatchBench{i:02d}Pool{p:02d}",
                                  "severity": "warning", "annotations": ANN})  # fmt: skip
        out.append(Group.model_validate({"group": f"bench-{i:02d}", "interval": interval,
                                         "rules": rules}))  # fmt: skip
    return out


class Body:
    """Two renderings a scrape apart: each scraper (told apart by its User-Agent) gets the first
    on its first scrape and the second after, so both sides see the same counter increase."""

    def __init__(self) -> None:
        self.scrapes: dict[str, int] = {}
        self.bodies = [exposition(0), exposition(1)]
        self.lock = threading.Lock()

    def next(self, client: str) -> bytes:
        with self.lock:
            n = self.scrapes[client] = self.scrapes.get(client, 0) + 1
            return self.bodies[0 if n == 1 else 1]


def serve(body: Body) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.next(self.headers.get("User-Agent", ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128
        daemon_threads = True

    httpd = Server(("127.0.0.1", _free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())["data"]["result"]


def _by_shape(by_rule: dict[str, int]) -> dict[str, int]:
    """Alert counts per rule shape (PoolwatchBenchNN, over its 50 pools)."""
    out: dict[str, int] = {}
    for name, n in by_rule.items():
        out[name[:16]] = out.get(name[:16], 0) + n
    return out


def _own(base: str, name: str) -> list[float]:
    """Values of one of Prometheus' own metrics, read from its /metrics."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(name + "{")]  # fmt: skip


def _wait(cond: Any, what: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def prometheus_figures(
    tmp: Path, target: str, gs: list[Group], interval: int, quiet: Any, binary: str
) -> dict[str, Any]:
    """Prometheus' rule-evaluation figures; `quiet()` returns once this process stops working
    (the local scrapes), so the figures are not taken while we compete for the CPU."""
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [compiler.group_dict(g) for g in gs]}))
    cfg = tmp / "prometheus.yml"
    cfg.write_text(
        f"global: {{scrape_interval: {interval}s, scrape_timeout: {interval}s, "
        f"evaluation_interval: {interval}s}}\nrule_files: ['{rules}']\nscrape_configs:\n"
        "  - job_name: bench\n    honor_labels: true\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "prometheus.log"
    proc = subprocess.Popen(
        [binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait(lambda: _query(base, "up") != [], "Prometheus", 60)
        # Prometheus does not scrape itself here: its rule-group figures come from its /metrics
        iterations = "prometheus_rule_group_iterations_total"
        _wait(lambda: len([v for v in _own(base, iterations) if v > 3]) == len(gs),
              "three evaluations of every group", 150)  # fmt: skip
        quiet()
        time.sleep(interval)  # a whole round evaluated while this process sleeps
        sums, maxes = [], []
        for _ in range(3):
            durations = _own(base, "prometheus_rule_group_last_duration_seconds")
            sums.append(sum(durations))
            maxes.append(max(durations))
            time.sleep(interval)
        alerts = _query(base, "count(ALERTS)")
        by_rule = {r["metric"]["alertname"]: int(float(r["value"][1]))
                   for r in _query(base, "count by (alertname) (ALERTS)")}  # fmt: skip
        series = _query(base, 'count({job="bench", __name__!~"ALERTS.*"})')
        return {
            "sum": statistics.median(sums), "max": statistics.median(maxes),
            "firing": int(float(alerts[0]["value"][1])) if alerts else 0,
            "head_series": int(float(series[0]["value"][1])),
            "by_shape": _by_shape(by_rule),
        }  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=int, default=10, help="scrape and rule interval, s (10)")
    ap.add_argument("--cycles", type=int, default=4, help="local evaluation cycles timed (4)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "rules_eval.txt")
    ap.add_argument("--prometheus", help="the prometheus binary (default: the pinned 3.16 one "
                    "scripts/tools.sh builds)")  # fmt: skip
    args = ap.parse_args()
    binary = args.prometheus or _pinned_prometheus()
    if binary is None:
        log("no prometheus binary: run scripts/tools.sh, or name one with --prometheus")
        return 2
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             check=False).stdout.split()[2:3] or ["?"]  # fmt: skip
    began = time.monotonic()
    body = Body()
    series = body.bodies[1].count(b"\n")
    httpd = serve(body)
    target = f"127.0.0.1:{httpd.server_address[1]}"
    gs = groups(f"{args.interval}s")
    log(f"{series} series, {sum(len(g.rules) for g in gs)} rules in {len(gs)} groups")
    source = LocalSource(
        [Target(f"http://{target}/metrics", "bench")], args.interval, freeze_gc=True
    )  # as `poolwatch rules run` has it
    engine = Engine(gs, source, StateStore(":memory:"))
    if engine.refused:
        raise SystemExit(f"rules refused by the local source: {engine.refused}")
    # the local source scrapes alongside Prometheus (same data, same times); its parse cost
    # is the scrape's, not the evaluation's, and is reported apart
    scrape_times: list[float] = []

    def scraper() -> None:  # three scrapes, one interval apart, as Prometheus does them
        for _ in range(3):
            t = time.perf_counter()
            source.scrape_once()
            scrape_times.append(time.perf_counter() - t)
            time.sleep(max(0.0, args.interval - (time.perf_counter() - t)))

    with tempfile.TemporaryDirectory(prefix="rules-eval-") as tmp:
        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        prom = prometheus_figures(Path(tmp), target, gs, args.interval, thread.join, binary)
    log(f"Prometheus: rule groups sum {prom['sum'] * 1000:.1f} ms, max {prom['max'] * 1000:.1f} ms")
    cycles = []
    for _ in range(args.cycles):
        engine.evaluate()
        cycles.append(engine.last_duration)
    cold, warm = cycles[0], statistics.median(cycles[1:])
    active = [a for a in engine.alerts.values() if a.state in ("pending", "firing")]
    firing = len(active)
    local_shapes: dict[str, int] = {}
    for a in active:
        local_shapes[a.rule[:16]] = local_shapes.get(a.rule[:16], 0) + 1
    for shape in sorted(set(local_shapes) | set(prom["by_shape"])):
        if local_shapes.get(shape, 0) != prom["by_shape"].get(shape, 0):
            log(
                f"{shape} ({SHAPES[int(shape[-2:])]['expr']}): Prometheus "
                f"{prom['by_shape'].get(shape, 0)}, local {local_shapes.get(shape, 0)}"
            )
    ratio = warm / prom["sum"]
    lines = [
        f"# bench/rules_eval.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        f"# {series} series ({prom['head_series']} in Prometheus' head), "
        f"{sum(len(g.rules) for g in gs)} rules, {len(gs)} groups, interval {args.interval}s",
        f"{'measure':<52} {'value':>12}",
        f"{f'Prometheus {version[0]}: sum of rule_group_last_duration (ms)':<52} "
        f"{prom['sum'] * 1000:>12.1f}",
        f"{f'Prometheus {version[0]}: slowest group (ms)':<52} {prom['max'] * 1000:>12.1f}",
        f"{'local engine: first cycle, selectors cold (ms)':<52} {cold * 1000:>12.1f}",
        f"{'local engine: cycle, median of warm cycles (ms)':<52} {warm * 1000:>12.1f}",
        f"{'local source: ingest per interval: scrape+parse+append (ms)':<52} "
        f"{statistics.median(scrape_times) * 1000:>12.1f}",
        f"{'alerts pending+firing: Prometheus / local':<52} "
        f"{prom['firing']:>6} / {firing:<5}",
        f"{'ratio local warm / Prometheus sum (goal <= 0.25)':<52} {ratio:>12.2f}",
        f"{'ratio local warm / Prometheus slowest group':<52} {warm / prom['max']:>12.2f}",
        f"# wall time {time.monotonic() - began:.0f} s",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    httpd.shutdown()
    agree = local_shapes == prom["by_shape"]  # the same alerts per rule shape on both sides
    return 0 if ratio <= 0.25 and agree else 1


def _pinned_prometheus() -> str | None:
    script = HERE.parent / "scripts" / "tools.sh"
    out = subprocess.run(["bash", str(script), "--print-bin-dir", "--only=prometheus"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode == 0 and out.stdout.strip():
        path = Path(out.stdout.strip().splitlines()[-1]) / "prometheus"
        if path.exists():
            return str(path)
    return shutil.which("prometheus")


if __name__ == "__main__":
    raise SystemExit(main())
