//! A local ExCamera encode on the runtime ([`crate::runtime::run_job`]):
//! its tasks run in this process ([`crate::runtime::local::LocalBackend`]),
//! so local ExCamera runs get the scheduler's retries, `--report`,
//! `--resume` and the chain check, and hold only the frames of the tasks
//! in flight, not the clip.
//!
//! The runtime reads the input by ranged reads and writes the output by
//! renaming a finished file, so it needs a regular input file and an
//! output path; standard input, standard output and devices (`/dev/null`,
//! a FIFO) go through the in-memory pipeline ([`super::encode`]) instead,
//! which gives the same bytes.

use std::path::Path;

use excam_codec::container::y4m::Y4mReader;
use excam_codec::metrics::PsnrStats;

use super::{EncodeError, Summary};
use crate::container::VideoReader;
use crate::runtime::{run_job_blocking, InputSource, JobConfig};

/// Whether a local ExCamera encode from `input` to `output` can run on the
/// runtime: a regular input file and an output path that is not standard
/// output or a device.
pub fn applies(input: &Path, output: &Path) -> bool {
    let input_ok = input.as_os_str() != "-" && std::fs::metadata(input).is_ok_and(|m| m.is_file());
    let output_ok = output.as_os_str() != "-" && !crate::output::is_special_file(output);
    input_ok && output_ok
}

/// Runs the local job `cfg` on the runtime; returns its summary, with the
/// PSNR of its output against its input (decoded frame by frame).
///
/// # Errors
/// [`EncodeError::Job`] from the job, or a failure to read the output
/// back for the PSNR; no output is left after the former.
pub fn encode_local(cfg: JobConfig) -> Result<Summary, EncodeError> {
    let InputSource::File(input) = cfg.job.input.clone() else {
        return Err(EncodeError::NotLocalFile);
    };
    let (skip, output) = (cfg.job.skip, cfg.job.output.clone());
    let out = run_job_blocking(cfg)?;
    let psnr = psnr(&input, skip, &output)?;
    Ok(Summary {
        frames: out.frames as u64,
        key_frames: out.key_frames as u64,
        bytes: out.bytes,
        kbps: out.kbps,
        psnr: psnr.overall(),
        psnr_planes: psnr.overall_planes(),
        psnr_avg: psnr.average(),
        psnr_avg_planes: psnr.average_planes(),
        elapsed: out.wall,
    })
}

/// The PSNR of the stream at `output` against `input` after `skip`
/// frames, holding one frame of each at a time.
fn psnr(input: &Path, skip: usize, output: &Path) -> Result<PsnrStats, EncodeError> {
    let file = std::fs::File::open(input).map_err(|source| EncodeError::OpenInput {
        path: input.to_path_buf(),
        source,
    })?;
    let mut src = Y4mReader::new(std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(EncodeError::not_y4m(input))?;
    for _ in 0..skip {
        src.next_frame().map_err(EncodeError::read_input(input))?;
    }
    let mut stats = PsnrStats::new();
    let mut state = excam_codec::DecoderState::default();
    for frame in VideoReader::open(output)? {
        let frame = frame.map_err(EncodeError::ReadBack)?;
        let (next, img) =
            excam_codec::decode(&state, &frame.data).map_err(EncodeError::OutputDecode)?;
        state = next;
        if let Some(img) = img {
            let s = src
                .next_frame()
                .map_err(EncodeError::read_input(input))?
                .ok_or(EncodeError::OutputLonger)?;
            stats.add(&s, &img);
        }
    }
    Ok(stats)
}
