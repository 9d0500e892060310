"""A real Prometheus scrapes `poolwatch demo`; PromQL answers equal the simulator's truth.

The simulation is frozen (speed 0) once started, so the truth cannot move between the moment
Prometheus scrapes and the moment the test reads the simulator."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import free_block

from poolwatch.app.demo import Demo
from poolwatch.core.actions import ActionResult, AlertMessage, NodeAction

from .conftest import prom_query

pytestmark = pytest.mark.integration
needs_prometheus = pytest.mark.skipif(
    not shutil.which("prometheus"), reason="Debian package prometheus missing"
)


def _vector(base: str, expr: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1])
        for r in prom_query(base, expr)
    }


@needs_prometheus
def test_promql_over_the_demo_matches_the_simulation(tmp_path: Path) -> None:
    demo = Demo(free_block(), tmp_path / "demo", speed=0.0, scrape_interval="1s")
    demo.start()
    try:
        assert demo.prometheus is not None
        base = f"http://127.0.0.1:{demo.ports.prometheus}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ups = _vector(base, "up", "job")
                ready = _vector(base, "poolwatch_cluster_up", "job")
            except OSError:
                ups, ready = {}, {}
            if len(ups) == 3 and all(v == 1 for v in ups.values()) and ready:
                break
            time.sleep(0.5)
        assert ups == {
            ("poolwatch-node",): 1, ("poolwatch-simulated-nodes",): 1, ("poolwatch-cluster",): 1,
        }  # fmt: skip
        cluster = demo.cluster
        nodes = Counter((n.pool, str(n.status)) for n in cluster.nodes())
        got = _vector(base, "poolwatch_pool_nodes > 0", "pool", "status")
        assert got == {k: float(v) for k, v in nodes.items()}
        jobs = Counter(str(j.status) for j in cluster.jobs())
        got_jobs = _vector(base, "sum by (status) (poolwatch_training_job_status) > 0", "status")
        assert got_jobs == {(k,): float(v) for k, v in jobs.items()}
        quota_truth = {
            (q.namespace, q.name, res): used
            for q in cluster.quotas() for res, used in q.used if used
        }  # fmt: skip
        got_quota = _vector(base, "poolwatch_quota_used > 0", "namespace", "quota", "resource")
        assert got_quota == quota_truth
        devices = _vector(base, "count by (vendor) (poolwatch_accelerator_up)", "vendor")
        assert devices == {("nvidia",): 64.0, ("huawei",): 32.0}
        host = _vector(base, 'poolwatch_collector_up{job="poolwatch-node"}', "collector")
        assert host
        assert all(v == 1 for v in host.values())
    finally:
        demo.stop()


CACHE_RULE = """\
group: demo-test
interval: 1s
rules:
  - name: PoolwatchDemoCacheFull
    expr: poolwatch_filesystem_used_ratio{purpose="cache"}
    op: ">"
    threshold: 0.95
    periods: 1
    severity: major
    annotations: {summary: cache full, description: d, runbook: r}
    actions: [notify, replace]
"""


class _Notifier:
    def __init__(self) -> None:
        self.messages: list[AlertMessage] = []

    def notify(self, messages: list[AlertMessage]) -> bool:
        self.messages += messages
        return True


class _Sink:
    def __init__(self) -> None:
        self.actions: list[NodeAction] = []

    def submit(self, action: NodeAction) -> ActionResult:
        self.actions.append(action)
        return ActionResult("done")


def test_demo_rule_engine_fires_on_the_simulated_pool_and_hands_on_actions(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "cache.yaml"
    rules.write_text(CACHE_RULE)
    demo = Demo(free_block(), tmp_path / "demo", prometheus=False, speed=0.0,
                scrape_interval="1s", rules_interval=0.5, rule_files=[rules])  # fmt: skip
    notifier, sink = _Notifier(), _Sink()
    demo.notifiers.append(notifier)
    demo.action_sinks[:] = [sink]
    demo.start()
    try:
        assert demo.urls()["rule engine (local mode)"].endswith(f":{demo.ports.rules}/metrics")
        node = next(n.name for n in demo.cluster.nodes() if n.pool == "gpu-a")
        demo.cluster.inject("cache_full", node)
        demo.nodes.refresh()
        deadline = time.monotonic() + 20
        while not sink.actions and time.monotonic() < deadline:
            time.sleep(0.2)
        [action] = sink.actions
        assert (action.kind, action.node, action.pool) == ("replace", node, "gpu-a")
        assert [(m.kind, m.labels["node"]) for m in notifier.messages] == [("firing", node)]
        assert (tmp_path / "demo" / "rules.db").exists()
        body = _get(demo.urls()["rule engine (local mode)"])
        assert 'poolwatch_rules_alerts{state="firing"} 1.0' in body
    finally:
        demo.stop()


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_acting_demo_delivers_isolates_replaces_and_serves_the_pool_api(tmp_path: Path) -> None:
    """The demo's acting half end to end: a full cache disk fires the rule, the alerts layer
    delivers the notification to the demo inbox through apprise, the controller (dry-run off in
    the demo) isolates the node and starts its replacement from a spare, the API lists pools."""
    import json
    import urllib.request

    rules = tmp_path / "cache.yaml"
    rules.write_text(CACHE_RULE)
    demo = Demo(free_block(), tmp_path / "demo", prometheus=False, speed=0.0,
                scrape_interval="1s", rules_interval=0.5, rule_files=[rules],
                acting=True)  # fmt: skip
    demo.start()
    try:
        urls = demo.urls()
        node = next(n.name for n in demo.cluster.nodes() if n.pool == "gpu-a")
        demo.cluster.inject("cache_full", node)
        demo.nodes.refresh()
        inbox: dict = {"count": 0}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            inbox = json.loads(_get(urls["notifications delivered"] + ".json"))
            states = {n.name: str(n.status) for n in demo.cluster.nodes()}
            titles = [m["title"] for m in inbox["messages"]]
            if len(titles) >= 2 and states[node] != "Available":
                break
            time.sleep(0.3)
        # the rule's own alert, and the controller's notice that it replaced the node
        assert any("PoolwatchDemoCacheFull" in t and node in t for t in titles), titles
        assert any("PoolwatchControllerNodeReplaced" in t and node in t for t in titles), titles
        assert states[node] != "Available"
        assert demo.stack.controller.node_state(node) in {"Isolated", "Replacing", "Repairing"}
        assert "poolwatch_controller_" in _get(urls["controller (metrics)"])
        token = (tmp_path / "demo" / "api-token").read_text().strip()
        [api] = [u for k, u in urls.items() if k.startswith("pool API")]
        req = urllib.request.Request(api, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            pools = json.loads(resp.read())
        assert "gpu-a" in json.dumps(pools)
    finally:
        demo.stop()
