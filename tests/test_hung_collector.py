"""A collector that sleeps forever leaves /metrics answering, fast, with the others' data."""

import http.client
import threading
import time
from collections.abc import Iterator

from helpers import FIXTURES, parse, value
from prometheus_client.core import Metric

from poolwatch.exporters.node.collector import families
from poolwatch.exporters.node.collectors.infiniband import InfinibandCollector
from poolwatch.exporters.node.runner import Runner
from poolwatch.exporters.node.server import serve
from poolwatch.exporters.node.settings import _IncludeExclude
from poolwatch.exporters.node.store import ExpositionStore
from poolwatch.exporters.node.webconfig import WebConfig


class Sleeper:
    name, interval, timeout = "nfs", 0.3, 0.2

    def __init__(self) -> None:
        self.forever = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.forever.wait()  # never set: a collector stuck for good
        yield from families(self.name).values()


def test_hung_collector_leaves_metrics_answering() -> None:
    sleeper = Sleeper()
    ib = InfinibandCollector(_IncludeExclude(interval=0.3, timeout=0.2), FIXTURES / "sys")
    store = ExpositionStore({"node": "n1", "pool": "p1"})
    runner = Runner([sleeper, ib], store)
    httpd = serve(store, ("127.0.0.1", 0), WebConfig(), lambda: (store.live()[0], ""))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    runner.start()
    try:
        time.sleep(0.8)  # a few intervals: the sleeper timed out at least twice by now
        latencies = []
        for _ in range(20):
            t0 = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=2)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            latencies.append(time.monotonic() - t0)
            assert resp.status == 200
        s = parse(body)
        assert value(s, "poolwatch_collector_up", collector="nfs") == 0
        assert value(s, "poolwatch_collector_errors_total", collector="nfs") >= 2
        assert value(s, "poolwatch_collector_up", collector="infiniband") == 1
        assert value(s, "poolwatch_infiniband_port_state", device="mlx5_0") == 4
        assert max(latencies) < 0.5  # answered from the store, not waiting on the sleeper
        assert store.live()[0]
        stuck = [t for t in threading.enumerate() if t.name == "run-nfs"]
        assert len(stuck) == 1  # one stuck thread, never a pile
    finally:
        runner.stop()
        httpd.shutdown()
        httpd.server_close()
