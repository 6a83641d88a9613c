//! DCT token decoding (RFC 6386 section 13): coefficients of the 25
//! blocks of a macroblock, with the above/left "has non-zero" contexts.

use crate::bool_decoder::BoolDecoder;
use crate::dequant::Dequant;
use crate::probs::CoeffProbs;
use crate::tables::{COEFF_BANDS, DCT_CAT_PROBS, PCAT1, PCAT2, ZIGZAG};

/// Block types indexing the coefficient probabilities.
const TYPE_Y_AFTER_Y2: usize = 0;
const TYPE_Y2: usize = 1;
const TYPE_UV: usize = 2;
const TYPE_Y_WITH_DC: usize = 3;

/// Dequantized coefficients of one macroblock, in raster order per block:
/// blocks 0..16 luma, 16..20 U, 20..24 V, 24 Y2.
pub struct MbCoeffs {
    /// Coefficients per block.
    pub blocks: [[i16; 16]; 25],
    /// Per block: the position after the last coded token, 0 when none
    /// is (the encoder records 1 for an empty luma block after a Y2
    /// block, whose position 0 the Y2 block fills). Either way a value
    /// above 1 means AC coefficients are present, all that
    /// reconstruction asks.
    pub eobs: [u8; 25],
}

impl MbCoeffs {
    /// All zero.
    pub fn new() -> Self {
        MbCoeffs {
            blocks: [[0; 16]; 25],
            eobs: [0; 25],
        }
    }
}

impl Default for MbCoeffs {
    fn default() -> Self {
        Self::new()
    }
}

/// The coefficient probabilities of a frame indexed by coefficient
/// position instead of band (`[type][position][context][node]`, position
/// 16 a copy of band 0 that is never read for a token), so that the token
/// reader's inner loop needs no band lookup. Built once per frame.
///
/// Context 3 repeats context 2: contexts are sums of two 0/1 flags, so it
/// is never chosen, but with four rows a context masked with `& 3` is an
/// index LLVM can see is in range (no check and branch per block).
#[derive(Clone)]
pub struct TokenProbs(Box<[PositionProbs; 4]>);

/// One block type's probabilities by position, context and node; the
/// 11 nodes padded to 16 so that rows lie a power of two apart (a shift
/// instead of a multiply-by-11 chain for each row the token loop takes).
type PositionProbs = [[[u8; 16]; 4]; 17];

impl TokenProbs {
    /// Expands `probs` (indexed by band).
    pub fn new(probs: &CoeffProbs) -> Self {
        let mut out = Box::new([[[[0u8; 16]; 4]; 17]; 4]);
        for (t, by_pos) in out.iter_mut().enumerate() {
            for (n, p) in by_pos.iter_mut().enumerate() {
                let band = &probs[t][COEFF_BANDS[n]];
                for (row, ctx) in p.iter_mut().zip([0, 1, 2, 2]) {
                    row[..11].copy_from_slice(&band[ctx]);
                }
            }
        }
        TokenProbs(out)
    }
}

/// The "has non-zero coefficients" flags of the blocks bordering a
/// macroblock: 4 luma, 2 U, 2 V, 1 Y2.
pub type TokenContext = [u8; 9];

