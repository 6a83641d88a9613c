//! Finding hand-off states that were lost after they were written.
//!
//! A chunk hands its states on through the relay and, durably, through the
//! store. If a store object is deleted or damaged after its producer
//! finished (and the relay's copy is gone too, after a restart), the
//! successor would wait for it until its wait timeout, fail, and fail again
//! on every retry: nothing would ever write the state again. So when a
//! chunk has been running for long after its predecessor finished, the
//! scheduler checks the predecessor's objects with [`check_handoffs`]; if
//! one is missing, unreadable or not the state the predecessor's result
//! names, the scheduler runs the predecessor again, which writes it anew
//! (from its checkpoints, so only its last phase is coded again).

use excam_codec::wire::{decode_state_for, state_digest};
use excam_worker::keys;
use excam_worker::store::{Store, StoreError};
use excam_worker::task::{Task, TaskResult};

/// Checks that the states `result` (chunk `task.chunk`'s result) says it
/// handed on are in the store, intact, and are the states it names.
///
/// Returns what is wrong with the first bad one. A bad object that passed
/// the store's checksum (a whole, but different, state) is deleted, so the
/// producer's write-once put can replace it; a missing or corrupt one
/// needs nothing, the put replaces those already.
pub(super) async fn check_handoffs(
    store: &dyn Store,
    task: &Task,
    result: &TaskResult,
) -> Result<(), String> {
    let i = task.chunk;
    let mut wanted = vec![(
        keys::state_final(&task.job, &task.run, i),
        result.final_state.as_str(),
    )];
    if let Some(p1) = &result.phase1_state {
        wanted.push((keys::state_phase1(&task.job, &task.run, i), p1.as_str()));
    }
    let dim = |d: usize| u16::try_from(d).unwrap_or(u16::MAX);
    let (w, h) = (dim(task.codec.width), dim(task.codec.height));
    for (key, digest) in wanted {
        let bytes = match store.get(&key).await {
            Ok(b) => b,
            Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt { .. })) => {
                return Err(format!("chunk {i}'s state {key}: {e}"));
            }
            // The store may be having a bad moment: that is not evidence
            // that the state is lost. The next check will tell.
            Err(_) => continue,
        };
        let bad = match decode_state_for(&bytes, w, h) {
            Ok(s) if hex::encode(state_digest(&s)) == digest => continue,
            Ok(_) => format!("chunk {i}'s state {key} is not the state its result names"),
            Err(e) => format!("chunk {i}'s state {key} is unreadable: {e}"),
        };
        // Best effort: if the delete fails, the rerun's put fails too and
        // is retried like any other store error.
        let _ = store.delete_prefix(&key).await;
        return Err(bad);
    }
    Ok(())
}
