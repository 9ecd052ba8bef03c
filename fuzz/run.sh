#!/usr/bin/env bash
# Runs the `parse` fuzz target for a bounded time (default 60 s), seeded with the repository's
# scripts. Needs the nightly toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer);
# installs cargo-fuzz from the crates registry if missing. No sanitizer: Rust code is memory-safe
# without one, what the target hunts is panics, hangs and memory blow-ups (libFuzzer's -timeout
# and -rss_limit_mb), and AddressSanitizer's build of kube and k8s-openapi took over 10 minutes.
# tests/run.sh runs it for 60 s.
#
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
corpus=fuzz/corpus/parse
mkdir -p "$corpus"
find scenarios tests/fixtures -name '*.rollout' -exec cp {} "$corpus"/ \;
cargo +nightly fuzz run --sanitizer none --release parse "$corpus" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048
