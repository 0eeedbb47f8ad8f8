//! DVC-compatible data versioning against the real `dvc` (from the test venv), both ways, in
//! real git repositories: what kiln adds, dvc sees as up to date and checks out from kiln's
//! cache; what dvc adds, kiln sees as up to date and checks out from dvc's cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::serve::test_python;

/// The `dvc` of the test venv (beside its python).
pub(crate) fn dvc_bin() -> Option<PathBuf> {
    let python = test_python()?;
    Some(Path::new(&python).with_file_name("dvc"))
}

pub(crate) fn dvc(bin: &Path, dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(Command::new(bin).args(args).current_dir(dir).env("DVC_NO_ANALYTICS", "1").env("NO_COLOR", "1"))
}

pub(crate) fn kiln_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(kiln().args(args).current_dir(dir))
}

pub(crate) fn git_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(Command::new("git").args(["init", "-q"]).current_dir(dir.path()));
    assert_eq!(code, 0, "{err}");
    dir
}

/// `shared/spec/pipelines.md` §4.4's files.
pub(crate) fn worked_example(p: &Path) {
    std::fs::write(p.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(p.join("crlf.csv"), "x,y\r\n1,2\r\n").unwrap();
    std::fs::create_dir_all(p.join("data/sub")).unwrap();
    std::fs::write(p.join("data/a.txt"), "a\n").unwrap();
    std::fs::write(p.join("data/sub/b.txt"), "b\r\n").unwrap();
}

const DATA_DVC: &str =
    "outs:\n- md5: 2a0f3f5e358b7f8ff3d4fa660d0617ef.dir\n  size: 5\n  nfiles: 2\n  hash: md5\n  path: data\n";

#[test]
fn kiln_add_then_dvc_reads_it() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let repo = git_repo();
    let p = repo.path();
    let (code, out, err) = kiln_in(p, &["init"]);
    assert_eq!(code, 0, "{out}{err}");
    worked_example(p);
    let (code, out, err) = kiln_in(p, &["add", "hello.txt", "data", "crlf.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("data.dvc")).unwrap(), DATA_DVC);
    assert_eq!(
        std::fs::read_to_string(p.join("hello.txt.dvc")).unwrap(),
        "outs:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n  hash: md5\n  path: hello.txt\n"
    );
    assert!(std::fs::read_to_string(p.join(".gitignore")).unwrap().lines().any(|l| l == "/data"));
    let listing = p.join(".dvc/cache/files/md5/2a/0f3f5e358b7f8ff3d4fa660d0617ef.dir");
    assert_eq!(std::fs::read(&listing).unwrap().len(), 134);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&listing).unwrap().permissions().mode() & 0o777, 0o444);
    for obj in
        ["60/b725f10c9c85c70d97880dfe8191b3", "b1/946ac92492d2347c6235b4d2611184", "ef/4330228809c42919ada65a11393fd1"]
    {
        assert!(p.join(".dvc/cache/files/md5").join(obj).is_file(), "{obj}");
    }
    let (code, out, err) = kiln_in(p, &["status"]);
    assert_eq!((code, out.trim()), (0, "Data and pipelines are up to date."), "{err}");
    // The real dvc agrees, and restores deleted data from kiln's cache.
    let (code, out, err) = dvc(&dvc_bin, p, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Data and pipelines are up to date."), "{out}{err}");
    std::fs::remove_dir_all(p.join("data")).unwrap();
    std::fs::write(p.join("hello.txt"), "changed\n").unwrap();
    let (_, out, _) = kiln_in(p, &["status", "--json"]);
    let (_, dvc_out, _) = dvc(&dvc_bin, p, &["status", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::from_str::<serde_json::Value>(&dvc_out).unwrap(),
        "kiln: {out}\ndvc: {dvc_out}"
    );
    let (code, out, err) = dvc(&dvc_bin, p, &["checkout", "data.dvc"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(p.join("data/sub/b.txt")).unwrap(), b"b\r\n");
    // hello.txt was modified and its new content is in no cache: kiln refuses to lose it.
    let (code, _, err) = kiln_in(p, &["checkout"]);
    assert_eq!(code, 1);
    assert!(err.contains("would lose it"), "{err}");
    assert_eq!(std::fs::read_to_string(p.join("hello.txt")).unwrap(), "changed\n");
    let (code, out, err) = kiln_in(p, &["checkout", "--force", "hello.txt"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("hello.txt")).unwrap(), "hello\n");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");
}

#[test]
fn dvc_add_then_kiln_reads_it() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let repo = git_repo();
    let p = repo.path();
    let (code, out, err) = dvc(&dvc_bin, p, &["init", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    worked_example(p);
    let (code, out, err) = dvc(&dvc_bin, p, &["add", "-q", "hello.txt", "data", "crlf.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    let dvc_written = std::fs::read_to_string(p.join("data.dvc")).unwrap();
    assert_eq!(dvc_written, DATA_DVC);
    let (code, out, err) = kiln_in(p, &["status"]);
    assert_eq!((code, out.trim()), (0, "Data and pipelines are up to date."), "{err}");
    // Re-adding with kiln writes the same file.
    let (code, out, err) = kiln_in(p, &["add", "data"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("data.dvc")).unwrap(), dvc_written);
    // A change is seen the same way by both.
    std::fs::write(p.join("data/a.txt"), "A\n").unwrap();
    let (_, out, _) = kiln_in(p, &["status"]);
    assert!(out.contains("data.dvc:\n\tchanged outs:\n\t\tmodified:           data"), "{out}");
    // The new content is in no cache: kiln refuses to lose it unless forced.
    let (code, _, err) = kiln_in(p, &["checkout"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read_to_string(p.join("data/a.txt")).unwrap(), "A\n");
    let (code, out, err) = kiln_in(p, &["checkout", "--force", "data"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("data/a.txt")).unwrap(), "a\n");
    // Deleted data comes back from dvc's cache without --force; an extra file goes.
    std::fs::remove_file(p.join("data/sub/b.txt")).unwrap();
    std::fs::write(p.join("data/extra.txt"), "x").unwrap();
    std::fs::remove_file(p.join("hello.txt")).unwrap();
    let (code, out, err) = kiln_in(p, &["checkout"]);
    assert_eq!(code, 1, "an untracked file in a tracked directory is data too: {out}{err}");
    std::fs::remove_file(p.join("data/extra.txt")).unwrap();
    let (code, out, err) = kiln_in(p, &["checkout"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(p.join("data/sub/b.txt")).unwrap(), b"b\r\n");
    assert_eq!(std::fs::read_to_string(p.join("hello.txt")).unwrap(), "hello\n");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");

    // gc: a replaced version's object goes; dvc's own gc then finds nothing more to remove.
    std::fs::write(p.join("hello.txt"), "hello again\n").unwrap();
    assert_eq!(kiln_in(p, &["add", "hello.txt"]).0, 0);
    let (code, out, err) = kiln_in(p, &["gc", "-w", "--dry"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("b1/946ac92492d2347c6235b4d2611184"), "{out}");
    let (code, _, err) = run(kiln().args(["gc", "-w"]).current_dir(p).stdin(std::process::Stdio::null()));
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = kiln_in(p, &["gc", "-w", "-f"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Removed 1 objects"), "{out}");
    let before = walk(&p.join(".dvc/cache/files/md5")).len();
    let (code, out, err) = dvc(&dvc_bin, p, &["gc", "-w", "-f"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(walk(&p.join(".dvc/cache/files/md5")).len(), before, "dvc gc found more: {out}");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");
}

#[test]
fn bad_data_commands_are_refused() {
    let repo = git_repo();
    let p = repo.path();
    let (code, _, err) = kiln_in(p, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("kiln init"), "{err}");
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    let (code, _, err) = kiln_in(p, &["init"]);
    assert_eq!(code, 1);
    assert!(err.contains("already has a .dvc directory"), "{err}");
    let (code, _, err) = kiln_in(p, &["add", "missing.csv"]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.csv"), "{err}");
    let (code, _, err) = kiln_in(p, &["add", "../outside.csv"]);
    assert_eq!(code, 1);
    assert!(err.contains("outside the repository"), "{err}");
    // A file git tracks is git's.
    std::fs::write(p.join("tracked.txt"), "x").unwrap();
    run(Command::new("git").args(["add", "tracked.txt"]).current_dir(p));
    let (code, _, err) = kiln_in(p, &["add", "tracked.txt"]);
    assert_eq!(code, 1);
    assert!(err.contains("already tracked by git"), "{err}");
    // A corrupted cache object is detected and never used.
    std::fs::write(p.join("model.bin"), "weights").unwrap();
    assert_eq!(kiln_in(p, &["add", "model.bin"]).0, 0);
    let obj = walk(&p.join(".dvc/cache/files/md5"))
        .into_iter()
        .find(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&obj, "tampered").unwrap();
    std::fs::remove_file(p.join("model.bin")).unwrap();
    let (code, _, err) = kiln_in(p, &["checkout"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not match its hash"), "{err}");
    assert!(!p.join("model.bin").exists());
    // A .dvc file that is not one names the problem.
    std::fs::write(p.join("bad.dvc"), "outs: [1, 2\n").unwrap();
    let (code, _, err) = kiln_in(p, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.dvc"), "{err}");
}

pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

const PARAMS: &str = "prepare:\n  factor: 2\ntrain:\n  alpha: 0.5\n  seed: 42\n";
const PIPELINE: &str = "stages:
  prepare:
    cmd: mkdir -p data/prepared && tr a b < data/raw.txt > data/prepared/out.txt && echo ${prepare.factor} > data/prepared/factor.txt
    deps:
    - data/raw.txt
    params:
    - prepare.factor
    outs:
    - data/prepared
  train:
    cmd: cat data/prepared/out.txt data/prepared/factor.txt > model.txt && echo '{\"acc\":0.9}' > metrics.json
    deps:
    - data/prepared
    params:
    - train
    outs:
    - model.txt
    metrics:
    - metrics.json:
        cache: false
  evaluate:
    foreach:
    - train
    - test
    do:
      cmd: wc -c < data/prepared/out.txt > eval_${item}.txt
      deps:
      - data/prepared
      outs:
      - eval_${item}.txt
";

fn pipeline_repo() -> tempfile::TempDir {
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    std::fs::create_dir_all(p.join("data")).unwrap();
    std::fs::write(p.join("data/raw.txt"), "banana\n").unwrap();
    std::fs::write(p.join("params.yaml"), PARAMS).unwrap();
    std::fs::write(p.join("dvc.yaml"), PIPELINE).unwrap();
    repo
}

#[test]
fn kiln_repro_writes_the_lock_dvc_writes() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let repo = pipeline_repo();
    let p = repo.path();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Running stage 'prepare':") && out.contains("Running stage 'train':"), "{out}");
    assert!(out.contains("Running stage 'evaluate@test':"), "{out}");
    assert_eq!(std::fs::read_to_string(p.join("eval_test.txt")).unwrap().trim(), "7");
    assert_eq!(std::fs::read_to_string(p.join("model.txt")).unwrap(), "bbnbnb\n2\n");
    let ours = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    let (code, out, err) = dvc(&dvc_bin, p, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Data and pipelines are up to date."), "dvc disagrees:\n{out}{err}\nlock:\n{ours}");
    let (_, out, _) = kiln_in(p, &["repro"]);
    assert!(
        out.contains("Stage 'prepare' didn't change, skipping") && out.contains("Data and pipelines are up to date."),
        "{out}"
    );
    // The metrics as DVC shows them.
    let (code, ours_m, err) = kiln_in(p, &["metrics", "show", "--json"]);
    assert_eq!(code, 0, "{err}");
    let (_, theirs_m, _) = dvc(&dvc_bin, p, &["metrics", "show", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ours_m).unwrap(),
        serde_json::from_str::<serde_json::Value>(&theirs_m).unwrap(),
        "kiln: {ours_m}\ndvc: {theirs_m}"
    );
    let (_, ours_m, _) = kiln_in(p, &["metrics", "show", "--md"]);
    assert_eq!(ours_m, "| Path         | acc   |\n|--------------|-------|\n| metrics.json | 0.9   |\n\n");
    // The graph as DVC draws it in mermaid.
    let (_, our_dag, _) = kiln_in(p, &["dag", "--md"]);
    let (_, their_dag, _) = dvc(&dvc_bin, p, &["dag", "--md"]);
    assert_eq!(our_dag.trim(), their_dag.trim());
    // DVC, forced to rerun everything, writes the very same bytes, and its run-cache entries
    // have the names kiln gave them (no new file appears).
    let runs_before = walk(&p.join(".dvc/cache/runs"));
    assert_eq!(runs_before.len(), 4, "{runs_before:?}");
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-f", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("dvc.lock")).unwrap(), ours);
    assert_eq!(walk(&p.join(".dvc/cache/runs")), runs_before);

    // A param change: both see the same; only the stage that lists it reruns.
    std::fs::write(p.join("params.yaml"), PARAMS.replace("alpha: 0.5", "alpha: 0.25")).unwrap();
    let (_, ours_json, _) = kiln_in(p, &["status", "--json"]);
    let (_, dvc_json, _) = dvc(&dvc_bin, p, &["status", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ours_json).unwrap(),
        serde_json::from_str::<serde_json::Value>(&dvc_json).unwrap(),
        "kiln: {ours_json}\ndvc: {dvc_json}"
    );
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stage 'prepare' didn't change") && out.contains("Running stage 'train'"), "{out}");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");

    // The run-cache both ways: back to 0.5, dvc restores kiln's earlier run; to 0.25 again,
    // kiln restores its own; neither runs the command.
    std::fs::write(p.join("params.yaml"), PARAMS).unwrap();
    let (code, out, err) = dvc(&dvc_bin, p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stage 'train' is cached - skipping run"), "{out}");
    std::fs::write(p.join("params.yaml"), PARAMS.replace("alpha: 0.5", "alpha: 0.25")).unwrap();
    std::fs::remove_file(p.join("model.txt")).unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stage 'train' is cached - skipping run, checking out outputs"), "{out}");
    assert_eq!(std::fs::read_to_string(p.join("model.txt")).unwrap(), "bbnbnb\n2\n");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");

    // DVC reruns after a data change; kiln agrees afterwards.
    std::fs::write(p.join("data/raw.txt"), "apple\n").unwrap();
    let (_, out, _) = kiln_in(p, &["status"]);
    assert!(out.contains("prepare:\n\tchanged deps:\n\t\tmodified:           data/raw.txt"), "{out}");
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = kiln_in(p, &["status"]);
    assert_eq!(out.trim(), "Data and pipelines are up to date.");
}

#[test]
fn bad_pipelines_are_refused_and_a_failed_stage_keeps_its_lock() {
    let repo = pipeline_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["repro"]).0, 0);
    let lock = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    std::fs::write(p.join("dvc.yaml"), PIPELINE.replace("&& echo '{\"acc\":0.9}' > metrics.json", "&& exit 3"))
        .unwrap();
    let (code, _, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 1);
    assert!(err.contains("failed to reproduce 'train'") && err.contains("exited with 3"), "{err}");
    assert_eq!(std::fs::read_to_string(p.join("dvc.lock")).unwrap(), lock);
    std::fs::write(p.join("p.py"), "LR = [1,\n").unwrap();
    for (yaml, want) in [
        (
            "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n",
            "cycle",
        ),
        ("stages:\n  a:\n    cmd: x\n    outs: [data]\n  b:\n    cmd: y\n    outs: [data/x]\n", "overlapping outputs"),
        ("stages:\n  a:\n    cmd: x ${missing.key}\n", "dvc.yaml:3, key `stages.a.cmd`: Could not find 'missing.key'"),
        ("stages:\n  a:\n    cmd: [x\n", "line 3 column 10"),
        ("stages:\n  a:\n    command: x\n", "dvc.yaml:3, key `stages.a.command`"),
        (
            "vars:\n  - lr: 1\nstages:\n  a:\n    vars:\n      - lr: 2\n    cmd: x\n",
            "dvc.yaml:5, key `stages.a.vars`: cannot redefine 'lr' from 'a.vars[0]' as it already exists in 'vars[0]'",
        ),
        ("stages:\n  a:\n    cmd: x\n    params:\n    - p.py:\n", "p.py: Python file structure is corrupted"),
    ] {
        std::fs::write(p.join("dvc.yaml"), yaml).unwrap();
        let (code, _, err) = kiln_in(p, &["repro"]);
        assert_eq!(code, 1, "{yaml}");
        assert!(err.contains(want), "{yaml}: want `{want}` in {err}");
    }
}

/// `--jobs 4` runs four independent stages at once: each waits (up to 20 s) until all four
/// have started, which only concurrent runs get past; a downstream stage still waits for all.
#[test]
fn repro_jobs_runs_independent_stages_together() {
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    let mut yaml = String::from("stages:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  s{i}:\n    cmd: touch started_{i} && for n in $(seq 400); do [ $(ls started_* | wc -l) -ge 4 ] && break; sleep 0.05; done && [ $(ls started_* | wc -l) -ge 4 ] && echo {i} > out_{i}\n    outs:\n    - out_{i}\n"
        ));
    }
    yaml.push_str("  all:\n    cmd: cat out_0 out_1 out_2 out_3 > all.txt\n    deps: [out_0, out_1, out_2, out_3]\n    outs: [all.txt]\n");
    std::fs::write(p.join("dvc.yaml"), yaml).unwrap();
    let (code, out, err) = kiln_in(p, &["repro", "--jobs", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("all.txt")).unwrap(), "0\n1\n2\n3\n");
    let (_, out, _) = kiln_in(p, &["status"]);
    assert_eq!(out.trim(), "Data and pipelines are up to date.");
}

/// A `.dvc`-tracked input of the pipeline is a data source: when it changes, `repro` stores
/// the new version, rewrites its `.dvc` file and runs what depends on it; dvc agrees after.
#[test]
fn repro_re_adds_changed_data_sources() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let repo = pipeline_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["add", "data/raw.txt"]).0, 0);
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("'data/raw.txt.dvc' didn't change, skipping"), "{out}");
    std::fs::write(p.join("data/raw.txt"), "cherry\n").unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Verifying data sources in stage: 'data/raw.txt.dvc'"), "{out}");
    assert!(out.contains("Running stage 'prepare'"), "{out}");
    let dvc_file = std::fs::read_to_string(p.join("data/raw.txt.dvc")).unwrap();
    assert!(dvc_file.contains(&kiln_cache_md5("cherry\n")), "{dvc_file}");
    let (_, out, err) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}{err}");
}

/// md5 of text, via the `md5sum` of the machine (the cache's own hashing is what is tested).
fn kiln_cache_md5(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

/// `repro --keep-going`: after a stage fails, the stages that do not depend on it run, those
/// that do are skipped, and the command fails at the end; the same lock and outputs as
/// `dvc repro --keep-going`.
#[test]
fn repro_keep_going_runs_what_does_not_depend_on_a_failure_like_dvc() {
    let Some(dvc_bin) = dvc_bin() else { return };
    const KEEP_GOING: &str = "stages:\n  bad:\n    cmd: echo no > bad.txt && exit 3\n    outs: [bad.txt]\n  after_bad:\n    cmd: cp bad.txt after.txt\n    deps: [bad.txt]\n    outs: [after.txt]\n  good:\n    cmd: echo yes > good.txt\n    outs: [good.txt]\n  after_good:\n    cmd: cp good.txt good2.txt\n    deps: [good.txt]\n    outs: [good2.txt]\n";
    let (kiln_repo, dvc_repo) = (git_repo(), git_repo());
    let (k, d) = (kiln_repo.path(), dvc_repo.path());
    std::fs::write(k.join("dvc.yaml"), KEEP_GOING).unwrap();
    std::fs::write(d.join("dvc.yaml"), KEEP_GOING).unwrap();
    assert_eq!(kiln_in(k, &["init", "-q"]).0, 0);
    assert_eq!(dvc(&dvc_bin, d, &["init", "-q"]).0, 0);
    let (code, out, err) = kiln_in(k, &["repro", "--keep-going"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("failed to reproduce 'bad'"), "{err}");
    assert!(out.contains("Stage 'after_bad' will be skipped"), "{out}");
    let (code, out, err) = dvc(&dvc_bin, d, &["repro", "--keep-going"]);
    assert_ne!(code, 0, "{out}{err}");
    let lock = |p: &Path| std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    assert_eq!(lock(k), lock(d));
    assert!(lock(k).contains("after_good:") && !lock(k).contains("bad:"), "{}", lock(k));
    for p in [k, d] {
        assert!(p.join("good2.txt").is_file() && !p.join("after.txt").exists());
    }
    // Without it, the first failure stops the run: nothing after it starts.
    let fresh = git_repo();
    std::fs::write(fresh.path().join("dvc.yaml"), KEEP_GOING).unwrap();
    assert_eq!(kiln_in(fresh.path(), &["init", "-q"]).0, 0);
    assert_ne!(kiln_in(fresh.path(), &["repro"]).0, 0);
    assert!(!fresh.path().join("good.txt").exists() && !fresh.path().join("dvc.lock").exists());
}
