//! Test-only faults a task plants in itself (`Task::fault`), honoured
//! with the `fault-injection` feature and ignored without it.

#[cfg(feature = "fault-injection")]
use std::time::Duration;

#[cfg(feature = "fault-injection")]
use tracing::warn;

use super::TaskError;
use crate::chunk::Phase;
use crate::task::Task;

/// Honours `task.fault` at the start of `phase` (test builds only).
#[cfg(feature = "fault-injection")]
pub(super) async fn inject_fault(task: &Task, phase: Phase) -> Result<(), TaskError> {
    use crate::task::Fault;
    match &task.fault {
        Some(Fault::Crash { phase: p }) if *p == phase => {
            warn!(chunk = task.chunk, "injected fault: crash at {phase}");
            std::process::abort();
        }
        Some(Fault::Hang { phase: p }) if *p == phase => {
            warn!(chunk = task.chunk, "injected fault: hang at {phase}");
            std::future::pending::<()>().await;
            Ok(())
        }
        Some(Fault::Error { phase: p }) if *p == phase => Err(TaskError::new(
            Some(phase),
            format!("injected fault: error at the start of {phase}"),
        )),
        Some(Fault::Slow { phase: p, seconds }) if *p == phase => {
            warn!(
                chunk = task.chunk,
                "injected fault: {seconds} s pause at {phase}"
            );
            tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the task's injected fault loses the state `phase` hands on.
#[cfg(feature = "fault-injection")]
pub(super) fn lose_state(task: &Task, phase: Phase) -> bool {
    let lose =
        matches!(&task.fault, Some(crate::task::Fault::LoseState { phase: p }) if *p == phase);
    if lose {
        warn!(
            chunk = task.chunk,
            "injected fault: the state of {phase} is lost"
        );
    }
    lose
}

/// Without the `fault-injection` feature, `task.fault` is ignored.
#[cfg(not(feature = "fault-injection"))]
pub(super) fn lose_state(_task: &Task, _phase: Phase) -> bool {
    false
}

/// Without the `fault-injection` feature, `task.fault` is ignored.
#[cfg(not(feature = "fault-injection"))]
pub(super) async fn inject_fault(_task: &Task, _phase: Phase) -> Result<(), TaskError> {
    Ok(())
}
