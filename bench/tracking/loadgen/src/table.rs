//! `table`: the Markdown comparison of one kiln results file with mlflow's (one or more, e.g.
//! --workers 1 and default), against the targets.

use serde_json::Value;

const USAGE: &str = "usage: kiln-tracking-loadgen table --kiln FILE [--peer FILE]... [--ceiling FILE] [--note TEXT]...";

/// One row: a figure of the results files, which statistic of it, and its target ratio.
struct Fig {
    key: &'static str,
    stat: &'static str,
    label: &'static str,
    target: Option<f64>,
}

const FIGS: &[Fig] = &[
    Fig { key: "a_runs_create_per_s", stat: "median", label: "(a) runs/create, runs/s", target: Some(50.0) },
    Fig { key: "a2_log_batch_small_calls_per_s", stat: "median", label: "(a2) small log-batch, calls/s", target: None },
    Fig { key: "b_log_metric_calls_per_s", stat: "median", label: "(b) log-metric, calls/s", target: Some(50.0) },
    Fig {
        key: "c_log_batch_1000_points_per_s",
        stat: "median",
        label: "(c) log-batch ×1,000, points/s",
        target: Some(50.0),
    },
    Fig {
        key: "d_search_first_page_ms",
        stat: "p50",
        label: "(d) search-runs over {runs} runs, first page p50, ms",
        target: Some(20.0),
    },
    Fig {
        key: "d_search_first_page_ms",
        stat: "p99",
        label: "(d) search-runs over {runs} runs, first page p99, ms",
        target: Some(20.0),
    },
    Fig {
        key: "d_search_all_pages_ms",
        stat: "p50",
        label: "(d) search-runs over {runs} runs, all pages p50, ms",
        target: Some(20.0),
    },
    Fig {
        key: "d_search_all_pages_ms",
        stat: "p99",
        label: "(d) search-runs over {runs} runs, all pages p99, ms",
        target: Some(20.0),
    },
    Fig {
        key: "e_get_metric_history_ms",
        stat: "median",
        label: "(e) get-metric-history of {points} points, ms",
        target: Some(50.0),
    },
    Fig { key: "w_writers_calls_per_s", stat: "median", label: "(w) concurrent writers, calls/s", target: None },
];

fn load(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON: {e}"))
}

