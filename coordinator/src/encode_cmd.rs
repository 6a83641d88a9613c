//! `excam encode`: Y4M in, VP8 in IVF out, through the streaming
//! [`Encoder`](excam_codec::encode::encoder::Encoder).
//!
//! The output is written to a temporary file beside the destination and
//! renamed over it only when the whole stream has been encoded, so a
//! failure (bad input, a truncated frame, a full disk) never leaves a
//! half-written file at the output path.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{
    BufferModel, EncoderConfig, EncoderStatus, FirstPass, Packet, RateControl, MAX_SPEED,
};
use excam_codec::encode::quantize::qindex_to_quantizer;
use excam_codec::image::i420_len;
use excam_codec::metrics::PsnrStats;

use crate::container::{Container, FrameTime, VideoWriter};
use crate::pipeline::{run_pipeline, Chunk, LocalExchange, Phase, PipelineConfig, PipelineStats};
use crate::runtime::progress::{FrameProgress, PhaseProgress, ProgressMode};

/// Quantizer used when neither `--quantizer` nor `--bitrate` is given.
pub const DEFAULT_QUANTIZER: u8 = 32;

/// Target of `--end-usage vbr|cbr` without `--target-bitrate`: vpxenc's
/// default.
pub const DEFAULT_BITRATE_KBPS: u32 = 256;

/// Speed of the default `--good` deadline.
pub const DEFAULT_SPEED: u8 = 4;

/// `--help` headings, in vpxenc's grouping.
const RATE: &str = "Rate control";
const KEYS: &str = "Key frames";
const SPEED: &str = "Speed";
const PARALLEL: &str = "Parallelism";
const IO: &str = "Input and output";
const CLOUD: &str = "Cloud";

/// vpxenc's `--end-usage` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EndUsage {
    /// Variable bitrate: an average of --target-bitrate. One pass pays
    /// misses back over the next frames; --passes 2 spreads the clip's
    /// bits by a first pass's per-frame sizes and lands on the target over
    /// the clip.
    Vbr,
    /// Constant bitrate: --target-bitrate through a decoder buffer
    /// (--buf-sz, --buf-initial-sz, --buf-optimal-sz) that never runs dry;
    /// a frame too large for it is re-coded coarser (one pass only).
    Cbr,
    /// Constrained quality: no frame finer than --cq-level codes it, with
    /// --target-bitrate (if given) as a cap that raises the quantizer where
    /// the level would cost more. Without a --target-bitrate the level
    /// alone limits quality (as vpxenc with a huge target) and it codes as
    /// q does.
    Cq,
    /// Constant quality: one fixed quantizer, --cq-level.
    Q,
}

