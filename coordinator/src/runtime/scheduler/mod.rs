//! Runs one task per chunk on a [`Backend`] until every chunk has a
//! verified result: bounded concurrency with a ramp-up, chain-order
//! starts, retries with backoff, speculative twins for stragglers,
//! per-attempt timeouts and cancellation.
//!
//! Start order matters when fewer tasks can run at once than there are
//! chunks: a running task may wait for its predecessor's state. Chunks
//! start in [`JobGraph::launch_order`] (every group's head, then every
//! group's second chunk, ...: a chain predecessor always comes first), a
//! slot is never given to a chunk while one earlier in that order that is
//! ready to start is waiting for one, and slots are held back for earlier
//! chunks that are only waiting out a backoff. Every running task's
//! predecessors are therefore running or done, and the job cannot
//! deadlock on slots.
//!
//! A twin starts when an attempt has run `straggler_factor` times the
//! median working time (floored at `straggler_floor`); for a chunk whose
//! chain predecessor finished while it ran, counting from that moment and
//! against the median *tail* (predecessor done to done) of finished
//! chunks: by then only its phase 3 should be left, and a late chunk in a
//! chain delays every later one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use excam_worker::chunk::Phase;
use excam_worker::graph::JobGraph;
use excam_worker::store::Store;
use excam_worker::task::{Task, TaskResult};
use sha2::{Digest, Sha256};
use tokio::task::{AbortHandle, JoinSet};

use super::backend::{AttemptError, Backend, FailureKind};
use super::state_audit;
use super::worker_api::{decode_chunk_object, result_key};

/// Knobs of the scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Most attempts running at once.
    pub max_concurrency: usize,
    /// Failed attempts allowed per chunk (throttling not counted).
    pub max_tries: u32,
    /// Longest a chunk may go on being throttled with no attempt getting
    /// through: throttled attempts back off without using up tries, but a
    /// function that is throttled for good must end the job, not hang it.
    pub throttle_timeout: Duration,
    /// Longest an attempt may run.
    pub task_timeout: Duration,
    /// A task is a straggler after this many times its finished peers'
    /// median working time.
    pub straggler_factor: f64,
    /// ... but never before this long.
    pub straggler_floor: Duration,
    /// Attempts allowed to run in the first second; doubles every second
    /// (ramp-up, so a cold function is not hit by a thousand invocations).
    pub ramp_start: usize,
    /// Check a done chunk's object by its size and frame count only,
    /// without downloading it: for an `s3://` output, whose bytes never
    /// pass through the coordinator (the merge tasks check each chunk's
    /// SHA-256 before it reaches the output, and fail the job, not the
    /// chunk, if one does not match).
    pub verify_in_store: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrency: 1000,
            max_tries: 3,
            throttle_timeout: Duration::from_secs(600),
            task_timeout: Duration::from_secs(900),
            straggler_factor: 2.0,
            straggler_floor: Duration::from_secs(5),
            ramp_start: 50,
            verify_in_store: false,
        }
    }
}

/// A verified chunk.
#[derive(Clone, Debug)]
pub struct ChunkDone {
    /// The worker's result record.
    pub result: TaskResult,
    /// The chunk's compressed frames.
    pub frames: Vec<Vec<u8>>,
    /// Whether it came from an earlier run (`--resume`) instead of a task.
    pub reused: bool,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    /// It produced the chunk that was used.
    Ok,
    /// It failed.
    Failed {
        /// Class of failure.
        kind: FailureKind,
    },
    /// Another attempt of the chunk finished first; this one was stopped.
    LostRace,
    /// The job ended (failure elsewhere or Ctrl-C) while it ran.
    Cancelled,
}

/// One attempt as the coordinator saw it.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// Chunk index.
    pub chunk: usize,
    /// Attempt number (from 1).
    pub attempt: u32,
    /// Whether it was launched as a speculative twin of a straggler.
    pub speculative: bool,
    /// When it was launched.
    pub start: Instant,
    /// When it ended.
    pub end: Option<Instant>,
    /// How.
    pub outcome: Option<Outcome>,
    /// Error text for failures.
    pub error: Option<String>,
    /// Phase the failure happened in, if known.
    pub phase: Option<Phase>,
    /// The worker's result, for attempts that answered.
    pub result: Option<TaskResult>,
}

