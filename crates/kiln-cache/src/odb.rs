//! The content-addressed cache under `.dvc/cache` (`shared/spec/pipelines.md` §6): DVC 3's
//! `files/md5/<2>/<30>` layout (DVC 2's `<2>/<30>` read too), objects read-only, written through
//! a temp file and a rename so that a killed process never leaves a partial object, and checked
//! against their name before use.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::md5::Md5;

use crate::CacheError;
use crate::hash::{DirEntry, hex, md5_file};

/// Files this large are copied by the kernel while they are hashed (see [`Cache::store_file`]).
const PARALLEL_COPY_MIN: u64 = 32 << 20;

/// The names of the regular files (or links to them) in `dir`, sorted; empty when it cannot
/// be read.
fn object_names(dir: &Path) -> Vec<[u8; 30]> {
    use rustix::fs::{CWD, Dir, FileType, Mode, OFlags};
    let Ok(fd) = rustix::fs::openat(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
    else {
        return Vec::new();
    };
    let Ok(mut d) = Dir::new(fd) else { return Vec::new() };
    let mut names = Vec::new();
    while let Some(Ok(e)) = d.read() {
        // A file object's name is the 30 hex digits after its prefix, held inline (no
        // allocation per name); anything else (`.dir` listings, temp files, other types) is
        // left to the one-by-one check.
        if e.file_type() == FileType::RegularFile
            && let Ok(name) = <[u8; 30]>::try_from(e.file_name().to_bytes())
        {
            names.push(name);
        }
    }
    names.sort_unstable();
    names
}

/// How a workspace file is made from its cache object (`cache.type` in `.dvc/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// A copy-on-write clone where the filesystem has them (`std::fs::copy` asks the kernel,
    /// which clones on btrfs/XFS), else a copy; DVC's default `reflink,copy` amounts to this.
    Copy,
    Hardlink,
    Symlink,
}

impl LinkType {
    /// The first of DVC's comma-separated `cache.type` values kiln can honour.
    #[must_use]
    pub fn from_config(value: &str) -> Self {
        for t in value.split(',').map(str::trim) {
            match t {
                "hardlink" => return Self::Hardlink,
                "symlink" => return Self::Symlink,
                "reflink" | "copy" => return Self::Copy,
                _ => {}
            }
        }
        Self::Copy
    }
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_owned(), source }
}

fn split(md5: &str) -> Result<(&str, &str), CacheError> {
    let hexpart = md5.strip_suffix(".dir").unwrap_or(md5);
    if hexpart.len() != 32 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CacheError::BadHash(md5.to_owned()));
    }
    Ok(md5.split_at(2))
}

/// Cache objects are 0444, as DVC leaves them.
/// Cache objects are read-only (0444), as DVC makes them: a link to one cannot be edited in
/// place.
fn read_only() -> std::fs::Permissions {
    std::fs::Permissions::from_mode(0o444)
}

impl Cache {
    /// Where DVC 3 keeps the object `md5` (`.dir` listings included).
    ///
    /// # Errors
    /// `md5` is not a 32-digit hex hash.
    pub fn object_path(&self, md5: &str) -> Result<PathBuf, CacheError> {
        let (a, b) = split(md5)?;
        Ok(self.root.join("files").join("md5").join(a).join(b))
    }

    /// The object's path if the cache holds it (DVC 3 layout first, then DVC 2's).
    #[must_use]
    pub fn find(&self, md5: &str) -> Option<PathBuf> {
        let (a, b) = split(md5).ok()?;
        [self.root.join("files").join("md5").join(a).join(b), self.root.join(a).join(b)]
            .into_iter()
            .find(|p| p.is_file())
    }

