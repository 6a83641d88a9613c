//! The group structure: which frame comes next (key, golden, inter), how long the group it starts runs, and the hidden alt-ref frame coded for it.

use crate::encode::temporal_filter;
use crate::encode::{EncodeParams, REFERENCE_LAMBDA_SCALE};
use crate::image::Frame;

use super::rate_control::{FrameKind, MIN_QI};
use super::{EncoderStatus, Packet};

impl super::Encoder {
    /// What the next frame will be.
    pub(super) fn frame_kind(&self) -> FrameKind {
        let k = self.cfg.keyint as u64;
        if self.state.is_empty() || (k > 0 && self.since_key >= k) {
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
        self.group_len = self.cfg.golden.interval as u64;
        let policy = &self.cfg.alt_ref;
        if !policy.enabled || self.cfg.lag_in_frames == 0 {
            return false;
        }
        // The group ends at the next golden refresh, or before the next
        // key frame, or at the end of the lookahead.
        let mut len = if self.group_len > 0 {
            self.group_len
        } else {
            u64::MAX
        };
        let k = self.cfg.keyint as u64;
        let pos = if kind == FrameKind::Key {
            0
        } else {
            self.since_key
        };
        let mut ends_at_key = false;
        if k > 0 && pos.saturating_add(len) >= k {
            len = k - pos;
            ends_at_key = true;
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
        true
    }

    /// Codes the hidden alt-ref frame built around `queue[center]`.
    pub(super) fn encode_alt_ref(&mut self, center: usize) -> Result<Packet, EncoderStatus> {
        self.arf_due = None;
        let half = (self.cfg.alt_ref.arnr.max_frames.max(1) as usize - 1) / 2;
        let lo = center.saturating_sub(half);
        let hi = (center + half + 1).min(self.queue.len());
        let window: Vec<Frame> = self.queue.range(lo..hi).map(|(_, f)| f.clone()).collect();
        let source = temporal_filter::filter(&window, center - lo, &self.cfg.alt_ref.arnr);
        let pts = self.queue.front().map_or(self.frames_in, |(p, _)| *p);
        let inter_qi = self.rc.q_index(FrameKind::Inter) as u32;
        let boost = inter_qi * self.cfg.alt_ref.q_boost_pct.min(100) as u32 / 100;
        let params = EncodeParams {
            q_index: (inter_qi - boost).max(MIN_QI as u32).min(inter_qi) as u8,
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
