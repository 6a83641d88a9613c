//! The ExCamera[N,x] pipeline on local workers.
//!
//! The video is cut into chunks of N frames; every x-th chunk starts a
//! group and keeps its key frame. Three phases:
//!
//! 1. (parallel) each chunk is encoded from a key frame; its last frame
//!    refreshes all three references so one picture carries the state;
//! 2. (parallel) each chunk that is not a group head re-encodes its first
//!    frame as an inter frame given its predecessor's phase-1 final state,
//!    and rebases the rest onto the result;
//! 3. (serial within a group, groups in parallel) each such chunk waits for
//!    its predecessor's true final state, encodes its first frame again
//!    given that state (measured on carphone: +0.2 dB at q30 and +0.8 dB
//!    at q50 over rebasing it, at the same rate), rebases the rest onto
//!    it, and passes its own final state on.
//!
//! States move between workers only as wire-format bytes through a
//! [`StateExchange`], the seam a network relay backs in the distributed
//! runtime. Output bytes depend only on the input and the encoding
//! parameters, never on the number of workers or on scheduling.

// Frames, sources and outputs are parallel arrays indexed by frame number.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use excam_codec::encode::encoder::{Encoder, EncoderConfig, EncoderStatus};
use excam_codec::wire::{decode_state, encode_state, state_digest, Compression, StateError};
use excam_codec::{encode_given_state, rebase, DecoderState, EncodeError, Frame, RebaseError};
use thiserror::Error;

/// Which phase a chunk is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Encoding from a key frame.
    Encode,
    /// Encoding the first frame given the predecessor's state, rebasing the rest.
    EncodeGivenState,
    /// Rebasing onto the predecessor's true final state.
    Rebase,
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

/// Why the pipeline failed.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// Encoding a chunk failed.
    #[error("chunk {chunk}, {phase}: {source}")]
    Encode {
        /// Chunk index.
        chunk: usize,
        /// Phase it failed in.
        phase: Phase,
        /// The codec's error.
        source: EncodeError,
    },
    /// Rebasing a chunk failed.
    #[error("chunk {chunk}, {phase}: {source}")]
    Rebase {
        /// Chunk index.
        chunk: usize,
        /// Phase it failed in.
        phase: Phase,
        /// The codec's error.
        source: RebaseError,
    },
    /// A state received was unreadable or not the one expected.
    #[error("chunk {chunk}: bad state from its predecessor: {reason}")]
    State {
        /// Chunk index.
        chunk: usize,
        /// What was wrong.
        reason: String,
    },
    /// A worker failed (e.g. an injected fault).
    #[error("chunk {chunk}, {phase}: worker failed: {message}")]
    Worker {
        /// Chunk index.
        chunk: usize,
        /// Phase it failed in.
        phase: Phase,
        /// What happened.
        message: String,
    },
    /// Nothing to encode or bad settings.
    #[error("invalid pipeline settings: {0}")]
    Config(String),
}

/// Where workers put and get states: named mailboxes holding bytes.
pub trait StateExchange: Send + Sync {
    /// Stores `bytes` under `mailbox`.
    fn put(&self, mailbox: &str, bytes: Vec<u8>) -> Result<(), String>;
    /// Waits until `mailbox` is filled and returns its bytes, or fails if
    /// the job was cancelled.
    fn get(&self, mailbox: &str) -> Result<Vec<u8>, String>;
    /// Wakes every waiting `get` with an error: the job is over.
    fn cancel(&self);
}

/// An in-memory [`StateExchange`] for workers that are threads.
#[derive(Default)]
pub struct LocalExchange {
    boxes: Mutex<HashMap<String, Vec<u8>>>,
    filled: Condvar,
    cancelled: AtomicBool,
}

impl StateExchange for LocalExchange {
    fn put(&self, mailbox: &str, bytes: Vec<u8>) -> Result<(), String> {
        let mut b = self
            .boxes
            .lock()
            .map_err(|_| "exchange poisoned".to_string())?;
        b.insert(mailbox.to_string(), bytes);
        self.filled.notify_all();
        Ok(())
    }

    fn get(&self, mailbox: &str) -> Result<Vec<u8>, String> {
        let mut b = self
            .boxes
            .lock()
            .map_err(|_| "exchange poisoned".to_string())?;
        loop {
            if let Some(v) = b.get(mailbox) {
                return Ok(v.clone());
            }
            if self.cancelled.load(Ordering::SeqCst) {
                return Err("job cancelled".into());
            }
            b = self
                .filled
                .wait(b)
                .map_err(|_| "exchange poisoned".to_string())?;
        }
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _guard = self.boxes.lock();
        self.filled.notify_all();
    }
}

