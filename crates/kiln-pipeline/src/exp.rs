//! Experiments (`shared/spec/pipelines.md` §10), stored the way DVC stores them: each one a git
//! commit on top of its baseline, named by the ref `refs/exps/<baseline[..2]>/<baseline[2..]>/
//! <name>`, so `dvc exp show` lists kiln's experiments and the other way round.
//!
//! - `exp run -S key=value` edits the params files in the workspace, runs `repro` there and
//!   commits the result to a new experiment ref; the workspace keeps the results, and neither
//!   the branch nor the index moves.
//! - `exp run --queue` snapshots the workspace with the edits applied as a commit under
//!   `refs/kiln/queue/<name>` (DVC keeps its queue in a celery stash, which kiln does not read
//!   or write); `exp run --run-all --jobs N` runs each snapshot in its own directory under
//!   `.dvc/tmp/exps/` that shares the cache, N at a time, and records each as an experiment.
//! - `exp show` tabulates the workspace, its baseline and the baseline's experiments with their
//!   metrics, params and dependency hashes; `exp apply` writes an experiment's files into the
//!   workspace and checks its outputs out of the cache; `exp remove` deletes refs.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_cache::Repo;

use crate::PipelineError;
use crate::compare::{self, Revision};
use crate::git::{self, git};
use crate::value::{Value, from_yaml, python_float};
use crate::{Pipeline, ReproOptions};

const QUEUE_PREFIX: &str = "refs/kiln/queue/";

fn invalid(what: &str, message: impl Into<String>) -> PipelineError {
    PipelineError::Invalid { file: PathBuf::from(what), key: String::new(), message: message.into() }
}

/// One `-S [file:]key=value` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The params file (relative to the project root), `params.yaml` by default.
    pub file: String,
    pub key: String,
    /// The value as given; parsed as YAML (`0.2` is a number, `true` a boolean).
    pub value: String,
}

impl Override {
    /// Parses `[file:]key=value`.
    ///
    /// # Errors
    /// No `=`, or an empty key.
    pub fn parse(s: &str) -> Result<Self, PipelineError> {
        let (target, value) = s.split_once('=').ok_or_else(|| invalid(s, "expected [<file>:]<key>=<value>"))?;
        let (file, key) = match target.rsplit_once(':') {
            Some((f, k)) => (f.to_owned(), k.to_owned()),
            None => ("params.yaml".to_owned(), target.to_owned()),
        };
        if key.is_empty() || key.split('.').any(str::is_empty) || file.is_empty() {
            return Err(invalid(s, "expected [<file>:]<key>=<value> with a dotted key"));
        }
        if file.starts_with('/') || file.split('/').any(|s| s == "..") {
            return Err(invalid(s, "the params file must be inside the project"));
        }
        Ok(Self { file, key, value: value.to_owned() })
    }
}

impl Override {
    /// The values of a sweep (Hydra's syntax, as DVC takes it): `a,b,c` (commas outside brackets
    /// and quotes), `range(start, stop[, step])`, `choice(a, b)`; `None` for a single value.
    ///
    /// # Errors
    /// A malformed `range(…)`.
    pub fn sweep(&self) -> Result<Option<Vec<String>>, PipelineError> {
        let v = self.value.trim();
        if let Some(args) = v.strip_prefix("range(").and_then(|r| r.strip_suffix(')')) {
            return range_values(args).map(Some).map_err(|m| invalid(&self.value, m));
        }
        let inner = v.strip_prefix("choice(").and_then(|r| r.strip_suffix(')')).unwrap_or(v);
        let parts = split_top_level(inner);
        Ok((parts.len() > 1 || inner.len() != v.len()).then_some(parts))
    }
}

/// Every combination of the overrides' sweeps (the cartesian product, first override slowest),
/// or the overrides themselves when none sweeps.
///
/// # Errors
/// A malformed sweep.
pub fn sweeps(overrides: &[Override]) -> Result<Vec<Vec<Override>>, PipelineError> {
    let mut out: Vec<Vec<Override>> = vec![Vec::new()];
    for o in overrides {
        let values = o.sweep()?.unwrap_or_else(|| vec![o.value.clone()]);
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(Override { value: v.clone(), ..o.clone() });
                    next
                })
            })
            .collect();
    }
    Ok(out)
}

/// `a, [b, c], 'd,e'` → `a`, `[b, c]`, `'d,e'`.
fn split_top_level(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_owned());
    parts
}

/// Python's `range` over integers, or over floats as Hydra extends it.
fn range_values(args: &str) -> Result<Vec<String>, String> {
    let nums: Vec<f64> = args
        .split(',')
        .map(|a| a.trim().parse::<f64>().map_err(|_| format!("range(): `{}` is not a number", a.trim())))
        .collect::<Result<_, _>>()?;
    let (start, stop, step) = match nums.as_slice() {
        [stop] => (0.0, *stop, 1.0),
        [start, stop] => (*start, *stop, 1.0),
        [start, stop, step] => (*start, *stop, *step),
        _ => return Err("range() takes 1 to 3 numbers".into()),
    };
    if step == 0.0 || !step.is_finite() {
        return Err("range(): the step must not be 0".into());
    }
    let ints = args.split(',').all(|a| !a.contains(['.', 'e', 'E']));
    let mut out = Vec::new();
    for i in 0..10_000u32 {
        let v = start + f64::from(i) * step;
        if (step > 0.0 && v >= stop) || (step < 0.0 && v <= stop) {
            return Ok(out);
        }
        #[allow(clippy::cast_possible_truncation, reason = "integral values of an integer range")]
        out.push(if ints { (v as i64).to_string() } else { python_float(v) });
    }
    Err("range(): more than 10,000 values".into())
}

