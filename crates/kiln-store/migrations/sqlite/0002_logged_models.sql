-- MLflow 3 logged models: first-class models with their own artifact location.
CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    creation_timestamp_ms BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    model_type TEXT NOT NULL,
    source_run_id TEXT NOT NULL,
    status_message TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX logged_models_experiment_name ON logged_models (experiment_id, name);
CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (model_id, tag_key)
);
CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    param_key TEXT NOT NULL,
    param_value TEXT NOT NULL,
    PRIMARY KEY (model_id, param_key)
);
CREATE TABLE run_model_outputs (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    model_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_uuid, model_id)
);
