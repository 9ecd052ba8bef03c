#!/usr/bin/env bash
# The whole test suite: formatting, lints, the runbook scenarios under `rehearse check`, and
# `cargo test` against a running testbed (built and started here if needed, stopped afterwards
# unless it was already running).
set -euo pipefail
cd "$(dirname "$0")/.."

testbed=tests/testbed/testbed.sh
export GOTOOLCHAIN=local

bash "$testbed" build
started_here=0
if ! bash "$testbed" status >/dev/null 2>&1; then
  started_here=1
  trap 'bash "$testbed" down' EXIT
  bash "$testbed" up
fi
eval "$(bash "$testbed" env)"
export REHEARSE_KUBECONFIG="$KUBECONFIG"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked
./target/debug/rehearse check --deny-warnings scenarios
mkdir -p target
cargo test --locked 2>&1 | tee target/test-output.log
count() { grep -Eo "test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed" target/test-output.log | awk -v f="$1" '{s += $f} END {print s + 0}'; }
if [ "$started_here" = 1 ]; then
  trap - EXIT
  bash "$testbed" down
fi
# One closing line for CI: every test binary's counts added up.
echo "tests: $(count 4) passed, $(count 6) failed"
