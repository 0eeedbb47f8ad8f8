//! Change detection and `repro` (`shared/spec/pipelines.md` §1.2, §7): the stage graph from
//! path containment, what changed since `dvc.lock`, and running the changed stages upstream
//! first, writing the lock after each.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_cache::Repo;
use kiln_cache::hash::HashInfo;

use crate::PipelineError;
use crate::dvcyaml::{Pipeline, Stage};
use crate::lock::{Entry, Lock, LockStage};
use crate::value::Value;

/// Why a stage is not up to date, in DVC's status shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// `changed deps`: path -> word, or params file -> key -> word.
    Deps(Vec<(String, DepChange)>),
    Outs(Vec<(String, &'static str)>),
    Command,
    AlwaysChanged,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DepChange {
    Path(&'static str),
    Params(Vec<(String, &'static str)>),
}

/// A path relative to the repository, `/`-separated and normalised.
pub(crate) fn norm(wdir: &str, p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in wdir.split('/').chain(p.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// The pipeline with its graph.
pub struct Graph<'p> {
    pub pipeline: &'p Pipeline,
    /// For each stage, the stages it depends on (indices).
    pub upstream: Vec<Vec<usize>>,
}

impl<'p> Graph<'p> {
    /// Builds the graph: B depends on A when a dep of B equals, is inside or contains an out
    /// of A.
    ///
    /// # Errors
    /// Two stages with the same or overlapping outputs, or a cycle.
    pub fn new(pipeline: &'p Pipeline) -> Result<Self, PipelineError> {
        let outs: Vec<Vec<String>> =
            pipeline.stages.iter().map(|s| s.outs.iter().map(|o| norm(&s.wdir, &o.path)).collect()).collect();
        for (i, a) in outs.iter().enumerate() {
            for (j, b) in outs.iter().enumerate().skip(i) {
                for (x, pa) in a.iter().enumerate() {
                    for (y, pb) in b.iter().enumerate() {
                        if (i != j || x < y) && overlaps(pa, pb) {
                            return Err(PipelineError::Overlap {
                                a: format!("{pa} of '{}'", pipeline.stages[i].name),
                                b: format!("{pb} of '{}'", pipeline.stages[j].name),
                            });
                        }
                    }
                }
            }
        }
        let upstream: Vec<Vec<usize>> = pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let deps: Vec<String> = s.deps.iter().map(|d| norm(&s.wdir, d)).collect();
                (0..outs.len())
                    .filter(|&j| j != i && outs[j].iter().any(|o| deps.iter().any(|d| overlaps(d, o))))
                    .collect()
            })
            .collect();
        let g = Self { pipeline, upstream };
        g.order(&(0..pipeline.stages.len()).collect::<Vec<_>>())?;
        Ok(g)
    }

    /// `targets` and everything upstream of them, upstream first.
    ///
    /// # Errors
    /// A cycle.
    pub fn order(&self, targets: &[usize]) -> Result<Vec<usize>, PipelineError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            None,
            Active,
            Done,
        }
        let mut marks = vec![Mark::None; self.upstream.len()];
        let mut out = Vec::new();
        fn visit(g: &Graph<'_>, i: usize, marks: &mut [Mark], out: &mut Vec<usize>) -> Result<(), PipelineError> {
            match marks[i] {
                Mark::Done => return Ok(()),
                Mark::Active => return Err(PipelineError::Cycle(g.pipeline.stages[i].name.clone())),
                Mark::None => {}
            }
            marks[i] = Mark::Active;
            for &u in &g.upstream[i] {
                visit(g, u, marks, out)?;
            }
            marks[i] = Mark::Done;
            out.push(i);
            Ok(())
        }
        for &t in targets {
            visit(self, t, &mut marks, &mut out)?;
        }
        Ok(out)
    }
}

/// Loads a params file: YAML or JSON, or TOML (tables in file order; dates and times are
/// refused, as DVC does).
///
/// # Errors
/// Missing, unreadable or invalid file; Python (`.py`) params files, which kiln does not read.
pub fn load_params_file(path: &Path) -> Result<Value, PipelineError> {
    let invalid = |message: String| PipelineError::Invalid { file: path.to_owned(), key: String::new(), message };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io { path: path.to_owned(), source })?;
    if ext == "py" {
        return crate::pyparams::parse(&text).map_err(|m| invalid(format!("Python file structure is corrupted: {m}")));
    }
    if ext == "toml" {
        let v: Value = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if let Some(key) = toml_datetime(&v, "") {
            return Err(invalid(format!("Unsupported value of type 'date' at `{key}`")));
        }
        return Ok(v);
    }
    if !matches!(ext, "yaml" | "yml" | "json") {
        return Err(invalid(format!("unsupported params file type `.{ext}` (YAML, JSON, TOML or Python)")));
    }
    crate::value::from_yaml(&text).map_err(|e| invalid(e.to_string()))
}

/// The dotted key of a TOML date/time in `v` (serde sees one as a private one-entry table).
fn toml_datetime(v: &Value, prefix: &str) -> Option<String> {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match v {
        Value::Map(m) if m.len() == 1 && m[0].0 == "$__toml_private_datetime" => Some(prefix.to_owned()),
        Value::Map(m) => m.iter().find_map(|(k, x)| toml_datetime(x, &join(k))),
        Value::List(l) => l.iter().enumerate().find_map(|(i, x)| toml_datetime(x, &format!("{prefix}[{i}]"))),
        _ => None,
    }
}

/// Params of one file now: (key, value), `None` for a key that is missing.
type FileParams = (String, Vec<(String, Option<Value>)>);

/// The stage's params now, per file, in the lock's order.
fn current_params(root: &Path, s: &Stage) -> Result<Vec<FileParams>, PipelineError> {
    let mut files: Vec<FileParams> = Vec::new();
    for p in &s.params {
        let path = root.join(norm(&s.wdir, &p.file));
        let doc = if path.is_file() { Some(load_params_file(&path)?) } else { None };
        let mut kv: Vec<(String, Option<Value>)> = match (&p.keys, &doc) {
            (Some(keys), _) => {
                keys.iter().map(|k| (k.clone(), doc.as_ref().and_then(|d| d.dotted(k)).cloned())).collect()
            }
            (None, Some(Value::Map(m))) => m.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            (None, _) => Vec::new(),
        };
        kv.sort_by(|a, b| a.0.cmp(&b.0));
        match files.iter_mut().find(|(f, _)| *f == p.file) {
            Some((_, existing)) => {
                existing.extend(kv);
                existing.sort_by(|a, b| a.0.cmp(&b.0));
                existing.dedup_by(|a, b| a.0 == b.0);
            }
            None => files.push((p.file.clone(), kv)),
        }
    }
    files.sort_by(|a, b| (a.0 != "params.yaml", &a.0).cmp(&(b.0 != "params.yaml", &b.0)));
    Ok(files)
}

/// Hashes a path that exists, `None` otherwise.
fn hash_of(repo: &Repo, path: &Path) -> Result<Option<HashInfo>, PipelineError> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(repo.hash(path)?))
}

