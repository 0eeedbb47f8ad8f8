//! `kiln plots show`: the pipeline's plots as PNG images on a static HTML page (as
//! `dvc plots show`, without vega or JavaScript).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_cache::Repo;
use kiln_pipeline::plots::{self, Chart, Content, PageImage, Plot};
use kiln_train::charts::{self, Labels, Series};

use crate::Output;

/// Plots of the pipeline (as `dvc plots`).
#[derive(Debug, clap::Args)]
pub struct PlotsArgs {
    #[command(subcommand)]
    command: PlotsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PlotsCommand {
    /// Render the plots of dvc.yaml (top-level `plots:` and stages' `plots:` outputs) to PNG
    /// files and an HTML page that shows them, and print the page's address.
    Show {
        /// Plot ids or data files to show (an id or path starting with one of them)
        /// [default: every plot].
        targets: Vec<String>,
        /// Directory for `index.html` and its images (`static/`).
        #[arg(short, long, default_value = "dvc_plots")]
        out: PathBuf,
        /// Print the plots and their data as JSON (DVC's shape, approximately) instead of
        /// writing the page.
        #[arg(long)]
        json: bool,
    },
}

/// `file://` address of an absolute path, bytes outside `[A-Za-z0-9/._~-]` percent-encoded (as
/// Python's `Path.as_uri`).
fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/._~-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file name in `static/` for `id` that no other plot of this run uses.
fn unique_name(id: &str, ext: &str, used: &mut Vec<String>) -> String {
    let stem = kiln_train::plots::safe_file_stem(&format!("workspace_{id}"));
    let mut name = format!("{stem}.{ext}");
    let mut n = 2;
    while used.contains(&name) {
        name = format!("{stem}_{n}.{ext}");
        n += 1;
    }
    used.push(name.clone());
    name
}

fn refs(s: &[plots::NamedPoints]) -> Vec<Series<'_>> {
    s.iter().map(|p| Series { name: &p.name, points: &p.points }).collect()
}

/// Draws one data plot into `path`; `false` when it has nothing to draw.
fn draw(plot: &Plot, path: &Path) -> anyhow::Result<bool> {
    let Some(chart) = plot.chart() else { return Ok(false) };
    let labels = Labels { title: &plot.title, x: &plot.x_label, y: &plot.y_label };
    match chart {
        Chart::Lines(s) => {
            charts::lines_png(path, labels, &refs(&s))?;
        }
        Chart::Points(s) => {
            charts::points_png(path, labels, &refs(&s))?;
        }
        Chart::Matrix { columns, rows, cells, normalized } => {
            charts::heatmap_png(path, labels, &columns, &rows, &cells, normalized)?;
        }
        Chart::Bars(bars) => {
            charts::hbars_png(path, labels, &bars)?;
        }
    }
    Ok(true)
}

#[allow(clippy::print_stderr)]
fn warn(out: Output, message: &str) {
    if !out.quiet {
        eprintln!("warning: {message}");
    }
}

pub fn plots(args: &PlotsArgs, out: Output) -> anyhow::Result<()> {
    let PlotsCommand::Show { targets, out: out_dir, json } = &args.command;
    let repo = Repo::find(Path::new("."))?;
    let defs = if repo.root.join("dvc.yaml").is_file() {
        let pipeline = kiln_pipeline::Pipeline::load(&repo.root)?;
        plots::definitions(&pipeline)?
    } else {
        Vec::new()
    };
    let defs: Vec<_> = defs
        .into_iter()
        .filter(|d| targets.is_empty() || targets.iter().any(|t| d.id.starts_with(t.trim_start_matches("./"))))
        .collect();
    let collected = plots::collect(&repo.root, &defs)?;
    for m in &collected.missing {
        warn(out, &format!("plot '{}': `{}` does not exist; it is not shown", m.plot, m.file));
    }
    let mut stdout = std::io::stdout().lock();
    if *json {
        writeln!(stdout, "{}", plots::json(&collected, &repo.root))?;
        return Ok(());
    }
    if collected.plots.is_empty() {
        warn(out, "No plots were loaded, visualization file will not be created.");
        return Ok(());
    }
    let out_dir = crate::commands::absolute(out_dir);
    let static_dir = out_dir.join("static");
    std::fs::create_dir_all(&static_dir).with_context(|| format!("cannot create `{}`", static_dir.display()))?;
    let mut used = Vec::new();
    let mut images = Vec::new();
    for plot in &collected.plots {
        match &plot.content {
            Content::Image { file } => {
                if collected.missing.iter().any(|m| m.file == *file) {
                    continue;
                }
                let ext =
                    Path::new(file).extension().map_or_else(|| "png".into(), |e| e.to_string_lossy().to_lowercase());
                let name = unique_name(&plot.id, &ext, &mut used);
                let src = repo.root.join(file);
                let bytes = std::fs::read(&src).with_context(|| format!("cannot read `{}`", src.display()))?;
                kiln_cache::write_atomic(&static_dir.join(&name), &bytes)?;
                images.push(PageImage { id: plot.id.clone(), src: format!("static/{name}") });
            }
            Content::Data { .. } => {
                let name = unique_name(&plot.id, "png", &mut used);
                if draw(plot, &static_dir.join(&name)).with_context(|| format!("plot '{}'", plot.id))? {
                    images.push(PageImage { id: plot.id.clone(), src: format!("static/{name}") });
                }
            }
        }
    }
    let index = out_dir.join("index.html");
    kiln_cache::write_atomic(&index, plots::html(&images).as_bytes())?;
    writeln!(stdout, "{}", file_uri(&index))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_names() {
        assert_eq!(file_uri(Path::new("/tmp/a b/dvc_plots/index.html")), "file:///tmp/a%20b/dvc_plots/index.html");
        let mut used = Vec::new();
        assert_eq!(unique_name("out/loss.csv", "png", &mut used), "workspace_out_loss_csv.png");
        assert_eq!(unique_name("out/loss.csv", "png", &mut used), "workspace_out_loss_csv_2.png");
    }
}
