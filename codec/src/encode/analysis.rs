//! Macroblock coding decisions: which prediction each macroblock uses and
//! what residual it sends, chosen by rate-distortion cost
//! `J = SSE + lambda * bits` with bit costs from the current probabilities.
//!
//! Every candidate is reconstructed with the decoder's own code
//! (`crate::recon`), so the distortion measured is the one the decoder
//! will see and the final reconstruction equals the decoder's.
//!
//! This file holds the per-macroblock driver (candidates, their costs,
//! the final choice); the candidates come from `intra` (16x16 modes and
//! B_PRED) and `inter` (neighbours' vectors, motion search, split
//! vectors), and every candidate's residual is coded by `residual`.

use crate::bool_encoder::cost_bool;
use crate::encode::modes::MvClamp;
use crate::encode::quantize::Quantizer;
use crate::encode::subpel::SearchCache;
use crate::modes::{mb_neighbours, MbInfo, MotionVector};
use crate::picture::{Picture, PlaneBuf};
use crate::prediction::{LumaMode, RefFrame};
use crate::probs::Probabilities;
use crate::recon::{self, SubpelFilter};
use crate::state::References;
use crate::tokens::{walk_mb_blocks, MbCoeffs, TokenContext};

mod inter;
mod intra;
mod residual;

pub(crate) use residual::quantize;
use residual::{mb_sse, sse_region};

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
    pub search_refs: &'a [RefFrame],
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
        let y2 = c.info.y_mode.has_y2();
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
        if mb.ref_frame == RefFrame::Intra
            || mb.y_mode == LumaMode::SplitMv
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
        let y2 = info.y_mode != LumaMode::SplitMv;
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
        let y2 = coded.info.y_mode.has_y2();
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
        let outside = MbInfo::default();
        let [above, left, above_left] =
            mb_neighbours(mbs, self.mb_cols, mb_x, mb_y, &outside).map(|m| *m);
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
        if self.speed <= 6 && chosen.info.y_mode != LumaMode::B && chosen.has_residual {
            let info = chosen.info;
            self.predict(pic, &info, mb_x, mb_y);
            let y2 = info.y_mode != LumaMode::SplitMv;
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
        if chosen.info.ref_frame == RefFrame::Intra && chosen.info.y_mode != LumaMode::B {
            chosen.info.mv = MotionVector::ZERO;
        }
        chosen
    }
}
