//! `metrics diff` and `params diff` (`shared/spec/pipelines.md` §9): the pipeline's metrics and
//! params at two revisions (a git commit or the workspace), compared the way DVC's
//! `dvc/utils/diff.py` does, and printed as its tables or JSON.

use std::path::{Path, PathBuf};

use kiln_cache::Repo;

use crate::PipelineError;
use crate::dvcyaml::Pipeline;
use crate::lock::Lock;
use crate::metrics::{markdown, plain};
use crate::repro::norm;
use crate::value::{Value, from_yaml, python_float, python_round};

/// The project as one revision has it: the workspace, or a commit's files in a temp dir.
#[derive(Debug)]
pub struct Revision {
    /// What tables call it: the revision as given, or `workspace`.
    pub name: String,
    /// The project's root at this revision.
    pub root: PathBuf,
    /// Whether this is the workspace (files read in place) rather than a commit.
    pub workspace: bool,
    _snapshot: Option<tempfile::TempDir>,
}

impl Revision {
    #[must_use]
    pub fn workspace(root: &Path) -> Self {
        Self { name: "workspace".into(), root: root.to_owned(), workspace: true, _snapshot: None }
    }

    /// The files of commit `rev` (any git revision: `HEAD`, `main`, `HEAD~1`, a tag, an id).
    ///
    /// # Errors
    /// An unknown revision or git failing.
    pub fn git(repo_root: &Path, rev: &str) -> Result<Self, PipelineError> {
        let (tmp, root) = crate::git::snapshot(repo_root, rev)?;
        Ok(Self { name: rev.to_owned(), root, workspace: false, _snapshot: Some(tmp) })
    }

    /// `rev`, or the workspace for `None`/`workspace`.
    ///
    /// # Errors
    /// As [`Revision::git`].
    pub fn open(repo_root: &Path, rev: Option<&str>) -> Result<Self, PipelineError> {
        match rev {
            None | Some("workspace") => Ok(Self::workspace(repo_root)),
            Some(r) => Self::git(repo_root, r),
        }
    }

    /// The revision's pipeline; a revision without `dvc.yaml` has none.
    fn pipeline(&self) -> Result<Option<Pipeline>, PipelineError> {
        if !self.root.join("dvc.yaml").is_file() {
            return Ok(None);
        }
        Pipeline::load(&self.root).map(Some)
    }

    /// The text of `file` (relative to the root): in the tree, or for a commit, from the cache
    /// when the file is a cached output recorded in that commit's `dvc.lock`.
    fn read(&self, repo: &Repo, pipeline: &Pipeline, lock: &Lock, file: &str) -> Result<Option<String>, PipelineError> {
        let path = self.root.join(file);
        if path.is_file() {
            return std::fs::read_to_string(&path).map(Some).map_err(|source| PipelineError::Io { path, source });
        }
        if self.workspace {
            return Ok(None);
        }
        let md5 = pipeline.stages.iter().find_map(|s| {
            let locked = lock.stage(&s.name)?;
            locked.outs.iter().find(|o| norm(&s.wdir, &o.path) == file)?.hash.as_ref().map(|h| h.md5.clone())
        });
        let Some(object) = md5.and_then(|m| repo.cache.find(&m)) else { return Ok(None) };
        std::fs::read_to_string(&object).map(Some).map_err(|source| PipelineError::Io { path: object, source })
    }
}

fn parse(text: &str, file: &str, rev: &Revision) -> Result<Value, PipelineError> {
    from_yaml(text).map_err(|e| PipelineError::Invalid {
        file: PathBuf::from(format!("{file} (at {})", rev.name)),
        key: String::new(),
        message: e.to_string(),
    })
}

/// What DVC keeps of a metrics document: numbers, strings and booleans, nested in maps; lists,
/// nulls and maps left empty are dropped (`dvc/repo/metrics/show.py::_extract_metrics`).
#[must_use]
pub fn extract_metrics(v: &Value) -> Option<Value> {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Str(_) | Value::Bool(_) => Some(v.clone()),
        Value::Map(m) => {
            let kept: Vec<(String, Value)> =
                m.iter().filter_map(|(k, x)| extract_metrics(x).map(|x| (k.clone(), x))).collect();
            (!kept.is_empty()).then_some(Value::Map(kept))
        }
        Value::List(_) | Value::Null => None,
    }
}