/// The value as it is written into a YAML file: the YAML reading of `raw`, rendered in block
/// style's scalar form (strings quoted only where YAML needs it).
fn yaml_text(raw: &str) -> Result<String, PipelineError> {
    Ok(override_value(raw)?.yaml_flow())
}

/// An override's value, typed as DVC's Hydra types it (its YAML reading), whatever the file.
fn override_value(raw: &str) -> Result<Value, PipelineError> {
    from_yaml(raw).map_err(|e| invalid(raw, format!("not a YAML value: {e}")))
}

/// `-S` of a key the params file does not have (DVC needs `+key` for that).
fn no_such_param(key: &str) -> PipelineError {
    invalid(key, "no such param to set (kiln, like DVC, only changes existing params)")
}

/// Sets `key` (dotted) to `value` in a block-style YAML document, changing only that value's
/// text: comments, order and the rest of the formatting stay as they were (what DVC's ruamel
/// round trip keeps). Written by hand because no YAML crate round-trips formatting.
///
/// # Errors
/// The key is missing (as in DVC, `-S` changes existing params), or its value is not a plain
/// scalar on the key's line.
pub fn set_yaml(text: &str, key: &str, value: &str) -> Result<String, PipelineError> {
    let want: Vec<&str> = key.split('.').collect();
    let rendered = yaml_text(value)?;
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = String::with_capacity(text.len() + rendered.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if done || trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            out.push_str(line);
            continue;
        }
        let indent = body.len() - trimmed.len();
        let Some((k, rest)) = split_key(trimmed) else {
            out.push_str(line);
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).chain([k.as_str()]).collect();
        if path == want {
            let (val, comment) = split_comment(rest);
            let val = val.trim();
            if val.is_empty() || val.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
                return Err(invalid(key, "kiln can only set a plain value written on the key's line"));
            }
            let prefix = &body[..body.len() - rest.len()];
            out.push_str(prefix);
            out.push(' ');
            out.push_str(&rendered);
            if !comment.is_empty() {
                out.push_str("  ");
                out.push_str(comment);
            }
            out.push_str(&line[body.len()..]);
            done = true;
            continue;
        }
        if rest.trim().is_empty() || rest.trim_start().starts_with('#') {
            stack.push((indent, k));
        }
        out.push_str(line);
    }
    if !done {
        return Err(no_such_param(key));
    }
    Ok(out)
}

/// Sets `key` (dotted) to `value` in a JSON document and writes the whole document again as
/// DVC does (its `modify_json` is a `json.load` and a `json.dump` with the defaults: one line,
/// `", "` and `": "`, ASCII only, keys in their order, no newline at the end).
///
/// # Errors
/// The text is not JSON, or the key is missing (as in DVC, `-S` changes existing params).
pub fn set_json(text: &str, key: &str, value: &str) -> Result<String, PipelineError> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| invalid(key, format!("not JSON: {e}")))?;
    let new = override_value(value)?;
    let mut at = &mut doc;
    for part in key.split('.') {
        let Value::Map(entries) = at else { return Err(no_such_param(key)) };
        at = entries.iter_mut().find(|(k, _)| k == part).map(|(_, v)| v).ok_or_else(|| no_such_param(key))?;
    }
    *at = new;
    Ok(doc.python_json())
}

/// Sets `key` (dotted) to `value` in a TOML document, changing only that value's text, as
/// DVC's tomlkit round trip does: the comment and spacing around it stay, and a string keeps
/// its quoting (`'literal'` or `"basic"`). Written by hand because the `toml` crate does not
/// round-trip formatting. One thing differs: tomlkit also writes every *other* array again
/// (`["a",  "b"]` becomes `["a", "b"]`), which kiln leaves as it was.
///
/// # Errors
/// The key is missing (as in DVC, `-S` changes existing params) or inside an array of tables,
/// its value spans lines or is an inline table, or the new value is a mapping or null (TOML
/// has no null).
pub fn set_toml(text: &str, key: &str, value: &str) -> Result<String, PipelineError> {
    let want: Vec<String> = key.split('.').map(str::to_owned).collect();
    let new = override_value(value)?;
    let mut table: Option<Vec<String>> = Some(Vec::new());
    let mut out = String::with_capacity(text.len() + value.len());
    let mut done = false;
    // Lines inside a value that spans lines (a multi-line string or array) are not keys.
    let mut open: Option<TomlOpen> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if let Some(o) = open {
            open = o.after(body);
            out.push_str(line);
            continue;
        }
        let trimmed = body.trim_start();
        if done || trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
            continue;
        }
        if trimmed.starts_with("[[") {
            table = None; // an array of tables: kiln does not set params inside one
            out.push_str(line);
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            table = toml_key(header).and_then(|(k, rest)| rest.trim_start().starts_with(']').then_some(k));
            out.push_str(line);
            continue;
        }
        let Some((k, rest)) = toml_key(trimmed) else {
            out.push_str(line);
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            out.push_str(line);
            continue;
        };
        let value_at = body.len() - rest.len() + (rest.len() - rest.trim_start().len());
        let (old, _) = toml_split_comment(&body[value_at..]);
        let old = old.trim_end();
        open = TomlOpen::start(old);
        let is_target = table.as_ref().is_some_and(|t| t.iter().chain(&k).eq(want.iter()));
        if !is_target {
            out.push_str(line);
            continue;
        }
        if open.is_some() || old.starts_with('{') {
            return Err(invalid(key, "kiln can only set a value written on one line (not an inline table)"));
        }
        out.push_str(&body[..value_at]);
        out.push_str(&toml_text(&new, old.starts_with('\''))?);
        out.push_str(&body[value_at + old.len()..]);
        out.push_str(&line[body.len()..]);
        done = true;
    }
    if !done {
        return Err(no_such_param(key));
    }
    Ok(out)
}