/// Why `s` must run, given its lock entry; empty when up to date.
///
/// # Errors
/// Unreadable data or params.
pub fn stage_status(
    repo: &Repo,
    root: &Path,
    s: &Stage,
    locked: Option<&LockStage>,
) -> Result<Vec<Reason>, PipelineError> {
    let mut reasons = Vec::new();
    let empty = LockStage { cmd: s.cmd.clone(), deps: vec![], params: vec![], outs: vec![] };
    let lock = locked.unwrap_or(&empty);
    // Deps.
    let mut deps = Vec::new();
    for d in &s.deps {
        let path = root.join(norm(&s.wdir, d));
        let now = hash_of(repo, &path)?;
        let recorded = lock.deps.iter().find(|e| e.path == *d).and_then(|e| e.hash.as_ref());
        let word = match (recorded, now) {
            (_, None) => Some("deleted"),
            (None, Some(_)) => Some("new"),
            (Some(r), Some(n)) if r.md5 != n.md5 => Some("modified"),
            _ => None,
        };
        if let Some(w) = word {
            deps.push((d.clone(), DepChange::Path(w)));
        }
    }
    for (file, kv) in current_params(root, s)? {
        let recorded = lock.params.iter().find(|(f, _)| *f == file).map(|(_, kv)| kv);
        let mut changed = Vec::new();
        for (k, v) in &kv {
            let old = recorded.and_then(|r| r.iter().find(|(rk, _)| rk == k)).map(|(_, v)| v);
            match (old, v) {
                (_, None) => changed.push((k.clone(), "deleted")),
                (None, Some(_)) => changed.push((k.clone(), "new")),
                (Some(o), Some(n)) if o != n => changed.push((k.clone(), "modified")),
                _ => {}
            }
        }
        if !changed.is_empty() {
            deps.push((file, DepChange::Params(changed)));
        }
    }
    if !deps.is_empty() {
        reasons.push(Reason::Deps(deps));
    }
    // Outs.
    let mut outs = Vec::new();
    for o in &s.outs {
        let path = root.join(norm(&s.wdir, &o.path));
        let recorded = lock.outs.iter().find(|e| e.path == o.path).and_then(|e| e.hash.as_ref());
        let now = hash_of(repo, &path)?;
        let word = match (recorded, &now) {
            (_, None) => Some("deleted"),
            (None, Some(_)) => Some("new"),
            (Some(r), Some(n)) if r.md5 != n.md5 => Some("modified"),
            (Some(r), Some(_)) if o.cache && repo.cache.find(&r.md5).is_none() => Some("not in cache"),
            _ => None,
        };
        if let Some(w) = word {
            outs.push((o.path.clone(), w));
        }
    }
    if !outs.is_empty() {
        reasons.push(Reason::Outs(outs));
    }
    if locked.is_none_or(|l| l.cmd != s.cmd) {
        reasons.push(Reason::Command);
    }
    if s.always_changed {
        reasons.push(Reason::AlwaysChanged);
    }
    if s.frozen {
        // A frozen stage never runs; only its missing outputs matter.
        reasons.retain(|r| matches!(r, Reason::Outs(_)));
    }
    Ok(reasons)
}

