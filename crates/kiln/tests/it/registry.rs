//! `kiln models` against a real `kiln server`: a model trained and logged by `kiln train`,
//! registered, aliased, staged, shown as JSON and text, deleted; the web UI's
//! `model-versions/get-artifact`; bad input with clear errors and exit codes.

use crate::common::*;

fn models(server: &Server, args: &[&str]) -> (i32, String, String) {
    run(kiln().arg("models").args(args).env("MLFLOW_TRACKING_URI", &server.base))
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Trains the iris example and logs it; returns the run id.
fn train_and_log(server: &Server, dir: &std::path::Path, c: &str) -> String {
    let out = dir.join(format!("out-{c}"));
    let (code, stdout, stderr) = run(kiln()
        .arg("train")
        .arg(example("iris").join("kiln.yaml"))
        .args(["-S", "cv.folds=0", "-S", &format!("model.C={c}"), "--experiment-name", "iris-registry"])
        .arg("--out")
        .arg(&out)
        .arg("--tracking-uri")
        .arg(&server.base));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    stdout.lines().find_map(|l| l.strip_prefix("logged run ")).unwrap().split(' ').next().unwrap().to_owned()
}

#[test]
fn kiln_models_drives_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite_server(dir.path());
    let run1 = train_and_log(&s, dir.path(), "1.0");
    let run2 = train_and_log(&s, dir.path(), "0.1");

    // Register two versions; the first creates the model and takes an alias.
    let (code, stdout, stderr) = models(
        &s,
        &["register", &format!("runs:/{run1}/model"), "iris", "--alias", "champion", "--tag", "data=v1", "--json"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v1 = json(&stdout);
    assert_eq!(v1["version"], "1");
    assert_eq!(v1["run_id"], run1.as_str());
    assert_eq!(v1["aliases"], serde_json::json!(["champion"]));
    assert_eq!(v1["tags"][0], serde_json::json!({"key": "data", "value": "v1"}));
    let (code, stdout, stderr) = models(&s, &["register", &format!("runs:/{run2}/model"), "iris"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("registered iris version 2"), "{stdout}");

    // Move the alias, stage a version, read it all back.
    let (code, stdout, stderr) = models(&s, &["alias", "set", "iris", "champion", "2"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, stdout, stderr) = models(&s, &["stage", "iris", "1", "production", "--json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(json(&stdout)["current_stage"], "Production");
    let (code, stdout, _) = models(&s, &["show", "iris", "--json"]);
    assert_eq!(code, 0);
    let d = json(&stdout);
    assert_eq!(d["aliases"], serde_json::json!([{"alias": "champion", "version": "2"}]), "{d}");
    let versions: Vec<&str> =
        d["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["2", "1"]);
    let (code, stdout, _) = models(&s, &["list"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("iris") && stdout.contains("@champion=2"), "{stdout}");
    let (code, stdout, _) = models(&s, &["list", "--json", "--filter", "name = 'nope'"]);
    assert_eq!(code, 0);
    assert_eq!(json(&stdout), serde_json::json!([]));

    // The web UI reads a version's files through the server.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent
        .get(&s.url("/ajax-api/2.0/mlflow/model-versions/get-artifact?name=iris&version=2&path=MLmodel"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mlmodel = r.body_mut().read_to_string().unwrap();
    let local = std::fs::read_to_string(dir.path().join("out-0.1/model/MLmodel")).unwrap();
    assert_eq!(mlmodel, local);
    let mut r = agent
        .get(&s.url("/ajax-api/2.0/mlflow/model-versions/get-artifact?name=iris&version=2&path=../../../mlflow.db"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "{}", r.body_mut().read_to_string().unwrap());

    // Bad input: clear messages, exit code 1, nothing changed.
    let (code, _, stderr) = models(&s, &["alias", "set", "iris", "v2", "2"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("reserved"), "{stderr}");
    let (code, _, stderr) = models(&s, &["stage", "iris", "1", "Prod"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Invalid Model Version stage"), "{stderr}");
    let (code, _, stderr) = models(&s, &["show", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("RESOURCE_DOES_NOT_EXIST"), "{stderr}");
    let (code, _, stderr) = models(&s, &["register", "models:/iris/Prod", "iris"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Prod"), "{stderr}");
    let (code, _, stderr) = models(&s, &["register", "/etc/passwd", "iris"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Invalid model version source"), "{stderr}");
    let (code, _, stderr) = run(kiln().args(["models", "list"]).env_remove("MLFLOW_TRACKING_URI"));
    assert_eq!(code, 1);
    assert!(stderr.contains("--tracking-uri"), "{stderr}");

    // Delete a version (its alias goes with it), then the model.
    let (code, stdout, stderr) = models(&s, &["delete", "iris", "--version", "2"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (_, stdout, _) = models(&s, &["show", "iris", "--json"]);
    assert!(json(&stdout).get("aliases").is_none(), "{stdout}");
    let (code, stdout, stderr) = models(&s, &["delete", "iris"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, _, _) = models(&s, &["show", "iris"]);
    assert_eq!(code, 1);
}

/// `kiln models` speaks the REST API, so it drives a real `mlflow server` as well.
#[test]
fn kiln_models_drives_an_mlflow_server() {
    let Some(python) = crate::serve::test_python() else { return };
    // Its own process group, killed whole on drop: mlflow server forks workers and a job runner.
    let server = crate::registry_serve::MlflowServer::start(&python);
    let base = server.base.clone();
    let m = |args: &[&str]| run(kiln().arg("models").args(args).env("MLFLOW_TRACKING_URI", &base));
    let (code, out, err) = m(&["register", "s3://bucket/models/spam", "spam", "--alias", "champion", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["version"], "1");
    let (code, out, err) = m(&["register", "s3://bucket/models/spam2", "spam"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(m(&["alias", "set", "spam", "champion", "2"]).0, 0);
    assert_eq!(m(&["stage", "spam", "1", "Staging"]).0, 0);
    let (code, out, _) = m(&["show", "spam", "--json"]);
    assert_eq!(code, 0);
    let d = json(&out);
    assert_eq!(d["aliases"], serde_json::json!([{"alias": "champion", "version": "2"}]), "{d}");
    assert_eq!(d["versions"][1]["current_stage"], "Staging", "{d}");
    let (code, _, err) = m(&["alias", "set", "spam", "latest", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("INVALID_PARAMETER_VALUE"), "{err}");
    assert_eq!(m(&["delete", "spam"]).0, 0);
    assert_eq!(m(&["show", "spam"]).0, 1);
}
