#!/usr/bin/env bash
# Serving benchmark: `kiln serve` vs `mlflow models serve` on the same models, payloads and load
# generator, measured in one sitting, plus the machine's ceiling (a bare axum handler). Uses the
# peer script in ../shared/bench (serving.sh: wrk, payloads, result JSON; it installs the peers
# into a private venv and wrk with apt-get on first use). See bench/README.md.
#
#   bench/serving.sh                          # full run: peer + kiln + ceiling, both models
#   bench/serving.sh --duration 2 --reps 1    # quick check
#   bench/serving.sh --skip-peer --models iris   # reuse the newest saved mlflow results
#
# Output: a Markdown table (bench/serving/table.py) on stdout at the end; every result JSON,
# server log, trained model and payload under target/bench-results/serving-<time>/.
set -euo pipefail

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  cat <<'EOF'

Flags:
  --duration S      seconds per wrk run (default 6)
  --reps N          wrk runs per figure; figures are their medians (default 3)
  --skip-peer       do not run mlflow; reuse the newest saved peer results (an earlier run of
                    this script, else the peer scripts' results dir, else their baseline/)
  --models LIST     comma-separated, from iris,text (default iris,text)
Environment: KILN (a kiln binary to measure instead of building one), KILN_PEER_BENCH (the
  peer scripts, default ../shared/bench beside the repo), KILN_BENCH_RUN (this run's output
  dir), KILN_BENCH_VENV (the peers' venv).
EOF
}

duration=6 reps=3 skip_peer=0 models="iris,text"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --reps) reps="${2:?--reps needs a count}"; shift 2 ;;
    --skip-peer) skip_peer=1; shift ;;
    --models) models="${2:?--models needs a list}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/serving.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || { echo "bench/serving.sh: --duration must be a whole number of seconds" >&2; exit 2; }
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "bench/serving.sh: --reps must be a positive whole number" >&2; exit 2; }
IFS=, read -r -a model_list <<<"$models"
for m in "${model_list[@]}"; do
  case "$m" in iris|text) ;; *) echo "bench/serving.sh: unknown model '$m' (iris, text)" >&2; exit 2 ;; esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/bench/serving"
peer="${KILN_PEER_BENCH:-$root/../shared/bench}"
[ -x "$peer/serving.sh" ] || { echo "bench/serving.sh: the peer scripts are not at $peer (set KILN_PEER_BENCH)" >&2; exit 2; }
peer="$(cd "$peer" && pwd)"  # the peer script cds into its own folder: pass it absolute paths only
venv_py="${KILN_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-bench/venv}/bin/python"

run="${KILN_BENCH_RUN:-$root/target/bench-results/serving-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$run"/{results,logs,models}
run="$(cd "$run" && pwd)"
results="$run/results"
export KILN_BENCH_RESULTS="$results"  # the peer script saves every result JSON here

