//! Runs the built `excam` binary: `decode --md5` against the official
//! `.ivf.md5` files, `decode -o` in both formats, `info`, and the failure
//! paths (non-zero exit, error naming the frame, no output file left),
//! and WebM in and out, checked against vpxdec and ffprobe.

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
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is required under CI=true",
            dir.display()
        );
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

/// `--threads 2` and `--threads 1` (the row-wavefront decoder and the
/// serial one; the default is the cores available) print the same MD5s
/// as the official files; `--threads 0` is refused with a message.
#[test]
fn threaded_decode_matches_the_official_files() {
    let Some(dir) = vectors_dir() else { return };
    for name in ["vp80-00-comprehensive-008", "vp80-03-segmentation-1425"] {
        let ivf = dir.join(format!("{name}.ivf"));
        for threads in ["1", "2"] {
            let out = excam(&[
                "decode".as_ref(),
                "--threads".as_ref(),
                threads.as_ref(),
                ivf.as_os_str(),
                "--md5".as_ref(),
            ]);
            assert!(out.status.success(), "{name}: {out:?}");
            let want = std::fs::read_to_string(dir.join(format!("{name}.ivf.md5"))).unwrap();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                want,
                "{name}, {threads} threads"
            );
        }
    }
    let ivf = repo_stream();
    let out = excam(&[
        "decode".as_ref(),
        "--threads".as_ref(),
        "0".as_ref(),
        ivf.as_os_str(),
        "--md5".as_ref(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
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

#[test]
fn null_output_decodes_without_writing() {
    let ivf = repo_stream();
    for args in [
        &["-o".as_ref(), "/dev/null".as_ref()][..],
        &["--null".as_ref()][..],
        &["--noblit".as_ref()][..],
    ] {
        let mut all = vec!["decode".as_ref(), ivf.as_os_str()];
        all.extend_from_slice(args);
        let r = excam(&all);
        assert!(r.status.success(), "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    assert!(is_char_device(Path::new("/dev/null")));
    // --null still decodes: a broken frame fails, naming it.
    let dir = scratch("null_corrupt");
    let bad = dir.join("bad.ivf");
    std::fs::write(&bad, corrupt_frame_1()).unwrap();
    for flag in ["--null", "--noblit"] {
        let r = excam(&["decode".as_ref(), bad.as_os_str(), flag.as_ref()]);
        assert!(!r.status.success(), "{flag}");
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("frame 1"),
            "{r:?}"
        );
    }
    let r = excam(&[
        "decode".as_ref(),
        bad.as_os_str(),
        "-o".as_ref(),
        "/dev/null".as_ref(),
    ]);
    assert!(!r.status.success());
    // --null takes no output or format.
    let r = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "--null".as_ref(),
        "--md5".as_ref(),
    ]);
    assert!(!r.status.success());
}

fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).unwrap().file_type().is_char_device()
}

/// The repo stream with frame 1's first partition size broken.
fn corrupt_frame_1() -> Vec<u8> {
    let mut ivf = std::fs::read(repo_stream()).unwrap();
    let size0 = u32::from_le_bytes(ivf[32..36].try_into().unwrap()) as usize;
    let f1 = 32 + 12 + size0 + 12;
    ivf[f1..f1 + 3].fill(0xff);
    ivf
}

/// A FIFO in `dir`, and a thread reading all of it.
fn fifo(dir: &Path) -> (PathBuf, std::thread::JoinHandle<Vec<u8>>) {
    let path = dir.join("pipe");
    let st = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(st.success());
    let p = path.clone();
    let reader = std::thread::spawn(move || std::fs::read(p).unwrap());
    (path, reader)
}

