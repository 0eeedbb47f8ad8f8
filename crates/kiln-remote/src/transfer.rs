//! `push`, `fetch`, `pull`. Each asks the other side which objects it already has and moves
//! only the rest, on `jobs` threads, so a rerun after an interruption completes the transfer.
//! Every object is checked against its md5 in transit: a corrupt cache object is not pushed;
//! a download lands in a temp file in the cache and is renamed into place only when it hashes
//! to its name. A directory's listing goes up after all its files (so a remote holding a `.dir`
//! holds its files, as DVC arranges it) and comes down first (it names the files to fetch).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kiln_cache::{CacheError, Repo};

use crate::outputs::Output;
use crate::{Remote, RemoteError};

/// What a transfer reports as it goes (a progress bar in the binary).
pub trait Progress: Sync {
    /// `n` more objects will be transferred.
    fn add(&self, n: usize);
    /// One object is done (transferred or failed).
    fn done(&self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn add(&self, _: usize) {}
    fn done(&self) {}
}

/// An object neither the cache nor the remote holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub md5: String,
    /// The output (and for a directory's file, its path inside it) that needs it.
    pub name: String,
}

/// What a transfer did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Objects uploaded or downloaded.
    pub transferred: usize,
    /// Objects that are nowhere to be had (the rest went on).
    pub missing: Vec<Missing>,
    /// Objects that failed (corrupt, I/O, the remote refused), each error naming the object.
    pub failed: Vec<RemoteError>,
}

impl Summary {
    /// Nothing missing and nothing failed.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.failed.is_empty()
    }
}

/// Objects by md5 with the first name that needed them, in first-seen order.
#[derive(Debug, Default)]
struct Objects {
    order: Vec<String>,
    names: HashMap<String, String>,
}

impl Objects {
    fn add(&mut self, md5: &str, name: String) {
        if !self.names.contains_key(md5) {
            self.order.push(md5.to_owned());
            self.names.insert(md5.to_owned(), name);
        }
    }

    fn name(&self, md5: &str) -> &str {
        self.names.get(md5).map_or("", String::as_str)
    }
}

