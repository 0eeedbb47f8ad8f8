use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

pub fn kiln() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.env_remove("RUST_LOG")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env("NO_COLOR", "1");
    c
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Splits a CSV (one record per line) into `train.csv` and `test.csv` in `dir`; data row `i`
/// (0-based) is a test row when `is_test(i)`. The scikit-learn reference numbers in the tests
/// use the same rows (`df.iloc[::5]` or `df.iloc[4000:]` as test).
pub fn split_rows(src: &Path, dir: &Path, is_test: impl Fn(usize) -> bool) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut tr, mut te) = (vec![header], vec![header]);
    for (i, l) in lines.enumerate() {
        if is_test(i) { te.push(l) } else { tr.push(l) }
    }
    let (a, b) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&a, tr.join("\n") + "\n").unwrap();
    std::fs::write(&b, te.join("\n") + "\n").unwrap();
    (a, b)
}

/// `kiln train` on an example's config with `overrides`, fitting on `train` and reporting on
/// `test`, into `out`.
pub fn train_on(
    example_name: &str,
    overrides: &[&str],
    train: &Path,
    test: &Path,
    out: &Path,
) -> (i32, String, String) {
    let mut cmd = kiln();
    cmd.arg("train").arg(example(example_name).join("kiln.yaml"));
    for o in overrides {
        cmd.args(["-S", o]);
    }
    run(cmd.arg("--data").arg(train).arg("--test-data").arg(test).arg("--out").arg(out))
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[track_caller]
pub fn assert_close(got: &serde_json::Value, want: f64, tol: f64) {
    let g = got.as_f64().unwrap_or_else(|| panic!("not a number: {got}"));
    assert!(close(g, want, tol), "got {g}, want {want} (tol {tol})");
}

/// A running kiln server process (`kiln serve`, `kiln server`); killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: String,
    /// Everything it printed on stderr after its address.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Spawns `cmd` (which must listen on port 0) and waits for the "… on http://ADDR" line.
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut addr = None;
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split_once(" on http://").map(|x| x.1) {
                addr = Some(rest.split_whitespace().next().unwrap().to_owned());
                break;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let addr = addr.unwrap_or_else(|| panic!("the server printed no address:\n{seen}"));
        // Keep draining stderr so the server never blocks on a full pipe; tests read it.
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Self { child, base: format!("http://{addr}"), addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kiln server` on SQLite (`dir/mlflow.db`) with its artifacts in `dir/artifacts`.
pub fn sqlite_server(dir: &Path) -> Server {
    let uri = format!("sqlite:///{}", dir.join("mlflow.db").display());
    Server::spawn(
        kiln()
            .args(["server", "--port", "0", "--backend-store-uri", &uri])
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts")),
    )
}
