//! `excam encode` as a library: Y4M in, VP8 in IVF or WebM out, described
//! by a typed [`EncodeSpec`] (the CLI's flags are resolved into it by the
//! binary, which owns every flag name).
//!
//! Three ways through, all giving the same bytes for the same spec:
//! - [`encode`] with no [`ExCameraShape`]: the streaming
//!   [`Encoder`](excam_codec::encode::encoder::Encoder), frame by frame
//!   (`encode/serial.rs`);
//! - [`encode`] with one: the in-memory ExCamera pipeline
//!   ([`crate::pipeline`]), which reads the whole clip (for standard input
//!   and output and devices);
//! - [`on_runtime::encode_local`]: the same ExCamera job on the runtime's
//!   scheduler ([`crate::runtime::run_job`]), holding only the chunks in
//!   flight, with retries, `--report` and `--resume`.
//!
//! The output is written to a temporary file beside the destination and
//! renamed over it only when the whole stream has been encoded, so a
//! failure (bad input, a truncated frame, a full disk) never leaves a
//! half-written file at the output path (`encode/sink.rs`).

mod excamera;
pub mod on_runtime;
mod serial;
mod sink;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use excam_codec::container::y4m::{Y4mError, Y4mReader};
use excam_codec::encode::encoder::{EncoderConfig, EncoderStatus, FirstPass};
use excam_codec::image::i420_len;
use excam_codec::DecodeError;

use crate::container::{Container, ContainerError, VideoWriter};
use crate::output::OutputError;
use crate::pipeline::PipelineError;
use crate::runtime::progress::FrameProgress;
use crate::runtime::JobError;

