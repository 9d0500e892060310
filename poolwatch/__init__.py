"""poolwatch: monitoring, alerting and fault handling for GPU/NPU training pools.

One package, four floors:
- `poolwatch.core`: what every part shares (metric catalog, configuration, action interface,
  HTTP server, exposition); it imports nothing above it;
- `poolwatch.cluster`: the cluster interface with its `kubernetes` and `simulated` backends;
- the parts, which never import each other: `poolwatch.exporters` (node and cluster exporters),
  `poolwatch.rules` (rule engine), `poolwatch.alerts` (notifications), `poolwatch.dashboards`
  (Grafana dashboards), `poolwatch.controller` (fault handling and the pool API);
- `poolwatch.app`: the `poolwatch` command and the demo, which wire the parts together.
In the source checkout each part keeps its own top-level folder (exporters/, rules/, ...),
linked into this package.
"""

__version__ = "0.1.0"