/// Settings of an ExCamera[N,x] job.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// N: frames per chunk (one worker each).
    pub chunk_frames: usize,
    /// x: chunks per group; each group starts with a key frame.
    pub group_chunks: usize,
    /// Worker threads.
    pub workers: usize,
    /// Encoder settings (rate control, speed, key and golden frames); each
    /// chunk runs its own encoder with them, so one chunk covering the
    /// whole clip gives exactly the serial encoder's stream.
    pub encoder: EncoderConfig,
}

impl PipelineConfig {
    /// ExCamera[6,16] on as many workers as there are cores.
    pub fn new(encoder: EncoderConfig) -> Self {
        PipelineConfig {
            chunk_frames: 6,
            group_chunks: 16,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            encoder,
        }
    }
}

/// One encoded chunk.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Index of the chunk.
    pub index: usize,
    /// The compressed frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// SHA-256 of the state the first frame must be decoded from (all
    /// zeros for a chunk that starts with a key frame).
    pub source_state: [u8; 32],
}

/// Per-job measurements.
#[derive(Clone, Debug, Default)]
pub struct PipelineStats {
    /// Wall seconds per phase.
    pub phase_seconds: [f64; 3],
    /// Seconds spent encoding frames (summed over workers).
    pub encode_seconds: f64,
    /// Frames encoded (phase 1 and phase 2 first frames).
    pub encoded_frames: usize,
    /// Seconds spent rebasing frames (summed over workers).
    pub rebase_seconds: f64,
    /// Frames rebased.
    pub rebased_frames: usize,
    /// Wire bytes of the states passed in phase 3 (compressed), and raw.
    pub state_bytes: Vec<(usize, usize)>,
}

/// Called as chunks finish a phase: (phase, chunks done, chunks total).
pub type Progress<'a> = &'a (dyn Fn(Phase, usize, usize) + Sync);

/// A hook that may fail a chunk's phase on purpose (fault-injection tests).
pub type FaultHook<'a> = &'a (dyn Fn(usize, Phase) -> Result<(), String> + Sync);

