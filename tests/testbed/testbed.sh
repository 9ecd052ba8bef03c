#!/usr/bin/env bash
# Testbed: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with kwok fake nodes, built from Go
# modules and run as plain local processes bound to 127.0.0.1.
#
# Usage: testbed.sh build|up [--pace fast|kind]|pace [fast|kind]|down|status|env|smoke
#        (see docs/testbed.md)
#
# Network rule: every component listens on 127.0.0.1 only. Pod, node and
# service IPs are fake: never connect to them, never use the pods/proxy or
# services/proxy subresources.
set -euo pipefail

# ---------------------------------------------------------------- settings --
K8S_VERSION=${REHEARSE_TESTBED_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${REHEARSE_TESTBED_ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${REHEARSE_TESTBED_KWOK_VERSION:-v0.8.0}
# k8s.io/kubernetes v1.X.Y <-> its staging modules (k8s.io/api, ...) v0.X.Y
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"

CACHE_ROOT=${REHEARSE_TESTBED_CACHE:-$HOME/.cache/rehearse-testbed}
[[ $CACHE_ROOT == /* ]] || CACHE_ROOT="$PWD/$CACHE_ROOT"
BUILD_KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
BUILD_DIR="$CACHE_ROOT/$BUILD_KEY"
BIN_DIR="$BUILD_DIR/bin"
# kwok Stage files, one per pace (see PACES below), each composed at `up` and
# `pace` from kwok's own stages (extracted at build time; the fast extract keeps
# the name it had before paces existed) and the testbed's own stages, kept
# beside this script: the kind pace's pod-delete, and at each pace the stop of a
# deleted pod its finalizers hold.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAGES_FILE="$BUILD_DIR/kwok-stages.yaml"
FAST_STAGES_FILE="$BUILD_DIR/kwok-stages-fast.yaml"
KIND_START_STAGES_FILE="$BUILD_DIR/kwok-stages-kind-start.yaml"
KIND_STAGES_FILE="$BUILD_DIR/kwok-stages-kind.yaml"
FAST_OWN_STAGES=("$HERE/fast-pod-stop-held.yaml")
KIND_OWN_STAGES=("$HERE/kind-pod-delete.yaml" "$HERE/kind-pod-stop-held.yaml")
RUN_DIR=${REHEARSE_TESTBED_DIR:-$CACHE_ROOT/run}
# Absolute: process ownership checks match it in command lines.
[[ $RUN_DIR == /* ]] || RUN_DIR="$PWD/$RUN_DIR"

CLUSTER_NAME=kwok-rehearse
HOST=127.0.0.1
ETCD_PORT=${REHEARSE_TESTBED_ETCD_PORT:-23790}
ETCD_PEER_PORT=${REHEARSE_TESTBED_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${REHEARSE_TESTBED_APISERVER_PORT:-26443}
KCM_PORT=${REHEARSE_TESTBED_KCM_PORT:-26457}
SCHEDULER_PORT=${REHEARSE_TESTBED_SCHEDULER_PORT:-26459}
KWOK_PORT=${REHEARSE_TESTBED_KWOK_PORT:-26450}
UP_TIMEOUT=${REHEARSE_TESTBED_TIMEOUT:-120}
DEFAULT_PACE=${REHEARSE_TESTBED_PACE:-fast}
BUILD_JOBS=${REHEARSE_TESTBED_BUILD_JOBS:-2}
# Fake ranges: nothing ever connects to these addresses.
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.0.0.0/24

# Start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
NODES=(rehearse-control-plane rehearse-worker rehearse-worker2)
# kwok Stage files, copied at build time from the kwok module (kustomize/stage/)
# so that `up` needs neither go nor the module cache. Two paces, same nodes:
#   fast  pods Ready at once, deleted at once (kwok's pod/fast stages)
#   kind  kwok's pod/general stages: containers created and then Ready after
#         1-5 s each; a deleted pod stays (Terminating, still Ready) until two
#         seconds after its deletionTimestamp (kind-pod-delete.yaml: a process
#         that ignores SIGTERM, as the runbook's services do, on a real kubelet
#         such as kind's, which removes it a moment after the grace period)
PACES=(fast kind)
NODE_STAGE_FILES=(
  node/fast/node-initialize.yaml
  node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
)
FAST_STAGE_FILES=(
  "${NODE_STAGE_FILES[@]}"
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
)
KIND_STAGE_FILES=(
  "${NODE_STAGE_FILES[@]}"
  pod/general/pod-create.yaml
  pod/general/pod-init-container-running.yaml
  pod/general/pod-init-container-completed.yaml
  pod/general/pod-ready.yaml
  pod/general/pod-complete.yaml
)

KUBECONFIG_PATH="$RUN_DIR/kubeconfig"
# The Stage file the running kwok was started with (a copy of one pace's file).
KWOK_STAGES_RUN="$RUN_DIR/kwok.yaml"
PKI="$RUN_DIR/pki"

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  local me
  me=$(basename "$0")
  cat <<EOF
usage: $me build|up [--pace fast|kind]|pace [fast|kind]|apiserver VERB|down|status|env|smoke

  build   build etcd ${ETCD_VERSION}, Kubernetes ${K8S_VERSION} (kube-apiserver,
          kube-controller-manager, kube-scheduler, kubectl) and kwok ${KWOK_VERSION}
          from Go modules into $BIN_DIR, and extract kwok's Stage files
          (reused when already there; a missing Stage file alone is extracted
          without rebuilding anything)
  up      start the cluster (idempotent); returns once the API answers and the
          3 nodes are Ready (timeout ${UP_TIMEOUT}s). --pace (default
          \$REHEARSE_TESTBED_PACE or fast): how kwok plays pods
            fast  Ready at once, deleted at once
            kind  kwok's general stages: Ready after a few seconds; a
                  deleted pod goes 1-2 s after its grace period ends
          On a running cluster at another pace, only the pace is switched.
  pace    print the running cluster's pace; with fast|kind, switch it by
          restarting kwok alone (API server, certificates, kubeconfig and
          objects stay)
  apiserver kill|start|restart|freeze|thaw
          faults for tests, on a running cluster: kill the API server
          (SIGKILL, as a crash), start it again with the same arguments,
          certificates and etcd data (returns once it is ready), both in
          turn, or stop and resume it (SIGSTOP/SIGCONT: it keeps its port
          and connections but answers nothing)
  down    stop every component and remove $RUN_DIR (idempotent)
  status  show which components run and the pace; exit 0 only if healthy
  env     print 'export KUBECONFIG=...' (use: eval "\$($me env)")
  smoke   end-to-end check of the running testbed (Deployment, Service,
          EndpointSlices, DaemonSet, namespace deletion, loopback listeners)

environment: REHEARSE_TESTBED_CACHE, REHEARSE_TESTBED_DIR, REHEARSE_TESTBED_TIMEOUT,
  REHEARSE_TESTBED_PACE,
  REHEARSE_TESTBED_{ETCD,ETCD_PEER,APISERVER,KCM,SCHEDULER,KWOK}_PORT,
  REHEARSE_TESTBED_BUILD_JOBS
EOF
}

# ------------------------------------------------------------------- build --
go_env() {
  command -v go >/dev/null 2>&1 || die "go not found in PATH (Go >= 1.26 needed)"
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
}

# Print one field ("Dir", "GoMod") of `go mod download -json MODULE@VERSION`.
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

stages_present() {
  [[ -s "$STAGES_FILE" && -s "$KIND_START_STAGES_FILE" ]]
}

build_present() {
  binaries_present && stages_present && [[ -f "$KWOK_PATCHED" ]]
}

build_etcd() {
  [[ -x "$BIN_DIR/etcd" ]] && return 0
  log "building etcd ${ETCD_VERSION}"
  local src="$BUILD_DIR/src/etcd" gomod
  rm -rf "$src" && mkdir -p "$src"
  gomod=$(mod_field GoMod "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  [[ -n "$gomod" ]] || die "go.etcd.io/etcd/server/v3@${ETCD_VERSION} is not served"
  # go.etcd.io/etcd/server/v3's go.mod replaces its sibling modules with ../api
  # etc.; a dependency's replaces are ignored, and its require lines already
  # name the same release of each sibling, so a plain wrapper module works.
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

# kwok deletes a finished pod by name alone. A delete it plays twice (it does, now and then) can
# then remove a new pod that took the name meanwhile, as a StatefulSet's replacement does at once;
# a kubelet deletes with the pod's uid as a precondition, so the build adds it. The marker file
# says a kwok binary was built so.
KWOK_PATCHED="$BIN_DIR/.kwok-deletes-by-uid"
build_kwok() {
  [[ -x "$BIN_DIR/kwok" && -f "$KWOK_PATCHED" ]] && return 0
  log "building kwok ${KWOK_VERSION} (pods deleted by uid)"
  local src="$BUILD_DIR/src/kwok" dir file
  dir=$(mod_field Dir "sigs.k8s.io/kwok@${KWOK_VERSION}")
  [[ -n "$dir" ]] || die "sigs.k8s.io/kwok@${KWOK_VERSION} is not served"
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -R "$dir" "$src" && chmod -R u+w "$src"
  file="$src/pkg/kwok/controllers/pod_controller.go"
  grep -q 'Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOpt)' "$file" ||
    die "kwok ${KWOK_VERSION}: the pod delete to add a uid precondition to is not in $file"
  sed -i 's#Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOpt)#Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: deleteOpt.GracePeriodSeconds, Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})#' "$file"
  # sigs.k8s.io/kwok has no replace directives: its own go.mod builds it.
  (cd "$src" && go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" -o "$BIN_DIR/kwok" ./cmd/kwok)
  touch "$KWOK_PATCHED"
}

build_kubernetes() {
  local b missing=0
  for b in "${KUBE_CMDS[@]}"; do
    [[ -x "$BIN_DIR/$b" ]] || missing=1
  done
  [[ $missing == 1 ]] || return 0
  log "building ${KUBE_CMDS[*]} ${K8S_VERSION}"
  local src="$BUILD_DIR/src/kubernetes" gomod staging m
  rm -rf "$src" && mkdir -p "$src"
  gomod=$(mod_field GoMod "k8s.io/kubernetes@${K8S_VERSION}")
  [[ -n "$gomod" ]] || die "k8s.io/kubernetes@${K8S_VERSION} is not served"
  # k8s.io/kubernetes replaces every staging module (k8s.io/api, ...) with
  # ./staging/src/k8s.io/X at v0.0.0. Replaces in a dependency are ignored, so
  # a wrapper module re-points each of them at its published release. The list
  # is read from k8s.io/kubernetes' own go.mod.
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
    for m in $staging; do
      printf '\t%s => %s %s\n' "$m" "$m" "$K8S_STAGING_VERSION"
    done
    echo ")"
  } >"$src/go.mod"
  log "wrapper module: $(wc -w <<<"$staging") staging modules re-pointed at ${K8S_STAGING_VERSION}"
  local v=${K8S_VERSION#v} major minor ldflags="-s -w" pkg
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=${major}"
    ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
  done
  local pkgs=("${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}")
  (cd "$src" && go get "${pkgs[@]/%/@${K8S_VERSION}}" &&
    go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" "${pkgs[@]}")
}

pace_stages_file() {
  case $1 in
    fast) echo "$FAST_STAGES_FILE" ;;
    kind) echo "$KIND_STAGES_FILE" ;;
    *) die "unknown pace '$1' (fast or kind)" ;;
  esac
}

# kubelet_readiness < KWOK_STAGES : kwok's stages with readiness gates as a
# kubelet has them. kwok sets every gate's condition True itself, so a pod
# with readinessGates is Ready at once; a kubelet leaves those conditions to
# whoever owns the gate (a load balancer's controller), and on a cluster
# without one, such as kind, the pod is never Ready and no Service routes to
# it. So the stage that makes pods Ready writes no gate condition, and Ready
# False when the pod has gates (ContainersReady stays True). Fails unless it
# made exactly those two changes, so a new kwok cannot silently undo them.
kubelet_readiness() {
  awk '
    /^ *[{][{] range [.]spec[.]readinessGates [}][}] *$/ { gates++; skipping = 1; next }
    skipping && /^ *[{][{] end [}][}] *$/ { skipping = 0; next }
    skipping && /^ *type: [{][{] [.]conditionType [|] Quote [}][}]$/ { gate_conditions++ }
    skipping { next }
    /^ *type: Ready$/ && held ~ /^ *status: "True"$/ {
      sub(/"True"$/, "{{ if .spec.readinessGates }}\"False\"{{ else }}\"True\"{{ end }}", held)
      ready++
    }
    NR > 1 { print held }
    { held = $0 }
    END {
      print held
      if (gates != 1 || gate_conditions != 1 || ready != 1) {
        printf "found %d readiness gate block(s) writing %d gate condition(s) and %d Ready condition(s), expected 1, 1 and 1\n", gates, gate_conditions, ready > "/dev/stderr"
        exit 1
      }
    }
  '
}

# compose OUT KWOK_FILE OWN_FILE... : a pace's Stage file, kwok's extracted
# stages (readiness gates as a kubelet has them) then the testbed's own.
# Written by `up` and `pace` (need_tools) whenever a part changed: the
# testbed's stages live in the repository, not in the build cache.
compose_stages() {
  local out=$1 kwok_file=$2 composed f
  shift 2
  [[ -s $kwok_file ]] || die "kwok Stage file missing: $kwok_file (run '$0 build')"
  for f in "$@"; do
    [[ -s $f ]] || die "missing $f"
  done
  composed=$(mktemp "$out.XXXXXX")
  kubelet_readiness <"$kwok_file" >"$composed" || {
    rm -f "$composed"
    die "kwok's pod stages in $kwok_file are not as expected: cannot make readiness gates a kubelet's"
  }
  {
    for f in "$@"; do
      echo "---"
      cat "$f"
    done
  } >>"$composed"
  if cmp -s "$composed" "$out"; then
    rm -f "$composed"
  else
    chmod 644 "$composed"
    mv "$composed" "$out"
  fi
}

compose_pace_stages() {
  compose_stages "$FAST_STAGES_FILE" "$STAGES_FILE" "${FAST_OWN_STAGES[@]}"
  compose_stages "$KIND_STAGES_FILE" "$KIND_START_STAGES_FILE" "${KIND_OWN_STAGES[@]}"
}

# write_stages FILE STAGE... : concatenate kwok Stage files from the kwok
# module's kustomize/stage/ into FILE (only when FILE is missing).
write_stages() {
  local out=$1 dir f
  shift
  [[ -s "$out" ]] && return 0
  dir=$(mod_field Dir "sigs.k8s.io/kwok@${KWOK_VERSION}")
  [[ -d "$dir/kustomize/stage" ]] || die "kwok module has no kustomize/stage ($dir)"
  log "extracting $(basename "$out") from sigs.k8s.io/kwok@${KWOK_VERSION}"
  {
    echo "# kwok Stages from sigs.k8s.io/kwok@${KWOK_VERSION} kustomize/stage/"
    for f in "$@"; do
      [[ -f "$dir/kustomize/stage/$f" ]] || die "missing stage file $f in $dir"
      echo "---"
      echo "# $f"
      cat "$dir/kustomize/stage/$f"
    done
  } >"$out.tmp"
  mv "$out.tmp" "$out"
}

build_stages() {
  mkdir -p "$BUILD_DIR"
  write_stages "$STAGES_FILE" "${FAST_STAGE_FILES[@]}"
  write_stages "$KIND_START_STAGES_FILE" "${KIND_STAGE_FILES[@]}"
}

cmd_build() {
  if build_present; then
    log "build present, reused: $BIN_DIR"
    return 0
  fi
  go_env
  mkdir -p "$BIN_DIR"
  local start=$SECONDS
  build_etcd
  build_kwok
  build_stages
  build_kubernetes
  build_present || die "build finished but files are missing in $BUILD_DIR"
  log "build done in $((SECONDS - start)) s: $BIN_DIR"
}

# ----------------------------------------------------------------- helpers --
# (own cache dir: nothing written to ~/.kube)
kubectl_tb() {
  "$BIN_DIR/kubectl" --kubeconfig="$KUBECONFIG_PATH" --cache-dir="$RUN_DIR/kubectl-cache" "$@"
}

pid_file() { echo "$RUN_DIR/pids/$1.pid"; }

# Print the pid of a running component we started, or fail. A pid counts as
# ours only if its executable is the component's binary and its command line
# names our run directory (pids get reused).
component_pid() {
  local name=$1 f pid exe
  f=$(pid_file "$name")
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ "$(basename "$exe")" == "$name" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$RUN_DIR/" || return 1
  echo "$pid"
}

# Is something listening on 127.0.0.1:PORT? (connects to loopback only)
port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

api_readyz() {
  curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$HOST:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

component_health_url() {
  case $1 in
    etcd) echo "http://$HOST:$ETCD_PORT/health" ;;
    kube-apiserver) echo "https://$HOST:$APISERVER_PORT/readyz" ;;
    kube-controller-manager) echo "https://$HOST:$KCM_PORT/healthz" ;;
    kube-scheduler) echo "https://$HOST:$SCHEDULER_PORT/healthz" ;;
    kwok) echo "http://$HOST:$KWOK_PORT/healthz" ;;
  esac
}

component_healthy() {
  local name=$1
  if [[ $name == kube-apiserver ]]; then
    api_readyz
  else
    # kcm and scheduler serve /healthz with a self-signed cert; -k is fine on
    # loopback.
    curl -kfsS --max-time 5 "$(component_health_url "$name")" >/dev/null 2>&1
  fi
}

# ---------------------------------------------------------------------- up --
need_tools() {
  local t
  for t in curl openssl base64 setsid; do
    command -v "$t" >/dev/null 2>&1 && continue
    if [[ $t == openssl && $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing openssl with apt-get"
      apt-get update -qq >/dev/null || true
      apt-get install -y -qq openssl >/dev/null || die "apt-get install openssl failed"
      continue
    fi
    die "$t not found (Debian: apt-get install openssl curl coreutils util-linux)"
  done
  binaries_present || die "binaries missing in $BIN_DIR: run '$0 build' first"
  if ! stages_present; then
    # A build from before a Stage file it lacks: extract the missing one (needs
    # go and the kwok module, which such a build has), binaries untouched.
    command -v go >/dev/null 2>&1 || die "kwok Stage files missing in $BUILD_DIR: run '$0 build' first"
    (go_env && build_stages) || die "cannot extract kwok Stage files: run '$0 build'"
  fi
  compose_pace_stages
}

# new_cert NAME CN ORG SAN... : key + cert signed by the testbed CA
new_cert() {
  local name=$1 cn=$2 org=$3
  shift 3
  local subj="/CN=$cn"
  [[ -n "$org" ]] && subj="/O=$org$subj"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ $# -gt 0 ]]; then
      echo "extendedKeyUsage=serverAuth"
      local IFS=,
      echo "subjectAltName=$*"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$PKI/$name.ext"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
  mkdir -p "$PKI"
  openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=rehearse-testbed-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
    -out "$PKI/ca.crt" 2>/dev/null
  new_cert apiserver kube-apiserver "" \
    "IP:$HOST" "DNS:localhost" "DNS:kubernetes" "DNS:kubernetes.default" \
    "DNS:kubernetes.default.svc" "DNS:kubernetes.default.svc.cluster.local" "IP:10.96.0.1"
  # Every client is in system:masters: this is a throwaway test cluster.
  new_cert admin kubernetes-admin system:masters
  new_cert kube-controller-manager system:kube-controller-manager system:masters
  new_cert kube-scheduler system:kube-scheduler system:masters
  new_cert kwok kwok-controller system:masters
  # Service-account token signing key pair.
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI"/*.key
}

b64() { base64 -w0 <"$1"; }

# write_kubeconfig FILE USER-CERT-NAME : kubeconfig with embedded credentials;
# cluster, context and user are all called $CLUSTER_NAME, like kind/kwokctl.
write_kubeconfig() {
  local file=$1 cert=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(b64 "$PKI/ca.crt")
    server: https://$HOST:$APISERVER_PORT
  name: $CLUSTER_NAME
contexts:
- context:
    cluster: $CLUSTER_NAME
    user: $CLUSTER_NAME
  name: $CLUSTER_NAME
current-context: $CLUSTER_NAME
users:
- name: $CLUSTER_NAME
  user:
    client-certificate-data: $(b64 "$PKI/$cert.crt")
    client-key-data: $(b64 "$PKI/$cert.key")
EOF
  chmod 600 "$file"
}

component_args() {
  case $1 in
    etcd)
      printf '%s\n' \
        --name=rehearse \
        --data-dir="$RUN_DIR/etcd" \
        --listen-client-urls="http://$HOST:$ETCD_PORT" \
        --advertise-client-urls="http://$HOST:$ETCD_PORT" \
        --listen-peer-urls="http://$HOST:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://$HOST:$ETCD_PEER_PORT" \
        --initial-cluster="rehearse=http://$HOST:$ETCD_PEER_PORT" \
        --initial-cluster-state=new \
        --auto-compaction-retention=1 \
        --quota-backend-bytes=2147483648 \
        --unsafe-no-fsync=true \
        --log-level=warn
      ;;
    kube-apiserver)
      printf '%s\n' \
        --etcd-servers="http://$HOST:$ETCD_PORT" \
        --bind-address="$HOST" \
        --secure-port="$APISERVER_PORT" \
        --advertise-address="$HOST" \
        --endpoint-reconciler-type=none \
        --cert-dir="$PKI/apiserver-certdir" \
        --tls-cert-file="$PKI/apiserver.crt" \
        --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --authorization-mode=Node,RBAC \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --allow-privileged=true \
        --profiling=false
      ;;
    kube-controller-manager)
      printf '%s\n' \
        --kubeconfig="$RUN_DIR/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$RUN_DIR/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$RUN_DIR/kube-controller-manager.kubeconfig" \
        --authentication-skip-lookup=true \
        --bind-address="$HOST" \
        --secure-port="$KCM_PORT" \
        --cert-dir="$PKI/kcm-certdir" \
        --leader-elect=false \
        --controllers='*,-endpoints-controller,-disruption-controller,-persistentvolume-attach-detach-controller,-ephemeral-volume-controller,-taint-eviction-controller,-device-taint-eviction-controller,-resourceclaim-controller' \
        --service-account-private-key-file="$PKI/sa.key" \
        --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" \
        --cluster-signing-key-file="$PKI/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --flex-volume-plugin-dir="$RUN_DIR/flexvolume" \
        --kube-api-qps=1000 \
        --kube-api-burst=2000 \
        --concurrent-daemonset-syncs=10 \
        --endpointslice-updates-batch-period=50ms \
        --profiling=false
      ;;
    kube-scheduler)
      printf '%s\n' \
        --kubeconfig="$RUN_DIR/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig="$RUN_DIR/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig="$RUN_DIR/kube-scheduler.kubeconfig" \
        --authentication-skip-lookup=true \
        --bind-address="$HOST" \
        --secure-port="$SCHEDULER_PORT" \
        --cert-dir="$PKI/scheduler-certdir" \
        --leader-elect=false \
        --kube-api-qps=1000 \
        --kube-api-burst=2000 \
        --profiling=false
      ;;
    kwok)
      printf '%s\n' \
        --kubeconfig="$RUN_DIR/kwok.kubeconfig" \
        --config="$KWOK_STAGES_RUN" \
        --manage-all-nodes=false \
        --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
        --server-address="$HOST:$KWOK_PORT" \
        --cidr="$POD_CIDR" \
        --node-lease-duration-seconds=40
      ;;
  esac
}

# Print the last lines of a component's log, for a failure report.
show_log() {
  local name=$1 f="$RUN_DIR/logs/$1.log"
  [[ -f "$f" ]] || return 0
  log "last lines of $f:"
  tail -n 20 "$f" >&2 || true
}

UP_OK=0
FAILED_COMPONENT=

up_cleanup() {
  [[ $UP_OK == 1 ]] && return 0
  [[ -n "$FAILED_COMPONENT" ]] && show_log "$FAILED_COMPONENT"
  log "up failed: tearing down what was started"
  cmd_down || true
}

start_component() {
  local name=$1 args=()
  mapfile -t args < <(component_args "$name")
  FAILED_COMPONENT=$name
  log "starting $name"
  # setsid + nohup: the component outlives this script and its terminal.
  (cd "$RUN_DIR" && GOGC=400 exec setsid nohup "$BIN_DIR/$name" "${args[@]}" \
    </dev/null >"$RUN_DIR/logs/$name.log" 2>&1 9>&-) &
  echo $! >"$(pid_file "$name")"
}

# wait_healthy NAME DEADLINE : bounded poll of the component's health endpoint
wait_healthy() {
  local name=$1 deadline=$2 pid
  pid=$(<"$(pid_file "$name")")
  while ! component_healthy "$name"; do
    # (not component_pid: right after start the pid may still be
    # setsid/nohup, before they exec the component)
    if ! pid_alive "$pid"; then
      log "$name exited during start-up"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name did not become healthy in time"
      return 1
    fi
    sleep 0.5
  done
  log "$name is healthy"
}

nodes_manifest() {
  local n index=2
  for n in "${NODES[@]}"; do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $n
EOF
    if [[ $n == *-control-plane ]]; then
      cat <<EOF
    node-role.kubernetes.io/control-plane: ""
    node.kubernetes.io/exclude-from-external-load-balancers: ""
spec:
  taints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
EOF
    fi
    # kind's pod limit (the kubelet's default of 110), which kwok keeps instead of its own
    # default of 1M: a rollout that overfills the workers fails here as on kind and on the
    # built-in cluster, whose nodes show the same. CPU and memory stay kwok's plenty.
    # Addresses as kind's nodes have them (fake: nothing connects to them): kwok gives a pod
    # its node's InternalIP as hostIP, and a hostNetwork pod that IP as its own; without one a
    # hostNetwork pod would get no IP and never be an endpoint.
    cat <<EOF
status:
  addresses:
  - type: InternalIP
    address: 172.18.0.$index
  - type: Hostname
    address: $n
  allocatable: &capacity
    cpu: 1k
    memory: 1Ti
    pods: "110"
  capacity: *capacity
EOF
    index=$((index + 1))
  done
}

cluster_healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do
    component_pid "$c" >/dev/null || return 1
  done
  [[ -f "$KUBECONFIG_PATH" ]] && api_readyz || return 1
  kubectl_tb wait --for=condition=Ready node "${NODES[@]}" --timeout=5s >/dev/null 2>&1
}

# The pace of the running kwok: which pace's Stage file its copy in the run
# dir is ("unknown" if neither, e.g. a newer build's files).
current_pace() {
  local p
  [[ -f "$KWOK_STAGES_RUN" ]] || return 1
  for p in "${PACES[@]}"; do
    if cmp -s "$KWOK_STAGES_RUN" "$(pace_stages_file "$p")"; then
      echo "$p"
      return 0
    fi
  done
  echo unknown
}

check_pace() {
  local p
  for p in "${PACES[@]}"; do
    [[ $1 == "$p" ]] && return 0
  done
  die "unknown pace '$1' (one of: ${PACES[*]})"
}

# Node Lease holders: kwok takes a node (and its pods) only while it holds the
# node's Lease in kube-node-lease, under an identity of hostname + a random
# uuid per process. A restarted kwok would otherwise wait for the old holder's
# Lease to expire (--node-lease-duration-seconds, 40 s) with every pod frozen.
lease_holders() {
  kubectl_tb get lease -n kube-node-lease "${NODES[@]}" \
    -o jsonpath='{range .items[*]}{.spec.holderIdentity}{"\n"}{end}' 2>/dev/null
}

# switch_pace PACE : on a healthy cluster, restart kwok alone with PACE's
# Stage file. The API server, etcd, certificates, kubeconfigs and every object
# stay; kwok picks up the existing pods and nodes (and their pod IPs) again.
# Pods already Running stay as they are; new ones, and deletions, follow the
# new pace.
# Marks the nodes with the pace their (kwok) kubelet plays pods at: rehearse reads it to know that
# at the fast pace a deleted pod is removed at once, its grace period ignored (a real cluster's
# nodes carry no mark and keep grace periods). The built-in cluster marks its nodes the same way.
mark_pace() {
  kubectl_tb annotate nodes "${NODES[@]}" --overwrite "rehearse.dev/pace=$1" >/dev/null
}

switch_pace() {
  local pace=$1 from pid start=$SECONDS deadline
  from=$(current_pace) || from=none
  if [[ $from == "$pace" ]]; then
    log "pace already $pace"
    return 0
  fi
  deadline=$((SECONDS + UP_TIMEOUT))
  local old_holders
  old_holders=$(lease_holders || true)
  if pid=$(component_pid kwok); then
    stop_pid "$pid" kwok
  fi
  # Delete the stopped kwok's node Leases so that the new kwok creates its own
  # at once instead of waiting for them to expire. (Only clearing the holder
  # is not enough: kwok's first sync runs before its Lease cache is filled,
  # its create fails with AlreadyExists and it retries ~10 s later.) The node
  # lifecycle controller does not notice the second without a Lease.
  kubectl_tb delete lease -n kube-node-lease "${NODES[@]}" --ignore-not-found --wait=false >/dev/null ||
    log "warning: could not delete the node Leases; kwok takes the nodes when they expire (40 s)"
  cp "$(pace_stages_file "$pace")" "$KWOK_STAGES_RUN"
  start_component kwok
  mark_pace "$pace"
  if ! wait_healthy kwok "$deadline"; then
    show_log kwok
    die "kwok did not restart at pace $pace ('$0 up' starts the cluster afresh)"
  fi
  # Back only once the new kwok holds every node's Lease (it plays pods then).
  local holders
  while :; do
    holders=$(lease_holders || true)
    if [[ $(grep -c . <<<"$holders") == "${#NODES[@]}" ]] &&
      ! grep -qxF -f <(grep . <<<"$old_holders") <<<"$holders"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      show_log kwok
      die "kwok did not take the node Leases after its restart"
    fi
    sleep 0.2
  done
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  kubectl_tb wait --for=condition=Ready node "${NODES[@]}" --timeout="${left}s" >/dev/null ||
    die "nodes not Ready after kwok's restart"
  FAILED_COMPONENT=
  log "pace $from -> $pace in $((SECONDS - start)) s (kwok restarted)"
}

# pace [PACE] : print the pace, or switch a running cluster to PACE.
cmd_pace() {
  if [[ $# == 0 ]]; then
    current_pace || die "testbed is not up"
    return 0
  fi
  [[ $# == 1 ]] || die "usage: pace [fast|kind]"
  check_pace "$1"
  need_tools
  cluster_healthy || die "testbed is not up and healthy (run '$0 up --pace $1')"
  switch_pace "$1"
}

cmd_up() {
  local pace=$DEFAULT_PACE
  while [[ $# -gt 0 ]]; do
    case $1 in
      --pace)
        [[ $# -ge 2 ]] || die "--pace needs a value (${PACES[*]})"
        pace=$2
        shift 2
        ;;
      --pace=*)
        pace=${1#--pace=}
        shift
        ;;
      *) die "up: unknown argument '$1' (usage: up [--pace fast|kind])" ;;
    esac
  done
  check_pace "$pace"
  need_tools
  if cluster_healthy; then
    if [[ "$(current_pace)" != "$pace" ]]; then
      switch_pace "$pace"
    else
      mark_pace "$pace"
      log "cluster already up and healthy at pace $pace (reused); KUBECONFIG=$KUBECONFIG_PATH"
    fi
    return 0
  fi
  if [[ -d "$RUN_DIR" ]]; then
    log "stale or unhealthy testbed in $RUN_DIR: removing it first"
    cmd_down
  fi
  local start=$SECONDS deadline=$((SECONDS + UP_TIMEOUT)) c port
  for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
    port_in_use "$port" && die "port $HOST:$port is already in use (override with REHEARSE_TESTBED_*_PORT)"
  done

  trap up_cleanup EXIT
  trap 'FAILED_COMPONENT=; log "interrupted"; exit 130' INT TERM
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs" "$RUN_DIR/etcd"
  chmod 700 "$RUN_DIR" "$RUN_DIR/etcd"
  make_pki
  write_kubeconfig "$KUBECONFIG_PATH" admin
  for c in kube-controller-manager kube-scheduler kwok; do
    write_kubeconfig "$RUN_DIR/$c.kubeconfig" "$c"
  done
  cp "$(pace_stages_file "$pace")" "$KWOK_STAGES_RUN"

  for c in "${COMPONENTS[@]}"; do
    start_component "$c"
    wait_healthy "$c" "$deadline"
    if [[ $c == kube-apiserver ]]; then
      # Nodes before kwok starts, so kwok finds them at once.
      FAILED_COMPONENT=
      nodes_manifest | kubectl_tb apply -f - >/dev/null
      mark_pace "$pace"
    fi
  done
  FAILED_COMPONENT=kwok
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  kubectl_tb wait --for=condition=Ready node "${NODES[@]}" --timeout="${left}s" >/dev/null
  FAILED_COMPONENT=
  # The namespaces and service account the tests rely on.
  left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  kubectl_tb wait --for=create serviceaccount/default -n default --timeout="${left}s" >/dev/null
  UP_OK=1
  trap - EXIT INT TERM
  log "up in $((SECONDS - start)) s at pace $pace; KUBECONFIG=$KUBECONFIG_PATH (context $CLUSTER_NAME)"
}

# --------------------------------------------------------------- apiserver --
# apiserver VERB : faults for the tests. The other components keep running and
# reconnect by themselves, as they do when a real control plane restarts.
cmd_apiserver() {
  [[ $# == 1 ]] || die "usage: apiserver kill|start|restart|freeze|thaw"
  local pid
  case $1 in
    kill)
      pid=$(component_pid kube-apiserver) || die "the API server is not running"
      kill -KILL "$pid"
      while pid_alive "$pid"; do sleep 0.05; done
      log "API server killed (pid $pid)"
      ;;
    start)
      if pid=$(component_pid kube-apiserver); then
        log "API server already running (pid $pid)"
        return 0
      fi
      component_pid etcd >/dev/null || die "etcd is not running ('$0 up' starts the cluster)"
      # A killed API server's threads may still hold its port for a moment after its main
      # thread is reaped.
      local i
      for ((i = 0; i < 100; i++)); do
        port_in_use "$APISERVER_PORT" || break
        sleep 0.1
      done
      port_in_use "$APISERVER_PORT" && die "port $APISERVER_PORT is still in use: cannot start the API server"
      start_component kube-apiserver
      wait_healthy kube-apiserver $((SECONDS + UP_TIMEOUT)) || {
        show_log kube-apiserver
        die "the API server did not come back"
      }
      FAILED_COMPONENT=
      ;;
    restart)
      cmd_apiserver kill
      cmd_apiserver start
      ;;
    freeze | thaw)
      pid=$(component_pid kube-apiserver) || die "the API server is not running"
      if [[ $1 == freeze ]]; then
        kill -STOP "$pid"
        log "API server frozen (pid $pid)"
      else
        kill -CONT "$pid"
        log "API server thawed (pid $pid)"
      fi
      ;;
    *) die "usage: apiserver kill|start|restart|freeze|thaw" ;;
  esac
}

# -------------------------------------------------------------------- down --
# Component processes of this testbed that lost their pid file (e.g. the run
# dir was removed under them): the executable is one of our component
# binaries and the command line names our run directory.
stray_pids() {
  local d pid exe bin_dir
  bin_dir=$(cd "$BIN_DIR" 2>/dev/null && pwd -P) || return 0
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    [[ $exe == "$bin_dir/"* ]] || continue
    [[ " ${COMPONENTS[*]} " == *" $(basename "$exe") "* ]] || continue
    tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qF -- "$RUN_DIR/" || continue
    echo "$pid"
  done
}

# A zombie (exited, not yet reaped by init) counts as gone.
pid_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# stop_pid PID NAME : SIGTERM, wait up to 20 s, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  # A component frozen by 'apiserver freeze' acts on SIGTERM only once resumed.
  kill -CONT "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) still running after 20 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "warning: $name (pid $pid) did not exit"
}

cmd_down() {
  local i c pid n=0
  # One at a time, in reverse start order: clients first, etcd last (the API
  # server's graceful shutdown needs etcd).
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if pid=$(component_pid "$c"); then
      stop_pid "$pid" "$c"
      n=$((n + 1))
    fi
  done
  local strays
  strays=$(stray_pids)
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    for pid in $strays; do
      [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */"$c" ]] || continue
      stop_pid "$pid" "stray $c"
      n=$((n + 1))
    done
  done
  if [[ -d "$RUN_DIR" ]]; then
    rm -rf "$RUN_DIR"
    log "down: stopped $n process(es), removed $RUN_DIR"
  else
    log "down: nothing to remove ($n process(es) stopped)"
  fi
}

# ------------------------------------------------------------------ status --
cmd_status() {
  local c pid ok=0 rss total=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(component_pid "$c"); then
      rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)
      rss=${rss:-0}
      total=$((total + rss))
      if component_healthy "$c"; then
        printf '%-24s running (pid %s, RSS %s MiB), healthy\n' "$c" "$pid" "$((rss / 1024))"
      else
        printf '%-24s running (pid %s, RSS %s MiB), NOT healthy\n' "$c" "$pid" "$((rss / 1024))"
        ok=1
      fi
    else
      printf '%-24s not running\n' "$c"
      ok=1
    fi
  done
  if [[ -f "$KUBECONFIG_PATH" ]] && api_readyz; then
    printf '%-24s answers https://%s:%s (/readyz ok)\n' "API" "$HOST" "$APISERVER_PORT"
    kubectl_tb get nodes --no-headers 2>/dev/null | sed 's/^/  node: /' || true
    if ! kubectl_tb wait --for=condition=Ready node "${NODES[@]}" --timeout=2s >/dev/null 2>&1; then
      echo "nodes not all Ready"
      ok=1
    fi
  else
    printf '%-24s does not answer\n' "API"
    ok=1
  fi
  ((total > 0)) && printf '%-24s %s MiB RSS in all\n' "memory" "$((total / 1024))"
  local pace
  if pace=$(current_pace); then
    printf '%-24s %s\n' "pace" "$pace"
  fi
  if ((ok == 0)); then
    echo "testbed healthy; KUBECONFIG=$KUBECONFIG_PATH"
  else
    echo "testbed not healthy"
  fi
  return "$ok"
}

