#!/usr/bin/env bash
# Set up, then run poolwatch's main job on this machine: `poolwatch demo` (the node exporter for
# this host, a simulated GPU/NPU pool, the cluster exporter, Prometheus when Debian's prometheus
# is installed, the rule engine in local mode, the alerts layer delivering to a demo inbox, the
# controller and the pool API). It prints every URL; Ctrl-C stops it. State: var/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/poolwatch demo --data-dir var/demo "$@"
