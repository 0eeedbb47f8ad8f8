//! Prometheus metrics in the text exposition format.
//!
//! Written by hand: a handful of counters and fixed-bucket histograms behind one mutex is all
//! the server needs, and the exporter crates bring their own HTTP listener and registry
//! machinery for what is a page of text. One short, uncontended lock per request costs far less
//! than the request itself.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::source::Origin;

/// Request latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Batch-size buckets (rows per predict call, requests per batch).
const SIZE_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    batch_rows: Histogram,
    batch_requests: Histogram,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    in_flight: AtomicI64,
    /// Seconds the model took to load, as f64 bits.
    load_seconds: std::sync::atomic::AtomicU64,
    /// New versions swapped in while serving; versions that failed to; failed registry polls.
    swaps: AtomicU64,
    swap_failures: AtomicU64,
    poll_errors: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                latency: BTreeMap::new(),
                batch_rows: Histogram::new(&SIZE_BUCKETS),
                batch_requests: Histogram::new(&SIZE_BUCKETS),
            }),
            in_flight: AtomicI64::new(0),
            load_seconds: std::sync::atomic::AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            swap_failures: AtomicU64::new(0),
            poll_errors: AtomicU64::new(0),
        }
    }
}

/// Decrements the in-flight gauge when a request ends, also when it is cancelled.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// One finished request. `route` is the matched route pattern (so ids in paths do not make
    /// new series).
    pub fn request(&self, route: &'static str, status: u16, seconds: f64) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests.entry((route, status)).or_default() += 1;
        m.latency.entry(route).or_insert_with(|| Histogram::new(&LATENCY_BUCKETS)).observe(seconds);
    }

    /// One predict call over `rows` rows gathered from `requests` requests.
    pub fn batch(&self, rows: usize, requests: usize) {
        let Ok(mut m) = self.inner.lock() else { return };
        #[allow(clippy::cast_precision_loss)]
        {
            m.batch_rows.observe(rows as f64);
            m.batch_requests.observe(requests as f64);
        }
    }

    pub fn set_load_seconds(&self, s: f64) {
        self.load_seconds.store(s.to_bits(), Ordering::Relaxed);
    }

    /// A new model version was swapped in after loading for `load_seconds`.
    pub fn swapped(&self, load_seconds: f64) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
        self.set_load_seconds(load_seconds);
    }

    /// A new model version could not be downloaded, loaded or smoke-tested.
    pub fn swap_failed(&self) {
        self.swap_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A poll of the tracking server failed.
    pub fn poll_error(&self) {
        self.poll_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `model`, `uuid` and `origin` label `kiln_model_info`.
    pub fn render(&self, model: &str, uuid: &str, origin: &Origin) -> String {
        let mut out = String::with_capacity(4096);
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let (reg_name, reg_version) = origin
            .registered
            .as_ref()
            .map_or((String::new(), String::new()), |r| (r.name.clone(), r.version.to_string()));
        let _ = writeln!(out, "# HELP kiln_model_info The model being served.\n# TYPE kiln_model_info gauge");
        let _ = writeln!(
            out,
            "kiln_model_info{{name=\"{}\",model_uuid=\"{}\",registered_name=\"{}\",registered_version=\"{}\",source=\"{}\"}} 1",
            esc(model),
            esc(uuid),
            esc(&reg_name),
            esc(&reg_version),
            esc(&origin.source)
        );
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        };
        counter(&mut out, "kiln_model_swaps_total", "New model versions swapped in while serving.", &self.swaps);
        counter(
            &mut out,
            "kiln_model_swap_failures_total",
            "New model versions that failed to download, load or pass the smoke prediction (the old one kept serving).",
            &self.swap_failures,
        );
        counter(
            &mut out,
            "kiln_model_poll_errors_total",
            "Polls of the tracking server (which version to serve) that failed.",
            &self.poll_errors,
        );
        let _ = writeln!(
            out,
            "# HELP kiln_model_load_seconds Time to load the model bundle.\n# TYPE kiln_model_load_seconds gauge\nkiln_model_load_seconds {}",
            f64::from_bits(self.load_seconds.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP kiln_http_requests_in_flight Requests being served now.\n# TYPE kiln_http_requests_in_flight gauge\nkiln_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let Ok(m) = self.inner.lock() else { return out };
        let _ = writeln!(
            out,
            "# HELP kiln_http_requests_total Requests answered, by route and status.\n# TYPE kiln_http_requests_total counter"
        );
        for ((route, status), n) in &m.requests {
            let _ = writeln!(out, "kiln_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP kiln_http_request_duration_seconds Request latency, by route.\n# TYPE kiln_http_request_duration_seconds histogram"
        );
        for (route, h) in &m.latency {
            h.render(&mut out, "kiln_http_request_duration_seconds", &format!("route=\"{route}\""));
        }
        let _ = writeln!(
            out,
            "# HELP kiln_batch_rows Rows per predict call (micro-batches included).\n# TYPE kiln_batch_rows histogram"
        );
        m.batch_rows.render(&mut out, "kiln_batch_rows", "");
        let _ = writeln!(
            out,
            "# HELP kiln_batch_requests Requests gathered into one predict call.\n# TYPE kiln_batch_requests histogram"
        );
        m.batch_requests.render(&mut out, "kiln_batch_requests", "");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("/invocations", 200, 0.0003);
        m.request("/invocations", 200, 0.002);
        m.request("/invocations", 400, 0.0001);
        m.batch(3, 2);
        let _g = m.start();
        m.swap_failed();
        let origin = Origin {
            source: "models:/iris@champion".into(),
            registered: Some(kiln_client::RegisteredVersion { name: "iris".into(), version: 2 }),
            location: String::new(),
        };
        let text = m.render("iris", "abc", &origin);
        assert!(text.contains("kiln_model_info{name=\"iris\",model_uuid=\"abc\",registered_name=\"iris\",registered_version=\"2\",source=\"models:/iris@champion\"} 1\n"), "{text}");
        assert!(text.contains("kiln_model_swaps_total 0\n"), "{text}");
        assert!(text.contains("kiln_model_swap_failures_total 1\n"), "{text}");
        assert!(text.contains("kiln_http_requests_total{route=\"/invocations\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("kiln_http_requests_total{route=\"/invocations\",status=\"400\"} 1\n"));
        assert!(text.contains("kiln_http_request_duration_seconds_bucket{route=\"/invocations\",le=\"0.0005\"} 2\n"));
        assert!(text.contains("kiln_http_request_duration_seconds_count{route=\"/invocations\"} 3\n"));
        assert!(text.contains("kiln_batch_rows_bucket{le=\"4\"} 1\n"));
        assert!(text.contains("kiln_batch_requests_sum 2\n"));
        assert!(text.contains("kiln_http_requests_in_flight 1\n"));
    }
}
