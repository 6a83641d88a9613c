//! Writing per-macroblock prediction records, the mirror of
//! [`crate::modes`] (RFC 6386 sections 11, 16, 17), and their bit costs.

use crate::bool_encoder::{BitCost, BitSink, Updatable};
use crate::header::FrameHeader;
use crate::modes::{MbInfo, MotionVector};
use crate::prediction::{LumaMode, RefFrame, SubMvRef, TreeLeaf};
use crate::tables::*;

use crate::modes::{
    bmode_neighbours, mb_neighbours, split_first_block, split_mv_neighbours, sub_mv_ref,
};
pub use crate::modes::{inter_context, sub_mv_context, InterContext, MvClamp};

/// Largest magnitude of a coded vector component (quarter pixels).
pub const MV_MAX: i32 = 1023;

/// Writes one vector component (RFC 17.1), the mirror of the reader,
/// to any sink: `component` is 0 for rows and 1 for columns, `p` that
/// component's probabilities.
pub fn write_mv_component<S: BitSink>(bw: &mut S, component: usize, v: i32, p: &[u8; 19]) {
    let mut put = |i: usize, bit: bool| bw.put_updatable(Updatable::Mv(component), i, p[i], bit);
    let x = v.unsigned_abs() as usize;
    if x < 8 {
        put(MVP_IS_SHORT, false);
        // The short tree is three levels deep: bit 2, then bit 1, then
        // bit 0, each under its own node's probability.
        let (b2, b1, b0) = ((x >> 2) & 1, (x >> 1) & 1, x & 1);
        put(MVP_SHORT, b2 == 1);
        let base = if b2 == 0 { 1 } else { 4 };
        put(MVP_SHORT + base, b1 == 1);
        put(MVP_SHORT + base + 1 + b1, b0 == 1);
    } else {
        put(MVP_IS_SHORT, true);
        for i in 0..3 {
            put(MVP_BITS + i, (x >> i) & 1 == 1);
        }
        for i in (4..MV_LONG_BITS).rev() {
            put(MVP_BITS + i, (x >> i) & 1 == 1);
        }
        // Bit 3 is implicit when no higher bit is set.
        if x & 0xfff0 != 0 {
            put(MVP_BITS + 3, (x >> 3) & 1 == 1);
        }
    }
    if x != 0 {
        put(MVP_SIGN, v < 0);
    }
}

/// Cost in 1/256 bits of one vector component.
pub fn mv_component_cost(v: i32, p: &[u8; 19]) -> u32 {
    let mut cost = BitCost::default();
    write_mv_component(&mut cost, 0, v, p);
    cost.0
}

/// Cost in 1/256 bits of a new vector `mv` coded against `best`.
pub fn mv_cost(mv: MotionVector, best: MotionVector, probs: &[[u8; 19]; 2]) -> u32 {
    mv_component_cost(mv.row as i32 - best.row as i32, &probs[0])
        + mv_component_cost(mv.col as i32 - best.col as i32, &probs[1])
}

fn write_mv<S: BitSink>(bw: &mut S, mv: MotionVector, best: MotionVector, probs: &[[u8; 19]; 2]) {
    write_mv_component(bw, 0, mv.row as i32 - best.row as i32, &probs[0]);
    write_mv_component(bw, 1, mv.col as i32 - best.col as i32, &probs[1]);
}

/// Costs of every vector component difference in range, looked up instead
/// of recomputed: the motion search prices hundreds of vectors per
/// macroblock.
#[derive(Clone, Debug)]
pub struct MvCosts {
    /// `[row, col][diff + MV_MAX]` in 1/256 bits.
    table: [Vec<u32>; 2],
    probs: [[u8; 19]; 2],
}

impl MvCosts {
    /// Tables for the vector probabilities `probs`.
    pub fn new(probs: &[[u8; 19]; 2]) -> Self {
        MvCosts {
            table: core::array::from_fn(|c| {
                (-MV_MAX..=MV_MAX)
                    .map(|v| mv_component_cost(v, &probs[c]))
                    .collect()
            }),
            probs: *probs,
        }
    }

    /// Cost in 1/256 bits of a new vector `mv` coded against `best`; equal
    /// to [`mv_cost`] with the tables' probabilities.
    #[inline]
    pub fn cost(&self, mv: MotionVector, best: MotionVector) -> u32 {
        let dr = mv.row as i32 - best.row as i32;
        let dc = mv.col as i32 - best.col as i32;
        if dr.abs() <= MV_MAX && dc.abs() <= MV_MAX {
            self.table[0][(dr + MV_MAX) as usize] + self.table[1][(dc + MV_MAX) as usize]
        } else {
            mv_cost(mv, best, &self.probs)
        }
    }
}

/// Costs in 1/256 bits of B_PRED subblock modes, which are priced
/// millions of times per frame: `kf[above][left][mode]` with the key
/// frame's contextual probabilities, `inter[mode]` with the fixed inter
/// frame ones.
pub struct BModeCosts {
    /// Key frames, by the above and left subblocks' modes.
    pub kf: [[[u32; 10]; 10]; 10],
    /// Inter frames.
    pub inter: [u32; 10],
}

