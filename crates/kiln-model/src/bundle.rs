//! The model bundle: a directory with an MLflow-style `MLmodel` and the fitted pipeline.
//!
//! Layout (format version 1):
//!
//! ```text
//! model/
//!   MLmodel                     YAML, MLflow keys; the `kiln` flavor names the data file, its
//!                               format version and its BLAKE3 checksum
//!   model.json                  {"format": "kiln-pipeline", "format_version": 1, "pipeline": …}
//!   input_example.json          a few training rows, pandas "split" orient
//!   serving_input_example.json  the same rows as a ready `/invocations` body
//! ```
//!
//! `model.json` is plain data (numbers, strings, arrays): loading it runs no code, unlike
//! pickle or joblib. A bundle that is truncated, edited (checksum mismatch) or written by a
//! newer kiln is rejected with an error that says which. Saving writes into a temporary
//! directory beside the target and renames it into place, so a killed `kiln train` never
//! leaves half a bundle. The same pipeline and creation time give byte-identical files: the
//! model UUID is derived from the content hash.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_core::Table;
use serde::{Deserialize, Serialize};

use crate::pipeline::{InputKind, Pipeline, Task};

/// The `model.json` format this kiln writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the data file inside a bundle.
pub const DATA_FILE: &str = "model.json";
const FORMAT_NAME: &str = "kiln-pipeline";
const MLMODEL: &str = "MLmodel";
/// Rows kept as the bundle's input example.
const EXAMPLE_ROWS: usize = 5;

/// Errors saving or loading a bundle. Each names the bundle path.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("`{path}` is not a model bundle: it has no MLmodel file")]
    NoMlmodel { path: PathBuf },
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the bundle at `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: the MLmodel file is not valid YAML: {message}")]
    BadMlmodel { path: PathBuf, message: String },
    #[error("`{path}` is not a kiln model: its MLmodel has no `kiln` flavor (flavors: {flavors})")]
    NotKiln { path: PathBuf, flavors: String },
    #[error("`{path}` was written by a newer kiln (format version {found}); this kiln reads up to version {supported}")]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("`{path}`: the data file name `{name}` is not a plain file name inside the bundle")]
    UnsafeDataPath { path: PathBuf, name: String },
    #[error("`{path}` is corrupted or was modified: its checksum does not match the one in MLmodel")]
    Checksum { path: PathBuf },
    #[error("`{path}` is corrupted: {message}")]
    BadData { path: PathBuf, message: String },
    #[error("cannot serialize the model: {0}")]
    Serialize(String),
}

/// The `kiln` flavor in `MLmodel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KilnFlavor {
    pub format_version: u32,
    pub kiln_version: String,
    /// The data file, relative to the bundle.
    pub data: String,
    /// BLAKE3 of the data file, hex.
    pub data_blake3: String,
    /// scikit-learn's name of the estimator, for people reading the file.
    pub estimator: String,
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// MLflow's signature: JSON strings describing the input and output columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: String,
    pub outputs: String,
    pub params: Option<String>,
}

/// Where the input example lives (MLflow's `saved_input_example_info`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputExampleInfo {
    pub artifact_path: String,
    pub pandas_orient: String,
    pub serving_input_path: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The `MLmodel` file. Unknown keys written by MLflow are kept in `extra` on read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlModel {
    pub artifact_path: String,
    pub flavors: BTreeMap<String, serde_json::Value>,
    pub model_size_bytes: u64,
    pub model_uuid: String,
    pub utc_time_created: String,
    pub signature: Signature,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_input_example_info: Option<InputExampleInfo>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct DataFile {
    format: String,
    format_version: u32,
    pipeline: Pipeline,
}

/// A loaded model: its `MLmodel` and its pipeline.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    pub mlmodel: MlModel,
    pub flavor: KilnFlavor,
    pub pipeline: Pipeline,
}

/// Options for [`save`].
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Creation time as microseconds since the Unix epoch (UTC); callers pass the clock or
    /// `SOURCE_DATE_EPOCH` for reproducible bundles.
    pub created_unix_micros: i64,
    /// Input rows whose first few become the input example.
    pub example: Option<Table>,
}

fn format_utc(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{frac:06}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// One column of an MLflow column-based signature, keys in MLflow's order.
#[derive(Serialize)]
struct ColSpec<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    required: bool,
}