/// A TOML value that spans lines, waiting for its end.
#[derive(Clone, Copy)]
enum TomlOpen {
    /// A `"""` or `\'\'\'` string.
    Str(&'static str),
    /// An array, this many brackets deep.
    Array(usize),
}

impl TomlOpen {
    /// Whether the value `v` (from its first character to the end of the line, comment
    /// removed) goes on past this line.
    fn start(v: &str) -> Option<Self> {
        for q in ["\"\"\"", "\'\'\'"] {
            if let Some(after) = v.strip_prefix(q) {
                return (!after.contains(q)).then_some(Self::Str(q));
            }
        }
        if v.starts_with('[') {
            return Self::Array(0).after(v);
        }
        None
    }

    /// What is still open after `line`.
    fn after(self, line: &str) -> Option<Self> {
        match self {
            Self::Str(q) => (!line.contains(q)).then_some(self),
            Self::Array(depth) => {
                let mut depth = depth;
                let mut quote = None;
                for c in line.chars() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '"' | '\'') => quote = Some(c),
                        (None, '[') => depth += 1,
                        (None, ']') => depth = depth.saturating_sub(1),
                        (None, '#') => break,
                        _ => {}
                    }
                }
                (depth > 0).then_some(Self::Array(depth))
            }
        }
    }
}

/// A TOML key (bare, `"basic"` or `'literal'` parts joined by dots) at the start of `s`, and
/// the rest of `s`.
fn toml_key(s: &str) -> Option<(Vec<String>, &str)> {
    let mut parts = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let (part, after) = match rest.chars().next()? {
            q @ ('"' | '\'') => {
                let end = rest[1..].find(q)? + 1;
                (rest[1..end].to_owned(), &rest[end + 1..])
            }
            _ => {
                let end =
                    rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
                if end == 0 {
                    return None;
                }
                (rest[..end].to_owned(), &rest[end..])
            }
        };
        parts.push(part);
        rest = after.trim_start();
        match rest.strip_prefix('.') {
            Some(r) => rest = r.trim_start(),
            None => return Some((parts, rest)),
        }
    }
}

/// A TOML value's text and its trailing comment (`#` outside strings).
fn toml_split_comment(v: &str) -> (&str, &str) {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in v.char_indices() {
        match (quote, c) {
            // In a basic string, `\` escapes the next character (a `\"` does not end it).
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return (&v[..i], &v[i..]),
            _ => {}
        }
    }
    (v, "")
}

/// A value as tomlkit writes it: a string as a literal `'…'` where the old one was literal
/// and the text allows it, else a basic `"…"` string.
fn toml_text(v: &Value, literal: bool) -> Result<String, PipelineError> {
    Ok(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => python_float(*f),
        Value::Str(s) if literal && !s.contains(['\'', '\n', '\r']) => format!("'{s}'"),
        Value::Str(s) => {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if u32::from(c) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|i| toml_text(i, false)).collect::<Result<_, _>>()?;
            format!("[{}]", items.join(", "))
        }
        Value::Null => return Err(invalid("null", "TOML has no null value")),
        Value::Map(_) => return Err(invalid("{…}", "kiln sets a TOML param to a plain value or a list, not a table")),
    })
}

/// `key: rest` of a mapping line (the key unquoted), or `None` for other lines.
fn split_key(line: &str) -> Option<(String, &str)> {
    if let Some(q) = line.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = line[1..].find(q)? + 1;
        let rest = line[end + 1..].trim_start().strip_prefix(':')?;
        return Some((line[1..end].to_owned(), rest));
    }
    let colon = line.find(": ").or_else(|| line.strip_suffix(':').map(|s| s.len()))?;
    let k = line[..colon].trim_end();
    if k.contains('#') {
        return None;
    }
    Some((k.to_owned(), &line[colon + 1..]))
}

/// A value's text and its trailing ` # comment`, if any (not inside quotes).
fn split_comment(rest: &str) -> (&str, &str) {
    let mut quote = None;
    let bytes = rest.as_bytes();
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i > 0 && bytes[i - 1].is_ascii_whitespace() => return (&rest[..i], &rest[i..]),
            _ => {}
        }
    }
    (rest, "")
}

/// Applies overrides to the params files under `root`.
///
/// # Errors
/// A missing file or key, a file that is not YAML, JSON or TOML.
pub fn apply_overrides(root: &Path, overrides: &[Override]) -> Result<(), PipelineError> {
    for (file, text) in overridden(root, overrides)? {
        kiln_cache::write_atomic(&root.join(file), text.as_bytes())?;
    }
    Ok(())
}

/// The new text of each params file the overrides change (files relative to `root`, in order
/// of first mention), the workspace untouched.
///
/// # Errors
/// As [`apply_overrides`].
fn overridden(root: &Path, overrides: &[Override]) -> Result<Vec<(String, String)>, PipelineError> {
    let mut files: Vec<(String, String)> = Vec::new();
    for o in overrides {
        let path = root.join(&o.file);
        let set = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => set_yaml,
            Some("json") => set_json,
            Some("toml") => set_toml,
            _ => return Err(invalid(&o.file, "kiln sets params in YAML, JSON and TOML files only")),
        };
        let i = match files.iter().position(|(f, _)| *f == o.file) {
            Some(i) => i,
            None => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| PipelineError::Io { path: path.clone(), source })?;
                files.push((o.file.clone(), text));
                files.len() - 1
            }
        };
        files[i].1 = set(&files[i].1, &o.key, &o.value).map_err(|e| match e {
            PipelineError::Invalid { message, .. } => {
                PipelineError::Invalid { file: path.clone(), key: o.key.clone(), message }
            }
            other => other,
        })?;
    }
    Ok(files)
}