/// Arguments of `excam encode`.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Input: 8-bit 4:2:0 progressive Y4M, or `-` for standard input
    /// (e.g. `ffmpeg -i IN -f yuv4mpegpipe - | excam encode - -o OUT.ivf`).
    pub input: PathBuf,
    /// Output file: WebM for .webm or .mkv, else IVF (--ivf and --webm
    /// force one). Replaced only once the encode has succeeded; a device
    /// or FIFO such as /dev/null is written in place, and `-` is
    /// standard output.
    #[arg(short, long, help_heading = IO)]
    pub output: PathBuf,
    /// Write IVF whatever the output's name (vpxenc's --ivf).
    #[arg(long, help_heading = IO, conflicts_with = "webm")]
    pub ivf: bool,
    /// Write WebM whatever the output's name (vpxenc's default container).
    #[arg(long, help_heading = IO)]
    pub webm: bool,
    /// Fixed quantizer of --end-usage q on vpxenc's 0..=63 scale (key and
    /// golden frames are coded finer, within --min-q/--max-q) [default: 32
    /// unless --bitrate is given]. With --end-usage cq, the quality level
    /// (finest quantizer) under the bitrate cap.
    #[arg(short, long, visible_alias = "cq-level", help_heading = RATE, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub quantizer: Option<u8>,
    /// Target bitrate in kbit/s: the average of vbr, the channel rate of
    /// cbr, the cap of cq.
    #[arg(short, long, visible_alias = "target-bitrate", help_heading = RATE, value_parser = clap::value_parser!(u32).range(1..))]
    pub bitrate: Option<u32>,
    /// Rate control mode, as vpxenc: q codes at one quantizer (--cq-level);
    /// vbr meets an average --target-bitrate [default: 256]; cbr meets it
    /// through a decoder buffer that never runs dry; cq codes no finer than
    /// --cq-level, capped by --target-bitrate if given
    /// [default: q, or vbr with --target-bitrate].
    #[arg(long, value_enum, help_heading = RATE)]
    pub end_usage: Option<EndUsage>,
    /// 1: one pass. 2: a fast first pass over the clip measures each
    /// frame's cost, then the encode spreads the target's bits by it (vbr,
    /// cq with a --target-bitrate; reads the input twice, or holds standard
    /// input in memory). Modes without a bitrate target (q, cq alone) need
    /// no statistics and skip the first pass; cbr is one-pass.
    #[arg(long, value_name = "1|2", help_heading = RATE, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub passes: u8,
    /// With --passes 2: also write the first pass's statistics to FILE
    /// (a header, then one line per frame: its bits in the analysis at two
    /// q indices, K or I).
    #[arg(long, value_name = "FILE", help_heading = RATE)]
    pub fpf: Option<PathBuf>,
    /// Best (lowest) quantizer any frame may use, 0..=63, in every mode
    /// (key, golden and alt-ref frames included); --min-q=Q --max-q=Q
    /// alone means --quantizer Q with every frame at Q.
    #[arg(long, value_name = "Q", help_heading = RATE, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub min_q: Option<u8>,
    /// Worst (highest) quantizer any frame may use, 0..=63 (see --min-q).
    /// A cbr frame that does not fit the buffer at it is replaced by a
    /// repeat of the last frame.
    #[arg(long, value_name = "Q", help_heading = RATE, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub max_q: Option<u8>,
    /// cbr: decoder buffer size, in ms of the target bitrate [default: 6000].
    #[arg(long, value_name = "MS", help_heading = RATE, value_parser = clap::value_parser!(u32).range(1..))]
    pub buf_sz: Option<u32>,
    /// cbr: buffer fill before the first frame, ms [default: 4000].
    #[arg(long, value_name = "MS", help_heading = RATE)]
    pub buf_initial_sz: Option<u32>,
    /// cbr: the buffer level the controller steers toward, ms [default: 5000].
    #[arg(long, value_name = "MS", help_heading = RATE)]
    pub buf_optimal_sz: Option<u32>,
    /// Largest key frame interval in frames (0: only the first frame).
    #[arg(long, visible_alias = "kf-max-dist", help_heading = KEYS, default_value_t = 128)]
    pub keyint: u32,
    /// Speed preset 0..=8: 0 is slowest and compresses best [default: 4,
    /// or 8 with --rt, 0 with --best].
    #[arg(short, long, visible_alias = "cpu-used", help_heading = SPEED, value_parser = clap::value_parser!(u8).range(0..=MAX_SPEED as i64))]
    pub speed: Option<u8>,
    /// vpxenc's default deadline: speed 4 unless --speed/--cpu-used says otherwise.
    #[arg(long, help_heading = SPEED, conflicts_with_all = ["rt", "best"])]
    pub good: bool,
    /// Realtime deadline: the fastest speed (8) unless --speed/--cpu-used says otherwise.
    #[arg(long, help_heading = SPEED, conflicts_with = "best")]
    pub rt: bool,
    /// Best-quality deadline: speed 0 unless --speed/--cpu-used says otherwise.
    #[arg(long, help_heading = SPEED)]
    pub best: bool,
    /// Encode at most this many frames (after --skip).
    #[arg(long, help_heading = IO)]
    pub limit: Option<u64>,
    /// Skip this many frames of the input before encoding (local backend).
    #[arg(long, value_name = "FRAMES", help_heading = IO, default_value_t = 0)]
    pub skip: u64,
    /// DCT token partitions (1, 2, 4 or 8).
    #[arg(long, help_heading = PARALLEL, default_value_t = 1, value_parser = parse_partitions)]
    pub partitions: usize,
    /// Token partitions as vpxenc counts them, log2: 0, 1, 2, 3 for 1, 2,
    /// 4, 8 (instead of --partitions).
    #[arg(long, value_name = "LOG2", help_heading = PARALLEL, conflicts_with = "partitions", value_parser = clap::value_parser!(u8).range(0..=3))]
    pub token_parts: Option<u8>,
    /// Accepted for vpxenc compatibility; has no effect today: one encode
    /// runs on one thread and its bytes never depend on a thread count.
    /// Parallelism comes from --workers.
    #[arg(short = 't', long, value_name = "N", help_heading = PARALLEL)]
    pub threads: Option<u32>,
    /// Refresh the golden reference every N frames, coded at a lower
    /// quantizer (0: only on key frames); giving it turns off the groups
    /// planned from the lookahead [default: planned from the lookahead
    /// where there is one, else 12].
    #[arg(long, value_name = "N", help_heading = KEYS)]
    pub golden_interval: Option<u32>,
    /// Golden/alt-ref groups planned from the lookahead (1): long groups
    /// with finely coded references on static content, short ones on
    /// busy content; or a fixed --golden-interval (0). At a fixed
    /// quantizer (q, cq without a target) only: under a bitrate target
    /// the groups are fixed [default: 1 where there is a lookahead].
    #[arg(long, value_name = "0|1", help_heading = KEYS, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub auto_golden: Option<u8>,
    /// Key frames where the content cuts to another scene (1) or only
    /// every --kf-max-dist frames (0); needs a lookahead, and a fixed
    /// quantizer (q, cq without a target) for now [default: 1 where
    /// there is a lookahead].
    #[arg(long, value_name = "0|1", help_heading = KEYS, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub scene_cuts: Option<u8>,
    /// Fewest frames between a key frame and one placed at a scene cut.
    #[arg(long, value_name = "N", help_heading = KEYS, default_value_t = 0)]
    pub kf_min_dist: u32,
    /// Frames of lookahead, 0..=25: the encoder sees this many frames
    /// ahead to build hidden alt-ref frames [default: 25 at speeds 0..=5,
    /// 0 at the realtime speeds 6..=8; 0 with --workers].
    #[arg(long, value_name = "N", help_heading = KEYS, value_parser = clap::value_parser!(u32).range(0..=25))]
    pub lag_in_frames: Option<u32>,
    /// Hidden alt-ref frames (1) or none (0): a temporally filtered future
    /// frame coded finely, never shown, that each golden group predicts
    /// from; needs a lookahead [default: 1 where there is a lookahead].
    #[arg(long, value_name = "0|1", help_heading = KEYS, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub auto_alt_ref: Option<u8>,
    /// Frames the alt-ref's temporal filter averages, 0..=15.
    #[arg(long, value_name = "N", help_heading = KEYS, default_value_t = 7, value_parser = clap::value_parser!(u8).range(0..=15))]
    pub arnr_maxframes: u8,
    /// Strength of the alt-ref's temporal filter, 0..=6.
    #[arg(long, value_name = "S", help_heading = KEYS, default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..=6))]
    pub arnr_strength: u8,
    /// Temporal filter type; only vpxenc's 3 (centred) exists in excam.
    #[arg(long, value_name = "3", help_heading = KEYS, default_value_t = 3, value_parser = clap::value_parser!(u8).range(3..=3))]
    pub arnr_type: u8,
    /// No progress line and no summary.
    #[arg(long, help_heading = IO)]
    pub quiet: bool,
    /// How progress is shown on stderr: a live bar on a terminal and
    /// plain lines otherwise (auto), or always plain lines, or one JSON
    /// object per line for tools, or nothing.
    #[arg(long, value_enum, value_name = "HOW", help_heading = IO, default_value = "auto")]
    pub progress: ProgressMode,
    /// Print vpxenc's PSNR summary line at the end, even with --quiet:
    /// `Stream 0 PSNR (Overall/Avg/Y/U/V)` then the overall PSNR and the
    /// means of the per-frame all-plane, Y, U and V PSNRs (local backend).
    #[arg(long, help_heading = IO)]
    pub psnr: bool,
    /// Encode ExCamera-style on this many local worker threads: the clip
    /// is cut into chunks encoded in parallel, then rebased serially onto
    /// each other's final states. A local run from a file holds only the
    /// chunks in flight; standard input or output reads the whole clip.
    #[arg(short, long, help_heading = PARALLEL, value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// ExCamera N: frames per chunk (one worker's job).
    #[arg(long, help_heading = PARALLEL, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_frames: u64,
    /// ExCamera x: chunks per group; each group starts with a key frame,
    /// so key frames fall every N*x frames.
    #[arg(long, help_heading = PARALLEL, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub group_chunks: u64,
    /// Distributed-runtime flags (`--backend processes|lambda`).
    #[command(flatten)]
    pub dist: crate::runtime::cli::DistArgs,
    /// Print the predicted wall time and cost of this ExCamera job (the
    /// model of `excam plan`) and exit without encoding or calling AWS.
    #[arg(long, help_heading = CLOUD)]
    pub dry_run: bool,
    /// Refuse to start a job predicted to cost more than this many US
    /// dollars (checked before any AWS call).
    #[arg(long, value_name = "USD", help_heading = CLOUD)]
    pub max_cost: Option<f64>,
}

