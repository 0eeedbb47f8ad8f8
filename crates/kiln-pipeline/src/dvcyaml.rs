//! `dvc.yaml` (`shared/spec/pipelines.md` §1–2): stages with their commands, deps, params and
//! outputs, `${…}` interpolated from `params.yaml` and `vars`. Errors name the file and the key.

use std::path::{Path, PathBuf};

use crate::PipelineError;
use crate::value::{Value, from_yaml};

/// A stage's command: DVC keeps the string/list distinction in the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    One(String),
    Many(Vec<String>),
}

impl Cmd {
    /// The command lines to run in turn (a multi-line string is one line per command).
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::One(s) => s.lines().map(str::to_owned).filter(|l| !l.trim().is_empty()).collect(),
            Self::Many(v) => v.clone(),
        }
    }
}

/// An output of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct OutDecl {
    /// As written, relative to the stage's `wdir`.
    pub path: String,
    pub cache: bool,
    pub persist: bool,
    /// `push: false`: kept out of `push` (still cached and fetched when the remote has it).
    pub push: bool,
    /// Declared under `metrics:` (what `metrics show` reads).
    pub metric: bool,
}

/// Params a stage depends on, from one file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDep {
    /// Relative to the stage's `wdir`.
    pub file: String,
    /// The keys (dotted); `None` tracks every key of the file.
    pub keys: Option<Vec<String>>,
}

/// A stage of `dvc.yaml`, interpolated.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub cmd: Cmd,
    /// Relative to the directory of `dvc.yaml`.
    pub wdir: String,
    pub deps: Vec<String>,
    pub params: Vec<ParamDep>,
    pub outs: Vec<OutDecl>,
    /// The `plots:` outputs with their plot properties (`x`, `y`, `template`, …; `Null` when
    /// none are given), paths relative to `wdir`; they are in `outs` too.
    pub plots: Vec<(String, Value)>,
    pub frozen: bool,
    pub always_changed: bool,
}

/// The parsed `dvc.yaml`.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The directory holding `dvc.yaml`.
    pub dir: PathBuf,
    pub stages: Vec<Stage>,
    /// Top-level `metrics:` files (relative to `dir`).
    pub metrics: Vec<String>,
    /// Top-level `params:` files (relative to `dir`): shown whole by `params diff`.
    pub params: Vec<String>,
    /// Top-level `plots:` entries, interpolated but otherwise as written (a path, or a mapping
    /// of one plot id to its properties); `plots::definitions` reads them.
    pub plots: Vec<Value>,
}

const STAGE_KEYS: [&str; 14] = [
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "desc",
    "meta",
    "vars",
    "foreach",
    "do",
];

fn err(file: &Path, key: &str, message: impl Into<String>) -> PipelineError {
    PipelineError::Invalid { file: file.to_owned(), key: key.to_owned(), message: message.into() }
}

/// Interpolates `${…}` in `s` from `ctx`. A string that is exactly one `${expr}` keeps the
/// value's type; otherwise each match is spliced in as text (`\${` is a literal `${`).
fn interpolate(s: &str, ctx: &Value, file: &Path, key: &str) -> Result<Value, PipelineError> {
    let lookup = |expr: &str| -> Result<Value, PipelineError> {
        let expr = expr.trim();
        let mut cur = ctx;
        for part in expr.split('.') {
            // `a[0]` indexes a list.
            let (name, index) = match part.split_once('[') {
                Some((n, rest)) => (n, Some(rest.trim_end_matches(']'))),
                None => (part, None),
            };
            if !name.is_empty() {
                cur = cur.get(name).ok_or_else(|| err(file, key, format!("Could not find '{expr}'")))?;
            }
            if let Some(i) = index {
                let i: usize = i.parse().map_err(|_| err(file, key, format!("bad index in '{expr}'")))?;
                cur = match cur {
                    Value::List(l) => {
                        l.get(i).ok_or_else(|| err(file, key, format!("index out of range in '{expr}'")))?
                    }
                    _ => return Err(err(file, key, format!("'{expr}' indexes something that is not a list"))),
                };
            }
        }
        Ok(cur.clone())
    };
    let t = s.trim();
    if t.starts_with("${") && t.ends_with('}') && t.matches("${").count() == 1 && !s.contains("\\${") {
        return lookup(&t[2..t.len() - 1]);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('\\') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| err(file, key, format!("unclosed `${{` in `{s}`")))?;
        let v = lookup(&rest[i + 2..i + end])?;
        let text = v.python_str().ok_or_else(|| {
            err(
                file,
                key,
                format!(
                    "Cannot interpolate data of type '{}' into `{s}`",
                    if matches!(v, Value::List(_)) { "list" } else { "dict" }
                ),
            )
        })?;
        out.push_str(&text);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(Value::Str(out))
}

