//! `excam encode`: the command's flags (clap) and what they resolve to.
//!
//! This module is the binary's: the library takes a typed
//! [`EncodeSpec`](excam_coordinator::encode::EncodeSpec) or
//! [`JobConfig`](excam_coordinator::runtime::JobConfig). The flags and
//! their mapping onto [`EncoderConfig`](excam_codec::encode::encoder::EncoderConfig)
//! live in [`flags`]; the distributed runtime's flags in [`dist`].
//!
//! Besides `excam`'s `main`, `coordinator/tests/encode_cli.rs` includes
//! this module by path, so it names the library as `excam_coordinator`
//! and nothing of the binary outside this directory.

mod dist;
mod flags;

use std::path::PathBuf;

use anyhow::bail;
use excam_codec::encode::encoder::MAX_SPEED;
use excam_coordinator::encode::{on_runtime, psnr_line, Summary};
use excam_coordinator::runtime::progress::ProgressMode;

use dist::{BackendArg, DistArgs};
use flags::{encode_spec, job_config};

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
    /// Threads per frame: macroblock rows are decided as a wavefront
    /// (a row starts a macroblock once the row above is two ahead). The
    /// bytes are the same for any count. With --workers each chunk is
    /// coded on one thread (the workers are the parallelism) and this is
    /// not used [default: the cores available].
    #[arg(short = 't', long, value_name = "N", help_heading = PARALLEL, value_parser = clap::value_parser!(u32).range(1..=256))]
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
    pub progress: ProgressArg,
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
    pub dist: DistArgs,
    /// Print the predicted wall time and cost of this ExCamera job (the
    /// model of `excam plan`) and exit without encoding or calling AWS.
    #[arg(long, help_heading = CLOUD)]
    pub dry_run: bool,
    /// Refuse to start a job predicted to cost more than this many US
    /// dollars (checked before any AWS call).
    #[arg(long, value_name = "USD", help_heading = CLOUD)]
    pub max_cost: Option<f64>,
}

/// `--progress`: how progress is shown
/// ([`ProgressMode`] without clap's derive in the library).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// A live bar redrawn in place (indicatif draws it only on a terminal).
    Bar,
    /// A plain line every 2 s and at the end.
    Plain,
    /// One JSON object per line, per update, for tools.
    Json,
    /// Nothing (what `--quiet` selects).
    None,
}

impl From<ProgressArg> for ProgressMode {
    fn from(a: ProgressArg) -> ProgressMode {
        match a {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Json => ProgressMode::Json,
            ProgressArg::None => ProgressMode::None,
        }
    }
}

/// Runs `excam encode` and prints its summary on stderr.
///
/// # Errors
///
/// Inconsistent flags, unreadable or unsupported input (the Y4M reader's
/// error says what was found and what is supported), encoder errors, or
/// output I/O failures; in every case no file is left at the output path.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    ProgressMode::from(args.progress).set_global();
    if args.dry_run || args.max_cost.is_some() {
        let plan = predict(&args)?;
        if args.dry_run {
            print!("{}", excam_coordinator::plan::render(&plan));
            if let Some(max) = args.max_cost {
                println!(
                    "--max-cost {max}: {}",
                    match excam_coordinator::plan::check_max_cost(&plan, max) {
                        Ok(()) => "within budget".to_string(),
                        Err(e) => e,
                    }
                );
            }
            return Ok(());
        }
        if let Some(max) = args.max_cost {
            excam_coordinator::plan::check_max_cost(&plan, max)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    if args.dist.backend == BackendArg::Lambda && !cfg!(feature = "cloud") {
        bail!(
            "--backend lambda needs the AWS SDK, and this excam was built without the \
             `cloud` feature (build it with default features)"
        );
    }
    if args.output.to_str().is_some_and(|o| o.starts_with("s3://"))
        && args.dist.backend != BackendArg::Lambda
    {
        bail!(
            "-o {} assembles the output in S3 from the chunk objects, so the job's store \
             must be in S3: use --backend lambda --bucket BUCKET",
            args.output.display()
        );
    }
    if args.dist.backend != BackendArg::Local {
        return dist::run_distributed(job_config(&args)?);
    }
    let quiet = args.quiet;
    let s = if args.workers.is_some() && on_runtime::applies(&args.input, &args.output) {
        on_runtime::encode_local(job_config(&args)?)?
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

/// Encodes what `args` describe with the serial encoder, or with
/// `--workers` the in-memory pipeline, returning the summary instead of
/// printing it ([`run`] takes the runtime for local ExCamera runs from a
/// file to a path: the same bytes).
///
/// # Errors
///
/// As [`run`].
pub fn encode(args: &EncodeArgs) -> anyhow::Result<Summary> {
    Ok(excam_coordinator::encode::encode(&encode_spec(args)?)?)
}

/// The plan of the job `args` describe: the shape read from the input's
/// Y4M header and size, the built-in calibration, and the cloud profile of
/// the backend (Lambda at `--lambda-memory`, or this machine).
fn predict(args: &EncodeArgs) -> anyhow::Result<excam_coordinator::plan::Plan> {
    use excam_coordinator::plan::{load_calibration, plan_job, CloudParams, JobShape};
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
