//! Picks each frame's q index: fixed, constrained quality or bitrate.

use crate::encode::{INTER_LAMBDA_SCALE, REFERENCE_LAMBDA_SCALE};
use crate::tables::AC_QUANT;

use crate::encode::quantize::quantizer_to_qindex;

use super::{EncoderConfig, RateControl};

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
}

pub(super) fn step(qi: u8) -> f64 {
    AC_QUANT[qi as usize] as f64
}

impl RateController {
    pub(super) fn new(cfg: &EncoderConfig) -> Self {
        let budget = match cfg.rate {
            RateControl::Bitrate { kbps } => {
                kbps as f64 * 1000.0 * cfg.framerate.1 as f64 / cfg.framerate.0 as f64
            }
            RateControl::Quantizer(_) => 0.0,
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
        }
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
        match self.rate {
            RateControl::Quantizer(q) => {
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
            RateControl::Bitrate { .. } => self.bitrate_q_index(kind),
        }
    }

    pub(super) fn bitrate_q_index(&self, kind: FrameKind) -> u8 {
        let target = (self.budget + self.buffer / PAYBACK_FRAMES)
            .clamp(self.budget * 0.25, self.budget * 4.0);
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
                let cap = self.qi_for(FrameKind::Key, self.budget * MAX_KEY_BUDGET);
                boosted.max(cap).max(MIN_QI)
            }
        }
    }

    pub(super) fn update(&mut self, kind: FrameKind, qi: u8, bits: usize) {
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
        self.buffer += self.budget - bits;
    }
}
