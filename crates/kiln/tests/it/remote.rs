//! DVC-compatible remotes: `kiln push`/`fetch`/`pull` and `kiln remote`, against the real
//! `dvc` both ways through a local-directory remote in real git repositories (fresh clones
//! pull what the other tool pushed), against a real S3 server (moto) for `s3://` remotes, and
//! on bad input: a corrupt remote object, unknown or missing remotes, interrupted transfers.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::data::{dvc, dvc_bin, git_repo, kiln_in, walk, worked_example};

/// A stage whose outputs are a directory and a file (dvc.lock outs), from a `.dvc`-tracked input.
const PIPELINE: &str = "stages:
  build:
    cmd: mkdir -p out && tr a-z A-Z < hello.txt > out/copy.txt && echo built > out/flag.txt && cat hello.txt hello.txt > model.txt
    deps:
    - hello.txt
    outs:
    - out
    - model.txt
";

fn git(dir: &Path, args: &[&str]) {
    let (code, out, err) = run(Command::new("git")
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@example.invalid"])
        .args(args)
        .current_dir(dir));
    assert_eq!(code, 0, "git {args:?}: {out}{err}");
}

fn commit_all(dir: &Path) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "data"]);
}

/// A fresh clone of `src` (what a teammate gets: no cache, no data).
fn clone(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    let (code, out, err) = run(Command::new("git").arg("clone").arg("-q").arg(src).arg(dst.path()));
    assert_eq!(code, 0, "{out}{err}");
    dst
}

/// The workspace files the tests compare: (relative path, bytes).
fn data_files(p: &Path) -> Vec<(String, Vec<u8>)> {
    ["hello.txt", "crlf.csv", "data/a.txt", "data/sub/b.txt", "out/copy.txt", "out/flag.txt", "model.txt"]
        .iter()
        .filter(|f| p.join(f).exists())
        .map(|f| ((*f).to_owned(), std::fs::read(p.join(f)).unwrap()))
        .collect()
}

/// Object names under a `files/md5` tree, as `ab/cdef…`.
fn objects(base: &Path) -> BTreeSet<String> {
    if !base.is_dir() {
        return BTreeSet::new();
    }
    walk(base)
        .into_iter()
        .filter(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|f| f.strip_prefix(base).unwrap().to_string_lossy().into_owned())
        .collect()
}

fn cache_objects(repo: &Path) -> BTreeSet<String> {
    objects(&repo.join(".dvc/cache/files/md5"))
}

/// What `dvc remote add -d myremote <url>` writes into an empty `.dvc/config`.
fn expected_config(url: &str) -> String {
    format!("[core]\n    remote = myremote\n['remote \"myremote\"']\n    url = {url}\n")
}

