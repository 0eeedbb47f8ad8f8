#!/usr/bin/env python3
"""Print one run of bench/serving.sh as a Markdown table: kiln serve (micro-batching on and off)
vs mlflow models serve, per model, with the issue's targets, and kiln's c=64 throughput as a
fraction of the ceiling (a bare axum handler on the same machine).

  table.py RESULTS_DIR [--models iris,text] [--spread]

RESULTS_DIR holds the result JSONs the peer script and bench/serving/measure.py wrote:
serving-<model>-{kiln,kiln-nobatch,peer-mlflow-serve,ceiling}.json. Every figure is the median
of its samples (--spread adds min-max). "kiln vs mlflow" is how many times better kiln is:
kiln/mlflow for throughput, mlflow/kiln for latency, memory and start-up time.
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os

LABELS = {"kiln": "kiln", "nobatch": "kiln-nobatch", "mlflow": "peer-mlflow-serve", "ceiling": "ceiling"}

# (metric, row title, target: minimum "kiln vs mlflow" factor, or None)
ROWS = [
    ("single_c1_req_per_s", "1 row, c=1, req/s", None),
    ("single_c8_req_per_s", "1 row, c=8, req/s", None),
    ("single_c64_req_per_s", "1 row, c=64, req/s", 100),
    ("single_c64_p50_ms", "1 row, c=64, p50 ms", None),
    ("single_c64_p99_ms", "1 row, c=64, p99 ms", 50),
    ("batch1000_c1_rows_per_s", "1,000 rows, c=1, rows/s", None),
    ("batch1000_c8_rows_per_s", "1,000 rows, c=8, rows/s", None),
    ("rss_idle_mb", "RSS idle, MiB", 10),
    ("rss_after_load_mb", "RSS after load, MiB", 10),
    ("startup_s", "start-up to first /ping, s", None),
]
CEILING_TARGET = 0.5  # kiln's c=64 req/s as a fraction of the ceiling's


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def load(results: str, model: str) -> dict[str, dict]:
    docs = {}
    for key, label in LABELS.items():
        path = os.path.join(results, f"serving-{model}-{label}.json")
        if os.path.exists(path):
            with open(path) as f:
                docs[key] = json.load(f)
    return docs


def med(doc: dict | None, name: str) -> float | None:
    m = (doc or {}).get("metrics", {}).get(name)
    return None if m is None else m["median"]


def cell(doc: dict | None, name: str, spread: bool) -> str:
    m = (doc or {}).get("metrics", {}).get(name)
    if m is None:
        return "-"
    s = m["samples"]
    rng = f" ({fmt(min(s))}–{fmt(max(s))})" if spread and len(s) > 1 else ""
    return fmt(m["median"]) + rng


def speedup(kiln: dict | None, peer: dict | None, name: str) -> float | None:
    k, p = med(kiln, name), med(peer, name)
    if not k or not p:
        return None
    better = kiln["metrics"][name]["better"]
    return k / p if better == "higher" else p / k


def verdict(value: float | None, goal: float, unit: str = "×") -> str:
    shown = f"≥ {goal:g}{unit}" if unit == "×" else f"≥ {goal:g}"
    if value is None:
        return shown
    return f"{shown}: {'met' if value >= goal else 'missed'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("--models", default="iris,text")
    p.add_argument("--spread", action="store_true", help="add min–max of the samples to each cell")
    a = p.parse_args()
    models = [m for m in a.models.split(",") if m]
    per_model = {m: load(a.results, m) for m in models}

    lines = ["| model | figure | kiln | kiln --no-batching | mlflow | kiln vs mlflow | target |",
             "|---|---|---|---|---|---|---|"]
    notes, envs = [], []
    for m in models:
        d = per_model[m]
        kiln, nob, peer, ceil = d.get("kiln"), d.get("nobatch"), d.get("mlflow"), d.get("ceiling")
        for name, title, goal in ROWS:
            r = speedup(kiln, peer, name)
            lines.append(f"| {m} | {title} | {cell(kiln, name, a.spread)} | {cell(nob, name, a.spread)} "
                         f"| {cell(peer, name, a.spread)} | {'-' if r is None else fmt(r) + '×'} "
                         f"| {verdict(r, goal) if goal else ''} |")
        c = med(ceil, "single_c64_req_per_s")

        def frac(doc):
            v = med(doc, "single_c64_req_per_s")
            return None if v is None or not c else v / c

        lines.append(f"| {m} | c=64 req/s ÷ ceiling ({cell(ceil, 'single_c64_req_per_s', a.spread)} req/s) "
                     f"| {fmt(frac(kiln))} | {fmt(frac(nob))} | {fmt(frac(peer))} | "
                     f"| {verdict(frac(kiln), CEILING_TARGET, '')} |")
        for key, doc in d.items():
            envs.append((m, key, doc))
            notes += [f"{m} {LABELS[key]}: {n}" for n in doc.get("notes", [])]
        missing = [LABELS[k] for k in LABELS if k not in d]
        if missing:
            notes.append(f"{m}: no result for {', '.join(missing)}")

    kenv = next((doc["env"] for _, k, doc in envs if k == "kiln"), {})
    penv = next((doc["env"] for _, k, doc in envs if k == "mlflow"), {})
    print(f"kiln serve vs mlflow models serve: {kenv.get('date', '?')}, {kenv.get('cpus', '?')} CPUs, "
          f"wrk {kenv.get('duration_s', '?')} s × {kenv.get('reps', '?')} reps per figure (medians); "
          f"mlflow {penv.get('mlflow', '?')} and scikit-learn {penv.get('sklearn', '?')} measured "
          f"{penv.get('date', '?')} ({penv.get('duration_s', '?')} s × {penv.get('reps', '?')} reps).\n")
    print("\n".join(lines))
    print("\n\"kiln vs mlflow\": times better (kiln/mlflow for req/s and rows/s; mlflow/kiln for latency, "
          "RSS and start-up). Targets: c=64 req/s ≥ 100× mlflow, c=64 p99 ≤ 1/50 of mlflow's, "
          "RSS ≤ 1/10, c=64 req/s ≥ 0.5 × the ceiling (a bare axum handler answering a constant "
          "body, same wrk script and body). RSS after load is the largest sample; start-up is "
          "launch to the first good GET /ping (mlflow: one sample).")
    for m, key, doc in envs:
        e = doc["env"]
        if key != "kiln" and (e.get("duration_s"), e.get("reps")) != (kenv.get("duration_s"), kenv.get("reps")):
            notes.append(f"{m} {LABELS[key]} ran with {e.get('duration_s')} s × {e.get('reps')} reps, "
                         f"kiln with {kenv.get('duration_s')} s × {kenv.get('reps')}: not the same sizes")
    if notes:
        print("\nNotes:\n" + "\n".join(f"- {n}" for n in notes))


if __name__ == "__main__":
    main()
