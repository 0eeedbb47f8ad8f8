//! DVC 3's hashes (`shared/spec/pipelines.md` §4): a file is the md5 of its raw bytes; a
//! directory is the md5 of a JSON listing of its files (sorted by relative path, serialised as
//! Python's `json.dumps(..., sort_keys=True)` writes it) with `.dir` appended. DVC 2's
//! `md5-dos2unix` is kept for reading old entries.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::md5::Md5;
use rayon::prelude::*;

use crate::CacheError;

/// Read buffer: large enough that hashing runs at disk speed, small enough per thread.
const BUF: usize = 1 << 20;

/// What DVC records about an output: its hash, size and, for a directory, file count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashInfo {
    /// Lowercase hex; a directory's ends in `.dir`.
    pub md5: String,
    pub size: u64,
    pub nfiles: Option<u64>,
}

impl HashInfo {
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.md5.ends_with(".dir")
    }
}

/// One file of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DirEntry {
    pub md5: String,
    pub relpath: String,
    #[serde(skip)]
    pub size: u64,
    /// Hashed now (not answered from the state): worth remembering.
    #[serde(skip)]
    pub fresh: bool,
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// md5 of bytes already in memory.
#[must_use]
pub fn md5_bytes(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// The md5 and size of a file's raw bytes (symlinks followed, as DVC).
///
/// # Errors
/// The file cannot be read.
pub fn md5_file(path: &Path) -> Result<(String, u64), CacheError> {
    let io = |source| CacheError::Io { path: path.to_owned(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let (h, size) =
        if len >= READ_AHEAD_MIN { md5_read_ahead(f).map_err(io)? } else { md5_read(&mut f, len).map_err(io)? };
    Ok((hex(&h.finalize()), size))
}

/// Files from this size on are read on a second thread while this one hashes.
const READ_AHEAD_MIN: u64 = 16 << 20;

/// `len`: the file's size when opened; a small file gets a small buffer (one byte more, so the
/// second read sees the end) instead of a zeroed MiB each.
fn md5_read(f: &mut std::fs::File, len: u64) -> std::io::Result<(Md5, u64)> {
    let mut h = Md5::new();
    let mut buf = vec![0u8; usize::try_from(len).map_or(BUF, |n| (n + 1).clamp(4096, BUF))];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((h, size));
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
}

/// [`md5_read`] with the reads on their own thread, a few buffers ahead. md5 is one stream that
/// cannot be split, so hashing a large file takes as long as its one thread does; copying the
/// bytes out of the page cache (about a tenth of the md5's time) is taken off that thread.
fn md5_read_ahead(mut f: std::fs::File) -> std::io::Result<(Md5, u64)> {
    use std::sync::mpsc::sync_channel;
    const BUFFERS: usize = 3;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        // Cannot fail: the channel has room for every buffer and its receiver is alive.
        let _ = empty_tx.send(vec![0u8; BUF]);
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> std::io::Result<()> {
            // Ends at the end of the file, on an error, or when the hasher is gone.
            while let Ok(mut buf) = empty_rx.recv() {
                let n = f.read(&mut buf)?;
                if n == 0 || full_tx.send((buf, n)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut h = Md5::new();
        let mut size = 0u64;
        for (buf, n) in full_rx {
            h.update(&buf[..n]);
            size += n as u64;
            let _ = empty_tx.send(buf);
        }
        match reader.join() {
            Ok(read) => read.map(|()| (h, size)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// DVC 2's `md5-dos2unix`: a file that looks like text (no NUL in its first 8 KiB) is hashed
/// with every CRLF turned into LF. Only for checking entries written by DVC 2.
///
/// # Errors
/// The file cannot be read.
pub fn md5_dos2unix(path: &Path) -> Result<String, CacheError> {
    let data = std::fs::read(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
    let head = &data[..data.len().min(8192)];
    if head.contains(&0) {
        return Ok(md5_bytes(&data));
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    Ok(md5_bytes(&out))
}

/// A string as Python's `json.dumps` writes it with `ensure_ascii=True`: everything outside
/// printable ASCII as `\uXXXX` (lowercase hex, surrogate pairs beyond the BMP). Written by hand
/// because serde_json keeps non-ASCII as UTF-8, and the listing's md5 depends on every byte.
pub fn python_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// The listing bytes DVC hashes for a directory; `entries` must be sorted by `relpath`.
#[must_use]
pub fn dir_listing_json(entries: &[DirEntry]) -> String {
    let mut out = String::with_capacity(entries.len() * 80 + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"md5\": ");
        python_json_string(&e.md5, &mut out);
        out.push_str(", \"relpath\": ");
        python_json_string(&e.relpath, &mut out);
        out.push('}');
    }
    out.push(']');
    out
}

/// A hashed directory: its [`HashInfo`], the listing and its bytes.
#[derive(Debug, Clone)]
pub struct DirHash {
    pub info: HashInfo,
    pub entries: Vec<DirEntry>,
    pub listing: String,
}

/// Every file under `root` (recursively, symlinks to files followed), as `/`-separated paths
/// relative to it, sorted; `.git` and `.dvc` directories are skipped, as DVC skips them.
///
/// # Errors
/// A directory cannot be read, or a name is not UTF-8 (DVC's listings are text).
pub fn walk_files(root: &Path) -> Result<Vec<(String, PathBuf)>, CacheError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|source| CacheError::Io { path: dir.clone(), source })?;
        for e in rd {
            let e = e.map_err(|source| CacheError::Io { path: dir.clone(), source })?;
            let name = e.file_name();
            let name = name.to_str().ok_or_else(|| CacheError::NotUtf8(e.path()))?.to_owned();
            let path = e.path();
            // The entry's type comes with the directory listing; only a symlink needs a stat
            // to learn what it points at (DVC follows them).
            let ft = e.file_type().map_err(|source| CacheError::Io { path: path.clone(), source })?;
            let is_dir = if ft.is_symlink() {
                std::fs::metadata(&path).map_err(|source| CacheError::Io { path: path.clone(), source })?.is_dir()
            } else {
                ft.is_dir()
            };
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if is_dir {
                if name != ".git" && name != ".dvc" {
                    stack.push((path, rel));
                }
            } else {
                out.push((rel, path));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The files of a directory walk, with their stamps: (relative `/`-separated path, stamp), in
/// walk order (see [`walk_stamped`]); the file's path is the walked root joined with the first.
pub type StampedFiles = Vec<(String, crate::state::Stamp)>;

/// [`walk_files`] with a `stat` of every file (symlinks followed), stamped against the clock
/// `now_ns` taken before the walk. Each directory is opened once and its files are stat-ed
/// relative to it (no path lookup from the root per file); subdirectories are walked in
/// parallel.
///
/// The order is the walk's, the same for the same tree whatever order the filesystem lists
/// names in: a directory's files by name, then its subdirectories by name, each in turn. That
/// is enough for [`stamps_fingerprint`], and it saves a sort of every path on the way to an
/// unchanged directory's remembered hash; a DVC listing wants [`sort_dvc`] first.
///
/// With `listings`, a directory whose own stamp is unchanged since its names were last read is
/// not read again: its names come from the state (and fresh ones are remembered there).
///
/// # Errors
/// A directory or file cannot be read, or a name is not UTF-8.
pub fn walk_stamped(
    root: &Path,
    now_ns: i64,
    listings: Option<&crate::state::State>,
) -> Result<StampedFiles, CacheError> {
    walk_stamped_in(root, "", now_ns, listings)
}

/// Puts a walk's files in DVC's listing order (by relative path).
pub fn sort_dvc(files: &mut StampedFiles) {
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
}

/// A directory's names as [`walk_stamped`] remembers them: each entry is a kind byte
/// ([`LISTED_DIR`] for a directory as `getdents` typed it, [`LISTED_OTHER`] for anything that
/// needs a `stat` to tell), the name, and a NUL.
pub const LISTED_DIR: u8 = b'd';
/// See [`LISTED_DIR`].
pub const LISTED_OTHER: u8 = b'o';

/// The entries of a remembered listing: (is a directory by its type, name).
fn listed(names: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    names.split(|&b| b == 0).filter(|e| !e.is_empty()).map(|e| (e[0] == LISTED_DIR, &e[1..]))
}

/// One directory of [`walk_stamped`]. Its names come from the state when the directory's own
/// stamp (inode, mtime, ctime) is the one they were read under: a name is added, removed or
/// renamed only by changing the directory's mtime and ctime, so an unchanged, non-racy stamp
/// means the same names, and the `getdents` is skipped (on ext4 the larger part of a small directory's
/// cost, as every read of it hashes and sorts its names). Files are still stat-ed one by one.
fn walk_stamped_in(
    dir: &Path,
    prefix: &str,
    now_ns: i64,
    listings: Option<&crate::state::State>,
) -> Result<StampedFiles, CacheError> {
    use rustix::fd::AsFd;
    use rustix::fs::{CWD, Mode, OFlags};
    let io = |e: rustix::io::Errno| CacheError::Io { path: dir.to_owned(), source: e.into() };
    let fd = rustix::fs::openat(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(io)?;
    // Taken before the names are read: a change while they are shows next time.
    let stamp = crate::state::DirStamp::of_stat(&rustix::fs::fstat(&fd).map_err(io)?, now_ns);
    // Names are single path components; a state that says otherwise is not trusted.
    let plain = |names: &[u8]| listed(names).all(|(_, n)| !n.contains(&b'/') && n != b"." && n != b"..");
    if let Some(names) = listings.and_then(|l| l.listing(dir, &stamp)).filter(|n| plain(n)) {
        let walked = stamp_entries(dir, prefix, fd.as_fd(), listed(&names), now_ns)
            .and_then(|walked| finish_walk(walked, now_ns, listings));
        match walked {
            Ok(files) => return Ok(files),
            // A remembered name that is gone, or no longer a directory (the clock or the
            // filesystem misled the stamp): read the names afresh.
            Err(CacheError::Io { source, .. })
                if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {}
            Err(e) => return Err(e),
        }
    }
    let (names, d) = read_names(dir, fd)?;
    let walked = stamp_entries(dir, prefix, d.fd().map_err(io)?, listed(&names), now_ns)?;
    if let Some(l) = listings
        && !stamp.racy
    {
        l.record_listing(dir, &stamp, names.into());
    }
    finish_walk(walked, now_ns, listings)
}

/// A directory's names in [`LISTED_DIR`]'s form, from `getdents`, and the directory (its
/// descriptor, for the `stat`s that follow).
fn read_names(dir: &Path, fd: rustix::fd::OwnedFd) -> Result<(Vec<u8>, rustix::fs::Dir), CacheError> {
    use rustix::fs::{Dir, FileType};
    let io = |e: rustix::io::Errno| CacheError::Io { path: dir.to_owned(), source: e.into() };
    let mut d = Dir::new(fd).map_err(io)?;
    let mut names = Vec::new();
    while let Some(e) = d.read() {
        let e = e.map_err(io)?;
        let bytes = e.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        names.push(if e.file_type() == FileType::Directory { LISTED_DIR } else { LISTED_OTHER });
        names.extend_from_slice(bytes);
        names.push(0);
    }
    Ok((names, d))
}

/// A directory's files (stamped, relative to `fd`) and its subdirectories, from its names.
struct Walked {
    files: StampedFiles,
    subdirs: Vec<(PathBuf, String)>,
}

fn stamp_entries<'a>(
    dir: &Path,
    prefix: &str,
    fd: rustix::fd::BorrowedFd<'_>,
    names: impl Iterator<Item = (bool, &'a [u8])>,
    now_ns: i64,
) -> Result<Walked, CacheError> {
    use rustix::fs::{AtFlags, FileType};
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for (typed_dir, bytes) in names {
        let name = std::str::from_utf8(bytes).map_err(|_| {
            CacheError::NotUtf8(dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes)))
        })?;
        let rel = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
        let stamp = if typed_dir {
            None
        } else {
            // Files, and symlinks (followed, as DVC) or unknown types: one stat tells.
            let st = rustix::fs::statat(fd, name, AtFlags::empty())
                .map_err(|e| CacheError::Io { path: dir.join(name), source: e.into() })?;
            (FileType::from_raw_mode(st.st_mode) != FileType::Directory)
                .then(|| crate::state::Stamp::of_stat(&st, now_ns))
        };
        match stamp {
            Some(stamp) => files.push((rel, stamp)),
            None if name != ".git" && name != ".dvc" => subdirs.push((dir.join(name), rel)),
            None => {}
        }
    }
    Ok(Walked { files, subdirs })
}

/// A directory's files by name, then each subdirectory's walk (in parallel) by name.
fn finish_walk(
    mut walked: Walked,
    now_ns: i64,
    listings: Option<&crate::state::State>,
) -> Result<StampedFiles, CacheError> {
    let Walked { files, subdirs } = &mut walked;
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    subdirs.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    let nested = subdirs
        .par_iter()
        .map(|(p, rel)| walk_stamped_in(p, rel, now_ns, listings))
        .collect::<Result<Vec<_>, CacheError>>()?;
    files.reserve_exact(nested.iter().map(Vec::len).sum());
    for n in nested {
        files.extend(n);
    }
    Ok(walked.files)
}

/// Hashes a directory as DVC does, its files in parallel. `known` answers a file's md5 without
/// reading it when its stat is unchanged (see [`crate::state::State`]).
///
/// # Errors
/// A file or directory cannot be read.
pub fn hash_dir(root: &Path, known: &(dyn Fn(&Path) -> Option<(String, u64)> + Sync)) -> Result<DirHash, CacheError> {
    let files = walk_files(root)?;
    let entries = files
        .par_iter()
        .map(|(rel, path)| {
            let (md5, size, fresh) = match known(path) {
                Some((m, s)) => (m, s, false),
                None => {
                    let (m, s) = md5_file(path)?;
                    (m, s, true)
                }
            };
            Ok(DirEntry { md5, relpath: rel.clone(), size, fresh })
        })
        .collect::<Result<Vec<_>, CacheError>>()?;
    let (info, listing) = dir_info(&entries);
    Ok(DirHash { info, entries, listing })
}

/// A directory's [`HashInfo`] and listing from its entries (sorted by `relpath`).
#[must_use]
pub fn dir_info(entries: &[DirEntry]) -> (HashInfo, String) {
    let listing = dir_listing_json(entries);
    let size = entries.iter().map(|e| e.size).sum();
    let info =
        HashInfo { md5: format!("{}.dir", md5_bytes(listing.as_bytes())), size, nfiles: Some(entries.len() as u64) };
    (info, listing)
}

/// A digest of every file's relative path and stamp (inode, mtime, size), in walk order: equal
/// only when no file was added, removed, renamed or touched. kiln's own key (never DVC's), so
/// BLAKE3 over one buffer: an md5 fed five small pieces per file was a tenth of `status`'s
/// user time on 10,000 files.
#[must_use]
pub fn stamps_fingerprint(files: &[(String, crate::state::Stamp)]) -> [u8; 16] {
    // Fed in pieces of about 64 KiB (large enough for BLAKE3's many-chunk SIMD path): one
    // buffer of every path was 600 KB of fresh pages on 10,000 files.
    const PIECE: usize = 64 << 10;
    let mut h = blake3::Hasher::new();
    let mut buf = Vec::with_capacity(PIECE + 1024);
    for (rel, s) in files {
        buf.extend_from_slice(&(rel.len() as u64).to_le_bytes());
        buf.extend_from_slice(rel.as_bytes());
        buf.extend_from_slice(&s.ino.to_le_bytes());
        buf.extend_from_slice(&s.mtime_ns.to_le_bytes());
        buf.extend_from_slice(&s.size.to_le_bytes());
        if buf.len() >= PIECE {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shared/spec/pipelines.md` §4.4, checked against DVC.
    #[test]
    fn worked_example() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("hello.txt"), "hello\n").unwrap();
        std::fs::write(p.join("crlf.csv"), "x,y\r\n1,2\r\n").unwrap();
        std::fs::create_dir_all(p.join("data/sub")).unwrap();
        std::fs::write(p.join("data/a.txt"), "a\n").unwrap();
        std::fs::write(p.join("data/sub/b.txt"), "b\r\n").unwrap();
        assert_eq!(md5_file(&p.join("hello.txt")).unwrap(), ("b1946ac92492d2347c6235b4d2611184".into(), 6));
        assert_eq!(md5_file(&p.join("crlf.csv")).unwrap(), ("ef4330228809c42919ada65a11393fd1".into(), 10));
        let d = hash_dir(&p.join("data"), &|_| None).unwrap();
        assert_eq!(
            d.listing,
            r#"[{"md5": "60b725f10c9c85c70d97880dfe8191b3", "relpath": "a.txt"}, {"md5": "c5053d4da03789bfbc4bee760fade936", "relpath": "sub/b.txt"}]"#
        );
        assert_eq!(d.listing.len(), 134);
        assert_eq!(d.info, HashInfo { md5: "2a0f3f5e358b7f8ff3d4fa660d0617ef.dir".into(), size: 5, nfiles: Some(2) });
        // DVC 2 hashed text with CRLF as LF.
        assert_eq!(md5_dos2unix(&p.join("crlf.csv")).unwrap(), md5_bytes(b"x,y\n1,2\n"));
    }

    #[test]
    fn listing_escapes_like_python() {
        let e = |r: &str| DirEntry { md5: "x".into(), relpath: r.into(), size: 0, fresh: false };
        assert_eq!(
            dir_listing_json(&[e("é\"q\\\u{7f}\t😀")]),
            r#"[{"md5": "x", "relpath": "\u00e9\"q\\\u007f\t\ud83d\ude00"}]"#
        );
        assert_eq!(dir_listing_json(&[]), "[]");
    }
}
