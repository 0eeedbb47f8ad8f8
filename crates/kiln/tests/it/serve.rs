//! `kiln serve`: the real binary on a free loopback port, driven by a real HTTP client (ureq),
//! and by raw sockets where a client must misbehave (slow bodies, half-sent requests).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// Models trained once for the whole test binary.
struct Models {
    _dir: tempfile::TempDir,
    iris: PathBuf,
    /// iris without an imputer: a missing value is an error.
    iris_strict: PathBuf,
    spam: PathBuf,
    diabetes: PathBuf,
}

fn train(name: &str, out: &Path, overrides: &[&str]) -> PathBuf {
    let mut cmd = kiln();
    cmd.arg("-q").arg("train").arg(example(name).join("kiln.yaml"));
    for o in overrides {
        cmd.args(["-S", o]);
    }
    let (code, _, stderr) = run(cmd.arg("--out").arg(out));
    assert_eq!(code, 0, "{stderr}");
    out.join("model")
}

fn models() -> &'static Models {
    static M: OnceLock<Models> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let iris = train("iris", &d.join("iris"), &["cv.folds=0", "model.C=1.0"]);
        let iris_strict =
            train("iris", &d.join("iris_strict"), &["cv.folds=0", "model.C=1.0", "preprocessing.numeric.impute=none"]);
        let spam = train("spam", &d.join("spam"), &["cv.folds=0", "model.alpha=0.1"]);
        let diabetes = train("diabetes", &d.join("diabetes"), &["cv.folds=0", "model.alpha=1.0"]);
        Models { _dir: dir, iris, iris_strict, spam, diabetes }
    })
}

impl Server {
    /// `kiln serve -m MODEL --port 0 ARGS…`, ready.
    fn start(model: &Path, args: &[&str]) -> Self {
        Self::spawn(kiln().arg("serve").arg("-m").arg(model).args(["--port", "0"]).args(args))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// (status, content type, body)
fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, String, String) {
    let mut r = agent().post(url).header("Content-Type", content_type).send(body).unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), ct, r.body_mut().read_to_string().unwrap())
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (status, ct, text) = post(url, "application/json", body.to_string().as_bytes());
    assert_eq!(ct, "application/json", "{text}");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn get(url: &str) -> (u16, String, String) {
    let mut r = agent().get(url).call().unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), ct, r.body_mut().read_to_string().unwrap())
}

