//! Per-macroblock prediction records: segment ids, skip flags, intra modes,
//! reference frames and motion vectors (RFC 6386 sections 10, 11, 16, 17).

use crate::bool_decoder::BoolDecoder;
use crate::header::FrameHeader;
use crate::prediction::{ChromaMode, LumaMode, MvSplit, RefFrame, SubMvRef, SubblockMode};
use crate::tables::{self, *};

/// A motion vector in quarter-pixel units of luma, as coded in the stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MotionVector {
    /// Vertical component (positive is down).
    pub row: i16,
    /// Horizontal component (positive is right).
    pub col: i16,
}

impl MotionVector {
    /// The zero vector.
    pub const ZERO: MotionVector = MotionVector { row: 0, col: 0 };

    fn is_zero(self) -> bool {
        self.row == 0 && self.col == 0
    }
}

/// Everything the first partition says about one macroblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MbInfo {
    /// Luma mode: intra (`Dc`..`B`) or inter (`NearestMv`..`SplitMv`).
    pub y_mode: LumaMode,
    /// Chroma intra mode (intra macroblocks only).
    pub uv_mode: ChromaMode,
    /// The picture the macroblock predicts from.
    pub ref_frame: RefFrame,
    /// Segment id 0..3.
    pub segment: u8,
    /// The coded skip flag: no non-zero coefficients follow.
    pub skip: bool,
    /// Split type of a SPLITMV macroblock.
    pub partitioning: MvSplit,
    /// Macroblock motion vector (for SPLITMV, that of the last subblock).
    pub mv: MotionVector,
    /// Subblock modes for B_PRED; for other intra modes the implied
    /// subblock mode used as context by later key frame macroblocks.
    pub b_modes: [SubblockMode; 16],
    /// Per-subblock motion vectors (all equal unless SPLITMV; zero for intra).
    pub mvs: [MotionVector; 16],
}

impl Default for MbInfo {
    fn default() -> Self {
        MbInfo {
            y_mode: LumaMode::Dc,
            uv_mode: ChromaMode::Dc,
            ref_frame: RefFrame::Intra,
            segment: 0,
            skip: false,
            partitioning: MvSplit::TopBottom,
            mv: MotionVector::ZERO,
            b_modes: [SubblockMode::Dc; 16],
            mvs: [MotionVector::ZERO; 16],
        }
    }
}

/// Reads the prediction records of all macroblocks of a frame.
///
/// `prev_segments` is the segment map persisting from earlier frames (one
/// byte per macroblock, or empty when there is none); ids not coded in
/// this frame are taken from it.
pub fn read_modes(
    bd: &mut BoolDecoder,
    hdr: &FrameHeader,
    mb_cols: usize,
    mb_rows: usize,
    prev_segments: &[u8],
) -> Vec<MbInfo> {
    let mut mbs = vec![MbInfo::default(); mb_cols * mb_rows];
    for mb_y in 0..mb_rows {
        let (done, rest) = mbs.split_at_mut(mb_y * mb_cols);
        let above = done
            .get(done.len().saturating_sub(mb_cols)..)
            .filter(|a| !a.is_empty());
        read_mode_row(
            bd,
            hdr,
            mb_y,
            mb_cols,
            mb_rows,
            prev_segments,
            above,
            &mut rest[..mb_cols],
        );
    }
    mbs
}

