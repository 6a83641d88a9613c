//! Quantization: libvpx's regular quantizer and the mapping from vpxenc's
//! 0..63 quantizer scale to the 0..127 q index.
//!
//! The dequantization factors are fixed by the bitstream (RFC 6386 section
//! 14.1) and come from the decoder's `Dequant`; how coefficients are
//! rounded to levels is the encoder's choice.
//! [`quantize_block`] reproduces libvpx's "regular" quantizer (zero bin,
//! rounding offset, zero-run zero-bin boost, reciprocal multiply), so that
//! at the same q index we make the same decisions as the reference encoder
//! before any rate-distortion refinement. [`quantize_block_rd`] is a simple
//! rate-distortion-aware alternative that can only lower levels.

use crate::dequant::{libvpx_quant_indices, Dequant};
pub use crate::tables::ZIGZAG;

/// vpxenc's 0..63 quantizer scale to q index (libvpx's `q_trans`). The
/// steps are uneven: finer at low q, where each index step costs more bits.
const Q_TRANS: [u8; 64] = [
    0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 15, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30,
    31, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 64, 67, 70, 73, 76, 79, 82, 85,
    88, 91, 94, 97, 100, 103, 106, 109, 112, 115, 118, 121, 124, 127,
];

/// Maps vpxenc's `--min-q/--max-q/--cq-level` scale (0..=63) to the
/// bitstream's q index (0..=127) exactly as libvpx does. Values above 63 are
/// clamped to 63.
pub fn quantizer_to_qindex(q: u8) -> u8 {
    Q_TRANS[usize::from(q.min(63))]
}

/// The inverse of [`quantizer_to_qindex`] as libvpx computes it
/// (`vp8_reverse_trans`): the smallest quantizer whose q index is at least
/// `qindex`. Used to report a q index on the user's scale.
pub fn qindex_to_quantizer(qindex: u8) -> u8 {
    Q_TRANS.iter().position(|&t| t >= qindex).unwrap_or(63) as u8
}

/// libvpx's zero-bin widening after a run of zeros, in 1/128 of the AC step,
/// indexed by the number of zeros since the last non-zero level. Isolated
/// small coefficients late in a run cost many bits for little gain.
const ZRUN_ZBIN_BOOST: [i32; 16] = [0, 0, 8, 10, 12, 14, 16, 20, 24, 28, 32, 36, 40, 44, 44, 44];

/// Zero bin, in 1/128 of the step: 84 at low q indices and 80 from 48 on
/// (libvpx's `qzbin_factors`, same for all block types).
fn zbin_factor(qindex: u8) -> i32 {
    if qindex < 48 {
        84
    } else {
        80
    }
}

/// Rounding offset in 1/128 of the step (libvpx's `qrounding_factors`):
/// 48/128 = 0.375, i.e. a dead-zone quantizer biased towards smaller levels.
const ROUND_FACTOR: i32 = 48;

/// Quantizer constants for one block type at one q index, per coefficient
/// position in raster order (position 0 is DC, all others share the AC
/// values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockQuantizer {
    zbin: [i32; 16],
    round: [i32; 16],
    /// Reciprocal multiplier and post-shift: `y = (((x * quant) >> 16) + x)
    /// * shift >> 16` equals `x / step` for the coefficient range (libvpx's
    ///   "improved" quantizer).
    quant: [i32; 16],
    shift: [i32; 16],
    dequant: [i16; 16],
    zrun_boost: [i32; 16],
    zbin_extra: i32,
}

/// libvpx's `invert_quant` with improved_quant on: a 17-bit reciprocal
/// split into a 16-bit multiplier (minus 1<<16) and a shift.
fn invert_quant(d: i16) -> (i32, i32) {
    let d = i32::from(d);
    let l = 31 - (d as u32).leading_zeros() as i32; // floor(log2(d))
    let m = 1 + (1 << (16 + l)) / d;
    // Stored in a short in libvpx; the value is always in -32768..=1.
    ((m - (1 << 16)) as i16 as i32, 1 << (16 - l))
}

