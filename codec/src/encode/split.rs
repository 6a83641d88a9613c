//! SPLITMV: motion vectors per partition of a macroblock (16x8, 8x16, 8x8
//! or sixteen 4x4 blocks, RFC 6386 section 16.4), each coded as LEFT,
//! ABOVE, ZERO or a NEW vector against the macroblock's best vector.
//!
//! Partitions are decided in coding order, since each one's LEFT and ABOVE
//! vectors (and the context of its sub-mode) come from the partitions
//! decided before it. Choices are compared by SAD plus lambda times the
//! exact bits of the sub-modes and vectors; the caller then codes the best
//! partitioning in full to compare it with the other macroblock modes.

use crate::encode::modes::{sub_mv_context, tree_cost, MvCosts, MV_MAX};
use crate::encode::motion::{self, MotionSearch};
use crate::encode::subpel::SubpelPlanes;
use crate::modes::{split_first_block, split_mv_neighbours, sub_mv_ref, MbInfo, MotionVector};
use crate::picture::PlaneBuf;
use crate::prediction::{MvSplit, SubMvRef};
use crate::tables::{
    MBSPLITS, MBSPLIT_COUNT, MBSPLIT_PROBS, MBSPLIT_TREE, SUB_MV_REF_PROBS, SUB_MV_REF_TREE,
};

/// A SPLITMV choice for one macroblock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitChoice {
    /// How the macroblock is split.
    pub partitioning: MvSplit,
    /// The vector of every 4x4 subblock.
    pub mvs: [MotionVector; 16],
    /// Bits (1/256) of the partitioning and the sub-vectors, without the
    /// SPLITMV mode itself.
    pub rate: u32,
    /// SAD-domain cost (see [`motion::block_cost`]).
    pub cost: u64,
}

/// What the split search needs besides the partitionings to try.
pub(crate) struct SplitSearch<'a> {
    pub src: &'a PlaneBuf,
    pub reference: &'a PlaneBuf,
    pub mb_x: usize,
    pub mb_y: usize,
    /// The left and above macroblocks (default records outside the frame).
    pub left: &'a MbInfo,
    pub above: &'a MbInfo,
    /// The vector NEW sub-vectors are coded against.
    pub best: MotionVector,
    /// The macroblock's own 16x16 vector, a starting point for every part.
    pub mv16: MotionVector,
    pub mv_costs: &'a MvCosts,
    pub subpel: Option<&'a SubpelPlanes>,
    pub lambda: u64,
    pub speed: u8,
    pub sixtap: bool,
}

/// Pixel rectangle `(x, y, w, h)` inside the macroblock of partition
/// `part` of partitioning `s`.
fn part_rect(s: MvSplit, part: usize) -> (usize, usize, usize, usize) {
    match s {
        MvSplit::TopBottom => (0, part * 8, 16, 8),
        MvSplit::LeftRight => (part * 8, 0, 8, 16),
        MvSplit::Quarters => ((part & 1) * 8, (part >> 1) * 8, 8, 8),
        MvSplit::Sixteen => ((part & 3) * 4, (part >> 2) * 4, 4, 4),
    }
}