/// Reads the records of macroblock row `mb_y` into `row` (what
/// [`read_modes`] does for each row), given the records of the row above
/// (`None` for the first row). The threaded decoder reads a frame's
/// rows as it goes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_mode_row(
    bd: &mut BoolDecoder,
    hdr: &FrameHeader,
    mb_y: usize,
    mb_cols: usize,
    mb_rows: usize,
    prev_segments: &[u8],
    above_row: Option<&[MbInfo]>,
    row: &mut [MbInfo],
) {
    let outside = MbInfo::default();
    for mb_x in 0..mb_cols {
        let idx = mb_y * mb_cols + mb_x;
        let mut mb = MbInfo::default();
        if hdr.update_segment_map {
            let p = &hdr.segment_tree_probs;
            mb.segment = if bd.read_bool(p[0]) {
                2 + bd.read_bool(p[2]) as u8
            } else {
                bd.read_bool(p[1]) as u8
            };
        } else if !hdr.tag.key_frame {
            mb.segment = prev_segments.get(idx).copied().unwrap_or(0);
        }
        mb.skip = match hdr.skip_prob {
            Some(p) => bd.read_bool(p),
            None => false,
        };
        // Neighbours by reference: an `MbInfo` is 90 bytes, and
        // copying three per macroblock showed in profiles.
        let (done, rest) = row.split_at_mut(mb_x);
        let left = done.last().unwrap_or(&outside);
        let (above, above_left) = match above_row {
            Some(a) => (&a[mb_x], if mb_x > 0 { &a[mb_x - 1] } else { &outside }),
            None => (&outside, &outside),
        };
        if hdr.tag.key_frame {
            read_kf_modes(bd, &mut mb, above, left);
        } else {
            let bounds = MvClamp::new(mb_x, mb_y, mb_cols, mb_rows);
            read_inter_modes(bd, hdr, &mut mb, [above, left, above_left], &bounds);
        }
        rest[0] = mb;
    }
}

/// The records above, left of and above-left of macroblock (`mb_x`,
/// `mb_y`) among a frame's records in raster order (only those before it
/// are read, so `mbs` may end there), `outside` for those beyond the
/// frame's edges (RFC 6386 sections 11.3 and 16.3). Reader, writer,
/// counter and mode search take their neighbours from here.
#[inline(always)]
pub fn mb_neighbours<'a>(
    mbs: &'a [MbInfo],
    mb_cols: usize,
    mb_x: usize,
    mb_y: usize,
    outside: &'a MbInfo,
) -> [&'a MbInfo; 3] {
    let idx = mb_y * mb_cols + mb_x;
    let above = if mb_y > 0 {
        &mbs[idx - mb_cols]
    } else {
        outside
    };
    let left = if mb_x > 0 { &mbs[idx - 1] } else { outside };
    let above_left = if mb_x > 0 && mb_y > 0 {
        &mbs[idx - mb_cols - 1]
    } else {
        outside
    };
    [above, left, above_left]
}

fn read_kf_modes(bd: &mut BoolDecoder, mb: &mut MbInfo, above: &MbInfo, left: &MbInfo) {
    mb.ref_frame = RefFrame::Intra;
    mb.y_mode = bd.read_tree_as(&KF_YMODE_TREE, &KF_YMODE_PROBS);
    if mb.y_mode == LumaMode::B {
        for b in 0..16 {
            let (a, l) = bmode_neighbours(above, left, &mb.b_modes, b);
            mb.b_modes[b] = bd.read_tree_as(&BMODE_TREE, &KF_BMODE_PROBS[a as usize][l as usize]);
        }
    } else {
        mb.b_modes = [mb.y_mode.implied_subblock_mode(); 16];
    }
    mb.uv_mode = bd.read_tree_as(&UV_MODE_TREE, &KF_UV_MODE_PROBS);
}

/// How far a macroblock's near, nearest and best vectors may point
/// outside the frame before they are clamped, in quarter pixels (RFC 6386
/// section 18.1; libvpx's `vp8_clamp_mv2`).
#[derive(Clone, Copy, Debug)]
pub struct MvClamp {
    left: i32,
    right: i32,
    top: i32,
    bottom: i32,
}

impl MvClamp {
    /// Bounds for the macroblock at (`mb_x`, `mb_y`).
    pub fn new(mb_x: usize, mb_y: usize, mb_cols: usize, mb_rows: usize) -> Self {
        // A vector may reach 16 pixels (plus the filter taps) beyond the edge.
        let margin = 16 * 4;
        MvClamp {
            left: -((mb_x as i32) * 64) - margin,
            right: ((mb_cols - 1 - mb_x) as i32) * 64 + margin,
            top: -((mb_y as i32) * 64) - margin,
            bottom: ((mb_rows - 1 - mb_y) as i32) * 64 + margin,
        }
    }