const IRIS_COLS: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// The iris rows (features only) and `kiln predict`'s JSON document for them.
fn iris_rows() -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(example("iris").join("iris.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').take(4).map(|x| x.parse().unwrap()).collect()).collect()
}

fn kiln_predict_json(model: &Path, input: &Path, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (code, _, stderr) =
        run(kiln().arg("-q").arg("predict").arg("-m").arg(model).arg("-i").arg(input).arg("-o").arg(&out).args(extra));
    assert_eq!(code, 0, "{stderr}");
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn predict_route_answers_like_the_seed() {
    let m = models();
    let s = Server::start(&m.spam, &[]);
    let url = s.url("/predict");
    let (status, v) = post_json(&url, &json!({"text": "You have WON a PRIZE, text back"}));
    assert_eq!((status, v), (200, json!({"result": "spam"})));
    // What `curl -d` sends: a form content type with a JSON body.
    let (status, _, text) =
        post(&url, "application/x-www-form-urlencoded", br#"{"text":"are we still on for lunch tomorrow?"}"#);
    assert_eq!((status, text.as_str()), (200, r#"{"result":"ham"}"#));
    // Probabilities when asked, and a list gives a list.
    let (status, v) =
        post_json(&(url.clone() + "?proba=true"), &json!([{"text": "free entry"}, {"text": "see you at 5"}]));
    assert_eq!(status, 200);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for it in items {
        let p = it["probabilities"].as_object().unwrap();
        let sum: f64 = p.values().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{it}");
        let best = p.iter().max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap()).unwrap().0;
        assert_eq!(it["result"], json!(best));
    }
    // The input's own column name works too.
    let (status, v) = post_json(&url, &json!({"text": "hello"}));
    assert_eq!((status, v["result"].is_string()), (200, true));
    // Regression: a number.
    let s = Server::start(&m.diabetes, &[]);
    let rec = json!({"age": 59, "sex": 2, "bmi": 32.1, "bp": 101, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4, "s5": 4.8598, "s6": 87});
    let (status, v) = post_json(&s.url("/predict"), &rec);
    assert_eq!(status, 200, "{v}");
    assert!(v["result"].as_f64().unwrap() > 50.0, "{v}");
}

#[test]
fn invocations_speaks_every_mlflow_format_with_the_bytes_of_kiln_predict() {
    let m = models();
    let s = Server::start(&m.iris, &[]);
    let url = s.url("/invocations");
    let rows = iris_rows();
    let input = example("iris").join("iris.csv");
    // The same CSV through `kiln predict -o x.json` and through text/csv: identical bytes.
    let expected = kiln_predict_json(&m.iris, &input, &[]);
    let csv = std::fs::read(&input).unwrap();
    let (status, ct, body) = post(&url, "text/csv", &csv);
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert_eq!(body, expected);
    let expected_proba = kiln_predict_json(&m.iris, &input, &["--proba"]);
    let body =
        json!({"dataframe_split": {"columns": IRIS_COLS, "data": rows}, "params": {"predict_method": "predict_proba"}});
    let (status, _, text) = post(&url, "application/json", body.to_string().as_bytes());
    assert_eq!((status, text), (200, expected_proba));

    let records: Vec<Value> =
        rows.iter().map(|r| IRIS_COLS.iter().zip(r).map(|(c, v)| ((*c).to_owned(), json!(v))).collect()).collect();
    let columns: serde_json::Map<String, Value> =
        IRIS_COLS.iter().enumerate().map(|(j, c)| ((*c).to_owned(), rows.iter().map(|r| r[j]).collect())).collect();
    let bodies = [
        json!({"dataframe_split": {"columns": IRIS_COLS, "data": rows, "index": (0..rows.len()).collect::<Vec<_>>()}}),
        json!({"dataframe_records": records}),
        json!({"instances": records}),
        json!({"instances": rows}),
        json!({"inputs": columns}),
        json!({"inputs": rows}),
    ];
    for b in &bodies {
        let (status, _, text) = post(&url, "application/json; charset=utf-8", b.to_string().as_bytes());
        assert_eq!(status, 200, "{text}");
        assert_eq!(text, expected, "body {}", &b.to_string()[..60]);
    }
    // Extra columns are dropped, and column order does not matter.
    let b = json!({"dataframe_split": {"columns": ["id", "petal_width", "petal_length", "sepal_width", "sepal_length"],
        "data": [[7, 0.2, 1.4, 3.5, 5.1]]}});
    let (status, v) = post_json(&url, &b);
    assert_eq!((status, v), (200, json!({"predictions": ["setosa"]})));
}

/// A bad request: (method, path, content type, body, status, error_code, message part).
type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);

#[test]
fn bad_input_gets_a_4xx_json_error_that_names_the_problem() {
    let m = models();
    let s = Server::start(&m.iris_strict, &["--max-body-bytes", "4000", "--max-batch-size", "20"]);
    let rec = |v: Value| json!({"dataframe_records": [v]}).to_string();
    let full = json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let mut missing_one = full.clone();
    missing_one.as_object_mut().unwrap().remove("petal_width");
    let mut with_null = full.clone();
    with_null["sepal_width"] = Value::Null;
    let mut with_bool = full.clone();
    with_bool["sepal_width"] = json!(true);
    let mut with_text = full.clone();
    with_text["sepal_width"] = json!("wide");
    let many = json!({"instances": vec![[5.1, 3.5, 1.4, 0.2]; 21]}).to_string();
    let big = format!("{{\"instances\": [{}]}}", vec!["[5.1, 3.5, 1.4, 0.2]"; 300].join(","));
    let j = "application/json";
    let cases: Vec<Case<'_>> = vec![
        ("POST", "/invocations", j, b"{not json".to_vec(), 400, "BAD_REQUEST", "not valid JSON"),
        ("POST", "/invocations", j, b"{}".to_vec(), 400, "BAD_REQUEST", "exactly one of"),
        (
            "POST",
            "/invocations",
            j,
            br#"{"instances":[],"inputs":[]}"#.to_vec(),
            400,
            "BAD_REQUEST",
            "instances and inputs",
        ),
        ("POST", "/invocations", j, br#"{"instances":[]}"#.to_vec(), 400, "INVALID_PARAMETER_VALUE", "no rows"),
        (
            "POST",
            "/invocations",
            j,
            rec(missing_one).into_bytes(),
            400,
            "INVALID_PARAMETER_VALUE",
            "missing input column: `petal_width`",
        ),
        (
            "POST",
            "/invocations",
            j,
            rec(with_null).into_bytes(),
            400,
            "INVALID_PARAMETER_VALUE",
            "column `sepal_width`, row 0: the value is missing",
        ),
        ("POST", "/invocations", j, rec(with_bool).into_bytes(), 400, "INVALID_PARAMETER_VALUE", "got a boolean"),
        (
            "POST",
            "/invocations",
            j,
            rec(with_text).into_bytes(),
            400,
            "INVALID_PARAMETER_VALUE",
            "expected a number, got `wide`",
        ),
        (
            "POST",
            "/invocations",
            j,
            many.into_bytes(),
            413,
            "RESOURCE_LIMIT_EXCEEDED",
            "21 rows in one request, more than the limit of 20",
        ),
        ("POST", "/invocations", j, big.into_bytes(), 413, "RESOURCE_LIMIT_EXCEEDED", "larger than 4000 bytes"),
        (
            "POST",
            "/invocations",
            j,
            br#"{"instances":[[1,2,3,4]],"params":{"predict_method":"explain"}}"#.to_vec(),
            400,
            "INVALID_PARAMETER_VALUE",
            "predict_method",
        ),
        (
            "POST",
            "/invocations",
            "text/csv",
            b"sepal_length,sepal_width\n1,2,3\n".to_vec(),
            400,
            "BAD_REQUEST",
            "line 2: 2 fields in the header but 3 here",
        ),
        (
            "POST",
            "/invocations",
            "text/csv",
            b"sepal_length,sepal_width,petal_length,petal_width\n1,\xff,3,4\n".to_vec(),
            400,
            "BAD_REQUEST",
            "not valid UTF-8",
        ),
        (
            "POST",
            "/invocations",
            "text/csv",
            b"sepal_length,sepal_width,petal_length,petal_width\n1,2,x,4\n".to_vec(),
            400,
            "INVALID_PARAMETER_VALUE",
            "column `petal_length`, line 2: expected a number, got `x`",
        ),
        ("POST", "/invocations", "text/csv", b"".to_vec(), 400, "BAD_REQUEST", "empty"),
        (
            "POST",
            "/invocations",
            "text/plain",
            b"hi".to_vec(),
            415,
            "BAD_REQUEST",
            "only supports the following content types",
        ),
        ("POST", "/invocations", "application/json; boundary=x", b"{}".to_vec(), 415, "BAD_REQUEST", "content types"),
        ("GET", "/invocations", "", Vec::new(), 405, "BAD_REQUEST", "method GET is not allowed"),
        ("GET", "/nope", "", Vec::new(), 404, "ENDPOINT_NOT_FOUND", "no route for GET /nope"),
        ("POST", "/predict", j, b"[1, 2]".to_vec(), 400, "BAD_REQUEST", "record 0 must be a JSON object"),
        ("POST", "/predict", "text/csv", b"a\n1\n".to_vec(), 415, "BAD_REQUEST", "send CSV to /invocations"),
        (
            "POST",
            "/predict?proba=true",
            j,
            br#"{"sepal_length": 1}"#.to_vec(),
            400,
            "INVALID_PARAMETER_VALUE",
            "missing input columns: `sepal_width`, `petal_length`, `petal_width`",
        ),
    ];
    let a = agent();
    for (method, path, ct, body, status, code, msg) in cases {
        let url = s.url(path);
        let mut r = if method == "GET" {
            a.get(&url).call().unwrap()
        } else {
            a.post(&url).header("Content-Type", ct).send(&body[..]).unwrap()
        };
        let got_status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(got_status, status, "{method} {path} {ct}: {text}");
        assert_eq!(v["error_code"], json!(code), "{method} {path}: {text}");
        assert!(v["message"].as_str().unwrap().contains(msg), "{method} {path}: want `{msg}` in {text}");
    }
    // No Content-Type at all: 415 too (raw request, as no client library omits it).
    let answer =
        raw(&s.addr, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    // The server survived all of it.
    assert_eq!(get(&s.url("/ping")).0, 200);
    // A model without probabilities refuses them with 400.
    let s = Server::start(&m.diabetes, &[]);
    let rec = json!({"age": 59, "sex": 2, "bmi": 32.1, "bp": 101, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4, "s5": 4.8598, "s6": 87});
    let (status, v) = post_json(&s.url("/predict?proba=1"), &rec);
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("Ridge gives no class probabilities"), "{v}");
}

/// Sends `request` on a new connection and returns everything the server answers.
pub(crate) fn raw(addr: &str, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn open_inference_protocol_v2() {
    let m = models();
    let s = Server::start(&m.iris, &["--name", "iris"]);
    assert_eq!(get(&s.url("/v2/health/live")).0, 200);
    assert_eq!(get(&s.url("/v2/health/ready")).0, 200);
    assert_eq!(get(&s.url("/v2/models/iris/ready")).0, 200);
    let (status, _, meta) = get(&s.url("/v2/models/iris"));
    assert_eq!(status, 200);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["name"], "iris");
    assert_eq!(meta["inputs"][0], json!({"name": "sepal_length", "datatype": "FP64", "shape": [-1]}));
    assert_eq!(meta["outputs"][1]["shape"], json!([-1, 3]));
    let version = meta["versions"][0].as_str().unwrap().to_owned();
    let req = json!({
        "id": "r1",
        "inputs": [
            {"name": "sepal_length", "shape": [2, 1], "datatype": "FP64", "data": [[5.1], [6.3]]},
            {"name": "sepal_width", "shape": [2], "datatype": "FP32", "data": [3.5, 3.3]},
            {"name": "petal_length", "shape": [2], "datatype": "FP64", "data": [1.4, 6.0]},
            {"name": "petal_width", "shape": [2], "datatype": "INT64", "data": [0, 2.5]},
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    });
    for path in ["/v2/models/iris/infer".to_owned(), format!("/v2/models/iris/versions/{version}/infer")] {
        let (status, v) = post_json(&s.url(&path), &req);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["model_name"], "iris");
        assert_eq!(v["id"], "r1");
        assert_eq!(
            v["outputs"][0],
            json!({"name": "predict", "shape": [2], "datatype": "BYTES", "data": ["setosa", "virginica"]})
        );
        assert_eq!(v["outputs"][1]["shape"], json!([2, 3]));
        let p: Vec<f64> = v["outputs"][1]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(p.len(), 6);
        assert!((p[0..3].iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    // Errors use the protocol's {"error": ...} shape.
    let (status, v) = post_json(&s.url("/v2/models/other/infer"), &req);
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("model `other`"), "{v}");
    let bad = json!({"inputs": [{"name": "sepal_length", "shape": [3], "datatype": "FP64", "data": [1.0]}]});
    let (status, v) = post_json(&s.url("/v2/models/iris/infer"), &bad);
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("shape [3] does not match its 1 data values"), "{v}");
    let (status, v) = post_json(
        &s.url("/v2/models/iris/infer"),
        &json!({"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64", "data": [1.0]}]}),
    );
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("missing input columns"), "{v}");
    let (status, v) = post_json(&s.url("/v2/models/iris/infer"), &json!({"inputs": "x"}));
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("not a valid inference request"), "{v}");
}