/// The plan of the job `args` describe: the shape read from the input's
/// Y4M header and size, the built-in calibration, and the cloud profile of
/// the backend (Lambda at `--lambda-memory`, or this machine).
fn predict(args: &EncodeArgs) -> anyhow::Result<crate::plan::Plan> {
    use crate::plan::{load_calibration, plan_job, CloudParams, JobShape};
    use crate::runtime::cli::BackendArg;
    let text = args.input.to_string_lossy();
    if text == "-" || text.starts_with("s3://") {
        anyhow::bail!(
            "--dry-run and --max-cost read the frame size and count from a local input; \
             for {text} run `excam plan --width W --height H --frames F` instead"
        );
    }
    let mut shape = JobShape::from_y4m(
        &args.input,
        args.chunk_frames as usize,
        args.group_chunks as usize,
        None,
    )?;
    let d = &args.dist;
    let (cloud, workers) = match d.backend {
        BackendArg::Lambda => {
            let mut c = CloudParams::default();
            c.set_str(&format!("lambda_memory_mb={}", d.lambda_memory))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            (c, d.max_concurrency as usize)
        }
        BackendArg::Processes => (CloudParams::local(), d.max_concurrency as usize),
        BackendArg::Local => (CloudParams::local(), usize::MAX),
    };
    shape.frames = shape.frames.saturating_sub(args.skip as usize);
    if let Some(l) = args.limit {
        shape.frames = shape.frames.min(l as usize);
    }
    anyhow::ensure!(
        shape.frames > 0,
        "--skip and --limit leave no frames to encode"
    );
    let requested = args.workers.map_or(usize::MAX, |w| w as usize);
    shape.workers = shape.chunks().min(workers).min(requested).max(1);
    let plan = plan_job(&shape, &load_calibration(None)?, &cloud)
        .map_err(|e| anyhow::anyhow!("cannot plan this job: {e}"))?;
    Ok(plan)
}

