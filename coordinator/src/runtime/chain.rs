//! The chain check: before a byte of output is written, every chunk must
//! have been encoded from the state its predecessor really ends in.
//!
//! Each worker's result records the digest of the state its first frame
//! decodes from (`source_state`, zeros for a group head) and of the state
//! its frames end in (`final_state`). A chunk rebased onto a stale, planted
//! or foreign state reports a `source_state` that is not its predecessor's
//! `final_state`, and the job fails with a [`ChainError`] instead of
//! writing a stream that decodes wrong. The same rule decides which chunks
//! of an earlier run `--resume` may reuse ([`drop_unlinked`]).

use excam_codec::wire::{decode_state_for, state_digest};
use excam_worker::keys;
use excam_worker::store::Store;
use excam_worker::task::TaskResult;

use super::scheduler::ChunkDone;

/// Hex of the all-zero digest: the `source_state` of a group head.
fn zeros() -> String {
    hex::encode([0u8; 32])
}

/// Why a job's chunks do not form one decodable chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A chunk does not start where its predecessor ends.
    #[error(
        "chain error: chunk {chunk} was encoded from state {found:.16}…, but {expected}; \
         no output written"
    )]
    Broken {
        /// The chunk.
        chunk: usize,
        /// Its recorded `source_state`.
        found: String,
        /// What it should have started from, in words.
        expected: String,
    },
    /// A chunk is missing from the chain.
    #[error("chain error: chunk {0} has no result; no output written")]
    Missing(usize),
}

/// Whether chunk `i` starts a group (its first frame is a key frame).
fn is_head(i: usize, group_chunks: usize) -> bool {
    i.is_multiple_of(group_chunks.max(1))
}

/// Checks `result` (chunk `i`) against the final state of chunk `i - 1`
/// (`pred_final`, `None` if that one has no result): the one rule of the
/// chain, for the check before the output is finished, for `--resume` and
/// for the streamed assemblies before they put a chunk into the output.
pub(super) fn link(
    i: usize,
    result: &TaskResult,
    pred_final: Option<&str>,
    group_chunks: usize,
) -> Result<(), ChainError> {
    let broken = |expected: String| ChainError::Broken {
        chunk: i,
        found: result.source_state.clone(),
        expected,
    };
    if is_head(i, group_chunks) {
        if result.source_state != zeros() {
            return Err(broken("it starts a group, from no state".into()));
        }
        return Ok(());
    }
    match pred_final {
        None => Err(ChainError::Missing(i - 1)),
        Some(p) if p == result.source_state => Ok(()),
        Some(p) => Err(broken(format!("chunk {} ends in {p:.16}…", i - 1))),
    }
}

/// The final state of chunk `i - 1` in `chunks`, if it has a result.
fn pred_final(chunks: &[Option<ChunkDone>], i: usize) -> Option<&str> {
    i.checked_sub(1)
        .and_then(|p| chunks[p].as_ref())
        .map(|p| p.result.final_state.as_str())
}

/// Checks that `chunks` form one chain: every group head starts from no
/// state, every other chunk from its predecessor's final state.
///
/// # Errors
/// The first chunk that breaks the chain.
pub fn check(chunks: &[Option<ChunkDone>], group_chunks: usize) -> Result<(), ChainError> {
    for (i, c) in chunks.iter().enumerate() {
        let c = c.as_ref().ok_or(ChainError::Missing(i))?;
        link(i, &c.result, pred_final(chunks, i), group_chunks)?;
    }
    Ok(())
}

/// Drops from `reused` every chunk that cannot continue the chain: a
/// reused group head must start from no state, and a reused chunk whose
/// predecessor is reused too must start where that one ends. A reused
/// chunk whose predecessor runs again is kept: the run's end state is only
/// known when it is done, and [`check`] then decides (`run_job` drops the
/// chunk and runs it again if the two differ).
pub fn drop_unlinked(reused: &mut [Option<ChunkDone>], group_chunks: usize) {
    for i in 0..reused.len() {
        let ok = match &reused[i] {
            None => continue,
            Some(c) => match link(i, &c.result, pred_final(reused, i), group_chunks) {
                Ok(()) | Err(ChainError::Missing(_)) => true,
                Err(ChainError::Broken { .. }) => false,
            },
        };
        if !ok {
            reused[i] = None;
        }
    }
}

