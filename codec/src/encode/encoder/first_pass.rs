//! The first pass of a two-pass encode: a fast fixed-q encode of the whole
//! clip whose per-frame sizes tell the second pass how the clip's bits
//! should be spread (vpxenc's `--passes 2`).
//!
//! libvpx's first pass measures intra and motion-compensated prediction
//! errors and maps them to bits with a fitted curve. Here the analysis is
//! the fastest speed preset's own encode at one q index: its frame sizes
//! already are bits, coded by the same tools as the second pass, so only
//! their scale (speed preset, q index, boosts) is left for the second
//! pass to fit.

use crate::encode::quantize::quantizer_to_qindex;
use crate::encode::{encode, EncodeError, EncodeParams, INTER_LAMBDA_SCALE};
use crate::image::Frame;
use crate::state::DecoderState;

use super::config::{EncoderConfig, MAX_SPEED};
use super::rate_control::{FrameKind, RateController};
use super::RateControl;

/// One frame's first-pass numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStats {
    /// Bits the frame took in the analysis encode.
    pub bits: u32,
    /// Whether the analysis coded it as a key frame.
    pub key_frame: bool,
}

/// What a first pass learned about a clip: the input of the second pass
/// ([`EncoderConfig::first_pass`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstPassStats {
    /// Luma width and height analysed.
    pub width: usize,
    /// See `width`.
    pub height: usize,
    /// The q index every analysed frame was coded at.
    pub q_index: u8,
    /// Per frame, in input order.
    pub frames: Vec<FrameStats>,
}

/// First line of [`FirstPassStats::to_text`], with a version.
const TEXT_MAGIC: &str = "excam-fpf 1";

impl FirstPassStats {
    /// The statistics as text, vpxenc's `--fpf` file: a header line
    /// `excam-fpf 1 WIDTH HEIGHT QINDEX`, then one line per frame,
    /// `BITS K` or `BITS I`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{TEXT_MAGIC} {} {} {}\n",
            self.width, self.height, self.q_index
        );
        for f in &self.frames {
            s.push_str(&format!(
                "{} {}\n",
                f.bits,
                if f.key_frame { 'K' } else { 'I' }
            ));
        }
        s
    }

    /// Parses [`to_text`](Self::to_text)'s output.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BadParam`] for anything else.
    pub fn from_text(text: &str) -> Result<Self, EncodeError> {
        const BAD: EncodeError = EncodeError::BadParam("not an excam first-pass statistics file");
        let mut lines = text.lines();
        let head = lines.next().ok_or(BAD)?;
        let rest = head.strip_prefix(TEXT_MAGIC).ok_or(BAD)?;
        let nums: Vec<usize> = rest
            .split_whitespace()
            .map(|t| t.parse().map_err(|_| BAD))
            .collect::<Result<_, _>>()?;
        let [width, height, q_index] = nums[..] else {
            return Err(BAD);
        };
        if q_index > 127 {
            return Err(BAD);
        }
        let mut frames = Vec::new();
        for line in lines {
            let mut it = line.split_whitespace();
            let (Some(bits), Some(kind), None) = (it.next(), it.next(), it.next()) else {
                return Err(BAD);
            };
            let bits = bits.parse().map_err(|_| BAD)?;
            let key_frame = match kind {
                "K" => true,
                "I" => false,
                _ => return Err(BAD),
            };
            frames.push(FrameStats { bits, key_frame });
        }
        Ok(FirstPassStats {
            width,
            height,
            q_index: q_index as u8,
            frames,
        })
    }

    /// Sum of the analysed bits of frames `from..`.
    pub(super) fn bits_from(&self, from: usize) -> f64 {
        self.frames.iter().skip(from).map(|f| f.bits as f64).sum()
    }
}

/// The first pass: feed it every frame of the clip, then
/// [`finish`](Self::finish) and put the statistics in
/// [`EncoderConfig::first_pass`] for the second.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use excam_codec::encode::encoder::{EncoderConfig, FirstPass, RateControl};
/// use excam_codec::Frame;
///
/// let mut cfg = EncoderConfig::new(32, 32);
/// cfg.rate = RateControl::Bitrate { kbps: 50 };
/// let clip: Vec<Frame> = (0..4).map(|i| Frame::filled(32, 32, [40 * i, 128, 128])).collect();
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
    since_key: u64,
    frames: Vec<FrameStats>,
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
        Ok(FirstPass {
            width: cfg.width,
            height: cfg.height,
            keyint: cfg.keyint as u64,
            q_index,
            state: DecoderState::new(),
            since_key: 0,
            frames: Vec::new(),
        })
    }

    /// Analyses the next frame.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BadDimensions`] for a frame of another size.
    pub fn add_frame(&mut self, frame: &Frame) -> Result<(), EncodeError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(EncodeError::BadDimensions(frame.width, frame.height));
        }
        let key_frame = self.state.is_empty() || (self.keyint > 0 && self.since_key >= self.keyint);
        let params = EncodeParams {
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
        self.frames.push(FrameStats {
            bits: (out.data.len() * 8).min(u32::MAX as usize) as u32,
            key_frame: out.key_frame,
        });
        self.since_key = if out.key_frame { 1 } else { self.since_key + 1 };
        self.state = out.state;
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
            frames: self.frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_garbage() {
        let s = FirstPassStats {
            width: 48,
            height: 32,
            q_index: 60,
            frames: vec![
                FrameStats {
                    bits: 9000,
                    key_frame: true,
                },
                FrameStats {
                    bits: 700,
                    key_frame: false,
                },
            ],
        };
        assert_eq!(FirstPassStats::from_text(&s.to_text()), Ok(s.clone()));
        for bad in [
            "",
            "excam-fpf 2 48 32 60\n",
            "excam-fpf 1 48 32\n",
            "excam-fpf 1 48 32 200\n",
            "excam-fpf 1 48 32 60\n12 X\n",
            "excam-fpf 1 48 32 60\n12\n",
            "excam-fpf 1 48 32 60\n-3 I\n",
        ] {
            assert!(FirstPassStats::from_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn analysis_sees_busy_frames_as_costly() {
        let mut cfg = EncoderConfig::new(64, 64);
        cfg.rate = RateControl::Bitrate { kbps: 100 };
        let mut fp = FirstPass::new(&cfg).unwrap();
        let flat = Frame::filled(64, 64, [100, 128, 128]);
        let mut busy = flat.clone();
        for y in 0..64 {
            for x in 0..64 {
                busy.planes[0].row_mut(y)[x] = ((x * 37 + y * 91) % 251) as u8;
            }
        }
        for f in [&flat, &flat, &busy, &busy] {
            fp.add_frame(f).unwrap();
        }
        assert!(fp.add_frame(&Frame::filled(16, 16, [0; 3])).is_err());
        let s = fp.finish();
        assert_eq!(s.frames.len(), 4);
        assert!(s.frames[0].key_frame && !s.frames[1].key_frame);
        // A repeated flat frame costs next to nothing; the cut to noise
        // costs more than a repeat of it.
        assert!(s.frames[2].bits > 10 * s.frames[1].bits, "{:?}", s.frames);
        assert!(s.frames[2].bits > s.frames[3].bits, "{:?}", s.frames);
    }
}
