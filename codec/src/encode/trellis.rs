//! Rate-distortion optimised quantization: starting from the regular
//! quantizer's levels, lowers level magnitudes (possibly to zero) where the
//! bits saved, priced exactly with the frame's token probabilities and the
//! block's context, outweigh the added distortion.
//!
//! A greedy descent rather than a full trellis: each non-zero level, from
//! the last to the first, is tried one step smaller and kept there if the
//! block's cost `distortion + lambda * rate` falls; then dropping the
//! whole block is tried. Every step is re-priced with the real token
//! costs, so context effects (a level of 1 instead of 2 changes the next
//! token's context, a zero lengthens a run) are counted.

use crate::encode::quantize::{BlockQuantizer, QuantizedBlock};
use crate::encode::tokenize::block_cost;
use crate::probs::CoeffProbs;
use crate::tables::ZIGZAG;

/// Squared error, in pixel-domain units times 64, of levels against the
/// transform coefficients. VP8's forward transform has twice the
/// orthonormal gain per dimension pair, so coefficient-domain squared
/// error is four times the pixel-domain one: `err / 4 * 256 = err * 64`.
fn distortion(coeffs: &[i16; 16], levels: &[i16; 16], steps: [i16; 2], first: usize) -> u64 {
    let mut d = 0u64;
    for (i, &rc) in ZIGZAG.iter().enumerate().skip(first) {
        let step = i64::from(if rc == 0 { steps[0] } else { steps[1] });
        let e = i64::from(coeffs[rc]) - i64::from(levels[i]) * step;
        d += (e * e) as u64;
    }
    d * 64
}

/// The block's RD cost in the units of
/// [`crate::encode::analysis`]'s `rd`: `sse * 256 + lambda * rate / 256`.
#[allow(clippy::too_many_arguments)]
fn cost(
    coeffs: &[i16; 16],
    levels: &[i16; 16],
    steps: [i16; 2],
    probs: &CoeffProbs,
    block_type: usize,
    first: usize,
    ctx: usize,
    lambda: u64,
) -> u64 {
    let rate = block_cost(probs, block_type, levels, first, ctx) as u64;
    distortion(coeffs, levels, steps, first) + ((lambda * rate) >> 8)
}

/// Re-quantizes `q` (the regular quantizer's result for `coeffs`) to lower
/// its RD cost. `first` is 1 for luma blocks whose DC is in Y2, `ctx` the
/// block's token context (0..=2), `lambda` SSE per bit times 256.
#[allow(clippy::too_many_arguments)]
pub(crate) fn optimize_block(
    coeffs: &[i16; 16],
    q: &QuantizedBlock,
    bq: &BlockQuantizer,
    probs: &CoeffProbs,
    block_type: usize,
    first: usize,
    ctx: usize,
    lambda: u64,
) -> QuantizedBlock {
    if q.eob == 0 {
        return *q;
    }
    let steps = bq.steps();
    let mut levels = q.levels;
    let price = |l: &[i16; 16]| cost(coeffs, l, steps, probs, block_type, first, ctx, lambda);
    let mut best = price(&levels);
    for i in (first..q.eob).rev() {
        let l = levels[i];
        if l == 0 {
            continue;
        }
        levels[i] = l - l.signum();
        let c = price(&levels);
        if c < best {
            best = c;
        } else {
            levels[i] = l;
        }
    }
    let zero = [0i16; 16];
    if levels.iter().any(|&l| l != 0) && price(&zero) < best {
        levels = zero;
    }
    let mut out = QuantizedBlock {
        levels,
        ..QuantizedBlock::default()
    };
    out.finish(bq);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::quantize::{quantize_block, Quantizer};
    use crate::probs::Probabilities;

    /// The result never costs more than the regular quantizer's levels,
    /// only lowers magnitudes, and keeps signs.
    #[test]
    fn never_increases_rd_cost() {
        let probs = Probabilities::default().coeff;
        let mut s = 5u32;
        for qi in [10u8, 40, 90] {
            let q = Quantizer::new(
                qi,
                &crate::dequant::Dequant::new(qi as i32, &Default::default()),
            );
            let lambda = (q.y1.steps()[1] as u64).pow(2) * 4;
            for n in 0..2000 {
                let amp = if n % 2 == 0 { 400 } else { 60 };
                let mut c = [0i16; 16];
                for v in &mut c {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    *v = ((s >> 8) % (2 * amp + 1)) as i16 - amp as i16;
                }
                for (bq, t, first) in [(&q.y1, 0, 1), (&q.y1, 3, 0), (&q.uv, 2, 0)] {
                    let ctx = n % 3;
                    let reg = quantize_block(&c, bq, first == 1);
                    let opt = optimize_block(&c, &reg, bq, &probs, t, first, ctx, lambda);
                    let steps = bq.steps();
                    let before = cost(&c, &reg.levels, steps, &probs, t, first, ctx, lambda);
                    let after = cost(&c, &opt.levels, steps, &probs, t, first, ctx, lambda);
                    assert!(after <= before);
                    for i in 0..16 {
                        assert!(opt.levels[i].unsigned_abs() <= reg.levels[i].unsigned_abs());
                        assert!(
                            opt.levels[i] == 0 || opt.levels[i].signum() == reg.levels[i].signum()
                        );
                    }
                    assert!(opt.eob <= reg.eob);
                }
            }
        }
    }
}