/// After a [`ChainError::Broken`] at a reused chunk, the chunks to run
/// again: that one and every later chunk of its group (each of them may
/// have been made from the state it was rebased on). `None` if the broken
/// chunk was not reused: then a worker of this run is at fault, and the
/// job must fail.
pub fn rerun_after(
    chunks: &[Option<ChunkDone>],
    err: &ChainError,
    group_chunks: usize,
) -> Option<std::ops::Range<usize>> {
    let ChainError::Broken { chunk, .. } = *err else {
        return None;
    };
    if !chunks.get(chunk)?.as_ref()?.reused {
        return None;
    }
    let g = group_chunks.max(1);
    Some(chunk..((chunk / g + 1) * g).min(chunks.len()))
}

/// Copies one state of a reused chunk from the run that made it into run
/// `run`, after checking that it is the state the chunk's result names.
/// The stored bytes are read as a state of the job's `dims`: an object of
/// another size, or one whose body claims more than such a state holds,
/// is refused before it is decompressed (a planted object must not make
/// the coordinator allocate gigabytes).
async fn carry_state(
    store: &dyn Store,
    from: &str,
    to: &str,
    want: Option<&str>,
    dims: (u16, u16),
) -> Result<(), String> {
    let want = want.ok_or("the result names no digest for it")?;
    let bytes = store.get(from).await.map_err(|e| e.to_string())?;
    let state = decode_state_for(&bytes, dims.0, dims.1).map_err(|e| format!("unreadable: {e}"))?;
    let got = hex::encode(state_digest(&state));
    if got != want {
        return Err(format!(
            "holds state {got:.16}…, the result says {want:.16}…"
        ));
    }
    store.put_once(to, bytes).await.map_err(|e| e.to_string())
}

