//! Frame-level probability updates for the first partition: motion vector
//! probabilities (RFC 6386 section 17.2) and the inter-frame luma/chroma
//! intra mode probabilities (section 16.2), each sent only when the bits
//! it saves on this frame's symbols pay for the update itself.
//!
//! The symbols are counted as branch events of their trees, mirroring
//! what [`crate::encode::modes::write_modes`] will write; a miscount could
//! only make an update less useful, never make the stream wrong, since the
//! writer codes whatever probabilities the header carries.

use crate::bool_encoder::cost_bool;
use crate::encode::modes::{inter_context, MvClamp};
use crate::encode::tokenize::TokenCounts;
use crate::modes::{
    mb_neighbours, split_first_block, split_mv_neighbours, sub_mv_ref, MbInfo, MotionVector,
};
use crate::prediction::{LumaMode, RefFrame, SubMvRef, TreeLeaf};
use crate::probs::Probabilities;
use crate::tables::*;

/// Zero/one counts per probability of a tree or vector component.
pub(crate) type Branches<const N: usize> = [[u32; 2]; N];

/// Branch events of the symbols the mode partition codes with
/// updatable probabilities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModeCounts {
    /// Per vector component (row, column), per entry of the 19 MV probs.
    pub mv: [Branches<19>; 2],
    /// Nodes of [`YMODE_TREE`] (intra macroblocks of inter frames).
    pub y_mode: Branches<4>,
    /// Nodes of [`UV_MODE_TREE`] (intra macroblocks of inter frames).
    pub uv_mode: Branches<3>,
}

/// Records the branch events of `leaf` in `tree`: one per node on the
/// path from the root, indexed like the tree's probabilities.
fn count_tree(tree: &[i8], leaf: impl TreeLeaf, counts: &mut [[u32; 2]]) {
    let leaf = leaf.leaf();
    fn walk(tree: &[i8], node: usize, leaf: u8, counts: &mut [[u32; 2]]) -> bool {
        for bit in 0..2 {
            let t = tree[node + bit];
            let found = if t <= 0 {
                (-t) as u8 == leaf
            } else {
                walk(tree, t as usize, leaf, counts)
            };
            if found {
                counts[node >> 1][bit] += 1;
                return true;
            }
        }
        false
    }
    walk(tree, 0, leaf, counts);
}

/// Records one coded vector component (the mirror of
/// [`crate::encode::modes::write_mv_component`]).
fn count_mv_component(v: i32, c: &mut Branches<19>) {
    let x = v.unsigned_abs() as usize;
    if x < 8 {
        c[MVP_IS_SHORT][0] += 1;
        count_tree(&SMALL_MV_TREE, x as u8, &mut c[MVP_SHORT..MVP_SHORT + 7]);
    } else {
        c[MVP_IS_SHORT][1] += 1;
        for i in (0..3).chain(4..MV_LONG_BITS) {
            c[MVP_BITS + i][(x >> i) & 1] += 1;
        }
        // Bit 3 is implicit when no higher bit is set.
        if x & 0xfff0 != 0 {
            c[MVP_BITS + 3][(x >> 3) & 1] += 1;
        }
    }
    if x != 0 {
        c[MVP_SIGN][(v < 0) as usize] += 1;
    }
}

fn count_mv(mv: MotionVector, best: MotionVector, c: &mut [Branches<19>; 2]) {
    count_mv_component(mv.row as i32 - best.row as i32, &mut c[0]);
    count_mv_component(mv.col as i32 - best.col as i32, &mut c[1]);
}