fn interp_str(v: &Value, ctx: &Value, file: &Path, key: &str) -> Result<String, PipelineError> {
    match v {
        Value::Str(s) => match interpolate(s, ctx, file, key)? {
            Value::Str(s) => Ok(s),
            other => other.python_str().ok_or_else(|| err(file, key, "expected text, got a list or map")),
        },
        other => other.python_str().ok_or_else(|| err(file, key, "expected text, got a list or map")),
    }
}

/// `v` with `${…}` interpolated in every string (mapping keys included).
fn interp_value(v: &Value, ctx: &Value, file: &Path, key: &str) -> Result<Value, PipelineError> {
    Ok(match v {
        Value::Str(s) => interpolate(s, ctx, file, key)?,
        Value::List(l) => Value::List(l.iter().map(|x| interp_value(x, ctx, file, key)).collect::<Result<_, _>>()?),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| {
                    Ok((interp_str(&Value::Str(k.clone()), ctx, file, key)?, interp_value(x, ctx, file, key)?))
                })
                .collect::<Result<_, PipelineError>>()?,
        ),
        other => other.clone(),
    })
}

fn bool_key(stage: &Value, key: &str, file: &Path, name: &str) -> Result<bool, PipelineError> {
    match stage.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(file, &format!("stages.{name}.{key}"), "must be true or false")),
    }
}

/// Loads the interpolation context: `params.yaml` beside `dvc.yaml`, then top-level `vars`.
fn context(dir: &Path, doc: &Value, file: &Path) -> Result<Value, PipelineError> {
    let mut ctx: Vec<(String, Value)> = Vec::new();
    let mut merge = |v: Value, from: &str| -> Result<(), PipelineError> {
        if let Value::Map(m) = v {
            for (k, v) in m {
                if ctx.iter().any(|(e, _)| *e == k) {
                    return Err(err(file, "vars", format!("cannot redefine '{k}' (from {from})")));
                }
                ctx.push((k, v));
            }
        }
        Ok(())
    };
    let params = dir.join("params.yaml");
    if params.is_file() {
        merge(crate::load_params_file(&params)?, "params.yaml")?;
    }
    if let Some(Value::List(vars)) = doc.get("vars") {
        for v in vars {
            match v {
                Value::Map(_) => merge(v.clone(), "vars")?,
                Value::Str(s) => {
                    let (path, keys) = s.split_once(':').map_or((s.as_str(), None), |(p, k)| (p, Some(k)));
                    if path == "params.yaml" && params.is_file() && keys.is_none() {
                        continue;
                    }
                    let loaded = crate::load_params_file(&dir.join(path))?;
                    let loaded = match keys {
                        None => loaded,
                        Some(k) => Value::Map(
                            k.split(',')
                                .filter_map(|k| loaded.get(k.trim()).map(|v| (k.trim().to_owned(), v.clone())))
                                .collect(),
                        ),
                    };
                    merge(loaded, s)?;
                }
                _ => return Err(err(file, "vars", "each item is a file name or a mapping")),
            }
        }
    }
    Ok(Value::Map(ctx))
}

