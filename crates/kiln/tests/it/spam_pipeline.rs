//! The DVC seed's SMS spam pipeline (`examples/spam-pipeline`) end to end, in a fresh git
//! repository: `kiln repro` runs kiln's own stage commands (`csv clean`, `csv split`, `train`,
//! `evaluate`), the real `dvc` agrees the result is up to date (and kiln agrees after `dvc
//! repro`), `metrics diff`/`params diff` print dvc's tables, and queued experiments show up in
//! both `kiln exp show` and `dvc exp show`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::data::{dvc_bin, git_repo};

/// PATH with the kiln under test first, so the stages' `kiln …` commands run this build.
fn path_with_kiln() -> OsString {
    let dir = Path::new(env!("CARGO_BIN_EXE_kiln")).parent().unwrap().to_owned();
    let mut paths = vec![dir];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap()
}

fn with_env(c: &mut Command) -> &mut Command {
    c.env("PATH", path_with_kiln())
        .env("DVC_NO_ANALYTICS", "1")
        .env("NO_COLOR", "1")
        // `exp show` prints commit times in local time (DVC) and UTC (kiln).
        .env("TZ", "UTC")
        .env("GIT_AUTHOR_NAME", "kiln")
        .env("GIT_AUTHOR_EMAIL", "kiln@example.invalid")
        .env("GIT_COMMITTER_NAME", "kiln")
        .env("GIT_COMMITTER_EMAIL", "kiln@example.invalid")
}

fn k(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(with_env(&mut kiln()).args(args).current_dir(dir));
    assert_eq!(code, 0, "kiln {args:?}:\n{out}{err}");
    out
}

fn d(bin: &Path, dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(with_env(&mut Command::new(bin)).args(args).current_dir(dir));
    assert_eq!(code, 0, "dvc {args:?}:\n{out}{err}");
    out
}

fn git(dir: &Path, args: &[&str]) {
    let (code, out, err) = run(with_env(&mut Command::new("git")).args(args).current_dir(dir));
    assert_eq!(code, 0, "git {args:?}: {out}{err}");
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", msg]);
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    v.sort_unstable();
    v
}

fn set_param(p: &Path, from: &str, to: &str) {
    let f = p.join("params.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&f, text.replace(from, to)).unwrap();
}

/// The example copied into a fresh git repo, with the SMS data tracked by `kiln add`.
fn project() -> (tempfile::TempDir, PathBuf) {
    let repo = git_repo();
    let p = repo.path().to_owned();
    let src = example("spam-pipeline");
    for f in ["dvc.yaml", "params.yaml", "kiln.yaml", "README.md"] {
        std::fs::copy(src.join(f), p.join(f)).unwrap();
    }
    std::fs::create_dir_all(p.join("data")).unwrap();
    std::fs::copy(example("spam").join("sms_spam.csv"), p.join("data/sms_spam.csv")).unwrap();
    k(&p, &["init"]);
    k(&p, &["add", "data/sms_spam.csv"]);
    (repo, p)
}

fn exp_names(table: &str) -> Vec<String> {
    let mut names: Vec<String> =
        table.lines().filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_owned())).collect();
    names.sort();
    names
}

