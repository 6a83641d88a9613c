//! What an [`Encoder`](super::Encoder) is built from: size, speed, rate control, key/golden/alt-ref policies and lookahead.

use std::sync::Arc;

use crate::encode::temporal_filter::ArnrParams;
use crate::encode::EncodeError;

use super::buffer::BufferModel;
use super::pass_stats::FirstPassStats;

/// Fastest speed preset; 0 is the slowest and best.
pub const MAX_SPEED: u8 = 8;

/// Largest lookahead, in frames (libvpx's `MAX_LAG_BUFFERS`).
pub const MAX_LAG: u32 = 25;

/// Hidden alt-ref frames: with a lookahead, each golden group gets a
/// frame that is never shown, coded finely from a temporally filtered
/// future frame (the group's last), which the group's frames then
/// predict from (libvpx's `--auto-alt-ref`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltRefPolicy {
    /// Whether to code alt-ref frames (they also need
    /// [`EncoderConfig::lag_in_frames`] of at least a group).
    pub enabled: bool,
    /// The temporal filter that builds them.
    pub arnr: ArnrParams,
    /// Fewest frames a group must span for an alt-ref to be worth its
    /// bits.
    pub min_group: u32,
    /// How far below the inter frames' q index the alt-ref is coded, in
    /// percent of that index (the golden boost is 50 at most).
    pub q_boost_pct: u8,
    /// Whether the golden frame that ends a group with an alt-ref (the
    /// frame the alt-ref stands for, mostly predicted from it) keeps the
    /// golden boost; if not, it is coded at the inter frames' q index.
    pub overlay_boost: bool,
    /// Whether a group filmed by a steady camera (as the lookahead sees
    /// it) gets a stronger filter than [`arnr`](Self::arnr)
    /// ([`arnr_for_group`](super::lookahead::arnr_for_group)); needs the
    /// lookahead's statistics ([`GroupPolicy::adaptive`] or scene cuts).
    pub adaptive_filter: bool,
}

/// vpxenc's ARNR settings of the libvpx anchor (`--arnr-maxframes=7
/// --arnr-strength=5`), off.
impl Default for AltRefPolicy {
    fn default() -> Self {
        AltRefPolicy {
            enabled: false,
            arnr: ArnrParams {
                max_frames: 7,
                strength: 5,
            },
            min_group: 4,
            q_boost_pct: 50,
            // rd-harness --anchor best, speed 0, q 10..50: without the
            // boost carphone went +7.41% -> +5.22% and the static-camera
            // composite +28.97% -> +27.52% (BD-rate PSNR against vpxenc).
            overlay_boost: false,
            adaptive_filter: false,
        }
    }
}

/// Group planning from the lookahead statistics
/// ([`lookahead`](super::lookahead)): how long each golden group runs and
/// how finely its key, golden and alt-ref frames are coded, instead of a
/// fixed interval and fixed boosts. Needs
/// [`EncoderConfig::lag_in_frames`]; without it the fixed
/// [`GoldenPolicy`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Whether groups and boosts follow the lookahead.
    pub adaptive: bool,
    /// Shortest group, in frames.
    pub min_len: u32,
    /// Longest group, in frames; 0 takes libvpx's two-pass limit from
    /// the frame rate ([`EncoderConfig::group_max_len`]). A group also
    /// ends at the end of the lookahead.
    pub max_len: u32,
    /// A group ends once the share of the picture carried over from its
    /// first frame (the running product of
    /// [`FrameStats::carry`](super::FrameStats::carry)) falls below this
    /// many percent, or at the end of the lookahead.
    pub min_carry_pct: u8,
    /// A reference frame's quantizer step is the inter frames' times
    /// `(1 + w)^(-weight_exp_pct / 100)`, `w` the expected number of
    /// frames that inherit it ([`reference_weight`](super::lookahead::reference_weight));
    /// x264's macroblock tree uses the same law at the block level (with
    /// an exponent of a third by default; a half measured better here).
    pub weight_exp_pct: u8,
    /// [`weight_exp_pct`](Self::weight_exp_pct) of a key frame whose
    /// chroma carries over well (see
    /// [`key_min_chroma_carry_pct`](Self::key_min_chroma_carry_pct)).
    pub key_weight_exp_pct: u8,
    /// A key frame is coded with
    /// [`key_weight_exp_pct`](Self::key_weight_exp_pct) when the mean
    /// [`FrameStats::chroma_carry`](super::FrameStats::chroma_carry) of
    /// the frames after it in the lookahead (up to a scene cut) is at
    /// least this many percent. Sensor noise and upscaled camera footage
    /// show as a low chroma carry (their flat chroma is mostly noise that
    /// no later frame inherits, while the luma carry stays high); there
    /// a finer key frame codes noise. 0 always uses the key exponent.
    pub key_min_chroma_carry_pct: u8,
}

