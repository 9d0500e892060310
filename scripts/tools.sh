#!/usr/bin/env bash
# Build (or find in the cache) the pinned programs poolwatch is tested against, from their
# published Go modules, with this machine's Go toolchain (1.26 or newer).
#
#   bash scripts/tools.sh                  build what is missing, print where everything is
#   bash scripts/tools.sh --print-bin-dir  the same; the last line is the directory that holds
#                                          every tool by its usual name (kube-apiserver, etcd, ...)
#   bash scripts/tools.sh --only helm,etcd build only these
#   bash scripts/tools.sh --list           the pinned table, nothing built
#
# Besides the programs, the Prometheus Operator's CustomResourceDefinitions (ServiceMonitor,
# PodMonitor, PrometheusRule, AlertmanagerConfig, ...) are generated with the pinned
# controller-gen from the operator's published Go API module, into $POOLWATCH_TOOLS_DIR/crds/
# prometheus-operator/ (the chart's install tests load them into the API server).
#
# Each tool is built once into $POOLWATCH_TOOLS_DIR (default ~/.cache/poolwatch/tools) as
# <name>-<version>/<binary>; later runs reuse it, so a pin change builds only what changed. Each
# build happens in its own small wrapper module, so the tools' dependency versions never meet.
# Nothing built here is committed; the Go module cache and build cache are Go's own.
set -euo pipefail

TOOLS_DIR=${POOLWATCH_TOOLS_DIR:-$HOME/.cache/poolwatch/tools}

# name | version | module | main package | binary | extra ldflags (version stamps)
# Versions were chosen as the newest the Go module proxy served that build with Go 1.26 and
# agree with each other (kube-apiserver 1.36 talks to etcd 3.6; Helm 4.3 brings client-go 0.36).
# Alertmanager stays at 0.31.1: from 0.32 on, its web UI is compiled into the binary from a
# JavaScript build (ui/app/dist) that the published Go module does not contain, so
# 0.32.1, 0.33.1, 0.34.2 and 0.35.0 fail with "pattern app/dist: no matching files found";
# 0.31 is the newest release whose UI is committed as Go source.
PINS=$(cat <<'EOF'
etcd|v3.6.17|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3|etcd|-X go.etcd.io/etcd/api/v3/version.GitSHA=poolwatch
kube-apiserver|v1.36.3|k8s.io/kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|kube-apiserver|-X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean
kube-state-metrics|v2.19.1|k8s.io/kube-state-metrics/v2|k8s.io/kube-state-metrics/v2|kube-state-metrics|-X github.com/prometheus/common/version.Version=2.19.1
kwok|v0.8.0|sigs.k8s.io/kwok|sigs.k8s.io/kwok/cmd/kwok|kwok|-X sigs.k8s.io/kwok/pkg/consts.Version=0.8.0
helm|v4.3.2|helm.sh/helm/v4|helm.sh/helm/v4/cmd/helm|helm|-X helm.sh/helm/v4/internal/version.version=v4.3.2
prometheus|v0.316.0|github.com/prometheus/prometheus|github.com/prometheus/prometheus/cmd/prometheus|prometheus|-X github.com/prometheus/common/version.Version=3.16.0
promtool|v0.316.0|github.com/prometheus/prometheus|github.com/prometheus/prometheus/cmd/promtool|promtool|-X github.com/prometheus/common/version.Version=3.16.0
alertmanager|v0.31.1|github.com/prometheus/alertmanager|github.com/prometheus/alertmanager/cmd/alertmanager|alertmanager|-X github.com/prometheus/common/version.Version=0.31.1
amtool|v0.31.1|github.com/prometheus/alertmanager|github.com/prometheus/alertmanager/cmd/amtool|amtool|-X github.com/prometheus/common/version.Version=0.31.1
controller-gen|v0.23.0|sigs.k8s.io/controller-tools|sigs.k8s.io/controller-tools/cmd/controller-gen|controller-gen|-X sigs.k8s.io/controller-tools/pkg/version.version=v0.23.0
EOF
)

# The Prometheus Operator's CRDs: generated (not built) by generate_operator_crds below from
# this module at this version; --only prometheus-operator-crds selects them.
OPERATOR_CRDS_VERSION=v0.95.2
OPERATOR_CRDS_MODULE=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring

only=""
print_bin=0
while (($#)); do
  case "$1" in
    --print-bin-dir) print_bin=1 ;;
    --only=*) only=${1#--only=} ;;
    --only) only=${2:?--only takes a comma-separated list of tool names}; shift ;;
    --list) printf '%s\n' "$PINS" | awk -F'|' '{printf "%-20s %-10s %s\n", $1, $2, $4}'
            printf '%-20s %-10s %s\n' prometheus-operator-crds "$OPERATOR_CRDS_VERSION" \
              "$OPERATOR_CRDS_MODULE/... (controller-gen crd)"
            exit 0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tools: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# A distribution's older Go earlier on PATH must not shadow the official toolchain.
if [ -x /usr/local/go/bin/go ]; then PATH=/usr/local/go/bin:$PATH; fi
if ! command -v go >/dev/null 2>&1; then
  echo "tools: Go is not installed, so the pinned tools cannot be built" >&2
  exit 3
fi
gov=$(go env GOVERSION | sed 's/^go//')
case "$gov" in
  1.2[6-9]*|1.[3-9]*|[2-9].*) ;;
  *) echo "tools: Go $gov is too old (1.26 or newer builds the pinned tools); PATH finds $(command -v go)" >&2
     exit 3 ;;
