//! A discrete-event simulation of one ExCamera\[N,x\] job.
//!
//! Every chunk is a task; every try at a task (first run, retry,
//! speculative twin) is an *attempt* that walks the same twelve steps a
//! worker does: start up, fetch its frames, phase 1, send its phase-1
//! state, wait for the predecessor's phase-1 state, phase 2, wait for the
//! predecessor's true final state, phase 3, send its own, write the chunk.
//! Steps are delays (start-up, S3), CPU work (coding, (de)serializing
//! states) or waits on a predecessor's state. A state travels two ways at
//! once, as the worker sends it: through the store (a PUT and a GET, each
//! `s3_latency + bytes / s3_throughput`, plus the receiver's polling
//! delay) and, when the relay is in use, has room for it and the sender
//! holds one of its connection slots, through the relay. The relay is a
//! server of finite capacity: the hops in flight share it equally, each at
//! most at one connection's throughput (processor sharing, with a work
//! clock like the CPU's below), and the state arrives `relay_latency`
//! after its bytes are through. The receiver takes whichever comes first.
//!
//! Lambda's scaling rate limits how many workers run: `scale_step` more
//! execution environments every `scale_period` seconds, up to the
//! concurrency cap. The coordinator fetches each chunk as soon as its task
//! is done, over its own link, and writes it to the output once every
//! chunk before it is written (streamed assembly). With the output in S3
//! the chunks never cross that link: each run of consecutive chunks of at
//! least the minimum part size is merged by a worker once its chunks are
//! done (start-up, a GET per chunk, a PUT) and copied into the multipart
//! upload (`UploadPartCopy`); the upload completes after the last part.
//!
//! CPU work is measured in seconds of the calibrating machine and
//! progresses at the worker's speed; when `machine_cores > 0` the workers
//! computing at any moment share the cores equally (processor sharing), so
//! the simulation keeps one "work clock" that advances at the shared rate
//! and every CPU step ends when the clock reaches its target.
//!
//! Random draws (start-up time, straggler slowdown, failure) are made per
//! attempt from a generator seeded by (seed, chunk, attempt number), so
//! two plans that differ in one parameter see the same workers (common
//! random numbers): comparisons between them are not drowned in noise.

mod engine;

use serde::Serialize;

/// What a stretch of the critical path is spent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cat {
    /// The coordinator uploading the input.
    Upload,
    /// Waiting to be invoked (ramp-up, concurrency cap).
    Queue,
    /// Worker start-up (cold start).
    Startup,
    /// Fetching the chunk's frames.
    Fetch,
    /// Phase 1: encoding from a key frame.
    Encode,
    /// Phase 2: encode given the predecessor's phase-1 state, rebase.
    GivenState,
    /// Phase 3: encode given the true state, rebase.
    Rebase,
    /// States: serializing, relaying, deserializing.
    Relay,
    /// Waiting for a retry or a speculative twin to start.
    Retry,
    /// Writing the chunk.
    Output,
    /// The coordinator assembling the output.
    Assembly,
}

impl Cat {
    /// Every category, in the order of a job.
    pub const ALL: [Cat; 11] = [
        Cat::Upload,
        Cat::Queue,
        Cat::Startup,
        Cat::Fetch,
        Cat::Encode,
        Cat::GivenState,
        Cat::Rebase,
        Cat::Relay,
        Cat::Retry,
        Cat::Output,
        Cat::Assembly,
    ];

    /// Snake-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Cat::Upload => "upload",
            Cat::Queue => "queue",
            Cat::Startup => "startup",
            Cat::Fetch => "fetch",
            Cat::Encode => "encode",
            Cat::GivenState => "given_state",
            Cat::Rebase => "rebase",
            Cat::Relay => "relay",
            Cat::Retry => "retry",
            Cat::Output => "output",
            Cat::Assembly => "assembly",
        }
    }
}

