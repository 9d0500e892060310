"""The engine in local mode and a real Prometheus with the compiled rules fire the same alerts.

One simulated pool (node-shaped metrics and the cluster exporter on 127.0.0.1), scraped every
second by both; the shipped rules at a 2 s group interval (a test copy: `periods` become short
`for`s). Faults are injected (full cache disk, ECC burst, node NotReady); both sides must then
hold exactly the same set of firing alerts, label for label, and each injected fault's alert
must show on both sides within one evaluation interval (plus one scrape) of each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from poolwatch.app.demo_endpoints import SimulatedNodes
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import SimulationSpec
from poolwatch.core.web.config import WebConfig
from poolwatch.exporters.cluster.app import ClusterExporter, serve_cluster
from poolwatch.exporters.cluster.settings import ClusterExporterSettings
from poolwatch.exporters.node.server import serve
from poolwatch.rules import compile as compiler
from poolwatch.rules.engine import Engine
from poolwatch.rules.loader import default_files, load
from poolwatch.rules.local import LocalSource, Target
from poolwatch.rules.state import StateStore
from tests.helpers import free_port
from tests.helpers.prom_versions import Prometheus

from .conftest import get_json, process

pytestmark = pytest.mark.integration

INTERVAL = 2.0  # rule group interval, seconds
SCRAPE = 1.0
Alert = frozenset[tuple[str, str]]  # labels, and ("annotation", "key=rendered text")


def _local_firing(engine: Engine) -> set[Alert]:
    with engine._lock:
        return {frozenset(a.labels.items()) | frozenset(("annotation", f"{k}={v}")
                                                        for k, v in a.annotations.items())
                for a in engine.alerts.values() if a.state == "firing"}  # fmt: skip


def _prom_firing(base: str) -> set[Alert]:
    doc = get_json(f"{base}/api/v1/alerts")
    return {frozenset(a["labels"].items()) | frozenset(("annotation", f"{k}={v}")
                                                     for k, v in a["annotations"].items())
            for a in doc["data"]["alerts"]
            if a["state"] == "firing"}  # fmt: skip


class Pool:
    """The simulated pool's two endpoints, frozen in time except when the test steps it."""

    def __init__(self) -> None:
        spec = SimulationSpec(seed=7, fault_interval=None, repair_seconds=None, jobs_per_hour=0)
        self.cluster = SimulatedCluster(spec)
        self.nodes = SimulatedNodes(self.cluster)
        self.sim_port, self.cluster_port = free_port(), free_port()
        self.exporter = ClusterExporter(
            self.cluster,
            ClusterExporterSettings(listen=f"127.0.0.1:{self.cluster_port}", backend="simulated"),
        )
        self.servers = [
            serve(self.nodes, ("127.0.0.1", self.sim_port), WebConfig(),  # type: ignore[arg-type]
                  lambda: (True, "ok\n")),
            serve_cluster(self.exporter, ("127.0.0.1", self.cluster_port), WebConfig()),
        ]  # fmt: skip

    def start(self) -> None:
        self.exporter.start()
        for httpd in self.servers:
            threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()
        self.exporter.stop()

    def targets(self) -> list[Target]:
        sim, cluster = self.sim_port, self.cluster_port
        return [
            Target(f"http://127.0.0.1:{sim}/metrics", "poolwatch-simulated-nodes"),
            Target(f"http://127.0.0.1:{cluster}/metrics", "poolwatch-cluster"),
        ]


@pytest.fixture
def pool() -> Iterator[Pool]:
    p = Pool()
    p.start()
    yield p
    p.stop()


