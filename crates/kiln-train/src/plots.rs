//! Evaluation and data plots, rendered to PNG files with plotters' bitmap backend.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (see `assets/LICENSE-DejaVu.txt`),
//! because plotters' `ab_glyph` text backend has no access to system fonts: every chart then
//! looks the same on every machine, including minimal containers without fonts.
//!
//! Every function writes its file atomically: it renders into `<file name>.tmp.png` in the
//! target directory and renames that over the target, so a crash or a concurrent reader never
//! sees a half-written PNG. Callers build the paths; [`safe_file_stem`] turns a user-supplied
//! name (a CSV column, say) into a file stem that cannot leave the output directory.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, register_font};

use crate::charts::{HeatLayout, Labels, draw_heatmap};

/// DejaVu Sans Book 2.37; licence in `assets/LICENSE-DejaVu.txt`.
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The family name plotters resolves for `FontFamily::SansSerif` and `("sans-serif", size)`.
const FONT: &str = "sans-serif";

pub(crate) const SIZE: (u32, u32) = (800, 600);
pub(crate) const TITLE_SIZE: u32 = 26;
pub(crate) const LABEL_SIZE: u32 = 17;
pub(crate) const AXIS_DESC_SIZE: u32 = 19;

/// A blue for bars and points, matplotlib's default "tab:blue".
pub(crate) const BAR_BLUE: RGBColor = RGBColor(31, 119, 180);
/// "tab:red", used for negative bars and reference lines.
const ACCENT_RED: RGBColor = RGBColor(214, 39, 40);
pub(crate) const GREY: RGBColor = RGBColor(110, 110, 110);

/// Scatter plots draw at most this many points: beyond it the cloud is solid ink anyway, and
/// rendering time grows linearly.
pub(crate) const MAX_SCATTER_POINTS: usize = 50_000;

/// What is wrong with the data handed to a plot function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputProblem {
    #[error("{left_name} has {left} values but {right_name} has {right}")]
    LengthMismatch { left_name: &'static str, left: usize, right_name: &'static str, right: usize },
    #[error("there are no finite values to plot")]
    NoData,
    #[error("the confusion matrix must be {n_classes}x{n_classes} for {n_classes} class names")]
    MatrixShape { n_classes: usize },
    #[error("the path has no file name")]
    NoFileName,
    #[error("{count} categories on one axis; at most {max} can be drawn")]
    TooManyCategories { count: usize, max: usize },
}

/// Errors drawing or writing a plot; each names the target path.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot plot `{}`: {problem}", path.display())]
    Input { path: PathBuf, problem: InputProblem },
    #[error("cannot draw the plot `{}`", path.display())]
    Draw {
        path: PathBuf,
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    #[error("cannot write the plot `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot plot `{}`: the embedded font could not be loaded", path.display())]
    Font { path: PathBuf },
}

pub(crate) type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
pub(crate) type DrawError = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

/// Turns an arbitrary name into a file stem made of `[A-Za-z0-9_-]` only, every other character
/// becoming `_`, so that a column called `../../etc/passwd` or `price (€)` yields a plain file
/// name inside the caller's directory. Empty names become `_`; long names are cut at 100
/// characters to stay far below file-system name limits. Distinct names can map to the same stem
/// (`a b` and `a_b`); callers that need uniqueness must add a suffix.
#[must_use]
pub fn safe_file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if stem.is_empty() { "_".to_owned() } else { stem }
}

/// Registers the embedded font with plotters once per process; `false` if it was rejected.
fn font_loaded() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok())
}

pub(crate) fn input_error(path: &Path, problem: InputProblem) -> PlotError {
    PlotError::Input { path: path.to_owned(), problem }
}

fn check_lengths(
    path: &Path,
    (left_name, left): (&'static str, usize),
    (right_name, right): (&'static str, usize),
) -> Result<(), PlotError> {
    if left == right {
        Ok(())
    } else {
        Err(input_error(path, InputProblem::LengthMismatch { left_name, left, right_name, right }))
    }
}

type Scatter<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled scatter chart of `points` with the regression plots' mesh and axis labels.
fn scatter<'a, 'b>(
    root: &'a Root<'b>,
    title: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_desc, y_desc): (&str, &str),
    points: &[(f64, f64)],
) -> Result<Scatter<'a, 'b>, DrawError> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(TITLE_SIZE))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(AXIS_DESC_SIZE))
        .label_style(font(LABEL_SIZE))
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| short_number(*v))
        .draw()?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, BAR_BLUE.mix(0.45).filled())))?;
    Ok(chart)
}

