//! `excam encode`: Y4M in, VP8 in IVF out, through the streaming
//! [`Encoder`](excam_codec::encode::encoder::Encoder).
//!
//! The output is written to a temporary file beside the destination and
//! renamed over it only when the whole stream has been encoded, so a
//! failure (bad input, a truncated frame, a full disk) never leaves a
//! half-written file at the output path.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use excam_codec::container::ivf::{IvfHeader, IvfWriter};
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{
    EncoderConfig, EncoderStatus, GoldenPolicy, Packet, RateControl, MAX_SPEED,
};
use excam_codec::encode::quantize::qindex_to_quantizer;
use excam_codec::image::i420_len;
use excam_codec::metrics::PsnrStats;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::{run_pipeline, Chunk, LocalExchange, Phase, PipelineConfig, PipelineStats};

/// Quantizer used when neither `--quantizer` nor `--bitrate` is given.
pub const DEFAULT_QUANTIZER: u8 = 32;

/// Arguments of `excam encode`.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Input: 8-bit 4:2:0 progressive Y4M, or `-` for standard input
    /// (e.g. `ffmpeg -i IN -f yuv4mpegpipe - | excam encode - -o OUT.ivf`).
    pub input: PathBuf,
    /// Output IVF file (replaced only once the encode has succeeded).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Fixed quantizer on vpxenc's 0..=63 scale (like `--min-q=Q --max-q=Q`)
    /// [default: 32 unless --bitrate is given].
    #[arg(short, long, value_parser = clap::value_parser!(u8).range(0..=63), conflicts_with = "bitrate")]
    pub quantizer: Option<u8>,
    /// Target bitrate in kbit/s (one pass).
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
    pub bitrate: Option<u32>,
    /// Largest key frame interval in frames (0: only the first frame).
    #[arg(long, default_value_t = 128)]
    pub keyint: u32,
    /// Speed preset 0..=8: 0 is slowest and compresses best.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=MAX_SPEED as i64))]
    pub speed: u8,
    /// Encode at most this many frames.
    #[arg(long)]
    pub limit: Option<u64>,
    /// DCT token partitions (1, 2, 4 or 8).
    #[arg(long, default_value_t = 1, value_parser = parse_partitions)]
    pub partitions: usize,
    /// Refresh the golden reference every N frames, coded at a lower
    /// quantizer (0: only on key frames).
    #[arg(long, default_value_t = GoldenPolicy::default().interval)]
    pub golden_interval: u32,
    /// No progress line and no summary.
    #[arg(long)]
    pub quiet: bool,
    /// Encode ExCamera-style on this many local worker threads: the clip
    /// is cut into chunks encoded in parallel, then rebased serially onto
    /// each other's final states (reads the whole clip into memory).
    #[arg(short, long, value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// ExCamera N: frames per chunk (one worker's job).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_frames: u64,
    /// ExCamera x: chunks per group; each group starts with a key frame,
    /// so key frames fall every N*x frames.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub group_chunks: u64,
    /// Distributed-runtime flags (`--backend processes|lambda`).
    #[command(flatten)]
    pub dist: crate::runtime::cli::DistArgs,
    /// Print the predicted wall time and cost of this ExCamera job (the
    /// model of `excam plan`) and exit without encoding or calling AWS.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse to start a job predicted to cost more than this many US
    /// dollars (checked before any AWS call).
    #[arg(long, value_name = "USD")]
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
    if args.dist.backend != crate::runtime::cli::BackendArg::Local {
        return crate::runtime::cli::run_distributed(&args);
    }
    let quiet = args.quiet;
    let s = encode(&args)?;
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
    Ok(())
}

/// Opens the input; returns it with the byte length of a regular file
/// (used to estimate the frame count for the ETA).
/// The encoder settings `args` ask for, for a `width` x `height` input.
pub(crate) fn encoder_config(args: &EncodeArgs, width: usize, height: usize) -> EncoderConfig {
    let mut cfg = EncoderConfig::new(width, height);
    cfg.rate = match (args.quantizer, args.bitrate) {
        (_, Some(kbps)) => RateControl::Bitrate { kbps },
        (q, None) => RateControl::Quantizer(q.unwrap_or(DEFAULT_QUANTIZER)),
    };
    cfg.keyint = args.keyint;
    cfg.speed = args.speed;
    cfg.partitions = args.partitions;
    cfg.golden.interval = args.golden_interval;
    cfg
}

/// A temporary file beside `output` (`.NAME.XXXX.part`), to be renamed
/// over it once complete; it deletes itself if dropped before that, so a
/// failed run leaves nothing at or near the output path.
pub(crate) fn temp_output(output: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(BufReader::new(io::stdin().lock())), None));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

