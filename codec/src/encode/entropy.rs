//! Frame-level probability updates for the first partition: motion vector
//! probabilities (RFC 6386 section 17.2) and the inter-frame luma/chroma
//! intra mode probabilities (section 16.2), each sent only when the bits
//! it saves on this frame's symbols pay for the update itself.
//!
//! The symbols are counted as branch events by running
//! [`crate::encode::modes::write_modes`] over a branch counter
//! ([`ModeCounts`] as a [`BitSink`]), so the counts follow the writer's
//! exact path.

use crate::bool_encoder::{cost_bool, BitSink, Updatable};
use crate::encode::modes::write_modes;
use crate::encode::tokenize::TokenCounts;
use crate::header::FrameHeader;
use crate::modes::MbInfo;
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

/// The branch counter: records the decisions written under updatable
/// probabilities, per entry, and ignores those under fixed ones.
impl BitSink for ModeCounts {
    #[inline(always)]
    fn put_bool(&mut self, _prob: u8, _bit: bool) {}

    #[inline(always)]
    fn put_updatable(&mut self, table: Updatable, index: usize, _prob: u8, bit: bool) {
        let entry = match table {
            Updatable::Mv(c) => &mut self.mv[c][index],
            Updatable::YMode => &mut self.y_mode[index],
            Updatable::UvMode => &mut self.uv_mode[index],
        };
        entry[bit as usize] += 1;
    }
}

