#!/usr/bin/env bash
# Every check CI runs: formatting, lints, and all tests (unit + CLI integration).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
echo "scripts/test.sh: all checks passed in $(( $(date +%s) - start )) s"
