//! `dvc.yaml` features against the real `dvc`: stage-level `vars`, dictionary unpacking in
//! `cmd`, TOML params (the lock kiln writes is the lock DVC writes, and each says the other's
//! work is up to date), and `repro --dry/--downstream/-p`.

use std::path::Path;

use crate::data::{dvc, dvc_bin, git_repo, kiln_in};

const PARAMS_TOML: &str = "title = \"x\"\n[train]\nlr = 1.0\nepochs = 10\nbig = 1e20\nflag = true\nnames = [\"a\", \"b c\"]\n[train.sub]\nz = 0.5\nb = 2\n";

const FEATURES: &str = "\
vars:
  - params.toml:train
stages:
  unpack:
    vars:
      - opts: {stopwords: [the, a b], min_count: 2, flag: true, off: false, rate: 1.0, name: x y, nested: {a: 1}}
      - local.yaml
    cmd: echo ${opts} --lr ${train.lr} --who ${who} > unpack.txt
    params:
    - params.toml:
      - train
      - title
    outs: [unpack.txt]
  whole:
    cmd: echo ${train.sub.z} > whole.txt
    params:
    - params.toml:
    outs: [whole.txt]
";

fn setup(p: &Path) {
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    std::fs::write(p.join("params.toml"), PARAMS_TOML).unwrap();
    std::fs::write(p.join("local.yaml"), "who: me\n").unwrap();
    std::fs::write(p.join("dvc.yaml"), FEATURES).unwrap();
}

