#!/usr/bin/env bash
# The cost of each simple step on the built-in cluster, in CPU instructions (valgrind's
# cachegrind): a figure that does not move with the machine's load, where steps per second
# (benches/builtin.rs) does by ±20%. For each of label, select and expect-traffic on a 10-pod
# service, and for the three in a row as benches/builtin.rs runs them, a scenario repeats the step
# STEPS times (default 1,000); the same scenario without them is subtracted, so the figure is
# the step's own: the parse of its line, the executor, the API request both ways, the built-in
# cluster's write with its controllers, and the watch events it causes.
#
#   bash benches/step-instructions.sh
#   STEPS=3000 REHEARSE_BIN=/tmp/rehearse bash benches/step-instructions.sh
#
# Needs a release build (cargo build --release) and valgrind (apt-get install valgrind).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${REHEARSE_BIN:-$here/target/release/rehearse}
steps=${STEPS:-1000}
[[ -x $bin ]] || { echo "step-instructions: build first: cargo build --release" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "step-instructions: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[[ $steps =~ ^[1-9][0-9]*$ ]] || { echo "step-instructions: STEPS must be a positive number" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A scenario: the 10-pod service set up, then `$2` (one or more step lines) repeated STEPS times,
# with %v standing for a label value that alternates, so every label step changes the pod.
scenario() {
  local name=$1 body=$2 count=$3
  {
    printf 'base-dir "%s/examples"\n\nscenario "%s" {\n' "$here" "$name"
    printf '    apply "dockercoins/rng.yaml"\n    scale deployment/rng to 10\n'
    printf '    wait rollout deployment/rng\n    let pod = one pod app=rng\n'
    local i value
    for ((i = 0; i < count; i++)); do
      if ((i % 2)); then value=b; else value=a; fi
      printf '%s' "${body//%v/$value}"
    done
    printf '}\n'
  } >"$work/$name.rollout"
}

# Instructions the whole run takes; the run must pass. On the built-in cluster even when
# KUBECONFIG names a cluster.
instructions() {
  local report
  if ! report=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$bin" run --cluster builtin --pace fast "$work/$1.rollout" 2>&1 >/dev/null); then
    echo "step-instructions: the scenario $1 failed:" >&2
    echo "$report" | grep -v '^==' >&2
    exit 1
  fi
  echo "$report" | awk '/I *refs/ { gsub(",", "", $NF); print $NF }'
}

label=$'    label $pod round=%v\n'
select=$'    select service/rng app=rng\n'
expect=$'    expect-traffic service/rng count 10\n'
scenario base "" 0
scenario label "$label" "$steps"
scenario select "$select" "$steps"
scenario expect "$expect" "$steps"
scenario triple "$label$select$expect" "$steps"

base=$(instructions base)
echo "instructions per step on the built-in cluster ($steps of each, the setup's $base subtracted):"
for kind in label select expect triple; do
  total=$(instructions "$kind")
  per=$(((total - base) / steps))
  case $kind in
    expect) what="expect-traffic" ;;
    triple) what="label + select + expect-traffic" ;;
    *) what=$kind ;;
  esac
  printf '  %-32s %9d\n' "$what" "$per"
done
