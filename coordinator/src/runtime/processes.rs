//! The `processes` backend: each attempt is one worker process on this
//! machine (`excam-worker`, or `excam worker`), the task JSON on its stdin
//! and the result on its stdout.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use excam_worker::task::{Task, TaskResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::backend::{parse_answer, tail, AttemptError, Backend, FailureKind};

/// Exit status (`EX_TEMPFAIL`) of a worker that refuses a task for now.
const TEMPFAIL: i32 = 75;

/// Runs tasks as child processes of `worker_bin worker_args...`.
pub struct ProcessBackend {
    /// The worker executable (`excam-worker`, or `excam` with `worker`).
    pub worker_bin: PathBuf,
    /// Arguments before the task: empty for `excam-worker`, `["worker"]`
    /// for `excam`.
    pub worker_args: Vec<String>,
}

/// `excam-worker` next to the running executable (test binaries live in
/// target/*/deps, so one level up too), if there is one.
pub fn sibling_worker_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("excam-worker"))
        .find(|p| p.is_file());
    found
}

#[async_trait]
impl Backend for ProcessBackend {
    fn name(&self) -> &'static str {
        "processes"
    }

    async fn run(&self, task: Task) -> Result<TaskResult, AttemptError> {
        let json = serde_json::to_vec(&task)
            .map_err(|e| AttemptError::new(FailureKind::Lost, format!("task JSON: {e}")))?;
        // kill_on_drop: an abandoned attempt (lost race, timeout, Ctrl-C)
        // must not keep computing or writing to the store.
        let mut child = tokio::process::Command::new(&self.worker_bin)
            .args(&self.worker_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                AttemptError::new(
                    FailureKind::Lost,
                    format!("cannot start {}: {e}", self.worker_bin.display()),
                )
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let write = async move {
            let _ = stdin.write_all(&json).await;
            let _ = stdin.shutdown().await;
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (_, _, _) = tokio::join!(
            write,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        let status = child
            .wait()
            .await
            .map_err(|e| AttemptError::new(FailureKind::Lost, format!("wait: {e}")))?;
        let err_text = String::from_utf8_lossy(&err);
        if status.success() {
            return parse_answer(&out).map_err(|mut e| {
                e.message = format!("{}; stderr: {}", e.message, tail(&err_text, 400));
                e
            });
        }
        // Exit 75 (EX_TEMPFAIL): the worker refused the task for now, as
        // a throttled service would; backed off and not counted as a try.
        if status.code() == Some(TEMPFAIL) {
            return Err(AttemptError::new(
                FailureKind::Throttled,
                format!(
                    "worker refused the task for now (exit {TEMPFAIL}); stderr: {}",
                    tail(&err_text, 200)
                ),
            ));
        }
        match parse_answer(&out) {
            Err(e) if e.kind == FailureKind::FunctionError => Err(e),
            _ => {
                let how = match status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => {
                        use std::os::unix::process::ExitStatusExt;
                        format!("killed by signal {}", status.signal().unwrap_or(0))
                    }
                };
                Err(AttemptError::new(
                    FailureKind::Crash,
                    format!("worker {how}; stderr: {}", tail(&err_text, 400)),
                ))
            }
        }
    }
}
