//! Picks each frame's q index: fixed, constrained quality, one- or
//! two-pass bitrate, or constant bitrate under a buffer model.

use std::sync::Arc;

use crate::encode::{INTER_LAMBDA_SCALE, REFERENCE_LAMBDA_SCALE};
use crate::tables::AC_QUANT;

use crate::encode::quantize::quantizer_to_qindex;

use super::buffer::Bucket;
use super::config::{EncoderConfig, RateControl};
use super::pass_stats::FirstPassStats;

/// The three kinds of frame the rate controller models separately: their
/// bits per quantizer step differ several-fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FrameKind {
    Key = 0,
    Inter = 1,
    Golden = 2,
}

impl FrameKind {
    pub(super) fn lambda_scale(self) -> u32 {
        match self {
            FrameKind::Inter => INTER_LAMBDA_SCALE,
            FrameKind::Key | FrameKind::Golden => REFERENCE_LAMBDA_SCALE,
        }
    }
}

/// Exponent of the rate model `bits = c * pixels / step^RATE_EXP`
/// (`step` the luma AC quantizer step). Near 1 for VP8 at medium rates;
/// the fitted `c` absorbs the content, the exponent only sets how far a
/// miss moves q.
const RATE_EXP: f64 = 1.2;
/// Bitrate mode: the buffer error is paid back over this many frames.
const PAYBACK_FRAMES: f64 = 24.0;
/// Bitrate mode: largest q index change between inter frames, to keep
/// quality steady once the model has settled.
const MAX_Q_STEP: i32 = 10;
/// Bitrate mode: a key frame may take at most this many frames' budget.
const MAX_KEY_BUDGET: f64 = 12.0;
/// vpxenc's default `--min-q` (4) and `--max-q` (63) as q indices.
pub(super) const MIN_QI: u8 = 4;
pub(super) const MAX_QI: u8 = 127;

/// Two-pass: a frame's first-pass bits are scaled by this many frames'
/// worth of prior (scale 1) before the measured scale takes over.
const PRIOR_FRAMES: f64 = 3.0;
/// Two-pass: prior ratio of a key frame's bits to its first-pass bits at
/// the inter frames' q index (it is coded at half that index).
const KEY_PRIOR: f64 = 2.5;
/// Two-pass: the most a non-key frame may take, in frames' worth of the
/// bits left per frame left; key frames may take more.
const MAX_FRAME_SHARE: f64 = 6.0;
const MAX_KEY_SHARE: f64 = 16.0;
/// Two-pass: largest q index change between inter frames.
const TWO_PASS_Q_STEP: i32 = 10;
/// Two-pass: over the last this many frames the q index may move freely.
const END_FRAMES: usize = 8;
/// CBR: the distance to the optimal buffer level is closed over this many
/// frames.
const CBR_PAYBACK_FRAMES: f64 = 12.0;
/// CBR: a key frame may take at most this share of the buffer's level.
const CBR_KEY_SHARE: f64 = 0.5;

/// Picks each frame's q index: fixed, or from a rate model fitted on the
/// frames coded so far with a buffer feeding back the accumulated error.
#[derive(Clone, Debug)]
pub(super) struct RateController {
    rate: RateControl,
    golden_boost: u8,
    pixels: f64,
    /// Bits one frame may spend on average.
    budget: f64,
    /// Bits saved so far (negative: overspent).
    buffer: f64,
    /// Model scale per frame kind, and how many frames fitted it.
    model: [f64; 3],
    fitted: [u32; 3],
    /// Last inter frame's q index: the reference the boosts apply to.
    inter_qi: Option<u8>,
    /// Allowed q indices (`--min-q`, `--max-q`).
    lo: u8,
    hi: u8,
    two_pass: Option<TwoPass>,
    /// CBR's decoder buffer.
    bucket: Option<Bucket>,
    /// Whether the frame being coded is a shown one (a hidden alt-ref
    /// has no display time, so it brings no budget of its own).
    shown_in_flight: bool,
}

