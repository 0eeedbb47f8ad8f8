#!/usr/bin/env bash
# Build kiln, train the spam example, print its report, and score a few new messages.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p kiln
KILN="${CARGO_TARGET_DIR:-target}/release/kiln"
"$KILN" train examples/spam/kiln.yaml
echo
echo "== scoring examples/spam/messages.csv"
"$KILN" predict -m examples/spam/out/model -i examples/spam/messages.csv -o examples/spam/out/scored.csv --proba
cat examples/spam/out/scored.csv