/// Runs `f(i)` for i in 0..n on up to `workers` threads; returns the results
/// in order, or the first error (after which no new item starts).
fn parallel_map<T: Send, E: Send>(
    n: usize,
    workers: usize,
    f: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let first_err: Mutex<Option<(usize, E)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                match f(i) {
                    Ok(v) => results.lock().expect("results lock")[i] = Some(v),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let mut fe = first_err.lock().expect("error lock");
                        // Report the lowest failing chunk for a stable message.
                        if fe.as_ref().is_none_or(|(j, _)| i < *j) {
                            *fe = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_err.into_inner().expect("error lock") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

/// What phase 1 or 2 leaves for the next phase.
struct ChunkWork {
    /// Frames and the states they were encoded against.
    frames: Vec<Vec<u8>>,
    sources: Vec<DecoderState>,
    final_state: DecoderState,
    /// Parameters of the chunk's first frame (phase 2).
    first_params: excam_codec::EncodeParams,
}

fn timed<T>(acc: &Mutex<(f64, usize)>, n: usize, f: impl FnOnce() -> T) -> T {
    let t = std::time::Instant::now();
    let r = f();
    let mut a = acc.lock().expect("timing lock");
    a.0 += t.elapsed().as_secs_f64();
    a.1 += n;
    r
}

/// Encodes `frames` with ExCamera[N,x]; returns the chunks in order.
pub fn run_pipeline(
    frames: &[Frame],
    cfg: &PipelineConfig,
    exchange: &dyn StateExchange,
    progress: Progress,
    fault: Option<FaultHook>,
    stats: &mut PipelineStats,
) -> Result<Vec<Chunk>, PipelineError> {
    let n = cfg.chunk_frames;
    let x = cfg.group_chunks;
    if n == 0 || x == 0 {
        return Err(PipelineError::Config(
            "chunk frames and group chunks must be at least 1".into(),
        ));
    }
    if frames.is_empty() {
        return Err(PipelineError::Config("no frames to encode".into()));
    }
    let chunks = frames.len().div_ceil(n);
    let range = |i: usize| i * n..((i + 1) * n).min(frames.len());
    let is_head = |i: usize| i.is_multiple_of(x);
    let enc_time = Mutex::new((0.0, 0usize));
    let reb_time = Mutex::new((0.0, 0usize));
    let check_fault = |i: usize, phase: Phase| -> Result<(), PipelineError> {
        match fault {
            Some(f) => f(i, phase).map_err(|message| PipelineError::Worker {
                chunk: i,
                phase,
                message,
            }),
            None => Ok(()),
        }
    };
    let done = AtomicUsize::new(0);
    let result = (|| {
        // Phase 1.
        let t = std::time::Instant::now();
        let p1 = parallel_map(chunks, cfg.workers, |i| {
            check_fault(i, Phase::Encode)?;
            let r = range(i);
            let len = r.len();
            let enc_err = |source| PipelineError::Encode {
                chunk: i,
                phase: Phase::Encode,
                source,
            };
            let mut encoder = cfg.encoder.build().map_err(enc_err)?;
            let mut state = DecoderState::default();
            let mut work = ChunkWork {
                frames: Vec::with_capacity(len),
                sources: Vec::with_capacity(len),
                final_state: DecoderState::default(),
                first_params: Default::default(),
            };
            for (k, f) in frames[r].iter().enumerate() {
                // The last frame refreshes all references so the state
                // handed on is one picture; the video's last chunk has no
                // successor.
                if k + 1 == len && i + 1 < chunks {
                    encoder.refresh_all_references_next();
                }
                let packet = timed(&enc_time, 1, || {
                    encoder
                        .send_frame(Some(f.clone()))
                        .and_then(|_| encoder.receive_packet())
                })
                .map_err(|e| match e {
                    EncoderStatus::Failure(source) => enc_err(source),
                    other => PipelineError::Worker {
                        chunk: i,
                        phase: Phase::Encode,
                        message: format!("encoder: {other:?}"),
                    },
                })?;
                work.frames.push(packet.data);
                work.sources.push(state);
                state = packet.state;
            }
            work.final_state = state;
            if i + 1 < chunks && !is_head(i + 1) {
                exchange
                    .put(
                        &format!("state/{i}/phase1"),
                        encode_state(&work.final_state, Compression::Lz4),
                    )
                    .map_err(|m| PipelineError::Worker {
                        chunk: i,
                        phase: Phase::Encode,
                        message: m,
                    })?;
            }
            progress(
                Phase::Encode,
                done.fetch_add(1, Ordering::SeqCst) + 1,
                chunks,
            );
            Ok(work)
        });
        stats.phase_seconds[0] = t.elapsed().as_secs_f64();
        let p1 = p1?;

        // Phase 2.
        let t = std::time::Instant::now();
        done.store(0, Ordering::SeqCst);
        let p2 = parallel_map(chunks, cfg.workers, |i| {
            if is_head(i) {
                progress(
                    Phase::EncodeGivenState,
                    done.fetch_add(1, Ordering::SeqCst) + 1,
                    chunks,
                );
                return Ok(None);
            }
            check_fault(i, Phase::EncodeGivenState)?;
            let bytes = exchange
                .get(&format!("state/{}/phase1", i - 1))
                .map_err(|m| PipelineError::Worker {
                    chunk: i,
                    phase: Phase::EncodeGivenState,
                    message: m,
                })?;
            let pred = decode_state(&bytes).map_err(|e: StateError| PipelineError::State {
                chunk: i,
                reason: e.to_string(),
            })?;
            let r = range(i);
            let len = r.len();
            let src = &frames[r];
            let own = &p1[i];
            let mut p = Encoder::given_state_params_for(&cfg.encoder, {
                // Boost only where the serial encoder's golden policy would.
                let g = cfg.encoder.golden.interval as usize;
                g > 0 && (i * n).is_multiple_of(g)
            })
            .map_err(|source| PipelineError::Encode {
                chunk: i,
                phase: Phase::EncodeGivenState,
                source,
            })?;
            // A one-frame chunk ends here: refresh all only if it hands on.
            if len == 1 && i + 1 == chunks {
                p.refresh_golden = false;
                p.refresh_altref = false;
            }
            let first = timed(&enc_time, 1, || encode_given_state(&pred, &src[0], &p)).map_err(
                |source| PipelineError::Encode {
                    chunk: i,
                    phase: Phase::EncodeGivenState,
                    source,
                },
            )?;
            let mut work = ChunkWork {
                frames: vec![first.data],
                sources: vec![pred],
                final_state: DecoderState::default(),
                first_params: p.clone(),
            };
            let mut state = first.state;
            for k in 1..len {
                let r = timed(&reb_time, 1, || {
                    rebase(&own.sources[k], &state, &src[k], &own.frames[k])
                })
                .map_err(|source| PipelineError::Rebase {
                    chunk: i,
                    phase: Phase::EncodeGivenState,
                    source,
                })?;
                work.frames.push(r.data);
                work.sources.push(state);
                state = r.state;
            }
            work.final_state = state;
            progress(
                Phase::EncodeGivenState,
                done.fetch_add(1, Ordering::SeqCst) + 1,
                chunks,
            );
            Ok(Some(work))
        });
        stats.phase_seconds[1] = t.elapsed().as_secs_f64();
        let p2 = p2?;

        // Phase 3: one task per group, chunks in order within it.
        let t = std::time::Instant::now();
        done.store(0, Ordering::SeqCst);
        let groups = chunks.div_ceil(x);
        let state_sizes = Mutex::new(Vec::new());
        let out = parallel_map(groups, cfg.workers, |g| {
            let mut chunks_out = Vec::new();
            let head = g * x;
            let mut true_state = p1[head].final_state.clone();
            chunks_out.push(Chunk {
                index: head,
                frames: p1[head].frames.clone(),
                source_state: [0; 32],
            });
            progress(
                Phase::Rebase,
                done.fetch_add(1, Ordering::SeqCst) + 1,
                chunks,
            );
            for i in head + 1..(head + x).min(chunks) {
                check_fault(i, Phase::Rebase)?;
                // Hand the state on through the exchange, as workers that
                // are separate machines would.
                let wire = encode_state(&true_state, Compression::Lz4);
                state_sizes.lock().expect("sizes lock").push((
                    wire.len(),
                    encode_state(&true_state, Compression::None).len(),
                ));
                exchange
                    .put(&format!("state/{}/final", i - 1), wire)
                    .map_err(|m| PipelineError::Worker {
                        chunk: i,
                        phase: Phase::Rebase,
                        message: m,
                    })?;
                let bytes = exchange
                    .get(&format!("state/{}/final", i - 1))
                    .map_err(|m| PipelineError::Worker {
                        chunk: i,
                        phase: Phase::Rebase,
                        message: m,
                    })?;
                let pred = decode_state(&bytes).map_err(|e| PipelineError::State {
                    chunk: i,
                    reason: e.to_string(),
                })?;
                let src = &frames[range(i)];
                let work = p2[i].as_ref().expect("non-head chunks ran phase 2");
                let mut state = pred.clone();
                let mut out_frames = Vec::with_capacity(src.len());
                for k in 0..src.len() {
                    // The chunk's first frame is encoded afresh against the
                    // true state (its decisions were made against the
                    // phase-1 approximation, and the rest of the chunk
                    // predicts from it); the others are rebased.
                    let r = if k == 0 {
                        let p = work.first_params.clone();
                        timed(&enc_time, 1, || encode_given_state(&state, &src[0], &p)).map_err(
                            |source| PipelineError::Encode {
                                chunk: i,
                                phase: Phase::Rebase,
                                source,
                            },
                        )?
                    } else {
                        timed(&reb_time, 1, || {
                            rebase(&work.sources[k], &state, &src[k], &work.frames[k])
                        })
                        .map_err(|source| PipelineError::Rebase {
                            chunk: i,
                            phase: Phase::Rebase,
                            source,
                        })?
                    };
                    out_frames.push(r.data);
                    state = r.state;
                }
                chunks_out.push(Chunk {
                    index: i,
                    frames: out_frames,
                    source_state: state_digest(&pred),
                });
                true_state = state;
                progress(
                    Phase::Rebase,
                    done.fetch_add(1, Ordering::SeqCst) + 1,
                    chunks,
                );
            }
            Ok(chunks_out)
        });
        stats.phase_seconds[2] = t.elapsed().as_secs_f64();
        stats.state_bytes = state_sizes.into_inner().expect("sizes lock");
        Ok(out?.into_iter().flatten().collect())
    })();
    if result.is_err() {
        exchange.cancel();
    }
    let e = enc_time.into_inner().expect("timing lock");
    let r = reb_time.into_inner().expect("timing lock");
    stats.encode_seconds = e.0;
    stats.encoded_frames = e.1;
    stats.rebase_seconds = r.0;
    stats.rebased_frames = r.1;
    result
}

/// Checks that a chain of chunks decodes: each chunk's recorded source
/// state is the state the chunks before it end in. Returns the decoder
/// state after the last chunk.
pub fn verify_chain(chunks: &[Chunk]) -> Result<DecoderState, PipelineError> {
    let mut state = DecoderState::default();
    for c in chunks {
        if c.source_state != [0; 32] && c.source_state != state_digest(&state) {
            return Err(PipelineError::State {
                chunk: c.index,
                reason: "chunk was encoded against a different state than its predecessor ends in"
                    .into(),
            });
        }
        for f in &c.frames {
            state = excam_codec::decode(&state, f)
                .map_err(|e| PipelineError::State {
                    chunk: c.index,
                    reason: e.to_string(),
                })?
                .0;
        }
    }
    Ok(state)
}
