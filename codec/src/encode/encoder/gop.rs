//! The group structure: which frame comes next (key, golden, inter), how long the group it starts runs, and the hidden alt-ref frame coded for it.

use crate::encode::temporal_filter;
use crate::encode::{EncodeParams, REFERENCE_LAMBDA_SCALE};
use crate::image::Image;

use super::lookahead::{self, FrameStats, CUT_MAX_CARRY};
use super::rate_control::{FrameKind, MIN_QI};
use super::{EncoderStatus, Packet, RateControl};

impl super::Encoder {
    /// What the next frame will be; `cut`: the content cuts to it.
    pub(super) fn frame_kind(&self, cut: bool) -> FrameKind {
        let k = self.cfg.keyint as u64;
        if self.state.is_empty()
            || (k > 0 && self.since_key >= k)
            || (cut && self.since_key >= (self.cfg.kf_min_dist as u64).max(1))
        {
            return FrameKind::Key;
        }
        if self.group_len > 0 && self.since_golden >= self.group_len {
            FrameKind::Golden
        } else {
            FrameKind::Inter
        }
    }

    /// Plans the group a key or golden frame of `kind` starts (the frame
    /// itself already taken from the queue): its length, and whether an
    /// alt-ref frame is coded for it (returned).
    pub(super) fn plan_group(&mut self, kind: FrameKind) -> bool {
        let pos = if kind == FrameKind::Key {
            0
        } else {
            self.since_key
        };
        // Planned groups at a fixed quantizer only for now: under a bitrate
        // target or cap the controllers were tuned on fixed groups, and
        // with planned ones a 100 kbit/s cq cap was overshot by 16%
        // (`coordinator/tests/rate_control_cli.rs`).
        let adaptive = self.cfg.group.adaptive
            && self.cfg.wants_stats()
            && matches!(self.cfg.rate, RateControl::Quantizer(_));
        self.group_len = if adaptive {
            // `stats[i]` belongs to the frame i + 1 after this one.
            let stats = self.stats.make_contiguous();
            let g = &self.cfg.group;
            let max_len = stats.len().min(self.cfg.group_max_len() as usize);
            let len = lookahead::group_length(
                stats,
                g.min_len as usize,
                max_len,
                g.min_carry_pct as f64 / 100.0,
            );
            len.max(1) as u64
        } else {
            self.cfg.golden.interval as u64
        };
        // The group ends at the next golden refresh, or before the next
        // key frame (forced or at a scene cut), or at the end of the
        // lookahead.
        let mut len = if self.group_len > 0 {
            self.group_len
        } else {
            u64::MAX
        };
        let k = self.cfg.keyint as u64;
        let mut ends_at_key = false;
        if k > 0 && pos.saturating_add(len) >= k {
            len = k - pos;
            ends_at_key = true;
        }
        let mut cut = None;
        if self.cfg.cuts_at_scene_changes() {
            let stats = self.stats.make_contiguous();
            // The frame at distance d has been d + pos frames after the
            // key frame when its kind is decided.
            let min_dist = (self.cfg.kf_min_dist as u64).max(1);
            let first = (min_dist.saturating_sub(pos + 1)) as usize;
            cut = lookahead::scene_cut(stats, first, CUT_MAX_CARRY);
            if let Some(i) = cut {
                if (i as u64 + 1) <= len {
                    len = i as u64 + 1;
                    ends_at_key = true;
                }
            }
        }
        if adaptive {
            // A golden or alt-ref frame serves its group; a key frame's
            // picture lives on through every frame up to the next cut.
            let stats = self.stats.make_contiguous();
            let group = (len.saturating_sub(1) as usize).min(stats.len());
            self.group_weight = lookahead::reference_weight(&stats[..group]);
            let g = &self.cfg.group;
            (self.start_weight, self.start_exp_pct) = if kind == FrameKind::Key {
                let n = cut.unwrap_or(stats.len()).min(stats.len());
                let span = &stats[..n];
                let chroma = span.iter().map(FrameStats::chroma_carry).sum::<f64>()
                    / span.len().max(1) as f64;
                let exp = if chroma * 100.0 >= f64::from(g.key_min_chroma_carry_pct) {
                    g.key_weight_exp_pct
                } else {
                    g.weight_exp_pct
                };
                (lookahead::reference_weight(span), exp)
            } else {
                (self.group_weight, g.weight_exp_pct)
            };
        }
        let policy = &self.cfg.alt_ref;
        if !policy.enabled || self.cfg.lag_in_frames == 0 {
            return false;
        }
        let avail = self.queue.len() as u64;
        if len > avail {
            // The lookahead does not reach the group's end (a short lag,
            // or the end of the stream): the alt-ref stands for the last
            // frame it holds.
            len = avail;
            ends_at_key = false;
        }
        // The alt-ref stands for the group's last frame: the next golden
        // frame, or the frame before a key frame, which refreshes all.
        let target = if ends_at_key {
            len.saturating_sub(1)
        } else {
            len
        };
        if target < policy.min_group as u64 {
            return false;
        }
        self.arf_due = Some(target as usize - 1);
        self.arf_arnr = policy.arnr;
        if policy.adaptive_filter && self.cfg.wants_stats() {
            // `stats[i]` compares frame i + 1 after this one with its
            // predecessor: the group's frames up to the alt-ref's.
            let stats = self.stats.make_contiguous();
            let n = (target as usize).min(stats.len());
            self.arf_arnr = lookahead::arnr_for_group(policy.arnr, &stats[..n]);
        }
        true
    }

