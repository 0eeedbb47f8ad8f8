//! Writing files atomically: a temp file in the destination's directory, then a rename, so a
//! killed process leaves the old file or the new one, never half of one (and a pipeline stage
//! that fails never leaves an output DVC would hash).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `data` to `path` atomically, creating its directory.
///
/// # Errors
/// The directory or the file cannot be written.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), WriteError> {
    write_atomic_with(path, |w| w.write_all(data))
}

/// Writes `path` atomically from what `fill` writes into a buffered writer (for outputs
/// produced piece by piece, such as CSV rows), creating its directory.
///
/// # Errors
/// The directory or the file cannot be written, or `fill` fails.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let err = |source| WriteError { path: path.to_owned(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = tempfile::Builder::new().prefix(".kiln-tmp-").tempfile_in(dir).map_err(err)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w).map_err(err)?;
        w.flush().map_err(err)?;
    }
    // Temp files are created 0600; the result is an ordinary file (as `umask 022` makes them).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_creates_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic_with(&p, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        // Only the file itself is left: no temp files beside it.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        let failed = write_atomic_with(&p, |_| Err(std::io::Error::other("boom"))).unwrap_err();
        assert_eq!(failed.to_string(), format!("cannot write `{}`", p.display()));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
    }
}
