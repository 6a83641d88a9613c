//! RD/speed harness: excam against libvpx's vpxenc on Y4M clips.
//!
//! For each clip and each quantizer of the sweep it encodes the clip with
//! excam's presets (in-process, through the streaming encoder, with the
//! tools [`EncoderConfig::with_speed`] turns on unless overridden) and
//! with vpxenc, one after the other so the times compare. vpxenc runs
//! against one of two anchors:
//!
//! - `--anchor fixed`: `--good --cpu-used=0` and `--rt --cpu-used=8`,
//!   quantizer pinned with `--min-q=Q --max-q=Q` (one pass).
//! - `--anchor best`: libvpx at its best, `--good --cpu-used=C --passes=2
//!   --auto-alt-ref=1 --lag-in-frames=25 --arnr-maxframes=7
//!   --arnr-strength=5 --arnr-type=3 --end-usage=cq --cq-level=Q` with a
//!   huge `--target-bitrate`, for each C of `--vpx-cpu`; its time counts
//!   both passes.
//!
//! Every stream is decoded by vpxdec and the quality measured on that
//! decode with excam's metrics (PSNR as vpxenc's "Overall", SSIM as
//! ffmpeg's); excam's streams must decode in vpxdec exactly to excam's
//! reconstruction of the shown frames, or the harness fails. It prints a
//! table, the BD-rates (PSNR and SSIM) of each excam preset against each
//! vpxenc mode with the time ratio, the means over all clips, and writes
//! the RD curves as SVG. vpxenc's points are cached (`--cache`), keyed by
//! clip name and size, mode and quantizer, since they do not change from
//! one excam experiment to the next.

#![forbid(unsafe_code)]

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
use excam_codec::encode::encoder::{EncoderConfig, EncoderStatus, RateControl, MAX_SPEED};
use excam_codec::metrics::{frame_ssim, PsnrStats};
use excam_codec::Image;

/// What vpxenc is compared at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Anchor {
    /// Quantizer pinned (`--end-usage=q --min-q=Q --max-q=Q`), one pass.
    Fixed,
    /// Two-pass constrained quality with alt-ref frames and ARNR.
    Best,
}

#[derive(Parser)]
#[command(about = "Compare excam's VP8 encoder with vpxenc on Y4M clips")]
struct Args {
    /// 8-bit 4:2:0 Y4M clips.
    #[arg(required = true)]
    clips: Vec<PathBuf>,
    /// The vpxenc settings compared against.
    #[arg(long, value_enum, default_value = "fixed")]
    anchor: Anchor,
    /// `--anchor best`: vpxenc `--cpu-used` values to run.
    #[arg(long, value_delimiter = ',', default_values_t = [0u8])]
    vpx_cpu: Vec<u8>,
    /// excam lookahead in frames (default: the speed preset's).
    #[arg(long)]
    lag_in_frames: Option<u32>,
    /// excam hidden alt-ref frames, 0 or 1 (default: the speed preset's).
    #[arg(long)]
    auto_alt_ref: Option<u8>,
    /// excam ARNR frame count.
    #[arg(long)]
    arnr_maxframes: Option<u8>,
    /// excam ARNR strength.
    #[arg(long)]
    arnr_strength: Option<u8>,
    /// excam alt-ref q boost, percent of the inter q index.
    #[arg(long)]
    arf_boost_pct: Option<u8>,
    /// excam: whether the golden frame ending an alt-ref group keeps the
    /// golden boost, 0 or 1.
    #[arg(long)]
    overlay_boost: Option<u8>,
    /// excam alt-ref minimum group length.
    #[arg(long)]
    arf_min_group: Option<u32>,
    /// excam: group lengths and reference boosts from the lookahead, 0 or 1.
    #[arg(long)]
    adaptive_groups: Option<u8>,
    /// excam: shortest adaptive group.
    #[arg(long)]
    group_min_len: Option<u32>,
    /// excam: longest adaptive group (0: from the frame rate, as libvpx).
    #[arg(long)]
    group_max_len: Option<u32>,
    /// excam: an adaptive group ends when this share (percent) of the
    /// picture is left carried over from its first frame.
    #[arg(long)]
    group_min_carry: Option<u8>,
    /// excam: reference step = inter step * (1 + weight)^(-this/100).
    #[arg(long)]
    ref_weight_exp: Option<u8>,
    /// excam: a key frame's reference exponent (percent) where its chroma
    /// carries over well.
    #[arg(long)]
    key_weight_exp: Option<u8>,
    /// excam: the mean chroma carry (percent) from which a key frame
    /// takes --key-weight-exp.
    #[arg(long)]
    key_min_chroma_carry: Option<u8>,
    /// excam: key frames at scene cuts, 0 or 1.
    #[arg(long)]
    scene_cuts: Option<u8>,
    /// Where vpxenc's points are cached (default: target/rd/cache);
    /// `--cache ''` disables the cache.
    #[arg(long)]
    cache: Option<PathBuf>,
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
    /// Where the SVG goes (default: target/rd/CLIP.svg; one clip only).
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// One encode's numbers.
struct Point {
    q: u8,
    kbps: f64,
    psnr: f64,
    ssim: f64,
    /// Encoding time in seconds (vpxenc: the whole process, both passes).
    secs: f64,
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

