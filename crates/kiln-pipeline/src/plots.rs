//! `plots show` (DVC 3's `dvc plots show`): which plots a pipeline defines, and their data.
//!
//! Definitions come from two places, as in DVC: the top-level `plots:` list of `dvc.yaml` (a
//! path, a directory, or `id: {x, y, template, …}` where `y` may map data files to columns) and
//! the stages' `plots:` outputs with their properties. [`definitions`] reads both;
//! [`collect`] loads the data files (CSV/TSV with a header, JSON or YAML: a list of records or
//! a mapping holding such lists) and resolves the axes as DVC's vega converter does: no `x`
//! means the record index (`step`), no `y` means the last field of the first record. Images
//! (`png`, `jpg`, `jpeg`, `gif`, `svg`) are shown as they are. [`Plot::chart`] turns a plot
//! into what a template draws (lines, points, a confusion matrix, horizontal bars); the
//! drawing itself is kiln-train's. [`html`] is the static page that shows the rendered images.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::dvcyaml::Pipeline;
use crate::repro::norm;
use crate::value::{Value, from_yaml, python_float};

/// The templates DVC ships; kiln draws each of them (no custom template files).
pub const TEMPLATES: [&str; 9] = [
    "simple",
    "linear",
    "confusion",
    "confusion_normalized",
    "scatter",
    "scatter_jitter",
    "smooth",
    "bar_horizontal_sorted",
    "bar_horizontal",
];

/// File extensions shown as images, as they are (DVC's `ImageRenderer.EXTENSIONS`).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "gif", "png", "svg"];

/// The field DVC adds as `x` when a plot has none: the record's index.
pub const INDEX_FIELD: &str = "step";

/// Errors reading plot definitions or their data; each names the file (and line, plot or
/// column).
#[derive(Debug, thiserror::Error)]
pub enum PlotsError {
    #[error("{}, key `{key}`: {message}", file.display())]
    Definition { file: PathBuf, key: String, message: String },
    #[error(
        "{}, key `{key}`: unknown plot template '{name}' (kiln draws DVC's templates: {})",
        file.display(),
        TEMPLATES.join(", ")
    )]
    UnknownTemplate { file: PathBuf, key: String, name: String },
    #[error("cannot read the plot file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}, line {line}: {message}", path.display())]
    Csv { path: PathBuf, line: u64, message: String },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("'{file}' - file type error: plots read JSON, YAML, CSV and TSV files (and show {} images as they are)", IMAGE_EXTENSIONS.join("/"))]
    FileType { file: String },
    #[error("plot '{plot}': `{file}` has no field '{field}' (its fields: {})", found.join(", "))]
    MissingField { plot: String, file: String, field: String, found: Vec<String> },
    #[error("plot '{plot}': {xs} x and {ys} y data sources; with several x sources there must be one per y source")]
    AxisCount { plot: String, xs: usize, ys: usize },
    #[error("plot '{}': cannot join '{}' from `{}` ({} records) and '{}' from `{}` ({} records): they must have the same length", .0.plot, .0.x_field, .0.x_file, .0.x_len, .0.y_field, .0.y_file, .0.y_len)]
    Join(Box<JoinMismatch>),
}

/// An `x` file and a `y` file of different lengths.
#[derive(Debug)]
pub struct JoinMismatch {
    pub plot: String,
    pub x_file: String,
    pub x_field: String,
    pub x_len: usize,
    pub y_file: String,
    pub y_field: String,
    pub y_len: usize,
}

/// A plot template (`template:`; `linear` when none is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Linear,
    Simple,
    Smooth,
    Scatter,
    ScatterJitter,
    Confusion,
    ConfusionNormalized,
    BarHorizontal,
    BarHorizontalSorted,
}

impl Template {
    /// The template called `name` (DVC's names), if kiln knows it.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "linear" => Self::Linear,
            "simple" => Self::Simple,
            "smooth" => Self::Smooth,
            "scatter" => Self::Scatter,
            "scatter_jitter" => Self::ScatterJitter,
            "confusion" => Self::Confusion,
            "confusion_normalized" => Self::ConfusionNormalized,
            "bar_horizontal" => Self::BarHorizontal,
            "bar_horizontal_sorted" => Self::BarHorizontalSorted,
            _ => return None,
        })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Simple => "simple",
            Self::Smooth => "smooth",
            Self::Scatter => "scatter",
            Self::ScatterJitter => "scatter_jitter",
            Self::Confusion => "confusion",
            Self::ConfusionNormalized => "confusion_normalized",
            Self::BarHorizontal => "bar_horizontal",
            Self::BarHorizontalSorted => "bar_horizontal_sorted",
        }
    }
}

/// An axis as written: one field, several fields (`y` only), or fields per data file.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    Field(String),
    Fields(Vec<String>),
    /// Data file (relative to the repository root) → its fields.
    Files(Vec<(String, Vec<String>)>),
}

