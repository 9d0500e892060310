"""poolwatch exporters: the node exporter (per node) and the cluster exporter (pools, nodes,
jobs)."""
