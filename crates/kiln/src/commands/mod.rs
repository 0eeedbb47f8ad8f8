//! One module per command.

pub mod csvtools;
pub mod data;
pub mod evaluate;
pub mod exp;
pub mod models;
pub mod plots;
pub mod predict;
pub mod remote;
pub mod serve;
pub mod server;
pub mod train;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Ctrl-C during `repro` and `exp run`: the stages' commands get the signal from the terminal
/// themselves; kiln waits for them, records nothing for a stage that was stopped, starts no other
/// and exits 130. A second Ctrl-C exits at once.
pub fn catch_interrupts() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                kiln_pipeline::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!("interrupted: waiting for the running stages to stop (Ctrl-C again quits at once)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    #[allow(clippy::exit, reason = "a second Ctrl-C means quit now, whatever is running")]
                    std::process::exit(130);
                }
            }
        });
    });
}

/// Exit status for an error: 2 for kiln's own faults, 1 for everything the user can fix
/// (bad config, bad data, a missing file). clap's usage errors exit with 2 on their own.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    // 128 + SIGINT, as shells report a command stopped by Ctrl-C.
    if err.chain().any(|c| {
        matches!(c.downcast_ref::<kiln_pipeline::PipelineError>(), Some(kiln_pipeline::PipelineError::Interrupted))
    }) {
        return 130;
    }
    let internal = err.chain().any(|c| {
        matches!(
            c.downcast_ref::<kiln_train::TrainError>(),
            Some(kiln_train::TrainError::Internal(_) | kiln_train::TrainError::Serialize(_))
        )
    });
    if internal { 2 } else { 1 }
}

/// A progress bar on stderr, or a hidden one when progress must not show.
pub fn progress_bar(show: bool, len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Makes a command-line path absolute against the current directory (config paths are
/// relative to the config file, command-line paths to where the user is).
pub fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}