impl BlockQuantizer {
    /// Constants for a block whose DC step is `dc` and AC step `ac` at
    /// `qindex` (the q index only selects the zero-bin factor).
    pub fn new(qindex: u8, dc: i16, ac: i16) -> Self {
        let zf = zbin_factor(qindex);
        let mut bq = BlockQuantizer {
            zbin: [0; 16],
            round: [0; 16],
            quant: [0; 16],
            shift: [0; 16],
            dequant: [0; 16],
            zrun_boost: [0; 16],
            zbin_extra: 0,
        };
        for (i, &boost) in ZRUN_ZBIN_BOOST.iter().enumerate() {
            let step = if i == 0 { dc } else { ac };
            let s = i32::from(step);
            bq.zbin[i] = (zf * s + 64) >> 7;
            bq.round[i] = (ROUND_FACTOR * s) >> 7;
            (bq.quant[i], bq.shift[i]) = invert_quant(step);
            bq.dequant[i] = step;
            // The boost is indexed by run length, not position, and scales
            // with the AC step (its first two entries are zero).
            bq.zrun_boost[i] = (i32::from(ac) * boost) >> 7;
        }
        bq
    }

    /// A magnitude below which every coefficient quantizes to zero,
    /// wherever it is in the block (the smallest zero bin).
    pub fn zero_bin(&self) -> i32 {
        self.zbin[0].min(self.zbin[1]) + self.zbin_extra
    }

    /// The `[dc, ac]` dequantization steps.
    pub fn steps(&self) -> [i16; 2] {
        [self.dequant[0], self.dequant[1]]
    }

    /// Widens the zero bin of every coefficient by `boost` 1/128ths of the AC
    /// step (libvpx's `zbin_extra`: zero-bin over-quant plus mode boost).
    pub fn set_zbin_boost(&mut self, boost: i32) {
        self.zbin_extra = (i32::from(self.dequant[1]) * boost) >> 7;
    }
}

/// All quantizer constants for one q index: luma, Y2 and chroma.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantizer {
    /// The q index these constants are for.
    pub qindex: u8,
    /// Luma blocks.
    pub y1: BlockQuantizer,
    /// The Y2 block.
    pub y2: BlockQuantizer,
    /// Chroma blocks.
    pub uv: BlockQuantizer,
}

impl Quantizer {
    /// Sets up the quantizer for the frame's base index `qindex` (which
    /// selects the zero bin) and the decoder's dequantization factors
    /// `dq` for it: the encoder divides by exactly the steps the decoder
    /// multiplies by.
    pub fn new(qindex: u8, dq: &Dequant) -> Self {
        let qindex = qindex.min(127);
        let bq = |[dc, ac]: [i32; 2]| BlockQuantizer::new(qindex, dc as i16, ac as i16);
        Quantizer {
            qindex,
            y1: bq(dq.y1),
            y2: bq(dq.y2),
            uv: bq(dq.uv),
        }
    }

    /// The quantizer libvpx's encoder uses at `qindex`, with its
    /// quantizer deltas (`libvpx_quant_indices`).
    pub fn libvpx(qindex: u8) -> Self {
        let qi = libvpx_quant_indices(qindex.min(127));
        Quantizer::new(qi.q_index, &Dequant::new(qi.q_index as i32, &qi))
    }

    /// Widens the zero bins as libvpx does for a macroblock:
    /// `over_quant + mode_boost` 1/128ths of the AC step for luma and
    /// chroma, `over_quant / 2 + mode_boost` for Y2. Both are 0 by default;
    /// libvpx uses a mode boost for some inter modes.
    pub fn set_zbin_boost(&mut self, over_quant: i32, mode_boost: i32) {
        self.y1.set_zbin_boost(over_quant + mode_boost);
        self.uv.set_zbin_boost(over_quant + mode_boost);
        self.y2.set_zbin_boost(over_quant / 2 + mode_boost);
    }
}

/// One quantized 4x4 block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantizedBlock {
    /// Quantized levels in zigzag (coding) order.
    pub levels: [i16; 16],
    /// Dequantized coefficients (level times step) in raster order: what the
    /// decoder will feed its inverse transform.
    pub dequant: [i16; 16],
    /// One past the zigzag index of the last non-zero level; 0 if all levels
    /// are zero.
    pub eob: usize,
}

impl QuantizedBlock {
    /// Recomputes `dequant` and `eob` from `levels`.
    pub(crate) fn finish(&mut self, bq: &BlockQuantizer) {
        self.eob = 0;
        for (i, &l) in self.levels.iter().enumerate() {
            let rc = ZIGZAG[i];
            self.dequant[rc] = (i32::from(l) * i32::from(bq.dequant[rc])) as i16;
            if l != 0 {
                self.eob = i + 1;
            }
        }
    }
}

