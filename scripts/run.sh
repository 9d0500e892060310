#!/usr/bin/env bash
# Set up, then run poolwatch's main job on this host: the node exporter, with a cache directory
# under var/ so the cache series have something to show. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p var/cache
exec .venv/bin/poolwatch node-exporter --listen "${POOLWATCH_LISTEN:-127.0.0.1:9476}" \
  --cache-dir var/cache --compat modelarts "$@"
