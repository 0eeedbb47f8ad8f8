#!/usr/bin/env python3
"""Helpers for bench/serving.sh that reuse the peer scripts' own code, so every figure is taken
and stored exactly like the peer's (wrk flags and parsing from serving.py, result JSON from
benchlib.py). Needs the peer bench folder on the path: pass --peer-dir.

  measure.py --peer-dir P ceiling --url URL --body BODY.json --lua post.lua --model iris \
             --duration 6 --reps 3 --out RESULTS/serving-iris-ceiling.json
      wrk against the ceiling server: single-row body at c=64 (serving.py's run_wrk, so the same
      -t/-c/--latency/--timeout flags as kiln's c=64 figure), after the same 2 s warm-up.

  measure.py --peer-dir P add-metric FILE NAME UNIT BETTER SAMPLE...
      add a metric (median of the samples) to an existing result JSON, e.g. kiln's start-up time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys


def ceiling(a) -> None:
    import benchlib as bl
    import serving  # the peer's serving.py: only definitions at import time

    res = bl.Result(f"serving-{a.model}", "ceiling", {"duration_s": a.duration, "reps": a.reps})
    res.doc["env"]["server"] = "bench/serving/ceiling: bare axum handler, constant JSON body"
    serving.run_wrk(a.url, a.body, a.lua, 8, 2)  # warm-up, as serving.py does before each server
    rps, p50, p99, bad = [], [], [], 0
    for _ in range(a.reps):
        r = serving.run_wrk(a.url, a.body, a.lua, a.concurrency, a.duration)
        rps.append(r["rps"]); p50.append(r["p50"]); p99.append(r["p99"]); bad += r["non2xx"]
        if r["socket_errors"]:
            res.note(f"c={a.concurrency}: {r['socket_errors']}")
    if bad:
        res.note(f"single c={a.concurrency}: {bad} non-2xx responses")
    c = a.concurrency
    res.add(f"single_c{c}_req_per_s", rps, "req/s")
    res.add(f"single_c{c}_p50_ms", p50, "ms", "lower")
    res.add(f"single_c{c}_p99_ms", p99, "ms", "lower")
    print("  saved", res.save(a.out))


def add_metric(a) -> None:
    with open(a.file) as f:
        doc = json.load(f)
    samples = [float(x) for x in a.samples]
    doc["metrics"][a.name] = {"median": statistics.median(samples), "samples": [round(x, 6) for x in samples],
                              "unit": a.unit, "better": a.better}
    with open(a.file, "w") as f:
        json.dump(doc, f, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer-dir", required=True, help="the shared peer bench folder (serving.py, benchlib.py)")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ceiling")
    c.add_argument("--url", required=True)
    c.add_argument("--body", required=True)
    c.add_argument("--lua", required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--duration", type=int, default=6)
    c.add_argument("--reps", type=int, default=3)
    c.add_argument("--concurrency", type=int, default=64)
    c.add_argument("--out", required=True)
    m = sub.add_parser("add-metric")
    m.add_argument("file")
    m.add_argument("name")
    m.add_argument("unit")
    m.add_argument("better", choices=["higher", "lower"])
    m.add_argument("samples", nargs="+")
    a = p.parse_args()
    sys.path.insert(0, a.peer_dir)
    {"ceiling": ceiling, "add-metric": add_metric}[a.cmd](a)


if __name__ == "__main__":
    main()