/// A fresh experiment name in DVC's style (`adjective-noun`).
#[must_use]
pub fn generate_name() -> String {
    const ADJ: [&str; 24] = [
        "amber", "brisk", "calm", "dense", "eager", "fiery", "glad", "hazy", "icy", "jolly", "keen", "lush", "mild",
        "neat", "odd", "plush", "quick", "rapt", "sly", "tidy", "vast", "warm", "young", "zany",
    ];
    const NOUN: [&str; 24] = [
        "anvil", "bloom", "crest", "delta", "ember", "flint", "grove", "heron", "inlet", "jetty", "knoll", "larch",
        "marsh", "nook", "oriel", "pylon", "quail", "ridge", "shoal", "thorn", "umber", "vale", "wharf", "yarrow",
    ];
    // A random seed per call from the standard library's hasher keys (no rng dependency).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let r = h.finish();
    let pick = |n: u64, len: usize| usize::try_from(n % len as u64).unwrap_or(0);
    format!("{}-{}", ADJ[pick(r, ADJ.len())], NOUN[pick(r >> 32, NOUN.len())])
}

fn check_name(name: &str) -> Result<(), PipelineError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['.', '-'])
        && !name.contains("..")
        && !name.ends_with(".lock");
    if ok { Ok(()) } else { Err(invalid(name, "an experiment name is letters, digits, '-', '_' and '.'")) }
}

/// The ref prefix of `baseline`'s experiments.
fn exp_prefix(baseline: &str) -> String {
    format!("refs/exps/{}/{}/", &baseline[..2], &baseline[2..])
}

/// One experiment or queued run.
#[derive(Debug, Clone)]
pub struct ExpRef {
    pub name: String,
    pub commit: String,
    /// Unix seconds of the commit.
    pub time: i64,
    pub queued: bool,
}

fn list_refs(root: &Path, prefix: &str) -> Result<Vec<ExpRef>, PipelineError> {
    let out = git(
        root,
        &["for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(committerdate:unix) %(refname)", prefix],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let commit = it.next()?.to_owned();
            let time = it.next()?.parse().ok()?;
            let name = it.next()?.strip_prefix(prefix)?;
            (!name.contains('/')).then(|| ExpRef {
                name: name.to_owned(),
                commit,
                time,
                queued: prefix == QUEUE_PREFIX,
            })
        })
        .collect())
}

/// The experiments of `baseline`, newest first.
///
/// # Errors
/// git failing.
pub fn experiments(root: &Path, baseline: &str) -> Result<Vec<ExpRef>, PipelineError> {
    list_refs(root, &exp_prefix(baseline))
}

/// The queued runs, newest first.
///
/// # Errors
/// git failing.
pub fn queued(root: &Path) -> Result<Vec<ExpRef>, PipelineError> {
    list_refs(root, QUEUE_PREFIX)
}

