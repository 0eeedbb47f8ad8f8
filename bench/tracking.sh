#!/usr/bin/env bash
# Tracking benchmark: `kiln server` driven by the shared peer script (../shared/bench/tracking.sh:
# the MLflow REST API over raw HTTP from 8 Python client threads, plus the official MlflowClient)
# with the sizes of the saved mlflow baseline, then a Markdown table of kiln vs mlflow with the
# issue's targets and the Python client's own ceiling. See bench/README.md.
#
#   bench/tracking.sh                        # kiln on a fresh SQLite file vs the saved mlflow baseline
#   bench/tracking.sh --backend postgres     # ... on a fresh PostgreSQL database (mysql: MariaDB)
#   bench/tracking.sh --also-peer            # re-measure mlflow now (about 20 more minutes)
#
# Output: the table on stdout at the end (also table.md); the result JSONs, the logs, the SQLite
# file and the ceiling's canned bodies under target/bench-results/tracking-<time>/.
set -euo pipefail

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  cat <<'EOF'

Flags:
  --backend B         sqlite (default), postgres or mysql: kiln's store. PostgreSQL and MariaDB
                      get a fresh database, dropped at the end (--keep-db keeps it)
  --also-peer         re-measure mlflow in this sitting (the shared script's --also-peer) instead
                      of comparing with the saved baseline; mlflow always runs on SQLite
  --peer-workers L    with --also-peer: mlflow --workers settings, comma list (default 1,default)
  --baseline FILE     compare with these mlflow result JSONs (repeatable), e.g. the
                      results/tracking-peer-mlflow-w*.json of an earlier --also-peer run, instead
                      of the shared scripts' saved baseline/
  --workers N         client threads (the shared script's --workers; the baseline used 8, so any
                      other value makes the ratios incomparable unless --also-peer)
  --no-ceiling        skip the client-ceiling run (a bare server replaying kiln's answers)
  --keep-db           keep the PostgreSQL/MariaDB database
  -- ARGS            passed on to the shared tracking.py (sizes, --max-phase-s ...); sizes other
                      than the baseline's make the ratios incomparable unless --also-peer
Environment: KILN (a kiln binary to measure instead of building one), KILN_PEER_BENCH (the peer
  scripts, default ../shared/bench beside the repo), KILN_BENCH_RUN (this run's output dir),
  KILN_BENCH_VENV (the peers' venv), KILN_BENCH_PG (default postgresql://postgres@127.0.0.1:5432),
  KILN_BENCH_MYSQL (default mysql://root@127.0.0.1:3306): the database servers to use.
EOF
}

# The sizes of the saved baseline (../shared/bench/baseline/tracking-peer-*.json).
SIZES=(--runs 2000 --chunks 4 --log-metric-calls 500 --client-calls 100)

backend=sqlite also_peer=0 peer_workers="1,default" workers="" ceiling=1 keep_db=0 extra=() baselines=()
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="${2:?--backend needs sqlite, postgres or mysql}"; shift 2 ;;
    --also-peer) also_peer=1; shift ;;
    --peer-workers) peer_workers="${2:?--peer-workers needs a list}"; shift 2 ;;
    --baseline) baselines+=("${2:?--baseline needs a result JSON}"); shift 2 ;;
    --workers) workers="${2:?--workers needs a count}"; shift 2 ;;
    --no-ceiling) ceiling=0; shift ;;
    --keep-db) keep_db=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/tracking.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$backend" in
  sqlite|postgres|mysql) ;;
  postgresql) backend=postgres ;;
  mariadb) backend=mysql ;;
  *) echo "bench/tracking.sh: unknown backend '$backend' (sqlite, postgres, mysql)" >&2; exit 2 ;;
esac
if [ "${#baselines[@]}" -gt 0 ] && [ "$also_peer" = 1 ]; then
  echo "bench/tracking.sh: --baseline and --also-peer exclude each other" >&2; exit 2
fi
for f in "${baselines[@]}"; do
  [ -f "$f" ] || { echo "bench/tracking.sh: --baseline $f: no such file" >&2; exit 2; }
done
if [ -n "$workers" ] && ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench/tracking.sh: --workers must be a positive whole number" >&2; exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
here="$root/bench/tracking"
peer="${KILN_PEER_BENCH:-$root/../shared/bench}"
[ -x "$peer/tracking.sh" ] || { echo "bench/tracking.sh: the peer scripts are not at $peer (set KILN_PEER_BENCH)" >&2; exit 2; }
peer="$(cd "$peer" && pwd)"  # the peer script cds into its own folder: pass it absolute paths only
venv_py="${KILN_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln-bench/venv}/bin/python"

stamp="$(date +%Y%m%d-%H%M%S)"
run="${KILN_BENCH_RUN:-$root/target/bench-results/tracking-$stamp}"
mkdir -p "$run"/{results,logs,artifacts,ceiling-bodies}
run="$(cd "$run" && pwd)"
results="$run/results"
export KILN_BENCH_RESULTS="$results"  # the peer script saves every result JSON here

