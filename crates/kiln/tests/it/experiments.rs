//! `metrics diff`, `params diff` and experiments against the real `dvc` in a real git
//! repository: the same tables and JSON as DVC, and experiments that DVC lists as its own.

use std::path::Path;
use std::process::Command;

use crate::common::run;
use crate::data::{dvc, dvc_bin, git_repo, kiln_in};

const PARAMS: &str = "train_test_split:\n  test_prop: 0.25  # share of rows held out\n  seed: 1\ntrain:\n  alpha: 1.0\n  words: [the, a]\n";

const TRAIN_SH: &str = "printf '{\"alpha\": %s, \"prop\": %s, \"model\": {\"name\": \"nb\"}}\\n' \"$1\" \"$(cat split.txt)\" > metrics.json\n";

const PIPELINE: &str = r#"stages:
  split:
    cmd: echo ${train_test_split.test_prop} > split.txt
    deps: [data.txt]
    params: [train_test_split.test_prop]
    outs: [split.txt]
  train:
    cmd: sh train.sh ${train.alpha}
    deps: [split.txt, train.sh]
    params: [train.alpha]
    metrics:
    - metrics.json:
        cache: false
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(Command::new("git").args(args).current_dir(dir));
    assert_eq!(code, 0, "git {args:?}: {err}");
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = kiln_in(dir, args);
    assert_eq!(code, 0, "kiln {args:?}:\n{out}{err}");
    out
}