fn parse_partitions(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ (1 | 2 | 4 | 8)) => Ok(n),
        _ => Err(format!("{s:?} is not 1, 2, 4 or 8")),
    }
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

/// Runs `excam encode` and prints its summary on stderr.
///
/// # Errors
///
/// Unreadable or unsupported input (the Y4M reader's error says what was
/// found and what is supported), encoder errors, or output I/O failures;
/// in every case no file is left at the output path.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    args.progress.set_global();
    if args.dry_run || args.max_cost.is_some() {
        let plan = predict(&args)?;
        if args.dry_run {
            print!("{}", crate::plan::render(&plan));
            if let Some(max) = args.max_cost {
                println!(
                    "--max-cost {max}: {}",
                    match crate::plan::check_max_cost(&plan, max) {
                        Ok(()) => "within budget".to_string(),
                        Err(e) => e,
                    }
                );
            }
            return Ok(());
        }
        if let Some(max) = args.max_cost {
            crate::plan::check_max_cost(&plan, max).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    if args.dist.backend == crate::runtime::cli::BackendArg::Lambda && !cfg!(feature = "cloud") {
        bail!(
            "--backend lambda needs the AWS SDK, and this excam was built without the \
             `cloud` feature (build it with default features)"
        );
    }
    if args.dist.backend != crate::runtime::cli::BackendArg::Local {
        return crate::encode_runtime::run_distributed(job_config(&args)?);
    }
    let quiet = args.quiet;
    let s = if args.workers.is_some() && crate::encode_runtime::applies(&args.input, &args.output) {
        encode_on_runtime(&args)?
    } else {
        encode(&args)?
    };
    if !quiet {
        eprintln!(
            "{} frames ({} key) -> {}: {:.2} kbit/s, PSNR overall {:.3} dB (Y {:.3} U {:.3} V {:.3}), {:.2} s, {:.1} fps",
            s.frames,
            s.key_frames,
            args.output.display(),
            s.kbps,
            s.psnr,
            s.psnr_planes[0],
            s.psnr_planes[1],
            s.psnr_planes[2],
            s.elapsed.as_secs_f64(),
            s.fps()
        );
    }
    if args.psnr {
        eprintln!("{}", psnr_line(&s));
    }
    Ok(())
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

/// The rate control `args` ask for: vpxenc's `--end-usage`,
/// `--target-bitrate`, `--cq-level`, `--buf-*` and `--min-q/--max-q`
/// resolved onto the encoder's modes, or an error saying which
/// combination makes no sense and what to use instead.
fn rate_control(args: &EncodeArgs) -> anyhow::Result<RateControl> {
    let (min_q, max_q) = (args.min_q.unwrap_or(0), args.max_q.unwrap_or(63));
    if min_q > max_q {
        bail!("--min-q {min_q} is above --max-q {max_q}");
    }
    let usage = end_usage(args);
    let buffer_flags =
        args.buf_sz.is_some() || args.buf_initial_sz.is_some() || args.buf_optimal_sz.is_some();
    if buffer_flags && usage != EndUsage::Cbr {
        bail!(
            "--buf-sz/--buf-initial-sz/--buf-optimal-sz size the decoder buffer of --end-usage cbr"
        );
    }
    if args.passes == 2 && usage == EndUsage::Cbr {
        bail!("--end-usage cbr is one-pass (its buffer model looks at the past only); use --passes 1, or --end-usage vbr --passes 2 for a two-pass average");
    }
    if args.fpf.is_some() && args.passes != 2 {
        bail!("--fpf writes the first pass's statistics: it needs --passes 2");
    }
    match usage {
        EndUsage::Q => {
            if args.bitrate.is_some() {
                bail!(
                    "--end-usage q codes at one quantizer (--cq-level) and takes no \
                     --target-bitrate; use --end-usage vbr for a bitrate target, or cq for a cap"
                );
            }
            Ok(RateControl::Quantizer(fixed_quantizer(args, min_q, max_q)))
        }
        EndUsage::Cq => match args.bitrate {
            None => Ok(RateControl::Quantizer(fixed_quantizer(args, min_q, max_q))),
            Some(kbps) => Ok(RateControl::ConstrainedQuality {
                level: args
                    .quantizer
                    .unwrap_or(DEFAULT_QUANTIZER)
                    .clamp(min_q, max_q),
                kbps,
            }),
        },
        EndUsage::Vbr | EndUsage::Cbr => {
            if args.quantizer.is_some() {
                bail!("--cq-level/--quantizer sets the quantizer of --end-usage q or the level of cq, not of vbr or cbr (bound them with --min-q/--max-q)");
            }
            let kbps = args.bitrate.unwrap_or(DEFAULT_BITRATE_KBPS);
            if usage == EndUsage::Vbr {
                return Ok(RateControl::Bitrate { kbps });
            }
            let d = BufferModel::default();
            let buffer = BufferModel {
                size_ms: args.buf_sz.unwrap_or(d.size_ms),
                initial_ms: args.buf_initial_sz.unwrap_or(d.initial_ms),
                optimal_ms: args.buf_optimal_sz.unwrap_or(d.optimal_ms),
            };
            if buffer.initial_ms > buffer.size_ms || buffer.optimal_ms > buffer.size_ms {
                bail!(
                    "--buf-initial-sz {} and --buf-optimal-sz {} must not exceed --buf-sz {}",
                    buffer.initial_ms,
                    buffer.optimal_ms,
                    buffer.size_ms
                );
            }
            Ok(RateControl::Cbr { kbps, buffer })
        }
    }
}

/// `--end-usage`, or its default: q, or vbr with a --target-bitrate.
fn end_usage(args: &EncodeArgs) -> EndUsage {
    match args.end_usage {
        Some(u) => u,
        None if args.bitrate.is_some() => EndUsage::Vbr,
        None => EndUsage::Q,
    }
}

/// The quantizer of q mode (and of cq without a cap): --cq-level, or
/// --min-q=Q --max-q=Q alone, as in vpxenc, within [--min-q, --max-q].
fn fixed_quantizer(args: &EncodeArgs, min_q: u8, max_q: u8) -> u8 {
    let pinned = (min_q == max_q && args.min_q.is_some()).then_some(min_q);
    let q = args.quantizer.or(pinned).unwrap_or(DEFAULT_QUANTIZER);
    q.clamp(min_q, max_q)
}

/// Whether the encode `args` ask for runs a first pass: two passes and a
/// bitrate target to spread (a fixed quantizer needs no statistics).
pub fn needs_first_pass(args: &EncodeArgs) -> bool {
    args.passes == 2 && args.bitrate.is_some() && end_usage(args) == EndUsage::Cq
        || args.passes == 2 && end_usage(args) == EndUsage::Vbr
}

/// The speed `args` ask for: `--speed`/`--cpu-used`, else the deadline
/// preset's (`--rt` the fastest, `--best` the slowest, `--good` the default).
pub(crate) fn speed(args: &EncodeArgs) -> u8 {
    args.speed.unwrap_or(if args.rt {
        MAX_SPEED
    } else if args.best {
        0
    } else {
        DEFAULT_SPEED
    })
}

/// The encoder settings `args` ask for, for a `width` x `height` input.
///
/// # Errors
///
/// A combination of rate-control flags excam does not support.
pub(crate) fn encoder_config(
    args: &EncodeArgs,
    width: usize,
    height: usize,
) -> anyhow::Result<EncoderConfig> {
    let mut cfg = EncoderConfig::with_speed(width, height, speed(args));
    cfg.rate = rate_control(args)?;
    cfg.quantizer_range = (args.min_q.unwrap_or(0), args.max_q.unwrap_or(63));
    if args.workers.is_some() {
        if matches!(
            cfg.rate,
            RateControl::Cbr { .. } | RateControl::ConstrainedQuality { .. }
        ) {
            bail!("--workers runs fixed-quantizer or one-pass vbr chunks; --end-usage cbr and cq with a --target-bitrate need the serial encoder (drop --workers)");
        }
        if args.passes == 2 {
            bail!("--passes 2 is not supported with --workers yet (each chunk is one-pass)");
        }
        if cfg.quantizer_range != (0, 63) {
            bail!("--min-q/--max-q are not carried to --workers chunks yet; use --quantizer");
        }
    }
    cfg.keyint = args.keyint;
    cfg.partitions = args.token_parts.map_or(args.partitions, |n| 1 << n);
    if let Some(g) = args.golden_interval {
        cfg.golden.interval = g;
        cfg.group.adaptive = false;
    }
    if let Some(a) = args.auto_golden {
        cfg.group.adaptive = a == 1;
    }
    if let Some(c) = args.scene_cuts {
        cfg.scene_cuts = c == 1;
    }
    cfg.kf_min_dist = args.kf_min_dist;
    if args.workers.is_some() {
        // ExCamera chunks are coded frame by frame (no lookahead yet).
        cfg.lag_in_frames = 0;
        cfg.alt_ref.enabled = false;
    }
    if let Some(lag) = args.lag_in_frames {
        cfg.lag_in_frames = lag;
        cfg.alt_ref.enabled = lag > 0;
    }
    if let Some(arf) = args.auto_alt_ref {
        cfg.alt_ref.enabled = arf == 1;
    }
    if cfg.alt_ref.enabled && args.workers.is_some() {
        bail!("--auto-alt-ref 1 is not supported with --workers yet (chunks have no lookahead)");
    }
    cfg.alt_ref.arnr.max_frames = args.arnr_maxframes;
    cfg.alt_ref.arnr.strength = args.arnr_strength;
    Ok(cfg)
}

/// The runtime job `args` describe (`--backend`, or `--workers` on the
/// local backend).
///
/// # Errors
/// Inconsistent flags.
pub fn job_config(args: &EncodeArgs) -> anyhow::Result<crate::runtime::JobConfig> {
    let job = crate::runtime::cli::EncodeJob {
        input: args.input.to_string_lossy().into_owned(),
        output: args.output.clone(),
        container: container(args),
        // Size and rate are filled from the input by the runtime.
        codec: excam_worker::task::CodecParams::from_config(&encoder_config(args, 16, 16)?),
        chunk_frames: args.chunk_frames as usize,
        group_chunks: args.group_chunks as usize,
        skip: args.skip as usize,
        limit: args.limit.map(|l| l as usize),
        psnr: args.psnr,
        workers: args.workers.map(|w| w as usize),
        quiet: args.quiet,
    };
    crate::runtime::cli::job_config(&job, &args.dist)
}

/// A temporary file beside `output`, to be put in place by
/// [`crate::output::persist`]; it deletes itself if dropped before that,
/// so a failed run leaves nothing at or near the output path.
pub(crate) fn temp_output(output: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    crate::output::temp_beside(output)
}

/// Opens the input; returns it with the byte length of a regular file
/// (used to estimate the frame count for the ETA).
fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(BufReader::new(io::stdin().lock())), None));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

