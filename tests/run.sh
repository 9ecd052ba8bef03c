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
cargo test --locked
if [ "$started_here" = 1 ]; then
  echo "tests/run.sh: all passed; stopping the testbed it started"
else
  echo "tests/run.sh: all passed; the testbed was already running and stays up"
fi
