"""The official mlflow client against `kiln server`, unchanged: experiments, runs (nested), params,
metrics with steps, tags, batches, history, search, delete and restore.

    MLFLOW_TRACKING_URI=http://127.0.0.1:PORT python mlflow_tracking_client.py

Exits non-zero with a message on the first mismatch; prints one `ok` line per check.
"""
import math
import os
import time
import uuid

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx must fail now, not in minutes
client = MlflowClient()
name = f"kiln-e2e-{uuid.uuid4().hex[:8]}"

# Experiments: create through set_experiment (get-by-name 404 → create → get).
exp = mlflow.set_experiment(name)
assert exp.name == name and exp.lifecycle_stage == "active", exp
assert exp.artifact_location.endswith(f"/{exp.experiment_id}"), exp.artifact_location
assert client.get_experiment_by_name("no such experiment " + name) is None
client.set_experiment_tag(exp.experiment_id, "team", "ml")
assert client.get_experiment(exp.experiment_id).tags["team"] == "ml"
try:
    client.create_experiment(name)
    raise AssertionError("duplicate experiment name accepted")
except MlflowException as e:
    assert e.error_code == "RESOURCE_ALREADY_EXISTS", e.error_code
print("ok  experiments: set_experiment, get_by_name -> None, tags, duplicate name")

