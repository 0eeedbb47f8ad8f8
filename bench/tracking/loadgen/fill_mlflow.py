"""Writes the search set of phase d into a fresh mlflow SQLite database, in-process, with mlflow's
own code, and prints the experiment id.

Why: over HTTP, mlflow server creates and fills runs at a few dozen a second on the 2-core bench
machine, so a 10,000-run search set would take it ten minutes or more per server; even in-process
its store's create_run + log_batch cost ~30 ms of CPU a run here. So the first --via-store runs go
through mlflow's SqlAlchemyStore (create_run and log_batch: the very calls `mlflow server`'s
runs/create and runs/log-batch handlers make), and the rest are the same rows, built with mlflow's
own ORM models and added in one transaction. Before committing, the rows of a store-made run and
of a bulk-made run are compared column by column (ids, names, times and values aside): any
difference in shape aborts. The search then runs over the same data on both servers.

    python fill_mlflow.py --db DIR/mlflow.db --set search-set.json

search-set.json is what `kiln-tracking-loadgen search-set --runs N --seed S` prints: one row
[model, acc, loss] per run i, logged as run "r{i}" with param model, metrics acc and loss (step
0), tag team=bench, exactly as the load generator's phases a and a2 do over HTTP.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="SQLite file to create (must not exist)")
    p.add_argument("--set", required=True, help="the load generator's search-set JSON")
    p.add_argument("--name", default="bench-search-prefilled", help="experiment name")
    p.add_argument("--artifacts", default="mlflow-artifacts:/",
                   help="default artifact root (what `mlflow server --artifacts-destination` uses)")
    p.add_argument("--via-store", type=int, default=50,
                   help="runs written through SqlAlchemyStore's create_run/log_batch (default 50)")
    a = p.parse_args()
    if os.path.exists(a.db):
        p.error(f"{a.db} exists: the search set goes into a fresh database")

    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    import sqlite3
    import uuid

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils.uri import append_to_uri_path

    with open(a.set) as f:
        spec = json.load(f)
    rows = spec["rows"]
    store = SqlAlchemyStore(f"sqlite:///{os.path.abspath(a.db)}", a.artifacts)
    exp = store.create_experiment(a.name)
    exp_location = store.get_experiment(exp).artifact_location
    t0 = time.time()
    via_store = min(a.via_store, len(rows))
    ids = []
    for i, (model, acc, loss) in enumerate(rows[:via_store]):
        ts = int(time.time() * 1000)
        run = store.create_run(experiment_id=exp, user_id="", start_time=ts, tags=[], run_name=f"r{i}")
        store.log_batch(run.info.run_id,
                        metrics=[Metric("acc", acc, ts, 0), Metric("loss", loss, ts, 0)],
                        params=[Param("model", model)],
                        tags=[RunTag("team", "bench")])
        ids.append(run.info.run_id)

    objs = []
    for i, (model, acc, loss) in enumerate(rows[via_store:], start=via_store):
        ts = int(time.time() * 1000)
        rid = uuid.uuid4().hex
        ids.append(rid)
        # The row create_run writes (see SqlAlchemyStore.create_run), then log_batch's rows.
        objs.append(SqlRun(name=f"r{i}", artifact_uri=append_to_uri_path(exp_location, rid, "artifacts"),
                           run_uuid=rid, experiment_id=int(exp), source_type="UNKNOWN", source_name="",
                           entry_point_name="", user_id="", status="RUNNING", start_time=ts, end_time=None,
                           deleted_time=None, source_version="", lifecycle_stage="active"))
        objs.append(SqlTag(key="mlflow.runName", value=f"r{i}", run_uuid=rid))
        objs.append(SqlTag(key="team", value="bench", run_uuid=rid))
        objs.append(SqlParam(key="model", value=model, run_uuid=rid))
        for key, val in (("acc", acc), ("loss", loss)):
            objs.append(SqlMetric(key=key, value=val, timestamp=ts, step=0, is_nan=False, run_uuid=rid))
            objs.append(SqlLatestMetric(key=key, value=val, timestamp=ts, step=0, is_nan=False, run_uuid=rid))
    with store.ManagedSessionMaker() as session:
        session.add_all(objs)

    # The shape check: a store-made run's rows against the last bulk-made run's.
    if 0 < via_store < len(ids):
        con = sqlite3.connect(a.db)
        con.row_factory = sqlite3.Row

        def shape(rid):
            masked = {"run_uuid", "name", "start_time", "timestamp", "value"}
            out = {}
            for t in ("runs", "tags", "params", "metrics", "latest_metrics"):
                rs = con.execute(f"SELECT * FROM {t} WHERE run_uuid = ?", (rid,)).fetchall()
                out[t] = sorted(tuple((k, "*" if k in masked else str(r[k]).replace(rid, "<id>")) for k in r.keys())
                                for r in rs)
            return out

        made, bulk = shape(ids[0]), shape(ids[-1])
        con.close()
        if made != bulk:
            os.remove(a.db)
            sys.exit(f"fill_mlflow: bulk rows differ from the store's:\n  store: {made}\n  bulk:  {bulk}")
    print(f"  fill_mlflow: {len(rows)} runs ({via_store} through the store's create_run/log_batch, the rest in "
          f"bulk) in {time.time() - t0:.0f} s: experiment {exp}, {spec['expected_match']} match the search",
          file=sys.stderr)
    print(exp)

if __name__ == "__main__":
    main()
