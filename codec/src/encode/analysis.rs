//! Macroblock coding decisions: which prediction each macroblock uses and
//! what residual it sends, chosen by rate-distortion cost
//! `J = SSE + lambda * bits` with bit costs from the current probabilities.
//!
//! Every candidate is reconstructed with the decoder's own code
//! ([`crate::recon`]), so the distortion measured is the one the decoder
//! will see and the final reconstruction equals the decoder's.

use crate::bool_encoder::cost_bool;
use crate::encode::fdct::{fdct4x4, fwht4x4};
use crate::encode::modes::{bmode_costs, inter_context, tree_cost, InterContext, MvClamp, MV_MAX};
use crate::encode::motion::{self, MotionSearch};
use crate::encode::quantize::{quantize_block, BlockQuantizer, QuantizedBlock, Quantizer};
use crate::encode::split::SplitSearch;
use crate::encode::subpel::SearchCache;
use crate::encode::tokenize::{block_cost, MAX_LEVEL};
use crate::encode::trellis;
use crate::intra_pred;
use crate::modes::{bmode_neighbours, MbInfo, MotionVector, GOLDEN_FRAME, INTRA_FRAME, LAST_FRAME};
use crate::picture::{Picture, PlaneBuf};
use crate::probs::Probabilities;
use crate::recon::{self, SubpelFilter};
use crate::state::References;
use crate::tables::*;
use crate::tokens::{walk_mb_blocks, MbCoeffs, TokenContext};

/// Per-frame settings and inputs of the macroblock decisions.
pub(crate) struct FrameAnalysis<'a> {
    /// Source planes padded to whole macroblocks.
    pub src: &'a [PlaneBuf; 3],
    /// References (inter frames).
    pub refs: Option<&'a References>,
    pub quant: &'a Quantizer,
    /// Probabilities the frame is coded with (for bit costs).
    pub probs: &'a Probabilities,
    pub key: bool,
    /// SSE per bit, times 256 (rate is counted in 1/256 bits).
    pub lambda: u64,
    pub speed: u8,
    pub filter: SubpelFilter,
    pub mb_cols: usize,
    pub mb_rows: usize,
    pub sign_bias: [bool; 4],
    /// Estimated probabilities of the per-macroblock flags, for costs.
    pub prob_skip: u8,
    pub prob_intra: u8,
    pub prob_last: u8,
    pub prob_golden: u8,
    /// Which references are worth searching (1 last, 2 golden, 3 altref).
    pub search_refs: &'a [u8],
    /// Vector costs and sub-pixel planes for the motion search.
    pub search: SearchCache,
}

/// The rate-distortion multiplier (SSE per bit, times 256) for a frame at
/// `quant`: `scale / 9 * ac_step^2 / 256` per bit. The divisor made a
/// scale of 40 the best single trade-off for every frame on carphone and
/// box over quantizers 10..50 (about 0.02 ac_step^2 per bit, once SPLITMV
/// is searched); the encoder now weighs frames by how long they are
/// referenced (`INTER_LAMBDA_SCALE`, `REFERENCE_LAMBDA_SCALE`).
pub(crate) fn rd_lambda(quant: &Quantizer, scale: u32, _key: bool) -> u64 {
    let dq_ac = quant.y1.steps()[1] as u64;
    (dq_ac * dq_ac * scale as u64 / 9).max(64)
}

/// A coded macroblock.
pub(crate) struct MbCoded {
    pub info: MbInfo,
    /// Quantized levels per block in zigzag order (blocks as in MbCoeffs).
    pub levels: [[i16; 16]; 25],
    pub coeffs: MbCoeffs,
    pub has_residual: bool,
}

/// Token contexts kept while deciding, so token costs are exact.
/// The candidates tried for one macroblock so far.
struct MbSearch {
    /// The best coded candidate and its cost.
    best: Option<(u64, MbCoded)>,
    /// Whether `pic` holds the best candidate's reconstruction: true when
    /// the candidate tried last was taken.
    fresh: bool,
    /// Fast speeds: candidates ranked by estimate, coded at the end.
    pending: Vec<(u64, MbInfo, u32)>,
    /// The best inter candidate's estimated cost (prediction error and
    /// rate), whatever the speed.
    inter_est: u64,
}

impl MbSearch {
    /// Keeps `cand` if it beats the best so far.
    fn consider(&mut self, cand: (u64, MbCoded)) {
        let better = self.best.as_ref().is_none_or(|b| cand.0 < b.0);
        if better {
            self.best = Some(cand);
        }
        self.fresh = better;
    }
}

