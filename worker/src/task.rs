//! What a coordinator sends a worker and what the worker answers: one
//! versioned, serde-described task per chunk (JSON on stdin or as a Lambda
//! payload) and its result record.

use excam_codec::encode::encoder::{EncoderConfig, GoldenPolicy, RateControl};
use serde::{Deserialize, Serialize};

use crate::chunk::{ChunkPlan, Phase};

/// Version of the task and result format; a worker refuses other versions.
/// Version 2 added the run id and the state digests a chain check needs.
pub const TASK_VERSION: u32 = 2;

/// Version of a chunk's output for caching and job ids: the codec's
/// [`CODEC_VERSION`](excam_codec::CODEC_VERSION) (a digest of its sources)
/// and a digest of this crate's phase functions (`src/chunk.rs`), both
/// taken at build time. Two builds whose chunks may differ get different
/// versions, so `--resume` and the cache never mix their bytes.
pub fn codec_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{}+phases-{}",
            excam_codec::CODEC_VERSION,
            env!("EXCAM_PHASES_SOURCE_DIGEST")
        )
    })
}

/// The encoder settings, in a form that crosses the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecParams {
    /// Luma width.
    pub width: usize,
    /// Luma height.
    pub height: usize,
    /// Frame rate numerator and denominator.
    pub framerate: (u32, u32),
    /// Fixed quantizer 0..=63 (vpxenc scale), or `None` with `bitrate_kbps`.
    pub quantizer: Option<u8>,
    /// Target kbit/s for one-pass rate control.
    pub bitrate_kbps: Option<u32>,
    /// Largest key-frame distance.
    pub keyint: u32,
    /// Speed preset.
    pub speed: u8,
    /// Token partitions.
    pub partitions: usize,
    /// Golden refresh interval (0: only on key frames).
    pub golden_interval: u32,
    /// Golden quality boost in q-index steps.
    pub golden_boost: u8,
    /// Whether probability updates persist.
    pub refresh_entropy: bool,
}

impl CodecParams {
    /// The wire form of `cfg`.
    pub fn from_config(cfg: &EncoderConfig) -> CodecParams {
        let (quantizer, bitrate_kbps) = match cfg.rate {
            RateControl::Quantizer(q) => (Some(q), None),
            RateControl::Bitrate { kbps } => (None, Some(kbps)),
            // Chunks have one-pass bitrate control only; `excam encode`
            // refuses cbr and cq with --workers before it gets here.
            other => (None, other.kbps()),
        };
        CodecParams {
            width: cfg.width,
            height: cfg.height,
            framerate: cfg.framerate,
            quantizer,
            bitrate_kbps,
            keyint: cfg.keyint,
            speed: cfg.speed,
            partitions: cfg.partitions,
            golden_interval: cfg.golden.interval,
            golden_boost: cfg.golden.q_boost,
            refresh_entropy: cfg.refresh_entropy,
        }
    }

    /// The encoder configuration, validated.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn to_config(&self) -> Result<EncoderConfig, String> {
        let rate = match (self.quantizer, self.bitrate_kbps) {
            (Some(q), None) => RateControl::Quantizer(q),
            (None, Some(kbps)) => RateControl::Bitrate { kbps },
            _ => return Err("exactly one of quantizer and bitrate_kbps must be set".into()),
        };
        let mut cfg = EncoderConfig::new(self.width, self.height);
        cfg.framerate = self.framerate;
        cfg.rate = rate;
        cfg.keyint = self.keyint;
        cfg.speed = self.speed;
        cfg.partitions = self.partitions;
        cfg.golden = GoldenPolicy {
            interval: self.golden_interval,
            q_boost: self.golden_boost,
        };
        cfg.refresh_entropy = self.refresh_entropy;
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }
}

/// Where the Y4M input sits in the store and how to find a frame in it
/// without reading the rest: frames follow the header at a fixed stride.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Store key of the Y4M file (relative to the store's root or prefix).
    pub key: String,
    /// Byte offset of the first `FRAME` line.
    pub first_frame_offset: u64,
    /// Bytes from one `FRAME` line to the next (`FRAME\n` plus the picture).
    pub frame_stride: u64,
    /// Frames in the video.
    pub frames: usize,
}

/// Which store a worker uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreSpec {
    /// A directory on this machine.
    Local {
        /// Root directory; keys are relative paths under it.
        root: std::path::PathBuf,
    },
    /// An S3 bucket; keys go under `prefix`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (may be empty); joined to keys with `/`.
        prefix: String,
    },
}

/// How a worker reaches the relay. Its `Debug` output hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySpec {
    /// `host:port`.
    pub addr: String,
    /// SHA-256 fingerprint of the relay's certificate, hex.
    pub fingerprint: String,
    /// Job id the token was minted for.
    pub job: String,
    /// The job's token (not the relay's secret).
    pub token: String,
}

impl std::fmt::Debug for RelaySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySpec")
            .field("addr", &self.addr)
            .field("fingerprint", &self.fingerprint)
            .field("job", &self.job)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// A fault to inject, honoured only by workers built with the