/// One stage from its definition, interpolated with `ctx`.
fn build_stage(name: &str, def: &Value, ctx: &Value, file: &Path) -> Result<Stage, PipelineError> {
    let at = |k: &str| format!("stages.{name}.{k}");
    let Value::Map(keys) = def else { return Err(err(file, &format!("stages.{name}"), "expected a mapping")) };
    for (k, _) in keys {
        if !STAGE_KEYS.contains(&k.as_str()) && k != "matrix" {
            return Err(err(file, &at(k), "unknown stage key"));
        }
    }
    if def.get("vars").is_some() {
        return Err(err(file, &at("vars"), "stage-level vars are not supported by kiln yet"));
    }
    let cmd = match def.get("cmd") {
        Some(Value::List(items)) => {
            Cmd::Many(items.iter().map(|i| interp_str(i, ctx, file, &at("cmd"))).collect::<Result<_, _>>()?)
        }
        Some(v @ Value::Str(_)) => Cmd::One(interp_str(v, ctx, file, &at("cmd"))?),
        _ => return Err(err(file, &at("cmd"), "required: a command string or a list of them")),
    };
    let wdir = match def.get("wdir") {
        None => ".".to_owned(),
        Some(v) => interp_str(v, ctx, file, &at("wdir"))?,
    };
    let list = |k: &str| -> Result<Vec<Value>, PipelineError> {
        match def.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::List(l)) => Ok(l.clone()),
            Some(_) => Err(err(file, &at(k), "must be a list")),
        }
    };
    let deps = list("deps")?.iter().map(|d| interp_str(d, ctx, file, &at("deps"))).collect::<Result<Vec<_>, _>>()?;
    let mut params = Vec::new();
    for p in list("params")? {
        match &p {
            Value::Str(_) => {
                let key = interp_str(&p, ctx, file, &at("params"))?;
                match params.iter_mut().find(|d: &&mut ParamDep| d.file == "params.yaml") {
                    Some(ParamDep { keys: Some(keys), .. }) => keys.push(key),
                    Some(_) => {}
                    None => params.push(ParamDep { file: "params.yaml".into(), keys: Some(vec![key]) }),
                }
            }
            Value::Map(m) => {
                for (f, keys) in m {
                    let keys = match keys {
                        Value::Null => None,
                        Value::List(l) if l.is_empty() => None,
                        Value::List(l) => Some(
                            l.iter().map(|k| interp_str(k, ctx, file, &at("params"))).collect::<Result<Vec<_>, _>>()?,
                        ),
                        _ => return Err(err(file, &at("params"), format!("`{f}`: expected a list of keys"))),
                    };
                    params.push(ParamDep { file: f.clone(), keys });
                }
            }
            _ => return Err(err(file, &at("params"), "each item is a key or a file: [keys] mapping")),
        }
    }
    let mut outs = Vec::new();
    let mut plots = Vec::new();
    for kind in ["outs", "metrics", "plots"] {
        for o in list(kind)? {
            let (path, flags) = match &o {
                Value::Map(m) if m.len() == 1 => (m[0].0.clone(), m[0].1.clone()),
                other => (interp_str(other, ctx, file, &at(kind))?, Value::Null),
            };
            let path = interp_str(&Value::Str(path), ctx, file, &at(kind))?;
            let flag = |k: &str, default: bool| match flags.get(k) {
                Some(Value::Bool(b)) => *b,
                _ => default,
            };
            if kind == "plots" {
                plots.push((path.clone(), interp_value(&flags, ctx, file, &at(kind))?));
            }
            // Metrics and plots are outputs like the others (cached unless `cache: false`).
            outs.push(OutDecl {
                path,
                cache: flag("cache", true),
                persist: flag("persist", false),
                push: flag("push", true),
                metric: kind == "metrics",
            });
        }
    }
    Ok(Stage {
        name: name.to_owned(),
        cmd,
        wdir,
        deps,
        params,
        outs,
        plots,
        frozen: bool_key(def, "frozen", file, name)?,
        always_changed: bool_key(def, "always_changed", file, name)?,
    })
}

/// `value` as a `${key}`/stage-name fragment (Python's `str()`).
fn fragment(v: &Value) -> String {
    v.python_str().unwrap_or_default()
}

