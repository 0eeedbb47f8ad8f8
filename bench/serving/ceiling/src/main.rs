//! A bare axum server for the serving benchmark's ceiling: `POST /invocations` reads the request
//! body and answers a constant MLflow-shaped JSON body; `GET /ping` answers 200.
//!
//!   kiln-serving-ceiling [--port N]     (default 0: a free port)
//!
//! Listens on 127.0.0.1 only and prints `ceiling on http://127.0.0.1:PORT` on stderr once it
//! accepts connections. SIGTERM or Ctrl-C stops it.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// What one single-row prediction looks like from `kiln serve` / `mlflow models serve`.
const BODY: &str = r#"{"predictions": ["setosa"]}"#;

/// Takes the body (so the connection stays reusable, as a real handler would) and ignores it.
async fn invocations(_body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

fn port_from_args() -> u16 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 0,
        [flag, port] if flag == "--port" || flag == "-p" => port.parse().unwrap_or_else(|_| usage()),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: kiln-serving-ceiling [--port N]   (0 or nothing: a free port)");
    std::process::exit(2);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = port_from_args();
    let app = Router::new()
        .route("/invocations", post(invocations))
        .route("/ping", get(|| async { "" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("ceiling on http://{} (Ctrl-C or SIGTERM stops)", listener.local_addr()?);
    axum::serve(listener, app).await
}
