//! Intra candidates: 16x16 luma and chroma modes ranked by prediction
//! error, and B_PRED with each subblock's mode chosen in turn.

use crate::bool_encoder::cost_bool;
use crate::encode::modes::{bmode_costs, tree_cost};
use crate::encode::quantize::QuantizedBlock;
use crate::encode::tokenize::block_cost;
use crate::intra_pred;
use crate::modes::{bmode_neighbours, MbInfo};
use crate::picture::Picture;
use crate::prediction::{ChromaMode, LumaMode, SubblockMode};
use crate::recon;
use crate::tables::*;
use crate::tokens::MbCoeffs;

use super::residual::{mb_sse, quantize, transform};
use super::{FrameAnalysis, MbCoded, MbSearch, TokenContexts};

impl FrameAnalysis<'_> {
    /// Codes a B_PRED macroblock: each subblock's mode is chosen in turn,
    /// predicted from the reconstruction of the ones before it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn try_bpred(
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
        info.y_mode = LumaMode::B;
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
        // Fast speeds try the four modes of the 16x16 predictions only.
        let modes = if self.speed >= 4 {
            &SubblockMode::ALL[..4]
        } else {
            &SubblockMode::ALL[..]
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
            let bmode_cost = |m: SubblockMode| {
                if self.key {
                    costs.kf[a_mode as usize][l_mode as usize][m as usize]
                } else {
                    costs.inter[m as usize]
                }
            };
            let src = &self.src[0];
            let mut best: Option<(u64, SubblockMode, QuantizedBlock, [u8; 16])> = None;
            for &m in modes {
                let mut pred = [0u8; 16];
                intra_pred::predict_4x4(m, &edge_above, &edge_left, tl, &mut pred, 0, 4);
                let src_pos = src.index(x as isize, y as isize);
                let r = crate::encode::sad::diff4x4(&src.data, src_pos, src.stride, &pred, 0, 4);
                let qb = quantize(&transform(&r, &self.quant.y1), &self.quant.y1, false);
                let mut rec = pred;
                recon::add_block(&qb.dequant, qb.eob as u8, &mut rec, 0, 4);
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
        mode_rate += self.y_mode_rate(LumaMode::B);
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

    pub(super) fn uv_mode_rate(&self, m: ChromaMode) -> u32 {
        if self.key {
            tree_cost(&UV_MODE_TREE, &KF_UV_MODE_PROBS, m)
        } else {
            tree_cost(&UV_MODE_TREE, &self.probs.uv_mode, m)
        }
    }

    pub(super) fn y_mode_rate(&self, m: LumaMode) -> u32 {
        if self.key {
            tree_cost(&KF_YMODE_TREE, &KF_YMODE_PROBS, m)
        } else {
            cost_bool(self.prob_intra, false) + tree_cost(&YMODE_TREE, &self.probs.y_mode, m)
        }
    }

    /// Picks the chroma mode by prediction error.
    pub(super) fn pick_uv_mode(&self, pic: &Picture, mb_x: usize, mb_y: usize) -> ChromaMode {
        let mut best = (u64::MAX, ChromaMode::Dc);
        for m in [ChromaMode::Dc, ChromaMode::V, ChromaMode::H, ChromaMode::Tm] {
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
    pub(super) fn rank_y_modes(
        &self,
        pic: &Picture,
        mb_x: usize,
        mb_y: usize,
    ) -> [(u64, LumaMode); 4] {
        let p = &pic.planes[0];
        let (above, left, tl) = recon::edges::<16>(p, mb_x * 16, mb_y * 16);
        let s = &self.src[0];
        let mut out = [LumaMode::Dc, LumaMode::V, LumaMode::H, LumaMode::Tm].map(|m| {
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

    /// Tries 16x16 intra prediction and, where it may win, B_PRED.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search_intra(
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
                b_modes: [m.implied_subblock_mode(); 16],
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
}