# A run with params, metrics over steps, tags; a nested child.
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_param("alpha", "0.5")
    mlflow.log_params({"model": "nb", "ngrams": "1-2"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
    mlflow.log_metric("weird", float("nan"))
    mlflow.set_tag("stage", "dev")
    mlflow.set_tags({"owner": "kiln", "note": "x" * 5000})
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("child_metric", 3.0)
    try:
        mlflow.log_param("alpha", "0.7")
        raise AssertionError("param overwrite accepted")
    except MlflowException as e:
        assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
run = client.get_run(parent.info.run_id)
assert run.info.status == "FINISHED" and run.info.run_name == "parent", run.info
assert run.data.params == {"alpha": "0.5", "model": "nb", "ngrams": "1-2"}, run.data.params
assert run.data.metrics["loss"] == 0.2 and run.data.metrics["acc"] == 0.9, run.data.metrics
assert math.isnan(run.data.metrics["weird"])
assert run.data.tags["stage"] == "dev" and len(run.data.tags["note"]) == 5000
assert run.data.tags["mlflow.runName"] == "parent"
kid = client.get_run(child.info.run_id)
assert kid.data.tags["mlflow.parentRunId"] == parent.info.run_id
print("ok  runs: params, metrics with steps, NaN, tags, nested run, param overwrite refused")

history = client.get_metric_history(parent.info.run_id, "loss")
assert [m.step for m in history] == [0, 1, 2, 3, 4], history
assert [round(m.value, 6) for m in history] == [1.0, 0.5, 0.333333, 0.25, 0.2]
assert client.get_metric_history(parent.info.run_id, "never logged") == []
print("ok  metric history")

# A batch bigger than one request: the client splits it.
now = int(time.time() * 1000)
client.log_batch(child.info.run_id, metrics=[Metric("big", float(i), now, i) for i in range(2500)],
                 params=[Param(f"p{i}", str(i)) for i in range(150)], tags=[RunTag("t", "v")])
assert len(client.get_metric_history(child.info.run_id, "big")) == 2500
assert len(client.get_run(child.info.run_id).data.params) == 150
print("ok  log_batch of 2,500 metrics and 150 params (split by the client)")

# Search, paging, delete and restore.
runs = client.search_runs([exp.experiment_id])
assert {r.info.run_id for r in runs} == {parent.info.run_id, child.info.run_id}, runs
page = client.search_runs([exp.experiment_id], max_results=1)
assert len(page) == 1 and page.token, page.token
rest = client.search_runs([exp.experiment_id], max_results=1, page_token=page.token)
assert len(rest) == 1 and rest[0].info.run_id != page[0].info.run_id and not rest.token
df = mlflow.search_runs([exp.experiment_id])
assert len(df) == 2 and "metrics.loss" in df.columns and "params.alpha" in df.columns, df.columns
ids = lambda runs: [r.info.run_id for r in runs]  # noqa: E731
assert ids(client.search_runs([exp.experiment_id], "metrics.loss < 0.5 and params.model = 'nb'")) == [parent.info.run_id]
assert ids(client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")) == [child.info.run_id]
assert ids(client.search_runs([exp.experiment_id], "attributes.run_name LIKE 'par%'")) == [parent.info.run_id]
assert ids(client.search_runs([exp.experiment_id], "params.model ILIKE 'NB' AND status = 'FINISHED'")) == [parent.info.run_id]
assert ids(client.search_runs([exp.experiment_id], "params.model LIKE 'NB'")) == []
assert ids(client.search_runs([exp.experiment_id], "params.alpha IS NULL")) == [child.info.run_id]
assert ids(client.search_runs([exp.experiment_id], "metrics.acc != 0.9")) == []
# Missing values sort last both ways; only the child has child_metric.
assert ids(client.search_runs([exp.experiment_id], order_by=["metrics.child_metric DESC"]))[0] == child.info.run_id
assert ids(client.search_runs([exp.experiment_id], order_by=["metrics.child_metric ASC"]))[0] == child.info.run_id
assert ids(client.search_runs([exp.experiment_id], order_by=["attributes.run_name"])) == [child.info.run_id, parent.info.run_id]
try:
    client.search_runs([exp.experiment_id], "metrics.loss < 0.5 OR params.model = 'nb'")
    raise AssertionError("OR accepted")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE" and "OR" in e.message, e.message
print("ok  search filters (metrics, params, tags, attributes, LIKE/ILIKE, IS NULL) and order_by")
client.delete_run(child.info.run_id)
assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [parent.info.run_id]
assert client.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
client.restore_run(child.info.run_id)
assert len(client.search_runs([exp.experiment_id])) == 2
print("ok  search_runs, paging, mlflow.search_runs (pandas), delete and restore")

client.rename_experiment(exp.experiment_id, name + "-renamed")
client.delete_experiment(exp.experiment_id)
assert client.get_experiment(exp.experiment_id).lifecycle_stage == "deleted"
try:
    client.create_run(exp.experiment_id)
    raise AssertionError("run created in a deleted experiment")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE", e.error_code
client.restore_experiment(exp.experiment_id)
names = [e.name for e in client.search_experiments()]
assert name + "-renamed" in names and "Default" in names, names
try:
    client.get_run("0" * 32)
    raise AssertionError("unknown run found")
except MlflowException as e:
    assert e.error_code == "RESOURCE_DOES_NOT_EXIST", e.error_code
found = client.search_experiments(filter_string=f"name LIKE '{name}%' AND tags.team = 'ml'")
assert [e.name for e in found] == [name + "-renamed"], found
assert client.search_experiments(filter_string="tags.team = 'nobody'") == []
ordered = [e.name for e in client.search_experiments(order_by=["name ASC"])]
assert ordered == sorted(ordered), ordered
print("ok  rename, delete/restore experiment, search_experiments (filter, order_by), unknown run is 404")

# Artifacts through the server's proxy (experiment locations are mlflow-artifacts:/<id>).
import pathlib
import tempfile

with mlflow.start_run(run_name="artifacts") as arun:
    d = pathlib.Path(tempfile.mkdtemp())
    (d / "notes.txt").write_text("hello kiln")
    mlflow.log_artifact(str(d / "notes.txt"))
    tree = d / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "x.json").write_text('{"k": 1}')
    (tree / "b.csv").write_text("a,b\n1,2\n")
    mlflow.log_artifacts(str(tree), artifact_path="tree")
    mlflow.log_text("text body", "texts/t.txt")
    mlflow.log_dict({"a": 1}, "cfg/c.json")
assert arun.info.artifact_uri.startswith("mlflow-artifacts:/"), arun.info.artifact_uri
rid = arun.info.run_id
files = [f.path for f in client.list_artifacts(rid)]
assert files == ["cfg", "notes.txt", "texts", "tree"], files
assert [(f.path, f.is_dir) for f in client.list_artifacts(rid, "tree")] == [("tree/a", True), ("tree/b.csv", False)]
out = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=tempfile.mkdtemp()))
assert (out / "tree" / "a" / "x.json").read_text() == '{"k": 1}', list(out.rglob("*"))
assert mlflow.artifacts.load_text(f"runs:/{rid}/notes.txt") == "hello kiln"
assert mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/c.json") == {"a": 1}
big = d / "big.bin"
big.write_bytes(os.urandom(12 << 20))
client.log_artifact(rid, str(big))
back = pathlib.Path(client.download_artifacts(rid, "big.bin", tempfile.mkdtemp()))
assert back.read_bytes() == big.read_bytes()
print("ok  artifacts: log_artifact(s), log_text/dict, list, download of a tree and of 12 MiB, load_text/dict")