    /// Whether reference frames take their q index from the group's
    /// weight: adaptive groups at a fixed quantizer (in bitrate mode the
    /// rate controller keeps its own boosts, which its budget bounds).
    fn adaptive_q(&self) -> bool {
        self.cfg.group.adaptive
            && self.cfg.wants_stats()
            && matches!(self.cfg.rate, RateControl::Quantizer(_))
    }

    /// The q index of a key or golden frame that starts a group (not an
    /// overlay of an alt-ref frame).
    pub(super) fn reference_q_index(&self, kind: FrameKind) -> u8 {
        if !self.adaptive_q() {
            return self.rc.q_index(kind);
        }
        lookahead::reference_q_index(
            self.rc.q_index(FrameKind::Inter),
            self.start_weight,
            f64::from(self.start_exp_pct) / 100.0,
        )
    }

    /// Codes the hidden alt-ref frame built around `queue[center]`.
    pub(super) fn encode_alt_ref(&mut self, center: usize) -> Result<Packet, EncoderStatus> {
        self.arf_due = None;
        let arnr = self.arf_arnr;
        let half = (arnr.max_frames.max(1) as usize - 1) / 2;
        let lo = center.saturating_sub(half);
        let hi = (center + half + 1).min(self.queue.len());
        let window: Vec<&Image> = self.queue.range(lo..hi).map(|(_, f)| f).collect();
        let source = temporal_filter::filter_on(&window, center - lo, &arnr, self.workers());
        let pts = self.queue.front().map_or(self.frames_in, |(p, _)| *p);
        let q_index = if self.adaptive_q() {
            lookahead::reference_q_index(
                self.rc.q_index(FrameKind::Inter),
                self.group_weight,
                self.cfg.group.weight_exp_pct as f64 / 100.0,
            )
        } else {
            let inter_qi = self.rc.q_index(FrameKind::Inter) as u32;
            let boost = inter_qi * self.cfg.alt_ref.q_boost_pct.min(100) as u32 / 100;
            (inter_qi - boost).max(MIN_QI as u32).min(inter_qi) as u8
        };
        let params = EncodeParams {
            q_index,
            key_frame: false,
            refresh_last: false,
            refresh_golden: false,
            refresh_altref: true,
            show_frame: false,
            sign_bias_altref: true,
            lambda_scale: REFERENCE_LAMBDA_SCALE,
            speed: self.cfg.speed,
            partitions: self.cfg.partitions,
            refresh_entropy: self.cfg.refresh_entropy,
            ..EncodeParams::default()
        };
        let out = self.encode_rc(&source, &params)?;
        self.rc
            .update(FrameKind::Golden, out.q_index, out.data.len() * 8);
        self.arf_active = true;
        let packet = Packet {
            pts,
            show_frame: false,
            key_frame: false,
            golden: false,
            q_index: out.q_index,
            filter_level: out.filter_level,
            state: out.state.clone(),
            reconstruction: None,
            data: out.data,
        };
        self.state = out.state;
        Ok(packet)
    }
}