impl SplitSearch<'_> {
    /// Searches the partitionings allowed at this speed and returns them
    /// best first by their SAD-domain cost: 16x8, 8x16 and 8x8, then 4x4
    /// (seeded by the 8x8 vectors) only where 8x8 beat both halves, as
    /// finer motion is then likely to pay.
    pub fn search(&self) -> Vec<SplitChoice> {
        let mut out = Vec::with_capacity(4);
        if self.speed > 4 {
            return out;
        }
        for s in [MvSplit::TopBottom, MvSplit::LeftRight, MvSplit::Quarters] {
            out.push(self.choose(s, None));
        }
        let quarters = out[2];
        if self.speed <= 2 && quarters.cost < out[0].cost.min(out[1].cost) {
            out.push(self.choose(MvSplit::Sixteen, Some(&quarters.mvs)));
        }
        out.sort_by_key(|c| c.cost);
        out
    }

    /// Chooses every partition's vector for partitioning `s`. `seeds`,
    /// if given, are per-subblock vectors of a coarser partitioning to
    /// start from; the integer search around them is then short.
    pub fn choose(&self, s: MvSplit, seeds: Option<&[MotionVector; 16]>) -> SplitChoice {
        let map = &MBSPLITS[s.index()];
        let mut mvs = [MotionVector::ZERO; 16];
        let mut rate = tree_cost(&MBSPLIT_TREE, &MBSPLIT_PROBS, s);
        let mut cost = (motion::sad_lambda(self.lambda) * rate as u64) >> 8;
        for part in 0..MBSPLIT_COUNT[s.index()] {
            let k = split_first_block(s, part);
            let (left_mv, above_mv) = split_mv_neighbours(self.left, self.above, &mvs, k);
            let probs = &SUB_MV_REF_PROBS[sub_mv_context(left_mv, above_mv)];
            let ms = MotionSearch {
                src: self.src,
                reference: self.reference,
                mb_x: self.mb_x,
                mb_y: self.mb_y,
                block: part_rect(s, part),
                best: self.best,
                candidates: &[
                    seeds.map_or(self.mv16, |v| v[k]),
                    self.mv16,
                    left_mv,
                    above_mv,
                ],
                mv_costs: self.mv_costs,
                subpel: self.subpel,
                lambda: self.lambda,
                speed: self.speed,
                sixtap: self.sixtap,
            };
            let sub_rate = |mv: MotionVector| {
                let leaf = sub_mv_ref(mv, left_mv, above_mv);
                tree_cost(&SUB_MV_REF_TREE, probs, leaf)
                    + if leaf == SubMvRef::New {
                        self.mv_costs.cost(mv, self.best)
                    } else {
                        0
                    }
            };
            let mut best: Option<(u64, MotionVector, u32)> = None;
            let mut consider = |mv: MotionVector| {
                let r = sub_rate(mv);
                let c = motion::block_cost(&ms, mv, r);
                if best.is_none_or(|b| c < b.0) {
                    best = Some((c, mv, r));
                }
            };
            consider(left_mv);
            if above_mv != left_mv {
                consider(above_mv);
            }
            if left_mv != MotionVector::ZERO && above_mv != MotionVector::ZERO {
                consider(MotionVector::ZERO);
            }
            let step = if seeds.is_some() {
                1
            } else if self.speed <= 1 {
                4
            } else {
                2
            };
            let new = motion::search_from(&ms, step);
            let dr = (new.row as i32 - self.best.row as i32).abs();
            let dc = (new.col as i32 - self.best.col as i32).abs();
            if dr <= MV_MAX && dc <= MV_MAX {
                consider(new);
            }
            let (c, mv, r) = best.expect("LEFT is always a candidate");
            rate += r;
            cost += c;
            for (b, &p) in map.iter().enumerate() {
                if p as usize == part {
                    mvs[b] = mv;
                }
            }
        }
        SplitChoice {
            partitioning: s,
            mvs,
            rate,
            cost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{encode, EncodeParams};
    use crate::image::Image;
    use crate::prediction::LumaMode;
    use crate::{decode, decode_picture, DecoderState};

    /// A smooth but textured picture, shifted by `dx` in the top half of
    /// every macroblock row and by `-dx` in the bottom half, so motion
    /// differs inside each macroblock.
    fn picture(w: usize, h: usize, dx: isize) -> Image {
        let mut f = Image::filled(w, h, [128, 128, 128]);
        for y in 0..h {
            let shift = if y % 16 < 8 { dx } else { -dx };
            let row = f.planes[0].row_mut(y);
            for (x, v) in row.iter_mut().enumerate() {
                let sx = x as isize - shift;
                let t = ((sx * 7 + (y as isize) * 3) as f64 * 0.37).sin() * 60.0
                    + ((sx as f64) * 0.11).cos() * 40.0;
                *v = (128.0 + t).clamp(0.0, 255.0) as u8;
            }
        }
        f
    }

    #[test]
    fn split_sub_mv_leaf_prefers_left_then_above_then_zero() {
        let a = MotionVector { row: 4, col: 0 };
        let b = MotionVector { row: 0, col: 8 };
        assert_eq!(sub_mv_ref(a, a, b), SubMvRef::Left);
        assert_eq!(sub_mv_ref(b, a, b), SubMvRef::Above);
        assert_eq!(sub_mv_ref(MotionVector::ZERO, a, b), SubMvRef::Zero);
        assert_eq!(
            sub_mv_ref(MotionVector::ZERO, MotionVector::ZERO, b),
            SubMvRef::Left
        );
        assert_eq!(
            sub_mv_ref(MotionVector { row: 1, col: 1 }, a, b),
            SubMvRef::New
        );
    }

    /// SPLITMV macroblocks the encoder chooses decode to exactly the
    /// encoder's reconstruction.
    #[test]
    fn split_round_trip_through_decoder() {
        let (w, h) = (64, 48);
        let params = EncodeParams {
            q_index: 20,
            speed: 0,
            ..EncodeParams::default()
        };
        let mut state = DecoderState::default();
        let mut splits = 0;
        for i in 0..3 {
            let f = picture(w, h, 3 * i as isize);
            let e = encode(&state, &f, &params).expect("encodes");
            let (ds, _) = decode(&state, &e.data).expect("decodes");
            assert!(ds == e.state, "frame {i}: decoder state differs");
            let d = decode_picture(&state, &e.data).expect("decodes");
            splits += d
                .modes
                .iter()
                .filter(|m| m.y_mode == LumaMode::SplitMv)
                .count();
            state = e.state;
        }
        assert!(splits > 0, "no macroblock used LumaMode::SplitMv");
    }
}