/// Renders `draw` onto a white canvas of `size` and atomically moves the PNG to `path`.
pub(crate) fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Root<'_>) -> Result<(), DrawError>,
) -> Result<(), PlotError> {
    if !font_loaded() {
        return Err(PlotError::Font { path: path.to_owned() });
    }
    let file_name = path.file_name().ok_or_else(|| input_error(path, InputProblem::NoFileName))?;
    // Same directory as the target, so the rename cannot cross file systems; the `.png`
    // extension matters because the bitmap encoder picks the format from it.
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(".tmp.png");
    let tmp = path.with_file_name(tmp_name);

    let drawn = {
        // The backend is dropped at the end of this block, before the rename. (If drawing fails
        // half-way, dropping it still writes the partial image, which is removed below.)
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).and_then(|()| draw(&root)).and_then(|()| root.present())
    };
    if let Err(e) = drawn {
        // Best effort: the drawing error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        return Err(PlotError::Draw { path: path.to_owned(), source: Box::new(e) });
    }
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        PlotError::Write { path: path.to_owned(), source }
    })
}

/// A text style in the embedded font. plotters resolves the font when the style is created, not
/// when text is drawn, so the font must be registered first (a failure surfaces in [`render`]).
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    let _ = font_loaded();
    (FONT, size).into_font().color(&BLACK)
}

pub(crate) fn centered(size: u32, color: &RGBColor) -> TextStyle<'static> {
    let _ = font_loaded();
    (FONT, size).into_font().color(color).pos(Pos::new(HPos::Center, VPos::Center))
}

/// Shortens a label to `max` characters with an ellipsis, so one long category name cannot
/// squeeze the plot area to nothing.
pub(crate) fn truncate_label(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Pixel width of the widest of `labels` at `LABEL_SIZE`, measured with the embedded font, plus
/// a small gap for the tick mark. Used to size label areas before drawing.
pub(crate) fn label_width<S: AsRef<str>>(labels: &[S]) -> u32 {
    let style = font(LABEL_SIZE);
    let widest = labels
        .iter()
        .map(|l| {
            let l = l.as_ref();
            // Only if the font failed to load (then `render` reports it): about 0.6 em a glyph.
            let guess = || u32::try_from(l.chars().count() * LABEL_SIZE as usize * 6 / 10);
            style.font.box_size(l).map_or_else(|_| guess().unwrap_or(u32::MAX), |(w, _)| w)
        })
        .max()
        .unwrap_or(0);
    widest.saturating_add(16)
}

/// How category names are laid out under an x axis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XCategoryLabels {
    /// Height of the label area (tick labels plus the axis description).
    pub(crate) area: u32,
    /// Rotated labels are drawn by [`draw_rotated_labels`], not by the mesh: plotters centres
    /// rotated tick labels on the tick, which pushes half of each name into the plot.
    pub(crate) rotated: bool,
}

/// Horizontal labels when the names fit side by side in `axis_px`, else labels rotated a
/// quarter turn with the label area grown to the longest name: overlapping names are unreadable,
/// and cutting them to a few characters leaves them all looking alike.
pub(crate) fn x_category_labels(names: &[String], axis_px: u32) -> XCategoryLabels {
    let width = label_width(names);
    let per_category = axis_px / u32::try_from(names.len().max(1)).unwrap_or(u32::MAX);
    if width <= per_category {
        XCategoryLabels { area: 60, rotated: false }
    } else {
        XCategoryLabels { area: width + 45, rotated: true }
    }
}