#[test]
fn stage_vars_unpacking_and_toml_params_lock_like_dvc() {
    let repo = git_repo();
    let p = repo.path();
    setup(p);
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(p.join("unpack.txt")).unwrap(),
        "--stopwords the a b --min_count 2 --flag --rate 1.0 --name x y --nested.a 1 --lr 1.0 --who me\n"
    );
    let ours = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    assert!(
        ours.contains("    cmd: echo --stopwords the 'a b' --min_count 2 --flag --rate 1.0 --name 'x y'"),
        "{ours}"
    );
    assert!(ours.contains("        train:\n          lr: 1.0\n          epochs: 10\n          big: 1e+20\n"), "{ours}");
    let Some(dvc_bin) = dvc_bin() else { return };
    let (code, out, err) = dvc(&dvc_bin, p, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Data and pipelines are up to date."), "dvc disagrees:\n{out}{err}\nlock:\n{ours}");
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-f", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("dvc.lock")).unwrap(), ours);
    // A TOML change: both see it; dvc reruns, kiln agrees afterwards.
    std::fs::write(p.join("params.toml"), PARAMS_TOML.replace("epochs = 10", "epochs = 11")).unwrap();
    let (_, ours_json, _) = kiln_in(p, &["status", "--json"]);
    let (_, dvc_json, _) = dvc(&dvc_bin, p, &["status", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ours_json).unwrap(),
        serde_json::from_str::<serde_json::Value>(&dvc_json).unwrap(),
        "kiln: {ours_json}\ndvc: {dvc_json}"
    );
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = kiln_in(p, &["status"]);
    assert_eq!(out.trim(), "Data and pipelines are up to date.");
    // `[parsing]` config: `--no-flag` and repeated list flags, as dvc writes them.
    std::fs::write(p.join(".dvc/config"), "[parsing]\n    bool = boolean_optional\n    list = append\n").unwrap();
    let (code, out, err) = kiln_in(p, &["repro", "unpack"]);
    assert_eq!(code, 0, "{out}{err}");
    let ours = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    assert!(ours.contains("--stopwords the --stopwords 'a b'") && ours.contains("--no-off"), "{ours}");
    let (_, out, _) = dvc(&dvc_bin, p, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");
}

#[test]
fn stage_vars_conflicts_are_refused_like_dvc() {
    let repo = git_repo();
    let p = repo.path();
    setup(p);
    std::fs::write(p.join("dvc.yaml"), FEATURES.replace("- local.yaml", "- local.yaml\n      - train: {lr: 2}"))
        .unwrap();
    let (code, _, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("dvc.yaml:5, key `stages.unpack.vars`: cannot redefine 'train.lr' from 'unpack.vars[2]' as it already exists in 'params.toml'"),
        "{err}"
    );
    let Some(dvc_bin) = dvc_bin() else { return };
    let (code, _, err) = dvc(&dvc_bin, p, &["repro", "--dry"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot redefine 'train.lr' from 'unpack.vars[2]' as it already exists in 'params.toml'"),
        "{err}"
    );
}

const CHAIN: &str = "\
stages:
  a:
    cmd: echo ${n} > a.txt
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: cat b.txt > c.txt
    deps: [b.txt]
    outs: [c.txt]
  d:
    cmd: echo d > d.txt
    outs: [d.txt]
";

/// DVC's output less its closing hint.
fn dry_lines(out: &str) -> String {
    out.lines().filter(|l| !l.starts_with("Use `dvc push`")).collect::<Vec<_>>().join("\n")
}

#[test]
fn repro_dry_downstream_and_pipeline_like_dvc() {
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    std::fs::write(p.join("params.yaml"), "n: 1\n").unwrap();
    std::fs::write(p.join("dvc.yaml"), CHAIN).unwrap();
    assert_eq!(kiln_in(p, &["repro"]).0, 0);
    std::fs::write(p.join("params.yaml"), "n: 2\n").unwrap();
    let lock = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    let run = |stages: &[(&str, &str)]| -> String {
        stages.iter().map(|(s, cmd)| format!("Running stage '{s}':\n> {cmd}\n")).collect::<Vec<_>>().join("\n")
    };
    let (a, b, c, d) =
        (("a", "echo 2 > a.txt"), ("b", "cat a.txt > b.txt"), ("c", "cat b.txt > c.txt"), ("d", "echo d > d.txt"));
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--dry"],
            format!(
                "{}\nStage 'b' didn't change, skipping\nStage 'c' didn't change, skipping\nStage 'd' didn't change, skipping",
                run(&[a])
            ),
        ),
        (vec!["--dry", "-f", "c"], run(&[a, b, c])),
        (vec!["--dry", "-f", "--downstream", "b"], run(&[b, c])),
        (
            vec!["--dry", "--downstream", "b"],
            "Stage 'b' didn't change, skipping\nStage 'c' didn't change, skipping\nData and pipelines are up to date."
                .into(),
        ),
        (vec!["--dry", "-f", "-p", "d"], run(&[d])),
        (vec!["--dry", "-f", "-p", "b"], run(&[a, b, c])),
    ];
    let dvc_bin = dvc_bin();
    for (args, want) in &cases {
        let mut full = vec!["repro"];
        full.extend(args);
        let (code, out, err) = kiln_in(p, &full);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out.trim_end(), want.trim_end(), "{args:?}");
        if let Some(bin) = &dvc_bin {
            let (code, theirs, err) = dvc(bin, p, &full);
            assert_eq!(code, 0, "{args:?}: {err}");
            assert_eq!(out.trim_end(), dry_lines(&theirs).trim_end(), "{args:?} differs from dvc");
        }
    }
    // Nothing was run or written.
    assert_eq!(std::fs::read_to_string(p.join("dvc.lock")).unwrap(), lock);
    assert_eq!(std::fs::read_to_string(p.join("a.txt")).unwrap(), "1\n");
    // --downstream runs the target and its dependents only.
    let (code, out, err) = kiln_in(p, &["repro", "-f", "--downstream", "b"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Running stage 'b'") && out.contains("Running stage 'c'"), "{out}");
    assert!(!out.contains("stage 'a'") && !out.contains("stage 'd'"), "{out}");
    // --allow-missing: a stage whose only change is a missing output does not run.
    std::fs::write(p.join("params.yaml"), "n: 1\n").unwrap();
    std::fs::remove_file(p.join("d.txt")).unwrap();
    let (code, out, err) = kiln_in(p, &["repro", "--allow-missing", "d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stage 'd' didn't change, skipping"), "{out}");
    assert!(!p.join("d.txt").exists());
}

const PARAMS_PY: &str = "import os\nSEED = 42\nLR: float = 1e-3\nWORDS = ['the', 'a']\nPATH = os.path.join('a', 'b')\n\n\nclass Train:\n    epochs = 10\n    opt = {'name': 'adam', 'beta': 0.9}\n\n    def __init__(self):\n        self.dropout = 0.1\n";

/// Python params files as DVC reads them (literals only, classes as sections, `__init__`'s
/// `self.x`): the same lock bytes, and each tool sees the other's work as up to date.
#[test]
fn python_params_lock_like_dvc() {
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    std::fs::write(p.join("params.py"), PARAMS_PY).unwrap();
    std::fs::write(
        p.join("dvc.yaml"),
        "vars:\n  - params.py\nstages:\n  some:\n    cmd: echo ${Train.epochs} > some.txt\n    params:\n    - params.py:\n      - SEED\n      - Train.epochs\n      - Train.dropout\n    outs: [some.txt]\n  whole:\n    cmd: echo whole > whole.txt\n    params:\n    - params.py:\n    outs: [whole.txt]\n",
    )
    .unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("some.txt")).unwrap(), "10\n");
    let ours = std::fs::read_to_string(p.join("dvc.lock")).unwrap();
    assert!(ours.contains("        SEED: 42\n        Train.dropout: 0.1\n        Train.epochs: 10\n"), "{ours}");
    assert!(ours.contains("        LR: 0.001\n") && !ours.contains("PATH"), "{ours}");
    let Some(dvc_bin) = dvc_bin() else { return };
    let (code, out, err) = dvc(&dvc_bin, p, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Data and pipelines are up to date."), "dvc disagrees:\n{out}{err}\nlock:\n{ours}");
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-f", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read_to_string(p.join("dvc.lock")).unwrap(), ours);
    std::fs::write(p.join("params.py"), PARAMS_PY.replace("epochs = 10", "epochs = 12")).unwrap();
    let (_, ours_json, _) = kiln_in(p, &["status", "--json"]);
    let (_, dvc_json, _) = dvc(&dvc_bin, p, &["status", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ours_json).unwrap(),
        serde_json::from_str::<serde_json::Value>(&dvc_json).unwrap(),
        "kiln: {ours_json}\ndvc: {dvc_json}"
    );
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(kiln_in(p, &["status"]).1.trim(), "Data and pipelines are up to date.");
}