/// The lines, sorted, without the tree's branch characters (experiments made in the same
/// second have no defined order, so which is drawn last may differ).
fn sorted_lines(s: &str) -> Vec<String> {
    let mut l: Vec<String> = s.lines().map(|l| l.replace("├── ", "").replace("└── ", "")).collect();
    l.sort_unstable();
    l
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn project() -> tempfile::TempDir {
    let repo = git_repo();
    let p = repo.path();
    git(p, &["config", "user.email", "kiln@example.com"]);
    git(p, &["config", "user.name", "kiln"]);
    ok(p, &["init"]);
    std::fs::write(p.join("data.txt"), "1\n2\n3\n").unwrap();
    std::fs::write(p.join("params.yaml"), PARAMS).unwrap();
    std::fs::write(p.join("dvc.yaml"), PIPELINE).unwrap();
    std::fs::write(p.join("train.sh"), TRAIN_SH).unwrap();
    ok(p, &["repro"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "base"]);
    git(p, &["tag", "base"]);
    repo
}

#[test]
fn metrics_and_params_diff_print_dvcs_tables() {
    let repo = project();
    let p = repo.path();
    assert_eq!(ok(p, &["metrics", "diff"]), "", "nothing changed yet");
    assert_eq!(ok(p, &["params", "diff"]), "");

    std::fs::write(p.join("params.yaml"), PARAMS.replace("alpha: 1.0", "alpha: 2.5").replace("[the, a]", "[the, b]"))
        .unwrap();
    ok(p, &["repro"]);
    assert_eq!(
        ok(p, &["metrics", "diff", "--md"]),
        "| Path         | Metric   | HEAD   | workspace   | Change   |\n\
         |--------------|----------|--------|-------------|----------|\n\
         | metrics.json | alpha    | 1.0    | 2.5         | 1.5      |\n\n"
    );
    assert_eq!(
        ok(p, &["params", "diff"]),
        "Path         Param        HEAD          workspace\n\
         params.yaml  train.alpha  1.0           2.5\n\
         params.yaml  train.words  ['the', 'a']  ['the', 'b']\n"
    );
    assert_eq!(
        ok(p, &["metrics", "diff", "base", "--json"]),
        "{\"metrics.json\": {\"alpha\": {\"old\": 1.0, \"new\": 2.5, \"diff\": 1.5}}}\n"
    );
    let all = ok(p, &["metrics", "diff", "base", "--all"]);
    let prop: Vec<&str> =
        all.lines().find(|l| l.starts_with("metrics.json  prop ")).unwrap().split_whitespace().collect();
    assert_eq!(prop, ["metrics.json", "prop", "0.25", "0.25", "0.0"], "{all}");
    let (code, _, err) = kiln_in(p, &["metrics", "diff", "no-such-rev"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown revision 'no-such-rev'"), "{err}");

    // The real DVC prints the same (row order within a file is DVC's; JSON key order is a set's).
    let Some(bin) = dvc_bin() else { return };
    for args in [
        &["metrics", "diff"][..],
        &["metrics", "diff", "--md"],
        &["metrics", "diff", "base", "--all"],
        &["params", "diff"],
        &["params", "diff", "--md", "--all"],
        &["metrics", "show", "--md"],
    ] {
        let (code, theirs, err) = dvc(&bin, p, args);
        assert_eq!(code, 0, "dvc {args:?}: {err}");
        assert_eq!(ok(p, args), theirs, "kiln {args:?} differs from dvc");
    }
    for args in [&["metrics", "diff", "--json"][..], &["params", "diff", "--json"], &["metrics", "show", "--json"]] {
        let (_, theirs, _) = dvc(&bin, p, args);
        assert_eq!(json(&ok(p, args)), json(&theirs), "kiln {args:?} differs from dvc");
    }
}

#[test]
fn experiments_run_queue_show_apply_remove_and_dvc_lists_them() {
    let repo = project();
    let p = repo.path();
    let head = git(p, &["rev-parse", "HEAD"]);

    // A run in the workspace: params edited in place (the comment stays), results kept there,
    // recorded as a ref on the baseline; the branch and the index do not move.
    let out = ok(p, &["exp", "run", "-S", "train_test_split.test_prop=0.2", "-n", "first"]);
    assert!(out.contains("Reproducing experiment 'first'") && out.contains("Ran experiment(s): first"), "{out}");
    assert!(std::fs::read_to_string(p.join("params.yaml")).unwrap().contains("test_prop: 0.2  # share of rows"));
    assert!(std::fs::read_to_string(p.join("metrics.json")).unwrap().contains("\"prop\": 0.2"));
    assert_eq!(git(p, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(p, &["diff", "--cached", "--name-only"]), "");
    let refs = git(p, &["for-each-ref", "--format=%(refname)", "refs/exps/"]);
    assert_eq!(refs.trim(), format!("refs/exps/{}/{}/first", &head[..2], head[2..].trim()));

    // Queued runs snapshot the workspace with their params set; --run-all runs them two at a
    // time in their own directories; the workspace stays as it was.
    for (prop, name) in [("0.1", "q1"), ("0.3", "q2"), ("0.4", "q3")] {
        let out = ok(p, &["exp", "run", "-S", &format!("train_test_split.test_prop={prop}"), "--queue", "-n", name]);
        assert!(out.contains(&format!("Queued experiment '{name}' for future execution.")), "{out}");
    }
    let shown = ok(p, &["exp", "show", "--md"]);
    assert_eq!(shown.matches("| Queued ").count(), 3, "{shown}");
    let (code, _, err) = kiln_in(p, &["exp", "run", "--queue", "-S", "train.alpha=3", "-n", "q1"]);
    assert_eq!(code, 1, "a taken name is refused");
    assert!(err.contains("'q1' already exists"), "{err}");
    let out = ok(p, &["exp", "run", "--run-all", "--jobs", "2"]);
    assert!(out.contains("Ran experiment(s): "), "{out}");
    for n in ["q1", "q2", "q3"] {
        assert!(out.contains(&format!("Reproducing experiment '{n}'")), "{out}");
    }
    assert!(std::fs::read_to_string(p.join("metrics.json")).unwrap().contains("\"prop\": 0.2"));
    assert!(!p.join(".dvc/tmp/exps").read_dir().unwrap().any(|e| e.is_ok()), "run directories are removed");

    let shown = ok(p, &["exp", "show", "--md"]);
    assert!(!shown.contains("Queued"), "{shown}");
    let header = shown.lines().next().unwrap();
    for col in ["Experiment", "Created", "alpha", "prop", "model.name", "train_test_split.test_prop", "train.alpha"] {
        assert!(header.contains(&format!(" {col} ")), "{header}");
    }
    let row =
        |name: &str| shown.lines().find(|l| l.contains(&format!("[{name}]"))).unwrap_or_else(|| panic!("{shown}"));
    for (name, prop) in [("first", "0.2"), ("q1", "0.1"), ("q2", "0.3"), ("q3", "0.4")] {
        assert_eq!(row(name).matches(&format!(" {prop} ")).count(), 2, "metric and param: {}", row(name));
    }
    assert!(shown.lines().nth(2).unwrap().starts_with("| workspace "), "{shown}");
    assert!(
        shown.lines().nth(3).unwrap().starts_with("| master ") || shown.lines().nth(3).unwrap().starts_with("| main ")
    );
    let exps = json(&ok(p, &["exp", "show", "--json"]));
    assert_eq!(exps.as_array().unwrap().len(), 6, "{exps}");

    // DVC sees kiln's experiments as its own.
    if let Some(bin) = dvc_bin() {
        let (code, theirs, err) = run(Command::new(&bin)
            .args(["exp", "show", "--md"])
            .current_dir(p)
            .env("DVC_NO_ANALYTICS", "1")
            .env("TZ", "UTC"));
        assert_eq!(code, 0, "{err}");
        assert_eq!(sorted_lines(&theirs), sorted_lines(&shown), "dvc:\n{theirs}\nkiln:\n{shown}");
    }

    // Apply brings an experiment's params, lock and outputs into the workspace.
    let out = ok(p, &["exp", "apply", "q3"]);
    assert!(out.contains("Changes for experiment 'q3' have been applied"), "{out}");
    assert!(std::fs::read_to_string(p.join("params.yaml")).unwrap().contains("test_prop: 0.4"));
    assert_eq!(std::fs::read_to_string(p.join("split.txt")).unwrap().trim(), "0.4");
    assert_eq!(ok(p, &["status"]).trim(), "Data and pipelines are up to date.");
    if let Some(bin) = dvc_bin() {
        let (_, out, err) = dvc(&bin, p, &["status"]);
        assert!(out.contains("Data and pipelines are up to date."), "{out}{err}");
    }

    // A branch of an experiment: its commit, on top of the baseline.
    let out = ok(p, &["exp", "branch", "q2", "try-q2"]);
    assert!(out.contains("Git branch 'try-q2' has been created from experiment 'q2'"), "{out}");
    assert_eq!(git(p, &["rev-parse", "try-q2^"]), head);
    assert!(git(p, &["show", "try-q2:params.yaml"]).contains("test_prop: 0.3"));
    assert_eq!(kiln_in(p, &["exp", "branch", "q2", "try-q2"]).0, 1, "an existing branch is refused");

    // Remove; unknown names and bad overrides are refused and change nothing.
    assert!(ok(p, &["exp", "remove", "q1", "q2"]).contains("q1, q2"));
    let listed = |p: &Path| -> Vec<String> {
        let mut l: Vec<String> = ok(p, &["exp", "list"]).lines().map(str::to_owned).collect();
        l.sort();
        l
    };
    assert_eq!(listed(p), ["first", "q3"]);
    let (code, _, err) = kiln_in(p, &["exp", "remove", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown experiment 'nope'"), "{err}");
    let before = std::fs::read_to_string(p.join("params.yaml")).unwrap();
    let (code, _, err) = kiln_in(p, &["exp", "run", "-S", "train.beta=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("train.beta") && err.contains("no such param"), "{err}");
    let (code, _, err) = kiln_in(p, &["exp", "run", "-S", "no-equals-sign"]);
    assert_eq!(code, 1);
    assert!(err.contains("expected [<file>:]<key>=<value>"), "{err}");
    assert_eq!(std::fs::read_to_string(p.join("params.yaml")).unwrap(), before);
    assert_eq!(listed(p), ["first", "q3"]);

    // A sweep queues one run per combination; without --queue it is refused, as in DVC.
    let (code, _, err) = kiln_in(p, &["exp", "run", "-S", "train.alpha=3,4"]);
    assert_eq!(code, 1);
    assert!(err.contains("need --queue"), "{err}");
    let out = ok(
        p,
        &["exp", "run", "--queue", "-n", "sw", "-S", "train.alpha=3,4", "-S", "train_test_split.test_prop=range(1,3)"],
    );
    assert_eq!(out.matches("Queued experiment").count(), 4, "{out}");
    assert_eq!(listed(p), ["first", "q3", "sw-1 (queued)", "sw-2 (queued)", "sw-3 (queued)", "sw-4 (queued)"]);
    ok(p, &["exp", "remove", "--queue"]);
    assert_eq!(listed(p), ["first", "q3"]);
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while a stage runs: the
/// command stops, kiln exits 130 without recording that stage or starting the next, and leaves
/// no temp file in the cache.
#[test]
fn ctrl_c_stops_the_pipeline_cleanly() {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    let repo = git_repo();
    let p = repo.path();
    ok(p, &["init"]);
    std::fs::write(
        p.join("dvc.yaml"),
        "stages:\n  first:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n  slow:\n    cmd: touch started && sleep 30 && echo b > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  after:\n    cmd: cp b.txt c.txt\n    deps: [b.txt]\n    outs: [c.txt]\n",
    )
    .unwrap();
    let mut child = crate::common::kiln()
        .arg("repro")
        .current_dir(p)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.join("started").exists() {
        assert!(Instant::now() < deadline, "the slow stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pgid = format!("-{}", child.id());
    let (code, _, err) = run(Command::new("kill").args(["-s", "INT", "--", &pgid]));
    assert_eq!(code, 0, "{err}");
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "kiln did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let lock = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    assert!(lock.contains("first:") && !lock.contains("slow:") && !lock.contains("after:"), "{lock}");
    assert!(!p.join("b.txt").exists() && !p.join("c.txt").exists());
    let temps: Vec<_> = walkdir(&p.join(".dvc/cache"))
        .into_iter()
        .filter(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with(".tmp")))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // The next run picks up where it stopped.
    std::fs::remove_file(p.join("started")).unwrap();
    std::fs::write(
        p.join("dvc.yaml"),
        std::fs::read_to_string(p.join("dvc.yaml")).unwrap().replace("sleep 30", "true"),
    )
    .unwrap();
    let out = ok(p, &["repro"]);
    assert!(out.contains("Stage 'first' didn't change") && out.contains("Running stage 'after'"), "{out}");
}

fn walkdir(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// A project in a subdirectory of its git repository (`dvc init --subdir`): outputs are
/// git-ignored, and an experiment's commit holds the whole repository with the project's
/// changes under its directory.
#[test]
fn experiments_of_a_project_in_a_subdirectory() {
    let repo = git_repo();
    let top = repo.path();
    git(top, &["config", "user.email", "kiln@example.com"]);
    git(top, &["config", "user.name", "kiln"]);
    std::fs::write(top.join("README"), "top\n").unwrap();
    let p = top.join("proj");
    std::fs::create_dir(&p).unwrap();
    ok(&p, &["init"]);
    assert!(!std::fs::read_to_string(p.join(".dvc/config")).unwrap().contains("no_scm"));
    std::fs::write(p.join("params.yaml"), "a:\n  b: 1\n").unwrap();
    std::fs::write(
        p.join("dvc.yaml"),
        "stages:\n  s:\n    cmd: echo ${a.b} > out.txt\n    params: [a.b]\n    outs: [out.txt]\n",
    )
    .unwrap();
    ok(&p, &["repro"]);
    assert_eq!(std::fs::read_to_string(p.join(".gitignore")).unwrap(), "/out.txt\n");
    git(top, &["add", "-A"]);
    git(top, &["commit", "-qm", "base"]);
    ok(&p, &["exp", "run", "-S", "a.b=2", "-n", "two"]);
    ok(&p, &["exp", "run", "-S", "a.b=3", "--queue", "-n", "three"]);
    ok(&p, &["exp", "run", "--run-all"]);
    for (name, value) in [("two", "2"), ("three", "3")] {
        let r = git(top, &["for-each-ref", "--format=%(refname)", &format!("refs/exps/*/*/{name}")]);
        let files = git(top, &["ls-tree", "-r", "--full-tree", "--name-only", r.trim()]);
        assert!(files.lines().any(|f| f == "README") && files.lines().any(|f| f == "proj/dvc.lock"), "{files}");
        assert!(!files.contains("out.txt\n") || files.contains("proj/.gitignore"), "{files}");
        assert!(!files.lines().any(|f| f == "proj/out.txt"), "a cached output is not committed: {files}");
        let params = git(top, &["show", &format!("{}:proj/params.yaml", r.trim())]);
        assert_eq!(params, format!("a:\n  b: {value}\n"));
    }
    let shown = ok(&p, &["exp", "show", "--md"]);
    assert!(shown.contains("[two]") && shown.contains("[three]"), "{shown}");
}

/// A project with one stage on `file`'s params, set up twice (for kiln and for DVC).
fn twin_params_projects(file: &str, content: &str) -> Vec<tempfile::TempDir> {
    let twins: Vec<tempfile::TempDir> = (0..2).map(|_| git_repo()).collect();
    for t in &twins {
        let p = t.path();
        git(p, &["config", "user.email", "kiln@example.com"]);
        git(p, &["config", "user.name", "kiln"]);
        ok(p, &["init"]);
        std::fs::write(p.join(file), content).unwrap();
        std::fs::write(
            p.join("dvc.yaml"),
            format!(
                "stages:\n  train:\n    cmd: cat {file} > out.txt\n    params:\n    - {file}:\n      - train.alpha\n      - split\n    outs: [out.txt]\n"
            ),
        )
        .unwrap();
        ok(p, &["repro"]);
        git(p, &["add", "-A"]);
        git(p, &["commit", "-qm", "base"]);
    }
    twins
}

/// `kiln exp run` and `dvc exp run` with the same `-S file:key=value` overrides (`sets`:
/// `key=value`): the same params file and lock; a key that is not there is refused and nothing
/// is written.
fn set_params_like_dvc(dvc_bin: &Path, file: &str, content: &str, sets: &[&str]) -> String {
    let twins = twin_params_projects(file, content);
    let (kiln_dir, dvc_dir) = (twins[0].path(), twins[1].path());
    let sets: Vec<String> = sets.iter().map(|kv| format!("{file}:{kv}")).collect();
    let mut args = vec!["exp", "run", "-n", "set-params"];
    for kv in &sets {
        args.extend(["-S", kv.as_str()]);
    }
    ok(kiln_dir, &args);
    let (code, out, err) = dvc(dvc_bin, dvc_dir, &args);
    assert_eq!(code, 0, "dvc {args:?}:\n{out}{err}");
    let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read(kiln_dir, file), read(dvc_dir, file));
    assert_eq!(read(kiln_dir, "dvc.lock"), read(dvc_dir, "dvc.lock"));
    let written = read(kiln_dir, file);
    let missing = format!("{file}:train.beta=1");
    let (code, _, err) = kiln_in(kiln_dir, &["exp", "run", "-S", &missing]);
    assert_ne!(code, 0);
    assert!(err.contains("train.beta"), "{err}");
    assert_eq!(read(kiln_dir, file), written);
    written
}

/// In a JSON file DVC loads the document and dumps it again with Python's defaults.
#[test]
fn set_params_in_a_json_file_like_dvc() {
    let Some(dvc_bin) = dvc_bin() else { return };
    // Indented, with a non-ASCII string: DVC writes it back on one line, ASCII only.
    let content = "{\n  \"train\": {\"alpha\": 1.0, \"name\": \"na\u{ef}ve\", \"words\": [\"the\", \"a\"]},\n  \"split\": {\"test_prop\": 0.25, \"seed\": 1}\n}\n";
    let sets = ["train.alpha=2.5", "split.test_prop=1e-05", "split.seed=7"];
    let written = set_params_like_dvc(&dvc_bin, "params.json", content, &sets);
    assert!(written.contains("\"alpha\": 2.5"), "{written}");
}

/// In a TOML file tomlkit changes the value's text only, keeping comments and quoting.
#[test]
fn set_params_in_a_toml_file_like_dvc() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let content = "# training\n[train]\nalpha = 1.0   # smoothing\nname = 'nb'\nwords = [\"the\", \"a\"]\n\n[split]\ntest_prop = 0.25\nseed = 1\n";
    let sets = ["train.alpha=2.5", "split.test_prop=1e-05", "train.name=svm", "train.words=[x,y]"];
    let written = set_params_like_dvc(&dvc_bin, "params.toml", content, &sets);
    assert!(written.contains("alpha = 2.5   # smoothing\nname = 'svm'"), "{written}");
}