impl Axis {
    /// Every (file, field) pair of a per-file axis.
    fn file_fields(&self) -> Vec<(String, String)> {
        match self {
            Self::Files(files) => {
                files.iter().flat_map(|(f, fields)| fields.iter().map(move |x| (f.clone(), x.clone()))).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// A plot's properties (DVC's `PLOT_PROPS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props {
    pub template: Option<Template>,
    pub x: Option<Axis>,
    pub y: Option<Axis>,
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    pub title: Option<String>,
    /// CSV/TSV files have a header line (default); without one the fields are `0`, `1`, ….
    pub header: Option<bool>,
}

/// One plot definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The plot's id: its data file (relative to the repository root) or, for a top-level
    /// definition whose `y` names files, the id as written.
    pub id: String,
    pub props: Props,
}

impl Definition {
    /// The files the plot reads (DVC's `infer_data_sources`): the `y` files (or the id), then
    /// the first `x` file.
    #[must_use]
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.props.y {
            Some(Axis::Files(files)) => files.iter().map(|(f, _)| f.clone()).collect(),
            _ => vec![self.id.clone()],
        };
        if let Some(Axis::Files(files)) = &self.props.x
            && let Some((f, _)) = files.first()
        {
            out.push(f.clone());
        }
        let mut seen = Vec::new();
        out.retain(|f| {
            let new = !seen.contains(f);
            seen.push(f.clone());
            new
        });
        out
    }

    /// Whether the plot is an image file shown as it is.
    #[must_use]
    pub fn is_image(&self) -> bool {
        is_image(&self.id)
    }
}

fn is_image(path: &str) -> bool {
    extension(path).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()).map(|(_, e)| e.to_ascii_lowercase())
}

/// Parses a plot's properties. `top_level` definitions allow only plot keys (DVC's schema);
/// a stage output's flags also carry `cache`, `persist`, … which are not plot properties.
fn parse_props(v: &Value, top_level: bool, file: &Path, key: &str) -> Result<Props, PlotsError> {
    let bad = |k: &str, message: &str| PlotsError::Definition {
        file: file.to_owned(),
        key: format!("{key}.{k}"),
        message: message.to_owned(),
    };
    let mut props = Props::default();
    let Value::Map(m) = v else {
        return match v {
            Value::Null | Value::Bool(_) => Ok(props),
            _ => Err(PlotsError::Definition {
                file: file.to_owned(),
                key: key.to_owned(),
                message: "plot properties must be a mapping".into(),
            }),
        };
    };
    let text = |k: &str, v: &Value| -> Result<String, PlotsError> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(bad(k, "must be text")),
        }
    };
    let fields = |k: &str, v: &Value| -> Result<Vec<String>, PlotsError> {
        match v {
            Value::Str(s) => Ok(vec![s.clone()]),
            Value::List(l) => l.iter().map(|x| text(k, x)).collect(),
            _ => Err(bad(k, "must be a field name or a list of them")),
        }
    };
    for (k, v) in m {
        match k.as_str() {
            "template" => {
                let name = text(k, v)?;
                props.template = Some(Template::parse(&name).ok_or_else(|| PlotsError::UnknownTemplate {
                    file: file.to_owned(),
                    key: format!("{key}.template"),
                    name,
                })?);
            }
            "x" | "y" => {
                let axis = match v {
                    Value::Str(s) => Axis::Field(s.clone()),
                    Value::List(_) if k == "y" => Axis::Fields(fields(k, v)?),
                    Value::Map(files) => {
                        let files = files
                            .iter()
                            .map(|(f, v)| {
                                let fs = fields(k, v)?;
                                if k == "x" && fs.len() != 1 {
                                    return Err(bad(k, "maps a data file to one field"));
                                }
                                Ok((norm(".", f), fs))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Axis::Files(files)
                    }
                    _ => {
                        return Err(bad(
                            k,
                            if k == "x" {
                                "must be a field name or a mapping of a data file to a field"
                            } else {
                                "must be a field name, a list of them, or a mapping of data files to fields"
                            },
                        ));
                    }
                };
                if k == "x" {
                    props.x = Some(axis);
                } else {
                    props.y = Some(axis);
                }
            }
            "x_label" => props.x_label = Some(text(k, v)?),
            "y_label" => props.y_label = Some(text(k, v)?),
            "title" => props.title = Some(text(k, v)?),
            "header" if !top_level => match v {
                Value::Bool(b) => props.header = Some(*b),
                _ => return Err(bad(k, "must be true or false")),
            },
            _ if top_level => return Err(bad(k, "unknown plot property")),
            _ => {}
        }
    }
    Ok(props)
}

/// Files under `dir` (relative to `root`), sorted, recursively; `None` if `rel` is no directory.
fn files_under(root: &Path, rel: &str) -> Option<Vec<String>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else { return };
        let mut names: Vec<String> =
            entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            let child = if rel.is_empty() { n } else { format!("{rel}/{n}") };
            if root.join(&child).is_dir() {
                walk(root, &child, out);
            } else {
                out.push(child);
            }
        }
    }
    if !root.join(rel).is_dir() {
        return None;
    }
    let mut out = Vec::new();
    walk(root, rel, &mut out);
    Some(out)
}

/// Adds the definition of `path` (a file, or every file of a directory) to `out`; a later
/// definition of the same id overrides the earlier one's properties key by key (DVC merges).
fn add_path(root: &Path, path: String, props: &Props, out: &mut Vec<Definition>) {
    let paths = files_under(root, &path).unwrap_or_else(|| vec![path]);
    for id in paths {
        push_merged(out, Definition { id, props: props.clone() });
    }
}

