-- MLflow 3 logged models: first-class models with their own artifact location.
CREATE TABLE logged_models (
    model_id VARCHAR(64) PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name VARCHAR(500) NOT NULL,
    artifact_location TEXT NOT NULL,
    creation_timestamp_ms BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    status VARCHAR(32) NOT NULL,
    model_type VARCHAR(500) NOT NULL,
    source_run_id VARCHAR(32) NOT NULL,
    status_message TEXT NOT NULL,
    lifecycle_stage VARCHAR(32) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX logged_models_experiment_name ON logged_models (experiment_id, name);
CREATE TABLE logged_model_tags (
    model_id VARCHAR(64) NOT NULL REFERENCES logged_models (model_id),
    tag_key VARCHAR(250) NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (model_id, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE logged_model_params (
    model_id VARCHAR(64) NOT NULL REFERENCES logged_models (model_id),
    param_key VARCHAR(250) NOT NULL,
    param_value TEXT NOT NULL,
    PRIMARY KEY (model_id, param_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE run_model_outputs (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    model_id VARCHAR(64) NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_uuid, model_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