/// Counts the mode-partition symbols of a frame's macroblocks: the mode
/// writer run over the branch counter, with the header's current
/// probabilities (which the counter ignores).
pub(crate) fn count_modes(
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    mb_cols: usize,
    mb_rows: usize,
) -> ModeCounts {
    let mut counts = ModeCounts::default();
    write_modes(&mut counts, hdr, mbs, mb_cols, mb_rows);
    counts
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
    use crate::bool_encoder::{BitCost, BoolEncoder};
    use crate::encode::modes::write_mv_component;
    use crate::modes::MotionVector;
    use crate::prediction::{LumaMode, RefFrame};

    fn count_mv_component(v: i32, component: usize, counts: &mut ModeCounts) {
        write_mv_component(counts, component, v, &DEFAULT_MV_PROBS[component]);
    }

    #[test]
    fn tree_counts_follow_the_path() {
        let probs = [128u8; 4];
        let mut c = ModeCounts::default();
        c.put_updatable_tree(Updatable::YMode, &YMODE_TREE, &probs, LumaMode::Dc);
        assert_eq!(c.y_mode, [[1, 0], [0, 0], [0, 0], [0, 0]]);
        let mut c = ModeCounts::default();
        c.put_updatable_tree(Updatable::YMode, &YMODE_TREE, &probs, LumaMode::B);
        // DC | (V,H) vs (TM,B) | TM vs B
        assert_eq!(c.y_mode, [[0, 1], [0, 1], [0, 0], [0, 1]]);
        let mut c = ModeCounts::default();
        c.put_updatable_tree(Updatable::UvMode, &UV_MODE_TREE, &probs, LumaMode::H);
        assert_eq!(c.uv_mode, [[0, 1], [0, 1], [1, 0]]);
        // Fixed-probability trees are not counted.
        c.put_tree(&YMODE_TREE, &probs, LumaMode::B);
        assert_eq!(c.y_mode, [[0; 2]; 4]);
    }

    /// The counted events of a component, priced at any probabilities,
    /// equal the cost of the bits the writer emits: every decision of a
    /// vector reaches the counter, under its own entry.
    #[test]
    fn mv_counts_match_the_writer() {
        for component in 0..2 {
            let probs = DEFAULT_MV_PROBS[component];
            for v in -1023..=1023 {
                let mut c = ModeCounts::default();
                count_mv_component(v, component, &mut c);
                assert_eq!(c.mv[1 - component], [[0; 2]; 19], "other component");
                let counted: u64 = probs
                    .iter()
                    .zip(&c.mv[component])
                    .map(|(&p, &c)| branch_cost(p, c))
                    .sum();
                let mut cost = BitCost::default();
                write_mv_component(&mut cost, component, v, &probs);
                assert_eq!(counted, cost.0 as u64, "component {v}");
            }
        }
    }

    /// The header of an inter frame the encoder wrote.
    fn inter_header() -> FrameHeader {
        use crate::{encode::encode, encode::EncodeParams, header, DecoderState, Image};
        let picture = Image::filled(48, 16, [90, 120, 140]);
        let params = EncodeParams::default();
        let key = encode(&DecoderState::default(), &picture, &params).unwrap();
        let inter = encode(&key.state, &picture, &params).unwrap();
        let (tag, size, off) = header::parse_tag(&inter.data).unwrap();
        assert!(!tag.key_frame);
        let s = &key.state;
        let inherited = header::Inherited {
            segment_features: &s.segment_features,
            filter_deltas: &s.filter_deltas,
            probs: &s.probs,
        };
        let mut bd = crate::bool_decoder::BoolDecoder::new(&inter.data[off..]);
        header::parse_header(&mut bd, tag, size, inherited).unwrap()
    }

    /// The frame walk counts what it writes under updatable probabilities
    /// and nothing else: an intra macroblock's luma and chroma modes, a
    /// new vector's components; not the key frame's modes, not a
    /// macroblock that reuses a neighbour's vector.
    #[test]
    fn frame_counts_are_the_updatable_decisions() {
        let mut hdr = inter_header();
        let intra = MbInfo {
            ref_frame: RefFrame::Intra,
            y_mode: LumaMode::Tm,
            ..MbInfo::default()
        };
        let new_mv = MbInfo {
            ref_frame: RefFrame::Last,
            y_mode: LumaMode::NewMv,
            mv: MotionVector { row: 6, col: -300 },
            ..MbInfo::default()
        };
        let zero = MbInfo {
            ref_frame: RefFrame::Golden,
            y_mode: LumaMode::ZeroMv,
            ..MbInfo::default()
        };
        // Row-major 3x1: the new vector's neighbours are intra (left) and
        // outside (above), so it is coded against a zero best vector.
        let mbs = [intra, new_mv, zero];
        let counts = count_modes(&hdr, &mbs, 3, 1);
        let mut expected = ModeCounts::default();
        let p = [128u8; 4];
        expected.put_updatable_tree(Updatable::YMode, &YMODE_TREE, &p, LumaMode::Tm);
        expected.put_updatable_tree(Updatable::UvMode, &UV_MODE_TREE, &p, intra.uv_mode);
        count_mv_component(6, 0, &mut expected);
        count_mv_component(-300, 1, &mut expected);
        assert_eq!(counts, expected);
        assert_ne!(counts.mv[1][MVP_SIGN], [0, 0]);

        hdr.tag.key_frame = true;
        let key = [intra, intra, intra];
        assert_eq!(count_modes(&hdr, &key, 3, 1), ModeCounts::default());
    }

    #[test]
    fn updated_mv_probs_are_representable_and_pay() {
        // Many identical long vectors: the is_short probability should move.
        let mut counts = ModeCounts::default();
        for _ in 0..500 {
            count_mv_component(300, 0, &mut counts);
        }
        let new = optimize_mv_probs(&DEFAULT_MV_PROBS, &counts.mv);
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
                write_mv_component(&mut bw, 0, 300, p);
            }
            bw.finish().len()
        };
        assert!(size(&new[0]) < size(&DEFAULT_MV_PROBS[0]));
    }

    #[test]
    fn few_events_do_not_update() {
        let mut counts = ModeCounts::default();
        counts.put_updatable_tree(Updatable::YMode, &YMODE_TREE, &[128; 4], LumaMode::B);
        count_mv_component(3, 1, &mut counts);
        let mut p = Probabilities::default();
        optimize_mode_probs(&mut p, &counts);
        assert_eq!(p, Probabilities::default());
    }
}
