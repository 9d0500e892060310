"""`poolwatch cluster-exporter`, the real process, against the real kube-apiserver: the figures
of the hand-built pool after a real list and watch, `poolwatch_cluster_up 0` and no figures
while the API server cannot be reached (a TCP proxy refuses), and after it returns nothing
stale: what changed meanwhile is what is served."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from controlplane import TestCluster
from controlplane_seed import seed_handbuilt
from helpers import Series, free_port, parse, value
from tcpproxy import TcpProxy

pytestmark = pytest.mark.controlplane
FIGURES = (
    "poolwatch_pool_",
    "poolwatch_cluster_node_",
    "poolwatch_training_job_",
    "poolwatch_quota_",
)


def scrape(port: int) -> Series | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        conn.close()
    except OSError:
        return None
    return parse(body)


def poll(
    port: int,
    want_up: float,
    check: Callable[[Series], bool] = lambda s: True,
    timeout: float = 60.0,
    log: Path | None = None,
) -> Series:
    deadline = time.monotonic() + timeout
    last: Series | None = None
    while time.monotonic() < deadline:
        last = scrape(port)
        if last is not None and value(last, "poolwatch_cluster_up") == want_up and check(last):
            return last
        time.sleep(0.1)
    health = sorted(k for k in (last or {}) if k[0].startswith("poolwatch_cluster"))
    said = log.read_text(errors="replace")[-3000:] if log else ""
    pytest.fail(
        f"poolwatch_cluster_up never became {want_up} (with the check); last: {health}\n{said}"
    )


@contextlib.contextmanager
def exporter(kubeconfig: Path, log: Path) -> Iterator[int]:
    """`poolwatch cluster-exporter` on a free port; yields the port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poolwatch.app.cli", "cluster-exporter", "--kubeconfig",
             str(kubeconfig), "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode is not None


def nodes_in(series: Series, pool: str) -> float:
    return sum(v for (n, ls), v in series.items()
               if n == "poolwatch_pool_nodes" and ("pool", pool) in ls)  # fmt: skip


def test_the_exporter_serves_the_real_cluster_and_nothing_stale_across_an_outage(
    kube: TestCluster, tmp_path: Path
) -> None:
    seed_handbuilt(kube)
    with TcpProxy(kube.plane.port) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", proxy.url)
        log = tmp_path / "exporter.log"
        with exporter(config, log) as port:
            s = poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 2, log=log)
            assert value(s, "poolwatch_pool_nodes", pool="pool-h100-a", status="Available") == 2
            assert value(s, "poolwatch_pool_nodes", pool="pool-910b", status="Isolated") == 1
            jobs = {
                dict(ls).get("training_job")
                for (n, ls), _ in s.items()
                if n.startswith("poolwatch_training_job")
            }
            assert {"bert-large-ft", "gpt-pretrain", "sweep-17"} <= jobs
            # the events the API server stored, on /events
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/events?reason=NodeNotReady")
            events = json.loads(conn.getresponse().read())["events"]
            conn.close()
            assert [(e["kind"], e["name"], e["pool"]) for e in events] == [
                ("Node", "gpu-node-08", "pool-h100-a")]  # fmt: skip
            # the API server becomes unreachable: up 0 and no figures at all
            proxy.refuse()
            s = poll(port, 0)
            assert not [k for k in s if k[0].startswith(FIGURES)]
            kube.api.delete("/api/v1/nodes/gpu-node-08")  # what happens meanwhile
            proxy.allow()
            s = poll(port, 1, lambda s: nodes_in(s, "pool-h100-a") == 1)
            assert value(s, "poolwatch_pool_nodes", pool="pool-h100-a", status="Available") == 1