/// Every experiment ref named `name`, whatever its baseline.
fn find_exp(root: &Path, name: &str) -> Result<Vec<(String, String)>, PipelineError> {
    let out = git(root, &["for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, r)| r.rsplit('/').next() == Some(name) && r.split('/').count() == 5)
        .map(|(c, r)| (c.to_owned(), r.to_owned()))
        .collect())
}

fn head(root: &Path) -> Result<String, PipelineError> {
    git::rev_parse(root, "HEAD")
        .map_err(|_| invalid("HEAD", "experiments need a git repository with at least one commit"))
}

fn name_free(root: &Path, baseline: &str, name: &str) -> Result<(), PipelineError> {
    let taken = experiments(root, baseline)?.iter().chain(queued(root)?.iter()).any(|e| e.name == name);
    if taken {
        return Err(invalid(name, format!("experiment '{name}' already exists; choose another name with -n")));
    }
    Ok(())
}

/// `exp run` in the workspace: applies the overrides, runs `repro`, records the result as
/// experiment `name` (generated when `None`). Returns the name.
///
/// # Errors
/// A bad override, a failed stage (nothing is recorded), git failing.
pub fn run_in_workspace(
    repo: &Repo,
    overrides: &[Override],
    name: Option<&str>,
    opts: &ReproOptions,
    log: &mut (dyn Write + Send),
) -> Result<String, PipelineError> {
    let baseline = head(&repo.root)?;
    let name = name.map_or_else(generate_name, str::to_owned);
    check_name(&name)?;
    name_free(&repo.root, &baseline, &name)?;
    apply_overrides(&repo.root, overrides)?;
    let _ = writeln!(log, "Reproducing experiment '{name}'");
    let pipeline = Pipeline::load(&repo.root)?;
    crate::repro(repo, &pipeline, opts, log)?;
    // The commit holds the whole git work tree (the project may be a subdirectory of it).
    let top = PathBuf::from(git(&repo.root, &["rev-parse", "--show-toplevel"])?.trim());
    record(&repo.root, &top, &baseline, &name)?;
    Ok(name)
}

/// Commits `work_tree` on `baseline` as experiment `name`.
fn record(root: &Path, work_tree: &Path, baseline: &str, name: &str) -> Result<String, PipelineError> {
    let commit = git::commit_tree(root, work_tree, baseline, &format!("kiln: commit experiment {name}"))?;
    let r = format!("{}{name}", exp_prefix(baseline));
    git(root, &["update-ref", &r, &commit])?;
    Ok(commit)
}

/// `exp run --queue`: snapshots the workspace with the overrides applied (the workspace itself
/// is left as it was) for a later `--run-all`. Returns the name.
///
/// # Errors
/// A bad override, git failing.
pub fn enqueue(repo: &Repo, overrides: &[Override], name: Option<&str>) -> Result<String, PipelineError> {
    let baseline = head(&repo.root)?;
    let name = name.map_or_else(generate_name, str::to_owned);
    check_name(&name)?;
    name_free(&repo.root, &baseline, &name)?;
    // The workspace as it is, with the params files' new text put straight into the commit's
    // index: nothing in the workspace is written or copied.
    let top = PathBuf::from(git(&repo.root, &["rev-parse", "--show-toplevel"])?.trim());
    let prefix = git(&repo.root, &["rev-parse", "--show-prefix"])?.trim().to_owned();
    let replaced: Vec<(String, String)> =
        overridden(&repo.root, overrides)?.into_iter().map(|(f, text)| (format!("{prefix}{f}"), text)).collect();
    let commit =
        git::commit_tree_with(&repo.root, &top, &baseline, &format!("kiln: queued experiment {name}"), &replaced)?;
    git(&repo.root, &["update-ref", &format!("{QUEUE_PREFIX}{name}"), &commit])?;
    Ok(name)
}

fn tempdir_in(repo: &Repo, what: &str) -> Result<tempfile::TempDir, PipelineError> {
    let dir = repo.root.join(".dvc").join("tmp").join("exps");
    std::fs::create_dir_all(&dir).map_err(|source| PipelineError::Io { path: dir.clone(), source })?;
    tempfile::Builder::new()
        .prefix(&format!("{what}-"))
        .tempdir_in(&dir)
        .map_err(|source| PipelineError::Io { path: dir, source })
}

/// The outcome of one queued run.
#[derive(Debug)]
pub struct Ran {
    pub name: String,
    pub result: Result<String, PipelineError>,
    /// What its `repro` printed.
    pub log: String,
}

/// `exp run --run-all --jobs N`: every queued run, `jobs` at a time, each in its own directory
/// (sharing the cache), recorded as experiments of their baselines. A run leaves the queue
/// whether it succeeds or fails (failures are reported in the result), unless interrupted.
///
/// # Errors
/// git failing to list the queue.
pub fn run_queued(repo: &Repo, jobs: usize, log: &(dyn Fn(&Ran) + Sync)) -> Result<Vec<Ran>, PipelineError> {
    let mut todo = queued(&repo.root)?;
    todo.reverse(); // oldest first
    let next = std::sync::Mutex::new(todo.into_iter());
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                // The lock is taken and released inside `take`, never held across a run.
                let take = || next.lock().ok().and_then(|mut it| it.next());
                while let Some(item) = take() {
                    let mut out = Vec::new();
                    let result = run_one(repo, &item, &mut out);
                    // An interrupted run stays queued (and the rest are not started).
                    if matches!(result, Err(PipelineError::Interrupted)) {
                        break;
                    }
                    let _ = git(&repo.root, &["update-ref", "-d", &format!("{QUEUE_PREFIX}{}", item.name)]);
                    let ran = Ran { name: item.name, result, log: String::from_utf8_lossy(&out).into_owned() };
                    log(&ran);
                    if let Ok(mut d) = done.lock() {
                        d.push(ran);
                    }
                }
            });
        }
    });
    Ok(done.into_inner().unwrap_or_default())
}

fn run_one(repo: &Repo, item: &ExpRef, log: &mut Vec<u8>) -> Result<String, PipelineError> {
    let baseline = git(&repo.root, &["rev-parse", &format!("{}^", item.commit)])?.trim().to_owned();
    let work = tempdir_in(repo, "run")?;
    let root = git::export(&repo.root, &item.commit, &work.path().join("w"))?;
    // The run shares this project's cache (objects and run-cache) through its local config.
    let cache = std::path::absolute(&repo.cache.root)
        .map_err(|source| PipelineError::Io { path: repo.cache.root.clone(), source })?;
    let local = format!("[cache]\n    dir = {}\n", cache.display());
    std::fs::create_dir_all(root.join(".dvc")).map_err(|source| PipelineError::Io { path: root.clone(), source })?;
    kiln_cache::write_atomic(&root.join(".dvc").join("config.local"), local.as_bytes())?;
    let run_repo = Repo::find(&root)?;
    run_repo.checkout(&[], true)?;
    let _ = writeln!(log, "Reproducing experiment '{}'", item.name);
    let pipeline = Pipeline::load(&root)?;
    crate::repro(&run_repo, &pipeline, &ReproOptions { jobs: 1, ..ReproOptions::default() }, log)?;
    let git_root = work.path().join("w");
    record(&repo.root, &git_root, &baseline, &item.name)
}

/// `exp apply`: the experiment's files written into the workspace (the branch and index stay),
/// its cached outputs checked out. Returns the commit.
///
/// # Errors
/// No such experiment, or more than one (different baselines), git or the cache failing.
pub fn apply(repo: &Repo, name: &str) -> Result<String, PipelineError> {
    let commit = the_exp(repo, name)?;
    git(&repo.root, &["restore", &format!("--source={commit}"), "--worktree", "--", ":/"])?;
    repo.checkout(&[], true)?;
    crate::repro::checkout_outs(repo, &repo.root, true)?;
    Ok(commit)
}

/// `exp branch`: a git branch at experiment `name`'s commit. Returns the commit.
///
/// # Errors
/// No such experiment (or several), a branch of that name exists, git failing.
pub fn branch(repo: &Repo, name: &str, branch: &str) -> Result<String, PipelineError> {
    let commit = the_exp(repo, name)?;
    git(&repo.root, &["check-ref-format", "--branch", branch])
        .map_err(|_| invalid(branch, format!("'{branch}' is not a valid branch name")))?;
    if git::rev_parse(&repo.root, &format!("refs/heads/{branch}")).is_ok() {
        return Err(invalid(branch, format!("a branch '{branch}' already exists")));
    }
    git(&repo.root, &["branch", "--", branch, &commit])?;
    Ok(commit)
}

