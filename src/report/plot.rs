//! Line and scatter plots as PNG (plotters on an in-memory bitmap, then
//! encoded and written atomically), with an embedded font so text renders
//! on machines without fonts installed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::write_atomic;

const W: u32 = 800;
const H: u32 = 500;
static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // A failure here only costs text in plots.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::data(path, format!("cannot draw plot: {e}"))
}

/// Encode an RGB buffer of `w x h` as PNG at `path`.
fn save_rgb(path: &Path, (w, h): (u32, u32), buf: Vec<u8>) -> Result<()> {
    let img =
        image::RgbImage::from_raw(w, h, buf).ok_or_else(|| plot_err(path, "bad buffer size"))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| plot_err(path, e))?;
    write_atomic(path, &png)
}

/// Palette for up to ten series / digit classes.
pub fn color(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % 10];
    RGBColor(r, g, b)
}

fn range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One chart on a white `W x H` canvas: title, axes with labels, whatever
/// `series` draws (each with a legend entry), the legend; saved as PNG.
fn chart(
    path: &Path,
    title: &str,
    labels: (&str, &str),
    xr: (f64, f64),
    yr: (f64, f64),
    series: impl FnOnce(&mut Chart) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    let mut buf = vec![255u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(labels.0)
            .y_desc(labels.1)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        series(&mut chart).map_err(|e| plot_err(path, e))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    save_rgb(path, (W, H), buf)
}

/// Line plot of named series of `(x, y)` points.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    let xr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
    let yr = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    chart(path, title, (x_label, y_label), xr, yr, |c| {
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = color(i);
            c.draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                });
        }
        Ok(())
    })
}

/// Scatter of 2-D points coloured by class (0..=9), with a legend.
pub fn scatter_by_class(
    path: &Path,
    title: &str,
    points: &[(f32, f32)],
    classes: &[u8],
) -> Result<()> {
    let xr = range(points.iter().map(|p| p.0 as f64));
    let yr = range(points.iter().map(|p| p.1 as f64));
    chart(path, title, ("z[0]", "z[1]"), xr, yr, |c| {
        for class in 0..10u8 {
            let col = color(class as usize);
            let pts: Vec<(f64, f64)> = points
                .iter()
                .zip(classes)
                .filter(|(_, &k)| k == class)
                .map(|(p, _)| (p.0 as f64, p.1 as f64))
                .collect();
            c.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, col.filled())))
                .map_err(|e| e.to_string())?
                .label(class.to_string())
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, col.filled()));
        }
        Ok(())
    })
}

/// A mean curve and its spread: `(x, mean, std)` points.
pub struct Band {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// One panel of [`band_panels`]: its x axis and its bands.
pub struct Panel {
    pub x_label: String,
    pub bands: Vec<Band>,
}

/// Side of one panel, in pixels.
const PANEL: u32 = 420;

/// Panels side by side under one title, each band drawn as its mean line
/// over a shaded mean ± std area (no area where every std is 0).
pub fn band_panels(path: &Path, title: &str, y_label: &str, panels: &[Panel]) -> Result<()> {
    register_font();
    let (w, h) = (PANEL * panels.len().max(1) as u32, PANEL);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| plot_err(path, e))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            let pts = || panel.bands.iter().flat_map(|b| b.points.iter());
            let xr = range(pts().map(|p| p.0));
            let yr = range(pts().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
                .map_err(|e| plot_err(path, e))?;
            chart
                .configure_mesh()
                .x_desc(panel.x_label.as_str())
                .y_desc(y_label)
                .x_labels(5)
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(|e| plot_err(path, e))?;
            for (i, band) in panel.bands.iter().enumerate() {
                let col = color(i);
                if band.points.iter().any(|p| p.2 > 0.0) {
                    let upper = band.points.iter().map(|p| (p.0, p.1 + p.2));
                    let lower = band.points.iter().rev().map(|p| (p.0, p.1 - p.2));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            upper.chain(lower).collect::<Vec<_>>(),
                            col.mix(0.2).filled(),
                        )))
                        .map_err(|e| plot_err(path, e))?;
                }
                chart
                    .draw_series(LineSeries::new(
                        band.points.iter().map(|p| (p.0, p.1)),
                        col.stroke_width(2),
                    ))
                    .map_err(|e| plot_err(path, e))?
                    .label(band.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(|e| plot_err(path, e))?;
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    save_rgb(path, (w, h), buf)
}
