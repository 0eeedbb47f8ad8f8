//! Links the binary with packed relative relocations (`-z pack-relative-relocs`, DT_RELR) where
//! the toolchain and the C library take them (binutils 2.38+, glibc 2.36+).
//!
//! Why: the binary is position-independent, and its ~35,000 relative relocations were 850 KB
//! of `.rela.dyn` that the loader read and applied before `main`, a millisecond of every
//! command: a third of `kiln --version`, and of the margin `kiln status` has against its
//! benchmark. Packed, they are 9 KB. The probe links and runs a small C program that has a
//! relative relocation, so a toolchain or loader without the feature gets a plain link, never
//! a binary that cannot start.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    // Only where the probe can run (not when cross-compiling) and glibc is the C library.
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    if probe() {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    }
}

fn probe() -> bool {
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else { return false };
    let src = out_dir.join("relr_probe.c");
    let exe = out_dir.join("relr_probe");
    // `p` holds an address, which in a PIE is a relative relocation.
    let code = "static int x = 7;\nint *p = &x;\nint main(void) { return *p == 7 ? 0 : 1; }\n";
    if std::fs::write(&src, code).is_err() {
        return false;
    }
    let quiet = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    quiet(Command::new("cc").args(["-fPIE", "-pie", FLAG]).arg(&src).arg("-o").arg(&exe))
        && quiet(&mut Command::new(&exe))
}