#[test]
fn kiln_remote_add_writes_what_dvc_writes() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let (ours, theirs) = (git_repo(), git_repo());
    assert_eq!(kiln_in(ours.path(), &["init"]).0, 0);
    assert_eq!(dvc(&dvc_bin, theirs.path(), &["init", "-q"]).0, 0);
    std::fs::create_dir_all(ours.path().join("sub")).unwrap();
    std::fs::create_dir_all(theirs.path().join("sub")).unwrap();
    for (args, dir) in [
        (&["remote", "add", "-d", "myremote", "/srv/dvc-store"][..], "."),
        (&["remote", "add", "other", "../storage"][..], "sub"),
        (&["remote", "modify", "other", "jobs", "4"][..], "."),
        (&["remote", "add", "s3r", "s3://bucket/prefix"][..], "."),
        (&["remote", "modify", "s3r", "endpointurl", "http://127.0.0.1:9000"][..], "."),
        (&["remote", "modify", "--local", "s3r", "secret_access_key", "abc"][..], "."),
        (&["remote", "default", "s3r"][..], "."),
        (&["remote", "remove", "myremote"][..], "."),
    ] {
        let (code, out, err) = kiln_in(&ours.path().join(dir), args);
        assert_eq!(code, 0, "kiln {args:?}: {out}{err}");
        let (code, out, err) = dvc(&dvc_bin, &theirs.path().join(dir), args);
        assert_eq!(code, 0, "dvc {args:?}: {out}{err}");
        for file in [".dvc/config", ".dvc/config.local"] {
            assert_eq!(
                std::fs::read_to_string(ours.path().join(file)).unwrap_or_default(),
                std::fs::read_to_string(theirs.path().join(file)).unwrap_or_default(),
                "{file} after {args:?}"
            );
        }
    }
    let (_, ours_list, _) = kiln_in(ours.path(), &["remote", "list"]);
    let (_, theirs_list, _) = dvc(&dvc_bin, theirs.path(), &["remote", "list"]);
    // dvc prints through rich, which expands the tabs to 8-column stops.
    let expand = |s: &str| {
        s.lines()
            .map(|l| {
                let mut out = String::new();
                for c in l.chars() {
                    if c == '\t' {
                        out.push(' ');
                        while !out.len().is_multiple_of(8) {
                            out.push(' ');
                        }
                    } else {
                        out.push(c);
                    }
                }
                out + "\n"
            })
            .collect::<String>()
    };
    let fix = |s: &str, root: &Path| s.replace(&root.canonicalize().unwrap().display().to_string(), "[ROOT]");
    assert_eq!(fix(&expand(&ours_list), ours.path()), fix(&theirs_list, theirs.path()));
    let (code, out, _) = kiln_in(ours.path(), &["remote", "default"]);
    assert_eq!((code, out.as_str()), (0, "s3r\n"));
    // The simplest case byte for byte.
    let fresh = git_repo();
    assert_eq!(kiln_in(fresh.path(), &["init"]).0, 0);
    assert_eq!(kiln_in(fresh.path(), &["remote", "add", "-d", "myremote", "/tmp/x"]).0, 0);
    assert_eq!(std::fs::read_to_string(fresh.path().join(".dvc/config")).unwrap(), expected_config("/tmp/x"));
}