/// The revision's metrics files that exist, each with its metrics (see [`extract_metrics`]).
///
/// # Errors
/// An invalid `dvc.yaml`, `dvc.lock` or metrics file at that revision.
pub fn metrics_of(repo: &Repo, rev: &Revision) -> Result<Vec<(String, Value)>, PipelineError> {
    let Some(pipeline) = rev.pipeline()? else { return Ok(Vec::new()) };
    let lock = if rev.workspace { Lock::default() } else { Lock::read(&rev.root.join("dvc.lock"))? };
    let mut out = Vec::new();
    for file in crate::metrics::files(&pipeline) {
        let Some(text) = rev.read(repo, &pipeline, &lock, &file)? else { continue };
        let doc = parse(&text, &file, rev)?;
        out.push((file, extract_metrics(&doc).unwrap_or(Value::Map(Vec::new()))));
    }
    Ok(out)
}

/// The revision's params, per file, flattened to dotted keys (lists as their Python repr):
/// every stage's params (the listed keys, or the whole file), top-level `params:` files and the
/// whole of `params.yaml` (`dvc/repo/params/show.py`).
///
/// # Errors
/// An invalid `dvc.yaml` or params file at that revision.
pub fn params_of(rev: &Revision) -> Result<Flat, PipelineError> {
    // file -> None (whole file) or the keys to show
    let mut wanted: Vec<(String, Option<Vec<String>>)> = Vec::new();
    let mut want = |file: String, keys: Option<&[String]>| {
        let slot = match wanted.iter_mut().position(|(f, _)| *f == file) {
            Some(i) => &mut wanted[i].1,
            None => {
                wanted.push((file, Some(Vec::new())));
                &mut wanted.last_mut().expect("just pushed").1
            }
        };
        match (slot.as_mut(), keys) {
            (Some(have), Some(keys)) => have.extend(keys.iter().cloned()),
            (_, None) => *slot = None,
            (None, Some(_)) => {}
        }
    };
    if let Some(pipeline) = rev.pipeline()? {
        for s in &pipeline.stages {
            for p in &s.params {
                want(norm(&s.wdir, &p.file), p.keys.as_deref());
            }
        }
        for f in &pipeline.params {
            want(norm(".", f), None);
        }
    }
    if rev.root.join("params.yaml").is_file() {
        want("params.yaml".into(), None);
    }
    let mut out = Vec::new();
    for (file, keys) in wanted {
        let path = rev.root.join(&file);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| PipelineError::Io { path: path.clone(), source })?;
        let doc = parse(&text, &file, rev)?;
        let mut flat = Vec::new();
        match keys {
            None => flatten_params("", &doc, &mut flat),
            Some(keys) => {
                for k in keys {
                    if let Some(v) = doc.dotted(&k) {
                        flatten_params(&k, v, &mut flat);
                    }
                }
            }
        }
        flat.dedup_by(|a, b| a.0 == b.0);
        out.push((file, flat));
    }
    Ok(out)
}

/// Nested maps to dotted keys; other values as they are, except lists, which DVC compares and
/// shows as their Python repr (`dvc/utils/diff.py::format_dict`).
fn flatten_params(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Map(m) if !m.is_empty() || prefix.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_params(&key, x, out);
            }
        }
        Value::List(_) => out.push((prefix.to_owned(), Value::Str(v.python_repr()))),
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// Metrics documents flattened the same way (they hold no lists after extraction).
#[must_use]
pub fn flatten_docs(docs: &[(String, Value)]) -> Flat {
    docs.iter()
        .map(|(f, v)| {
            let mut flat = Vec::new();
            match v {
                Value::Map(_) => flatten_params("", v, &mut flat),
                // A file holding a single number: DVC's key is "".
                other => flat.push((String::new(), other.clone())),
            }
            (f.clone(), flat)
        })
        .collect()
}

/// Per file (in order), its values under dotted keys.
pub type Flat = Vec<(String, Vec<(String, Value)>)>;

/// One changed (or, with `--all`, unchanged) value.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// `new - old` when both are numbers (booleans count, as in Python).
    pub diff: Option<Value>,
}

/// File -> (key, change), keys sorted.
pub type Diff = Vec<(String, Vec<(String, Change)>)>;

fn number(v: &Value) -> Option<Value> {
    match v {
        Value::Bool(b) => Some(Value::Int(i64::from(*b))),
        Value::Int(_) | Value::Float(_) => Some(v.clone()),
        _ => None,
    }
}

