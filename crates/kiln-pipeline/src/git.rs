//! Git revisions of the workspace, for `metrics diff`, `params diff` and experiments.
//!
//! kiln runs the `git` program rather than linking a git library: a DVC project is a git
//! checkout, so `git` is always there, and libgit2 (a C build) or gitoxide (a large dependency
//! tree) would cost far more build time than the handful of plumbing commands used here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::PipelineError;

/// Runs `git -C dir args…` and returns its stdout.
///
/// # Errors
/// `git` cannot be started or exits non-zero (the error carries its stderr).
pub fn git(dir: &Path, args: &[&str]) -> Result<String, PipelineError> {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables.
///
/// # Errors
/// As [`git`].
pub fn git_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<String, PipelineError> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| PipelineError::Git { args: args.join(" "), message: e.to_string() })?;
    if !out.status.success() {
        return Err(PipelineError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The full commit id `rev` names.
///
/// # Errors
/// `rev` names no commit.
pub fn rev_parse(dir: &Path, rev: &str) -> Result<String, PipelineError> {
    if rev.starts_with('-') {
        return Err(PipelineError::Git { args: format!("rev-parse {rev}"), message: "not a revision".into() });
    }
    let spec = format!("{rev}^{{commit}}");
    git(dir, &["rev-parse", "--verify", "--quiet", &spec])
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PipelineError::Git {
            args: format!("rev-parse {rev}"),
            message: format!("unknown revision '{rev}'"),
        })
}

/// The repository's files as commit `rev` has them, written under a new temporary directory
/// (see [`export`]). Returns the directory and, inside it, the path that corresponds to
/// `repo_root` (a DVC project may live in a subdirectory of its git repository).
///
/// # Errors
/// An unknown revision, or git failing.
pub fn snapshot(repo_root: &Path, rev: &str) -> Result<(tempfile::TempDir, PathBuf), PipelineError> {
    let tmp = tempfile::Builder::new()
        .prefix("kiln-rev-")
        .tempdir()
        .map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
    let root = export(repo_root, rev, &tmp.path().join("tree"))?;
    Ok((tmp, root))
}

/// Writes the files of commit `rev` into `dest` (created; it must not exist) through a private
/// index, and returns the path inside `dest` that corresponds to `repo_root`.
///
/// # Errors
/// An unknown revision, or git failing.
pub fn export(repo_root: &Path, rev: &str, dest: &Path) -> Result<PathBuf, PipelineError> {
    let commit = rev_parse(repo_root, rev)?;
    let prefix = git(repo_root, &["rev-parse", "--show-prefix"])?.trim().to_owned();
    std::fs::create_dir_all(dest).map_err(|source| PipelineError::Io { path: dest.to_owned(), source })?;
    let index =
        tempfile::NamedTempFile::new().map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
    let env = [("GIT_INDEX_FILE", index.path())];
    // From the top: run in a subdirectory, checkout-index --all writes only that subdirectory.
    let top = PathBuf::from(git(repo_root, &["rev-parse", "--show-toplevel"])?.trim());
    git_env(&top, &["read-tree", &commit], &env)?;
    let prefix_arg = format!("{}/", dest.display());
    git_env(&top, &["checkout-index", "--all", "--prefix", &prefix_arg], &env)?;
    Ok(if prefix.is_empty() { dest.to_owned() } else { dest.join(prefix.trim_end_matches('/')) })
}

/// Commits the files of `work_tree` (as `git add -A` sees them there, `.gitignore` applied) on
/// top of `parent`, through a private index: the workspace's index and branch are untouched.
/// Returns the new commit's id.
///
/// # Errors
/// git failing.
pub fn commit_tree(repo_root: &Path, work_tree: &Path, parent: &str, message: &str) -> Result<String, PipelineError> {
    commit_tree_with(repo_root, work_tree, parent, message, &[])
}

/// [`commit_tree`] with some files' content replaced in the commit (paths relative to the work
/// tree's top, `/`-separated); the work tree itself is not written.
///
/// # Errors
/// git failing.
pub fn commit_tree_with(
    repo_root: &Path,
    work_tree: &Path,
    parent: &str,
    message: &str,
    replaced: &[(String, String)],
) -> Result<String, PipelineError> {
    let git_dir = PathBuf::from(git(repo_root, &["rev-parse", "--absolute-git-dir"])?.trim());
    let index =
        tempfile::NamedTempFile::new().map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
    let env = [("GIT_INDEX_FILE", index.path()), ("GIT_DIR", git_dir.as_path()), ("GIT_WORK_TREE", work_tree)];
    git_env(work_tree, &["read-tree", parent], &env)?;
    git_env(work_tree, &["add", "-A", "."], &env)?;
    for (path, text) in replaced {
        let mut blob = tempfile::NamedTempFile::new()
            .map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
        std::io::Write::write_all(&mut blob, text.as_bytes())
            .map_err(|source| PipelineError::Io { path: blob.path().to_owned(), source })?;
        let blob_path = blob.path().display().to_string();
        let sha = git_env(work_tree, &["hash-object", "-w", "--", &blob_path], &env)?;
        // Keep the file's mode (an executable params file stays one).
        let staged = git_env(work_tree, &["ls-files", "-s", "--", path], &env)?;
        let mode = staged.split_whitespace().next().unwrap_or("100644").to_owned();
        git_env(work_tree, &["update-index", "--add", "--cacheinfo", &format!("{mode},{},{path}", sha.trim())], &env)?;
    }
    let tree = git_env(work_tree, &["write-tree"], &env)?;
    let commit = git(repo_root, &["commit-tree", tree.trim(), "-p", parent, "-m", message])?;
    Ok(commit.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        git(dir, args).unwrap();
    }

    #[test]
    fn snapshots_a_revision_without_touching_the_workspace() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        run(d, &["init", "-q"]);
        run(d, &["config", "user.email", "k@example.com"]);
        run(d, &["config", "user.name", "k"]);
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.txt"), "one\n").unwrap();
        run(d, &["add", "."]);
        run(d, &["commit", "-qm", "one"]);
        std::fs::write(d.join("sub/a.txt"), "two\n").unwrap();
        run(d, &["add", "."]);

        let (_tmp, root) = snapshot(&d.join("sub"), "HEAD").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(d.join("sub/a.txt")).unwrap(), "two\n");
        assert_eq!(git(d, &["diff", "--cached", "--name-only"]).unwrap(), "sub/a.txt\n");
        assert!(matches!(snapshot(d, "nope"), Err(PipelineError::Git { .. })));
        assert!(rev_parse(d, "--output=x").is_err());
    }
}