/// Reads one block's tokens starting at position `first`; writes the
/// dequantized values (DC with `dq[0]`, AC with `dq[1]`) and returns the
/// position after the last coded token (0 if the block is empty).
///
/// Inlined into [`read_mb_coeffs`], whose local copy of the decoder then
/// stays in registers.
#[inline(always)]
fn read_block(
    bd: &mut BoolDecoder,
    probs: &PositionProbs,
    ctx: usize,
    first: usize,
    dq: [i32; 2],
    out: &mut [i16; 16],
) -> usize {
    let mut n = first;
    let mut p = &probs[n][ctx & 3];
    if !bd.read_bool(p[0]) {
        return 0;
    }
    loop {
        // Zero tokens: no EOB check follows a zero.
        while !bd.read_bool(p[1]) {
            n += 1;
            if n == 16 {
                return 16;
            }
            p = &probs[n][0];
        }
        let v: i32;
        let next_ctx;
        if !bd.read_bool(p[2]) {
            v = 1;
            next_ctx = 1;
        } else {
            next_ctx = 2;
            v = if !bd.read_bool(p[3]) {
                if !bd.read_bool(p[4]) {
                    2
                } else {
                    3 + bd.read_bool(p[5]) as i32
                }
            } else if !bd.read_bool(p[6]) {
                if !bd.read_bool(p[7]) {
                    5 + bd.read_bool(PCAT1[0]) as i32
                } else {
                    7 + 2 * bd.read_bool(PCAT2[0]) as i32 + bd.read_bool(PCAT2[1]) as i32
                }
            } else {
                let b1 = bd.read_bool(p[8]) as usize;
                let b0 = bd.read_bool(p[9 + b1]) as usize;
                let cat = 2 * b1 + b0;
                // Categories 3..=6 (RFC 6386 section 13.2).
                let table = DCT_CAT_PROBS[2 + cat];
                let mut e = 0i32;
                for &prob in table {
                    e = 2 * e + bd.read_bool(prob) as i32;
                }
                e + 3 + (8 << cat)
            };
        }
        let signed = bd.read_sign(v);
        let factor = dq[usize::from(n > 0)];
        // libvpx keeps dequantized values in 16 bits; wrap like it does.
        out[ZIGZAG[n]] = (signed * factor) as i16;
        n += 1;
        if n == 16 {
            return 16;
        }
        p = &probs[n][next_ctx];
        if !bd.read_bool(p[0]) {
            return n;
        }
    }
}

/// Visits a macroblock's blocks in coding order with their token
/// contexts (RFC 6386 section 13.3): the Y2 block (index 24) when
/// `has_y2`, then the 16 luma blocks in raster order, then 4 U and 4 V.
/// `block(index, plane_type, first, ctx)` codes, counts or prices block
/// `index` (type `plane_type`, first coefficient position `first`) under
/// context `ctx` (0..=2) and returns whether it has a non-zero
/// coefficient, which becomes the context of the blocks right of and
/// below it. Every writer, counter and pricer of tokens walks a
/// macroblock through here; the decoder's [`read_mb_coeffs`] unrolls
/// the same walk for speed and is tested against it.
#[inline(always)]
pub fn walk_mb_blocks(
    has_y2: bool,
    above: &mut TokenContext,
    left: &mut TokenContext,
    mut block: impl FnMut(usize, usize, usize, usize) -> bool,
) {
    let (y_type, first) = if has_y2 {
        let nz = block(24, TYPE_Y2, 0, (above[8] + left[8]) as usize) as u8;
        above[8] = nz;
        left[8] = nz;
        (TYPE_Y_AFTER_Y2, 1)
    } else {
        (TYPE_Y_WITH_DC, 0)
    };
    for b in 0..16 {
        let (ax, ly) = (b & 3, b >> 2);
        let nz = block(b, y_type, first, (above[ax] + left[ly]) as usize) as u8;
        above[ax] = nz;
        left[ly] = nz;
    }
    for b in 16..24 {
        // U blocks use contexts 4..6, V blocks 6..8.
        let base = if b < 20 { 4 } else { 6 };
        let i = b & 3;
        let (ax, ly) = (base + (i & 1), base + (i >> 1));
        let nz = block(b, TYPE_UV, 0, (above[ax] + left[ly]) as usize) as u8;
        above[ax] = nz;
        left[ly] = nz;
    }
}

