//! Residual coding: transform, quantization and the token rate of a
//! macroblock's residual against the prediction already in the picture.

use crate::encode::fdct::{fdct4x4, fwht4x4};
use crate::encode::quantize::{quantize_block, BlockQuantizer, QuantizedBlock, Quantizer};
use crate::encode::tokenize::{block_cost, MAX_LEVEL};
use crate::encode::trellis;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};
use crate::tables::*;
use crate::tokens::{walk_mb_blocks, MbCoeffs};

use super::{FrameAnalysis, MbCoded, TokenContexts};

pub(super) fn clamp_levels(q: &mut QuantizedBlock, bq: &BlockQuantizer) {
    if q.levels.iter().any(|&l| (l as i32).abs() > MAX_LEVEL) {
        let steps = bq.steps();
        q.eob = 0;
        for (i, l) in q.levels.iter_mut().enumerate() {
            *l = (*l as i32).clamp(-MAX_LEVEL, MAX_LEVEL) as i16;
            let rc = ZIGZAG[i];
            let step = if rc == 0 { steps[0] } else { steps[1] };
            q.dequant[rc] = (*l as i32 * step as i32) as i16;
            if *l != 0 {
                q.eob = i + 1;
            }
        }
    }
}

pub(crate) fn quantize(coeffs: &[i16; 16], bq: &BlockQuantizer, skip_dc: bool) -> QuantizedBlock {
    // Most blocks of a good prediction are all inside the zero bin: one
    // vectorisable pass instead of the quantizer's serial zero-run walk.
    // (The DC of a Y2-coded block is quantized only to steer the zero
    // run, so it counts too.)
    let max = coeffs
        .iter()
        .map(|&c| i32::from(c).abs())
        .max()
        .unwrap_or(0);
    if max < bq.zero_bin() {
        return QuantizedBlock::default();
    }
    let mut q = quantize_block(coeffs, bq, skip_dc);
    clamp_levels(&mut q, bq);
    q
}

/// The forward DCT of a residual, or just its DC when every AC
/// coefficient is certain to fall in `bq`'s zero bin: no VP8 coefficient
/// exceeds the residual's absolute sum by more than rounding (1), and the
/// DC is exactly `(8 * sum + 7) >> 4`. Small residuals of good
/// predictions are the common case.
#[inline]
pub(super) fn transform(r: &[i16; 16], bq: &BlockQuantizer) -> [i16; 16] {
    let abs: i32 = r.iter().map(|&v| i32::from(v).abs()).sum();
    if abs + 2 < bq.zero_bin() {
        let sum: i32 = r.iter().map(|&v| i32::from(v)).sum();
        let mut c = [0i16; 16];
        c[0] = ((8 * sum + 7) >> 4) as i16;
        return c;
    }
    fdct4x4(r)
}

/// Residual of a 4x4 block: source minus prediction.
#[inline]
pub(super) fn residual4(src: &PlaneBuf, pred: &PlaneBuf, x: usize, y: usize) -> [i16; 16] {
    crate::encode::sad::diff4x4(
        &src.data,
        src.index(x as isize, y as isize),
        src.stride,
        &pred.data,
        pred.index(x as isize, y as isize),
        pred.stride,
    )
}

/// SSE between the source and the picture over a `size` square.
pub(super) fn sse_region(src: &PlaneBuf, pic: &PlaneBuf, x: usize, y: usize, size: usize) -> u64 {
    crate::encode::sad::sse(
        &src.data,
        src.index(x as isize, y as isize),
        src.stride,
        &pic.data,
        pic.index(x as isize, y as isize),
        pic.stride,
        size,
        size,
    )
}

pub(super) fn mb_sse(src: &[PlaneBuf; 3], pic: &Picture, mb_x: usize, mb_y: usize) -> u64 {
    sse_region(&src[0], &pic.planes[0], mb_x * 16, mb_y * 16, 16)
        + sse_region(&src[1], &pic.planes[1], mb_x * 8, mb_y * 8, 8)
        + sse_region(&src[2], &pic.planes[2], mb_x * 8, mb_y * 8, 8)
}

