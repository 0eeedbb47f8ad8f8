//! Figures (samples with their unit and summary), the results file, and the server's RSS.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Median of the samples (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

/// Nearest-rank percentile: the smallest sample with at least p% of the samples at or below it
/// (so p99 of 30 samples is the largest one).
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// The results of one sitting against one server.
pub struct Report {
    pub doc: Map<String, Value>,
    metrics: Map<String, Value>,
    errors: Map<String, Value>,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(label: &str, url: &str, env: Value) -> Report {
        let mut doc = Map::new();
        doc.insert("bench".into(), json!("tracking-loadgen"));
        doc.insert("label".into(), json!(label));
        doc.insert("url".into(), json!(url));
        doc.insert("env".into(), env);
        Report { doc, metrics: Map::new(), errors: Map::new(), problems: Vec::new(), notes: Vec::new() }
    }

    /// A figure from its samples. `better` is "higher" (rates) or "lower" (times); times also get
    /// p50/p99. `extra` goes into the figure as is (sizes, counts).
    pub fn add(&mut self, name: &str, samples: &[f64], unit: &str, better: &str, extra: Value) {
        let mut m = Map::new();
        m.insert("unit".into(), json!(unit));
        m.insert("better".into(), json!(better));
        m.insert("n".into(), json!(samples.len()));
        if samples.is_empty() {
            m.insert("median".into(), Value::Null);
        } else {
            let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m.insert("median".into(), json!(round(median(samples), 3)));
            m.insert("min".into(), json!(round(min, 3)));
            m.insert("max".into(), json!(round(max, 3)));
            if better == "lower" {
                m.insert("p50".into(), json!(round(percentile(samples, 50.0), 3)));
                m.insert("p99".into(), json!(round(percentile(samples, 99.0), 3)));
            }
        }
        m.insert("samples".into(), json!(samples.iter().map(|x| round(*x, 3)).collect::<Vec<_>>()));
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        let summary = match (samples.is_empty(), better) {
            (true, _) => "no sample".to_string(),
            (false, "lower") => format!(
                "p50 {:.2} / p99 {:.2} {unit} ({} samples)",
                percentile(samples, 50.0),
                percentile(samples, 99.0),
                samples.len()
            ),
            _ => format!("median {:.1} {unit} ({} samples)", median(samples), samples.len()),
        };
        eprintln!("  {name:<34} {summary}");
        self.metrics.insert(name.into(), Value::Object(m));
    }

    /// A phase's errors (only when there were any).
    pub fn errors(&mut self, phase: &str, count: u64, first: Vec<String>) {
        if count == 0 {
            return;
        }
        eprintln!("  !! {phase}: {count} failed calls; first ones:");
        for e in &first {
            eprintln!("     {e}");
        }
        self.errors.insert(phase.into(), json!({"count": count, "first": first}));
    }

    /// A wrong answer (count, order, content): said loudly and kept in the file.
    pub fn problem(&mut self, what: String) {
        eprintln!("  !! MISMATCH: {what}");
        self.problems.push(what);
    }

    pub fn note(&mut self, what: String) {
        eprintln!("  note: {what}");
        self.notes.push(what);
    }

    pub fn set(&mut self, key: &str, v: Value) {
        self.doc.insert(key.into(), v);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || !self.problems.is_empty()
    }

    pub fn finish(mut self) -> Value {
        let total: u64 = self.errors.values().filter_map(|e| e["count"].as_u64()).sum();
        self.doc.insert("metrics".into(), Value::Object(self.metrics));
        self.doc.insert("errors_total".into(), json!(total));
        self.doc.insert("errors".into(), Value::Object(self.errors));
        self.doc.insert("mismatches".into(), json!(self.problems));
        self.doc.insert("notes".into(), json!(self.notes));
        Value::Object(self.doc)
    }
}

/// Resident memory of a process tree, read from /proc (Linux only: elsewhere every figure is
/// None). mlflow server runs its gunicorn/uvicorn workers as children, so the tree is the server.
pub struct Rss {
    pub pid: u32,
}

#[derive(Clone, Copy, Default)]
pub struct TreeMem {
    /// Sum of VmRSS over the pid and its descendants, MiB.
    pub rss_mb: f64,
    /// Sum of VmHWM (each process's own peak) over the same processes, MiB: an upper bound of
    /// the tree's peak, exact for a single process.
    pub hwm_sum_mb: f64,
    pub processes: usize,
}

fn status_kb(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
}

/// The pid's descendants, found through each process's parent in /proc/*/stat.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // The command name (field 2) may hold spaces and parentheses: the parent pid is the
            // second field after the last ')'.
            let Some(ppid) =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
            else {
                continue;
            };
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.get(&p) {
            for &k in kids {
                out.push(k);
                stack.push(k);
            }
        }
    }
    out
}

impl Rss {
    pub fn read(&self) -> Option<TreeMem> {
        status_kb(self.pid, "VmRSS")?;
        let mut m = TreeMem::default();
        for p in std::iter::once(self.pid).chain(descendants(self.pid)) {
            // A process may exit between the listing and the read: skip it.
            if let Some(kb) = status_kb(p, "VmRSS") {
                m.rss_mb += kb / 1024.0;
                m.hwm_sum_mb += status_kb(p, "VmHWM").unwrap_or(kb) / 1024.0;
                m.processes += 1;
            }
        }
        Some(m)
    }
}