/// The stages a `foreach`/`do` or `matrix` definition generates: (name, context additions).
fn expand(name: &str, def: &Value, ctx: &Value, file: &Path) -> Result<Vec<(String, Value)>, PipelineError> {
    let at = format!("stages.{name}");
    if let Some(fe) = def.get("foreach") {
        let items = match fe {
            Value::Str(s) => interpolate(s, ctx, file, &format!("{at}.foreach"))?,
            other => other.clone(),
        };
        let pairs: Vec<(String, Value)> = match items {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::Map(vec![("key".into(), Value::Str(k)), ("item".into(), v)])))
                .collect(),
            Value::List(l) => {
                let scalars = l.iter().all(|v| !matches!(v, Value::List(_) | Value::Map(_)));
                l.into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let key = if scalars { fragment(&v) } else { i.to_string() };
                        (key.clone(), Value::Map(vec![("key".into(), Value::Str(key)), ("item".into(), v)]))
                    })
                    .collect()
            }
            _ => return Err(err(file, &format!("{at}.foreach"), "must be a list or a mapping")),
        };
        return Ok(pairs.into_iter().map(|(k, add)| (format!("{name}@{k}"), add)).collect());
    }
    let Some(Value::Map(axes)) = def.get("matrix") else {
        return Err(err(file, &format!("{at}.matrix"), "must be a mapping of names to lists"));
    };
    // The cartesian product, in declaration order.
    // (name fragments, item entries) of each combination so far.
    type Combo = (Vec<String>, Vec<(String, Value)>);
    let mut combos: Vec<Combo> = vec![(Vec::new(), Vec::new())];
    for (axis, values) in axes {
        let values = match values {
            Value::Str(s) => interpolate(s, ctx, file, &format!("{at}.matrix.{axis}"))?,
            other => other.clone(),
        };
        let Value::List(values) = values else {
            return Err(err(file, &format!("{at}.matrix.{axis}"), "must be a list"));
        };
        let mut next = Vec::new();
        for (frags, item) in &combos {
            for (i, v) in values.iter().enumerate() {
                let frag = if matches!(v, Value::List(_) | Value::Map(_)) { format!("{axis}{i}") } else { fragment(v) };
                let mut f = frags.clone();
                f.push(frag);
                let mut it = item.clone();
                it.push((axis.clone(), v.clone()));
                next.push((f, it));
            }
        }
        combos = next;
    }
    Ok(combos
        .into_iter()
        .map(|(frags, item)| {
            let key = frags.join("-");
            (
                format!("{name}@{key}"),
                Value::Map(vec![("key".into(), Value::Str(key)), ("item".into(), Value::Map(item))]),
            )
        })
        .collect())
}

/// `ctx` with `add`'s entries set (replacing any of the same name: `item` and `key` are
/// temporary).
fn with(ctx: &Value, add: &Value) -> Value {
    let mut m = match ctx {
        Value::Map(m) => m.clone(),
        _ => Vec::new(),
    };
    if let Value::Map(a) = add {
        for (k, v) in a {
            m.retain(|(e, _)| e != k);
            m.push((k.clone(), v.clone()));
        }
    }
    Value::Map(m)
}

fn top_plots(doc: &Value, ctx: &Value, file: &Path) -> Result<Vec<Value>, PipelineError> {
    match doc.get("plots") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(l)) => {
            l.iter().enumerate().map(|(i, v)| interp_value(v, ctx, file, &format!("plots[{i}]"))).collect()
        }
        Some(_) => Err(err(file, "plots", "must be a list of paths or `id: {properties}` mappings")),
    }
}