/// Something the progress display may want to know.
#[derive(Debug)]
pub enum Event<'a> {
    /// An attempt started.
    Launched {
        /// Chunk.
        chunk: usize,
        /// Attempt number.
        attempt: u32,
        /// Speculative twin?
        speculative: bool,
    },
    /// A chunk is done.
    Done {
        /// Chunk.
        chunk: usize,
        /// Its result.
        result: &'a TaskResult,
    },
    /// An attempt failed.
    Failed {
        /// Chunk.
        chunk: usize,
        /// Attempt number.
        attempt: u32,
        /// Why.
        error: &'a AttemptError,
    },
    /// An attempt was stopped because another one won.
    LostRace {
        /// Chunk.
        chunk: usize,
        /// Attempt number.
        attempt: u32,
    },
    /// A done chunk runs again: a state it handed on was lost or damaged
    /// after it was written (its successor would wait for it forever).
    Regenerating {
        /// Chunk.
        chunk: usize,
        /// What was wrong with the state.
        reason: &'a str,
    },
}

/// Receives [`Event`]s; also told how many attempts run.
pub trait Observer: Send + Sync {
    /// Called for each event, with the number of attempts running after it.
    fn event(&self, ev: &Event<'_>, running: usize);
}

/// Told of each chunk as it is done (the streamed assembly, test hooks).
pub trait DoneHook: Send + Sync {
    /// Chunk `chunk` is done, `count` chunks in all so far. The hook may
    /// take `done`'s frames (the [`Schedule`] then keeps only its result).
    fn done(&self, count: usize, chunk: usize, done: &mut ChunkDone);
}

impl<F: Fn(usize) + Send + Sync> DoneHook for F {
    fn done(&self, count: usize, _chunk: usize, _done: &mut ChunkDone) {
        self(count);
    }
}

/// Why scheduling stopped without every chunk.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A chunk failed `max_tries` times.
    #[error("chunk {chunk} failed in {phase} after {tries} tries; last error: {message}")]
    ChunkFailed {
        /// Chunk.
        chunk: usize,
        /// Phase of the last failure ("unknown phase" if not known).
        phase: String,
        /// Tries made.
        tries: u32,
        /// Last error.
        message: String,
    },
    /// A chunk's attempts were throttled for longer than
    /// `throttle_timeout`.
    #[error("chunk {chunk} was throttled for {seconds:.0} s with no attempt getting through ({throttles} throttled attempts); last error: {message}")]
    Throttled {
        /// Chunk.
        chunk: usize,
        /// Seconds since its first throttled attempt in the streak.
        seconds: f64,
        /// Throttled attempts in the streak.
        throttles: u32,
        /// Last error.
        message: String,
    },
    /// A chunk's handed-on states were lost more often than `max_tries`.
    #[error("chunk {chunk}'s states were lost {times} times after it finished; last: {message}")]
    StateLost {
        /// Chunk.
        chunk: usize,
        /// How many times.
        times: u32,
        /// What was wrong the last time.
        message: String,
    },
    /// Cancelled (Ctrl-C).
    #[error("cancelled")]
    Cancelled,
}

/// Everything one scheduling run produced.
pub struct Schedule {
    /// Verified chunks, in order (`None` only if scheduling failed).
    pub chunks: Vec<Option<ChunkDone>>,
    /// Every attempt made.
    pub attempts: Vec<AttemptRecord>,
    /// Speculative twins launched.
    pub twins: usize,
}

/// The running attempts: each ends with (chunk, attempt, verified result).
type Attempts = JoinSet<(usize, u32, Result<(TaskResult, Vec<Vec<u8>>), AttemptError>)>;

/// Per-chunk bookkeeping.
#[derive(Default)]
struct Slot {
    failures: u32,
    throttles: u32,
    /// When the current run of throttled attempts began.
    throttled_since: Option<Instant>,
    next_attempt: u32,
    running: BTreeMap<u32, (AbortHandle, Instant)>,
    twin_launched: bool,
    done_at: Option<Instant>,
    last_error: Option<AttemptError>,
    /// Times the chunk ran again because a state it handed on was lost.
    regenerations: u32,
    /// When its predecessor's states were last checked for it.
    audited_at: Option<Instant>,
}

