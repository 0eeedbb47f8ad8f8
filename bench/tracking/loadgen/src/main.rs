//! Load generator for the tracking benchmark: the phases and JSON bodies of the shared Python
//! client (tracking.py: a, a2, b, c, d, e) plus a concurrent-writers soak (w), over N keep-alive
//! HTTP/1.1 connections from a small tokio runtime, so that kiln's figures are not capped by the
//! client (the Python one tops out near 1,000 calls/s on the 2-core bench machine).
//!
//!   kiln-tracking-loadgen --url http://127.0.0.1:PORT [flags]      # bench a server
//!   kiln-tracking-loadgen search-set --runs N [--seed S]            # the search set, as JSON
//!   kiln-tracking-loadgen table --kiln K.json [--peer P.json]...    # Markdown comparison table
//!
//! Run with --help for the flags. Writes one results JSON (--out) and a summary on stderr; exits
//! 3 when any call failed or an answer was wrong (the file says which), 1 on a setup failure.

mod http;
mod report;
mod table;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use http::{Conn, ErrLog, MakeReq, OnOk, Pool, Req, Target, describe, qs};
use report::{Report, Rss};

const API: &str = "/api/2.0/mlflow";
const PHASES: [&str; 7] = ["a", "a2", "b", "c", "d", "e", "w"];
/// Metric points per runs/log-batch call in phase c (MLflow's own per-call limit is 1,000).
const POINTS_PER_CALL: usize = 1000;
/// The search of phase d, exactly as tracking.py sends it.
const SEARCH_FILTER: &str = "metrics.acc > 0.5 and params.model = 'rf'";

const HELP: &str = "\
kiln-tracking-loadgen: drive an MLflow tracking server's REST API (phases of tracking.py)

  kiln-tracking-loadgen --url http://127.0.0.1:PORT [flags]
  kiln-tracking-loadgen search-set --runs N [--seed S]     print the search set as JSON
  kiln-tracking-loadgen table --kiln FILE [--peer FILE]... [--note TEXT]...

Phases (all by default; --phases picks some, e.g. a,a2,b,c):
  a   runs/create of --runs runs into a fresh experiment, --chunks samples, runs/s
  a2  one small runs/log-batch per run (param model=rf|lr|nb, metrics acc, loss, tag team), calls/s;
      fills the search set
  b   runs/log-metric single calls, one run per connection, --reps samples, calls/s
  c   runs/log-batch of 1,000 points on key loss of a fresh run, --history-points per rep, points/s
  d   runs/search, filter \"metrics.acc > 0.5 and params.model = 'rf'\", order metrics.acc DESC,
      max_results 1000: --search-calls first-page latencies, then a third as many all-pages walks;
      checks the count, the order and each run against the search set
  e   GET metrics/get-history of phase c's runs (all pages), latency, checks the point count
  w   --connections writers, each on its own run, mixing log-metric, log-batch and set-tag for
      --duration seconds: calls, errors, calls/s per sixth of the duration

Flags:
  --url URL                server root, loopback only (required)
  --label L                name in the results (default target)
  --out FILE               results JSON (default: none, summary only)
  --connections N          concurrent keep-alive connections (default 8)
  --threads N              client runtime threads (default 1: the client then takes at most
                           one core of the machine it shares with the server)
  --runs N                 search-set size (default 10000)
  --search-experiment ID   use this experiment, already holding the --runs search set of --seed
                           (as `search-set` prints it), for phase d; phases a and a2 then create
                           --rate-runs runs in a fresh experiment of their own
  --rate-runs N            with --search-experiment: runs for phases a and a2 (default --runs)
  --chunks N               samples in phases a and a2 (default 5)
  --reps N                 samples in phases b and c, reads in e (default 3; e does at least 3)
  --log-metric-calls N     calls per phase-b sample (default 20000)
  --history-points N       points per phase-c sample (default 100000; whole thousands)
  --search-calls N         first-page searches in phase d (default 30)
  --duration S             phase w length (default 60)
  --max-sample-s S         time cap of one rate sample in a, a2, b (default 60)
  --max-batch-s S          time cap of one phase-c sample (default 180)
  --max-latency-s S        time cap of each latency loop in d and e (default 300; each loop
                           still takes 3 samples, bounded by --timeout-s)
  --timeout-s S            one request's limit (default 300)
  --pid PID                the server's pid: report the RSS of it and its descendants
  --seed S                 seed of the search set's random acc/loss values (default 42)
  --warmup N               before phase a, N unmeasured rounds of runs/create, small log-batch
                           and log-metric (default 0): mlflow server answers its first few hundred
                           calls 2-3x slower than later ones, and phase a would measure that
  --phases LIST            comma list of a,a2,b,c,d,e,w (default all)
";

struct Opts {
    url: String,
    label: String,
    out: Option<String>,
    connections: usize,
    threads: usize,
    runs: usize,
    search_experiment: Option<String>,
    rate_runs: Option<usize>,
    chunks: usize,
    reps: usize,
    log_metric_calls: usize,
    history_points: usize,
    search_calls: usize,
    duration_s: f64,
    max_sample_s: f64,
    max_batch_s: f64,
    max_latency_s: f64,
    timeout_s: f64,
    pid: Option<u32>,
    seed: u64,
    warmup: usize,
    phases: HashSet<String>,
}