/// The second pass's bookkeeping: where in the analysed clip the encoder
/// is, and how the real frames' sizes compare with the analysis.
#[derive(Clone, Debug)]
struct TwoPass {
    stats: Arc<FirstPassStats>,
    /// Each analysed frame's rate curve (see [`rate_curves`]).
    curves: Vec<(f64, f64)>,
    /// Bits the whole clip may take.
    total: f64,
    /// Bits every packet so far took.
    spent: f64,
    /// Index of the next shown frame.
    next: usize,
    /// Non-key packets (hidden alt-refs included): bits taken, and their
    /// first-pass bits scaled to the inter q index in force.
    actual: f64,
    predicted: f64,
    /// The same for key frames.
    key_actual: f64,
    key_predicted: f64,
    /// Hidden alt-ref bits not yet counted in `actual`: each alt-ref is
    /// counted over the group after it, `arf_release` bits a frame, so
    /// that one costly alt-ref does not read as a jump in every frame's
    /// cost.
    arf_pending: f64,
    arf_release: f64,
    /// Frames a group spans, to spread an alt-ref's bits over.
    group_frames: f64,
}

pub(super) fn step(qi: u8) -> f64 {
    AC_QUANT[qi as usize] as f64
}

/// Bounds of a frame's measured rate exponent (a frame whose two sizes
/// barely differ is mostly header, but bits still grow somewhat at finer
/// q), and the exponent when the two q indices coincide.
const MIN_EXP: f64 = 0.3;
const MAX_EXP: f64 = 3.0;
const DEFAULT_EXP: f64 = 1.2;

/// Each frame's rate curve: `ln` of its bits at
/// [`q_index`](FirstPassStats::q_index) and its exponent `a` in
/// `bits ~ step^-a`, from the two analysis sizes.
fn rate_curves(stats: &FirstPassStats) -> Vec<(f64, f64)> {
    let (s1, s0) = (step(stats.q_index).ln(), step(stats.fine_q_index).ln());
    stats
        .frames
        .iter()
        .map(|f| {
            let (b1, b0) = (f64::from(f.bits.max(8)), f64::from(f.fine_bits.max(8)));
            let a = if s1 > s0 {
                ((b0 / b1).ln() / (s1 - s0)).clamp(MIN_EXP, MAX_EXP)
            } else {
                DEFAULT_EXP
            };
            (b1.ln(), a)
        })
        .collect()
}

impl TwoPass {
    /// Bits of a frame with rate curve `curve` at q index `qi`, as the
    /// analysis saw it.
    fn predict(&self, (ln_bits, exp): (f64, f64), qi: u8) -> f64 {
        (ln_bits + exp * (step(self.stats.q_index).ln() - step(qi).ln())).exp()
    }
}

impl RateController {
    pub(super) fn new(cfg: &EncoderConfig) -> Self {
        let budget = cfg.rate.kbps().map_or(0.0, |kbps| {
            kbps as f64 * 1000.0 * cfg.framerate.1 as f64 / cfg.framerate.0 as f64
        });
        let two_pass = cfg.first_pass.as_ref().map(|stats| {
            let mean = stats.bits_from(0) / stats.frames.len().max(1) as f64;
            TwoPass {
                curves: rate_curves(stats),
                total: budget * stats.frames.len() as f64,
                stats: stats.clone(),
                spent: 0.0,
                next: 0,
                actual: PRIOR_FRAMES * mean,
                predicted: PRIOR_FRAMES * mean,
                key_actual: KEY_PRIOR * mean,
                key_predicted: mean,
                arf_pending: 0.0,
                arf_release: 0.0,
                group_frames: if cfg.golden.interval > 0 {
                    cfg.golden.interval as f64
                } else {
                    cfg.keyint.clamp(1, 128) as f64
                },
            }
        });
        let bucket = match cfg.rate {
            RateControl::Cbr { kbps, buffer } => Some(Bucket::new(kbps, &buffer, budget)),
            _ => None,
        };
        RateController {
            rate: cfg.rate,
            golden_boost: cfg.golden.q_boost,
            pixels: (cfg.width * cfg.height) as f64,
            budget,
            buffer: 0.0,
            // Priors from libvpx's numbers on camera clips (bits per pixel
            // times step): intra frames cost ~6x inter ones.
            model: [25.0, 4.0, 6.0],
            fitted: [0; 3],
            inter_qi: None,
            lo: quantizer_to_qindex(cfg.quantizer_range.0),
            hi: quantizer_to_qindex(cfg.quantizer_range.1),
            two_pass,
            bucket,
            shown_in_flight: false,
        }
    }

