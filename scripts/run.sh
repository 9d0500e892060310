#!/usr/bin/env bash
# Set up, then run poolwatch's main job on this machine: `poolwatch demo` (the node exporter for
# this host, a simulated GPU/NPU pool, the cluster exporter and, when Debian's prometheus is
# installed, Prometheus scraping them). It prints every URL; Ctrl-C stops it. State: var/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/poolwatch demo --data-dir var/demo "$@"