fn push_merged(out: &mut Vec<Definition>, d: Definition) {
    if let Some(e) = out.iter_mut().find(|e| e.id == d.id) {
        let p = &mut e.props;
        let n = d.props;
        p.template = n.template.or(p.template);
        p.x = n.x.or(p.x.take());
        p.y = n.y.or(p.y.take());
        p.x_label = n.x_label.or(p.x_label.take());
        p.y_label = n.y_label.or(p.y_label.take());
        p.title = n.title.or(p.title.take());
        p.header = n.header.or(p.header);
    } else {
        out.push(d);
    }
}

/// The pipeline's plot definitions in DVC's order: the top-level `plots:` first, then the
/// stages' `plots:` outputs. When a top-level id is also a stage's plot output, the top-level
/// one is called `dvc.yaml::<id>` (DVC's `get_plot_id`).
///
/// # Errors
/// A malformed definition or an unknown template, naming `dvc.yaml` and the key.
pub fn definitions(pipeline: &Pipeline) -> Result<Vec<Definition>, PlotsError> {
    let root = &pipeline.dir;
    let file = root.join("dvc.yaml");
    let mut top = Vec::new();
    for (i, item) in pipeline.plots.iter().enumerate() {
        let key = format!("plots[{i}]");
        match item {
            Value::Str(path) => add_path(root, norm(".", path), &Props::default(), &mut top),
            Value::Map(m) if m.len() == 1 => {
                let (id, props) = &m[0];
                let key = format!("plots[{i}].{id}");
                let props = parse_props(props, true, &file, &key)?;
                if matches!(props.y, Some(Axis::Files(_))) {
                    push_merged(&mut top, Definition { id: id.clone(), props });
                } else {
                    add_path(root, norm(".", id), &props, &mut top);
                }
            }
            _ => {
                return Err(PlotsError::Definition {
                    file,
                    key,
                    message: "each plot is a path or a mapping of one plot id to its properties".into(),
                });
            }
        }
    }
    let mut outs = Vec::new();
    for stage in &pipeline.stages {
        for (path, flags) in &stage.plots {
            let key = format!("stages.{}.plots.{path}", stage.name);
            let props = parse_props(flags, false, &file, &key)?;
            add_path(root, norm(&stage.wdir, path), &props, &mut outs);
        }
    }
    for d in &mut top {
        if outs.iter().any(|o| o.id == d.id) {
            d.id = format!("dvc.yaml::{}", d.id);
        }
    }
    top.extend(outs);
    Ok(top)
}

/// One record of a data file: its fields in file order.
pub type Record = Vec<(String, Value)>;

fn field<'a>(r: &'a Record, name: &str) -> Option<&'a Value> {
    r.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Reads a CSV/TSV file as DVC's `csv.DictReader` does: one record per line after the header,
/// values as text. Unlike DVC, a line with more or fewer fields than the header is an error.
fn read_sv(path: &Path, text: &str, delimiter: u8, header: bool) -> Result<Vec<Record>, PlotsError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut names: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| PlotsError::Csv {
            path: path.to_owned(),
            line: e.position().map_or(0, csv::Position::line),
            message: e.to_string(),
        })?;
        let line = row.position().map_or(0, csv::Position::line);
        if row.iter().all(str::is_empty) {
            continue;
        }
        let Some(names) = &names else {
            names = Some(if header {
                row.iter().map(str::to_owned).collect()
            } else {
                let n: Vec<String> = (0..row.len()).map(|i| i.to_string()).collect();
                out.push(n.iter().cloned().zip(row.iter().map(|v| Value::Str(v.to_owned()))).collect());
                n
            });
            continue;
        };
        if row.len() != names.len() {
            return Err(PlotsError::Csv {
                path: path.to_owned(),
                line,
                message: format!(
                    "{} field{}, but the {} has {}",
                    row.len(),
                    if row.len() == 1 { "" } else { "s" },
                    if header { "header" } else { "first line" },
                    names.len()
                ),
            });
        }
        out.push(names.iter().cloned().zip(row.iter().map(|v| Value::Str(v.to_owned()))).collect());
    }
    Ok(out)
}

/// A loaded data file: CSV/TSV become a list of records; JSON/YAML stay as written.
fn load_data(root: &Path, rel: &str, header: bool) -> Result<Option<Value>, PlotsError> {
    let path = root.join(rel);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| PlotsError::Parse { path: path.clone(), message: "the file is not UTF-8 text".into() })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PlotsError::Io { path, source }),
    };
    let ext = extension(rel).unwrap_or_default();
    let records = match ext.as_str() {
        "csv" => read_sv(&path, &text, b',', header)?,
        "tsv" => read_sv(&path, &text, b'\t', header)?,
        "json" | "yaml" | "yml" => {
            return from_yaml(&text).map(Some).map_err(|e| PlotsError::Parse { path, message: e.to_string() });
        }
        _ => return Err(PlotsError::FileType { file: rel.to_owned() }),
    };
    Ok(Some(Value::List(records.into_iter().map(Value::Map).collect())))
}

