//! The flags of `excam encode` resolved: onto the encoder's settings
//! ([`encoder_config`]: the one place a rate-control, key-frame, speed or
//! alt-ref flag becomes an [`EncoderConfig`] field), onto the library's
//! [`EncodeSpec`], and onto a runtime [`JobConfig`].

use anyhow::bail;
use excam_codec::encode::encoder::{BufferModel, EncoderConfig, RateControl, MAX_SPEED};
use excam_coordinator::container::Container;
use excam_coordinator::encode::{EncodeSpec, ExCameraShape};
use excam_coordinator::runtime::{InputSource, JobConfig, JobSpec};
use excam_worker::task::CodecParams;

use super::{EncodeArgs, EndUsage, DEFAULT_BITRATE_KBPS, DEFAULT_QUANTIZER, DEFAULT_SPEED};

/// The library's description of the encode `args` ask for (serial, or
/// the in-memory ExCamera pipeline with `--workers`).
///
/// # Errors
/// A combination of flags excam does not support.
pub fn encode_spec(args: &EncodeArgs) -> anyhow::Result<EncodeSpec> {
    Ok(EncodeSpec {
        input: args.input.clone(),
        output: args.output.clone(),
        container: container(args),
        // Width, height and frame rate are the input's.
        encoder: encoder_config(args, 16, 16)?,
        first_pass: needs_first_pass(args),
        first_pass_file: args.fpf.clone(),
        skip: args.skip,
        limit: args.limit,
        excamera: args.workers.map(|w| ExCameraShape {
            workers: w as usize,
            chunk_frames: args.chunk_frames as usize,
            group_chunks: args.group_chunks as usize,
        }),
        quiet: args.quiet,
    })
}

/// The runtime job `args` describe (`--backend`, or `--workers` on the
/// local backend).
///
/// # Errors
/// Inconsistent flags.
pub fn job_config(args: &EncodeArgs) -> anyhow::Result<JobConfig> {
    let job = JobSpec {
        input: InputSource::parse(&args.input.to_string_lossy()),
        output: args.output.clone(),
        container: container(args),
        // Size and rate are filled from the input by the runtime.
        codec: CodecParams::from_config(&encoder_config(args, 16, 16)?),
        chunk_frames: args.chunk_frames as usize,
        group_chunks: args.group_chunks as usize,
        skip: args.skip as usize,
        limit: args.limit.map(|l| l as usize),
        report: args.dist.report.clone(),
        quiet: args.quiet,
    };
    super::dist::job_config(job, args)
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
pub fn speed(args: &EncodeArgs) -> u8 {
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
pub fn encoder_config(
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
    // --workers chunks already fill the cores, one worker a core.
    cfg.threads = match (args.workers, args.threads) {
        (Some(_), _) => 1,
        (None, Some(n)) => n as usize,
        (None, None) => std::thread::available_parallelism().map_or(1, usize::from),
    };
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
