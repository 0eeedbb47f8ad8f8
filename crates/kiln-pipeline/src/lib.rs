//! kiln-pipeline: DVC-compatible pipelines (`shared/spec/pipelines.md`): `dvc.yaml` with
//! `${…}` interpolation, the stage graph, `dvc.lock` (schema 2.0), change detection (`status`)
//! and `repro`, on top of kiln-cache's hashing and cache; `metrics show` and the data behind
//! `plots show` ([`plots`]).

use std::path::PathBuf;

pub mod compare;
pub mod dvcyaml;
pub mod exp;
pub mod git;
pub mod lock;
pub mod metrics;
pub mod plots;
pub mod pyparams;
pub mod repro;
pub mod value;

pub use dvcyaml::Pipeline;
pub use repro::{ReproOptions, load_params_file, repro, status};

/// Set when the user interrupts (Ctrl-C; the binary's signal handler sets it): `repro` starts no
/// further stage, and a stage whose command was running records nothing (no lock entry, no
/// run-cache entry, no cached output). The commands get the terminal's signal themselves.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`INTERRUPTED`] is set.
#[must_use]
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Errors of pipelines, each naming the file, key or stage.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("`{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {message}", file.display(), if key.is_empty() { String::new() } else { format!(", key `{key}`") })]
    Invalid { file: PathBuf, key: String, message: String },
    /// [`PipelineError::Invalid`] in `dvc.yaml`, with the line of the key.
    #[error("{}:{line}, key `{key}`: {message}", file.display())]
    At { file: PathBuf, line: usize, key: String, message: String },
    #[error(transparent)]
    Cache(#[from] kiln_cache::CacheError),
    #[error("overlapping outputs: {a} and {b}")]
    Overlap { a: String, b: String },
    #[error("the pipeline has a cycle through stage '{0}'")]
    Cycle(String),
    #[error("no stage '{0}' in dvc.yaml")]
    UnknownStage(String),
    #[error("stage '{stage}': dependency `{path}` does not exist")]
    MissingDep { stage: String, path: String },
    #[error("params file `{file}` has no key `{key}`")]
    MissingParam { file: String, key: String },
    #[error("stage '{stage}' did not produce its output `{path}`")]
    MissingOut { stage: String, path: String },
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("interrupted: stopped stages recorded nothing (dvc.lock and the cache are as they were before them)")]
    Interrupted,
    #[error("a repro worker panicked")]
    Poisoned,
    #[error("failed to reproduce '{failed}' (the stages that do not depend on it ran)")]
    KeptGoing { failed: String },
    #[error("failed to reproduce '{stage}': failed to run: {cmd}, exited with {code}")]
    Failed { stage: String, cmd: String, code: String },
}