log() { printf '\n[tracking.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t_start=$(date +%s)

# ---------------------------------------------------------------------------- cleanup
# Every server this script starts is a direct child, tracked by PID, and stopped on exit (also on
# failure or Ctrl-C): SIGTERM, then SIGKILL if it has not exited after 15 s. The database it
# created is dropped after its server is gone. The peer script stops its own mlflow servers (it
# runs in the foreground, so Ctrl-C reaches it too).
servers=()
db_drop=()
stop_server() {
  local pid="$1" i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "bench/tracking.sh: server $pid ignored SIGTERM for 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  srv_status=0
  wait "$pid" 2>/dev/null || srv_status=$?
  local keep=()
  for i in "${servers[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  servers=("${keep[@]}")
}
cleanup() {
  local pid
  for pid in "${servers[@]}"; do stop_server "$pid"; done
  if [ "${#db_drop[@]}" -gt 0 ]; then
    "${db_drop[@]}" >/dev/null 2>&1 || echo "bench/tracking.sh: could not drop the database: ${db_drop[*]}" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server LOG CMD...: start CMD in the background (stdout+stderr to LOG), wait until it prints
# its http://127.0.0.1:PORT address and answers GET /health. Sets srv_pid and srv_url.
start_server() {
  local logf="$1"; shift
  local deadline=$(($(date +%s) + 120))
  "$@" >"$logf" 2>&1 &
  srv_pid=$!
  servers+=("$srv_pid")
  srv_url=""
  while :; do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "bench/tracking.sh: server exited early: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    [ -n "$srv_url" ] || srv_url="$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$logf" 2>/dev/null || true)"
    if [ -n "$srv_url" ] && curl -sf -o /dev/null --max-time 2 "$srv_url/health"; then break; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "bench/tracking.sh: server not ready after 120 s: $*" >&2; tail -20 "$logf" >&2; return 1
    fi
    sleep 0.02
  done
}

# rss_mb PID FIELD: VmRSS (resident now) or VmHWM (peak) of one process, MiB.
rss_mb() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo nan; }

# ---------------------------------------------------------------------------- 1. build
if [ -n "${KILN:-}" ]; then  # a kiln binary given by hand: measure it as is, build nothing
  kiln="$(command -v "$KILN")" || { echo "bench/tracking.sh: KILN=$KILN is not an executable" >&2; exit 2; }
  log "using kiln at $KILN (not building it)"
else
  log "building kiln (release)"
  cargo build --release --locked -p kiln --manifest-path "$root/Cargo.toml"
  kiln="${CARGO_TARGET_DIR:-$root/target}/release/kiln"
fi
"$kiln" server --help >/dev/null 2>&1 || { echo "bench/tracking.sh: $kiln has no 'server' command" >&2; exit 2; }
if [ "$ceiling" = 1 ]; then
  # The ceiling is its own tiny cargo project, kept out of the workspace; its build goes into the
  # repo's (ignored) target dir, beside the serving benchmark's ceiling, never into kiln's build.
  log "building the client-ceiling server (bench/tracking/ceiling)"
  CARGO_TARGET_DIR="$root/target/ceiling" \
    cargo build --release --locked --manifest-path "$here/ceiling/Cargo.toml"
  ceiling_bin="$root/target/ceiling/release/kiln-tracking-ceiling"
fi
"$peer/tracking.sh" --help >/dev/null  # creates the peers' venv on first use

# ---------------------------------------------------------------------------- 2. the store
db_name="kiln_bench_${stamp//-/_}_$$"
case "$backend" in
  sqlite)
    store="sqlite:///$run/mlflow.db"  # $run is absolute: sqlite:////abs/path
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

# ---------------------------------------------------------------------------- 3. kiln
log "kiln server on $store_desc"
start_server "$run/logs/kiln-server.log" "$kiln" server --port 0 \
  --backend-store-uri "$store" --artifacts-destination "$run/artifacts"
kiln_pid="$srv_pid" kiln_url="$srv_url"
sleep 1  # let the store's pool settle before taking the idle figure
rss_idle="$(rss_mb "$kiln_pid" VmRSS)"
echo "  $kiln_url (pid $kiln_pid), RSS idle ${rss_idle} MiB" >&2

label="kiln"
[ "$backend" = sqlite ] || label="kiln-$backend"
bench_args=(--target "$kiln_url" --label "$label" "${SIZES[@]}")
[ -n "$workers" ] && bench_args+=(--workers "$workers")
peer_files=()
if [ "$also_peer" = 1 ]; then
  bench_args+=(--also-peer --peer-workers "$peer_workers")
  IFS=, read -r -a pw <<<"$peer_workers"
  for w in "${pw[@]}"; do peer_files+=("$results/tracking-peer-mlflow-w${w// /}.json"); done
  log "mlflow (peer, re-measured now: ${peer_workers}), then kiln, with the baseline's sizes"
else
  # The mlflow figures compared with: copied into the run folder, so that it holds all it shows.
  [ "${#baselines[@]}" -gt 0 ] || baselines=("$peer"/baseline/tracking-peer-mlflow-w*.json)
  mkdir -p "$run/peer"
  for f in "${baselines[@]}"; do
    cp -p "$f" "$run/peer/" && peer_files+=("$run/peer/$(basename "$f")")
    bench_args+=(--baseline "$run/peer/$(basename "$f")")
  done
  log "kiln, with the baseline's sizes; mlflow is NOT re-measured: the ratios use saved figures"
