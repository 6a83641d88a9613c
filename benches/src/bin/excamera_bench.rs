//! ExCamera\[N,x\] against serial excam and naive chunking with vpxenc.
//!
//! For each clip and quantizer: serial excam (one chunk), serial excam with
//! a key frame every 96 frames (where \[6,16\] puts them), ExCamera\[6,16\],
//! \[6,1\] and \[12,16\] on local workers, and `vpxenc --good --cpu-used=0`
//! with a key frame every 6 frames (what chunking without rebase costs).
//! Prints kbit/s, PSNR, SSIM, wall time, BD-rate against serial excam, the
//! state bytes per hop, and the time per rebased vs encoded frame.
//!
//! `cargo run --release -p excam-benches --bin excamera-bench -- CLIP.y4m...`

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use excam_benches::bdrate::{bd_rate, RdPoint};
use excam_codec::container::ivf::IvfReader;
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{EncoderConfig, RateControl};
use excam_codec::metrics::{PsnrStats, SsimStats};
use excam_codec::{decode, DecoderState, Image};
use excam_coordinator::pipeline::{
    run_pipeline, Chunk, LocalExchange, PipelineConfig, PipelineStats,
};

#[derive(Parser)]
struct Args {
    /// Y4M clips.
    clips: Vec<PathBuf>,
    /// Quantizers (vpxenc 0..63 scale).
    #[arg(long, value_delimiter = ',', default_value = "10,20,30,40,50")]
    quantizers: Vec<u8>,
    /// excam speed preset.
    #[arg(long, default_value_t = EncoderConfig::new(16, 16).speed)]
    speed: u8,
    /// Worker threads for the ExCamera runs.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

struct Point {
    kbps: f64,
    psnr: f64,
    ssim: f64,
    seconds: f64,
}

fn read_clip(path: &Path) -> Result<(Vec<Image>, f64)> {
    let mut r = Y4mReader::new(std::io::BufReader::new(std::fs::File::open(path)?))?;
    let (num, den) = r.header().framerate;
    let fps = num as f64 / den.max(1) as f64;
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame()? {
        frames.push(f);
    }
    Ok((frames, fps))
}

fn quality(frames: &[Image], stream: &[Vec<u8>], fps: f64, seconds: f64) -> Result<Point> {
    let mut state = DecoderState::default();
    let mut psnr = PsnrStats::new();
    let mut ssim = SsimStats::new();
    let mut shown = 0;
    for f in stream {
        let (s, img) = decode(&state, f)?;
        state = s;
        if let Some(img) = img {
            psnr.add(&frames[shown], &img);
            ssim.add(&frames[shown], &img);
            shown += 1;
        }
    }
    let bytes: usize = stream.iter().map(Vec::len).sum();
    Ok(Point {
        kbps: bytes as f64 * 8.0 * fps / frames.len() as f64 / 1000.0,
        psnr: psnr.overall(),
        ssim: ssim.all(),
        seconds,
    })
}

fn excamera(
    frames: &[Image],
    n: usize,
    x: usize,
    workers: usize,
    q: u8,
    speed: u8,
    keyint: Option<u32>,
) -> Result<(Vec<Vec<u8>>, f64, PipelineStats)> {
    let cfg = PipelineConfig {
        chunk_frames: n,
        group_chunks: x,
        workers,
        encoder: {
            let mut c = EncoderConfig::new(frames[0].width, frames[0].height);
            c.rate = RateControl::Quantizer(q);
            c.speed = speed;
            if let Some(k) = keyint {
                c.keyint = k;
            }
            c
        },
    };
    let mut stats = PipelineStats::default();
    let t = Instant::now();
    let chunks: Vec<Chunk> = run_pipeline(
        frames,
        &cfg,
        &LocalExchange::default(),
        &|_, _, _| {},
        None,
        &mut stats,
    )?;
    let secs = t.elapsed().as_secs_f64();
    Ok((
        chunks.into_iter().flat_map(|c| c.frames).collect(),
        secs,
        stats,
    ))
}

fn vpxenc_kf6(clip: &Path, q: u8, dir: &Path) -> Result<(Vec<Vec<u8>>, f64)> {
    let out = dir.join(format!("vpx-kf6-{q}.ivf"));
    let t = Instant::now();
    let st = Command::new("vpxenc")
        .args([
            "--codec=vp8",
            "--disable-warning-prompt",
            "--passes=1",
            "--end-usage=q",
            "--good",
            "--cpu-used=0",
            "--threads=1",
        ])
        .arg(format!("--cq-level={q}"))
        .arg(format!("--min-q={q}"))
        .arg(format!("--max-q={q}"))
        .args(["--kf-min-dist=6", "--kf-max-dist=6", "--ivf", "-q", "-o"])
        .arg(&out)
        .arg(clip)
        .status()
        .context("running vpxenc")?;
    let secs = t.elapsed().as_secs_f64();
    if !st.success() {
        bail!("vpxenc failed");
    }
    let r = IvfReader::new(std::fs::File::open(&out)?)?;
    let frames: Result<Vec<Vec<u8>>, _> = r.map(|f| f.map(|f| f.data)).collect();
    Ok((frames?, secs))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.clips.is_empty() {
        bail!("give at least one Y4M clip");
    }
    let dir = tempfile::tempdir()?;
    let have_vpxenc = Command::new("vpxenc").arg("--help").output().is_ok();
    for clip in &args.clips {
        let (frames, fps) = read_clip(clip)?;
        let name = clip
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        println!(
            "\n## {name}: {} frames, speed {}, {} workers\n",
            frames.len(),
            args.speed,
            args.workers
        );
        println!("| config | q | kbit/s | PSNR | SSIM | wall s |");
        println!("|---|---|---|---|---|---|");
        // The second serial row puts key frames where ExCamera[6,16] must
        // (every N*x = 96 frames): on a clip shorter than twice that, its
        // BD-rate is what the group structure alone costs, the floor under
        // [6,16]'s own.
        let configs: [(&str, usize, usize, Option<u32>); 5] = [
            ("serial", frames.len(), 1, None),
            ("serial kf every 96", frames.len(), 1, Some(96)),
            ("ExCamera[6,16]", 6, 16, None),
            ("ExCamera[6,1]", 6, 1, None),
            ("ExCamera[12,16]", 12, 16, None),
        ];
        let mut curves: Vec<(String, Vec<RdPoint>)> = Vec::new();
        let mut hop = (0usize, 0usize, 0usize);
        let (mut enc_s, mut enc_n, mut reb_s, mut reb_n) = (0.0, 0usize, 0.0, 0usize);
        let mut wall_1 = 0.0;
        let mut wall_n = 0.0;
        for (label, n, x, keyint) in configs {
            let mut curve = Vec::new();
            for &q in &args.quantizers {
                let workers = if n == frames.len() { 1 } else { args.workers };
                let (stream, secs, stats) =
                    excamera(&frames, n, x, workers, q, args.speed, keyint)?;
                let p = quality(&frames, &stream, fps, secs)?;
                println!(
                    "| {label} | {q} | {:.1} | {:.3} | {:.4} | {:.2} |",
                    p.kbps, p.psnr, p.ssim, p.seconds
                );
                curve.push(RdPoint {
                    rate: p.kbps,
                    psnr: p.psnr,
                });
                if label == "ExCamera[6,16]" {
                    for &(c, r) in &stats.state_bytes {
                        hop.0 += c;
                        hop.1 += r;
                        hop.2 += 1;
                    }
                    enc_s += stats.encode_seconds;
                    enc_n += stats.encoded_frames;
                    reb_s += stats.rebase_seconds;
                    reb_n += stats.rebased_frames;
                    if q == args.quantizers[args.quantizers.len() / 2] {
                        // Best of three interleaved runs each: short jobs on
                        // a shared machine are noisy.
                        wall_n = secs;
                        wall_1 = f64::INFINITY;
                        for rep in 0..3 {
                            let (_, s1, _) = excamera(&frames, n, x, 1, q, args.speed, None)?;
                            wall_1 = wall_1.min(s1);
                            if rep > 0 {
                                let (_, sn, _) =
                                    excamera(&frames, n, x, args.workers, q, args.speed, None)?;
                                wall_n = wall_n.min(sn);
                            }
                        }
                    }
                }
            }
            curves.push((label.to_string(), curve));
        }
        if have_vpxenc {
            let mut curve = Vec::new();
            for &q in &args.quantizers {
                let (stream, secs) = vpxenc_kf6(clip, q, dir.path())?;
                let p = quality(&frames, &stream, fps, secs)?;
                println!(
                    "| vpxenc good kf6 | {q} | {:.1} | {:.3} | {:.4} | {:.2} |",
                    p.kbps, p.psnr, p.ssim, p.seconds
                );
                curve.push(RdPoint {
                    rate: p.kbps,
                    psnr: p.psnr,
                });
            }
            curves.push(("vpxenc good kf6".into(), curve));
        } else {
            println!("(vpxenc not installed: naive chunking baseline skipped)");
        }
        println!("\n| config | BD-rate vs serial excam |");
        println!("|---|---|");
        let serial = curves[0].1.clone();
        for (label, c) in &curves[1..] {
            match bd_rate(&serial, c) {
                Some(b) => println!("| {label} | {b:+.2}% |"),
                None => println!("| {label} | n/a |"),
            }
        }
        if hop.2 > 0 {
            println!(
                "\nstate per hop: {:.0} KB compressed, {:.0} KB raw ({} hops)",
                hop.0 as f64 / hop.2 as f64 / 1024.0,
                hop.1 as f64 / hop.2 as f64 / 1024.0,
                hop.2
            );
        }
        if enc_n > 0 && reb_n > 0 {
            let e = enc_s / enc_n as f64 * 1e3;
            let r = reb_s / reb_n as f64 * 1e3;
            println!(
                "per frame: encode {e:.2} ms, rebase {r:.2} ms ({:.1}x faster)",
                e / r
            );
        }
        if wall_1 > 0.0 {
            println!(
                "ExCamera[6,16] wall (best of 3): {:.2} s with 1 worker, {:.2} s with {} ({:.2}x)",
                wall_1,
                wall_n,
                args.workers,
                wall_n / wall_1
            );
        }
    }
    Ok(())
}