    /// SSIM in dB (`-10 log10(1 - SSIM)`), for a BD-rate on SSIM.
    fn rd_ssim(&self) -> Vec<RdPoint> {
        self.points
            .iter()
            .map(|p| RdPoint {
                rate: p.kbps,
                psnr: -10.0 * (1.0 - p.ssim).max(1e-10).log10(),
            })
            .collect()
    }
}

fn read_clip(path: &Path) -> anyhow::Result<(Vec<Image>, (u32, u32))> {
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
fn vpxdec(ivf: &Path, w: usize, h: usize, dir: &Path) -> anyhow::Result<Vec<Image>> {
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

fn quality(src: &[Image], dec: &[Image]) -> anyhow::Result<(f64, f64)> {
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
    src: &[Image],
    fps: (u32, u32),
    speed: u8,
    q: u8,
    dir: &Path,
) -> anyhow::Result<Point> {
    let (w, h) = (src[0].width, src[0].height);
    let mut cfg = EncoderConfig::with_speed(w, h, speed);
    cfg.framerate = fps;
    cfg.rate = RateControl::Quantizer(q);
    if let Some(l) = args.lag_in_frames {
        cfg.lag_in_frames = l;
    }
    if let Some(a) = args.auto_alt_ref {
        cfg.alt_ref.enabled = a != 0;
    }
    if let Some(n) = args.arnr_maxframes {
        cfg.alt_ref.arnr.max_frames = n;
    }
    if let Some(s) = args.arnr_strength {
        cfg.alt_ref.arnr.strength = s;
    }
    if let Some(b) = args.arf_boost_pct {
        cfg.alt_ref.q_boost_pct = b;
    }
    if let Some(b) = args.overlay_boost {
        cfg.alt_ref.overlay_boost = b != 0;
    }
    if let Some(m) = args.arf_min_group {
        cfg.alt_ref.min_group = m;
    }
    if let Some(a) = args.adaptive_groups {
        cfg.group.adaptive = a != 0;
    }
    if let Some(n) = args.group_min_len {
        cfg.group.min_len = n;
    }
    if let Some(n) = args.group_max_len {
        cfg.group.max_len = n;
    }
    if let Some(c) = args.group_min_carry {
        cfg.group.min_carry_pct = c;
    }
    if let Some(e) = args.ref_weight_exp {
        cfg.group.weight_exp_pct = e;
    }
    if let Some(e) = args.key_weight_exp {
        cfg.group.key_weight_exp_pct = e;
    }
    if let Some(c) = args.key_min_chroma_carry {
        cfg.group.key_min_chroma_carry_pct = c;
    }
    if let Some(c) = args.scene_cuts {
        cfg.scene_cuts = c != 0;
    }
    if let Some(g) = args.golden_interval {
        cfg.golden.interval = g;
    }
    if let Some(b) = args.golden_boost {
        cfg.golden.q_boost = b;
    }
    let mut enc = cfg.build()?;
    let t = Instant::now();
    let mut packets = Vec::with_capacity(src.len());
    let mut drain = |enc: &mut excam_codec::encode::encoder::Encoder| -> anyhow::Result<()> {
        loop {
            match enc.receive_packet() {
                Ok(p) => packets.push(p),
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    for f in src {
        enc.send_frame(Some(f.clone()))?;
        drain(&mut enc)?;
    }
    enc.flush();
    drain(&mut enc)?;
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
    let shown: Vec<_> = packets.iter().filter(|p| p.show_frame).collect();
    ensure!(
        shown.len() == dec.len(),
        "speed {speed} q {q}: vpxdec shows {} frames, excam {}",
        dec.len(),
        shown.len()
    );
    for (i, (p, d)) in shown.iter().zip(&dec).enumerate() {
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
        secs,
    })
}

/// One vpxenc configuration: its name and its arguments (the quantizer
/// arguments follow from the anchor).
struct VpxMode {
    name: String,
    anchor: Anchor,
    args: Vec<String>,
}

impl VpxMode {
    fn fixed(name: &str, args: &[&str]) -> Self {
        VpxMode {
            name: name.into(),
            anchor: Anchor::Fixed,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// libvpx at its best at `--cpu-used=cpu` (the command of issue 18).
    fn best(cpu: u8) -> Self {
        let args = [
            "--good".to_string(),
            format!("--cpu-used={cpu}"),
            "--passes=2".into(),
            "--auto-alt-ref=1".into(),
            "--lag-in-frames=25".into(),
            "--arnr-maxframes=7".into(),
            "--arnr-strength=5".into(),
            "--arnr-type=3".into(),
            "--end-usage=cq".into(),
            "--target-bitrate=200000".into(),
        ];
        VpxMode {
            name: format!("vpxenc best cpu{cpu}"),
            anchor: Anchor::Best,
            args: args.into(),
        }
    }

    fn q_args(&self, q: u8) -> Vec<String> {
        match self.anchor {
            Anchor::Fixed => vec![
                "--end-usage=q".into(),
                format!("--min-q={q}"),
                format!("--max-q={q}"),
                format!("--cq-level={q}"),
            ],
            Anchor::Best => vec![format!("--cq-level={q}")],
        }
    }
}

/// The cache file of a vpxenc point: clip name and size, mode, q.
fn cache_path(dir: &Path, clip: &Path, mode: &VpxMode, q: u8) -> Option<PathBuf> {
    let len = std::fs::metadata(clip).ok()?.len();
    let stem = clip.file_stem()?.to_string_lossy();
    let mut key = format!("{stem}-{len}-{}", mode.args.join(""));
    key.retain(|c| c.is_ascii_alphanumeric() || c == '-');
    Some(dir.join(format!("{key}-q{q}.txt")))
}

fn vpxenc_point(
    args: &Args,
    clip: &Path,
    src: &[Image],
    fps: (u32, u32),
    mode: &VpxMode,
    q: u8,
    dir: &Path,
) -> anyhow::Result<Point> {
    let cache_dir = match &args.cache {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("target/rd/cache")),
    };
    let cached = cache_dir
        .as_ref()
        .and_then(|d| cache_path(d, clip, mode, q));
    if let Some(text) = cached
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c).ok())
    {
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        if let [kbps, psnr, ssim, secs] = v[..] {
            return Ok(Point {
                q,
                kbps,
                psnr,
                ssim,
                secs,
            });
        }
    }
    let ivf = dir.join("vpx.ivf");
    let fpf = dir.join("vpx.fpf");
    let t = Instant::now();
    let out = Command::new("vpxenc")
        .args([
            "--codec=vp8",
            "--threads=1",
            "--disable-warning-prompt",
            "--ivf",
            "-q",
        ])
        .args(if mode.anchor == Anchor::Fixed {
            vec!["--passes=1".to_string()]
        } else {
            vec![format!("--fpf={}", fpf.display())]
        })
        .args(&mode.args)
        .args(mode.q_args(q))
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
    let p = Point {
        q,
        kbps: bits as f64 / (src.len() as f64 * fps.1 as f64 / fps.0 as f64) / 1000.0,
        psnr,
        ssim,
        secs,
    };
    if let (Some(d), Some(c)) = (&cache_dir, &cached) {
        std::fs::create_dir_all(d)?;
        std::fs::write(c, format!("{} {} {} {}\n", p.kbps, p.psnr, p.ssim, p.secs))?;
    }
    Ok(p)
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

/// BD-rates of one excam curve against one vpxenc curve on one clip.
struct Pairing {
    excam: String,
    vpx: String,
    psnr: Option<f64>,
    ssim: Option<f64>,
    time_ratio: f64,
}

fn run_clip(args: &Args, clip: &Path, vpx_modes: &[VpxMode]) -> anyhow::Result<Vec<Pairing>> {
    let (src, fps) = read_clip(clip)?;
    let name = clip
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
        .map(|m| Curve {
            name: m.name.clone(),
            points: Vec::new(),
        })
        .collect();
    // Quantizer-major order: each q's encoders run back to back, so a
    // slow drift of the machine hits all of them alike.
    for &q in &args.q {
        for (i, &s) in args.speeds.iter().enumerate() {
            let p = excam_point(args, &src, fps, s, q, dir.path())?;
            eprintln!("  excam s{s} q{q}: {:.1} kbit/s {:.3} dB", p.kbps, p.psnr);
            excam_curves[i].points.push(p);
        }
        for (i, m) in vpx_modes.iter().enumerate() {
            let p = vpxenc_point(args, clip, &src, fps, m, q, dir.path())?;
            eprintln!("  {} q{q}: {:.1} kbit/s {:.3} dB", m.name, p.kbps, p.psnr);
            vpx_curves[i].points.push(p);
        }
    }
    let mut curves = excam_curves;
    let n_excam = curves.len();
    curves.extend(vpx_curves);

    println!(
        "\n{name} ({} frames {}x{})\n",
        src.len(),
        src[0].width,
        src[0].height
    );
    println!("| encoder | q | kbit/s | PSNR | SSIM | enc s |");
    println!("|---|---|---|---|---|---|");
    for c in &curves {
        for p in &c.points {
            println!(
                "| {} | {} | {:.1} | {:.3} | {:.4} | {:.2} |",
                c.name, p.q, p.kbps, p.psnr, p.ssim, p.secs
            );
        }
    }
    let mut pairings = Vec::new();
    for e in &curves[..n_excam] {
        for v in &curves[n_excam..] {
            let ratio = (e
                .points
                .iter()
                .zip(&v.points)
                .map(|(a, b)| (a.secs / b.secs).ln())
                .sum::<f64>()
                / e.points.len() as f64)
                .exp();
            pairings.push(Pairing {
                excam: e.name.clone(),
                vpx: v.name.clone(),
                psnr: bd_rate(&v.rd(), &e.rd()),
                ssim: bd_rate(&v.rd_ssim(), &e.rd_ssim()),
                time_ratio: ratio,
            });
        }
    }
    if !pairings.is_empty() {
        println!("\nBD-rate (cubic over log rate; negative = excam smaller) and time ratio (excam / vpxenc, geometric mean):\n");
        print_pairings(&pairings);
    }
    if args.clips.len() == 1 || args.svg.is_none() {
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
    }
    Ok(pairings)
}

fn fmt_bd(b: Option<f64>) -> String {
    b.map(|b| format!("{b:+.2}%"))
        .unwrap_or_else(|| "n/a".into())
}

fn print_pairings(pairings: &[Pairing]) {
    println!("| excam | vs | BD-rate PSNR | BD-rate SSIM | time ratio |");
    println!("|---|---|---|---|---|");
    for p in pairings {
        println!(
            "| {} | {} | {} | {} | {:.2}x |",
            p.excam,
            p.vpx,
            fmt_bd(p.psnr),
            fmt_bd(p.ssim),
            p.time_ratio
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut vpx_modes = Vec::new();
    if !args.no_vpxenc {
        match args.anchor {
            Anchor::Fixed => {
                vpx_modes.push(VpxMode::fixed(
                    "vpxenc good cpu0",
                    &["--good", "--cpu-used=0"],
                ));
                vpx_modes.push(VpxMode::fixed("vpxenc rt cpu8", &["--rt", "--cpu-used=8"]));
            }
            Anchor::Best => vpx_modes.extend(args.vpx_cpu.iter().map(|&c| VpxMode::best(c))),
        }
    }
    let mut all: Vec<(String, Vec<Pairing>)> = Vec::new();
    for clip in &args.clips {
        let name = clip
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        all.push((name, run_clip(&args, clip, &vpx_modes)?));
    }
    if all.len() > 1 && !vpx_modes.is_empty() {
        println!("\nSummary over {} clips:\n", all.len());
        println!("| clip | excam | vs | BD-rate PSNR | BD-rate SSIM | time ratio |");
        println!("|---|---|---|---|---|---|");
        for (name, ps) in &all {
            for p in ps {
                println!(
                    "| {name} | {} | {} | {} | {} | {:.2}x |",
                    p.excam,
                    p.vpx,
                    fmt_bd(p.psnr),
                    fmt_bd(p.ssim),
                    p.time_ratio
                );
            }
        }
        let n_pairs = all[0].1.len();
        for i in 0..n_pairs {
            let col = |f: &dyn Fn(&Pairing) -> Option<f64>| {
                let v: Vec<f64> = all.iter().filter_map(|(_, ps)| f(&ps[i])).collect();
                (v.iter().sum::<f64>() / v.len().max(1) as f64, v.len())
            };
            let (mp, np) = col(&|p| p.psnr);
            let (ms, ns) = col(&|p| p.ssim);
            let (mt, _) = col(&|p| Some(p.time_ratio.ln()));
            println!(
                "| **mean** | {} | {} | {mp:+.2}% ({np} clips) | {ms:+.2}% ({ns} clips) | {:.2}x |",
                all[0].1[i].excam,
                all[0].1[i].vpx,
                mt.exp()
            );
        }
    }
    Ok(())
}
