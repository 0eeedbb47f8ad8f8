-- Experiments, runs, params, tags, metrics (MLflow's tracking entities).
CREATE TABLE experiments (
    experiment_id BIGINT PRIMARY KEY AUTO_INCREMENT,
    name VARCHAR(500) NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage VARCHAR(32) NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- MySQL turns an explicit 0 into the next AUTO_INCREMENT value unless told not to.
SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO');
INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 0, 0);
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    tag_key VARCHAR(250) NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE runs (
    run_uuid VARCHAR(32) PRIMARY KEY,
    name VARCHAR(250) NOT NULL,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    user_id VARCHAR(256) NOT NULL,
    status VARCHAR(20) NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage VARCHAR(32) NOT NULL,
    artifact_uri TEXT NOT NULL,
    deleted_time BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time);
CREATE TABLE params (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    param_key VARCHAR(250) NOT NULL,
    param_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, param_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE tags (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    tag_key VARCHAR(250) NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (run_uuid, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE metrics (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    metric_key VARCHAR(250) NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    metric_timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX metrics_history ON metrics (run_uuid, metric_key, step, metric_timestamp);
CREATE TABLE latest_metrics (
    run_uuid VARCHAR(32) NOT NULL REFERENCES runs (run_uuid),
    metric_key VARCHAR(250) NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    metric_timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_uuid, metric_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