fi
bench_args+=("${extra[@]}")

echo "  shared tracking.sh ${bench_args[*]}" >&2
"$peer/tracking.sh" "${bench_args[@]}" 2>&1 | tee "$run/logs/bench-kiln.log"
rss_after="$(rss_mb "$kiln_pid" VmRSS)" rss_peak="$(rss_mb "$kiln_pid" VmHWM)"
echo "  kiln server RSS: idle ${rss_idle}, after ${rss_after}, peak ${rss_peak} MiB" >&2
kiln_json="$results/tracking-$label.json"
"$venv_py" "$here/tool.py" annotate "$kiln_json" server_rss_mb_idle="$rss_idle" \
  server_rss_mb_after="$rss_after" server_rss_mb_peak="$rss_peak" \
  server="kiln server ($backend)" store="$backend"
if [ "$ceiling" = 1 ]; then
  "$venv_py" "$here/tool.py" capture --url "$kiln_url" --out "$run/ceiling-bodies"
fi
stop_server "$kiln_pid"
[ "$srv_status" = 0 ] || echo "bench/tracking.sh: kiln server exited with status $srv_status on SIGTERM" >&2
if grep -Eiq 'error|warn|panic' "$run/logs/kiln-server.log"; then
  log "kiln server logged errors or warnings (logs/kiln-server.log):"
  grep -Ei 'error|warn|panic' "$run/logs/kiln-server.log" | head -20 >&2
fi

# ---------------------------------------------------------------------------- 4. client ceiling
ceiling_args=()
if [ "$ceiling" = 1 ]; then
  log "client ceiling: the same client against a bare server replaying kiln's answers"
  b="$run/ceiling-bodies"
  start_server "$run/logs/ceiling.log" "$ceiling_bin" --port 0 \
    --body "/api/2.0/mlflow/runs/create=$b/runs-create.json" \
    --body "/api/2.0/mlflow/runs/search=$b/runs-search.json" \
    --body "/api/2.0/mlflow/metrics/get-history=$b/metrics-get-history.json"
  c_args=(--target "$srv_url" --label client-ceiling "${SIZES[@]}")
  [ -n "$workers" ] && c_args+=(--workers "$workers")
  # Its ratios against mlflow mean nothing: keep them in the log only.
  "$peer/tracking.sh" "${c_args[@]}" "${extra[@]}" "${peer_files[@]/#/--baseline=}" \
    >"$run/logs/bench-ceiling.log" 2>&1 || { tail -30 "$run/logs/bench-ceiling.log" >&2; exit 1; }
  stop_server "$srv_pid"
  ceiling_args=(--ceiling "$results/tracking-client-ceiling.json")
fi

# ---------------------------------------------------------------------------- 5. the table
peer_args=()
for f in "${peer_files[@]}"; do peer_args+=(--peer "$f"); done
peer_date="$("$venv_py" -c 'import json,sys; print(", ".join(sorted({json.load(open(f))["env"].get("date","?") for f in sys.argv[1:]})))' "${peer_files[@]}")"
mlflow_v="$("$venv_py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["env"].get("mlflow","?"))' "${peer_files[0]}")"
if [ "$also_peer" = 1 ]; then
  source_note="mlflow $mlflow_v (SQLite backend) was measured in this sitting, just before kiln, with the same script and sizes."
elif [ "${#baselines[@]}" -gt 0 ] && [[ "${baselines[0]}" != "$peer/baseline/"* ]]; then
  source_note="mlflow $mlflow_v (SQLite backend): saved results given with --baseline (dated $peer_date), NOT re-measured in this sitting."
else
  source_note="mlflow $mlflow_v (SQLite backend): the saved baseline from the shared peer scripts (dated $peer_date), NOT re-measured in this sitting; the machine's load then and now differs (re-run with --also-peer for a same-sitting comparison)."
fi
sizes_note="Sizes: the baseline's (${SIZES[*]}), ${workers:-8} client threads${extra[*]:+, then: ${extra[*]} (the later flag wins)}."
incomparable=()
if { [ -n "$workers" ] && [ "$workers" != 8 ]; } || [ "${#extra[@]}" -gt 0 ]; then
  if [ "$also_peer" = 0 ]; then
    sizes_note+=" These differ from the saved mlflow figures': the ratios are NOT comparable."
    incomparable=(--incomparable)
  fi
fi
log "done in $(( $(date +%s) - t_start )) s; results in ${run#"$root"/}"
{
  echo "kiln server ($backend, $store_desc) vs mlflow server: $(date +%F), $(nproc) CPUs, the shared tracking.py."
  echo
  "$venv_py" "$here/tool.py" table --kiln "$kiln_json" "${peer_args[@]}" "${ceiling_args[@]}" \
    --backend "$backend" --log "$run/logs/bench-kiln.log" --peer-source "$source_note" --sizes-note "$sizes_note" "${incomparable[@]}"
} | tee "$run/table.md"
