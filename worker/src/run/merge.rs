//! A merge task: finished chunk objects framed as one piece of the IVF
//! output, for the coordinator's S3 multipart assembly (see
//! [`Merge`](crate::task::Merge)).

use bytes::Bytes;
use excam_codec::container::ivf::{IvfHeader, IvfWriter, IVF_HEADER_LEN};
use sha2::{Digest, Sha256};

use super::{setup_err, TaskError};
use crate::keys;
use crate::store::open_store;
use crate::task::{Merge, Task, TaskResult, TASK_VERSION};

/// Largest piece a merge writes: S3's largest part is 5 GiB, and a worker
/// holds the piece in memory.
const MAX_PIECE: u64 = 1 << 30;

/// Runs the merge `m` of `task`: reads, checks and frames each chunk, and
/// writes the piece; the result names it as a chunk result would (key,
/// SHA-256, bytes, frames).
pub(super) async fn run_merge(
    task: &Task,
    m: &Merge,
    worker: String,
) -> Result<TaskResult, TaskError> {
    let started = std::time::Instant::now();
    if task.version != TASK_VERSION {
        return Err(setup_err(format!(
            "task format version {} is not supported (this worker runs version {TASK_VERSION})",
            task.version
        )));
    }
    if m.pieces.is_empty() {
        return Err(setup_err("a merge needs at least one chunk"));
    }
    let mut out =
        hex::decode(&m.prefix_hex).map_err(|e| setup_err(format!("merge prefix: {e}")))?;
    let store = open_store(&task.store)
        .await
        .map_err(|e| setup_err(format!("store: {e}")))?;
    // The frame records exactly as the coordinator's own IVF writer makes
    // them; the header this writer starts with is not part of the piece.
    let mut ivf = IvfWriter::new(Vec::new(), &IvfHeader::vp8(0, 0, 1, 1))
        .map_err(|e| setup_err(format!("merge: {e}")))?;
    let mut pts = m.first_pts;
    let mut keys = 0;
    for p in &m.pieces {
        let data = store
            .get(&p.key)
            .await
            .map_err(|e| setup_err(format!("chunk object: {e}")))?;
        let sum = hex::encode(Sha256::digest(&data));
        if sum != p.sha256 {
            return Err(setup_err(format!(
                "chunk object {} has SHA-256 {sum}, its result names {}",
                p.key, p.sha256
            )));
        }
        let frames =
            keys::decode_frames(&data).map_err(|e| setup_err(format!("{}: {e}", p.key)))?;
        if frames.len() != p.frames {
            return Err(setup_err(format!(
                "chunk object {} has {} frames, expected {}",
                p.key,
                frames.len(),
                p.frames
            )));
        }
        for f in &frames {
            keys += usize::from(f.first().is_some_and(|b| b & 1 == 0));
            ivf.write_frame(pts, f)
                .map_err(|e| setup_err(format!("merge: {e}")))?;
            pts += 1;
        }
    }
    let framed = ivf
        .into_inner()
        .map_err(|e| setup_err(format!("merge: {e}")))?;
    out.extend_from_slice(&framed[IVF_HEADER_LEN..]);
    if out.len() as u64 > MAX_PIECE {
        return Err(setup_err("a merged piece would exceed 1 GiB"));
    }
    let sha = hex::encode(Sha256::digest(&out));
    let bytes = out.len() as u64;
    // A retry writes the same bytes: `put` may replace.
    store
        .put(&m.out_key, Bytes::from(out))
        .await
        .map_err(|e| setup_err(format!("merged piece: {e}")))?;
    let zeros = hex::encode([0u8; 32]);
    Ok(TaskResult {
        version: TASK_VERSION,
        job: task.job.clone(),
        run: task.run.clone(),
        chunk: task.chunk,
        attempt: task.attempt,
        chunk_key: m.out_key.clone(),
        chunk_sha256: sha,
        chunk_bytes: bytes,
        frames: (pts - m.first_pts) as usize,
        source_state: zeros.clone(),
        final_state: zeros,
        phase1_state: None,
        phases: vec![],
        state_bytes: None,
        worker,
        total_seconds: started.elapsed().as_secs_f64(),
        key_frames: Some(keys),
    })
}
