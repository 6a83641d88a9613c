//! Calibration: what the codec costs on this machine, the model's input.
//!
//! `excam calibrate` times the same chunk functions every backend runs
//! ([`excam_worker::chunk`]) and the state wire format on a few clips and
//! writes a [`Calibration`] as JSON. Costs are per frame per megapixel
//! (coding scales with the pixel count; the fixed per-frame part is small
//! at the sizes that matter) and per MB of raw state.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use excam_codec::encode::encoder::{EncoderConfig, RateControl};
use excam_codec::wire::{decode_state, encode_state, Compression};
use excam_codec::{decode_picture, Image};
use excam_worker::chunk::{encode_chunk, encode_given_state_chunk, rebase_chunk, ChunkPlan};
use serde::{Deserialize, Serialize};

/// Reads a calibration file, or the built-in one when `path` is `None`.
///
/// # Errors
/// Unreadable file, or [`Calibration::from_json`]'s error naming the field.
pub fn load_calibration(path: Option<&Path>) -> Result<Calibration, CalibrationFileError> {
    match path {
        None => Ok(Calibration::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|error| CalibrationFileError::Read {
                path: p.to_path_buf(),
                error,
            })?;
            Calibration::from_json(&text).map_err(|error| CalibrationFileError::Invalid {
                path: p.to_path_buf(),
                error,
            })
        }
    }
}

/// Why a calibration file cannot be used. The cause is part of the
/// message, not a separate source.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationFileError {
    /// It cannot be read.
    #[error("cannot read calibration {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (part of the message).
        error: std::io::Error,
    },
    /// A field is missing or out of range.
    #[error("calibration {}: {error}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which field and why (part of the message).
        error: CalibrationError,
    },
}

/// Why a calibration cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A clip too short for two chunks.
    #[error("{name}: {frames} frames, calibration needs at least {need}")]
    TooShort {
        /// The clip's name.
        name: String,
        /// Frames it has.
        frames: usize,
        /// Frames two chunks need.
        need: usize,
    },
    /// Coding a chunk failed.
    #[error(transparent)]
    Chunk(#[from] excam_worker::chunk::ChunkError),
    /// Decoding a coded frame failed.
    #[error(transparent)]
    Decode(#[from] excam_codec::DecodeError),
    /// Reading a state back failed.
    #[error(transparent)]
    State(#[from] excam_codec::wire::StateError),
    /// [`combine`] got no samples.
    #[error("no clips were measured")]
    NoSamples,
    /// The measured values are out of range.
    #[error("measurement produced an unusable calibration: {0}")]
    Unusable(CalibrationError),
}

/// The schema version this build reads and writes.
pub const CALIBRATION_VERSION: u32 = 1;

/// A calibration measured on the development machine (2 cores, shared),
/// used when no `--calibration` file is given.
pub const DEFAULT_CALIBRATION: &str = include_str!("default_calibration.json");

/// The cost fields, as named in the JSON.
const COST_FIELDS: [&str; 10] = [
    "encode_s_per_mpx",
    "encode_given_state_s_per_mpx",
    "rebase_s_per_mpx",
    "decode_s_per_mpx",
    "state_raw_bytes_per_px",
    "state_wire_bytes_per_px",
    "serialize_s_per_mb",
    "compress_s_per_mb",
    "decompress_s_per_mb",
    "output_bytes_per_px",
];

/// One clip's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Where the frames came from.
    pub clip: String,
    /// Luma width.
    pub width: usize,
    /// Luma height.
    pub height: usize,
    /// Frames timed per phase-1 chunk.
    pub frames: usize,
    /// Seconds per frame: encode, encode-given-state, rebase, decode.
    pub seconds_per_frame: [f64; 4],
}

/// What the codec costs on the calibrating machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Must equal [`CALIBRATION_VERSION`].
    pub version: u32,
    /// Free text: where it was measured.
    pub machine: String,
    /// Cores of that machine.
    pub cores: u32,
    /// Encoder speed preset measured (0..=8).
    pub preset: u8,
    /// Quantizer measured.
    pub quantizer: u8,
    /// Seconds per frame per megapixel of encoding (phase 1: a key frame
    /// then inter frames).
    pub encode_s_per_mpx: f64,
    /// Seconds per frame per megapixel of encoding a first frame given a
    /// predecessor's state.
    pub encode_given_state_s_per_mpx: f64,
    /// Seconds per frame per megapixel of rebasing.
    pub rebase_s_per_mpx: f64,
    /// Seconds per frame per megapixel of decoding.
    pub decode_s_per_mpx: f64,
    /// Raw (uncompressed) state bytes per luma pixel.
    pub state_raw_bytes_per_px: f64,
    /// State bytes on the wire (LZ4) per luma pixel.
    pub state_wire_bytes_per_px: f64,
    /// Seconds per raw MB to serialize a state.
    pub serialize_s_per_mb: f64,
    /// Seconds per raw MB to compress a serialized state.
    pub compress_s_per_mb: f64,
    /// Seconds per raw MB to decompress and deserialize a state.
    pub decompress_s_per_mb: f64,
    /// Compressed video bytes per luma pixel per frame.
    pub output_bytes_per_px: f64,
    /// The measurements behind the numbers.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// A calibration file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalibrationError(pub String);

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CalibrationError {}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::from_json(DEFAULT_CALIBRATION).expect("the embedded calibration is valid")
    }
}

