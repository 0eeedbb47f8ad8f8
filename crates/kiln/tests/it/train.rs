use crate::common::*;

/// The spam pipeline end to end against scikit-learn on the same rows:
/// ```python
/// d = pd.read_csv("examples/spam/sms_spam.csv", keep_default_na=False)
/// tr, te = d.iloc[:4000], d.iloc[4000:]
/// m = make_pipeline(CountVectorizer(stop_words="english", ngram_range=(1, 2)),
///                   MultinomialNB(alpha=0.5)).fit(tr.text, tr.label)
/// classification_report(te.label, m.predict(te.text), output_dict=True)
/// roc_auc_score(te.label == "spam", m.predict_proba(te.text)[:, 1])
/// ```
#[test]
fn spam_report_matches_sklearn() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split_rows(&example("spam").join("sms_spam.csv"), dir.path(), |i| i >= 4000);
    let out = dir.path().join("out");
    let (code, stdout, stderr) = train_on("spam", &["model.alpha=0.5", "cv.folds=0"], &tr, &te, &out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("precision    recall  f1-score   support"), "{stdout}");
    let m = read_json(&out.join("metrics.json"));
    assert_close(&m["accuracy"], 0.985_387_547_649_301_1, 1e-12);
    assert_close(&m["ham"]["precision"], 0.989_751_098_096_632_5, 1e-12);
    assert_close(&m["spam"]["recall"], 0.934_272_300_469_483_6, 1e-12);
    assert_close(&m["spam"]["f1-score"], 0.945_368_171_021_377_7, 1e-12);
    assert_close(&m["macro avg"]["f1-score"], 0.968_466_997_135_184_7, 1e-12);
    assert_close(&m["weighted avg"]["f1-score"], 0.985_314_171_454_530_4, 1e-12);
    assert_eq!(m["spam"]["support"], 213);
    assert_close(&m["roc_auc"], 0.989_540_968_564_263_3, 1e-9);
    // Same vocabulary as CountVectorizer: len(m[0].vocabulary_) == 28938.
    let model = read_json(&out.join("model/model.json"));
    assert_eq!(model["pipeline"]["steps"][0]["vocabulary"].as_array().unwrap().len(), 28938);
    for f in
        ["plots/confusion_matrix.png", "plots/roc_curve.png", "plots/class_balance.png", "params.json", "model/MLmodel"]
    {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

/// The spam example as shipped (the DVC seed's 0.4 test split) reaches the accuracy bar.
#[test]
fn spam_example_accuracy_bar() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) =
        run(kiln().arg("-q").arg("train").arg(example("spam").join("kiln.yaml")).arg("--out").arg(&out));
    assert_eq!(code, 0, "{stderr}");
    // -q keeps a dvc.yaml stage silent: the report is in metrics.json, not on stdout.
    assert_eq!(stdout, "");
    let m = read_json(&out.join("metrics.json"));
    let acc = m["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.975, "accuracy {acc}");
    let cv = std::fs::read_to_string(out.join("cv_results.csv")).unwrap();
    assert!(cv.starts_with("param_alpha,mean_test_score,std_test_score,rank_test_score,split0_test_score"), "{cv}");
    assert_eq!(cv.lines().count(), 6);
}

/// ```python
/// i = pd.read_csv("examples/iris/iris.csv"); te = i.iloc[::5]; tr = i.drop(te.index)
/// m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(tr[X], tr.species)
/// classification_report(te.species, m.predict(te[X]), output_dict=True)
/// m.predict_proba(te[X])[0]  # [0.9812423638792159, 0.01875738437991024, 2.517408738385186e-07]
/// ```
#[test]
fn iris_matches_sklearn() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split_rows(&example("iris").join("iris.csv"), dir.path(), |i| i % 5 == 0);
    let out = dir.path().join("out");
    let (code, _, stderr) = train_on("iris", &["model.C=1.0", "cv.folds=0"], &tr, &te, &out);
    assert_eq!(code, 0, "{stderr}");
    let m = read_json(&out.join("metrics.json"));
    assert_close(&m["accuracy"], 0.966_666_666_666_666_7, 1e-12);
    assert_close(&m["macro avg"]["f1-score"], 0.966_583_124_477_861_2, 1e-12);
    assert_close(&m["virginica"]["precision"], 0.909_090_909_090_909_1, 1e-12);

    let scored = dir.path().join("scored.csv");
    let (code, _, stderr) =
        run(kiln().args(["predict", "--proba", "-m"]).arg(out.join("model")).arg("-i").arg(&te).arg("-o").arg(&scored));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&scored).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sepal_length,sepal_width,petal_length,petal_width,species,prediction,proba_setosa,proba_versicolor,proba_virginica"
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[..6], ["5.1", "3.5", "1.4", "0.2", "setosa", "setosa"]);
    let p: Vec<f64> = first[6..].iter().map(|s| s.parse().unwrap()).collect();
    assert!(close(p[0], 0.981_242_363_879_215_9, 1e-4) && close(p[1], 0.018_757_384_379_910_24, 1e-4), "{p:?}");
    assert_eq!(text.lines().count(), 31);
}

