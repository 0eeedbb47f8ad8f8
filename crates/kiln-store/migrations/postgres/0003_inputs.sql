-- Run inputs: datasets (identified per experiment by name + digest) and models.
CREATE TABLE datasets (
    dataset_uuid TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    dataset_schema TEXT,
    dataset_profile TEXT,
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_dataset_inputs (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    dataset_uuid TEXT NOT NULL REFERENCES datasets (dataset_uuid),
    PRIMARY KEY (run_uuid, dataset_uuid)
);
CREATE TABLE run_dataset_input_tags (
    run_uuid TEXT NOT NULL,
    dataset_uuid TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, dataset_uuid, tag_key)
);
CREATE TABLE run_model_inputs (
    run_uuid TEXT NOT NULL REFERENCES runs (run_uuid),
    model_id TEXT NOT NULL,
    PRIMARY KEY (run_uuid, model_id)
);
