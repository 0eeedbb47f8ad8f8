//! The client side: one hand-held HTTP/1.1 keep-alive connection per worker (hyper's `conn::http1`,
//! no pool, no TLS), and a phase runner that keeps N of them busy back to back.
//!
//! Why hand-held connections: a pooled client adds a lock and a checkout per request, and the whole
//! point of this tool is to cost the server's 2-core machine as little CPU per call as possible.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;

/// The server under test: a loopback address and the Host header to send.
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    /// The URL as given (without a trailing slash), for the results file.
    pub url: String,
    pub timeout: Duration,
}

impl Target {
    /// `http://127.0.0.1:PORT` (or localhost / [::1]). Only loopback: this tool must never send
    /// load anywhere else.
    pub fn parse(url: &str, timeout: Duration) -> Result<Target, String> {
        let url = url.trim_end_matches('/');
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("--url {url}: only http:// URLs (no TLS)"))?;
        if rest.contains('/') {
            return Err(format!("--url {url}: give the server's root (http://127.0.0.1:PORT), no path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().map_err(|_| format!("--url {url}: bad port"))?),
            _ => (rest, 80),
        };
        let ip = match host {
            "localhost" => "127.0.0.1".to_string(),
            h => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        };
        let ip: std::net::IpAddr =
            ip.parse().map_err(|_| format!("--url {url}: the host must be an IP or localhost"))?;
        if !ip.is_loopback() {
            return Err(format!("--url {url}: only loopback servers (127.0.0.1, ::1) may be loaded"));
        }
        Ok(Target { addr: SocketAddr::new(ip, port), host: rest.to_string(), url: url.to_string(), timeout })
    }
}

/// One request to make. `body` is empty for GET.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Bytes,
}

impl Req {
    pub fn post(path: &str, body: &serde_json::Value) -> Req {
        // Serialising a Value cannot fail (string keys, finite numbers only in our bodies).
        let body = serde_json::to_vec(body).unwrap_or_default();
        Req { method: Method::POST, path: path.to_string(), body: Bytes::from(body) }
    }

    /// A POST of a body serialised by the caller (must be valid JSON).
    pub fn raw(path: &str, body: String) -> Req {
        Req { method: Method::POST, path: path.to_string(), body: Bytes::from(body) }
    }

    pub fn get(path_and_query: String) -> Req {
        Req { method: Method::GET, path: path_and_query, body: Bytes::new() }
    }
}