/// Everything the simulation needs, in seconds, bytes and calibrated
/// CPU-seconds (see [`super::plan_job`] for how they are derived).
#[derive(Clone, Debug, PartialEq)]
pub struct SimParams {
    /// Total frames.
    pub frames: usize,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Most tasks running at once (the runtime's cap and the account's).
    pub concurrency: usize,
    /// Execution environments Lambda adds every `scale_period` seconds
    /// (the first step at time 0).
    pub scale_step: f64,
    /// Lambda's scaling period, seconds.
    pub scale_period: f64,
    /// Invocations per second.
    pub invoke_rate: f64,
    /// Invoke position-major (every group's first chunk, then every
    /// group's second, ...) instead of in chunk order.
    pub position_major: bool,
    /// Worker speed relative to the calibrating machine.
    pub speed: f64,
    /// 0: a CPU each; >0: shared cores.
    pub cores: f64,
    /// Median start-up, seconds.
    pub cold_median: f64,
    /// Log-space sigma of start-up.
    pub cold_sigma: f64,
    /// CPU-seconds of fixed start-up work per attempt that competes for
    /// the cores (process spawn, runtime, connections); charged with
    /// phase 1.
    pub task_cpu: f64,
    /// CPU-seconds of fixed work per phase (checkpoint, state and chunk
    /// writes, hashing).
    pub phase_cpu: f64,
    /// Fixed seconds the coordinator spends after the last task (checking
    /// chunks, writing the output, cleaning up), beside the chunk downloads.
    pub finish: f64,
    /// CPU-seconds per frame: encode, encode given state, rebase.
    pub frame_work: [f64; 3],
    /// CPU-seconds to serialize+compress a state; to decompress+deserialize.
    pub ser_work: f64,
    /// CPU-seconds to decompress and deserialize a state.
    pub deser_work: f64,
    /// Relay latency per hop.
    pub relay_latency: f64,
    /// State bytes on the wire.
    pub state_bytes: f64,
    /// Relay bytes per second of one connection.
    pub relay_bw: f64,
    /// Whether states go through the relay (besides the store).
    pub use_relay: bool,
    /// Delivered bytes per second all relays together move (infinite:
    /// no limit).
    pub relay_capacity: f64,
    /// Bytes of states the relays hold at most.
    pub relay_memory: f64,
    /// Connection slots of all relays.
    pub relay_slots: usize,
    /// Mean delay of the receiver's store polling, seconds.
    pub store_poll: f64,
    /// S3 first-byte latency.
    pub s3_latency: f64,
    /// S3 bytes per second per worker.
    pub s3_bw: f64,
    /// Input bytes per frame.
    pub in_frame_bytes: f64,
    /// Output bytes per frame.
    pub out_frame_bytes: f64,
    /// Seconds of input upload before any task (0: none).
    pub upload_s: f64,
    /// Coordinator bytes per second.
    pub coord_bw: f64,
    /// Chunk GETs in flight while assembling.
    pub assembly_parallelism: usize,
    /// Bytes per second of the coordinator's output write.
    pub write_bw: f64,
    /// The output assembled in S3 (`-o s3://`): parts merged by workers
    /// and copied server side, nothing through the coordinator's link.
    pub output_in_s3: bool,
    /// Smallest part of that upload but the last, bytes.
    pub s3_min_part: f64,
    /// Probability an attempt straggles.
    pub straggler_prob: f64,
    /// Pareto shape of the slowdown.
    pub straggler_alpha: f64,
    /// Cap of the slowdown.
    pub straggler_max: f64,
    /// Probability an attempt fails.
    pub failure_prob: f64,
    /// Delay before a retry.
    pub retry_delay: f64,
    /// Speculative twins on.
    pub speculation: bool,
    /// Twin deadline factor.
    pub speculation_factor: f64,
    /// Finished tasks before twins.
    pub speculation_min_finished: usize,
    /// Shortest twin deadline, seconds.
    pub speculation_floor: f64,
    /// A task whose predecessor finished while it ran gets its twin after
    /// a multiple of the median *tail* (predecessor done to done), not of
    /// the median working time: a late task in a chain delays every later
    /// one, and by then only its phase 3 should be left.
    pub chain_tail_twins: bool,
    /// Shortest twin deadline of a chain tail, seconds.
    pub speculation_tail_floor: f64,
}

/// One stretch of the critical path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    /// The chunk (None: the coordinator).
    pub chunk: Option<usize>,
    /// What the time went to.
    pub category: Cat,
    /// Seconds.
    pub seconds: f64,
}

/// What one simulated run gives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    /// Wall time from start to the assembled output.
    pub wall_s: f64,
    /// Critical path seconds per category ([`Cat::ALL`] order); sums to
    /// `wall_s`.
    pub breakdown: [f64; 11],
    /// The critical path, first stretch first.
    pub critical_path: Vec<PathStep>,
    /// When the last chunk finished phase 1, 2, 3 and was written.
    pub phase_end_s: [f64; 4],
    /// Sum of every attempt's run time.
    pub worker_seconds: f64,
    /// Attempts (= Lambda requests).
    pub attempts: usize,
    /// Of those, retries after failures.
    pub retries: usize,
    /// Of those, speculative twins.
    pub twins: usize,
    /// Bytes of state sent through the relay.
    pub relay_bytes: f64,
    /// Most state bytes held by the relay at once.
    pub peak_relay_bytes: f64,
    /// Hops whose state went by the store alone (no relay slot, memory or
    /// relay) or arrived there first.
    pub store_hops: usize,
    /// Seconds during which some state was going through the relay.
    pub relay_busy_s: f64,
    /// Of those, seconds in which the relay's capacity held hops below one
    /// connection's throughput (queueing).
    pub relay_saturated_s: f64,
    /// Relay bytes over capacity x the span from the first state sent to
    /// the last one delivered: above 1 the relay cannot keep up.
    pub relay_utilisation: f64,
    /// S3 GET requests.
    pub s3_gets: usize,
    /// S3 PUT requests (chunks and states written).
    pub s3_puts: usize,
}

/// Runs one simulation of the job `p` with random seed `seed`.
pub fn simulate(p: &SimParams, seed: u64) -> RunResult {
    engine::run(p, seed)
}