/// Makes the states that chunks to be run need from reused chunks
/// available in run `run`: a reused chunk whose successor runs again hands
/// that successor its phase-1 and final states, which are copied from the
/// reused chunk's own run after checking each against its result. A
/// reused chunk whose states are missing, unreadable or not the ones its
/// result names is not reused after all (it runs again), and the check
/// repeats for its predecessor. `dims` is the job's picture size, which
/// bounds what a state object may hold. Returns a line per chunk dropped.
pub async fn carry_reused_states(
    store: &dyn Store,
    job: &str,
    run: &str,
    reused: &mut [Option<ChunkDone>],
    group_chunks: usize,
    dims: (u16, u16),
) -> Vec<String> {
    let mut dropped = Vec::new();
    loop {
        drop_unlinked(reused, group_chunks);
        let mut changed = false;
        for i in 0..reused.len().saturating_sub(1) {
            let Some(c) = &reused[i] else { continue };
            if reused[i + 1].is_some() || is_head(i + 1, group_chunks) {
                continue;
            }
            let r = &c.result;
            let carried = async {
                carry_state(
                    store,
                    &keys::state_phase1(job, &r.run, i),
                    &keys::state_phase1(job, run, i),
                    r.phase1_state.as_deref(),
                    dims,
                )
                .await
                .map_err(|e| format!("phase-1 state: {e}"))?;
                carry_state(
                    store,
                    &keys::state_final(job, &r.run, i),
                    &keys::state_final(job, run, i),
                    Some(&r.final_state),
                    dims,
                )
                .await
                .map_err(|e| format!("final state: {e}"))
            }
            .await;
            if let Err(e) = carried {
                dropped.push(format!("chunk {i} runs again: its {e}"));
                reused[i] = None;
                changed = true;
            }
        }
        if !changed {
            return dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(source: [u8; 32], end: [u8; 32]) -> Option<ChunkDone> {
        Some(ChunkDone {
            result: TaskResult {
                version: excam_worker::task::TASK_VERSION,
                job: "j".into(),
                run: "r".into(),
                chunk: 0,
                attempt: 1,
                chunk_key: String::new(),
                chunk_sha256: String::new(),
                chunk_bytes: 0,
                frames: 1,
                source_state: hex::encode(source),
                final_state: hex::encode(end),
                phase1_state: None,
                phases: vec![],
                state_bytes: None,
                worker: String::new(),
                total_seconds: 0.0,
                key_frames: None,
            },
            frames: vec![],
            reused: true,
        })
    }

    #[test]
    fn a_consistent_chain_passes_and_any_broken_link_fails() {
        // Groups of 2: chunks 0 and 2 are heads.
        let good = vec![
            done([0; 32], [1; 32]),
            done([1; 32], [2; 32]),
            done([0; 32], [3; 32]),
            done([3; 32], [4; 32]),
        ];
        check(&good, 2).unwrap();

        let mut wrong_source = good.clone();
        wrong_source[3] = done([9; 32], [4; 32]);
        let e = check(&wrong_source, 2).unwrap_err();
        assert!(matches!(e, ChainError::Broken { chunk: 3, .. }), "{e}");
        assert!(e.to_string().contains("chunk 2 ends in"), "{e}");

        let mut head_with_state = good.clone();
        head_with_state[2] = done([3; 32], [3; 32]);
        assert!(matches!(
            check(&head_with_state, 2),
            Err(ChainError::Broken { chunk: 2, .. })
        ));

        let mut missing = good.clone();
        missing[1] = None;
        assert_eq!(check(&missing, 2), Err(ChainError::Missing(1)));
    }

    /// A planted state object whose body claims more than a state of the
    /// job's size can hold is refused by size, before it is read (the
    /// size-blind reader would take its claim and allocate it), and the
    /// chunk that should have handed it on runs again; a good state
    /// object is checked and carried into the new run.
    #[tokio::test]
    async fn carried_states_are_read_with_the_jobs_size_bound() {
        use excam_codec::wire::{encode_state, frame as framed, max_body_len, Compression};
        use excam_codec::DecoderState;
        use excam_worker::store::LocalStore;

        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let good = encode_state(&DecoderState::default(), Compression::Lz4);
        let good_digest = state_digest(&DecoderState::default());
        let dims = (64, 48);
        // 1 MiB stored raw: checksum and lengths are right, so only the
        // size bound (about 14 KB for 64x48) can refuse it.
        let oversized = framed(0, 1 << 20, &vec![0u8; 1 << 20]);
        assert!(oversized.len() as u64 > 50 * max_body_len(dims.0, dims.1));

        let mut head = done([0; 32], good_digest).unwrap();
        head.result.run = "old".into();
        head.result.phase1_state = Some(hex::encode(good_digest));
        // Chunk 0 of run "old" hands chunk 1 (which runs again) its states:
        // the phase-1 one is planted.
        for (key, bytes) in [
            (keys::state_phase1("j", "old", 0), oversized.clone()),
            (keys::state_final("j", "old", 0), good.clone()),
        ] {
            store.put(&key, bytes.into()).await.unwrap();
        }
        let mut reused = vec![Some(head.clone()), None];
        let dropped = carry_reused_states(&store, "j", "new", &mut reused, 2, dims).await;
        assert!(reused[0].is_none(), "{dropped:?}");
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert!(
            dropped[0].contains("chunk 0 runs again: its phase-1 state: unreadable")
                && dropped[0].contains("body length too large"),
            "{dropped:?}"
        );
        assert!(store
            .size(&keys::state_final("j", "new", 0))
            .await
            .unwrap()
            .is_none());

        // The same chunk with a sound phase-1 state is kept and carried.
        store
            .put(&keys::state_phase1("j", "old", 0), good.clone().into())
            .await
            .unwrap();
        let mut reused = vec![Some(head), None];
        let dropped = carry_reused_states(&store, "j", "new", &mut reused, 2, dims).await;
        assert!(dropped.is_empty(), "{dropped:?}");
        assert!(reused[0].is_some());
        for key in [
            keys::state_phase1("j", "new", 0),
            keys::state_final("j", "new", 0),
        ] {
            assert_eq!(store.get(&key).await.unwrap(), good);
        }
    }

    #[test]
    fn reuse_drops_broken_links_and_reruns_the_rest_of_a_group() {
        let mut r = vec![
            done([0; 32], [1; 32]),
            done([7; 32], [2; 32]), // not where chunk 0 ends
            done([2; 32], [3; 32]), // its predecessor now runs again: kept
            done([0; 32], [4; 32]), // a head
            done([4; 32], [5; 32]),
            None,
            done([6; 32], [7; 32]), // a head that claims a start state
        ];
        drop_unlinked(&mut r, 3);
        let kept: Vec<bool> = r.iter().map(Option::is_some).collect();
        assert_eq!(kept, [true, false, true, true, true, false, false]);

        // Chunk 1 ran again and ended elsewhere: the reused chunk 2 breaks
        // the chain, and it (to the end of its group) runs again.
        r[1] = done([1; 32], [9; 32]);
        r[1].as_mut().unwrap().reused = false;
        let e = check(&r, 3).unwrap_err();
        assert!(matches!(e, ChainError::Broken { chunk: 2, .. }), "{e}");
        assert_eq!(rerun_after(&r, &e, 3), Some(2..3));
        // A chunk made in this run that breaks the chain fails the job.
        let mut fresh = r.clone();
        fresh[2].as_mut().unwrap().reused = false;
        assert_eq!(rerun_after(&fresh, &check(&fresh, 3).unwrap_err(), 3), None);
    }
}
