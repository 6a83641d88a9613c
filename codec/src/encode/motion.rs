//! Motion estimation for 16x16 luma blocks: an integer pattern search
//! seeded by the neighbours' vectors, then half- and quarter-pixel
//! refinement through the codec's own interpolation filters.

use crate::encode::modes::{mv_cost, MV_MAX};
use crate::encode::sad::sad;
use crate::modes::MotionVector;
use crate::picture::PlaneBuf;
use crate::recon::{luma_offset, predict_block_into};

/// What one search needs.
pub(crate) struct MotionSearch<'a> {
    /// Padded source luma.
    pub src: &'a PlaneBuf,
    /// Reference luma.
    pub reference: &'a PlaneBuf,
    pub mb_x: usize,
    pub mb_y: usize,
    /// The vector new vectors are coded against.
    pub best: MotionVector,
    /// Starting points: zero, nearest, near.
    pub candidates: [MotionVector; 3],
    pub mv_probs: &'a [[u8; 19]; 2],
    /// SSE per bit times 256.
    pub lambda: u64,
    pub speed: u8,
    pub sixtap: bool,
}

impl MotionSearch<'_> {
    /// SAD of the prediction at `mv` plus the vector's rate, both scaled.
    fn cost(&self, mv: MotionVector) -> u64 {
        let mut pred = [0u8; 256];
        let (dx, fx) = luma_offset(mv.col);
        let (dy, fy) = luma_offset(mv.row);
        let (x, y) = (self.mb_x * 16, self.mb_y * 16);
        predict_block_into(
            self.reference,
            x,
            y,
            16,
            16,
            (dx, dy),
            (fx, fy),
            self.sixtap,
            &mut pred,
            0,
            16,
        );
        let d = sad(
            &self.src.data,
            self.src.index(x as isize, y as isize),
            self.src.stride,
            &pred,
            0,
            16,
            16,
            16,
        ) as u64;
        // SAD is compared against sqrt(lambda) per bit.
        let rate = mv_cost(mv, self.best, self.mv_probs) as u64;
        (d << 8) + ((self.sad_lambda() * rate) >> 8)
    }

    fn sad_lambda(&self) -> u64 {
        // lambda is SSE/bit * 256; SAD/bit is about its square root.
        (((self.lambda as f64) / 256.0).sqrt() * 256.0) as u64
    }

    fn in_range(&self, mv: MotionVector) -> bool {
        let dr = (mv.row as i32 - self.best.row as i32).abs();
        let dc = (mv.col as i32 - self.best.col as i32).abs();
        // Stay near the picture: a block may hang 32 pixels outside.
        let x = self.mb_x as i32 * 64 + mv.col as i32;
        let y = self.mb_y as i32 * 64 + mv.row as i32;
        let w = self.reference.width as i32 * 4;
        let h = self.reference.height as i32 * 4;
        dr <= MV_MAX && dc <= MV_MAX && x >= -128 && y >= -128 && x <= w + 64 && y <= h + 64
    }
}

fn full_pel(mv: MotionVector) -> MotionVector {
    MotionVector {
        row: (mv.row + 2) & !3,
        col: (mv.col + 2) & !3,
    }
}

/// Finds a good vector for the macroblock, in quarter pixels.
pub(crate) fn search(s: &MotionSearch) -> MotionVector {
    let mut best = MotionVector::ZERO;
    let mut best_cost = s.cost(best);
    for c in s.candidates.iter().chain([s.best].iter()) {
        let c = full_pel(*c);
        if s.in_range(c) {
            let cost = s.cost(c);
            if cost < best_cost {
                best = c;
                best_cost = cost;
            }
        }
    }
    // Integer search: a shrinking diamond, wider at slow speeds.
    let start_step: i16 = match s.speed {
        0..=1 => 32,
        2..=4 => 16,
        _ => 8,
    };
    let mut step = start_step;
    while step >= 1 {
        loop {
            let mut moved = false;
            let center = best;
            for (dr, dc) in [
                (-1, 0),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (-1, 1),
                (1, -1),
                (1, 1),
            ] {
                if s.speed >= 5 && dr != 0 && dc != 0 {
                    continue;
                }
                let mv = MotionVector {
                    row: center.row + dr * step * 4,
                    col: center.col + dc * step * 4,
                };
                if !s.in_range(mv) {
                    continue;
                }
                let cost = s.cost(mv);
                if cost < best_cost {
                    best = mv;
                    best_cost = cost;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        step /= 2;
    }
    // Sub-pixel refinement: half, then quarter pixels.
    let sub_steps: &[i16] = if s.speed >= 7 { &[2] } else { &[2, 1] };
    for &step in sub_steps {
        let center = best;
        for (dr, dc) in [
            (-1, 0),
            (1, 0),
            (0, -1),
            (0, 1),
            (-1, -1),
            (-1, 1),
            (1, -1),
            (1, 1),
        ] {
            let mv = MotionVector {
                row: center.row + dr * step,
                col: center.col + dc * step,
            };
            if !s.in_range(mv) {
                continue;
            }
            let cost = s.cost(mv);
            if cost < best_cost {
                best = mv;
                best_cost = cost;
            }
        }
    }
    best
}
