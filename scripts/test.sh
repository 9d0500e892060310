#!/usr/bin/env bash
# Set up, then run every check CI runs: ruff (lint and format) and the whole pytest suite,
# integration tests with the real Prometheus and promtool included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-tools
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