log() { printf '\n[serving.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t_start=$(date +%s)

# ---------------------------------------------------------------------------- servers we start
# Every server this script starts is a direct child, tracked by PID, and stopped on exit (also on
# failure or Ctrl-C): SIGTERM, then SIGKILL if it has not exited after 15 s. The peer script stops
# its own mlflow servers (it runs in the foreground, so Ctrl-C reaches it too).
servers=()
stop_server() {
  local pid="$1" i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench/serving.sh: server $pid ignored SIGTERM for 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  local keep=()
  for i in "${servers[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  servers=("${keep[@]}")
}
cleanup() {
  local pid
  for pid in "${servers[@]}"; do stop_server "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server LOG CMD...: start CMD in the background (stdout+stderr to LOG), wait until it prints
# its http://127.0.0.1:PORT address and answers GET /ping. Sets srv_pid, srv_url and srv_startup_s
# (launch to first good /ping, the peer's definition of start-up time).
start_server() {
  local logf="$1"; shift
  local t0 t1 deadline
  t0=$(date +%s%N)
  deadline=$((t0 + 120 * 1000000000))
  "$@" >"$logf" 2>&1 &
  srv_pid=$!
  servers+=("$srv_pid")
  srv_url=""
  while :; do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "bench/serving.sh: server exited early: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    [ -n "$srv_url" ] || srv_url="$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$logf" || true)"
    if [ -n "$srv_url" ] && curl -sf -o /dev/null --max-time 2 "$srv_url/ping"; then break; fi
    if [ "$(date +%s%N)" -gt "$deadline" ]; then
      echo "bench/serving.sh: server not ready after 120 s: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    sleep 0.005
  done
  t1=$(date +%s%N)
  srv_startup_s=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.4f", d / 1e9 }')
}

# ---------------------------------------------------------------------------- 1. build, data, models
if [ -n "${KILN:-}" ]; then  # a kiln binary given by hand: measure it as is, build nothing
  kiln="$(command -v "$KILN")" || { echo "bench/serving.sh: KILN=$KILN is not an executable" >&2; exit 2; }
  log "using kiln at $KILN (not building it); building the ceiling server"
else
  log "building kiln (release) and the ceiling server"
  cargo build --release --locked -p kiln --manifest-path "$root/Cargo.toml"
  kiln="${CARGO_TARGET_DIR:-$root/target}/release/kiln"
fi
# The ceiling is its own tiny cargo project, kept out of the workspace; its build goes into the
# repo's (ignored) target dir so it never touches kiln's build.
CARGO_TARGET_DIR="$root/target/ceiling" \
  cargo build --release --locked --manifest-path "$here/ceiling/Cargo.toml"
ceiling_bin="$root/target/ceiling/release/kiln-serving-ceiling"

log "writing the peer's data and payloads (shared serving.sh --write-payloads)"
"$peer/serving.sh" --write-payloads "$run/payloads" >"$run/logs/payloads.log"
payloads="$run/payloads"

for m in "${model_list[@]}"; do
  log "training kiln's $m model (bench/serving/$m.yaml) on ${m}_train.csv"
  # The test CSV is only there so kiln does not split the training rows (data.test_path): the
  # model is fitted on the whole training CSV, as the peer's is. The report goes to the log.
  "$kiln" train "$here/$m.yaml" --data "$payloads/data/${m}_train.csv" \
    --test-data "$payloads/data/${m}_test.csv" --out "$run/models/$m" >"$run/logs/train-$m.log" 2>&1 \
    || { cat "$run/logs/train-$m.log" >&2; exit 1; }
done

# ---------------------------------------------------------------------------- 2. the peer
peer_args=()
for m in "${model_list[@]}"; do peer_args+=(--model "$m"); done
if [ "$skip_peer" = 0 ]; then
  log "peer: mlflow models serve, ${model_list[*]} (--duration $duration --reps $reps)"
  "$peer/serving.sh" --peer-only "${peer_args[@]}" --duration "$duration" --reps "$reps"
else
  # Newest saved peer result per model: an earlier run of this script, else the peer scripts'
  # own results dir, else the figures kept with them. Copied here so this run's table and the
  # peer script's ratio printout both see it.
  for m in "${model_list[@]}"; do
    f="serving-$m-peer-mlflow-serve.json"
    src="$(ls -t "$root"/target/bench-results/serving-*/results/"$f" \
      "${XDG_CACHE_HOME:-$HOME/.cache}/kiln-bench/results/$f" "$peer/baseline/$f" 2>/dev/null | head -1 || true)"
    [ -n "$src" ] || { echo "bench/serving.sh: no saved peer result $f; run without --skip-peer" >&2; exit 1; }
    cp -p "$src" "$results/$f"  # -p keeps the measurement time for the next --skip-peer
    log "--skip-peer: mlflow figures for $m from ${src#"$root"/}"
  done
fi

# ---------------------------------------------------------------------------- 3. kiln + 4. ceiling
# bench_kiln MODEL LABEL [SERVE FLAGS...]: serve the model, drive it with the peer script.
bench_kiln() {
  local m="$1" label="$2"; shift 2
  log "$label: kiln serve${*:+ $*} ($m)"
  start_server "$run/logs/$label-$m.log" "$kiln" serve -m "$run/models/$m/model" --port 0 "$@"
  echo "  $srv_url (pid $srv_pid), ready in ${srv_startup_s}s" >&2
  "$peer/serving.sh" --target "$srv_url" --model "$m" --pid "$srv_pid" --label "$label" \
    --duration "$duration" --reps "$reps"
  stop_server "$srv_pid"
}

for m in "${model_list[@]}"; do
  # Start-up time (launch to first good /ping), a fresh process each of $reps times.
  startup=()
  for ((i = 0; i < reps; i++)); do
    start_server "$run/logs/startup-$m.log" "$kiln" serve -m "$run/models/$m/model" --port 0
    startup+=("$srv_startup_s")
    stop_server "$srv_pid"
  done
  echo "  kiln serve start-up, $m: ${startup[*]} s" >&2

  bench_kiln "$m" kiln
  "$venv_py" "$here/measure.py" --peer-dir "$peer" add-metric \
    "$results/serving-$m-kiln.json" startup_s s lower "${startup[@]}"
  bench_kiln "$m" kiln-nobatch --no-batching

  log "ceiling: bare axum handler, $m single-row body, c=64"
  start_server "$run/logs/ceiling-$m.log" "$ceiling_bin" --port 0
  "$venv_py" "$here/measure.py" --peer-dir "$peer" ceiling --url "$srv_url" \
    --body "$payloads/${m}_single.json" --lua "$payloads/post.lua" --model "$m" \
    --duration "$duration" --reps "$reps" --out "$results/serving-$m-ceiling.json"
  stop_server "$srv_pid"
done

# ---------------------------------------------------------------------------- 5. the table
log "done in $(( $(date +%s) - t_start )) s; results in ${run#"$root"/}"
"$venv_py" "$here/table.py" "$results" --models "$models" | tee "$run/table.md"