impl FrameAnalysis<'_> {
    /// Quantizes the residual between the source and the prediction that
    /// is already in `pic` for a macroblock with a Y2 block (`y2`) or
    /// without (SPLITMV), plus chroma.
    pub(super) fn code_residual(
        &self,
        pic: &Picture,
        mb_x: usize,
        mb_y: usize,
        y2: bool,
    ) -> MbCoded {
        self.code_residual_with(self.quant, pic, mb_x, mb_y, y2)
    }

    /// [`Self::code_residual`] with another quantizer (a segment's).
    pub(crate) fn code_residual_with(
        &self,
        q: &Quantizer,
        pic: &Picture,
        mb_x: usize,
        mb_y: usize,
        y2: bool,
    ) -> MbCoded {
        let mut out = MbCoded {
            info: MbInfo::default(),
            levels: [[0; 16]; 25],
            coeffs: MbCoeffs::new(),
            has_residual: false,
        };
        let mut dcs = [0i16; 16];
        for b in 0..16 {
            let (x, y) = (mb_x * 16 + (b & 3) * 4, mb_y * 16 + (b >> 2) * 4);
            let c = transform(&residual4(&self.src[0], &pic.planes[0], x, y), &q.y1);
            dcs[b] = c[0];
            let qb = quantize(&c, &q.y1, y2);
            out.levels[b] = qb.levels;
            out.coeffs.blocks[b] = qb.dequant;
            out.coeffs.eobs[b] = if y2 {
                qb.eob.max(1) as u8
            } else {
                qb.eob as u8
            };
            out.has_residual |= qb.eob > 0;
        }
        if y2 {
            let qb = quantize(&fwht4x4(&dcs), &q.y2, false);
            out.levels[24] = qb.levels;
            out.coeffs.blocks[24] = qb.dequant;
            out.coeffs.eobs[24] = qb.eob as u8;
            out.has_residual |= qb.eob > 0;
        }
        self.code_chroma_with(q, pic, mb_x, mb_y, &mut out);
        out
    }

    pub(super) fn code_chroma(&self, pic: &Picture, mb_x: usize, mb_y: usize, out: &mut MbCoded) {
        self.code_chroma_with(self.quant, pic, mb_x, mb_y, out)
    }

    /// Codes both chroma planes' residual against the prediction in `pic`.
    pub(crate) fn code_chroma_with(
        &self,
        q: &Quantizer,
        pic: &Picture,
        mb_x: usize,
        mb_y: usize,
        out: &mut MbCoded,
    ) {
        for (pl, first) in [(1usize, 16usize), (2, 20)] {
            for i in 0..4 {
                let (x, y) = (mb_x * 8 + (i & 1) * 4, mb_y * 8 + (i >> 1) * 4);
                let c = transform(&residual4(&self.src[pl], &pic.planes[pl], x, y), &q.uv);
                let qb = quantize(&c, &q.uv, false);
                out.levels[first + i] = qb.levels;
                out.coeffs.blocks[first + i] = qb.dequant;
                out.coeffs.eobs[first + i] = qb.eob as u8;
                out.has_residual |= qb.eob > 0;
            }
        }
    }

    /// Codes the residual of the prediction in `pic` again, with every
    /// luma and chroma block's levels optimised for rate and distortion
    /// under its real token context (Y2 keeps the regular quantizer, as
    /// its levels reach all sixteen luma blocks).
    pub(crate) fn code_residual_rd(
        &self,
        pic: &Picture,
        ctx: &TokenContexts,
        mb_x: usize,
        mb_y: usize,
        y2: bool,
    ) -> MbCoded {
        let mut out = self.code_residual(pic, mb_x, mb_y, y2);
        let probs = &self.probs.coeff;
        let mut above = ctx.above[mb_x];
        let mut left = ctx.left;
        let mut any = false;
        walk_mb_blocks(y2, &mut above, &mut left, |b, t, f, ctx_b| {
            if b == 24 {
                let nz = out.coeffs.eobs[24] > 0;
                any |= nz;
                return nz;
            }
            let (pl, x, y, bq) = if b < 16 {
                let (x, y) = (mb_x * 16 + (b & 3) * 4, mb_y * 16 + (b >> 2) * 4);
                (0, x, y, &self.quant.y1)
            } else {
                let i = b & 3;
                let pl = if b < 20 { 1 } else { 2 };
                let (x, y) = (mb_x * 8 + (i & 1) * 4, mb_y * 8 + (i >> 1) * 4);
                (pl, x, y, &self.quant.uv)
            };
            let c = transform(&residual4(&self.src[pl], &pic.planes[pl], x, y), bq);
            let reg = quantize(&c, bq, f == 1);
            let qb = trellis::optimize_block(&c, &reg, bq, probs, t, f, ctx_b, self.lambda);
            let nz = qb.eob > 0;
            any |= nz;
            out.levels[b] = qb.levels;
            let mut dq = qb.dequant;
            if f == 1 {
                // The DC comes from Y2, as code_residual left it.
                dq[0] = out.coeffs.blocks[b][0];
            }
            out.coeffs.blocks[b] = dq;
            out.coeffs.eobs[b] = if y2 && b < 16 {
                qb.eob.max(1) as u8
            } else {
                qb.eob as u8
            };
            nz
        });
        out.has_residual = any;
        out
    }

    /// Bits (1/256) of the macroblock's tokens under the current contexts.
    pub(super) fn token_rate(
        &self,
        ctx: &TokenContexts,
        mb_x: usize,
        levels: &[[i16; 16]; 25],
        y2: bool,
    ) -> u32 {
        let probs = &self.probs.coeff;
        let mut above = ctx.above[mb_x];
        let mut left = ctx.left;
        let mut rate = 0;
        walk_mb_blocks(y2, &mut above, &mut left, |b, t, first, c| {
            rate += block_cost(probs, t, &levels[b], first, c);
            levels[b][first..].iter().any(|&v| v != 0)
        });
        rate
    }
}