/// `fault-injection` feature (tests); ignored otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Exit the process abruptly when `phase` starts.
    Crash {
        /// Phase at whose start to die.
        phase: Phase,
    },
    /// Stop making progress forever when `phase` starts.
    Hang {
        /// Phase at whose start to hang.
        phase: Phase,
    },
    /// Return an error when `phase` starts.
    Error {
        /// Phase at whose start to fail.
        phase: Phase,
    },
    /// Sleep `seconds` when `phase` starts.
    Slow {
        /// Phase at whose start to sleep.
        phase: Phase,
        /// How long.
        seconds: f64,
    },
    /// Lose the state handed on at the end of `phase` (phase 1's or the
    /// final one): put it nowhere, as if the store object had been deleted
    /// right after it was written and the relay restarted.
    LoseState {
        /// Phase whose hand-off to lose.
        phase: Phase,
    },
}

/// One chunk's work: all three phases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Must equal [`TASK_VERSION`].
    pub version: u32,
    /// Job id: names the job's mailboxes and objects.
    pub job: String,
    /// Run id: one per coordinator run of the job. States live under it,
    /// so a state left by an earlier (failed) run is never read.
    pub run: String,
    /// Chunk index.
    pub chunk: usize,
    /// Chunks in the job.
    pub chunks: usize,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// The input video.
    pub input: InputSpec,
    /// Encoder settings.
    pub codec: CodecParams,
    /// Durable store.
    pub store: StoreSpec,
    /// Fast path for states; `None` uses the store alone.
    pub relay: Option<RelaySpec>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Longest wait for a predecessor's state, in seconds.
    pub wait_timeout_s: f64,
    /// Fault to inject on this attempt (tests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// Set for a merge task, which encodes nothing: it frames finished
    /// chunks as one piece of the IVF output (see [`Merge`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<Merge>,
}

/// A merge task's work: read finished chunk objects (each checked against
/// the SHA-256 and frame count its result names) and write their frames as
/// IVF frame records, after `prefix_hex`, under `out_key`. That object is
/// one part of the output's S3 multipart upload, which copies it server
/// side (`UploadPartCopy`): S3 wants every part but the last to be at
/// least 5 MiB, and chunks are usually smaller, so a worker, not the
/// coordinator, puts consecutive chunks together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    /// The chunk objects, in output order.
    pub pieces: Vec<MergePiece>,
    /// Timestamp (frame-rate ticks) of the first frame.
    pub first_pts: u64,
    /// Bytes before the first frame record, hex: the IVF file header in
    /// the output's first part, else empty.
    pub prefix_hex: String,
    /// Store key the piece is written under.
    pub out_key: String,
}

/// One chunk object of a [`Merge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergePiece {
    /// Store key of the chunk object.
    pub key: String,
    /// Its SHA-256, hex, as the chunk's result names it.
    pub sha256: String,
    /// Frames it holds.
    pub frames: usize,
}

impl Task {
    /// The chunk's place in the job.
    pub fn plan(&self) -> ChunkPlan {
        ChunkPlan {
            index: self.chunk,
            chunks: self.chunks,
            chunk_frames: self.chunk_frames,
            group_chunks: self.group_chunks,
        }
    }
}

/// Timing of one phase of one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// Start, seconds since the Unix epoch (worker clock).
    pub start_unix_s: f64,
    /// Seconds the phase took, waiting included.
    pub seconds: f64,
    /// Seconds of that spent waiting for a predecessor's state.
    pub wait_seconds: f64,
    /// Whether the phase was taken from a checkpoint instead of computed.
    pub from_checkpoint: bool,
    /// When this phase's output state started on its way to the successor
    /// (coding done, before serialization), seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_unix_s: Option<f64>,
    /// When the predecessor's state was in hand, decoded, seconds since the
    /// Unix epoch. With the predecessor's `handoff_unix_s` this gives the
    /// hop latency of the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_unix_s: Option<f64>,
}

/// What a worker answers for a finished task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// [`TASK_VERSION`].
    pub version: u32,
    /// Job id.
    pub job: String,
    /// Run the attempt belonged to: where its states are stored.
    pub run: String,
    /// Chunk index.
    pub chunk: usize,
    /// Attempt that produced it.
    pub attempt: u32,
    /// Store key of the finished chunk (content-addressed: [`Task`]'s
    /// cache key).
    pub chunk_key: String,
    /// SHA-256 of the chunk object's bytes, hex.
    pub chunk_sha256: String,
    /// Bytes of the chunk object.
    pub chunk_bytes: u64,
    /// Frames in the chunk.
    pub frames: usize,
    /// SHA-256 (hex) of the state this chunk's first frame decodes from
    /// (all zeros for a group head).
    pub source_state: String,
    /// SHA-256 (hex) of the chunk's true final state: what its frames leave
    /// a decoder in, and, if it hands on, the state its successor must be
    /// rebased onto. The coordinator checks every non-head chunk's
    /// `source_state` against its predecessor's `final_state`.
    pub final_state: String,
    /// SHA-256 (hex) of the phase-1 final state it handed its successor,
    /// if it hands on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase1_state: Option<String>,
    /// Phases in order, as this attempt ran them.
    pub phases: Vec<PhaseReport>,
    /// Wire bytes of the final state handed on (compressed, raw), if any.
    pub state_bytes: Option<(u64, u64)>,
    /// Who ran it (host, pid or Lambda request id).
    pub worker: String,
    /// Seconds from the worker's start to its answer.
    pub total_seconds: f64,
    /// Key frames among the frames, when the worker counted them (a
    /// merge task does: the coordinator of an `s3://` output never sees
    /// the frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_frames: Option<usize>,
}
