//! The three phases of one ExCamera\[N,x\] chunk, as pure functions.
//!
//! Every backend (threads, processes, Lambda) runs these same functions,
//! so the bytes of a chunk depend only on its frames, the codec settings
//! and the state it is handed, never on where or when it ran.
//!
//! 1. [`encode_chunk`]: encode the chunk from a key frame. Its final state
//!    approximates the true one its successor will get: the golden and
//!    altref references of both are the chunk's first frame (a key frame
//!    here, the frame coded given state in phases 2 and 3, which refreshes
//!    all three), and the last reference is the chunk's last frame.
//! 2. [`encode_given_state_chunk`]: re-encode the first frame as an inter
//!    frame given the predecessor's phase-1 final state (an approximation
//!    of its true one) and rebase the rest onto it.
//! 3. [`rebase_chunk`]: given the predecessor's true final state, encode
//!    the first frame again against it (measured on carphone: +0.2 dB at
//!    q30 and +0.8 dB at q50 over rebasing it, at the same rate) and
//!    rebase the rest, keeping phase 2's modes and motion vectors.

use std::time::Instant;

use excam_codec::encode::encoder::{Encoder, EncoderConfig, EncoderStatus};
use excam_codec::{
    decode_picture, encode_given_state, rebase, DecodeError, DecoderState, EncodeError,
    EncodeParams, Image, RebaseError,
};
use thiserror::Error;

/// Which phase a chunk is in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Encoding from a key frame.
    Encode,
    /// Encoding the first frame given the predecessor's state, rebasing the rest.
    EncodeGivenState,
    /// Rebasing onto the predecessor's true final state.
    Rebase,
}

impl Phase {
    /// The three phases in order.
    pub const ALL: [Phase; 3] = [Phase::Encode, Phase::EncodeGivenState, Phase::Rebase];

    /// 0, 1 or 2.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name: `encode`, `given-state`, `rebase`.
    pub fn short(self) -> &'static str {
        match self {
            Phase::Encode => "encode",
            Phase::EncodeGivenState => "given-state",
            Phase::Rebase => "rebase",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Encode => "phase 1 (encode)",
            Phase::EncodeGivenState => "phase 2 (encode given state)",
            Phase::Rebase => "phase 3 (rebase)",
        })
    }
}

/// Why a chunk's phase failed.
#[derive(Debug, Error)]
pub enum ChunkError {
    /// Encoding a frame failed.
    #[error("{phase}: {source}")]
    Encode {
        /// Phase it failed in.
        phase: Phase,
        /// The codec's error.
        source: EncodeError,
    },
    /// Rebasing a frame failed.
    #[error("{phase}: {source}")]
    Rebase {
        /// Phase it failed in.
        phase: Phase,
        /// The codec's error.
        source: RebaseError,
    },
    /// Replaying stored frames (a checkpoint) failed.
    #[error("{phase}: stored frames do not decode: {source}")]
    Replay {
        /// Phase whose checkpoint was replayed.
        phase: Phase,
        /// The decoder's error.
        source: DecodeError,
    },
    /// A stored key frame is not the job's frame size.
    #[error("{phase}: a stored key frame is {}x{}, the job is {}x{}", found.0, found.1, size.0, size.1)]
    ReplaySize {
        /// Phase whose checkpoint was replayed.
        phase: Phase,
        /// The key frame's size.
        found: (usize, usize),
        /// The job's size.
        size: (usize, usize),
    },
    /// The encoder refused a frame for another reason.
    #[error("{phase}: encoder: {message}")]
    Encoder {
        /// Phase it failed in.
        phase: Phase,
        /// What it said.
        message: String,
    },
}

/// Where a chunk sits in the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Index of the chunk.
    pub index: usize,
    /// Chunks in the job.
    pub chunks: usize,
    /// N: frames per chunk (the last chunk may have fewer).
    pub chunk_frames: usize,
    /// x: chunks per group; every x-th chunk keeps its key frame.
    pub group_chunks: usize,
}

impl ChunkPlan {
    /// Whether this chunk starts a group (keeps its key frame and needs no
    /// predecessor).
    pub fn is_head(&self) -> bool {
        self.index.is_multiple_of(self.group_chunks.max(1))
    }