/// Encodes as [`run`] does, returning the summary instead of printing it.
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
    let mut cfg = encoder_config(args, hdr.width, hdr.height);
    cfg.framerate = fps;
    let mut enc = cfg.build().context("invalid encoder settings")?;

    // The temporary file deletes itself when dropped, i.e. on every error
    // path; only `persist` at the end puts it at the output path.
    let tmp = temp_output(&args.output)?;
    let out = BufWriter::new(tmp.reopen().context("cannot open the temporary output")?);
    let ivf_hdr = IvfHeader::vp8(hdr.width as u16, hdr.height as u16, fps.1, fps.0);
    let mut ivf = IvfWriter::new(out, &ivf_hdr)?;

    // A regular file's length gives the frame count: each frame is a
    // 6-byte "FRAME\n" line plus its samples (header line ignored).
    let estimated = input_len.map(|l| l / (i420_len(hdr.width, hdr.height) as u64 + 6));
    let total = match (estimated, args.limit) {
        (Some(e), Some(l)) => Some(e.min(l)),
        (e, l) => e.or(l),
    };
    let progress = progress_bar(args.quiet, total);

    let mut psnr = PsnrStats::new();
    let (mut frames, mut key_frames, mut bytes) = (0u64, 0u64, 0u64);
    let seconds_per_frame = fps.1 as f64 / fps.0 as f64;
    if let Some(workers) = args.workers {
        progress.finish_and_clear();
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
            bail!("{} has no frames", args.input.display());
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
            ivf.write_frame(frames, f)
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
    while frames < args.limit.unwrap_or(u64::MAX) {
        let Some(frame) = reader
            .next_frame()
            .with_context(|| format!("cannot read {}", args.input.display()))?
        else {
            break;
        };
        enc.send_frame(Some(frame.clone())).map_err(status_error)?;
        let p: Packet = enc.receive_packet().map_err(status_error)?;
        ivf.write_frame(p.pts, &p.data)
            .context("cannot write the output")?;
        if let Some(rec) = &p.reconstruction {
            psnr.add(&frame, &rec.to_frame());
        }
        frames += 1;
        key_frames += p.key_frame as u64;
        bytes += p.data.len() as u64;
        let kbps = bytes as f64 * 8.0 / (frames as f64 * seconds_per_frame) / 1000.0;
        progress.set_position(frames);
        let fps_now = frames as f64 / start.elapsed().as_secs_f64().max(1e-9);
        progress.set_message(format!(
            "{fps_now:.1} fps, {kbps:.1} kbit/s, q {}",
            qindex_to_quantizer(p.q_index)
        ));
    }
    enc.flush();
    match enc.receive_packet() {
        Err(EncoderStatus::LimitReached) => {}
        Ok(_) => bail!("encoder returned a packet after the last frame"),
        Err(e) => return Err(status_error(e)),
    }
    progress.finish_and_clear();
    if frames == 0 {
        bail!("{} has no frames", args.input.display());
    }

    finish(
        args,
        ivf,
        tmp,
        frames,
        key_frames,
        bytes,
        seconds_per_frame,
        psnr,
        start,
    )
}

/// Completes the output file, moves it into place and sums up.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &EncodeArgs,
    ivf: IvfWriter<BufWriter<File>>,
    tmp: tempfile::NamedTempFile,
    frames: u64,
    key_frames: u64,
    bytes: u64,
    seconds_per_frame: f64,
    psnr: PsnrStats,
    start: Instant,
) -> anyhow::Result<Summary> {
    let mut out = ivf.finish().context("cannot write the output")?;
    out.flush().context("cannot write the output")?;
    drop(out);
    tmp.persist(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let secs = frames as f64 * seconds_per_frame;
    Ok(Summary {
        frames,
        key_frames,
        bytes,
        kbps: bytes as f64 * 8.0 / secs / 1000.0,
        psnr: psnr.overall(),
        psnr_planes: psnr.overall_planes(),
        elapsed: start.elapsed(),
    })
}

fn status_error(e: EncoderStatus) -> anyhow::Error {
    anyhow::Error::new(e).context("encoding failed")
}

/// A progress line on stderr when it is a terminal and not `--quiet`:
/// frames done, fps, kbit/s so far and (when the length is known) ETA.
fn progress_bar(quiet: bool, total: Option<u64>) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            "{pos}/{len} frames, {msg} [{elapsed_precise}, ETA {eta}]",
        ),
        None => (
            ProgressBar::no_length(),
            "{pos} frames, {msg} [{elapsed_precise}]",
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs the ExCamera pipeline with one progress bar per phase (chunks done
/// of chunks total) when stderr is a terminal.
fn run_with_progress(
    frames: &[excam_codec::Frame],
    cfg: &PipelineConfig,
    quiet: bool,
) -> anyhow::Result<Vec<Chunk>> {
    let chunks = frames.len().div_ceil(cfg.chunk_frames) as u64;
    let show = !quiet && io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if show {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>30} {bar:30} {pos}/{len} chunks [{elapsed_precise}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bars: Vec<ProgressBar> = [Phase::Encode, Phase::EncodeGivenState, Phase::Rebase]
        .iter()
        .map(|p| {
            let b = multi.add(ProgressBar::new(chunks));
            b.set_style(style.clone());
            b.set_prefix(p.to_string());
            b
        })
        .collect();
    let progress = |phase: Phase, done: usize, _total: usize| {
        let i = match phase {
            Phase::Encode => 0,
            Phase::EncodeGivenState => 1,
            Phase::Rebase => 2,
        };
        bars[i].set_position(done as u64);
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
    for b in &bars {
        b.finish_and_clear();
    }
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