/// Runs `f` on every item on a pool of `jobs` threads; returns the errors.
fn parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    progress: &dyn Progress,
    f: impl Fn(&T) -> Result<(), RemoteError> + Sync,
) -> Result<Vec<RemoteError>, RemoteError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    progress.add(items.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.clamp(1, items.len()))
        .thread_name(|i| format!("kiln-transfer-{i}"))
        .build()
        .map_err(|e| RemoteError::Pool(Box::new(e)))?;
    let errors = Mutex::new(Vec::new());
    pool.scope(|s| {
        for item in items {
            let (f, errors) = (&f, &errors);
            s.spawn(move |_| {
                if let Err(e) = f(item) {
                    errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(e);
                }
                progress.done();
            });
        }
    });
    Ok(errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Uploads to `remote` every object of `outputs` (those not `push: false`) it lacks.
///
/// # Errors
/// The remote cannot be asked what it holds; per-object failures are in the [`Summary`].
pub fn push(
    repo: &Repo,
    remote: &Remote,
    outputs: &[Output],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Summary, RemoteError> {
    let mut summary = Summary::default();
    let mut files = Objects::default();
    // Each directory's listing with the files it needs, uploaded only once they all are.
    let mut dirs: Vec<(String, String, Vec<String>)> = Vec::new();
    for o in outputs.iter().filter(|o| o.push) {
        if !o.hash.is_dir() {
            files.add(&o.hash.md5, o.name.clone());
            continue;
        }
        if repo.cache.find(&o.hash.md5).is_none() {
            summary.missing.push(Missing { md5: o.hash.md5.clone(), name: o.name.clone() });
            continue;
        }
        let listing = match repo.cache.listing(&o.hash.md5) {
            Ok(l) => l,
            Err(e) => {
                summary.failed.push(e.into());
                continue;
            }
        };
        for e in &listing {
            files.add(&e.md5, format!("{}/{}", o.name, e.relpath));
        }
        dirs.push((o.hash.md5.clone(), o.name.clone(), listing.into_iter().map(|e| e.md5).collect()));
    }
    let mut bad: HashSet<String> = HashSet::new();
    let mut present = Vec::new();
    for m in &files.order {
        if repo.cache.find(m).is_some() {
            present.push(m.clone());
        } else {
            summary.missing.push(Missing { md5: m.clone(), name: files.name(m).to_owned() });
            bad.insert(m.clone());
        }
    }
    let mut ask = present.clone();
    ask.extend(dirs.iter().map(|(m, _, _)| m.clone()));
    let have = remote.contains(&ask, jobs)?;
    let send: Vec<String> = present.into_iter().filter(|m| !have.contains(m)).collect();
    let failed_md5 = Mutex::new(Vec::new());
    let upload = |m: &String| {
        let src = repo.cache.find(m).ok_or_else(|| CacheError::Missing(m.clone()))?;
        remote.put(m, &src).inspect_err(|_| {
            failed_md5.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(m.clone());
        })
    };
    let errors = parallel(&send, jobs, progress, upload)?;
    summary.transferred += send.len() - errors.len();
    summary.failed.extend(errors);
    bad.extend(failed_md5.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
    // A listing goes up only when all of its files are on the remote.
    let mut listings: Vec<String> = Vec::new();
    for (m, _, needs) in &dirs {
        if !have.contains(m) && !listings.contains(m) && !needs.iter().any(|f| bad.contains(f)) {
            listings.push(m.clone());
        }
    }
    let errors = parallel(&listings, jobs, progress, |m| {
        let src = repo.cache.find(m).ok_or_else(|| CacheError::Missing(m.clone()))?;
        remote.put(m, &src)
    })?;
    summary.transferred += listings.len() - errors.len();
    summary.failed.extend(errors);
    Ok(summary)
}

/// Downloads objects into the cache, each checked against its md5 before it enters.
fn download(
    repo: &Repo,
    remote: &Remote,
    wanted: &Objects,
    jobs: usize,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), RemoteError> {
    let need: Vec<String> = wanted.order.iter().filter(|m| repo.cache.find(m).is_none()).cloned().collect();
    if need.is_empty() {
        return Ok(());
    }
    let have = remote.contains(&need, jobs)?;
    let mut get = Vec::new();
    for m in need {
        if have.contains(&m) {
            get.push(m);
        } else {
            summary.missing.push(Missing { name: wanted.name(&m).to_owned(), md5: m });
        }
    }
    let errors = parallel(&get, jobs, progress, |m| {
        let name = wanted.name(m);
        let mut incoming = repo.cache.incoming(m)?;
        remote.get(m, name, &mut incoming)?;
        incoming.finish().map(drop).map_err(|e| match e {
            e @ CacheError::Mismatch { .. } => RemoteError::Corrupt {
                md5: m.clone(),
                name: name.to_owned(),
                remote: remote.name.clone(),
                source: Box::new(e),
            },
            other => other.into(),
        })
    })?;
    summary.transferred += get.len() - errors.len();
    summary.failed.extend(errors);
    Ok(())
}

/// Downloads into the cache every object of `outputs` it lacks.
///
/// # Errors
/// The remote cannot be asked what it holds; per-object failures are in the [`Summary`].
pub fn fetch(
    repo: &Repo,
    remote: &Remote,
    outputs: &[Output],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Summary, RemoteError> {
    let mut summary = Summary::default();
    let mut listings = Objects::default();
    for o in outputs.iter().filter(|o| o.hash.is_dir()) {
        listings.add(&o.hash.md5, o.name.clone());
    }
    download(repo, remote, &listings, jobs, progress, &mut summary)?;
    let mut files = Objects::default();
    for o in outputs {
        if !o.hash.is_dir() {
            files.add(&o.hash.md5, o.name.clone());
            continue;
        }
        if repo.cache.find(&o.hash.md5).is_none() {
            continue;
        }
        match repo.cache.listing(&o.hash.md5) {
            Ok(listing) => {
                for e in listing {
                    files.add(&e.md5, format!("{}/{}", o.name, e.relpath));
                }
            }
            Err(e) => summary.failed.push(e.into()),
        }
    }
    download(repo, remote, &files, jobs, progress, &mut summary)?;
    Ok(summary)
}

/// What `pull` did: the fetch, the outputs checked out, and those that could not be.
#[derive(Debug, Default)]
pub struct Pulled {
    pub fetch: Summary,
    /// Outputs restored in the workspace.
    pub restored: Vec<Restored>,
    /// Outputs that could not be checked out (data that would be lost, a corrupt object).
    pub failed: Vec<RemoteError>,
}

/// An output `pull` checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Repository-relative, `/`-separated.
    pub name: String,
    /// It did not exist before (DVC's `A`; else `M`).
    pub added: bool,
}

/// `fetch`, then checkout of every output whose objects are all in the cache now. An output
/// with a missing or refused object is left as it is (the fetch says why).
///
/// # Errors
/// The remote cannot be asked what it holds; the state cannot be saved.
pub fn pull(
    repo: &Repo,
    remote: &Remote,
    outputs: &[Output],
    jobs: usize,
    force: bool,
    progress: &dyn Progress,
) -> Result<Pulled, RemoteError> {
    let fetched = fetch(repo, remote, outputs, jobs, progress)?;
    let mut pulled = Pulled { fetch: fetched, ..Pulled::default() };
    for o in outputs {
        match repo.in_cache(&o.hash) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                pulled.failed.push(e.into());
                continue;
            }
        }
        let added = !o.path.exists();
        match repo.checkout_output(&o.path, &o.hash, o.legacy, force) {
            Ok(true) => pulled.restored.push(Restored { name: o.name.clone(), added }),
            Ok(false) => {}
            Err(e) => pulled.failed.push(e.into()),
        }
    }
    repo.state.save()?;
    Ok(pulled)
}
