//! Runs one [`Task`]: the three phases of one chunk, with states handed
//! through the relay (fast) and the store (durable), checkpoints to resume
//! a retried attempt, and a content-addressed chunk object as output.
//!
//! A task walks its chunk's nodes of the [`JobGraph`] and runs each
//! through [`JobGraph::run_node`], as every other walk of the graph does,
//! so the bytes of a chunk depend only on its input, the codec settings
//! and the state it is handed. That makes every write idempotent: a retried or
//! speculative twin writes the same bytes to the same places.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::wire::{decode_state_for, encode_state, state_digest, Compression};
use excam_codec::{DecoderState, Image};
use excam_rendezvous::ClientError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::chunk::{replay, ChunkError, ChunkPlan, Coded, Phase};
use crate::graph::{HandOff, JobGraph, Node};
use crate::input::read_frames;
use crate::keys;
use crate::store::{open_store, Store, StoreError};
use crate::task::{PhaseReport, Task, TaskResult, TASK_VERSION};

mod faults;
mod merge;
mod relay_link;
mod serial;

use faults::{inject_fault, lose_state};
use relay_link::RelayLink;
pub use serial::encode_serially;

/// How long one relay `get` waits before the store is looked at.
const RELAY_SLICE: Duration = Duration::from_secs(2);
/// How long the relay client keeps reconnecting before the worker gives up
/// on the relay and uses the store alone.
const RELAY_RETRY: Duration = Duration::from_secs(10);
/// Longest pause between two looks at the store when there is no relay.
const STORE_POLL_MAX: Duration = Duration::from_secs(1);

/// Why a task failed: the phase (`None`: before phase 1, e.g. a bad task,
/// the store or the input) and what happened.
///
/// Serialized as `{"error": "...", "phase": "encode" | "encode_given_state"
/// | "rebase" | null}`, what the binary prints on failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// Phase it failed in.
    pub phase: Option<Phase>,
    /// What happened.
    #[serde(rename = "error")]
    pub message: String,
}

impl TaskError {
    /// An error in `phase`.
    pub fn new(phase: Option<Phase>, message: impl Into<String>) -> TaskError {
        TaskError {
            phase,
            message: message.into(),
        }
    }

    /// The error as one line of JSON (`{"error": ..., "phase": ...}`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a task error serializes")
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.phase {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => write!(f, "setup: {}", self.message),
        }
    }
}

impl std::error::Error for TaskError {}

/// Who runs this process: `hostname:pid`.
pub fn local_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}", std::process::id())
}

/// Runs all phases of `task` and returns its result (also stored under
/// [`keys::result`]). The worker id is [`local_worker_id`].
///
/// # Errors
/// A [`TaskError`] naming the phase that failed.
pub async fn run_task(task: Task) -> Result<TaskResult, TaskError> {
    run_task_as(task, local_worker_id()).await
}