pub(crate) struct TokenContexts {
    pub above: Vec<TokenContext>,
    pub left: TokenContext,
}

impl TokenContexts {
    /// Sets the above/left token contexts after a coded macroblock as the
    /// decoder will.
    pub(crate) fn update(&mut self, c: &MbCoded, mb_x: usize) {
        let y2 = c.info.y_mode != B_PRED && c.info.y_mode != SPLITMV;
        let above = &mut self.above[mb_x];
        let left = &mut self.left;
        if !c.has_residual {
            crate::tokens::skip_mb_coeffs(y2, above, left);
            return;
        }
        walk_mb_blocks(y2, above, left, |b, _, first, _| {
            c.levels[b][first..].iter().any(|&l| l != 0)
        });
    }
}

fn clamp_levels(q: &mut QuantizedBlock, bq: &BlockQuantizer) {
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
fn transform(r: &[i16; 16], bq: &BlockQuantizer) -> [i16; 16] {
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
fn residual4(src: &PlaneBuf, pred: &PlaneBuf, x: usize, y: usize) -> [i16; 16] {
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
fn sse_region(src: &PlaneBuf, pic: &PlaneBuf, x: usize, y: usize, size: usize) -> u64 {
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

fn mb_sse(src: &[PlaneBuf; 3], pic: &Picture, mb_x: usize, mb_y: usize) -> u64 {
    sse_region(&src[0], &pic.planes[0], mb_x * 16, mb_y * 16, 16)
        + sse_region(&src[1], &pic.planes[1], mb_x * 8, mb_y * 8, 8)
        + sse_region(&src[2], &pic.planes[2], mb_x * 8, mb_y * 8, 8)
}

impl FrameAnalysis<'_> {
    fn rd(&self, sse: u64, rate: u32) -> u64 {
        (sse << 8) + ((self.lambda * rate as u64) >> 8)
    }

    /// Luma prediction SSE below which a macroblock's motion is taken as
    /// found: an error whose RMS is a small fraction of the AC step
    /// (1/32 at the slowest speeds, 1/16 at the others) quantizes to little
    /// or nothing.
    fn good_enough_sse(&self) -> u64 {
        let ac = self.quant.y1.steps()[1] as u64;
        let div = if self.speed <= 2 { 1024 } else { 256 };
        256 * ac * ac / div
    }

    /// Quantizes the residual between the source and the prediction that
    /// is already in `pic` for a macroblock with a Y2 block (`y2`) or
    /// without (SPLITMV), plus chroma.
    fn code_residual(&self, pic: &Picture, mb_x: usize, mb_y: usize, y2: bool) -> MbCoded {
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

    fn code_chroma(&self, pic: &Picture, mb_x: usize, mb_y: usize, out: &mut MbCoded) {
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
    fn token_rate(
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

    /// Predicts (no residual) the macroblock `mb` into `pic`.
    fn predict(&self, pic: &mut Picture, mb: &MbInfo, mb_x: usize, mb_y: usize) {
        self.reconstruct(pic, mb, None, mb_x, mb_y);
    }

    /// [`recon::reconstruct_mb`], taking the luma prediction of a whole
    /// macroblock vector from the frame's sub-pixel planes when the motion
    /// search built them: they hold exactly the decoder's six-tap
    /// prediction (see [`crate::encode::subpel`]), so copying 16 rows
    /// replaces filtering them again for every trial.
    fn reconstruct(
        &self,
        pic: &mut Picture,
        mb: &MbInfo,
        coeffs: Option<&mut MbCoeffs>,
        mb_x: usize,
        mb_y: usize,
    ) {
        if !self.predict_from_planes(pic, mb, mb_x, mb_y) {
            recon::reconstruct_mb(pic, self.refs, self.filter, mb, coeffs, mb_x, mb_y);
        } else if let Some(c) = coeffs {
            recon::add_residual(pic, mb, c, mb_x, mb_y);
        }
    }

    /// Predicts an inter macroblock that is not SPLITMV with the luma
    /// copied from the sub-pixel planes (or the reference at whole-pixel
    /// vectors), if the block lies inside the bordered planes and the
    /// planes exist; returns whether it did.
    fn predict_from_planes(
        &self,
        pic: &mut Picture,
        mb: &MbInfo,
        mb_x: usize,
        mb_y: usize,
    ) -> bool {
        let Some(refs) = self.refs else {
            return false;
        };
        if mb.ref_frame == INTRA_FRAME
            || mb.y_mode == SPLITMV
            || self.filter != SubpelFilter::SixTap
        {
            return false;
        }
        let reference = refs.get(mb.ref_frame);
        let r = &reference.planes[0];
        let (dx, fx) = recon::luma_offset(mb.mv.col);
        let (dy, fy) = recon::luma_offset(mb.mv.row);
        let (rx, ry) = ((mb_x * 16) as isize + dx, (mb_y * 16) as isize + dy);
        let b = r.border as isize;
        if rx < -b || ry < -b || rx + 16 > r.width as isize + b || ry + 16 > r.height as isize + b {
            return false;
        }
        let buf: &[u8] = if fx == 0 && fy == 0 {
            &r.data
        } else {
            match self.search.built_subpel(mb.ref_frame) {
                Some(sp) => sp.plane(fx, fy),
                None => return false,
            }
        };
        let pos = r.index(rx, ry);
        let [py, pu, pv] = &mut pic.planes;
        let dpos = py.index((mb_x * 16) as isize, (mb_y * 16) as isize);
        for i in 0..16 {
            let (d, s) = (dpos + i * py.stride, pos + i * r.stride);
            py.data[d..d + 16].copy_from_slice(&buf[s..s + 16]);
        }
        recon::predict_inter_chroma16(pu, pv, reference, self.filter, mb.mv, mb_x, mb_y);
        true
    }

    /// Codes a macroblock whose modes are all set except B_PRED: predicts,
    /// quantizes, reconstructs, and returns the result and its cost.
    fn try_mode(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        mut info: MbInfo,
        mode_rate: u32,
        mb_x: usize,
        mb_y: usize,
    ) -> (u64, MbCoded) {
        self.predict(pic, &info, mb_x, mb_y);
        let sse_y = sse_region(&self.src[0], &pic.planes[0], mb_x * 16, mb_y * 16, 16);
        let sse_uv = sse_region(&self.src[1], &pic.planes[1], mb_x * 8, mb_y * 8, 8)
            + sse_region(&self.src[2], &pic.planes[2], mb_x * 8, mb_y * 8, 8);
        let pred_sse = sse_y + sse_uv;
        let y2 = info.y_mode != SPLITMV;
        let mut coded = self.code_residual(pic, mb_x, mb_y, y2);
        info.skip = !coded.has_residual;
        coded.info = info;
        let rate = self.finish_rate(ctx, mb_x, &coded, mode_rate, y2);
        if !coded.has_residual {
            // The prediction is the reconstruction.
            return (self.rd(pred_sse, rate), coded);
        }
        let mut c = MbCoeffs::new();
        c.blocks = coded.coeffs.blocks;
        c.eobs = coded.coeffs.eobs;
        // The prediction is already in `pic`.
        recon::add_residual(pic, &coded.info, &mut c, mb_x, mb_y);
        let sse = mb_sse(self.src, pic, mb_x, mb_y);
        let j = self.rd(sse, rate);
        let skip_j = self.skip_cost(pred_sse, mode_rate);
        if skip_j < j {
            let mut skipped = MbCoded {
                info,
                levels: [[0; 16]; 25],
                coeffs: MbCoeffs::new(),
                has_residual: false,
            };
            skipped.info.skip = true;
            // Leave the candidate's reconstruction in `pic`, as for others.
            self.predict(pic, &info, mb_x, mb_y);
            return (skip_j, skipped);
        }
        (j, coded)
    }

    /// Rate-distortion cost of sending no residual at all (the skip flag
    /// instead of tokens), which may beat the best levels the quantizer
    /// found: `pred_sse` is the prediction's error.
    fn skip_cost(&self, pred_sse: u64, mode_rate: u32) -> u64 {
        self.rd(pred_sse, mode_rate + cost_bool(self.prob_skip, true))
    }

    /// The macroblock's squared error in `pic` against the source.
    pub(crate) fn mb_sse(&self, pic: &Picture, mb_x: usize, mb_y: usize) -> u64 {
        mb_sse(self.src, pic, mb_x, mb_y)
    }

    /// Whether skipping beats `coded`, whose reconstruction is in `pic`,
    /// for a macroblock whose prediction alone had error `pred_sse` (the
    /// mode's own rate is the same either way).
    pub(crate) fn skip_beats(
        &self,
        pic: &Picture,
        ctx: &TokenContexts,
        coded: &MbCoded,
        pred_sse: u64,
        mb_x: usize,
        mb_y: usize,
    ) -> bool {
        let y2 = coded.info.y_mode != SPLITMV && coded.info.y_mode != B_PRED;
        let rate = self.finish_rate(ctx, mb_x, coded, 0, y2);
        let j = self.rd(self.mb_sse(pic, mb_x, mb_y), rate);
        self.skip_cost(pred_sse, 0) < j
    }

    fn finish_rate(
        &self,
        ctx: &TokenContexts,
        mb_x: usize,
        coded: &MbCoded,
        mode_rate: u32,
        y2: bool,
    ) -> u32 {
        let skip_rate = cost_bool(self.prob_skip, !coded.has_residual);
        let tokens = if coded.has_residual {
            self.token_rate(ctx, mb_x, &coded.levels, y2)
        } else {
            0
        };
        mode_rate + skip_rate + tokens
    }

    /// Codes a B_PRED macroblock: each subblock's mode is chosen in turn,
    /// predicted from the reconstruction of the ones before it.
    #[allow(clippy::too_many_arguments)]
    fn try_bpred(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        base: MbInfo,
        above: &MbInfo,
        left: &MbInfo,
        mb_x: usize,
        mb_y: usize,
    ) -> (u64, MbCoded) {
        let mut info = base;
        info.y_mode = B_PRED;
        let mut coded = MbCoded {
            info,
            levels: [[0; 16]; 25],
            coeffs: MbCoeffs::new(),
            has_residual: false,
        };
        let probs = &self.probs.coeff;
        let mut above_ctx = ctx.above[mb_x];
        let mut left_ctx = ctx.left;
        let mut mode_rate = 0u32;
        let (x0, y0) = (mb_x * 16, mb_y * 16);
        let above_right_mb = recon::above_right_of_mb(&pic.planes[0], x0, y0);
        let modes: &[u8] = if self.speed >= 4 {
            &[B_DC_PRED, B_TM_PRED, B_VE_PRED, B_HE_PRED]
        } else {
            &[
                B_DC_PRED, B_TM_PRED, B_VE_PRED, B_HE_PRED, B_LD_PRED, B_RD_PRED, B_VR_PRED,
                B_VL_PRED, B_HD_PRED, B_HU_PRED,
            ]
        };
        let costs = bmode_costs();
        for b in 0..16 {
            let (bx, by) = (b & 3, b >> 2);
            let (x, y) = (x0 + bx * 4, y0 + by * 4);
            // The decoder's edges, as its B_PRED reconstruction takes them.
            let (edge_above, edge_left, tl, pos) =
                recon::subblock_edges(&pic.planes[0], x0, y0, b, &above_right_mb);
            let (a_mode, l_mode) = bmode_neighbours(above, left, &coded.info.b_modes, b);
            let ctx_t = (above_ctx[bx] + left_ctx[by]) as usize;
            let bmode_cost = |m: u8| {
                if self.key {
                    costs.kf[a_mode as usize][l_mode as usize][m as usize]
                } else {
                    costs.inter[m as usize]
                }
            };
            let src = &self.src[0];
            let mut best: Option<(u64, u8, QuantizedBlock, [u8; 16])> = None;
            for &m in modes {
                let mut pred = [0u8; 16];
                intra_pred::predict_4x4(m, &edge_above, &edge_left, tl, &mut pred, 0, 4);
                let src_pos = src.index(x as isize, y as isize);
                let r = crate::encode::sad::diff4x4(&src.data, src_pos, src.stride, &pred, 0, 4);
                let qb = quantize(&transform(&r, &self.quant.y1), &self.quant.y1, false);
                let mut rec = pred;
                if qb.eob > 1 {
                    crate::idct::idct4x4_add(&qb.dequant, &mut rec, 0, 4);
                } else if qb.dequant[0] != 0 {
                    crate::idct::idct_dc_add(qb.dequant[0], &mut rec, 0, 4);
                }
                let sse = crate::encode::sad::sse(&src.data, src_pos, src.stride, &rec, 0, 4, 4, 4);
                let mrate = bmode_cost(m);
                let trate = block_cost(probs, 3, &qb.levels, 0, ctx_t);
                let j = self.rd(sse, mrate + trate);
                if best.as_ref().is_none_or(|b| j < b.0) {
                    best = Some((j, m, qb, rec));
                }
            }
            let (_, m, qb, rec) = best.expect("at least one mode");
            mode_rate += bmode_cost(m);
            let p = &mut pic.planes[0];
            let stride = p.stride;
            for i in 0..4 {
                p.data[pos + i * stride..pos + i * stride + 4]
                    .copy_from_slice(&rec[i * 4..i * 4 + 4]);
            }
            let nz = (qb.eob > 0) as u8;
            above_ctx[bx] = nz;
            left_ctx[by] = nz;
            coded.info.b_modes[b] = m;
            coded.levels[b] = qb.levels;
            coded.coeffs.blocks[b] = qb.dequant;
            coded.coeffs.eobs[b] = qb.eob as u8;
            coded.has_residual |= qb.eob > 0;
        }
        mode_rate += if self.key {
            tree_cost(&KF_YMODE_TREE, &KF_YMODE_PROBS, B_PRED)
        } else {
            cost_bool(self.prob_intra, false) + tree_cost(&YMODE_TREE, &self.probs.y_mode, B_PRED)
        };
        mode_rate += self.uv_mode_rate(coded.info.uv_mode);
        // Chroma prediction was done with the chosen uv mode by the caller's
        // base info; predict it again into pic and code it.
        recon::reconstruct_mb(pic, self.refs, self.filter, &coded.info, None, mb_x, mb_y);
        // reconstruct_mb without coefficients also re-predicted the luma
        // subblocks from unfinished neighbours; restore by coding fully.
        let mut chroma_only = MbCoded {
            info: coded.info,
            levels: [[0; 16]; 25],
            coeffs: MbCoeffs::new(),
            has_residual: false,
        };
        self.code_chroma(pic, mb_x, mb_y, &mut chroma_only);
        for b in 16..24 {
            coded.levels[b] = chroma_only.levels[b];
            coded.coeffs.blocks[b] = chroma_only.coeffs.blocks[b];
            coded.coeffs.eobs[b] = chroma_only.coeffs.eobs[b];
        }
        coded.has_residual |= chroma_only.has_residual;
        coded.info.skip = !coded.has_residual;
        let rate = self.finish_rate(ctx, mb_x, &coded, mode_rate, false);
        let mut c = MbCoeffs::new();
        c.blocks = coded.coeffs.blocks;
        c.eobs = coded.coeffs.eobs;
        let res = if coded.has_residual {
            Some(&mut c)
        } else {
            None
        };
        recon::reconstruct_mb(pic, self.refs, self.filter, &coded.info, res, mb_x, mb_y);
        let sse = mb_sse(self.src, pic, mb_x, mb_y);
        (self.rd(sse, rate), coded)
    }

    fn uv_mode_rate(&self, m: u8) -> u32 {
        if self.key {
            tree_cost(&UV_MODE_TREE, &KF_UV_MODE_PROBS, m)
        } else {
            tree_cost(&UV_MODE_TREE, &self.probs.uv_mode, m)
        }
    }

    fn y_mode_rate(&self, m: u8) -> u32 {
        if self.key {
            tree_cost(&KF_YMODE_TREE, &KF_YMODE_PROBS, m)
        } else {
            cost_bool(self.prob_intra, false) + tree_cost(&YMODE_TREE, &self.probs.y_mode, m)
        }
    }

    /// Picks the chroma mode by prediction error.
    fn pick_uv_mode(&self, pic: &Picture, mb_x: usize, mb_y: usize) -> u8 {
        let mut best = (u64::MAX, DC_PRED);
        for m in [DC_PRED, V_PRED, H_PRED, TM_PRED] {
            let mut sse = 0u64;
            for pl in 1..3 {
                let p = &pic.planes[pl];
                let (above, left, tl) = recon::edges::<8>(p, mb_x * 8, mb_y * 8);
                let mut pred = [0u8; 64];
                intra_pred::predict_chroma8(
                    m,
                    &above,
                    &left,
                    tl,
                    mb_y > 0,
                    mb_x > 0,
                    &mut pred,
                    0,
                    8,
                );
                let s = &self.src[pl];
                sse += crate::encode::sad::sse(
                    &s.data,
                    s.index((mb_x * 8) as isize, (mb_y * 8) as isize),
                    s.stride,
                    &pred,
                    0,
                    8,
                    8,
                    8,
                );
            }
            let j = self.rd(sse, self.uv_mode_rate(m));
            if j < best.0 {
                best = (j, m);
            }
        }
        best.1
    }

    /// Ranks the 16x16 luma modes by prediction error; returns them best first.
    fn rank_y_modes(&self, pic: &Picture, mb_x: usize, mb_y: usize) -> [(u64, u8); 4] {
        let p = &pic.planes[0];
        let (above, left, tl) = recon::edges::<16>(p, mb_x * 16, mb_y * 16);
        let s = &self.src[0];
        let mut out = [DC_PRED, V_PRED, H_PRED, TM_PRED].map(|m| {
            let mut pred = [0u8; 256];
            intra_pred::predict_luma16(m, &above, &left, tl, mb_y > 0, mb_x > 0, &mut pred, 0, 16);
            let sse = crate::encode::sad::sse(
                &s.data,
                s.index((mb_x * 16) as isize, (mb_y * 16) as isize),
                s.stride,
                &pred,
                0,
                16,
                16,
                16,
            );
            (self.rd(sse, self.y_mode_rate(m)), m)
        });
        out.sort();
        out
    }

    /// Chooses and codes one macroblock; leaves its reconstruction in `pic`
    /// and updates the token contexts.
    pub fn encode_mb(
        &self,
        pic: &mut Picture,
        ctx: &mut TokenContexts,
        mbs: &[MbInfo],
        mb_x: usize,
        mb_y: usize,
    ) -> MbCoded {
        let idx = mb_y * self.mb_cols + mb_x;
        let outside = MbInfo::default();
        let above = if mb_y > 0 {
            mbs[idx - self.mb_cols]
        } else {
            outside
        };
        let left = if mb_x > 0 { mbs[idx - 1] } else { outside };
        let above_left = if mb_x > 0 && mb_y > 0 {
            mbs[idx - self.mb_cols - 1]
        } else {
            outside
        };
        // At fast speeds candidates are first ranked by their luma
        // prediction error and rate, and only the best few are coded.
        let fast = self.speed >= 6;
        let mut s = MbSearch {
            best: None,
            fresh: false,
            pending: Vec::new(),
            inter_est: u64::MAX,
        };
        if let (false, Some(refs)) = (self.key, self.refs) {
            let clamp = MvClamp::new(mb_x, mb_y, self.mb_cols, self.mb_rows);
            for &rf in self.search_refs {
                let nb = [&above, &left, &above_left];
                self.search_inter(pic, ctx, refs, rf, nb, &clamp, fast, mb_x, mb_y, &mut s);
            }
        }
        // Intra candidates, unless an inter prediction is already closer
        // than half a quantizer step RMS: a prediction from the
        // neighbouring pixels practically never beats that.
        let ac = self.quant.y1.steps()[1] as u64;
        let inter_close = s.inter_est < self.rd(64 * ac * ac, 0);
        if !inter_close {
            self.search_intra(pic, ctx, &above, &left, fast, mb_x, mb_y, &mut s);
        }
        if fast {
            s.pending.sort_by_key(|p| p.0);
            let n_full = if self.speed >= 8 { 1 } else { 2 };
            for (_, info, rate) in std::mem::take(&mut s.pending).into_iter().take(n_full) {
                s.consider(self.try_mode(pic, ctx, info, rate, mb_x, mb_y));
            }
        }
        let chosen = self.finish_mb(pic, ctx, s, mb_x, mb_y);
        // Token contexts as the decoder will see them.
        ctx.update(&chosen, mb_x);
        chosen
    }

    /// Tries inter prediction from reference `rf` for the macroblock
    /// whose above, left and above-left neighbours are `nb`: the
    /// neighbours' vectors, a motion search and, where it may pay, split
    /// vectors.
    #[allow(clippy::too_many_arguments)]
    fn search_inter(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        refs: &References,
        rf: u8,
        nb: [&MbInfo; 3],
        clamp: &MvClamp,
        fast: bool,
        mb_x: usize,
        mb_y: usize,
        s: &mut MbSearch,
    ) {
        let [above, left, above_left] = nb;
        let ictx: InterContext =
            inter_context([above, left, above_left], rf, self.sign_bias, clamp);
        let ref_rate = cost_bool(self.prob_intra, true)
            + if rf == LAST_FRAME {
                cost_bool(self.prob_last, false)
            } else {
                cost_bool(self.prob_last, true) + cost_bool(self.prob_golden, rf != GOLDEN_FRAME)
            };
        let mode_rate = |m: u8| ref_rate + tree_cost(&MV_REF_TREE, &ictx.mode_probs, m);
        let cands = [MotionVector::ZERO, ictx.nearest, ictx.near];
        // Whole-frame sub-pixel planes: their separable 16-bit passes
        // cost less than the dozen block filterings of even the
        // fastest sub-pixel search.
        let reference = &refs.get(rf).planes[0];
        let sixtap = self.filter == SubpelFilter::SixTap;
        let make_search = |subpel| MotionSearch {
            src: &self.src[0],
            reference,
            mb_x,
            mb_y,
            block: (0, 0, 16, 16),
            best: ictx.best,
            candidates: &cands,
            mv_costs: &self.search.mv_costs,
            subpel,
            lambda: self.lambda,
            speed: self.speed,
            sixtap,
        };
        // Ranking the neighbours' vectors uses the planes only if
        // an earlier search built them; static pictures never do.
        let search = make_search(self.search.built_subpel(rf));
        let mut trials: Vec<(u8, MotionVector, u32)> = Vec::with_capacity(4);
        trials.push((ZEROMV, MotionVector::ZERO, 0));
        for (mode, v) in [(NEARESTMV, ictx.nearest), (NEARMV, ictx.near)] {
            if trials.iter().all(|t| t.1 != v) {
                trials.push((mode, v, 0));
            }
        }
        let mut ranked_inter: Vec<(u64, MbInfo, u32)> = Vec::with_capacity(4);
        let mut min_sse = u64::MAX;
        let mut rank = |mode: u8, v: MotionVector, extra: u32| {
            let info = MbInfo {
                y_mode: mode,
                ref_frame: rf,
                mv: v,
                mvs: [v; 16],
                ..MbInfo::default()
            };
            let rate = mode_rate(mode) + extra;
            let sse = search.sse_at(v);
            ranked_inter.push((self.rd(sse, rate), info, rate));
            sse
        };
        for &(mode, v, extra) in &trials {
            min_sse = min_sse.min(rank(mode, v, extra));
        }
        // A neighbour's vector that already predicts well below the
        // quantizer's resolution leaves nothing for a search to gain.
        let good_enough = min_sse < self.good_enough_sse();
        let mut mv = ictx.best;
        let subpel = (!good_enough).then(|| self.search.subpel(rf, reference, sixtap));
        if !good_enough {
            mv = motion::search(&make_search(subpel));
            let dr = (mv.row as i32 - ictx.best.row as i32).abs();
            let dc = (mv.col as i32 - ictx.best.col as i32).abs();
            if trials.iter().all(|t| t.1 != mv) && dr <= MV_MAX && dc <= MV_MAX {
                rank(NEWMV, mv, self.search.mv_costs.cost(mv, ictx.best));
            }
        }
        s.inter_est = ranked_inter.iter().map(|p| p.0).fold(s.inter_est, u64::min);
        if fast {
            s.pending.append(&mut ranked_inter);
        } else {
            // Code the candidates whose prediction looks best, and
            // only those within twice the best estimate.
            ranked_inter.sort_by_key(|p| p.0);
            let n_full = if self.speed == 0 { 3 } else { 2 };
            let limit = ranked_inter[0].0.saturating_mul(2);
            for (_, info, rate) in ranked_inter
                .into_iter()
                .take(n_full)
                .take_while(|p| p.0 <= limit)
            {
                s.consider(self.try_mode(pic, ctx, info, rate, mb_x, mb_y));
            }
        }
        // Finer motion only where the best so far leaves a residual
        // and, above speed 0, where the 16x16 prediction is off by
        // over an eighth of a step RMS.
        let ac = self.quant.y1.steps()[1] as u64;
        let close = self.speed > 0 && s.inter_est < self.rd(4 * ac * ac, 0);
        if self.speed > 4
            || good_enough
            || close
            || s.best.as_ref().is_some_and(|b| !b.1.has_residual)
        {
            return;
        }
        let split = SplitSearch {
            src: &self.src[0],
            reference: &refs.get(rf).planes[0],
            mb_x,
            mb_y,
            left,
            above,
            best: ictx.best,
            mv16: mv,
            mv_costs: &self.search.mv_costs,
            subpel,
            lambda: self.lambda,
            speed: self.speed,
            sixtap,
        };
        self.try_splits(pic, ctx, &split, rf, mode_rate(SPLITMV), s);
    }

    /// Codes the best split-vector candidates `split` finds for
    /// reference `rf` (`mode_rate`: the bits of SPLITMV itself).
    fn try_splits(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        split: &SplitSearch,
        rf: u8,
        mode_rate: u32,
        s: &mut MbSearch,
    ) {
        let (mb_x, mb_y) = (split.mb_x, split.mb_y);
        let choices = split.search();
        let n_full = if self.speed == 0 { 2 } else { 1 };
        let limit = choices.first().map_or(0, |c| c.cost + c.cost / 4);
        for c in choices.iter().take(n_full).take_while(|c| c.cost <= limit) {
            let info = MbInfo {
                y_mode: SPLITMV,
                ref_frame: rf,
                partitioning: c.partitioning,
                mv: c.mvs[15],
                mvs: c.mvs,
                ..MbInfo::default()
            };
            let rate = mode_rate + c.rate;
            let cand = self.try_mode(pic, ctx, info, rate, mb_x, mb_y);
            s.consider(cand);
        }
    }

    /// Tries 16x16 intra prediction and, where it may win, B_PRED.
    #[allow(clippy::too_many_arguments)]
    fn search_intra(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        above: &MbInfo,
        left: &MbInfo,
        fast: bool,
        mb_x: usize,
        mb_y: usize,
        s: &mut MbSearch,
    ) {
        let uv_mode = self.pick_uv_mode(pic, mb_x, mb_y);
        let ranked = self.rank_y_modes(pic, mb_x, mb_y);
        // On inter frames intra rarely wins: fewer 16x16 trials, and B_PRED
        // only where 16x16 intra came close to the best inter mode.
        let inter_rd = s.best.as_ref().map(|b| b.0);
        let n_intra = match (self.key, self.speed) {
            (_, 6..) => 1,
            (true, 3..) | (false, 0) => 2,
            (false, _) => 1,
            (true, _) => 4,
        };
        let mut intra16_rd = u64::MAX;
        let uv_rate = self.uv_mode_rate(uv_mode);
        let limit = ranked[0].0.saturating_mul(2);
        for &(est, m) in ranked.iter().take(n_intra).take_while(|r| r.0 <= limit) {
            let info = MbInfo {
                y_mode: m,
                uv_mode,
                b_modes: [match m {
                    V_PRED => B_VE_PRED,
                    H_PRED => B_HE_PRED,
                    TM_PRED => B_TM_PRED,
                    _ => B_DC_PRED,
                }; 16],
                ..MbInfo::default()
            };
            let r = self.y_mode_rate(m) + uv_rate;
            if fast {
                s.pending.push((self.rd(0, uv_rate) + est, info, r));
                continue;
            }
            let cand = self.try_mode(pic, ctx, info, r, mb_x, mb_y);
            intra16_rd = intra16_rd.min(cand.0);
            s.consider(cand);
        }
        let close = inter_rd.is_none_or(|r| intra16_rd < r + r / 2);
        if self.key || (self.speed <= 5 && close) {
            let base = MbInfo {
                uv_mode,
                ..MbInfo::default()
            };
            let cand = self.try_bpred(pic, ctx, base, above, left, mb_x, mb_y);
            s.consider(cand);
        }
    }

    /// The chosen candidate, its residual coded finally and its
    /// reconstruction in `pic`.
    fn finish_mb(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        mut s: MbSearch,
        mb_x: usize,
        mb_y: usize,
    ) -> MbCoded {
        let (_, mut chosen) = s.best.take().expect("at least one candidate");
        // Final residual with RD-optimised levels (B_PRED's subblocks were
        // already coded in sequence and keep their levels).
        if self.speed <= 6 && chosen.info.y_mode != B_PRED && chosen.has_residual {
            let info = chosen.info;
            self.predict(pic, &info, mb_x, mb_y);
            let y2 = info.y_mode != SPLITMV;
            chosen = self.code_residual_rd(pic, ctx, mb_x, mb_y, y2);
            s.fresh = false;
            chosen.info = info;
            chosen.info.skip = !chosen.has_residual;
        }
        // Rebuild the winner's reconstruction if later trials overwrote it.
        if !s.fresh {
            let mut c = MbCoeffs::new();
            c.blocks = chosen.coeffs.blocks;
            c.eobs = chosen.coeffs.eobs;
            let res = if chosen.has_residual {
                Some(&mut c)
            } else {
                None
            };
            self.reconstruct(pic, &chosen.info, res, mb_x, mb_y);
        }
        if chosen.info.ref_frame == INTRA_FRAME && chosen.info.y_mode != B_PRED {
            chosen.info.mv = MotionVector::ZERO;
        }
        chosen
    }
}
