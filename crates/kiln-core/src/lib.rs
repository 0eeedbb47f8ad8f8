//! kiln-core: the small vocabulary every other kiln crate shares.
//!
//! - [`Table`]: named columns of numbers ([`Column::Numeric`], `NaN` = missing) or strings
//!   ([`Column::Text`], `None` = missing). It is the one in-memory table type; CSV fills it today
//!   and a Parquet reader can fill the same type later without touching the engine.
//! - [`csv`]: reading a CSV file with a header into a [`Table`], whole or in chunks
//!   ([`csv::CsvChunks`]) so batch scoring can stream a file larger than memory. Errors name the
//!   file, the line and the column.
//! - [`fs`]: writing a file atomically (temp file and rename), for every output kiln writes.
//! - [`rng::Rng`]: the seeded random stream behind splits, shuffles and bootstraps.
//! - [`uri`]: model and artifact URIs ([`uri::ModelUri`]: `runs:/`, `models:/`,
//!   `mlflow-artifacts:/`, `file://`, `s3://`, plain paths), parsed once for every command.
//!
//! Keep this crate small: ids, URIs, the table type and file plumbing, nothing that belongs to one concern.

pub mod csv;
pub mod fs;
pub mod rng;
pub mod table;
pub mod uri;

pub use table::{Column, ColumnKind, Table, TableError};
