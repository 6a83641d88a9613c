//! How a job fails: [`JobError`].

use super::chain;
use super::scheduler::ScheduleError;

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
    Backend(anyhow::Error),
    /// The store cannot be opened.
    #[error(transparent)]
    Store(anyhow::Error),
    /// The input cannot be found, read, parsed or uploaded, or holds no
    /// frame to encode.
    #[error(transparent)]
    Input(anyhow::Error),
    /// The embedded relay cannot start.
    #[error(transparent)]
    Relay(anyhow::Error),
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
    Output(anyhow::Error),
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
