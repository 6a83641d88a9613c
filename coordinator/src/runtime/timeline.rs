//! The worker-timeline SVG: one line per task, a colored segment per phase
//! (the waiting part lighter), failed and abandoned attempts in grey — the
//! shape of the ExCamera paper's worker timeline figure.

use std::path::Path;

use plotters::prelude::*;

use super::error::{DrawError, WriteError};
use super::report::{PhaseTiming, Report};
use super::scheduler::Outcome;

const PHASE_COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Writes `report`'s JSON to `path` and its timeline to `path` with
/// `.svg`.
///
/// # Errors
/// I/O or drawing errors.
pub fn write_with_svg(report: &Report, path: &Path) -> Result<(), WriteError> {
    report.write_json(path)?;
    let svg = path.with_extension("svg");
    draw(report, &svg).map_err(|source| WriteError::Draw { path: svg, source })
}

/// Draws `report`'s timeline into `path`.
///
/// # Errors
/// Drawing or I/O errors, as text.
pub fn draw(report: &Report, path: &Path) -> Result<(), DrawError> {
    let rows = report.tasks.len().max(1);
    let end = report
        .tasks
        .iter()
        .flat_map(|t| t.attempts.iter().map(|a| a.end_s))
        .fold(report.wall_seconds, f64::max)
        .max(1e-3);
    let height = (rows as u32 * 14 + 90).clamp(200, 4000);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "job {} - {} chunks, {} frames",
                &report.job[..report.job.len().min(12)],
                report.chunks,
                report.frames
            ),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..end * 1.02, 0f64..rows as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since job start")
        .y_desc("chunk")
        .disable_y_mesh()
        .draw()
        .map_err(err)?;
    for t in &report.tasks {
        let y = t.chunk as f64;
        let n = t.attempts.len().max(1) as f64;
        for (k, a) in t.attempts.iter().enumerate() {
            // Attempts of one chunk share its row, stacked.
            let (y0, y1) = (
                y + 0.1 + 0.8 * k as f64 / n,
                y + 0.1 + 0.8 * (k + 1) as f64 / n,
            );
            let lost = a.outcome != Outcome::Ok;
            let grey = RGBColor(190, 190, 190);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a.start_s, y0), (a.end_s.max(a.start_s), y1)],
                    if lost {
                        grey.filled()
                    } else {
                        RGBColor(230, 230, 230).filled()
                    },
                )))
                .map_err(err)?;
            for p in &a.phases {
                draw_phase(&mut chart, p, y0, y1, lost)?;
            }
        }
    }
    for (i, c) in PHASE_COLORS.iter().enumerate() {
        let name = ["phase 1 encode", "phase 2 given state", "phase 3 rebase"][i];
        let c = *c;
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn draw_phase<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    p: &PhaseTiming,
    y0: f64,
    y1: f64,
    lost: bool,
) -> Result<(), DrawError> {
    let c = PHASE_COLORS[p.phase.index()];
    let c = if lost { c.mix(0.35) } else { c.mix(1.0) };
    let wait_end = p.start_s + p.wait_seconds;
    chart
        .draw_series([
            Rectangle::new([(p.start_s, y0), (wait_end, y1)], c.mix(0.3).filled()),
            Rectangle::new([(wait_end, y0), (p.start_s + p.seconds, y1)], c.filled()),
        ])
        .map_err(err)?;
    Ok(())
}

fn err(e: impl std::fmt::Display) -> DrawError {
    DrawError(e.to_string())
}
