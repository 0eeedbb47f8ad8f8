//! `kiln server` driven by the official `mlflow` client (tests/python/mlflow_tracking_client.py)
//! on each backend: SQLite, PostgreSQL and MariaDB (the machine's servers; a fresh database per
//! test, dropped afterwards). Without a database the test is skipped, except under CI.

use std::process::Command;

use crate::common::*;
use crate::serve::test_python;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Runs the mlflow client scenario against a `kiln server` on `uri`.
fn scenario(uri: &str) {
    let Some(python) = test_python() else { return };
    let s = Server::spawn(kiln().args(["server", "--port", "0", "--backend-store-uri", uri]));
    let script = repo().join("tests/python/mlflow_tracking_client.py");
    let (code, stdout, stderr) = run(Command::new(&python).arg(&script).env("MLFLOW_TRACKING_URI", &s.base));
    assert_eq!(code, 0, "{stdout}\n{stderr}\nserver log:\n{}", s.log.lock().unwrap());
    assert!(stdout.contains("ok  rename, delete/restore experiment"), "{stdout}");
}

fn fresh_name() -> String {
    format!(
        "kiln_it_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
    )
}

/// Runs a database CLI statement; false (or a panic under CI) when the server is unreachable.
fn sql(cmd: &mut Command, what: &str) -> bool {
    match cmd.output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            let msg = format!("{what}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(!ci(), "CI=true and {msg}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: {msg}");
            }
            false
        }
        Err(e) => {
            assert!(!ci(), "CI=true and {what}: {e}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: {what}: {e}");
            }
            false
        }
    }
}

#[test]
fn the_official_mlflow_client_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&format!("sqlite:///{}", dir.path().join("mlflow.db").display()));
}

#[test]
fn the_official_mlflow_client_on_postgresql() {
    let db = fresh_name();
    let psql = |stmt: &str| {
        let mut c = Command::new("psql");
        c.args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", stmt]);
        c
    };
    if !sql(&mut psql(&format!("CREATE DATABASE {db}")), "PostgreSQL at 127.0.0.1:5432") {
        return;
    }
    let result = std::panic::catch_unwind(|| scenario(&format!("postgresql://postgres@127.0.0.1:5432/{db}")));
    sql(&mut psql(&format!("DROP DATABASE {db} WITH (FORCE)")), "dropping the test database");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn the_official_mlflow_client_on_mariadb() {
    let db = fresh_name();
    let mysql = |stmt: &str| {
        let mut c = Command::new("mariadb");
        c.args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", stmt]);
        c
    };
    if !sql(&mut mysql(&format!("CREATE DATABASE {db}")), "MariaDB at 127.0.0.1:3306") {
        return;
    }
    let result = std::panic::catch_unwind(|| scenario(&format!("mysql://root@127.0.0.1:3306/{db}")));
    sql(&mut mysql(&format!("DROP DATABASE {db}")), "dropping the test database");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
