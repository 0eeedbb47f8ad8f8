-- Run inputs: datasets (identified per experiment by name + digest) and models.
CREATE TABLE datasets (
    dataset_uuid VARCHAR(36) PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name VARCHAR(500) NOT NULL,
    digest VARCHAR(36) NOT NULL,
    source_type VARCHAR(36) NOT NULL,
    source TEXT NOT NULL,
    dataset_schema MEDIUMTEXT,
    dataset_profile LONGTEXT,
    UNIQUE (experiment_id, name, digest)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE run_dataset_inputs (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    dataset_uuid VARCHAR(36) NOT NULL REFERENCES datasets (dataset_uuid),
    PRIMARY KEY (run_uuid, dataset_uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE run_dataset_input_tags (
    run_uuid VARCHAR(32) NOT NULL,
    dataset_uuid VARCHAR(36) NOT NULL,
    tag_key VARCHAR(255) NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, dataset_uuid, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE run_model_inputs (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    model_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (run_uuid, model_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