/// Fetches the chunk object a result names and checks it against the
/// result's checksum and frame count; records the result in the store so a
/// later `--resume` can reuse the chunk.
pub async fn verify(
    store: &dyn Store,
    result: &TaskResult,
    expected_frames: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let data = store
        .get(&result.chunk_key)
        .await
        .map_err(|e| format!("chunk object: {e}"))?;
    let sum = hex::encode(Sha256::digest(&data));
    if sum != result.chunk_sha256 {
        return Err(format!(
            "chunk object {} has SHA-256 {sum}, the worker reported {}",
            result.chunk_key, result.chunk_sha256
        ));
    }
    let frames = decode_chunk_object(&data)?;
    if frames.len() != expected_frames {
        return Err(format!(
            "chunk object {} has {} frames, expected {expected_frames}",
            result.chunk_key,
            frames.len()
        ));
    }
    Ok(frames)
}

/// Checks that the chunk object a result names is in the store with the
/// size it names, and that the result has `expected_frames` frames (see
/// [`SchedulerConfig::verify_in_store`]).
pub async fn verify_size(
    store: &dyn Store,
    result: &TaskResult,
    expected_frames: usize,
) -> Result<(), String> {
    if result.frames != expected_frames {
        return Err(format!(
            "the result names {} frames, expected {expected_frames}",
            result.frames
        ));
    }
    match store.size(&result.chunk_key).await {
        Ok(Some(n)) if n == result.chunk_bytes => Ok(()),
        Ok(Some(n)) => Err(format!(
            "chunk object {} has {n} bytes, the worker reported {}",
            result.chunk_key, result.chunk_bytes
        )),
        Ok(None) => Err(format!("chunk object {} is missing", result.chunk_key)),
        Err(e) => Err(format!("chunk object: {e}")),
    }
}

