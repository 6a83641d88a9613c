//! Motion estimation for luma blocks (16x16 macroblocks and the 16x8, 8x16,
//! 8x8 and 4x4 partitions of SPLITMV): an integer pattern search seeded by
//! the neighbours' vectors, then half- and quarter-pixel refinement through
//! the codec's own interpolation filters.

use crate::encode::modes::{MvCosts, MV_MAX};
use crate::encode::sad::{sad, sse};
use crate::encode::subpel::SubpelPlanes;
use crate::modes::MotionVector;
use crate::picture::PlaneBuf;
use crate::recon::{luma_offset, predict_block_into};

/// What one search needs.
pub(crate) struct MotionSearch<'a> {
    /// Padded source luma.
    pub src: &'a PlaneBuf,
    /// Reference luma.
    pub reference: &'a PlaneBuf,
    /// The macroblock the block belongs to (bounds the vectors).
    pub mb_x: usize,
    pub mb_y: usize,
    /// The block: offset inside the macroblock and size, in pixels.
    pub block: (usize, usize, usize, usize),
    /// The vector new vectors are coded against.
    pub best: MotionVector,
    /// Starting points (zero, nearest, near, a parent's vector...).
    pub candidates: &'a [MotionVector],
    pub mv_costs: &'a MvCosts,
    /// The reference filtered at every phase, if built for this frame.
    pub subpel: Option<&'a SubpelPlanes>,
    /// SSE per bit times 256.
    pub lambda: u64,
    pub speed: u8,
    pub sixtap: bool,
}

/// The SAD-domain lambda (per bit, times 256) matching an SSE-domain one:
/// SAD/bit is about the square root of SSE/bit.
pub(crate) fn sad_lambda(lambda: u64) -> u64 {
    (((lambda as f64) / 256.0).sqrt() * 256.0) as u64
}

