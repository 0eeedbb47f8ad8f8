//! `dvc.lock` (schema 2.0, `shared/spec/pipelines.md` §3): read any valid one, write it with
//! DVC's key order and block style.

use std::path::Path;

use kiln_cache::hash::HashInfo;

use kiln_cache::dvcfile::yaml_scalar as scalar;

use crate::PipelineError;
use crate::dvcyaml::Cmd;
use crate::value::{Value, from_yaml};

/// A dep or out as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    /// `None` for an entry without `hash: md5` (DVC 2).
    pub hash: Option<HashInfo>,
    pub legacy: bool,
}

/// One stage's recorded state.
#[derive(Debug, Clone, PartialEq)]
pub struct LockStage {
    pub cmd: Cmd,
    pub deps: Vec<Entry>,
    /// file -> [(key, value)], `params.yaml` first, then files sorted; keys sorted.
    pub params: Vec<(String, Vec<(String, Value)>)>,
    pub outs: Vec<Entry>,
}

/// The lock: stages in `dvc.yaml` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lock {
    pub stages: Vec<(String, LockStage)>,
}

fn bad(file: &Path, message: impl Into<String>) -> PipelineError {
    PipelineError::Invalid { file: file.to_owned(), key: String::new(), message: message.into() }
}

fn entries(v: Option<&Value>, file: &Path) -> Result<Vec<Entry>, PipelineError> {
    let Some(Value::List(items)) = v else { return Ok(Vec::new()) };
    items
        .iter()
        .map(|e| {
            let path = e.get("path").and_then(Value::as_str).ok_or_else(|| bad(file, "an entry has no path"))?;
            let md5 = e.get("md5").and_then(Value::as_str);
            let count = |k: &str| match e.get(k) {
                Some(Value::Int(i)) => u64::try_from(*i).ok(),
                _ => None,
            };
            Ok(Entry {
                path: path.to_owned(),
                hash: md5.map(|m| HashInfo {
                    md5: m.to_owned(),
                    size: count("size").unwrap_or(0),
                    nfiles: count("nfiles"),
                }),
                legacy: e.get("hash").and_then(Value::as_str) != Some("md5"),
            })
        })
        .collect()
}

/// One stage's entry from its YAML mapping.
fn stage_from(s: &Value, name: &str, path: &Path) -> Result<LockStage, PipelineError> {
    let cmd = match s.get("cmd") {
        Some(Value::Str(c)) => Cmd::One(c.clone()),
        Some(Value::List(l)) => Cmd::Many(l.iter().filter_map(Value::python_str).collect()),
        _ => return Err(bad(path, format!("stage `{name}` has no cmd"))),
    };
    let mut params = Vec::new();
    if let Some(Value::Map(files)) = s.get("params") {
        for (f, kv) in files {
            let Value::Map(kv) = kv else { return Err(bad(path, format!("params of `{name}`"))) };
            params.push((f.clone(), kv.clone()));
        }
    }
    Ok(LockStage { cmd, deps: entries(s.get("deps"), path)?, params, outs: entries(s.get("outs"), path)? })
}

impl Lock {
    /// Reads `dvc.lock`; a missing file is an empty lock.
    ///
    /// # Errors
    /// Invalid YAML or not a schema-2.0 lock.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(PipelineError::Io { path: path.to_owned(), source }),
        };
        let doc = from_yaml(&text).map_err(|e| bad(path, e.to_string()))?;
        if doc.get("schema").and_then(Value::as_str) != Some("2.0") {
            return Err(bad(path, "not a schema '2.0' lock file (DVC 1 locks are not read)"));
        }
        let mut stages = Vec::new();
        if let Some(Value::Map(m)) = doc.get("stages") {
            for (name, s) in m {
                stages.push((name.clone(), stage_from(s, name, path)?));
            }
        }
        Ok(Self { stages })
    }

    #[must_use]
    pub fn stage(&self, name: &str) -> Option<&LockStage> {
        self.stages.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The file's text, as DVC writes it.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from("schema: '2.0'\nstages:\n");
        for (name, st) in &self.stages {
            s.push_str(&format!("  {}:\n", scalar(name)));
            st.render_into(&mut s, 4);
        }
        s
    }
}