/// The commit of the one experiment named `name`.
fn the_exp(repo: &Repo, name: &str) -> Result<String, PipelineError> {
    let found = find_exp(&repo.root, name)?;
    match found.as_slice() {
        [(c, _)] => Ok(c.clone()),
        [] => Err(invalid(name, format!("unknown experiment '{name}'"))),
        _ => Err(invalid(name, format!("'{name}' names experiments of several baselines"))),
    }
}

/// `exp remove`: deletes the named experiments or queued runs. Returns what was removed.
///
/// # Errors
/// An unknown name (nothing is removed then).
pub fn remove(repo: &Repo, names: &[String], all_queued: bool) -> Result<Vec<String>, PipelineError> {
    let mut refs = Vec::new();
    for n in names {
        let mut hits: Vec<String> = find_exp(&repo.root, n)?.into_iter().map(|(_, r)| r).collect();
        if queued(&repo.root)?.iter().any(|q| q.name == *n) {
            hits.push(format!("{QUEUE_PREFIX}{n}"));
        }
        if hits.is_empty() {
            return Err(invalid(n, format!("unknown experiment '{n}'")));
        }
        refs.extend(hits);
    }
    if all_queued {
        refs.extend(queued(&repo.root)?.into_iter().map(|q| format!("{QUEUE_PREFIX}{}", q.name)));
    }
    for r in &refs {
        git(&repo.root, &["update-ref", "-d", r])?;
    }
    Ok(refs.into_iter().filter_map(|r| r.rsplit('/').next().map(str::to_owned)).collect())
}

/// One row of `exp show`.
#[derive(Debug)]
pub struct Row {
    /// `workspace`, the baseline's branch (or short id), or `├── abc1234 [name]`.
    pub label: String,
    pub name: Option<String>,
    pub rev: String,
    /// Unix seconds; `None` for the workspace.
    pub time: Option<i64>,
    pub state: Option<&'static str>,
    /// Per file, its flattened metrics.
    pub metrics: compare::Flat,
    /// Per file, its flattened params.
    pub params: compare::Flat,
    pub deps: Vec<(String, String)>,
}

/// The rows of `exp show`: workspace, baseline, then the baseline's experiments and the queue,
/// newest first.
///
/// # Errors
/// Invalid files at some revision, git failing.
pub fn show(repo: &Repo) -> Result<Vec<Row>, PipelineError> {
    let baseline = head(&repo.root)?;
    let branch =
        git(&repo.root, &["symbolic-ref", "--short", "-q", "HEAD"]).map(|s| s.trim().to_owned()).unwrap_or_default();
    let time = |c: &str| git(&repo.root, &["log", "-1", "--format=%ct", c]).ok().and_then(|s| s.trim().parse().ok());
    let mut rows =
        vec![row(repo, &Revision::workspace(&repo.root), "workspace".into(), None, "workspace".into(), None, None)?];
    let base_label = if branch.is_empty() { baseline[..7].to_owned() } else { branch };
    rows.push(row(
        repo,
        &Revision::git(&repo.root, &baseline)?,
        base_label,
        None,
        baseline.clone(),
        time(&baseline),
        None,
    )?);
    let mut exps: Vec<ExpRef> = experiments(&repo.root, &baseline)?;
    exps.extend(
        queued(&repo.root)?
            .into_iter()
            .filter(|q| git(&repo.root, &["rev-parse", &format!("{}^", q.commit)]).is_ok_and(|p| p.trim() == baseline)),
    );
    exps.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    let n = exps.len();
    for (i, e) in exps.into_iter().enumerate() {
        let branch = if i + 1 == n { "└── " } else { "├── " };
        let label = format!("{branch}{} [{}]", &e.commit[..7], e.name);
        let state = e.queued.then_some("Queued");
        rows.push(row(
            repo,
            &Revision::git(&repo.root, &e.commit)?,
            label,
            Some(e.name),
            e.commit,
            Some(e.time),
            state,
        )?);
    }
    Ok(rows)
}

fn row(
    repo: &Repo,
    rev: &Revision,
    label: String,
    name: Option<String>,
    id: String,
    time: Option<i64>,
    state: Option<&'static str>,
) -> Result<Row, PipelineError> {
    let metrics = compare::flatten_docs(&compare::metrics_of(repo, rev)?);
    let params = compare::params_of(rev)?;
    let lock = crate::lock::Lock::read(&rev.root.join("dvc.lock"))?;
    let mut deps: Vec<(String, String)> = Vec::new();
    for (_, st) in &lock.stages {
        for d in &st.deps {
            if let Some(h) = &d.hash
                && !deps.iter().any(|(p, _)| *p == d.path)
            {
                deps.push((d.path.clone(), h.md5.clone()));
            }
        }
    }
    deps.sort();
    Ok(Row { label, name, rev: id, time, state, metrics, params, deps })
}

/// Python's `format(f, '.{precision}g')`, as `exp show` prints floats.
#[must_use]
pub fn python_g(f: f64, precision: usize) -> String {
    if !f.is_finite() {
        return python_float(f);
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s.to_owned() }
    };
    if exp < -4 || exp >= i32::try_from(p).unwrap_or(i32::MAX) {
        format!("{}e{}{:02}", strip(mant), if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = usize::try_from(i32::try_from(p).unwrap_or(0) - 1 - exp).unwrap_or(0);
        strip(&format!("{f:.decimals$}"))
    }
}