/// Quantizes a block of transform coefficients (raster order) the way
/// libvpx's regular quantizer does.
///
/// A coefficient becomes non-zero only if its magnitude reaches the zero bin
/// (about 0.65 of the step, widened after runs of zeros and by the boost
/// set on `bq`); it is then rounded as `(|c| + 0.375 step) / step`.
///
/// With `skip_dc` (luma blocks whose DC goes to the Y2 block) level 0 is
/// returned as zero and not counted in `eob`, since it is not coded. It is
/// still quantized internally first, because libvpx does so and its
/// outcome decides the zero run, hence the zero bin, of the following
/// coefficients; skipping it would make different decisions from libvpx.
pub fn quantize_block(coeffs: &[i16; 16], bq: &BlockQuantizer, skip_dc: bool) -> QuantizedBlock {
    let mut out = QuantizedBlock::default();
    // Positions below the narrowest zero bin any run can give are zero
    // whatever the run: a branch-free pass finds the others, and only
    // those take the serial walk (the zero run at each is the distance
    // from the last non-zero level, as counting zeros one by one gives).
    let min_boost = bq.zrun_boost.iter().copied().min().unwrap_or(0);
    let mut maybe = 0u32;
    for (i, &rc) in ZIGZAG.iter().enumerate() {
        let x = i32::from(coeffs[rc]).abs();
        maybe |= u32::from(x >= bq.zbin[rc] + min_boost + bq.zbin_extra) << i;
    }
    let mut next_run_start = 0usize; // position after the last non-zero level
    while maybe != 0 {
        let i = maybe.trailing_zeros() as usize;
        maybe &= maybe - 1;
        let rc = ZIGZAG[i];
        let z = i32::from(coeffs[rc]);
        let x = z.abs();
        let run = i - next_run_start;
        let zbin = bq.zbin[rc] + bq.zrun_boost[run.min(15)] + bq.zbin_extra;
        if x >= zbin {
            let x = x + bq.round[rc];
            let y = ((((x * bq.quant[rc]) >> 16) + x) * bq.shift[rc]) >> 16;
            if y != 0 {
                out.levels[i] = (if z < 0 { -y } else { y }) as i16;
                next_run_start = i + 1;
            }
        }
    }
    if skip_dc {
        out.levels[0] = 0;
    }
    out.finish(bq);
    out
}

/// Approximate cost in 1/256 bit of coding a level of magnitude `abs` with
/// VP8's token tree under typical probabilities: a stand-in until real
/// costs from the current probabilities are wired in. Includes the sign bit
/// for non-zero levels.
pub fn approx_level_cost(abs: u32) -> u32 {
    const BIT: u32 = 256;
    match abs {
        0 => BIT,
        1 => 3 * BIT,
        2 => 4 * BIT + BIT / 2,
        3..=4 => 6 * BIT,
        5..=6 => 7 * BIT + BIT / 2,
        7..=10 => 9 * BIT,
        11..=18 => 10 * BIT + BIT / 2,
        19..=34 => 12 * BIT,
        35..=66 => 13 * BIT + BIT / 2,
        _ => 19 * BIT,
    }
}