impl LockStage {
    /// The entry's keys at indent `base` (4 inside `dvc.lock`, 0 in a run-cache file).
    pub fn render_into(&self, s: &mut String, base: usize) {
        let pad = " ".repeat(base);
        match &self.cmd {
            Cmd::One(c) => s.push_str(&line(&format!("{pad}cmd:"), c, base + 2)),
            Cmd::Many(l) => {
                s.push_str(&format!("{pad}cmd:\n"));
                for c in l {
                    s.push_str(&line(&format!("{pad}-"), c, base + 2));
                }
            }
        }
        render_entries(s, base, "deps", &self.deps);
        if !self.params.is_empty() {
            s.push_str(&format!("{pad}params:\n"));
            for (file, kv) in &self.params {
                s.push_str(&format!("{pad}  {}:\n", scalar(file)));
                for (k, v) in kv {
                    render_value(s, base + 4, k, v);
                }
            }
        }
        render_entries(s, base, "outs", &self.outs);
    }

    /// The entry as DVC's run-cache hashes it: `json.dumps(entry, sort_keys=True)` without
    /// any `size`/`nfiles` key; for the key, `outs` is just their paths.
    #[must_use]
    pub fn run_cache_json(&self, key: bool) -> String {
        let entry = |e: &Entry| {
            let mut m = vec![("path".to_owned(), Value::Str(e.path.clone()))];
            if let Some(h) = &e.hash {
                m.push(("hash".to_owned(), Value::Str("md5".into())));
                m.push(("md5".to_owned(), Value::Str(h.md5.clone())));
            }
            Value::Map(m)
        };
        let mut doc = vec![(
            "cmd".to_owned(),
            match &self.cmd {
                Cmd::One(c) => Value::Str(c.clone()),
                Cmd::Many(l) => Value::List(l.iter().cloned().map(Value::Str).collect()),
            },
        )];
        if !self.deps.is_empty() {
            doc.push(("deps".to_owned(), Value::List(self.deps.iter().map(entry).collect())));
        }
        if !self.params.is_empty() {
            doc.push((
                "params".to_owned(),
                Value::Map(self.params.iter().map(|(f, kv)| (f.clone(), Value::Map(kv.clone()))).collect()),
            ));
        }
        if !self.outs.is_empty() {
            let outs = if key {
                self.outs.iter().map(|e| Value::Str(e.path.clone())).collect()
            } else {
                self.outs.iter().map(entry).collect()
            };
            doc.push(("outs".to_owned(), Value::List(outs)));
        }
        // DVC's `dict_filter` drops `size` and `nfiles` at every level before hashing.
        Value::Map(doc).python_json_sorted(&["size", "nfiles"])
    }
}

/// A cached output that `dvc.lock` records.
#[derive(Debug, Clone)]
pub struct LockedOut {
    pub stage: String,
    /// Relative to the pipeline's directory (the stage's `wdir` applied), `/`-separated.
    pub name: String,
    pub hash: HashInfo,
    /// A DVC 2 entry (hashed with `md5-dos2unix`).
    pub legacy: bool,
    /// `push: false` in `dvc.yaml` keeps it out of `push`.
    pub push: bool,
}

/// Every cached output `dir/dvc.lock` records with a hash, with `dvc.yaml`'s flags: outputs
/// declared `cache: false` are left out (they are not in the cache), as DVC leaves them out.
/// The one list `checkout`, `pull`, `push` and `fetch` work from.
///
/// # Errors
/// An invalid `dvc.lock` or `dvc.yaml`.
pub fn locked_outputs(dir: &Path) -> Result<Vec<LockedOut>, PipelineError> {
    let lock_path = dir.join("dvc.lock");
    if !lock_path.is_file() {
        return Ok(Vec::new());
    }
    let lock = Lock::read(&lock_path)?;
    let pipeline = if dir.join("dvc.yaml").is_file() { Some(crate::Pipeline::load(dir)?) } else { None };
    let mut out = Vec::new();
    for (name, st) in &lock.stages {
        let stage = pipeline.as_ref().and_then(|p| p.stages.iter().find(|s| &s.name == name));
        let wdir = stage.map_or(".", |s| s.wdir.as_str());
        for e in &st.outs {
            let Some(hash) = e.hash.clone() else { continue };
            let decl = stage.and_then(|s| s.outs.iter().find(|o| o.path == e.path));
            if decl.is_some_and(|d| !d.cache) {
                continue;
            }
            out.push(LockedOut {
                stage: name.clone(),
                name: crate::repro::norm(wdir, &e.path),
                hash,
                legacy: e.legacy,
                push: decl.is_none_or(|d| d.push),
            });
        }
    }
    Ok(out)
}