impl MotionSearch<'_> {
    fn origin(&self) -> (usize, usize) {
        (self.mb_x * 16 + self.block.0, self.mb_y * 16 + self.block.1)
    }

    /// Predicts the block at `mv` into `pred` (stride 16).
    fn predict(&self, mv: MotionVector, pred: &mut [u8; 256]) {
        let (dx, fx) = luma_offset(mv.col);
        let (dy, fy) = luma_offset(mv.row);
        let (x, y) = self.origin();
        let (w, h) = (self.block.2, self.block.3);
        predict_block_into(
            self.reference,
            x,
            y,
            w,
            h,
            (dx, dy),
            (fx, fy),
            self.sixtap,
            pred,
            0,
            16,
        );
    }

    /// The block's prediction at `mv` straight from memory (the reference
    /// or a sub-pixel plane), if it lies inside the bordered planes.
    fn direct(&self, mv: MotionVector) -> Option<(&[u8], usize, usize)> {
        let (x, y) = self.origin();
        let (w, h) = (self.block.2, self.block.3);
        let (dx, fx) = luma_offset(mv.col);
        let (dy, fy) = luma_offset(mv.row);
        let r = self.reference;
        let (rx, ry) = (x as isize + dx, y as isize + dy);
        let b = r.border as isize;
        if rx < -b
            || ry < -b
            || rx + w as isize > r.width as isize + b
            || ry + h as isize > r.height as isize + b
        {
            return None;
        }
        let pos = r.index(rx, ry);
        if fx == 0 && fy == 0 {
            Some((&r.data, pos, r.stride))
        } else {
            self.subpel.map(|sp| (sp.plane(fx, fy), pos, r.stride))
        }
    }

    /// SAD of the prediction at `mv`.
    fn sad_at(&self, mv: MotionVector) -> u64 {
        let (x, y) = self.origin();
        let (w, h) = (self.block.2, self.block.3);
        let src_pos = self.src.index(x as isize, y as isize);
        if let Some((buf, pos, stride)) = self.direct(mv) {
            return sad(
                &self.src.data,
                src_pos,
                self.src.stride,
                buf,
                pos,
                stride,
                w,
                h,
            ) as u64;
        }
        let mut pred = [0u8; 256];
        self.predict(mv, &mut pred);
        sad(&self.src.data, src_pos, self.src.stride, &pred, 0, 16, w, h) as u64
    }

    /// SSE of the prediction at `mv`.
    pub(crate) fn sse_at(&self, mv: MotionVector) -> u64 {
        let (x, y) = self.origin();
        let (w, h) = (self.block.2, self.block.3);
        let src_pos = self.src.index(x as isize, y as isize);
        if let Some((buf, pos, stride)) = self.direct(mv) {
            return sse(
                &self.src.data,
                src_pos,
                self.src.stride,
                buf,
                pos,
                stride,
                w,
                h,
            );
        }
        let mut pred = [0u8; 256];
        self.predict(mv, &mut pred);
        sse(&self.src.data, src_pos, self.src.stride, &pred, 0, 16, w, h)
    }

    /// SAD of the prediction at `mv` plus the vector's rate, both scaled.
    fn cost(&self, mv: MotionVector) -> u64 {
        let rate = self.mv_costs.cost(mv, self.best) as u64;
        (self.sad_at(mv) << 8) + ((sad_lambda(self.lambda) * rate) >> 8)
    }

    /// SSE of the prediction at `mv` plus the vector's rate, both scaled:
    /// sub-pixel choices are judged by squared error, which the interpolation
    /// filters' smoothing affects differently from SAD.
    fn cost_sse(&self, mv: MotionVector) -> u64 {
        let rate = self.mv_costs.cost(mv, self.best) as u64;
        (self.sse_at(mv) << 8) + ((self.lambda * rate) >> 8)
    }

    fn in_range(&self, mv: MotionVector) -> bool {
        let dr = (mv.row as i32 - self.best.row as i32).abs();
        let dc = (mv.col as i32 - self.best.col as i32).abs();
        // Stay near the picture: a macroblock may hang 32 pixels outside,
        // where the decoder does not clamp differently from the search.
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

const EIGHT: [(i16, i16); 8] = [
    (-1, 0),
    (1, 0),
    (0, -1),
    (0, 1),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
];

/// Finds a good vector for the block, in quarter pixels, starting the
/// diamond at `start_step` whole pixels.
pub(crate) fn search_from(s: &MotionSearch, start_step: i16) -> MotionVector {
    let mut best = MotionVector::ZERO;
    let mut best_cost = s.cost(best);
    for c in s.candidates.iter().chain([s.best].iter()) {
        let c = full_pel(*c);
        if c != best && s.in_range(c) {
            let cost = s.cost(c);
            if cost < best_cost {
                best = c;
                best_cost = cost;
            }
        }
    }
    // Integer search: a shrinking diamond.
    let mut step = start_step;
    while step >= 1 {
        loop {
            let mut moved = false;
            let center = best;
            for (dr, dc) in EIGHT {
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
    refine_subpel(s, best)
}

/// Half- then quarter-pixel refinement around a whole-pixel vector, in
/// libvpx's iterative pattern: the four neighbours, then the diagonal
/// between the better horizontal and the better vertical one, repeated
/// while the centre moves (at most twice per level).
fn refine_subpel(s: &MotionSearch, start: MotionVector) -> MotionVector {
    let by_sse = s.speed <= 4 && s.block.2 * s.block.3 == 256;
    let cost = |mv| if by_sse { s.cost_sse(mv) } else { s.cost(mv) };
    let mut best = start;
    let mut best_cost = cost(best);
    let sub_steps: &[i16] = if s.speed >= 9 { &[2] } else { &[2, 1] };
    let eval = |mv: MotionVector, best: &mut MotionVector, best_cost: &mut u64| -> u64 {
        if !s.in_range(mv) {
            return u64::MAX;
        }
        let c = cost(mv);
        if c < *best_cost {
            *best = mv;
            *best_cost = c;
        }
        c
    };
    for &step in sub_steps {
        for _ in 0..2 {
            let center = best;
            let at = |dr: i16, dc: i16| MotionVector {
                row: center.row + dr * step,
                col: center.col + dc * step,
            };
            let l = eval(at(0, -1), &mut best, &mut best_cost);
            let r = eval(at(0, 1), &mut best, &mut best_cost);
            let u = eval(at(-1, 0), &mut best, &mut best_cost);
            let d = eval(at(1, 0), &mut best, &mut best_cost);
            let dc = if l < r { -1 } else { 1 };
            let dr = if u < d { -1 } else { 1 };
            eval(at(dr, dc), &mut best, &mut best_cost);
            if best == center {
                break;
            }
        }
    }
    best
}

/// Finds a good vector for a 16x16 macroblock, in quarter pixels.
pub(crate) fn search(s: &MotionSearch) -> MotionVector {
    let start_step: i16 = match s.speed {
        0 => 32,
        1..=4 => 16,
        _ => 8,
    };
    search_from(s, start_step)
}

/// SAD-domain cost (SAD * 256 + lambda_sad * rate / 256) of a block's
/// prediction at `mv` with `rate` bits (1/256) for the vector: the measure
/// SPLITMV compares its sub-vector choices with.
pub(crate) fn block_cost(s: &MotionSearch, mv: MotionVector, rate: u32) -> u64 {
    (s.sad_at(mv) << 8) + ((sad_lambda(s.lambda) * rate as u64) >> 8)
}
