#!/usr/bin/env bash
# Tracking benchmark with a Rust load generator (bench/tracking/loadgen): `kiln server` and
# `mlflow server` (--workers 1 and default workers, SQLite) driven in the same sitting with the
# same flags over N keep-alive connections, then a Markdown table of kiln vs the better mlflow
# against the issue's targets. The shared Python client (bench/tracking.sh) tops out near 1,000
# calls/s on this machine; this generator does not (its own ceiling, against a bare server that
# does no work, is the table's last column). See bench/README.md.
#
#   bench/tracking-loadgen.sh                      # kiln (fresh SQLite) and mlflow now (~16 min)
#   bench/tracking-loadgen.sh --backend postgres   # kiln on a fresh PostgreSQL database (mysql: MariaDB)
#   bench/tracking-loadgen.sh --no-peer --baseline OLD/results/mlflow-w1.json --baseline OLD/results/mlflow-default.json
#
# Output: the table on stdout at the end (also table.md); the result JSONs, the server logs and
# the databases under target/bench-results/tracking-loadgen-<time>/.
set -euo pipefail

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  cat <<'EOF'

Flags:
  --backend B         sqlite (default), postgres or mysql: kiln's store. PostgreSQL and MariaDB
                      get a fresh database, dropped at the end (--keep-db keeps it). mlflow always
                      runs on SQLite.
  --runs N            the search set (default 10000): kiln creates it over HTTP in phases a/a2
  --duration S        the concurrent-writers phase (w), seconds (default 60)
  --connections N     concurrent connections, and writers in phase w (default 8)
  --peer-workers L    mlflow --workers settings, comma list (default 1,default)
  --peer-rate-runs N  runs mlflow creates over HTTP for its phase a/a2 rate samples (default
                      300). mlflow does a few dozen a second here, so its N-run search set is
                      written in-process by mlflow's own code (loadgen/fill_mlflow.py) instead
  --no-peer           measure kiln only; compare with --baseline files if given
  --baseline FILE     with --no-peer: an mlflow results JSON of an earlier sitting (repeatable)
  --no-ceiling        skip the generator-ceiling run (the loadgen against a bare server)
  --keep-db           keep the PostgreSQL/MariaDB database
  -- ARGS             passed on to every loadgen run (e.g. --reps 5 --max-sample-s 30)
Environment: KILN (a kiln binary to measure instead of building one), KILN_PEER_BENCH (the
  shared peer scripts, default ../shared/bench beside the repo: their common.sh makes the venv),
  KILN_BENCH_VENV (the peers' venv), KILN_BENCH_RUN (this run's output dir), KILN_BENCH_PG
  (default postgresql://postgres@127.0.0.1:5432), KILN_BENCH_MYSQL (default
  mysql://root@127.0.0.1:3306): the database servers to use.
EOF
}

backend=sqlite runs=10000 duration=60 connections=8 peer=1 ceiling=1 keep_db=0
peer_workers="1,default" peer_rate_runs=300 baselines=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="${2:?--backend needs sqlite, postgres or mysql}"; shift 2 ;;
    --runs) runs="${2:?--runs needs a count}"; shift 2 ;;
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --connections) connections="${2:?--connections needs a count}"; shift 2 ;;
    --peer-workers) peer_workers="${2:?--peer-workers needs a list}"; shift 2 ;;
    --peer-rate-runs) peer_rate_runs="${2:?--peer-rate-runs needs a count}"; shift 2 ;;
    --no-peer) peer=0; shift ;;
    --baseline) baselines+=("${2:?--baseline needs a results JSON}"); shift 2 ;;
    --no-ceiling) ceiling=0; shift ;;
    --keep-db) keep_db=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/tracking-loadgen.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$backend" in
  sqlite|postgres|mysql) ;;
  postgresql) backend=postgres ;;
  mariadb) backend=mysql ;;
  *) echo "bench/tracking-loadgen.sh: unknown backend '$backend' (sqlite, postgres, mysql)" >&2; exit 2 ;;
esac
for n in "$runs" "$connections" "$peer_rate_runs" "$duration"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench/tracking-loadgen.sh: '$n' is not a positive whole number" >&2; exit 2; }
done
if [ "${#baselines[@]}" -gt 0 ] && [ "$peer" = 1 ]; then
  echo "bench/tracking-loadgen.sh: --baseline goes with --no-peer (a sitting with the peer measures it)" >&2; exit 2
fi
for f in "${baselines[@]}"; do
  [ -f "$f" ] || { echo "bench/tracking-loadgen.sh: --baseline $f: no such file" >&2; exit 2; }
