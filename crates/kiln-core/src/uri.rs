//! Model and artifact URIs, parsed in one place so `kiln serve`, `kiln predict`, `kiln models`
//! and the server agree on what a URI means.
//!
//! [`ModelUri`] is what a user may pass as `-m`: a run's artifact path (`runs:/<run_id>/<path>`),
//! a registered model version (`models:/<name>/<version>`, `/<stage>`, `/latest`, `@<alias>`),
//! an MLflow 3 logged model (`models:/<model_id>`), or an [`ArtifactLocation`]: where files
//! actually are (`mlflow-artifacts:/…` through a tracking server's proxy, `file://…`, `s3://…`,
//! a plain path). The rules are those of MLflow 3.17's client (`_parse_model_uri`,
//! `RunsArtifactRepository.parse_runs_uri`): `models:/a/b` is a version when `b` is all digits,
//! `latest` in any case, else a stage; `models:/a@b` is an alias; a single segment is a logged
//! model id. kiln is stricter where MLflow would only fail later at the server: a stage must be
//! one of MLflow's four, and `..` segments are refused everywhere.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// Why a string is not a model or artifact URI. Each variant names the URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("the model URI is empty")]
    Empty,
    #[error("`{uri}` is not a valid `{scheme}:` URI: {reason} (expected {expected})")]
    Malformed { uri: String, scheme: &'static str, reason: &'static str, expected: &'static str },
    #[error(
        "`{uri}`: `{stage}` is not a stage; use a version number, `latest`, `@<alias>` or a stage \
         (None, Staging, Production, Archived; any case)"
    )]
    UnknownStage { uri: String, stage: String },
    #[error(
        "`{uri}`: the `{scheme}:` scheme is not supported; kiln reads runs:/, models:/, mlflow-artifacts:/, \
         file://, s3:// and plain paths"
    )]
    UnsupportedScheme { uri: String, scheme: String },
    #[error("`{uri}`: the path `{path}` is not allowed (a `..` or `.` segment, or a control character)")]
    UnsafePath { uri: String, path: String },
}

/// MLflow's (deprecated, still widely used) model version stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::None, Stage::Staging, Stage::Production, Stage::Archived];

    /// The name MLflow stores and answers (`"None"` is a literal string).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Staging => "Staging",
            Self::Production => "Production",
            Self::Archived => "Archived",
        }
    }

    /// A stage name in any case (`production` → `Production`), as MLflow accepts them.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which version of a registered model a `models:/` URI names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionSelector {
    /// `models:/<name>/<N>`: pinned.
    Version(u64),
    /// `models:/<name>/<stage>`: the newest version in that stage.
    Stage(Stage),
    /// `models:/<name>/latest`: the newest version in any stage.
    Latest,
    /// `models:/<name>@<alias>`: the version the alias points at.
    Alias(String),
}

impl VersionSelector {
    /// Whether the version it names can change while a server runs (everything but a pinned
    /// version).
    #[must_use]
    pub fn moves(&self) -> bool {
        !matches!(self, Self::Version(_))
    }
}

/// Where model files are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArtifactLocation {
    /// `mlflow-artifacts:/<path>`: through the proxy of the tracking server in use, or of
    /// `authority` (`host:port`) for `mlflow-artifacts://host:port/<path>`. `path` has no
    /// leading or trailing `/`.
    Proxied { authority: Option<String>, path: String },
    /// `file://…` or a plain path on this machine.
    Local(PathBuf),
    /// `s3://<bucket>/<prefix>` (`prefix` without leading or trailing `/`).
    S3 { bucket: String, prefix: String },
}

impl ArtifactLocation {
    /// Parses an artifact URI, as a tracking server answers them (`artifact_uri`,
    /// `get-download-uri`) or a user writes them.
    ///
    /// # Errors
    /// An empty string, an unsupported scheme (including `runs:` and `models:`, which name
    /// models rather than places), a malformed URI, a `..` segment.
    pub fn parse(s: &str) -> Result<Self, UriError> {
        match ModelUri::parse(s)? {
            ModelUri::Artifacts(a) => Ok(a),
            ModelUri::Run { .. } => Err(UriError::UnsupportedScheme { uri: s.to_owned(), scheme: "runs".into() }),
            ModelUri::Registered { .. } | ModelUri::LoggedModel { .. } => {
                Err(UriError::UnsupportedScheme { uri: s.to_owned(), scheme: "models".into() })
            }
        }
    }