/// kiln pushes (a `.dvc` file, a directory, a pipeline's outputs) to a remote `kiln remote add
/// -d` configured; a fresh clone pulls it all with the real dvc; dvc's own push finds nothing to do.
#[test]
fn kiln_push_then_dvc_pull_in_a_fresh_clone() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let storage = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    worked_example(p);
    let (code, out, err) = kiln_in(p, &["add", "hello.txt", "data", "crlf.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(p.join("dvc.yaml"), PIPELINE).unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = kiln_in(p, &["remote", "add", "-d", "myremote", storage.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(p.join(".dvc/config")).unwrap(),
        expected_config(storage.path().to_str().unwrap())
    );
    commit_all(p);

    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!(code, 0, "{out}{err}");
    let want = cache_objects(p);
    // hello, crlf, a, b, the data listing, copy, flag, model, the out listing.
    assert_eq!(want.len(), 9, "{want:?}");
    assert_eq!(out.trim(), "9 files pushed");
    assert_eq!(objects(&storage.path().join("files/md5")), want, "the remote holds DVC 3's layout");
    for f in walk(&storage.path().join("files/md5")) {
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o444, "{f:?}");
    }
    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!((code, out.trim()), (0, "Everything is up to date."), "{err}");
    // DVC reads the config kiln wrote and finds its layout complete.
    let (code, out, err) = dvc(&dvc_bin, p, &["push"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Everything is up to date."), "{out}{err}");

    let cloned = clone(p);
    let c = cloned.path();
    assert!(!c.join("data").exists() && !c.join("model.txt").exists());
    let (code, out, err) = dvc(&dvc_bin, c, &["pull"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(data_files(c), data_files(p));
    assert_eq!(data_files(c).len(), 7);
    let (_, out, _) = dvc(&dvc_bin, c, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");
}

/// dvc pushes; a fresh clone pulls with kiln (`.dvc` outputs, a directory, dvc.lock outputs),
/// and both tools then see the workspace up to date.
#[test]
fn dvc_push_then_kiln_pull_in_a_fresh_clone() {
    let Some(dvc_bin) = dvc_bin() else { return };
    let storage = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(dvc(&dvc_bin, p, &["init", "-q"]).0, 0);
    worked_example(p);
    let (code, out, err) = dvc(&dvc_bin, p, &["add", "-q", "hello.txt", "data", "crlf.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(p.join("dvc.yaml"), PIPELINE).unwrap();
    let (code, out, err) = dvc(&dvc_bin, p, &["repro", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = dvc(&dvc_bin, p, &["remote", "add", "-d", "myremote", storage.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = dvc(&dvc_bin, p, &["push"]);
    assert_eq!(code, 0, "{out}{err}");
    commit_all(p);

    let cloned = clone(p);
    let c = cloned.path();
    let (code, out, err) = kiln_in(c, &["pull"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("9 files fetched"), "{out}");
    for name in ["hello.txt", "data", "crlf.csv", "out", "model.txt"] {
        assert!(out.lines().any(|l| l == format!("A\t{name}")), "{name} not reported in {out}");
    }
    assert_eq!(data_files(c), data_files(p));
    assert_eq!(data_files(c).len(), 7);
    assert_eq!(cache_objects(c), cache_objects(p));
    let (code, out, err) = kiln_in(c, &["status"]);
    assert_eq!((code, out.trim()), (0, "Data and pipelines are up to date."), "{err}");
    let (_, out, _) = dvc(&dvc_bin, c, &["status"]);
    assert!(out.contains("Data and pipelines are up to date."), "{out}");
    let (code, out, err) = kiln_in(c, &["pull"]);
    assert_eq!((code, out.trim()), (0, "Everything is up to date."), "{err}");

    // Targets narrow the transfer: a stage's outputs only, then a .dvc file.
    let again = clone(p);
    let a = again.path();
    let (code, out, err) = kiln_in(a, &["pull", "build"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(a.join("model.txt").is_file() && a.join("out/copy.txt").is_file() && !a.join("hello.txt").exists());
    let (code, out, err) = kiln_in(a, &["fetch", "data.dvc"]);
    assert_eq!((code, out.trim()), (0, "3 files fetched"), "{err}");
    assert!(!a.join("data").exists(), "fetch leaves the workspace alone");
}

/// An `s3://bucket/prefix` remote on a real S3 server (moto), endpoint from `endpointurl`.
#[test]
fn s3_remote_push_and_pull() {
    let Some(moto) = crate::s3::Moto::start() else { return };
    moto.create_bucket("kiln-dvc");
    let env =
        [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")];
    let kiln_s3 = |dir: &Path, args: &[&str]| {
        run(kiln().args(args).current_dir(dir).envs(env).env_remove("AWS_ENDPOINT_URL").env_remove("AWS_ENDPOINT"))
    };
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    worked_example(p);
    // Past 8 MiB an upload goes in parts.
    let big: Vec<u8> = (0..9_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(p.join("data/big.bin"), &big).unwrap();
    // Past 256 objects, what the bucket holds is listed rather than asked one HEAD at a time.
    std::fs::create_dir_all(p.join("many")).unwrap();
    for i in 0..300 {
        std::fs::write(p.join(format!("many/{i:03}.txt")), format!("{i}\n")).unwrap();
    }
    assert_eq!(kiln_in(p, &["add", "hello.txt", "data", "many"]).0, 0);
    for args in [
        &["remote", "add", "-d", "store", "s3://kiln-dvc/team/datasets"][..],
        &["remote", "modify", "store", "endpointurl", &moto.endpoint],
    ] {
        let (code, out, err) = kiln_in(p, args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    commit_all(p);
    let (code, out, err) = kiln_s3(p, &["push", "--jobs", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "306 files pushed");
    let keys: BTreeSet<String> = moto.keys("kiln-dvc").into_iter().collect();
    let want: BTreeSet<String> = cache_objects(p).into_iter().map(|o| format!("team/datasets/files/md5/{o}")).collect();
    assert_eq!(keys, want);
    let (code, out, err) = kiln_s3(p, &["push"]);
    assert_eq!((code, out.trim()), (0, "Everything is up to date."), "{err}");

    let cloned = clone(p);
    let c = cloned.path();
    let (code, out, err) = kiln_s3(c, &["pull"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("306 files fetched"), "{out}");
    assert_eq!(std::fs::read(c.join("data/big.bin")).unwrap(), big);
    assert_eq!(std::fs::read_to_string(c.join("many/299.txt")).unwrap(), "299\n");
    assert_eq!(data_files(c), data_files(p));
    let (_, out, _) = kiln_in(c, &["status"]);
    assert_eq!(out.trim(), "Data and pipelines are up to date.");
}

/// `push: false` outputs (of a `.dvc` file and of a stage) stay local; dvc agrees nothing is
/// left to push.
#[test]
fn push_false_outputs_are_not_pushed() {
    let storage = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    std::fs::write(p.join("big.bin"), "too big to share\n").unwrap();
    std::fs::write(p.join("small.txt"), "share me\n").unwrap();
    assert_eq!(kiln_in(p, &["add", "big.bin", "small.txt"]).0, 0);
    let dvc_file = std::fs::read_to_string(p.join("big.bin.dvc")).unwrap();
    std::fs::write(p.join("big.bin.dvc"), dvc_file + "  push: false\n").unwrap();
    std::fs::write(
        p.join("dvc.yaml"),
        "stages:\n  s:\n    cmd: echo m > model.txt && echo k > keep.txt\n    outs:\n    - model.txt:\n        push: false\n    - keep.txt\n",
    )
    .unwrap();
    let (code, out, err) = kiln_in(p, &["repro"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(kiln_in(p, &["remote", "add", "-d", "store", storage.path().to_str().unwrap()]).0, 0);
    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!((code, out.trim()), (0, "2 files pushed"), "{err}");
    let pushed = objects(&storage.path().join("files/md5"));
    let (small, _) = md5_of(b"share me\n");
    let (keep, _) = md5_of(b"k\n");
    assert_eq!(pushed, [small, keep].iter().map(|m| format!("{}/{}", &m[..2], &m[2..])).collect());
    if let Some(dvc_bin) = dvc_bin() {
        let (code, out, err) = dvc(&dvc_bin, p, &["push"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("Everything is up to date."), "{out}{err}");
    }
}

/// A repository with data pushed to a local remote; returns (repo, storage).
fn pushed_repo() -> (tempfile::TempDir, tempfile::TempDir) {
    let storage = tempfile::tempdir().unwrap();
    let repo = git_repo();
    let p = repo.path();
    assert_eq!(kiln_in(p, &["init"]).0, 0);
    worked_example(p);
    assert_eq!(kiln_in(p, &["add", "hello.txt", "data", "crlf.csv"]).0, 0);
    assert_eq!(kiln_in(p, &["remote", "add", "-d", "store", storage.path().to_str().unwrap()]).0, 0);
    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!(code, 0, "{out}{err}");
    (repo, storage)
}

fn remove_cache(p: &Path) {
    for f in walk(&p.join(".dvc/cache")) {
        std::fs::remove_file(f).unwrap();
    }
}

const HELLO: &str = "b1946ac92492d2347c6235b4d2611184";

#[test]
fn a_corrupt_remote_object_is_refused_and_never_cached() {
    let (repo, storage) = pushed_repo();
    let p = repo.path();
    let obj = storage.path().join("files/md5/b1/946ac92492d2347c6235b4d2611184");
    std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&obj, "tampered\n").unwrap();
    remove_cache(p);
    std::fs::remove_file(p.join("hello.txt")).unwrap();
    std::fs::remove_dir_all(p.join("data")).unwrap();
    let (code, out, err) = kiln_in(p, &["pull"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(HELLO) && err.contains("corrupt"), "{err}");
    assert!(!p.join("hello.txt").exists(), "the workspace file is not created");
    assert!(!cache_objects(p).contains(&format!("b1/{}", &HELLO[2..])), "the cache does not hold it");
    assert!(
        walk(&p.join(".dvc/cache")).iter().all(|f| !f.file_name().unwrap().to_string_lossy().starts_with(".tmp")),
        "no temp file is left behind"
    );
    // The rest came through.
    assert_eq!(std::fs::read(p.join("data/sub/b.txt")).unwrap(), b"b\r\n");
}

#[test]
fn unknown_and_missing_remotes_are_named() {
    let (repo, _storage) = pushed_repo();
    let p = repo.path();
    let (code, _, err) = kiln_in(p, &["push", "-r", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("remote 'nope' doesn't exist") && err.contains("known: store"), "{err}");
    let (code, _, err) = kiln_in(p, &["push", "no-such-target"]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such-target"), "{err}");
    assert_eq!(kiln_in(p, &["remote", "remove", "store"]).0, 0);
    for cmd in ["push", "fetch", "pull"] {
        let (code, _, err) = kiln_in(p, &[cmd]);
        assert_eq!(code, 1, "{cmd}");
        assert!(err.contains("no remote specified"), "{cmd}: {err}");
    }
    let (code, _, err) = kiln_in(p, &["remote", "add", "g", "gs://bucket/x"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kiln_in(p, &["fetch", "-r", "g"]);
    assert_eq!(code, 1);
    assert!(err.contains("unsupported URL `gs://bucket/x`"), "{err}");
    let (code, _, err) = kiln_in(p, &["remote", "add", "g", "/x"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = kiln_in(p, &["remote", "modify", "g", "colour", "blue"]);
    assert_eq!(code, 1);
    assert!(err.contains("`colour`"), "{err}");
}

/// A fetch killed half-way leaves some objects and maybe a temp file; a rerun completes it.
/// A push whose local object vanished pushes the rest, names the missing one and fails.
#[test]
fn interrupted_transfers_complete_on_rerun() {
    let (repo, storage) = pushed_repo();
    let p = repo.path();
    let all = cache_objects(p);
    // Two objects gone from the cache, a partial download of one of them left behind.
    let base = p.join(".dvc/cache/files/md5");
    for o in ["b1/946ac92492d2347c6235b4d2611184", "60/b725f10c9c85c70d97880dfe8191b3"] {
        std::fs::remove_file(base.join(o)).unwrap();
    }
    std::fs::write(base.join("b1/.tmp-partial"), "hel").unwrap();
    let (code, out, err) = kiln_in(p, &["fetch"]);
    assert_eq!((code, out.trim()), (0, "2 files fetched"), "{err}");
    assert_eq!(cache_objects(p), all);
    let (code, out, _) = kiln_in(p, &["fetch"]);
    assert_eq!((code, out.trim()), (0, "Everything is up to date."));

    // A push interrupted after some objects: only the rest goes.
    let remote_base = storage.path().join("files/md5");
    std::fs::remove_file(remote_base.join("ef/4330228809c42919ada65a11393fd1")).unwrap();
    std::fs::write(remote_base.join("ef/.tmp-partial"), "x,y").unwrap();
    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!((code, out.trim()), (0, "1 file pushed"), "{err}");
    assert_eq!(objects(&remote_base), all);

    // A new version whose object is lost locally: the others go, the lost one is named.
    std::fs::write(p.join("hello.txt"), "hello again\n").unwrap();
    std::fs::write(p.join("crlf.csv"), "x,y\r\n3,4\r\n").unwrap();
    assert_eq!(kiln_in(p, &["add", "hello.txt", "crlf.csv"]).0, 0);
    let lost: PathBuf = walk(&base)
        .into_iter()
        .find(|f| {
            let (got, _) = md5_of(&std::fs::read(f).unwrap());
            got == md5_of(b"hello again\n").0
        })
        .unwrap();
    std::fs::remove_file(&lost).unwrap();
    let (code, out, err) = kiln_in(p, &["push"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("Some of the cache files do not exist neither locally nor on remote"), "{err}");
    assert!(err.contains("name: hello.txt, md5: "), "{err}");
    assert!(out.contains("1 file pushed"), "{out}");

    // A corrupt local object is not pushed.
    std::fs::write(p.join("crlf.csv"), "x,y\r\n5,6\r\n").unwrap();
    assert_eq!(kiln_in(p, &["add", "crlf.csv"]).0, 0);
    let (crlf_md5, _) = md5_of(b"x,y\r\n5,6\r\n");
    let obj = base.join(&crlf_md5[..2]).join(&crlf_md5[2..]);
    std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&obj, "garbage").unwrap();
    let (code, _, err) = kiln_in(p, &["push", "crlf.csv"]);
    assert_eq!(code, 1);
    assert!(err.contains(&crlf_md5) && err.contains("does not match its hash"), "{err}");
    assert!(!remote_base.join(&crlf_md5[..2]).join(&crlf_md5[2..]).exists());
}

/// (md5 hex, size) through the machine's `md5sum` (the code under test hashes on its own).
fn md5_of(data: &[u8]) -> (String, usize) {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned(), data.len())
}