/// Off; [`EncoderConfig::with_speed`] turns it on with these values.
///
/// Measured with `rd-harness --training --anchor best --speeds 0` (15
/// clips, q 10..50, mean BD-rate PSNR / SSIM against vpxenc at its best):
/// the fixed policy (interval 12, key frames at half the q index, alt-refs
/// at half the inter q index) +11.17% / +42.29%; these groups with
/// exponent 33 +8.00% / +32.79%; exponent 50 see benches/README.md. On
/// the first 5 clips exponents 33 / 50 / 67 gave +5.59 / +5.26 / +10.99
/// (PSNR) and +45.3 / +23.5 / +14.8 (SSIM): the coarser the inter frames
/// against their references, the more texture the references carry over
/// (libvpx codes its key frames and alt-refs far finer than its inter
/// frames, which is most of its SSIM lead). Longer groups (min_carry 15,
/// or 20 with min_len 8) lost 0.9-3.2 points of PSNR there.
impl Default for GroupPolicy {
    fn default() -> Self {
        GroupPolicy {
            adaptive: false,
            min_len: 6,
            max_len: 0,
            min_carry_pct: 30,
            weight_exp_pct: 50,
            key_weight_exp_pct: 67,
            key_min_chroma_carry_pct: 80,
        }
    }
}

/// How the encoder chooses each frame's quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateControl {
    /// A fixed quantizer on vpxenc's 0..=63 scale (`--min-q=Q --max-q=Q
    /// --cq-level=Q`), mapped to the q index as libvpx does. Key and
    /// golden frames still get their quality boost below it.
    Quantizer(u8),
    /// An average bitrate target in kbit/s (1000 bits): vpxenc's
    /// `--end-usage vbr`. One pass pays its error back over the next
    /// frames; with [`EncoderConfig::first_pass`] statistics (two-pass)
    /// each frame's q index comes from the bits the whole rest of the clip
    /// needs, so the total lands on the target.
    Bitrate {
        /// Target kbit/s.
        kbps: u32,
    },
    /// Constant bitrate (`--end-usage cbr`): the bitrate controller under
    /// a leaky-bucket decoder buffer that must never run dry. The channel
    /// fills the buffer at `kbps` over each shown frame's duration, every
    /// frame drains its size; a frame larger than the buffer holds is
    /// re-coded at a higher q index, and at worst replaced by a minimal
    /// frame.
    Cbr {
        /// Channel rate, kbit/s.
        kbps: u32,
        /// Buffer sizes.
        buffer: BufferModel,
    },
    /// Constrained quality (`--end-usage cq`): the bitrate controller at
    /// `kbps` (one- or two-pass), but no frame coded finer than the fixed
    /// quantizer `level` would code it (vpxenc's `--cq-level`); the target
    /// is a cap that only binds on content too costly for the level.
    ConstrainedQuality {
        /// Quality level on vpxenc's 0..=63 scale.
        level: u8,
        /// Bitrate cap, kbit/s.
        kbps: u32,
    },
}

impl RateControl {
    /// The bitrate target or cap in kbit/s, if the mode has one.
    pub fn kbps(&self) -> Option<u32> {
        match *self {
            RateControl::Quantizer(_) => None,
            RateControl::Bitrate { kbps }
            | RateControl::Cbr { kbps, .. }
            | RateControl::ConstrainedQuality { kbps, .. } => Some(kbps),
        }
    }
}

