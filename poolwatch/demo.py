"""`poolwatch demo`: the whole stack on one machine, on 127.0.0.1, state only in a data directory.

Ports, from `--port-base N` (default 9476), in this order:
  N    the node exporter for this host (real /proc, the cache dir under DATA/cache)
  N+1  the simulated pool's nodes, node-exporter-shaped (GPUs, NPUs, allocations, cache dirs)
  N+2  the cluster exporter on the simulated backend (pools, nodes, jobs, quotas, /events)
  N+3  Prometheus scraping the three, when its binary is present and --no-prometheus is not given
  N+4  the alerts receiver          }  `poolwatch demo` (acting=True) also runs the acting half,
  N+5  the controller (dry-run off)  }  poolwatch/demo_stack.py: notifications delivered to the
  N+6  the pool REST API             }  inbox at N+8, isolation and HA replacement, the pool API
  N+7  the rule engine's own metrics: the shipped rules evaluated in local mode (no Prometheus
       needed) over the same three endpoints, alert state in DATA/rules.db
  N+8  the demo inbox: the notifications the alerts layer delivered, as JSON

The engine hands its notifications to every object in `Demo.notifiers` and its controller
requests to every object in `Demo.action_sinks` (poolwatch.actions protocols; log-only ones by
default, plus the alerts service and the controller when acting), so the demo never reaches
into a part's internals.

Why one process with threads and not four processes: the simulated cluster is in-process state
that both the node-shaped endpoint and the cluster exporter read; a Ctrl-C stops everything at once.
Prometheus is the exception, a child process whose data lives under DATA/prometheus.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exporters.cluster.app import ClusterExporter, serve_cluster
from exporters.cluster.settings import ClusterExporterSettings
from exporters.node import app as node_app
from exporters.node.server import serve
from exporters.node.settings import NodeExporterSettings
from exporters.node.webconfig import WebConfig

from .actions import ActionSink, Notifier
from .cluster.sim_metrics import exposition
from .cluster.sim_spec import SimulationSpec
from .cluster.simulated import SimulatedCluster

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    node: int
    simulated: int
    cluster: int
    prometheus: int
    alerts: int
    controller: int
    api: int
    rules: int
    inbox: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(*(base + i for i in range(9)))


class SimulatedNodes:
    """The simulated nodes' exposition, rendered once per simulation step (never per scrape)."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._plain = b""
        self._gzip: bytes | None = None
        self.refresh()

    def refresh(self) -> None:
        body = exposition(self.cluster)
        with self._lock:
            self._plain, self._gzip = body, None

    def body(self, gzipped: bool = False) -> bytes:
        with self._lock:
            if not gzipped:
                return self._plain
            if self._gzip is None:
                self._gzip = gzip.compress(self._plain, compresslevel=6)
            return self._gzip


def scrape_jobs(ports: Ports) -> tuple[tuple[str, int], ...]:
    """(job name, port) of what Prometheus and the local rule engine scrape."""
    return (("poolwatch-node", ports.node), ("poolwatch-simulated-nodes", ports.simulated),
            ("poolwatch-cluster", ports.cluster))  # fmt: skip


def prometheus_config(ports: Ports, interval: str = "5s") -> str:
    jobs = scrape_jobs(ports)
    lines = [f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}",
             "scrape_configs:"]  # fmt: skip
    for job, port in jobs:
        # honor_labels: the simulated endpoint speaks for many nodes through their `node` label
        lines += [f"  - job_name: {job}", "    honor_labels: true",
                  f"    static_configs: [{{targets: ['{HOST}:{port}']}}]"]  # fmt: skip
    return "\n".join(lines) + "\n"


