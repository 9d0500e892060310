"""The demo's addresses and the simulated nodes' endpoint: which part listens where, and what
Prometheus and the local rule engine scrape.

The ten ports follow the port table every part uses (`poolwatch.core.ports`), moved to
`--port-base`; the simulated nodes' exposition is rendered once per simulation step.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
from dataclasses import dataclass
from typing import ClassVar

from poolwatch.app import demo_monitoring
from poolwatch.app.demo_node_metrics import exposition
from poolwatch.cluster.simulated.backend import SimulatedCluster
from poolwatch.core.ports import port


@dataclass(frozen=True)
class Ports:
    """The demo's ten ports: the port table (poolwatch.core.ports) moved to `--port-base`."""

    node: int
    cluster: int
    simulated: int
    prometheus: int
    rules: int
    alerts: int
    controller: int
    api: int
    inbox: int
    alertmanager: int

    #: field -> the port table's name for it
    NAMES: ClassVar[dict[str, str]] = {
        "node": "node-exporter", "cluster": "cluster-exporter", "simulated": "simulated-nodes",
        "inbox": "demo",
    }  # fmt: skip

    @classmethod
    def from_base(cls, base: int) -> Ports:
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**{f: port(cls.NAMES.get(f, f), base) for f in fields})


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
    """Scrape configuration only (no rules, no Alertmanager): what a test's Prometheus needs."""
    return demo_monitoring.prometheus_config(scrape_jobs(ports), interval)