/// The lists of a document (DVC's `_lists`): the document itself if it is a list, else the
/// lists among its values, nested mappings searched depth-first.
fn lists(v: &Value) -> Vec<&Vec<Value>> {
    match v {
        Value::List(l) => vec![l],
        Value::Map(m) => m
            .iter()
            .flat_map(|(_, v)| match v {
                Value::Map(_) => lists(v),
                Value::List(l) => vec![l],
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The records of a document (DVC's `get_datapoints`): every list whose items are mappings with
/// the same keys, merged index by index.
#[must_use]
pub fn datapoints(doc: &Value) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for l in lists(doc) {
        let maps: Option<Vec<&Vec<(String, Value)>>> =
            l.iter().map(|v| if let Value::Map(m) = v { Some(m) } else { None }).collect();
        let Some(maps) = maps else { continue };
        let Some(first) = maps.first() else { continue };
        let same = maps.iter().all(|m| m.iter().all(|(k, _)| first.iter().any(|(f, _)| f == k)));
        if !same {
            continue;
        }
        for (i, m) in maps.iter().enumerate() {
            if out.len() <= i {
                out.push(Vec::new());
            }
            for (k, v) in *m {
                match out[i].iter_mut().find(|(e, _)| e == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => out[i].push((k.clone(), v.clone())),
                }
            }
        }
    }
    out
}

/// The field DVC takes as `y` when none is given: the last key of the first record of the
/// first list of mappings.
fn inferred_y(doc: &Value) -> Option<String> {
    lists(doc).into_iter().find_map(|l| {
        let all_maps = l.iter().all(|v| matches!(v, Value::Map(_)));
        match l.first() {
            Some(Value::Map(m)) if all_maps => m.last().map(|(k, _)| k.clone()),
            _ => None,
        }
    })
}

/// One line (or point cloud, or set of bars) of a plot: `y_field` of `file` against `x_field`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The data file of `y`.
    pub file: String,
    /// `step` (the index) when the plot has no `x`.
    pub x_field: String,
    pub y_field: String,
    /// The records of `file`, each with the `x` value set (joined from the `x` file, or the
    /// index as `step`).
    pub records: Vec<Record>,
}

impl Series {
    /// (x, y) of each record that has both.
    #[must_use]
    pub fn pairs(&self) -> Vec<(&Value, &Value)> {
        self.records.iter().filter_map(|r| Some((field(r, &self.x_field)?, field(r, &self.y_field)?))).collect()
    }
}

/// What a plot shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// An image file, shown as it is.
    Image { file: String },
    /// Data series drawn with `template`; empty when the data files are missing.
    Data { template: Template, series: Vec<Series> },
}

/// A plot ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub id: String,
    /// `title`, else the id.
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub content: Content,
}

/// A data file a plot names that does not exist (DVC warns and skips it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub plot: String,
    pub file: String,
}

/// The plots of a pipeline with their data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub plots: Vec<Plot>,
    pub missing: Vec<Missing>,
}

/// DVC's `infer_x_label`/`infer_y_label` once the axes are resolved: the label given, else the
/// one field every series uses, else `fallback` (`x`/`y`); no data at all gives `none`.
fn axis_label(given: Option<&String>, fields: impl Iterator<Item = String>, fallback: &str) -> String {
    if let Some(l) = given {
        return l.clone();
    }
    let mut fields: Vec<String> = fields.collect();
    fields.sort();
    fields.dedup();
    match fields.len() {
        0 => String::new(),
        1 => fields.remove(0),
        _ => fallback.to_owned(),
    }
}

fn check_field(plot: &str, file: &str, field: &str, records: &[Record]) -> Result<(), PlotsError> {
    match records.first() {
        Some(r) if r.iter().all(|(k, _)| k != field) => Err(PlotsError::MissingField {
            plot: plot.to_owned(),
            file: file.to_owned(),
            field: field.to_owned(),
            found: r.iter().map(|(k, _)| k.clone()).collect(),
        }),
        _ => Ok(()),
    }
}

/// Resolves one data plot the way DVC's `VegaConverter.flat_datapoints` does.
fn resolve(def: &Definition, docs: &HashMap<String, Value>) -> Result<Vec<Series>, PlotsError> {
    let id = &def.id;
    let props = &def.props;
    // `x: field` applies to every y file (or the id); `y` without files reads the id.
    let y: Vec<(String, String)> = match &props.y {
        Some(Axis::Files(_)) => props.y.as_ref().map(Axis::file_fields).unwrap_or_default(),
        Some(Axis::Field(f)) => vec![(id.clone(), f.clone())],
        Some(Axis::Fields(fs)) => fs.iter().map(|f| (id.clone(), f.clone())).collect(),
        None => docs.get(id).and_then(inferred_y).map(|f| vec![(id.clone(), f)]).unwrap_or_default(),
    };
    let x: Vec<(String, String)> = match &props.x {
        Some(Axis::Field(f)) => match &props.y {
            Some(Axis::Files(_)) => y.iter().map(|(file, _)| (file.clone(), f.clone())).collect(),
            _ => vec![(id.clone(), f.clone())],
        },
        Some(Axis::Files(_)) => props.x.as_ref().map(Axis::file_fields).unwrap_or_default(),
        _ => Vec::new(),
    };
    let records: HashMap<&str, Vec<Record>> = docs.iter().map(|(k, v)| (k.as_str(), datapoints(v))).collect();
    let empty = Vec::new();
    let of = |file: &str| records.get(file).unwrap_or(&empty);
    for (file, f) in x.iter().chain(&y) {
        check_field(id, file, f, of(file))?;
    }
    if x.len() > 1 && x.len() != y.len() {
        return Err(PlotsError::AxisCount { plot: id.clone(), xs: x.len(), ys: y.len() });
    }
    let mut out = Vec::new();
    for (i, (y_file, y_field)) in y.iter().enumerate() {
        let mut recs = of(y_file).clone();
        if recs.is_empty() {
            continue;
        }
        let x_field = match x.get(if x.len() > 1 { i } else { 0 }) {
            None => {
                for (n, r) in recs.iter_mut().enumerate() {
                    r.retain(|(k, _)| k != INDEX_FIELD);
                    r.push((INDEX_FIELD.to_owned(), Value::Int(i64::try_from(n).unwrap_or(i64::MAX))));
                }
                INDEX_FIELD.to_owned()
            }
            Some((x_file, x_field)) => {
                let xs = of(x_file);
                if xs.len() != recs.len() {
                    return Err(PlotsError::Join(Box::new(JoinMismatch {
                        plot: id.clone(),
                        x_file: x_file.clone(),
                        x_field: x_field.clone(),
                        x_len: xs.len(),
                        y_file: y_file.clone(),
                        y_field: y_field.clone(),
                        y_len: recs.len(),
                    })));
                }
                for (r, xr) in recs.iter_mut().zip(xs) {
                    if let Some(v) = field(xr, x_field) {
                        match r.iter_mut().find(|(k, _)| k == x_field) {
                            Some(slot) => slot.1 = v.clone(),
                            None => r.push((x_field.clone(), v.clone())),
                        }
                    }
                }
                x_field.clone()
            }
        };
        out.push(Series { file: y_file.clone(), x_field, y_field: y_field.clone(), records: recs });
    }
    Ok(out)
}