#[test]
fn ping_version_openapi_and_metrics() {
    let m = models();
    let s = Server::start(&m.iris, &[]);
    assert_eq!(get(&s.url("/ping")), (200, "application/json".to_owned(), "\n".to_owned()));
    assert_eq!(get(&s.url("/health")).0, 200);
    let (status, _, v) = get(&s.url("/version"));
    assert_eq!((status, v.as_str()), (200, env!("CARGO_PKG_VERSION")));
    let (status, _, doc) = get(&s.url("/openapi.json"));
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let record = &doc["components"]["schemas"]["Record"];
    assert_eq!(record["properties"]["petal_width"]["type"], "number");
    assert_eq!(record["required"].as_array().unwrap().len(), 4);
    assert_eq!(
        doc["components"]["schemas"]["PredictResult"]["properties"]["result"]["enum"],
        json!(["setosa", "versicolor", "virginica"])
    );

    let url = s.url("/invocations");
    for _ in 0..3 {
        assert_eq!(post_json(&url, &json!({"instances": [[5.1, 3.5, 1.4, 0.2]]})).0, 200);
    }
    assert_eq!(post(&url, "application/json", b"{").0, 400);
    let (status, ct, text) = get(&s.url("/metrics"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    for want in [
        "kiln_http_requests_total{route=\"/invocations\",status=\"200\"} 3\n",
        "kiln_http_requests_total{route=\"/invocations\",status=\"400\"} 1\n",
        "kiln_http_requests_total{route=\"/ping\",status=\"200\"} 1\n",
        "kiln_http_request_duration_seconds_count{route=\"/invocations\"} 4\n",
        "kiln_batch_rows_count 3\n",
        "kiln_http_requests_in_flight 1\n",
        "# TYPE kiln_model_load_seconds gauge\n",
        "kiln_model_info{name=\"model\"",
    ] {
        assert!(text.contains(want), "missing `{want}` in\n{text}");
    }
}

#[test]
fn concurrent_requests_are_batched_and_each_gets_its_own_answer() {
    let m = models();
    let s = Server::start(&m.iris, &["--batch-wait-us", "2000000"]);
    let input = example("iris").join("iris.csv");
    let expected: Value = serde_json::from_str(&kiln_predict_json(&m.iris, &input, &["--proba"])).unwrap();
    let expected = Arc::new(expected["predictions"].as_array().unwrap().clone());
    let rows = Arc::new(iris_rows());
    let metric = |name: &str| -> u64 {
        let (_, _, text) = get(&s.url("/metrics"));
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };

    // 1. Deterministic: 24 requests whose headers have all arrived (so the server counts them as
    //    on their way) finish their bodies at once; the first one to arrive leads a batch that
    //    waits for the others.
    let body = |i: usize| json!({"instances": [rows[i]], "params": {"predict_method": "predict_proba"}}).to_string();
    let mut conns: Vec<(usize, TcpStream, String)> = (0..24)
        .map(|k| {
            let i = (k * 7) % rows.len();
            let b = body(i);
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let head = format!(
                "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(&b.as_bytes()[..5]).unwrap();
            (i, c, b)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for (_, c, b) in &mut conns {
        c.write_all(&b.as_bytes()[5..]).unwrap();
    }
    for (i, mut c, _) in conns {
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        let json = answer.split("\r\n\r\n").nth(1).unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["predictions"][0], expected[i], "row {i} got another request's answer");
    }
    assert_eq!(metric("kiln_batch_requests_sum "), 24);
    let calls = metric("kiln_batch_requests_count ");
    assert!(calls <= 3, "24 requests took {calls} predict calls");

    // 2. Under load: 16 clients, 20 rows a request, every row's answer checked.
    let url = s.url("/invocations");
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (rows, expected, url) = (rows.clone(), expected.clone(), url.clone());
            std::thread::spawn(move || {
                let a = agent();
                for k in 0..30 {
                    let first = (t * 37 + k * 11) % rows.len();
                    let idx: Vec<usize> = (first..first + 20).map(|i| i % rows.len()).collect();
                    let batch: Vec<&Vec<f64>> = idx.iter().map(|&i| &rows[i]).collect();
                    let body = json!({"instances": batch, "params": {"predict_method": "predict_proba"}});
                    let mut r = a.post(&url).header("Content-Type", "application/json").send(body.to_string()).unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    let got = v["predictions"].as_array().unwrap();
                    assert_eq!(got.len(), 20);
                    for (g, &i) in got.iter().zip(&idx) {
                        assert_eq!(g, &expected[i], "row {i} got another request's answer");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(metric("kiln_batch_requests_sum "), 24 + 480);
    assert_eq!(metric("kiln_batch_rows_sum "), 24 + 480 * 20);
}

#[test]
fn a_slow_client_is_cut_off_and_sigterm_drains_in_flight_requests() {
    let m = models();
    let s = Server::start(&m.iris, &["--timeout", "1"]);
    // A body that never finishes: 408 after the deadline, as JSON.
    let t = Instant::now();
    let answer = raw(
        &s.addr,
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inst",
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error_code\":\"DEADLINE_EXCEEDED\""), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // Headers that never finish: the connection is closed.
    let answer = raw(&s.addr, b"POST /invocations HTTP/1.1\r\nHost: x\r\n");
    assert!(!answer.contains("200 OK"), "{answer}");
    drop(s);

    let mut s = Server::start(&m.iris, &[]);
    let body = br#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#;
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The request is in flight (its body half sent) when SIGTERM arrives.
    let pid = s.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    // The one in flight is finished…
    c.write_all(&body[10..]).unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"predictions":["setosa"]}"#), "{answer}");
    // …then the server exits cleanly and accepts nothing more.
    let status = s.child.wait().unwrap();
    assert!(status.success(), "exit {status:?}; log: {}", s.log.lock().unwrap());
    assert!(TcpStream::connect(&s.addr).is_err());
}

/// The Python interpreter of the venv holding the real `mlflow` client (scripts/python-env.sh
/// makes it; scripts/test.sh exports KILN_TEST_PYTHON). Without it the test is skipped, except
/// under CI, where a missing client is a failure.
#[allow(clippy::print_stderr)]
pub(crate) fn test_python() -> Option<String> {
    match std::env::var("KILN_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but KILN_TEST_PYTHON is not set: run scripts/test.sh (it installs the mlflow client)"
            );
            eprintln!("skipped: KILN_TEST_PYTHON is not set (scripts/test.sh sets it up)");
            None
        }
    }
}

#[test]
fn the_official_mlflow_scoring_client_works_unchanged() {
    let Some(python) = test_python() else { return };
    let m = models();
    let script = repo().join("tests/python/mlflow_scoring_client.py");
    for (model, input) in [(&m.iris, example("iris").join("iris.csv")), (&m.spam, example("spam").join("messages.csv"))]
    {
        let s = Server::start(model, &[]);
        let dir = tempfile::tempdir().unwrap();
        let expected = dir.path().join("expected.json");
        std::fs::write(&expected, kiln_predict_json(model, &input, &[])).unwrap();
        let (code, stdout, stderr) =
            run(std::process::Command::new(&python).arg(&script).arg(&s.base).arg(model).arg(&input).arg(&expected));
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.contains("ok  ScoringServerClient.invoke(DataFrame)"), "{stdout}");
    }
}
