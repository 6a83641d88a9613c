//! `excam decode X --frames DIR/%04d.png`: one RGB image per shown frame,
//! numbered from 1, with exactly the pixels of excam's BT.601 conversion
//! (PNG is lossless), close to FFmpeg's conversion of the same stream,
//! and clear errors for bad patterns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use excam_coordinator::images::{to_rgb, Range};

fn excam(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(args)
        .output()
        .expect("run excam")
}

/// A stream committed in the repo with hidden (altref) frames, so shown
/// frames and file positions differ.
fn stream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/excam-altref-2pass.ivf")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shown pictures of an IVF stream, decoded by excam.
fn shown_pictures(ivf: &Path) -> Vec<Arc<excam_codec::Picture>> {
    let bytes = std::fs::read(ivf).unwrap();
    let r = excam_codec::container::ivf::IvfReader::new(&bytes[..]).unwrap();
    let mut dec = excam_codec::Decoder::new();
    r.filter_map(|f| dec.decode(&f.unwrap().data).unwrap().0)
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn png_frames_are_the_bt601_pictures_numbered_from_one() {
    let dir = scratch("frames-png");
    let pattern = dir.join("f%04d.png");
    let out = excam(&[
        "decode".as_ref(),
        stream().as_os_str(),
        "--frames".as_ref(),
        pattern.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let pictures = shown_pictures(&stream());
    let all = std::fs::read(stream()).unwrap();
    let in_file = excam_codec::container::ivf::IvfReader::new(&all[..])
        .unwrap()
        .count();
    assert!(
        pictures.len() < in_file,
        "the stream must have hidden frames"
    );
    let want: Vec<String> = (1..=pictures.len())
        .map(|n| format!("f{n:04}.png"))
        .collect();
    assert_eq!(files(&dir), want);
    for (n, p) in pictures.iter().enumerate() {
        let img = image::open(dir.join(&want[n])).unwrap().into_rgb8();
        assert_eq!(
            (img.width() as usize, img.height() as usize),
            (p.width(), p.height())
        );
        assert!(
            img.as_raw() == &to_rgb(p, Range::Limited),
            "frame {} differs from the conversion",
            n + 1
        );
    }
}

#[test]
fn jpeg_frames_and_full_range_override() {
    let dir = scratch("frames-jpeg");
    let pattern = dir.join("%d.jpg");
    let out = excam(&[
        "decode".as_ref(),
        stream().as_os_str(),
        "--frames".as_ref(),
        pattern.as_os_str(),
        "--range".as_ref(),
        "full".as_ref(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let pictures = shown_pictures(&stream());
    assert_eq!(files(&dir).len(), pictures.len());
    // JPEG is lossy: the full-range conversion is close, the limited one
    // (a different contrast) is not.
    let img = image::open(dir.join("1.jpg")).unwrap().into_rgb8();
    let mad = |want: &[u8]| {
        img.as_raw()
            .iter()
            .zip(want)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / want.len() as f64
    };
    let full = mad(&to_rgb(&pictures[0], Range::Full));
    let limited = mad(&to_rgb(&pictures[0], Range::Limited));
    assert!(
        full < 2.0,
        "mean difference to the full-range conversion {full}"
    );
    assert!(limited > full + 3.0, "limited {limited} vs full {full}");
}

/// FFmpeg's own YUV -> RGB conversion of the same stream (its VP8 decoder
/// gives the same YUV) agrees with ours up to chroma upsampling and
/// rounding.
#[test]
fn close_to_ffmpegs_conversion() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ffmpeg is required under CI=true"
        );
        return;
    }
    let pictures = shown_pictures(&stream());
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(stream())
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame_len = pictures[0].width() * pictures[0].height() * 3;
    assert_eq!(out.stdout.len(), frame_len * pictures.len());
    let ours: Vec<u8> = pictures
        .iter()
        .flat_map(|p| to_rgb(p, Range::Limited))
        .collect();
    let diffs: Vec<u8> = ours
        .iter()
        .zip(&out.stdout)
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    let small = diffs.iter().filter(|&&d| d <= 3).count() as f64 / diffs.len() as f64;
    eprintln!(
        "mean |ours - ffmpeg| = {mean:.3}, {:.1}% within 3",
        small * 100.0
    );
    assert!(mean < 2.0, "mean difference {mean}");
    assert!(small > 0.9, "only {:.1}% within 3 codes", small * 100.0);
}

#[test]
fn bad_patterns_are_refused_clearly() {
    let dir = scratch("frames-bad");
    for (pattern, says) in [
        ("f.png", "no frame-number field"),
        ("f%d%d.png", "exactly one"),
        ("f%04d.bmp", ".png or .jpg"),
        ("missing/f%04d.png", "does not exist"),
    ] {
        let p = dir.join(pattern);
        let out = excam(&[
            "decode".as_ref(),
            stream().as_os_str(),
            "--frames".as_ref(),
            p.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{pattern}: {err}");
        assert!(err.contains(says), "{pattern}: {err}");
    }
    assert!(files(&dir).is_empty());
    // --range only means something with --frames.
    let out = excam(&[
        "decode".as_ref(),
        stream().as_os_str(),
        "--null".as_ref(),
        "--range".as_ref(),
        "full".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--range applies to --frames only"));
}