esac

mkdir -p "$TOOLS_DIR/bin" "$TOOLS_DIR/src"
exec 9>"$TOOLS_DIR/.lock"
flock 9   # one build at a time, however many test runs ask

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}

# The staging modules k8s.io/kubernetes replaces with ./staging/... are published as v0.X.Y.
kubernetes_replaces() {
  local version=$1 minor
  minor=v0.${version#v1.}
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" |
    while read -r mod; do echo "replace $mod => $mod $minor"; done
}

# Run a step (a function and its arguments) in a fresh wrapper Go module: $1 its directory, $2 its
# module path, $3 the log, $4 where the result goes ($4.tmp while it is made), $5 what it does (for
# the error). On failure the log's tail is shown and nothing half-made is kept; on success $4.tmp
# becomes $4. The step's commands are joined with && (errexit does not hold in a tested subshell).
in_wrapper_module() {
  local src=$1 modpath=$2 log=$3 dest=$4 what=$5
  shift 5
  rm -rf "$src" "$dest.tmp"
  mkdir -p "$src"
  (
    cd "$src" && printf 'module %s\n\ngo 1.26\n' "$modpath" >go.mod && "$@"
  ) >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    echo "tools: $what failed; the whole log is $log" >&2
    rm -rf "$dest.tmp"
    return 1
  }
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}

# one pinned binary: its module at its version (k8s.io/kubernetes with every staging module
# replaced by its published copy), built static and stripped into $dest.tmp
build_step() {
  local module=$1 version=$2 pkg=$3 binary=$4 ldextra=$5 dest=$6
  if [ "$module" = k8s.io/kubernetes ]; then kubernetes_replaces "$version" >>go.mod || return 1; fi
  go get "$pkg@$version" &&
    go build -trimpath -ldflags "-s -w $ldextra" -o "$dest.tmp/$binary" "$pkg"
}

build_one() {
  local name=$1 version=$2 module=$3 pkg=$4 binary=$5 ldextra=$6
  local dest="$TOOLS_DIR/$name-$version"
  if [ -x "$dest/$binary" ]; then
    ln -sf "$dest/$binary" "$TOOLS_DIR/bin/$binary"
    return 0
  fi
  echo "tools: building $name $version from $module (once; later runs reuse it) ..." >&2
  local start=$SECONDS
  in_wrapper_module "$TOOLS_DIR/src/$name-$version" "poolwatch.invalid/tools/$name" \
    "$TOOLS_DIR/src/$name-$version.log" "$dest" "building $name $version" \
    build_step "$module" "$version" "$pkg" "$binary" "$ldextra" "$dest" || return 1
  ln -sf "$dest/$binary" "$TOOLS_DIR/bin/$binary"
  echo "tools: built $name $version in $((SECONDS - start)) s" >&2
}

# the operator's CRDs from its API types (crd:crdVersions=v1: v1 CRDs with their OpenAPI schemas)
crds_step() {
  local module=$1 version=$2 dest=$3
  go get "$module@$version" &&
    "$TOOLS_DIR/bin/controller-gen" crd:crdVersions=v1 "paths=$module/..." \
      "output:crd:dir=$dest.tmp" &&
    test -s "$dest.tmp/monitoring.coreos.com_servicemonitors.yaml" &&
    touch "$dest.tmp/.complete"
}

# The operator's CRDs, generated by the pinned controller-gen (built first if missing) into a
# versioned directory linked as $TOOLS_DIR/crds/prometheus-operator.
generate_operator_crds() {
  local version=$OPERATOR_CRDS_VERSION module=$OPERATOR_CRDS_MODULE
  local dest="$TOOLS_DIR/prometheus-operator-crds-$version"
  mkdir -p "$TOOLS_DIR/crds"
  if [ -f "$dest/.complete" ]; then
    ln -sfn "$dest" "$TOOLS_DIR/crds/prometheus-operator"
    return 0
  fi
  local row cg_name cg_version cg_module cg_pkg cg_binary cg_ldextra
  row=$(printf '%s\n' "$PINS" | grep '^controller-gen|')
  IFS='|' read -r cg_name cg_version cg_module cg_pkg cg_binary cg_ldextra <<<"$row"
  build_one "$cg_name" "$cg_version" "$cg_module" "$cg_pkg" "$cg_binary" "$cg_ldextra" || return 1
  echo "tools: generating the Prometheus Operator $version CRDs with controller-gen ..." >&2
  local start=$SECONDS
  local src="$TOOLS_DIR/src/prometheus-operator-crds-$version"
  in_wrapper_module "$src" poolwatch.invalid/tools/prometheus-operator-crds "$src.log" "$dest" \
    "generating the operator CRDs" crds_step "$module" "$version" "$dest" || return 1
  ln -sfn "$dest" "$TOOLS_DIR/crds/prometheus-operator"
  echo "tools: generated the operator CRDs in $((SECONDS - start)) s" >&2
}

failed=()
while IFS='|' read -r name version module pkg binary ldextra; do
  [ -n "$name" ] || continue
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  build_one "$name" "$version" "$module" "$pkg" "$binary" "$ldextra" || failed+=("$name")
done <<<"$PINS"
if [ -z "$only" ] || [[ ",$only," == *",prometheus-operator-crds,"* ]]; then
  generate_operator_crds || failed+=(prometheus-operator-crds)
fi

if ((${#failed[@]})); then
  echo "tools: could not build: ${failed[*]}" >&2
  exit 1
fi
if ((print_bin)); then echo "$TOOLS_DIR/bin"; fi