/// Counts the mode-partition symbols of an inter frame's macroblocks.
/// `sign_bias` is indexed by reference frame, as the header gives it.
pub(crate) fn count_modes(
    mbs: &[MbInfo],
    mb_cols: usize,
    mb_rows: usize,
    sign_bias: [bool; 4],
) -> ModeCounts {
    let mut out = ModeCounts::default();
    let outside = MbInfo::default();
    for mb_y in 0..mb_rows {
        for mb_x in 0..mb_cols {
            let idx = mb_y * mb_cols + mb_x;
            let mb = &mbs[idx];
            if mb.ref_frame == RefFrame::Intra {
                count_tree(&YMODE_TREE, mb.y_mode, &mut out.y_mode);
                count_tree(&UV_MODE_TREE, mb.uv_mode, &mut out.uv_mode);
                continue;
            }
            if mb.y_mode != LumaMode::NewMv && mb.y_mode != LumaMode::SplitMv {
                continue;
            }
            let [above, left, above_left] = mb_neighbours(mbs, mb_cols, mb_x, mb_y, &outside);
            let clamp = MvClamp::new(mb_x, mb_y, mb_cols, mb_rows);
            let ctx = inter_context([above, left, above_left], mb.ref_frame, sign_bias, &clamp);
            if mb.y_mode == LumaMode::NewMv {
                count_mv(mb.mv, ctx.best, &mut out.mv);
                continue;
            }
            // SPLITMV: only the partitions coded as NEW4X4 carry a vector.
            for part in 0..MBSPLIT_COUNT[mb.partitioning.index()] {
                let k = split_first_block(mb.partitioning, part);
                let (left_mv, above_mv) = split_mv_neighbours(left, above, &mb.mvs, k);
                let mv = mb.mvs[k];
                if sub_mv_ref(mv, left_mv, above_mv) == SubMvRef::New {
                    count_mv(mv, ctx.best, &mut out.mv);
                }
            }
        }
    }
    out
}

fn branch_cost(p: u8, c: [u32; 2]) -> u64 {
    c[0] as u64 * cost_bool(p, false) as u64 + c[1] as u64 * cost_bool(p, true) as u64
}

/// Chooses which coefficient probabilities to update: those whose saving
/// on this frame's tokens pays for the update's own bits.
pub(crate) fn optimize_coeff_probs(
    base: &Probabilities,
    counts: &TokenCounts,
) -> [[[[u8; 11]; 3]; 8]; 4] {
    let mut out = base.coeff;
    for i in 0..4 {
        for j in 0..8 {
            for k in 0..3 {
                for l in 0..11 {
                    let c = counts[i][j][k][l];
                    let old = base.coeff[i][j][k][l];
                    let new = prob_from_counts(c[0], c[1]);
                    let up = COEFF_UPDATE_PROBS[i][j][k][l];
                    let keep = branch_cost(old, c) + cost_bool(up, false) as u64;
                    let change = branch_cost(new, c) + cost_bool(up, true) as u64 + 8 * 256;
                    if change < keep {
                        out[i][j][k][l] = new;
                    }
                }
            }
        }
    }
    out
}

/// Probability of a zero bit given counts, clamped to 1..=255.
pub(crate) fn prob_from_counts(zeros: u32, ones: u32) -> u8 {
    let total = zeros as u64 + ones as u64;
    if total == 0 {
        return 128;
    }
    ((zeros as u64 * 256 + total / 2) / total).clamp(1, 255) as u8
}

/// The probability of a zero that `counts` suggest, rounded to what a
/// 7-bit MV probability update can express (`x << 1`, or 1 for x = 0).
fn mv_prob_from_counts(c: [u32; 2]) -> u8 {
    let total = c[0] as u64 + c[1] as u64;
    let p = ((c[0] as u64 * 256 + total / 2) / total).clamp(1, 255);
    let x = ((p + 1) >> 1).min(127);
    if x == 0 {
        1
    } else {
        (x << 1) as u8
    }
}

/// Chooses the MV probabilities for a frame: each entry is updated when
/// the saving on this frame's vectors exceeds the cost of the update flag
/// and its 7-bit value.
pub(crate) fn optimize_mv_probs(base: &[[u8; 19]; 2], counts: &[Branches<19>; 2]) -> [[u8; 19]; 2] {
    let mut out = *base;
    for i in 0..2 {
        for j in 0..19 {
            let c = counts[i][j];
            if c[0] + c[1] == 0 {
                continue;
            }
            let old = base[i][j];
            let new = mv_prob_from_counts(c);
            let up = MV_UPDATE_PROBS[i][j];
            let keep = branch_cost(old, c) + cost_bool(up, false) as u64;
            let change = branch_cost(new, c) + cost_bool(up, true) as u64 + 7 * 256;
            if new != old && change < keep {
                out[i][j] = new;
            }
        }
    }
    out
}