class Demo:
    def __init__(
        self,
        port_base: int,
        data_dir: Path,
        prometheus: bool = True,
        seed: int = 1,
        speed: float = 1.0,
        scrape_interval: str = "5s",
        rules_interval: float = 15.0,
        rule_files: list[Path] | None = None,
        acting: bool = False,
    ) -> None:
        self.ports = Ports.from_base(port_base)
        self.data_dir = data_dir
        self.want_prometheus = prometheus
        self.speed = speed
        self.scrape_interval = scrape_interval
        self.cluster = SimulatedCluster(SimulationSpec(seed=seed))
        self.nodes = SimulatedNodes(self.cluster)
        self._stop = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        self._stoppers: list[Callable[[], None]] = []
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.rules_interval = rules_interval
        self.rule_files = rule_files
        self.engine: Any = None  # rules.engine.Engine once started
        from rules.sinks import LogActionSink, LogNotifier

        #: where the rule engine's notifications and controller requests go (append to plug in)
        self.notifiers: list[Notifier] = [LogNotifier()]
        self.action_sinks: list[ActionSink] = [LogActionSink()]
        #: the alerts layer, controller and pool API (poolwatch.demo_stack), when `acting`
        self.stack: Any = None
        self.acting = acting

    # -- parts -----------------------------------------------------------------------------------
    def _serve(self, httpd: ThreadingHTTPServer, name: str) -> None:
        self._servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, name=name, daemon=True).start()

    def _node_exporter(self) -> None:
        cache = self.data_dir / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        settings = NodeExporterSettings(
            listen=f"{HOST}:{self.ports.node}", cache_dir=cache, compat=["modelarts"]
        )
        runner, store = node_app.build(settings)
        runner.start()
        self._stoppers.append(runner.stop)
        health = lambda: node_app.health_text(store)  # noqa: E731 - a one-line callback
        self._serve(serve(store, (HOST, self.ports.node), WebConfig(), health), "node-exporter")

    def _simulated_nodes(self) -> None:
        ok = lambda: (self.cluster.healthy(), "simulated pool\n")  # noqa: E731
        self._serve(
            serve(self.nodes, (HOST, self.ports.simulated), WebConfig(), ok),  # type: ignore[arg-type]
            "simulated-nodes",
        )

    def _cluster_exporter(self) -> None:
        listen = f"{HOST}:{self.ports.cluster}"
        settings = ClusterExporterSettings(listen=listen, backend="simulated")
        exporter = ClusterExporter(self.cluster, settings)
        exporter.start()
        self._stoppers.append(exporter.stop)
        self._serve(serve_cluster(exporter, (HOST, self.ports.cluster), WebConfig()), "cluster")

    def _prometheus(self) -> None:
        binary = shutil.which("prometheus")
        if not self.want_prometheus or binary is None:
            if self.want_prometheus:
                log.warning("no prometheus binary on PATH: running without Prometheus "
                            "(apt-get install prometheus, or pass --no-prometheus)")  # fmt: skip
            return
        cfg = self.data_dir / "prometheus.yml"
        cfg.write_text(prometheus_config(self.ports, self.scrape_interval))
        out = (self.data_dir / "prometheus.log").open("wb")
        self.prometheus = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={self.data_dir / 'prometheus'}",
             f"--web.listen-address={HOST}:{self.ports.prometheus}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def _rule_engine(self) -> None:
        """The shipped rules in local mode over the demo's own endpoints (the embedded default:
        alerts and actions without Prometheus)."""
        from rules.engine import Engine, RuleFiles
        from rules.loader import default_files
        from rules.local import LocalSource, Target
        from rules.state import StateStore

        from .cli import _EngineMetrics
        from .config import parse_duration

        targets = [Target(f"http://{HOST}:{port}/metrics", job)
                   for job, port in scrape_jobs(self.ports)]  # fmt: skip
        scrape = float(parse_duration(self.scrape_interval))  # type: ignore[arg-type]
        source = LocalSource(targets, scrape_interval=scrape)
        files = RuleFiles(self.rule_files or default_files())
        engine = Engine(files.load(), source, StateStore(self.data_dir / "rules.db"))
        self.engine = engine
        from rules.web import serve as serve_engine

        # the engine's own pages (alerts, rules, metrics) under its own name
        self._serve(
            serve_engine(engine, _EngineMetrics(engine).body, (HOST, self.ports.rules),
                         self.rules_interval),
            "rules-web",
        )  # fmt: skip
        source.start()
        self._stoppers.append(source.stop)
        threading.Thread(
            target=engine.run, name="rules", daemon=True,
            args=(self.rules_interval, self.notifiers, self._stop),
            kwargs={"before": lambda: files.maybe_reload(engine), "sinks": self.action_sinks},
        ).start()  # fmt: skip

    def _drive(self) -> None:
        """Advance the simulation in real time (x speed), re-rendering the node-shaped metrics."""
        while not self._stop.wait(1.0):
            self.cluster.step(1.0 * self.speed)
            self.nodes.refresh()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._node_exporter()
        self._simulated_nodes()
        self._cluster_exporter()
        threading.Thread(target=self._drive, name="simulation", daemon=True).start()
        if self.acting:
            self._acting_parts()
        self._rule_engine()
        self._prometheus()

    def _acting_parts(self) -> None:
        """Notifications, controller and pool API, in-process; the engine's decisions reach
        them through the same lists a test or an embedding program can append to."""
        from .demo_stack import Stack

        self.stack = Stack(self.cluster, self.data_dir, HOST, self.ports)
        self._stoppers.append(self.stack.stop)
        self.stack.start(f"http://{HOST}:{self.ports.prometheus}")
        self.notifiers.append(self.stack.notifier)
        self.action_sinks.append(self.stack.controller)

    def urls(self) -> dict[str, str]:
        p = self.ports
        out = {
            "node exporter (this host)": f"http://{HOST}:{p.node}/metrics",
            "simulated pool nodes": f"http://{HOST}:{p.simulated}/metrics",
            "cluster exporter": f"http://{HOST}:{p.cluster}/metrics",
            "pool events (JSON)": f"http://{HOST}:{p.cluster}/events",
            "rule engine (local mode)": f"http://{HOST}:{p.rules}/metrics",
        }
        if self.stack is not None:
            out.update(self.stack.urls())
        if self.prometheus is not None:
            out["Prometheus"] = f"http://{HOST}:{p.prometheus}/graph"
        return out

    def stop(self) -> None:
        self._stop.set()
        for httpd in self._servers:
            httpd.shutdown()
            httpd.server_close()
        for fn in self._stoppers:
            fn()
        if self.prometheus is not None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()


def run(port_base: int, data_dir: Path, prometheus: bool, seed: int, speed: float) -> int:
    demo = Demo(port_base, data_dir, prometheus, seed, speed, acting=True)
    try:
        demo.start()
    except OSError as err:
        demo.stop()
        log.error("cannot start the demo: %s (another demo on these ports? try --port-base)", err)
        return 1
    lines = [f"poolwatch demo is running (data in {data_dir}); Ctrl-C stops it:"]
    urls = demo.urls()
    width = max(map(len, urls))
    lines += [f"  {name:<{width}}  {url}" for name, url in urls.items()]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        if demo.prometheus is not None and demo.prometheus.poll() is not None:
            log.warning("Prometheus exited (%s); see %s", demo.prometheus.returncode,
                        data_dir / "prometheus.log")  # fmt: skip
            demo.prometheus = None
    log.info("stopping")
    demo.stop()
    return 0


__all__ = ["Demo", "Ports", "prometheus_config", "run", "scrape_jobs"]
