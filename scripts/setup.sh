#!/usr/bin/env bash
# Set up everything poolwatch needs on a fresh Debian/Ubuntu machine, idempotently:
# Debian's prometheus, alertmanager and node_exporter (the demo and the tests run the real ones),
# chromium (headless, for the page tests),
# then a .venv with poolwatch (its runtime only, as the demo needs it). Safe to run again; fast
# when nothing is missing.
#
#   --with-tools  also install the test tools into .venv (pytest, ruff, import-linter, ...) and
#                 build (once, cached) the pinned programs the tests run: kube-apiserver, etcd,
#                 kube-state-metrics, Helm, Prometheus 3, promtool, Alertmanager, amtool, and the
#                 Prometheus Operator's CRDs (generated with controller-gen)
#                 (scripts/tools.sh; the first build takes a while, later runs reuse the cache)
set -euo pipefail
cd "$(dirname "$0")/.."
with_tools=0
for arg in "$@"; do
  case "$arg" in
    --with-tools) with_tools=1 ;;
    *) echo "setup: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

# chromium: the page tests look at every page the way a browser draws it (headless)
debs=(prometheus prometheus-alertmanager prometheus-node-exporter python3-venv chromium)
missing=()
for d in "${debs[@]}"; do dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts the services it installs; poolwatch's tests start their own on free ports.
    for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
      (command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1) || true
    done
  else
    echo "setup: not root, so not installing ${missing[*]}; tests that need them will be skipped" >&2
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$py" -m venv .venv
fi
# the runtime for the demo; the test tools too with --with-tools (one stamp each: a .venv with the
# test tools has the runtime as well)
target=. stamp=.venv/.poolwatch-installed what="poolwatch"
if ((with_tools)); then
  target=".[test]" stamp=.venv/.poolwatch-installed-test what="poolwatch and its test tools"
elif [ -f .venv/.poolwatch-installed-test ] && [ ! pyproject.toml -nt .venv/.poolwatch-installed-test ]; then
  stamp=.venv/.poolwatch-installed-test
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing $what into .venv" >&2
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -e "$target"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup: pip install failed; the whole log is in $log" >&2
    exit 1
  fi
  touch "$stamp"
fi

if ((with_tools)); then
  bash scripts/tools.sh
fi