    /// Bits one frame may spend on average (0 without a target).
    pub(super) fn budget(&self) -> f64 {
        self.budget
    }

    /// The allowed q indices, lowest first.
    pub(super) fn q_range(&self) -> (u8, u8) {
        (self.lo, self.hi)
    }

    /// CBR: the buffer's level in bits (`None` in other modes).
    pub(super) fn buffer_level(&self) -> Option<f64> {
        self.bucket.as_ref().map(|b| b.level)
    }

    /// Marks the start of a shown frame: the channel delivers its share,
    /// and the second pass knows which analysed frame comes.
    pub(super) fn begin_shown_frame(&mut self) {
        if let Some(b) = &mut self.bucket {
            b.fill();
        }
        self.shown_in_flight = true;
    }

    /// The most bits the next frame may take, and whether that is a hard
    /// limit. CBR: what the buffer holds (hard). Two-pass: a multiple of
    /// the bits left per frame left, so that one boosted frame of costly
    /// content (an alt-ref over noise at half the q index) cannot eat the
    /// rest of the clip's bits (soft: after re-coding at the worst q index
    /// it stays). Other modes: none.
    pub(super) fn frame_limit(&self, key_frame: bool) -> Option<(f64, bool)> {
        if let Some(b) = &self.bucket {
            return Some((b.level.max(0.0), true));
        }
        let tp = self.two_pass.as_ref()?;
        let frames_left = tp.stats.frames.len().saturating_sub(tp.next).max(1);
        let per_frame = ((tp.total - tp.spent) / frames_left as f64).max(self.budget * 0.25);
        let share = if key_frame {
            MAX_KEY_SHARE
        } else {
            MAX_FRAME_SHARE
        };
        Some((per_frame * share, false))
    }

    pub(super) fn predict(&self, kind: FrameKind, qi: u8) -> f64 {
        self.model[kind as usize] * self.pixels / step(qi).powf(RATE_EXP)
    }

    /// The lowest q index whose predicted size fits `bits`.
    pub(super) fn qi_for(&self, kind: FrameKind, bits: f64) -> u8 {
        (MIN_QI..=MAX_QI)
            .find(|&qi| self.predict(kind, qi) <= bits)
            .unwrap_or(MAX_QI)
    }

    /// Bitrate mode: a key frame's boost below the inter quantizer, larger
    /// at high q, where the key frame's quality lasts over many cheap
    /// frames (then capped by the buffer).
    pub(super) fn key_boost(inter_qi: u8) -> u8 {
        (inter_qi / 4).max(4)
    }

    /// The golden boost at `qi`: see [`GoldenPolicy::q_boost`].
    pub(super) fn golden_boost(&self, qi: u8) -> u8 {
        self.golden_boost.min(qi / 2)
    }

    pub(super) fn q_index(&self, kind: FrameKind) -> u8 {
        let qi = match self.rate {
            RateControl::Quantizer(q) => self.fixed_q_index(q, kind),
            RateControl::Bitrate { .. } if self.two_pass.is_some() => {
                self.boosted(self.two_pass_inter_qi(), kind)
            }
            RateControl::Bitrate { .. } => self.bitrate_q_index(kind),
            RateControl::Cbr { .. } => self.cbr_q_index(kind),
            RateControl::ConstrainedQuality { level, .. } => {
                let capped = if self.two_pass.is_some() {
                    self.boosted(self.two_pass_inter_qi(), kind)
                } else {
                    self.bitrate_q_index(kind)
                };
                capped.max(self.fixed_q_index(level, kind))
            }
        };
        qi.clamp(self.lo, self.hi)
    }