/// The table of `exp show`: header and cells, `-` for missing values. `State` appears when a
/// run is queued. `Created` is the commit time in UTC (DVC prints local time).
#[must_use]
pub fn table(rows: &[Row], precision: usize, today: i64) -> (Vec<String>, Vec<Vec<String>>) {
    // (file, key) columns in order of first appearance, metrics then params.
    let columns = |pick: fn(&Row) -> &compare::Flat| -> Vec<(String, String)> {
        let mut cols: Vec<(String, String)> = Vec::new();
        for r in rows {
            for (f, kv) in pick(r) {
                for (k, _) in kv {
                    if !cols.iter().any(|(cf, ck)| cf == f && ck == k) {
                        cols.push((f.clone(), k.clone()));
                    }
                }
            }
        }
        // Keep each file's columns together, files in order of first appearance.
        let mut files: Vec<&String> = Vec::new();
        for (f, _) in &cols {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        files.iter().flat_map(|f| cols.iter().filter(|(cf, _)| cf == *f).cloned()).collect()
    };
    let metric_cols = columns(|r| &r.metrics);
    let param_cols = columns(|r| &r.params);
    let mut dep_keys: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in &r.deps {
            if !dep_keys.contains(k) {
                dep_keys.push(k.clone());
            }
        }
    }
    dep_keys.sort();
    let states = rows.iter().any(|r| r.state.is_some());
    let mut header = vec!["Experiment".to_owned(), "Created".to_owned()];
    if states {
        header.push("State".to_owned());
    }
    // A name that more than one file has (or that is a fixed header) is written `file:name`,
    // as DVC's `_normalize_headers` does.
    let count = |name: &str| {
        metric_cols.iter().chain(&param_cols).filter(|(_, k)| k == name).count()
            + header.iter().filter(|h| *h == name).count()
    };
    let labels: Vec<String> = metric_cols
        .iter()
        .chain(&param_cols)
        .map(|(f, k)| if count(k) == 1 { k.clone() } else { format!("{f}:{k}") })
        .collect();
    header.extend(labels);
    header.extend(dep_keys.iter().cloned());
    let cell = |v: Option<&Value>| match v {
        None => "-".to_owned(),
        Some(Value::Float(f)) => python_g(*f, precision),
        Some(v) => v.python_display(),
    };
    let body = rows
        .iter()
        .map(|r| {
            let mut c = vec![r.label.clone(), r.time.map_or_else(|| "-".to_owned(), |t| created(t, today))];
            if states {
                c.push(r.state.unwrap_or("-").to_owned());
            }
            c.extend(metric_cols.iter().map(|(f, k)| cell(lookup(&r.metrics, f, k))));
            c.extend(param_cols.iter().map(|(f, k)| cell(lookup(&r.params, f, k))));
            c.extend(
                dep_keys
                    .iter()
                    .map(|k| r.deps.iter().find(|(x, _)| x == k).map_or_else(|| "-".to_owned(), |(_, h)| h.clone())),
            );
            c
        })
        .collect();
    (header, body)
}

fn lookup<'a>(flat: &'a compare::Flat, f: &str, k: &str) -> Option<&'a Value> {
    flat.iter().find(|(x, _)| x == f).and_then(|(_, kv)| kv.iter().find(|(x, _)| x == k)).map(|(_, v)| v)
}

/// DVC's `Created`: `HH:MM AM` for today, `Mon DD, YYYY` before (UTC here).
fn created(t: i64, today: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    if days == today.div_euclid(86_400) {
        let (h, m) = (secs / 3600, secs % 3600 / 60);
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        return format!("{h12:02}:{m:02} {}", if h < 12 { "AM" } else { "PM" });
    }
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {d:02}, {y}", MONTHS[usize::try_from(m - 1).unwrap_or(0)])
}

