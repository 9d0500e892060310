"""The cluster exporter: pools, nodes, training jobs, quotas and events of a pool's cluster.

It consumes `ClusterBackend.watch()` (Kubernetes or simulated, `poolwatch.cluster`) and keeps each
object's exposition lines ready as events arrive (`store.py`, after kube-state-metrics), so a
scrape only joins bytes. One generator module per kind (`generators/`), pool totals kept
incrementally (`aggregate.py`), events counted and the last ones served at /events (`events.py`).
"""
