//! General charts for pipeline plots (`kiln plots show`, DVC's templates): lines, points, a
//! heat map of a matrix and horizontal bars, drawn with the same font, colours and atomic
//! writes as the training plots in [`crate::plots`].
//!
//! Each function takes plain data (the pipeline crate decides what a template shows) and
//! returns the pixel size of the PNG it wrote.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plots::{
    AXIS_DESC_SIZE, BAR_BLUE, CategoryAxis, DrawError, GREY, InputProblem, LABEL_SIZE, MAX_SCATTER_POINTS, PlotError,
    Root, SIZE, TITLE_SIZE, XCategoryLabels, blues, bounds, centered, draw_rotated_labels, font, input_error,
    label_width, padded_range, render, short_number, truncate_label, x_category_labels,
};

/// matplotlib's "tab10", the series colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A heat map draws at most this many categories on an axis: beyond it the cells are
/// smaller than their numbers (a confusion plot of a continuous column, say).
const MAX_CATEGORIES: usize = 200;

/// A chart's title and axis titles.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// One named series of (x, y) points.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Shared frame of the line and point charts: the axes fitted to every finite point.
fn xy_chart(
    path: &Path,
    labels: Labels<'_>,
    series: &[Series<'_>],
    draw: impl Fn(
        &mut ChartContext<
            '_,
            BitMapBackend<'_>,
            Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
        >,
    ) -> Result<(), DrawError>,
    pad_x: f64,
) -> Result<(u32, u32), PlotError> {
    let finite = || series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    if finite().next().is_none() {
        return Err(input_error(path, InputProblem::NoData));
    }
    let (x_lo, x_hi) = bounds(finite().map(|p| p.0));
    let (y_lo, y_hi) = bounds(finite().map(|p| p.1));
    let (x_lo, x_hi) = padded_range(x_lo, x_hi, pad_x);
    let (y_lo, y_hi) = padded_range(y_lo, y_hi, 0.05);
    let title = truncate_label(labels.title, 60);
    render(path, SIZE, |root: &Root<'_>| {
        let mut chart = ChartBuilder::on(root)
            .caption(title.as_str(), font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc(labels.x)
            .y_desc(labels.y)
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .draw()?;
        draw(&mut chart)?;
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .margin(15)
                .label_font(font(LABEL_SIZE))
                .background_style(WHITE.mix(0.9))
                .border_style(GREY)
                .draw()?;
        }
        Ok(())
    })?;
    Ok(SIZE)
}

/// A line per series, points joined in order of x (as vega-lite's line mark), with a legend
/// when there are several. Non-finite points are skipped.
///
/// # Errors
/// If no point is finite, or drawing/writing fails.
pub fn lines_png(path: &Path, labels: Labels<'_>, series: &[Series<'_>]) -> Result<(u32, u32), PlotError> {
    xy_chart(
        path,
        labels,
        series,
        |chart| {
            for (i, s) in series.iter().enumerate() {
                let mut pts: Vec<(f64, f64)> =
                    s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let style = color(i).stroke_width(2);
                let few = pts.len() <= 1;
                let dots = pts.clone();
                chart
                    .draw_series(LineSeries::new(pts, style))?
                    .label(truncate_label(s.name, 40))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
                if few {
                    chart.draw_series(dots.into_iter().map(|p| Circle::new(p, 4, color(i).filled())))?;
                }
            }
            Ok(())
        },
        0.0,
    )
}

/// A point per (x, y), a colour per series (at most 50,000 points a series, thinned evenly).
///
/// # Errors
/// If no point is finite, or drawing/writing fails.
pub fn points_png(path: &Path, labels: Labels<'_>, series: &[Series<'_>]) -> Result<(u32, u32), PlotError> {
    xy_chart(
        path,
        labels,
        series,
        |chart| {
            for (i, s) in series.iter().enumerate() {
                let stride = s.points.len().div_ceil(MAX_SCATTER_POINTS).max(1);
                let pts: Vec<(f64, f64)> =
                    s.points.iter().copied().step_by(stride).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
                let c = color(i);
                chart
                    .draw_series(pts.into_iter().map(move |p| Circle::new(p, 3, c.mix(0.6).filled())))?
                    .label(truncate_label(s.name, 40))
                    .legend(move |(x, y)| Circle::new((x + 12, y), 4, c.filled()));
            }
            Ok(())
        },
        0.04,
    )
}

