//! `.dvc` files (`shared/spec/pipelines.md` §5): read any valid one (keys DVC knows are kept
//! when kiln rewrites it), write them the way `dvc add` does.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::CacheError;
use crate::hash::HashInfo;

/// One output of a `.dvc` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    /// Relative to the `.dvc` file's directory, `/`-separated.
    pub path: String,
    /// `None` for an entry without a hash yet (or an unknown scheme).
    pub hash: Option<HashInfo>,
    /// True for DVC 2 entries (no `hash: md5`): hashed with `md5-dos2unix`.
    pub legacy: bool,
    /// `cache: false`: tracked by hash only, not stored.
    pub cache: bool,
    /// Every other key DVC allows (`desc`, `type`, `labels`, `meta`, `push`, `remote`, …).
    pub extra: Map<String, Value>,
}

/// A parsed `.dvc` file.
#[derive(Debug, Clone, PartialEq)]
pub struct DvcFile {
    pub outs: Vec<Out>,
    /// Top-level keys other than `outs` (`md5`, `frozen`, `deps`, `wdir`, …), kept verbatim.
    pub extra: Map<String, Value>,
}

fn bad(path: &Path, message: impl Into<String>) -> CacheError {
    CacheError::DvcFile { path: path.to_owned(), message: message.into() }
}

