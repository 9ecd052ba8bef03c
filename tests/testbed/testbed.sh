#!/usr/bin/env bash
# Testbed: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with kwok fake nodes, built from Go
# modules and run as plain local processes bound to 127.0.0.1.
#
# Usage: testbed.sh build|up|down|status|env
# See docs/testbed.md.
#
# Network rule: every component listens on 127.0.0.1 only. Pod, node and
# service IPs are fake: never connect to them, never use pods/proxy or
# services/proxy.
set -euo pipefail

# ---------------------------------------------------------------- settings --
K8S_VERSION=${REHEARSE_TESTBED_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${REHEARSE_TESTBED_ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${REHEARSE_TESTBED_KWOK_VERSION:-v0.8.0}
# k8s.io/kubernetes v1.X.Y <-> staging modules (k8s.io/api, ...) v0.X.Y
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"

CACHE_ROOT=${REHEARSE_TESTBED_CACHE:-$HOME/.cache/rehearse-testbed}
BUILD_KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
BUILD_DIR="$CACHE_ROOT/$BUILD_KEY"
BIN_DIR="$BUILD_DIR/bin"
RUN_DIR=${REHEARSE_TESTBED_DIR:-$CACHE_ROOT/run}

CLUSTER_NAME=kwok-rehearse
HOST=127.0.0.1
ETCD_CLIENT_PORT=${REHEARSE_TESTBED_ETCD_PORT:-23790}
ETCD_PEER_PORT=${REHEARSE_TESTBED_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${REHEARSE_TESTBED_APISERVER_PORT:-26443}
KCM_PORT=${REHEARSE_TESTBED_KCM_PORT:-26457}
SCHEDULER_PORT=${REHEARSE_TESTBED_SCHEDULER_PORT:-26459}
KWOK_PORT=${REHEARSE_TESTBED_KWOK_PORT:-26450}
UP_TIMEOUT=${REHEARSE_TESTBED_TIMEOUT:-120}
BUILD_JOBS=${REHEARSE_TESTBED_BUILD_JOBS:-2}

# Start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
NODES=(rehearse-control-plane rehearse-worker rehearse-worker2)

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat <<EOF
usage: $(basename "$0") build|up|down|status|env

  build   build etcd ${ETCD_VERSION}, Kubernetes ${K8S_VERSION} (kube-apiserver,
          kube-controller-manager, kube-scheduler, kubectl) and kwok ${KWOK_VERSION}
          from Go modules into $BIN_DIR
          (reused when already there)
  up      start the cluster (idempotent); returns when the API answers and the
          3 nodes are Ready
  down    stop every component and remove $RUN_DIR (idempotent)
  status  show which components run; exit 0 only if the cluster is healthy
  env     print 'export KUBECONFIG=...' (use: eval "\$($(basename "$0") env)")

environment: REHEARSE_TESTBED_CACHE, REHEARSE_TESTBED_DIR, REHEARSE_TESTBED_TIMEOUT,
  REHEARSE_TESTBED_{ETCD,ETCD_PEER,APISERVER,KCM,SCHEDULER,KWOK}_PORT,
  REHEARSE_TESTBED_BUILD_JOBS
EOF
}

# ------------------------------------------------------------------- build --
go_env() {
  command -v go >/dev/null 2>&1 || die "go not found in PATH (Go >= 1.26 needed)"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
}

# Print one field of `go mod download -json MODULE@VERSION`.
mod_field() {
  local field=$1 modver=$2
  go mod download -json "$modver" |
    sed -n "s/^[[:space:]]*\"$field\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n 1
}

binaries_present() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x "$BIN_DIR/$b" ]] || return 1
  done
}

build_etcd() {
  local src="$BUILD_DIR/src/etcd"
  [[ -x "$BIN_DIR/etcd" ]] && return 0
  log "building etcd ${ETCD_VERSION}"
  rm -rf "$src" && mkdir -p "$src"
  local gomod
  gomod=$(mod_field GoMod "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  [[ -n "$gomod" ]] || die "go.etcd.io/etcd/server/v3@${ETCD_VERSION} not served"
  # go.etcd.io/etcd/server/v3's own go.mod replaces its sibling modules with
  # ../api etc.; those replaces are ignored in a dependency, and its require
  # lines already name the same release of each sibling.
  {
    echo "module rehearse.local/testbed/etcd"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  } >"$src/go.mod"
  (cd "$src" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" &&
    go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" \
      -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  [[ -x "$BIN_DIR/kwok" ]] && return 0
  log "building kwok ${KWOK_VERSION}"
  # sigs.k8s.io/kwok has no replace directives: go install works directly.
  GOBIN="$BIN_DIR" go install -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
}

build_kubernetes() {
  local src="$BUILD_DIR/src/kubernetes" b missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [[ -x "$BIN_DIR/$b" ]] || missing=1
  done
  [[ $missing == 1 ]] || return 0
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl ${K8S_VERSION}"
  rm -rf "$src" && mkdir -p "$src"
  local gomod
  gomod=$(mod_field GoMod "k8s.io/kubernetes@${K8S_VERSION}")
  [[ -n "$gomod" ]] || die "k8s.io/kubernetes@${K8S_VERSION} not served"
  # k8s.io/kubernetes replaces every staging module (k8s.io/api, ...) with
  # ./staging/src/k8s.io/X at v0.0.0. Replaces in a dependency are ignored, so
  # a wrapper module re-points each of them at its published release.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod")
  [[ -n "$staging" ]] || die "no ./staging replace lines found in $gomod"
  {
    echo "module rehearse.local/testbed/kubernetes"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    local m
    for m in $staging; do
      printf '\t%s => %s %s\n' "$m" "$m" "$K8S_STAGING_VERSION"
    done
    echo ")"
  } >"$src/go.mod"
  log "wrapper module: $(wc -w <<<"$staging") staging modules re-pointed at ${K8S_STAGING_VERSION}"
  local v=${K8S_VERSION#v} major minor
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=${major}"
    ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
  done
  local cmds=(
    k8s.io/kubernetes/cmd/kube-apiserver
    k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler
    k8s.io/kubernetes/cmd/kubectl
  )
  (cd "$src" && go get "${cmds[@]/%/@${K8S_VERSION}}" &&
    go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" "${cmds[@]}")
}

cmd_build() {
  if binaries_present; then
    log "binaries present in $BIN_DIR (reused)"
    return 0
  fi
  go_env
  mkdir -p "$BIN_DIR"
  local start=$SECONDS
  build_etcd
  build_kwok
  build_kubernetes
  binaries_present || die "build finished but binaries are missing in $BIN_DIR"
  log "build done in $((SECONDS - start)) s: $BIN_DIR"
}

# ---------------------------------------------------------------- dispatch --
main() {
  local cmd=${1:-}
  case "$cmd" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
