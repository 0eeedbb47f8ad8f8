//! Remotes in `.dvc/config` (shared with git) and `.dvc/config.local` (this machine's:
//! credentials), DVC's INI dialect: `['remote "name"']` sections with `url` and options,
//! `[core] remote = name` for the default. Reading merges both files (local wins, as in DVC);
//! editing changes only the lines concerned, so the rest of a file (comments, `[cache]`, other
//! remotes) stays as written, and new lines are written as DVC writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{RemoteError, normalize};

/// Options DVC accepts on every remote.
const COMMON_KEYS: &[&str] = &["url", "jobs", "verify", "checksum_jobs"];
/// Options DVC accepts on an `s3://` remote (kiln uses the first five, the others are kept so
/// that a config written for DVC stays valid).
const S3_KEYS: &[&str] = &[
    "endpointurl",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "profile",
    "credentialpath",
    "configpath",
    "use_ssl",
    "ssl_verify",
    "listobjects",
    "sse",
    "sse_kms_key_id",
    "sse_customer_algorithm",
    "sse_customer_key",
    "acl",
    "grant_read",
    "grant_read_acp",
    "grant_write_acp",
    "grant_full_control",
    "read_timeout",
    "connect_timeout",
    "version_aware",
    "worktree",
    "allow_anonymous_login",
    "cache_regions",
];

/// One configured remote, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub name: String,
    /// As written in the config.
    pub url: String,
    /// Every other key of the section (`endpointurl`, `region`, credentials, `jobs`, …).
    pub options: BTreeMap<String, String>,
    /// The `.dvc` directory: relative local URLs are relative to it, as DVC resolves them.
    pub config_dir: PathBuf,
}

/// Where a remote's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory (absolute).
    Local(PathBuf),
    /// `s3://bucket/prefix`: the bucket and the key prefix (no leading or trailing `/`).
    S3 { bucket: String, prefix: String },
}

impl RemoteSpec {
    /// The remote's location from its URL.
    ///
    /// # Errors
    /// A scheme kiln does not speak (gs://, azure://, ssh://, http://, …).
    pub fn location(&self) -> Result<Location, RemoteError> {
        if let Some(rest) = self.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(RemoteError::Setup {
                    name: self.name.clone(),
                    message: format!("`{}` has no bucket name (s3://bucket/prefix)", self.url),
                });
            }
            return Ok(Location::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() });
        }
        let path = if let Some(p) = self.url.strip_prefix("file://") {
            p.to_owned()
        } else if self.url.contains("://") {
            return Err(RemoteError::UnsupportedUrl { name: self.name.clone(), url: self.url.clone() });
        } else {
            self.url.clone()
        };
        let path = expand_home(&path);
        // DVC stores relative paths relative to the config file's directory, `.dvc/`.
        let abs = if path.is_absolute() { path } else { self.config_dir.join(path) };
        Ok(Location::Local(normalize(&abs)))
    }

    /// `jobs` from the remote's options, if set to a positive number.
    #[must_use]
    pub fn jobs(&self) -> Option<usize> {
        self.options.get("jobs").and_then(|j| j.parse().ok()).filter(|&j| j > 0)
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Which file an edit goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `.dvc/config`, committed with the project.
    Repo,
    /// `.dvc/config.local`, this machine's (git-ignored): credentials.
    Local,
}

/// The remote part of a repository's configuration.
#[derive(Debug, Clone)]
pub struct Remotes {
    /// The `.dvc` directory.
    pub dvc_dir: PathBuf,
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

/// `remote "name"` (quotes as DVC writes them; `read_config` has dropped the outer `'`).
fn remote_name(section: &str) -> Option<&str> {
    let rest = section.strip_prefix("remote")?.trim();
    rest.strip_prefix('"').and_then(|r| r.strip_suffix('"'))
}

/// A value as configobj reads it: surrounding quotes dropped.
fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_owned();
        }
    }
    v.to_owned()
}