    /// The location of `rel` (a `/`-separated relative path) inside this one.
    ///
    /// # Errors
    /// `rel` has a `..` or `.` segment or a control character.
    pub fn join(&self, rel: &str) -> Result<Self, UriError> {
        let rel =
            clean_path(rel).ok_or_else(|| UriError::UnsafePath { uri: self.to_string(), path: rel.to_owned() })?;
        if rel.is_empty() {
            return Ok(self.clone());
        }
        let join = |base: &str| if base.is_empty() { rel.clone() } else { format!("{base}/{rel}") };
        Ok(match self {
            Self::Proxied { authority, path } => Self::Proxied { authority: authority.clone(), path: join(path) },
            Self::Local(p) => Self::Local(rel.split('/').fold(p.clone(), |acc, seg| acc.join(seg))),
            Self::S3 { bucket, prefix } => Self::S3 { bucket: bucket.clone(), prefix: join(prefix) },
        })
    }
}

impl fmt::Display for ArtifactLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proxied { authority: None, path } => write!(f, "mlflow-artifacts:/{path}"),
            Self::Proxied { authority: Some(a), path } => write!(f, "mlflow-artifacts://{a}/{path}"),
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// What `kiln serve -m` and `kiln predict -m` accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelUri {
    /// `runs:/<run_id>/<path>`: an artifact path inside a run (`path` empty: the run's root).
    Run { run_id: String, path: String },
    /// `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`.
    Registered { name: String, selector: VersionSelector },
    /// `models:/<model_id>`: an MLflow 3 logged model (`m-…`).
    LoggedModel { model_id: String },
    /// Files at a known place.
    Artifacts(ArtifactLocation),
}

impl ModelUri {
    /// Parses a model URI or a path (see the module docs for the forms).
    ///
    /// # Errors
    /// See [`UriError`].
    pub fn parse(s: &str) -> Result<Self, UriError> {
        if s.trim().is_empty() {
            return Err(UriError::Empty);
        }
        let Some((scheme, rest)) = split_scheme(s) else {
            return Ok(Self::Artifacts(ArtifactLocation::Local(PathBuf::from(s))));
        };
        match scheme.as_str() {
            "runs" => parse_runs(s, rest),
            "models" => parse_models(s, rest),
            "mlflow-artifacts" => parse_proxied(s, rest),
            "file" => parse_file(s, rest),
            "s3" => parse_s3(s, rest),
            _ => Err(UriError::UnsupportedScheme { uri: s.to_owned(), scheme }),
        }
    }

    /// Whether resolving it needs a tracking server (everything but a local path, an S3
    /// location and an `mlflow-artifacts://host:port/…` URI that names its server).
    #[must_use]
    pub fn needs_tracking_server(&self) -> bool {
        match self {
            Self::Run { .. } | Self::Registered { .. } | Self::LoggedModel { .. } => true,
            Self::Artifacts(ArtifactLocation::Proxied { authority, .. }) => authority.is_none(),
            Self::Artifacts(_) => false,
        }
    }

    /// Whether the model it names can change while a server runs (an alias, a stage, `latest`).
    #[must_use]
    pub fn moves(&self) -> bool {
        matches!(self, Self::Registered { selector, .. } if selector.moves())
    }
}

impl FromStr for ModelUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run { run_id, path } if path.is_empty() => write!(f, "runs:/{run_id}"),
            Self::Run { run_id, path } => write!(f, "runs:/{run_id}/{path}"),
            Self::Registered { name, selector } => match selector {
                VersionSelector::Version(v) => write!(f, "models:/{name}/{v}"),
                VersionSelector::Stage(s) => write!(f, "models:/{name}/{s}"),
                VersionSelector::Latest => write!(f, "models:/{name}/latest"),
                VersionSelector::Alias(a) => write!(f, "models:/{name}@{a}"),
            },
            Self::LoggedModel { model_id } => write!(f, "models:/{model_id}"),
            Self::Artifacts(a) => a.fmt(f),
        }
    }
}

/// `scheme:rest` when `s` starts with a URI scheme (RFC 3986 characters, lower-cased). One
/// letter is a Windows drive (`C:\…`), not a scheme.
fn split_scheme(s: &str) -> Option<(String, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme.to_ascii_lowercase(), rest))
}

