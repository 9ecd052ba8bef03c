#!/usr/bin/env bash
# The whole test suite: formatting, lints, the runbook scenarios under `rehearse check`,
# `cargo test` against a running testbed (built and started here if needed, stopped afterwards
# unless it was already running), then the runbook suite once at the testbed's fast pace and once
# at its kind pace (kwok's general pod stages: pods Ready after seconds; and the testbed's own
# pod-delete stage: terminating pods kept until a moment after their grace period), whose
# result documents must be the same bytes, and the verdict
# tests (tests/verdicts.rs) once more at the kind pace.
set -euo pipefail
cd "$(dirname "$0")/.."

testbed=tests/testbed/testbed.sh
export GOTOOLCHAIN=local

# tests/insta_review.rs reviews snapshots with the real cargo-insta; a fresh machine lacks it.
if ! cargo insta --version >/dev/null 2>&1; then
  cargo install --locked cargo-insta || { echo "tests/run.sh: cannot install cargo-insta from the crates registry" >&2; exit 3; }
fi

bash "$testbed" build
started_here=0
if ! bash "$testbed" status >/dev/null 2>&1; then
  started_here=1
  trap 'bash "$testbed" down' EXIT
  bash "$testbed" up --pace fast
else
  # Someone's running testbed: cargo test runs at the fast pace; whatever happens, leave it at
  # the fast pace (the kind-pace run below switches it, kwok only).
  trap 'bash "$testbed" pace fast' EXIT
  bash "$testbed" pace fast
fi
eval "$(bash "$testbed" env)"
export REHEARSE_KUBECONFIG="$KUBECONFIG"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked
./target/debug/rehearse check --deny-warnings scenarios
mkdir -p target
# A failing test binary must not stop the run before the closing count line below.
test_status=0
cargo test --locked --no-fail-fast 2>&1 | tee target/test-output.log || test_status=$?
count() { grep -Eo "test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed" target/test-output.log | awk -v f="$1" '{s += $f} END {print s + 0}'; }

# The runbook suite at both paces: three more results (the suite at the fast pace, the suite at
# the kind pace, and the two runs' result documents compared byte for byte).
extra_passed=0
extra_failed=0
result() {
  if [ "$1" = ok ]; then
    extra_passed=$((extra_passed + 1))
    echo "ok   $2"
  else
    extra_failed=$((extra_failed + 1))
    echo "FAIL $2"
  fi
}
# The runbook scenarios and the edge cases the built-in cluster is held to (tests/parity/).
suite_paths=(scenarios tests/parity)
# suite CLUSTER PACE : the suite on the testbed (kube) or the built-in cluster at PACE, into
# target/results-CLUSTER-PACE; prints its wall time.
suite() {
  local cluster=$1 pace=$2 start end status=ok paced=()
  if [ "$cluster" = kube ]; then bash "$testbed" pace "$pace"; else paced=(--pace "$pace"); fi
  rm -rf "target/results-$cluster-$pace"
  start=$(date +%s.%N)
  ./target/debug/rehearse run --cluster "$cluster" "${paced[@]}" --jobs 4 \
    --results "target/results-$cluster-$pace" "${suite_paths[@]}" || status=failed
  end=$(date +%s.%N)
  result "$status" "suite on $cluster at the $pace pace ($(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s wall)"
}
suite kube fast
suite kube kind
suite builtin fast
suite builtin kind
# The traffic-rule and guard tests once more at the kind pace, where pods stay terminating (still
# serving) until a moment after their grace period: their verdicts must not change.
cargo test --locked --test verdicts 2>&1 | tee -a target/test-output.log || test_status=$?
# And on the built-in cluster: the same verdicts without a real control plane.
REHEARSE_TEST_CLUSTER=builtin cargo test --locked --test verdicts 2>&1 | tee -a target/test-output.log || test_status=$?
bash "$testbed" pace fast
# Parity: every run's result documents the same bytes as the testbed's at the fast pace.
for other in kube-kind builtin-fast builtin-kind; do
  if diff -r target/results-kube-fast "target/results-$other" >"target/results-diff-$other.txt" 2>&1; then
    result ok "result documents of $other the same bytes as kube-fast"
  else
    head -n 200 "target/results-diff-$other.txt"
    result failed "result documents of $other differ from kube-fast (whole diff in target/results-diff-$other.txt)"
  fi
done

if [ "$started_here" = 1 ]; then
  trap - EXIT
  bash "$testbed" down
else
  trap - EXIT
fi
# The parser's fuzz target (any bytes through parse, check and format) for a bounded time: a
# crash, a hang or a leak past its limits fails the run.
if bash fuzz/run.sh 60 >target/fuzz.log 2>&1; then
  result ok "fuzz target parse for 60 s: $(grep -Eo 'Done [0-9]+ runs' target/fuzz.log | tail -1), no crash"
else
  tail -n 40 target/fuzz.log
  result failed "fuzz target parse (whole log in target/fuzz.log)"
fi

# One closing line for CI: every test binary's counts added up, plus the checks above.
echo "tests: $(($(count 4) + extra_passed)) passed, $(($(count 6) + extra_failed)) failed"
[ "$extra_failed" = 0 ] && [ "$test_status" = 0 ]
