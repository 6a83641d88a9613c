//! The `--report FILE.json` record of a distributed job, and its
//! worker-timeline SVG.
//!
//! # Schema (version 1)
//!
//! ```text
//! Report {
//!   version: 1,
//!   job: hex job id, backend: "processes" | "lambda",
//!   frames, chunks, chunk_frames (N), group_chunks (x),
//!   started_unix_s: coordinator clock at job start,
//!   wall_seconds: job start to output written,
//!   tasks: [TaskReport {
//!     chunk, reused (true: taken from an earlier run by --resume),
//!     winner_attempt, chunk_bytes, frames,
//!     state_bytes: [compressed, raw] | null (state handed on),
//!     phases: [PhaseTiming { phase: "encode" | "encode_given_state" | "rebase",
//!              start_s (since job start), seconds, wait_seconds, from_checkpoint,
//!              handoff_s, received_s }]
//!             (the winning attempt's phases; what a planner fits),
//!     retries (failed attempts), speculative (twins launched),
//!     attempts: [AttemptReport { attempt, speculative, start_s, end_s,
//!                outcome: {status: "ok" | "failed" (+kind) | "lost_race" | "cancelled"},
//!                error, phase, worker, phases: [PhaseTiming] }] }],
//!   hops: [Hop { chunk, latency_s, waiting }]: for each non-head chunk,
//!         seconds from its predecessor's hand-off start (rebase done) to
//!         its own having that state decoded, and whether it was already
//!         waiting then (the serial phase's hand-off latency through relay
//!         or store),
//!   totals: Totals { attempts, retries, speculative, stragglers,
//!            worker_seconds (sum of attempt durations), gb_seconds,
//!            requests, lambda_memory_mb, price_per_gb_s, price_per_request,
//!            cost_usd },
//!   assembly: { chunk_written_s: [when each chunk went to the output],
//!               last_chunk_done_s, output_done_s (complete, renamed),
//!               held_peak_bytes, hold_limit_bytes, refetched, rewrites }
//!             (the streamed assembly; absent if the job failed),
//! }
//! ```
//!
//! Times are seconds relative to the job's start; worker-side phase times
//! are converted from the worker's Unix clock, so on a remote backend they
//! carry the clock skew between machines.

use std::path::Path;

use excam_worker::chunk::Phase;
use serde::{Deserialize, Serialize};

use super::scheduler::Outcome;

/// Current schema version.
pub const REPORT_VERSION: u32 = 1;

/// A whole job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// Job id.
    pub job: String,
    /// Backend name.
    pub backend: String,
    /// Frames encoded.
    pub frames: usize,
    /// Chunks.
    pub chunks: usize,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Unix time of the job's start.
    pub started_unix_s: f64,
    /// Seconds from start to the output's rename.
    pub wall_seconds: f64,
    /// Output bytes (IVF).
    pub output_bytes: u64,
    /// One per chunk, in order.
    pub tasks: Vec<TaskReport>,
    /// Phase-3 hand-off latencies.
    pub hops: Vec<Hop>,
    /// Sums and cost.
    pub totals: Totals,
    /// The streamed assembly (absent in reports of failed jobs and older
    /// versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assembly: Option<super::assemble::AssemblyReport>,
}

/// One chunk's task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskReport {
    /// Chunk index.
    pub chunk: usize,
    /// Taken from an earlier run.
    pub reused: bool,
    /// Attempt whose chunk was used.
    pub winner_attempt: u32,
    /// Frames in the chunk.
    pub frames: usize,
    /// Bytes of the chunk object.
    pub chunk_bytes: u64,
    /// State handed on: (compressed, raw) bytes.
    pub state_bytes: Option<(u64, u64)>,
    /// The winning attempt's phases.
    pub phases: Vec<PhaseTiming>,
    /// Failed attempts.
    pub retries: u32,
    /// Speculative twins launched.
    pub speculative: u32,
    /// Every attempt.
    pub attempts: Vec<AttemptReport>,
}

/// One phase of one attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// Which.
    pub phase: Phase,
    /// Start, seconds since the job's start.
    pub start_s: f64,
    /// Duration, waiting included.
    pub seconds: f64,
    /// Seconds of it spent waiting for a predecessor.
    pub wait_seconds: f64,
    /// Taken from a checkpoint.
    pub from_checkpoint: bool,
    /// When its output state started on its way to the successor, seconds
    /// since the job's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_s: Option<f64>,
    /// When the predecessor's state was in hand, decoded, seconds since
    /// the job's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_s: Option<f64>,
}

/// One attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttemptReport {
    /// Attempt number.
    pub attempt: u32,
    /// Launched as a twin of a straggler.
    pub speculative: bool,
    /// Launch, seconds since the job's start.
    pub start_s: f64,
    /// End, seconds since the job's start.
    pub end_s: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Error text, for failures.
    pub error: Option<String>,
    /// Phase of the failure, if known.
    pub phase: Option<Phase>,
    /// Worker id, when it answered.
    pub worker: Option<String>,
    /// Phases it reported (answered attempts only).
    pub phases: Vec<PhaseTiming>,
}

/// Hand-off latency into one chunk's phase 3.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hop {
    /// The receiving chunk.
    pub chunk: usize,
    /// Seconds from the predecessor's hand-off start (its rebase done,
    /// before serializing the state) to this chunk's having the state in
    /// hand, decoded: serialization, relay or store transfer, polling and
    /// deserialization.
    pub latency_s: f64,
    /// Whether this chunk was already waiting when the hand-off started;
    /// only then is `latency_s` the chain's hand-off cost rather than this
    /// chunk's own lateness.
    #[serde(default)]
    pub waiting: bool,
}