/// `dvc status` for the pipeline: changed stages in `dvc.yaml` order.
///
/// # Errors
/// An invalid pipeline or lock, unreadable data.
pub fn status(repo: &Repo, pipeline: &Pipeline) -> Result<Vec<(String, Vec<Reason>)>, PipelineError> {
    Graph::new(pipeline)?;
    let lock = Lock::read(&pipeline.dir.join("dvc.lock"))?;
    let mut out = Vec::new();
    for s in &pipeline.stages {
        let r = stage_status(repo, &pipeline.dir, s, lock.stage(&s.name))?;
        if !r.is_empty() {
            out.push((s.name.clone(), r));
        }
    }
    repo.state.save()?;
    Ok(out)
}

/// How `repro` runs.
#[derive(Debug, Clone, Default)]
pub struct ReproOptions {
    /// Stage names; empty means every stage.
    pub targets: Vec<String>,
    pub force: bool,
    /// Only the targets, not their upstream.
    pub single_item: bool,
    /// Stages run at once where the graph allows (at least 1).
    pub jobs: usize,
    /// The targets and every stage downstream of them (not their upstream).
    pub downstream: bool,
    /// The whole pipeline (connected part of the graph) of each target.
    pub pipeline: bool,
    /// Print the commands that would run; run nothing, write nothing.
    pub dry: bool,
    /// A stage whose only changes are missing outputs (or deleted deps) does not run.
    pub allow_missing: bool,
    /// After a stage fails, go on with the stages that do not depend on it (DVC's
    /// `--keep-going`); the failures are reported together at the end.
    pub keep_going: bool,
}

/// The stages `repro` considers, in run order (upstream first).
///
/// # Errors
/// An unknown target, a cycle.
pub fn plan(graph: &Graph<'_>, opts: &ReproOptions) -> Result<Vec<usize>, PipelineError> {
    let stages = &graph.pipeline.stages;
    let mut targets: Vec<usize> = Vec::new();
    if opts.targets.is_empty() {
        targets.extend(0..stages.len());
    }
    for t in &opts.targets {
        // A `foreach`/`matrix` group name stands for all its stages.
        let found: Vec<usize> = match stages.iter().position(|s| s.name == *t) {
            Some(i) => vec![i],
            None => (0..stages.len())
                .filter(|&i| stages[i].name.strip_prefix(t.as_str()).is_some_and(|r| r.starts_with('@')))
                .collect(),
        };
        if found.is_empty() {
            return Err(PipelineError::UnknownStage(t.clone()));
        }
        targets.extend(found);
    }
    let n = stages.len();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ups) in graph.upstream.iter().enumerate() {
        for &u in ups {
            downstream[u].push(i);
        }
    }
    // Everything reachable from the targets through `next` edges.
    let reach = |next: &dyn Fn(usize) -> Vec<usize>| {
        let mut seen = vec![false; n];
        let mut stack = targets.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(next(i));
            }
        }
        seen
    };
    if opts.single_item {
        let mut seen = vec![false; n];
        return Ok(targets.into_iter().filter(|&i| !std::mem::replace(&mut seen[i], true)).collect());
    }
    let keep = if opts.pipeline {
        reach(&|i| graph.upstream[i].iter().chain(&downstream[i]).copied().collect())
    } else if opts.downstream {
        reach(&|i| downstream[i].clone())
    } else {
        return graph.order(&targets);
    };
    let all: Vec<usize> = (0..n).collect();
    Ok(graph.order(&all)?.into_iter().filter(|&i| keep[i]).collect())
}

