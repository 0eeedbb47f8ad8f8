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
    interpolate_with(s, ctx, file, key, None)
}

/// [`interpolate`]; with `unpack` (in `cmd` only), a mapping spliced into a larger string
/// expands to command-line flags ([`unpack_dict`]).
fn interpolate_with(
    s: &str,
    ctx: &Value,
    file: &Path,
    key: &str,
    unpack: Option<&Parsing>,
) -> Result<Value, PipelineError> {
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
        if let (Some(parsing), Value::Map(_)) = (unpack, &v) {
            out.push_str(&unpack_dict(&v, parsing).map_err(|m| err(file, key, m))?);
            rest = &rest[i + end + 1..];
            continue;
        }
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

/// `.dvc/config`'s `[parsing]` section: how a mapping unpacks in `cmd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsing {
    /// `bool = boolean_optional`: `false` gives `--no-key` (default `store_true`: nothing).
    pub bool_optional: bool,
    /// `list = append`: `--key v1 --key v2` (default `nargs`: `--key v1 v2`).
    pub list_append: bool,
}

impl Parsing {
    /// Reads `[parsing]` from `.dvc/config` (and `config.local`) under `root`.
    fn load(root: &Path) -> Self {
        let mut out = Self::default();
        for name in ["config", "config.local"] {
            let text = std::fs::read_to_string(root.join(".dvc").join(name)).unwrap_or_default();
            if let Some(section) = kiln_cache::repo::read_config(&text).get("parsing") {
                if let Some(v) = section.get("bool") {
                    out.bool_optional = v.eq_ignore_ascii_case("boolean_optional");
                }
                if let Some(v) = section.get("list") {
                    out.list_append = v.eq_ignore_ascii_case("append");
                }
            }
        }
        out
    }
}

