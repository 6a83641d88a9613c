//! What `--resume` (and a second run after a failed chain check) takes
//! from earlier runs: only chunks that verify and sit at the content
//! address this job gives them.

use excam_worker::store::Store;
use excam_worker::task::{Task, TASK_VERSION};

use super::chain;
use super::scheduler::{self, ChunkDone};
use super::worker_api::result_key;

/// The chunks of earlier runs that can be reused: result records whose
/// chunk object verifies, minus those that cannot continue the chain
/// ([`chain::drop_unlinked`]), with the states that chunks to be run need
/// from them checked and carried into run `run`
/// ([`chain::carry_reused_states`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn load_reusable(
    store: &dyn Store,
    tasks: &[Task],
    job: &str,
    run: &str,
    expected: &[usize],
    group_chunks: usize,
    dims: (u16, u16),
    quiet: bool,
) -> Vec<Option<ChunkDone>> {
    let mut reused: Vec<Option<ChunkDone>> = vec![None; expected.len()];
    for (i, slot) in reused.iter_mut().enumerate() {
        let Ok(raw) = store.get(&result_key(job, i)).await else {
            continue;
        };
        let Ok(r) = serde_json::from_slice::<excam_worker::task::TaskResult>(&raw) else {
            continue;
        };
        if r.job != job || r.chunk != i || r.version != TASK_VERSION {
            continue;
        }
        // The job id in a record proves nothing (it is a field like any
        // other): the chunk must sit at the content address this job's
        // settings, plan and input frames give it.
        if !at_its_address(store, &tasks[i], &r).await {
            continue;
        }
        if let Ok(frames) = scheduler::verify(store, &r, expected[i]).await {
            *slot = Some(ChunkDone {
                result: r,
                frames,
                reused: true,
            });
        }
    }
    let dropped =
        chain::carry_reused_states(store, job, run, &mut reused, group_chunks, dims).await;
    if !quiet {
        for d in &dropped {
            eprintln!("resume: {d}");
        }
    }
    reused
}

/// Whether `r` names the chunk object that `task` would write for the
/// start state `r` claims: the cache key recomputed from the task's codec
/// settings and plan and the input frames of its chunk.
pub(super) async fn at_its_address(
    store: &dyn Store,
    task: &Task,
    r: &excam_worker::task::TaskResult,
) -> bool {
    let plan = task.plan();
    let Ok(frames) = excam_worker::input::read_frames(
        store,
        &task.input,
        task.codec.width,
        task.codec.height,
        plan.first_frame(),
        plan.len(task.input.frames),
    )
    .await
    else {
        return false;
    };
    let Some(source) = hex::decode(&r.source_state)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    else {
        return false;
    };
    let digest = excam_worker::keys::frames_digest(&frames);
    let key = excam_worker::keys::cache_key(&task.codec, &plan, &digest, &source);
    r.chunk_key == excam_worker::keys::chunk_object(&task.job, &key)
}