#[test]
fn spam_pipeline_repro_metrics_params_and_experiments() {
    let (_repo, p) = project();
    let dvc = dvc_bin();

    // First run: every stage, in dependency order; the metrics are the evaluate stage's.
    let out = k(&p, &["repro"]);
    let pos = |s: &str| out.find(&format!("Running stage '{s}'")).unwrap_or_else(|| panic!("{s} did not run:\n{out}"));
    assert!(pos("clean_data") < pos("train_test_split"), "{out}");
    assert!(pos("train_test_split") < pos("train"), "{out}");
    assert!(pos("train") < pos("evaluate@train") && pos("train") < pos("evaluate@test"), "{out}");
    let m = read_json(&p.join("eval/test/metrics.json"));
    assert!(m["accuracy"].as_f64().unwrap() > 0.95, "{m}");
    assert!(m["spam"]["f1-score"].as_f64().unwrap() > 0.85, "{m}");
    assert!(p.join("eval/test/plots/confusion_matrix.png").is_file());
    assert!(p.join("out/model/MLmodel").is_file());
    assert!(std::fs::read_to_string(p.join("dvc.lock")).unwrap().contains("train_test_split.test_prop: 0.4"));
    assert_eq!(k(&p, &["status"]).trim(), "Data and pipelines are up to date.");
    if let Some(dvc) = &dvc {
        assert!(d(dvc, &p, &["status"]).contains("Data and pipelines are up to date."));
    }
    commit_all(&p, "spam pipeline");

    // A param of the split: the clean stage is skipped, everything after it reruns.
    set_param(&p, "test_prop: 0.4", "test_prop: 0.2");
    let out = k(&p, &["repro"]);
    assert!(out.contains("Stage 'clean_data' didn't change, skipping"), "{out}");
    for s in ["train_test_split", "train", "evaluate@train", "evaluate@test"] {
        assert!(out.contains(&format!("Running stage '{s}'")), "{s}:\n{out}");
    }
    let mdiff = k(&p, &["metrics", "diff", "HEAD", "--md"]);
    assert!(mdiff.contains("| eval/test/metrics.json  | spam.support "), "{mdiff}");
    let pdiff = k(&p, &["params", "diff"]);
    assert!(pdiff.contains("params.yaml  train_test_split.test_prop  0.4     0.2"), "{pdiff}");
    if let Some(dvc) = &dvc {
        assert!(d(dvc, &p, &["status"]).contains("Data and pipelines are up to date."));
        assert_eq!(sorted_lines(&mdiff), sorted_lines(&d(dvc, &p, &["metrics", "diff", "HEAD", "--md"])));
        assert_eq!(sorted_lines(&pdiff), sorted_lines(&d(dvc, &p, &["params", "diff"])));
        assert_eq!(sorted_lines(&k(&p, &["metrics", "show"])), sorted_lines(&d(dvc, &p, &["metrics", "show"])));

        // The other way round: dvc reruns the stages (with kiln's commands), kiln agrees.
        set_param(&p, "seed: 42", "seed: 7");
        let out = d(dvc, &p, &["repro"]);
        assert!(out.contains("Running stage 'train_test_split'"), "{out}");
        assert_eq!(k(&p, &["status"]).trim(), "Data and pipelines are up to date.");
        let out = k(&p, &["repro"]);
        assert!(!out.contains("Running stage"), "{out}");
    }
    commit_all(&p, "test_prop 0.2");

    // Experiments: queued, run two at a time, shown with their params and metrics.
    for v in ["0.1", "0.25", "0.3"] {
        k(&p, &["exp", "run", "-S", &format!("train_test_split.test_prop={v}"), "--queue"]);
    }
    k(&p, &["exp", "run", "--run-all", "--jobs", "2"]);
    let table = k(&p, &["exp", "show", "--md"]);
    let names = exp_names(&table);
    assert_eq!(names.len(), 3, "{table}");
    for v in ["0.1", "0.25", "0.3"] {
        assert!(table.lines().any(|l| l.contains('[') && l.contains(&format!("| {v} "))), "{v}:\n{table}");
    }
    assert!(table.contains("train_test_split.test_prop") && table.contains("accuracy"), "{table}");
    if let Some(dvc) = &dvc {
        // The whole table, as DVC draws it (same-second experiments have no defined order, so
        // rows are compared as a set, without the tree's branch characters).
        let theirs = d(dvc, &p, &["exp", "show", "--md", "--no-pager"]);
        assert_eq!(exp_names(&theirs), names);
        let rows = |t: &str| -> Vec<String> {
            let mut v: Vec<String> = t.lines().map(|l| l.replace("├── ", "").replace("└── ", "")).collect();
            v.sort();
            v
        };
        assert_eq!(rows(&table), rows(&theirs), "kiln:\n{table}\ndvc:\n{theirs}");
    }
}