    /// The q index of quantizer `q`'s frames of `kind` in fixed-quantizer
    /// mode.
    fn fixed_q_index(&self, q: u8, kind: FrameKind) -> u8 {
        {
            {
                let qi = quantizer_to_qindex(q);
                match kind {
                    // Half the inter q index: a key frame's quality lasts
                    // over every frame that predicts from it. rd-harness at
                    // speed 4 (q 10..50) against an eighth, the old boost:
                    // box -7.4%, carphone -1.5% (a quarter: -2.1% / -0.3%;
                    // two thirds: -11.3% / -1.4%; four fifths: -14.7% /
                    // -0.8%: the static box keeps gaining, carphone peaks
                    // near half).
                    FrameKind::Key => qi - qi / 2,
                    FrameKind::Golden => qi - self.golden_boost(qi),
                    FrameKind::Inter => qi,
                }
            }
        }
    }

    /// Two-pass: the boosts of fixed-quantizer mode around the inter
    /// frames' q index `qi`, so that the second pass codes like `--end-usage
    /// q` at whatever quantizer meets the target.
    fn boosted(&self, qi: u8, kind: FrameKind) -> u8 {
        match kind {
            FrameKind::Key => qi - qi / 2,
            FrameKind::Golden => qi - self.golden_boost(qi),
            FrameKind::Inter => qi,
        }
        .max(self.lo)
    }