/// Draws `names` reading bottom-up (as matplotlib's `rotation=90`), each ending just below its
/// anchor, the pixel position of its tick on the x axis.
pub(crate) fn draw_rotated_labels(
    root: &Root<'_>,
    names: &[String],
    anchors: impl Iterator<Item = (i32, i32)>,
) -> Result<(), DrawError> {
    let style = font(LABEL_SIZE).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Right, VPos::Center));
    for (name, (x, y)) in names.iter().zip(anchors) {
        root.draw(&Text::new(name.clone(), (x, y + 10), style.clone()))?;
    }
    Ok(())
}

/// `lo..hi` widened by `pad` (a fraction of the span) on each side, and made non-empty when all
/// values are equal.
pub(crate) fn padded_range(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    let span = hi - lo;
    if span > 0.0 {
        (lo - span * pad, hi + span * pad)
    } else {
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - half, hi + half)
    }
}

/// A categorical axis: category `i` occupies `i..i + 1` and its tick (and label) sits at the
/// centre, `i + 0.5`. Plain `f64` coordinates keep bar and cell geometry simple; plotters'
/// `SegmentedCoord` would also do this but rounds segment widths to whole pixels, and
/// `with_key_points` on an `f64` range loses the label formatter.
pub(crate) struct CategoryAxis {
    inner: RangedCoordf64,
    n: usize,
}

impl CategoryAxis {
    pub(crate) fn new(n: usize) -> Self {
        Self { inner: (0.0..n as f64).into(), n }
    }
}

impl Ranged for CategoryAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Only "bold" points (which carry labels); light grid lines between categories are noise.
        if hint.weight().allow_light_points() { Vec::new() } else { (0..self.n).map(|i| i as f64 + 0.5).collect() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// A compact number for tick labels and annotations: integers as such, others with 3
/// significant digits and no trailing zeros (`2.5`, not `2.50`).
pub(crate) fn short_number(v: f64) -> String {
    if v == 0.0 {
        // Also catches -0.0, which would print as "-0".
        "0".to_owned()
    } else if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 4);
        let s = format!("{v:.*}", decimals as usize);
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
    }
}

/// White (few) to dark blue (many), like matplotlib's "Blues" map used by sklearn's
/// `ConfusionMatrixDisplay`.
pub(crate) fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(lerp(247, 8), lerp(251, 48), lerp(255, 107))
}

/// Heat map of a confusion matrix (`matrix[true][predicted]`) with the count in every cell.
/// True classes run top to bottom, predicted classes left to right, as in sklearn's
/// `ConfusionMatrixDisplay`.
///
/// # Errors
/// If `matrix` is not `class_names.len()` square, or drawing/writing fails.
pub fn confusion_matrix_png<S: AsRef<str>>(
    path: &Path,
    matrix: &[Vec<usize>],
    class_names: &[S],
) -> Result<(), PlotError> {
    let n = class_names.len();
    if n == 0 || matrix.len() != n || matrix.iter().any(|row| row.len() != n) {
        return Err(input_error(path, InputProblem::MatrixShape { n_classes: n }));
    }
    let names: Vec<String> = class_names.iter().map(|s| truncate_label(s.as_ref(), 24)).collect();
    let cells: Vec<Vec<f64>> = matrix.iter().map(|row| row.iter().map(|&c| c as f64).collect()).collect();
    let max = matrix.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    // Square-ish cells; the canvas grows by the room the class names need on the left and
    // (when rotated) at the bottom.
    let y_label_area = label_width(&names).clamp(60, 300);
    let x_labels = x_category_labels(&names, 600);
    let cell_px = 600 / n as u32;
    let layout = HeatLayout {
        size: (y_label_area + 700, x_labels.area + 640),
        y_label_area,
        x_labels,
        text_size: (cell_px / 3).clamp(11, 28),
    };
    let labels = Labels { title: "Confusion matrix", x: "Predicted class", y: "True class" };
    draw_heatmap(path, labels, &names, &names, &cells, max, &|v| format!("{v:.0}"), &layout)
}

