//! The one interface every distributed backend implements: run a task
//! somewhere and answer with its result or why it failed.

use async_trait::async_trait;
use excam_worker::chunk::Phase;
use excam_worker::task::{Task, TaskResult};

/// How an attempt failed; decides whether it counts as a try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The worker ran and reported an error (Lambda FunctionError, exit 1
    /// with an error record).
    FunctionError,
    /// The worker died: killed, crashed, exited without an answer.
    Crash,
    /// The attempt ran past `--task-timeout`.
    Timeout,
    /// The invocation could not be delivered or its answer was lost.
    Lost,
    /// The service refused to run it now (HTTP 429); not counted as a try.
    Throttled,
    /// The answer came but its chunk failed verification.
    BadResult,
}

/// Why one attempt failed.
#[derive(Clone, Debug)]
pub struct AttemptError {
    /// Class of failure.
    pub kind: FailureKind,
    /// Phase it failed in, when known.
    pub phase: Option<Phase>,
    /// What was said.
    pub message: String,
}

impl AttemptError {
    /// An error of `kind` with `message`, the phase guessed from the text.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> AttemptError {
        let message = message.into();
        AttemptError {
            kind,
            phase: phase_in(&message),
            message,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// The phase a worker's message names, if any (workers prefix their
/// errors with the phase's display name).
pub fn phase_in(message: &str) -> Option<Phase> {
    let m = message.to_ascii_lowercase();
    [
        ("phase 3", Phase::Rebase),
        ("phase 2", Phase::EncodeGivenState),
        ("phase 1", Phase::Encode),
        ("\"rebase\"", Phase::Rebase),
        ("\"encode_given_state\"", Phase::EncodeGivenState),
        ("\"encode\"", Phase::Encode),
    ]
    .into_iter()
    .find(|(k, _)| m.contains(k))
    .map(|(_, p)| p)
}

/// Runs tasks. Dropping the future of [`Backend::run`] abandons the
/// attempt; backends that can (processes) kill the worker then.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Short name for logs and the report.
    fn name(&self) -> &'static str;
    /// Runs `task` to completion.
    async fn run(&self, task: Task) -> Result<TaskResult, AttemptError>;
}

/// Parses a worker's JSON answer: a `TaskResult`, or `{"error": ...}`.
pub fn parse_answer(stdout: &[u8]) -> Result<TaskResult, AttemptError> {
    if let Ok(r) = serde_json::from_slice::<TaskResult>(stdout) {
        return Ok(r);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(stdout) {
        let msg = v
            .get("error")
            .or_else(|| v.get("errorMessage"))
            .map(|e| match e {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| v.to_string());
        // A Lambda function error wraps the worker's error JSON in its
        // errorMessage.
        if let Ok(inner) = serde_json::from_str::<serde_json::Value>(&msg) {
            if inner.get("error").is_some() {
                return parse_answer(msg.as_bytes());
            }
        }
        let mut err = AttemptError::new(FailureKind::FunctionError, msg);
        if let Some(p) = v
            .get("phase")
            .and_then(|p| serde_json::from_value::<Phase>(p.clone()).ok())
        {
            err.phase = Some(p);
        }
        return Err(err);
    }
    let text = String::from_utf8_lossy(stdout);
    Err(AttemptError::new(
        FailureKind::Crash,
        format!("worker gave no answer (stdout: {:?})", tail(&text, 300)),
    ))
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].trim()
}