/// One keep-alive connection. A transport failure (reset, timeout) drops it; the next call
/// connects anew.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.target.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.target.addr))?;
            // Requests are small and answered one at a time: Nagle would only add delay.
            stream.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                // The connection ends when the sender is dropped or the server closes it; a
                // failure here shows up as an error on the next request.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| "no connection".to_string())
    }

    /// Sends one request and reads the whole answer. Err is a transport failure (the server's
    /// status, whatever it is, comes back as Ok).
    pub async fn call(&mut self, req: &Req) -> Result<(StatusCode, Bytes), String> {
        let timeout = self.target.timeout;
        let res = tokio::time::timeout(timeout, self.call_inner(req)).await;
        match res {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {} s", timeout.as_secs()))
            }
        }
    }

    async fn call_inner(&mut self, req: &Req) -> Result<(StatusCode, Bytes), String> {
        let host = self.target.host.clone();
        let sender = self.connect().await?;
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let mut b = Request::builder().method(req.method.clone()).uri(&req.path).header(header::HOST, host);
        if req.method == Method::POST {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let request = b.body(Full::new(req.body.clone())).map_err(|e| format!("request {}: {e}", req.path))?;
        let resp = sender.send_request(request).await.map_err(|e| format!("{} {}: {e}", req.method, req.path))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{} {}: reading the answer: {e}", req.method, req.path))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The errors of one phase: how many, and the first few in full (status, path, body).
pub struct ErrLog {
    pub count: AtomicU64,
    pub first: Mutex<Vec<String>>,
}

const KEEP_ERRORS: usize = 5;

impl ErrLog {
    pub fn new() -> Arc<ErrLog> {
        Arc::new(ErrLog { count: AtomicU64::new(0), first: Mutex::new(Vec::new()) })
    }

    pub fn record(&self, what: String) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < KEEP_ERRORS
            && let Ok(mut v) = self.first.lock()
        {
            v.push(what);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn first(&self) -> Vec<String> {
        self.first.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Describes a non-200 answer for the error log: status, request and (the start of) the body.
pub fn describe(req: &Req, status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(400).collect();
    format!("HTTP {} on {} {}: {}", status.as_u16(), req.method, req.path, cut)
}

/// Makes request `i` for worker `w`.
pub type MakeReq = Arc<dyn Fn(usize, usize) -> Req + Send + Sync>;
/// Looks at a 200 answer of request `i`; Err makes the call count as an error.
pub type OnOk = Arc<dyn Fn(usize, &[u8]) -> Result<(), String> + Send + Sync>;

/// What one pool run did.
pub struct Outcome {
    pub elapsed_s: f64,
    pub ok: u64,
    pub errors: u64,
    /// Seconds from the start at which each successful call ended (for time windows).
    pub done_at: Vec<f32>,
}

impl Outcome {
    pub fn rate(&self, per_call: f64) -> f64 {
        if self.elapsed_s > 0.0 { self.ok as f64 * per_call / self.elapsed_s } else { 0.0 }
    }
}

/// N connections, one worker task each.
pub struct Pool {
    conns: Vec<Conn>,
}

impl Pool {
    pub fn new(target: &Arc<Target>, n: usize) -> Pool {
        Pool { conns: (0..n).map(|_| Conn::new(target.clone())).collect() }
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Runs requests 0..n over the connections, each worker taking the next index as soon as its
    /// previous call is answered, until all are done or `max_s` has passed (a call already sent
    /// is waited for). Every non-200 answer, transport failure or `on_ok` refusal is an error,
    /// logged in `errs`; nothing is retried.
    pub async fn run(
        &mut self,
        n: usize,
        max_s: f64,
        make: MakeReq,
        on_ok: Option<OnOk>,
        errs: &Arc<ErrLog>,
    ) -> Outcome {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(max_s.max(0.0));
        let mut tasks = Vec::with_capacity(self.conns.len());
        for (w, mut conn) in std::mem::take(&mut self.conns).into_iter().enumerate() {
            let (next, make, on_ok, errs) = (next.clone(), make.clone(), on_ok.clone(), errs.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut bad, mut done_at) = (0u64, 0u64, Vec::new());
                loop {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let req = make(i, w);
                    match conn.call(&req).await {
                        Ok((status, body)) if status == StatusCode::OK => match on_ok.as_ref().map(|f| f(i, &body)) {
                            Some(Err(e)) => {
                                bad += 1;
                                errs.record(format!("{} {}: {e}", req.method, req.path));
                            }
                            _ => {
                                ok += 1;
                                done_at.push(start.elapsed().as_secs_f32());
                            }
                        },
                        Ok((status, body)) => {
                            bad += 1;
                            errs.record(describe(&req, status, &body));
                        }
                        Err(e) => {
                            bad += 1;
                            errs.record(e);
                            // The server is gone or wedged: do not spin on reconnects.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                (conn, ok, bad, done_at)
            }));
        }
        let mut out = Outcome { elapsed_s: 0.0, ok: 0, errors: 0, done_at: Vec::new() };
        for t in tasks {
            match t.await {
                Ok((conn, ok, bad, done_at)) => {
                    self.conns.push(conn);
                    out.ok += ok;
                    out.errors += bad;
                    out.done_at.extend(done_at);
                }
                Err(e) => errs.record(format!("worker task failed: {e}")),
            }
        }
        out.elapsed_s = start.elapsed().as_secs_f64();
        out
    }
}

/// Percent-encodes a query-string value (page tokens may hold '+', '/', '=').
pub fn qs(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