/// ROC curve with the chance diagonal; the AUC is in the title and the legend. Non-finite points
/// (an undefined curve) are skipped.
///
/// # Errors
/// If `fpr` and `tpr` differ in length, or drawing/writing fails.
pub fn roc_curve_png(path: &Path, fpr: &[f64], tpr: &[f64], auc: f64) -> Result<(), PlotError> {
    check_lengths(path, ("fpr", fpr.len()), ("tpr", tpr.len()))?;
    let points: Vec<(f64, f64)> =
        fpr.iter().zip(tpr).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(&x, &y)| (x, y)).collect();
    if points.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }

    render(path, SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("ROC curve (AUC = {auc:.4})"), font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(65)
            .build_cartesian_2d(-0.01..1.01, -0.01..1.01)?;
        chart
            .configure_mesh()
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_labels(11)
            .y_labels(11)
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;

        let chance = GREY.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], 8, 6, chance))?
            .label("Chance (AUC = 0.5)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], chance));
        let curve = BAR_BLUE.stroke_width(3);
        chart
            .draw_series(LineSeries::new(points, curve))?
            .label(format!("ROC (AUC = {auc:.4})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], curve));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .margin(15)
            .label_font(font(LABEL_SIZE + 1))
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()?;
        Ok(())
    })
}

/// Horizontal bars of the `top_n` features with the largest absolute values (coefficients or
/// importances), largest on top; negative values extend left in red. Non-finite values are
/// skipped.
///
/// # Errors
/// If `names` and `values` differ in length, no value is finite, or drawing/writing fails.
pub fn feature_importance_png<S: AsRef<str>>(
    path: &Path,
    names: &[S],
    values: &[f64],
    top_n: usize,
    title: &str,
) -> Result<(), PlotError> {
    check_lengths(path, ("names", names.len()), ("values", values.len()))?;
    let mut ranked: Vec<(String, f64)> = names
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(n, &v)| (truncate_label(n.as_ref(), 40), v))
        .collect();
    // Stable sort: equal magnitudes keep the caller's (feature) order.
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    ranked.truncate(top_n.max(1));
    if ranked.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }
    let n = ranked.len();
    let lo = ranked.iter().map(|r| r.1).fold(0.0_f64, f64::min);
    let hi = ranked.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    // Extra room on the side(s) where bars end, for the value annotations.
    let (x_lo, x_hi) = padded_range(lo, hi, 0.12);
    let (x_lo, x_hi) = (if lo < 0.0 { x_lo } else { 0.0 }, if hi > 0.0 { x_hi } else { 0.0 });
    let labels: Vec<&str> = ranked.iter().map(|r| r.0.as_str()).collect();
    let y_label_area = label_width(&labels).clamp(60, 400);
    let height = (100 + 28 * n as u32).max(400);

    render(path, (y_label_area + 640, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d(x_lo..x_hi, CategoryAxis::new(n))?;
        // Rank 0 (largest) at the top.
        let y_label = |v: &f64| {
            let rank = n.checked_sub(1 + v.floor() as usize);
            rank.and_then(|r| ranked.get(r)).map(|r| r.0.clone()).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .label_style(font(LABEL_SIZE))
            .y_label_formatter(&y_label)
            .draw()?;

        for (rank, (_, v)) in ranked.iter().enumerate() {
            let y = (n - 1 - rank) as f64;
            let color = if *v < 0.0 { ACCENT_RED } else { BAR_BLUE };
            chart.draw_series(std::iter::once(Rectangle::new([(0.0, y + 0.15), (*v, y + 0.85)], color.filled())))?;
            let anchor = if *v < 0.0 { HPos::Right } else { HPos::Left };
            let style = font(LABEL_SIZE - 2).pos(Pos::new(anchor, VPos::Center));
            let gap = (x_hi - x_lo) * 0.01 * v.signum();
            chart.draw_series(std::iter::once(Text::new(short_number(*v), (*v + gap, y + 0.5), style)))?;
        }
        // The zero line, so positive and negative bars share a visible baseline.
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, n as f64)], BLACK.stroke_width(1))))?;
        Ok(())
    })
}

