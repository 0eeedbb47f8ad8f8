#!/usr/bin/env bash
# DVC vs kiln on the same synthetic workspaces (issue 7's quality bars), median of N reps, each
# rep in a fresh copy of the workspace with a fresh repository:
#   add-10k     `add` of a directory of 10,000 small files
#   status-10k  `status` of that workspace right after (unchanged)
#   add-1g      `add` of one 1 GiB file (random bytes)
#   status-1g   `status` right after
#   repro-noop  a no-op `repro` of a 50-stage chain (stage i reads stage i-1's output), after
#               one unmeasured `repro` that ran every stage
#   repro-par   `repro` of 8 independent stages that each sleep 2 s and write a file: DVC runs
#               them one after the other; kiln with `--jobs 8` (and, to show where the ratio
#               comes from, `--jobs 1`, listed as its own row)
# Prints a table with DVC's and kiln's medians and the ratio DVC/kiln (higher is better for kiln).
#
#   bench/pipelines.sh [--reps 3] [--files 10000] [--mib 1024] [--stages 50]
#                      [--only add-10k,status-10k,add-1g,status-1g,repro-noop,repro-par]
#
# KILN=path measures a given binary instead of building one (the build honours CARGO_TARGET_DIR).
#
# DVC comes from the test venv (scripts/python-env.sh installs the pinned version).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps=3 files=10000 mib=1024 stages=50 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --mib) mib="$2"; shift 2 ;;
    --stages) stages="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

if [ -z "${KILN:-}" ]; then
  (cd "$root" && cargo build --release -q -p kiln)
  kiln="${CARGO_TARGET_DIR:-$root/target}/release/kiln"
else
  kiln="$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")"
fi
python="$("$root/scripts/python-env.sh")"
dvc="$(dirname "$python")/dvc"
export DVC_NO_ANALYTICS=1 NO_COLOR=1
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-pipebench.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
results="$work/results.tsv"

echo "preparing workspaces in $work ($files small files, ${mib} MiB file)" >&2
"$python" - "$work/tpl-small/data" "$files" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"{i},{rnd.random()}\n" * rnd.randint(1, 20))
EOF
if want add-1g || want status-1g; then
  mkdir -p "$work/tpl-big"
  head -c "$((mib * 1024 * 1024))" /dev/urandom > "$work/tpl-big/big.bin"
fi
# The 50-stage chain: s00 reads in.txt, stage i reads stage i-1's output.
mkdir -p "$work/tpl-chain"
echo seed > "$work/tpl-chain/in.txt"
{
  echo "stages:"
  prev=in.txt
  for i in $(seq 0 $((stages - 1))); do
    out=$(printf "o%02d.txt" "$i")
    printf "  s%02d:\n    cmd: cp %s %s && echo %d >> %s\n    deps:\n    - %s\n    outs:\n    - %s\n" \
      "$i" "$prev" "$out" "$i" "$out" "$prev" "$out"
    prev=$out
  done
} > "$work/tpl-chain/dvc.yaml"
# 8 independent stages of 2 s each.
mkdir -p "$work/tpl-par"
{
  echo "stages:"
  for i in $(seq 0 7); do
    printf "  p%d:\n    cmd: sleep 2 && echo %d > p%d.txt\n    outs:\n    - p%d.txt\n" "$i" "$i" "$i" "$i"
  done
} > "$work/tpl-par/dvc.yaml"

# time_it NAME TOOL CMD...: runs CMD in the current directory, appends the seconds.
time_it() {
  local name="$1" tool="$2"; shift 2
  local t0 t1
  t0=$EPOCHREALTIME
  "$@" > /dev/null
  t1=$EPOCHREALTIME
  echo -e "$name\t$tool\t$(echo "$t1 - $t0" | bc)" >> "$results"
}

fresh_repo() { # DIR TEMPLATE TOOL
  rm -rf "$1"; mkdir -p "$1"; cp -r "$2/." "$1/"
  (cd "$1" && git init -q && if [ "$3" = dvc ]; then "$dvc" init -q; else "$kiln" init -q; fi)
  sync
}

for rep in $(seq 1 "$reps"); do
  for tool in dvc kiln; do
    if [ "$tool" = dvc ]; then cmd=("$dvc"); q=(-q); else cmd=("$kiln"); q=(-q); fi
    if want add-10k || want status-10k; then
      ws="$work/ws-small-$tool"
      fresh_repo "$ws" "$work/tpl-small" "$tool"
      (cd "$ws" && time_it add-10k "$tool" "${cmd[@]}" add "${q[@]}" data)
      (cd "$ws" && time_it status-10k "$tool" "${cmd[@]}" status)
    fi
    if want add-1g || want status-1g; then
      ws="$work/ws-big-$tool"
      fresh_repo "$ws" "$work/tpl-big" "$tool"
      (cd "$ws" && time_it add-1g "$tool" "${cmd[@]}" add "${q[@]}" big.bin)
      (cd "$ws" && time_it status-1g "$tool" "${cmd[@]}" status)
    fi
    if want repro-noop; then
      ws="$work/ws-chain-$tool"
      fresh_repo "$ws" "$work/tpl-chain" "$tool"
      (cd "$ws" && "${cmd[@]}" repro -q > /dev/null && sync)
      (cd "$ws" && time_it repro-noop "$tool" "${cmd[@]}" repro)
    fi
    if want repro-par; then
      ws="$work/ws-par-$tool"
      if [ "$tool" = dvc ]; then
        fresh_repo "$ws" "$work/tpl-par" "$tool"
        (cd "$ws" && time_it repro-par dvc "$dvc" repro)
      else
        fresh_repo "$ws" "$work/tpl-par" "$tool"
        (cd "$ws" && time_it repro-par kiln "$kiln" repro --jobs 8)
        fresh_repo "$ws" "$work/tpl-par" "$tool"
        (cd "$ws" && time_it repro-par-j1 kiln "$kiln" repro --jobs 1)
      fi
    fi
  done
  echo "rep $rep of $reps done" >&2
done

"$python" - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
times = {}
for name, tool, s in rows:
    times.setdefault(name, {}).setdefault(tool, []).append(float(s))
print("| case | dvc s (median) | kiln s (median, min-max) | dvc/kiln |")
print("|---|---|---|---|")
labels = {"repro-par": "repro-par (kiln --jobs 8)", "repro-par-j1": "repro-par (kiln --jobs 1)"}
for name in ["add-10k", "status-10k", "add-1g", "status-1g", "repro-noop", "repro-par", "repro-par-j1"]:
    if name not in times:
        continue
    dvc = times[name].get("dvc") or times.get("repro-par", {}).get("dvc")
    d, k = statistics.median(dvc), statistics.median(times[name]["kiln"])
    spread = f"{min(times[name]['kiln']):.3f}-{max(times[name]['kiln']):.3f}"
    print(f"| {labels.get(name, name)} | {d:.3f} | {k:.3f} ({spread}) | {d / k:.1f}x |")
EOF