cmd_env() {
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
}

# ------------------------------------------------------------------- smoke --
# End-to-end check of a running testbed: Deployment + Service + EndpointSlices,
# scheduling on workers only, a DaemonSet on both workers, namespace deletion,
# and loopback-only listeners. Talks to the API server only.
quiet() { "$@" >/dev/null; }
not_grep() { ! grep -q -- "$1" <<<"$2"; }

cmd_smoke() {
  cluster_healthy || die "testbed is not up (run '$0 up')"
  local ns="rehearse-smoke-$$" fails=0 passes=0 out
  check() {
    local what=$1
    shift
    if "$@"; then
      passes=$((passes + 1))
      echo "ok   $what"
    else
      fails=$((fails + 1))
      echo "FAIL $what"
    fi
  }
  kubectl_tb create namespace "$ns" >/dev/null
  kubectl_tb apply -n "$ns" -f - >/dev/null <<'EOF2'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: registry.k8s.io/pause:3.10
EOF2
  check "deployment rolled out" quiet kubectl_tb rollout status -n "$ns" deployment/web --timeout=60s
  check "3 pods Ready" quiet kubectl_tb wait -n "$ns" --for=condition=Ready pod -l app=web --timeout=30s
  out=$(kubectl_tb get pods -n "$ns" -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName} {.status.podIP}{"\n"}{end}')
  printf '     web pod on %s\n' "${out//$'\n'/$'\n     web pod on '}"
  check "3 web pods" test "$(grep -c . <<<"$out")" -eq 3
  check "no pod on the control-plane node" not_grep control-plane "$out"
  check "pod IPs from kwok's CIDR" test "$(grep -c ' 10\.0\.0\.' <<<"$out")" -eq 3
  out=$(kubectl_tb get rs -n "$ns" -l app=web -o jsonpath='{.items[0].spec.selector.matchLabels.pod-template-hash}')
  check "ReplicaSet selector has pod-template-hash ($out)" test -n "$out"
  local ready=0 i
  for ((i = 0; i < 60; i++)); do
    ready=$(kubectl_tb get endpointslices -n "$ns" -l kubernetes.io/service-name=web \
      -o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{"\n"}{end}' | grep -c '^true$' || true)
    [[ $ready == 3 ]] && break
    sleep 0.5
  done
  check "EndpointSlices list 3 ready endpoints ($ready)" test "$ready" -eq 3
  check "daemonset rolled out" quiet kubectl_tb rollout status -n "$ns" daemonset/agent --timeout=60s
  out=$(kubectl_tb get pods -n "$ns" -l app=agent -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort)
  check "daemonset has exactly 2 pods, one per worker" test "$out" == "rehearse-worker
rehearse-worker2"
  check "namespace deletion completes" quiet kubectl_tb delete namespace "$ns" --wait=true --timeout=90s
  if command -v ss >/dev/null 2>&1; then
    local c pid bad
    for c in "${COMPONENTS[@]}"; do
      pid=$(component_pid "$c") || continue
      bad=$(ss -Hltnp | grep "pid=$pid," | awk '{print $4}' | grep -v "^127\.0\.0\.1:" || true)
      check "$c listens on 127.0.0.1 only${bad:+ (also: $bad)}" test -z "$bad"
      bad=$(ss -Htanp | grep "pid=$pid," | awk '$1 != "LISTEN" {print $5}' | grep -v "^127\.0\.0\.1:" || true)
      check "$c has no connection beyond 127.0.0.1${bad:+ (peer: $bad)}" test -z "$bad"
    done
  else
    echo "skip listener check: ss not found"
  fi
  echo "smoke: $passes passed, $fails failed"
  ((fails == 0))
}

# ---------------------------------------------------------------- dispatch --
# Serialise build/up/down of concurrent callers (fd 9; closed for the
# components so that they do not inherit the lock).
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    build | up | down | apiserver) take_lock ;;
    pace) if [[ $# -gt 1 ]]; then take_lock; fi ;;
  esac
  if [[ $# -gt 0 ]]; then shift; fi
  case "$cmd" in
    build) cmd_build ;;
    up) cmd_up "$@" ;;
    pace) cmd_pace "$@" ;;
    apiserver) cmd_apiserver "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    smoke) cmd_smoke ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
