//! Remembered hashes: a file whose inode, size and modification time are unchanged since it
//! was hashed is not read again (DVC keeps the same in `.dvc/tmp`; this is kiln's own file,
//! `.dvc/tmp/kiln-state.bin`, which DVC ignores). A directory is remembered as a whole too:
//! a BLAKE3 digest of every file's (path, inode, mtime, size) → its `.dir` hash, so an unchanged
//! directory costs one `stat` walk and no per-file lookup. This is what makes `status` on an
//! unchanged workspace a matter of `stat` calls.
//!
//! **Racy stamps.** A file written within the filesystem's timestamp granularity of the moment
//! it was stat-ed could change again without its stamp changing (git's "racily clean" entries).
//! The stamp is therefore taken *before* the file is read, together with the clock, and a stamp
//! whose mtime is not comfortably older than that clock ([`RACY_NS`]; 2 s where the mtime has no
//! sub-second part, as on coarse filesystems) is never remembered: such a file is hashed again
//! next time, by which point its mtime is old enough to trust. A directory is remembered only
//! when none of its files is racy.
//!
//! **Complete listings.** Whether the cache holds every object of a `.dir` listing is
//! remembered too, under a digest of the stamps of the cache's prefix directories and of the
//! listing object (see `Cache::layout_stamp`): an object leaves the cache only by being
//! unlinked from its prefix directory, which changes that directory's mtime, so an unchanged
//! digest means nothing left. The stamps are taken before the objects are checked, and the
//! record is kept only when a later change is sure to show: the directories' mtimes are older
//! than [`RACY_NS`], or the filesystem hands out a new, fine-grained mtime for any change after
//! one was read (Linux's multigrain timestamps; probed, see `Cache::fine_grained_mtimes`).
//!
//! **Directory names.** A directory's names are remembered with its own stamp (inode, mtime,
//! ctime) when they were read (see `hash::walk_stamped`): a name is added, removed or renamed
//! only by changing the directory's mtime and ctime, so while the stamp is unchanged (and was not
//! racy) the walk takes the names from here instead of reading the directory again.
//!
//! The file is a small binary format (magic, then the directory records, the complete
//! listings, the directory names, then the file records, little-endian); the file records are
//! read and decoded only when a lookup needs them. An unreadable or foreign file is an empty
//! state: it is only a cache.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::CacheError;

const MAGIC: &[u8] = b"kiln-state 4\n";
/// The format before remembered directory names: the same less that section.
const MAGIC_3: &[u8] = b"kiln-state 3\n";
/// The format before complete listings: its file records are still good (its directory
/// fingerprints were md5s, so they simply no longer match), and keeping them spares a re-hash of
/// every file after an upgrade.
const MAGIC_2: &[u8] = b"kiln-state 2\n";
/// How much older than the clock at `stat` time an mtime must be to be trusted (covers the
/// kernel's coarse file-time clock, one tick behind the real one).
pub const RACY_NS: i64 = 100_000_000;
/// The same for an mtime with no sub-second part (a filesystem with 1–2 s granularity).
const RACY_COARSE_NS: i64 = 2_100_000_000;

/// A file's identity as `stat` saw it, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub ino: u64,
    pub mtime_ns: i64,
    pub size: u64,
    /// Too recent to trust (see the module's notes).
    pub racy: bool,
}

/// The clock, in nanoseconds since the epoch.
#[must_use]
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Stamp {
    /// The stamp of `meta`, taken at clock `now_ns`.
    #[must_use]
    pub fn of(meta: &std::fs::Metadata, now_ns: i64) -> Self {
        let mtime_ns = meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec());
        let margin = if meta.mtime_nsec() == 0 { RACY_COARSE_NS } else { RACY_NS };
        Self { ino: meta.ino(), mtime_ns, size: meta.size(), racy: mtime_ns > now_ns.saturating_sub(margin) }
    }

    /// The stamp of a raw `stat` (for walks that stat relative to a directory's descriptor).
    #[must_use]
    #[allow(clippy::unnecessary_cast, clippy::cast_possible_wrap, clippy::cast_sign_loss)]
    pub fn of_stat(st: &rustix::fs::Stat, now_ns: i64) -> Self {
        let nsec = st.st_mtime_nsec as i64;
        let mtime_ns = (st.st_mtime as i64).saturating_mul(1_000_000_000).saturating_add(nsec);
        let margin = if nsec == 0 { RACY_COARSE_NS } else { RACY_NS };
        Self {
            ino: st.st_ino as u64,
            mtime_ns,
            size: st.st_size as u64,
            racy: mtime_ns > now_ns.saturating_sub(margin),
        }
    }

    /// `stat` of `path` (symlinks followed), `None` when it cannot be stat-ed.
    #[must_use]
    pub fn now(path: &Path) -> Option<Self> {
        let t = now_ns();
        std::fs::metadata(path).ok().map(|m| Self::of(&m, t))
    }
}

