"""A real Prometheus scrapes `poolwatch demo`; PromQL answers equal the simulator's truth.

The simulation is frozen (speed 0) once started, so the truth cannot move between the moment
Prometheus scrapes and the moment the test reads the simulator."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import free_port

from poolwatch.demo import Demo

from .conftest import prom_query

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("prometheus"), reason="Debian package prometheus missing"),
]


def _free_block() -> int:
    for _ in range(50):
        base = free_port()
        if all(_port_free(base + i) for i in range(4)):
            return base
    pytest.fail("no four free consecutive ports")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _vector(base: str, expr: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(r["metric"].get(k, "") for k in keys): float(r["value"][1])
        for r in prom_query(base, expr)
    }


def test_promql_over_the_demo_matches_the_simulation(tmp_path: Path) -> None:
    demo = Demo(_free_block(), tmp_path / "demo", speed=0.0, scrape_interval="1s")
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