/// Reads one run-cache file (a lock entry at the top level).
///
/// # Errors
/// Invalid YAML or not a lock entry.
pub fn read_entry(path: &Path) -> Result<LockStage, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io { path: path.to_owned(), source })?;
    let doc = from_yaml(&text).map_err(|e| bad(path, e.to_string()))?;
    stage_from(&doc, "run-cache entry", path)
}

fn render_entries(s: &mut String, base: usize, key: &str, items: &[Entry]) {
    if items.is_empty() {
        return;
    }
    let pad = " ".repeat(base);
    s.push_str(&format!("{pad}{key}:\n"));
    for e in items {
        s.push_str(&line(&format!("{pad}- path:"), &e.path, base + 4));
        if let Some(h) = &e.hash {
            s.push_str(&format!("{pad}  hash: md5\n{pad}  md5: {}\n{pad}  size: {}\n", h.md5, h.size));
            if let Some(n) = h.nfiles {
                s.push_str(&format!("{pad}  nfiles: {n}\n"));
            }
        }
    }
}

/// `key: value` at `indent`, maps and lists in block style (lists at the key's indent, as
/// ruamel writes them).
fn render_value(s: &mut String, indent: usize, key: &str, v: &Value) {
    let pad = " ".repeat(indent);
    match v {
        Value::Map(m) if !m.is_empty() => {
            s.push_str(&format!("{pad}{}:\n", scalar(key)));
            for (k, v) in m {
                render_value(s, indent + 2, k, v);
            }
        }
        Value::List(l) if !l.is_empty() => {
            s.push_str(&format!("{pad}{}:\n", scalar(key)));
            for item in l {
                match item {
                    Value::Map(_) | Value::List(_) => {
                        // Nested collections inside a list: flow style keeps it short and valid.
                        s.push_str(&format!("{pad}- {}\n", item.to_json()));
                    }
                    Value::Str(t) => s.push_str(&line(&format!("{pad}-"), t, indent + 2)),
                    other => s.push_str(&format!("{pad}- {}\n", other.yaml_flow())),
                }
            }
        }
        Value::Str(t) => s.push_str(&line(&format!("{pad}{}:", scalar(key)), t, indent + 2)),
        other => s.push_str(&format!("{pad}{}: {}\n", scalar(key), other.yaml_flow())),
    }
}

/// ruamel.yaml's line width: DVC writes through it, and long plain scalars (typically `cmd`)
/// are folded onto continuation lines.
const BEST_WIDTH: usize = 80;