/// A directory's identity for its remembered names: inode, mtime, and ctime (which, unlike the
/// mtime, cannot be set back: putting a directory's mtime back after a change still shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirStamp {
    pub ino: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// The mtime is too recent to trust (as [`Stamp::racy`]).
    pub racy: bool,
}

impl DirStamp {
    /// The stamp of a directory's raw `stat`, taken at clock `now_ns`.
    #[must_use]
    #[allow(clippy::unnecessary_cast)]
    pub fn of_stat(st: &rustix::fs::Stat, now_ns: i64) -> Self {
        let file = Stamp::of_stat(st, now_ns);
        let ctime_ns = (st.st_ctime as i64).saturating_mul(1_000_000_000).saturating_add(st.st_ctime_nsec as i64);
        // A recent ctime is racy too: an mtime set back (`touch -d`, `rsync -t`) looks old while
        // a change in the same ctime tick would not show.
        let racy = file.racy || ctime_ns > now_ns.saturating_sub(RACY_NS);
        Self { ino: file.ino, mtime_ns: file.mtime_ns, ctime_ns, racy }
    }

    fn same(&self, other: &Self) -> bool {
        (self.ino, self.mtime_ns, self.ctime_ns) == (other.ino, other.mtime_ns, other.ctime_ns)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileRec {
    ino: u64,
    mtime_ns: i64,
    size: u64,
    md5: [u8; 16],
}

/// What is remembered about a directory: the md5 of its files' stamps, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRec {
    pub fingerprint: [u8; 16],
    /// The `.dir` hash (with its suffix).
    pub md5: String,
    pub size: u64,
    pub nfiles: u64,
}

/// The state file, loaded once per command and saved if it changed.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    /// The file records, not yet read or decoded (see [`Rest`]).
    raw_files: Mutex<Option<Rest>>,
    files: OnceLock<Mutex<HashMap<String, FileRec>>>,
    dirs: Mutex<Dirs>,
    /// `.dir` md5 (without the suffix) → the layout stamp under which all its objects were
    /// seen in the cache.
    complete: Mutex<Complete>,
    /// A directory → its stamp and names when they were read (see `hash::walk_stamped`).
    listings: Mutex<Listings>,
    dirty: Mutex<bool>,
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        *o = u8::try_from(d(b[2 * i])? * 16 + d(b[2 * i + 1])?).ok()?;
    }
    Some(out)
}