/// When golden frames are refreshed, and how much better they are coded.
///
/// A golden frame is a long-lived second reference. Refreshing it every
/// few frames with a frame coded at a lower quantizer gives later frames
/// a cleaner reference to predict from (and to fall back on after
/// occlusions) than the last frame, which carries each frame's coding
/// noise forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoldenPolicy {
    /// Refresh the golden reference every this many frames after a key
    /// frame (key frames always refresh it); 0 never refreshes it between
    /// key frames.
    pub interval: u32,
    /// How many q index steps (0..=127 scale) below the frame's
    /// quantizer a golden refresh is coded, at most: the boost is also
    /// capped at half the q index, since at low quantizers a few steps
    /// already cost many bits and gain little.
    pub q_boost: u8,
}

/// The default was measured with `rd-harness` (fixed quantizers 10..50,
/// BD-rate against no golden refresh between key frames): every 12
/// frames with boost 24 gave -10.0% on carphone at speed 4 (boost 16:
/// -8.9%; every 8 with boost 16: -8.4%; every 16 with boost 24: -8.4%),
/// -3.3% on carphone at speed 8, -3.9% on box at speed 4 and -3.8% on
/// box at speed 8, with the boost capped at a third of the q index.
/// Letting it reach half the q index (boost 64, so half the q index
/// everywhere) gave a further -4.6% on carphone and -2.0% on box at speed
/// 4 (two thirds: -5.9% and -1.6%; half every 8 frames: -3.5% and -2.5%,
/// every 16: -2.5% and -2.5%).
impl Default for GoldenPolicy {
    fn default() -> Self {
        GoldenPolicy {
            interval: 12,
            q_boost: 64,
        }
    }
}

/// Everything that stays fixed over a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Luma width in pixels, 1..=16383.
    pub width: usize,
    /// Luma height in pixels, 1..=16383.
    pub height: usize,
    /// Frames per second as numerator and denominator. Packets are
    /// timestamped in frames (timebase `den/num` seconds); the bitrate
    /// target uses it to turn kbit/s into bits per frame.
    pub framerate: (u32, u32),
    /// Quantizer or bitrate.
    pub rate: RateControl,
    /// Largest distance between key frames, in frames (vpxenc's
    /// `--kf-max-dist`, whose VP8 default of 128 this copies); 0 codes
    /// only the first frame as a key frame, 1 every frame.
    pub keyint: u32,
    /// Speed preset 0..=[`MAX_SPEED`]: 0 searches hardest.
    pub speed: u8,
    /// DCT token partitions: 1, 2, 4 or 8.
    pub partitions: usize,
    /// Golden frame refresh policy.
    pub golden: GoldenPolicy,
    /// Whether frames keep their probability updates for the frames after
    /// them (`refresh_entropy_probs`); `false` trades some compression for
    /// streams where each frame's entropy decoding depends only on the
    /// last key frame.
    pub refresh_entropy: bool,
    /// Frames [`Encoder::send_frame`](super::Encoder::send_frame) takes
    /// before the first packet comes out, 0..=[`MAX_LAG`] (vpxenc's `--lag-in-frames`): the lookahead
    /// the alt-ref frames are built from.
    pub lag_in_frames: u32,
    /// Hidden alt-ref frames.
    pub alt_ref: AltRefPolicy,
    /// Adaptive group lengths and reference boosts.
    pub group: GroupPolicy,
    /// Key frames where the content cuts (seen in the lookahead, so it
    /// needs [`lag_in_frames`](Self::lag_in_frames)), at least
    /// [`kf_min_dist`](Self::kf_min_dist) frames after the last one; at a
    /// fixed quantizer only (the bitrate controllers, caps included, do
    /// not plan for them yet).
    pub scene_cuts: bool,
    /// Fewest frames between key frames placed at scene cuts (vpxenc's
    /// `--kf-min-dist`); [`keyint`](Self::keyint) still forces them.
    pub kf_min_dist: u32,
    /// Best and worst quantizer every frame is coded within, on vpxenc's
    /// 0..=63 scale (`--min-q`, `--max-q`), boosted key, golden and
    /// alt-ref frames included.
    pub quantizer_range: (u8, u8),
    /// Statistics of a first pass over the whole clip
    /// ([`FirstPass`](super::FirstPass)): with them a bitrate target
    /// ([`RateControl::Bitrate`] or the cap of
    /// [`RateControl::ConstrainedQuality`]) is met over the clip as a
    /// whole (two-pass). The frames sent must be the ones analysed.
    pub first_pass: Option<Arc<FirstPassStats>>,
    /// Threads each frame is encoded on
    /// ([`EncodeParams::threads`](crate::encode::EncodeParams::threads)),
    /// the lookahead's statistics and alt-ref temporal filter too: the
    /// calling thread and `threads - 1` helpers the encoder starts once
    /// for the stream. 0 and 1 mean the calling thread only. The bytes
    /// are the same for any count.
    pub threads: usize,
}