done

root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/bench/tracking"
stamp="$(date +%Y%m%d-%H%M%S)"
run="${KILN_BENCH_RUN:-$root/target/bench-results/tracking-loadgen-$stamp}"
mkdir -p "$run"/{results,logs}
run="$(cd "$run" && pwd)"
results="$run/results"

log() { printf '\n[tracking-loadgen.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t_start=$(date +%s)

# ---------------------------------------------------------------------------- cleanup
# Every server is started by this script in its own session (setsid: mlflow server runs its
# workers as children, and they must go with it), tracked by PID, and stopped on exit, also on
# failure or Ctrl-C: SIGTERM to its process group, then SIGKILL after 15 s. The database this
# script created is dropped after its server is gone.
servers=()
db_drop=()
stop_server() {
  local pid="$1" i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench/tracking-loadgen.sh: server $pid ignored SIGTERM for 15 s; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  srv_status=0
  wait "$pid" 2>/dev/null || srv_status=$?
  kill -KILL -- "-$pid" 2>/dev/null || true  # workers that outlived their parent
  local keep=()
  for i in "${servers[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  servers=("${keep[@]}")
}
cleanup() {
  local pid
  for pid in "${servers[@]}"; do stop_server "$pid"; done
  if [ "${#db_drop[@]}" -gt 0 ]; then
    "${db_drop[@]}" >/dev/null 2>&1 || echo "bench/tracking-loadgen.sh: could not drop the database: ${db_drop[*]}" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server LOG URL DIR CMD...: start CMD in DIR, in its own session (stdout+stderr to LOG),
# and wait until URL/health answers. An empty URL: wait for the server to print its
# http://127.0.0.1:PORT address (kiln server --port 0 and the ceiling do). Sets srv_pid (the
# server's own pid: the subshell execs setsid, which execs the server, since a background job
# of a script is no process-group leader) and srv_url.
start_server() {
  local logf="$1" url="$2" dir="$3"; shift 3
  local deadline=$(($(date +%s) + 180))
  (cd "$dir" && exec setsid "$@") >"$logf" 2>&1 &
  srv_pid=$!
  servers+=("$srv_pid")
  srv_url="$url"
  while :; do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "bench/tracking-loadgen.sh: server exited early: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    [ -n "$srv_url" ] || srv_url="$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$logf" 2>/dev/null || true)"
    if [ -n "$srv_url" ] && curl -sf -o /dev/null --max-time 2 "$srv_url/health"; then break; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "bench/tracking-loadgen.sh: server not ready after 180 s: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    sleep 0.05
  done
}

# ---------------------------------------------------------------------------- 1. build
if [ -n "${KILN:-}" ]; then  # a kiln binary given by hand: measure it as is, build nothing
  kiln="$(command -v "$KILN")" || { echo "bench/tracking-loadgen.sh: KILN=$KILN is not an executable" >&2; exit 2; }
  log "using kiln at $KILN (not building it)"
else
  log "building kiln (release)"
  cargo build --release --locked -p kiln --manifest-path "$root/Cargo.toml"
  kiln="${CARGO_TARGET_DIR:-$root/target}/release/kiln"
fi
"$kiln" server --help >/dev/null 2>&1 || { echo "bench/tracking-loadgen.sh: $kiln has no 'server' command" >&2; exit 2; }
# The generator and the ceiling are tiny cargo projects of their own, kept out of the workspace
# and built into their own (ignored) target dirs, never into kiln's build.
log "building the load generator (bench/tracking/loadgen)"
cargo build --release --locked --manifest-path "$here/loadgen/Cargo.toml" --target-dir "$root/target/loadgen"
lg="$root/target/loadgen/release/kiln-tracking-loadgen"
if [ "$ceiling" = 1 ]; then
  log "building the bare server for the generator's ceiling (bench/tracking/ceiling)"
  cargo build --release --locked --manifest-path "$here/ceiling/Cargo.toml" --target-dir "$root/target/ceiling"
  ceiling_bin="$root/target/ceiling/release/kiln-tracking-ceiling"
fi
if [ "$peer" = 1 ]; then
  shared="${KILN_PEER_BENCH:-$root/../shared/bench}"
  [ -f "$shared/common.sh" ] || { echo "bench/tracking-loadgen.sh: the peer scripts are not at $shared (set KILN_PEER_BENCH)" >&2; exit 2; }
  # The shared scripts' venv (mlflow pinned there), made or refreshed the way they do it.
  bash -c 'source "$1/common.sh" && kb_venv' _ "$shared"
  venv_py="${KILN_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-bench/venv}/bin/python"
  mlflow_v="$("$venv_py" -c 'import mlflow; print(mlflow.__version__)')"
fi

# The same flags for every server (the peer adds only where its search set lives and how many
# runs its rate samples create). The caps keep mlflow's share of the sitting near 13 minutes.
# The warm-up: mlflow answers its first few hundred calls after start 2-3x slower than later ones
# (runs/create ~13/s, then ~40/s here), which phase a would otherwise measure.
reps=3 lm_calls=20000 search_calls=30 sample_s=10 batch_s=60 latency_s=120 warmup=200
LG=(--connections "$connections" --runs "$runs" --duration "$duration" --chunks 5 --reps "$reps"
    --log-metric-calls "$lm_calls" --history-points 100000 --search-calls "$search_calls"
    --max-sample-s "$sample_s" --max-batch-s "$batch_s" --max-latency-s "$latency_s" --timeout-s 300
    --warmup "$warmup" --seed 42 "${extra[@]}")
declare -A lg_status=()
# loadgen LABEL ARGS...: one sitting against the server just started (srv_url, srv_pid); its exit status is kept (3: failed
# calls or wrong answers, said in the JSON and the table), the script goes on.
loadgen() {
  local label="$1"; shift
  local st
  set +e
  "$lg" --url "$srv_url" --label "$label" --pid "$srv_pid" --out "$results/$label.json" "${LG[@]}" "$@" 2>&1 \
    | tee "$run/logs/loadgen-$label.log" >&2
  st="${PIPESTATUS[0]}"
  set -e
  lg_status[$label]="$st"
  [ "$st" = 0 ] || log "$label: the load generator exited with status $st (see logs/loadgen-$label.log)"
  [ -f "$results/$label.json" ] || { echo "bench/tracking-loadgen.sh: no results from $label" >&2; exit 1; }
}

# ---------------------------------------------------------------------------- 2. kiln
db_name="kiln_bench_${stamp//-/_}_$$"
case "$backend" in
  sqlite)
    store="sqlite:///$run/kiln.db"  # $run is absolute: sqlite:////abs/path
    store_desc="a fresh SQLite file" ;;
  postgres)
    base="${KILN_BENCH_PG:-postgresql://postgres@127.0.0.1:5432}"; base="${base%/}"
    psql "$base/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $db_name" >/dev/null
    db_drop=(psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)")
    store="$base/$db_name"
    store_desc="a fresh PostgreSQL database ($db_name)" ;;
  mysql)
    base="${KILN_BENCH_MYSQL:-mysql://root@127.0.0.1:3306}"; base="${base%/}"
    # mariadb takes no URL: split mysql://user[:password]@host[:port]
    hostpart="${base#mysql://}"; cred="${hostpart%@*}"; hostport="${hostpart#*@}"
    my=(mariadb -h "${hostport%:*}" -u "${cred%%:*}")
    [[ "$hostport" == *:* ]] && my+=(-P "${hostport##*:}")
    [[ "$cred" == *:* ]] && my+=("-p${cred#*:}")
    "${my[@]}" -e "CREATE DATABASE $db_name"
    db_drop=("${my[@]}" -e "DROP DATABASE IF EXISTS $db_name")
    store="$base/$db_name"
    store_desc="a fresh MariaDB database ($db_name)" ;;
