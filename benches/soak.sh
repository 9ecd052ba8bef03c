#!/usr/bin/env bash
# Load and soak on the testbed, as figures: COPIES copies of the runbook suite in one run at
# --jobs JOBS, then the suite ROUNDS times in a row, at each pace asked for. Prints, per part:
# scenarios passed and failed (with the failure messages), wall time, the run's peak memory
# (max RSS) and the rehearse namespaces left Active afterwards. 0 failures and 0 namespaces left
# is the bar.
#
#   bash benches/soak.sh [PACE...]        (default: fast kind)
#   COPIES=50 JOBS=8 ROUNDS=20 bash benches/soak.sh fast
#   REHEARSE_BIN=/tmp/rehearse bash benches/soak.sh kind
#
# Needs the testbed (bash tests/testbed/testbed.sh up) and a release build (cargo build --release).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
copies=${COPIES:-50}
jobs=${JOBS:-8}
rounds=${ROUNDS:-20}
paces=("$@")
[[ ${#paces[@]} -gt 0 ]] || paces=(fast kind)
testbed="$here/tests/testbed/testbed.sh"
# REHEARSE_BIN runs another build (a copy, so that rebuilding meanwhile does not swap it mid-soak).
bin=${REHEARSE_BIN:-$here/target/release/rehearse}
[[ -x $bin ]] || { echo "soak: build first: cargo build --release" >&2; exit 2; }
bash "$testbed" status >/dev/null || { echo "soak: the testbed is not up (bash $testbed up)" >&2; exit 2; }
eval "$(bash "$testbed" env)"
kubectl=$(ls "$HOME"/.cache/rehearse-testbed/k8s-*/bin/kubectl | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"; bash "$testbed" pace fast >/dev/null 2>&1 || true' EXIT

# COPIES copies of scenarios/ (snapshots included), each beside the examples/ that its
# base-dir "../examples" names.
for ((i = 1; i <= copies; i++)); do
  mkdir -p "$work/copy-$i"
  cp -r "$here/scenarios" "$here/examples" "$work/copy-$i/"
done

active_namespaces() {
  "$kubectl" get namespaces -l app.kubernetes.io/managed-by=rehearse \
    -o jsonpath='{range .items[?(@.status.phase=="Active")]}{.metadata.name}{"\n"}{end}' | grep -c . || true
}

# measure LABEL ARGS... : one `rehearse run`, with its figures.
measure() {
  local label=$1 report="$work/report.json" status=0 before after
  shift
  before=$(active_namespaces)
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" run --cluster kube --jobs "$jobs" \
    --report "json=$report" "$@" >"$work/out" 2>&1 || status=$?
  after=$(active_namespaces)
  read -r wall rss < <(tail -1 "$work/time") || true
  # A failing run's whole output (snapshot diffs, guard details) is kept: a rare failure is
  # evidence to read, and the next round would overwrite it (a matching run also removes the
  # scenario's .snap.new).
  if [[ $status != 0 ]]; then
    mkdir -p "$here/target/soak-failures"
    local kept
    kept="$here/target/soak-failures/$(date +%s)-${label//[^a-zA-Z0-9]/_}"
    cp "$work/out" "$kept.log"
    [[ -s $report ]] && cp "$report" "$kept.json"
    echo "  (whole output kept in $kept.log)"
  fi
  if [[ ! -s $report ]]; then
    echo "$label: no report (exit $status):"
    tail -5 "$work/out"
    return
  fi
  python3 - "$report" "$label" "$wall" "$rss" "$status" "$((after - before))" <<'PY'
import json, sys
report, label, wall, rss, status, left = sys.argv[1:]
scenarios = json.load(open(report))["scenarios"]
passed = sum(1 for s in scenarios if s["status"] == "passed")
failed = [s for s in scenarios if s["status"] != "passed"]
print(f"{label}: {passed} passed, {len(failed)} failed, {float(wall):.1f} s wall, "
      f"peak {int(rss) / 1024:.1f} MB, exit {status}, namespaces left {left}")
for s in failed:
    print(f"  {s['status']}: {s['scenario']} ({s['file']}): {s.get('failure', '')}")
PY
}

for pace in "${paces[@]}"; do
  bash "$testbed" pace "$pace" >/dev/null 2>&1
  paths=()
  for ((i = 1; i <= copies; i++)); do paths+=("$work/copy-$i/scenarios"); done
  measure "load: $copies copies of the suite at --jobs $jobs, $pace pace" "${paths[@]}"
  start=$(date +%s.%N)
  for ((r = 1; r <= rounds; r++)); do
    line=$(measure "soak round $r/$rounds, $pace pace" "$here/scenarios")
    echo "$line"
  done
  end=$(date +%s.%N)
  echo "soak: $rounds rounds at the $pace pace in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s"
done
