"""poolwatch exporters: the node exporter (per node) and, later, the cluster exporter."""
