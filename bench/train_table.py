#!/usr/bin/env python3
"""Print kiln vs scikit-learn per model from two result files of the peer train script.

Ratios are kiln/sklearn (lower is better for times and memory): fit <= 1.0 and whole process
<= 0.2 are the targets; accuracy is shown for both, with the difference in points.
"""
import json
import sys

MODELS = ["nb_count", "lr_tfidf", "rf100", "gnb", "lr_iris"]


def main(peer_path: str, kiln_path: str) -> None:
    peer = json.load(open(peer_path))["metrics"]
    kiln = json.load(open(kiln_path))["metrics"]

    def med(d, m, k):
        v = d.get(f"{m}_{k}")
        return None if v is None else v["median"]

    def ratio(m, k):
        a, b = med(kiln, m, k), med(peer, m, k)
        return "-" if a is None or not b else f"{a / b:.3f}"

    print("| model | sklearn acc | kiln acc | Δ points | fit s sklearn → kiln (ratio) | predict s sklearn → kiln (ratio) "
          "| whole process s sklearn → kiln (ratio) | peak RSS MiB sklearn → kiln |")
    print("|---|---|---|---|---|---|---|---|")
    for m in MODELS:
        if med(kiln, m, "wall_s") is None:
            continue
        pa, ka = med(peer, m, "accuracy"), med(kiln, m, "accuracy")
        delta = "-" if pa is None or ka is None else f"{(ka - pa) * 100:+.2f}"
        f = lambda k, p=3: f"{med(peer, m, k):.{p}f} → {med(kiln, m, k):.{p}f} ({ratio(m, k)})"  # noqa: E731
        print(f"| {m} | {pa:.4f} | {ka:.4f} | {delta} | {f('fit_s')} | {f('predict_s', 4)} | {f('wall_s', 2)} "
              f"| {med(peer, m, 'peak_rss_mb'):.0f} → {med(kiln, m, 'peak_rss_mb'):.0f} |")
    print("\n(medians of the runs in each file; each run a fresh process)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
