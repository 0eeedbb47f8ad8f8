use std::path::{Path, PathBuf};

use crate::common::*;

fn train_iris(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("out");
    let (code, _, stderr) = run(kiln()
        .arg("-q")
        .arg("train")
        .arg(example("iris").join("kiln.yaml"))
        .args(["-S", "cv.folds=0", "-S", "model.C=1.0"])
        .args(extra)
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    out.join("model")
}

fn predict(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> (i32, String, String) {
    run(kiln().arg("predict").arg("-m").arg(model).arg("-i").arg(input).arg("-o").arg(output).args(extra))
}

const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width\n";

#[test]
fn keeps_row_order_and_streams_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_iris(dir.path(), &[]);
    let input = example("iris").join("iris.csv");
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    assert_eq!(predict(&model, &input, &a, &["--proba"]).0, 0);
    assert_eq!(predict(&model, &input, &b, &["--proba", "--chunk-rows", "7"]).0, 0);
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 151);
    let src: Vec<String> = std::fs::read_to_string(&input).unwrap().lines().map(str::to_owned).collect();
    let mut right = 0;
    for (out, inp) in rows[1..].iter().zip(&src[1..]) {
        assert!(out.starts_with(inp.as_str()), "{out} vs {inp}");
        let f: Vec<&str> = out.split(',').collect();
        right += usize::from(f[4] == f[5]);
    }
    assert!(right >= 140, "{right}/150 right");
}

#[test]
fn bad_rows_fail_with_line_and_column_or_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_iris(dir.path(), &["-S", "preprocessing.numeric.impute=none"]);
    let input = dir.path().join("in.csv");
    std::fs::write(&input, format!("{HEADER}5.1,3.5,1.4,0.2\n4.9,abc,1.4,0.2\n6.3,3.3,6.0,2.5\n5.0,,1.4,0.2\n"))
        .unwrap();
    let output = dir.path().join("out.csv");

    let (code, _, stderr) = predict(&model, &input, &output, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("column `sepal_width`, line 3: expected a number, got `abc`"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!output.exists());

    let (code, _, stderr) = predict(&model, &input, &output, &["--on-error", "skip"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("skipped 2 rows"), "{stderr}");
    let text = std::fs::read_to_string(&output).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("5.1,3.5,1.4,0.2,setosa") && text.contains("6.3,3.3,6,2.5,virginica")
            || text.contains("6.3,3.3,6.0,2.5,virginica"),
        "{text}"
    );

    // With the default imputer a missing value is filled, not an error.
    let model = train_iris(&dir.path().join("imputed"), &[]);
    std::fs::write(&input, format!("{HEADER}5.0,,1.4,0.2\n")).unwrap();
    let (code, _, stderr) = predict(&model, &input, &output, &[]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn missing_column_and_bad_bundles_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_iris(dir.path(), &[]);
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    std::fs::write(&input, "sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n").unwrap();
    for mode in ["fail", "skip"] {
        let (code, _, stderr) = predict(&model, &input, &output, &["--on-error", mode]);
        assert_eq!(code, 1);
        assert!(stderr.contains("missing input column: `petal_width`"), "{stderr}");
        assert!(!output.exists());
    }

    std::fs::write(&input, format!("{HEADER}5.1,3.5,1.4,0.2\n")).unwrap();
    let data = model.join("model.json");
    let original = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, original.replacen("\"offset\":", "\"offset\":1", 1)).unwrap();
    let (code, _, stderr) = predict(&model, &input, &output, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("corrupted or was modified"), "{stderr}");
    std::fs::write(&data, &original[..original.len() / 3]).unwrap();
    let (code, _, stderr) = predict(&model, &input, &output, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("corrupted"), "{stderr}");
    let (code, _, stderr) = predict(dir.path(), &input, &output, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("has no MLmodel file"), "{stderr}");
    assert!(!output.exists());
}

#[test]
fn proba_needs_a_probabilistic_model() {
    let dir = tempfile::tempdir().unwrap();
    let model =
        train_iris(dir.path(), &["-S", "model.type=linear_svc", "-S", "model.C=1.0", "-S", "model.max_iter=1000"]);
    let output = dir.path().join("out.csv");
    let (code, _, stderr) = predict(&model, &example("iris").join("iris.csv"), &output, &["--proba"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("LinearSVC gives no class probabilities"), "{stderr}");
    let (code, _, stderr) = predict(&model, &example("iris").join("iris.csv"), &output, &[]);
    assert_eq!(code, 0, "{stderr}");
}