fn fail(msg: &str) -> ! {
    eprintln!("kiln-tracking-loadgen: {msg}");
    std::process::exit(2);
}

/// `--flag value` and `--flag=value` pairs.
fn pairs(args: Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "-h" || a == "--help" {
            print!("{HELP}");
            std::process::exit(0);
        }
        if !a.starts_with("--") {
            fail(&format!("unexpected argument '{a}' (see --help)"));
        }
        match a.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => {
                let v = it.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
                out.push((a, v));
            }
        }
    }
    out
}

fn num<T: std::str::FromStr>(k: &str, v: &str) -> T {
    v.parse().unwrap_or_else(|_| fail(&format!("{k}: '{v}' is not a valid number")))
}

fn parse_opts(args: Vec<String>) -> Opts {
    let mut o = Opts {
        url: String::new(),
        label: "target".into(),
        out: None,
        connections: 8,
        threads: 1,
        runs: 10_000,
        search_experiment: None,
        rate_runs: None,
        chunks: 5,
        reps: 3,
        log_metric_calls: 20_000,
        history_points: 100_000,
        search_calls: 30,
        duration_s: 60.0,
        max_sample_s: 60.0,
        max_batch_s: 180.0,
        max_latency_s: 300.0,
        timeout_s: 300.0,
        pid: None,
        seed: 42,
        warmup: 0,
        phases: PHASES.iter().map(|s| s.to_string()).collect(),
    };
    for (k, v) in pairs(args) {
        match k.as_str() {
            "--url" => o.url = v,
            "--label" => o.label = v,
            "--out" => o.out = Some(v),
            "--connections" => o.connections = num(&k, &v),
            "--threads" => o.threads = num(&k, &v),
            "--runs" => o.runs = num(&k, &v),
            "--search-experiment" => o.search_experiment = Some(v),
            "--rate-runs" => o.rate_runs = Some(num(&k, &v)),
            "--chunks" => o.chunks = num(&k, &v),
            "--reps" => o.reps = num(&k, &v),
            "--log-metric-calls" => o.log_metric_calls = num(&k, &v),
            "--history-points" => o.history_points = num(&k, &v),
            "--search-calls" => o.search_calls = num(&k, &v),
            "--duration" => o.duration_s = num(&k, &v),
            "--max-sample-s" => o.max_sample_s = num(&k, &v),
            "--max-batch-s" => o.max_batch_s = num(&k, &v),
            "--max-latency-s" => o.max_latency_s = num(&k, &v),
            "--timeout-s" => o.timeout_s = num(&k, &v),
            "--pid" => o.pid = Some(num(&k, &v)),
            "--seed" => o.seed = num(&k, &v),
            "--warmup" => o.warmup = num(&k, &v),
            "--phases" => {
                o.phases = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                if let Some(bad) = o.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
                    fail(&format!("--phases: unknown phase '{bad}' (a, a2, b, c, d, e, w)"));
                }
            }
            _ => fail(&format!("unknown flag {k} (see --help)")),
        }
    }
    if o.url.is_empty() {
        fail("--url is required (see --help)");
    }
    if o.connections == 0 || o.threads == 0 || o.chunks == 0 || o.reps == 0 || o.runs == 0 {
        fail("--connections, --threads, --chunks, --reps and --runs must be at least 1");
    }
    if o.history_points == 0 || !o.history_points.is_multiple_of(POINTS_PER_CALL) {
        fail("--history-points must be a positive multiple of 1000");
    }
    if o.rate_runs.is_some() && o.search_experiment.is_none() {
        fail("--rate-runs only goes with --search-experiment (otherwise phase a creates the search set)");
    }
    let has = |p: &str| o.phases.contains(p);
    if has("a2") && !has("a") {
        fail("phase a2 logs to phase a's runs: add a");
    }
    if has("d") && o.search_experiment.is_none() && !has("a2") {
        fail("phase d searches phase a2's runs: add a,a2 or give --search-experiment");
    }
    if has("e") && !has("c") {
        fail("phase e reads phase c's history: add c");
    }
    o
}

// ------------------------------------------------------------------------------- the search set

/// splitmix64: a tiny seeded generator, so that the search set (and its expected match count)
/// is the same for every server and for the out-of-band filler of mlflow's copy.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
struct Row {
    model: &'static str,
    acc: f64,
    loss: f64,
}

/// Run i of the search set: param model rf/lr/nb by i % 3, metric acc in [0, 1) and loss in
/// [0, 3), both to 4 decimals (as tracking.py rounds them).
fn search_set(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = Rng(seed);
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    (0..n)
        .map(|i| {
            let acc = r4(rng.next_f64());
            let loss = r4(rng.next_f64() * 3.0);
            Row { model: ["rf", "lr", "nb"][i % 3], acc, loss }
        })
        .collect()
}

fn matches(r: &Row) -> bool {
    r.model == "rf" && r.acc > 0.5
}

