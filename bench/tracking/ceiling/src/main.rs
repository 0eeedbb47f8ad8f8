//! A bare axum server for the tracking benchmark's client ceiling: every request (any method, any
//! path) has its body read and is answered 200 with a canned JSON body and no other work.
//!
//!   kiln-tracking-ceiling [--port N] [--body PATH=FILE]...
//!
//! `--body /api/2.0/mlflow/runs/search=search.json` answers requests to that path (the query
//! string is ignored) with the file's bytes, read once at start; every other path gets a small
//! body shaped like a `runs/create` answer (which also does for `experiments/create`, and is
//! ignored by the client for log-metric and log-batch). Listens on 127.0.0.1 only and prints
//! `ceiling on http://127.0.0.1:PORT` on stderr once it accepts connections. SIGTERM or Ctrl-C
//! stops it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;

const DEFAULT_BODY: &str = r#"{"experiment_id":"0","run":{"info":{"run_id":"0","run_uuid":"0","experiment_id":"0","status":"RUNNING","lifecycle_stage":"active"},"data":{}}}"#;

type Bodies = Arc<HashMap<String, Bytes>>;

/// Takes the request body (so the connection stays reusable, as a real handler would) and
/// ignores it.
async fn answer(State(bodies): State<Bodies>, uri: Uri, _body: Bytes) -> impl IntoResponse {
    let body = bodies.get(uri.path()).cloned().unwrap_or_else(|| Bytes::from_static(DEFAULT_BODY.as_bytes()));
    ([(header::CONTENT_TYPE, "application/json")], body)
}

fn usage() -> ! {
    eprintln!("usage: kiln-tracking-ceiling [--port N] [--body PATH=FILE]...   (port 0 or none: a free port)");
    std::process::exit(2);
}

fn parse_args() -> (u16, HashMap<String, Bytes>) {
    let mut port = 0;
    let mut bodies = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" | "-p" => port = value.parse().unwrap_or_else(|_| usage()),
            "--body" => {
                let (path, file) = value.split_once('=').unwrap_or_else(|| usage());
                let bytes = std::fs::read(file).unwrap_or_else(|e| {
                    eprintln!("kiln-tracking-ceiling: cannot read {file}: {e}");
                    std::process::exit(1);
                });
                bodies.insert(path.to_string(), Bytes::from(bytes));
            }
            _ => usage(),
        }
    }
    (port, bodies)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (port, bodies) = parse_args();
    let app = Router::new().fallback(answer).with_state(Arc::new(bodies));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("ceiling on http://{} (Ctrl-C or SIGTERM stops)", listener.local_addr()?);
    axum::serve(listener, app).await
}
