//! The reference output of a job: its whole graph run in one process.

use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::{DecoderState, Image};

use super::{chunk_err, setup_err, TaskError};
use crate::chunk::{Coded, Phase};
use crate::graph::JobGraph;

/// Runs the job's [`JobGraph`] over whole-clip `frames` in one process,
/// node by node in [`JobGraph::topological`] order, as [`run_task`](super::run_task) would
/// chunk by chunk: the reference output of a job (for tests and checks).
/// Returns each chunk's frames.
///
/// # Errors
/// The first chunk's error.
pub fn encode_serially(
    frames: &[Image],
    cfg: &EncoderConfig,
    chunk_frames: usize,
    group_chunks: usize,
) -> Result<Vec<Vec<Vec<u8>>>, TaskError> {
    if chunk_frames == 0 || group_chunks == 0 {
        return Err(setup_err(
            "chunk_frames and group_chunks must be at least 1",
        ));
    }
    if frames.is_empty() {
        return Ok(Vec::new());
    }
    let graph = JobGraph::new(frames.len(), chunk_frames, group_chunks)
        .map_err(|e| setup_err(e.to_string()))?;
    // Per chunk: the latest phase's output. Phase 2 reads its own phase 1
    // and the predecessor's phase-1 state, so phase-1 states are kept
    // apart until every phase 2 that needs them has run.
    let mut latest: Vec<Option<Coded>> = vec![None; graph.chunks()];
    let mut phase1_state: Vec<Option<DecoderState>> = vec![None; graph.chunks()];
    for node in graph.topological() {
        let i = node.chunk;
        let src = &frames[graph.frame_range(i)];
        let pred = match node.phase {
            Phase::Encode => None,
            Phase::EncodeGivenState => phase1_state[i - 1].clone(),
            Phase::Rebase => latest[i - 1].as_ref().map(|c| c.final_state.clone()),
        };
        let coded = graph
            .run_node(node, cfg, src, latest[i].as_ref(), pred)
            .map_err(chunk_err)?;
        if node.phase == Phase::Encode {
            phase1_state[i] = Some(coded.final_state.clone());
        }
        latest[i] = Some(coded);
    }
    Ok(latest
        .into_iter()
        .map(|c| c.map(|c| c.frames).unwrap_or_default())
        .collect())
}