    /// Clamps a vector the way the decoder clamps near/nearest/best.
    pub fn clamp(&self, mv: MotionVector) -> MotionVector {
        MotionVector {
            col: (mv.col as i32).clamp(self.left, self.right) as i16,
            row: (mv.row as i32).clamp(self.top, self.bottom) as i16,
        }
    }
}

/// The neighbours' context of an inter macroblock: candidate vectors and
/// the probabilities of the mode tree (RFC 16.3).
#[derive(Clone, Copy, Debug)]
pub struct InterContext {
    /// Nearest candidate, clamped.
    pub nearest: MotionVector,
    /// Near candidate, clamped.
    pub near: MotionVector,
    /// Base for new vectors, clamped.
    pub best: MotionVector,
    /// Probabilities for MV_REF_TREE.
    pub mode_probs: [u8; 4],
}

/// The inter context of a macroblock whose reference is `ref_frame`, from
/// its above, left and above-left neighbours; shared by the reader and the
/// encoder so both see the same candidates.
pub fn inter_context(
    neighbours: [&MbInfo; 3],
    ref_frame: RefFrame,
    sign_bias: [bool; 4],
    clamp: &MvClamp,
) -> InterContext {
    let near = find_near_mvs(neighbours, ref_frame, sign_bias);
    let c = near.counts;
    // The split count uses the neighbours' modes, not their vectors.
    let split_count = 2 * (neighbours[0].y_mode == LumaMode::SplitMv) as usize
        + 2 * (neighbours[1].y_mode == LumaMode::SplitMv) as usize
        + (neighbours[2].y_mode == LumaMode::SplitMv) as usize;
    let ctx = &tables::MODE_CONTEXTS;
    InterContext {
        nearest: clamp.clamp(near.mvs[1]),
        near: clamp.clamp(near.mvs[2]),
        // "Best" is nearest when its weight is at least that of zero.
        best: clamp.clamp(if c[1] >= c[0] {
            near.mvs[1]
        } else {
            near.mvs[0]
        }),
        mode_probs: [
            ctx[c[0] as usize][0],
            ctx[c[1] as usize][1],
            ctx[c[2] as usize][2],
            ctx[split_count][3],
        ],
    }
}

/// Reads one motion vector component in quarter pixels (RFC 17.1).
fn read_mv_component(bd: &mut BoolDecoder, p: &[u8; 19]) -> i16 {
    let mut x: i32;
    if bd.read_bool(p[MVP_IS_SHORT]) {
        x = 0;
        for i in 0..3 {
            x += (bd.read_bool(p[MVP_BITS + i]) as i32) << i;
        }
        for i in (4..MV_LONG_BITS).rev() {
            x += (bd.read_bool(p[MVP_BITS + i]) as i32) << i;
        }
        // Bit 3 is implicit when no higher bit is set (the value would be short).
        if x & 0xfff0 == 0 || bd.read_bool(p[MVP_BITS + 3]) {
            x += 8;
        }
    } else {
        x = bd.read_tree(&SMALL_MV_TREE, &p[MVP_SHORT..MVP_SHORT + 7]) as i32;
    }
    if x != 0 && bd.read_bool(p[MVP_SIGN]) {
        x = -x;
    }
    x as i16
}

fn read_mv(bd: &mut BoolDecoder, probs: &[[u8; 19]; 2]) -> MotionVector {
    let row = read_mv_component(bd, &probs[0]);
    let col = read_mv_component(bd, &probs[1]);
    MotionVector { row, col }
}

fn add_mv(a: MotionVector, b: MotionVector) -> MotionVector {
    MotionVector {
        row: a.row.wrapping_add(b.row),
        col: a.col.wrapping_add(b.col),
    }
}

/// The near/nearest/best vector search of RFC 16.3 (libvpx
/// `vp8_find_near_mvs`), with the counts that select mode probabilities.
pub struct NearMvs {
    /// Nearest, near and best candidates (index 0 is "best" before sorting
    /// in libvpx; here: `[zero slot, nearest, near, third]`).
    pub mvs: [MotionVector; 4],
    /// Weights: `[intra/zero, nearest, near, split]`.
    pub counts: [u8; 4],
}