# MLflow 3 logged models: log an sklearn model, load it back by models:/ and runs:/ URIs.
import numpy as np
from sklearn.linear_model import LogisticRegression

X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])
with mlflow.start_run(run_name="model") as mrun:
    mlflow.log_param("C", "1.0")
    info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", input_example=X[:2])
assert info.model_uri.startswith("models:/m-"), info.model_uri
lm = client.get_logged_model(info.model_id)
assert str(lm.status).endswith("READY") and lm.source_run_id == mrun.info.run_id, lm
assert lm.params.get("C") == "1.0", lm.params
assert list(mlflow.sklearn.load_model(info.model_uri).predict(X)) == [0, 0, 1, 1]
assert list(mlflow.pyfunc.load_model(f"runs:/{mrun.info.run_id}/model").predict(X)) == [0, 0, 1, 1]
outputs = client.get_run(mrun.info.run_id).outputs.model_outputs
assert [o.model_id for o in outputs] == [info.model_id], outputs
found = client.search_logged_models(experiment_ids=[exp.experiment_id], filter_string="name = 'model'")
assert [m.model_id for m in found] == [info.model_id], found
print("ok  mlflow.sklearn.log_model, load by models:/ and runs:/, run outputs, search_logged_models")

# Model-linked metrics (MLflow 3): a point logged with model_id also belongs to the model, and
# logged-model search filters and orders on them (optionally on one dataset).
with mlflow.start_run(run_name="model2") as mrun2:
    info2 = mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit(X, y), name="model2")
client.log_metric(mrun.info.run_id, "acc", 0.9, model_id=info.model_id, dataset_name="eval", dataset_digest="d1")
client.log_metric(mrun2.info.run_id, "acc", 0.7, model_id=info2.model_id, dataset_name="eval", dataset_digest="d1")
client.log_metric(mrun2.info.run_id, "acc", 0.95, step=1, model_id=info2.model_id, dataset_name="other", dataset_digest="d2")
lm = client.get_logged_model(info.model_id)
assert [(m.key, m.value, m.dataset_name, m.run_id) for m in lm.metrics] == [("acc", 0.9, "eval", mrun.info.run_id)], lm.metrics
assert len(client.get_metric_history(mrun2.info.run_id, "acc")) == 2
eids = [exp.experiment_id]
ids = lambda models: [m.model_id for m in models]  # noqa: E731
on_eval = [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval"}]
assert ids(client.search_logged_models(eids, order_by=on_eval)) == [info.model_id, info2.model_id]
latest = [{"field_name": "metrics.acc", "ascending": False}]
assert ids(client.search_logged_models(eids, order_by=latest)) == [info2.model_id, info.model_id]
assert ids(client.search_logged_models(eids, order_by=[{"field_name": "name"}])) == [info.model_id, info2.model_id]
assert set(ids(client.search_logged_models(eids, filter_string="metrics.acc > 0.8"))) == {info.model_id, info2.model_id}
assert ids(client.search_logged_models(eids, filter_string="metrics.acc > 0.8", datasets=[{"dataset_name": "eval"}])) == [info.model_id]
assert ids(client.search_logged_models(eids, filter_string="metrics.acc < 0.1")) == []
print("ok  model-linked metrics: log_metric(model_id=...), search_logged_models order_by and metric filters")

# Datasets as run inputs.
import pandas as pd

df_train = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0, 1, 1]})
ds = mlflow.data.from_pandas(df_train, name="toy", targets="y")
with mlflow.start_run(run_name="with-data") as drun:
    mlflow.log_input(ds, context="training")
    mlflow.log_input(ds, context="training")  # again: a no-op
inputs = client.get_run(drun.info.run_id).inputs.dataset_inputs
assert len(inputs) == 1 and inputs[0].dataset.name == "toy" and inputs[0].dataset.digest == ds.digest, inputs
assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training", inputs[0].tags
assert "x" in inputs[0].dataset.schema, inputs[0].dataset.schema
print("ok  mlflow.log_input: datasets with context tags, idempotent")
