//! The outputs whose objects `push`, `fetch` and `pull` move: every cached output of the
//! workspace's `.dvc` files and of `dvc.lock` (its flags, `cache:` and `push:`, from
//! `dvc.yaml`), or those the targets name.

use std::path::{Path, PathBuf};

use kiln_cache::Repo;
use kiln_cache::dvcfile::DvcFile;
use kiln_cache::hash::HashInfo;

use crate::{RemoteError, normalize};

/// One cached output with its recorded hash.
#[derive(Debug, Clone)]
pub struct Output {
    /// Absolute workspace path.
    pub path: PathBuf,
    /// Relative to the repository root, `/`-separated (for messages).
    pub name: String,
    pub hash: HashInfo,
    /// A DVC 2 entry (hashed with `md5-dos2unix`).
    pub legacy: bool,
    /// `push: false` keeps it out of `push`.
    pub push: bool,
    /// The `.dvc` file or stage that records it.
    pub owner: Owner,
}

/// Where an output is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    DvcFile(PathBuf),
    Stage(String),
}

fn rel_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// Every cached output of the workspace with a hash: `.dvc` files first, then `dvc.lock`'s
/// stages. Outputs declared `cache: false` in `dvc.yaml` are not in the cache and are left
/// out, as DVC leaves them out.
///
/// # Errors
/// An unreadable `.dvc` file, `dvc.yaml` or `dvc.lock`.
pub fn all(repo: &Repo) -> Result<Vec<Output>, RemoteError> {
    let mut out = Vec::new();
    for f in repo.dvc_files()? {
        for o in DvcFile::read(&f)?.outs {
            let Some(hash) = o.hash.clone() else { continue };
            if !o.cache {
                continue;
            }
            let path = normalize(&DvcFile::out_path(&f, &o));
            let push = !matches!(o.extra.get("push"), Some(serde_json::Value::Bool(false)));
            out.push(Output {
                name: rel_name(&repo.root, &path),
                path,
                hash,
                legacy: o.legacy,
                push,
                owner: Owner::DvcFile(f.clone()),
            });
        }
    }
    for o in kiln_pipeline::lock::locked_outputs(&repo.root)? {
        let path = normalize(&repo.root.join(&o.name));
        out.push(Output {
            name: rel_name(&repo.root, &path),
            path,
            hash: o.hash,
            legacy: o.legacy,
            push: o.push,
            owner: Owner::Stage(o.stage),
        });
    }
    Ok(out)
}

/// The outputs `targets` name: a `.dvc` file (its outputs), an output's path (or a directory
/// holding outputs), or a stage name of `dvc.yaml`; all outputs when `targets` is empty.
/// Paths are relative to the current directory.
///
/// # Errors
/// A target that names nothing; unreadable files.
pub fn select(repo: &Repo, targets: &[String]) -> Result<Vec<Output>, RemoteError> {
    let all = all(repo)?;
    if targets.is_empty() {
        return Ok(all);
    }
    let mut chosen = vec![false; all.len()];
    for t in targets {
        let abs = normalize(&std::path::absolute(t).map_err(RemoteError::io(Path::new(t)))?);
        let mut hit = false;
        for (i, o) in all.iter().enumerate() {
            let matches = match &o.owner {
                Owner::DvcFile(f) => *f == abs,
                Owner::Stage(s) => s == t,
            } || o.path == abs
                || o.path.starts_with(&abs);
            if matches {
                chosen[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Err(RemoteError::UnknownTarget(t.clone()));
        }
    }
    Ok(all.into_iter().zip(chosen).filter_map(|(o, c)| c.then_some(o)).collect())
}
