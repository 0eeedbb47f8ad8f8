#!/usr/bin/env bash
# Build kiln, train the spam example, print its report, score a few new messages, then serve the
# model over HTTP and ask it twice (set KILN_PORT if 8080 is taken).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p kiln
KILN="${CARGO_TARGET_DIR:-target}/release/kiln"
"$KILN" train examples/spam/kiln.yaml
echo
echo "== scoring examples/spam/messages.csv"
"$KILN" predict -m examples/spam/out/model -i examples/spam/messages.csv -o examples/spam/out/scored.csv --proba
cat examples/spam/out/scored.csv

# Serve the model and ask it, as the DVC seed's API and MLflow's scoring protocol are asked.
if command -v curl >/dev/null; then
  port="${KILN_PORT:-8080}"
  echo
  echo "== kiln serve -m examples/spam/out/model --port $port"
  "$KILN" serve -m examples/spam/out/model --port "$port" &
  server=$!
  trap 'kill -TERM $server 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sf "localhost:$port/ping" >/dev/null && break; sleep 0.1; done
  echo "\$ curl -d '{\"text\":\"You have WON a PRIZE, text back\"}' localhost:$port/predict"
  curl -s -d '{"text":"You have WON a PRIZE, text back"}' "localhost:$port/predict"; echo
  echo "\$ curl -H 'Content-Type: application/json' -d '{\"dataframe_records\": [...]}' localhost:$port/invocations"
  curl -s -H 'Content-Type: application/json' \
    -d '{"dataframe_records": [{"text": "see you at 5?"}, {"text": "URGENT! Claim your free cash prize now"}]}' \
    "localhost:$port/invocations"; echo
  kill -TERM "$server"; wait "$server" || true
  trap - EXIT
fi