impl Calibration {
    /// Parses and checks a calibration file's text.
    ///
    /// # Errors
    /// Not JSON, a missing or unsupported `version`, a missing field or one
    /// of the wrong type (serde's message names it), or a cost that is not a
    /// finite positive number (the message names the field).
    pub fn from_json(text: &str) -> Result<Calibration, CalibrationError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| CalibrationError(format!("not a calibration file (bad JSON: {e})")))?;
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(CALIBRATION_VERSION) => {}
            Some(v) => {
                return Err(CalibrationError(format!(
                    "field `version`: calibration schema {v} is not supported (this excam reads {CALIBRATION_VERSION}; re-run `excam calibrate`)"
                )))
            }
            None => {
                return Err(CalibrationError(
                    "field `version`: missing or not an integer (not a calibration file?)".into(),
                ))
            }
        }
        // serde's type errors do not say which field; check the numbers
        // first so the message can.
        for name in COST_FIELDS {
            match value.get(name) {
                None => {
                    return Err(CalibrationError(format!("field `{name}`: missing")));
                }
                Some(v) if !v.is_number() => {
                    return Err(CalibrationError(format!(
                        "field `{name}`: expected a number, found {v}"
                    )));
                }
                Some(_) => {}
            }
        }
        let cal: Calibration = serde_json::from_value(value)
            .map_err(|e| CalibrationError(format!("bad calibration: {e}")))?;
        cal.validate()?;
        Ok(cal)
    }

    /// Checks every cost is a finite positive number.
    ///
    /// # Errors
    /// The first field that is not.
    pub fn validate(&self) -> Result<(), CalibrationError> {
        let fields = [
            ("encode_s_per_mpx", self.encode_s_per_mpx),
            (
                "encode_given_state_s_per_mpx",
                self.encode_given_state_s_per_mpx,
            ),
            ("rebase_s_per_mpx", self.rebase_s_per_mpx),
            ("decode_s_per_mpx", self.decode_s_per_mpx),
            ("state_raw_bytes_per_px", self.state_raw_bytes_per_px),
            ("state_wire_bytes_per_px", self.state_wire_bytes_per_px),
            ("serialize_s_per_mb", self.serialize_s_per_mb),
            ("compress_s_per_mb", self.compress_s_per_mb),
            ("decompress_s_per_mb", self.decompress_s_per_mb),
            ("output_bytes_per_px", self.output_bytes_per_px),
        ];
        for (name, v) in fields {
            if !(v.is_finite() && v > 0.0) {
                return Err(CalibrationError(format!(
                    "field `{name}`: {v} is not a finite positive number"
                )));
            }
        }
        if self.preset > 8 {
            return Err(CalibrationError(format!(
                "field `preset`: {} is not a speed preset 0..=8",
                self.preset
            )));
        }
        Ok(())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a calibration serializes")
    }
}