/// Loads every plot's data (each file once) and resolves the axes. A data file that does not
/// exist is reported in [`Collected::missing`] and its plot gets no data, as DVC warns and
/// skips it.
///
/// # Errors
/// A malformed data file (naming it and the line), a file type that is neither data nor image,
/// a field a plot names that its file lacks, x and y sources that do not pair up.
pub fn collect(root: &Path, defs: &[Definition]) -> Result<Collected, PlotsError> {
    let mut out = Collected::default();
    let mut cache: HashMap<String, Option<Value>> = HashMap::new();
    for def in defs {
        let title = def.props.title.clone().unwrap_or_else(|| def.id.clone());
        if def.is_image() {
            if !root.join(&def.id).is_file() {
                out.missing.push(Missing { plot: def.id.clone(), file: def.id.clone() });
            }
            out.plots.push(Plot {
                id: def.id.clone(),
                title,
                x_label: String::new(),
                y_label: String::new(),
                content: Content::Image { file: def.id.clone() },
            });
            continue;
        }
        let mut docs = HashMap::new();
        for src in def.sources() {
            if !cache.contains_key(&src) {
                let doc = load_data(root, &src, def.props.header.unwrap_or(true))?;
                cache.insert(src.clone(), doc);
            }
            match cache.get(&src) {
                Some(Some(doc)) => {
                    docs.insert(src, doc.clone());
                }
                _ => out.missing.push(Missing { plot: def.id.clone(), file: src }),
            }
        }
        let series = resolve(def, &docs)?;
        let x_default = if def.props.x.is_none() { Some(INDEX_FIELD.to_owned()) } else { None };
        out.plots.push(Plot {
            id: def.id.clone(),
            title,
            x_label: axis_label(
                def.props.x_label.as_ref().or(x_default.as_ref()),
                series.iter().map(|s| s.x_field.clone()),
                "x",
            ),
            y_label: axis_label(def.props.y_label.as_ref(), series.iter().map(|s| s.y_field.clone()), "y"),
            content: Content::Data { template: def.props.template.unwrap_or(Template::Linear), series },
        });
    }
    Ok(out)
}

/// A value as a number: JSON/YAML numbers, and text that parses as one (CSV cells).
#[must_use]
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as a category name.
#[must_use]
pub fn category(v: &Value) -> String {
    match v {
        Value::Float(f) => python_float(*f),
        Value::List(_) | Value::Map(_) => v.to_json().to_string(),
        other => other.python_str().unwrap_or_default(),
    }
}

/// Category names sorted as vega sorts them ascending: numerically when all are numbers.
fn sort_categories(cats: &mut [String]) {
    let nums: Option<Vec<f64>> = cats.iter().map(|c| c.trim().parse::<f64>().ok()).collect();
    if nums.is_some() {
        cats.sort_by(|a, b| {
            let (a, b) = (a.trim().parse::<f64>().unwrap_or(f64::NAN), b.trim().parse::<f64>().unwrap_or(f64::NAN));
            a.total_cmp(&b)
        });
    } else {
        cats.sort();
    }
}

/// Named (x, y) points of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPoints {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// What a template draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// `linear`, `simple`, `smooth`: a line per series (kiln draws `smooth` unsmoothed).
    Lines(Vec<NamedPoints>),
    /// `scatter`, `scatter_jitter`: a point per record.
    Points(Vec<NamedPoints>),
    /// `confusion`, `confusion_normalized`: how often each (x, y) pair occurs; `cells[row][col]`
    /// with rows the `y` categories and columns the `x` ones, both ascending. Normalized cells
    /// are fractions of their row (DVC's `percent_of_y`).
    Matrix { columns: Vec<String>, rows: Vec<String>, cells: Vec<Vec<f64>>, normalized: bool },
    /// `bar_horizontal(_sorted)`: a bar per record, `y` the label and `x` the length, top to
    /// bottom (largest first when sorted).
    Bars(Vec<(String, f64)>),
}