/// Bar chart of how many samples each class has, with the count above each bar.
///
/// # Errors
/// If `class_names` and `counts` differ in length or are empty, or drawing/writing fails.
pub fn class_balance_png<S: AsRef<str>>(path: &Path, class_names: &[S], counts: &[usize]) -> Result<(), PlotError> {
    check_lengths(path, ("class_names", class_names.len()), ("counts", counts.len()))?;
    let n = counts.len();
    if n == 0 {
        return Err(input_error(path, InputProblem::NoData));
    }
    let names: Vec<String> = class_names.iter().map(|s| truncate_label(s.as_ref(), 24)).collect();
    let x_labels = x_category_labels(&names, 680);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let total: usize = counts.iter().sum();

    render(path, (SIZE.0, SIZE.1 + x_labels.area - 60), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Class balance ({total} samples)"), font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(x_labels.area)
            .y_label_area_size(75)
            .build_cartesian_2d(CategoryAxis::new(n), 0.0..max * 1.12)?;
        let x_label = |v: &f64| match names.get(v.floor() as usize) {
            Some(name) if !x_labels.rotated => name.clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc("Class")
            .y_desc("Samples")
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        if x_labels.rotated {
            let ticks = (0..n).map(|i| chart.backend_coord(&(i as f64 + 0.5, 0.0)));
            draw_rotated_labels(root, &names, ticks)?;
        }
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x = i as f64;
            Rectangle::new([(x + 0.15, 0.0), (x + 0.85, c as f64)], BAR_BLUE.filled())
        }))?;
        let above = max * 0.015;
        let text_size = if n > 12 { LABEL_SIZE - 4 } else { LABEL_SIZE };
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let style = font(text_size).pos(Pos::new(HPos::Center, VPos::Bottom));
            Text::new(c.to_string(), (i as f64 + 0.5, c as f64 + above), style)
        }))?;
        Ok(())
    })
}

/// Histogram of a numeric column in 30 equal-width bins; NaN and infinite values are ignored
/// (their number is shown in the title).
///
/// # Errors
/// If no value is finite, or drawing/writing fails.
pub fn histogram_png(path: &Path, column_name: &str, values: &[f64]) -> Result<(), PlotError> {
    const BINS: usize = 30;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A constant column still gets a visible (single) bar in a widened range.
    let (lo, hi) = if hi > lo { (lo, hi) } else { padded_range(lo, hi, 0.0) };
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0_usize; BINS];
    for v in &finite {
        // The maximum belongs to the last bin (numpy's closed last interval).
        let bin = (((v - lo) / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let ignored = values.len() - finite.len();
    let name = truncate_label(column_name, 40);
    let title = if ignored > 0 {
        format!("Distribution of {name} ({ignored} missing ignored)")
    } else {
        format!("Distribution of {name}")
    };

    render(path, SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(lo..hi, 0.0..max * 1.08)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc(name.as_str())
            .y_desc("Count")
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = lo + width * i as f64;
            Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], BAR_BLUE.filled())
        }))?;
        // White outlines separate adjacent bars.
        chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = lo + width * i as f64;
            Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], WHITE.stroke_width(1))
        }))?;
        Ok(())
    })
}

/// Finite `(x, y)` pairs, thinned by a regular stride to at most [`MAX_SCATTER_POINTS`].
fn scatter_points(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    let stride = xs.len().div_ceil(MAX_SCATTER_POINTS).max(1);
    xs.iter().zip(ys).step_by(stride).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(&x, &y)| (x, y)).collect()
}

pub(crate) fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// Regression diagnostic: predicted against actual values, with the `y = x` line of perfect
/// predictions and R² in the title.
///
/// # Errors
/// If the lengths differ, no pair is finite, or drawing/writing fails.
pub fn predicted_vs_actual_png(path: &Path, y_true: &[f64], y_pred: &[f64]) -> Result<(), PlotError> {
    check_lengths(path, ("y_true", y_true.len()), ("y_pred", y_pred.len()))?;
    let points = scatter_points(y_true, y_pred);
    if points.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }
    // One range for both axes, so the diagonal is at 45 degrees.
    let (lo, hi) = bounds(points.iter().flat_map(|&(x, y)| [x, y]));
    let (lo, hi) = padded_range(lo, hi, 0.04);
    let r2 = crate::metrics::r2(y_true, y_pred);

    render(path, (700, 700), |root| {
        let mut chart = scatter(
            root,
            &format!("Predicted vs actual (R² = {r2:.4})"),
            (lo..hi, lo..hi),
            ("Actual", "Predicted"),
            &points,
        )?;
        let ideal = ACCENT_RED.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![(lo, lo), (hi, hi)], 10, 6, ideal))?
            .label("Perfect prediction (y = x)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ideal));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(15)
            .label_font(font(LABEL_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()?;
        Ok(())
    })
}