#[test]
fn decode_writes_a_fifo_in_place_as_y4m() {
    let ivf = repo_stream();
    let dir = scratch("decode_fifo");
    let (pipe, reader) = fifo(&dir);
    let r = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        pipe.as_os_str(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let got = reader.join().unwrap();
    let stdout = excam(&[
        "decode".as_ref(),
        ivf.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
    ]);
    assert!(got.starts_with(b"YUV4MPEG2 "));
    assert_eq!(got, stdout.stdout);
    // Still a FIFO, and nothing else was left in the directory.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(names.len(), 1);
}

/// A small Y4M clip of `n` frames with motion, written with ffmpeg-free
/// code so the test needs no tool.
fn write_clip(path: &Path, n: usize) -> Vec<excam_codec::Image> {
    use excam_codec::container::y4m::Y4mWriter;
    let (w, h) = (48, 32);
    let frames: Vec<excam_codec::Image> = (0..n)
        .map(|t| {
            let mut f = excam_codec::Image::filled(w, h, [0, 110, 140]);
            for y in 0..h {
                for x in 0..w {
                    f.planes[0].row_mut(y)[x] = ((x * 5 + y * 3 + t * 4) % 256) as u8;
                }
            }
            f
        })
        .collect();
    let mut wr = Y4mWriter::new(std::fs::File::create(path).unwrap(), w, h, (30, 1)).unwrap();
    for f in &frames {
        wr.write_frame(f).unwrap();
    }
    frames
}

fn decode_all(ivf: &[u8]) -> Vec<excam_codec::Image> {
    let r = excam_codec::container::ivf::IvfReader::new(ivf).unwrap();
    let mut state = excam_codec::DecoderState::new();
    let mut out = Vec::new();
    for f in r {
        let (s, shown) = excam_codec::decode(&state, &f.unwrap().data).unwrap();
        state = s;
        out.extend(shown);
    }
    out
}

#[test]
fn encode_to_dev_null_and_to_a_fifo() {
    let dir = scratch("encode_null");
    let clip = dir.join("in.y4m");
    write_clip(&clip, 5);
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        "/dev/null".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("5 frames"),
        "{r:?}"
    );
    // /dev/null was written through, not renamed over.
    assert!(is_char_device(Path::new("/dev/null")));

    let file = dir.join("out.ivf");
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        file.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let (pipe, reader) = fifo(&dir);
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        pipe.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let piped = reader.join().unwrap();
    let whole = std::fs::read(&file).unwrap();
    // A pipe cannot be seeked back to patch the frame count (bytes 24..28).
    assert_eq!(piped.len(), whole.len());
    assert_eq!(&piped[..24], &whole[..24]);
    assert_eq!(&piped[28..], &whole[28..]);
    assert_eq!(&piped[24..28], &[0, 0, 0, 0]);
    // Five shown frames and, with the default lookahead, the hidden
    // alt-ref of their group: IVF counts every frame, as vpxenc's does.
    assert_eq!(&whole[24..28], &6u32.to_le_bytes());
}

#[test]
fn psnr_prints_vpxencs_summary_line() {
    let dir = scratch("psnr");
    let clip = dir.join("in.y4m");
    let src = write_clip(&clip, 4);
    let out = dir.join("out.ivf");
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--psnr".as_ref(),
        "--quiet".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let err = String::from_utf8(r.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "--quiet leaves only the PSNR line: {err}");
    let rest = lines[0]
        .strip_prefix("Stream 0 PSNR (Overall/Avg/Y/U/V) ")
        .unwrap_or_else(|| panic!("{err}"));
    let nums: Vec<f64> = rest
        .split_whitespace()
        .take(5)
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(rest.contains(" bps ") && rest.ends_with(" ms"), "{rest}");
    // The numbers are those of the decoded output against the input.
    let dec = decode_all(&std::fs::read(&out).unwrap());
    let mut stats = excam_codec::metrics::PsnrStats::new();
    for (a, b) in src.iter().zip(&dec) {
        stats.add(a, b);
    }
    let want = [
        stats.overall(),
        stats.average(),
        stats.average_planes()[0],
        stats.average_planes()[1],
        stats.average_planes()[2],
    ];
    for (got, want) in nums.iter().zip(want) {
        assert!((got - want).abs() < 0.0006, "{got} vs {want}: {rest}");
    }
    // Without --psnr, --quiet prints nothing.
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(r.status.success() && r.stderr.is_empty(), "{r:?}");
}

#[test]
fn encode_help_groups_flags_as_vpxenc() {
    let r = excam(&["encode".as_ref(), "--help".as_ref()]);
    assert!(r.status.success());
    let help = String::from_utf8(r.stdout).unwrap();
    // Each flag is listed under its heading: after it, before the next one.
    let groups: [(&str, &[&str]); 6] = [
        (
            "Rate control:",
            &[
                "--end-usage",
                "target-bitrate",
                "cq-level",
                "--min-q",
                "--max-q",
            ],
        ),
        ("Key frames:", &["kf-max-dist", "--golden-interval"]),
        ("Speed:", &["cpu-used", "--good", "--rt", "--best"]),
        (
            "Parallelism:",
            &["--token-parts", "--threads", "--workers", "--chunk-frames"],
        ),
        (
            "Input and output:",
            &["--output", "--limit", "--skip", "--psnr", "--quiet"],
        ),
        (
            "Cloud:",
            &["--backend", "--bucket", "--dry-run", "--max-cost"],
        ),
    ];
    let starts: Vec<usize> = groups
        .iter()
        .map(|(h, _)| {
            help.find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("{h}: {help}"))
        })
        .collect();
    for (i, (heading, flags)) in groups.iter().enumerate() {
        let end = starts
            .iter()
            .copied()
            .filter(|&s| s > starts[i])
            .min()
            .unwrap_or(help.len());
        let section = &help[starts[i]..end];
        for f in *flags {
            assert!(section.contains(f), "{f} not under {heading}: {section}");
        }
    }
}