/// Whether `reasons` still call for a run under `--allow-missing`: missing outputs and deleted
/// deps alone do not.
fn changed_allowing_missing(reasons: &[Reason]) -> bool {
    reasons.iter().any(|r| match r {
        Reason::Outs(outs) => outs.iter().any(|(_, w)| !matches!(*w, "deleted" | "not in cache")),
        Reason::Deps(deps) => deps.iter().any(|(_, d)| !matches!(d, DepChange::Path("deleted"))),
        _ => true,
    })
}

/// `repro --dry`: what would run, in DVC's words, touching nothing.
fn dry_run(
    repo: &Repo,
    pipeline: &Pipeline,
    plan: &[usize],
    opts: &ReproOptions,
    log: &mut (dyn Write + Send),
) -> Result<Vec<String>, PipelineError> {
    let lock = Lock::read(&pipeline.dir.join("dvc.lock"))?;
    let mut would = Vec::new();
    for &i in plan {
        let s = &pipeline.stages[i];
        let reasons = stage_status(repo, &pipeline.dir, s, lock.stage(&s.name))?;
        let changed = if opts.allow_missing { changed_allowing_missing(&reasons) } else { !reasons.is_empty() };
        if s.frozen || (!changed && !opts.force) {
            let _ = writeln!(log, "Stage '{}' didn't change, skipping", s.name);
            continue;
        }
        let _ = writeln!(log, "Running stage '{}':", s.name);
        for line in s.cmd.lines() {
            let _ = writeln!(log, "> {line}");
        }
        let _ = writeln!(log);
        would.push(s.name.clone());
    }
    if would.is_empty() {
        let _ = writeln!(log, "Data and pipelines are up to date.");
    }
    Ok(would)
}