/// Why an encode failed. No file is left at the output path in any case.
///
/// The messages are the CLI's: a variant that names a path or a flag
/// says which; its cause, if any, is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The input file cannot be opened.
    #[error("cannot open {}", .path.display())]
    OpenInput {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The input's header is not one of an 8-bit 4:2:0 progressive Y4M
    /// stream (the cause says what was found).
    #[error("cannot read {} as Y4M", .path.display())]
    NotY4m {
        /// The input.
        path: PathBuf,
        /// What the Y4M reader found.
        #[source]
        source: Y4mError,
    },
    /// A frame of the input cannot be read (truncated, or an I/O error).
    #[error("cannot read {}", .path.display())]
    ReadInput {
        /// The input.
        path: PathBuf,
        /// What the Y4M reader found.
        #[source]
        source: Y4mError,
    },
    /// The encoder settings are out of range for this input (the cause
    /// names the setting and its range).
    #[error("invalid encoder settings")]
    Settings(#[source] excam_codec::EncodeError),
    /// `skip` leaves no frame to encode.
    #[error("--skip {skip} skips the whole input: {} has {frames} frames", .path.display())]
    SkipsAll {
        /// Frames to skip.
        skip: u64,
        /// The input.
        path: PathBuf,
        /// Frames the input has (at most `skip`).
        frames: u64,
    },
    /// The input holds no frame.
    #[error("{} has no frames", .path.display())]
    NoFrames {
        /// The input.
        path: PathBuf,
    },
    /// The first pass cannot analyse a frame.
    #[error("first pass failed")]
    FirstPass(#[source] excam_codec::EncodeError),
    /// The first pass's statistics file cannot be written.
    #[error("cannot write {}", .path.display())]
    WriteStats {
        /// The statistics file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The streaming encoder refused a frame.
    #[error("encoding failed")]
    Encoder(#[source] EncoderStatus),
    /// The streaming encoder returned more shown frames than it was sent
    /// (a bug).
    #[error("encoder showed more frames than it was given")]
    ShowedMore,
    /// The in-memory ExCamera pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The in-memory pipeline's stream does not decode (a bug).
    #[error("pipeline output does not decode")]
    PipelineDecode(#[source] DecodeError),
    /// Standard output cannot be written to.
    #[error("cannot write to standard output")]
    Stdout(#[source] io::Error),
    /// A device or FIFO output cannot be opened.
    #[error("cannot open {}", .path.display())]
    OpenOutput {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The temporary output file cannot be opened again for writing.
    #[error("cannot open the temporary output")]
    OpenTemp(#[source] io::Error),
    /// The output cannot be created or put in place.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The container cannot be started.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A frame or the container's end cannot be written.
    #[error("cannot write the output")]
    WriteOutput(#[source] ContainerError),
    /// [`on_runtime::encode_local`] was given an input that is not a
    /// local file.
    #[error("the local backend reads a local file")]
    NotLocalFile,
    /// The job on the runtime failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The runtime's output cannot be read back for the PSNR.
    #[error("cannot read the output back")]
    ReadBack(#[source] ContainerError),
    /// The runtime's output does not decode (a bug).
    #[error("the output does not decode")]
    OutputDecode(#[source] DecodeError),
    /// The runtime's output has more shown frames than the input (a bug).
    #[error("the output has more frames than the input")]
    OutputLonger,
}

impl EncodeError {
    /// Whether the encode ended because its job was cancelled (Ctrl-C).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, EncodeError::Job(j) if j.is_cancelled())
    }

    /// [`EncodeError::NotY4m`] for `path`.
    fn not_y4m(path: &Path) -> impl FnOnce(Y4mError) -> EncodeError + '_ {
        |source| EncodeError::NotY4m {
            path: path.to_path_buf(),
            source,
        }
    }

    /// [`EncodeError::ReadInput`] for `path`.
    fn read_input(path: &Path) -> impl FnOnce(Y4mError) -> EncodeError + '_ {
        |source| EncodeError::ReadInput {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One encode: what to read, how to code it, where to write it.
#[derive(Clone, Debug)]
pub struct EncodeSpec {
    /// Input: an 8-bit 4:2:0 progressive Y4M file, or `-` for standard
    /// input.
    pub input: PathBuf,
    /// Output file, a device or FIFO (written in place), or `-` for
    /// standard output.
    pub output: PathBuf,
    /// The output's container.
    pub container: Container,
    /// Encoder settings; width, height and frame rate are taken from the
    /// input.
    pub encoder: EncoderConfig,
    /// Run a first pass over the clip whose statistics the rate control
    /// spreads the bits by (reads a file twice; holds standard input in
    /// memory).
    pub first_pass: bool,
    /// Also write the first pass's statistics here.
    pub first_pass_file: Option<PathBuf>,
    /// Frames of the input skipped before encoding.
    pub skip: u64,
    /// Most frames encoded (after `skip`).
    pub limit: Option<u64>,
    /// Encode ExCamera-style in chunks on local threads instead of
    /// serially.
    pub excamera: Option<ExCameraShape>,
    /// No progress, no log lines.
    pub quiet: bool,
}

/// An ExCamera\[N,x\] job on local threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExCameraShape {
    /// Worker threads.
    pub workers: usize,
    /// N: frames per chunk.
    pub chunk_frames: usize,
    /// x: chunks per group (each group starts with a key frame).
    pub group_chunks: usize,
}

/// What an encode produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Frames encoded.
    pub frames: u64,
    /// Key frames among them.
    pub key_frames: u64,
    /// Bytes of VP8 data (without the IVF framing).
    pub bytes: u64,
    /// Average bitrate in kbit/s at the input's frame rate.
    pub kbps: f64,
    /// PSNR of the reconstruction against the input, vpxenc's "Overall".
    pub psnr: f64,
    /// Per-plane overall PSNR (Y, U, V).
    pub psnr_planes: [f64; 3],
    /// Mean of the per-frame all-plane PSNRs, vpxenc's "Avg".
    pub psnr_avg: f64,
    /// Means of the per-frame Y, U and V PSNRs, vpxenc's Y/U/V columns.
    pub psnr_avg_planes: [f64; 3],
    /// Wall time of reading, encoding and writing.
    pub elapsed: Duration,
}

impl Summary {
    /// Frames per second of wall time.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// vpxenc's `--psnr` summary line: overall PSNR, then the means of the
/// per-frame all-plane, Y, U and V PSNRs, the bitrate and the wall time.
pub fn psnr_line(s: &Summary) -> String {
    format!(
        "Stream 0 PSNR (Overall/Avg/Y/U/V) {:.3} {:.3} {:.3} {:.3} {:.3} {:7} bps {:7} ms",
        s.psnr,
        s.psnr_avg,
        s.psnr_avg_planes[0],
        s.psnr_avg_planes[1],
        s.psnr_avg_planes[2],
        (s.kbps * 1000.0).round() as u64,
        s.elapsed.as_millis()
    )
}

/// Encodes with the serial encoder, or with [`EncodeSpec::excamera`] the
/// in-memory pipeline, returning the summary ([`on_runtime::encode_local`]
/// runs local ExCamera jobs from a file to a path on the runtime: the
/// same bytes).
///
/// # Errors
///
/// Unreadable or unsupported input (the Y4M reader's error says what was
/// found and what is supported), encoder errors, or output I/O failures;
/// in every case no file is left at the output path.
pub fn encode(spec: &EncodeSpec) -> Result<Summary, EncodeError> {
    let start = Instant::now();
    let (input, input_len) = open_input(&spec.input)?;
    let mut reader = Y4mReader::new(input).map_err(EncodeError::not_y4m(&spec.input))?;
    let hdr = *reader.header();
    let fps = (hdr.framerate.0 as u32, hdr.framerate.1 as u32);
    let mut cfg = spec.encoder.clone();
    (cfg.width, cfg.height) = (hdr.width, hdr.height);
    cfg.framerate = fps;
    cfg.validate().map_err(EncodeError::Settings)?;

    skip_frames(spec, &mut reader)?;
    let held = if spec.first_pass {
        first_pass(spec, &mut reader, &mut cfg)?
    } else {
        None
    };
    let enc = cfg.build().map_err(EncodeError::Settings)?;

    let (dest, out) = sink::open_output(&spec.output)?;
    let writer = VideoWriter::new(
        spec.container,
        out,
        dest.seekable(),
        hdr.width,
        hdr.height,
        fps,
    )?;
    let output = sink::Output::new(writer, dest, fps);

    // A regular file's length gives the frame count: each frame is a
    // 6-byte "FRAME\n" line plus its samples (header line ignored).
    let estimated = input_len
        .map(|l| (l / (i420_len(hdr.width, hdr.height) as u64 + 6)).saturating_sub(spec.skip));
    let total = match (estimated, spec.limit) {
        (Some(e), Some(l)) => Some(e.min(l)),
        (e, l) => e.or(l),
    };
    let progress = FrameProgress::new(spec.quiet, total);
    match spec.excamera {
        Some(shape) => excamera::encode(spec, shape, cfg, reader, output, progress, start),
        None => serial::encode(spec, &cfg, enc, reader, held, output, progress, start),
    }
}

/// Opens the input; returns it with the byte length of a regular file
/// (used to estimate the frame count for the ETA).
fn open_input(path: &Path) -> Result<(Box<dyn Read>, Option<u64>), EncodeError> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(BufReader::new(io::stdin().lock())), None));
    }
    let f = File::open(path).map_err(|source| EncodeError::OpenInput {
        path: path.to_path_buf(),
        source,
    })?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

/// Reads past the `skip` frames.
fn skip_frames<R: Read>(spec: &EncodeSpec, reader: &mut Y4mReader<R>) -> Result<(), EncodeError> {
    for skipped in 0..spec.skip {
        let frame = reader
            .next_frame()
            .map_err(EncodeError::read_input(&spec.input))?;
        if frame.is_none() {
            return Err(EncodeError::SkipsAll {
                skip: spec.skip,
                path: spec.input.clone(),
                frames: skipped,
            });
        }
    }
    Ok(())
}

/// Runs the first pass and hands its statistics to `cfg`. Two passes over
/// standard input hold it in memory (returned, for the second pass); a
/// file is read again.
fn first_pass<R: Read>(
    spec: &EncodeSpec,
    reader: &mut Y4mReader<R>,
    cfg: &mut EncoderConfig,
) -> Result<Option<std::collections::VecDeque<excam_codec::Image>>, EncodeError> {
    let pass = Instant::now();
    let mut held = None;
    let mut fp = FirstPass::new(cfg).map_err(EncodeError::Settings)?;
    let limit = spec.limit.unwrap_or(u64::MAX);
    if spec.input.as_os_str() == "-" {
        let mut frames = std::collections::VecDeque::new();
        while (frames.len() as u64) < limit {
            let Some(f) = reader
                .next_frame()
                .map_err(EncodeError::read_input(&spec.input))?
            else {
                break;
            };
            fp.add_frame(&f).map_err(EncodeError::FirstPass)?;
            frames.push_back(f);
        }
        held = Some(frames);
    } else {
        let (again, _) = open_input(&spec.input)?;
        let mut again = Y4mReader::new(again).map_err(EncodeError::not_y4m(&spec.input))?;
        skip_frames(spec, &mut again)?;
        while (fp.frames() as u64) < limit {
            let Some(f) = again
                .next_frame()
                .map_err(EncodeError::read_input(&spec.input))?
            else {
                break;
            };
            fp.add_frame(&f).map_err(EncodeError::FirstPass)?;
        }
    }
    if fp.frames() == 0 {
        return Err(no_frames(spec));
    }
    let stats = fp.finish();
    if let Some(path) = &spec.first_pass_file {
        std::fs::write(path, stats.to_text()).map_err(|source| EncodeError::WriteStats {
            path: path.clone(),
            source,
        })?;
    }
    if !spec.quiet {
        eprintln!(
            "pass 1/2: {} frames analysed in {:.2} s",
            stats.frames.len(),
            pass.elapsed().as_secs_f64()
        );
    }
    cfg.first_pass = Some(std::sync::Arc::new(stats));
    Ok(held)
}

/// The error for an encode that got no frame: an empty input, or a
/// --skip that took them all.
fn no_frames(spec: &EncodeSpec) -> EncodeError {
    if spec.skip > 0 {
        EncodeError::SkipsAll {
            skip: spec.skip,
            path: spec.input.clone(),
            frames: spec.skip,
        }
    } else {
        EncodeError::NoFrames {
            path: spec.input.clone(),
        }
    }
}
