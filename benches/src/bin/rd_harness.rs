//! RD/speed harness: excam against libvpx's vpxenc on one Y4M clip.
//!
//! For each quantizer of the sweep it encodes the clip with excam's
//! slowest and fastest presets (in-process, through the streaming
//! encoder) and with vpxenc in `--good --cpu-used=0` and `--rt
//! --cpu-used=8` modes (single-threaded, quantizer pinned with
//! `--min-q=Q --max-q=Q`), one after the other so the times compare.
//! Every stream is decoded by vpxdec and the quality measured on that
//! decode with excam's metrics (PSNR as vpxenc's "Overall", SSIM as
//! ffmpeg's); excam's streams must decode in vpxdec exactly to excam's
//! reconstruction, or the harness fails. It prints a table, the BD-rate
//! of each excam preset against each vpxenc mode, and writes the RD
//! curves as SVG.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use excam_benches::bdrate::{bd_rate, RdPoint};
use excam_codec::container::i420::I420Reader;
use excam_codec::container::ivf::{IvfHeader, IvfReader, IvfWriter};
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{EncoderConfig, RateControl, MAX_SPEED};
use excam_codec::metrics::{frame_ssim, PsnrStats};
use excam_codec::Frame;

#[derive(Parser)]
#[command(about = "Compare excam's VP8 encoder with vpxenc on a Y4M clip")]
struct Args {
    /// 8-bit 4:2:0 Y4M clip.
    clip: PathBuf,
    /// Quantizers (vpxenc's 0..=63 scale).
    #[arg(long, value_delimiter = ',', default_value = "10,20,30,40,50")]
    q: Vec<u8>,
    /// excam speed presets to run.
    #[arg(long, value_delimiter = ',', default_values_t = [0, MAX_SPEED])]
    speeds: Vec<u8>,
    /// Golden refresh interval for excam (frames; 0 only on key frames).
    #[arg(long)]
    golden_interval: Option<u32>,
    /// q index boost of excam's golden refreshes.
    #[arg(long)]
    golden_boost: Option<u8>,
    /// Skip vpxenc (excam rows only, no BD-rates).
    #[arg(long)]
    no_vpxenc: bool,
    /// Where the SVG goes (default: target/rd/<clip>.svg).
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// One encode's numbers.
struct Point {
    q: u8,
    kbps: f64,
    psnr: f64,
    ssim: f64,
    fps: f64,
}

struct Curve {
    name: String,
    points: Vec<Point>,
}

impl Curve {
    fn rd(&self) -> Vec<RdPoint> {
        self.points
            .iter()
            .map(|p| RdPoint {
                rate: p.kbps,
                psnr: p.psnr,
            })
            .collect()
    }
}

fn read_clip(path: &Path) -> anyhow::Result<(Vec<Frame>, (u32, u32))> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut r = Y4mReader::new(BufReader::new(f))?;
    let fr = r.header().framerate;
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame()? {
        frames.push(f);
    }
    ensure!(!frames.is_empty(), "{} has no frames", path.display());
    Ok((frames, (fr.0 as u32, fr.1 as u32)))
}

/// Decodes `ivf` with vpxdec into I420 frames.
fn vpxdec(ivf: &Path, w: usize, h: usize, dir: &Path) -> anyhow::Result<Vec<Frame>> {
    let out = dir.join("dec.i420");
    let st = Command::new("vpxdec")
        .args(["--codec=vp8", "--i420", "-o"])
        .arg(&out)
        .arg(ivf)
        .status()
        .context("cannot run vpxdec (apt-get install vpx-tools)")?;
    ensure!(st.success(), "vpxdec failed on {}", ivf.display());
    let r = I420Reader::new(BufReader::new(File::open(&out)?), w, h)?;
    Ok(r.collect::<Result<_, _>>()?)
}

fn ivf_bits(ivf: &Path) -> anyhow::Result<u64> {
    let r = IvfReader::new(BufReader::new(File::open(ivf)?))?;
    let mut bits = 0;
    for f in r {
        bits += f?.data.len() as u64 * 8;
    }
    Ok(bits)
}