/// The B_PRED mode cost tables (computed once).
pub fn bmode_costs() -> &'static BModeCosts {
    static COSTS: std::sync::OnceLock<BModeCosts> = std::sync::OnceLock::new();
    COSTS.get_or_init(|| BModeCosts {
        kf: core::array::from_fn(|a| {
            core::array::from_fn(|l| {
                core::array::from_fn(|m| tree_cost(&BMODE_TREE, &KF_BMODE_PROBS[a][l], m as u8))
            })
        }),
        inter: core::array::from_fn(|m| tree_cost(&BMODE_TREE, &DEFAULT_BMODE_PROBS, m as u8)),
    })
}

/// Cost in 1/256 bits of a tree leaf: the writer's path priced.
///
/// # Panics
///
/// If `leaf` is not a leaf of `tree`.
pub fn tree_cost(tree: &[i8], probs: &[u8], leaf: impl TreeLeaf) -> u32 {
    let mut cost = BitCost::default();
    cost.put_tree(tree, probs, leaf);
    cost.0
}

/// Writes the prediction records of all macroblocks, the mirror of
/// [`crate::modes::read_modes`], to any sink: the bool encoder codes
/// them, the encoder's branch counter counts the decisions under the
/// probabilities the header may update.
pub fn write_modes<S: BitSink>(
    bw: &mut S,
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    mb_cols: usize,
    mb_rows: usize,
) {
    let outside = MbInfo::default();
    let sign_bias = [false, false, hdr.sign_bias_golden, hdr.sign_bias_altref];
    for mb_y in 0..mb_rows {
        for mb_x in 0..mb_cols {
            let idx = mb_y * mb_cols + mb_x;
            let mb = &mbs[idx];
            if hdr.update_segment_map {
                let p = &hdr.segment_tree_probs;
                bw.put_bool(p[0], mb.segment >= 2);
                if mb.segment >= 2 {
                    bw.put_bool(p[2], mb.segment == 3);
                } else {
                    bw.put_bool(p[1], mb.segment == 1);
                }
            }
            if let Some(p) = hdr.skip_prob {
                bw.put_bool(p, mb.skip);
            }
            let [above, left, above_left] = mb_neighbours(mbs, mb_cols, mb_x, mb_y, &outside);
            if hdr.tag.key_frame {
                bw.put_tree(&KF_YMODE_TREE, &KF_YMODE_PROBS, mb.y_mode);
                if mb.y_mode == LumaMode::B {
                    for b in 0..16 {
                        let (a, l) = bmode_neighbours(above, left, &mb.b_modes, b);
                        bw.put_tree(
                            &BMODE_TREE,
                            &KF_BMODE_PROBS[a as usize][l as usize],
                            mb.b_modes[b],
                        );
                    }
                }
                bw.put_tree(&UV_MODE_TREE, &KF_UV_MODE_PROBS, mb.uv_mode);
                continue;
            }
            bw.put_bool(hdr.prob_intra, mb.ref_frame != RefFrame::Intra);
            if mb.ref_frame == RefFrame::Intra {
                bw.put_updatable_tree(Updatable::YMode, &YMODE_TREE, &hdr.probs.y_mode, mb.y_mode);
                if mb.y_mode == LumaMode::B {
                    for &m in &mb.b_modes {
                        bw.put_tree(&BMODE_TREE, &DEFAULT_BMODE_PROBS, m);
                    }
                }
                bw.put_updatable_tree(
                    Updatable::UvMode,
                    &UV_MODE_TREE,
                    &hdr.probs.uv_mode,
                    mb.uv_mode,
                );
                continue;
            }
            bw.put_bool(hdr.prob_last, mb.ref_frame != RefFrame::Last);
            if mb.ref_frame != RefFrame::Last {
                bw.put_bool(hdr.prob_golden, mb.ref_frame != RefFrame::Golden);
            }
            let clamp = MvClamp::new(mb_x, mb_y, mb_cols, mb_rows);
            let ctx = inter_context([above, left, above_left], mb.ref_frame, sign_bias, &clamp);
            bw.put_tree(&MV_REF_TREE, &ctx.mode_probs, mb.y_mode);
            match mb.y_mode {
                LumaMode::NewMv => write_mv(bw, mb.mv, ctx.best, &hdr.probs.mv),
                LumaMode::SplitMv => write_split(bw, hdr, mb, left, above, ctx.best),
                _ => {}
            }
        }
    }
}

fn write_split<S: BitSink>(
    bw: &mut S,
    hdr: &FrameHeader,
    mb: &MbInfo,
    left: &MbInfo,
    above: &MbInfo,
    best: MotionVector,
) {
    let s = mb.partitioning;
    bw.put_tree(&MBSPLIT_TREE, &MBSPLIT_PROBS, s);
    for part in 0..MBSPLIT_COUNT[s.index()] {
        let k = split_first_block(s, part);
        let (left_mv, above_mv) = split_mv_neighbours(left, above, &mb.mvs, k);
        let ctx = sub_mv_context(left_mv, above_mv);
        let mv = mb.mvs[k];
        let leaf = sub_mv_ref(mv, left_mv, above_mv);
        bw.put_tree(&SUB_MV_REF_TREE, &SUB_MV_REF_PROBS[ctx], leaf);
        if leaf == SubMvRef::New {
            write_mv(bw, mv, best, &hdr.probs.mv);
        }
    }
}
