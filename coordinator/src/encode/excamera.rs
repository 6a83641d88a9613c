//! The in-memory ExCamera encode: the whole clip read, then the
//! [`pipeline`](crate::pipeline) on local threads, with its three phases'
//! progress shown.

use std::io::Read;
use std::time::Instant;

use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::EncoderConfig;

use super::sink::Output;
use super::{no_frames, EncodeError, EncodeSpec, ExCameraShape, Summary};
use crate::pipeline::{run_pipeline, Chunk, LocalExchange, Phase, PipelineConfig, PipelineStats};
use crate::runtime::progress::{FrameProgress, PhaseProgress};

/// Encodes what `reader` has left as ExCamera\[N,x\] on `shape.workers`
/// threads into `out`.
pub(super) fn encode<R: Read>(
    spec: &EncodeSpec,
    shape: ExCameraShape,
    cfg: EncoderConfig,
    mut reader: Y4mReader<R>,
    mut out: Output,
    progress: FrameProgress,
    start: Instant,
) -> Result<Summary, EncodeError> {
    progress.clear();
    let mut source = Vec::new();
    while (source.len() as u64) < spec.limit.unwrap_or(u64::MAX) {
        match reader
            .next_frame()
            .map_err(EncodeError::read_input(&spec.input))?
        {
            Some(f) => source.push(f),
            None => break,
        }
    }
    if source.is_empty() {
        return Err(no_frames(spec));
    }
    let pcfg = PipelineConfig {
        chunk_frames: shape.chunk_frames,
        group_chunks: shape.group_chunks,
        workers: shape.workers,
        encoder: cfg,
    };
    let chunks = run_with_progress(&source, &pcfg, spec.quiet)?;
    let mut state = excam_codec::DecoderState::default();
    for f in chunks.iter().flat_map(|c| c.frames.iter()) {
        let (next, img) = excam_codec::decode(&state, f).map_err(EncodeError::PipelineDecode)?;
        state = next;
        if let Some(img) = img {
            out.psnr.add(&source[out.frames as usize], &img);
        }
        out.write_shown(f)?;
    }
    out.finish(&spec.output, start)
}

/// Runs the ExCamera pipeline, reporting chunks done per phase.
fn run_with_progress(
    frames: &[excam_codec::Image],
    cfg: &PipelineConfig,
    quiet: bool,
) -> Result<Vec<Chunk>, EncodeError> {
    let chunks = frames.len().div_ceil(cfg.chunk_frames) as u64;
    let phases = [Phase::Encode, Phase::EncodeGivenState, Phase::Rebase];
    let display = PhaseProgress::new(quiet, phases.map(|p| p.to_string()), chunks);
    let progress = |phase: Phase, done: usize, _total: usize| {
        let i = match phase {
            Phase::Encode => 0,
            Phase::EncodeGivenState => 1,
            Phase::Rebase => 2,
        };
        display.update(i, done as u64);
    };
    let mut stats = PipelineStats::default();
    let out = run_pipeline(
        frames,
        cfg,
        &LocalExchange::default(),
        &progress,
        None,
        &mut stats,
    );
    display.finish();
    let out = out?;
    if !quiet {
        eprintln!(
            "ExCamera[{},{}] on {} workers: phases 1/2/3 spanned {:.2} / {:.2} / {:.2} s (overlapping)",
            cfg.chunk_frames,
            cfg.group_chunks,
            cfg.workers,
            stats.phase_seconds[0],
            stats.phase_seconds[1],
            stats.phase_seconds[2]
        );
    }
    Ok(out)
}
