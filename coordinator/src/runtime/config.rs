//! What a job is given: [`JobConfig`] and its four parts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use excam_rendezvous::{Fingerprint, RelaySecret};
use excam_worker::task::{CodecParams, Fault};

use super::scheduler::SchedulerConfig;

/// Where the workers run.
#[derive(Clone, Debug)]
pub enum BackendChoice {
    /// Tasks run in this process ([`super::local::LocalBackend`]), a store in a
    /// directory.
    Local {
        /// Store root.
        store_dir: PathBuf,
    },
    /// Worker processes on this machine, a store in a directory.
    Processes {
        /// The worker executable.
        worker_bin: PathBuf,
        /// Its arguments before the task (`["worker"]` when it is `excam`).
        worker_args: Vec<String>,
        /// Store root.
        store_dir: PathBuf,
    },
    /// Lambda invocations, a store in S3.
    Lambda {
        /// Function name.
        function: String,
        /// Bucket.
        bucket: String,
        /// Key prefix ("" for none).
        prefix: String,
    },
}

/// How states travel between workers.
#[derive(Clone, Debug)]
pub enum RelayChoice {
    /// Through the store alone.
    None,
    /// A relay run inside the coordinator for the job's duration.
    Embedded {
        /// UDP address to bind.
        listen: SocketAddr,
        /// `host:port` workers dial (default: the bound address).
        public: Option<String>,
    },
    /// A relay run elsewhere.
    External {
        /// `host:port`.
        addr: String,
        /// Its certificate's fingerprint.
        fingerprint: Fingerprint,
        /// The relay's secret, to mint the job's token.
        secret: RelaySecret,
    },
}

/// The input video.
#[derive(Clone, Debug)]
pub enum InputSource {
    /// A local Y4M file, uploaded (or linked) into the store.
    File(PathBuf),
    /// A Y4M object in the job's S3 bucket, used in place.
    S3 {
        /// Bucket (must be the store's).
        bucket: String,
        /// Key.
        key: String,
    },
}

impl InputSource {
    /// Parses `s3://bucket/key` or a path.
    pub fn parse(s: &str) -> InputSource {
        match s.strip_prefix("s3://").and_then(|r| r.split_once('/')) {
            Some((b, k)) => InputSource::S3 {
                bucket: b.to_string(),
                key: k.to_string(),
            },
            None => InputSource::File(PathBuf::from(s)),
        }
    }
}

/// Everything a distributed encode needs, in four parts that change for
/// different reasons: what to encode ([`JobSpec`]), where it runs
/// ([`Infrastructure`]), how hard it tries ([`Policy`]), and the faults a
/// test plants ([`TestHooks`]).
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// What to encode, and where the output and report go.
    pub job: JobSpec,
    /// Backend, store and relay.
    pub infra: Infrastructure,
    /// Concurrency, retries, deadlines, resume.
    pub policy: Policy,
    /// Faults to inject (tests only; empty in production).
    pub hooks: TestHooks,
}

/// What a job encodes: its input, codec settings, ExCamera shape and
/// outputs. Together with the input's identity these decide the output
/// bytes (and the job id); nothing else does.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// Input.
    pub input: InputSource,
    /// Output file (written atomically), or `-` for standard output.
    pub output: PathBuf,
    /// The output's container.
    pub container: crate::container::Container,
    /// Codec settings; width, height and frame rate are taken from the input.
    pub codec: CodecParams,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Skip this many frames of the input first.
    pub skip: usize,
    /// Encode at most this many frames (after `skip`).
    pub limit: Option<usize>,
    /// Write the JSON report here (and the SVG beside it).
    pub report: Option<PathBuf>,
    /// No display, no log lines.
    pub quiet: bool,
}

/// Where a job runs: the backend (and with it the store) and the relay,
/// and what the backend costs.
#[derive(Clone, Debug)]
pub struct Infrastructure {
    /// Where workers run.
    pub backend: BackendChoice,
    /// How states travel.
    pub relay: RelayChoice,
    /// Prices for the cost estimate.
    pub pricing: Pricing,
}

/// What a task costs, for the report's and the progress line's estimate.
#[derive(Clone, Copy, Debug)]
pub struct Pricing {
    /// Memory of a worker, MB.
    pub lambda_memory_mb: u32,
    /// USD per GB-second.
    pub price_per_gb_s: f64,
    /// USD per request.
    pub price_per_request: f64,
}

/// How a job copes with failure and slowness: none of it changes the
/// output bytes.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Concurrency, retries, stragglers, timeouts.
    pub scheduler: SchedulerConfig,
    /// Reuse verified chunks of an earlier run of the same job.
    pub resume: bool,
    /// Keep `jobs/{job}/` after success.
    pub keep_intermediate: bool,
    /// Bound on the frame bytes the streamed assembly holds for chunks
    /// that are done but wait for an earlier one (past it, they are
    /// fetched again when their turn comes); `None`: 256 MiB.
    pub assembly_hold_bytes: Option<u64>,
    /// Smallest part of an `s3://` output's multipart upload but the last;
    /// `None`: 5 MiB, what S3 demands (tests go lower against servers
    /// that do not check).
    pub s3_min_part_bytes: Option<u64>,
}

/// Faults a test plants in a job; the default plants none.
#[derive(Clone, Debug, Default)]
pub struct TestHooks {
    /// Faults to inject: (chunk, attempt) -> fault.
    pub faults: HashMap<(usize, u32), Fault>,
    /// Restart the embedded relay once this many chunks are done.
    pub restart_relay_after: Option<usize>,
}