/// `exp show --json`: a list of the rows with their data (a subset of DVC's shape: `rev`,
/// `name`, `timestamp`, `state`, `metrics` and `params` per file with dotted keys, `deps`).
#[must_use]
pub fn json(rows: &[Row]) -> String {
    let items = rows
        .iter()
        .map(|r| {
            let flat = |per_file: &compare::Flat| {
                Value::Map(per_file.iter().map(|(f, kv)| (f.clone(), Value::Map(kv.clone()))).collect())
            };
            Value::Map(vec![
                ("rev".into(), Value::Str(r.rev.clone())),
                ("name".into(), r.name.clone().map_or(Value::Null, Value::Str)),
                ("timestamp".into(), r.time.map_or(Value::Null, Value::Int)),
                ("state".into(), r.state.map_or(Value::Null, |s| Value::Str(s.to_owned()))),
                ("metrics".into(), flat(&r.metrics)),
                ("params".into(), flat(&r.params)),
                ("deps".into(), Value::Map(r.deps.iter().map(|(p, h)| (p.clone(), Value::Str(h.clone()))).collect())),
            ])
        })
        .collect();
    Value::List(items).python_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_a_toml_value_in_place() {
        let text = "# top\ntitle = 'single'\nn = 1_000\n[train]\nlr = 0.1   # learning rate\nname = \"x\"\nnotes = \"\"\"\nlr = 9\n\"\"\"\nwords = [\n  \"the\",\n]\n[train.inner]\nk = 3\n[[runs]]\nlr = 1\n";
        let set = |k: &str, v: &str| set_toml(text, k, v);
        assert_eq!(set("train.lr", "0.2").unwrap(), text.replace("lr = 0.1 ", "lr = 0.2 "));
        assert_eq!(set("title", "hello").unwrap(), text.replace("'single'", "'hello'"));
        assert_eq!(set("title", "it's").unwrap(), text.replace("'single'", "\"it's\""));
        assert_eq!(set("train.name", "a \"q\"").unwrap(), text.replace("\"x\"", "\"a \\\"q\\\"\""));
        assert_eq!(set("train.inner.k", "[1, two]").unwrap(), text.replace("k = 3", "k = [1, \"two\"]"));
        assert_eq!(set("train.inner.k", "1e-05").unwrap(), text.replace("k = 3", "k = 1e-05"));
        // Not keys: the line inside a multi-line string; in an array of tables; missing ones.
        assert_eq!(set("train.lr", "5").unwrap().matches("lr = 9").count(), 1);
        assert!(set("runs.lr", "2").is_err());
        assert!(set("train.momentum", "1").is_err());
        assert!(set("train.words", "[a]").is_err(), "a value on several lines");
        assert!(set("train.lr", "null").is_err(), "no null in TOML");
        // A `#` and an escaped quote inside a string are not a comment's start.
        let text = "s = \"a \\\" # b\"  # note\n";
        assert_eq!(set_toml(text, "s", "c").unwrap(), "s = \"c\"  # note\n");
    }

    #[test]
    fn sets_a_json_value_and_writes_it_as_python_does() {
        let text = "{\n  \"train\": {\"lr\": 0.1, \"tag\": \"caf\u{e9}\"},\n  \"n\": 3\n}\n";
        assert_eq!(
            set_json(text, "train.lr", "1e-05").unwrap(),
            "{\"train\": {\"lr\": 1e-05, \"tag\": \"caf\\u00e9\"}, \"n\": 3}"
        );
        assert_eq!(
            set_json(text, "n", "[1, two]").unwrap(),
            "{\"train\": {\"lr\": 0.1, \"tag\": \"caf\\u00e9\"}, \"n\": [1, \"two\"]}"
        );
        assert!(set_json(text, "train.momentum", "1").is_err(), "a new key is refused");
        assert!(set_json(text, "n.x", "1").is_err(), "a key under a number");
        assert!(set_json("{\"a\": ", "a", "1").is_err(), "not JSON");
    }

    #[test]
    fn sets_one_value_and_keeps_the_rest() {
        let text =
            "# split\ntrain_test_split:\n  test_prop: 0.25  # share\n  seed: 1\ntrain:\n  alpha: 1.0\nlist:\n- a\n";
        assert_eq!(
            set_yaml(text, "train_test_split.test_prop", "0.2").unwrap(),
            "# split\ntrain_test_split:\n  test_prop: 0.2  # share\n  seed: 1\ntrain:\n  alpha: 1.0\nlist:\n- a\n"
        );
        assert_eq!(set_yaml(text, "train.alpha", "x y").unwrap().lines().nth(5), Some("  alpha: x y"));
        assert_eq!(set_yaml(text, "train.alpha", "'1'").unwrap().lines().nth(5), Some("  alpha: '1'"));
        assert!(set_yaml(text, "train.beta", "1").is_err());
        assert!(set_yaml(text, "seed", "1").is_err());
        assert!(set_yaml(text, "train", "1").is_err());
        let o = Override::parse("other.yaml:a.b=3").unwrap();
        assert_eq!((o.file.as_str(), o.key.as_str(), o.value.as_str()), ("other.yaml", "a.b", "3"));
        assert_eq!(Override::parse("a=1").unwrap().file, "params.yaml");
        assert!(Override::parse("a").is_err() && Override::parse("../x.yaml:a=1").is_err());
        assert!(Override::parse("a..b=1").is_err());
    }

    #[test]
    fn sweeps_like_hydra() {
        let o = |s: &str| Override::parse(s).unwrap();
        assert_eq!(o("a=1").sweep().unwrap(), None);
        assert_eq!(o("a=[1, 2]").sweep().unwrap(), None);
        assert_eq!(o("a=0.1,0.2").sweep().unwrap(), Some(vec!["0.1".into(), "0.2".into()]));
        assert_eq!(o("a=x,[1, 2],'p,q'").sweep().unwrap(), Some(vec!["x".into(), "[1, 2]".into(), "'p,q'".into()]));
        assert_eq!(o("a=range(1,4)").sweep().unwrap(), Some(vec!["1".into(), "2".into(), "3".into()]));
        assert_eq!(o("a=range(0, 0.3, 0.1)").sweep().unwrap().unwrap().len(), 3);
        assert_eq!(o("a=choice(nb, lr)").sweep().unwrap(), Some(vec!["nb".into(), "lr".into()]));
        assert!(o("a=range(1, x)").sweep().is_err() && o("a=range(1, 2, 0)").sweep().is_err());
        let all = sweeps(&[o("a=1,2"), o("b=x"), o("c=3,4")]).unwrap();
        let vals: Vec<String> =
            all.iter().map(|s| s.iter().map(|o| o.value.as_str()).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(vals, ["1 x 3", "1 x 4", "2 x 3", "2 x 4"]);
    }

    #[test]
    fn floats_and_dates_like_dvc() {
        for (f, s) in
            [(1.0, "1"), (0.535, "0.535"), (0.712_345_6, "0.71235"), (123_456.0, "1.2346e+05"), (1e-5, "1e-05")]
        {
            assert_eq!(python_g(f, 5), s);
        }
        let t = 1_795_415_362; // 2026-11-23T06:29:22Z
        assert_eq!(created(t, t), "06:29 AM");
        assert_eq!(created(t, t + 86_400), "Nov 23, 2026");
        assert!(check_name("platy-rein").is_ok() && check_name("../x").is_err() && check_name("a/b").is_err());
    }
}