/// Reads all coefficients of a macroblock. `has_y2` is false for B_PRED
/// and SPLITMV macroblocks. Updates the contexts and returns whether any
/// token other than an immediate end-of-block was coded.
pub fn read_mb_coeffs(
    decoder: &mut BoolDecoder,
    probs: &TokenProbs,
    has_y2: bool,
    dq: &Dequant,
    above: &mut TokenContext,
    left: &mut TokenContext,
    out: &mut MbCoeffs,
) -> bool {
    let probs = &*probs.0;
    // Work on a copy the compiler can keep in registers; stored back once.
    let mut local = *decoder;
    let bd = &mut local;
    let (y_type, first) = if has_y2 {
        let ctx = (above[8] + left[8]) as usize;
        let eob = read_block(bd, &probs[TYPE_Y2], ctx, 0, dq.y2, &mut out.blocks[24]);
        let nz = (eob > 0) as u8;
        above[8] = nz;
        left[8] = nz;
        out.eobs[24] = eob as u8;
        (TYPE_Y_AFTER_Y2, 1)
    } else {
        (TYPE_Y_WITH_DC, 0)
    };
    // Luma by rows of four: the row and column are the loop counters and
    // the block and its end position come from the iterators, instead of
    // a block index split into both and used to index twice (9M fewer
    // instructions on box 640x480; the same walk for chroma was worse).
    for (ly, (rows, eobs)) in out.blocks[..16]
        .chunks_exact_mut(4)
        .zip(out.eobs[..16].chunks_exact_mut(4))
        .enumerate()
    {
        for (ax, (block, e)) in rows.iter_mut().zip(eobs.iter_mut()).enumerate() {
            let ctx = (above[ax] + left[ly]) as usize;
            let eob = read_block(bd, &probs[y_type], ctx, first, dq.y1, block);
            let nz = (eob > 0) as u8;
            above[ax] = nz;
            left[ly] = nz;
            *e = eob as u8;
        }
    }
    let chroma = out.blocks[16..24].iter_mut().zip(&mut out.eobs[16..24]);
    for ((block, e), &(ax, ly)) in chroma.zip(&CHROMA_CONTEXT) {
        let (ax, ly) = (usize::from(ax), usize::from(ly));
        let ctx = (above[ax] + left[ly]) as usize;
        let eob = read_block(bd, &probs[TYPE_UV], ctx, 0, dq.uv, block);
        let nz = (eob > 0) as u8;
        above[ax] = nz;
        left[ly] = nz;
        *e = eob as u8;
    }
    *decoder = local;
    // Whether any block had a token, from the end positions rather than
    // a flag carried through the loops (one live value less around the
    // token loop, which spilled it).
    out.eobs[..24].iter().any(|&e| e > 0) || (has_y2 && out.eobs[24] > 0)
}

/// The above and left context slots of the chroma blocks 16..24: U
/// blocks use 4..6, V blocks 6..8 (as [`walk_mb_blocks`] computes them).
const CHROMA_CONTEXT: [(u8, u8); 8] = [
    (4, 4),
    (5, 4),
    (4, 5),
    (5, 5),
    (6, 6),
    (7, 6),
    (6, 7),
    (7, 7),
];

/// Resets the contexts for a macroblock without coefficients. The Y2
/// context is left alone for macroblocks that have no Y2 block.
pub fn skip_mb_coeffs(has_y2: bool, above: &mut TokenContext, left: &mut TokenContext) {
    above[..8].fill(0);
    left[..8].fill(0);
    if has_y2 {
        above[8] = 0;
        left[8] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::QuantIndices;
    use crate::probs::Probabilities;

    /// The decoder keeps its own unrolled walk (through the closure of
    /// [`walk_mb_blocks`] it measured 1.5-3% slower on box 640x480): it
    /// must leave the contexts exactly as the shared walk does, given the
    /// blocks it found non-zero, and report a token exactly when one of
    /// them is.
    #[test]
    fn decoder_walk_matches_shared_walk() {
        let probs = TokenProbs::new(&Probabilities::default().coeff);
        let dq = Dequant::new(40, &QuantIndices::default());
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        for case in 0..500 {
            // Every tenth macroblock all zeros: every bool decodes as 0,
            // so every block is empty and nothing may count as coded.
            let bytes: Vec<u8> = (0..200)
                .map(|_| if case % 10 == 0 { 0 } else { next() })
                .collect();
            let mut above: TokenContext = core::array::from_fn(|_| next() & 1);
            let mut left: TokenContext = core::array::from_fn(|_| next() & 1);
            let (mut a2, mut l2) = (above, left);
            let has_y2 = case % 3 != 0;
            let mut out = MbCoeffs::new();
            let mut bd = BoolDecoder::new(&bytes);
            let any = read_mb_coeffs(
                &mut bd, &probs, has_y2, &dq, &mut above, &mut left, &mut out,
            );
            let mut any_walk = false;
            walk_mb_blocks(has_y2, &mut a2, &mut l2, |b, _, first, _| {
                let nz = out.eobs[b] as usize > first;
                any_walk |= nz;
                nz
            });
            assert_eq!((above, left), (a2, l2), "case {case}");
            assert_eq!(any, any_walk, "case {case}");
        }
    }
}
