"""The official mlflow client's model registry (MlflowClient registry API, mlflow.register_model,
models:/ URIs) against `kiln server`, unchanged: the MLflow book's registry chapter, then the
error cases with MLflow's error codes.

    MLFLOW_TRACKING_URI=http://127.0.0.1:PORT python mlflow_registry_client.py

Exits non-zero with a message on the first mismatch; prints one `ok` line per check.
"""
import os
import uuid

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx must fail now, not in minutes

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

client = MlflowClient()
suffix = uuid.uuid4().hex[:8]
name = f"spam-{suffix}"
mlflow.set_experiment(f"kiln-registry-{suffix}")


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        assert e.error_code == code, f"{fn.__name__}{args}: {e.error_code} != {code}: {e}"
        return e
    raise AssertionError(f"{fn.__name__}{args} succeeded, expected {code}")


X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])
infos = []
for c in (1.0, 0.5, 0.1):
    with mlflow.start_run():
        infos.append(mlflow.sklearn.log_model(LogisticRegression(C=c).fit(X, y), name="model", input_example=X[:2]))

# Register from a run: registered-models/create, then model-versions/create with the logged model.
v1 = mlflow.register_model(f"runs:/{infos[0].run_id}/model", name)
assert v1.version == "1" and v1.name == name and v1.status == "READY", v1
assert v1.run_id == infos[0].run_id and v1.current_stage == "None", v1
v2 = mlflow.register_model(infos[1].model_uri, name)  # models:/m-… source
assert v2.version == "2", v2
lm = client.get_logged_model(infos[0].model_id)
assert "mlflow.modelVersions" in lm.tags, lm.tags
print("ok  register_model from runs:/ and models:/ URIs, versions 1 and 2")

# Describe and tag.
client.update_registered_model(name, description="SMS spam filter")
client.update_model_version(name, "1", description="baseline")
client.set_registered_model_tag(name, "team", "ml")
client.set_model_version_tag(name, "1", "validated", "true")
rm = client.get_registered_model(name)
assert rm.description == "SMS spam filter" and rm.tags == {"team": "ml"}, rm
mv = client.get_model_version(name, "1")
assert mv.description == "baseline" and mv.tags == {"validated": "true"}, mv
client.delete_model_version_tag(name, "1", "validated")
client.delete_registered_model_tag(name, "team")
assert client.get_model_version(name, "1").tags == {}
assert client.get_registered_model(name).tags == {}
print("ok  descriptions and tags on the model and a version, set and deleted")

# Aliases: set, move, read from both sides, load the model by alias.
client.set_registered_model_alias(name, "champion", "1")
assert client.get_model_version_by_alias(name, "champion").version == "1"
client.set_registered_model_alias(name, "champion", "2")
client.set_registered_model_alias(name, "challenger", "1")
rm = client.get_registered_model(name)
assert rm.aliases == {"champion": "2", "challenger": "1"}, rm.aliases
assert client.get_model_version(name, "2").aliases == ["champion"]
model = mlflow.sklearn.load_model(f"models:/{name}@champion")
assert list(model.predict(X)) == [0, 0, 1, 1]
assert mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X).tolist() == [0, 0, 1, 1]
uri = client.get_model_version_download_uri(name, "2")
assert uri.startswith("mlflow-artifacts:/") and infos[1].model_id in uri, uri
client.delete_registered_model_alias(name, "challenger")
assert client.get_registered_model(name).aliases == {"champion": "2"}
print("ok  aliases set, moved, deleted; load_model by @alias and /version; download URI")

# Legacy stages.
client.transition_model_version_stage(name, "1", "staging")
client.transition_model_version_stage(name, "2", "Production")
latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
assert latest == {"Staging": "1", "Production": "2"}, latest
v3 = client.create_model_version(name, infos[2].model_uri, run_id=infos[2].run_id, model_id=infos[2].model_id)
assert v3.version == "3"
client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
assert client.get_model_version(name, "2").current_stage == "Archived"
assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["3"]
prod = mlflow.sklearn.load_model(f"models:/{name}/Production")
assert list(prod.predict(X)) == [0, 0, 1, 1]
assert mlflow.sklearn.load_model(f"models:/{name}/latest") is not None
print("ok  stages: transition (case-insensitive), archive_existing_versions, get_latest_versions, models:/name/Stage")