impl EncoderConfig {
    /// A configuration for `width` x `height` at 30 fps, quantizer 32,
    /// key frames at least every 128 frames, speed 4, one partition.
    pub fn new(width: usize, height: usize) -> Self {
        EncoderConfig {
            width,
            height,
            framerate: (30, 1),
            rate: RateControl::Quantizer(32),
            keyint: 128,
            speed: 4,
            partitions: 1,
            golden: GoldenPolicy::default(),
            refresh_entropy: true,
            lag_in_frames: 0,
            alt_ref: AltRefPolicy::default(),
            group: GroupPolicy::default(),
            scene_cuts: false,
            kf_min_dist: 0,
            quantizer_range: (0, 63),
            first_pass: None,
            threads: 1,
        }
    }

    /// [`new`](Self::new) at speed preset `speed` with the tools the
    /// speed affords: below the realtime presets (speed 6 and up) a
    /// lookahead of [`MAX_LAG`] frames with hidden alt-ref frames, group
    /// lengths and boosts planned from it, and key frames at scene cuts.
    pub fn with_speed(width: usize, height: usize, speed: u8) -> Self {
        let mut cfg = EncoderConfig::new(width, height);
        cfg.speed = speed;
        if speed < 6 {
            cfg.lag_in_frames = MAX_LAG;
            cfg.alt_ref.enabled = true;
            cfg.alt_ref.adaptive_filter = true;
            cfg.group.adaptive = true;
            cfg.scene_cuts = true;
        }
        cfg
    }

    /// The longest adaptive group: [`GroupPolicy::max_len`], or when that
    /// is 0 half a second plus two frames and at least 12, as libvpx's
    /// `max_gf_interval` (16 at 29.97 fps). On a static camera the carry
    /// stays high for the whole lookahead, and a 25-frame group puts the
    /// alt-ref far from the group's first frames: slow changes (light,
    /// the source's own compression pulsing) have drifted away from it
    /// by then (benches/README.md, quality6).
    pub fn group_max_len(&self) -> u32 {
        if self.group.max_len > 0 {
            return self.group.max_len;
        }
        let (num, den) = self.framerate;
        let half_second = (u64::from(num) / (2 * u64::from(den).max(1))) as u32;
        (half_second + 2).max(12)
    }

    /// Whether the encoder gathers [`FrameStats`](super::FrameStats) of
    /// the frames it queues.
    pub(super) fn wants_stats(&self) -> bool {
        self.lag_in_frames > 0 && (self.group.adaptive || self.scene_cuts)
    }