esac
[ "$keep_db" = 1 ] && db_drop=()

kiln_label="kiln"
[ "$backend" = sqlite ] || kiln_label="kiln-$backend"
log "kiln server on $store_desc"
start_server "$run/logs/kiln-server.log" "" "$run" "$kiln" server --port 0 \
  --backend-store-uri "$store" --artifacts-destination "$run/kiln-artifacts"
sleep 1  # let the store's pool settle before the idle RSS figure
loadgen "$kiln_label"
stop_server "$srv_pid"
[ "$srv_status" = 0 ] || echo "bench/tracking-loadgen.sh: kiln server exited with status $srv_status on SIGTERM" >&2
if grep -Eiq 'error|warn|panic' "$run/logs/kiln-server.log"; then
  log "kiln server logged errors or warnings (logs/kiln-server.log):"
  grep -Ei 'error|warn|panic' "$run/logs/kiln-server.log" | head -20 >&2
fi

# ---------------------------------------------------------------------------- 3. mlflow
peer_files=()
if [ "$peer" = 1 ]; then
  log "mlflow's $runs-run search set, written in-process by mlflow's own store code"
  "$lg" search-set --runs "$runs" --seed 42 >"$run/search-set.json"
  search_exp="$("$venv_py" "$here/loadgen/fill_mlflow.py" --db "$run/mlflow-search-set.db" \
    --set "$run/search-set.json" 2>"$run/logs/fill-mlflow.log")" \
    || { cat "$run/logs/fill-mlflow.log" >&2; exit 1; }
  grep -v ' INFO ' "$run/logs/fill-mlflow.log" >&2 || true
  IFS=, read -r -a pw <<<"$peer_workers"
  for w in "${pw[@]}"; do
    w="${w// /}"
    label="mlflow-w$w"
    [ "$w" = default ] && label="mlflow-default"
    dir="$run/$label"
    mkdir -p "$dir"
    cp "$run/mlflow-search-set.db" "$dir/mlflow.db"  # each server starts from the same rows
    port="$("$venv_py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cmd=("$venv_py" -m mlflow server --host 127.0.0.1 --port "$port"
         --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/artifacts")
    desc="(default workers)"
    [ "$w" = default ] || { cmd+=(--workers "$w"); desc="--workers $w"; }
    log "mlflow server $desc (mlflow $mlflow_v, SQLite, the search set's copy)"
    # Started in its own folder: whatever mlflow writes beside itself stays in the run's.
    start_server "$run/logs/$label-server.log" "http://127.0.0.1:$port" "$dir" "${cmd[@]}"
    loadgen "$label" --search-experiment "$search_exp" --rate-runs "$peer_rate_runs"
    stop_server "$srv_pid"
    peer_files+=("$results/$label.json")
  done
else
  mkdir -p "$run/peer"
  for f in "${baselines[@]}"; do
    cp -p "$f" "$run/peer/" && peer_files+=("$run/peer/$(basename "$f")")
  done
fi

# ---------------------------------------------------------------------------- 4. ceiling
ceiling_args=()
if [ "$ceiling" = 1 ]; then
  log "the generator's own ceiling: the write phases against a bare server that does no work"
  start_server "$run/logs/ceiling.log" "" "$run" "$ceiling_bin" --port 0
  loadgen client-ceiling --phases a,a2,b,c
  stop_server "$srv_pid"
  ceiling_args=(--ceiling "$results/client-ceiling.json")
fi

# ---------------------------------------------------------------------------- 5. the table
peer_args=()
for f in "${peer_files[@]}"; do peer_args+=(--peer "$f"); done
if [ "$peer" = 1 ]; then
  peer_note="mlflow $mlflow_v (SQLite), measured in this sitting right after kiln with the same flags."
elif [ "${#baselines[@]}" -gt 0 ]; then
  peer_note="mlflow: results given with --baseline, NOT re-measured in this sitting."
else
  peer_note="No mlflow figures (--no-peer without --baseline)."
fi
sizes_note="Sizes: $connections connections; search set $runs runs (kiln: created over HTTP by phases a/a2, whose samples are its rates"
[ "$peer" = 1 ] && sizes_note+="; mlflow: written in-process by mlflow's own store code (loadgen/fill_mlflow.py), its a/a2 rates from $peer_rate_runs runs created over HTTP"
sizes_note+="); a warm-up of $warmup unmeasured rounds (runs/create, log-batch, log-metric) first; (a), (a2) 5 samples; (b) $reps × $lm_calls calls; (c) $reps × 100 calls of 1,000 points; (d) $search_calls first pages + $(( search_calls / 3 > 3 ? search_calls / 3 : 3 )) walks of all pages; (e) $(( reps > 3 ? reps : 3 )) reads; (w) $connections writers × $duration s; each rate sample capped at $sample_s s (c: $batch_s s), each latency loop at $latency_s s${extra[*]:+; then: ${extra[*]} (the later flag wins)}. Rates: median of the samples; times: p50/p99 of the calls (nearest rank)."
log "done in $(( $(date +%s) - t_start )) s; results in ${run#"$root"/}"
{
  echo "kiln server ($backend, $store_desc) vs mlflow server: $(date +%F), $(nproc) CPUs, the Rust load generator (bench/tracking/loadgen)."
  echo
  "$lg" table --kiln "$results/$kiln_label.json" "${peer_args[@]}" "${ceiling_args[@]}" \
    --note "$peer_note" --note "$sizes_note"
} | tee "$run/table.md"
[ "${lg_status[$kiln_label]}" = 0 ] || exit 3
