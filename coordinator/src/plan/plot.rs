//! The SVG of a sweep: every point, the frontier joined by a line.

use std::path::Path;

use plotters::prelude::*;

use super::sweep::SweepPoint;

/// Why a sweep cannot be plotted.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No points.
    #[error("nothing to plot")]
    Empty,
    /// The plotting library's error, as text (its type is generic over
    /// the drawing backend).
    #[error("{0}")]
    Draw(String),
    /// The SVG cannot be written.
    #[error("cannot write {}: {message}", .path.display())]
    Write {
        /// The SVG's path.
        path: std::path::PathBuf,
        /// The plotting library's message.
        message: String,
    },
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Draws `points` (wall time against cost) to an SVG file.
///
/// # Errors
/// No points, or the file cannot be written.
pub fn plot_sweep(points: &[SweepPoint], title: &str, path: &Path) -> Result<(), PlotError> {
    if points.is_empty() {
        return Err(PlotError::Empty);
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64);
    for p in points {
        x0 = x0.min(p.wall_s);
        x1 = x1.max(p.wall_s);
        y0 = y0.min(p.cost_usd);
        y1 = y1.max(p.cost_usd);
    }
    let pad = |a: f64, b: f64| ((b - a) * 0.05).max(b.abs() * 0.01).max(1e-9);
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((x0 - px).max(0.0)..x1 + px, (y0 - py).max(0.0)..y1 + py)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("predicted wall time (s)")
        .y_desc("predicted cost (USD)")
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| !p.frontier)
                .map(|p| Circle::new((p.wall_s, p.cost_usd), 3, RGBColor(150, 150, 150).filled())),
        )
        .map_err(draw_err)?
        .label("grid point")
        .legend(|(x, y)| Circle::new((x, y), 3, RGBColor(150, 150, 150).filled()));
    let mut front: Vec<&SweepPoint> = points.iter().filter(|p| p.frontier).collect();
    front.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|p| (p.wall_s, p.cost_usd)),
            RED.stroke_width(2),
        ))
        .map_err(draw_err)?
        .label("time/cost frontier")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(front.iter().map(|p| {
            EmptyElement::at((p.wall_s, p.cost_usd))
                + Circle::new((0, 0), 4, RED.filled())
                + Text::new(
                    format!("[{},{}] {}w", p.chunk_frames, p.group_chunks, p.workers),
                    (6, -12),
                    ("sans-serif", 11),
                )
        }))
        .map_err(draw_err)?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(|e| PlotError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(())
}
