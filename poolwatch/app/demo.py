"""`poolwatch demo`: the whole stack on one machine, on 127.0.0.1, state only in a data directory.

Ports, from `--port-base N` (default 9476), in the order of the port table every part uses
(poolwatch/core/ports.py), so with the default base each part answers on its usual port:
  N    the node exporter for this host (real /proc, the cache dir under DATA/cache)
  N+1  the cluster exporter on the simulated backend (pools, nodes, jobs, quotas, /events)
  N+2  the simulated pool's nodes, node-exporter-shaped (GPUs, NPUs, allocations, cache dirs)
  N+3  Prometheus: scrapes the three, evaluates the shipped rules, alerts to Alertmanager
  N+4  the rule engine: the shipped rules evaluated in local mode over the same three endpoints,
       alert state in DATA/rules.db; its firing alerts' actions go to the controller
  N+5  the alerts receiver          }  the acting half (poolwatch/app/demo_stack.py), when
  N+6  the controller (dry-run off)  }  `acting`: notifications, isolation and replacement,
  N+7  the pool REST API             }  the pool API
  N+8  the demo's own site (poolwatch/app/demo_site.py): the landing page, the inbox, the pool,
       the dashboards drawn live, the fault-injection API
  N+9  Alertmanager (acting, with Prometheus): routes Prometheus's alerts to the receiver

Who notifies: with Prometheus and Alertmanager running, notifications take the production path
(Prometheus rules -> Alertmanager -> receiver -> inbox) and the local engine only acts; without
them, the local engine notifies the receiver's service directly (the embedded default).

State that survives a restart lives in DATA: the simulated pool (simulation.pickle, see
cluster/sim_persist.py) and the scenario's progress, the alert state, the outbox, the
controller's store, the inbox, Prometheus's data. DATA/demo.lock keeps a second demo out.

Why one process with threads: the simulated cluster is in-process state that the node-shaped
endpoint, the cluster exporter, the controller and the API all read. Prometheus and Alertmanager
are children that die with the demo however it ends (demo_procs.py).
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from poolwatch.app import demo_monitoring, demo_rules
from poolwatch.app.demo_endpoints import Ports, SimulatedNodes, prometheus_config, scrape_jobs
from poolwatch.app.demo_procs import Child, lock_data_dir
from poolwatch.cluster.simulated import persist as sim_persist
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import SimulationSpec
from poolwatch.core.actions import ActionSink, Notifier
from poolwatch.core.web.config import WebConfig
from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node import app as node_app
from poolwatch.exporters.node.server import serve
from poolwatch.exporters.node.settings import NodeExporterSettings

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
SAVE_EVERY = 10.0  # wall seconds between saves of the simulated pool
STATE_FILE, SCENARIO_FILE, INFO_FILE = "simulation.pickle", "scenario.json", "demo.json"


def _seconds(text: str) -> float:
    from poolwatch.core.config import parse_duration

    return float(parse_duration(text))  # type: ignore[arg-type]


class Demo:
    """The demo's parts. `speed` is simulated seconds per real second (0 freezes the pool); the
    rules' periods, the scrape interval and the controller's step scale with it. `scenario`
    runs the scripted story (demo_scenario) instead of the simulator's random faults."""

    def __init__(
        self,
        port_base: int,
        data_dir: Path,
        prometheus: bool = True,
        seed: int = 1,
        speed: float = 1.0,
        scrape_interval: str = "5s",
        rules_interval: float | None = None,
        rule_files: list[Path] | None = None,
        acting: bool = False,
        scenario: bool = False,
    ) -> None:
        self.ports = Ports.from_base(port_base)
        self.data_dir = data_dir
        self.want_prometheus = prometheus
        self.seed, self.speed = seed, speed
        #: what periods are divided by: the speed, or 1 for a frozen (0) or real-time pool
        self.factor = speed if speed > 0 else 1.0
        scrape = max(1.0, _seconds(scrape_interval) / self.factor)
        self.scrape_interval = f"{scrape:g}s"
        self.rules_interval = rules_interval or max(1.0, 15.0 / self.factor)
        self.rule_files = rule_files
        self.with_scenario = scenario
        # the story's pool: scripted faults only, repaired after five simulated minutes, and
        # jobs that ask to be restarted after a fault or a hang (the controller's job-retry and
        # restart-upon-suspension annotations). Every job's hang detection time is the
        # platform's minimum, 10 minutes, so a hang shows within a quarter of an hour.
        self.spec = SimulationSpec(
            seed=seed, fault_interval=None, repair_seconds=300.0, hang_detect_minutes=10,
            job_annotations=(("fault-tolerance/job-retry-num", "3"),
                             ("fault-tolerance/restart-upon-suspension", "true")),
        ) if scenario else SimulationSpec(seed=seed, hang_detect_minutes=10)  # fmt: skip
        self.cluster = SimulatedCluster(self.spec)
        self.nodes = SimulatedNodes(self.cluster)
        self.resumed = False
        self._stop = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        self._stoppers: list[Callable[[], None]] = []
        self.children: dict[str, Child] = {}
        self.programs: dict[str, demo_monitoring.Program] = {}
        self.engine: Any = None  # rules.engine.Engine once started
        self.scenario: Any = None  # demo_scenario.Scenario when `scenario`
        self.site: Any = None
        self._lock_file: IO[str] | None = None
        from poolwatch.rules.sinks import LogActionSink, LogNotifier

        #: where the rule engine's notifications and controller requests go (append to plug in);
        #: the log-only defaults are replaced by the real parts when `acting`
        self.notifiers: list[Notifier] = [LogNotifier()]
        self.action_sinks: list[ActionSink] = [LogActionSink()]
        #: the alerts layer, controller and pool API (poolwatch.demo_stack), when `acting`
        self.stack: Any = None
        self.acting = acting

    @property
    def prometheus(self) -> Any:
        """The Prometheus child's Popen, or None (kept for callers of the earlier demo)."""
        child = self.children.get("prometheus")
        return child.proc if child is not None else None

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

    def runbook_base(self) -> str:
        """The demo's site serves the docs (/docs/), so the alerts' runbook links open there."""
        from poolwatch.app.demo_docs import runbook_base

        return runbook_base(f"http://{HOST}:{self.ports.inbox}")

    def _rules(self) -> tuple[list[Path], Path]:
        from poolwatch.rules.loader import default_files

        floor = max(1.0, 2 * _seconds(self.scrape_interval))
        return demo_rules.write(self.rule_files or default_files(), self.data_dir / "rules",
                                self.factor, floor, self.runbook_base())  # fmt: skip

    def _monitoring(self, rule_dir: Path) -> None:
        """Prometheus with the compiled rules, and Alertmanager routing to the receiver."""
        if not self.want_prometheus:
            return
        prom = self.programs["prometheus"] = demo_monitoring.Program.find("prometheus")
        if prom.path is None:
            log.warning("no prometheus program found: running without Prometheus "
                        "(apt-get install prometheus, or pass --no-prometheus)")  # fmt: skip
            return
        am_port = None
        if self.stack is not None:
            am = self.programs["alertmanager"] = demo_monitoring.Program.find(
                "alertmanager", "prometheus-alertmanager"
            )
            if am.path is not None:
                receiver = f"http://{HOST}:{self.ports.alerts}"
                config = demo_monitoring.alertmanager_config(receiver, self.factor)
                self.children["alertmanager"] = demo_monitoring.start_alertmanager(
                    am, self.data_dir, config, self.ports.alertmanager
                )
                am_port = self.ports.alertmanager
            else:
                log.warning("no alertmanager program found: the rule engine notifies directly")
        config = demo_monitoring.prometheus_config(
            scrape_jobs(self.ports), self.scrape_interval, rule_dir, am_port
        )
        self.children["prometheus"] = demo_monitoring.start_prometheus(
            prom, self.data_dir, config, self.ports.prometheus
        )

    def _rule_engine(self, files_: list[Path]) -> None:
        """The rules in local mode over the demo's own endpoints: alerts and actions without
        Prometheus (the embedded default)."""
        from poolwatch.rules.cli import EngineMetrics
        from poolwatch.rules.engine import Engine
        from poolwatch.rules.local import LocalSource, Target
        from poolwatch.rules.runner import RuleFiles
        from poolwatch.rules.state import StateStore

        targets = [Target(f"http://{HOST}:{port}/metrics", job)
                   for job, port in scrape_jobs(self.ports)]  # fmt: skip
        source = LocalSource(targets, scrape_interval=_seconds(self.scrape_interval))
        files = RuleFiles(files_)
        engine = Engine(files.load(), source, StateStore(self.data_dir / "rules.db"),
                        runbook_base=self.runbook_base())  # fmt: skip
        self.engine = engine
        from poolwatch.rules.web import serve as serve_engine

        # the engine's own pages (alerts, rules, metrics) under its own name
        self._serve(
            serve_engine(engine, EngineMetrics(engine).body, (HOST, self.ports.rules),
                         self.rules_interval),
            "rules-web",
        )  # fmt: skip
        source.start()
        self._stoppers.append(source.stop)

        def run() -> None:
            # Evaluate only once the source holds two scrapes: an evaluation over no samples
            # would resolve every alert that fired before a restart (and `rate` needs two).
            if not self._stop.wait(2.5 * _seconds(self.scrape_interval)):
                reload = lambda: files.maybe_reload(engine)  # noqa: E731
                engine.run(self.rules_interval, self.notifiers, self._stop,
                           before=reload, sinks=self.action_sinks)  # fmt: skip

        threading.Thread(target=run, name="rules", daemon=True).start()

    def _site(self) -> None:
        from poolwatch.app.demo_inbox import Inbox
        from poolwatch.app.demo_site import Site

        inbox = Inbox(self.data_dir / "inbox.sqlite")
        site = Site((HOST, self.ports.inbox), self, inbox)
        self.site = site
        self._serve(site, "demo-site")
        self._stoppers.append(inbox.close)

    def _drive(self) -> None:
        """Advance the simulation in real time (x speed), re-rendering the node-shaped metrics;
        run the scenario; save the pool every SAVE_EVERY seconds."""
        saved = time.monotonic()
        while not self._stop.wait(1.0):
            self.cluster.step(1.0 * self.speed)
            if self.scenario is not None:
                try:
                    self.scenario.tick()
                except Exception:  # isolation boundary: the story must not stop the pool
                    log.exception("scenario step failed")
            self.nodes.refresh()
            if time.monotonic() - saved >= SAVE_EVERY:
                self._save()
                saved = time.monotonic()

    def _save(self) -> None:
        try:
            sim_persist.save(self.cluster, self.data_dir / STATE_FILE)
            if self.scenario is not None:
                self.scenario.save()
        except OSError as err:
            log.warning("cannot save the simulated pool in %s: %s", self.data_dir, err)

    def _resume(self) -> None:
        """Take up the pool saved in DATA, if there is one for this seed."""
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return
        try:
            cluster = sim_persist.load(path, self.seed)
        except sim_persist.StateMismatch as err:
            log.warning("starting a new simulated pool: %s", err)
            return
        except (OSError, EOFError, ValueError, AttributeError, ImportError) as err:
            log.warning("starting a new simulated pool: cannot read %s (%s)", path, err)
            return
        self.cluster, self.nodes, self.resumed = cluster, SimulatedNodes(cluster), True
        log.info("resumed the simulated pool saved in %s", path)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every part. Call from the main thread (children die with the thread that
        started them, see demo_procs). DemoError when the data directory is in use."""
        self._lock_file = lock_data_dir(self.data_dir)
        self._resume()
        self._node_exporter()
        self._simulated_nodes()
        self._cluster_exporter()
        self._site()
        if self.acting:
            self._acting_parts()
        if self.with_scenario:
            from poolwatch.app.demo_scenario import Scenario

            ctl = self.stack.controller if self.stack is not None else None
            self.scenario = Scenario(self.cluster, self.data_dir / SCENARIO_FILE, ctl)
        threading.Thread(target=self._drive, name="simulation", daemon=True).start()
        scaled, rule_dir = self._rules()
        self._monitoring(rule_dir)
        if self.stack is not None and "alertmanager" not in self.children:
            self.notifiers.append(self.stack.notifier)  # no Alertmanager: the engine notifies
        self._rule_engine(scaled)
        self._write_info()

    def _acting_parts(self) -> None:
        """Notifications, controller and pool API, in-process. The log-only defaults go: a
        decision the real controller takes must not also be logged as "not taken"."""
        from poolwatch.app.demo_stack import Stack
        from poolwatch.rules.sinks import LogActionSink, LogNotifier

        self.stack = Stack(self.cluster, self.data_dir, HOST, self.ports,
                           interval=max(0.5, 10.0 / self.factor))  # fmt: skip
        self._stoppers.append(self.stack.stop)
        self.stack.start(f"http://{HOST}:{self.ports.prometheus}")
        self.notifiers[:] = [n for n in self.notifiers if not isinstance(n, LogNotifier)]
        self.action_sinks[:] = [s for s in self.action_sinks if not isinstance(s, LogActionSink)]
        self.action_sinks.append(self.stack.controller)

    def _write_info(self) -> None:
        """DATA/demo.json: how `poolwatch demo inject` finds this demo."""
        info = {"pid": __import__("os").getpid(), "site": f"http://{HOST}:{self.ports.inbox}",
                "urls": self.urls()}  # fmt: skip
        (self.data_dir / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    # -- what the site shows ---------------------------------------------------------------------
    def prometheus_url(self) -> str | None:
        return f"http://{HOST}:{self.ports.prometheus}" if "prometheus" in self.children else None

    def dashboard_span(self) -> float:
        """How much history a drawn dashboard shows: 15 minutes of real time, at least."""
        return 900.0

    def alert_states(self) -> list[Any]:
        return list(self.engine.alerts.values()) if self.engine is not None else []

    def scenario_struck(self) -> list[tuple[float, str, str]]:
        return list(self.scenario.struck) if self.scenario is not None else []

    def urls(self) -> dict[str, str]:
        p = self.ports
        site = f"http://{HOST}:{p.inbox}"
        out = {
            "demo home (start here)": f"{site}/",
            "node exporter (this host)": f"http://{HOST}:{p.node}/metrics",
            "simulated pool nodes": f"http://{HOST}:{p.simulated}/metrics",
            "cluster exporter": f"http://{HOST}:{p.cluster}/metrics",
            "pool events (JSON)": f"http://{HOST}:{p.cluster}/events",
            "rule engine (local mode)": f"http://{HOST}:{p.rules}/metrics",
            "the simulated pool (page)": f"{site}/pool",
            "rule engine alerts (page)": f"{site}/alerts",
        }
        if self.stack is not None:
            out.update(self.stack.urls())
        if "prometheus" in self.children:
            out["Prometheus"] = f"http://{HOST}:{p.prometheus}/alerts"
            out["dashboards (drawn live)"] = f"{site}/dashboards/"
        if "alertmanager" in self.children:
            out["Alertmanager (silences)"] = f"http://{HOST}:{p.alertmanager}/"
        return out

    def parts(self) -> list[tuple[str, str, str]]:
        """(name, URL, what it is) for the landing page."""
        what = {
            "the simulated pool (page)": "nodes and their status, pool events, training jobs, "
            "and the faults the scenario struck",
            "notifications delivered": "the inbox: every notification the alerts layer sent",
            "dashboards (drawn live)": "the Grafana dashboards drawn from Prometheus's data",
            "rule engine alerts (page)": "what the rules see: pending, firing, resolved",
            "Prometheus": "the real Prometheus: the rules it loaded and its alerts; its graph "
            "page runs any query",
            "Alertmanager (silences)": "the real Alertmanager: alert groups, silences",
            "controller (metrics)": "the controller: isolations, replacements, job restarts",
            "alerts receiver (status)": "the alerts receiver: what fires, delivery per target",
            "node exporter (this host)": "this machine's own metrics (disks, memory, CPU)",
            "simulated pool nodes": "the simulated nodes' metrics (GPUs, NPUs, disks)",
            "cluster exporter": "pools, nodes, training jobs and quotas as metrics",
            "pool events (JSON)": "the pool and node events as JSON",
            "rule engine (local mode)": "the local rule engine's own metrics",
        }
        out = []
        for name, url in self.urls().items():
            if name.startswith("demo home"):
                continue
            if name.startswith("pool API"):
                out.append(("pool API (try it)", url.split("/v2/")[0] + "/docs",
                            f"the pool REST API with its Swagger UI; the token is in "
                            f"{self.stack.api_token_file}"))  # fmt: skip
                continue
            out.append((name, url, what.get(name, "")))
        out.append(("docs and runbooks", f"{self.runbook_base()}/docs/",
                    "this repository's docs; every alert's runbook link opens here"))  # fmt: skip
        return out

    def summary_html(self) -> str:
        nodes = self.cluster.nodes()
        odd = [n for n in nodes if str(n.status) not in ("Available", "Spare")]
        lines = [f"Simulated time runs at {self.speed:g}x real time; the pool has {len(nodes)} "
                 f"nodes, {len(odd)} of them not in service."]  # fmt: skip
        lines += [f"{n.name} ({n.pool}) is {n.status}" + (f", fault code {n.fault_code}" if
                  n.fault_code else "") for n in odd]  # fmt: skip
        if self.scenario is not None:
            wait = max(0.0, (self.scenario.due() - self.cluster.now) / self.factor)
            nxt = self.scenario.fault(self.scenario.progress.done)
            lines.append(f"Next scripted fault: {nxt} in about {wait:.0f} s.")
        firing = [s for s in self.alert_states() if s.state == "firing"]
        lines.append(f"{len(firing)} alerts firing; {self.site.inbox.count()} notifications in "
                     "the inbox.")  # fmt: skip
        return "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"

    def stop(self) -> None:
        """Stop in the order data flows back: the loops, then Prometheus and Alertmanager (no
        scrape or alert into a part already gone), then the parts, then the servers."""
        self._stop.set()
        # Prometheus first: it stops scraping before the exporters go
        for name in ("prometheus", "alertmanager"):
            if (child := self.children.get(name)) is not None:
                child.stop()
        for fn in reversed(self._stoppers):
            try:
                fn()
            except Exception:  # stopping must go on for the other parts
                log.exception("stopping a demo part failed")
        for httpd in reversed(self._servers):
            httpd.shutdown()
            httpd.server_close()
        if self._lock_file is not None:
            self._save()
            self._lock_file.close()
            self._lock_file = None


__all__ = ["Demo", "Ports", "SimulatedNodes", "prometheus_config", "scrape_jobs"]