/// Chooses an all-or-nothing update of one mode tree's probabilities (the
/// header sends either none or all of them, 8 bits each, after one flag
/// bit). Nodes this frame never visits keep their old value.
fn optimize_tree_probs<const N: usize>(base: &[u8; N], counts: &Branches<N>) -> [u8; N] {
    let mut new = *base;
    for (p, &c) in new.iter_mut().zip(counts) {
        if c[0] + c[1] > 0 {
            *p = prob_from_counts(c[0], c[1]);
        }
    }
    if new == *base {
        return *base;
    }
    let cost = |probs: &[u8; N]| -> u64 {
        probs
            .iter()
            .zip(counts)
            .map(|(&p, &c)| branch_cost(p, c))
            .sum()
    };
    // The flag bit is sent either way at probability one half.
    if cost(&new) + (8 * N as u64) * 256 < cost(base) {
        new
    } else {
        *base
    }
}

/// Applies the MV and intra-mode probability updates that pay on an inter
/// frame to `probs` (which start as the inherited ones).
pub(crate) fn optimize_mode_probs(probs: &mut Probabilities, counts: &ModeCounts) {
    probs.mv = optimize_mv_probs(&probs.mv, &counts.mv);
    probs.y_mode = optimize_tree_probs(&probs.y_mode, &counts.y_mode);
    probs.uv_mode = optimize_tree_probs(&probs.uv_mode, &counts.uv_mode);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bool_encoder::BoolEncoder;
    use crate::encode::modes::write_mv_component;

    #[test]
    fn tree_counts_follow_the_path() {
        let mut c = [[0u32; 2]; 4];
        count_tree(&YMODE_TREE, LumaMode::Dc, &mut c);
        assert_eq!(c, [[1, 0], [0, 0], [0, 0], [0, 0]]);
        let mut c = [[0u32; 2]; 4];
        count_tree(&YMODE_TREE, LumaMode::B, &mut c);
        // DC | (V,H) vs (TM,B) | TM vs B
        assert_eq!(c, [[0, 1], [0, 1], [0, 0], [0, 1]]);
        let mut c = [[0u32; 2]; 3];
        count_tree(&UV_MODE_TREE, LumaMode::H, &mut c);
        assert_eq!(c, [[0, 1], [0, 1], [1, 0]]);
    }

    /// The counted events of a component, priced at any probabilities,
    /// equal the cost of the bits the writer emits: the counter walks the
    /// writer's exact path.
    #[test]
    fn mv_counts_match_the_writer() {
        let probs = DEFAULT_MV_PROBS[0];
        for v in -1023..=1023 {
            let mut c = [[0u32; 2]; 19];
            count_mv_component(v, &mut c);
            let counted: u64 = probs.iter().zip(&c).map(|(&p, &c)| branch_cost(p, c)).sum();
            let cost = crate::encode::modes::mv_component_cost(v, &probs) as u64;
            assert_eq!(counted, cost, "component {v}");
        }
    }

    #[test]
    fn updated_mv_probs_are_representable_and_pay() {
        // Many identical long vectors: the is_short probability should move.
        let mut counts = [[[0u32; 2]; 19]; 2];
        for _ in 0..500 {
            count_mv_component(300, &mut counts[0]);
        }
        let new = optimize_mv_probs(&DEFAULT_MV_PROBS, &counts);
        assert_ne!(new[0][MVP_IS_SHORT], DEFAULT_MV_PROBS[0][MVP_IS_SHORT]);
        assert_eq!(new[1], DEFAULT_MV_PROBS[1], "unused component unchanged");
        for (i, row) in new.iter().enumerate() {
            for (j, &p) in row.iter().enumerate() {
                if p != DEFAULT_MV_PROBS[i][j] {
                    assert!(p == 1 || p % 2 == 0, "{p} not expressible in 7 bits");
                }
            }
        }
        // Decoding 300 with the new probabilities costs fewer bits.
        let size = |p: &[u8; 19]| {
            let mut bw = BoolEncoder::new();
            for _ in 0..500 {
                write_mv_component(&mut bw, 300, p);
            }
            bw.finish().len()
        };
        assert!(size(&new[0]) < size(&DEFAULT_MV_PROBS[0]));
    }

    #[test]
    fn few_events_do_not_update() {
        let mut counts = ModeCounts::default();
        count_tree(&YMODE_TREE, LumaMode::B, &mut counts.y_mode);
        count_mv_component(3, &mut counts.mv[1]);
        let mut p = Probabilities::default();
        optimize_mode_probs(&mut p, &counts);
        assert_eq!(p, Probabilities::default());
    }
}
