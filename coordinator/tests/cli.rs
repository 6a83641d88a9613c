//! Runs the built `excam` binary: `decode --md5` against the official
//! `.ivf.md5` files, `decode -o` in both formats, `info`, and the failure
//! paths (non-zero exit, error naming the frame, no output file left).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn excam(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(args)
        .output()
        .expect("run excam")
}

fn vectors_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vp8-test-vectors");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

/// A generated stream committed in the repo, so some tests never skip.
fn repo_stream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/excam-altref-2pass.ivf")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn md5_output_equals_the_official_files() {
    let Some(dir) = vectors_dir() else { return };
    // Hidden frames (018, 1439), odd sizes (008, 1418), size changes (1425).
    for name in [
        "vp80-00-comprehensive-001",
        "vp80-00-comprehensive-008",
        "vp80-00-comprehensive-018",
        "vp80-03-segmentation-1425",
        "vp80-05-sharpness-1439",
    ] {
        let ivf = dir.join(format!("{name}.ivf"));
        let out = excam(&["decode".as_ref(), ivf.as_os_str(), "--md5".as_ref()]);
        assert!(out.status.success(), "{name}: {out:?}");
        let want = std::fs::read_to_string(dir.join(format!("{name}.ivf.md5"))).unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{name}");
    }
}

#[test]
fn md5_of_repo_stream_matches_its_hashes() {
    let ivf = repo_stream();
    let out = excam(&["decode".as_ref(), ivf.as_os_str(), "--md5".as_ref()]);
    assert!(out.status.success(), "{out:?}");
    let want = std::fs::read_to_string(ivf.with_extension("ivf.md5")).unwrap();
    let hashes = |s: &str| s.lines().map(|l| l[..32].to_string()).collect::<Vec<_>>();
    assert_eq!(
        hashes(&String::from_utf8(out.stdout).unwrap()),
        hashes(&want)
    );
}

#[test]
fn decode_writes_i420_and_y4m() {
    let ivf = repo_stream();
    let dir = scratch("decode_formats");
    let yuv = dir.join("out.yuv");
    let y4m = dir.join("out.y4m");
    for out in [&yuv, &y4m] {
        let r = excam(&[
            "decode".as_ref(),
            ivf.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert!(r.status.success(), "{r:?}");
    }
    // The raw file is the concatenation of the frames the MD5s cover.
    let md5s = std::fs::read_to_string(ivf.with_extension("ivf.md5")).unwrap();
    let frames = md5s.lines().count();
    let first = md5s.lines().next().unwrap();
    let dims = first.rsplit('-').nth(1).unwrap();
    let (w, h) = dims.split_once('x').unwrap();
    let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
    let frame_len = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
    let raw = std::fs::read(&yuv).unwrap();
    assert_eq!(raw.len(), frames * frame_len);
    // Y4M: header line, then per frame "FRAME\n" and the same bytes.
    let y4m = std::fs::read(&y4m).unwrap();
    let header_end = y4m.iter().position(|&b| b == b'\n').unwrap() + 1;
    let header = std::str::from_utf8(&y4m[..header_end]).unwrap();
    assert!(
        header.starts_with(&format!("YUV4MPEG2 W{w} H{h} ")),
        "{header}"
    );
    assert_eq!(y4m.len(), header_end + frames * (6 + frame_len));
    assert_eq!(&y4m[header_end..header_end + 6], b"FRAME\n");
    assert_eq!(
        &y4m[header_end + 6..header_end + 6 + frame_len],
        &raw[..frame_len]
    );
    // No temporary files left beside the outputs.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn stdout_is_y4m_unless_told_otherwise() {
    let ivf = repo_stream();
    let y4m = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
    ]);
    assert!(y4m.status.success());
    assert!(y4m.stdout.starts_with(b"YUV4MPEG2 "));
    let raw = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
        "--format".as_ref(),
        "i420".as_ref(),
    ]);
    assert!(raw.status.success());
    assert!(!raw.stdout.starts_with(b"YUV4MPEG2 "));
    assert!(y4m.stdout.len() > raw.stdout.len());
}

#[test]
fn format_flag_overrides_the_extension() {
    let ivf = repo_stream();
    let dir = scratch("format_override");
    let out = dir.join("frames.bin");
    let r = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "i420".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let stdout = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
        "--format".as_ref(),
        "i420".as_ref(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), stdout.stdout);
}

#[test]
fn unknown_extension_is_refused() {
    let ivf = repo_stream();
    let dir = scratch("unknown_ext");
    let out = dir.join("out.mp4");
    let r = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("--format"));
    assert!(!out.exists());
}

#[test]
fn corrupt_frame_fails_cleanly_without_output() {
    let ivf = std::fs::read(repo_stream()).unwrap();
    // Frame 0 starts after the 32-byte file header and its 12-byte frame
    // header; frame 1 follows. Break frame 1's first partition size so it
    // overruns the frame, which the decoder must report for frame 1.
    let size0 = u32::from_le_bytes(ivf[32..36].try_into().unwrap()) as usize;
    let f1 = 32 + 12 + size0 + 12;
    let mut bad = ivf.clone();
    bad[f1] = 0xff;
    bad[f1 + 1] = 0xff;
    bad[f1 + 2] = 0xff;
    let dir = scratch("corrupt");
    let input = dir.join("bad.ivf");
    std::fs::write(&input, &bad).unwrap();
    let out = dir.join("out.yuv");
    std::fs::write(&out, b"old").unwrap();
    let r = excam(&[
        "decode".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("frame 1"), "{err}");
    // The old file is untouched and no temporary file is left behind.
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let info = excam(&["info".as_ref(), input.as_os_str()]);
    assert!(!info.status.success());
    assert!(String::from_utf8_lossy(&info.stderr).contains("frame 1"));
    // Frame 0 was still listed before the failure.
    assert_eq!(String::from_utf8_lossy(&info.stdout).lines().count(), 1);
}

#[test]
fn info_lists_every_frame() {
    let Some(dir) = vectors_dir() else { return };
    // 29 frames, the first hidden (an altref), the rest shown.
    let ivf = dir.join("vp80-00-comprehensive-018.ivf");
    let r = excam(&["info".as_ref(), ivf.as_os_str()]);
    assert!(r.status.success());
    let text = String::from_utf8(r.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 29);
    assert!(
        lines[0].starts_with("0 key hidden bytes=664 size=176x144 q=4 refresh=last,golden,altref")
    );
    assert!(lines[1].starts_with("1 inter shown "));
    assert!(lines
        .iter()
        .all(|l| l.contains(" parts=") && l.contains(" filter=")));
}

#[test]
fn missing_input_names_the_file() {
    let r = excam(&[
        "decode".as_ref(),
        "/nonexistent/x.ivf".as_ref(),
        "--md5".as_ref(),
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("/nonexistent/x.ivf"));
}
