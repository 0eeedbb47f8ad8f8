//! `kiln plots show` on a real pipeline in a git repository: a stage's `plots:` output (a loss
//! curve), top-level definitions with x/y and a confusion template, the page and its PNGs,
//! `-o`, `--json` (the same plots as the real `dvc plots show --json` lists), and bad input.

use std::collections::BTreeSet;
use std::path::Path;

use crate::data::{dvc, dvc_bin, git_repo, kiln_in};

const PIPELINE: &str = r#"stages:
  train:
    cmd: >-
      mkdir -p out &&
      printf 'epoch,loss,acc\n0,1.0,0.5\n1,0.6,0.7\n2,0.4,0.8\n3,0.3,0.85\n' > out/loss.csv &&
      printf 'actual,predicted\nham,ham\nspam,ham\nspam,spam\nham,ham\nham,spam\n' > out/predictions.csv
    plots:
    - out/loss.csv:
        x: epoch
        y: loss
        title: Training loss
    outs:
    - out/predictions.csv
plots:
- loss_and_accuracy:
    x: epoch
    y:
      out/loss.csv: [loss, acc]
- confusion:
    template: confusion
    x: actual
    y:
      out/predictions.csv: predicted
"#;

/// (width, height) of a PNG from its signature and IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() > 1000, "{} is only {} bytes", path.display(), b.len());
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&b[12..16], b"IHDR");
    (u32::from_be_bytes(b[16..20].try_into().unwrap()), u32::from_be_bytes(b[20..24].try_into().unwrap()))
}

/// The `src` of every `<img>` of a page.
fn img_srcs(html: &str) -> Vec<String> {
    html.split("<img src=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
}

fn pipeline_repo() -> tempfile::TempDir {
    let repo = git_repo();
    let p = repo.path();
    let (code, out, err) = kiln_in(p, &["init"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(p.join("dvc.yaml"), PIPELINE).unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    repo
}

#[test]
fn plots_show_writes_a_page_of_pngs() {
    let repo = pipeline_repo();
    let p = repo.path();
    let (code, out, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 0, "{out}{err}");
    let root = p.canonicalize().unwrap();
    let index = root.join("dvc_plots/index.html");
    assert_eq!(out.trim(), format!("file://{}", index.display()));
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(!html.contains("<script") && !html.contains("http"), "static page: {html}");
    // Top-level definitions first, then the stage's output, as DVC orders them.
    let srcs = img_srcs(&html);
    assert_eq!(
        srcs,
        [
            "static/workspace_loss_and_accuracy.png",
            "static/workspace_confusion.png",
            "static/workspace_out_loss_csv.png"
        ]
    );
    for src in &srcs {
        assert_eq!(png_size(&root.join("dvc_plots").join(src)), (800, 600), "{src}");
    }
    assert!(html.contains("<h2>out/loss.csv</h2>"), "{html}");
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.join("dvc_plots/static"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // -o DIR, and a target to show one plot only.
    let (code, out, err) = kiln_in(p, &["plots", "show", "-o", "reports/plots", "confusion"]);
    assert_eq!(code, 0, "{out}{err}");
    let other = root.join("reports/plots/index.html");
    assert_eq!(out.trim(), format!("file://{}", other.display()));
    let srcs = img_srcs(&std::fs::read_to_string(&other).unwrap());
    assert_eq!(srcs, ["static/workspace_confusion.png"]);
    assert_eq!(png_size(&root.join("reports/plots").join(&srcs[0])), (800, 600));
}

fn plot_ids(json: &str) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["data"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, e)| !e.as_array().unwrap().is_empty())
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn plots_show_json_lists_what_dvc_lists() {
    let repo = pipeline_repo();
    let p = repo.path();
    let (code, out, err) = kiln_in(p, &["plots", "show", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!p.join("dvc_plots").exists(), "--json writes no page");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let loss = &v["data"]["out/loss.csv"][0];
    assert_eq!(loss["type"], "vega");
    assert_eq!(loss["content"]["title"]["text"], "Training loss");
    assert_eq!(
        loss["content"]["data"]["values"][0],
        serde_json::json!({"epoch": "0", "loss": "1.0", "acc": "0.5", "rev": "workspace"})
    );
    let ours = plot_ids(&out);
    assert_eq!(ours, BTreeSet::from(["confusion".into(), "loss_and_accuracy".into(), "out/loss.csv".into()]));
    let Some(dvc_bin) = dvc_bin() else { return };
    let (code, theirs, err) = dvc(&dvc_bin, p, &["plots", "show", "--json"]);
    assert_eq!(code, 0, "{theirs}{err}");
    assert_eq!(ours, plot_ids(&theirs), "dvc: {theirs}");
}

#[test]
fn bad_plots_are_reported() {
    let repo = pipeline_repo();
    let p = repo.path();
    let write = |extra: &str| std::fs::write(p.join("dvc.yaml"), format!("{PIPELINE}{extra}")).unwrap();

    // A missing data file: a warning naming it, the other plots still drawn (as DVC).
    write("- out/missing.csv\n");
    let (code, out, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("`out/missing.csv` does not exist"), "{err}");
    let html = std::fs::read_to_string(p.join("dvc_plots/index.html")).unwrap();
    assert_eq!(img_srcs(&html).len(), 3);
    let (_, out, _) = kiln_in(p, &["plots", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"][0]["source"], "out/missing.csv");
    assert_eq!(v["data"]["out/missing.csv"], serde_json::json!([]));

    // A malformed CSV: the file and the line.
    std::fs::write(p.join("broken.csv"), "a,b\n1,2\n3\n").unwrap();
    write("- broken.csv\n");
    let (code, _, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("broken.csv, line 3: 1 field, but the header has 2"), "{err}");

    // Malformed JSON names the file.
    std::fs::write(p.join("broken.json"), "{\"a\": [1,\n").unwrap();
    write("- broken.json\n");
    let (code, _, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("broken.json"), "{err}");

    // An unknown template names the dvc.yaml key.
    write("- out/loss.csv:\n    template: fancy\n");
    let (code, _, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("dvc.yaml, key `plots[2].out/loss.csv.template`: unknown plot template 'fancy'"), "{err}");

    // A y column the file lacks: the file and the column.
    write("- acc:\n    y:\n      out/loss.csv: accuracy\n");
    let (code, _, err) = kiln_in(p, &["plots", "show"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("plot 'acc': `out/loss.csv` has no field 'accuracy' (its fields: epoch, loss, acc)"), "{err}");
}
