//! Artifacts in a local directory, laid out as MLflow lays them out (`<exp>/<run>/artifacts/…`),
//! file names verbatim, so an existing `mlflow server` artifact folder can be served as is.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::{ArtifactError, Download, Entry};

/// Temp files of uploads in progress start with this; listings hide them.
const UPLOAD_PREFIX: &str = ".kiln-upload-";

#[derive(Debug)]
pub(crate) struct Dir {
    root: PathBuf,
}

fn io(what: &'static str, path: &str) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let path = path.to_owned();
    move |source| ArtifactError::Io { what, path, source }
}

impl Dir {
    pub(crate) fn open(dir: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { root: std::fs::canonicalize(dir)? })
    }

    /// The on-disk path of a checked relative path, refusing symlinks anywhere along it.
    fn resolve(&self, shown: &str, rel: &Path) -> Result<PathBuf, ArtifactError> {
        let mut p = self.root.clone();
        for c in rel.components() {
            p.push(c);
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && m.file_type().is_symlink()
            {
                return Err(ArtifactError::InvalidPath(format!("{shown} (a symbolic link on the way)")));
            }
        }
        Ok(p)
    }

    pub(crate) async fn put(
        &self,
        shown: &str,
        rel: &Path,
        mut body: impl Stream<Item = Result<Bytes, String>> + Unpin + Send,
    ) -> Result<(), ArtifactError> {
        let target = self.resolve(shown, rel)?;
        let dir = target.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&dir).await.map_err(io("create the directory of", shown))?;
        // Streamed into a temp file beside the target, then renamed: a reader never sees half a
        // file, and a killed server leaves only a temp file behind.
        let tmp = dir.join(format!("{UPLOAD_PREFIX}{:x}-{:x}", std::process::id(), unique()));
        let result = async {
            let mut f = tokio::fs::File::create(&tmp).await.map_err(io("write", shown))?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|message| ArtifactError::Interrupted { path: shown.to_owned(), message })?;
                f.write_all(&chunk).await.map_err(io("write", shown))?;
            }
            f.flush().await.map_err(io("write", shown))?;
            if tokio::fs::metadata(&target).await.is_ok_and(|m| m.is_dir()) {
                return Err(ArtifactError::IsDirectory(shown.to_owned()));
            }
            tokio::fs::rename(&tmp, &target).await.map_err(io("store", shown))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    pub(crate) async fn get(&self, shown: &str, rel: &Path) -> Result<Download, ArtifactError> {
        let target = self.resolve(shown, rel)?;
        let meta = tokio::fs::metadata(&target).await.map_err(|_| ArtifactError::NotFound(shown.to_owned()))?;
        if meta.is_dir() {
            return Err(ArtifactError::IsDirectory(shown.to_owned()));
        }
        let f = tokio::fs::File::open(&target).await.map_err(io("read", shown))?;
        Ok(Download { size: meta.len(), stream: tokio_util::io::ReaderStream::new(f).boxed() })
    }

    pub(crate) async fn list(&self, rel: &Path) -> Result<Vec<Entry>, ArtifactError> {
        let dir = self.resolve(&crate::key_of(rel), rel)?;
        let Ok(mut rd) = tokio::fs::read_dir(&dir).await else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(UPLOAD_PREFIX) {
                continue;
            }
            let Ok(m) = tokio::fs::symlink_metadata(e.path()).await else { continue };
            if m.file_type().is_symlink() {
                continue;
            }
            let is_dir = m.is_dir();
            out.push(Entry { name, is_dir, size: (!is_dir).then_some(m.len()) });
        }
        Ok(out)
    }

    pub(crate) async fn delete(&self, shown: &str, rel: &Path) -> Result<(), ArtifactError> {
        let target = self.resolve(shown, rel)?;
        match tokio::fs::symlink_metadata(&target).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&target).await.map_err(io("delete", shown)),
            Ok(_) => tokio::fs::remove_file(&target).await.map_err(io("delete", shown)),
            Err(_) => Err(ArtifactError::NotFound(shown.to_owned())),
        }
    }
}

/// A per-process unique number for temp-file names (two uploads of one path at once must not
/// share a temp file).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    #[allow(clippy::cast_possible_truncation)] // only uniqueness matters
    let nanos = nanos as u64;
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}