/// How to calibrate.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    /// Encoder speed preset.
    pub preset: u8,
    /// Quantizer.
    pub quantizer: u8,
    /// Frames per timed chunk (two chunks are coded per clip).
    pub chunk_frames: usize,
    /// Times each clip is measured; the fastest run counts (noise on a
    /// shared machine only ever adds time).
    pub repeats: usize,
}

/// A synthetic clip: a textured background panning diagonally with a
/// bright square moving the other way, so that motion search, inter
/// prediction and residual coding all do representative work.
pub fn synthetic_clip(width: usize, height: usize, frames: usize) -> Vec<Image> {
    (0..frames)
        .map(|t| {
            let mut f = Image::filled(width, height, [0, 128, 128]);
            let (sx, sy) = (2 * t, t);
            for y in 0..height {
                let row = f.planes[0].row_mut(y);
                for (x, px) in row.iter_mut().enumerate() {
                    let (u, v) = (x + sx, y + sy);
                    // A cheap hash gives texture without a random generator.
                    let h = (u.wrapping_mul(73) ^ v.wrapping_mul(151)).wrapping_mul(2654435761);
                    let base = ((u / 8 + v / 8) % 2) as u32 * 90 + 60;
                    *px = (base + ((h >> 13) & 31) as u32) as u8;
                }
            }
            let side = (width.min(height) / 4).max(4);
            let bx = (width.saturating_sub(side)).saturating_sub(3 * t % width.max(1));
            let by = (t * 2) % height.saturating_sub(side).max(1);
            for y in by..(by + side).min(height) {
                let row = f.planes[0].row_mut(y);
                for px in row.iter_mut().skip(bx).take(side) {
                    *px = 235;
                }
            }
            for p in 1..3 {
                let (cw, ch) = (f.planes[p].width, f.planes[p].height);
                for y in 0..ch {
                    let row = f.planes[p].row_mut(y);
                    for (x, px) in row.iter_mut().enumerate().take(cw) {
                        *px = (96 + ((x + t + p * y) % 64)) as u8;
                    }
                }
            }
            f
        })
        .collect()
}

