//! The first pass of a two-pass encode: a fast fixed-q encode of the whole
//! clip whose per-frame sizes tell the second pass how the clip's bits
//! should be spread (vpxenc's `--passes 2`).
//!
//! libvpx's first pass measures intra and motion-compensated prediction
//! errors and maps them to bits with a fitted curve. Here the analysis is
//! the fastest speed preset's own encode at two q indices: its frame sizes
//! already are bits, coded by the same tools as the second pass, and the
//! two sizes give each frame's own elasticity (how fast its bits grow as
//! the quantizer gets finer: slowly for clean content, fast for noise
//! that a coarse quantizer hides), so the second pass extrapolates each
//! frame by its own curve and only fits the overall scale (speed preset,
//! boosts, alt-refs).

use crate::encode::quantize::quantizer_to_qindex;
use crate::encode::{encode, EncodeError, EncodeParams, INTER_LAMBDA_SCALE};
use crate::image::Image;
use crate::state::DecoderState;

use super::config::{EncoderConfig, RateControl, MAX_SPEED};
use super::pass_stats::{FirstPassStats, PassFrameStats};
use super::rate_control::{FrameKind, RateController};

/// The coarse analysis q index: this far above the prior model's guess for
/// the target, within these bounds; the fine one is half of it.
const COARSE_ABOVE: u8 = 0;
const COARSE_MIN: u8 = 24;
const COARSE_MAX: u8 = 127;

/// The first pass: feed it every frame of the clip, then
/// [`finish`](Self::finish) and put the statistics in
/// [`EncoderConfig::first_pass`] for the second.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use excam_codec::encode::encoder::{EncoderConfig, FirstPass, RateControl};
/// use excam_codec::Image;
///
/// let mut cfg = EncoderConfig::new(32, 32);
/// cfg.rate = RateControl::Bitrate { kbps: 50 };
/// let clip: Vec<Image> = (0..4).map(|i| Image::filled(32, 32, [40 * i, 128, 128])).collect();
/// let mut fp = FirstPass::new(&cfg).unwrap();
/// for f in &clip {
///     fp.add_frame(f).unwrap();
/// }
/// cfg.first_pass = Some(Arc::new(fp.finish()));
/// let mut enc = cfg.build().unwrap();
/// // ... then send the same frames to `enc`.
/// # for f in clip { enc.send_frame(Some(f)).unwrap(); enc.receive_packet().unwrap(); }
/// ```
#[derive(Debug)]
pub struct FirstPass {
    width: usize,
    height: usize,
    keyint: u64,
    q_index: u8,
    state: DecoderState,
    fine_state: DecoderState,
    since_key: u64,
    frames: Vec<PassFrameStats>,
}

impl FirstPass {
    /// A first pass for the clip `cfg` will encode: its size, key frame
    /// interval, and a q index near the one the target will need (so that
    /// the second pass extrapolates little).
    ///
    /// # Errors
    ///
    /// As [`EncoderConfig::validate`] (without the statistics).
    pub fn new(cfg: &EncoderConfig) -> Result<Self, EncodeError> {
        let mut probe = cfg.clone();
        probe.first_pass = None;
        probe.validate()?;
        let rc = RateController::new(&probe);
        let q_index = match cfg.rate {
            RateControl::Quantizer(q) => quantizer_to_qindex(q),
            _ => {
                let qi = rc.qi_for(FrameKind::Inter, rc.budget());
                match cfg.rate {
                    RateControl::ConstrainedQuality { level, .. } => {
                        qi.max(quantizer_to_qindex(level))
                    }
                    _ => qi,
                }
            }
        };
        // The two analysis q indices span most of the useful range around
        // the prior's guess, so each frame's curve is measured where the
        // second pass will use it rather than extrapolated from a corner.
        let q_index = q_index
            .saturating_add(COARSE_ABOVE)
            .clamp(COARSE_MIN, COARSE_MAX);
        Ok(FirstPass {
            width: cfg.width,
            height: cfg.height,
            keyint: cfg.keyint as u64,
            q_index,
            state: DecoderState::new(),
            fine_state: DecoderState::new(),
            since_key: 0,
            frames: Vec::new(),
        })
    }

    /// Analyses the next frame.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BadDimensions`] for a frame of another size.
    pub fn add_frame(&mut self, frame: &Image) -> Result<(), EncodeError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(EncodeError::BadDimensions(frame.width, frame.height));
        }
        let key_frame = self.state.is_empty() || (self.keyint > 0 && self.since_key >= self.keyint);
        let mut params = EncodeParams {
            q_index: self.q_index,
            key_frame,
            refresh_last: true,
            lambda_scale: INTER_LAMBDA_SCALE,
            speed: MAX_SPEED,
            partitions: 1,
            refresh_entropy: true,
            ..EncodeParams::default()
        };
        let out = encode(&self.state, frame, &params)?;
        params.q_index = self.q_index / 2;
        let fine = encode(&self.fine_state, frame, &params)?;
        let bits = |data: &[u8]| (data.len() * 8).min(u32::MAX as usize) as u32;
        self.frames.push(PassFrameStats {
            bits: bits(&out.data),
            fine_bits: bits(&fine.data),
            key_frame: out.key_frame,
        });
        self.since_key = if out.key_frame { 1 } else { self.since_key + 1 };
        self.state = out.state;
        self.fine_state = fine.state;
        Ok(())
    }

    /// Frames analysed so far.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// The statistics of the frames analysed.
    pub fn finish(self) -> FirstPassStats {
        FirstPassStats {
            width: self.width,
            height: self.height,
            q_index: self.q_index,
            fine_q_index: self.q_index / 2,
            frames: self.frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_sees_busy_frames_as_costly() {
        let mut cfg = EncoderConfig::new(64, 64);
        cfg.rate = RateControl::Bitrate { kbps: 100 };
        let mut fp = FirstPass::new(&cfg).unwrap();
        let flat = Image::filled(64, 64, [100, 128, 128]);
        let mut busy = flat.clone();
        for y in 0..64 {
            for x in 0..64 {
                busy.planes[0].row_mut(y)[x] = ((x * 37 + y * 91) % 251) as u8;
            }
        }
        for f in [&flat, &flat, &busy, &busy] {
            fp.add_frame(f).unwrap();
        }
        assert!(fp.add_frame(&Image::filled(16, 16, [0; 3])).is_err());
        let s = fp.finish();
        assert_eq!(s.frames.len(), 4);
        assert!(s.frames[0].key_frame && !s.frames[1].key_frame);
        // A repeated flat frame costs next to nothing; the cut to noise
        // costs more than a repeat of it.
        assert!(s.frames[2].bits > 10 * s.frames[1].bits, "{:?}", s.frames);
        assert!(s.frames[2].bits > s.frames[3].bits, "{:?}", s.frames);
        // Finer quantization costs more on the busy frames.
        assert!(s.frames[2].fine_bits > s.frames[2].bits, "{:?}", s.frames);
    }
}