/// The lock entry of `s` as it is now (after a successful run).
fn lock_entry(repo: &Repo, root: &Path, s: &Stage) -> Result<LockStage, PipelineError> {
    let mut deps = Vec::new();
    for d in &s.deps {
        let path = root.join(norm(&s.wdir, d));
        let h = hash_of(repo, &path)?
            .ok_or_else(|| PipelineError::MissingDep { stage: s.name.clone(), path: d.clone() })?;
        deps.push(Entry { path: d.clone(), hash: Some(h), legacy: false });
    }
    deps.sort_by(|a, b| a.path.cmp(&b.path));
    let params = current_params(root, s)?
        .into_iter()
        .map(|(f, kv)| {
            let kv = kv
                .into_iter()
                .map(|(k, v)| {
                    v.map(|v| (k.clone(), v)).ok_or_else(|| PipelineError::MissingParam { file: f.clone(), key: k })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((f, kv))
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    let mut outs = Vec::new();
    for o in &s.outs {
        let path = root.join(norm(&s.wdir, &o.path));
        if !path.exists() {
            return Err(PipelineError::MissingOut { stage: s.name.clone(), path: o.path.clone() });
        }
        let h = if o.cache {
            let h = repo.commit(&path)?;
            repo.gitignore(&path)?;
            h
        } else {
            repo.hash(&path)?
        };
        outs.push(Entry { path: o.path.clone(), hash: Some(h), legacy: false });
    }
    outs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(LockStage { cmd: s.cmd.clone(), deps, params, outs })
}

fn run_stage(root: &Path, s: &Stage) -> Result<(), PipelineError> {
    let wdir = root.join(norm(&s.wdir, "."));
    for o in &s.outs {
        if o.persist {
            continue;
        }
        let path = wdir.join(&o.path);
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        if let Err(e) = removed
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(PipelineError::Io { path, source: e });
        }
    }
    let shell = std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".to_owned());
    for line in s.cmd.lines() {
        let status = std::process::Command::new(&shell)
            .arg("-c")
            .arg(&line)
            .current_dir(&wdir)
            .env("DVC_ROOT", root)
            .env("DVC_STAGE", &s.name)
            .status()
            .map_err(|source| PipelineError::Io { path: PathBuf::from(&shell), source })?;
        // Stopped by Ctrl-C (the terminal signals the whole group; the command may die before
        // kiln's own handler has run, so its status says so too), or interrupted while it ran:
        // whatever it produced is not to be trusted or recorded, and nothing else starts.
        let sigint = {
            use std::os::unix::process::ExitStatusExt;
            status.signal() == Some(2) || status.code() == Some(130)
        };
        if sigint {
            crate::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if crate::interrupted() {
            return Err(PipelineError::Interrupted);
        }
        if !status.success() {
            return Err(PipelineError::Failed {
                stage: s.name.clone(),
                cmd: line,
                code: status.code().map_or_else(|| "a signal".to_owned(), |c| c.to_string()),
            });
        }
    }
    Ok(())
}

/// DVC's run-cache can hold a stage with a command, deps and outs, none of them persistent,
/// that is not `always_changed` (`dvc/stage/cache.py: _can_hash`).
fn can_hash(s: &Stage) -> bool {
    !s.always_changed
        && !s.cmd.lines().is_empty()
        && !s.deps.is_empty()
        && !s.outs.is_empty()
        && s.outs.iter().all(|o| !o.persist)
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The stage's entry as it is now without outputs' hashes: what the run-cache key is made of.
/// `None` when a dep or param is missing (nothing to look up).
fn key_entry(repo: &Repo, root: &Path, s: &Stage) -> Result<Option<LockStage>, PipelineError> {
    let mut deps = Vec::new();
    for d in &s.deps {
        let Some(h) = hash_of(repo, &root.join(norm(&s.wdir, d)))? else { return Ok(None) };
        deps.push(Entry { path: d.clone(), hash: Some(h), legacy: false });
    }
    deps.sort_by(|a, b| a.path.cmp(&b.path));
    let mut params = Vec::new();
    for (f, kv) in current_params(root, s)? {
        let mut vals = Vec::new();
        for (k, v) in kv {
            let Some(v) = v else { return Ok(None) };
            vals.push((k, v));
        }
        params.push((f, vals));
    }
    let mut outs: Vec<Entry> =
        s.outs.iter().map(|o| Entry { path: o.path.clone(), hash: None, legacy: false }).collect();
    outs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(LockStage { cmd: s.cmd.clone(), deps, params, outs }))
}

fn run_cache_dir(repo: &Repo, key: &str) -> PathBuf {
    repo.cache.root.join("runs").join(&key[..2]).join(key)
}

/// Records a successful run (`.dvc/cache/runs/<key[:2]>/<key>/<value>`, the entry as YAML);
/// outputs that are not cached are stored too, so that a restore can bring them back.
fn run_cache_save(repo: &Repo, root: &Path, s: &Stage, entry: &LockStage) -> Result<(), PipelineError> {
    if !can_hash(s) {
        return Ok(());
    }
    for o in s.outs.iter().filter(|o| !o.cache) {
        let path = root.join(norm(&s.wdir, &o.path));
        if path.is_file() {
            repo.cache.store_file(&path)?;
        } else {
            repo.commit(&path)?;
        }
    }
    let key = sha256_hex(&entry.run_cache_json(true));
    let value = sha256_hex(&entry.run_cache_json(false));
    let file = run_cache_dir(repo, &key).join(value);
    if file.is_file() {
        return Ok(());
    }
    let mut text = String::new();
    entry.render_into(&mut text, 0);
    kiln_cache::write_atomic(&file, text.as_bytes())?;
    Ok(())
}

/// The newest run-cache entry for the stage as it is now whose outputs are all in the cache,
/// checked out; `None` when there is none.
fn run_cache_restore(repo: &Repo, root: &Path, s: &Stage) -> Result<Option<LockStage>, PipelineError> {
    if !can_hash(s) {
        return Ok(None);
    }
    let Some(probe) = key_entry(repo, root, s)? else { return Ok(None) };
    let dir = run_cache_dir(repo, &sha256_hex(&probe.run_cache_json(true)));
    let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(None) };
    let newest = rd
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok().map(|t| (t, e.path())))
        .max_by_key(|(t, _)| *t);
    let Some((_, file)) = newest else { return Ok(None) };
    let Ok(entry) = crate::lock::read_entry(&file) else { return Ok(None) };
    // The entry must be for these outputs, each in the cache.
    if entry.outs.len() != s.outs.len() {
        return Ok(None);
    }
    for e in &entry.outs {
        match &e.hash {
            Some(h) if repo.in_cache(h)? => {}
            _ => return Ok(None),
        }
    }
    for e in &entry.outs {
        if let Some(h) = &e.hash {
            let decl = s.outs.iter().find(|o| o.path == e.path);
            let path = root.join(norm(&s.wdir, &e.path));
            repo.restore(h, &path)?;
            if decl.is_some_and(|o| o.cache) {
                repo.gitignore(&path)?;
            }
        }
    }
    Ok(Some(entry))
}

/// `dvc checkout` for the pipeline: every cached output recorded in `dvc.lock` goes through
/// [`Repo::checkout_output`], the same check-and-restore as `.dvc` outputs and `pull` (modified
/// data the cache lacks is refused unless `force`). Returns the outputs restored and the missing
/// ones whose objects the cache lacks (left as they are).
///
/// # Errors
/// An invalid lock, unreadable data, a corrupt cache object, data that would be lost.
pub fn checkout_outs(repo: &Repo, dir: &Path, force: bool) -> Result<(Vec<String>, Vec<String>), PipelineError> {
    let mut restored = Vec::new();
    let mut missing = Vec::new();
    for o in crate::lock::locked_outputs(dir)? {
        let path = dir.join(&o.name);
        if repo.checkout_output(&path, &o.hash, o.legacy, force)? {
            restored.push(o.name);
        } else if !path.exists() {
            missing.push(o.name);
        }
    }
    repo.state.save()?;
    Ok((restored, missing))
}

/// `.dvc` files whose data a planned stage depends on are stages too (DVC's data sources):
/// data that changed is stored again and its `.dvc` file rewritten before anything runs.
fn verify_data_sources(
    repo: &Repo,
    pipeline: &Pipeline,
    plan: &[usize],
    log: &mut (dyn Write + Send),
) -> Result<(), PipelineError> {
    let deps: Vec<String> = plan
        .iter()
        .flat_map(|&i| {
            let s = &pipeline.stages[i];
            s.deps.iter().map(move |d| norm(&s.wdir, d))
        })
        .collect();
    for file in repo.dvc_files()? {
        let parsed = kiln_cache::dvcfile::DvcFile::read(&file)?;
        let rel_file = file.strip_prefix(&repo.root).unwrap_or(&file).to_string_lossy().into_owned();
        for out in &parsed.outs {
            let path = kiln_cache::dvcfile::DvcFile::out_path(&file, out);
            let rel = path.strip_prefix(&repo.root).unwrap_or(&path).to_string_lossy().into_owned();
            if !deps.iter().any(|d| overlaps(d, &norm(".", &rel))) {
                continue;
            }
            let changed = match (&out.hash, hash_of(repo, &path)?) {
                (_, None) => return Err(PipelineError::MissingDep { stage: rel_file.clone(), path: rel }),
                (Some(want), Some(now)) => want.md5 != now.md5,
                (None, Some(_)) => true,
            };
            if changed {
                let _ = writeln!(log, "Verifying data sources in stage: '{rel_file}'");
                repo.add(std::slice::from_ref(&path))?;
            } else {
                let _ = writeln!(log, "'{rel_file}' didn't change, skipping");
            }
        }
    }
    Ok(())
}

/// `dvc repro`: runs the changed stages of the plan, upstream first, writing `dvc.lock` after
/// each. Returns the stages that ran. A failing command stops the run and leaves its stage's
/// lock entry as it was.
///
/// # Errors
/// Invalid pipeline, unknown target, a failed command, a missing output.
pub fn repro(
    repo: &Repo,
    pipeline: &Pipeline,
    opts: &ReproOptions,
    log: &mut (dyn Write + Send),
) -> Result<Vec<String>, PipelineError> {
    let graph = Graph::new(pipeline)?;
    let plan = plan(&graph, opts)?;
    if opts.dry {
        return dry_run(repo, pipeline, &plan, opts, log);
    }
    verify_data_sources(repo, pipeline, &plan, log)?;
    let lock_path = pipeline.dir.join("dvc.lock");
    let shared = Shared {
        lock: Lock::read(&lock_path)?,
        started: vec![false; pipeline.stages.len()],
        done: vec![false; pipeline.stages.len()],
        broken: vec![false; pipeline.stages.len()],
        failures: Vec::new(),
        failed: None,
        ran: Vec::new(),
        log,
    };
    let in_plan: Vec<bool> = (0..pipeline.stages.len()).map(|i| plan.contains(&i)).collect();
    let state = std::sync::Mutex::new(shared);
    let wake = std::sync::Condvar::new();
    // Workers take the first stage of the plan whose upstream (within the plan) is done; a
    // failure stops new starts, running stages finish.
    let worker = || -> Result<(), PipelineError> {
        loop {
            let mut st = state.lock().map_err(|_| PipelineError::Poisoned)?;
            let i = loop {
                if crate::interrupted() {
                    st.failed.get_or_insert(PipelineError::Interrupted);
                }
                if st.failed.is_some() {
                    return Ok(());
                }
                let ready = plan.iter().copied().find(|&i| {
                    !st.started[i] && graph.upstream[i].iter().all(|&u| !in_plan[u] || opts.single_item || st.done[u])
                });
                match ready {
                    // With --keep-going, a stage downstream of a failure is skipped (and so,
                    // in turn, is everything downstream of it).
                    Some(i) if graph.upstream[i].iter().any(|&u| in_plan[u] && !opts.single_item && st.broken[u]) => {
                        st.started[i] = true;
                        st.done[i] = true;
                        st.broken[i] = true;
                        let _ = writeln!(
                            st.log,
                            "WARNING: Stage '{}' will be skipped due to this failure",
                            pipeline.stages[i].name
                        );
                        wake.notify_all();
                    }
                    Some(i) => break i,
                    None if plan.iter().all(|&i| st.started[i]) => return Ok(()),
                    None => st = wake.wait(st).map_err(|_| PipelineError::Poisoned)?,
                }
            };
            st.started[i] = true;
            let s = &pipeline.stages[i];
            let locked = st.lock.stage(&s.name).cloned();
            drop(st);
            let outcome = (|| -> Result<Option<LockStage>, PipelineError> {
                let reasons = stage_status(repo, &pipeline.dir, s, locked.as_ref())?;
                let changed = if opts.allow_missing { changed_allowing_missing(&reasons) } else { !reasons.is_empty() };
                if s.frozen || (!changed && !opts.force) {
                    return Ok(None);
                }
                // Ran before with these deps and params: check the outputs out instead.
                if !opts.force
                    && let Some(entry) = run_cache_restore(repo, &pipeline.dir, s)?
                {
                    if let Ok(mut st) = state.lock() {
                        let _ = writeln!(st.log, "Stage '{}' is cached - skipping run, checking out outputs", s.name);
                    }
                    return Ok(Some(entry));
                }
                if let Ok(mut st) = state.lock() {
                    let _ = writeln!(st.log, "Running stage '{}':", s.name);
                    for line in s.cmd.lines() {
                        let _ = writeln!(st.log, "> {line}");
                    }
                    let _ = st.log.flush();
                }
                run_stage(&pipeline.dir, s)?;
                let entry = lock_entry(repo, &pipeline.dir, s)?;
                run_cache_save(repo, &pipeline.dir, s, &entry)?;
                Ok(Some(entry))
            })();
            let mut st = state.lock().map_err(|_| PipelineError::Poisoned)?;
            match outcome {
                Ok(None) => {
                    let _ = writeln!(st.log, "Stage '{}' didn't change, skipping", s.name);
                }
                Ok(Some(entry)) => {
                    let existed = lock_path.is_file();
                    // Entries follow dvc.yaml's order; stages no longer in it are dropped.
                    let mut by_name: BTreeMap<String, LockStage> = st.lock.stages.drain(..).collect();
                    by_name.insert(s.name.clone(), entry);
                    st.lock.stages = pipeline
                        .stages
                        .iter()
                        .filter_map(|x| by_name.remove(&x.name).map(|e| (x.name.clone(), e)))
                        .collect();
                    if let Err(e) = kiln_cache::write_atomic(&lock_path, st.lock.render().as_bytes()) {
                        st.failed = Some(e.into());
                    } else {
                        let _ = writeln!(
                            st.log,
                            "{} lock file 'dvc.lock'",
                            if existed { "Updating" } else { "Generating" }
                        );
                        st.ran.push(s.name.clone());
                    }
                }
                Err(e) if opts.keep_going && !matches!(e, PipelineError::Interrupted) => {
                    let _ = writeln!(st.log, "WARNING: {e}");
                    st.broken[i] = true;
                    st.failures.push(s.name.clone());
                }
                Err(e) => {
                    st.failed.get_or_insert(e);
                }
            }
            st.done[i] = true;
            drop(st);
            wake.notify_all();
        }
    };
    let results: Vec<Result<(), PipelineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..opts.jobs.max(1)).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(PipelineError::Poisoned))).collect()
    });
    repo.state.save()?;
    let mut st = state.into_inner().map_err(|_| PipelineError::Poisoned)?;
    if let Some(e) = st.failed.take() {
        return Err(e);
    }
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    if !st.failures.is_empty() {
        return Err(PipelineError::KeptGoing { failed: st.failures.join("', '") });
    }
    if st.ran.is_empty() {
        let _ = writeln!(st.log, "Data and pipelines are up to date.");
    }
    Ok(st.ran)
}