/// A top-level list of files (`metrics:`, `params:`).
fn top_list(doc: &Value, key: &str) -> Vec<String> {
    match doc.get(key) {
        Some(Value::List(l)) => l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

impl Pipeline {
    /// Reads `dvc.yaml` in `dir`.
    ///
    /// # Errors
    /// Missing or invalid file, unknown keys, failed interpolation, `foreach`/`matrix` (not
    /// built yet).
    pub fn load(dir: &Path) -> Result<Self, PipelineError> {
        let file = dir.join("dvc.yaml");
        let text = std::fs::read_to_string(&file).map_err(|source| PipelineError::Io { path: file.clone(), source })?;
        let doc = from_yaml(&text).map_err(|e| err(&file, "", e.to_string()))?;
        let Value::Map(top) = &doc else { return Err(err(&file, "", "expected a mapping with `stages`")) };
        for (k, _) in top {
            if !["stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"].contains(&k.as_str()) {
                return Err(err(&file, k, "unknown top-level key"));
            }
        }
        let ctx = context(dir, &doc, &file)?;
        let mut stages = Vec::new();
        let Some(Value::Map(defs)) = doc.get("stages") else {
            let plots = top_plots(&doc, &ctx, &file)?;
            return Ok(Self {
                dir: dir.to_owned(),
                stages,
                metrics: top_list(&doc, "metrics"),
                params: top_list(&doc, "params"),
                plots,
            });
        };
        for (name, def) in defs {
            let Value::Map(keys) = def else { return Err(err(&file, &format!("stages.{name}"), "expected a mapping")) };
            for (k, _) in keys {
                if !STAGE_KEYS.contains(&k.as_str()) && k != "matrix" {
                    return Err(err(&file, &format!("stages.{name}.{k}"), "unknown stage key"));
                }
            }
            if def.get("foreach").is_some() || def.get("matrix").is_some() {
                let template = match def.get("do") {
                    Some(d) => d.clone(),
                    None if def.get("matrix").is_some() => {
                        Value::Map(keys.iter().filter(|(k, _)| k != "matrix").cloned().collect())
                    }
                    None => return Err(err(&file, &format!("stages.{name}.do"), "foreach needs a `do` stage")),
                };
                for (gen_name, add) in expand(name, def, &ctx, &file)? {
                    stages.push(build_stage(&gen_name, &template, &with(&ctx, &add), &file)?);
                }
            } else {
                stages.push(build_stage(name, def, &ctx, &file)?);
            }
        }
        let plots = top_plots(&doc, &ctx, &file)?;
        Ok(Self {
            dir: dir.to_owned(),
            stages,
            metrics: top_list(&doc, "metrics"),
            params: top_list(&doc, "params"),
            plots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreach_and_matrix_expand_like_dvc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("params.yaml"), "models:\n  nb: {alpha: 1}\n  lr: {alpha: 2}\n").unwrap();
        std::fs::write(
            dir.path().join("dvc.yaml"),
            "stages:\n  ev:\n    foreach: ${models}\n    do:\n      cmd: eval ${key} ${item.alpha}\n      outs:\n      - r/${key}.json\n  \
             s:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item}\n  \
             t:\n    matrix:\n      model: [cnn, xgb]\n      lr: [0.1, 0.01]\n      cfg: [[1], [2]]\n    cmd: ./train.sh ${item.model} ${item.lr} ${key}\n",
        )
        .unwrap();
        let p = Pipeline::load(dir.path()).unwrap();
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ev@nb",
                "ev@lr",
                "s@a",
                "s@b",
                "t@cnn-0.1-cfg0",
                "t@cnn-0.1-cfg1",
                "t@cnn-0.01-cfg0",
                "t@cnn-0.01-cfg1",
                "t@xgb-0.1-cfg0",
                "t@xgb-0.1-cfg1",
                "t@xgb-0.01-cfg0",
                "t@xgb-0.01-cfg1"
            ]
        );
        assert_eq!(p.stages[1].cmd, Cmd::One("eval lr 2".into()));
        assert_eq!(p.stages[1].outs[0].path, "r/lr.json");
        assert_eq!(p.stages[3].cmd, Cmd::One("echo b".into()));
        assert_eq!(p.stages[4].cmd, Cmd::One("./train.sh cnn 0.1 cnn-0.1-cfg0".into()));
    }

    #[test]
    fn parses_and_interpolates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("params.yaml"), "prepare:\n  min_len: 2\nsplit:\n  ratio: 0.25\n").unwrap();
        std::fs::write(
            dir.path().join("dvc.yaml"),
            "stages:\n  prepare:\n    cmd: python3 prep.py --min-len ${prepare.min_len} --r ${split.ratio}\n    deps: [prep.py]\n    params: [prepare.min_len, split]\n    outs: [data/out]\n  train:\n    cmd: [a, b]\n    deps: [data/out]\n    metrics:\n    - metrics.json:\n        cache: false\n",
        )
        .unwrap();
        let p = Pipeline::load(dir.path()).unwrap();
        assert_eq!(p.stages[0].cmd, Cmd::One("python3 prep.py --min-len 2 --r 0.25".into()));
        assert_eq!(p.stages[0].params[0].keys, Some(vec!["prepare.min_len".into(), "split".into()]));
        assert_eq!(p.stages[1].cmd, Cmd::Many(vec!["a".into(), "b".into()]));
        assert_eq!(
            p.stages[1].outs[0],
            OutDecl { path: "metrics.json".into(), cache: false, persist: false, push: true, metric: true }
        );
        std::fs::write(dir.path().join("dvc.yaml"), "stages:\n  s:\n    cmd: x ${nope.key}\n").unwrap();
        let e = Pipeline::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("stages.s.cmd") && e.contains("nope.key"), "{e}");
        std::fs::write(dir.path().join("dvc.yaml"), "stages:\n  s:\n    cmd: x\n    outz: [a]\n").unwrap();
        assert!(Pipeline::load(dir.path()).unwrap_err().to_string().contains("stages.s.outz"));
    }
}
