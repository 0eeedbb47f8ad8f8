//! The `Store` trait: every tracking operation the REST layer calls, and nothing about SQL.
//! [`SqlStore`] (SQLite, PostgreSQL, MySQL through sqlx) is the implementation; the server holds
//! an `Arc<dyn Store>`, so a second implementation (an in-memory store for tests, a read-only
//! replica, a caching layer) slots in without touching a handler.
//!
//! The methods return boxed futures so the trait stays object-safe (`async fn` in a trait is
//! not, yet); one small allocation per call beside a database round trip. The trait and its
//! `SqlStore` impl are generated from one list of signatures, so a new operation is one line
//! here and cannot drift from the inherent method it forwards to.

use std::future::Future;
use std::pin::Pin;

use kiln_wire::{Experiment, KeyValue, Metric, MlflowError, ModelVersion, RegisteredModel, Run, RunInfo, ViewType};
use serde_json::Value;

use crate::{DatasetInput, NewLoggedModel, NewModelVersion, Page, SqlStore};

/// What every store operation returns: MLflow's error on failure.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MlflowError>> + Send + 'a>>;

macro_rules! store_trait {
    ($lt:lifetime; $( $(#[$doc:meta])* fn $name:ident(&self, $($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        /// A tracking store (see the module docs). Every method has MLflow's semantics and
        /// errors, as documented on [`SqlStore`]'s method of the same name.
        pub trait Store: Send + Sync {
            $( $(#[$doc])* fn $name<$lt>(&$lt self $(, $arg: $ty)*) -> StoreFuture<$lt, $ret>; )*
        }

        impl Store for SqlStore {
            $( fn $name<$lt>(&$lt self $(, $arg: $ty)*) -> StoreFuture<$lt, $ret> {
                Box::pin(SqlStore::$name(self $(, $arg)*))
            } )*
        }
    };
}

store_trait! { 'a;
    // ---- experiments
    /// Creates an experiment, returns its id.
    fn create_experiment(&self, name: &'a str, artifact_location: Option<&'a str>, tags: &'a [KeyValue]) -> String;
    fn get_experiment(&self, id: &'a str) -> Experiment;
    fn get_experiment_by_name(&self, name: &'a str) -> Experiment;
    fn search_experiments(
        &self,
        view: ViewType,
        filter: &'a str,
        order_by: &'a [String],
        max_results: i64,
        page_token: Option<&'a str>,
    ) -> Page<Experiment>;
    fn delete_experiment(&self, id: &'a str) -> ();
    fn restore_experiment(&self, id: &'a str) -> ();
    fn rename_experiment(&self, id: &'a str, new_name: &'a str) -> ();
    fn set_experiment_tag(&self, id: &'a str, tag: &'a KeyValue) -> ();
    fn delete_experiment_tag(&self, id: &'a str, key: &'a str) -> ();
    // ---- runs
    fn create_run(
        &self,
        experiment_id: Option<&'a str>,
        user_id: &'a str,
        run_name: Option<&'a str>,
        start_time: Option<i64>,
        tags: &'a [KeyValue],
    ) -> Run;
    fn get_run(&self, run_id: &'a str) -> Run;
    fn update_run(&self, run_id: &'a str, status: Option<&'a str>, end_time: Option<i64>, run_name: Option<&'a str>) -> RunInfo;
    fn delete_run(&self, run_id: &'a str) -> ();
    fn restore_run(&self, run_id: &'a str) -> ();
    /// Metrics, params and tags of one run in one transaction.
    fn log_batch(&self, run_id: &'a str, metrics: &'a [Metric], params: &'a [KeyValue], tags: &'a [KeyValue]) -> ();
    fn delete_tag(&self, run_id: &'a str, key: &'a str) -> ();
    fn metric_history(&self, run_id: &'a str, key: &'a str, max_results: Option<i64>, page_token: Option<&'a str>) -> Page<kiln_wire::MetricPoint>;
    fn search_runs(
        &self,
        experiment_ids: &'a [String],
        filter: &'a str,
        order_by: &'a [String],
        view: ViewType,
        max_results: i64,
        page_token: Option<&'a str>,
    ) -> Page<Run>;
    fn log_inputs(&self, run_id: &'a str, datasets: &'a [DatasetInput], models: &'a [String]) -> ();
    fn log_run_outputs(&self, run_id: &'a str, models: &'a [(String, i64)]) -> ();
    // ---- logged models (MLflow 3), as their JSON
    fn create_logged_model(&self, m: &'a NewLoggedModel<'a>) -> Value;
    fn get_logged_model(&self, id: &'a str) -> Value;
    fn finalize_logged_model(&self, id: &'a str, status: &'a str) -> Value;
    fn delete_logged_model(&self, id: &'a str) -> ();
    fn set_logged_model_tags(&self, id: &'a str, tags: &'a [KeyValue]) -> Value;
    fn delete_logged_model_tag(&self, id: &'a str, key: &'a str) -> ();
    fn log_logged_model_params(&self, id: &'a str, params: &'a [KeyValue]) -> ();
    fn search_logged_models(
        &self,
        experiment_ids: &'a [String],
        filter: &'a str,
        datasets: &'a [crate::search::DatasetRef],
        order_by: &'a [crate::search::ModelOrder],
        max_results: i64,
        page_token: Option<&'a str>,
    ) -> Page<Value>;
    // ---- model registry
    fn create_registered_model(&self, name: &'a str, tags: &'a [KeyValue], description: Option<&'a str>) -> RegisteredModel;
    fn get_registered_model(&self, name: &'a str) -> RegisteredModel;
    fn rename_registered_model(&self, name: &'a str, new_name: &'a str) -> RegisteredModel;
    fn update_registered_model(&self, name: &'a str, description: Option<&'a str>) -> RegisteredModel;
    fn delete_registered_model(&self, name: &'a str) -> ();
    fn search_registered_models(
        &self,
        filter: &'a str,
        max_results: i64,
        order_by: &'a [String],
        page_token: Option<&'a str>,
    ) -> Page<RegisteredModel>;
    fn get_latest_versions(&self, name: &'a str, stages: &'a [String]) -> Vec<ModelVersion>;
    fn set_registered_model_tag(&self, name: &'a str, tag: &'a KeyValue) -> ();
    fn delete_registered_model_tag(&self, name: &'a str, key: &'a str) -> ();
    fn set_registered_model_alias(&self, name: &'a str, alias: &'a str, version: &'a str) -> ();
    fn delete_registered_model_alias(&self, name: &'a str, alias: &'a str) -> ();
    fn get_model_version_by_alias(&self, name: &'a str, alias: &'a str) -> ModelVersion;
    fn create_model_version(&self, v: &'a NewModelVersion<'a>) -> ModelVersion;
    fn get_model_version(&self, name: &'a str, version: &'a str) -> ModelVersion;
    fn update_model_version(&self, name: &'a str, version: &'a str, description: Option<&'a str>) -> ModelVersion;
    fn delete_model_version(&self, name: &'a str, version: &'a str) -> ();
    fn search_model_versions(
        &self,
        filter: &'a str,
        max_results: i64,
        order_by: &'a [String],
        page_token: Option<&'a str>,
    ) -> Page<ModelVersion>;
    fn get_model_version_download_uri(&self, name: &'a str, version: &'a str) -> String;
    fn transition_model_version_stage(&self, name: &'a str, version: &'a str, stage: &'a str, archive_existing: bool) -> ModelVersion;
    fn set_model_version_tag(&self, name: &'a str, version: &'a str, tag: &'a KeyValue) -> ();
    fn delete_model_version_tag(&self, name: &'a str, version: &'a str, key: &'a str) -> ();
}