/// Python's `==` between two values: `1 == 1.0 == True`.
fn py_eq(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(Value::Int(x)), Some(Value::Int(y))) => x == y,
        (Some(x), Some(y)) => as_f64(&x) == as_f64(&y),
        _ => a == b,
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        #[allow(clippy::cast_precision_loss)] // Python's int-float arithmetic does the same
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn subtract(new: &Value, old: &Value) -> Option<Value> {
    match (number(new)?, number(old)?) {
        (Value::Int(n), Value::Int(o)) => n.checked_sub(o).map(Value::Int),
        (n, o) => Some(Value::Float(as_f64(&n) - as_f64(&o))),
    }
}

/// The changes from `old` to `new` (`dvc/utils/diff.py::diff`): files in `new`'s order then
/// those only in `old`, keys sorted; unchanged values only with `all`.
#[must_use]
pub fn diff(old: &[(String, Vec<(String, Value)>)], new: &[(String, Vec<(String, Value)>)], all: bool) -> Diff {
    let mut files: Vec<&str> = new.iter().map(|(f, _)| f.as_str()).collect();
    for (f, _) in old {
        if !files.contains(&f.as_str()) {
            files.push(f);
        }
    }
    let empty = Vec::new();
    let side = |docs: &'_ [(String, Vec<(String, Value)>)], f: &str| -> Vec<(String, Value)> {
        docs.iter().find(|(x, _)| x == f).map_or_else(|| empty.clone(), |(_, kv)| kv.clone())
    };
    let mut out = Vec::new();
    for f in files {
        let (o, n) = (side(old, f), side(new, f));
        let mut keys: Vec<&String> = o.iter().chain(n.iter()).map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        let get = |kv: &[(String, Value)], k: &str| kv.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        let changes: Vec<(String, Change)> = keys
            .into_iter()
            .filter_map(|k| {
                let (ov, nv) = (get(&o, k), get(&n, k));
                let same = match (&ov, &nv) {
                    (Some(a), Some(b)) => py_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if same && !all {
                    return None;
                }
                let diff = match (&ov, &nv) {
                    (Some(a), Some(b)) => subtract(b, a),
                    _ => None,
                };
                Some((k.clone(), Change { old: ov, new: nv, diff }))
            })
            .collect();
        if !changes.is_empty() {
            out.push((f.to_owned(), changes));
        }
    }
    out
}

/// How a table cell shows a value: DVC rounds floats to `precision` digits (metrics) or prints
/// them whole (params, `None`).
fn cell(v: Option<&Value>, precision: Option<usize>) -> String {
    match (v, precision) {
        (None, _) => "-".to_owned(),
        (Some(Value::Float(f)), Some(p)) => python_float(python_round(*f, p)),
        (Some(v), _) => v.python_display(),
    }
}

/// Table options: DVC's `--md`, `--no-path`, `--precision` and the revision names.
#[derive(Debug, Clone)]
pub struct TableStyle<'a> {
    /// `Metric` or `Param`.
    pub title: &'a str,
    pub a_rev: &'a str,
    pub b_rev: &'a str,
    /// Whether to show the `Change` column (metrics) or not (params).
    pub changes: bool,
    /// Float rounding for metrics; `None` for params.
    pub precision: Option<usize>,
    pub no_path: bool,
    pub markdown: bool,
}

/// The diff as DVC's table (`dvc/compare.py::diff_table`); empty when nothing changed.
#[must_use]
pub fn render_table(d: &Diff, style: &TableStyle<'_>) -> String {
    if d.is_empty() {
        return String::new();
    }
    let mut header: Vec<String> = Vec::new();
    if !style.no_path {
        header.push("Path".into());
    }
    header.extend([style.title.to_owned(), style.a_rev.to_owned(), style.b_rev.to_owned()]);
    if style.changes {
        header.push("Change".into());
    }
    let mut rows = Vec::new();
    for (file, changes) in d {
        for (key, c) in changes {
            let mut row = Vec::new();
            if !style.no_path {
                row.push(file.clone());
            }
            row.extend([key.clone(), cell(c.old.as_ref(), style.precision), cell(c.new.as_ref(), style.precision)]);
            if style.changes {
                row.push(cell(c.diff.as_ref(), style.precision));
            }
            rows.push(row);
        }
    }
    if style.markdown { markdown(&header, &rows) + "\n" } else { plain(&header, &rows) }
}

