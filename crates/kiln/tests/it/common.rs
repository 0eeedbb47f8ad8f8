use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kiln() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
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

/// Splits a CSV (one record per line) into train and test files: every `k`-th data row is a
/// test row. The scikit-learn reference numbers in the tests use the same split
/// (`df.iloc[::k]` as test).
pub fn split_every(src: &Path, k: usize, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut tr, mut te) = (vec![header], vec![header]);
    for (i, l) in lines.enumerate() {
        if i % k == 0 { te.push(l) } else { tr.push(l) }
    }
    let (a, b) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&a, tr.join("\n") + "\n").unwrap();
    std::fs::write(&b, te.join("\n") + "\n").unwrap();
    (a, b)
}

/// Splits a CSV into its first `n` data rows (train) and the rest (test).
pub fn split_head(src: &Path, n: usize, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut tr, mut te) = (vec![header], vec![header]);
    for (i, l) in lines.enumerate() {
        if i < n { tr.push(l) } else { te.push(l) }
    }
    let (a, b) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&a, tr.join("\n") + "\n").unwrap();
    std::fs::write(&b, te.join("\n") + "\n").unwrap();
    (a, b)
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