/// A `/`-separated relative path without empty, `.` or `..` segments or control characters,
/// its separators normalised; `None` when it has a forbidden segment.
fn clean_path(p: &str) -> Option<String> {
    if p.chars().any(char::is_control) || p.contains('\\') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" => {}
            "." | ".." => return None,
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

/// MLflow's run id rule (`^[a-zA-Z0-9][\w\-]{0,255}$`), ASCII.
fn valid_run_id(id: &str) -> bool {
    id.len() <= 256
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn parse_runs(uri: &str, rest: &str) -> Result<ModelUri, UriError> {
    let bad =
        |reason| UriError::Malformed { uri: uri.to_owned(), scheme: "runs", reason, expected: "runs:/<run_id>/<path>" };
    if rest.starts_with("//") {
        return Err(bad("it has two slashes after `runs:`"));
    }
    let body = rest.strip_prefix('/').ok_or_else(|| bad("it does not start with `runs:/`"))?;
    let (run_id, path) = body.split_once('/').unwrap_or((body, ""));
    if run_id.is_empty() {
        return Err(bad("the run id is empty"));
    }
    if !valid_run_id(run_id) {
        return Err(bad("the run id has characters other than letters, digits, `_` and `-`"));
    }
    let path = clean_path(path).ok_or_else(|| UriError::UnsafePath { uri: uri.to_owned(), path: path.to_owned() })?;
    Ok(ModelUri::Run { run_id: run_id.to_owned(), path })
}

fn parse_models(uri: &str, rest: &str) -> Result<ModelUri, UriError> {
    const EXPECTED: &str = "models:/<name>/<version|stage|latest>, models:/<name>@<alias> or models:/<model_id>";
    let bad = |reason| UriError::Malformed { uri: uri.to_owned(), scheme: "models", reason, expected: EXPECTED };
    if rest.starts_with("//") {
        return Err(bad("a `models://profile@…` registry URI is not supported"));
    }
    let body = rest.strip_prefix('/').ok_or_else(|| bad("it does not start with `models:/`"))?;
    if body.trim().is_empty() {
        return Err(bad("it names no model"));
    }
    // MLflow splits once: `models:/a/b/c` has the suffix `b/c`, which is no version or stage.
    if let Some((name, suffix)) = body.split_once('/') {
        if name.trim().is_empty() {
            return Err(bad("the model name is empty"));
        }
        if suffix.trim().is_empty() {
            return Err(bad("nothing follows the model name's `/`"));
        }
        let selector = if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            VersionSelector::Version(suffix.parse().map_err(|_| bad("the version number is too large"))?)
        } else if suffix.eq_ignore_ascii_case("latest") {
            VersionSelector::Latest
        } else {
            VersionSelector::Stage(
                Stage::parse(suffix)
                    .ok_or_else(|| UriError::UnknownStage { uri: uri.to_owned(), stage: suffix.to_owned() })?,
            )
        };
        return Ok(ModelUri::Registered { name: name.to_owned(), selector });
    }
    if let Some((name, alias)) = body.rsplit_once('@') {
        if name.trim().is_empty() {
            return Err(bad("the model name is empty"));
        }
        if alias.trim().is_empty() {
            return Err(bad("the alias after `@` is empty"));
        }
        return Ok(ModelUri::Registered { name: name.to_owned(), selector: VersionSelector::Alias(alias.to_owned()) });
    }
    Ok(ModelUri::LoggedModel { model_id: body.to_owned() })
}

fn parse_proxied(uri: &str, rest: &str) -> Result<ModelUri, UriError> {
    let bad = |reason| UriError::Malformed {
        uri: uri.to_owned(),
        scheme: "mlflow-artifacts",
        reason,
        expected: "mlflow-artifacts:/<path> or mlflow-artifacts://<host:port>/<path>",
    };
    let (authority, path) = if let Some(r) = rest.strip_prefix("//") {
        let (auth, path) = r.split_once('/').unwrap_or((r, ""));
        if auth.is_empty() {
            (None, path)
        } else {
            if auth.contains('@') || auth.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("the host is not `host[:port]`"));
            }
            (Some(auth.to_owned()), path)
        }
    } else {
        (None, rest.strip_prefix('/').ok_or_else(|| bad("the path does not start with `/`"))?)
    };
    let clean = clean_path(path).ok_or_else(|| UriError::UnsafePath { uri: uri.to_owned(), path: path.to_owned() })?;
    Ok(ModelUri::Artifacts(ArtifactLocation::Proxied { authority, path: clean }))
}

fn parse_file(uri: &str, rest: &str) -> Result<ModelUri, UriError> {
    let bad = |reason| UriError::Malformed {
        uri: uri.to_owned(),
        scheme: "file",
        reason,
        expected: "file:///<absolute path>",
    };
    let path = match rest.strip_prefix("//") {
        Some(r) => {
            let (host, path) = r.split_once('/').map_or((r, ""), |(h, _)| (h, &r[h.len()..]));
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return Err(bad("it names another host"));
            }
            path
        }
        None => rest,
    };
    if !path.starts_with('/') {
        return Err(bad("the path is not absolute"));
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| bad("the path is not UTF-8 once percent-decoded"))?;
    let p = PathBuf::from(decoded.as_ref());
    if p.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return Err(UriError::UnsafePath { uri: uri.to_owned(), path: decoded.into_owned() });
    }
    Ok(ModelUri::Artifacts(ArtifactLocation::Local(p)))
}

