//! The `local` backend: each attempt is one task run by the worker's own
//! code inside this process, on the async runtime (coding on its blocking
//! threads), with the store in a directory. So a local ExCamera encode is
//! scheduled like any other backend's: the same job graph, retries,
//! speculative twins, `--report`, `--resume`, the chain check, and memory
//! bounded by the frames of the tasks in flight (each task reads only its
//! chunk's frames from the store) instead of the whole clip.

use async_trait::async_trait;
use excam_worker::task::{Fault, Task, TaskResult};

use super::backend::{AttemptError, Backend, FailureKind};

/// Most local tasks in flight at once: twice the cores this process may
/// use. Each task holds its chunk's frames, its encoder and the states it
/// receives and hands on (about 30 MB at 640x480, N = 6), and tasks in
/// flight beyond the cores only wait, so `--workers 2000` would hold the
/// whole clip several times over. Twice the cores keeps the cores busy
/// while some tasks wait for their predecessor's state (the scheduler
/// starts chunks in chain order, so a capped job cannot deadlock).
pub fn max_in_flight() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs tasks in this process with [`excam_worker::run_task_as`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalBackend;

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn run(&self, mut task: Task) -> Result<TaskResult, AttemptError> {
        // A thread cannot die alone: an injected crash (a test fault)
        // aborts the attempt at the same point with an error instead of
        // taking the coordinator down with it.
        let crash = match task.fault {
            Some(Fault::Crash { phase }) => {
                task.fault = Some(Fault::Error { phase });
                true
            }
            _ => false,
        };
        let worker = format!("{}#{}", excam_worker::run::local_worker_id(), task.attempt);
        excam_worker::run_task_as(task, worker)
            .await
            .map_err(|e| AttemptError {
                kind: if crash {
                    FailureKind::Crash
                } else {
                    FailureKind::FunctionError
                },
                phase: e.phase,
                message: e.to_string(),
            })
    }
}