impl Remotes {
    /// Reads `.dvc/config` and `.dvc/config.local` of the repository at `root`.
    ///
    /// # Errors
    /// A config file exists but cannot be read.
    pub fn load(root: &Path) -> Result<Self, RemoteError> {
        let dvc_dir = root.join(".dvc");
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for file in ["config", "config.local"] {
            let path = dvc_dir.join(file);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RemoteError::io(&path)(e)),
            };
            for (section, kv) in kiln_cache::repo::read_config(&text) {
                let entry = sections.entry(section).or_default();
                entry.extend(kv.into_iter().map(|(k, v)| (k, unquote(&v))));
            }
        }
        Ok(Self { dvc_dir, sections })
    }

    fn config_path(&self) -> PathBuf {
        self.dvc_dir.join("config")
    }

    /// The default remote (`[core] remote`), if one is set.
    #[must_use]
    pub fn default_name(&self) -> Option<&str> {
        self.sections.get("core").and_then(|c| c.get("remote")).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// Every remote: (name, url), sorted by name.
    #[must_use]
    pub fn list(&self) -> Vec<(String, String)> {
        self.sections
            .iter()
            .filter_map(|(s, kv)| Some((remote_name(s)?.to_owned(), kv.get("url").cloned().unwrap_or_default())))
            .collect()
    }

    fn known(&self) -> String {
        let names: Vec<String> = self.list().into_iter().map(|(n, _)| n).collect();
        if names.is_empty() { "none configured".to_owned() } else { names.join(", ") }
    }

    /// The remote `name`, or the default one.
    ///
    /// # Errors
    /// No name and no default, an unknown name, or a remote without `url`.
    pub fn get(&self, name: Option<&str>) -> Result<RemoteSpec, RemoteError> {
        let name = match name.or_else(|| self.default_name()) {
            Some(n) => n.to_owned(),
            None => return Err(RemoteError::NoRemote { config: self.config_path() }),
        };
        let Some(kv) = self.sections.get(&format!("remote \"{name}\"")) else {
            return Err(RemoteError::UnknownRemote { name, config: self.config_path(), known: self.known() });
        };
        let mut options = kv.clone();
        let Some(url) = options.remove("url").filter(|u| !u.is_empty()) else {
            return Err(RemoteError::NoUrl { name, config: self.config_path() });
        };
        Ok(RemoteSpec { name, url, options, config_dir: self.dvc_dir.clone() })
    }

    fn exists(&self, name: &str) -> bool {
        self.sections.contains_key(&format!("remote \"{name}\""))
    }

    fn file(&self, level: Level) -> PathBuf {
        self.dvc_dir.join(match level {
            Level::Repo => "config",
            Level::Local => "config.local",
        })
    }

    /// `remote add [-d] [-f] NAME URL`: a relative local path (relative to the current
    /// directory, as typed) is stored relative to `.dvc/`, as DVC stores it.
    ///
    /// # Errors
    /// The remote exists and not `force`; the config cannot be written.
    pub fn add(&self, name: &str, url: &str, default: bool, force: bool, level: Level) -> Result<(), RemoteError> {
        check_name(name)?;
        if self.exists(name) && !force {
            return Err(RemoteError::RemoteExists { name: name.to_owned(), config: self.config_path() });
        }
        let url = self.stored_url(url)?;
        let path = self.file(level);
        let mut doc = IniDoc::read(&path)?;
        let section = format!("remote \"{name}\"");
        // `--force` replaces the remote whole, as DVC does.
        doc.remove_section(&section);
        doc.set(&section, "url", &url);
        if default {
            doc.set("core", "remote", name);
        }
        doc.write(&path)
    }

    /// How DVC stores a URL typed on the command line (see [`Self::add`]).
    fn stored_url(&self, url: &str) -> Result<String, RemoteError> {
        if url.contains("://") || url.starts_with('~') || Path::new(url).is_absolute() {
            return Ok(url.to_owned());
        }
        let cwd = std::env::current_dir().map_err(RemoteError::io(Path::new(".")))?;
        let abs = normalize(&cwd.join(url));
        let base = normalize(&if self.dvc_dir.is_absolute() { self.dvc_dir.clone() } else { cwd.join(&self.dvc_dir) });
        Ok(relative_to(&abs, &base))
    }

    /// `remote remove NAME`: from the file at `level`; the default is unset if it named it.
    ///
    /// # Errors
    /// Unknown remote; the config cannot be written.
    pub fn remove(&self, name: &str, level: Level) -> Result<(), RemoteError> {
        let path = self.file(level);
        let mut doc = IniDoc::read(&path)?;
        if !doc.remove_section(&format!("remote \"{name}\"")) {
            return Err(RemoteError::UnknownRemote {
                name: name.to_owned(),
                config: path.clone(),
                known: self.known(),
            });
        }
        // DVC unsets a default naming the removed remote in every file it can write.
        for (lvl, p) in [(Level::Repo, self.file(Level::Repo)), (Level::Local, self.file(Level::Local))] {
            if lvl == level {
                if doc.get("core", "remote").is_some_and(|v| unquote(&v) == name) {
                    doc.unset("core", "remote");
                }
            } else if p.is_file() {
                let mut other = IniDoc::read(&p)?;
                if other.get("core", "remote").is_some_and(|v| unquote(&v) == name) {
                    other.unset("core", "remote");
                    other.write(&p)?;
                }
            }
        }
        doc.write(&path)
    }

    /// `remote default NAME` (or `--unset` with `None`).
    ///
    /// # Errors
    /// Unknown remote; the config cannot be written.
    pub fn set_default(&self, name: Option<&str>, level: Level) -> Result<(), RemoteError> {
        let path = self.file(level);
        let mut doc = IniDoc::read(&path)?;
        match name {
            Some(n) => {
                if !self.exists(n) {
                    return Err(RemoteError::UnknownRemote {
                        name: n.to_owned(),
                        config: self.config_path(),
                        known: self.known(),
                    });
                }
                doc.set("core", "remote", n);
            }
            None => doc.unset("core", "remote"),
        }
        doc.write(&path)
    }

    /// `remote modify NAME KEY VALUE` (or `--unset` with `None`).
    ///
    /// # Errors
    /// Unknown remote or option; the config cannot be written.
    pub fn modify(&self, name: &str, key: &str, value: Option<&str>, level: Level) -> Result<(), RemoteError> {
        let Some(kv) = self.sections.get(&format!("remote \"{name}\"")) else {
            return Err(RemoteError::UnknownRemote {
                name: name.to_owned(),
                config: self.config_path(),
                known: self.known(),
            });
        };
        let is_s3 = kv.get("url").is_some_and(|u| u.starts_with("s3://"));
        let mut known: Vec<&str> = COMMON_KEYS.to_vec();
        if is_s3 {
            known.extend(S3_KEYS);
        }
        if !known.contains(&key) {
            return Err(RemoteError::UnknownOption {
                name: name.to_owned(),
                key: key.to_owned(),
                known: known.join(", "),
            });
        }
        let path = self.file(level);
        let mut doc = IniDoc::read(&path)?;
        let section = format!("remote \"{name}\"");
        match value {
            Some(v) if key == "url" => doc.set(&section, key, &self.stored_url(v)?),
            Some(v) => doc.set(&section, key, v),
            None => doc.unset(&section, key),
        }
        doc.write(&path)
    }
}

