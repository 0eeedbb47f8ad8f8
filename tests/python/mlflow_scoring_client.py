"""The official mlflow client against `kiln serve`, unchanged: what a team's existing scoring code
does with a model served by `mlflow models serve`.

    python mlflow_scoring_client.py URL BUNDLE_DIR INPUT_CSV EXPECTED_JSON

INPUT_CSV holds the model's input columns (plus possibly the target); EXPECTED_JSON is `kiln
predict -o x.json` for it. Exits non-zero with a message on the first mismatch.
"""
import json
import os
import sys

import pandas as pd
import requests
import yaml
from mlflow.deployments import PredictionsResponse
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

url, bundle, input_csv, expected_json = sys.argv[1:5]
host, port = url.removeprefix("http://").rsplit(":", 1)
with open(expected_json) as f:
    expected = json.load(f)["predictions"]
with open(os.path.join(bundle, "MLmodel")) as f:
    mlmodel = yaml.safe_load(f)
inputs = [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]
df = pd.read_csv(input_csv)[inputs]


def check(what, got):
    got = list(got)
    assert got == expected[: len(got)], f"{what}: {got[:5]}… != {expected[:5]}…"
    print(f"ok  {what} ({len(got)} rows)")


client = ScoringServerClient(host, int(port))
client.wait_server_ready(timeout=20)
assert client.get_version(), "empty /version"

# DataFrame → dataframe_split (with index), the client's own encoding.
check("ScoringServerClient.invoke(DataFrame)", client.invoke(df).get_predictions().iloc[:, 0])
# numpy array → {"inputs": [[…]]}: columns by position.
check("ScoringServerClient.invoke(ndarray)", client.invoke(df.to_numpy()).get_predictions().iloc[:, 0])
# (A dict of arrays cannot go through invoke(): mlflow 3.17.2's dump_input_data iterates the dict
# without .items() and raises before sending; the columnar body is sent with requests below.)
# params: predict_proba gives one row of class probabilities per input row.
proba = client.invoke(df.head(4), params={"predict_method": "predict_proba"}).get_predictions()
assert proba.shape[0] == 4 and abs(proba.iloc[0].sum() - 1) < 1e-9, proba

# What MLflow's docs show for curl/requests: pandas JSON in each orient, and CSV.
inv = f"{url}/invocations"
for key, body in [
    ("dataframe_split", json.loads(df.to_json(orient="split"))),
    ("dataframe_records", json.loads(df.to_json(orient="records"))),
    ("instances", json.loads(df.to_json(orient="records"))),
    ("inputs", {c: df[c].tolist() for c in df.columns}),
]:
    r = requests.post(inv, json={key: body})
    assert r.status_code == 200, (key, r.status_code, r.text)
    check(f"requests {key}", PredictionsResponse.from_json(r.text).get_predictions().iloc[:, 0])
r = requests.post(inv, data=df.to_csv(index=False), headers={"Content-Type": "text/csv"})
assert r.status_code == 200, r.text
check("requests text/csv", r.json()["predictions"])

# The bundle's own serving example, sent as is.
with open(os.path.join(bundle, "serving_input_example.json")) as f:
    r = requests.post(inv, data=f.read(), headers={"Content-Type": "application/json"})
assert r.status_code == 200 and len(r.json()["predictions"]) > 0, r.text
print("ok  serving_input_example.json")

# An error reads as MLflow's: JSON with error_code and message, status 400.
r = requests.post(inv, json={"dataframe_split": {"columns": ["nope"], "data": [[1]]}})
assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text
print("ok  schema error")