/// Finds the neighbour-based candidate vectors for a macroblock whose
/// reference frame is `ref_frame`, from the above, left and above-left
/// macroblocks. `sign_bias` is indexed by reference frame.
pub fn find_near_mvs(
    neighbours: [&MbInfo; 3],
    ref_frame: RefFrame,
    sign_bias: [bool; 4],
) -> NearMvs {
    let mut mvs = [MotionVector::ZERO; 4];
    let mut counts = [0u8; 4];
    let mut n = 0usize; // index of the last candidate written
    let weights = [2u8, 2, 1];
    for (i, nb) in neighbours.iter().enumerate() {
        if nb.ref_frame == RefFrame::Intra {
            continue;
        }
        if nb.mv.is_zero() {
            counts[0] += weights[i];
            continue;
        }
        let mut mv = nb.mv;
        if sign_bias[nb.ref_frame.index()] != sign_bias[ref_frame.index()] {
            mv.row = mv.row.wrapping_neg();
            mv.col = mv.col.wrapping_neg();
        }
        // The above neighbour always opens a new slot; later ones merge
        // with the previous candidate when equal.
        if i == 0 || mv != mvs[n] {
            n += 1;
            mvs[n] = mv;
        }
        counts[n] += weights[i];
    }
    // If there are three distinct vectors, merge above-left into nearest
    // when equal.
    if counts[3] > 0 && mvs[3] == mvs[1] {
        counts[1] += 1;
    }
    counts[3] = 0;
    if counts[2] > counts[1] {
        counts.swap(1, 2);
        mvs.swap(1, 2);
    }
    NearMvs { mvs, counts }
}

fn read_inter_modes(
    bd: &mut BoolDecoder,
    hdr: &FrameHeader,
    mb: &mut MbInfo,
    nb: [&MbInfo; 3],
    bounds: &MvClamp,
) {
    if !bd.read_bool(hdr.prob_intra) {
        mb.ref_frame = RefFrame::Intra;
        mb.y_mode = bd.read_tree_as(&YMODE_TREE, &hdr.probs.y_mode);
        if mb.y_mode == LumaMode::B {
            for m in mb.b_modes.iter_mut() {
                *m = bd.read_tree_as(&BMODE_TREE, &DEFAULT_BMODE_PROBS);
            }
        } else {
            mb.b_modes = [mb.y_mode.implied_subblock_mode(); 16];
        }
        mb.uv_mode = bd.read_tree_as(&UV_MODE_TREE, &hdr.probs.uv_mode);
        return;
    }
    mb.ref_frame = if !bd.read_bool(hdr.prob_last) {
        RefFrame::Last
    } else if bd.read_bool(hdr.prob_golden) {
        RefFrame::AltRef
    } else {
        RefFrame::Golden
    };
    let sign_bias = [false, false, hdr.sign_bias_golden, hdr.sign_bias_altref];
    let ictx = inter_context(nb, mb.ref_frame, sign_bias, bounds);
    mb.y_mode = bd.read_tree_as(&MV_REF_TREE, &ictx.mode_probs);
    let best = ictx.best;
    match mb.y_mode {
        LumaMode::NearestMv => mb.mv = ictx.nearest,
        LumaMode::NearMv => mb.mv = ictx.near,
        LumaMode::ZeroMv => mb.mv = MotionVector::ZERO,
        LumaMode::NewMv => mb.mv = add_mv(read_mv(bd, &hdr.probs.mv), best),
        // SplitMv, the tree's only other leaf.
        _ => {
            read_split_mvs(bd, hdr, mb, nb[1], nb[0], best);
            mb.mv = mb.mvs[15];
            return;
        }
    }
    mb.mvs = [mb.mv; 16];
}