/// A little-endian reader over the state's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn md5(&mut self) -> Option<[u8; 16]> {
        self.take(16)?.try_into().ok()
    }
    fn str(&mut self) -> Option<String> {
        let n = usize::try_from(self.u64()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// What [`parse_dirs`] reads: directory records, complete listings, and how many bytes they
/// took (the file records follow).
type Head = (Dirs, Complete, Listings, usize);
/// A directory's stamp and its names, in `hash::LISTED_DIR`'s form.
type Listings = HashMap<String, (DirStamp, std::sync::Arc<[u8]>)>;
type Dirs = HashMap<String, DirRec>;
type Complete = HashMap<[u8; 16], [u8; 16]>;

/// The file records as loaded: the bytes already read after the head, and the open file the
/// rest is read from when a lookup first needs them. `status` of an unchanged directory needs
/// only the head; the file records were 800 KB of 10,000 files' state, a millisecond to read.
/// The descriptor keeps the inode that was loaded, even if the file is replaced meanwhile.
#[derive(Debug)]
struct Rest {
    read: Vec<u8>,
    file: Option<std::fs::File>,
}

impl Rest {
    fn bytes(self) -> Vec<u8> {
        let mut data = self.read;
        if let Some(mut f) = self.file {
            use std::io::Read;
            if f.read_to_end(&mut data).is_err() {
                return Vec::new();
            }
        }
        data
    }
}

/// The directory records and complete listings, and how many bytes they took.
fn parse_dirs(data: &[u8]) -> Option<Head> {
    let (mut r, version) = if let Some(rest) = data.strip_prefix(MAGIC) {
        let mut r = Reader(rest);
        r.u64()?; // the head's length (see `load_head`)
        (r, 4)
    } else if let Some(rest) = data.strip_prefix(MAGIC_3) {
        (Reader(rest), 3)
    } else {
        (Reader(data.strip_prefix(MAGIC_2)?), 2)
    };
    let n = r.u64()?;
    let mut dirs = HashMap::new();
    for _ in 0..n {
        let key = r.str()?;
        let fingerprint = r.md5()?;
        let md5 = format!("{}.dir", crate::hash::hex(&r.md5()?));
        let size = r.u64()?;
        let nfiles = r.u64()?;
        dirs.insert(key, DirRec { fingerprint, md5, size, nfiles });
    }
    let n = if version >= 3 { r.u64()? } else { 0 };
    let mut complete = HashMap::new();
    for _ in 0..n {
        let listing = r.md5()?;
        complete.insert(listing, r.md5()?);
    }
    let n = if version >= 4 { r.u64()? } else { 0 };
    let mut listings = HashMap::new();
    for _ in 0..n {
        let key = r.str()?;
        let ino = r.u64()?;
        let mtime_ns = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let ctime_ns = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let stamp = DirStamp { ino, mtime_ns, ctime_ns, racy: false };
        let len = usize::try_from(r.u64()?).ok()?;
        listings.insert(key, (stamp, r.take(len)?.into()));
    }
    Some((dirs, complete, listings, data.len() - r.0.len()))
}

/// How much of the state file is read at first: the head of a workspace's few directory
/// records and complete listings, and more only when the head does not fit.
const FIRST_READ: usize = 64 << 10;

/// The head of the state file at `path`, and the file records' [`Rest`].
fn load_head(path: &Path) -> Option<(Dirs, Complete, Listings, Rest)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut data = Vec::with_capacity(FIRST_READ);
    (&mut f).take(FIRST_READ as u64).read_to_end(&mut data).ok()?;
    let mut whole = data.len() < FIRST_READ;
    if !whole {
        // The current format says how long its head is: read exactly the rest of it. An older
        // one is read whole.
        let head_end = data.strip_prefix(MAGIC).and_then(|rest| {
            usize::try_from(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?)).ok()?.checked_add(MAGIC.len() + 8)
        });
        match head_end {
            Some(end) if end > data.len() => {
                let more = (end - data.len()) as u64;
                if (&mut f).take(more).read_to_end(&mut data).ok()? < usize::try_from(more).ok()? {
                    return None;
                }
            }
            Some(_) => {}
            None => {
                f.read_to_end(&mut data).ok()?;
                whole = true;
            }
        }
    }
    let (dirs, complete, listings, used) = parse_dirs(&data)?;
    let read = data.split_off(used);
    Some((dirs, complete, listings, Rest { read, file: (!whole).then_some(f) }))
}

fn parse_files(data: &[u8]) -> Option<HashMap<String, FileRec>> {
    let mut r = Reader(data);
    let n = r.u64()?;
    let mut files = HashMap::with_capacity(usize::try_from(n).ok()?.min(data.len() / 48));
    for _ in 0..n {
        let key = r.str()?;
        let ino = r.u64()?;
        let mtime_ns = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let size = r.u64()?;
        let md5 = r.md5()?;
        files.insert(key, FileRec { ino, mtime_ns, size, md5 });
    }
    Some(files)
}