/// Times one clip: two chunks of `frames[..2n]` through all three phases,
/// decoding, and the state wire format.
///
/// # Errors
/// Too few frames, or the codec's error.
pub fn measure_clip(
    name: &str,
    frames: &[Image],
    opts: &CalibrateOptions,
) -> Result<(Sample, StateSample), MeasureError> {
    let n = opts.chunk_frames.max(2);
    if frames.len() < 2 * n {
        return Err(MeasureError::TooShort {
            name: name.to_string(),
            frames: frames.len(),
            need: 2 * n,
        });
    }
    let (w, h) = (frames[0].width, frames[0].height);
    let mut cfg = EncoderConfig::new(w, h);
    cfg.speed = opts.preset;
    cfg.rate = RateControl::Quantizer(opts.quantizer);
    let plan = |index| ChunkPlan {
        index,
        chunks: 2,
        chunk_frames: n,
        group_chunks: 2,
    };
    let mut best: Option<(Sample, StateSample)> = None;
    for _ in 0..opts.repeats.max(1) {
        let clock = Clock::start();
        let a = encode_chunk(&plan(0), &cfg, &frames[..n])?;
        let b = encode_chunk(&plan(1), &cfg, &frames[n..2 * n])?;
        let busy = clock.busy_fraction();
        let enc = busy * (a.time.encode_seconds + b.time.encode_seconds)
            / (a.time.encoded_frames + b.time.encoded_frames) as f64;
        let clock = Clock::start();
        let p2 =
            encode_given_state_chunk(&plan(1), &cfg, &frames[n..2 * n], &b, a.final_state.clone())?;
        let p3 = rebase_chunk(
            &plan(1),
            &cfg,
            &frames[n..2 * n],
            &p2,
            a.final_state.clone(),
        )?;
        let busy = clock.busy_fraction();
        let egs = busy * (p2.time.encode_seconds + p3.time.encode_seconds)
            / (p2.time.encoded_frames + p3.time.encoded_frames) as f64;
        let reb = busy * (p2.time.rebase_seconds + p3.time.rebase_seconds)
            / (p2.time.rebased_frames + p3.time.rebased_frames) as f64;
        let t = Clock::start();
        for (src, data) in a.sources.iter().zip(&a.frames) {
            decode_picture(src, data)?;
        }
        let dec = t.seconds() / a.frames.len() as f64;
        let out_bytes: usize = a.frames.iter().chain(&p3.frames).map(|f| f.len()).sum();

        // The state: enough repetitions for a measurable time.
        let state = &p3.final_state;
        let reps = 5;
        let t = Clock::start();
        let mut raw = Vec::new();
        for _ in 0..reps {
            raw = encode_state(state, Compression::None);
        }
        let ser = t.seconds() / reps as f64;
        let t = Clock::start();
        let mut wire = Vec::new();
        for _ in 0..reps {
            wire = encode_state(state, Compression::Lz4);
        }
        let ser_lz4 = t.seconds() / reps as f64;
        let t = Clock::start();
        for _ in 0..reps {
            decode_state(&wire)?;
        }
        let de = t.seconds() / reps as f64;
        let sample = Sample {
            clip: name.to_string(),
            width: w,
            height: h,
            frames: n,
            seconds_per_frame: [enc, egs, reb, dec],
        };
        let st = StateSample {
            pixels: (w * h) as f64,
            raw_bytes: raw.len() as f64,
            wire_bytes: wire.len() as f64,
            serialize_s: ser,
            compress_s: (ser_lz4 - ser).max(ser * 0.05),
            decompress_s: de,
            output_bytes: out_bytes as f64,
            output_frames: (a.frames.len() + p3.frames.len()) as f64,
        };
        best = Some(match best {
            None => (sample, st),
            Some((bs, bst)) => {
                let mut s = bs;
                for k in 0..4 {
                    s.seconds_per_frame[k] =
                        s.seconds_per_frame[k].min(sample.seconds_per_frame[k]);
                }
                (s, bst.min(&st))
            }
        });
    }
    Ok(best.expect("at least one repeat"))
}

/// Seconds of this thread's CPU time where Linux tells
/// (`/proc/thread-self/schedstat`), so that a busy machine, which
/// stretches wall time but not CPU time, does not inflate the
/// calibration; wall time elsewhere.
struct Clock {
    wall: Instant,
    cpu: Option<f64>,
}

fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    (ns > 0.0).then_some(ns / 1e9)
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu: thread_cpu_s(),
            wall: Instant::now(),
        }
    }

    /// CPU seconds since the start (wall seconds without a CPU clock).
    fn seconds(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        // A too-short interval can read zero CPU time: use the wall time.
        let s = match (self.cpu, thread_cpu_s()) {
            (Some(a), Some(b)) if b > a => (b - a).min(wall),
            _ => wall,
        };
        s.max(1e-12)
    }

    /// The share of the wall time since the start this thread was on a
    /// CPU: scales the codec's own wall-clock timings to CPU time.
    fn busy_fraction(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 1.0;
        }
        (self.seconds() / wall).clamp(0.01, 1.0)
    }
}

/// State and output sizes and wire-format times of one clip.
#[derive(Clone, Debug)]
pub struct StateSample {
    /// Luma pixels per frame.
    pub pixels: f64,
    /// Raw state bytes.
    pub raw_bytes: f64,
    /// LZ4 state bytes.
    pub wire_bytes: f64,
    /// Seconds to serialize.
    pub serialize_s: f64,
    /// Seconds to compress.
    pub compress_s: f64,
    /// Seconds to decompress and deserialize.
    pub decompress_s: f64,
    /// Coded video bytes.
    pub output_bytes: f64,
    /// Frames they code.
    pub output_frames: f64,
}