    /// Whether a later chunk continues from this one's final state.
    pub fn hands_on(&self) -> bool {
        self.index + 1 < self.chunks && !(self.index + 1).is_multiple_of(self.group_chunks.max(1))
    }

    /// Index of the chunk's first frame in the video.
    pub fn first_frame(&self) -> usize {
        self.index * self.chunk_frames
    }

    /// Frames in this chunk, given the video's length.
    pub fn len(&self, total_frames: usize) -> usize {
        total_frames
            .saturating_sub(self.first_frame())
            .min(self.chunk_frames)
    }
}

/// Seconds and frame counts spent coding, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CodingTime {
    /// Seconds spent encoding frames.
    pub encode_seconds: f64,
    /// Frames encoded.
    pub encoded_frames: usize,
    /// Seconds spent rebasing frames.
    pub rebase_seconds: f64,
    /// Frames rebased.
    pub rebased_frames: usize,
}

impl CodingTime {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &CodingTime) {
        self.encode_seconds += other.encode_seconds;
        self.encoded_frames += other.encoded_frames;
        self.rebase_seconds += other.rebase_seconds;
        self.rebased_frames += other.rebased_frames;
    }
}

/// A coded chunk: its frames, the state each was coded against, and the
/// state after the last.
#[derive(Clone, Debug)]
pub struct Coded {
    /// The compressed frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// `sources[k]` is the state `frames[k]` decodes from.
    pub sources: Vec<DecoderState>,
    /// The state after the last frame.
    pub final_state: DecoderState,
    /// Time spent producing it.
    pub time: CodingTime,
}

impl Coded {
    fn start(state: DecoderState, len: usize) -> Coded {
        Coded {
            frames: Vec::with_capacity(len),
            sources: Vec::with_capacity(len),
            final_state: state,
            time: CodingTime::default(),
        }
    }

    fn push(&mut self, data: Vec<u8>, state: DecoderState) {
        self.sources
            .push(std::mem::replace(&mut self.final_state, state));
        self.frames.push(data);
    }
}

/// How far below the inter frames' q index a chunk that is not a group
/// head codes its phase-1 key frame. That key frame is never sent (phase
/// 2 replaces it); it only stands in for the state the chunk will be
/// rebased onto, and the decisions of the chunk's other frames are made
/// against it. Coded finely, it makes them follow the source's own motion
/// rather than one particular reconstruction's noise, so they hold up
/// when rebased. ExCamera\[6,16\] BD-rate against serial excam (speed 4,
/// q 10..50, box / carphone): 0 (the inter q index) +12.8% / +13.0%, 24
/// +8.5% / +7.7%, 48 +8.1% / +7.5%, 127 (q index 0) as 48. Phase-1 time
/// did not grow.
pub const PROXY_KEY_Q_DROP: u8 = 48;

/// Phase 1: encodes `frames` (this chunk's) from a key frame with its own
/// encoder; unless the chunk heads its group, that key frame is coded
/// [`PROXY_KEY_Q_DROP`] q-index steps finer than the inter frames. The last
/// frame refreshes only the last reference: making it refresh all three
/// (so the state is one picture) was measured on carphone \[6,20\] q30 at
/// +2.1% bits and -0.11 dB, since the golden reference the successor
/// predicts from then stops being the chunk's (boosted) first frame.
///
/// # Errors
/// The encoder's error.
pub fn encode_chunk(
    plan: &ChunkPlan,
    cfg: &EncoderConfig,
    frames: &[Image],
) -> Result<Coded, ChunkError> {
    let phase = Phase::Encode;
    let enc_err = |source| ChunkError::Encode { phase, source };
    let mut encoder = cfg.build().map_err(enc_err)?;
    if !plan.is_head() {
        let inter = encoder.given_state_params(false).q_index;
        encoder.force_next_q_index(inter.saturating_sub(PROXY_KEY_Q_DROP));
    }
    let mut out = Coded::start(DecoderState::default(), frames.len());
    for f in frames {
        let t = Instant::now();
        let packet = encoder
            .send_frame(Some(f.clone()))
            .and_then(|_| encoder.receive_packet())
            .map_err(|e| match e {
                EncoderStatus::Failure(source) => enc_err(source),
                other => ChunkError::Encoder {
                    phase,
                    message: format!("{other:?}"),
                },
            })?;
        out.time.encode_seconds += t.elapsed().as_secs_f64();
        out.time.encoded_frames += 1;
        out.push(packet.data, packet.state);
    }
    Ok(out)
}