/// ```python
/// d = pd.read_csv("examples/diabetes/diabetes.csv"); te = d.iloc[::5]; tr = d.drop(te.index)
/// m = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(tr[X], tr.target); p = m.predict(te[X])
/// r2_score(te.target, p), mean_absolute_error(te.target, p), mean_squared_error(te.target, p) ** 0.5
/// ```
#[test]
fn diabetes_matches_sklearn() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = split_rows(&example("diabetes").join("diabetes.csv"), dir.path(), |i| i % 5 == 0);
    let out = dir.path().join("out");
    let (code, stdout, stderr) = train_on("diabetes", &["model.alpha=1.0", "cv.folds=0"], &tr, &te, &out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("r2"), "{stdout}");
    let m = read_json(&out.join("metrics.json"));
    assert_close(&m["r2"], 0.519_961_656_455_425_1, 1e-9);
    assert_close(&m["mae"], 43.102_036_926_722_39, 1e-7);
    assert_close(&m["rmse"], 52.636_577_841_988_17, 1e-7);
    assert!(out.join("plots/predicted_vs_actual.png").is_file());
    assert!(out.join("plots/residuals.png").is_file());
    assert!(out.join("plots/hist_bmi.png").is_file());
}

/// Mixed numeric and categorical columns with missing values, a random forest, and scoring
/// rows with a category never seen in training.
#[test]
fn adult_tabular_with_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(kiln()
        .arg("train")
        .arg(example("adult").join("kiln.yaml"))
        .args(["-S", "model.n_estimators=10", "-S", "model.max_depth=10", "-S", "cv.folds=2", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let m = read_json(&out.join("metrics.json"));
    let acc = m["accuracy"].as_f64().unwrap();
    assert!(acc > 0.83, "accuracy {acc}\n{stdout}");
    assert!(m["roc_auc"].as_f64().unwrap() > 0.85);
    assert!(out.join("plots/feature_importance.png").is_file());

    let input = dir.path().join("new.csv");
    std::fs::write(
        &input,
        "age,workclass,fnlwgt,education,education_num,marital_status,occupation,relationship,race,sex,capital_gain,capital_loss,hours_per_week,native_country\n\
         39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States\n\
         52,Moon-gov,,Doctorate,16,Married-civ-spouse,,Husband,White,Male,15024,0,60,\n",
    )
    .unwrap();
    let scored = dir.path().join("scored.csv");
    let (code, _, stderr) =
        run(kiln().args(["predict", "-m"]).arg(out.join("model")).arg("-i").arg(&input).arg("-o").arg(&scored));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&scored).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().nth(2).unwrap().ends_with(",>50K"), "{text}");
}

/// Same data and seed give a byte-identical bundle.
#[test]
fn bundle_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for name in ["a", "b"] {
        let out = dir.path().join(name);
        let (code, _, stderr) = run(kiln()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("-q")
            .arg("train")
            .arg(example("iris").join("kiln.yaml"))
            .arg("--out")
            .arg(&out));
        assert_eq!(code, 0, "{stderr}");
        outs.push(out.join("model"));
    }
    for f in ["MLmodel", "model.json", "input_example.json", "serving_input_example.json"] {
        assert_eq!(std::fs::read(outs[0].join(f)).unwrap(), std::fs::read(outs[1].join(f)).unwrap(), "{f} differs");
    }
    let ml = std::fs::read_to_string(outs[0].join("MLmodel")).unwrap();
    assert!(ml.contains("utc_time_created: \"2023-11-14 22:13:20.000000\""), "{ml}");
}

#[test]
fn bad_config_names_the_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &str); 6] = [
        (&["-S", "model.type=boosted"], "`model.type`: unknown model `boosted`; expected one of multinomial_nb"),
        (&["-S", "model.C=-1"], "model.C of logistic_regression"),
        (
            &["-S", "preprocessing.numeric.scale=robust"],
            "`preprocessing.numeric`: unknown variant `robust`, expected one of `standard`, `minmax`, `none`",
        ),
        (&["-S", "split.test_size=0"], "`split.test_size`"),
        (&["-S", "cv.folds=0"], "`cv.folds`: 0 turns cross-validation off, but model has a grid of 3 points"),
        (&["-S", "data.target=colour"], "column `colour` not found"),
    ];
    for (args, want) in cases {
        let (code, _, stderr) =
            run(kiln().arg("train").arg(example("iris").join("kiln.yaml")).args(args).arg("--out").arg(&out));
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote output");
    }
    let (code, _, stderr) = run(kiln().arg("train").arg(dir.path().join("nope.yaml")));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read the config"), "{stderr}");
}

#[test]
fn bad_data_names_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let data = dir.path().join("bad.csv");
    let mut bytes = std::fs::read(example("iris").join("iris.csv")).unwrap();
    bytes.extend_from_slice(b"5.0,3.1,1.4,0.2,set\xffosa\n");
    std::fs::write(&data, &bytes).unwrap();
    let (code, _, stderr) =
        run(kiln().arg("train").arg(example("iris").join("kiln.yaml")).arg("--data").arg(&data).arg("--out").arg(&out));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 152: the bytes are not valid UTF-8"), "{stderr}");
    assert!(!out.exists());

    let iris = std::fs::read_to_string(example("iris").join("iris.csv")).unwrap();
    std::fs::write(&data, iris.replacen("4.9,3.0,1.4,0.2", "4.9,abc,1.4,0.2", 1)).unwrap();
    let (code, _, stderr) =
        run(kiln().arg("train").arg(example("iris").join("kiln.yaml")).arg("--data").arg(&data).arg("--out").arg(&out));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("column `sepal_width`, line 3: `abc` is not a number"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn help_everywhere() {
    for args in [&["--help"][..], &["train", "--help"], &["predict", "--help"]] {
        let (code, stdout, _) = run(kiln().args(args));
        assert_eq!(code, 0);
        assert!(stdout.contains("Usage: kiln"), "{stdout}");
    }
    let (code, _, _) = run(kiln().arg("frobnicate"));
    assert_eq!(code, 2);
}