impl StateSample {
    fn min(&self, o: &StateSample) -> StateSample {
        StateSample {
            serialize_s: self.serialize_s.min(o.serialize_s),
            compress_s: self.compress_s.min(o.compress_s),
            decompress_s: self.decompress_s.min(o.decompress_s),
            ..self.clone()
        }
    }
}

/// Combines per-clip measurements into a [`Calibration`]: every cost is
/// total seconds over total megapixel-frames (or raw MB), so larger clips
/// weigh more, as they should for the sizes plans are made for.
///
/// # Errors
/// No samples.
pub fn combine(
    samples: Vec<(Sample, StateSample)>,
    opts: &CalibrateOptions,
) -> Result<Calibration, MeasureError> {
    if samples.is_empty() {
        return Err(MeasureError::NoSamples);
    }
    let mut per_mpx = [0.0f64; 4];
    let mut mpx = 0.0;
    let (mut raw, mut wire, mut px) = (0.0, 0.0, 0.0);
    let (mut ser, mut comp, mut de) = (0.0, 0.0, 0.0);
    let (mut out, mut out_px) = (0.0, 0.0);
    for (s, st) in &samples {
        let m = (s.width * s.height) as f64 / 1e6;
        for (acc, x) in per_mpx.iter_mut().zip(s.seconds_per_frame) {
            *acc += x;
        }
        mpx += m;
        raw += st.raw_bytes;
        wire += st.wire_bytes;
        px += st.pixels;
        ser += st.serialize_s;
        comp += st.compress_s;
        de += st.decompress_s;
        out += st.output_bytes;
        out_px += st.pixels * st.output_frames;
    }
    let raw_mb = raw / 1e6;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let cal = Calibration {
        version: CALIBRATION_VERSION,
        machine: machine_name(),
        cores,
        preset: opts.preset,
        quantizer: opts.quantizer,
        encode_s_per_mpx: per_mpx[0] / mpx,
        encode_given_state_s_per_mpx: per_mpx[1] / mpx,
        rebase_s_per_mpx: per_mpx[2] / mpx,
        decode_s_per_mpx: per_mpx[3] / mpx,
        state_raw_bytes_per_px: raw / px,
        state_wire_bytes_per_px: wire / px,
        serialize_s_per_mb: ser / raw_mb,
        compress_s_per_mb: comp / raw_mb,
        decompress_s_per_mb: de / raw_mb,
        output_bytes_per_px: out / out_px,
        samples: samples.into_iter().map(|(s, _)| s).collect(),
    };
    cal.validate().map_err(MeasureError::Unusable)?;
    Ok(cal)
}

fn machine_name() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model} ({})", std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_round_trips() {
        let c = Calibration::default();
        assert_eq!(Calibration::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn bad_files_name_the_field() {
        let c = Calibration::default();
        let mut v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        v["rebase_s_per_mpx"] = serde_json::json!(-1.0);
        let e = Calibration::from_json(&v.to_string()).unwrap_err().0;
        assert!(e.contains("rebase_s_per_mpx"), "{e}");
        v.as_object_mut().unwrap().remove("rebase_s_per_mpx");
        let e = Calibration::from_json(&v.to_string()).unwrap_err().0;
        assert!(e.contains("rebase_s_per_mpx"), "{e}");
        v["version"] = serde_json::json!(99);
        let e = Calibration::from_json(&v.to_string()).unwrap_err().0;
        assert!(e.contains("version") && e.contains("99"), "{e}");
        let e = Calibration::from_json("{").unwrap_err().0;
        assert!(e.contains("JSON"), "{e}");
    }

    #[test]
    fn quick_measurement_is_positive() {
        let opts = CalibrateOptions {
            preset: 8,
            quantizer: 40,
            chunk_frames: 2,
            repeats: 1,
        };
        let clip = synthetic_clip(48, 32, 4);
        let s = measure_clip("synthetic", &clip, &opts).unwrap();
        let cal = combine(vec![s], &opts).unwrap();
        assert!(cal.state_raw_bytes_per_px > 1.0, "{cal:?}");
    }
}
