"""Every port poolwatch listens on by default, in one table the parts and the demo both read.

A part serving on its own listens on its port here (`poolwatch rules run` on 9480, ...); the demo
puts the whole stack on ten consecutive ports from `--port-base N` and keeps the same order, so
with the default base every part answers on the same port in the demo as on its own, and a client
command's default (`poolwatch rules alerts`, `poolwatch alerts status`) reaches the right server
in both.
"""

from __future__ import annotations

#: the default base: the node exporter's port, registered for poolwatch's range
BASE = 9476

#: name -> offset from BASE. The parts first, then what only the demo runs.
OFFSETS: dict[str, int] = {
    "node-exporter": 0,
    "cluster-exporter": 1,
    "simulated-nodes": 2,  # demo: the simulated pool's node-exporter-shaped metrics
    "prometheus": 3,  # demo: the Prometheus it starts
    "rules": 4,  # the rule engine's pages and metrics
    "alerts": 5,  # the alerts receiver
    "controller": 6,
    "api": 7,  # the pool REST API
    "demo": 8,  # demo: its own site (home page, inbox, pool, dashboards)
    "alertmanager": 9,  # demo: the Alertmanager it starts
}
#: how many consecutive ports the demo takes
SPAN = len(OFFSETS)


def port(name: str, base: int = BASE) -> int:
    """The port of `name` (a key of OFFSETS) for a stack whose first port is `base`."""
    return base + OFFSETS[name]


def listen(name: str, host: str = "0.0.0.0") -> str:
    """The default `--listen` of a serving part, e.g. listen("rules") == "0.0.0.0:9480"."""
    return f"{host}:{port(name)}"