/// Sums over the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Totals {
    /// Attempts launched.
    pub attempts: usize,
    /// Failed attempts.
    pub retries: usize,
    /// Speculative twins.
    pub speculative: usize,
    /// Chunks that got a twin.
    pub stragglers: usize,
    /// Sum of attempt durations, seconds.
    pub worker_seconds: f64,
    /// worker_seconds x memory in GB.
    pub gb_seconds: f64,
    /// Invocations (billed requests).
    pub requests: usize,
    /// Memory used for the estimate.
    pub lambda_memory_mb: u32,
    /// USD per GB-second.
    pub price_per_gb_s: f64,
    /// USD per request.
    pub price_per_request: f64,
    /// Estimated cost, USD.
    pub cost_usd: f64,
}

impl Report {
    /// Writes the JSON to `path` (the timeline beside it is
    /// [`super::timeline::write_with_svg`]'s job, which draws from this).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_json(&self, path: &Path) -> Result<(), super::WriteError> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(|source| super::WriteError::Report {
            path: path.to_path_buf(),
            source,
        })
    }
}

use std::time::Instant;

use super::scheduler::{self, Schedule};
use super::JobConfig;

/// Builds the report from the attempts the scheduler recorded.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_report(
    cfg: &JobConfig,
    job: &str,
    backend: &str,
    frames: usize,
    chunks: usize,
    started_unix_s: f64,
    t0: Instant,
    sched: &Schedule,
    output_bytes: u64,
) -> Report {
    let rel = |i: Instant| i.saturating_duration_since(t0).as_secs_f64();
    let timings = |r: &excam_worker::task::TaskResult| -> Vec<PhaseTiming> {
        r.phases
            .iter()
            .map(|p| PhaseTiming {
                phase: p.phase,
                start_s: p.start_unix_s - started_unix_s,
                seconds: p.seconds,
                wait_seconds: p.wait_seconds,
                from_checkpoint: p.from_checkpoint,
                handoff_s: p.handoff_unix_s.map(|t| t - started_unix_s),
                received_s: p.received_unix_s.map(|t| t - started_unix_s),
            })
            .collect()
    };
    let mut tasks = Vec::with_capacity(chunks);
    let mut worker_seconds = 0.0;
    for i in 0..chunks {
        let attempts: Vec<AttemptReport> = sched
            .attempts
            .iter()
            .filter(|a| a.chunk == i)
            .map(|a| {
                let end = a.end.map_or(rel(Instant::now()), rel);
                worker_seconds += end - rel(a.start);
                AttemptReport {
                    attempt: a.attempt,
                    speculative: a.speculative,
                    start_s: rel(a.start),
                    end_s: end,
                    outcome: a.outcome.clone().unwrap_or(scheduler::Outcome::Cancelled),
                    error: a.error.clone(),
                    phase: a.phase,
                    worker: a.result.as_ref().map(|r| r.worker.clone()),
                    phases: a.result.as_ref().map(timings).unwrap_or_default(),
                }
            })
            .collect();
        let done = sched.chunks.get(i).and_then(|c| c.as_ref());
        tasks.push(TaskReport {
            chunk: i,
            reused: done.is_some_and(|d| d.reused),
            winner_attempt: done.map_or(0, |d| d.result.attempt),
            frames: done.map_or(0, |d| d.result.frames),
            chunk_bytes: done.map_or(0, |d| d.result.chunk_bytes),
            state_bytes: done.and_then(|d| d.result.state_bytes),
            phases: done.map(|d| timings(&d.result)).unwrap_or_default(),
            retries: attempts
                .iter()
                .filter(|a| matches!(a.outcome, scheduler::Outcome::Failed { .. }))
                .count() as u32,
            speculative: attempts.iter().filter(|a| a.speculative).count() as u32,
            attempts,
        });
    }
    let mut hops = Vec::new();
    for i in 1..chunks {
        if i % cfg.job.group_chunks == 0 {
            continue;
        }
        let find = |t: &TaskReport| {
            t.phases
                .iter()
                .find(|p| p.phase == excam_worker::chunk::Phase::Rebase)
                .cloned()
        };
        if tasks[i].reused || tasks[i - 1].reused {
            continue;
        }
        if let (Some(a), Some(b)) = (find(&tasks[i - 1]), find(&tasks[i])) {
            if let (Some(sent), Some(got)) = (a.handoff_s, b.received_s) {
                hops.push(Hop {
                    chunk: i,
                    latency_s: got - sent,
                    waiting: b.start_s <= sent,
                });
            }
        }
    }
    let requests = sched.attempts.len();
    let gb_seconds = worker_seconds * cfg.infra.pricing.lambda_memory_mb as f64 / 1024.0;
    Report {
        version: REPORT_VERSION,
        job: job.to_string(),
        backend: backend.to_string(),
        frames,
        chunks,
        chunk_frames: cfg.job.chunk_frames,
        group_chunks: cfg.job.group_chunks,
        started_unix_s,
        wall_seconds: t0.elapsed().as_secs_f64(),
        output_bytes,
        hops,
        totals: Totals {
            attempts: requests,
            retries: tasks.iter().map(|t| t.retries as usize).sum(),
            speculative: sched.twins,
            stragglers: tasks.iter().filter(|t| t.speculative > 0).count(),
            worker_seconds,
            gb_seconds,
            requests,
            lambda_memory_mb: cfg.infra.pricing.lambda_memory_mb,
            price_per_gb_s: cfg.infra.pricing.price_per_gb_s,
            price_per_request: cfg.infra.pricing.price_per_request,
            cost_usd: gb_seconds * cfg.infra.pricing.price_per_gb_s
                + requests as f64 * cfg.infra.pricing.price_per_request,
        },
        tasks,
        assembly: None,
    }
}