fn check_name(name: &str) -> Result<(), RemoteError> {
    if name.is_empty() || name.contains(['"', '\'', '[', ']', '\n', '=']) {
        return Err(RemoteError::Setup { name: name.to_owned(), message: "not a valid remote name".into() });
    }
    Ok(())
}

/// `path` relative to `base` (both absolute, normalised), `/`-separated, as `os.path.relpath`.
fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); b.len() - common];
    parts.extend(p[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

/// One config file as lines, edited in place: unknown lines (comments, other sections) are kept
/// verbatim; new keys are written as configobj writes them (`    key = value`).
#[derive(Debug, Default)]
struct IniDoc {
    /// Lines before the first section.
    preamble: Vec<String>,
    sections: Vec<(String, Vec<String>)>,
}

/// The section name a header line names (`['remote "x"']` → `remote "x"`).
fn header(line: &str) -> Option<String> {
    let s = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(s.trim().trim_matches('\'').trim().to_owned())
}

fn key_of(line: &str) -> Option<&str> {
    let t = line.trim();
    if t.starts_with(['#', ';']) {
        return None;
    }
    t.split_once('=').map(|(k, _)| k.trim())
}

impl IniDoc {
    fn read(path: &Path) -> Result<Self, RemoteError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(RemoteError::io(path)(e)),
        };
        let mut doc = Self::default();
        for line in text.lines() {
            if let Some(name) = header(line) {
                doc.sections.push((name, vec![line.to_owned()]));
            } else if let Some((_, lines)) = doc.sections.last_mut() {
                lines.push(line.to_owned());
            } else {
                doc.preamble.push(line.to_owned());
            }
        }
        Ok(doc)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for l in self.preamble.iter().chain(self.sections.iter().flat_map(|(_, ls)| ls)) {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    fn write(&self, path: &Path) -> Result<(), RemoteError> {
        Ok(kiln_cache::write_atomic(path, self.render().as_bytes())?)
    }

    fn section_mut(&mut self, name: &str) -> Option<&mut Vec<String>> {
        self.sections.iter_mut().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    fn get(&self, section: &str, key: &str) -> Option<String> {
        let (_, lines) = self.sections.iter().find(|(n, _)| n == section)?;
        lines
            .iter()
            .skip(1)
            .find(|l| key_of(l) == Some(key))
            .and_then(|l| l.split_once('=').map(|(_, v)| v.trim().to_owned()))
    }

    fn set(&mut self, section: &str, key: &str, value: &str) {
        let line = format!("    {key} = {value}");
        if let Some(lines) = self.section_mut(section) {
            if let Some(l) = lines.iter_mut().skip(1).find(|l| key_of(l) == Some(key)) {
                *l = line;
            } else {
                // After the section's last key, before any trailing blank lines.
                let at = lines.iter().rposition(|l| key_of(l).is_some()).map_or(1, |i| i + 1);
                lines.insert(at, line);
            }
            return;
        }
        let head = if section.starts_with("remote ") { format!("['{section}']") } else { format!("[{section}]") };
        let new = (section.to_owned(), vec![head, line]);
        // DVC writes the remote sections after all others.
        if section.starts_with("remote ") {
            self.sections.push(new);
        } else {
            let at = self.sections.iter().position(|(n, _)| remote_name(n).is_some()).unwrap_or(self.sections.len());
            self.sections.insert(at, new);
        }
    }

    fn unset(&mut self, section: &str, key: &str) {
        let now_empty = match self.section_mut(section) {
            Some(lines) => {
                lines.retain(|l| key_of(l) != Some(key) || header(l).is_some());
                !lines.iter().skip(1).any(|l| key_of(l).is_some())
            }
            None => false,
        };
        // configobj drops an empty section (DVC compacts them away).
        if now_empty {
            self.remove_section(section);
        }
    }

    fn remove_section(&mut self, section: &str) -> bool {
        let before = self.sections.len();
        self.sections.retain(|(n, _)| n != section);
        before != self.sections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".dvc")).unwrap();
        d
    }

    #[test]
    fn add_default_modify_remove_as_dvc_writes_them() {
        let d = repo();
        let root = d.path();
        std::fs::write(root.join(".dvc/config"), "[core]\n    no_scm = True\n[cache]\n    type = hardlink\n").unwrap();
        let r = Remotes::load(root).unwrap();
        r.add("store", "/tmp/x", true, false, Level::Repo).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join(".dvc/config")).unwrap(),
            "[core]\n    no_scm = True\n    remote = store\n[cache]\n    type = hardlink\n['remote \"store\"']\n    url = /tmp/x\n"
        );
        let r = Remotes::load(root).unwrap();
        assert!(matches!(r.add("store", "/y", false, false, Level::Repo), Err(RemoteError::RemoteExists { .. })));
        r.add("s3", "s3://bucket/pre", false, false, Level::Repo).unwrap();
        let r = Remotes::load(root).unwrap();
        r.modify("s3", "endpointurl", Some("http://127.0.0.1:9000"), Level::Repo).unwrap();
        r.modify("s3", "secret_access_key", Some("k"), Level::Local).unwrap();
        assert!(matches!(r.modify("s3", "bogus", Some("1"), Level::Repo), Err(RemoteError::UnknownOption { .. })));
        let r = Remotes::load(root).unwrap();
        let s3 = r.get(Some("s3")).unwrap();
        assert_eq!(s3.options["endpointurl"], "http://127.0.0.1:9000");
        assert_eq!(s3.options["secret_access_key"], "k");
        assert_eq!(s3.location().unwrap(), Location::S3 { bucket: "bucket".into(), prefix: "pre".into() });
        assert_eq!(r.get(None).unwrap().name, "store");
        assert_eq!(r.list(), vec![("s3".into(), "s3://bucket/pre".into()), ("store".into(), "/tmp/x".into())]);
        r.remove("store", Level::Repo).unwrap();
        let r = Remotes::load(root).unwrap();
        assert!(matches!(r.get(None), Err(RemoteError::NoRemote { .. })));
        assert!(matches!(r.get(Some("store")), Err(RemoteError::UnknownRemote { .. })));
        assert_eq!(
            std::fs::read_to_string(root.join(".dvc/config")).unwrap(),
            "[core]\n    no_scm = True\n[cache]\n    type = hardlink\n['remote \"s3\"']\n    url = s3://bucket/pre\n    endpointurl = http://127.0.0.1:9000\n"
        );
    }

    #[test]
    fn relative_local_urls_are_relative_to_the_dvc_dir() {
        let d = repo();
        let spec = RemoteSpec {
            name: "r".into(),
            url: "../../storage".into(),
            options: BTreeMap::new(),
            config_dir: d.path().join(".dvc"),
        };
        assert_eq!(spec.location().unwrap(), Location::Local(d.path().parent().unwrap().join("storage")));
        assert_eq!(relative_to(Path::new("/a/storage"), Path::new("/a/repo/.dvc")), "../../storage");
        let bad = RemoteSpec { url: "gs://b/p".into(), ..spec };
        assert!(matches!(bad.location(), Err(RemoteError::UnsupportedUrl { .. })));
    }
}
