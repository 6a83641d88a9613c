//! `excam plan --sweep`: a grid of N, x and worker counts, and the
//! time/cost frontier among them.

use serde::Serialize;

use super::{plan_job_with, Calibration, CloudParams, JobShape, PlanError, PlanOptions};

/// One point of the grid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Workers.
    pub workers: usize,
    /// Expected wall time, seconds.
    pub wall_s: f64,
    /// Expected cost, USD.
    pub cost_usd: f64,
    /// Whether no other point is both faster and cheaper.
    pub frontier: bool,
}

/// The default grid of N.
pub const CHUNK_FRAMES: [usize; 7] = [2, 4, 6, 8, 12, 16, 24];
/// The default grid of x.
pub const GROUP_CHUNKS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// Plans every (N, x, workers) of the grid for a video of `base`'s size
/// and length. Worker counts are the chunk count and its halves down to an
/// eighth, plus any `workers` given; N larger than the video is skipped.
///
/// # Errors
/// As [`plan_job_with`].
pub fn sweep(
    base: &JobShape,
    extra_workers: &[usize],
    cal: &Calibration,
    cloud: &CloudParams,
    opts: &PlanOptions,
) -> Result<Vec<SweepPoint>, PlanError> {
    let mut points = Vec::new();
    for &n in CHUNK_FRAMES.iter().filter(|&&n| n <= base.frames.max(2)) {
        let chunks = base.frames.div_ceil(n);
        for &x in &GROUP_CHUNKS {
            if x > 1 && x / 2 >= chunks {
                continue;
            }
            let mut ws: Vec<usize> = [1, 2, 4, 8]
                .iter()
                .map(|d| chunks.div_ceil(*d))
                .chain(extra_workers.iter().copied())
                .filter(|&w| w >= 1)
                .collect();
            ws.sort_unstable();
            ws.dedup();
            for w in ws {
                let shape = JobShape {
                    chunk_frames: n,
                    group_chunks: x,
                    workers: w,
                    ..*base
                };
                let plan = plan_job_with(&shape, cal, cloud, opts)?;
                points.push(SweepPoint {
                    chunk_frames: n,
                    group_chunks: x,
                    workers: w,
                    wall_s: plan.wall_s,
                    cost_usd: plan.cost_usd,
                    frontier: false,
                });
            }
        }
    }
    mark_frontier(&mut points);
    Ok(points)
}

/// Marks the points no other point beats on both time and cost.
pub fn mark_frontier(points: &mut [SweepPoint]) {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .wall_s
            .total_cmp(&points[b].wall_s)
            .then(points[a].cost_usd.total_cmp(&points[b].cost_usd))
    });
    let mut best = f64::INFINITY;
    for i in order {
        if points[i].cost_usd < best {
            best = points[i].cost_usd;
            points[i].frontier = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_keeps_only_undominated_points() {
        let p = |w, c| SweepPoint {
            chunk_frames: 1,
            group_chunks: 1,
            workers: 1,
            wall_s: w,
            cost_usd: c,
            frontier: false,
        };
        let mut v = vec![p(1.0, 5.0), p(2.0, 6.0), p(3.0, 1.0), p(2.0, 2.0)];
        mark_frontier(&mut v);
        let f: Vec<bool> = v.iter().map(|p| p.frontier).collect();
        assert_eq!(f, [true, false, true, true]);
    }
}