    /// Two-pass: the inter q index at which the rest of the clip, as the
    /// first pass saw it scaled by how the frames coded so far compare
    /// with it, takes the bits left.
    fn two_pass_inter_qi(&self) -> u8 {
        let tp = self.two_pass.as_ref().expect("two-pass mode");
        let (lo, hi) = match self.rate {
            RateControl::ConstrainedQuality { level, .. } => {
                (self.lo.max(quantizer_to_qindex(level)), self.hi)
            }
            _ => (self.lo, self.hi),
        };
        let frames = &tp.stats.frames;
        if tp.next >= frames.len() {
            // More frames than were analysed: hold the last q index.
            return self.inter_qi.unwrap_or(hi).clamp(lo, hi);
        }
        let left = tp.total - tp.spent;
        let inter_scale = tp.actual / tp.predicted;
        let key_scale = tp.key_actual / tp.key_predicted;
        let cost = |qi: u8| -> f64 {
            frames[tp.next..]
                .iter()
                .zip(&tp.curves[tp.next..])
                .map(|(f, c)| {
                    let scale = if f.key_frame { key_scale } else { inter_scale };
                    scale * tp.predict(*c, qi)
                })
                .sum()
        };
        // The lowest q index whose cost fits (cost falls as q rises).
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if cost(mid) <= left {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        let qi = a;
        match self.inter_qi {
            // Keep quality steady while the estimates settle; near the end
            // the bits left decide alone, so the total lands.
            Some(prev) if frames.len() - tp.next > END_FRAMES => {
                let d = (qi as i32 - prev as i32).clamp(-TWO_PASS_Q_STEP, TWO_PASS_Q_STEP);
                (prev as i32 + d).clamp(lo as i32, hi as i32) as u8
            }
            _ => qi,
        }
    }

    /// CBR: the bitrate model's q index for a target steering the buffer
    /// toward its optimal level; a key frame may take a bounded share of
    /// what the buffer holds.
    fn cbr_q_index(&self, kind: FrameKind) -> u8 {
        let b = self.bucket.as_ref().expect("cbr mode");
        let target = (self.budget + (b.level - b.optimal) / CBR_PAYBACK_FRAMES)
            .clamp(self.budget * 0.25, self.budget * 4.0);
        let key_cap = (b.level * CBR_KEY_SHARE).min(self.budget * MAX_KEY_BUDGET);
        self.model_q_index(kind, target, key_cap)
    }

    pub(super) fn bitrate_q_index(&self, kind: FrameKind) -> u8 {
        let target = (self.budget + self.buffer / PAYBACK_FRAMES)
            .clamp(self.budget * 0.25, self.budget * 4.0);
        self.model_q_index(kind, target, self.budget * MAX_KEY_BUDGET)
    }

    /// The fitted model's q index for an inter frame of `target` bits
    /// (moving at most [`MAX_Q_STEP`] from the last one), with the boosts
    /// of `kind`; a key frame's predicted size at most `key_cap`.
    fn model_q_index(&self, kind: FrameKind, target: f64, key_cap: f64) -> u8 {
        let model_qi = self.qi_for(FrameKind::Inter, target);
        let inter_qi = match self.inter_qi {
            Some(prev) if self.fitted[1] >= 2 => {
                let d = (model_qi as i32 - prev as i32).clamp(-MAX_Q_STEP, MAX_Q_STEP);
                (prev as i32 + d) as u8
            }
            _ => model_qi,
        };
        match kind {
            FrameKind::Inter => inter_qi,
            FrameKind::Golden => (inter_qi - self.golden_boost(inter_qi)).max(MIN_QI),
            FrameKind::Key => {
                // Boosted, but never so far that one key frame eats more
                // than a bounded share of the buffer.
                let boosted = inter_qi.saturating_sub(Self::key_boost(inter_qi));
                let cap = self.qi_for(FrameKind::Key, key_cap);
                boosted.max(cap).max(MIN_QI)
            }
        }
    }

    pub(super) fn update(&mut self, kind: FrameKind, qi: u8, bits: usize) {
        // Two-pass: the inter q index the frame was planned at, before the
        // state it was planned from changes.
        let planned = self.two_pass.is_some().then(|| self.two_pass_inter_qi());
        let bits = bits as f64;
        let observed = bits * step(qi).powf(RATE_EXP) / self.pixels;
        let k = kind as usize;
        // The first frame of a kind replaces the prior; later ones move the
        // fit part way, since frames vary around the content's mean.
        self.model[k] = if self.fitted[k] == 0 {
            observed
        } else {
            0.6 * self.model[k] + 0.4 * observed
        };
        self.fitted[k] += 1;
        if kind == FrameKind::Inter {
            self.inter_qi = Some(qi);
            // Golden frames resemble boosted inter frames until measured.
            if self.fitted[2] == 0 {
                self.model[2] = self.model[1] * 1.5;
            }
        }
        let shown = std::mem::take(&mut self.shown_in_flight);
        self.buffer += if shown { self.budget } else { 0.0 } - bits;
        if matches!(self.rate, RateControl::ConstrainedQuality { .. }) {
            // The cap is an average: the savings of frames the level
            // keeps below it may pay for a later costly stretch, but
            // only within one payback period.
            self.buffer = self.buffer.min(self.budget * PAYBACK_FRAMES);
        }
        if let Some(b) = &mut self.bucket {
            b.drain(bits);
        }
        if let (Some(planned), Some(tp)) = (planned, &mut self.two_pass) {
            tp.spent += bits;
            if !shown {
                // A hidden alt-ref: no frame of the analysis of its own; its
                // bits count as the overhead of the group it serves.
                tp.arf_pending += bits;
                tp.arf_release = tp.arf_pending / tp.group_frames;
                return;
            }
            let analysed = tp
                .curves
                .get(tp.next)
                .map_or(0.0, |&c| tp.predict(c, planned));
            tp.next += 1;
            if kind == FrameKind::Key {
                tp.key_actual += bits;
                tp.key_predicted += analysed;
            } else {
                let arf = tp.arf_release.min(tp.arf_pending);
                tp.arf_pending -= arf;
                tp.actual += bits + arf;
                tp.predicted += analysed;
            }
        }
    }

    /// A q index at which a frame that took `bits` at `qi` should
    /// fit in `max_bits` (with a margin), at least a few steps coarser.
    pub(super) fn retry_q_index(&self, qi: u8, bits: f64, max_bits: f64) -> u8 {
        let need = step(qi) * (bits / (0.85 * max_bits.max(1.0))).powf(1.0 / RATE_EXP);
        let floor = qi.saturating_add(4).min(self.hi);
        (floor..=self.hi)
            .find(|&q| step(q) >= need)
            .unwrap_or(self.hi)
    }
}