def _prometheus_config(tmp_path: Path, pool: Pool, rules: Path) -> Path:
    lines = [f"global: {{scrape_interval: {SCRAPE:g}s, evaluation_interval: {INTERVAL:g}s}}",
             f"rule_files: ['{rules}']", "scrape_configs:"]  # fmt: skip
    for t in pool.targets():
        lines += [f"  - job_name: {t.job}", "    honor_labels: true",
                  f"    static_configs: [{{targets: ['{t.instance}']}}]"]  # fmt: skip
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def test_local_engine_and_prometheus_fire_the_same_alerts(
    pool: Pool, tmp_path: Path, prom: Prometheus
) -> None:
    groups = [g.group.model_copy(update={"interval": f"{INTERVAL:g}s"})
              for g in load(default_files())]  # fmt: skip
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [compiler.group_dict(g) for g in groups]}))
    port = free_port()
    cmd = [prom.prometheus, f"--config.file={_prometheus_config(tmp_path, pool, rules)}",
           f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
           "--log.level=warn"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    source = LocalSource(pool.targets(), scrape_interval=SCRAPE)
    engine = Engine(groups, source, StateStore(tmp_path / "rules.db"))
    assert engine.refused == {}
    stop = threading.Event()
    with process(cmd, tmp_path / "prometheus.log", f"{base}/-/ready"):
        source.start()
        runner = threading.Thread(target=engine.run, args=(INTERVAL, [], stop), daemon=True)
        runner.start()
        try:
            _warm(base, deadline=20)
            _agree(engine, base, deadline=20)  # the healthy pool (whatever it already fires)
            gpu = next(n.name for n in pool.cluster.nodes() if n.pool == "gpu-a")
            nodes = [n.name for n in pool.cluster.nodes() if n.pool == "gpu-a"]
            pool.cluster.inject("cache_full", nodes[0])
            pool.cluster.inject("ecc", gpu, 0)
            pool.cluster.inject("not_ready", nodes[2])
            # an ECC burst: each simulated minute adds errors and retires pages past 64
            pool.cluster.step(180)
            pool.nodes.refresh()
            want = {
                ("PoolwatchNodeCacheSpaceAlmostFull", nodes[0]),
                ("PoolwatchGpuRetiredPagesHigh", gpu),
                ("PoolwatchNodeNotReady", nodes[2]),
            }
            first = _first_seen(engine, base, want, deadline=25)
            for key, (t_local, t_prom) in first.items():
                assert abs(t_local - t_prom) <= INTERVAL + SCRAPE + 0.5, (key, first)
            both = _agree(engine, base, deadline=20)  # two evaluations apart at most, under load
            assert {(dict(a)["alertname"], dict(a).get("node")) for a in both} >= want
            pool.cluster.heal(nodes[0], "cache_full")  # resolves on both sides (hysteresis)
            pool.nodes.refresh()
            healed = ("PoolwatchNodeCacheSpaceAlmostFull", nodes[0])
            _until_resolved(engine, base, healed, deadline=20)
            after = _agree(engine, base, deadline=20)
            assert healed not in {(dict(a)["alertname"], dict(a).get("node")) for a in after}
        finally:
            stop.set()
            source.stop()
            runner.join(timeout=10)


def _warm(base: str, deadline: float) -> None:
    """Wait until Prometheus has scraped both targets a few times (its scrape loops start at a
    random offset), so a fault injected next is seen by both sides from the same point."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        doc = get_json(f"{base}/api/v1/query?query=count_over_time(up[10s])")
        counts = [float(r["value"][1]) for r in doc["data"]["result"]]
        if len(counts) == 2 and min(counts) >= 3:
            return
        time.sleep(0.5)
    pytest.fail("Prometheus did not scrape both targets in time")


def _until_resolved(engine: Engine, base: str, key: tuple[str, str], deadline: float) -> None:
    """Wait until the healed fault's alert has stopped firing on both sides.

    Agreement alone is not enough here: right after the heal both sides may still agree that it
    fires (the next scrape and evaluation have not happened yet), and under load that agreement
    can hold for two polls in a row."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        firing = [{(dict(a)["alertname"], dict(a).get("node")) for a in side}
                  for side in (_local_firing(engine), _prom_firing(base))]  # fmt: skip
        if all(key not in side for side in firing):
            return
        time.sleep(0.5)
    pytest.fail(f"{key} still firing {deadline:g} s after the heal: local/Prometheus {firing}")


def _agree(engine: Engine, base: str, deadline: float) -> set[Alert]:
    """Poll until both sides hold the same firing alerts on two polls in a row."""
    end, last = time.monotonic() + deadline, None
    local: set[Alert] = set()
    prom: set[Alert] = set()
    while time.monotonic() < end:
        local, prom = _local_firing(engine), _prom_firing(base)
        if local == prom and local == last:
            return local
        last = local if local == prom else None
        time.sleep(0.5)
    only_local = [dict(a) for a in local - prom]
    only_prom = [dict(a) for a in prom - local]
    pytest.fail(f"no agreement: only local {only_local}\nonly Prometheus {only_prom}")


def _first_seen(
    engine: Engine, base: str, want: set[tuple[str, str]], deadline: float
) -> dict[tuple[str, str], tuple[float, float]]:
    """When each wanted (alertname, node) first fired locally and in Prometheus."""
    seen: dict[str, dict[tuple[str, str], float]] = {"local": {}, "prom": {}}
    start = time.monotonic()
    end = start + deadline
    while time.monotonic() < end:
        now = time.monotonic() - start
        for side, alerts in (("local", _local_firing(engine)), ("prom", _prom_firing(base))):
            for a in alerts:
                d = dict(a)
                key = (d["alertname"], d.get("node", ""))
                if key in want:
                    seen[side].setdefault(key, now)
        if all(len(s) == len(want) for s in seen.values()):
            return {k: (seen["local"][k], seen["prom"][k]) for k in want}
        time.sleep(0.2)
    pytest.fail(f"not all fired in {deadline}s: {seen}")