/// Thousands separators from 1,000 on; 3 significant digits below.
fn fmt(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    if x >= 1000.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn fig(doc: &Value, f: &Fig) -> Option<f64> {
    doc["metrics"][f.key][f.stat].as_f64()
}

fn better_is_lower(doc: &Value, f: &Fig) -> bool {
    doc["metrics"][f.key]["better"] == "lower"
}

/// Failed calls plus wrong answers of a sitting.
fn faults(doc: &Value) -> u64 {
    doc["errors_total"].as_u64().unwrap_or(0) + doc["mismatches"].as_array().map_or(0, |a| a.len() as u64)
}

pub fn main(args: Vec<String>) -> i32 {
    let (mut kiln, mut peers, mut ceiling, mut notes) = (None, Vec::new(), None, Vec::new());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(v) = it.next() else {
            eprintln!("{USAGE}");
            return 2;
        };
        match a.as_str() {
            "--kiln" => kiln = Some(v),
            "--peer" => peers.push(v),
            "--ceiling" => ceiling = Some(v),
            "--note" => notes.push(v),
            _ => {
                eprintln!("{USAGE}");
                return 2;
            }
        }
    }
    let Some(kiln) = kiln else {
        eprintln!("{USAGE}");
        return 2;
    };
    let docs =
        match std::iter::once(&kiln).chain(&peers).chain(&ceiling).map(|p| load(p)).collect::<Result<Vec<_>, _>>() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("kiln-tracking-loadgen table: {e}");
                return 1;
            }
        };
    let k = &docs[0];
    let p = &docs[1..1 + peers.len()];
    let c = ceiling.as_ref().map(|_| &docs[docs.len() - 1]);

    let mut head = vec!["figure".to_string(), k["label"].as_str().unwrap_or("kiln").to_string()];
    head.extend(p.iter().map(|d| d["label"].as_str().unwrap_or("peer").to_string()));
    if !p.is_empty() {
        head.push("kiln vs better mlflow".into());
        head.push("target".into());
    }
    if c.is_some() {
        head.push("client ceiling (bare server)".into());
    }
    println!("| {} |", head.join(" | "));
    println!("|{}", " --- |".repeat(head.len()));

    for f in FIGS {
        let kv = fig(k, f);
        if kv.is_none() && p.iter().all(|d| fig(d, f).is_none()) {
            continue;
        }
        let lower = better_is_lower(k, f);
        let size = |key: &str| k["metrics"][f.key][key].as_u64().map_or("?".into(), |n| fmt(n as f64));
        let label = f.label.replace("{runs}", &size("search_runs")).replace("{points}", &size("points"));
        let mut row = vec![label, kv.map_or("—".into(), fmt)];
        row.extend(p.iter().map(|d| fig(d, f).map_or("—".into(), fmt)));
        if !p.is_empty() {
            let pv: Vec<f64> = p.iter().filter_map(|d| fig(d, f)).collect();
            let best = if lower { pv.iter().copied().reduce(f64::min) } else { pv.iter().copied().reduce(f64::max) };
            let ratio = match (kv, best) {
                (Some(kv), Some(b)) if kv > 0.0 && b > 0.0 => Some(if lower { b / kv } else { kv / b }),
                _ => None,
            };
            row.push(ratio.map_or("—".into(), |r| format!("{}×", fmt(r))));
            row.push(match (f.target, ratio) {
                (None, _) => "—".into(),
                (Some(t), Some(r)) if r >= t => format!("≥{t:.0}×: met"),
                (Some(t), Some(r)) => format!("≥{t:.0}×: **missed** ({:.0}% of it)", (100.0 * r / t).floor()),
                (Some(t), None) => format!("≥{t:.0}×: no figure"),
            });
        }
        if let Some(c) = c {
            row.push(fig(c, f).map_or("—".into(), fmt));
        }
        println!("| {} |", row.join(" | "));
    }

    // Writers' failures and all failures: the target is zero, for kiln.
    let w_failed = |d: &Value| d["metrics"]["w_writers_calls_per_s"]["calls_failed"].as_u64();
    let writers = k["metrics"]["w_writers_calls_per_s"]["writers"].as_u64();
    let dur = k["metrics"]["w_writers_calls_per_s"]["duration_s"].as_f64();
    let extra_cols = |row: &mut Vec<String>| {
        if c.is_some() {
            row.push("—".into());
        }
    };
    if let (Some(w), Some(d)) = (writers, dur) {
        let mut row = vec![
            format!("(w) {w} writers × {d:.0} s: failed calls"),
            w_failed(k).map_or("—".into(), |n| n.to_string()),
        ];
        row.extend(p.iter().map(|d| w_failed(d).map_or("—".into(), |n| n.to_string())));
        if !p.is_empty() {
            row.push("—".into());
            row.push(if w_failed(k) == Some(0) { "0 errors: met".into() } else { "0 errors: **missed**".into() });
        }
        extra_cols(&mut row);
        println!("| {} |", row.join(" | "));
    }
    let mut row = vec!["failed calls + wrong answers, all phases".to_string(), faults(k).to_string()];
    row.extend(p.iter().map(|d| faults(d).to_string()));
    if !p.is_empty() {
        row.push("—".into());
        row.push(if faults(k) == 0 { "0: met".into() } else { "0: **missed**".into() });
    }
    extra_cols(&mut row);
    println!("| {} |", row.join(" | "));

    // Server memory: resident after the sitting, and the highest seen during it (sum over the
    // process tree: mlflow's workers are children).
    for (key, label) in [
        ("idle_mb", "server RSS idle, MiB"),
        ("after_mb", "server RSS after, MiB"),
        ("peak_sampled_mb", "server RSS peak seen, MiB"),
    ] {
        let get = |d: &Value| d["server_rss"][key].as_f64();
        if get(k).is_none() && p.iter().all(|d| get(d).is_none()) {
            continue;
        }
        let mut row = vec![label.to_string(), get(k).map_or("—".into(), fmt)];
        row.extend(p.iter().map(|d| get(d).map_or("—".into(), fmt)));
        if !p.is_empty() {
            let best = p.iter().filter_map(get).reduce(f64::min);
            row.push(match (get(k), best) {
                (Some(kv), Some(b)) if kv > 0.0 => format!("{}× less", fmt(b / kv)),
                _ => "—".into(),
            });
            row.push("—".into());
        }
        extra_cols(&mut row);
        println!("| {} |", row.join(" | "));
    }

    // Samples a time cap cut short: the rate still holds (calls done over the time taken), but
    // the reader should know how much was done.
    let mut capped = Vec::new();
    for d in &docs {
        for (key, m) in d["metrics"].as_object().into_iter().flatten() {
            let pairs: Vec<(u64, u64)> = m["done_of_asked"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                .collect();
            if pairs.iter().any(|(done, asked)| done < asked) {
                let list: Vec<String> =
                    pairs.iter().map(|(d, a)| format!("{}/{}", fmt(*d as f64), fmt(*a as f64))).collect();
                capped.push(format!("{} {key}: {}", d["label"].as_str().unwrap_or("?"), list.join(", ")));
            }
        }
    }
    if !capped.is_empty() {
        notes.push(format!("Samples cut short by their time cap (done/asked per sample): {}.", capped.join("; ")));
    }

    // Ratios between sittings of different sizes mean little: say so where they differ.
    for d in p {
        let diff: Vec<String> =
            ["runs", "history_points", "connections", "duration_s", "log_metric_calls", "search_calls"]
                .iter()
                .filter(|key| k["env"][**key] != d["env"][**key])
                .map(|key| format!("{key} {} vs {}", k["env"][*key], d["env"][*key]))
                .collect();
        if !diff.is_empty() {
            notes.push(format!(
                "**Sizes differ** from {}'s ({}): those ratios are not comparable.",
                d["label"].as_str().unwrap_or("?"),
                diff.join(", ")
            ));
        }
    }

    let mut problems = Vec::new();
    for d in &docs {
        let label = d["label"].as_str().unwrap_or("?");
        for m in d["mismatches"].as_array().into_iter().flatten() {
            problems.push(format!("{label}: {}", m.as_str().unwrap_or_default()));
        }
        for (phase, e) in d["errors"].as_object().into_iter().flatten() {
            let first = e["first"].as_array().and_then(|a| a.first()).and_then(Value::as_str).unwrap_or_default();
            problems.push(format!("{label}: phase {phase}: {} failed calls, e.g. {first}", e["count"]));
        }
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    if !problems.is_empty() {
        println!();
        println!("**Failures and wrong answers:**");
        for pr in problems {
            println!("- {pr}");
        }
    }
    0
}
