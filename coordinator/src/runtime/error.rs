//! How a job fails: [`JobError`], and the typed causes it carries.

use std::path::PathBuf;

use excam_codec::container::y4m::Y4mError;
use excam_worker::store::StoreError;

use super::chain;
use super::scheduler::ScheduleError;
use crate::container::ContainerError;
use crate::output::OutputError;

/// Why a job failed. No output file is left behind in any case.
///
/// The variants that wrap another error print its message alone (the
/// context a caller adds stays the caller's); the others name the job by
/// the first 16 hex digits of its id.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Settings the runtime cannot run (N or x of 0, encoder parameters
    /// out of range).
    #[error("{0}")]
    Settings(String),
    /// The backend cannot start (a missing worker executable, a store
    /// directory that cannot be named, a build without the `cloud` feature).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store cannot be opened.
    #[error("cannot open the store: {0}")]
    Store(StoreError),
    /// The input cannot be found, read, parsed or uploaded, or holds no
    /// frame to encode.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The embedded relay cannot start.
    #[error(transparent)]
    Relay(#[from] RelayStartError),
    /// The async runtime cannot start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The job was cancelled (Ctrl-C); the CLI exits with 130.
    #[error("cancelled: no output written")]
    Cancelled,
    /// A chunk failed for good: out of tries, throttled past its
    /// deadline, or its handed-on states lost too often
    /// ([`ScheduleError`] says which).
    #[error("job {} failed; no output written", short(.job))]
    Failed {
        /// Job id.
        job: String,
        /// What failed.
        #[source]
        source: ScheduleError,
    },
    /// A chunk made in this run does not start where its predecessor ends
    /// (or one is missing); the job's objects are kept for inspection.
    #[error("job {} failed; its objects are kept for inspection", short(.job))]
    Chain {
        /// Job id.
        job: String,
        /// The break in the chain.
        #[source]
        source: chain::ChainError,
    },
    /// The chain check still failed after the chunks it sent back ran
    /// again.
    #[error("job {}: the chain check failed twice; no output written", short(.job))]
    ChainTwice {
        /// Job id.
        job: String,
    },
    /// The output (or the report) cannot be written.
    #[error(transparent)]
    Output(#[from] WriteError),
}

impl JobError {
    /// Whether the job ended because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled)
    }
}

/// The short form of a job id that messages show.
fn short(job: &str) -> &str {
    job.get(..16).unwrap_or(job)
}

/// Why a backend cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The store directory has no absolute form.
    #[error("bad store dir {}", .path.display())]
    StoreDir {
        /// The directory as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The processes backend's worker executable is not there.
    #[error(
        "worker executable {} not found (build excam-worker or pass --worker-bin)",
        .0.display()
    )]
    NoWorker(PathBuf),
    /// The Lambda backend (or an s3:// input) in a build without the
    /// `cloud` feature.
    #[error(
        "--backend lambda and s3:// inputs need the AWS SDK, and this excam \
         was built without the `cloud` feature (build with default features)"
    )]
    NoCloud,
}

/// Why a job's input cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input file cannot be opened.
    #[error("cannot open {}", .path.display())]
    Open {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a regular file.
    #[error("{} is not a regular file (the distributed backends need one)", .0.display())]
    NotRegular(PathBuf),
    /// The input cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The input's header is not a Y4M header excam reads.
    #[error("not a Y4M file")]
    NotY4m(#[source] Y4mError),
    /// The header line has no end within the first bytes.
    #[error("Y4M header line is not terminated")]
    Unterminated,
    /// Frames carry parameters, so they cannot be found by stride.
    #[error("Y4M frames with parameters are not supported by the distributed backends")]
    FrameParameters,
    /// An s3:// input on a backend without S3.
    #[error("an s3:// input needs --backend lambda")]
    S3NeedsLambda,
    /// An s3:// input outside the job's bucket.
    #[error("the input must be in the job's bucket {job_bucket}, not {bucket}")]
    WrongBucket {
        /// The job's bucket.
        job_bucket: String,
        /// The input's bucket.
        bucket: String,
    },
    /// An s3:// input outside the job's prefix.
    #[error("the input key must be under the prefix {0}/")]
    OutsidePrefix(String),
    /// The S3 object cannot be found.
    #[error("cannot find {url}")]
    S3Head {
        /// `s3://bucket/key`.
        url: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The S3 object cannot be read.
    #[error("cannot read {url}")]
    S3Read {
        /// `s3://bucket/key`.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// An s3:// input in a build without the `cloud` feature.
    #[error(transparent)]
    NoCloud(#[from] BackendError),
    /// The store cannot say whether the input is already there.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input cannot be put into the store.
    #[error("cannot upload {}", .path.display())]
    Upload {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// `--skip` leaves no frame.
    #[error("--skip {skip} skips the whole input: it has {frames} frames")]
    SkipsAll {
        /// Frames to skip.
        skip: usize,
        /// Frames the input has.
        frames: usize,
    },
    /// The input holds no frame.
    #[error("the input has no frames")]
    NoFrames,
}

/// Why the embedded relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RelayStartError {
    /// Its certificate cannot be made.
    #[error(transparent)]
    Tls(#[from] excam_rendezvous::ConfigError),
    /// It cannot bind its port.
    #[error("cannot start the embedded relay")]
    Bind(#[source] excam_rendezvous::RelayError),
}

/// Why a job's output or report cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output file cannot be created or put in place.
    #[error(transparent)]
    File(#[from] OutputError),
    /// The temporary output cannot be opened again.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The container cannot be started.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A chunk of the schedule has no result (a bug).
    #[error("a chunk is missing")]
    MissingChunk,
    /// A frame or the container's end cannot be written.
    #[error("cannot write the output")]
    Write(#[source] ContainerError),
    /// The streamed assembly failed (a chunk missing, changed or not
    /// fetchable, a part not merged or copied in S3).
    #[error("{0}")]
    Assembly(String),
    /// Standard output cannot take the finished stream.
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    /// The report cannot be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The report cannot be written.
    #[error("cannot write {}", .path.display())]
    Report {
        /// The report's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The timeline cannot be drawn.
    #[error("cannot draw {}", .path.display())]
    Draw {
        /// The SVG's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: DrawError,
    },
}

/// The plotting library's error, as text (its type is generic over the
/// drawing backend).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(pub String);