/// Runs the local ExCamera job `args` describe on the runtime (tasks in
/// this process): retries, `--report`, `--resume`, memory bounded by the
/// tasks in flight; same bytes as [`encode`]'s in-memory pipeline.
///
/// # Errors
/// As [`crate::runtime::run_job`]; no output is left then.
pub fn encode_on_runtime(args: &EncodeArgs) -> anyhow::Result<Summary> {
    let (out, psnr) = crate::encode_runtime::encode_local(job_config(args)?)?;
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

/// Encodes with the serial encoder, or with `--workers` the in-memory
/// pipeline, returning the summary instead of printing it ([`run`] takes
/// [`encode_on_runtime`] for local ExCamera runs from a file to a path:
/// the same bytes).
///
/// # Errors
///
/// As [`run`].
pub fn encode(args: &EncodeArgs) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let (input, input_len) = open_input(&args.input)?;
    let mut reader = Y4mReader::new(input)
        .with_context(|| format!("cannot read {} as Y4M", args.input.display()))?;
    let hdr = *reader.header();
    let fps = (hdr.framerate.0 as u32, hdr.framerate.1 as u32);
    let mut cfg = encoder_config(args, hdr.width, hdr.height)?;
    cfg.framerate = fps;
    cfg.validate().context("invalid encoder settings")?;

    skip_frames(args, &mut reader)?;
    // Two passes over standard input hold it in memory; a file is read
    // again.
    let mut held: Option<std::collections::VecDeque<excam_codec::Frame>> = None;
    if needs_first_pass(args) {
        let pass = Instant::now();
        let mut fp = FirstPass::new(&cfg).context("invalid encoder settings")?;
        let limit = args.limit.unwrap_or(u64::MAX);
        if args.input.as_os_str() == "-" {
            let mut frames = std::collections::VecDeque::new();
            while (frames.len() as u64) < limit {
                let Some(f) = reader
                    .next_frame()
                    .with_context(|| format!("cannot read {}", args.input.display()))?
                else {
                    break;
                };
                fp.add_frame(&f).context("first pass failed")?;
                frames.push_back(f);
            }
            held = Some(frames);
        } else {
            let (again, _) = open_input(&args.input)?;
            let mut again = Y4mReader::new(again)
                .with_context(|| format!("cannot read {} as Y4M", args.input.display()))?;
            skip_frames(args, &mut again)?;
            while (fp.frames() as u64) < limit {
                let Some(f) = again
                    .next_frame()
                    .with_context(|| format!("cannot read {}", args.input.display()))?
                else {
                    break;
                };
                fp.add_frame(&f).context("first pass failed")?;
            }
        }
        if fp.frames() == 0 {
            return Err(no_frames(args));
        }
        let stats = fp.finish();
        if let Some(path) = &args.fpf {
            std::fs::write(path, stats.to_text())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if !args.quiet {
            eprintln!(
                "pass 1/2: {} frames analysed in {:.2} s",
                stats.frames.len(),
                pass.elapsed().as_secs_f64()
            );
        }
        cfg.first_pass = Some(std::sync::Arc::new(stats));
    }
    let mut enc = cfg.build().context("invalid encoder settings")?;

    let (tmp, out) = open_output(&args.output)?;
    let mut ivf = VideoWriter::new(
        container(args),
        out,
        tmp.seekable(),
        hdr.width,
        hdr.height,
        fps,
    )?;

    // A regular file's length gives the frame count: each frame is a
    // 6-byte "FRAME\n" line plus its samples (header line ignored).
    let estimated = input_len
        .map(|l| (l / (i420_len(hdr.width, hdr.height) as u64 + 6)).saturating_sub(args.skip));
    let total = match (estimated, args.limit) {
        (Some(e), Some(l)) => Some(e.min(l)),
        (e, l) => e.or(l),
    };
    let mut progress = FrameProgress::new(args.quiet, total);

    let mut psnr = PsnrStats::new();
    let (mut frames, mut key_frames, mut bytes) = (0u64, 0u64, 0u64);
    let seconds_per_frame = fps.1 as f64 / fps.0 as f64;
    if let Some(workers) = args.workers {
        progress.clear();
        let mut source = Vec::new();
        while (source.len() as u64) < args.limit.unwrap_or(u64::MAX) {
            match reader
                .next_frame()
                .with_context(|| format!("cannot read {}", args.input.display()))?
            {
                Some(f) => source.push(f),
                None => break,
            }
        }
        if source.is_empty() {
            return Err(no_frames(args));
        }
        let pcfg = PipelineConfig {
            chunk_frames: args.chunk_frames as usize,
            group_chunks: args.group_chunks as usize,
            workers: workers as usize,
            encoder: cfg.clone(),
        };
        let chunks = run_with_progress(&source, &pcfg, args.quiet)?;
        let mut state = excam_codec::DecoderState::default();
        for f in chunks.iter().flat_map(|c| c.frames.iter()) {
            let (next, img) =
                excam_codec::decode(&state, f).context("pipeline output does not decode")?;
            state = next;
            if let Some(img) = img {
                psnr.add(&source[frames as usize], &img);
            }
            ivf.write_frame(frames, f, f[0] & 1 == 0)
                .context("cannot write the output")?;
            key_frames += (f[0] & 1 == 0) as u64;
            bytes += f.len() as u64;
            frames += 1;
        }
        return finish(
            args,
            ivf,
            tmp,
            frames,
            key_frames,
            bytes,
            seconds_per_frame,
            psnr,
            start,
        );
    }
    let mut waiting = std::collections::VecDeque::new();
    let mut read = 0u64;
    let mut buffer_min: Option<u64> = None;
    let mut out = Drained {
        ivf,
        psnr,
        frames,
        key_frames,
        bytes,
        hidden_in_row: 0,
        last_pts: None,
    };
    // Writes every packet the encoder has ready, and the progress line.
    let mut drain = |enc: &mut excam_codec::encode::encoder::Encoder,
                     waiting: &mut std::collections::VecDeque<excam_codec::Frame>,
                     out: &mut Drained|
     -> anyhow::Result<()> {
        loop {
            let p: Packet = match enc.receive_packet() {
                Ok(p) => p,
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => return Ok(()),
                Err(e) => return Err(status_error(e)),
            };
            out.write(&p)?;
            if let Some(level) = enc.buffer_level() {
                buffer_min = Some(buffer_min.map_or(level, |m| m.min(level)));
            }
            if let Some(rec) = &p.reconstruction {
                let src = waiting
                    .pop_front()
                    .context("encoder showed more frames than it was given")?;
                out.psnr.add(&src, &rec.to_frame());
            }
            progress.update(
                out.frames,
                out.bytes,
                seconds_per_frame,
                qindex_to_quantizer(p.q_index),
            );
        }
    };
    while read < args.limit.unwrap_or(u64::MAX) {
        let next = match &mut held {
            Some(frames) => frames.pop_front(),
            None => reader
                .next_frame()
                .with_context(|| format!("cannot read {}", args.input.display()))?,
        };
        let Some(frame) = next else {
            break;
        };
        enc.send_frame(Some(frame.clone())).map_err(status_error)?;
        // The source frames the lookahead still holds, for the PSNR.
        waiting.push_back(frame);
        read += 1;
        drain(&mut enc, &mut waiting, &mut out)?;
    }
    enc.flush();
    drain(&mut enc, &mut waiting, &mut out)?;
    let Drained {
        frames,
        key_frames,
        bytes,
        psnr,
        ..
    } = out;
    progress.finish(frames, bytes, seconds_per_frame);
    if frames == 0 {
        return Err(no_frames(args));
    }
    if let (Some(min), Some(kbps), false) = (buffer_min, cfg.rate.kbps(), args.quiet) {
        eprintln!(
            "cbr buffer: lowest level {:.0} ms ({min} bits)",
            min as f64 / kbps as f64
        );
    }

    finish(
        args,
        out.ivf,
        tmp,
        frames,
        key_frames,
        bytes,
        seconds_per_frame,
        psnr,
        start,
    )
}

/// Reads past the `--skip` frames.
fn skip_frames<R: Read>(args: &EncodeArgs, reader: &mut Y4mReader<R>) -> anyhow::Result<()> {
    for skipped in 0..args.skip {
        let frame = reader
            .next_frame()
            .with_context(|| format!("cannot read {}", args.input.display()))?;
        if frame.is_none() {
            bail!(
                "--skip {} skips the whole input: {} has {skipped} frames",
                args.skip,
                args.input.display()
            );
        }
    }
    Ok(())
}

/// The output side of the serial encode: the container and the counts
/// the summary reports.
struct Drained {
    ivf: VideoWriter,
    psnr: PsnrStats,
    /// Shown frames written.
    frames: u64,
    key_frames: u64,
    /// Bytes of every frame, hidden ones included.
    bytes: u64,
    /// Hidden frames written since the last shown one.
    hidden_in_row: u64,
    /// The last shown frame's time.
    last_pts: Option<u64>,
}

impl Drained {
    /// Writes one packet. A hidden frame has no time of its own: it is
    /// stamped just after the last shown frame, as vpxenc does, so that
    /// timestamps stay increasing.
    fn write(&mut self, p: &Packet) -> anyhow::Result<()> {
        let when = if p.show_frame {
            self.hidden_in_row = 0;
            self.last_pts = Some(p.pts);
            FrameTime::Shown(p.pts)
        } else {
            self.hidden_in_row += 1;
            FrameTime::Hidden {
                after: self.last_pts,
                nth: self.hidden_in_row,
                next: p.pts,
            }
        };
        self.ivf
            .write_frame_at(when, &p.data, p.key_frame)
            .context("cannot write the output")?;
        self.frames += p.show_frame as u64;
        self.key_frames += p.key_frame as u64;
        self.bytes += p.data.len() as u64;
        Ok(())
    }
}

/// The error for an encode that got no frame: an empty input, or a
/// --skip that took them all.
fn no_frames(args: &EncodeArgs) -> anyhow::Error {
    if args.skip > 0 {
        anyhow::anyhow!(
            "--skip {} skips the whole input: {} has {} frames",
            args.skip,
            args.input.display(),
            args.skip
        )
    } else {
        anyhow::anyhow!("{} has no frames", args.input.display())
    }
}

/// Opens where the IVF goes. A regular path gets a temporary file beside
/// it (returned), which deletes itself when dropped, i.e. on every error
/// path; only `persist` at the end puts it at the output path. A device
/// or FIFO (`/dev/null`, a named pipe) cannot be renamed over, so it is
/// opened and written in place, as vpxenc does.
fn open_output(output: &Path) -> anyhow::Result<(Dest, File)> {
    if output == Path::new("-") {
        // Standard output, as vpxenc's `-o -`: a pipe is streamed, a
        // redirected file is patched in place at the end.
        use std::os::fd::AsFd;
        let mut file = File::from(
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot write to standard output")?,
        );
        let seekable = file.stream_position().is_ok();
        return Ok((Dest::InPlace { seekable }, file));
    }
    if crate::output::is_special_file(output) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(output)
            .with_context(|| format!("cannot open {}", output.display()))?;
        let seekable = file.stream_position().is_ok();
        return Ok((Dest::InPlace { seekable }, file));
    }
    let tmp = temp_output(output)?;
    let file = tmp.reopen().context("cannot open the temporary output")?;
    Ok((Dest::Temp(tmp), file))
}

