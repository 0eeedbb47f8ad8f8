#!/usr/bin/env bash
# Training benchmark: kiln vs scikit-learn on the same CSVs and hyper-parameters, measured in
# the same run. Uses the peer script in ../shared/bench (it installs scikit-learn into a private
# venv on first use), then prints kiln/sklearn ratios per model.
#
#   bench/train.sh                       # all models, 3 reps each
#   bench/train.sh --reps 5 --models nb_count,lr_tfidf
#   (other flags go to the peer script: --tab-n, --text-n, --data-dir …)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peer="${KILN_PEER_BENCH:-$root/../shared/bench}"
[ -x "$peer/train.sh" ] || { echo "bench/train.sh: the peer scripts are not at $peer (set KILN_PEER_BENCH)" >&2; exit 2; }
cargo build --release --locked -p kiln --manifest-path "$root/Cargo.toml"
results="${KILN_BENCH_RESULTS:-$root/target/bench-results/train-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$results"
export KILN_BENCH_RESULTS="$results"
chmod +x "$root/bench/train/kiln-train.sh"
"$peer/train.sh" --reps 3 --label kiln \
  --target-cmd "$root/bench/train/kiln-train.sh {model} {train} {test}" "$@"
"${KILN_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-bench/venv}/bin/python" \
  "$root/bench/train_table.py" "$results/train-peer-sklearn.json" "$results/train-kiln.json"
