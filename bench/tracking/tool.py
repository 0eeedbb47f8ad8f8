#!/usr/bin/env python3
"""Helpers for bench/tracking.sh. Run with the peers' venv python (requests is needed for
`capture`; the rest is standard library).

  tool.py capture --url URL --out DIR
      after the shared tracking.py has driven a server at URL, fetch that server's answers to the
      calls the benchmark makes (runs/create, the filtered runs/search, the 100,000-point
      metrics/get-history) and write them to DIR as runs-create.json, runs-search.json and
      metrics-get-history.json, with any next_page_token removed (the history's pages are merged
      into one answer). The client-ceiling server replays them, so the client parses the very
      bodies it parsed from kiln.

  tool.py annotate FILE KEY=VALUE...
      add numbers to a result JSON's "env" (e.g. the server's RSS, which tracking.py does not take
      for a --target run).

  tool.py table --kiln FILE [--peer FILE]... [--ceiling FILE] [--log FILE] [--peer-source TEXT]
                [--backend NAME] [--sizes-note TEXT]
      print the Markdown table: kiln, each mlflow peer, kiln vs the better mlflow figure, the
      issue's target, the client's ceiling, notes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

API = "/api/2.0/mlflow"


# ----------------------------------------------------------------------------- capture
def capture(a) -> None:
    import requests

    url = a.url.rstrip("/")
    s = requests.Session()

    def call(method, path, **kw):
        r = s.request(method, url + API + path, timeout=300, **kw)
        if r.status_code >= 400:
            sys.exit(f"tool.py capture: {method} {path} answered HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    exps = call("POST", "/experiments/search", json={"max_results": 1000}).get("experiments", [])
    by_prefix = {}
    for e in exps:
        for prefix in ("bench-search-", "bench-misc-"):
            if e["name"].startswith(prefix):
                by_prefix[prefix] = e["experiment_id"]
    if len(by_prefix) != 2:
        sys.exit(f"tool.py capture: the benchmark's experiments are not on {url} (found {sorted(e['name'] for e in exps)})")
    os.makedirs(a.out, exist_ok=True)

    def save(name, doc):
        doc.pop("next_page_token", None)
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(doc, f, separators=(",", ":"))

    # The very body tracking.py sends for (d).
    search = call("POST", "/runs/search", json={
        "experiment_ids": [by_prefix["bench-search-"]], "filter": "metrics.acc > 0.5 and params.model = 'rf'",
        "order_by": ["metrics.acc DESC"], "max_results": 1000})
    save("runs-search.json", search)

    # The history runs are the bench-misc runs that logged "loss" (100,000 points each).
    runs = call("POST", "/runs/search", json={"experiment_ids": [by_prefix["bench-misc-"]], "max_results": 1000})
    hist = [r["info"]["run_id"] for r in runs.get("runs", [])
            if any(m["key"] == "loss" for m in r.get("data", {}).get("metrics", []))]
    if not hist:
        sys.exit("tool.py capture: no run with a 'loss' history in the bench-misc experiment")
    points, tok = [], None
    while True:
        q = {"run_id": hist[0], "metric_key": "loss"}
        if tok:
            q["page_token"] = tok
        r = call("GET", "/metrics/get-history", params=q)
        points += r.get("metrics", [])
        tok = r.get("next_page_token")
        if not tok:
            break
    save("metrics-get-history.json", {"metrics": points})

    created = call("POST", "/runs/create", json={"experiment_id": by_prefix["bench-misc-"], "run_name": "ceiling-capture"})
    save("runs-create.json", created)
    print(f"  captured runs/search ({len(search.get('runs', []))} runs), get-history ({len(points)} points),"
          f" runs/create into {a.out}", file=sys.stderr)


# ----------------------------------------------------------------------------- annotate
def annotate(a) -> None:
    with open(a.file) as f:
        doc = json.load(f)
    for kv in a.pairs:
        k, _, v = kv.partition("=")
        try:
            doc["env"][k] = round(float(v), 2)
        except ValueError:
            doc["env"][k] = v
    with open(a.file, "w") as f:
        json.dump(doc, f, indent=1)


# ----------------------------------------------------------------------------- table
# (metric, row title, target: the least "kiln vs mlflow" factor, or None)
ROWS = [
    ("a_runs_create_per_s", "(a) runs/create, runs/s", 50),
    ("a2_log_batch_small_calls_per_s", "(a2) small log-batch (1 param, 2 metrics, 1 tag), calls/s", None),
    ("b_log_metric_calls_per_s", "(b) log-metric, calls/s", 50),
    ("c_log_batch_1000_points_per_s", "(c) log-batch 1,000 points/call, points/s", 50),
    ("d_search_runs_first_page_ms", "(d) search {runs} runs, filter + order_by, first page, ms", 20),
    ("d_search_runs_all_pages_ms", "(d) same, all pages ({matching} matches), ms", 20),
    ("e_get_metric_history_ms", "(e) get-history {points} points, raw HTTP, ms", 50),
    ("client_get_metric_history_ms", "official client `get_metric_history` {points}, ms", 50),
    ("client_log_metric_calls_per_s_1thread", "official client `log_metric`, 1 thread, calls/s", None),
]
# A kiln figure at or above this share of the client ceiling's is limited by the Python client.
CLIENT_BOUND = 0.7


def fmt(x) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def fmt_factor(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×" if x >= 10 else f"{x:.2f}×"


def load(path):
    with open(path) as f:
        return json.load(f)


def peer_title(doc) -> str:
    s = doc.get("env", {}).get("server") or doc.get("label", "mlflow")
    return {"mlflow server --workers 1": "mlflow `--workers 1`",
            "mlflow server (default workers)": "mlflow default (4 workers)"}.get(s, s)


def better_of(values, better):
    vals = [v for v in values if v]
    if not vals:
        return None
    return max(vals) if better == "higher" else min(vals)


def log_problems(path: str) -> list[str]:
    """Failed attempts per phase (benchlib's Pool prints them after each chunk; the phase's result
    line comes after its chunks), warnings and tracebacks from the benchmark's output."""
    titles = {key: title.rsplit(", ", 1)[0].format(runs="N", points="N", matching="N") for key, title, _ in ROWS}
    out, pending = [], []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"\s*\((\d+) failed attempts, e\.g\. (.*)\)\s*$", line)
            if m:
                pending.append((int(m.group(1)), m.group(2)))
                continue
            m = re.match(r"\s*(\w+)\s+[\d,.]+ ", line)
            if m and pending:
                n = sum(c for c, _ in pending)
                out.append(f"{titles.get(m.group(1), m.group(1))}: {n} failed attempts "
                           f"(retried by the client, up to 2 retries per call), e.g. `{pending[0][1][:300]}`")
                pending = []
            elif re.search(r"WARNING|Traceback|Error:", line):
                out.append(f"benchmark log: `{line.strip()[:300]}`")
    for n, e in pending:
        out.append(f"{n} failed attempts, e.g. `{e[:300]}`")
    return out


