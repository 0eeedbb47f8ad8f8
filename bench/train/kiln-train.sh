#!/usr/bin/env bash
# One timed kiln run for the peer script: kiln-train.sh MODEL TRAIN_CSV TEST_CSV.
# Prints kiln's one-line JSON summary last (accuracy, macro_f1, fit_s, predict_s).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${KILN:-${CARGO_TARGET_DIR:-$here/../../target}/release/kiln}" -q train "$here/$1.yaml" --data "$2" --test-data "$3" --out "$out" --summary-json