/// Rate-distortion-aware quantization: starts from [`quantize_block`] and,
/// for each non-zero level, considers the level one smaller in magnitude
/// (possibly zero), keeping whichever minimises `distortion + lambda * bits`,
/// where distortion is the squared coefficient error, `lambda` is in
/// squared-error units per bit, and the bits come from
/// `cost(zigzag_index, abs_level)` in 1/256 bit. Trailing levels whose
/// removal pays (distortion versus their cost plus the end-of-block saving)
/// are then dropped. Levels are only ever lowered, so the result never
/// costs more bits than the regular quantizer's, only trades distortion.
pub fn quantize_block_rd(
    coeffs: &[i16; 16],
    bq: &BlockQuantizer,
    skip_dc: bool,
    lambda: u32,
    cost: impl Fn(usize, u32) -> u32,
) -> QuantizedBlock {
    let mut out = quantize_block(coeffs, bq, skip_dc);
    let lambda = u64::from(lambda);
    let score = |i: usize, abs: u32| -> u64 {
        let rc = ZIGZAG[i];
        let c = i64::from(coeffs[rc]).abs();
        let r = i64::from(abs) * i64::from(bq.dequant[rc]);
        ((c - r) * (c - r)) as u64 * 256 + lambda * u64::from(cost(i, abs))
    };
    for i in 0..out.eob {
        let l = out.levels[i];
        if l == 0 {
            continue;
        }
        let abs = u32::from(l.unsigned_abs());
        if score(i, abs - 1) < score(i, abs) {
            let nl = (abs - 1) as i16;
            out.levels[i] = if l < 0 { -nl } else { nl };
        }
    }
    // Drop trailing levels when the bits saved (their cost and the zero
    // tokens that would have preceded them) outweigh the added distortion.
    out.finish(bq);
    loop {
        if out.eob == 0 {
            break;
        }
        let last = out.eob - 1;
        let prev = out.levels[..last]
            .iter()
            .rposition(|&l| l != 0)
            .map_or(usize::from(skip_dc), |p| p + 1);
        let keep: u64 = (prev..=last)
            .map(|i| score(i, u32::from(out.levels[i].unsigned_abs())))
            .sum();
        let drop: u64 = (prev..=last)
            .map(|i| score(i, 0) - lambda * u64::from(cost(i, 0)))
            .sum();
        if drop <= keep {
            out.levels[last] = 0;
            out.finish(bq);
        } else {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::QuantIndices;

    #[test]
    fn q_trans_matches_libvpx() {
        assert_eq!(quantizer_to_qindex(0), 0);
        assert_eq!(quantizer_to_qindex(10), 12);
        assert_eq!(quantizer_to_qindex(20), 25);
        assert_eq!(quantizer_to_qindex(30), 39);
        assert_eq!(quantizer_to_qindex(40), 59);
        assert_eq!(quantizer_to_qindex(50), 88);
        assert_eq!(quantizer_to_qindex(63), 127);
        assert_eq!(quantizer_to_qindex(200), 127);
        for q in 0..63u8 {
            assert!(quantizer_to_qindex(q) < quantizer_to_qindex(q + 1));
            assert_eq!(qindex_to_quantizer(quantizer_to_qindex(q)), q);
        }
        // vp8_reverse_trans rounds up to the next scale value.
        assert_eq!(qindex_to_quantizer(6), 6);
        assert_eq!(qindex_to_quantizer(128), 63);
    }

    #[test]
    fn reciprocal_equals_division() {
        // The multiply-shift must equal integer division for every step and
        // every magnitude a coefficient plus rounding can reach.
        for d in 4..=440i16 {
            let (q, s) = invert_quant(d);
            for x in 0..=20_000i32 {
                let y = ((((x * q) >> 16) + x) * s) >> 16;
                assert_eq!(y, x / i32::from(d), "x {x} d {d}");
            }
        }
    }

    /// libvpx's regular quantizer restated with plain division and an
    /// explicit zero-run counter, to check the table-driven version.
    fn naive(coeffs: &[i16; 16], qindex: u8, dc: i16, ac: i16, skip_dc: bool) -> [i16; 16] {
        let zf = if qindex < 48 { 84 } else { 80 };
        let mut out = [0i16; 16];
        let mut zeros = 0usize;
        for i in 0..16 {
            let step = i32::from(if i == 0 { dc } else { ac });
            let c = i32::from(coeffs[ZIGZAG[i]]);
            let zbin = ((zf * step + 64) >> 7) + ((i32::from(ac) * ZRUN_ZBIN_BOOST[zeros]) >> 7);
            let mut level = 0;
            if c.abs() >= zbin {
                level = (c.abs() + ((48 * step) >> 7)) / step;
            }
            if level == 0 {
                zeros = (zeros + 1).min(15);
            } else {
                zeros = 0;
            }
            out[i] = (level * c.signum()) as i16;
        }
        if skip_dc {
            out[0] = 0;
        }
        out
    }

    #[test]
    fn matches_naive_restatement_at_every_qindex() {
        let mut s = 3u32;
        for qindex in 0..128u8 {
            let q = Quantizer::libvpx(qindex);
            for (bq, [dc, ac]) in [
                (&q.y1, q.y1.steps()),
                (&q.y2, q.y2.steps()),
                (&q.uv, q.uv.steps()),
            ] {
                for n in 0..300 {
                    let mut c = [0i16; 16];
                    // Mostly small values around the zero bin, some large.
                    let amp = if n % 3 == 0 {
                        2500
                    } else {
                        2 * i32::from(ac) + 1
                    };
                    for v in &mut c {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        *v = ((s >> 8) as i32 % (2 * amp + 1) - amp) as i16;
                    }
                    for skip_dc in [false, true] {
                        let b = quantize_block(&c, bq, skip_dc);
                        assert_eq!(b.levels, naive(&c, qindex, dc, ac, skip_dc), "q {qindex}");
                    }
                }
            }
        }
    }

    #[test]
    fn zero_block_and_zigzag_order() {
        let q = Quantizer::new(40, &Dequant::new(40, &QuantIndices::default()));
        let b = quantize_block(&[0; 16], &q.y1, false);
        assert_eq!(b.eob, 0);
        assert_eq!(b.levels, [0; 16]);
        // A large coefficient at raster 8 (third row, first column) is
        // zigzag index 3.
        let mut c = [0i16; 16];
        c[8] = 1000;
        let b = quantize_block(&c, &q.y1, false);
        assert_eq!(b.eob, 4);
        let step = i32::from(q.y1.steps()[1]);
        let level = (1000 + ((48 * step) >> 7)) / step;
        assert_eq!(i32::from(b.levels[3]), level);
        assert_eq!(i32::from(b.dequant[8]), level * step);
        // Sign is preserved.
        c[8] = -1000;
        assert_eq!(
            i32::from(quantize_block(&c, &q.y1, false).levels[3]),
            -level
        );
    }

    #[test]
    fn quantize_matches_serial_walk() {
        // The zero-run walk as libvpx writes it, one position at a time.
        fn serial(coeffs: &[i16; 16], bq: &BlockQuantizer) -> [i16; 16] {
            let mut levels = [0i16; 16];
            let mut run = 0usize;
            for (i, &rc) in ZIGZAG.iter().enumerate() {
                let z = i32::from(coeffs[rc]);
                let x = z.abs();
                let zbin = bq.zbin[rc] + bq.zrun_boost[run.min(15)] + bq.zbin_extra;
                run += 1;
                if x >= zbin {
                    let x = x + bq.round[rc];
                    let y = ((((x * bq.quant[rc]) >> 16) + x) * bq.shift[rc]) >> 16;
                    if y != 0 {
                        levels[i] = (if z < 0 { -y } else { y }) as i16;
                        run = 0;
                    }
                }
            }
            levels
        }
        let mut s = 77u32;
        let mut rnd = move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        };
        for qi in [0u8, 10, 40, 80, 127] {
            let q = Quantizer::libvpx(qi);
            for bq in [&q.y1, &q.y2, &q.uv] {
                let step = i32::from(bq.steps()[1]);
                for _ in 0..3000 {
                    let amp = [step / 2, step, 2 * step, 8 * step][(rnd() % 4) as usize].max(1);
                    let c: [i16; 16] = core::array::from_fn(|_| {
                        if rnd() % 3 == 0 {
                            0
                        } else {
                            ((rnd() % (2 * amp as u32 + 1)) as i32 - amp) as i16
                        }
                    });
                    assert_eq!(
                        quantize_block(&c, bq, false).levels,
                        serial(&c, bq),
                        "{c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_bin_and_rounding() {
        let q = Quantizer::new(60, &Dequant::new(60, &QuantIndices::default()));
        let [dc, ac] = q.y1.steps().map(i32::from);
        let zb_dc = (80 * dc + 64) >> 7;
        let mut c = [0i16; 16];
        c[0] = (zb_dc - 1) as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).eob, 0);
        // Inside the bin, the level is (|c| + 0.375 step) / step, so values
        // a little over 0.625 step may still round to 0: both the bin and
        // the offset are floored separately.
        let round_dc = (48 * dc) >> 7;
        assert!(zb_dc <= dc - round_dc);
        c[0] = (dc - round_dc) as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).levels[0], 1);
        c[0] = (dc - round_dc - 1).max(zb_dc) as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).levels[0], 0);
        // Rounding offset 0.375: 1.6 steps rounds to 1, 1.7 to 2.
        c[0] = 0;
        c[1] = (ac * 16 / 10) as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).levels[1], 1);
        c[1] = (ac * 17 / 10) as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).levels[1], 2);
    }

    #[test]
    fn zero_run_widens_zero_bin() {
        let q = Quantizer::new(60, &Dequant::new(60, &QuantIndices::default()));
        let ac = i32::from(q.y1.steps()[1]);
        let zb = (80 * ac + 64) >> 7;
        // Just over the plain zero bin: kept at zigzag 1 (run 1, boost 0),
        // dropped at zigzag 15 after a run of 15 zeros (boost 44/128).
        let mut c = [0i16; 16];
        c[ZIGZAG[1]] = zb as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).eob, 2);
        let mut c = [0i16; 16];
        c[ZIGZAG[15]] = zb as i16;
        assert_eq!(quantize_block(&c, &q.y1, false).eob, 0);
        // A non-zero level resets the run.
        c[ZIGZAG[14]] = 1000;
        assert_eq!(quantize_block(&c, &q.y1, false).eob, 16);
        // The zero-bin boost widens it further.
        let mut q2 = q.clone();
        q2.set_zbin_boost(0, 64);
        let mut c = [0i16; 16];
        c[ZIGZAG[1]] = zb as i16;
        assert_eq!(quantize_block(&c, &q2.y1, false).eob, 0);
    }

    #[test]
    fn skip_dc_leaves_position_zero() {
        let q = Quantizer::new(20, &Dequant::new(20, &QuantIndices::default()));
        let mut c = [0i16; 16];
        c[0] = 500;
        let b = quantize_block(&c, &q.y1, true);
        assert_eq!(b.eob, 0);
        assert_eq!(b.dequant[0], 0);
        c[1] = 500;
        assert_eq!(quantize_block(&c, &q.y1, true).eob, 2);
        // The uncoded DC still decides the zero run, as in libvpx: a value
        // exactly at the plain zero bin at zigzag 2 survives after a
        // non-zero DC (run 1, no boost) but not after a zero DC (run 2,
        // boost 8/128 of a step, 1 at this q).
        let ac = i32::from(q.y1.steps()[1]);
        assert!((8 * ac) >> 7 >= 1);
        let zb = ((84 * ac + 64) >> 7) as i16;
        let mut c = [0i16; 16];
        c[ZIGZAG[2]] = zb;
        c[0] = 500;
        assert_eq!(quantize_block(&c, &q.y1, true).eob, 3);
        c[0] = 0;
        assert_eq!(quantize_block(&c, &q.y1, true).eob, 0);
    }

    #[test]
    fn reconstruction_error_bounded() {
        // Above the zero bin, the rounding offset of 0.375 bounds the error
        // by 0.625 of a step; below it, by the zero bin plus boost.
        let q = Quantizer::new(50, &Dequant::new(50, &QuantIndices::default()));
        let mut s = 1u32;
        for _ in 0..20_000 {
            let mut c = [0i16; 16];
            for v in &mut c {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = ((s >> 16) % 4001) as i16 - 2000;
            }
            let b = quantize_block(&c, &q.y1, false);
            for rc in 0..16 {
                let step = i32::from(q.y1.dequant[rc]);
                let err = (i32::from(c[rc]) - i32::from(b.dequant[rc])).abs();
                let bound = if b.dequant[rc] != 0 {
                    (5 * step + 7) / 8
                } else {
                    q.y1.zbin[rc] + q.y1.zrun_boost[15]
                };
                assert!(err <= bound, "{c:?} rc {rc}");
            }
        }
    }

    #[test]
    fn rd_quantizer_only_lowers_levels_and_respects_lambda() {
        let q = Quantizer::new(40, &Dequant::new(40, &QuantIndices::default()));
        let mut s = 7u32;
        for _ in 0..5_000 {
            let mut c = [0i16; 16];
            for v in &mut c {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = ((s >> 16) % 601) as i16 - 300;
            }
            let reg = quantize_block(&c, &q.y1, false);
            // lambda 0: distortion alone, nothing to gain by lowering a level
            // that regular rounding chose, except where rounding down is
            // closer (the quantizer rounds at 0.375, so never).
            assert_eq!(
                quantize_block_rd(&c, &q.y1, false, 0, |_, a| approx_level_cost(a)),
                reg
            );
            let rd = quantize_block_rd(&c, &q.y1, false, 2000, |_, a| approx_level_cost(a));
            for i in 0..16 {
                assert!(rd.levels[i].unsigned_abs() <= reg.levels[i].unsigned_abs());
                assert!(rd.levels[i] == 0 || rd.levels[i].signum() == reg.levels[i].signum());
            }
            assert!(rd.eob <= reg.eob);
        }
        // A huge lambda zeroes everything.
        let mut c = [0i16; 16];
        c[5] = 200;
        c[0] = 90;
        let rd = quantize_block_rd(&c, &q.y1, false, u32::MAX / 1024, |_, a| {
            approx_level_cost(a)
        });
        assert_eq!(rd.eob, 0);
    }
}