fn quality(src: &[Frame], dec: &[Frame]) -> anyhow::Result<(f64, f64)> {
    ensure!(
        src.len() == dec.len(),
        "decoded {} frames of {}",
        dec.len(),
        src.len()
    );
    let mut psnr = PsnrStats::new();
    let mut ssim = 0.0;
    for (a, b) in src.iter().zip(dec) {
        psnr.add(a, b);
        ssim += frame_ssim(a, b).all;
    }
    Ok((psnr.overall(), ssim / src.len() as f64))
}

fn excam_point(
    args: &Args,
    src: &[Frame],
    fps: (u32, u32),
    speed: u8,
    q: u8,
    dir: &Path,
) -> anyhow::Result<Point> {
    let (w, h) = (src[0].width, src[0].height);
    let mut cfg = EncoderConfig::new(w, h);
    cfg.framerate = fps;
    cfg.rate = RateControl::Quantizer(q);
    cfg.speed = speed;
    if let Some(g) = args.golden_interval {
        cfg.golden.interval = g;
    }
    if let Some(b) = args.golden_boost {
        cfg.golden.q_boost = b;
    }
    let mut enc = cfg.build()?;
    let t = Instant::now();
    let mut packets = Vec::with_capacity(src.len());
    for f in src {
        enc.send_frame(Some(f.clone()))?;
        packets.push(enc.receive_packet()?);
    }
    let secs = t.elapsed().as_secs_f64();
    let ivf = dir.join("excam.ivf");
    let mut wr = IvfWriter::new(
        BufWriter::new(File::create(&ivf)?),
        &IvfHeader::vp8(w as u16, h as u16, fps.1, fps.0),
    )?;
    let mut bits = 0;
    for p in &packets {
        wr.write_frame(p.pts, &p.data)?;
        bits += p.data.len() as u64 * 8;
    }
    wr.finish()?;
    let dec = vpxdec(&ivf, w, h, dir)?;
    for (i, (p, d)) in packets.iter().zip(&dec).enumerate() {
        let rec = p.reconstruction.as_ref().map(|r| r.to_frame());
        if rec.as_ref() != Some(d) {
            bail!("speed {speed} q {q}: vpxdec's frame {i} differs from excam's reconstruction");
        }
    }
    let (psnr, ssim) = quality(src, &dec)?;
    Ok(Point {
        q,
        kbps: bits as f64 / (src.len() as f64 * fps.1 as f64 / fps.0 as f64) / 1000.0,
        psnr,
        ssim,
        fps: src.len() as f64 / secs,
    })
}

fn vpxenc_point(
    clip: &Path,
    src: &[Frame],
    fps: (u32, u32),
    mode: &[&str],
    q: u8,
    dir: &Path,
) -> anyhow::Result<Point> {
    let ivf = dir.join("vpx.ivf");
    let qs = [
        format!("--min-q={q}"),
        format!("--max-q={q}"),
        format!("--cq-level={q}"),
    ];
    let t = Instant::now();
    let out = Command::new("vpxenc")
        .args([
            "--codec=vp8",
            "--end-usage=q",
            "--threads=1",
            "--disable-warning-prompt",
            "--passes=1",
            "--ivf",
            "-q",
        ])
        .args(mode)
        .args(&qs)
        .arg("-o")
        .arg(&ivf)
        .arg(clip)
        .output()
        .context("cannot run vpxenc (apt-get install vpx-tools)")?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "vpxenc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h) = (src[0].width, src[0].height);
    let dec = vpxdec(&ivf, w, h, dir)?;
    let (psnr, ssim) = quality(src, &dec)?;
    let bits = ivf_bits(&ivf)?;
    Ok(Point {
        q,
        kbps: bits as f64 / (src.len() as f64 * fps.1 as f64 / fps.0 as f64) / 1000.0,
        psnr,
        ssim,
        fps: src.len() as f64 / secs,
    })
}