    /// Whether the cache holds every object of `md5s`. Many objects are looked up by listing
    /// the `files/md5/<2>` directories they fall in (one `getdents` walk each, in parallel)
    /// instead of a `stat` per object; anything not seen there is looked for one by one.
    #[must_use]
    pub fn has_all<'a>(&self, md5s: impl Iterator<Item = &'a str>) -> bool {
        self.presence(md5s).0
    }

    /// [`Cache::has_all`], and whether every object was seen in a prefix directory's listing
    /// (none needed the one-by-one look, which also finds DVC 2's layout).
    fn presence<'a>(&self, md5s: impl Iterator<Item = &'a str>) -> (bool, bool) {
        use rayon::prelude::*;
        let mut md5s: Vec<&str> = md5s.collect();
        if md5s.len() < 512 {
            return (md5s.par_iter().all(|m| self.find(m).is_some()), false);
        }
        md5s.sort_unstable();
        md5s.dedup();
        let groups: Vec<&[&str]> = md5s.chunk_by(|a, b| a.get(..2) == b.get(..2)).collect();
        let base = self.root.join("files").join("md5");
        let one_by_one = std::sync::atomic::AtomicBool::new(false);
        let all = groups.par_iter().all(|group| {
            let Some(prefix) = group[0].get(..2) else { return false };
            let names = object_names(&base.join(prefix));
            group.iter().all(|m| {
                let listed = m
                    .as_bytes()
                    .get(2..)
                    .is_some_and(|rest| names.binary_search_by(|n| n.as_slice().cmp(rest)).is_ok());
                listed || {
                    one_by_one.store(true, std::sync::atomic::Ordering::Relaxed);
                    self.find(m).is_some()
                }
            })
        });
        (all, !one_by_one.into_inner())
    }

    /// A digest of the stamps (inode, mtime) of the 256 prefix directories of DVC 3's layout
    /// and of the object `listing` (inode, mtime, size), and whether any of them is too recent
    /// to trust against clock `now_ns` on a filesystem with coarse timestamps. An object
    /// unlinked from the cache changes its directory's stamp; see `State::listing_complete`.
    /// Costs 257 `stat`s, against a `getdents` walk of every prefix directory for the check
    /// itself.
    #[must_use]
    pub fn layout_stamp(&self, listing: &Path, now_ns: i64) -> ([u8; 16], bool) {
        use rustix::fs::{AtFlags, CWD, Mode, OFlags};
        let mut buf = Vec::with_capacity(257 * 24);
        let mut racy = false;
        let mut put = |st: Option<&rustix::fs::Stat>, with_size: bool| match st {
            Some(st) => {
                let stamp = crate::state::Stamp::of_stat(st, now_ns);
                racy |= stamp.racy;
                buf.push(1);
                buf.extend_from_slice(&stamp.ino.to_le_bytes());
                buf.extend_from_slice(&stamp.mtime_ns.to_le_bytes());
                if with_size {
                    buf.extend_from_slice(&stamp.size.to_le_bytes());
                }
            }
            None => buf.push(0),
        };
        let base = self.root.join("files").join("md5");
        match rustix::fs::openat(CWD, &base, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                for i in 0..=255u8 {
                    put(rustix::fs::statat(&fd, format!("{i:02x}").as_str(), AtFlags::empty()).ok().as_ref(), false);
                }
            }
            Err(_) => put(None, false),
        }
        put(rustix::fs::stat(listing).ok().as_ref(), true);
        let mut out = [0u8; 16];
        out.copy_from_slice(&blake3::hash(&buf).as_bytes()[..16]);
        (out, racy)
    }

    /// Whether this cache's filesystem gives a directory a new mtime for every change made
    /// after its mtime was read, however soon (Linux 6.13+'s multigrain timestamps on ext4,
    /// XFS, btrfs, tmpfs); with coarse timestamps two changes within one clock tick share an
    /// mtime. Probed once per process in a scratch directory inside the cache: read the mtime,
    /// add an entry, read it again, four times.
    #[must_use]
    pub fn fine_grained_mtimes(&self) -> bool {
        static FINE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FINE.get_or_init(|| {
            let Ok(dir) = tempfile::Builder::new().prefix(".kiln-mtime-probe-").tempdir_in(&self.root) else {
                return false;
            };
            let mtime = || std::fs::metadata(dir.path()).ok().map(|m| (m.mtime(), m.mtime_nsec()));
            (0..4).all(|i| {
                let before = mtime();
                before.is_some() && std::fs::File::create(dir.path().join(i.to_string())).is_ok() && mtime() != before
            })
        })
    }

    /// A temp file in the object's directory (same filesystem, so the rename is atomic).
    /// A temp file in `dest`'s directory (same filesystem, so the rename is atomic). It is
    /// created read-only: the mode only governs later opens, this handle writes, and the
    /// object needs no `chmod` when it is published. Its directory is made only when the
    /// create fails for want of it, not with a `mkdir` per object (10,000 small files: two
    /// system calls fewer each).
    fn temp_in(&self, dest: &Path) -> Result<tempfile::NamedTempFile, CacheError> {
        let dir = dest.parent().unwrap_or(&self.root);
        let create =
            || tempfile::Builder::new().prefix(".tmp-").permissions(read_only()).tempfile_in(dir).map_err(io(dir));
        match create() {
            Err(CacheError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                create()
            }
            other => other,
        }
    }

    /// Renames a temp file of [`Cache::temp_in`] (already read-only) into place, making the
    /// object's prefix directory when it is missing.
    fn publish(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<(), CacheError> {
        let err = |source| CacheError::Io { path: dest.to_owned(), source };
        match tmp.persist(dest) {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dest.parent().unwrap_or(dest)).map_err(io(dest))?;
                e.file.persist(dest).map(|_| ()).map_err(|e| err(e.error))
            }
            Err(e) => Err(err(e.error)),
        }
    }

    /// Stores a file and returns its md5 and size. An object already present is kept (and its
    /// copy dropped). A large file whose stamp is old enough to trust is copied by the kernel
    /// (`copy_file_range`: a reflink on filesystems with them, no user-space copy otherwise)
    /// while this thread hashes it, and its stamp is checked again afterwards: both reads saw
    /// the same bytes unless the stamp moved, in which case it is stored again in one pass.
    /// Anything else is hashed as it is copied (one read).
    ///
    /// # Errors
    /// The file cannot be read or the cache written.
    pub fn store_file(&self, src: &Path) -> Result<(String, u64), CacheError> {
        let staging = self.root.join("files").join("md5").join(".incoming");
        let tmp = self.temp_in(&staging.join("x"))?;
        let before = crate::state::Stamp::now(src);
        let (md5, size, tmp) = match before {
            Some(b) if b.size >= PARALLEL_COPY_MIN && !b.racy => {
                let copied = std::thread::scope(|s| {
                    // Through the open handle: the temp file is read-only by path (see temp_in).
                    // std's io::copy between files is copy_file_range.
                    let copy = s
                        .spawn(|| std::fs::File::open(src).and_then(|mut f| std::io::copy(&mut f, &mut tmp.as_file())));
                    let hashed = md5_file(src);
                    (copy.join(), hashed)
                });
                let after = crate::state::Stamp::now(src);
                match copied {
                    (Ok(Ok(n)), Ok((md5, size))) if n == size && after == before => (md5, size, tmp),
                    _ => {
                        drop(tmp);
                        self.store_one_pass(src, self.temp_in(&staging.join("x"))?, None)?
                    }
                }
            }
            _ => self.store_one_pass(src, tmp, before.map(|b| b.size))?,
        };
        let dest = self.object_path(&md5)?;
        if dest.is_file() {
            return Ok((md5, size));
        }
        Self::publish(tmp, &dest)?;
        Ok((md5, size))
    }

    /// Copies `src` into `tmp`, hashing the bytes on the way (`size_hint`: its size, if known).
    fn store_one_pass(
        &self,
        src: &Path,
        mut tmp: tempfile::NamedTempFile,
        size_hint: Option<u64>,
    ) -> Result<(String, u64, tempfile::NamedTempFile), CacheError> {
        let mut f = std::fs::File::open(src).map_err(io(src))?;
        let mut h = Md5::new();
        // A small file gets a small buffer (one byte more than its size, so the second read
        // sees the end): 10,000 small files do not each zero a whole MiB.
        let cap = size_hint.map_or(1 << 20, |n| usize::try_from(n).map_or(1 << 20, |n| (n + 1).clamp(4096, 1 << 20)));
        let mut buf = vec![0u8; cap];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io(src))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(io(tmp.path()))?;
            size += n as u64;
        }
        tmp.flush().map_err(io(src))?;
        Ok((hex(&h.finalize()), size, tmp))
    }

    /// Stores a file whose md5 is already known (from the state) unless the cache has it.
    ///
    /// # Errors
    /// The file cannot be read, the cache written, or the content no longer has that md5.
    pub fn store_known(&self, src: &Path, md5: &str) -> Result<(), CacheError> {
        if self.find(md5).is_some() {
            return Ok(());
        }
        let (got, _) = self.store_file(src)?;
        if got != md5 {
            return Err(CacheError::Changed { path: src.to_owned() });
        }
        Ok(())
    }

    /// Stores bytes (a directory listing) under `md5`.
    ///
    /// # Errors
    /// The cache cannot be written.
    pub fn store_bytes(&self, md5: &str, data: &[u8]) -> Result<(), CacheError> {
        let dest = self.object_path(md5)?;
        if dest.is_file() {
            return Ok(());
        }
        let mut tmp = self.temp_in(&dest)?;
        tmp.write_all(data).map_err(io(&dest))?;
        Self::publish(tmp, &dest)
    }

    /// A writer for object `md5` arriving from elsewhere (a remote): the bytes go to a temp
    /// file beside the object's place and are hashed as they come; [`Incoming::finish`] moves
    /// them into place only when they hash to `md5`. A killed transfer leaves a `.tmp-` file
    /// (`gc` removes those), never a partial object.
    ///
    /// # Errors
    /// `md5` is not a hash, or the cache cannot be written.
    pub fn incoming(&self, md5: &str) -> Result<Incoming, CacheError> {
        let dest = self.object_path(md5)?;
        let tmp = self.temp_in(&dest)?;
        Ok(Incoming { tmp, hasher: Md5::new(), md5: md5.to_owned(), dest })
    }

    /// The object, checked against its name: a corrupt object is refused, never used.
    ///
    /// # Errors
    /// Missing object, or its content does not hash to its name.
    pub fn verified(&self, md5: &str) -> Result<PathBuf, CacheError> {
        let path = self.find(md5).ok_or_else(|| CacheError::Missing(md5.to_owned()))?;
        let want = md5.strip_suffix(".dir").unwrap_or(md5);
        let (got, _) = md5_file(&path)?;
        if got != want {
            return Err(CacheError::Corrupt { md5: md5.to_owned(), path });
        }
        Ok(path)
    }

    /// A directory's listing from its `.dir` object.
    ///
    /// # Errors
    /// Missing or corrupt object, not a listing.
    pub fn listing(&self, md5: &str) -> Result<Vec<DirEntry>, CacheError> {
        let (path, text) = self.verified_bytes(md5)?;
        serde_json::from_slice(&text).map_err(|e| CacheError::Corrupt { md5: format!("{md5} ({e})"), path })
    }

    /// Whether every file object of the `.dir` listing `md5` is in the cache (the listing
    /// itself must be, and intact), and whether every one was seen in a prefix directory's
    /// listing (see [`Cache::presence`]). Reads only the entries' hashes, borrowed from the
    /// listing's bytes: `status` of a 10,000-file directory made 20,000 strings here before.
    ///
    /// # Errors
    /// A corrupt listing.
    pub fn listed_presence(&self, md5: &str) -> Result<(bool, bool), CacheError> {
        #[derive(serde::Deserialize)]
        struct Entry<'a> {
            #[serde(borrow)]
            md5: std::borrow::Cow<'a, str>,
        }
        let (path, text) = match self.verified_bytes(md5) {
            Ok(found) => found,
            Err(CacheError::Missing(_)) => return Ok((false, false)),
            Err(e) => return Err(e),
        };
        let entries: Vec<Entry<'_>> =
            serde_json::from_slice(&text).map_err(|e| CacheError::Corrupt { md5: format!("{md5} ({e})"), path })?;
        Ok(self.presence(entries.iter().map(|e| e.md5.as_ref())))
    }

    /// The object's path and bytes, refused unless they hash to `md5` (read once).
    fn verified_bytes(&self, md5: &str) -> Result<(PathBuf, Vec<u8>), CacheError> {
        let path = self.find(md5).ok_or_else(|| CacheError::Missing(md5.to_owned()))?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if crate::hash::md5_bytes(&bytes) != md5.strip_suffix(".dir").unwrap_or(md5) {
            return Err(CacheError::Corrupt { md5: md5.to_owned(), path });
        }
        Ok((path, bytes))
    }

    /// Makes `dest` the content of object `md5` with `link`, atomically (a temp name beside
    /// `dest`, then a rename over it). Copies are writable; links point at read-only objects,
    /// so editing one in place fails instead of corrupting the cache.
    ///
    /// # Errors
    /// Missing or corrupt object, unwritable workspace.
    pub fn checkout_file(&self, md5: &str, dest: &Path, link: LinkType) -> Result<(), CacheError> {
        let obj = self.verified(md5)?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = dir.join(format!(
            ".{}.kiln-tmp",
            dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let _ = std::fs::remove_file(&tmp);
        match link {
            LinkType::Copy => {
                std::fs::copy(&obj, &tmp).map_err(io(&tmp))?;
                // A copy is the user's to edit (the object's 0444 is copied along).
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io(&tmp))?;
            }
            LinkType::Hardlink => std::fs::hard_link(&obj, &tmp).map_err(io(&tmp))?,
            LinkType::Symlink => {
                let abs = std::path::absolute(&obj).map_err(io(&obj))?;
                std::os::unix::fs::symlink(abs, &tmp).map_err(io(&tmp))?;
            }
        }
        std::fs::rename(&tmp, dest).map_err(io(dest))
    }
}