/// What the workers of `repro` share.
struct Shared<'l> {
    lock: Lock,
    started: Vec<bool>,
    done: Vec<bool>,
    /// Failed (with `keep_going`), or skipped for being downstream of a failure.
    broken: Vec<bool>,
    /// The stages that failed, with `keep_going`.
    failures: Vec<String>,
    failed: Option<PipelineError>,
    ran: Vec<String>,
    log: &'l mut (dyn Write + Send),
}

/// The stage graph in DVC's `dag` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagFormat {
    /// `stage -> stage` lines (DVC draws ASCII boxes; the layout is not worth copying).
    Text,
    /// `dag --dot`.
    Dot,
    /// `dag --mermaid`; `Markdown` wraps it in a fenced block (`dag --md`).
    Mermaid,
    Markdown,
}

/// Renders the graph (edges point from upstream to downstream).
///
/// # Errors
/// An invalid graph (overlapping outputs, a cycle).
pub fn dag(pipeline: &Pipeline, format: DagFormat) -> Result<String, PipelineError> {
    let g = Graph::new(pipeline)?;
    let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    let edges: Vec<(usize, usize)> =
        g.upstream.iter().enumerate().flat_map(|(i, ups)| ups.iter().map(move |&u| (u, i))).collect();
    Ok(match format {
        DagFormat::Text => {
            let mut s = String::new();
            for (i, n) in names.iter().enumerate() {
                let downs: Vec<&str> = edges.iter().filter(|(u, _)| *u == i).map(|(_, d)| names[*d]).collect();
                if downs.is_empty() {
                    s.push_str(&format!("{n}\n"));
                } else {
                    s.push_str(&format!("{n} -> {}\n", downs.join(", ")));
                }
            }
            s
        }
        DagFormat::Dot => {
            let mut s = String::from("strict digraph {\n");
            for n in &names {
                s.push_str(&format!("\"{n}\";\n"));
            }
            for (u, d) in &edges {
                s.push_str(&format!("\"{}\" -> \"{}\";\n", names[*u], names[*d]));
            }
            s.push_str("}\n");
            s
        }
        DagFormat::Mermaid | DagFormat::Markdown => {
            // As DVC: one block per connected pipeline (in order of first stage), its nodes
            // numbered by sorted name, then its edges sorted.
            let mut component: Vec<Option<usize>> = vec![None; names.len()];
            let mut next = 0;
            for start in 0..names.len() {
                if component[start].is_some() {
                    continue;
                }
                let mut stack = vec![start];
                while let Some(i) = stack.pop() {
                    if component[i].is_some() {
                        continue;
                    }
                    component[i] = Some(next);
                    for (u, d) in &edges {
                        if *u == i && component[*d].is_none() {
                            stack.push(*d);
                        }
                        if *d == i && component[*u].is_none() {
                            stack.push(*u);
                        }
                    }
                }
                next += 1;
            }
            let mut s = String::from("flowchart TD");
            let mut total = 0;
            for c in 0..next {
                let mut nodes: Vec<&str> =
                    (0..names.len()).filter(|&i| component[i] == Some(c)).map(|i| names[i]).collect();
                nodes.sort_unstable();
                let mut ids = HashMap::new();
                for n in nodes {
                    total += 1;
                    s.push_str(&format!("\n\tnode{total}[\"{n}\"]"));
                    ids.insert(n, total);
                }
                let mut es: Vec<(&str, &str)> = edges
                    .iter()
                    .filter(|(u, _)| component[*u] == Some(c))
                    .map(|(u, d)| (names[*u], names[*d]))
                    .collect();
                es.sort_unstable();
                for (a, b) in es {
                    s.push_str(&format!("\n\tnode{}-->node{}", ids[a], ids[b]));
                }
            }
            if format == DagFormat::Markdown { format!("```mermaid\n{s}\n```\n") } else { format!("{s}\n") }
        }
    })
}