impl Plot {
    /// What to draw; `None` for images and plots without data.
    #[must_use]
    pub fn chart(&self) -> Option<Chart> {
        let Content::Data { template, series } = &self.content else { return None };
        if series.iter().all(|s| s.records.is_empty()) {
            return None;
        }
        let multi_file = series.iter().any(|s| s.file != series[0].file);
        let name = |s: &Series| if multi_file { format!("{}: {}", s.file, s.y_field) } else { s.y_field.clone() };
        let numeric = |s: &Series| NamedPoints {
            name: name(s),
            points: s
                .pairs()
                .into_iter()
                .filter_map(|(x, y)| Some((number(x)?, number(y)?)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect(),
        };
        Some(match template {
            Template::Linear | Template::Simple | Template::Smooth => {
                Chart::Lines(series.iter().map(numeric).collect())
            }
            Template::Scatter | Template::ScatterJitter => Chart::Points(series.iter().map(numeric).collect()),
            Template::Confusion | Template::ConfusionNormalized => {
                let pairs: Vec<(String, String)> = series
                    .iter()
                    .flat_map(|s| s.pairs().into_iter().map(|(x, y)| (category(x), category(y))))
                    .collect();
                let mut columns: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
                let mut rows: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
                for c in [&mut columns, &mut rows] {
                    sort_categories(c);
                    c.dedup();
                }
                let mut cells = vec![vec![0.0; columns.len()]; rows.len()];
                for (x, y) in &pairs {
                    if let (Some(c), Some(r)) = (columns.iter().position(|e| e == x), rows.iter().position(|e| e == y))
                    {
                        cells[r][c] += 1.0;
                    }
                }
                let normalized = *template == Template::ConfusionNormalized;
                if normalized {
                    for row in &mut cells {
                        let sum: f64 = row.iter().sum();
                        if sum > 0.0 {
                            row.iter_mut().for_each(|c| *c /= sum);
                        }
                    }
                }
                Chart::Matrix { columns, rows, cells, normalized }
            }
            Template::BarHorizontal | Template::BarHorizontalSorted => {
                let mut bars: Vec<(String, f64)> = series
                    .iter()
                    .flat_map(|s| s.pairs().into_iter().filter_map(|(x, y)| Some((category(y), number(x)?))))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                if *template == Template::BarHorizontalSorted {
                    bars.sort_by(|a, b| b.1.total_cmp(&a.1));
                }
                Chart::Bars(bars)
            }
        })
    }
}

/// `<`, `>`, `&` and quotes escaped for HTML text and attributes.
#[must_use]
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One image on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageImage {
    /// The plot id (the heading).
    pub id: String,
    /// The image, relative to the page (`static/…`).
    pub src: String,
}

/// The static page: one heading and image per plot, no script and nothing fetched from the
/// network (DVC's page loads vega from a CDN).
#[must_use]
pub fn html(images: &[PageImage]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>DVC Plot</title>\n<style>\n\
         body { font-family: sans-serif; margin: 20px; }\n\
         .plot { margin: 0 0 30px 0; }\n\
         .plot h2 { font-size: 16px; font-weight: normal; }\n\
         .plot img { max-width: 100%; border: 1px solid #ddd; }\n\
         </style>\n</head>\n<body>\n",
    );
    for img in images {
        let id = escape_html(&img.id);
        let anchor: String = img.id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        out.push_str(&format!(
            "<div class=\"plot\" id=\"{anchor}\">\n<h2>{id}</h2>\n<img src=\"{}\" alt=\"{id}\">\n</div>\n",
            escape_html(&img.src)
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// DVC's `plots show --json` shape: `{"data": {id: [entry]}, "errors": [...]}`, where a data
/// plot's entry is `{"type": "vega", "revisions": ["workspace"], "content": {...}}` and an
/// image's is `{"type": "image", "revisions": ["workspace"], "url": path}`. kiln's `content`
/// is not a vega-lite spec: it keeps DVC's `title`, `data.values` (the records with `rev`,
/// `step` and, for several y fields, `field` and `filename`) and the x/y encoding fields and
/// titles, and adds the `template` name.
#[must_use]
pub fn json(collected: &Collected, root: &Path) -> serde_json::Value {
    use serde_json::json;
    let mut data = serde_json::Map::new();
    for p in &collected.plots {
        let entries = match &p.content {
            Content::Image { file } => {
                if collected.missing.iter().any(|m| m.file == *file) {
                    json!([])
                } else {
                    json!([{ "type": "image", "revisions": ["workspace"], "url": root.join(file).display().to_string() }])
                }
            }
            Content::Data { template, series } => {
                if series.iter().all(|s| s.records.is_empty()) {
                    json!([])
                } else {
                    let several = series.len() > 1;
                    let values: Vec<serde_json::Value> = series
                        .iter()
                        .flat_map(|s| {
                            s.records.iter().map(move |r| {
                                let mut m: serde_json::Map<String, serde_json::Value> =
                                    r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                                m.insert("rev".into(), json!("workspace"));
                                if several {
                                    m.insert("filename".into(), json!(s.file));
                                    m.insert("field".into(), json!(s.y_field));
                                }
                                serde_json::Value::Object(m)
                            })
                        })
                        .collect();
                    let x = series.first().map(|s| s.x_field.clone()).unwrap_or_default();
                    let y = series.first().map(|s| s.y_field.clone()).unwrap_or_default();
                    json!([{
                        "type": "vega",
                        "revisions": ["workspace"],
                        "content": {
                            "title": { "text": p.title, "anchor": "middle" },
                            "template": template.name(),
                            "data": { "values": values },
                            "encoding": {
                                "x": { "field": x, "title": p.x_label },
                                "y": { "field": y, "title": p.y_label },
                            },
                        },
                    }])
                }
            }
        };
        data.insert(p.id.clone(), entries);
    }
    let errors: Vec<serde_json::Value> = collected
        .missing
        .iter()
        .map(|m| {
            json!({
                "name": m.plot,
                "rev": "workspace",
                "source": m.file,
                "type": "FileNotFoundError",
                "msg": format!("[Errno 2] No such file or directory: '{}'", m.file),
            })
        })
        .collect();
    let mut out = serde_json::Map::new();
    if !errors.is_empty() {
        out.insert("errors".into(), serde_json::Value::Array(errors));
    }
    out.insert("data".into(), serde_json::Value::Object(data));
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    const DVC_YAML: &str = "stages:\n  train:\n    cmd: 'true'\n    wdir: out\n    plots:\n    - loss.csv:\n        cache: false\n        x: epoch\n        y: loss\n        title: Loss\n    - v.tsv\n\
        plots:\n- out/roc.json:\n    x: fpr\n    y: tpr\n    template: simple\n- confusion:\n    template: confusion\n    x: actual\n    y:\n      out/pred.csv: predicted\n- imgs\n- accs:\n    x: epoch\n    y:\n      out/loss.csv: [loss, acc]\n";

    fn files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("dvc.yaml", DVC_YAML),
            ("out/loss.csv", "epoch,loss,acc\n0,1.0,0.5\n1,0.6,0.7\n2,0.4,0.8\n"),
            ("out/v.tsv", "epoch\tval\n0\t3\n1\t2\n"),
            ("out/roc.json", r#"{"test": [{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": 0.9}, {"fpr": 1, "tpr": 1}]}"#),
            ("out/pred.csv", "actual,predicted\nham,ham\nspam,ham\nspam,spam\nham,ham\n"),
            ("imgs/b.png", "png"),
            ("imgs/a/c.svg", "<svg/>"),
        ]
    }

    #[test]
    fn definitions_like_dvc() {
        let dir = repo(&files());
        let p = Pipeline::load(dir.path()).unwrap();
        let defs = definitions(&p).unwrap();
        let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        // Top-level first (a directory expands to its files), then the stages' outputs.
        assert_eq!(
            ids,
            ["out/roc.json", "confusion", "imgs/a/c.svg", "imgs/b.png", "accs", "out/loss.csv", "out/v.tsv"]
        );
        assert_eq!(defs[0].props.template, Some(Template::Simple));
        assert_eq!(defs[1].props.y, Some(Axis::Files(vec![("out/pred.csv".into(), vec!["predicted".into()])])));
        assert_eq!(defs[1].sources(), ["out/pred.csv"]);
        assert_eq!(defs[5].props.x, Some(Axis::Field("epoch".into())));
        assert_eq!(defs[5].props.title.as_deref(), Some("Loss"));
        assert!(defs[2].is_image() && !defs[5].is_image());
    }

    #[test]
    fn collects_data_with_dvc_defaults() {
        let dir = repo(&files());
        let defs = definitions(&Pipeline::load(dir.path()).unwrap()).unwrap();
        let c = collect(dir.path(), &defs).unwrap();
        assert!(c.missing.is_empty());
        let by = |id: &str| c.plots.iter().find(|p| p.id == id).unwrap();
        // No x: the index as `step`; no y: the last column.
        let v = by("out/v.tsv");
        assert_eq!((v.x_label.as_str(), v.y_label.as_str(), v.title.as_str()), ("step", "val", "out/v.tsv"));
        let Some(Chart::Lines(lines)) = v.chart() else { panic!() };
        assert_eq!(lines[0].points, [(0.0, 3.0), (1.0, 2.0)]);
        // JSON nested under a key; numbers stay numbers.
        let roc = by("out/roc.json");
        let Some(Chart::Lines(lines)) = roc.chart() else { panic!() };
        assert_eq!(lines[0].points, [(0.0, 0.0), (0.5, 0.9), (1.0, 1.0)]);
        assert_eq!((roc.x_label.as_str(), roc.y_label.as_str()), ("fpr", "tpr"));
        // Two y fields of one file: two series, y label `y`.
        let accs = by("accs");
        assert_eq!(accs.y_label, "y");
        let Some(Chart::Lines(lines)) = accs.chart() else { panic!() };
        assert_eq!(lines.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["loss", "acc"]);
        assert_eq!(lines[1].points, [(0.0, 0.5), (1.0, 0.7), (2.0, 0.8)]);
        // Confusion: counts of (actual, predicted), rows = predicted.
        let Some(Chart::Matrix { columns, rows, cells, normalized }) = by("confusion").chart() else { panic!() };
        assert_eq!(
            (columns, rows, normalized),
            (vec!["ham".into(), "spam".into()], vec!["ham".into(), "spam".into()], false)
        );
        assert_eq!(cells, [vec![2.0, 1.0], vec![0.0, 1.0]]);
        assert!(matches!(by("imgs/b.png").content, Content::Image { .. }));
        let j = json(&c, dir.path());
        assert_eq!(
            j["data"]["out/v.tsv"][0]["content"]["data"]["values"][1],
            serde_json::json!({"epoch": "1", "val": "2", "step": 1, "rev": "workspace"})
        );
        assert_eq!(j["data"]["imgs/b.png"][0]["type"], "image");
        assert!(j.get("errors").is_none());
    }

    /// Loads a repository of `dvc.yaml` = `def` and `data`; errors as their messages.
    fn one(def: &str, data: &[(&str, &str)]) -> Result<Collected, String> {
        let mut f = vec![("dvc.yaml", def)];
        f.extend_from_slice(data);
        let dir = repo(&f);
        let p = Pipeline::load(dir.path()).map_err(|e| e.to_string())?;
        let defs = definitions(&p).map_err(|e| e.to_string())?;
        collect(dir.path(), &defs).map_err(|e| e.to_string())
    }

    #[test]
    fn formats_and_templates() {
        // YAML list, no header CSV, normalized confusion, sorted bars.
        let c = one(
            "plots:\n- a.yaml\n- b.csv:\n    template: scatter\n- n:\n    template: confusion_normalized\n    x: t\n    y: {p.csv: p}\n- bars.csv:\n    template: bar_horizontal_sorted\n    x: v\n    y: name\n",
            &[
                ("a.yaml", "- {x: 1, y: 2}\n- {x: 2, y: 4}\n"),
                ("b.csv", "x,y\n1,2\n3,4\n"),
                ("p.csv", "t,p\n1,1\n1,2\n2,2\n10,2\n"),
                ("bars.csv", "name,v\na,1\nb,3\nc,2\n"),
            ],
        )
        .unwrap();
        let Some(Chart::Lines(l)) = c.plots[0].chart() else { panic!() };
        assert_eq!(l[0].points, [(0.0, 2.0), (1.0, 4.0)]);
        assert!(matches!(c.plots[1].chart(), Some(Chart::Points(_))));
        let Some(Chart::Matrix { columns, rows, cells, normalized: true }) = c.plots[2].chart() else { panic!() };
        // Numeric categories sort as numbers; rows sum to 1.
        assert_eq!(columns, ["1", "2", "10"]);
        assert_eq!(rows, ["1", "2"]);
        assert_eq!(cells[1], [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(
            c.plots[3].chart(),
            Some(Chart::Bars(vec![("b".into(), 3.0), ("c".into(), 2.0), ("a".into(), 1.0)]))
        );
    }

    #[test]
    fn header_false_numbers_fields() {
        let c = one(
            "stages:\n  s:\n    cmd: x\n    plots:\n    - d.csv:\n        header: false\n",
            &[("d.csv", "1,10\n2,20\n")],
        )
        .unwrap();
        let Content::Data { series, .. } = &c.plots[0].content else { panic!() };
        assert_eq!(series[0].y_field, "1");
        assert_eq!(series[0].records.len(), 2);
    }

    #[test]
    fn bad_input_names_file_line_and_field() {
        // A missing file is reported, not an error.
        let c = one("plots:\n- nope.csv\n", &[]).unwrap();
        assert_eq!(c.missing, [Missing { plot: "nope.csv".into(), file: "nope.csv".into() }]);
        assert_eq!(c.plots[0].chart(), None);
        let e = one("plots:\n- d.csv\n", &[("d.csv", "a,b\n1,2\n3\n")]).unwrap_err();
        assert!(e.ends_with("d.csv, line 3: 1 field, but the header has 2"), "{e}");
        let e = one("plots:\n- d.json\n", &[("d.json", "{\"a\": [1,\n")]).unwrap_err();
        assert!(e.contains("d.json") && e.contains("line"), "{e}");
        let e = one("plots:\n- d.csv:\n    template: fancy\n", &[("d.csv", "a\n1\n")]).unwrap_err();
        assert!(e.contains("plots[0].d.csv.template") && e.contains("unknown plot template 'fancy'"), "{e}");
        let e = one("plots:\n- p:\n    y: {d.csv: nope}\n", &[("d.csv", "a,b\n1,2\n")]).unwrap_err();
        assert_eq!(e, "plot 'p': `d.csv` has no field 'nope' (its fields: a, b)");
        let e = one("plots:\n- d.txt\n", &[("d.txt", "x")]).unwrap_err();
        assert!(e.contains("'d.txt' - file type error"), "{e}");
        let e =
            one("plots:\n- p:\n    x: {a.csv: a}\n    y: {b.csv: b}\n", &[("a.csv", "a\n1\n2\n"), ("b.csv", "b\n1\n")])
                .unwrap_err();
        assert!(e.contains("cannot join 'a' from `a.csv` (2 records) and 'b' from `b.csv` (1 records)"), "{e}");
        let e = one("plots:\n- p:\n    y: {b.csv: b}\n    colour: red\n", &[]).unwrap_err();
        assert!(e.contains("plots[0].p.colour") && e.contains("unknown plot property"), "{e}");
    }

    #[test]
    fn page_is_escaped_and_static() {
        let h = html(&[PageImage { id: "a<b>.csv".into(), src: "static/x.png".into() }]);
        assert!(h.contains("<h2>a&lt;b&gt;.csv</h2>") && h.contains("<img src=\"static/x.png\""), "{h}");
        assert!(!h.contains("<script") && !h.contains("http"));
    }
}
