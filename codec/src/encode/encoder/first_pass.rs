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
use crate::image::Frame;
use crate::state::DecoderState;

use super::config::{EncoderConfig, MAX_SPEED};
use super::rate_control::{step, FrameKind, RateController};
use super::RateControl;

/// One frame's first-pass numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassFrameStats {
    /// Bits the frame took in the analysis encode at
    /// [`FirstPassStats::q_index`].
    pub bits: u32,
    /// Bits it took at [`FirstPassStats::fine_q_index`].
    pub fine_bits: u32,
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
    /// The finer q index of the second analysis encode (half the first).
    pub fine_q_index: u8,
    /// Per frame, in input order.
    pub frames: Vec<PassFrameStats>,
}

/// Bounds of a frame's measured rate exponent (a frame whose two sizes
/// barely differ is mostly header, but bits still grow somewhat at finer
/// q), and the exponent when the two q indices coincide.
const MIN_EXP: f64 = 0.3;
const MAX_EXP: f64 = 3.0;
const DEFAULT_EXP: f64 = 1.2;

/// The coarse analysis q index: this far above the prior model's guess for
/// the target, within these bounds; the fine one is half of it.
const COARSE_ABOVE: u8 = 0;
const COARSE_MIN: u8 = 24;
const COARSE_MAX: u8 = 127;

/// First line of [`FirstPassStats::to_text`], with a version.
const TEXT_MAGIC: &str = "excam-fpf 1";

impl FirstPassStats {
    /// The statistics as text, vpxenc's `--fpf` file: a header line
    /// `excam-fpf 1 WIDTH HEIGHT QINDEX FINE_QINDEX`, then one line per
    /// frame, `BITS FINE_BITS K` (key frame) or `... I` (inter).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{TEXT_MAGIC} {} {} {} {}\n",
            self.width, self.height, self.q_index, self.fine_q_index
        );
        for f in &self.frames {
            s.push_str(&format!(
                "{} {} {}\n",
                f.bits,
                f.fine_bits,
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
        let [width, height, q_index, fine_q_index] = nums[..] else {
            return Err(BAD);
        };
        if q_index > 127 || fine_q_index > q_index {
            return Err(BAD);
        }
        let mut frames = Vec::new();
        for line in lines {
            let mut it = line.split_whitespace();
            let (Some(bits), Some(fine_bits), Some(kind), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(BAD);
            };
            let bits = bits.parse().map_err(|_| BAD)?;
            let fine_bits = fine_bits.parse().map_err(|_| BAD)?;
            let key_frame = match kind {
                "K" => true,
                "I" => false,
                _ => return Err(BAD),
            };
            frames.push(PassFrameStats {
                bits,
                fine_bits,
                key_frame,
            });
        }
        Ok(FirstPassStats {
            width,
            height,
            q_index: q_index as u8,
            fine_q_index: fine_q_index as u8,
            frames,
        })
    }

    /// Sum of the analysed bits of frames `from..`.
    pub(super) fn bits_from(&self, from: usize) -> f64 {
        self.frames.iter().skip(from).map(|f| f.bits as f64).sum()
    }

    /// Each frame's rate curve: `ln` of its bits at
    /// [`q_index`](Self::q_index) and its exponent `a` in
    /// `bits ~ step^-a`, from the two analysis sizes.
    pub(super) fn curves(&self) -> Vec<(f64, f64)> {
        let (s1, s0) = (step(self.q_index).ln(), step(self.fine_q_index).ln());
        self.frames
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
    pub fn add_frame(&mut self, frame: &Frame) -> Result<(), EncodeError> {
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
    fn text_round_trip_and_garbage() {
        let s = FirstPassStats {
            width: 48,
            height: 32,
            q_index: 60,
            fine_q_index: 30,
            frames: vec![
                PassFrameStats {
                    bits: 9000,
                    fine_bits: 20000,
                    key_frame: true,
                },
                PassFrameStats {
                    bits: 700,
                    fine_bits: 1500,
                    key_frame: false,
                },
            ],
        };
        assert_eq!(FirstPassStats::from_text(&s.to_text()), Ok(s.clone()));
        for bad in [
            "",
            "excam-fpf 2 48 32 60 30\n",
            "excam-fpf 1 48 32 60\n",
            "excam-fpf 1 48 32 200 30\n",
            "excam-fpf 1 48 32 60 61\n",
            "excam-fpf 1 48 32 60 30\n12 13 X\n",
            "excam-fpf 1 48 32 60 30\n12 13\n",
            "excam-fpf 1 48 32 60 30\n-3 4 I\n",
            "excam-fpf 1 48 32 60 30\n3 4 I 5\n",
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
        // Finer quantization costs more on the busy frames.
        assert!(s.frames[2].fine_bits > s.frames[2].bits, "{:?}", s.frames);
    }
}
