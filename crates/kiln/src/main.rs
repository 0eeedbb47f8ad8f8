//! The `kiln` binary: argument parsing, logging, output policy and exit codes. Every behaviour
//! lives in a library crate; each command module parses its arguments and calls one function.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;

/// mimalloc: per-request allocations in `kiln serve` cost a third of its time with glibc's malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// kiln: train, evaluate and score classic machine-learning models, from one binary.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Print only results and errors (no progress bars).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More log output (-v info, -vv debug); RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// When to use colour; NO_COLOR in the environment means never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model from a kiln.yaml: split, grid search, refit, evaluate, write the bundle.
    Train(commands::train::TrainArgs),
    /// Score a CSV file with a model bundle, streaming, into a CSV with a `prediction` column (or MLflow JSON).
    Predict(commands::predict::PredictArgs),
    /// Score a labelled CSV with a model bundle and write its metrics as JSON (an evaluate stage).
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Clean or split CSV files (pipeline stages): `csv clean`, `csv split`.
    Csv(commands::csvtools::CsvArgs),
    /// Serve a model over HTTP (MLflow's scoring protocol, /predict, Open Inference Protocol v2).
    Serve(commands::serve::ServeArgs),
    /// Run the MLflow-compatible tracking server (experiments, runs, params, metrics, tags).
    Server(commands::server::ServerArgs),
    /// The model registry of a tracking server: list, show, register, aliases, stages, delete.
    Models(commands::models::ModelsArgs),
    /// Create a DVC-compatible repository (.dvc/) in a directory.
    Init(commands::data::InitArgs),
    /// Track data with a .dvc file and the cache (DVC-compatible).
    Add(commands::data::AddArgs),
    /// Show tracked data that differs from its .dvc file.
    Status(commands::data::StatusArgs),
    /// Restore tracked data from the cache.
    Checkout(commands::data::CheckoutArgs),
    /// Remove cache objects the workspace no longer uses.
    Gc(commands::data::GcArgs),
    /// Upload tracked data and pipeline outputs to a remote (DVC-compatible).
    Push(commands::remote::PushArgs),
    /// Download tracked data and pipeline outputs from a remote into the cache.
    Fetch(commands::remote::FetchArgs),
    /// Download from a remote and check the data out into the workspace.
    Pull(commands::remote::PullArgs),
    /// Configure remotes (add, list, remove, default, modify) in .dvc/config.
    Remote(commands::remote::RemoteArgs),
    /// Run the pipeline's changed stages (dvc.yaml), writing dvc.lock (DVC-compatible).
    Repro(commands::data::ReproArgs),
    /// Show the pipeline's stage graph (text, --dot, --mermaid, --md).
    Dag(commands::data::DagArgs),
    /// Show the pipeline's metrics, or compare them across git revisions (show, diff).
    Metrics(commands::data::MetricsArgs),
    /// Compare the pipeline's params across git revisions (diff).
    Params(commands::data::ParamsArgs),
    /// Run, queue, compare, apply and remove experiments (DVC-compatible git refs).
    Exp(commands::exp::ExpArgs),
    /// Render the pipeline's plots to PNG images and an HTML page (plots show [-o DIR] [--json]).
    Plots(commands::plots::PlotsArgs),
}

/// How a command should write to the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Draw progress bars (stderr is a terminal and not --quiet).
    pub progress: bool,
    pub quiet: bool,
    pub color: bool,
}

fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
        }
    }
}

fn init_logging(verbose: u8, color: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = color_enabled(cli.global.color);
    init_logging(cli.global.verbose, color);
    let out = Output { progress: !cli.global.quiet && std::io::stderr().is_terminal(), quiet: cli.global.quiet, color };
    let result = match cli.command {
        Command::Train(args) => commands::train::run(&args, out),
        Command::Predict(args) => commands::predict::run(&args, out),
        Command::Evaluate(args) => commands::evaluate::run(&args, out),
        Command::Csv(args) => commands::csvtools::csv(&args, out),
        Command::Serve(args) => commands::serve::run(&args, out),
        Command::Server(args) => commands::server::run(&args, out),
        Command::Models(args) => commands::models::run(&args, out),
        Command::Init(args) => commands::data::init(&args, out),
        Command::Add(args) => commands::data::add(&args, out),
        Command::Status(args) => commands::data::status(&args, out),
        Command::Checkout(args) => commands::data::checkout(&args, out),
        Command::Gc(args) => commands::data::gc(&args, out),
        Command::Push(args) => commands::remote::push(&args, out),
        Command::Fetch(args) => commands::remote::fetch(&args, out),
        Command::Pull(args) => commands::remote::pull(&args, out),
        Command::Remote(args) => commands::remote::remote(&args, out),
        Command::Repro(args) => commands::data::repro(&args, out),
        Command::Dag(args) => commands::data::dag(&args, out),
        Command::Metrics(args) => commands::data::metrics(&args, out),
        Command::Params(args) => commands::data::params(&args, out),
        Command::Exp(args) => commands::exp::exp(&args, out),
        Command::Plots(args) => commands::plots::plots(&args, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed stdout (`kiln … | head`) is not a failure.
            if err
                .chain()
                .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            let prefix = if color { "\x1b[1;31merror\x1b[0m" } else { "error" };
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{prefix}: {err}");
                for cause in err.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every command and subcommand (a short flag used
    /// twice, say, would otherwise only panic when that command is run).
    #[test]
    fn every_command_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