/// Parameters of the first frame of a chunk that is coded given its
/// predecessor's state: a golden refresh, boosted as the golden policy
/// boosts golden frames. Every chunk's first frame refreshes the golden
/// reference (as the key frame it stands in for did) and the rest of the
/// chunk predicts from it, so it pays to code it well even where the
/// serial encoder would not refresh golden: ExCamera\[6,16\] BD-rate
/// against serial excam (speed 4, q 10..50) fell from +12.52% to +8.56%
/// on carphone and from +9.27% to +8.53% on box against boosting only
/// where the serial golden policy puts a golden frame.
///
/// # Errors
/// The encoder configuration's error.
pub fn first_frame_params(
    plan: &ChunkPlan,
    cfg: &EncoderConfig,
    len: usize,
) -> Result<EncodeParams, ChunkError> {
    let mut p =
        Encoder::given_state_params_for(cfg, true).map_err(|source| ChunkError::Encode {
            phase: Phase::EncodeGivenState,
            source,
        })?;
    // A one-frame chunk at the end hands nothing on: no need to refresh all.
    if len == 1 && plan.index + 1 == plan.chunks {
        p.refresh_golden = false;
        p.refresh_altref = false;
    }
    Ok(p)
}

/// Codes `frames` starting from `pred`: the first frame encoded given it,
/// the rest rebased from `decisions` (whose `sources` they were coded
/// against).
fn code_from(
    phase: Phase,
    plan: &ChunkPlan,
    cfg: &EncoderConfig,
    frames: &[Image],
    decisions: &Coded,
    pred: DecoderState,
) -> Result<Coded, ChunkError> {
    let p = first_frame_params(plan, cfg, frames.len())?;
    let mut out = Coded::start(pred, frames.len());
    for (k, image) in frames.iter().enumerate() {
        let t = Instant::now();
        let r = if k == 0 {
            let r = encode_given_state(&out.final_state, image, &p)
                .map_err(|source| ChunkError::Encode { phase, source })?;
            out.time.encode_seconds += t.elapsed().as_secs_f64();
            out.time.encoded_frames += 1;
            r
        } else {
            let r = rebase(
                &decisions.sources[k],
                &out.final_state,
                image,
                &decisions.frames[k],
            )
            .map_err(|source| ChunkError::Rebase { phase, source })?;
            out.time.rebase_seconds += t.elapsed().as_secs_f64();
            out.time.rebased_frames += 1;
            r
        };
        out.push(r.data, r.state);
    }
    Ok(out)
}

/// Phase 2: the first frame encoded given `pred` (the predecessor's
/// phase-1 final state), the rest rebased from phase 1 (`own`).
///
/// # Errors
/// The codec's error.
pub fn encode_given_state_chunk(
    plan: &ChunkPlan,
    cfg: &EncoderConfig,
    frames: &[Image],
    own: &Coded,
    pred: DecoderState,
) -> Result<Coded, ChunkError> {
    code_from(Phase::EncodeGivenState, plan, cfg, frames, own, pred)
}

/// Phase 3: the first frame encoded again given `pred` (the predecessor's
/// true final state), the rest rebased from phase 2 (`approx`).
///
/// # Errors
/// The codec's error.
pub fn rebase_chunk(
    plan: &ChunkPlan,
    cfg: &EncoderConfig,
    frames: &[Image],
    approx: &Coded,
    pred: DecoderState,
) -> Result<Coded, ChunkError> {
    code_from(Phase::Rebase, plan, cfg, frames, approx, pred)
}