fn plot(path: &Path, title: &str, curves: &[Curve]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let pts = curves.iter().flat_map(|c| &c.points);
    let (mut r0, mut r1, mut p0, mut p1) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for p in pts {
        r0 = r0.min(p.kbps);
        r1 = r1.max(p.kbps);
        p0 = p0.min(p.psnr);
        p1 = p1.max(p.psnr);
    }
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((r0 * 0.9..r1 * 1.1).log_scale(), (p0 - 0.5)..(p1 + 0.5))?;
    chart
        .configure_mesh()
        .x_desc("kbit/s")
        .y_desc("PSNR overall (dB)")
        .draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, c) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        let mut line: Vec<(f64, f64)> = c.points.iter().map(|p| (p.kbps, p.psnr)).collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(c.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (src, fps) = read_clip(&args.clip)?;
    let name = args
        .clip
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "clip".into());
    eprintln!(
        "{name}: {} frames {}x{} at {}/{} fps",
        src.len(),
        src[0].width,
        src[0].height,
        fps.0,
        fps.1
    );
    let dir = tempfile::tempdir()?;
    let mut curves = Vec::new();
    let mut vpx_modes: Vec<(&str, Vec<&str>)> = Vec::new();
    if !args.no_vpxenc {
        vpx_modes.push(("vpxenc good cpu0", vec!["--good", "--cpu-used=0"]));
        vpx_modes.push(("vpxenc rt cpu8", vec!["--rt", "--cpu-used=8"]));
    }
    let mut excam_curves: Vec<Curve> = args
        .speeds
        .iter()
        .map(|s| Curve {
            name: format!("excam speed {s}"),
            points: Vec::new(),
        })
        .collect();
    let mut vpx_curves: Vec<Curve> = vpx_modes
        .iter()
        .map(|(n, _)| Curve {
            name: n.to_string(),
            points: Vec::new(),
        })
        .collect();
    // Quantizer-major order: each q's encoders run back to back, so a
    // slow drift of the machine hits all of them alike.
    for &q in &args.q {
        for (i, &s) in args.speeds.iter().enumerate() {
            let p = excam_point(&args, &src, fps, s, q, dir.path())?;
            eprintln!("  excam s{s} q{q}: {:.1} kbit/s {:.3} dB", p.kbps, p.psnr);
            excam_curves[i].points.push(p);
        }
        for (i, (n, mode)) in vpx_modes.iter().enumerate() {
            let p = vpxenc_point(&args.clip, &src, fps, mode, q, dir.path())?;
            eprintln!("  {n} q{q}: {:.1} kbit/s {:.3} dB", p.kbps, p.psnr);
            vpx_curves[i].points.push(p);
        }
    }
    curves.extend(excam_curves);
    curves.extend(vpx_curves);

    println!(
        "\n{name} ({} frames {}x{})\n",
        src.len(),
        src[0].width,
        src[0].height
    );
    println!("| encoder | q | kbit/s | PSNR | SSIM | enc fps |");
    println!("|---|---|---|---|---|---|");
    for c in &curves {
        for p in &c.points {
            println!(
                "| {} | {} | {:.1} | {:.3} | {:.4} | {:.1} |",
                c.name, p.q, p.kbps, p.psnr, p.ssim, p.fps
            );
        }
    }
    let n_excam = args.speeds.len();
    if curves.len() > n_excam {
        println!(
            "\nBD-rate (PSNR, cubic over log rate; negative = excam smaller) and fps ratio:\n"
        );
        println!("| excam | vs | BD-rate | fps ratio (geo mean) |");
        println!("|---|---|---|---|");
        for e in &curves[..n_excam] {
            for v in &curves[n_excam..] {
                let bd = bd_rate(&v.rd(), &e.rd())
                    .map(|b| format!("{b:+.2}%"))
                    .unwrap_or_else(|| "n/a".into());
                let ratio = (e
                    .points
                    .iter()
                    .zip(&v.points)
                    .map(|(a, b)| (a.fps / b.fps).ln())
                    .sum::<f64>()
                    / e.points.len() as f64)
                    .exp();
                println!("| {} | {} | {bd} | {ratio:.2}x |", e.name, v.name);
            }
        }
    }
    let svg = match &args.svg {
        Some(p) => p.clone(),
        None => {
            let d = PathBuf::from("target/rd");
            std::fs::create_dir_all(&d)?;
            d.join(format!("{name}.svg"))
        }
    };
    plot(&svg, &format!("{name}: excam vs vpxenc"), &curves)?;
    println!("\nRD curves: {}", svg.display());
    Ok(())
}