    /// Whether key frames go where the content cuts. Only at a fixed
    /// quantizer (q and uncapped cq) for now: the bitrate controllers do
    /// not yet plan for a key frame they did not place; with one a CBR
    /// buffer ran dry, two-pass VBR overshot by 12% and a cq cap by 17%
    /// (`codec/tests/rate_control.rs`, `coordinator/tests/rate_control_cli.rs`).
    pub(super) fn cuts_at_scene_changes(&self) -> bool {
        self.scene_cuts && self.wants_stats() && matches!(self.rate, RateControl::Quantizer(_))
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BadDimensions`] or [`EncodeError::BadParam`] naming
    /// the field out of range.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || w > 16383 || h > 16383 {
            return Err(EncodeError::BadDimensions(w, h));
        }
        if self.framerate.0 == 0 || self.framerate.1 == 0 {
            return Err(EncodeError::BadParam("framerate must be positive"));
        }
        match self.rate {
            RateControl::Quantizer(q) if q > 63 => {
                return Err(EncodeError::BadParam("quantizer must be 0..=63"))
            }
            RateControl::Bitrate { kbps: 0 }
            | RateControl::Cbr { kbps: 0, .. }
            | RateControl::ConstrainedQuality { kbps: 0, .. } => {
                return Err(EncodeError::BadParam("bitrate must be at least 1 kbit/s"))
            }
            RateControl::ConstrainedQuality { level, .. } if level > 63 => {
                return Err(EncodeError::BadParam("cq level must be 0..=63"))
            }
            RateControl::Cbr { kbps, buffer } => {
                if buffer.size_ms == 0 {
                    return Err(EncodeError::BadParam("cbr buffer size must be positive"));
                }
                if buffer.initial_ms > buffer.size_ms || buffer.optimal_ms > buffer.size_ms {
                    return Err(EncodeError::BadParam(
                        "cbr initial and optimal buffer levels must not exceed its size",
                    ));
                }
                if self.first_pass.is_some() {
                    return Err(EncodeError::BadParam(
                        "cbr is one-pass: first-pass statistics are for a bitrate or cq target",
                    ));
                }
                let per_frame =
                    kbps as f64 * 1000.0 * self.framerate.1 as f64 / self.framerate.0 as f64;
                if per_frame < super::buffer::repeat_frame_bits(w, h) {
                    return Err(EncodeError::BadParam(
                        "cbr target too low for the frame size: a frame's share of it \
                         cannot hold even a frame that repeats the last one",
                    ));
                }
                let initial = f64::from(buffer.initial_ms) * f64::from(kbps);
                if per_frame + initial < super::buffer::flat_key_bits(w, h) {
                    return Err(EncodeError::BadParam(
                        "cbr initial buffer too small for the frame size: it cannot hold \
                         even a flat key frame",
                    ));
                }
            }
            _ => {}
        }
        let (min_q, max_q) = self.quantizer_range;
        if max_q > 63 {
            return Err(EncodeError::BadParam("max quantizer must be 0..=63"));
        }
        if min_q > max_q {
            return Err(EncodeError::BadParam(
                "min quantizer must not exceed the max quantizer",
            ));
        }
        if let Some(stats) = &self.first_pass {
            if stats.frames.is_empty() {
                return Err(EncodeError::BadParam("first-pass statistics hold no frame"));
            }
            if matches!(self.rate, RateControl::Quantizer(_)) {
                return Err(EncodeError::BadParam(
                    "first-pass statistics need a bitrate target",
                ));
            }
        }
        if self.speed > MAX_SPEED {
            return Err(EncodeError::BadParam("speed must be 0..=8"));
        }
        if !matches!(self.partitions, 1 | 2 | 4 | 8) {
            return Err(EncodeError::BadParam("partitions must be 1, 2, 4 or 8"));
        }
        if self.golden.q_boost > 127 {
            return Err(EncodeError::BadParam("golden q_boost must be 0..=127"));
        }
        if self.lag_in_frames > MAX_LAG {
            return Err(EncodeError::BadParam("lag_in_frames must be 0..=25"));
        }
        if self.alt_ref.arnr.max_frames > 15 {
            return Err(EncodeError::BadParam("arnr max_frames must be 0..=15"));
        }
        if self.alt_ref.q_boost_pct > 100 {
            return Err(EncodeError::BadParam("alt-ref q_boost_pct must be 0..=100"));
        }
        if self.group.min_len == 0 {
            return Err(EncodeError::BadParam("group min_len must be at least 1"));
        }
        if self.group.max_len != 0 && self.group.max_len < self.group.min_len {
            return Err(EncodeError::BadParam(
                "group max_len must be 0 (from the frame rate) or at least min_len",
            ));
        }
        if self.group.key_min_chroma_carry_pct > 100 {
            return Err(EncodeError::BadParam(
                "group key_min_chroma_carry_pct must be 0..=100",
            ));
        }
        if self.group.min_carry_pct > 100 {
            return Err(EncodeError::BadParam("group min_carry_pct must be 0..=100"));
        }
        if self.alt_ref.arnr.strength > 6 {
            return Err(EncodeError::BadParam("arnr strength must be 0..=6"));
        }
        Ok(())
    }
}