/// [`run_task`] with an explicit worker id (a Lambda function passes its
/// request id).
///
/// # Errors
/// A [`TaskError`] naming the phase that failed.
pub async fn run_task_as(task: Task, worker: String) -> Result<TaskResult, TaskError> {
    let chunk = task.chunk;
    let job = task.job.clone();
    let attempt = task.attempt;
    if let Some(m) = &task.merge {
        info!(job = %job, chunk, attempt, worker = %worker, "merge starts");
        return merge::run_merge(&task, m, worker).await;
    }
    info!(job = %job, chunk, attempt, worker = %worker, "task starts");
    let mut run = Run::setup(task).await?;
    let out = run.execute(worker).await;
    run.relay.close().await;
    match &out {
        Ok(r) => info!(
            job = %job,
            chunk,
            attempt,
            seconds = r.total_seconds,
            "task done: {} frames, {} bytes",
            r.frames,
            r.chunk_bytes
        ),
        Err(e) => warn!(job = %job, chunk, attempt, "task failed: {e}"),
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn setup_err(message: impl Into<String>) -> TaskError {
    TaskError::new(None, message)
}

fn chunk_err(e: ChunkError) -> TaskError {
    let phase = match &e {
        ChunkError::Encode { phase, .. }
        | ChunkError::Rebase { phase, .. }
        | ChunkError::Replay { phase, .. }
        | ChunkError::ReplaySize { phase, .. }
        | ChunkError::Encoder { phase, .. } => *phase,
    };
    TaskError::new(Some(phase), e.to_string())
}

/// Checks the parts of a task that do not need the store.
fn validate(task: &Task) -> Result<(), TaskError> {
    if task.version != TASK_VERSION {
        return Err(setup_err(format!(
            "task format version {} is not supported (this worker runs version {TASK_VERSION})",
            task.version
        )));
    }
    if task.chunk_frames == 0 || task.group_chunks == 0 {
        return Err(setup_err(
            "chunk_frames and group_chunks must be at least 1",
        ));
    }
    let chunks = task.input.frames.div_ceil(task.chunk_frames);
    if task.chunks != chunks {
        return Err(setup_err(format!(
            "{} chunks given, but {} frames in chunks of {} make {chunks}",
            task.chunks, task.input.frames, task.chunk_frames
        )));
    }
    if task.chunk >= task.chunks {
        return Err(setup_err(format!(
            "chunk {} out of range (job has {})",
            task.chunk, task.chunks
        )));
    }
    if !(task.wait_timeout_s.is_finite() && task.wait_timeout_s >= 0.0) {
        return Err(setup_err("wait_timeout_s must be a non-negative number"));
    }
    Ok(())
}

/// A task being run.
struct Run {
    task: Task,
    plan: ChunkPlan,
    cfg: EncoderConfig,
    store: Arc<dyn Store>,
    relay: RelayLink,
    started: Instant,
}

impl Run {
    async fn setup(task: Task) -> Result<Run, TaskError> {
        let started = Instant::now();
        validate(&task)?;
        let cfg = task
            .codec
            .to_config()
            .map_err(|e| setup_err(format!("codec parameters: {e}")))?;
        let store = open_store(&task.store)
            .await
            .map_err(|e| setup_err(format!("store: {e}")))?;
        #[cfg(feature = "fault-injection")]
        let store = match crate::chaos::Chaos::from_env().map_err(setup_err)? {
            Some(chaos) => chaos.wrap(store),
            None => store,
        };
        let relay = RelayLink::start(task.relay.as_ref())?;
        Ok(Run {
            plan: task.plan(),
            task,
            cfg,
            store,
            relay,
            started,
        })
    }

    fn job(&self) -> &str {
        &self.task.job
    }

    fn run(&self) -> &str {
        &self.task.run
    }

    fn index(&self) -> usize {
        self.task.chunk
    }

    async fn execute(&mut self, worker: String) -> Result<TaskResult, TaskError> {
        let i = self.index();
        let len = self.plan.len(self.task.input.frames);
        let frames = read_frames(
            self.store.as_ref(),
            &self.task.input,
            self.cfg.width,
            self.cfg.height,
            self.plan.first_frame(),
            len,
        )
        .await
        .map_err(|e| setup_err(e.to_string()))?;
        let input = ChunkInput {
            digest: keys::frames_digest(&frames),
            frames: Arc::new(frames),
        };
        let graph = JobGraph::new(
            self.task.input.frames,
            self.task.chunk_frames,
            self.task.group_chunks,
        )
        .map_err(|e| setup_err(e.to_string()))?;
        let mut phases = Vec::with_capacity(3);
        let mut phase1_state = None;
        let mut source_state = [0u8; 32];

        // The chunk's nodes of the job graph in phase order, each given
        // its own previous output and the hand-off it awaits: phase 1 from
        // a key frame; for a non-head, phase 2 (its first frame again,
        // given the predecessor's phase-1 state) and phase 3 (rebased onto
        // the predecessor's true final state).
        let mut own: Option<Coded> = None;
        let mut report: Option<PhaseTimer> = None;
        for node in graph.chunk_nodes(i) {
            let phase = node.phase;
            if let Some(r) = report.take() {
                phases.push(r.finish());
            }
            let mut timer = PhaseTimer::start(phase);
            inject_fault(&self.task, phase).await?;
            let pred = match graph.awaits(node) {
                None => None,
                Some((from, hand_off)) => {
                    let (mailbox, key) = self.hand_off_keys(hand_off, from);
                    let (state, waited) = self.wait_state(phase, &mailbox, &key).await?;
                    timer.received(waited);
                    Some(state)
                }
            };
            if phase == Phase::Rebase {
                source_state = pred.as_ref().map(state_digest).unwrap_or_default();
            }
            let coded = self
                .run_node(&graph, node, &input, own.take(), pred, &mut timer)
                .await?;
            if phase == Phase::Encode && self.plan.hands_on() {
                timer.handoff_unix_s = Some(unix_now());
                let wire = encode_state(&coded.final_state, Compression::Lz4);
                let (mailbox, key) = self.hand_off_keys(HandOff::Phase1, i);
                self.put_state(phase, &mailbox, &key, Bytes::from(wire))
                    .await?;
                phase1_state = Some(hex::encode(state_digest(&coded.final_state)));
            }
            own = Some(coded);
            report = Some(timer);
        }
        let coded = own.expect("every chunk has a phase-1 node");

        // Handing the final state on and storing the chunk is reported as
        // phase 3, also for a head, whose phase-1 output is already final.
        let phase = Phase::Rebase;
        let mut report = match report.expect("every chunk has a phase-1 node") {
            r if r.phase == phase => r,
            r => {
                phases.push(r.finish());
                let r = PhaseTimer::start(phase);
                inject_fault(&self.task, phase).await?;
                r
            }
        };
        let state_bytes = if self.plan.hands_on() {
            report.handoff_unix_s = Some(unix_now());
            let wire = encode_state(&coded.final_state, Compression::Lz4);
            let raw = encode_state(&coded.final_state, Compression::None).len() as u64;
            let sizes = (wire.len() as u64, raw);
            let (mailbox, key) = self.hand_off_keys(HandOff::Final, i);
            self.put_state(phase, &mailbox, &key, Bytes::from(wire))
                .await?;
            Some(sizes)
        } else {
            None
        };
        let final_state = hex::encode(state_digest(&coded.final_state));
        let object = Bytes::from(keys::encode_frames(&coded.frames));
        let chunk_sha = hex::encode(Sha256::digest(&object));
        let cache = keys::cache_key(&self.task.codec, &self.plan, &input.digest, &source_state);
        let chunk_key = keys::chunk_object(self.job(), &cache);
        self.put_chunk(phase, &chunk_key, object.clone()).await?;
        phases.push(report.finish());

        let result = TaskResult {
            version: TASK_VERSION,
            job: self.task.job.clone(),
            run: self.task.run.clone(),
            chunk: i,
            attempt: self.task.attempt,
            chunk_key,
            chunk_sha256: chunk_sha,
            chunk_bytes: object.len() as u64,
            frames: coded.frames.len(),
            source_state: hex::encode(source_state),
            final_state,
            phase1_state,
            phases,
            state_bytes,
            worker,
            total_seconds: self.started.elapsed().as_secs_f64(),
            key_frames: None,
        };
        let json = serde_json::to_vec(&result).expect("a task result serializes");
        self.put(phase, &keys::result(self.job(), i), json).await?;
        Ok(result)
    }

    /// The relay mailbox and the store key of `chunk`'s hand-off.
    fn hand_off_keys(&self, hand_off: HandOff, chunk: usize) -> (String, String) {
        match hand_off {
            HandOff::Phase1 => (
                keys::mailbox_phase1(self.run(), chunk),
                keys::state_phase1(self.job(), self.run(), chunk),
            ),
            HandOff::Final => (
                keys::mailbox_final(self.run(), chunk),
                keys::state_final(self.job(), self.run(), chunk),
            ),
        }
    }

    /// Runs one of the chunk's nodes ([`JobGraph::run_node`]) off the
    /// async threads, or replays its checkpoint if a previous attempt left
    /// one made from the same settings, input and given state. Phases 1
    /// and 2 are checkpointed (phase 3's output is the chunk object).
    async fn run_node(
        &self,
        graph: &JobGraph,
        node: Node,
        input: &ChunkInput,
        own: Option<Coded>,
        pred: Option<DecoderState>,
        timer: &mut PhaseTimer,
    ) -> Result<Coded, TaskError> {
        let (i, phase) = (node.chunk, node.phase);
        let ckpt = match phase {
            Phase::Encode => Some(keys::ckpt_phase1(self.job(), i)),
            Phase::EncodeGivenState => Some(keys::ckpt_phase2(self.job(), i)),
            Phase::Rebase => None,
        };
        let mut context = None;
        if let Some(ckpt) = &ckpt {
            let given = pred.as_ref().map(state_digest).unwrap_or_default();
            let c = keys::cache_digest(&self.task.codec, &self.plan, &input.digest, &given);
            let start = pred.clone().unwrap_or_default();
            let len = input.frames.len();
            if let Some(coded) = self.load_checkpoint(ckpt, &c, start, phase, len).await {
                timer.from_checkpoint = true;
                return Ok(coded);
            }
            context = Some(c);
        }
        let (graph, cfg, f) = (*graph, self.cfg.clone(), input.frames.clone());
        let coded = blocking(phase, move || {
            graph.run_node(node, &cfg, &f, own.as_ref(), pred)
        })
        .await?;
        if let (Some(ckpt), Some(context)) = (ckpt, context) {
            let object = keys::encode_checkpoint(&context, &coded.frames);
            self.put(phase, &ckpt, object).await?;
        }
        Ok(coded)
    }

    async fn put(&self, phase: Phase, key: &str, data: Vec<u8>) -> Result<(), TaskError> {
        self.store
            .put(key, Bytes::from(data))
            .await
            .map_err(|e| TaskError::new(Some(phase), format!("store: {e}")))
    }

    /// Writes the chunk object unless an identical one is already there
    /// (a previous attempt or a twin wrote it: same key, same bytes).
    async fn put_chunk(&self, phase: Phase, key: &str, data: Bytes) -> Result<(), TaskError> {
        if self.store.size(key).await.ok().flatten() == Some(data.len() as u64) {
            match self.store.get(key).await {
                Ok(existing) if existing == data => {
                    debug!(key, "identical chunk object already stored");
                    return Ok(());
                }
                Ok(_) => warn!(
                    key,
                    "chunk object differs from this attempt's; replacing it"
                ),
                Err(e) => debug!(key, "existing chunk object unusable ({e}); replacing it"),
            }
        }
        self.store
            .put(key, data)
            .await
            .map_err(|e| TaskError::new(Some(phase), format!("store: {e}")))
    }

    /// Replays a checkpoint if one is stored, verifies, was made from
    /// `context` and decodes from `start`: the phase's output without
    /// recomputing it. Anything wrong with it means recomputing.
    async fn load_checkpoint(
        &self,
        key: &str,
        context: &[u8; 32],
        start: DecoderState,
        phase: Phase,
        len: usize,
    ) -> Option<Coded> {
        let bytes = match self.store.get(key).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) => return None,
            Err(e) => {
                warn!(key, "checkpoint unusable, recomputing: {e}");
                return None;
            }
        };
        let frames = match keys::decode_checkpoint(&bytes) {
            Ok((c, _)) if c != *context => {
                warn!(
                    key,
                    "checkpoint was made with other settings or input; recomputing"
                );
                return None;
            }
            Ok((_, f)) if f.len() == len => f,
            Ok((_, f)) => {
                warn!(
                    key,
                    "checkpoint has {} frames, expected {len}; recomputing",
                    f.len()
                );
                return None;
            }
            Err(e) => {
                warn!(key, "checkpoint unusable, recomputing: {e}");
                return None;
            }
        };
        let size = (self.task.codec.width, self.task.codec.height);
        match tokio::task::spawn_blocking(move || replay(phase, start, frames, size)).await {
            Ok(Ok(c)) => {
                info!(key, "resumed {phase} from its checkpoint");
                Some(c)
            }
            Ok(Err(e)) => {
                warn!(key, "checkpoint does not replay, recomputing: {e}");
                None
            }
            Err(e) => {
                warn!(key, "checkpoint replay failed, recomputing: {e}");
                None
            }
        }
    }

    /// Hands a state on: to the relay (the successor is likely waiting
    /// there) and the store (durable; the successor falls back to it). The
    /// relay put is sent first; the store put runs alongside it, so a relay
    /// that is slow or unreachable never delays the durable copy. Both are
    /// written once: a mailbox or object already holding other bytes fails
    /// the task rather than being replaced under a successor that may have
    /// read it.
    async fn put_state(
        &self,
        phase: Phase,
        mailbox: &str,
        key: &str,
        wire: Bytes,
    ) -> Result<(), TaskError> {
        if lose_state(&self.task, phase) {
            return Ok(());
        }
        let (relayed, stored) = tokio::join!(
            self.put_relay(phase, mailbox, wire.clone()),
            self.store.put_once(key, wire)
        );
        relayed?;
        stored.map_err(|e| TaskError::new(Some(phase), format!("store: {e}")))
    }

    /// Puts a state in a relay mailbox, if there is a relay. Only answers
    /// that mean the job is broken fail the task; the store carries the
    /// state otherwise.
    async fn put_relay(&self, phase: Phase, mailbox: &str, wire: Bytes) -> Result<(), TaskError> {
        if let Some(client) = self.relay.client().await {
            match client.put(mailbox, wire).await {
                Ok(()) => {}
                Err(ClientError::Conflict(_)) => {
                    return Err(TaskError::new(
                        Some(phase),
                        format!(
                            "relay mailbox {mailbox:?} already holds different bytes: \
                             this chunk's output is not deterministic, or another job \
                             uses the same job id"
                        ),
                    ))
                }
                Err(ClientError::JobEnded) => {
                    return Err(TaskError::new(
                        Some(phase),
                        "the job has ended on the relay (cancelled)",
                    ))
                }
                Err(e @ ClientError::Unavailable(_)) => {
                    self.relay.drop_relay(&e.to_string()).await;
                }
                Err(e) => warn!(mailbox, "relay put failed, the store has the state: {e}"),
            }
        }
        Ok(())
    }

    /// Reads a predecessor's state, which must be of this job's frame size:
    /// a hostile or mistaken state can then make this worker allocate no
    /// more than about three of its own pictures.
    fn read_state(&self, bytes: &[u8]) -> Result<DecoderState, excam_codec::wire::StateError> {
        let dim = |d: usize| u16::try_from(d).unwrap_or(u16::MAX);
        decode_state_for(
            bytes,
            dim(self.task.codec.width),
            dim(self.task.codec.height),
        )
    }

    /// Waits for a predecessor's state: from the relay in short waits,
    /// looking at the store between them (a relay restarted mid-job has
    /// lost its mailboxes; the store always gets the state), until the
    /// task's `wait_timeout_s`. Returns the state and the seconds waited.
    async fn wait_state(
        &self,
        phase: Phase,
        mailbox: &str,
        key: &str,
    ) -> Result<(DecoderState, f64), TaskError> {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(self.task.wait_timeout_s);
        let mut poll = Duration::from_millis(20);
        loop {
            let mut used_relay = false;
            // Whether the relay waited out its slice: one that answers at
            // once (an evicted mailbox, an error) must not turn this loop
            // into a busy poll of the store.
            let mut relay_waited = false;
            if let Some(client) = self.relay.client().await {
                used_relay = true;
                let slice = RELAY_SLICE.min(deadline.saturating_duration_since(Instant::now()));
                let asked = Instant::now();
                match client
                    .get(mailbox, slice.max(Duration::from_millis(1)))
                    .await
                {
                    Ok(bytes) => match self.read_state(&bytes) {
                        Ok(s) => {
                            debug!(mailbox, "state from the relay");
                            return Ok((s, start.elapsed().as_secs_f64()));
                        }
                        Err(e) => warn!(mailbox, "unreadable state on the relay: {e}"),
                    },
                    Err(ClientError::Timeout(_)) => relay_waited = asked.elapsed() >= slice / 2,
                    Err(ClientError::Evicted(_)) => {}
                    Err(ClientError::JobEnded) => {
                        return Err(TaskError::new(
                            Some(phase),
                            "the job has ended on the relay (cancelled)",
                        ))
                    }
                    Err(e) => self.relay.drop_relay(&e.to_string()).await,
                }
            }
            match self.store.get(key).await {
                Ok(bytes) => {
                    let s = self.read_state(&bytes).map_err(|e| {
                        TaskError::new(Some(phase), format!("state {key} unreadable: {e}"))
                    })?;
                    debug!(key, "state from the store");
                    return Ok((s, start.elapsed().as_secs_f64()));
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => warn!(key, "cannot read state yet: {e}"),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TaskError::new(
                    Some(phase),
                    format!(
                        "timed out after {:.1} s waiting for the predecessor's state \
                         ({key}{})",
                        start.elapsed().as_secs_f64(),
                        if used_relay {
                            format!(", relay mailbox {mailbox}")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            if !relay_waited {
                tokio::time::sleep(poll.min(deadline - now)).await;
                poll = (poll * 2).min(STORE_POLL_MAX);
            }
        }
    }
}

/// A chunk's input frames and their digest ([`keys::frames_digest`]).
struct ChunkInput {
    frames: Arc<Vec<Image>>,
    digest: [u8; 32],
}

/// Runs CPU-bound coding off the async threads (the relay connection and
/// other tasks in the process keep running).
async fn blocking<F>(phase: Phase, f: F) -> Result<Coded, TaskError>
where
    F: FnOnce() -> Result<Coded, ChunkError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaskError::new(Some(phase), format!("coding thread failed: {e}")))?
        .map_err(chunk_err)
}

struct PhaseTimer {
    phase: Phase,
    start_unix_s: f64,
    start: Instant,
    wait_seconds: f64,
    from_checkpoint: bool,
    handoff_unix_s: Option<f64>,
    received_unix_s: Option<f64>,
}

impl PhaseTimer {
    fn start(phase: Phase) -> PhaseTimer {
        PhaseTimer {
            phase,
            start_unix_s: unix_now(),
            start: Instant::now(),
            wait_seconds: 0.0,
            from_checkpoint: false,
            handoff_unix_s: None,
            received_unix_s: None,
        }
    }

    /// Records a predecessor's state received after `waited` seconds.
    fn received(&mut self, waited: f64) {
        self.wait_seconds = waited;
        self.received_unix_s = Some(unix_now());
    }

    fn finish(self) -> PhaseReport {
        PhaseReport {
            phase: self.phase,
            start_unix_s: self.start_unix_s,
            seconds: self.start.elapsed().as_secs_f64(),
            wait_seconds: self.wait_seconds,
            from_checkpoint: self.from_checkpoint,
            handoff_unix_s: self.handoff_unix_s,
            received_unix_s: self.received_unix_s,
        }
    }
}
