//! Inter candidates: the neighbours' vectors, a motion search and split
//! vectors for one reference frame.

use crate::bool_encoder::cost_bool;
use crate::encode::modes::{inter_context, tree_cost, InterContext, MvClamp, MV_MAX};
use crate::encode::motion::{self, MotionSearch};
use crate::encode::split::SplitSearch;
use crate::modes::{MbInfo, MotionVector};
use crate::picture::Picture;
use crate::prediction::{LumaMode, RefFrame};
use crate::recon::SubpelFilter;
use crate::state::References;
use crate::tables::*;

use super::{FrameAnalysis, MbSearch, TokenContexts};

impl FrameAnalysis<'_> {
    /// Tries inter prediction from reference `rf` for the macroblock
    /// whose above, left and above-left neighbours are `nb`: the
    /// neighbours' vectors, a motion search and, where it may pay, split
    /// vectors.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search_inter(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        refs: &References,
        rf: RefFrame,
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
        let ref_rate = self.ref_frame_rate(rf);
        let mode_rate = |m: LumaMode| ref_rate + tree_cost(&MV_REF_TREE, &ictx.mode_probs, m);
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
        let mut trials: Vec<(LumaMode, MotionVector, u32)> = Vec::with_capacity(4);
        trials.push((LumaMode::ZeroMv, MotionVector::ZERO, 0));
        for (mode, v) in [
            (LumaMode::NearestMv, ictx.nearest),
            (LumaMode::NearMv, ictx.near),
        ] {
            if trials.iter().all(|t| t.1 != v) {
                trials.push((mode, v, 0));
            }
        }
        let mut ranked_inter: Vec<(u64, MbInfo, u32)> = Vec::with_capacity(4);
        let mut min_sse = u64::MAX;
        let mut rank = |mode: LumaMode, v: MotionVector, extra: u32| {
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
                let mv_rate = self.search.mv_costs.cost(mv, ictx.best);
                rank(LumaMode::NewMv, mv, mv_rate);
            }
        }
        self.code_inter_candidates(pic, ctx, ranked_inter, fast, mb_x, mb_y, s);
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
        self.try_splits(pic, ctx, &split, rf, mode_rate(LumaMode::SplitMv), s);
    }

    /// The bits of an inter macroblock's reference frame `rf` (the intra
    /// flag included).
    fn ref_frame_rate(&self, rf: RefFrame) -> u32 {
        cost_bool(self.prob_intra, true)
            + if rf == RefFrame::Last {
                cost_bool(self.prob_last, false)
            } else {
                cost_bool(self.prob_last, true)
                    + cost_bool(self.prob_golden, rf != RefFrame::Golden)
            }
    }

    /// Takes the inter candidates `ranked` (estimated cost, record, mode
    /// rate) of one reference: at fast speeds they wait to be ranked with
    /// the intra ones; else those whose prediction looks best, and only
    /// those within twice the best estimate, are coded now.
    #[allow(clippy::too_many_arguments)]
    fn code_inter_candidates(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        mut ranked: Vec<(u64, MbInfo, u32)>,
        fast: bool,
        mb_x: usize,
        mb_y: usize,
        s: &mut MbSearch,
    ) {
        s.inter_est = ranked.iter().map(|p| p.0).fold(s.inter_est, u64::min);
        if fast {
            s.pending.append(&mut ranked);
            return;
        }
        ranked.sort_by_key(|p| p.0);
        let n_full = if self.speed == 0 { 3 } else { 2 };
        let limit = ranked[0].0.saturating_mul(2);
        for (_, info, rate) in ranked.into_iter().take(n_full).take_while(|p| p.0 <= limit) {
            s.consider(self.try_mode(pic, ctx, info, rate, mb_x, mb_y));
        }
    }

    /// Codes the best split-vector candidates `split` finds for
    /// reference `rf` (`mode_rate`: the bits of SPLITMV itself).
    pub(super) fn try_splits(
        &self,
        pic: &mut Picture,
        ctx: &TokenContexts,
        split: &SplitSearch,
        rf: RefFrame,
        mode_rate: u32,
        s: &mut MbSearch,
    ) {
        let (mb_x, mb_y) = (split.mb_x, split.mb_y);
        let choices = split.search();
        let n_full = if self.speed == 0 { 2 } else { 1 };
        let limit = choices.first().map_or(0, |c| c.cost + c.cost / 4);
        for c in choices.iter().take(n_full).take_while(|c| c.cost <= limit) {
            let info = MbInfo {
                y_mode: LumaMode::SplitMv,
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
}