fn print_search_set(args: Vec<String>) {
    let (mut runs, mut seed) = (10_000usize, 42u64);
    for (k, v) in pairs(args) {
        match k.as_str() {
            "--runs" => runs = num(&k, &v),
            "--seed" => seed = num(&k, &v),
            _ => fail(&format!("search-set: unknown flag {k}")),
        }
    }
    let rows = search_set(runs, seed);
    let expected = rows.iter().filter(|r| matches(r)).count();
    let rows: Vec<Value> = rows.iter().map(|r| json!([r.model, r.acc, r.loss])).collect();
    println!(
        "{}",
        json!({"runs": runs, "seed": seed, "filter": SEARCH_FILTER, "expected_match": expected, "rows": rows})
    );
}

// ------------------------------------------------------------------------------- helpers

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Today's UTC date, YYYY-MM-DD (civil-from-days, so no date crate is needed).
fn today() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn api(p: &str) -> String {
    format!("{API}/{p}")
}

/// A setup call (experiment or run creation outside the timed loops): a failure aborts the
/// sitting, since what follows would measure nothing.
async fn setup_post(conn: &mut Conn, path: &str, body: Value) -> Result<Value, String> {
    let req = Req::post(&api(path), &body);
    let (status, bytes) = conn.call(&req).await?;
    if status != hyper::StatusCode::OK {
        return Err(describe(&req, status, &bytes));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{path}: answer is not JSON: {e}"))
}

fn run_id_of(v: &Value) -> Result<String, String> {
    v["run"]["info"]["run_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "runs/create: no run.info.run_id in the answer".into())
}

async fn create_run(conn: &mut Conn, exp: &str, name: &str) -> Result<String, String> {
    let v = setup_post(conn, "runs/create", json!({"experiment_id": exp, "start_time": now_ms(), "run_name": name}))
        .await?;
    run_id_of(&v)
}

/// Finds `"next_page_token":"..."` without parsing the whole answer, so that a timed walk over
/// pages measures the server and the transfer, not this client's JSON parser (answers are parsed
/// and checked after the clock stops). Tokens are base64/alphanumeric: no escapes to handle.
fn scan_token(body: &[u8]) -> Option<String> {
    let key = b"\"next_page_token\"";
    let at = body.windows(key.len()).rposition(|w| w == key)?;
    let rest = &body[at + key.len()..];
    let rest = rest.iter().position(|&b| b == b':').map(|p| &rest[p + 1..])?;
    let start = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest[start] != b'"' {
        return None; // null
    }
    let tok = &rest[start + 1..];
    let end = tok.iter().position(|&b| b == b'"')?;
    let t = String::from_utf8_lossy(&tok[..end]).into_owned();
    if t.is_empty() { None } else { Some(t) }
}

fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))
}

