-- Experiments, runs, params, tags, metrics (MLflow's tracking entities).
CREATE TABLE experiments (
    experiment_id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);
INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 0, 0);
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, tag_key)
);
CREATE TABLE runs (
    run_uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    deleted_time BIGINT
);
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time);
CREATE TABLE params (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    param_key TEXT NOT NULL,
    param_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, param_key)
);
CREATE TABLE tags (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, tag_key)
);
CREATE TABLE metrics (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    metric_key TEXT NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    metric_timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL
);
CREATE INDEX metrics_history ON metrics (run_uuid, metric_key, step, metric_timestamp);
CREATE TABLE latest_metrics (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    metric_key TEXT NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    metric_timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_uuid, metric_key)
);
-- BIGSERIAL starts at 1; the explicit 0 above does not move it.