def table(a) -> None:
    kiln = load(a.kiln)
    peers = [load(p) for p in a.peer or []]
    ceil = load(a.ceiling) if a.ceiling else None
    km, env = kiln["metrics"], kiln["env"]
    sizes = {"runs": f"{env.get('runs', '?'):,}" if isinstance(env.get("runs"), int) else env.get("runs", "?"),
             "points": f"{env.get('history_points', 0):,}",
             "matching": km.get("d_search_runs_all_pages_ms", {}).get("matching", "?")}

    kiln_title = f"kiln ({a.backend})"
    hdr = ["figure", kiln_title] + [peer_title(p) for p in peers] + ["kiln vs mlflow", "target"]
    if ceil:
        hdr.append("client ceiling")
    hdr.append("notes")
    out = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    notes_below = []

    for key, title, target in ROWS:
        m = km.get(key)
        if not m:
            continue
        better = m["better"]
        k = m["median"]
        cell = fmt(k)
        if len(m.get("samples", [])) > 1:
            cell += f" ({fmt(min(m['samples']))}–{fmt(max(m['samples']))})"
        row = [title.format(**sizes), cell]
        pvals = []
        for p in peers:
            pm = p["metrics"].get(key)
            pvals.append(pm["median"] if pm else None)
            row.append(fmt(pm["median"]) if pm else "-")
        best = better_of(pvals, better)
        factor = None
        if best and k:
            factor = k / best if better == "higher" else best / k
        row.append(fmt_factor(factor) if factor else "-")
        if target is None:
            row.append("")
        elif factor is None or a.incomparable:
            row.append(f"≥ {target}×")
        else:
            row.append(f"≥ {target}×: {'met' if factor >= target else '**missed**'}")
        note = ""
        if ceil:
            cm = ceil["metrics"].get(key)
            row.append(fmt(cm["median"]) if cm else "-")
            if cm and cm["median"] and k:
                share = k / cm["median"] if better == "higher" else cm["median"] / k
                if share >= CLIENT_BOUND:
                    note = (f"client-bound: kiln reaches {share:.0%} of what the client alone does"
                            if better == "higher" else
                            f"client-bound: {share:.0%} of kiln's time is the client's own")
                else:
                    note = (f"kiln at {share:.0%} of the client's ceiling" if better == "higher"
                            else f"the client's own share: {share:.0%}")
                if target and best:
                    cf = cm["median"] / best if better == "higher" else best / cm["median"]
                    if cf < target:
                        note += (f"; the client alone reaches only {fmt_factor(cf)} mlflow: this client "
                                 f"cannot show {target}× here")
        row.append(note)
        out.append("| " + " | ".join(row) + " |")

    rss = env.get("server_rss_mb_after")
    if rss is not None:
        pv = [p["env"].get("server_rss_mb_after") for p in peers]
        best = better_of(pv, "lower")
        row = ["server RSS after the run, MiB", f"{fmt(rss)} (idle {fmt(env.get('server_rss_mb_idle'))},"
               f" peak {fmt(env.get('server_rss_mb_peak'))})"]
        row += [fmt(v) for v in pv]
        row += [fmt_factor(best / rss) if best and rss else "-", ""]
        if ceil:
            row.append("")
        row.append("kiln: one process; mlflow: process tree" + ("; the database server's memory is not counted"
                                                                 if a.backend != "sqlite" else ""))
        out.append("| " + " | ".join(row) + " |")

    print("\n".join(out))
    print()
    text = ("\"kiln vs mlflow\": how many times better kiln is than the better of the mlflow columns "
            "(kiln/mlflow for rates, mlflow/kiln for times and memory). kiln: median of its samples (min–max).")
    if ceil:
        text += (f" Client ceiling: the same Python client ({env.get('workers_client', '?')} threads for (a)–(c))"
                 " against a bare axum server replaying kiln's own answers (bench/tracking/ceiling), i.e. the"
                 f" fastest this client gets on this machine; a kiln figure within {CLIENT_BOUND:.0%} of it is"
                 " marked client-bound and its ratio understates kiln.")
    if a.incomparable:
        text += " The sizes differ from the mlflow figures': no target is judged."
    print(text)
    if a.peer_source:
        print()
        print(a.peer_source)
    if a.sizes_note:
        print()
        print(a.sizes_note)
    for n in kiln.get("notes", []):
        if not n.startswith("bench wall time"):
            notes_below.append(f"kiln result note: {n}")
    if a.log and os.path.exists(a.log):
        notes_below += log_problems(a.log)
    if notes_below:
        print()
        print("Problems seen during the kiln run:")
        for n in notes_below:
            print(f"- {n}")
    else:
        print()
        print("No failed request, check mismatch or warning during the kiln run.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--url", required=True)
    c.add_argument("--out", required=True)
    n = sub.add_parser("annotate")
    n.add_argument("file")
    n.add_argument("pairs", nargs="+")
    t = sub.add_parser("table")
    t.add_argument("--kiln", required=True)
    t.add_argument("--peer", action="append")
    t.add_argument("--ceiling")
    t.add_argument("--log")
    t.add_argument("--backend", default="sqlite")
    t.add_argument("--peer-source")
    t.add_argument("--sizes-note")
    t.add_argument("--incomparable", action="store_true", help="sizes differ from the peer's: judge no target")
    a = p.parse_args()
    {"capture": capture, "annotate": annotate, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