fn parse_s3(uri: &str, rest: &str) -> Result<ModelUri, UriError> {
    let bad =
        |reason| UriError::Malformed { uri: uri.to_owned(), scheme: "s3", reason, expected: "s3://<bucket>/<prefix>" };
    let r = rest.strip_prefix("//").ok_or_else(|| bad("it does not start with `s3://`"))?;
    let (bucket, prefix) = r.split_once('/').unwrap_or((r, ""));
    if bucket.is_empty() {
        return Err(bad("the bucket is empty"));
    }
    let clean =
        clean_path(prefix).ok_or_else(|| UriError::UnsafePath { uri: uri.to_owned(), path: prefix.to_owned() })?;
    Ok(ModelUri::Artifacts(ArtifactLocation::S3 { bucket: bucket.to_owned(), prefix: clean }))
}

/// Whether `name` is one plain path component (a file or directory name a server listed):
/// not empty, not `.`/`..`, no separator, no control character.
#[must_use]
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && matches!(Path::new(name).components().collect::<Vec<_>>().as_slice(), [Component::Normal(_)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ModelUri {
        ModelUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn reg(name: &str, selector: VersionSelector) -> ModelUri {
        ModelUri::Registered { name: name.into(), selector }
    }

    #[test]
    fn registry_forms() {
        assert_eq!(parse("models:/spam/3"), reg("spam", VersionSelector::Version(3)));
        assert_eq!(parse("models:/spam/production"), reg("spam", VersionSelector::Stage(Stage::Production)));
        assert_eq!(parse("models:/spam/STAGING"), reg("spam", VersionSelector::Stage(Stage::Staging)));
        assert_eq!(parse("models:/spam/None"), reg("spam", VersionSelector::Stage(Stage::None)));
        assert_eq!(parse("models:/spam/archived"), reg("spam", VersionSelector::Stage(Stage::Archived)));
        assert_eq!(parse("models:/spam/Latest"), reg("spam", VersionSelector::Latest));
        assert_eq!(parse("models:/spam@champion"), reg("spam", VersionSelector::Alias("champion".into())));
        // MLflow splits an alias at the last `@` and a suffix at the first `/`.
        assert_eq!(parse("models:/a@b@c"), reg("a@b", VersionSelector::Alias("c".into())));
        assert_eq!(parse("models:/my model/1"), reg("my model", VersionSelector::Version(1)));
        assert_eq!(parse("Models:/x/1"), reg("x", VersionSelector::Version(1)));
        assert_eq!(parse("models:/m-0123abc"), ModelUri::LoggedModel { model_id: "m-0123abc".into() });
        assert!(parse("models:/spam@champion").moves());
        assert!(parse("models:/spam/Production").moves());
        assert!(parse("models:/spam/latest").moves());
        assert!(!parse("models:/spam/3").moves());
        assert!(!parse("runs:/abc/model").moves());
    }

    #[test]
    fn bad_registry_uris_say_why() {
        let err = |s: &str| ModelUri::parse(s).unwrap_err();
        assert_eq!(
            err("models:/spam/prod"),
            UriError::UnknownStage { uri: "models:/spam/prod".into(), stage: "prod".into() }
        );
        assert!(err("models:/spam/prod").to_string().contains("Staging, Production"));
        assert!(matches!(err("models:/spam/1/extra"), UriError::UnknownStage { .. }));
        for s in [
            "models:/",
            "models:",
            "models:spam/1",
            "models://p@databricks/x/1",
            "models:/spam/",
            "models:/spam@",
            "models:/@a",
            "models://x",
        ] {
            assert!(matches!(err(s), UriError::Malformed { scheme: "models", .. }), "{s}: {:?}", err(s));
        }
        assert!(err("models:/spam/99999999999999999999999").to_string().contains("too large"));
        assert_eq!(err(""), UriError::Empty);
        assert_eq!(err("  "), UriError::Empty);
    }

    #[test]
    fn run_uris() {
        assert_eq!(parse("runs:/0af3/model"), ModelUri::Run { run_id: "0af3".into(), path: "model".into() });
        assert_eq!(parse("runs:/0af3/a//b/"), ModelUri::Run { run_id: "0af3".into(), path: "a/b".into() });
        assert_eq!(parse("runs:/0af3"), ModelUri::Run { run_id: "0af3".into(), path: String::new() });
        assert_eq!(parse("runs:/0af3/model").to_string(), "runs:/0af3/model");
        for s in ["runs:/", "runs:abc/model", "runs://abc/model", "runs:/a%2Fb/model", "runs:/_x/model"] {
            assert!(matches!(ModelUri::parse(s), Err(UriError::Malformed { scheme: "runs", .. })), "{s}");
        }
        for s in ["runs:/abc/../x", "runs:/abc/./x", "runs:/abc/a\nb"] {
            assert!(matches!(ModelUri::parse(s), Err(UriError::UnsafePath { .. })), "{s}");
        }
    }

    #[test]
    fn artifact_locations() {
        let loc = |s: &str| ArtifactLocation::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(
            loc("mlflow-artifacts:/1/abc/artifacts/model"),
            ArtifactLocation::Proxied { authority: None, path: "1/abc/artifacts/model".into() }
        );
        assert_eq!(
            loc("mlflow-artifacts://10.0.0.1:5000/1/abc/"),
            ArtifactLocation::Proxied { authority: Some("10.0.0.1:5000".into()), path: "1/abc".into() }
        );
        assert_eq!(loc("mlflow-artifacts:///1/x"), ArtifactLocation::Proxied { authority: None, path: "1/x".into() });
        assert_eq!(loc("file:///tmp/a%20b/model"), ArtifactLocation::Local("/tmp/a b/model".into()));
        assert_eq!(loc("file://localhost/tmp/m"), ArtifactLocation::Local("/tmp/m".into()));
        assert_eq!(loc("file:/tmp/m"), ArtifactLocation::Local("/tmp/m".into()));
        assert_eq!(loc("out/model"), ArtifactLocation::Local("out/model".into()));
        assert_eq!(loc("/abs/model"), ArtifactLocation::Local("/abs/model".into()));
        assert_eq!(loc("C:\\models\\m"), ArtifactLocation::Local("C:\\models\\m".into()));
        assert_eq!(loc("s3://bkt/a/b/"), ArtifactLocation::S3 { bucket: "bkt".into(), prefix: "a/b".into() });
        assert_eq!(loc("s3://bkt"), ArtifactLocation::S3 { bucket: "bkt".into(), prefix: String::new() });
        for s in ["mlflow-artifacts:/1/abc/artifacts/model", "mlflow-artifacts://h:1/p", "s3://b/p", "s3://b"] {
            assert_eq!(loc(s).to_string(), s);
        }
        let e = ArtifactLocation::parse("gs://bkt/x").unwrap_err();
        assert_eq!(e, UriError::UnsupportedScheme { uri: "gs://bkt/x".into(), scheme: "gs".into() });
        assert!(matches!(ArtifactLocation::parse("runs:/a/b"), Err(UriError::UnsupportedScheme { .. })));
        assert!(matches!(ArtifactLocation::parse("file://otherhost/x"), Err(UriError::Malformed { .. })));
        assert!(matches!(ArtifactLocation::parse("file:///tmp/%2E%2E/etc"), Err(UriError::UnsafePath { .. })));
        assert!(matches!(ArtifactLocation::parse("mlflow-artifacts:/1/../../x"), Err(UriError::UnsafePath { .. })));
        assert!(matches!(ArtifactLocation::parse("mlflow-artifacts:1/x"), Err(UriError::Malformed { .. })));
        assert!(matches!(ArtifactLocation::parse("s3:///x"), Err(UriError::Malformed { .. })));
    }

    #[test]
    fn joining_and_tracking_needs() {
        let base = ArtifactLocation::parse("mlflow-artifacts:/1/r/artifacts").unwrap();
        assert_eq!(base.join("model/").unwrap().to_string(), "mlflow-artifacts:/1/r/artifacts/model");
        assert_eq!(base.join("").unwrap(), base);
        assert!(base.join("../x").is_err());
        assert_eq!(ArtifactLocation::Local("/a".into()).join("b/c").unwrap(), ArtifactLocation::Local("/a/b/c".into()));
        assert!(parse("models:/x/1").needs_tracking_server());
        assert!(parse("mlflow-artifacts:/1/x").needs_tracking_server());
        assert!(!parse("mlflow-artifacts://h:1/x").needs_tracking_server());
        assert!(!parse("out/model").needs_tracking_server());
    }

    #[test]
    fn plain_names() {
        for ok in ["MLmodel", "model.json", "a b", ".hidden"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "/x", "a\0b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