/// Python's `shlex.quote`.
fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".to_owned();
    }
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Nested mappings flattened to dotted keys (`flatten_dict`; empty mappings vanish).
fn flatten_into(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Map(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match x {
                    Value::Map(_) => flatten_into(&key, x, out),
                    _ => out.push((key, x.clone())),
                }
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// DVC's dictionary unpacking (`dvc/parsing/interpolate.py`, `to_str` of a dict): per
/// flattened entry, `true` gives `--key`, `false` nothing (or `--no-key`), a string
/// `--key <shell-quoted>`, a list `--key v1 v2` (or `--key v1 --key v2`), anything else
/// `--key <str()>`; joined with spaces.
fn unpack_dict(v: &Value, parsing: &Parsing) -> Result<String, String> {
    let mut entries = Vec::new();
    flatten_into("", v, &mut entries);
    let mut out = String::new();
    for (k, v) in entries {
        match v {
            Value::Bool(true) => out.push_str(&format!("--{k} ")),
            Value::Bool(false) if parsing.bool_optional => out.push_str(&format!("--no-{k} ")),
            Value::Bool(false) => {}
            Value::Str(s) => out.push_str(&format!("--{k} {} ", shell_quote(&s))),
            Value::List(items) => {
                for (n, i) in items.iter().enumerate() {
                    let text = match i {
                        Value::Str(s) => shell_quote(s),
                        Value::List(_) | Value::Map(_) => {
                            return Err(format!("Cannot interpolate nested iterable in '{k}'"));
                        }
                        // Python's f-string of the item: `True`, `None`, `1.0`.
                        other => other.python_repr(),
                    };
                    if parsing.list_append || n == 0 {
                        out.push_str(&format!("--{k} {text} "));
                    } else {
                        out.push_str(&format!("{text} "));
                    }
                }
            }
            // `str()`: `None`, `1.0`; a bool cannot get here.
            other => out.push_str(&format!("--{k} {} ", other.python_repr())),
        }
    }
    Ok(out.trim_end().to_owned())
}

fn interp_str(v: &Value, ctx: &Value, file: &Path, key: &str) -> Result<String, PipelineError> {
    interp_str_with(v, ctx, file, key, None)
}

fn interp_str_with(
    v: &Value,
    ctx: &Value,
    file: &Path,
    key: &str,
    unpack: Option<&Parsing>,
) -> Result<String, PipelineError> {
    match v {
        Value::Str(s) => match interpolate_with(s, ctx, file, key, unpack)? {
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

/// The interpolation context as DVC builds it (`dvc/parsing/context.py`): mappings merge
/// recursively; redefining anything else is an error naming both sources.
#[derive(Debug, Clone, Default)]
struct Context {
    value: Vec<(String, Value)>,
    /// Where each merged node came from: (dotted path, source).
    sources: Vec<(String, String)>,
    /// Files loaded: path (relative to the pipeline's directory) -> keys (`None`: whole).
    imports: Vec<(String, Option<Vec<String>>)>,
}

fn merge_map(
    into: &mut Vec<(String, Value)>,
    update: Vec<(String, Value)>,
    prefix: &str,
    source: &str,
    sources: &mut Vec<(String, String)>,
) -> Result<(), String> {
    for (k, v) in update {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (into.iter_mut().find(|(e, _)| *e == k), v) {
            (Some((_, Value::Map(existing))), Value::Map(m)) => merge_map(existing, m, &path, source, sources)?,
            (Some(_), _) => {
                // The source of the node being replaced: its own, or the nearest enclosing one.
                let before = sources
                    .iter()
                    .filter(|(p, _)| *p == path || path.starts_with(&format!("{p}.")))
                    .max_by_key(|(p, _)| p.len())
                    .map_or("<local>", |(_, s)| s.as_str());
                return Err(format!("cannot redefine '{path}' from '{source}' as it already exists in '{before}'"));
            }
            (None, v) => {
                sources.push((path, source.to_owned()));
                into.push((k, v));
            }
        }
    }
    Ok(())
}

impl Context {
    fn merge(&mut self, v: Value, source: &str) -> Result<(), String> {
        match v {
            Value::Map(m) => merge_map(&mut self.value, m, "", source, &mut self.sources),
            _ => Err(format!("expected a dictionary in '{source}'")),
        }
    }

    /// Loads `item` (`file` or `file:key1,key2`), relative to `wdir` (relative to `dir`).
    fn merge_file(&mut self, dir: &Path, wdir: &str, item: &str) -> Result<(), String> {
        let (path, keys) = item.split_once(':').map_or((item, None), |(p, k)| (p, Some(k)));
        let keys: Option<Vec<String>> =
            keys.map(|k| k.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect::<Vec<_>>());
        let keys = keys.filter(|k| !k.is_empty());
        let rel = crate::repro::norm(wdir, path);
        if let Some((_, imported)) = self.imports.iter().find(|(p, _)| *p == rel) {
            match (&keys, imported) {
                (None, None) => return Ok(()),
                (None, Some(_)) => return Err(format!("cannot load '{item}' as it's partially loaded already")),
                (Some(_), None) => return Err(format!("cannot partially load '{item}' as it's already loaded.")),
                (Some(k), Some(i)) if k.iter().any(|k| i.contains(k)) => {
                    return Err(format!("cannot load '{item}' as it's partially loaded already"));
                }
                _ => {}
            }
        }
        let full = dir.join(&rel);
        if !full.exists() {
            return Err(format!("'{rel}' does not exist"));
        }
        if full.is_dir() {
            return Err(format!("'{rel}' is a directory"));
        }
        let loaded = crate::load_params_file(&full).map_err(|e| e.to_string())?;
        let loaded = match &keys {
            None => loaded,
            Some(keys) => Value::Map(
                keys.iter()
                    .map(|k| {
                        loaded
                            .get(k)
                            .map(|v| (k.clone(), v.clone()))
                            .ok_or_else(|| format!("could not find '{k}' in '{rel}'"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        if !matches!(loaded, Value::Map(_)) {
            return Err(format!("expected a dictionary in file '{rel}'"));
        }
        self.merge(loaded, &rel)?;
        match self.imports.iter_mut().find(|(p, _)| *p == rel) {
            Some((_, Some(existing))) => existing.extend(keys.unwrap_or_default()),
            Some(_) => {}
            None => self.imports.push((rel, keys)),
        }
        Ok(())
    }

    /// Loads a `vars` list (top-level, or a stage's when `stage` is given).
    fn load_vars(
        &mut self,
        dir: &Path,
        wdir: &str,
        vars: Option<&Value>,
        stage: Option<&str>,
        file: &Path,
        at: &str,
    ) -> Result<(), PipelineError> {
        let items = match vars {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::List(items)) => items,
            Some(_) => return Err(err(file, at, "must be a list of file names or mappings")),
        };
        for (index, v) in items.iter().enumerate() {
            let done = match v {
                Value::Map(_) => {
                    if contains_interpolation(v) {
                        return Err(err(file, at, "interpolating is not allowed"));
                    }
                    let source = match stage {
                        Some(name) => format!("{name}.vars[{index}]"),
                        None => format!("vars[{index}]"),
                    };
                    self.merge(v.clone(), &source)
                }
                Value::Str(s) => {
                    if s.contains("${") {
                        return Err(err(file, at, "interpolating is not allowed"));
                    }
                    self.merge_file(dir, wdir, s)
                }
                _ => return Err(err(file, at, "each item is a file name or a mapping")),
            };
            done.map_err(|m| err(file, at, m))?;
        }
        Ok(())
    }

    fn to_value(&self) -> Value {
        Value::Map(self.value.clone())
    }
}

fn contains_interpolation(v: &Value) -> bool {
    match v {
        Value::Str(s) => s.contains("${"),
        Value::List(l) => l.iter().any(contains_interpolation),
        Value::Map(m) => m.iter().any(|(k, v)| k.contains("${") || contains_interpolation(v)),
        _ => false,
    }
}

/// Loads the global interpolation context: `params.yaml` beside `dvc.yaml`, then top-level
/// `vars`.
fn context(dir: &Path, doc: &Value, file: &Path) -> Result<Context, PipelineError> {
    let mut ctx = Context::default();
    if dir.join("params.yaml").is_file() {
        ctx.merge_file(dir, ".", "params.yaml").map_err(|m| err(file, "vars", m))?;
    }
    ctx.load_vars(dir, ".", doc.get("vars"), None, file, "vars")?;
    Ok(ctx)
}

/// The context of one stage: `ctx` (with `item`/`key` already set for generated stages) plus
/// the stage's own `vars`, loaded relative to its `wdir`.
fn stage_context(
    dir: &Path,
    name: &str,
    def: &Value,
    ctx: &Context,
    file: &Path,
) -> Result<Option<Context>, PipelineError> {
    let vars = def.get("vars");
    if matches!(vars, None | Some(Value::Null)) {
        return Ok(None);
    }
    let wdir = match def.get("wdir") {
        None => ".".to_owned(),
        Some(v) => interp_str(v, &ctx.to_value(), file, &format!("stages.{name}.wdir"))?,
    };
    let mut local = ctx.clone();
    local.load_vars(dir, &wdir, vars, Some(name), file, &format!("stages.{name}.vars"))?;
    Ok(Some(local))
}

/// One stage from its definition, interpolated with `ctx`.
fn build_stage(name: &str, def: &Value, ctx: &Value, file: &Path, parsing: &Parsing) -> Result<Stage, PipelineError> {
    let at = |k: &str| format!("stages.{name}.{k}");
    let Value::Map(keys) = def else { return Err(err(file, &format!("stages.{name}"), "expected a mapping")) };
    for (k, _) in keys {
        if !STAGE_KEYS.contains(&k.as_str()) && k != "matrix" {
            return Err(err(file, &at(k), "unknown stage key"));
        }
    }
    let cmd = match def.get("cmd") {
        Some(Value::List(items)) => Cmd::Many(
            items.iter().map(|i| interp_str_with(i, ctx, file, &at("cmd"), Some(parsing))).collect::<Result<_, _>>()?,
        ),
        Some(v @ Value::Str(_)) => Cmd::One(interp_str_with(v, ctx, file, &at("cmd"), Some(parsing))?),
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
fn with(ctx: &Context, add: &Value) -> Context {
    let mut c = ctx.clone();
    if let Value::Map(a) = add {
        for (k, v) in a {
            c.value.retain(|(e, _)| e != k);
            c.value.push((k.clone(), v.clone()));
            c.sources.retain(|(p, _)| p != k && !p.starts_with(&format!("{k}.")));
        }
    }
    c
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

/// The line (1-based) of a dotted key (`stages.train@1.cmd`, `plots[0]`) in block-style YAML:
/// each part is looked for below the previous one, deeper indented; the last part found
/// gives the line.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    let (mut from, mut to, mut found, mut parent): (usize, usize, Option<usize>, Option<usize>) =
        (0, lines.len(), None, None);
    for part in key.split('.') {
        let part = part.split(['@', '[']).next().unwrap_or(part);
        let hit = (from..to).find(|&i| {
            let l = lines[i];
            let t = l.trim_start();
            let t = t.strip_prefix("- ").unwrap_or(t).trim_start().trim_start_matches(['"', '\'']);
            !blank(l)
                && parent.is_none_or(|p| indent(l) > p)
                && t.strip_prefix(part).is_some_and(|r| r.trim_start_matches(['"', '\'']).trim_start().starts_with(':'))
        });
        let Some(hit) = hit else { break };
        found = Some(hit);
        let own = indent(lines[hit]);
        parent = Some(own);
        from = hit + 1;
        to = (from..lines.len()).find(|&i| !blank(lines[i]) && indent(lines[i]) <= own).unwrap_or(lines.len());
    }
    found.map(|i| i + 1)
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
        Self::parse(dir, &file, &text).map_err(|e| match e {
            PipelineError::Invalid { file: f, key, message } if f == file && !key.is_empty() => {
                match line_of(&text, &key) {
                    Some(line) => PipelineError::At { file: f, line, key, message },
                    None => PipelineError::Invalid { file: f, key, message },
                }
            }
            other => other,
        })
    }

    fn parse(dir: &Path, file: &Path, text: &str) -> Result<Self, PipelineError> {
        let file = file.to_owned();
        let doc = from_yaml(text).map_err(|e| err(&file, "", e.to_string()))?;
        let Value::Map(top) = &doc else { return Err(err(&file, "", "expected a mapping with `stages`")) };
        for (k, _) in top {
            if !["stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"].contains(&k.as_str()) {
                return Err(err(&file, k, "unknown top-level key"));
            }
        }
        let gctx = context(dir, &doc, &file)?;
        let ctx = gctx.to_value();
        let parsing = Parsing::load(dir);
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
                    let c = with(&gctx, &add);
                    let c = stage_context(dir, &gen_name, &template, &c, &file)?.unwrap_or(c);
                    stages.push(build_stage(&gen_name, &template, &c.to_value(), &file, &parsing)?);
                }
            } else {
                match stage_context(dir, name, def, &gctx, &file)? {
                    Some(local) => stages.push(build_stage(name, def, &local.to_value(), &file, &parsing)?),
                    None => stages.push(build_stage(name, def, &ctx, &file, &parsing)?),
                }
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

    #[test]
    fn stage_vars_extend_the_context_of_their_stage_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("params.yaml"), "lr: 0.1\nmodel: {depth: 3}\n").unwrap();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/cfg.yaml"), "x: 5\ny: {z: hi}\nw: 7\n").unwrap();
        let yaml = "vars:\n  - g: global\nstages:\n  a:\n    wdir: sub\n    vars:\n      - local: 1\n        model: {width: 4}\n      - cfg.yaml:x,y\n    cmd: echo ${local} ${model.width} ${model.depth} ${x} ${y.z} ${g} ${lr}\n  b:\n    cmd: echo ${g}\n";
        std::fs::write(d.join("dvc.yaml"), yaml).unwrap();
        let p = Pipeline::load(d).unwrap();
        assert_eq!(p.stages[0].cmd, Cmd::One("echo 1 4 3 5 hi global 0.1".into()));
        std::fs::write(d.join("dvc.yaml"), yaml.replace("echo ${g}", "echo ${local}")).unwrap();
        let e = Pipeline::load(d).unwrap_err().to_string();
        assert!(e.contains("stages.b.cmd") && e.contains("Could not find 'local'"), "{e}");
        for (from, want) in [
            ("- local: 1", "cannot redefine 'lr' from 'a.vars[0]' as it already exists in 'params.yaml'"),
            (
                "model: {width: 4}",
                "cannot redefine 'model.depth' from 'a.vars[0]' as it already exists in 'params.yaml'",
            ),
            ("- cfg.yaml:x,y", "cannot redefine 'g' from 'sub/cfg.yaml' as it already exists in 'vars[0]'"),
        ] {
            let to = match from {
                "- local: 1" => "- lr: 1",
                "model: {width: 4}" => "model: {depth: 4}",
                _ => "- cfg.yaml:x,y\n      - g: 2",
            };
            let to = if from == "- cfg.yaml:x,y" { "- sub2.yaml".to_owned() } else { to.to_owned() };
            std::fs::write(d.join("sub/sub2.yaml"), "g: 2\n").unwrap();
            let y = if from == "- cfg.yaml:x,y" { yaml.replace(from, "- sub2.yaml") } else { yaml.replace(from, &to) };
            std::fs::write(d.join("dvc.yaml"), y).unwrap();
            let e = Pipeline::load(d).unwrap_err().to_string();
            let want = want.replace("sub/cfg.yaml", "sub/sub2.yaml");
            assert!(e.contains("stages.a.vars") && e.contains(&want), "{e}");
        }
    }

    #[test]
    fn dicts_unpack_in_cmd_like_dvc() {
        let v = crate::value::from_yaml(
            "stopwords: [the, \"a b\"]\nmin_count: 2\nflag: true\noff: false\nlr: 1.0\nname: \"x y\"\nnested: {a: 1, b: [1, 2], e: {}}\nnone: null\nx: [true, null, 1.5, \"it's\"]\ne: []\ns: ''\n",
        )
        .unwrap();
        assert_eq!(
            unpack_dict(&v, &Parsing::default()).unwrap(),
            "--stopwords the 'a b' --min_count 2 --flag --lr 1.0 --name 'x y' --nested.a 1 --nested.b 1 2 --none None --x True None 1.5 'it'\"'\"'s' --s ''"
        );
        let p = Parsing { bool_optional: true, list_append: true };
        assert_eq!(
            unpack_dict(&crate::value::from_yaml("a: [1, 2]\nb: false\n").unwrap(), &p).unwrap(),
            "--a 1 --a 2 --no-b"
        );
        assert!(
            unpack_dict(&crate::value::from_yaml("a: [[1]]\n").unwrap(), &p)
                .unwrap_err()
                .contains("nested iterable in 'a'")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("params.yaml"), "f: {n: 2, on: true}\n").unwrap();
        std::fs::write(dir.path().join("dvc.yaml"), "stages:\n  s:\n    cmd: run ${f} x\n    deps:\n    - d${f}\n")
            .unwrap();
        let e = Pipeline::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("stages.s.deps") && e.contains("Cannot interpolate data of type 'dict'"), "{e}");
        std::fs::write(dir.path().join("dvc.yaml"), "stages:\n  s:\n    cmd:\n    - run ${f} x\n    - b\n").unwrap();
        assert_eq!(
            Pipeline::load(dir.path()).unwrap().stages[0].cmd,
            Cmd::Many(vec!["run --n 2 --on x".into(), "b".into()])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let yaml = "vars:\n  - a: 1\nstages:\n  prep:\n    cmd: echo\n  ev:\n    foreach: [x, y]\n    do:\n      cmd: echo\n      outs:\n      - \"r/${nope}.json\"\n";
        assert_eq!(line_of(yaml, "stages.ev@x.outs"), Some(10));
        assert_eq!(line_of(yaml, "stages.prep.cmd"), Some(5));
        assert_eq!(line_of(yaml, "stages.ev.do.cmd"), Some(9));
        assert_eq!(line_of(yaml, "vars"), Some(1));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dvc.yaml"), yaml).unwrap();
        let e = Pipeline::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("dvc.yaml:10, key `stages.ev@x.outs`: Could not find 'nope'"), "{e}");
        std::fs::write(dir.path().join("dvc.yaml"), "stages:\n  s:\n    cmd: [x\n").unwrap();
        let e = Pipeline::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("dvc.yaml") && e.contains("line 3"), "{e}");
    }
}