# Search.
other = f"churn-{suffix}"
client.create_registered_model(other, tags={"domain": "tabular"}, description="churn")
found = [m.name for m in client.search_registered_models(filter_string=f"name LIKE '%{suffix}'")]
assert sorted(found) == sorted([name, other]), found
found = [m.name for m in client.search_registered_models(filter_string="tags.domain = 'tabular'")]
assert found == [other], found
page = client.search_registered_models(filter_string=f"name LIKE '%{suffix}'", max_results=1, order_by=["name DESC"])
assert [m.name for m in page] == [name] and page.token, page
page2 = client.search_registered_models(
    filter_string=f"name LIKE '%{suffix}'", max_results=1, order_by=["name DESC"], page_token=page.token
)
assert [m.name for m in page2] == [other], page2
versions = client.search_model_versions(f"name = '{name}'")
assert [v.version for v in versions] == ["3", "2", "1"], [v.version for v in versions]
versions = client.search_model_versions(f"name = '{name}' and run_id = '{infos[0].run_id}'")
assert [v.version for v in versions] == ["1"]
versions = client.search_model_versions(f"name='{name}'", order_by=["version_number ASC"], max_results=2)
assert [v.version for v in versions] == ["1", "2"] and versions.token
print("ok  search_registered_models (LIKE, tags, order, pages), search_model_versions (name, run_id, order)")

# Rename carries versions and aliases; the old name is gone.
renamed = f"ham-{suffix}"
client.rename_registered_model(name, renamed)
rm = client.get_registered_model(renamed)
assert rm.aliases == {"champion": "2"} and len(client.search_model_versions(f"name='{renamed}'")) == 3, rm
expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, name)
name = renamed
print("ok  rename carries versions and aliases; the old name 404s")

# Deleting versions: numbers are never reused; a deleted version's alias goes with it.
client.delete_model_version(name, "2")
expect_error("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, name, "champion")
v4 = client.create_model_version(name, f"runs:/{infos[0].run_id}/model", run_id=infos[0].run_id)
assert v4.version == "4", v4.version
print("ok  delete_model_version removes its alias; the next version is 4, not 2")

# Bad input answers with MLflow's codes.
expect_error("RESOURCE_ALREADY_EXISTS", client.create_registered_model, name)
expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, f"nope-{suffix}")
expect_error("RESOURCE_DOES_NOT_EXIST", client.get_model_version, name, "99")
expect_error("RESOURCE_DOES_NOT_EXIST", client.set_registered_model_alias, name, "x", "99")
expect_error("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "v3", "3")
expect_error("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "latest", "3")
expect_error("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, name, "bad alias", "3")
expect_error("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, name, "nosuch")
expect_error("INVALID_PARAMETER_VALUE", client.transition_model_version_stage, name, "3", "Prod")
expect_error(
    "INVALID_PARAMETER_VALUE", client.transition_model_version_stage, name, "3", "Archived", archive_existing_versions=True
)
expect_error("INVALID_PARAMETER_VALUE", client.create_registered_model, "a/b")
expect_error("INVALID_PARAMETER_VALUE", client.rename_registered_model, name, "a:b")
expect_error("RESOURCE_ALREADY_EXISTS", client.rename_registered_model, name, other)
expect_error("INVALID_PARAMETER_VALUE", client.search_registered_models, max_results=1001)
expect_error("INVALID_PARAMETER_VALUE", client.search_model_versions, "nosuchkey = 'x'")
# Model-version sources that climb out of where they point, or local paths with no run.
for bad in ["mlflow-artifacts:/0/../../secret", "s3://b/x/%2e%2e/%2e%2e/y", "/etc/passwd", "file:///etc"]:
    expect_error("INVALID_PARAMETER_VALUE", client.create_model_version, name, bad)
expect_error("INVALID_PARAMETER_VALUE", client.create_model_version, name, "/etc/passwd", run_id=infos[0].run_id)
expect_error("RESOURCE_DOES_NOT_EXIST", client.create_model_version, f"nope-{suffix}", "s3://b/m")
print("ok  errors: duplicates, unknown names/versions/aliases, reserved aliases, bad stages, bad sources")

# Deleting a model with an alias in use deletes it all (as MLflow).
client.set_registered_model_alias(name, "champion", "3")
client.delete_registered_model(name)
expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, name)
expect_error("RESOURCE_DOES_NOT_EXIST", client.get_model_version_by_alias, name, "champion")
assert client.search_model_versions(f"name='{name}'") == []
client.create_registered_model(name)
assert client.create_model_version(name, "s3://bucket/model").version == "1"
client.delete_registered_model(name)
client.delete_registered_model(other)
print("ok  delete_registered_model with an alias in use removes versions and aliases; a new model starts at 1")
