//! A DVC repository: the `.dvc/` directory, its config and cache, and the data commands on
//! `.dvc` files: `init`, `add`, `status`, `checkout`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dvcfile::{DvcFile, Out};
use crate::hash::{self, HashInfo};
use crate::odb::{Cache, LinkType};
use crate::state::{Stamp, State};
use crate::{CacheError, write_atomic};

/// What `dvc init` writes into `.dvc/.gitignore`.
const DVC_GITIGNORE: &str = "/config.local\n/tmp\n/cache\n";
const DVCIGNORE: &str = "# Add patterns of files dvc should ignore, which could improve\n\
# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n";

/// An opened repository.
#[derive(Debug)]
pub struct Repo {
    pub root: PathBuf,
    pub cache: Cache,
    pub link: LinkType,
    pub state: State,
    scm: bool,
}

/// How an output differs from its `.dvc` file (DVC's status words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Deleted,
    Modified,
    NotInCache,
}

impl Change {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Modified => "modified",
            Self::NotInCache => "not in cache",
        }
    }
}

/// The changes of one `.dvc` file: (output path, change).
pub type Changes = Vec<(String, Change)>;

/// What `add` did for one target.
#[derive(Debug, Clone)]
pub struct Added {
    pub dvc_file: PathBuf,
    pub hash: HashInfo,
}

/// Whether `dir` is inside a git work tree (a project may be a subdirectory of one, as with
/// `dvc init --subdir`).
fn in_git(dir: &Path) -> bool {
    std::path::absolute(dir).is_ok_and(|d| d.ancestors().any(|d| d.join(".git").exists()))
}

/// Minimal INI reading for `.dvc/config`: `[section]` then `key = value`. DVC's sections look
/// like `[core]`, `[cache]`, `['remote "name"']`.
#[must_use]
pub fn read_config(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().trim_matches('\'').to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone()).or_default().insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