/// A heat map of `cells[row][column]` with the value in each cell: `columns` left to right on
/// the x axis, `rows` top to bottom on the y axis (DVC's confusion templates: x actual, y
/// predicted). `fraction` prints values with two decimals, otherwise as counts.
///
/// # Errors
/// If the matrix does not match the names or is empty, has more than 200 rows or columns, or
/// drawing/writing fails.
pub fn heatmap_png(
    path: &Path,
    labels: Labels<'_>,
    columns: &[String],
    rows: &[String],
    cells: &[Vec<f64>],
    fraction: bool,
) -> Result<(u32, u32), PlotError> {
    let (nc, nr) = (columns.len(), rows.len());
    if nc == 0 || nr == 0 || cells.len() != nr || cells.iter().any(|r| r.len() != nc) {
        return Err(input_error(path, InputProblem::MatrixShape { n_classes: nc.max(nr) }));
    }
    let count = nc.max(nr);
    if count > MAX_CATEGORIES {
        return Err(input_error(path, InputProblem::TooManyCategories { count, max: MAX_CATEGORIES }));
    }
    let col_names: Vec<String> = columns.iter().map(|s| truncate_label(s, 24)).collect();
    let row_names: Vec<String> = rows.iter().map(|s| truncate_label(s, 24)).collect();
    let max = cells.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let y_label_area = label_width(&row_names).clamp(60, 260) + 30;
    let plot_w = SIZE.0.saturating_sub(y_label_area + 40);
    let x_labels = x_category_labels(&col_names, plot_w);
    let cell_px = (plot_w / nc.max(nr) as u32).max(1);
    let layout = HeatLayout {
        size: SIZE,
        y_label_area,
        x_labels: XCategoryLabels { area: x_labels.area.min(260), ..x_labels },
        text_size: (cell_px / 4).clamp(10, 26),
    };
    let title = truncate_label(labels.title, 60);
    let text = |v: f64| if fraction { format!("{v:.2}") } else { short_number(v) };
    draw_heatmap(path, Labels { title: &title, ..labels }, &col_names, &row_names, cells, max, &text, &layout)?;
    Ok(SIZE)
}

/// Where a heat map's parts go: its callers size the canvas differently (a confusion matrix grows
/// with its class names, a pipeline heat map has a fixed canvas), the drawing is the same.
pub(crate) struct HeatLayout {
    pub(crate) size: (u32, u32),
    pub(crate) y_label_area: u32,
    pub(crate) x_labels: XCategoryLabels,
    /// Cell text size, chosen from the cell size so it shrinks with the cell but stays readable.
    pub(crate) text_size: u32,
}