fn read_split_mvs(
    bd: &mut BoolDecoder,
    hdr: &FrameHeader,
    mb: &mut MbInfo,
    left: &MbInfo,
    above: &MbInfo,
    best: MotionVector,
) {
    let s: MvSplit = bd.read_tree_as(&MBSPLIT_TREE, &MBSPLIT_PROBS);
    mb.partitioning = s;
    let map = &MBSPLITS[s.index()];
    for part in 0..MBSPLIT_COUNT[s.index()] {
        let k = split_first_block(s, part);
        let (left_mv, above_mv) = split_mv_neighbours(left, above, &mb.mvs, k);
        let ctx = sub_mv_context(left_mv, above_mv);
        let mv = match bd.read_tree_as(&SUB_MV_REF_TREE, &SUB_MV_REF_PROBS[ctx]) {
            SubMvRef::Left => left_mv,
            SubMvRef::Above => above_mv,
            SubMvRef::Zero => MotionVector::ZERO,
            SubMvRef::New => add_mv(read_mv(bd, &hdr.probs.mv), best),
        };
        for (b, &p) in map.iter().enumerate() {
            if p as usize == part {
                mb.mvs[b] = mv;
            }
        }
    }
}

/// The sub-block modes above and left of sub-block `b` of a B_PRED
/// macroblock whose modes so far are `modes`, taken from the macroblocks
/// `above` and `left` at its edges (RFC 6386 section 11.3): the context
/// of a key frame's sub-block mode. Writer, reader and mode search all
/// take it from here.
#[inline]
pub fn bmode_neighbours(
    above: &MbInfo,
    left: &MbInfo,
    modes: &[SubblockMode; 16],
    b: usize,
) -> (SubblockMode, SubblockMode) {
    let a = if b < 4 {
        above.b_modes[b + 12]
    } else {
        modes[b - 4]
    };
    let l = if b & 3 == 0 {
        left.b_modes[b + 3]
    } else {
        modes[b - 1]
    };
    (a, l)
}

/// The first sub-block, in raster order, of partition `part` of split
/// type `split` (RFC 6386 section 16.4): whose neighbours give the
/// partition's context.
#[inline]
pub fn split_first_block(split: MvSplit, part: usize) -> usize {
    MBSPLITS[split.index()]
        .iter()
        .position(|&p| p as usize == part)
        .unwrap_or(0)
}

/// The vectors left of and above sub-block `k` of a SPLITMV macroblock
/// whose sub-block vectors so far are `mvs`, taken from the macroblocks
/// `left` and `above` at its edges (RFC 6386 section 16.4; a non-SPLITMV
/// neighbour's sub-block vectors are all its vector, an intra one's
/// zero). Writer, reader, counter and split search all take them from
/// here.
#[inline]
pub fn split_mv_neighbours(
    left: &MbInfo,
    above: &MbInfo,
    mvs: &[MotionVector; 16],
    k: usize,
) -> (MotionVector, MotionVector) {
    let left_mv = if k & 3 == 0 {
        left.mvs[k + 3]
    } else {
        mvs[k - 1]
    };
    let above_mv = if k < 4 { above.mvs[k + 12] } else { mvs[k - 4] };
    (left_mv, above_mv)
}

/// The sub-vector reference a SPLITMV partition whose vector is `mv`
/// codes, given the vectors `left` and `above` of its first sub-block
/// (RFC 6386 section 16.4): the first of LEFT, ABOVE, ZERO that yields
/// `mv`, else NEW, as libvpx's writer chooses. Writer, counter and split
/// search all take it from here.
#[inline]
pub fn sub_mv_ref(mv: MotionVector, left: MotionVector, above: MotionVector) -> SubMvRef {
    if mv == left {
        SubMvRef::Left
    } else if mv == above {
        SubMvRef::Above
    } else if mv == MotionVector::ZERO {
        SubMvRef::Zero
    } else {
        SubMvRef::New
    }
}

/// Sub-MV reference context from the left and above vectors (RFC 16.4).
pub fn sub_mv_context(left: MotionVector, above: MotionVector) -> usize {
    let lz = left == MotionVector::ZERO;
    let az = above == MotionVector::ZERO;
    if left == above {
        if az {
            4
        } else {
            3
        }
    } else if az {
        2
    } else if lz {
        1
    } else {
        0
    }
}