fn page_token(v: &Value) -> Option<String> {
    v["next_page_token"].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

// ------------------------------------------------------------------------------- phases

struct Sitting {
    o: Opts,
    pool: Pool,
    ctl: Conn,
    rep: Report,
    suffix: String,
}

impl Sitting {
    fn has(&self, p: &str) -> bool {
        self.o.phases.contains(p)
    }

    fn errs(&mut self, phase: &str, e: &Arc<ErrLog>) {
        self.rep.errors(phase, e.count(), e.first());
    }

    async fn new_exp(&mut self, name: &str) -> Result<String, String> {
        let v =
            setup_post(&mut self.ctl, "experiments/create", json!({"name": format!("{name}-{}", self.suffix)})).await?;
        v["experiment_id"].as_str().map(str::to_string).ok_or_else(|| "experiments/create: no experiment_id".into())
    }

    async fn run(&mut self) -> Result<(), String> {
        let (runs, rate_runs) = (self.o.runs, self.o.rate_runs);
        let rows = Arc::new(search_set(runs.max(rate_runs.unwrap_or(0)), self.o.seed));
        let exp_misc = self.new_exp("bench-misc").await?;
        if self.o.warmup > 0 {
            self.warmup().await?;
        }

        // (a) runs/create, in chunks: each chunk one sample.
        let (exp_a, n_a) = match self.o.search_experiment {
            Some(_) => (self.new_exp("bench-rate").await?, rate_runs.unwrap_or(runs)),
            None => (self.new_exp("bench-search").await?, runs),
        };
        let ids: Arc<Vec<OnceLock<String>>> = Arc::new((0..n_a).map(|_| OnceLock::new()).collect());
        let filled: Arc<Vec<AtomicBool>> = Arc::new((0..n_a).map(|_| AtomicBool::new(false)).collect());
        let chunk = (n_a / self.o.chunks).max(1);
        if self.has("a") {
            eprintln!("(a) runs/create: {n_a} runs in chunks of {chunk}");
            let errs = ErrLog::new();
            // (done, asked) per sample: a time cap may cut a sample short; the table says so.
            let (mut samples, mut done) = (Vec::new(), Vec::new());
            for base in (0..n_a).step_by(chunk) {
                let n = chunk.min(n_a - base);
                let exp = exp_a.clone();
                let make: MakeReq = Arc::new(move |i, _| {
                    Req::post(
                        &api("runs/create"),
                        &json!({"experiment_id": exp, "start_time": now_ms(), "run_name": format!("r{}", base + i)}),
                    )
                });
                let ids = ids.clone();
                let on_ok: OnOk = Arc::new(move |i, body| {
                    let id = run_id_of(&parse(body)?)?;
                    ids[base + i].set(id).map_err(|_| "run created twice".to_string())
                });
                let out = self.pool.run(n, self.o.max_sample_s, make, Some(on_ok), &errs).await;
                samples.push(out.rate(1.0));
                done.push((out.ok as usize, n));
            }
            let created = ids.iter().filter(|i| i.get().is_some()).count();
            self.rep.add(
                "a_runs_create_per_s",
                &samples,
                "runs/s",
                "higher",
                json!({"runs": created, "chunk": chunk, "done_of_asked": done}),
            );
            self.errs("a", &errs);
            if created < n_a {
                self.rep.note(format!("phase a created {created} of {n_a} runs (time cap or errors)"));
            }
        }

        // (a2) one small log-batch per run: fills the search set.
        if self.has("a2") {
            let created: Arc<Vec<(usize, String)>> =
                Arc::new(ids.iter().enumerate().filter_map(|(i, id)| Some((i, id.get()?.clone()))).collect());
            eprintln!("(a2) runs/log-batch (1 param, 2 metrics, 1 tag) on {} runs", created.len());
            let errs = ErrLog::new();
            // (done, asked) per sample: a time cap may cut a sample short; the table says so.
            let (mut samples, mut done) = (Vec::new(), Vec::new());
            for base in (0..created.len()).step_by(chunk) {
                let n = chunk.min(created.len() - base);
                let (c, r) = (created.clone(), rows.clone());
                let make: MakeReq = Arc::new(move |i, _| {
                    let (idx, rid) = &c[base + i];
                    let row = &r[*idx];
                    let ts = now_ms();
                    Req::post(
                        &api("runs/log-batch"),
                        &json!({"run_id": rid, "params": [{"key": "model", "value": row.model}],
                                "metrics": [{"key": "acc", "value": row.acc, "timestamp": ts, "step": 0},
                                            {"key": "loss", "value": row.loss, "timestamp": ts, "step": 0}],
                                "tags": [{"key": "team", "value": "bench"}]}),
                    )
                });
                let (c, f) = (created.clone(), filled.clone());
                let on_ok: OnOk = Arc::new(move |i, _| {
                    f[c[base + i].0].store(true, Ordering::Relaxed);
                    Ok(())
                });
                let out = self.pool.run(n, self.o.max_sample_s, make, Some(on_ok), &errs).await;
                samples.push(out.rate(1.0));
                done.push((out.ok as usize, n));
            }
            self.rep.add(
                "a2_log_batch_small_calls_per_s",
                &samples,
                "calls/s",
                "higher",
                json!({"calls": created.len(), "done_of_asked": done}),
            );
            self.errs("a2", &errs);
        }

        // (b) single log-metric calls, one run per connection.
        if self.has("b") {
            let mut mruns = Vec::new();
            for k in 0..self.pool.len() {
                mruns.push(create_run(&mut self.ctl, &exp_misc, &format!("log-metric-{k}")).await?);
            }
            let mruns = Arc::new(mruns);
            let calls = self.o.log_metric_calls;
            eprintln!("(b) runs/log-metric: {} reps of {calls} calls", self.o.reps);
            let errs = ErrLog::new();
            // (done, asked) per sample: a time cap may cut a sample short; the table says so.
            let (mut samples, mut done) = (Vec::new(), Vec::new());
            for rep in 0..self.o.reps {
                let m = mruns.clone();
                let make: MakeReq = Arc::new(move |i, w| {
                    Req::post(
                        &api("runs/log-metric"),
                        &json!({"run_id": m[w], "key": "m", "value": i as f64 * 0.5, "timestamp": now_ms(),
                                "step": rep * calls + i}),
                    )
                });
                let out = self.pool.run(calls, self.o.max_sample_s, make, None, &errs).await;
                samples.push(out.rate(1.0));
                done.push((out.ok as usize, calls));
            }
            self.rep.add(
                "b_log_metric_calls_per_s",
                &samples,
                "calls/s",
                "higher",
                json!({"calls_per_sample": calls, "done_of_asked": done}),
            );
            self.errs("b", &errs);
        }

        // (c) log-batch of 1,000 points on key loss of one fresh run per rep.
        let mut hist_runs: Vec<(String, usize)> = Vec::new();
        if self.has("c") {
            let ncalls = self.o.history_points / POINTS_PER_CALL;
            eprintln!("(c) runs/log-batch x{POINTS_PER_CALL} points: {} reps of {ncalls} calls", self.o.reps);
            let errs = ErrLog::new();
            // (done, asked) per sample: a time cap may cut a sample short; the table says so.
            let (mut samples, mut done) = (Vec::new(), Vec::new());
            for rep in 0..self.o.reps {
                let rid = create_run(&mut self.ctl, &exp_misc, &format!("history-{rep}")).await?;
                let ts = now_ms();
                let r = rid.clone();
                let make: MakeReq = Arc::new(move |i, _| {
                    // Formatted by hand: through serde_json's Value this body costs the client
                    // more CPU than a fast server spends storing it. f64's Debug form is the
                    // shortest round-trip one (1.0, 0.5, 1e-5): valid JSON, as serde_json writes.
                    let mut b = String::with_capacity(80 * POINTS_PER_CALL);
                    let _ = write!(b, "{{\"run_id\":\"{r}\",\"metrics\":[");
                    for j in 0..POINTS_PER_CALL {
                        let step = i * POINTS_PER_CALL + j;
                        let sep = if j == 0 { "" } else { "," };
                        let _ = write!(
                            b,
                            "{sep}{{\"key\":\"loss\",\"value\":{:?},\"timestamp\":{},\"step\":{step}}}",
                            1.0 / (1 + step) as f64,
                            ts + i as i64
                        );
                    }
                    b.push_str("]}");
                    Req::raw(&api("runs/log-batch"), b)
                });
                let out = self.pool.run(ncalls, self.o.max_batch_s, make, None, &errs).await;
                samples.push(out.rate(POINTS_PER_CALL as f64));
                done.push((out.ok as usize * POINTS_PER_CALL, self.o.history_points));
                hist_runs.push((rid, out.ok as usize * POINTS_PER_CALL));
            }
            self.rep.add(
                "c_log_batch_1000_points_per_s",
                &samples,
                "points/s",
                "higher",
                json!({"points_per_sample": self.o.history_points, "points_per_call": POINTS_PER_CALL,
                       "done_of_asked": done}),
            );
            self.errs("c", &errs);
        }

        if self.has("d") {
            let (exp, expected) = match &self.o.search_experiment {
                Some(e) => (e.clone(), rows[..self.o.runs].iter().filter(|r| matches(r)).count()),
                None => {
                    let n = filled.iter().filter(|f| f.load(Ordering::Relaxed)).count();
                    if n < self.o.runs {
                        self.rep.note(format!("the search set holds {n} runs, not {}", self.o.runs));
                    }
                    let exp = exp_a.clone();
                    let e = (0..n_a).filter(|&i| filled[i].load(Ordering::Relaxed) && matches(&rows[i])).count();
                    (exp, e)
                }
            };
            self.search(&exp, expected).await;
        }
        if self.has("e") {
            self.history(&hist_runs).await;
        }
        if self.has("w") {
            self.writers(&exp_misc).await?;
        }
        Ok(())
    }

    /// Unmeasured calls before phase a, in a experiment of their own: a server that warms up
    /// (Python's lazy imports, SQLAlchemy's statement cache) is measured warm, like one that
    /// has been up a while. The same for every server, since every server gets the same flags.
    async fn warmup(&mut self) -> Result<(), String> {
        let n = self.o.warmup;
        eprintln!("(warm-up) {n} rounds of runs/create, small log-batch, log-metric: not measured");
        let exp = self.new_exp("bench-warmup").await?;
        let errs = ErrLog::new();
        let t = Instant::now();
        let ids: Arc<Vec<OnceLock<String>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
        let make: MakeReq = Arc::new(move |i, _| {
            Req::post(
                &api("runs/create"),
                &json!({"experiment_id": exp, "start_time": now_ms(), "run_name": format!("w{i}")}),
            )
        });
        let ids2 = ids.clone();
        let on_ok: OnOk = Arc::new(move |i, body| {
            let id = run_id_of(&parse(body)?)?;
            ids2[i].set(id).map_err(|_| "run created twice".to_string())
        });
        let cap = self.o.max_sample_s * 4.0;
        self.pool.run(n, cap, make, Some(on_ok), &errs).await;
        let created: Arc<Vec<String>> = Arc::new(ids.iter().filter_map(|i| i.get().cloned()).collect());
        let c = created.clone();
        let make: MakeReq = Arc::new(move |i, _| {
            let ts = now_ms();
            Req::post(
                &api("runs/log-batch"),
                &json!({"run_id": c[i], "params": [{"key": "model", "value": "rf"}],
                        "metrics": [{"key": "acc", "value": 0.5, "timestamp": ts, "step": 0}],
                        "tags": [{"key": "team", "value": "warm-up"}]}),
            )
        });
        self.pool.run(created.len(), cap, make, None, &errs).await;
        let c = created.clone();
        let make: MakeReq = Arc::new(move |i, _| {
            Req::post(
                &api("runs/log-metric"),
                &json!({"run_id": c[i], "key": "m", "value": 1.0, "timestamp": now_ms(), "step": 1}),
            )
        });
        self.pool.run(created.len(), cap, make, None, &errs).await;
        self.rep.note(format!(
            "warm-up: {} of {n} rounds in {:.1} s, not measured",
            created.len(),
            t.elapsed().as_secs_f64()
        ));
        self.errs("warm-up", &errs);
        Ok(())
    }

    /// Checks one search answer's runs: each matches the filter per the search set, acc values
    /// come in descending order (also across pages: `last` carries the previous page's last),
    /// no run twice. Returns the runs on the page.
    fn check_search_page(&mut self, v: &Value, seen: &mut HashSet<String>, last: &mut f64, what: &str) -> usize {
        let runs = v["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let (mut bad, mut unordered, mut dup) = (0, 0, 0);
        for r in runs {
            let find = |list: &str, key: &str| {
                r["data"][list].as_array().and_then(|a| a.iter().find(|m| m["key"] == key)).map(|m| m["value"].clone())
            };
            // MLflow sends metric values as numbers; params are strings.
            let acc = find("metrics", "acc").and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()));
            let model = find("params", "model");
            match acc {
                Some(acc) if acc > 0.5 && model.as_ref().and_then(Value::as_str) == Some("rf") => {
                    if acc > *last {
                        unordered += 1;
                    }
                    *last = acc;
                }
                _ => bad += 1,
            }
            let id = r["info"]["run_id"].as_str().unwrap_or_default().to_string();
            if !seen.insert(id) {
                dup += 1;
            }
        }
        if bad > 0 {
            self.rep.problem(format!("{what}: {bad} runs do not match the filter (or lack acc/model)"));
        }
        if unordered > 0 {
            self.rep.problem(format!("{what}: {unordered} runs out of metrics.acc DESC order"));
        }
        if dup > 0 {
            self.rep.problem(format!("{what}: {dup} runs returned twice"));
        }
        runs.len()
    }

    /// (d) runs/search latency: first page, then all pages, on the control connection.
    async fn search(&mut self, exp: &str, expected: usize) {
        let body = |tok: Option<&str>| {
            let mut b = json!({"experiment_ids": [exp], "filter": SEARCH_FILTER, "order_by": ["metrics.acc DESC"],
                               "max_results": 1000});
            if let Some(t) = tok {
                b["page_token"] = json!(t);
            }
            Req::post(&api("runs/search"), &b)
        };
        let first_expected = expected.min(1000);
        eprintln!("(d) runs/search: {} first pages, then all pages; {expected} runs match", self.o.search_calls);
        let errs = ErrLog::new();
        let mut lat = Vec::new();
        let mut wrong_first = 0;
        // One warm-up call (as tracking.py makes), not timed, then the timed ones.
        let start = Instant::now();
        for k in 0..=self.o.search_calls {
            if k > 3 && start.elapsed().as_secs_f64() > self.o.max_latency_s {
                break;
            }
            let req = body(None);
            let t = Instant::now();
            match self.ctl.call(&req).await {
                Ok((s, b)) if s == hyper::StatusCode::OK => {
                    if k > 0 {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    match parse(&b) {
                        Ok(v) => {
                            let mut top = f64::INFINITY;
                            let n = self.check_search_page(&v, &mut HashSet::new(), &mut top, "first page");
                            if n != first_expected {
                                wrong_first += 1;
                                if wrong_first == 1 {
                                    self.rep.problem(format!(
                                        "search first page returned {n} runs, expected {first_expected}"
                                    ));
                                }
                            }
                        }
                        Err(e) => errs.record(format!("runs/search: {e}")),
                    }
                }
                Ok((s, b)) => errs.record(describe(&req, s, &b)),
                Err(e) => errs.record(e),
            }
        }
        self.rep.add(
            "d_search_first_page_ms",
            &lat,
            "ms",
            "lower",
            json!({"matching": expected, "search_runs": self.o.runs, "max_results": 1000}),
        );

        let walks = (self.o.search_calls / 3).max(3);
        let mut lat = Vec::new();
        let start = Instant::now();
        'walk: for k in 0..walks {
            if k >= 3 && start.elapsed().as_secs_f64() > self.o.max_latency_s {
                break;
            }
            let mut pages = Vec::new();
            let mut tok: Option<String> = None;
            let t = Instant::now();
            loop {
                let req = body(tok.as_deref());
                match self.ctl.call(&req).await {
                    Ok((s, b)) if s == hyper::StatusCode::OK => {
                        tok = scan_token(&b);
                        pages.push(b);
                        if tok.is_none() {
                            break;
                        }
                        if pages.len() > expected / 1000 + 2 {
                            self.rep.problem(format!("search keeps paging: {} pages for {expected} runs", pages.len()));
                            break 'walk;
                        }
                    }
                    Ok((s, b)) => {
                        errs.record(describe(&req, s, &b));
                        continue 'walk;
                    }
                    Err(e) => {
                        errs.record(e);
                        continue 'walk;
                    }
                }
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            // Checked after the clock stopped: every page parses, the scanned token was the real
            // one, the union is the expected set in order.
            let (mut seen, mut last, mut total) = (HashSet::new(), f64::INFINITY, 0);
            for (p, b) in pages.iter().enumerate() {
                match parse(b) {
                    Ok(v) => {
                        if (page_token(&v).is_some()) != (p + 1 < pages.len()) {
                            self.rep.problem("search: next_page_token scan disagrees with the parsed answer".into());
                        }
                        total += self.check_search_page(&v, &mut seen, &mut last, "paged search");
                    }
                    Err(e) => errs.record(format!("runs/search page {p}: {e}")),
                }
            }
            if total != expected {
                self.rep.problem(format!(
                    "paged search returned {total} runs in {} pages, expected {expected}",
                    pages.len()
                ));
            }
        }
        self.rep.add(
            "d_search_all_pages_ms",
            &lat,
            "ms",
            "lower",
            json!({"matching": expected, "search_runs": self.o.runs}),
        );
        self.errs("d", &errs);
    }

    /// (e) get-history of phase c's runs, all pages, on the control connection.
    async fn history(&mut self, hist_runs: &[(String, usize)]) {
        let want = self.o.history_points;
        let full: Vec<&String> = hist_runs.iter().filter(|(_, n)| *n == want).map(|(r, _)| r).collect();
        let runs: Vec<&String> = if full.is_empty() {
            self.rep.problem(format!("phase c logged {want} points on no run: reading partial histories"));
            hist_runs.iter().map(|(r, _)| r).collect()
        } else {
            full
        };
        if runs.is_empty() {
            return;
        }
        let reps = self.o.reps.max(3);
        eprintln!("(e) metrics/get-history of {want} points: {reps} reads");
        let errs = ErrLog::new();
        let mut lat = Vec::new();
        let start = Instant::now();
        'read: for k in 0..reps {
            if k >= 3 && start.elapsed().as_secs_f64() > self.o.max_latency_s {
                break;
            }
            let rid = runs[k % runs.len()];
            let mut pages = Vec::new();
            let mut tok: Option<String> = None;
            let t = Instant::now();
            loop {
                let mut q = format!("{API}/metrics/get-history?run_id={}&metric_key=loss", qs(rid));
                if let Some(tk) = &tok {
                    q.push_str(&format!("&page_token={}", qs(tk)));
                }
                let req = Req::get(q);
                match self.ctl.call(&req).await {
                    Ok((s, b)) if s == hyper::StatusCode::OK => {
                        tok = scan_token(&b);
                        pages.push(b);
                        if tok.is_none() {
                            break;
                        }
                        if pages.len() > want + 2 {
                            self.rep.problem("get-history keeps paging".into());
                            break 'read;
                        }
                    }
                    Ok((s, b)) => {
                        errs.record(describe(&req, s, &b));
                        continue 'read;
                    }
                    Err(e) => {
                        errs.record(e);
                        continue 'read;
                    }
                }
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            let mut steps = HashSet::new();
            let mut n = 0;
            for b in &pages {
                match parse(b) {
                    Ok(v) => {
                        for m in v["metrics"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            n += 1;
                            steps.insert(m["step"].as_i64().unwrap_or(-1));
                        }
                    }
                    Err(e) => errs.record(format!("get-history: {e}")),
                }
            }
            let expect = hist_runs.iter().find(|(r, _)| r == rid).map_or(want, |(_, n)| *n);
            if n != expect || steps.len() != expect {
                self.rep.problem(format!(
                    "get-history returned {n} points ({} distinct steps) in {} pages, expected {expect}",
                    steps.len(),
                    pages.len()
                ));
            }
        }
        self.rep.add("e_get_metric_history_ms", &lat, "ms", "lower", json!({"points": want}));
        self.errs("e", &errs);
    }

    /// (w) N writers for --duration seconds, each on its own run.
    async fn writers(&mut self, exp: &str) -> Result<(), String> {
        let mut wruns = Vec::new();
        for k in 0..self.pool.len() {
            wruns.push(create_run(&mut self.ctl, exp, &format!("writer-{k}")).await?);
        }
        let wruns = Arc::new(wruns);
        let d = self.o.duration_s;
        eprintln!("(w) {} writers for {d} s: log-metric / log-batch / set-tag", wruns.len());
        let make: MakeReq = Arc::new(move |i, w| {
            let rid = &wruns[w];
            let ts = now_ms();
            match i % 3 {
                0 => Req::post(
                    &api("runs/log-metric"),
                    &json!({"run_id": rid, "key": "w_m", "value": i as f64, "timestamp": ts, "step": i}),
                ),
                1 => {
                    // Params are write-once per run: a fresh key per call.
                    let metrics: Vec<Value> = (0..10)
                        .map(|j| json!({"key": "w_b", "value": j as f64, "timestamp": ts, "step": i * 10 + j}))
                        .collect();
                    Req::post(
                        &api("runs/log-batch"),
                        &json!({"run_id": rid, "metrics": metrics, "params": [{"key": format!("w_p{i}"), "value": "v"}],
                                "tags": [{"key": "w_last", "value": i.to_string()}]}),
                    )
                }
                _ => Req::post(
                    &api("runs/set-tag"),
                    &json!({"run_id": rid, "key": format!("w_t{}", i % 10), "value": i.to_string()}),
                ),
            }
        });
        let errs = ErrLog::new();
        let out = self.pool.run(usize::MAX, d, make, None, &errs).await;
        // Calls per second in each sixth of the run: six samples of one sustained load.
        let win = d / 6.0;
        let mut counts = [0u64; 6];
        for &t in &out.done_at {
            let k = (f64::from(t) / win) as usize;
            if k < 6 {
                counts[k] += 1;
            }
        }
        let samples: Vec<f64> = counts.iter().map(|&c| c as f64 / win).collect();
        self.rep.add(
            "w_writers_calls_per_s",
            &samples,
            "calls/s",
            "higher",
            json!({"writers": self.pool.len(), "duration_s": d, "calls_ok": out.ok, "calls_failed": out.errors,
                   "overall_calls_per_s": out.rate(1.0)}),
        );
        eprintln!("  writers: {} calls ok, {} failed in {:.1} s", out.ok, out.errors, out.elapsed_s);
        self.errs("w", &errs);
        Ok(())
    }
}

async fn bench(o: Opts) -> i32 {
    let target = match Target::parse(&o.url, Duration::from_secs_f64(o.timeout_s)) {
        Ok(t) => Arc::new(t),
        Err(e) => fail(&e),
    };
    let mut phases: Vec<&str> = PHASES.iter().copied().filter(|p| o.phases.contains(*p)).collect();
    phases.dedup();
    let env = json!({
        "date": today(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "connections": o.connections, "client_threads": o.threads, "runs": o.runs,
        "search_set": match &o.search_experiment {
            Some(e) => format!("pre-filled experiment {e}"),
            None => "created by phases a and a2 over HTTP".to_string(),
        },
        "rate_runs": o.rate_runs.unwrap_or(o.runs), "chunks": o.chunks, "reps": o.reps,
        "log_metric_calls": o.log_metric_calls, "history_points": o.history_points,
        "search_calls": o.search_calls, "duration_s": o.duration_s, "max_sample_s": o.max_sample_s,
        "max_batch_s": o.max_batch_s, "max_latency_s": o.max_latency_s, "timeout_s": o.timeout_s,
        "seed": o.seed, "warmup": o.warmup, "phases": phases,
    });
    let rep = Report::new(&o.label, &target.url, env);
    let suffix = format!("{}-{}", now_ms(), std::process::id());
    let pool = Pool::new(&target, o.connections);
    let ctl = Conn::new(target.clone());
    let rss = o.pid.map(|pid| Rss { pid });
    let idle = rss.as_ref().and_then(Rss::read);
    if rss.is_some() && idle.is_none() {
        eprintln!("kiln-tracking-loadgen: --pid {}: no such process (RSS not taken)", o.pid.unwrap_or(0));
    }
    // RSS sampled every 250 ms while the phases run: the peak of the whole tree (VmHWM is per
    // process, and a sum of per-process peaks overstates a tree's peak).
    let max_rss = Arc::new(Mutex::new(0f64));
    let sampler = rss.as_ref().filter(|_| idle.is_some()).map(|r| {
        let (pid, max_rss) = (r.pid, max_rss.clone());
        tokio::spawn(async move {
            let r = Rss { pid };
            loop {
                if let Some(m) = r.read()
                    && let Ok(mut x) = max_rss.lock()
                {
                    *x = x.max(m.rss_mb);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });

    eprintln!("kiln-tracking-loadgen: {} ({}), {} connections", target.url, o.label, o.connections);
    let t0 = Instant::now();
    let mut s = Sitting { o, pool, ctl, rep, suffix };
    let aborted = s.run().await.err();
    if let Some(e) = &aborted {
        s.rep.problem(format!("sitting aborted: {e}"));
    }
    let wall = t0.elapsed().as_secs_f64();
    s.rep.note(format!("wall time {wall:.0} s"));
    if let Some(h) = sampler {
        h.abort();
    }
    if let (Some(r), Some(idle)) = (rss, idle) {
        let after = r.read().unwrap_or_default();
        let peak = max_rss.lock().map(|x| x.max(after.rss_mb)).unwrap_or(after.rss_mb);
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        let v = json!({"pid": r.pid, "idle_mb": round1(idle.rss_mb), "after_mb": round1(after.rss_mb),
                       "peak_sampled_mb": round1(peak), "hwm_sum_mb": round1(after.hwm_sum_mb),
                       "processes": after.processes});
        eprintln!(
            "  server RSS (pid {} + {} descendants): idle {:.1}, after {:.1}, peak seen {:.1} MiB",
            r.pid,
            after.processes.saturating_sub(1),
            idle.rss_mb,
            after.rss_mb,
            peak
        );
        s.rep.set("server_rss", v);
    }
    let bad = s.rep.has_errors();
    let out = s.o.out.clone();
    let doc = s.rep.finish();
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("kiln-tracking-loadgen: cannot write {path}: {e}");
            return 1;
        }
        eprintln!("  results: {path}");
    }
    if aborted.is_some() {
        1
    } else if bad {
        eprintln!("kiln-tracking-loadgen: there were failed calls or wrong answers (see above)");
        3
    } else {
        0
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("search-set") => {
            args.remove(0);
            print_search_set(args);
        }
        Some("table") => {
            args.remove(0);
            std::process::exit(table::main(args));
        }
        _ => {
            let o = parse_opts(args);
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(o.threads).enable_all().build();
            let code = match rt {
                Ok(rt) => rt.block_on(bench(o)),
                Err(e) => {
                    eprintln!("kiln-tracking-loadgen: cannot start the runtime: {e}");
                    1
                }
            };
            std::process::exit(code);
        }
    }
}