/// Regression diagnostic: residuals (actual − predicted) against the prediction, with the zero
/// line. Structure in the cloud (a funnel, a curve) shows what the model misses.
///
/// # Errors
/// If the lengths differ, no pair is finite, or drawing/writing fails.
pub fn residuals_png(path: &Path, y_true: &[f64], y_pred: &[f64]) -> Result<(), PlotError> {
    check_lengths(path, ("y_true", y_true.len()), ("y_pred", y_pred.len()))?;
    let residuals: Vec<f64> = y_true.iter().zip(y_pred).map(|(t, p)| t - p).collect();
    let points = scatter_points(y_pred, &residuals);
    if points.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }
    let (x_lo, x_hi) = bounds(points.iter().map(|p| p.0));
    let (x_lo, x_hi) = padded_range(x_lo, x_hi, 0.04);
    // Symmetric around zero, so over- and under-prediction are visually comparable.
    let r_max = points.iter().map(|p| p.1.abs()).fold(0.0_f64, f64::max);
    let (_, r_max) = padded_range(-r_max, r_max, 0.05);

    render(path, SIZE, |root| {
        let mut chart =
            scatter(root, "Residuals", (x_lo..x_hi, -r_max..r_max), ("Predicted", "Actual − predicted"), &points)?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x_lo, 0.0), (x_hi, 0.0)],
            ACCENT_RED.stroke_width(2),
        )))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

    fn assert_png(path: &Path) {
        let bytes = fs::read(path).unwrap();
        assert!(bytes.len() > 1000, "{} is only {} bytes", path.display(), bytes.len());
        assert_eq!(&bytes[..8], PNG_MAGIC, "{} is not a PNG", path.display());
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// A deterministic pseudo-random sequence in [0, 1) without pulling in an RNG.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1_u64 << 53) as f64
            })
            .collect()
    }

    /// Draws one of every plot into `dir`.
    fn render_all(dir: &Path) {
        let classes = ["ham", "spam", "a rather long class name"];
        let matrix = vec![vec![950, 12, 3], vec![40, 310, 0], vec![5, 0, 77]];
        confusion_matrix_png(&dir.join("confusion_matrix.png"), &matrix, &classes).unwrap();

        let y: Vec<bool> = noise(400, 1).iter().map(|&u| u < 0.4).collect();
        let scores: Vec<f64> =
            y.iter().zip(noise(400, 2)).map(|(&t, u)| if t { 0.35 + 0.65 * u } else { 0.7 * u }).collect();
        let (fpr, tpr, _) = crate::metrics::roc_curve(&y, &scores);
        let auc = crate::metrics::roc_auc(&y, &scores);
        roc_curve_png(&dir.join("roc_curve.png"), &fpr, &tpr, auc).unwrap();

        let names: Vec<String> = (0..40)
            .map(|i| {
                if i == 5 { "tfidf__a_very_long_feature_name_that_goes_on".to_owned() } else { format!("feature_{i}") }
            })
            .collect();
        let values: Vec<f64> = noise(40, 3).iter().map(|u| (u - 0.4) * 3.0).collect();
        feature_importance_png(&dir.join("feature_importance.png"), &names, &values, 20, "Top 20 coefficients")
            .unwrap();

        class_balance_png(&dir.join("class_balance.png"), &classes, &[965, 350, 82]).unwrap();

        // Many classes: labels must shrink rather than overlap.
        let many: Vec<String> = (0..14).map(|i| format!("category_{i}")).collect();
        let counts: Vec<usize> = (0..14).map(|i| 40 + 37 * i % 300).collect();
        class_balance_png(&dir.join("class_balance_14.png"), &many, &counts).unwrap();
        let big: Vec<Vec<usize>> =
            (0..14).map(|i| (0..14).map(|j| if i == j { 500 + 10 * i } else { (i * j) % 7 }).collect()).collect();
        confusion_matrix_png(&dir.join("confusion_matrix_14.png"), &big, &many).unwrap();

        let mut hist: Vec<f64> = noise(2000, 4).chunks(4).map(|c| c.iter().sum::<f64>() * 10.0 + 20.0).collect();
        hist.extend([f64::NAN, f64::NAN, f64::INFINITY]);
        histogram_png(&dir.join(format!("hist_{}.png", safe_file_stem("age (years)"))), "age (years)", &hist).unwrap();

        let y_true: Vec<f64> = noise(300, 5).iter().map(|u| u * 100.0).collect();
        let y_pred: Vec<f64> = y_true.iter().zip(noise(300, 6)).map(|(t, u)| t + (u - 0.5) * 20.0).collect();
        predicted_vs_actual_png(&dir.join("predicted_vs_actual.png"), &y_true, &y_pred).unwrap();
        residuals_png(&dir.join("residuals.png"), &y_true, &y_pred).unwrap();
    }

    #[test]
    fn every_plot_writes_a_png() {
        let dir = tempfile::TempDir::new().unwrap();
        render_all(dir.path());
        for name in [
            "confusion_matrix.png",
            "roc_curve.png",
            "feature_importance.png",
            "class_balance.png",
            "class_balance_14.png",
            "confusion_matrix_14.png",
            "hist_age__years_.png",
            "predicted_vs_actual.png",
            "residuals.png",
        ] {
            assert_png(&dir.path().join(name));
        }
    }

    /// Writes the gallery to `$TMPDIR/kiln-plots` for a human to look at:
    /// `cargo test -p kiln-train --lib plots::tests::gallery -- --ignored`.
    #[test]
    #[ignore = "writes outside the test's temporary directory; for eyeballing the plots"]
    fn gallery() {
        let dir = std::env::temp_dir().join("kiln-plots");
        fs::create_dir_all(&dir).unwrap();
        render_all(&dir);
    }

    #[test]
    fn degenerate_inputs() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("x.png");
        // A constant column and a single class still plot.
        histogram_png(&p, "c", &[5.0; 10]).unwrap();
        assert_png(&p);
        confusion_matrix_png(&p, &[vec![3]], &["only"]).unwrap();
        feature_importance_png(&p, &["a", "b"], &[0.0, 0.0], 20, "zeros").unwrap();
        predicted_vs_actual_png(&p, &[1.0, 1.0], &[1.0, 1.0]).unwrap();
        assert_png(&p);

        let err = histogram_png(&p, "c", &[f64::NAN]).unwrap_err();
        assert!(matches!(err, PlotError::Input { problem: InputProblem::NoData, .. }));
        assert!(err.to_string().contains("x.png"), "{err}");
        let err = confusion_matrix_png(&p, &[vec![1, 2]], &["a", "b"]).unwrap_err();
        assert!(matches!(err, PlotError::Input { problem: InputProblem::MatrixShape { .. }, .. }));
        let err = roc_curve_png(&p, &[0.0], &[0.0, 1.0], 0.5).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot plot `{}`: fpr has 1 values but tpr has 2", p.display()));
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("no such dir").join("x.png");
        let err = class_balance_png(&p, &["a"], &[1]).unwrap_err();
        assert!(err.to_string().contains("no such dir"), "{err}");
        assert!(!p.exists());
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(-0.0), "0");
        assert_eq!(short_number(42.0), "42");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(0.8471), "0.847");
        assert_eq!(short_number(-1.2), "-1.2");
        assert_eq!(short_number(123.456), "123");
        assert_eq!(short_number(12_345.6), "1.23e4");
    }

    #[test]
    fn safe_file_stem_stays_in_directory() {
        assert_eq!(safe_file_stem("age"), "age");
        assert_eq!(safe_file_stem("price (€)"), "price____");
        assert_eq!(safe_file_stem("../../etc/passwd"), "______etc_passwd");
        assert_eq!(safe_file_stem("a-b_C9"), "a-b_C9");
        assert_eq!(safe_file_stem(""), "_");
        assert_eq!(safe_file_stem(&"x".repeat(500)).len(), 100);
    }
}