/// Whether `tool` can be run; a missing tool fails the test under CI=true.
fn have_tool(tool: &str) -> bool {
    if Command::new(tool).arg("--help").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is required under CI=true (apt-get install vpx-tools ffmpeg)"
    );
    eprintln!("skipping: {tool} is not on PATH");
    false
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run tool");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out
}

/// The MD5 of every shown frame's I420 bytes, as `vpxdec --i420 --md5`
/// prints it, computed from `excam decode -o - --format i420`.
fn excam_i420_md5(stream: &Path) -> String {
    use md5::{Digest, Md5};
    let r = excam(&[
        "decode".as_ref(),
        stream.as_os_str(),
        "-o".as_ref(),
        "-".as_ref(),
        "--format".as_ref(),
        "i420".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    assert!(!r.stdout.is_empty());
    format!("{:x}", Md5::digest(&r.stdout))
}

fn vpxdec_md5(stream: &Path) -> String {
    let out = run_ok(
        Command::new("vpxdec")
            .arg("--i420")
            .arg("--md5")
            .arg(stream),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

fn ffprobe_frames(stream: &Path) -> String {
    let out = run_ok(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=codec_name,nb_read_frames"])
            .args(["-of", "csv=p=0"])
            .arg(stream),
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn webm_output_plays_in_vpxdec_and_ffmpeg() {
    let dir = scratch("webm_out");
    let clip = dir.join("in.y4m");
    write_clip(&clip, 12);
    let webm = dir.join("out.webm");
    let ivf = dir.join("out.ivf");
    for (out, extra) in [(&webm, &[][..]), (&ivf, &[][..])] {
        let mut a = vec![
            "encode".as_ref(),
            clip.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--quiet".as_ref(),
            "--keyint".as_ref(),
            "5".as_ref(),
        ];
        a.extend_from_slice(extra);
        let r = excam(&a);
        assert!(r.status.success(), "{r:?}");
    }
    let bytes = std::fs::read(&webm).unwrap();
    assert_eq!(&bytes[..4], &[0x1a, 0x45, 0xdf, 0xa3], "EBML signature");
    // The same frames in both containers: excam reads WebM back.
    let md5 = |p: &Path| {
        let r = excam(&["decode".as_ref(), p.as_os_str(), "--md5".as_ref()]);
        assert!(r.status.success(), "{r:?}");
        String::from_utf8(r.stdout).unwrap()
    };
    assert_eq!(md5(&webm), md5(&ivf));
    assert_eq!(md5(&webm).lines().count(), 12);
    let info = excam(&["info".as_ref(), webm.as_os_str()]);
    assert!(info.status.success(), "{info:?}");
    let info = String::from_utf8(info.stdout).unwrap();
    // The default lookahead adds a hidden alt-ref to each of the two
    // 5-frame key-frame groups (the last group, 2 frames, is too short).
    assert_eq!(info.lines().count(), 14, "{info}");
    assert_eq!(info.lines().filter(|l| l.contains(" hidden ")).count(), 2);
    assert_eq!(info.lines().filter(|l| l.contains(" key ")).count(), 3);
    // --ivf and --webm override the name.
    for (flag, magic) in [("--webm", &b"\x1a\x45\xdf\xa3"[..]), ("--ivf", b"DKIF")] {
        let out = dir.join(format!("forced{flag}.bin"));
        let r = excam(&[
            "encode".as_ref(),
            clip.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--quiet".as_ref(),
            flag.as_ref(),
        ]);
        assert!(r.status.success(), "{r:?}");
        assert_eq!(&std::fs::read(&out).unwrap()[..4], magic, "{flag}");
    }
    if have_tool("ffprobe") {
        assert_eq!(ffprobe_frames(&webm), "vp8,12");
    }
    if have_tool("vpxdec") {
        assert_eq!(vpxdec_md5(&webm), excam_i420_md5(&webm));
        assert_eq!(vpxdec_md5(&webm), vpxdec_md5(&ivf));
    }
}

#[test]
fn decodes_vpxencs_webm_as_vpxdec_does() {
    if !have_tool("vpxenc") || !have_tool("vpxdec") {
        return;
    }
    let dir = scratch("vpxenc_webm");
    let clip = dir.join("in.y4m");
    write_clip(&clip, 30);
    // vpxenc's default container, with hidden alt-ref frames (VP8 makes
    // them in two-pass only).
    let webm = dir.join("vpxenc.webm");
    run_ok(
        Command::new("vpxenc")
            .args([
                "--codec=vp8",
                "--good",
                "--cpu-used=4",
                "--target-bitrate=200",
            ])
            .args([
                "--passes=2",
                "--auto-alt-ref=1",
                "--lag-in-frames=10",
                "--kf-max-dist=20",
                "-q",
            ])
            .arg("-o")
            .arg(&webm)
            .arg(&clip),
    );
    assert_eq!(
        &std::fs::read(&webm).unwrap()[..4],
        &[0x1a, 0x45, 0xdf, 0xa3]
    );
    assert_eq!(excam_i420_md5(&webm), vpxdec_md5(&webm));
    let r = excam(&["decode".as_ref(), webm.as_os_str(), "--md5".as_ref()]);
    assert_eq!(String::from_utf8(r.stdout).unwrap().lines().count(), 30);
    let info = excam(&["info".as_ref(), webm.as_os_str()]);
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(info.lines().any(|l| l.contains(" hidden ")), "{info}");
}

#[test]
fn unknown_containers_are_named_in_words() {
    let dir = scratch("not_a_container");
    let text = dir.join("notes.ivf");
    std::fs::write(&text, b"hello, this is text").unwrap();
    let r = excam(&["decode".as_ref(), text.as_os_str(), "--null".as_ref()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("neither IVF nor WebM") && err.contains("EBML") && err.contains("\"hell\""),
        "{err}"
    );
    assert!(!err.contains("[104"), "no byte array: {err}");
    // An EBML header and then garbage: an error, not a panic.
    let bad = dir.join("bad.webm");
    std::fs::write(&bad, b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01garbage").unwrap();
    for cmd in ["decode", "info"] {
        let mut a = vec![cmd.as_ref(), bad.as_os_str()];
        if cmd == "decode" {
            a.push("--null".as_ref());
        }
        let r = excam(&a);
        assert!(!r.status.success());
        assert_eq!(r.status.code(), Some(1), "{r:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("not a readable WebM file"), "{err}");
    }
    let empty = dir.join("empty.ivf");
    std::fs::write(&empty, b"").unwrap();
    let r = excam(&["info".as_ref(), empty.as_os_str()]);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("empty"),
        "{r:?}"
    );
}

#[test]
fn dash_writes_standard_output_in_either_container() {
    let dir = scratch("stdout_out");
    let clip = dir.join("in.y4m");
    write_clip(&clip, 8);
    let file = dir.join("ref.ivf");
    let r = excam(&[
        "encode".as_ref(),
        clip.as_os_str(),
        "-o".as_ref(),
        file.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(r.status.success(), "{r:?}");
    let md5 = |p: &Path| {
        let r = excam(&["decode".as_ref(), p.as_os_str(), "--md5".as_ref()]);
        assert!(r.status.success(), "{r:?}");
        String::from_utf8(r.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    for (flag, magic) in [("--ivf", &b"DKIF"[..]), ("--webm", b"\x1a\x45\xdf\xa3")] {
        // stdout is a pipe here: the stream is written straight through.
        let r = excam(&[
            "encode".as_ref(),
            clip.as_os_str(),
            "-o".as_ref(),
            "-".as_ref(),
            "--quiet".as_ref(),
            flag.as_ref(),
        ]);
        assert!(r.status.success(), "{r:?}");
        assert_eq!(&r.stdout[..4], magic, "{flag}");
        let got = dir.join(format!("piped{flag}"));
        std::fs::write(&got, &r.stdout).unwrap();
        if flag == "--ivf" {
            assert_eq!(md5(&got), md5(&file), "{flag}");
        } else if have_tool("vpxdec") {
            // A piped WebM has clusters of unknown size, which excam's
            // demuxer does not read yet; vpxdec and FFmpeg do.
            assert_eq!(vpxdec_md5(&got), excam_i420_md5(&file));
            if have_tool("ffprobe") {
                assert_eq!(ffprobe_frames(&got), "vp8,8");
            }
        }
    }
    assert!(
        !dir.join("-").exists(),
        "'-' is standard output, not a file"
    );
}
