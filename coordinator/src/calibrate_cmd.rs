//! `excam calibrate`: measures what the codec costs on this machine, the
//! input of `excam plan` (see [`excam_coordinator::plan::calibrate`]).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use excam_codec::container::y4m::Y4mReader;
use excam_coordinator::plan::calibrate::{combine, measure_clip, synthetic_clip, CalibrateOptions};

/// Long help of `excam calibrate`.
pub const LONG_ABOUT: &str = "\
Measure, on this machine, the per-frame cost of encoding, encoding given a \
state, rebasing and decoding (seconds per megapixel), and the size and \
(de)serialization cost of the state handed between workers, by running the \
worker's own chunk functions on a synthetic moving pattern at two sizes and \
on any Y4M clips given. Writes the JSON `excam plan --calibration` reads. \
Close other programs first: the fastest of --repeats runs is kept.";

/// Arguments of `excam calibrate`.
#[derive(clap::Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Y4M clips to measure as well as the synthetic ones (at least
    /// 2 x --chunk-frames frames each).
    pub clips: Vec<PathBuf>,
    /// Encoder speed preset to measure (0 slowest .. 8 fastest).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub preset: u8,
    /// Quantizer to measure (0..=63).
    #[arg(short, long, default_value_t = 32, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub quantizer: u8,
    /// Frames per timed chunk (two chunks per clip).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(2..=64))]
    pub chunk_frames: u64,
    /// Runs per clip; the fastest counts.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub repeats: u64,
    /// Tiny synthetic clips and one run: fast, for tests, not for planning.
    #[arg(long)]
    pub quick: bool,
    /// Skip the synthetic clips (needs clips).
    #[arg(long, requires = "clips")]
    pub no_synthetic: bool,
    /// Write the calibration here instead of standard output.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// Runs `excam calibrate`.
///
/// # Errors
/// Unreadable clips, codec errors, or an unwritable output.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<()> {
    let opts = CalibrateOptions {
        preset: args.preset,
        quantizer: args.quantizer,
        chunk_frames: if args.quick {
            2
        } else {
            args.chunk_frames as usize
        },
        repeats: if args.quick { 1 } else { args.repeats as usize },
    };
    let need = 2 * opts.chunk_frames;
    let mut samples = Vec::new();
    if !args.no_synthetic {
        let sizes: &[(usize, usize)] = if args.quick {
            &[(48, 32), (64, 48)]
        } else {
            &[(320, 240), (640, 480)]
        };
        for &(w, h) in sizes {
            let name = format!("synthetic {w}x{h}");
            eprintln!("calibrate: {name}");
            samples.push(measure_clip(&name, &synthetic_clip(w, h, need), &opts)?);
        }
    }
    for path in &args.clips {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut r = Y4mReader::new(BufReader::new(file))
            .with_context(|| format!("cannot read {} as Y4M", path.display()))?;
        let mut frames = Vec::new();
        while frames.len() < need {
            match r
                .next_frame()
                .with_context(|| format!("{}", path.display()))?
            {
                Some(f) => frames.push(f),
                None => break,
            }
        }
        let name = path.display().to_string();
        eprintln!("calibrate: {name}");
        samples.push(measure_clip(&name, &frames, &opts)?);
    }
    let cal = combine(samples, &opts)?;
    let json = cal.to_json();
    match &args.out {
        Some(p) => {
            std::fs::write(p, json + "\n")
                .with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!(
                "calibration written to {} (encode {:.3} s/Mpx/frame, rebase {:.3}, state {:.2} B/px on the wire)",
                p.display(),
                cal.encode_s_per_mpx,
                cal.rebase_s_per_mpx,
                cal.state_wire_bytes_per_px
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}
