#!/usr/bin/env bash
# Set up, then run poolwatch's main job on this machine: `poolwatch demo`, the whole stack over a
# simulated GPU/NPU pool, telling its story (a GPU lost within the first minute, the node isolated
# and replaced by a spare, its jobs restarted, the notifications in an inbox, more faults every
# few minutes). Open the printed home page (http://127.0.0.1:9484/) first. Ctrl-C or closing the
# terminal stops it; a restart resumes the same pool. State: var/demo. Extra arguments go to
# `poolwatch demo` (e.g. --speed 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/poolwatch demo --data-dir var/demo "$@"