impl State {
    /// Loads `path` (a missing, unreadable or foreign file is an empty state).
    #[must_use]
    pub fn load(path: &Path) -> Self {
        let (dirs, complete, listings, rest) = load_head(path)
            .unwrap_or_else(|| (HashMap::new(), HashMap::new(), HashMap::new(), Rest { read: Vec::new(), file: None }));
        Self {
            path: path.to_owned(),
            raw_files: Mutex::new(Some(rest)),
            files: OnceLock::new(),
            dirs: Mutex::new(dirs),
            complete: Mutex::new(complete),
            listings: Mutex::new(listings),
            dirty: Mutex::new(false),
        }
    }

    fn files(&self) -> &Mutex<HashMap<String, FileRec>> {
        self.files.get_or_init(|| {
            let raw = self.raw_files.lock().ok().and_then(|mut r| r.take()).map(Rest::bytes).unwrap_or_default();
            Mutex::new(parse_files(&raw).unwrap_or_default())
        })
    }

    fn mark_dirty(&self) {
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
        }
    }

    /// The md5 remembered for `path` if `stamp` (taken now) matches the remembered one.
    #[must_use]
    pub fn lookup(&self, path: &Path, stamp: &Stamp) -> Option<String> {
        let files = self.files().lock().ok()?;
        let e = files.get(path.to_str()?)?;
        (e.ino == stamp.ino && e.mtime_ns == stamp.mtime_ns && e.size == stamp.size).then(|| crate::hash::hex(&e.md5))
    }

    /// Remembers `md5` for `path` with the stamp taken *before* it was read; a racy stamp is
    /// not remembered (and forgets what was).
    pub fn record(&self, path: &Path, stamp: &Stamp, md5: &str) {
        let (Some(key), Some(md5)) = (path.to_str(), unhex(md5)) else { return };
        let Ok(mut files) = self.files().lock() else { return };
        if stamp.racy {
            if files.remove(key).is_some() {
                self.mark_dirty();
            }
            return;
        }
        let e = FileRec { ino: stamp.ino, mtime_ns: stamp.mtime_ns, size: stamp.size, md5 };
        if files.get(key) != Some(&e) {
            files.insert(key.to_owned(), e);
            self.mark_dirty();
        }
    }

    /// The md5 and size remembered for `path`, if its stat still matches.
    #[must_use]
    pub fn get(&self, path: &Path) -> Option<(String, u64)> {
        let stamp = Stamp::now(path)?;
        self.lookup(path, &stamp).map(|m| (m, stamp.size))
    }

    /// Remembers `md5` for `path` as it is now (a file kiln just wrote: usually racy, so this
    /// mostly forgets the old record).
    pub fn put(&self, path: &Path, md5: &str) {
        match Stamp::now(path) {
            Some(stamp) => self.record(path, &stamp, md5),
            None => self.forget(path),
        }
    }

    /// Forgets `path` (its content is being replaced).
    pub fn forget(&self, path: &Path) {
        let Some(key) = path.to_str() else { return };
        if let Ok(mut files) = self.files().lock()
            && files.remove(key).is_some()
        {
            self.mark_dirty();
        }
    }

    /// The md5 of `path`: remembered, or read and remembered.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn md5(&self, path: &Path) -> Result<(String, u64), CacheError> {
        let stamp = Stamp::now(path);
        if let Some(stamp) = &stamp
            && let Some(m) = self.lookup(path, stamp)
        {
            return Ok((m, stamp.size));
        }
        let (md5, size) = crate::hash::md5_file(path)?;
        if let Some(stamp) = &stamp {
            self.record(path, stamp, &md5);
        }
        Ok((md5, size))
    }

    /// The record of directory `path` if its fingerprint is `fingerprint`.
    #[must_use]
    pub fn dir(&self, path: &Path, fingerprint: &[u8; 16]) -> Option<DirRec> {
        let dirs = self.dirs.lock().ok()?;
        dirs.get(path.to_str()?).filter(|d| d.fingerprint == *fingerprint).cloned()
    }

    /// Remembers a directory's hash under the fingerprint of its files' stamps (the caller
    /// checks that none of them was racy).
    pub fn record_dir(&self, path: &Path, rec: DirRec) {
        let Some(key) = path.to_str() else { return };
        if let Ok(mut dirs) = self.dirs.lock()
            && dirs.get(key) != Some(&rec)
        {
            dirs.insert(key.to_owned(), rec);
            self.mark_dirty();
        }
    }

    /// Whether every object of the listing `md5` (`….dir`) was seen in the cache under the
    /// layout stamp `stamp` (see the module's notes).
    #[must_use]
    pub fn listing_complete(&self, md5: &str, stamp: &[u8; 16]) -> bool {
        let Some(key) = md5.strip_suffix(".dir").and_then(unhex) else { return false };
        self.complete.lock().is_ok_and(|c| c.get(&key) == Some(stamp))
    }

    /// Remembers that every object of the listing `md5` was in the cache under `stamp`, taken
    /// before they were looked for (the caller checks that a later change would show in it).
    pub fn record_listing_complete(&self, md5: &str, stamp: [u8; 16]) {
        let Some(key) = md5.strip_suffix(".dir").and_then(unhex) else { return };
        if let Ok(mut c) = self.complete.lock()
            && c.insert(key, stamp) != Some(stamp)
        {
            self.mark_dirty();
        }
    }

    /// The names of directory `dir` remembered under `stamp` (its own, taken now), if any.
    #[must_use]
    pub fn listing(&self, dir: &Path, stamp: &DirStamp) -> Option<std::sync::Arc<[u8]>> {
        let listings = self.listings.lock().ok()?;
        let (at, names) = listings.get(dir.to_str()?)?;
        at.same(stamp).then(|| names.clone())
    }

    /// Remembers the names of directory `dir`, read after its stamp was taken (the caller
    /// checks that the stamp is not racy).
    pub fn record_listing(&self, dir: &Path, stamp: &DirStamp, names: std::sync::Arc<[u8]>) {
        let Some(key) = dir.to_str() else { return };
        if let Ok(mut listings) = self.listings.lock()
            && listings.get(key).is_none_or(|(at, old)| !at.same(stamp) || *old != names)
        {
            listings.insert(key.to_owned(), (*stamp, names));
            self.mark_dirty();
        }
    }

    /// Forgets the records (files, directories, directory names) of paths that no longer
    /// exist, and returns how many. The keys are absolute paths, so records of data that was
    /// deleted or moved (or of a copy of the project) otherwise stay for good; `gc` calls this.
    pub fn prune_missing(&self) -> usize {
        let gone = |k: &str| std::fs::symlink_metadata(k).is_err();
        let mut pruned = 0;
        if let Ok(mut files) = self.files().lock() {
            let before = files.len();
            files.retain(|k, _| !gone(k));
            pruned += before - files.len();
        }
        if let Ok(mut dirs) = self.dirs.lock() {
            let before = dirs.len();
            dirs.retain(|k, _| !gone(k));
            pruned += before - dirs.len();
        }
        if let Ok(mut listings) = self.listings.lock() {
            let before = listings.len();
            listings.retain(|k, _| !gone(k));
            pruned += before - listings.len();
        }
        if pruned > 0 {
            self.mark_dirty();
        }
        pruned
    }

    /// Writes the state if it changed (temp file + rename).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self) -> Result<(), CacheError> {
        if !self.dirty.lock().map(|d| *d).unwrap_or(false) {
            return Ok(());
        }
        let mut out = MAGIC.to_vec();
        // The head's length, filled in below.
        out.extend_from_slice(&0u64.to_le_bytes());
        if let Ok(dirs) = self.dirs.lock() {
            let good: Vec<_> =
                dirs.iter().filter_map(|(k, d)| Some((k, d, d.md5.strip_suffix(".dir").and_then(unhex)?))).collect();
            out.extend_from_slice(&(good.len() as u64).to_le_bytes());
            for (k, d, md5) in good {
                put_str(&mut out, k);
                out.extend_from_slice(&d.fingerprint);
                out.extend_from_slice(&md5);
                out.extend_from_slice(&d.size.to_le_bytes());
                out.extend_from_slice(&d.nfiles.to_le_bytes());
            }
        } else {
            out.extend_from_slice(&0u64.to_le_bytes());
        }
        match self.complete.lock() {
            Ok(c) => {
                out.extend_from_slice(&(c.len() as u64).to_le_bytes());
                for (listing, stamp) in c.iter() {
                    out.extend_from_slice(listing);
                    out.extend_from_slice(stamp);
                }
            }
            Err(_) => out.extend_from_slice(&0u64.to_le_bytes()),
        }
        match self.listings.lock() {
            Ok(l) => {
                out.extend_from_slice(&(l.len() as u64).to_le_bytes());
                for (dir, (at, names)) in l.iter() {
                    put_str(&mut out, dir);
                    out.extend_from_slice(&at.ino.to_le_bytes());
                    out.extend_from_slice(&at.mtime_ns.to_le_bytes());
                    out.extend_from_slice(&at.ctime_ns.to_le_bytes());
                    out.extend_from_slice(&(names.len() as u64).to_le_bytes());
                    out.extend_from_slice(names);
                }
            }
            Err(_) => out.extend_from_slice(&0u64.to_le_bytes()),
        }
        let head = (out.len() - MAGIC.len() - 8) as u64;
        out[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&head.to_le_bytes());
        // File records never looked at are written back as they were read (the section is the
        // same in every format since 2): a `status` that only adds a head record does not read
        // and decode them.
        let unread =
            if self.files.get().is_none() { self.raw_files.lock().ok().and_then(|mut r| r.take()) } else { None };
        if let Some(rest) = unread {
            // Unreadable ones (an empty read) become no records; damaged ones stay as unusable
            // as they were (a load decodes them to nothing).
            let bytes = rest.bytes();
            out.extend_from_slice(if bytes.is_empty() { &[0; 8] } else { &bytes });
        } else if let Ok(files) = self.files().lock() {
            out.extend_from_slice(&(files.len() as u64).to_le_bytes());
            for (k, e) in files.iter() {
                put_str(&mut out, k);
                out.extend_from_slice(&e.ino.to_le_bytes());
                out.extend_from_slice(&e.mtime_ns.to_le_bytes());
                out.extend_from_slice(&e.size.to_le_bytes());
                out.extend_from_slice(&e.md5);
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CacheError::Io { path: dir.to_owned(), source })?;
        }
        crate::write_atomic(&self.path, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(path: &Path) {
        // An mtime well in the past, so the stamp is not racy.
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn prune_forgets_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("state");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        old(&a);
        old(&b);
        let s = State::load(&st);
        for p in [&a, &b] {
            s.md5(p).unwrap();
        }
        let rec = DirRec { fingerprint: [1; 16], md5: format!("{}.dir", "2".repeat(32)), size: 1, nfiles: 1 };
        s.record_dir(&dir.path().join("gone-dir"), rec.clone());
        s.record_dir(dir.path(), rec);
        s.save().unwrap();
        std::fs::remove_file(&b).unwrap();
        let s = State::load(&st);
        assert_eq!(s.prune_missing(), 2, "b's record and the missing directory's");
        s.save().unwrap();
        let s = State::load(&st);
        assert!(s.get(&a).is_some());
        assert!(s.dir(dir.path(), &[1; 16]).is_some());
        assert!(s.dir(&dir.path().join("gone-dir"), &[1; 16]).is_none());
        assert_eq!(s.prune_missing(), 0);
    }

    #[test]
    /// A state larger than the first read: file records past it are read when first looked
    /// up, a head past it is read whole, and one that stops short is an empty state.
    fn a_state_larger_than_the_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("state");
        let a = dir.path().join("a");
        std::fs::write(&a, "a").unwrap();
        old(&a);
        let stamp = Stamp::now(&a).unwrap();
        let md5 = crate::hash::md5_bytes(b"a");
        let s = State::load(&st);
        // Records of long paths, enough to be several times the first read.
        let long = |i: usize| dir.path().join(format!("{i:0200}"));
        for i in 0..2_000 {
            s.record(&long(i), &stamp, &md5);
        }
        s.record(&a, &stamp, &md5);
        s.save().unwrap();
        assert!(std::fs::metadata(&st).unwrap().len() > 4 * FIRST_READ as u64);
        let s = State::load(&st);
        assert_eq!(s.get(&a).unwrap().0, md5);
        assert_eq!(s.lookup(&long(1_999), &stamp), Some(md5.clone()));
        // Many directories: the head alone is larger than the first read.
        for i in 0..1_000 {
            s.record_dir(
                &long(i),
                DirRec { fingerprint: [3; 16], md5: format!("{}.dir", "1".repeat(32)), size: 1, nfiles: 1 },
            );
        }
        s.save().unwrap();
        let s = State::load(&st);
        assert_eq!(s.dir(&long(999), &[3; 16]).unwrap().size, 1);
        // Saved with its file records never looked at: they are written back as they were.
        s.record_dir(&a, DirRec { fingerprint: [4; 16], md5: format!("{}.dir", "5".repeat(32)), size: 2, nfiles: 2 });
        s.save().unwrap();
        let s = State::load(&st);
        assert_eq!(s.dir(&a, &[4; 16]).unwrap().size, 2);
        assert_eq!(s.lookup(&long(1_999), &stamp), Some(md5.clone()));
        assert_eq!(s.get(&a).unwrap().0, md5);
        // Cut short in the file records: those are not trusted, the head is.
        let bytes = std::fs::read(&st).unwrap();
        std::fs::write(&st, &bytes[..bytes.len() - 10]).unwrap();
        let s = State::load(&st);
        assert!(s.get(&a).is_none());
        assert!(s.dir(&long(999), &[3; 16]).is_some());
        // Cut short in the head: nothing is.
        std::fs::write(&st, &bytes[..2 * FIRST_READ]).unwrap();
        let s = State::load(&st);
        assert!(s.dir(&long(0), &[3; 16]).is_none());
        assert!(s.get(&a).is_none());
    }

    #[test]
    fn round_trip_and_racy_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("state");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        old(&a);
        let s = State::load(&st);
        assert_eq!(s.md5(&a).unwrap().0, crate::hash::md5_bytes(b"a"));
        // `b` was written just now: hashed, but not remembered.
        assert_eq!(s.md5(&b).unwrap().0, crate::hash::md5_bytes(b"b"));
        assert!(s.get(&b).is_none());
        assert!(s.get(&a).is_some());
        s.record_dir(
            dir.path(),
            DirRec { fingerprint: [7; 16], md5: format!("{}.dir", "0".repeat(32)), size: 3, nfiles: 2 },
        );
        s.save().unwrap();
        let s = State::load(&st);
        assert_eq!(s.get(&a).unwrap().0, crate::hash::md5_bytes(b"a"));
        assert!(s.get(&b).is_none());
        assert_eq!(s.dir(dir.path(), &[7; 16]).unwrap().nfiles, 2);
        let listing = format!("{}.dir", "ab".repeat(16));
        s.record_listing_complete(&listing, [9; 16]);
        s.save().unwrap();
        let s = State::load(&st);
        assert!(s.listing_complete(&listing, &[9; 16]));
        assert!(!s.listing_complete(&listing, &[1; 16]));
        assert!(!s.listing_complete(&format!("{}.dir", "cd".repeat(16)), &[9; 16]));
        assert!(s.dir(dir.path(), &[8; 16]).is_none());
        // A state of the format before complete listings keeps its file records.
        let v3 = std::fs::read(&st).unwrap();
        let mut v2 = MAGIC_2.to_vec();
        v2.extend_from_slice(&0u64.to_le_bytes()); // no directory records
        // The current format: magic, the head's length, the head (one directory record here),
        // then the file records, which are what the old format kept after its magic.
        let head = usize::try_from(u64::from_le_bytes(v3[MAGIC.len()..MAGIC.len() + 8].try_into().unwrap())).unwrap();
        let rest = &v3[MAGIC.len() + 8..];
        assert_eq!(u64::from_le_bytes(rest[..8].try_into().unwrap()), 1);
        v2.extend_from_slice(&rest[head..]);
        std::fs::write(&st, &v2).unwrap();
        let old = State::load(&st);
        assert_eq!(old.get(&a).unwrap().0, crate::hash::md5_bytes(b"a"));
        assert!(!old.listing_complete(&listing, &[9; 16]));
        // A change of content that keeps the size shows in the stamp (mtime).
        std::fs::write(&a, "z").unwrap();
        assert!(s.get(&a).is_none());
        assert_eq!(s.md5(&a).unwrap().0, crate::hash::md5_bytes(b"z"));
        // Garbage is an empty state.
        std::fs::write(&st, "[1,2").unwrap();
        assert!(State::load(&st).get(&dir.path().join("a")).is_none());
    }
}