fn signature_of(p: &Pipeline) -> Result<Signature, BundleError> {
    let inputs: Vec<ColSpec<'_>> = p
        .inputs
        .iter()
        .map(|c| {
            let ty = match c.kind {
                InputKind::Numeric => "double",
                InputKind::Categorical | InputKind::Text => "string",
            };
            ColSpec { ty, name: Some(&c.name), required: true }
        })
        .collect();
    let out_ty = match p.task {
        Task::Classification { .. } => "string",
        Task::Regression { .. } => "double",
    };
    let outputs = [ColSpec { ty: out_ty, name: None, required: true }];
    let json = |v: &[ColSpec<'_>]| serde_json::to_string(v).map_err(|e| BundleError::Serialize(e.to_string()));
    Ok(Signature { inputs: json(&inputs)?, outputs: json(&outputs)?, params: None })
}

/// The first rows of `table`'s input columns in pandas "split" orient.
fn example_json(p: &Pipeline, table: &Table) -> serde_json::Value {
    use serde_json::Value;
    let n = table.n_rows().min(EXAMPLE_ROWS);
    // Each input paired with its column, so a column the table lacks cannot shift the kinds.
    let cols: Vec<(&str, InputKind, &kiln_core::Column)> =
        p.inputs.iter().filter_map(|c| table.column(&c.name).ok().map(|col| (c.name.as_str(), c.kind, col))).collect();
    let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
    let data: Vec<Value> = (0..n)
        .map(|i| {
            cols.iter()
                .map(|&(_, kind, col)| match (kind, col) {
                    (_, kiln_core::Column::Numeric(v)) => number(v[i]),
                    (InputKind::Numeric, kiln_core::Column::Text(v)) => {
                        v[i].as_deref().and_then(kiln_core::table::parse_number).map_or(Value::Null, number)
                    }
                    (_, kiln_core::Column::Text(v)) => v[i].clone().map_or(Value::Null, Value::String),
                })
                .collect()
        })
        .collect();
    let columns: Vec<&str> = cols.iter().map(|c| c.0).collect();
    serde_json::json!({"columns": columns, "data": data})
}

/// Writes one file of the staged bundle. No fsync: the bundle becomes visible only through the
/// directory rename in [`save`], which is what makes an interrupted `kiln train` harmless; forcing
/// a large forest's data to disk doubled the time to save it, and a power cut is outside what
/// this guards against (as with cargo's and uv's own atomic writes).
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<u64, BundleError> {
    let path = dir.join(name);
    let mut f = fs::File::create(&path).map_err(|source| BundleError::Write { path: path.clone(), source })?;
    f.write_all(bytes).map_err(|source| BundleError::Write { path, source })?;
    Ok(bytes.len() as u64)
}

/// The bytes of `model.json` for a pipeline (deterministic: no maps with random order).
///
/// # Errors
/// A value that JSON cannot hold.
pub fn data_bytes(pipeline: &Pipeline) -> Result<Vec<u8>, BundleError> {
    let doc = DataFile { format: FORMAT_NAME.to_owned(), format_version: FORMAT_VERSION, pipeline: pipeline.clone() };
    serde_json::to_vec(&doc).map_err(|e| BundleError::Serialize(e.to_string()))
}

/// Writes `pipeline` as a bundle at `dest`, replacing any bundle there, atomically.
///
/// # Errors
/// The directory cannot be written.
pub fn save(dest: &Path, pipeline: &Pipeline, opts: &SaveOptions) -> Result<(), BundleError> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|source| BundleError::Write { path: parent.to_owned(), source })?;
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-model-")
        .tempdir_in(parent)
        .map_err(|source| BundleError::Write { path: parent.to_owned(), source })?;

    let data = data_bytes(pipeline)?;
    let hash = blake3::hash(&data);
    let mut size = write_file(tmp.path(), DATA_FILE, &data)?;
    let mut info = None;
    if let Some(table) = &opts.example {
        let example = example_json(pipeline, table);
        let serving = serde_json::json!({ "dataframe_split": example });
        size += write_file(tmp.path(), "input_example.json", example.to_string().as_bytes())?;
        size += write_file(tmp.path(), "serving_input_example.json", serving.to_string().as_bytes())?;
        info = Some(InputExampleInfo {
            artifact_path: "input_example.json".into(),
            pandas_orient: "split".into(),
            serving_input_path: "serving_input_example.json".into(),
            kind: "dataframe".into(),
        });
    }
    let (task, classes) = match &pipeline.task {
        Task::Classification { classes, .. } => ("classification", Some(classes.clone())),
        Task::Regression { .. } => ("regression", None),
    };
    let flavor = KilnFlavor {
        format_version: FORMAT_VERSION,
        kiln_version: env!("CARGO_PKG_VERSION").to_owned(),
        data: DATA_FILE.to_owned(),
        data_blake3: hash.to_hex().to_string(),
        estimator: pipeline.estimator.sklearn_name().to_owned(),
        task: task.to_owned(),
        classes,
    };
    let bytes = hash.as_bytes();
    let uuid: String = bytes[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut flavors = BTreeMap::new();
    flavors
        .insert("kiln".to_owned(), serde_json::to_value(&flavor).map_err(|e| BundleError::Serialize(e.to_string()))?);
    let ml = MlModel {
        artifact_path: "model".into(),
        flavors,
        model_size_bytes: size,
        model_uuid: uuid,
        utc_time_created: format_utc(opts.created_unix_micros),
        signature: signature_of(pipeline)?,
        saved_input_example_info: info,
        extra: BTreeMap::new(),
    };
    let mut yaml = serde_saphyr::to_string(&ml).map_err(|e| BundleError::Serialize(e.to_string()))?;
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    write_file(tmp.path(), MLMODEL, yaml.as_bytes())?;

    // Swap into place: the old bundle (if any) is moved aside first, because a directory
    // cannot be renamed over a non-empty one.
    let staged = tmp.keep();
    let old = dest.exists().then(|| parent.join(format!(".kiln-model-old-{}", std::process::id())));
    if let Some(old) = &old {
        let _ = fs::remove_dir_all(old);
        fs::rename(dest, old).map_err(|source| BundleError::Write { path: dest.to_owned(), source })?;
    }
    if let Err(source) = fs::rename(&staged, dest) {
        if let Some(old) = &old {
            let _ = fs::rename(old, dest);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(BundleError::Write { path: dest.to_owned(), source });
    }
    if let Some(old) = old {
        let _ = fs::remove_dir_all(old);
    }
    Ok(())
}

/// Reads and verifies the bundle at `dir`.
///
/// # Errors
/// A missing or unreadable `MLmodel`, no `kiln` flavor, a newer format, a checksum mismatch, or
/// data that does not parse.
pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let ml_path = dir.join(MLMODEL);
    if !ml_path.is_file() {
        return Err(BundleError::NoMlmodel { path: dir.to_owned() });
    }
    let text = fs::read_to_string(&ml_path).map_err(|source| BundleError::Read { path: ml_path.clone(), source })?;
    // The flavors first: a model MLflow logged (sklearn, no `kiln` flavor) has keys kiln's
    // `MlModel` does not describe (an ndarray input example, no signature), and its user needs to
    // hear which flavors it has, not which key kiln missed.
    #[derive(Deserialize)]
    struct FlavorsOnly {
        #[serde(default)]
        flavors: BTreeMap<String, serde::de::IgnoredAny>,
    }
    if let Ok(f) = serde_saphyr::from_str::<FlavorsOnly>(&text)
        && !f.flavors.contains_key("kiln")
    {
        return Err(BundleError::NotKiln {
            path: dir.to_owned(),
            flavors: f.flavors.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let mlmodel: MlModel = serde_saphyr::from_str_with_options(&text, serde_saphyr::options! { strict_booleans: true })
        .map_err(|e| BundleError::BadMlmodel { path: ml_path.clone(), message: e.to_string() })?;
    let raw = mlmodel.flavors.get("kiln").ok_or_else(|| BundleError::NotKiln {
        path: dir.to_owned(),
        flavors: mlmodel.flavors.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    // Check the version before the rest of the flavor, so a newer layout still gets the
    // "newer kiln" message rather than a parse error.
    let found = raw.get("format_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if found > u64::from(FORMAT_VERSION) {
        return Err(BundleError::NewerFormat {
            path: dir.to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    let flavor: KilnFlavor = serde_json::from_value(raw.clone())
        .map_err(|e| BundleError::BadMlmodel { path: ml_path.clone(), message: format!("kiln flavor: {e}") })?;
    let name = &flavor.data;
    let plain = Path::new(name).components().count() == 1
        && matches!(Path::new(name).components().next(), Some(std::path::Component::Normal(_)));
    if !plain {
        return Err(BundleError::UnsafeDataPath { path: dir.to_owned(), name: name.clone() });
    }
    let data_path = dir.join(name);
    let data = fs::read(&data_path).map_err(|source| BundleError::Read { path: data_path.clone(), source })?;
    if blake3::hash(&data).to_hex().as_str() != flavor.data_blake3 {
        return Err(BundleError::Checksum { path: data_path });
    }
    let doc: DataFile = serde_json::from_slice(&data)
        .map_err(|e| BundleError::BadData { path: data_path.clone(), message: e.to_string() })?;
    if doc.format != FORMAT_NAME {
        return Err(BundleError::BadData { path: data_path, message: format!("unknown format `{}`", doc.format) });
    }
    if doc.format_version > FORMAT_VERSION {
        return Err(BundleError::NewerFormat {
            path: dir.to_owned(),
            found: doc.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(Bundle { path: dir.to_owned(), mlmodel, flavor, pipeline: doc.pipeline })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::{FittedEstimator, LinearRegressor};
    use crate::pipeline::InputColumn;
    use crate::preprocess::{NumericColumn, Step};

    fn pipeline() -> Pipeline {
        Pipeline {
            task: Task::Regression { target: "y".into() },
            inputs: vec![InputColumn { name: "x".into(), kind: InputKind::Numeric, optional: true }],
            steps: vec![Step::Numeric(NumericColumn { column: "x".into(), fill: Some(0.5), offset: 1.0, scale: 2.0 })],
            estimator: FittedEstimator::LinearRegression(LinearRegressor { coef: vec![3.0], intercept: 0.25 }),
        }
    }

    fn opts() -> SaveOptions {
        let t = Table::new(vec!["x".into()], vec![kiln_core::Column::Numeric(vec![1.0, 2.0])]).unwrap();
        SaveOptions { created_unix_micros: 1_700_000_000_123_456, example: Some(t) }
    }

    #[test]
    fn round_trip_and_byte_identical() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        save(&a, &pipeline(), &opts()).unwrap();
        save(&b, &pipeline(), &opts()).unwrap();
        for f in ["MLmodel", "model.json", "input_example.json", "serving_input_example.json"] {
            assert_eq!(fs::read(a.join(f)).unwrap(), fs::read(b.join(f)).unwrap(), "{f}");
        }
        let loaded = load(&a).unwrap();
        assert_eq!(loaded.pipeline, pipeline());
        assert_eq!(loaded.mlmodel.utc_time_created, "2023-11-14 22:13:20.123456");
        assert_eq!(loaded.mlmodel.signature.inputs, r#"[{"type":"double","name":"x","required":true}]"#);
        // Saving over an existing bundle replaces it and leaves no temp directories.
        save(&a, &pipeline(), &opts()).unwrap();
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn tampered_truncated_newer_and_foreign_bundles_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("m");
        save(&a, &pipeline(), &opts()).unwrap();
        let data = fs::read(a.join("model.json")).unwrap();

        fs::write(a.join("model.json"), &data[..data.len() / 2]).unwrap();
        assert!(matches!(load(&a), Err(BundleError::Checksum { .. })));

        let tampered = String::from_utf8(data.clone()).unwrap().replace("0.25", "9.25");
        fs::write(a.join("model.json"), tampered).unwrap();
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("corrupted or was modified"), "{err}");

        fs::write(a.join("model.json"), &data).unwrap();
        let ml = fs::read_to_string(a.join("MLmodel")).unwrap();
        fs::write(a.join("MLmodel"), ml.replace("format_version: 1", "format_version: 7")).unwrap();
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("newer kiln (format version 7)"), "{err}");

        fs::write(a.join("MLmodel"), ml.replace("data: model.json", "data: ../model.json")).unwrap();
        assert!(matches!(load(&a), Err(BundleError::UnsafeDataPath { .. })));

        fs::write(a.join("MLmodel"), "flavors:\n  sklearn: {pickled_model: model.pkl}\n").unwrap();
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("not a kiln model") && err.contains("flavors: sklearn"), "{err}");
        // What MLflow 3.17's sklearn flavor writes: the flavors are named, not a missing key.
        let mlflow = "artifact_path: mlflow-artifacts:/1/models/m-1/artifacts\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    pickled_model: model.skops\nmodel_uuid: m-1\nsaved_input_example_info:\n  artifact_path: input_example.json\n  type: ndarray\n";
        fs::write(a.join("MLmodel"), mlflow).unwrap();
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("flavors: python_function, sklearn"), "{err}");

        assert!(matches!(load(d.path()), Err(BundleError::NoMlmodel { .. })));
    }
}

#[cfg(test)]
mod yaml_tests {
    /// Python's PyYAML (which MLflow uses) reads YAML 1.1, where a bare `no` or `y` is a boolean;
    /// strings that look like that must come out quoted.
    #[test]
    fn yaml_1_1_booleans_are_quoted() {
        let text = serde_saphyr::to_string(&vec!["no", "y", "On", "ham"]).unwrap();
        for w in ["no", "y", "On"] {
            assert!(text.contains(&format!("\"{w}\"")) || text.contains(&format!("'{w}'")), "{text}");
        }
        assert!(text.contains("- ham"), "{text}");
    }
}
