-- MLflow 3 model-linked metrics: a point logged with a model_id (log_metric(model_id=...)) is
-- kept in the run's history as usual and also here, for the logged model's data.metrics and for
-- logged-model search filters and ordering on metrics.
CREATE TABLE logged_model_metrics (
    model_id VARCHAR(64) NOT NULL,
    metric_name VARCHAR(250) NOT NULL,
    metric_timestamp_ms BIGINT NOT NULL,
    metric_step BIGINT NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL,
    run_id VARCHAR(32) NOT NULL,
    dataset_name VARCHAR(500),
    dataset_digest VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX logged_model_metrics_model ON logged_model_metrics (model_id, metric_name, metric_step, metric_timestamp_ms);