/// `prefix` (e.g. `    cmd:`) followed by `text` as a scalar, folded the way ruamel.yaml's
/// emitter folds it (`write_plain` / `write_single_quoted`, ruamel.yaml 0.19), continuation
/// lines at `indent`; ends with a newline. Byte-identical locks need the same folding.
fn line(prefix: &str, text: &str, indent: usize) -> String {
    let mut out = String::from(prefix);
    let mut column = prefix.chars().count();
    let rendered = scalar(text);
    let newline = |out: &mut String, column: &mut usize| {
        out.push('\n');
        out.push_str(&" ".repeat(indent));
        *column = indent;
    };
    if rendered.starts_with('"') {
        out.push(' ');
        out.push_str(&rendered);
    } else if rendered.starts_with('\'') {
        out.push_str(" '");
        column += 2;
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == ' ' {
                let start = i;
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
                if i - start == 1 && column > BEST_WIDTH && start != 0 && i != chars.len() {
                    newline(&mut out, &mut column);
                } else {
                    out.push_str(&" ".repeat(i - start));
                    column += i - start;
                }
            } else if chars[i] == '\'' {
                out.push_str("''");
                column += 2;
                i += 1;
            } else {
                let start = i;
                while i < chars.len() && chars[i] != ' ' && chars[i] != '\'' {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                column += i - start;
                out.push_str(&word);
            }
        }
        out.push('\'');
    } else {
        out.push(' ');
        column += 1;
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == ' ' {
                let start = i;
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
                if i - start == 1 && column >= BEST_WIDTH {
                    newline(&mut out, &mut column);
                } else {
                    out.push_str(&" ".repeat(i - start));
                    column += i - start;
                }
            } else {
                let start = i;
                while i < chars.len() && chars[i] != ' ' {
                    i += 1;
                }
                let len = i - start;
                // Words longer than the rest of the line start a new one.
                if len + column > BEST_WIDTH && column > indent {
                    newline(&mut out, &mut column);
                }
                out.extend(&chars[start..i]);
                column += len;
            }
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_reads_back() {
        let lock = Lock {
            stages: vec![(
                "prepare".into(),
                LockStage {
                    cmd: Cmd::One("python3 src/prepare.py --min-len 2 data/messages.tsv data/prepared".into()),
                    deps: vec![Entry {
                        path: "data/messages.tsv".into(),
                        hash: Some(HashInfo {
                            md5: "a4247d7b3610196992e60c5114e2e9be".into(),
                            size: 5846,
                            nfiles: None,
                        }),
                        legacy: false,
                    }],
                    params: vec![(
                        "params.yaml".into(),
                        vec![
                            ("prepare.min_len".into(), Value::Int(2)),
                            (
                                "split".into(),
                                Value::Map(vec![
                                    ("test_ratio".into(), Value::Float(0.25)),
                                    ("seed".into(), Value::Int(42)),
                                ]),
                            ),
                        ],
                    )],
                    outs: vec![Entry {
                        path: "data/prepared".into(),
                        hash: Some(HashInfo {
                            md5: "25799712b2b8a9c589271bc9ae53da75.dir".into(),
                            size: 5292,
                            nfiles: Some(3),
                        }),
                        legacy: false,
                    }],
                },
            )],
        };
        let text = lock.render();
        assert_eq!(
            text,
            "schema: '2.0'\nstages:\n  prepare:\n    cmd: python3 src/prepare.py --min-len 2 data/messages.tsv data/prepared\n    deps:\n    - path: data/messages.tsv\n      hash: md5\n      md5: a4247d7b3610196992e60c5114e2e9be\n      size: 5846\n    params:\n      params.yaml:\n        prepare.min_len: 2\n        split:\n          test_ratio: 0.25\n          seed: 42\n    outs:\n    - path: data/prepared\n      hash: md5\n      md5: 25799712b2b8a9c589271bc9ae53da75.dir\n      size: 5292\n      nfiles: 3\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dvc.lock");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(Lock::read(&p).unwrap(), lock);
    }

    /// Folded as DVC 3.67 (ruamel.yaml 0.19) wrote these two commands.
    #[test]
    fn folds_long_commands_like_ruamel() {
        assert_eq!(
            line(
                "    cmd:",
                "mkdir -p data/prepared && tr a b < data/raw.txt > data/prepared/out.txt && echo 2 > data/prepared/factor.txt",
                6
            ),
            "    cmd: mkdir -p data/prepared && tr a b < data/raw.txt > data/prepared/out.txt\n      && echo 2 > data/prepared/factor.txt\n"
        );
        assert_eq!(
            line(
                "    cmd:",
                "cat data/prepared/out.txt data/prepared/factor.txt > model.txt && echo '{\"acc\":0.9}' > metrics.json",
                6
            ),
            "    cmd: cat data/prepared/out.txt data/prepared/factor.txt > model.txt && echo \n      '{\"acc\":0.9}' > metrics.json\n"
        );
        assert_eq!(line("    cmd:", "short", 6), "    cmd: short\n");
    }

    #[test]
    fn quotes_what_would_not_read_back() {
        assert_eq!(scalar("echo a: b"), "'echo a: b'");
        assert_eq!(scalar("1.0"), "'1.0'");
        assert_eq!(scalar("true"), "'true'");
        assert_eq!(scalar("it's"), "it's");
        assert_eq!(scalar("'q'"), "'''q'''");
        assert_eq!(scalar("a\nb"), "\"a\\nb\"");
        assert_eq!(scalar("python -c \"print(1)\" > out.txt"), "python -c \"print(1)\" > out.txt");
    }
}
