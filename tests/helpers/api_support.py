"""Shared by the pool API and upgrade tests (no tests here): a simulated cluster with the real
`PoolController` over it, the app, and a stub Prometheus HTTP API that records its queries."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.cluster.simulated.spec import SimulationSpec
from poolwatch.controller.service import PoolController
from tests.helpers import free_port

TOKEN = "s3cret-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START = 1_760_000_000.0  # simulated time starts here (a fixed clock: same run, same objects)


def quiet_cluster(**overrides: Any) -> SimulatedCluster:
    """The demo's two pools, no random faults and no generated jobs: a test submits its own."""
    spec = SimulationSpec(fault_interval=None, jobs_per_hour=0.0, initial_jobs=0, **overrides)
    return SimulatedCluster(spec, clock=lambda: START)


def controller_over(cluster: SimulatedCluster, tmp: Path) -> PoolController:
    return PoolController(cluster, clock=lambda: cluster.now, state_path=tmp / "controller.db")


@dataclass
class StubPrometheus:
    """Answers /api/v1/query from `instant` (expression -> [(labels, value)]) and
    /api/v1/query_range with one series whose value at t is `range_value(expr, t)`."""

    instant: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    range_value: Callable[[str, float], float] = lambda expr, t: t % 1000
    queries: list[dict[str, str]] = field(default_factory=list)
    down: bool = False

    def handle(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.queries.append({"path": path} | params)
        if self.down:
            return 503, {"status": "error", "errorType": "unavailable", "error": "stub is down"}
        if path == "/api/v1/query":
            result = [{"metric": labels, "value": [float(params.get("time", 0)), str(v)]}
                      for labels, v in self.instant.get(params["query"], [])]  # fmt: skip
            return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
        start, end, step = (float(params[k]) for k in ("start", "end", "step"))
        values, t = [], start
        while t <= end + 1e-9:
            values.append([t, str(self.range_value(params["query"], t))])
            t += step
        result = [{"metric": {}, "values": values}] if values else []
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}


def start_stub(stub: StubPrometheus) -> ThreadingHTTPServer:
    """The stub on a free port, served from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            status, doc = stub.handle(url.path, params)
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def serve_stub(stub: StubPrometheus) -> Iterator[str]:
    """For a fixture: the stub's URL, and the server shut down after."""
    httpd = start_stub(stub)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def nodes_with_jobs_are_not_released(client: Any) -> None:
    """The pool API refuses to release a node that runs jobs, and a pool's last node, the same
    over every backend (the Kubernetes tests run it on the stub and on the real API server)."""
    from tests.api.test_api import P, error

    resp = client.post(f"{P}/pools/pool-h100-a/nodes/batch-delete",
                       json={"deleteNodeNames": ["gpu-node-08"]})  # fmt: skip
    (result,) = resp.json()["results"]
    assert result["outcome"] == "refused"
    assert "runs jobs" in result["detail"]
    only = {"deleteNodeNames": ["npu-node-03"]}
    body: Any = error(client.post(f"{P}/pools/pool-910b/nodes/batch-delete", json=only), 409,
                      "PW.0201")  # fmt: skip
    assert "last node" in body["error_msg"]


@contextlib.contextmanager
def api_over(cluster: Any, tmp: Path) -> Iterator[Any]:
    """The pool API's TestClient over a started Kubernetes backend (waited until healthy) with a
    real PoolController; the backend is stopped afterwards."""
    from fastapi.testclient import TestClient

    from poolwatch.api.app import create_app

    cluster.start()
    deadline = time.monotonic() + 30
    while not cluster.healthy() and time.monotonic() < deadline:
        time.sleep(0.02)
    controller = PoolController(cluster, state_path=tmp / "controller.db")
    app = create_app(controller, cluster, "http://127.0.0.1:9", TOKEN)
    try:
        with TestClient(app, headers=AUTH) as c:
            yield c
    finally:
        cluster.stop()