impl DvcFile {
    /// Reads and checks a `.dvc` file.
    ///
    /// # Errors
    /// Unreadable, not YAML, or not a `.dvc` file's shape (the message names the key).
    pub fn read(path: &Path) -> Result<Self, CacheError> {
        let text = std::fs::read_to_string(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
        let doc: Value = serde_saphyr::from_str(&text).map_err(|e| bad(path, e.to_string()))?;
        let Value::Object(mut top) = doc else { return Err(bad(path, "expected a mapping with `outs`")) };
        let Some(Value::Array(outs)) = top.remove("outs") else {
            return Err(bad(path, "`outs` must be a list of outputs"));
        };
        let mut parsed = Vec::new();
        for (i, o) in outs.into_iter().enumerate() {
            let Value::Object(mut m) = o else { return Err(bad(path, format!("outs[{i}] must be a mapping"))) };
            let Some(Value::String(p)) = m.remove("path") else {
                return Err(bad(path, format!("outs[{i}].path is missing")));
            };
            let md5 = match m.remove("md5") {
                Some(Value::String(s)) => Some(s),
                None | Some(Value::Null) => None,
                Some(other) => return Err(bad(path, format!("outs[{i}].md5 must be a string, got {other}"))),
            };
            let num = |m: &mut Map<String, Value>, k: &str| -> Result<Option<u64>, CacheError> {
                match m.remove(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_u64().map(Some).ok_or_else(|| bad(path, format!("outs[{i}].{k} must be a count"))),
                }
            };
            let size = num(&mut m, "size")?;
            let nfiles = num(&mut m, "nfiles")?;
            let legacy = match m.remove("hash") {
                Some(Value::String(h)) if h == "md5" => false,
                None => true,
                Some(other) => return Err(bad(path, format!("outs[{i}].hash: unsupported `{other}`"))),
            };
            let cache = match m.get("cache") {
                Some(Value::Bool(b)) => *b,
                None => true,
                Some(other) => return Err(bad(path, format!("outs[{i}].cache must be true or false, got {other}"))),
            };
            m.remove("cache");
            parsed.push(Out {
                path: p,
                hash: md5.map(|md5| HashInfo { md5, size: size.unwrap_or(0), nfiles }),
                legacy,
                cache,
                extra: m,
            });
        }
        Ok(Self { outs: parsed, extra: top })
    }

    /// The file as `dvc add` writes it: each out's keys in DVC's order (`md5`, `size`,
    /// `nfiles`, `hash`, `path`, then the rest), top-level extras after `outs`.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from("outs:\n");
        for o in &self.outs {
            let mut first = true;
            let mut line = |s: &mut String, k: &str, v: &str| {
                s.push_str(if first { "- " } else { "  " });
                first = false;
                s.push_str(k);
                s.push_str(": ");
                s.push_str(v);
                s.push('\n');
            };
            if let Some(h) = &o.hash {
                line(&mut s, "md5", &h.md5);
                line(&mut s, "size", &h.size.to_string());
                if let Some(n) = h.nfiles {
                    line(&mut s, "nfiles", &n.to_string());
                }
                line(&mut s, "hash", "md5");
            }
            line(&mut s, "path", &yaml_scalar(&o.path));
            if !o.cache {
                line(&mut s, "cache", "false");
            }
            for (k, v) in &o.extra {
                line(&mut s, k, &v.to_string());
            }
        }
        for (k, v) in &self.extra {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), CacheError> {
        crate::write_atomic(path, self.render().as_bytes())
    }

    /// The workspace path of an output of the `.dvc` file at `dvc_path`.
    #[must_use]
    pub fn out_path(dvc_path: &Path, out: &Out) -> PathBuf {
        dvc_path.parent().unwrap_or(Path::new(".")).join(&out.path)
    }
}

/// Would YAML 1.2 read `s` back as something other than this string?
fn resolves_to_other_type(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    matches!(l.as_str(), "null" | "~" | "true" | "false" | ".inf" | "-.inf" | "+.inf" | ".nan")
        || s.parse::<f64>().is_ok()
        || s.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        || s.strip_prefix("0o").is_some_and(|o| !o.is_empty() && o.bytes().all(|b| (b'0'..=b'7').contains(&b)))
}

/// A string as a YAML scalar the way ruamel.yaml (DVC's writer) picks the style: plain where
/// YAML allows it, else single-quoted, else (control characters) double-quoted. `dvc.lock` and
/// `.dvc` files share it.
#[must_use]
pub fn yaml_scalar(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        return serde_json::Value::String(s.to_owned()).to_string();
    }
    let first_bad = s.starts_with([
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ',
    ]);
    let plain = !s.is_empty()
        && !first_bad
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !resolves_to_other_type(s);
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', "''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_dvc_add() {
        let f = DvcFile {
            outs: vec![Out {
                path: "data".into(),
                hash: Some(HashInfo { md5: "2a0f3f5e358b7f8ff3d4fa660d0617ef.dir".into(), size: 5, nfiles: Some(2) }),
                legacy: false,
                cache: true,
                extra: Map::new(),
            }],
            extra: Map::new(),
        };
        assert_eq!(
            f.render(),
            "outs:\n- md5: 2a0f3f5e358b7f8ff3d4fa660d0617ef.dir\n  size: 5\n  nfiles: 2\n  hash: md5\n  path: data\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.dvc");
        f.write(&p).unwrap();
        assert_eq!(DvcFile::read(&p).unwrap(), f);
    }

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(yaml_scalar("data/train.csv"), "data/train.csv");
        assert_eq!(yaml_scalar("true"), "'true'");
        assert_eq!(yaml_scalar("1.5"), "'1.5'");
        assert_eq!(yaml_scalar("a: b"), "'a: b'");
        assert_eq!(yaml_scalar("it's #1"), "'it''s #1'");
    }

    #[test]
    fn reads_dvc2_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.dvc");
        std::fs::write(
            &p,
            "outs:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n  path: hello.txt\n  desc: greeting\n",
        )
        .unwrap();
        let f = DvcFile::read(&p).unwrap();
        assert!(f.outs[0].legacy && f.outs[0].extra["desc"] == "greeting");
        std::fs::write(&p, "outs: 3\n").unwrap();
        assert!(DvcFile::read(&p).unwrap_err().to_string().contains("outs"));
        std::fs::write(&p, "outs:\n- size: 3\n").unwrap();
        assert!(DvcFile::read(&p).unwrap_err().to_string().contains("path"));
    }
}
