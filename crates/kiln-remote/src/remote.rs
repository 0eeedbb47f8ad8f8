//! An opened remote: where objects are, and the four things a transfer asks of it (which
//! objects it has, put one, get one). Calls block; the transfer runs them on a pool of threads.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kiln_cache::md5::Md5;

use crate::config::{Location, RemoteSpec};
use crate::{RemoteError, object_key};

#[cfg(feature = "s3")]
mod s3;

/// Read buffer for uploads: large enough for disk speed, small enough per thread.
const BUF: usize = 1 << 20;

/// A remote ready for transfers.
#[derive(Debug)]
pub struct Remote {
    pub name: String,
    /// The URL as configured (for messages).
    pub url: String,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(PathBuf),
    #[cfg(feature = "s3")]
    S3(s3::Bucket),
}

/// Hex of an md5 state, lowercase.
fn hex(h: Md5) -> String {
    kiln_cache::hash::hex(&h.finalize())
}

/// The md5 a named object's bytes must have (`.dir` listings hash without the suffix).
pub(crate) fn content_md5(md5: &str) -> &str {
    md5.strip_suffix(".dir").unwrap_or(md5)
}

impl Remote {
    /// Opens the remote `spec` describes (for S3: builds the client; nothing is contacted).
    ///
    /// # Errors
    /// An unsupported URL, or an S3 setup object_store refuses.
    pub fn open(spec: &RemoteSpec) -> Result<Self, RemoteError> {
        let backend = match spec.location()? {
            Location::Local(dir) => Backend::Local(dir),
            #[cfg(feature = "s3")]
            Location::S3 { bucket, prefix } => Backend::S3(s3::Bucket::open(spec, &bucket, prefix)?),
            #[cfg(not(feature = "s3"))]
            Location::S3 { .. } => {
                return Err(RemoteError::Setup {
                    name: spec.name.clone(),
                    message: "this kiln was built without S3 support (cargo feature `s3`)".into(),
                });
            }
        };
        Ok(Self { name: spec.name.clone(), url: spec.url.clone(), backend })
    }

    /// Which of `md5s` the remote holds. `jobs` bounds concurrent requests.
    ///
    /// # Errors
    /// The remote cannot be listed or asked.
    pub fn contains(&self, md5s: &[String], jobs: usize) -> Result<HashSet<String>, RemoteError> {
        #[cfg(not(feature = "s3"))]
        let _ = jobs;
        match &self.backend {
            Backend::Local(dir) => {
                let mut have = HashSet::new();
                for m in md5s {
                    if dir.join(object_key(m)?).is_file() {
                        have.insert(m.clone());
                    }
                }
                Ok(have)
            }
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.contains(&self.name, md5s, jobs),
        }
    }

    /// Uploads the cache file `src` as object `md5`, hashing it on the way: when its bytes do
    /// not hash to `md5` (a corrupt cache object) nothing is stored on the remote.
    ///
    /// # Errors
    /// Unreadable file, corrupt object, or the remote refuses the write.
    pub fn put(&self, md5: &str, src: &Path) -> Result<(), RemoteError> {
        let key = object_key(md5)?;
        match &self.backend {
            Backend::Local(dir) => {
                let dest = dir.join(&key);
                let parent = dest.parent().unwrap_or(dir);
                std::fs::create_dir_all(parent).map_err(RemoteError::io(parent))?;
                // A temp file beside the object and a rename: a killed push leaves a `.tmp-`
                // file, never a partial object that a later push would take as present.
                let mut tmp =
                    tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent).map_err(RemoteError::io(parent))?;
                let got = copy_hashing(src, &mut tmp)?;
                if got != content_md5(md5) {
                    return Err(corrupt_local(md5, src));
                }
                std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o444))
                    .map_err(RemoteError::io(tmp.path()))?;
                tmp.persist(&dest).map_err(|e| RemoteError::Io { path: dest.clone(), source: e.error })?;
                Ok(())
            }
            #[cfg(feature = "s3")]
            Backend::S3(b) => b.put(&self.name, md5, &key, src),
        }
    }

    /// Downloads object `md5` into `dest` (a cache [`kiln_cache::odb::Incoming`], which checks
    /// the hash when finished).
    ///
    /// # Errors
    /// [`RemoteError::NotOnRemote`]; the remote or `dest` fails.
    pub fn get(&self, md5: &str, name: &str, dest: &mut dyn Write) -> Result<(), RemoteError> {
        let key = object_key(md5)?;
        let missing =
            || RemoteError::NotOnRemote { md5: md5.to_owned(), name: name.to_owned(), remote: self.name.clone() };
        match &self.backend {
            Backend::Local(dir) => {
                let path = dir.join(&key);
                let mut f = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                    Err(e) => return Err(RemoteError::io(&path)(e)),
                };
                std::io::copy(&mut f, dest).map_err(RemoteError::io(&path))?;
                Ok(())
            }
            #[cfg(feature = "s3")]
            Backend::S3(b) => {
                b.get(&self.name, &key, dest).and_then(|found| if found { Ok(()) } else { Err(missing()) })
            }
        }
    }
}

fn corrupt_local(md5: &str, path: &Path) -> RemoteError {
    RemoteError::Cache(kiln_cache::CacheError::Corrupt { md5: md5.to_owned(), path: path.to_owned() })
}

/// Copies `src` into `out`, returning the md5 of what was copied.
fn copy_hashing(src: &Path, out: &mut impl Write) -> Result<String, RemoteError> {
    let mut f = std::fs::File::open(src).map_err(RemoteError::io(src))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = f.read(&mut buf).map_err(RemoteError::io(src))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(RemoteError::io(src))?;
    }
    out.flush().map_err(RemoteError::io(src))?;
    Ok(hex(h))
}
