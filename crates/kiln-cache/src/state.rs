//! Remembered hashes: a file whose inode, size and modification time are unchanged since it
//! was hashed is not read again (DVC keeps the same in `.dvc/tmp`; this is kiln's own file,
//! `.dvc/tmp/kiln-state.json`, which DVC ignores). This is what makes `status` on an unchanged
//! workspace a matter of `stat` calls.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::CacheError;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    ino: u64,
    mtime_ns: i128,
    size: u64,
    md5: String,
}

/// The state file, loaded once per command and saved if it changed.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    dirty: Mutex<bool>,
}

fn stamp(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    (meta.ino(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()), meta.size())
}

impl State {
    /// Loads `path` (a missing or unreadable file is an empty state: it is only a cache).
    #[must_use]
    pub fn load(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<(String, Entry)>>(&b).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        Self { path: path.to_owned(), entries: Mutex::new(entries), dirty: Mutex::new(false) }
    }

    /// The md5 and size remembered for `path`, if its stat still matches.
    #[must_use]
    pub fn get(&self, path: &Path) -> Option<(String, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        let (ino, mtime_ns, size) = stamp(&meta);
        let entries = self.entries.lock().ok()?;
        let e = entries.get(path.to_str()?)?;
        (e.ino == ino && e.mtime_ns == mtime_ns && e.size == size).then(|| (e.md5.clone(), e.size))
    }

    /// Remembers `md5` for `path` as it is now.
    pub fn put(&self, path: &Path, md5: &str) {
        let Ok(meta) = std::fs::metadata(path) else { return };
        let (ino, mtime_ns, size) = stamp(&meta);
        let e = Entry { ino, mtime_ns, size, md5: md5.to_owned() };
        let Some(key) = path.to_str() else { return };
        if let Ok(mut entries) = self.entries.lock()
            && entries.get(key) != Some(&e)
        {
            entries.insert(key.to_owned(), e);
            if let Ok(mut d) = self.dirty.lock() {
                *d = true;
            }
        }
    }

    /// The md5 of `path`: remembered, or read and remembered.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn md5(&self, path: &Path) -> Result<(String, u64), CacheError> {
        if let Some(k) = self.get(path) {
            return Ok(k);
        }
        let (md5, size) = crate::hash::md5_file(path)?;
        self.put(path, &md5);
        Ok((md5, size))
    }

    /// Writes the state if it changed (temp file + rename).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self) -> Result<(), CacheError> {
        if !self.dirty.lock().map(|d| *d).unwrap_or(false) {
            return Ok(());
        }
        let entries: Vec<(String, Entry)> = match self.entries.lock() {
            Ok(e) => e.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        let data = serde_json::to_vec(&entries)
            .map_err(|e| CacheError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
        crate::write_atomic(&self.path, &data)
    }
}
