//! Cross-checks `excam_codec::metrics` against ffmpeg's `psnr` and `ssim`
//! filters on a real clip degraded by a real codec.
//!
//! Skips (with a printed reason) when ffmpeg or the shared clips are not
//! available. Y4M is parsed by hand here: the test must not depend on the
//! container module.

use std::path::{Path, PathBuf};
use std::process::Command;

use excam_codec::image::{i420_len, Image};
use excam_codec::metrics::{PsnrStats, SsimStats};

const FRAMES: usize = 10;

/// A minimal Y4M reader: header line, then `FRAME...\n` + I420 bytes.
/// Returns the header line and the frames.
fn read_y4m(bytes: &[u8], limit: usize) -> (String, Vec<Image>) {
    let eol = bytes.iter().position(|&b| b == b'\n').expect("header line");
    let header = std::str::from_utf8(&bytes[..eol])
        .expect("ascii header")
        .to_string();
    assert!(header.starts_with("YUV4MPEG2 "), "not Y4M: {header}");
    let (mut w, mut h) = (0usize, 0usize);
    for tok in header.split(' ') {
        match tok.as_bytes().first() {
            Some(b'W') => w = tok[1..].parse().unwrap(),
            Some(b'H') => h = tok[1..].parse().unwrap(),
            Some(b'C') => assert!(tok.starts_with("C420"), "need 4:2:0, got {tok}"),
            _ => {}
        }
    }
    let len = i420_len(w, h);
    let mut frames = Vec::new();
    let mut pos = eol + 1;
    while pos < bytes.len() && frames.len() < limit {
        let eol = pos
            + bytes[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .expect("frame header");
        assert!(bytes[pos..eol].starts_with(b"FRAME"), "bad frame header");
        pos = eol + 1;
        frames.push(Image::from_i420(w, h, &bytes[pos..pos + len]).expect("frame size"));
        pos += len;
    }
    (header, frames)
}

fn write_y4m(path: &Path, header: &str, frames: &[Image]) {
    let mut out = Vec::new();
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    for f in frames {
        out.extend_from_slice(b"FRAME\n");
        f.write_i420(&mut out);
    }
    std::fs::write(path, out).unwrap();
}

fn ffmpeg(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg {args:?} failed:\n{stderr}");
    stderr
}

/// The number after `key` in ffmpeg's summary line starting with `prefix`.
fn field(log: &str, prefix: &str, key: &str) -> f64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{log}"));
    let rest = &line[line.find(prefix).unwrap()..];
    let start = rest
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len();
    let num: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("bad number for {key} in {line}"))
}

#[test]
fn psnr_and_ssim_match_ffmpeg() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("skipping: ffmpeg is not installed");
        return;
    }
    let clip = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/clips/carphone_176x144_120f.y4m");
    let Ok(bytes) = std::fs::read(&clip) else {
        eprintln!("skipping: {} not found", clip.display());
        return;
    };
    let (header, reference) = read_y4m(&bytes, FRAMES);
    assert_eq!(reference.len(), FRAMES);

    let dir = std::env::temp_dir().join(format!("excam-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ref_path = dir.join("ref.y4m");
    let coded = dir.join("coded.avi");
    let dist_path = dir.join("dist.y4m");
    write_y4m(&ref_path, &header, &reference);
    let (r, c, d) = (
        ref_path.to_str().unwrap(),
        coded.to_str().unwrap(),
        dist_path.to_str().unwrap(),
    );
    // MPEG-4 part 2 at a coarse quantizer: visibly lossy (about 30 dB), and
    // 4:2:0 in and out so no range or chroma conversion gets in between.
    ffmpeg(&["-i", r, "-c:v", "mpeg4", "-q:v", "12", "-f", "avi", c]);
    ffmpeg(&["-i", c, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", d]);
    let psnr_log = ffmpeg(&[
        "-i",
        d,
        "-i",
        r,
        "-lavfi",
        "[0:v][1:v]psnr",
        "-f",
        "null",
        "-",
    ]);
    let ssim = |cpuflags: &[&str]| {
        let mut args = cpuflags.to_vec();
        args.extend([
            "-i",
            d,
            "-i",
            r,
            "-lavfi",
            "[0:v][1:v]ssim",
            "-f",
            "null",
            "-",
        ]);
        ffmpeg(&args)
    };
    // ffmpeg's plain C ssim code, and whatever SIMD it picks by default.
    let ssim_c_log = ssim(&["-cpuflags", "0"]);
    let ssim_log = ssim(&[]);
    let (_, distorted) = read_y4m(&std::fs::read(&dist_path).unwrap(), usize::MAX);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(distorted.len(), FRAMES);

    let mut psnr = PsnrStats::new();
    let mut ssim = SsimStats::new();
    for (a, b) in reference.iter().zip(&distorted) {
        psnr.add(a, b);
        ssim.add(a, b);
    }

    let ff_psnr = [
        field(&psnr_log, "PSNR y:", "y:"),
        field(&psnr_log, "PSNR y:", "u:"),
        field(&psnr_log, "PSNR y:", "v:"),
    ];
    let ff_avg = field(&psnr_log, "PSNR y:", "average:");
    let ssim_fields = |log: &str| {
        [
            field(log, "SSIM Y:", "Y:"),
            field(log, "SSIM Y:", "U:"),
            field(log, "SSIM Y:", "V:"),
            field(log, "SSIM Y:", "All:"),
        ]
    };
    let ff_ssim_c = ssim_fields(&ssim_c_log);
    let ff_ssim = ssim_fields(&ssim_log);

    let ours = psnr.overall_planes();
    let ours_ssim = [
        ssim.planes()[0],
        ssim.planes()[1],
        ssim.planes()[2],
        ssim.all(),
    ];
    println!(
        "PSNR ours overall {:.6} planes {:?} avg-of-frames {:.6}",
        psnr.overall(),
        ours,
        psnr.average()
    );
    println!("PSNR ffmpeg average {ff_avg:.6} planes {ff_psnr:?}");
    println!("SSIM ours       Y U V All {ours_ssim:?}");
    println!("SSIM ffmpeg (C) Y U V All {ff_ssim_c:?}");
    println!("SSIM ffmpeg     Y U V All {ff_ssim:?}");

    // The clip must actually be degraded, or the comparison proves little.
    assert!(
        psnr.overall() < 40.0 && ssim.all() < 0.99,
        "not lossy enough"
    );
    // ffmpeg prints six decimals; we agree to the last one.
    assert!((psnr.overall() - ff_avg).abs() < 1e-5, "overall PSNR");
    for i in 0..3 {
        assert!((ours[i] - ff_psnr[i]).abs() < 1e-5, "PSNR plane {i}");
    }
    // Against ffmpeg's C code, SSIM agrees to the printed precision on every
    // plane and overall.
    for i in 0..4 {
        assert!((ours_ssim[i] - ff_ssim_c[i]).abs() < 2e-6, "SSIM (C) {i}");
    }
    // ffmpeg's default x86 build uses an SSE4 `ssim_end_line` that drifts
    // from its own C code (by about +0.002 on this clip's 88x72 chroma
    // planes; luma is exact), so against the default output only the
    // luma value is exact and the combined value agrees to 1e-3.
    assert!((ours_ssim[0] - ff_ssim[0]).abs() < 2e-6, "SSIM Y");
    assert!((ours_ssim[3] - ff_ssim[3]).abs() < 1e-3, "SSIM All");
}
