#!/usr/bin/env bash
# Every check CI runs: formatting, lints, and all tests (unit, CLI and server integration, the
# official mlflow client against kiln serve).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The real clients the tests drive (the pinned mlflow), in a private venv.
KILN_TEST_PYTHON="$(./scripts/python-env.sh)"
export KILN_TEST_PYTHON
cargo test --locked --workspace
echo "scripts/test.sh: all checks passed in $(( $(date +%s) - start )) s"