/// An object being received into the cache; see [`Cache::incoming`].
#[derive(Debug)]
pub struct Incoming {
    tmp: tempfile::NamedTempFile,
    hasher: Md5,
    md5: String,
    dest: PathBuf,
}

impl Write for Incoming {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl Incoming {
    /// Checks the bytes against the object's name and moves them into place (read-only); on
    /// a mismatch the temp file is removed and nothing enters the cache.
    ///
    /// # Errors
    /// [`CacheError::Mismatch`] when the bytes do not hash to the name; I/O.
    pub fn finish(mut self) -> Result<PathBuf, CacheError> {
        self.tmp.flush().map_err(io(&self.dest))?;
        let got = hex(&self.hasher.finalize());
        if got != self.md5.strip_suffix(".dir").unwrap_or(&self.md5) {
            return Err(CacheError::Mismatch { md5: self.md5, got });
        }
        Cache::publish(self.tmp, &self.dest)?;
        Ok(self.dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of storing a file (one pass; kernel copy beside the hash) give the same object.
    #[test]
    fn store_file_large_and_small() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache { root: dir.path().join("cache") };
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..(PARALLEL_COPY_MIN + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&big, &data).unwrap();
        let want = crate::hash::md5_bytes(&data);
        // Just written: racy, so one pass.
        assert_eq!(cache.store_file(&big).unwrap(), (want.clone(), data.len() as u64));
        std::fs::remove_file(cache.object_path(&want).unwrap()).unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        std::fs::File::options().write(true).open(&big).unwrap().set_modified(t).unwrap();
        assert_eq!(cache.store_file(&big).unwrap(), (want.clone(), data.len() as u64));
        let obj = cache.verified(&want).unwrap();
        assert_eq!(std::fs::read(obj).unwrap(), data);
        assert!(cache.has_all([want.as_str()].into_iter()));
        assert!(!cache.has_all([crate::hash::md5_bytes(b"x").as_str()].into_iter()));
    }
}