fn rel_slash(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

impl Repo {
    /// Creates `.dvc/` in `dir` (as `dvc init`; `no_scm` when `dir` is not a git work tree).
    ///
    /// # Errors
    /// Already initialised, or the files cannot be written.
    pub fn init(dir: &Path) -> Result<Self, CacheError> {
        let dvc = dir.join(".dvc");
        if dvc.exists() {
            return Err(CacheError::AlreadyInitialized(dir.to_owned()));
        }
        let scm = in_git(dir);
        std::fs::create_dir_all(&dvc).map_err(|source| CacheError::Io { path: dvc.clone(), source })?;
        write_atomic(&dvc.join("config"), if scm { b"" } else { b"[core]\n    no_scm = True\n" })?;
        write_atomic(&dvc.join(".gitignore"), DVC_GITIGNORE.as_bytes())?;
        write_atomic(&dir.join(".dvcignore"), DVCIGNORE.as_bytes())?;
        Self::open(dir)
    }

    /// The repository containing `start` (the nearest ancestor with a `.dvc` directory).
    ///
    /// # Errors
    /// No repository above `start`.
    pub fn find(start: &Path) -> Result<Self, CacheError> {
        // `components()` drops `.` segments, so paths built from the root are spelled one way
        // (the state is keyed by their text).
        let start: PathBuf = std::path::absolute(start)
            .map_err(|source| CacheError::Io { path: start.to_owned(), source })?
            .components()
            .collect();
        let root =
            start.ancestors().find(|d| d.join(".dvc").is_dir()).ok_or_else(|| CacheError::NotARepo(start.clone()))?;
        Self::open(root)
    }

    fn open(root: &Path) -> Result<Self, CacheError> {
        let config_path = root.join(".dvc").join("config");
        let text = std::fs::read_to_string(&config_path).unwrap_or_default();
        let mut config = read_config(&text);
        // Local overrides (credentials, a machine's cache location) win, as in DVC.
        for (section, kv) in read_config(&std::fs::read_to_string(root.join(".dvc/config.local")).unwrap_or_default()) {
            config.entry(section).or_default().extend(kv);
        }
        let cache_cfg = config.get("cache");
        let cache_dir = cache_cfg
            .and_then(|c| c.get("dir"))
            .map_or_else(|| root.join(".dvc").join("cache"), |d| root.join(".dvc").join(d));
        let link = cache_cfg.and_then(|c| c.get("type")).map_or(LinkType::Copy, |t| LinkType::from_config(t));
        let no_scm = config.get("core").and_then(|c| c.get("no_scm")).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Self {
            root: root.to_owned(),
            cache: Cache { root: cache_dir },
            link,
            state: State::load(&root.join(".dvc").join("tmp").join("kiln-state.bin")),
            scm: !no_scm && in_git(root),
        })
    }

    /// `target` as an absolute path inside the repository, checked.
    fn inside(&self, target: &Path) -> Result<PathBuf, CacheError> {
        let abs: PathBuf = std::path::absolute(target)
            .map_err(|source| CacheError::Io { path: target.to_owned(), source })?
            .components()
            .collect();
        let rel = abs.strip_prefix(&self.root).map_err(|_| CacheError::Outside(abs.clone()))?;
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| matches!(c, std::path::Component::ParentDir))
            || rel.components().next().is_some_and(|c| c.as_os_str() == ".dvc" || c.as_os_str() == ".git")
        {
            return Err(CacheError::Outside(abs));
        }
        Ok(abs)
    }

    fn git_tracked(&self, path: &Path) -> bool {
        if !self.scm {
            return false;
        }
        std::process::Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["ls-files", "--error-unmatch", "--"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Appends `/name` to the `.gitignore` beside `path` unless it is there.
    pub fn gitignore(&self, path: &Path) -> Result<(), CacheError> {
        if !self.scm {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let entry = format!("/{name}");
        let gi = dir.join(".gitignore");
        let mut text = std::fs::read_to_string(&gi).unwrap_or_default();
        if text.lines().any(|l| l.trim() == entry) {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&entry);
        text.push('\n');
        write_atomic(&gi, text.as_bytes())
    }

    /// The md5 of a file, from the state when its stat is unchanged.
    fn file_md5(&self, path: &Path) -> Result<(String, u64), CacheError> {
        self.state.md5(path)
    }

    /// Hashes `path` (file or directory) as it is now.
    ///
    /// # Errors
    /// Unreadable data.
    pub fn hash(&self, path: &Path) -> Result<HashInfo, CacheError> {
        let meta = std::fs::metadata(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
        if !meta.is_dir() {
            let (md5, size) = self.file_md5(path)?;
            return Ok(HashInfo { md5, size, nfiles: None });
        }
        // One stat per file; an unchanged directory is answered by its fingerprint alone.
        let mut files = hash::walk_stamped(path, crate::state::now_ns(), Some(&self.state))?;
        let fingerprint = hash::stamps_fingerprint(&files);
        if let Some(rec) = self.state.dir(path, &fingerprint) {
            return Ok(HashInfo { md5: rec.md5, size: rec.size, nfiles: Some(rec.nfiles) });
        }
        hash::sort_dvc(&mut files);
        let entries = files
            .par_iter()
            .map(|(rel, stamp)| {
                let p = path.join(rel);
                let md5 = match self.state.lookup(&p, stamp) {
                    Some(m) => m,
                    None => {
                        let (m, _) = hash::md5_file(&p)?;
                        self.state.record(&p, stamp, &m);
                        m
                    }
                };
                Ok(hash::DirEntry { md5, relpath: rel.clone(), size: stamp.size, fresh: false })
            })
            .collect::<Result<Vec<_>, CacheError>>()?;
        let info = hash::dir_info(&entries).0;
        self.remember_dir(path, &files, fingerprint, &info);
        Ok(info)
    }

    /// Remembers a directory's hash unless one of its files' stamps is racy.
    fn remember_dir(&self, path: &Path, files: &hash::StampedFiles, fingerprint: [u8; 16], info: &HashInfo) {
        if files.iter().any(|(_, s)| s.racy) {
            return;
        }
        self.state.record_dir(
            path,
            crate::state::DirRec {
                fingerprint,
                md5: info.md5.clone(),
                size: info.size,
                nfiles: info.nfiles.unwrap_or(0),
            },
        );
    }

    /// Stores `path` in the cache and returns its hash; with a link type other than copy, the
    /// workspace files become links to the (read-only) objects.
    pub fn commit(&self, path: &Path) -> Result<HashInfo, CacheError> {
        let meta = std::fs::metadata(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
        if !meta.is_dir() {
            let stamp = Stamp::of(&meta, crate::state::now_ns());
            let md5 = self.store_one(path, &stamp)?;
            return Ok(HashInfo { md5, size: stamp.size, nfiles: None });
        }
        let mut files = hash::walk_stamped(path, crate::state::now_ns(), Some(&self.state))?;
        // The fingerprint is of the walk's order, as `hash` computes it.
        let fingerprint = hash::stamps_fingerprint(&files);
        hash::sort_dvc(&mut files);
        let entries = files
            .par_iter()
            .map(|(rel, stamp)| {
                let md5 = self.store_one(&path.join(rel), stamp)?;
                Ok(hash::DirEntry { md5, relpath: rel.clone(), size: stamp.size, fresh: false })
            })
            .collect::<Result<Vec<_>, CacheError>>()?;
        let (info, listing) = hash::dir_info(&entries);
        self.cache.store_bytes(&info.md5, listing.as_bytes())?;
        // With links the files are now the cache's objects, with other stamps.
        if self.link == LinkType::Copy {
            self.remember_dir(path, &files, fingerprint, &info);
        }
        // Every object is in now; checking it once more (stamped first) lets the next
        // `status` take that from the state instead of walking the cache.
        self.listing_in_cache(&info.md5)?;
        Ok(info)
    }

    /// One file into the cache (skipping the copy when the state knows it and the cache has
    /// it), linked back per the link type; returns its md5. `stamp` is the file's, taken
    /// before it is read.
    fn store_one(&self, p: &Path, stamp: &Stamp) -> Result<String, CacheError> {
        let md5 = match self.state.lookup(p, stamp) {
            Some(md5) if self.cache.find(&md5).is_some() => md5,
            Some(md5) => {
                self.cache.store_known(p, &md5)?;
                md5
            }
            None => {
                let (md5, _) = self.cache.store_file(p)?;
                md5
            }
        };
        if self.link == LinkType::Copy {
            self.state.record(p, stamp, &md5);
        } else {
            self.cache.checkout_file(&md5, p, self.link)?;
            match Stamp::now(p) {
                Some(now) => self.state.record(p, &now, &md5),
                None => self.state.forget(p),
            }
        }
        Ok(md5)
    }

    /// `dvc add`: caches each target and writes `<target>.dvc` beside it.
    ///
    /// # Errors
    /// A target outside the repository, missing, tracked by git, or unreadable.
    pub fn add(&self, targets: &[PathBuf]) -> Result<Vec<Added>, CacheError> {
        let mut out = Vec::new();
        for t in targets {
            let abs = self.inside(t)?;
            if !abs.exists() {
                return Err(CacheError::Io {
                    path: abs,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
                });
            }
            if self.git_tracked(&abs) {
                return Err(CacheError::TrackedByGit(abs));
            }
            let hash = self.commit(&abs)?;
            let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dvc_file = abs.with_file_name(format!("{name}.dvc"));
            // Re-adding keeps what the user wrote about the output (desc, meta, …).
            let (extra, top) = match DvcFile::read(&dvc_file) {
                Ok(f) => (f.outs.into_iter().next().map(|o| o.extra).unwrap_or_default(), f.extra),
                Err(_) => Default::default(),
            };
            let file = DvcFile {
                outs: vec![Out { path: name, hash: Some(hash.clone()), legacy: false, cache: true, extra }],
                extra: top,
            };
            file.write(&dvc_file)?;
            self.gitignore(&abs)?;
            out.push(Added { dvc_file, hash });
        }
        self.state.save()?;
        Ok(out)
    }

    /// Every `.dvc` file in the repository (not under `.git`/`.dvc`), sorted.
    ///
    /// # Errors
    /// A directory cannot be read.
    pub fn dvc_files(&self) -> Result<Vec<PathBuf>, CacheError> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let rd = std::fs::read_dir(&dir).map_err(|source| CacheError::Io { path: dir.clone(), source })?;
            let entries: Vec<_> = rd.flatten().collect();
            let names: std::collections::HashSet<std::ffi::OsString> = entries.iter().map(|e| e.file_name()).collect();
            for e in entries {
                let p = e.path();
                let name = e.file_name();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    // A directory tracked by `<name>.dvc` beside it is data, not more of the
                    // project: `.dvc` files inside it are not looked for (nor by DVC).
                    let mut tracked = name.clone();
                    tracked.push(".dvc");
                    if name != ".git" && name != ".dvc" && !names.contains(&tracked) {
                        stack.push(p);
                    }
                } else if name.to_string_lossy().ends_with(".dvc") && ft.is_file() {
                    found.push(p);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// How one output compares with its entry, `None` when in sync.
    fn out_change(&self, dvc_path: &Path, o: &Out) -> Result<Option<Change>, CacheError> {
        let Some(want) = &o.hash else { return Ok(Some(Change::Modified)) };
        self.change_of(&DvcFile::out_path(dvc_path, o), want, o.legacy, o.cache)
    }

    /// How the data at `path` compares with the recorded `want` (`legacy`: a DVC 2 entry,
    /// hashed with `md5-dos2unix`; `cached`: the output is stored in the cache), `None` when
    /// in sync.
    ///
    /// # Errors
    /// Unreadable data or a corrupt directory listing.
    pub fn change_of(
        &self,
        path: &Path,
        want: &HashInfo,
        legacy: bool,
        cached: bool,
    ) -> Result<Option<Change>, CacheError> {
        if !path.exists() {
            return Ok(Some(Change::Deleted));
        }
        // A directory's cache check (its listing, then every object) does not depend on the
        // workspace walk: both run at once, and the check's answer counts only if unmodified.
        let mut present = None;
        let same = if legacy && !want.is_dir() {
            hash::md5_dos2unix(path)? == want.md5
        } else if cached && want.is_dir() {
            let (now, cache) = rayon::join(|| self.hash(path), || self.in_cache(want));
            present = Some(cache);
            now?.md5 == want.md5
        } else {
            self.hash(path)?.md5 == want.md5
        };
        if !same {
            return Ok(Some(Change::Modified));
        }
        if cached && !present.unwrap_or_else(|| self.in_cache(want))? {
            return Ok(Some(Change::NotInCache));
        }
        Ok(None)
    }

    /// The object, and for a directory every file of it, is in the cache.
    ///
    /// # Errors
    /// A corrupt directory listing.
    pub fn in_cache(&self, h: &HashInfo) -> Result<bool, CacheError> {
        if h.is_dir() {
            return self.listing_in_cache(&h.md5);
        }
        Ok(self.cache.find(&h.md5).is_some())
    }

    /// Whether the listing `md5` and every object of it are in the cache: remembered under the
    /// cache's layout stamp, else checked (and then remembered when a later change is sure to
    /// show in the stamp; see the state's notes on complete listings). A remembered answer skips the
    /// listing's read and a `getdents` walk of every prefix directory: the larger half of
    /// `status`'s CPU on a 10,000-file directory.
    fn listing_in_cache(&self, md5: &str) -> Result<bool, CacheError> {
        let Some(object) = self.cache.find(md5) else { return Ok(false) };
        // Stamped before anything is looked for: a change during the check shows later.
        let (stamp, racy) = self.cache.layout_stamp(&object, crate::state::now_ns());
        if self.state.listing_complete(md5, &stamp) {
            return Ok(true);
        }
        let (present, all_listed) = self.cache.listed_presence(md5)?;
        if present && all_listed && (!racy || self.cache.fine_grained_mtimes()) {
            self.state.record_listing_complete(md5, stamp);
        }
        Ok(present)
    }

    /// `dvc status` for data sources: each `.dvc` file (relative, `/`-separated) whose outputs
    /// differ, with how. Empty when everything is in sync.
    ///
    /// # Errors
    /// An unreadable `.dvc` file or data.
    pub fn status(&self) -> Result<BTreeMap<String, Changes>, CacheError> {
        let mut out = BTreeMap::new();
        for f in self.dvc_files()? {
            let parsed = DvcFile::read(&f)?;
            let mut changes = Vec::new();
            for o in &parsed.outs {
                if let Some(c) = self.out_change(&f, o)? {
                    changes.push((o.path.clone(), c));
                }
            }
            if !changes.is_empty() {
                out.insert(rel_slash(f.strip_prefix(&self.root).unwrap_or(&f)), changes);
            }
        }
        self.state.save()?;
        Ok(out)
    }

    /// `dvc checkout`: makes the workspace match the `.dvc` files (all, or those of
    /// `targets`). Data that differs and is not in the cache would be lost, so it is refused
    /// unless `force`. Returns the outputs restored.
    ///
    /// # Errors
    /// A missing or corrupt cache object (never used), data that would be lost, I/O.
    pub fn checkout(&self, targets: &[PathBuf], force: bool) -> Result<Vec<String>, CacheError> {
        let files = if targets.is_empty() {
            self.dvc_files()?
        } else {
            targets
                .iter()
                .map(|t| {
                    let abs = self.inside(t)?;
                    Ok(if abs.extension().is_some_and(|e| e == "dvc") {
                        abs
                    } else {
                        let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        abs.with_file_name(format!("{name}.dvc"))
                    })
                })
                .collect::<Result<Vec<_>, CacheError>>()?
        };
        let mut restored = Vec::new();
        for f in files {
            let parsed = DvcFile::read(&f)?;
            for o in &parsed.outs {
                let Some(want) = &o.hash else { continue };
                if !o.cache {
                    continue;
                }
                let path = DvcFile::out_path(&f, o);
                if self.checkout_output(&path, want, o.legacy, force)? {
                    restored.push(rel_slash(path.strip_prefix(&self.root).unwrap_or(&path)));
                }
            }
        }
        self.state.save()?;
        Ok(restored)
    }

    /// Makes the cached output at `path` match `want` (one output of a `.dvc` file or of
    /// `dvc.lock`); returns whether it had to be restored. Modified data whose content the
    /// cache lacks would be lost, so it is refused unless `force`. Does not save the state.
    ///
    /// # Errors
    /// A missing or corrupt cache object (never used), data that would be lost, I/O.
    pub fn checkout_output(&self, path: &Path, want: &HashInfo, legacy: bool, force: bool) -> Result<bool, CacheError> {
        match self.change_of(path, want, legacy, true)? {
            None | Some(Change::NotInCache) => return Ok(false),
            Some(Change::Modified) if !force => {
                // Would the current content be lost? Only a file whose bytes the cache
                // lacks (a directory that only lost files loses nothing more).
                if let Some(lost) = self.uncached_file(path)? {
                    return Err(CacheError::WouldLose(lost));
                }
            }
            _ => {}
        }
        self.restore(want, path)?;
        Ok(true)
    }

    /// The first file at `path` (a file, or any file under a directory) whose content is not
    /// in the cache.
    fn uncached_file(&self, path: &Path) -> Result<Option<PathBuf>, CacheError> {
        let files: Vec<PathBuf> = if path.is_dir() {
            hash::walk_files(path)?.into_iter().map(|(_, p)| p).collect()
        } else {
            vec![path.to_owned()]
        };
        for f in files {
            let (md5, _) = self.file_md5(&f)?;
            if self.cache.find(&md5).is_none() {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }

    /// Every object the workspace's `.dvc` files and `dvc.lock` name (for a directory: its
    /// listing and each file in it). A listing missing from the cache keeps only its own name.
    ///
    /// # Errors
    /// An unreadable `.dvc` file or `dvc.lock`.
    pub fn used_objects(&self) -> Result<std::collections::HashSet<String>, CacheError> {
        let mut hashes: Vec<String> = Vec::new();
        for f in self.dvc_files()? {
            hashes.extend(DvcFile::read(&f)?.outs.into_iter().filter_map(|o| o.hash.map(|h| h.md5)));
        }
        let lock = self.root.join("dvc.lock");
        if lock.is_file() {
            let text =
                std::fs::read_to_string(&lock).map_err(|source| CacheError::Io { path: lock.clone(), source })?;
            let doc: serde_json::Value = serde_saphyr::from_str(&text)
                .map_err(|e| CacheError::DvcFile { path: lock.clone(), message: e.to_string() })?;
            if let Some(stages) = doc.get("stages").and_then(|s| s.as_object()) {
                for stage in stages.values() {
                    for out in stage.get("outs").and_then(|o| o.as_array()).into_iter().flatten() {
                        if let Some(md5) = out.get("md5").and_then(|m| m.as_str()) {
                            hashes.push(md5.to_owned());
                        }
                    }
                }
            }
        }
        let mut used = std::collections::HashSet::new();
        for h in hashes {
            if h.ends_with(".dir") && self.cache.find(&h).is_some() {
                used.extend(self.cache.listing(&h)?.into_iter().map(|e| e.md5));
            }
            used.insert(h);
        }
        Ok(used)
    }

    /// `dvc gc --workspace`, first half: the cache objects (DVC 3 layout) no `.dvc` file or
    /// `dvc.lock` of the workspace uses, and left-over temp files.
    ///
    /// # Errors
    /// The cache cannot be read.
    pub fn unused_objects(&self) -> Result<Vec<PathBuf>, CacheError> {
        let used = self.used_objects()?;
        let base = self.cache.root.join("files").join("md5");
        let mut unused = Vec::new();
        if base.is_dir() {
            for (rel, path) in hash::walk_files(&base)? {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let md5 = rel.replacen('/', "", 1);
                if name.starts_with('.') || rel.starts_with(".incoming/") || !used.contains(&md5) {
                    unused.push(path);
                }
            }
        }
        Ok(unused)
    }

    /// `dvc gc --workspace`, second half: removes `unused` (from [`Repo::unused_objects`]) and
    /// forgets the state's records of paths that are gone (its keys are absolute paths, so
    /// records of deleted data would otherwise stay for good).
    ///
    /// # Errors
    /// An object cannot be removed or the state written.
    pub fn remove_objects(&self, unused: &[PathBuf]) -> Result<(), CacheError> {
        for p in unused {
            std::fs::remove_file(p).map_err(|source| CacheError::Io { path: p.clone(), source })?;
        }
        self.state.prune_missing();
        self.state.save()
    }

    /// Makes `path` the data `want` names, from the cache (verified), whatever is there now.
    ///
    /// # Errors
    /// Missing or corrupt objects, I/O.
    pub fn restore(&self, want: &HashInfo, path: &Path) -> Result<(), CacheError> {
        if !want.is_dir() {
            if path.is_dir() {
                std::fs::remove_dir_all(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
            }
            self.cache.checkout_file(&want.md5, path, self.link)?;
            self.state.put(path, &want.md5);
            return Ok(());
        }
        let listing = self.cache.listing(&want.md5)?;
        // A listing names files inside the directory; one that climbs out is refused.
        if let Some(bad) = listing.iter().find(|e| {
            e.relpath.is_empty()
                || e.relpath.starts_with('/')
                || e.relpath.contains('\\')
                || e.relpath.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        }) {
            return Err(CacheError::Corrupt {
                md5: format!("{} (listing names `{}`)", want.md5, bad.relpath),
                path: path.to_owned(),
            });
        }
        if path.is_file() {
            std::fs::remove_file(path).map_err(|source| CacheError::Io { path: path.to_owned(), source })?;
        }
        // Files the listing does not name go, so the directory hashes as recorded.
        let keep: std::collections::HashSet<&str> = listing.iter().map(|e| e.relpath.as_str()).collect();
        if path.is_dir() {
            for (rel, p) in hash::walk_files(path)? {
                if !keep.contains(rel.as_str()) {
                    std::fs::remove_file(&p).map_err(|source| CacheError::Io { path: p.clone(), source })?;
                }
            }
        }
        listing.par_iter().try_for_each(|e| {
            let p = path.join(&e.relpath);
            if self.state.get(&p).is_some_and(|(m, _)| m == e.md5) {
                return Ok(());
            }
            self.cache.checkout_file(&e.md5, &p, self.link)?;
            self.state.put(&p, &e.md5);
            Ok::<(), CacheError>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    /// A file rewritten right after `add` (same size, possibly the same mtime tick) is never
    /// taken for unchanged, and an old unchanged directory is answered from its record.
    #[test]
    fn racy_rewrite_is_seen_and_old_dirs_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("a.txt"), "aaaa").unwrap();
        std::fs::write(data.join("sub/b.txt"), "bbbb").unwrap();
        repo.add(std::slice::from_ref(&data)).unwrap();
        std::fs::write(data.join("a.txt"), "zzzz").unwrap();
        let repo = Repo::find(dir.path()).unwrap();
        let st = repo.status().unwrap();
        assert_eq!(st.get("data.dvc").map(Vec::as_slice), Some(&[("data".to_owned(), Change::Modified)][..]));

        // Old files: remembered, as a directory too.
        std::fs::write(data.join("a.txt"), "aaaa").unwrap();
        age(&data.join("a.txt"), 10);
        age(&data.join("sub/b.txt"), 10);
        let repo = Repo::find(dir.path()).unwrap();
        assert!(repo.status().unwrap().is_empty());
        let repo = Repo::find(dir.path()).unwrap();
        let files = hash::walk_stamped(&data, crate::state::now_ns(), None).unwrap();
        assert!(repo.state.dir(&data, &hash::stamps_fingerprint(&files)).is_some());
        // Touching a file (same bytes) only costs a re-hash; new content is seen.
        std::fs::write(data.join("sub/b.txt"), "cccc").unwrap();
        age(&data.join("sub/b.txt"), 5);
        assert_eq!(repo.status().unwrap().len(), 1);
    }

    /// Sets a directory's mtime (`File::set_modified` needs a file opened for writing).
    fn set_dir_mtime(path: &Path, t: std::time::SystemTime) {
        std::fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    /// A directory's names are remembered with its stamp; a file added, removed or renamed in
    /// it is seen, even when the directory's mtime is put back to the remembered one.
    #[test]
    fn remembered_directory_names_see_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path()).unwrap();
        let data = dir.path().join("data");
        let sub = data.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(data.join("a.txt"), "aaaa").unwrap();
        std::fs::write(sub.join("b.txt"), "bbbb").unwrap();
        age(&data.join("a.txt"), 10);
        age(&sub.join("b.txt"), 10);
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        set_dir_mtime(&sub, old);
        set_dir_mtime(&data, old);
        // Setting the mtime moved the ctime to now: past the racy window, it is trusted.
        std::thread::sleep(std::time::Duration::from_millis(2 * crate::state::RACY_NS as u64 / 1_000_000));
        repo.add(std::slice::from_ref(&data)).unwrap();
        repo.state.save().unwrap();
        let status = || Repo::find(dir.path()).unwrap().status().unwrap();
        assert!(status().is_empty());
        let sub_stamp = || crate::state::DirStamp::of_stat(&rustix::fs::stat(&sub).unwrap(), crate::state::now_ns());
        let repo = Repo::find(dir.path()).unwrap();
        assert!(repo.state.listing(&sub, &sub_stamp()).is_some(), "add remembers an old directory's names");
        let modified = Some(&[("data".to_owned(), Change::Modified)][..]);

        // Added: the directory's mtime moved, its names are read again.
        std::fs::write(sub.join("c.txt"), "cccc").unwrap();
        age(&sub.join("c.txt"), 10);
        assert_eq!(status().get("data.dvc").map(Vec::as_slice), modified);
        std::fs::remove_file(sub.join("c.txt")).unwrap();
        assert!(status().is_empty());

        // Renamed, with the mtime put back: the ctime still moved.
        set_dir_mtime(&sub, old);
        assert!(status().is_empty());
        std::fs::rename(sub.join("b.txt"), sub.join("b2.txt")).unwrap();
        set_dir_mtime(&sub, old);
        assert_eq!(status().get("data.dvc").map(Vec::as_slice), modified);
        std::fs::rename(sub.join("b2.txt"), sub.join("b.txt")).unwrap();
        set_dir_mtime(&sub, old);
        assert!(status().is_empty());

        // Names that do not match the directory (a state written by hand, say): a name that is
        // not there makes the walk read the directory again.
        let repo = Repo::find(dir.path()).unwrap();
        repo.state.record_listing(&sub, &sub_stamp(), b"oghost.txt\0ob.txt\0"[..].into());
        assert!(repo.status().unwrap().is_empty());
        // A name that is a path (climbing out of the directory) is not trusted either.
        repo.state.record_listing(&sub, &sub_stamp(), b"o../a.txt\0ob.txt\0"[..].into());
        assert!(repo.status().unwrap().is_empty());

        // Removed (a file the remembered names still list, mtime put back): seen as well.
        std::fs::remove_file(data.join("a.txt")).unwrap();
        set_dir_mtime(&data, old);
        assert_eq!(status().get("data.dvc").map(Vec::as_slice), modified);
    }

    /// A complete listing is remembered after `add`, and an object removed from the cache
    /// afterwards, however soon, is still seen as missing (its directory's stamp moved).
    #[test]
    fn remembered_complete_listing_sees_a_removed_object() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // Enough files for the prefix-listing check (a small listing is looked up one by one).
        for i in 0..600 {
            std::fs::write(data.join(format!("f{i:03}.txt")), format!("{i}\n")).unwrap();
            age(&data.join(format!("f{i:03}.txt")), 10);
        }
        let added = repo.add(std::slice::from_ref(&data)).unwrap();
        repo.state.save().unwrap();
        let listing = added[0].hash.md5.clone();
        let repo = Repo::find(dir.path()).unwrap();
        let object = repo.cache.find(&listing).unwrap();
        let (stamp, _) = repo.cache.layout_stamp(&object, crate::state::now_ns());
        if repo.cache.fine_grained_mtimes() {
            assert!(repo.state.listing_complete(&listing, &stamp), "add remembers the complete listing");
        }
        assert!(repo.status().unwrap().is_empty());
        // Right away: one object of the listing leaves the cache.
        let gone = crate::hash::md5_bytes(b"7\n");
        let path = repo.cache.find(&gone).unwrap();
        std::fs::remove_file(&path).unwrap();
        for _ in 0..2 {
            let repo = Repo::find(dir.path()).unwrap();
            let st = repo.status().unwrap();
            assert_eq!(st.get("data.dvc").map(Vec::as_slice), Some(&[("data".to_owned(), Change::NotInCache)][..]));
        }
    }
}