/// The diff as DVC's `--json`: `{file: {key: {"old": …, "new": …, "diff": …}}}` (`diff` only for
/// numbers; a missing side is `null`).
#[must_use]
pub fn render_json(d: &Diff) -> String {
    let doc = Value::Map(
        d.iter()
            .map(|(file, changes)| {
                let per_key = changes
                    .iter()
                    .map(|(k, c)| {
                        let mut m = vec![
                            ("old".to_owned(), c.old.clone().unwrap_or(Value::Null)),
                            ("new".to_owned(), c.new.clone().unwrap_or(Value::Null)),
                        ];
                        if let Some(x) = &c.diff {
                            m.push(("diff".to_owned(), x.clone()));
                        }
                        (k.clone(), Value::Map(m))
                    })
                    .collect();
                (file.clone(), Value::Map(per_key))
            })
            .collect(),
    );
    doc.python_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(file: &str, yaml: &str) -> Flat {
        flatten_docs(&[(file.to_owned(), extract_metrics(&from_yaml(yaml).unwrap()).unwrap())])
    }

    #[test]
    fn metrics_diff_like_dvc() {
        let old = flat(
            "metrics.json",
            r#"{"accuracy": 0.675, "n_test": 40, "spam": {"f1": 0.381, "precision": 0.5714}, "name": "a", "lst": [1, 2]}"#,
        );
        let new = flat(
            "metrics.json",
            r#"{"accuracy": 0.7123456789, "n_test": 48, "spam": {"f1": 0.381, "precision": 0.6}, "name": "b", "lst": [1, 3], "new": 1}"#,
        );
        let d = diff(&old, &new, false);
        let style = TableStyle {
            title: "Metric",
            a_rev: "HEAD",
            b_rev: "workspace",
            changes: true,
            precision: Some(5),
            no_path: false,
            markdown: false,
        };
        assert_eq!(
            render_table(&d, &style),
            "Path          Metric          HEAD    workspace    Change\n\
             metrics.json  accuracy        0.675   0.71235      0.03735\n\
             metrics.json  n_test          40      48           8\n\
             metrics.json  name            a       b            -\n\
             metrics.json  new             -       1            -\n\
             metrics.json  spam.precision  0.5714  0.6          0.0286\n"
        );
        assert_eq!(
            render_json(&d),
            r#"{"metrics.json": {"accuracy": {"old": 0.675, "new": 0.7123456789, "diff": 0.03734567889999996}, "n_test": {"old": 40, "new": 48, "diff": 8}, "name": {"old": "a", "new": "b"}, "new": {"old": null, "new": 1}, "spam.precision": {"old": 0.5714, "new": 0.6, "diff": 0.02859999999999996}}}"#
        );
        let all = diff(&old, &new, true);
        assert_eq!(all[0].1.iter().find(|(k, _)| k == "spam.f1").unwrap().1.diff, Some(Value::Float(0.0)));
        assert!(diff(&old, &old, false).is_empty());
        assert_eq!(render_table(&diff(&old, &old, false), &style), "");
    }

    #[test]
    fn params_render_the_python_way() {
        let mut old = Vec::new();
        flatten_params("", &from_yaml("train:\n  lr: 0.1\n  flag: true\n  words: [the, a]\n").unwrap(), &mut old);
        let mut new = Vec::new();
        flatten_params("", &from_yaml("train:\n  lr: 0.1\n  flag: false\n  words: [the, b]\n").unwrap(), &mut new);
        let d = diff(&[("params.yaml".into(), old)], &[("params.yaml".into(), new)], false);
        let style = TableStyle {
            title: "Param",
            a_rev: "HEAD",
            b_rev: "workspace",
            changes: false,
            precision: None,
            no_path: false,
            markdown: true,
        };
        assert_eq!(
            render_table(&d, &style),
            "| Path        | Param       | HEAD         | workspace    |\n\
             |-------------|-------------|--------------|--------------|\n\
             | params.yaml | train.flag  | True         | False        |\n\
             | params.yaml | train.words | ['the', 'a'] | ['the', 'b'] |\n\n"
        );
        assert_eq!(
            render_json(&d),
            r#"{"params.yaml": {"train.flag": {"old": true, "new": false, "diff": -1}, "train.words": {"old": "['the', 'a']", "new": "['the', 'b']"}}}"#
        );
    }
}