/// Draws `cells[row][column]` as blue cells with `text(value)` in each: `col_names` left to
/// right, `row_names` top to bottom; `max` (when positive) is the darkest colour. The names must
/// match the matrix (callers check).
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_heatmap(
    path: &Path,
    labels: Labels<'_>,
    col_names: &[String],
    row_names: &[String],
    cells: &[Vec<f64>],
    max: f64,
    text: &dyn Fn(f64) -> String,
    layout: &HeatLayout,
) -> Result<(), PlotError> {
    let (nc, nr) = (col_names.len(), row_names.len());
    let max = if max > 0.0 { max } else { 1.0 };
    let x_labels = &layout.x_labels;
    render(path, layout.size, |root: &Root<'_>| {
        let mut chart = ChartBuilder::on(root)
            .caption(labels.title, font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(x_labels.area)
            .y_label_area_size(layout.y_label_area)
            .build_cartesian_2d(CategoryAxis::new(nc), CategoryAxis::new(nr))?;
        // Row `i` is drawn at y = nr - 1 - i, so the first row is on top.
        let x_label = |v: &f64| match col_names.get(v.floor() as usize) {
            Some(name) if !x_labels.rotated => name.clone(),
            _ => String::new(),
        };
        let y_label = |v: &f64| {
            let row = nr.checked_sub(1 + v.floor() as usize);
            row.and_then(|r| row_names.get(r)).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .draw()?;
        if x_labels.rotated {
            let ticks = (0..nc).map(|i| chart.backend_coord(&(i as f64 + 0.5, 0.0)));
            draw_rotated_labels(root, col_names, ticks)?;
        }
        for (i, row) in cells.iter().enumerate() {
            let y0 = (nr - 1 - i) as f64;
            for (j, &v) in row.iter().enumerate() {
                let t = if v.is_finite() { v / max } else { 0.0 };
                let x0 = j as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, y0), (x0 + 1.0, y0 + 1.0)],
                    blues(t).filled(),
                )))?;
                // Dark cells get white text so the value stays legible.
                let text_color = if t > 0.5 { WHITE } else { BLACK };
                chart.draw_series(std::iter::once(Text::new(
                    text(v),
                    (x0 + 0.5, y0 + 0.5),
                    centered(layout.text_size, &text_color),
                )))?;
            }
        }
        // Thin borders make neighbouring pale cells distinguishable.
        chart.draw_series((0..nr).flat_map(|i| {
            (0..nc).map(move |j| {
                let (x, y) = (j as f64, i as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(1))
            })
        }))?;
        Ok(())
    })
}