/// Runs `tasks` (one per chunk, `attempt` overwritten) on `backend`,
/// skipping chunks already in `reused`.
///
/// `faults` injects a fault into (chunk, attempt) (tests only; honoured by
/// workers built with `fault-injection`). `on_done` is told of each chunk
/// as it is done (and may take its frames). `cancel` flips to true on
/// Ctrl-C.
#[allow(clippy::too_many_arguments)]
pub async fn run_schedule(
    backend: Arc<dyn Backend>,
    store: Arc<dyn Store>,
    tasks: Vec<Task>,
    expected_frames: Vec<usize>,
    reused: Vec<Option<ChunkDone>>,
    cfg: &SchedulerConfig,
    faults: &HashMap<(usize, u32), excam_worker::task::Fault>,
    observer: &dyn Observer,
    on_done: &dyn DoneHook,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Schedule, (ScheduleError, Schedule)> {
    let n = tasks.len();
    // The job's graph: whose final state each chunk waits for.
    let graph = tasks
        .first()
        .and_then(|t| JobGraph::new(t.input.frames, t.chunk_frames, t.group_chunks).ok());
    let t0 = Instant::now();
    let mut slots: Vec<Slot> = (0..n).map(|_| Slot::default()).collect();
    let mut done: Vec<Option<ChunkDone>> = reused;
    done.resize_with(n, || None);
    // Chunks waiting to start, keyed by their place in the start order.
    let rank: Vec<usize> = {
        let order = graph
            .as_ref()
            .filter(|g| g.chunks() == n)
            .map_or_else(|| (0..n).collect(), JobGraph::launch_order);
        let mut rank = vec![0; n];
        for (k, &c) in order.iter().enumerate() {
            rank[c] = k;
        }
        rank
    };
    let mut pending: BTreeSet<(usize, usize)> = (0..n)
        .filter(|&i| done[i].is_none())
        .map(|i| (rank[i], i))
        .collect();
    let mut not_before: Vec<Instant> = vec![t0; n];
    let mut log = AttemptLog::default();
    let mut set: Attempts = JoinSet::new();
    let mut working_times: Vec<f64> = Vec::new();
    // Predecessor done to done, of chunks that were running by then.
    let mut tail_times: Vec<f64> = Vec::new();
    let mut running = 0usize;
    let mut twins = 0usize;
    let mut cancel_open = true;
    // Checks of done chunks' handed-on states: (chunk, attempt, verdict).
    let mut audits: JoinSet<(usize, u32, Result<(), String>)> = JoinSet::new();
    let done_count = |d: &[Option<ChunkDone>]| d.iter().filter(|c| c.is_some()).count();

    let finish = |log: AttemptLog, done: Vec<Option<ChunkDone>>, twins| Schedule {
        chunks: done,
        attempts: log.records,
        twins,
    };
    let launcher = Launcher {
        tasks: &tasks,
        expected_frames: &expected_frames,
        faults,
        backend: &backend,
        store: &store,
        cfg,
        observer,
    };

    loop {
        if done_count(&done) == n {
            break;
        }
        let now = Instant::now();
        let ramp = cfg
            .ramp_start
            .max(1)
            .saturating_mul(1usize << (now - t0).as_secs().min(20));
        let limit = cfg.max_concurrency.max(1).min(ramp);

        // Speculative twins first: a straggler holds up its successors.
        if let Some(median) = median_working(&working_times) {
            let deadline =
                Duration::from_secs_f64(median * cfg.straggler_factor).max(cfg.straggler_floor);
            let tail_deadline = if tail_times.len() >= 3 {
                median_working(&tail_times).map_or(deadline, |m| {
                    Duration::from_secs_f64(m * cfg.straggler_factor).max(cfg.straggler_floor)
                })
            } else {
                deadline
            };
            for c in 0..n {
                if running >= limit {
                    break;
                }
                let s = &slots[c];
                if done[c].is_some() || s.twin_launched || s.running.len() != 1 {
                    continue;
                }
                let (_, started) = s.running.values().next().expect("one running");
                // Time spent waiting for the predecessor is not the task's
                // fault: count from when that predecessor finished.
                let pred_done = match graph.and_then(|g| g.chain_pred(c)) {
                    None => Some((*started, deadline)),
                    Some(p) if done[p].is_some() => {
                        let p_done = slots[p].done_at.unwrap_or(t0);
                        // Started after its predecessor finished: the whole
                        // task is left, not a tail.
                        if p_done > *started {
                            Some((p_done, tail_deadline))
                        } else {
                            Some((*started, deadline))
                        }
                    }
                    Some(_) => None,
                };
                if let Some((from, deadline)) = pred_done {
                    if now.duration_since(from) > deadline {
                        slots[c].twin_launched = true;
                        twins += 1;
                        launcher.launch(c, true, &mut slots, &mut set, &mut log, &mut running);
                    }
                }
            }
        }

        // A chunk still running long after its predecessor finished may be
        // waiting for a state that was lost after it was written: check the
        // predecessor's objects (see `state_audit`).
        let audit_after = median_working(&working_times).map_or(cfg.straggler_floor, |m| {
            Duration::from_secs_f64(m * cfg.straggler_factor).max(cfg.straggler_floor)
        });
        for c in 0..n {
            let Some(p) = graph.as_ref().and_then(|g| g.chain_pred(c)) else {
                continue;
            };
            let Some(pd) = &done[p] else { continue };
            let p_at = slots[p].done_at.unwrap_or(t0);
            let s = &slots[c];
            let due = |at: Instant| now.duration_since(at) > audit_after;
            if done[c].is_some()
                || s.running.is_empty()
                || !due(p_at)
                || s.audited_at.is_some_and(|a| !due(a))
            {
                continue;
            }
            slots[c].audited_at = Some(now);
            let (store, task, result) = (store.clone(), tasks[p].clone(), pd.result.clone());
            audits.spawn(async move {
                let verdict = state_audit::check_handoffs(store.as_ref(), &task, &result).await;
                (p, result.attempt, verdict)
            });
        }

        // Then new tries, lowest chunk first; a chunk in backoff keeps a
        // slot reserved so no higher chunk takes it.
        let mut reserved = 0usize;
        let ready: Vec<usize> = pending.iter().map(|&(_, c)| c).collect();
        for c in ready {
            if running + reserved >= limit {
                break;
            }
            if not_before[c] > now {
                reserved += 1;
                continue;
            }
            pending.remove(&(rank[c], c));
            launcher.launch(c, false, &mut slots, &mut set, &mut log, &mut running);
        }

        let joined = tokio::select! {
            j = set.join_next(), if !set.is_empty() => j,
            a = audits.join_next(), if !audits.is_empty() => {
                let Some(Ok((p, attempt, Err(reason)))) = a else { continue };
                // Act only if the result checked is still the one in use.
                if done[p].as_ref().map(|d| d.result.attempt) != Some(attempt) {
                    continue;
                }
                observer.event(&Event::Regenerating { chunk: p, reason: &reason }, running);
                let s = &mut slots[p];
                s.regenerations += 1;
                if s.regenerations > cfg.max_tries.max(1) {
                    let err = ScheduleError::StateLost {
                        chunk: p,
                        times: s.regenerations,
                        message: reason,
                    };
                    log.cancel_open(Instant::now());
                    set.shutdown().await;
                    return Err((err, finish(log, done, twins)));
                }
                done[p] = None;
                s.done_at = None;
                s.twin_launched = false;
                not_before[p] = Instant::now();
                pending.insert((rank[p], p));
                None
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => None,
            changed = cancel.changed(), if cancel_open => {
                // A dropped sender can never cancel: stop listening to it.
                cancel_open = changed.is_ok();
                if cancel_open && *cancel.borrow() {
                    let end = Instant::now();
                    log.cancel_open(end);
                    set.shutdown().await;
                    return Err((ScheduleError::Cancelled, finish(log, done, twins)));
                }
                None
            }
        };
        let Some(joined) = joined else { continue };
        let Ok((c, attempt, res)) = joined else {
            // Aborted attempts were accounted for when aborted.
            continue;
        };
        let Some((_, _)) = slots[c].running.remove(&attempt) else {
            continue;
        };
        running -= 1;
        let rec = log.get_mut(c, attempt);
        rec.end = Some(Instant::now());
        match res {
            Ok((result, frames)) if done[c].is_none() => {
                rec.outcome = Some(Outcome::Ok);
                rec.result = Some(result.clone());
                let wait: f64 = result.phases.iter().map(|p| p.wait_seconds).sum();
                working_times.push((result.total_seconds - wait).max(0.0));
                let now = Instant::now();
                if let Some(p) = graph.as_ref().and_then(|g| g.chain_pred(c)) {
                    let started = log.get_mut(c, attempt).start;
                    if let Some(p_done) = slots[p].done_at.filter(|&d| d > started) {
                        tail_times.push(now.duration_since(p_done).as_secs_f64());
                    }
                }
                slots[c].done_at = Some(now);
                // The race is over: stop the other attempts of this chunk.
                let losers: Vec<(u32, AbortHandle)> = std::mem::take(&mut slots[c].running)
                    .into_iter()
                    .map(|(a, (h, _))| (a, h))
                    .collect();
                for (a, h) in losers {
                    h.abort();
                    running -= 1;
                    let r = log.get_mut(c, a);
                    r.end = Some(Instant::now());
                    r.outcome = Some(Outcome::LostRace);
                    observer.event(
                        &Event::LostRace {
                            chunk: c,
                            attempt: a,
                        },
                        running,
                    );
                }
                observer.event(
                    &Event::Done {
                        chunk: c,
                        result: &result,
                    },
                    running,
                );
                let mut chunk = ChunkDone {
                    result,
                    frames,
                    reused: false,
                };
                let count = done_count(&done) + 1;
                on_done.done(count, c, &mut chunk);
                done[c] = Some(chunk);
            }
            Ok((result, _)) => {
                rec.outcome = Some(Outcome::LostRace);
                rec.result = Some(result);
            }
            Err(e) => {
                rec.outcome = Some(Outcome::Failed { kind: e.kind });
                rec.error = Some(e.message.clone());
                rec.phase = e.phase;
                observer.event(
                    &Event::Failed {
                        chunk: c,
                        attempt,
                        error: &e,
                    },
                    running,
                );
                let s = &mut slots[c];
                let backoff = if e.kind == FailureKind::Throttled {
                    s.throttles += 1;
                    s.throttled_since.get_or_insert(rec.start);
                    0.2 * 2f64.powi(s.throttles.min(6) as i32)
                } else {
                    s.failures += 1;
                    s.throttles = 0;
                    s.throttled_since = None;
                    0.25 * 2f64.powi(s.failures.min(5) as i32 - 1)
                };
                s.last_error = Some(e);
                if done[c].is_some() || !s.running.is_empty() {
                    continue;
                }
                let throttled_for = s.throttled_since.map(|t| t.elapsed());
                if throttled_for.is_some_and(|t| t >= cfg.throttle_timeout) {
                    let err = ScheduleError::Throttled {
                        chunk: c,
                        seconds: throttled_for.unwrap_or_default().as_secs_f64(),
                        throttles: s.throttles,
                        message: s.last_error.clone().expect("just set").message,
                    };
                    log.cancel_open(Instant::now());
                    set.shutdown().await;
                    return Err((err, finish(log, done, twins)));
                }
                if s.failures >= cfg.max_tries.max(1) {
                    let last = s.last_error.clone().expect("just set");
                    let err = ScheduleError::ChunkFailed {
                        chunk: c,
                        phase: last
                            .phase
                            .map_or_else(|| "an unknown phase".to_string(), |p| p.to_string()),
                        tries: s.failures,
                        message: last.message,
                    };
                    let end = Instant::now();
                    log.cancel_open(end);
                    set.shutdown().await;
                    return Err((err, finish(log, done, twins)));
                }
                // Jitter spreads retries of many chunks failing together.
                let jitter = rand::random::<f64>() * 0.1;
                not_before[c] = Instant::now() + Duration::from_secs_f64(backoff + jitter);
                s.twin_launched = false;
                pending.insert((rank[c], c));
            }
        }
    }
    set.shutdown().await;
    Ok(finish(log, done, twins))
}

/// The median of the finished attempts' working times, if any finished.
fn median_working(times: &[f64]) -> Option<f64> {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// Every attempt on record, found by (chunk, attempt).
#[derive(Default)]
struct AttemptLog {
    records: Vec<AttemptRecord>,
    index: HashMap<(usize, u32), usize>,
}

impl AttemptLog {
    fn push(&mut self, r: AttemptRecord) {
        self.index.insert((r.chunk, r.attempt), self.records.len());
        self.records.push(r);
    }

    fn get_mut(&mut self, chunk: usize, attempt: u32) -> &mut AttemptRecord {
        &mut self.records[self.index[&(chunk, attempt)]]
    }

    /// Marks every attempt still open as cancelled at `end`.
    fn cancel_open(&mut self, end: Instant) {
        for r in self.records.iter_mut().filter(|r| r.end.is_none()) {
            r.end = Some(end);
            r.outcome = Some(Outcome::Cancelled);
        }
    }
}

/// What every attempt is started from: fixed for the whole schedule.
struct Launcher<'a> {
    tasks: &'a [Task],
    expected_frames: &'a [usize],
    faults: &'a HashMap<(usize, u32), excam_worker::task::Fault>,
    backend: &'a Arc<dyn Backend>,
    store: &'a Arc<dyn Store>,
    cfg: &'a SchedulerConfig,
    observer: &'a dyn Observer,
}

impl Launcher<'_> {
    /// Starts one attempt of chunk `c`.
    fn launch(
        &self,
        c: usize,
        speculative: bool,
        slots: &mut [Slot],
        set: &mut Attempts,
        log: &mut AttemptLog,
        running: &mut usize,
    ) {
        let Launcher {
            tasks,
            expected_frames,
            faults,
            backend,
            store,
            cfg,
            observer,
        } = *self;
        let s = &mut slots[c];
        s.next_attempt += 1;
        let attempt = s.next_attempt;
        let mut task = tasks[c].clone();
        task.attempt = attempt;
        task.fault = faults.get(&(c, attempt)).cloned();
        let (task_job, task_run) = (task.job.clone(), task.run.clone());
        let backend = backend.clone();
        let store = store.clone();
        let timeout = cfg.task_timeout;
        let in_store = cfg.verify_in_store;
        let expected = expected_frames[c];
        let handle = set.spawn(async move {
            let run = async {
                let result = backend.run(task).await?;
                if result.chunk != c || result.job != task_job || result.run != task_run {
                    return Err(AttemptError::new(
                        FailureKind::BadResult,
                        format!(
                            "answer is for job {:.16} run {} chunk {}, not job {task_job:.16} \
                             run {task_run} chunk {c}",
                            result.job, result.run, result.chunk
                        ),
                    ));
                }
                let checked = if in_store {
                    verify_size(store.as_ref(), &result, expected)
                        .await
                        .map(|()| Vec::new())
                } else {
                    verify(store.as_ref(), &result, expected).await
                };
                let frames = checked.map_err(|m| AttemptError {
                    kind: FailureKind::BadResult,
                    phase: Some(Phase::Rebase),
                    message: m,
                })?;
                let record = serde_json::to_vec(&result).unwrap_or_default();
                // Best effort: only `--resume` needs it, and it re-verifies.
                let _ = store
                    .put(&result_key(&result.job, c), bytes::Bytes::from(record))
                    .await;
                Ok((result, frames))
            };
            let res = match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) => Err(AttemptError::new(
                    FailureKind::Timeout,
                    format!("no answer within {:.0} s", timeout.as_secs_f64()),
                )),
            };
            (c, attempt, res)
        });
        let now = Instant::now();
        s.running.insert(attempt, (handle, now));
        *running += 1;
        log.push(AttemptRecord {
            chunk: c,
            attempt,
            speculative,
            start: now,
            end: None,
            outcome: None,
            error: None,
            phase: None,
            result: None,
        });
        observer.event(
            &Event::Launched {
                chunk: c,
                attempt,
                speculative,
            },
            *running,
        );
    }
}

#[cfg(test)]
mod tests;