/// Rebuilds a [`Coded`] from stored frames by decoding them from `start`:
/// how a retried worker resumes from a checkpoint without keeping states.
/// Every key frame must be `size` (width, height): a stored frame claiming
/// a larger picture is refused before the decoder allocates for it.
///
/// # Errors
/// The decoder's error if the frames do not decode from `start`, or
/// [`ChunkError::ReplaySize`] for a key frame of another size.
pub fn replay(
    phase: Phase,
    start: DecoderState,
    frames: Vec<Vec<u8>>,
    size: (usize, usize),
) -> Result<Coded, ChunkError> {
    let mut out = Coded::start(start, frames.len());
    for f in frames {
        if let Ok((_, Some(s), _)) = excam_codec::header::parse_tag(&f) {
            let found = (s.width as usize, s.height as usize);
            if found != size {
                return Err(ChunkError::ReplaySize { phase, found, size });
            }
        }
        let d = decode_picture(&out.final_state, &f)
            .map_err(|source| ChunkError::Replay { phase, source })?;
        out.push(f, d.state);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use excam_codec::encode::encoder::RateControl;
    use excam_codec::encode::quantize::quantizer_to_qindex;

    fn clip(n: usize) -> Vec<Image> {
        (0..n)
            .map(|i| {
                let mut f = Image::filled(48, 32, [60, 128, 128]);
                for (k, v) in f.planes[0].data.iter_mut().enumerate() {
                    *v = ((k * 7 + i * 3) % 200) as u8;
                }
                f
            })
            .collect()
    }

    fn q_index(frame: &[u8]) -> u8 {
        excam_codec::decode::parse_modes(&DecoderState::default(), frame)
            .expect("a key frame parses from nothing")
            .0
            .quant
            .q_index
    }

    #[test]
    fn only_non_heads_code_their_proxy_key_frame_finely() {
        let mut cfg = EncoderConfig::new(48, 32);
        cfg.rate = RateControl::Quantizer(40);
        let frames = clip(4);
        let plan = |index| ChunkPlan {
            index,
            chunks: 3,
            chunk_frames: 4,
            group_chunks: 2,
        };
        let head = encode_chunk(&plan(2), &cfg, &frames).unwrap();
        let other = encode_chunk(&plan(1), &cfg, &frames).unwrap();
        let inter = quantizer_to_qindex(40);
        assert!(q_index(&head.frames[0]) > inter - PROXY_KEY_Q_DROP);
        assert_eq!(q_index(&other.frames[0]), inter - PROXY_KEY_Q_DROP);
        // Only the key frame differs in quantizer: the rest are inter
        // frames at the inter q index in both.
        assert_eq!(head.frames.len(), other.frames.len());
        assert_ne!(head.frames[0], other.frames[0]);
    }

    #[test]
    fn every_chunk_start_is_coded_as_a_golden_frame() {
        let mut cfg = EncoderConfig::new(48, 32);
        cfg.rate = RateControl::Quantizer(40);
        let inter = quantizer_to_qindex(40);
        for index in 1..4 {
            let plan = ChunkPlan {
                index,
                chunks: 4,
                chunk_frames: 5,
                group_chunks: 4,
            };
            let p = first_frame_params(&plan, &cfg, 5).unwrap();
            assert!(!p.key_frame && p.refresh_golden && p.refresh_altref);
            // Boosted wherever it falls, not only where the golden policy
            // (every 12 frames) would put a golden frame.
            assert!(p.q_index < inter, "chunk {index}: q index {}", p.q_index);
            assert_eq!(
                p.lambda_scale,
                excam_codec::encode::GIVEN_STATE_LAMBDA_SCALE
            );
        }
    }

    #[test]
    fn replay_decodes_its_frames_and_refuses_a_key_frame_of_another_size() {
        let mut cfg = EncoderConfig::new(48, 32);
        cfg.rate = RateControl::Quantizer(40);
        let plan = ChunkPlan {
            index: 0,
            chunks: 1,
            chunk_frames: 4,
            group_chunks: 1,
        };
        let coded = encode_chunk(&plan, &cfg, &clip(4)).unwrap();
        let again = replay(
            Phase::Encode,
            DecoderState::default(),
            coded.frames.clone(),
            (48, 32),
        )
        .unwrap();
        assert_eq!(again.final_state, coded.final_state);
        let Err(e) = replay(
            Phase::Encode,
            DecoderState::default(),
            coded.frames,
            (4096, 4096),
        ) else {
            panic!("a 48x32 key frame replayed in a 4096x4096 job");
        };
        assert!(
            matches!(
                e,
                ChunkError::ReplaySize {
                    found: (48, 32),
                    ..
                }
            ),
            "{e}"
        );
    }
}