/// Horizontal bars, the first on top, each labelled with its name on the y axis and its value
/// at its end; negative values extend left. The canvas grows with the number of bars.
///
/// # Errors
/// If there are no finite values, or drawing/writing fails.
pub fn hbars_png(path: &Path, labels: Labels<'_>, bars: &[(String, f64)]) -> Result<(u32, u32), PlotError> {
    let bars: Vec<(String, f64)> =
        bars.iter().filter(|(_, v)| v.is_finite()).map(|(n, v)| (truncate_label(n, 40), *v)).collect();
    if bars.is_empty() {
        return Err(input_error(path, InputProblem::NoData));
    }
    let n = bars.len();
    let lo = bars.iter().map(|b| b.1).fold(0.0_f64, f64::min);
    let hi = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let (x_lo, x_hi) = padded_range(lo, hi, 0.12);
    let (x_lo, x_hi) = (if lo < 0.0 { x_lo } else { 0.0 }, if hi > 0.0 { x_hi } else { 0.0 });
    let names: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
    let y_label_area = label_width(&names).clamp(60, 360) + 30;
    let height = u32::try_from(n).unwrap_or(u32::MAX).saturating_mul(26).saturating_add(140).clamp(SIZE.1, 8000);
    let size = (SIZE.0.max(y_label_area + 480), height);
    let title = truncate_label(labels.title, 60);
    render(path, size, |root: &Root<'_>| {
        let mut chart = ChartBuilder::on(root)
            .caption(title.as_str(), font(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d(x_lo..x_hi, CategoryAxis::new(n))?;
        let y_label = |v: &f64| {
            let i = n.checked_sub(1 + v.floor() as usize);
            i.and_then(|i| bars.get(i)).map(|b| b.0.clone()).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_desc(labels.x)
            .y_desc(labels.y)
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .label_style(font(LABEL_SIZE))
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&y_label)
            .draw()?;
        let text_size = if n > 40 { LABEL_SIZE - 6 } else { LABEL_SIZE - 2 };
        for (i, (_, v)) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            chart.draw_series(std::iter::once(Rectangle::new([(0.0, y + 0.15), (*v, y + 0.85)], BAR_BLUE.filled())))?;
            let anchor = if *v < 0.0 { HPos::Right } else { HPos::Left };
            let gap = (x_hi - x_lo) * 0.01 * if *v < 0.0 { -1.0 } else { 1.0 };
            let style = font(text_size).pos(Pos::new(anchor, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(short_number(*v), (*v + gap, y + 0.5), style)))?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, n as f64)], BLACK.stroke_width(1))))?;
        Ok(())
    })?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (width, height) from a PNG's IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&b[12..16], b"IHDR");
        (u32::from_be_bytes(b[16..20].try_into().unwrap()), u32::from_be_bytes(b[20..24].try_into().unwrap()))
    }

    fn render_all(dir: &Path) {
        let l = Labels { title: "loss", x: "epoch", y: "loss" };
        let a: Vec<(f64, f64)> = (0..20).map(|i| (f64::from(i), 1.0 / f64::from(i + 1))).collect();
        let b: Vec<(f64, f64)> = (0..20).map(|i| (f64::from(i), 0.5 + f64::from(i) / 50.0)).collect();
        let two = [Series { name: "loss", points: &a }, Series { name: "acc", points: &b }];
        assert_eq!(lines_png(&dir.join("lines.png"), l, &two).unwrap(), SIZE);
        assert_eq!(points_png(&dir.join("points.png"), l, &two).unwrap(), SIZE);
        // One point, and non-finite ones, still draw.
        lines_png(&dir.join("one.png"), l, &[Series { name: "x", points: &[(1.0, 2.0), (f64::NAN, 1.0)] }]).unwrap();
        let cats: Vec<String> = ["ham", "spam"].map(String::from).to_vec();
        heatmap_png(
            &dir.join("confusion.png"),
            Labels { title: "confusion", x: "actual", y: "predicted" },
            &cats,
            &cats,
            &[vec![40.0, 3.0], vec![5.0, 12.0]],
            false,
        )
        .unwrap();
        heatmap_png(&dir.join("normalized.png"), l, &cats, &cats[..1], &[vec![0.25, 0.75]], true).unwrap();
        let bars: Vec<(String, f64)> = (0..30).map(|i| (format!("feature_{i}"), f64::from(i) - 10.0)).collect();
        let size = hbars_png(&dir.join("bars.png"), l, &bars).unwrap();
        assert_eq!(png_size(&dir.join("bars.png")), size);
    }

    #[test]
    fn every_chart_writes_a_png_of_its_size() {
        let dir = tempfile::TempDir::new().unwrap();
        render_all(dir.path());
        for name in ["lines.png", "points.png", "one.png", "confusion.png", "normalized.png"] {
            assert_eq!(png_size(&dir.path().join(name)), SIZE, "{name}");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// `cargo test -p kiln-train --lib charts::tests::gallery -- --ignored` writes the charts
    /// to `$TMPDIR/kiln-charts` for a human to look at.
    #[test]
    #[ignore = "writes outside the test's temporary directory; for eyeballing the charts"]
    fn gallery() {
        let dir = std::env::temp_dir().join("kiln-charts");
        std::fs::create_dir_all(&dir).unwrap();
        render_all(&dir);
    }

    #[test]
    fn bad_input_is_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("x.png");
        let l = Labels { title: "t", x: "x", y: "y" };
        let e = lines_png(&p, l, &[Series { name: "s", points: &[(f64::NAN, 1.0)] }]).unwrap_err();
        assert!(matches!(e, PlotError::Input { problem: InputProblem::NoData, .. }), "{e}");
        assert!(hbars_png(&p, l, &[]).is_err());
        assert!(heatmap_png(&p, l, &["a".into()], &["b".into()], &[vec![1.0, 2.0]], false).is_err());
        let many: Vec<String> = (0..201).map(|i| i.to_string()).collect();
        let e = heatmap_png(&p, l, &many, &["b".into()], &[vec![1.0; 201]], false).unwrap_err();
        assert!(e.to_string().ends_with("201 categories on one axis; at most 200 can be drawn"), "{e}");
        assert!(!p.exists());
    }
}