/// How the output reaches its path: see [`open_output`].
enum Dest {
    /// Renamed over the path once complete.
    Temp(tempfile::NamedTempFile),
    /// Written in place; a pipe cannot seek back to patch the frame count.
    InPlace { seekable: bool },
}

impl Dest {
    /// Whether the output can be seeked back to patch its headers.
    fn seekable(&self) -> bool {
        match self {
            Dest::Temp(_) => true,
            Dest::InPlace { seekable } => *seekable,
        }
    }
}

/// The container `args` ask for: --ivf or --webm, else the output's
/// extension's.
pub fn container(args: &EncodeArgs) -> Container {
    if args.ivf {
        Container::Ivf
    } else if args.webm {
        Container::Webm
    } else {
        Container::from_path(&args.output)
    }
}

/// Completes the output file, moves it into place and sums up.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &EncodeArgs,
    ivf: VideoWriter,
    tmp: Dest,
    frames: u64,
    key_frames: u64,
    bytes: u64,
    seconds_per_frame: f64,
    psnr: PsnrStats,
    start: Instant,
) -> anyhow::Result<Summary> {
    ivf.finish(tmp.seekable())
        .context("cannot write the output")?;
    if let Dest::Temp(tmp) = tmp {
        crate::output::persist(tmp, &args.output)?;
    }
    let secs = frames as f64 * seconds_per_frame;
    Ok(Summary {
        frames,
        key_frames,
        bytes,
        kbps: bytes as f64 * 8.0 / secs / 1000.0,
        psnr: psnr.overall(),
        psnr_planes: psnr.overall_planes(),
        psnr_avg: psnr.average(),
        psnr_avg_planes: psnr.average_planes(),
        elapsed: start.elapsed(),
    })
}

fn status_error(e: EncoderStatus) -> anyhow::Error {
    anyhow::Error::new(e).context("encoding failed")
}

/// Runs the ExCamera pipeline, reporting chunks done per phase.
fn run_with_progress(
    frames: &[excam_codec::Frame],
    cfg: &PipelineConfig,
    quiet: bool,
) -> anyhow::Result<Vec<Chunk>> {
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
