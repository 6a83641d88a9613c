//! `excam encode` end to end through its library entry point: output that
//! decodes, option parsing, and bad inputs that fail with a clear error
//! and leave nothing at the output path.

use std::path::{Path, PathBuf};

use clap::Parser;
use excam_codec::container::ivf::IvfReader;
use excam_codec::container::y4m::Y4mWriter;
use excam_codec::{decode, DecoderState, Image};
// The command's flags are the binary's (the library takes a typed spec):
// the binary's module, compiled here as well, parses and resolves them.
#[allow(dead_code)]
#[path = "../src/encode_cmd/mod.rs"]
mod encode_cmd;
use encode_cmd::{encode, EncodeArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EncodeArgs,
}

fn args(list: &[&str]) -> EncodeArgs {
    Cli::try_parse_from(std::iter::once("encode").chain(list.iter().copied()))
        .unwrap()
        .args
}

fn frames(w: usize, h: usize, n: usize) -> Vec<Image> {
    (0..n)
        .map(|t| {
            let mut f = Image::filled(w, h, [0, 120, 130]);
            for y in 0..h {
                for x in 0..w {
                    f.planes[0].row_mut(y)[x] = ((x * 7 + y * 3 + t * 5) % 256) as u8;
                }
            }
            f
        })
        .collect()
}

fn write_y4m(path: &Path, frames: &[Image]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = Y4mWriter::new(file, frames[0].width, frames[0].height, (30, 1)).unwrap();
    for f in frames {
        w.write_frame(f).unwrap();
    }
}

/// Names of the files in `dir`, sorted: to prove no temporary is left.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn decode_ivf(path: &Path) -> Vec<Image> {
    let r = IvfReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut state = DecoderState::new();
    let mut out = Vec::new();
    for f in r {
        let (s, shown) = decode(&state, &f.unwrap().data).unwrap();
        state = s;
        out.extend(shown);
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn encodes_y4m_to_ivf_that_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.y4m");
    let output = dir.path().join("out.ivf");
    let src = frames(40, 24, 6);
    write_y4m(&input, &src);
    let a = args(&[s(&input), "-o", s(&output), "-q", "20", "--speed", "6"]);
    let sum = encode(&a).unwrap();
    assert_eq!(sum.frames, 6);
    assert_eq!(sum.key_frames, 1);
    assert!(sum.psnr > 35.0, "PSNR {}", sum.psnr);
    assert!(sum.kbps > 0.0);
    let dec = decode_ivf(&output);
    assert_eq!(dec.len(), 6);
    let r = IvfReader::new(std::fs::File::open(&output).unwrap()).unwrap();
    assert_eq!(r.header().frame_count, 6);
    assert_eq!((r.header().width, r.header().height), (40, 24));
    assert_eq!(listing(dir.path()), ["in.y4m", "out.ivf"]);
    // The summary's PSNR is the decoded stream's.
    let mut stats = excam_codec::metrics::PsnrStats::new();
    for (a, b) in src.iter().zip(&dec) {
        stats.add(a, b);
    }
    assert!((stats.overall() - sum.psnr).abs() < 1e-9);
}

#[test]
fn limit_bitrate_keyint_and_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.y4m");
    let output = dir.path().join("out.ivf");
    write_y4m(&input, &frames(33, 17, 9));
    let a = args(&[
        s(&input),
        "-o",
        s(&output),
        "--bitrate",
        "50",
        "--keyint",
        "2",
        "--limit",
        "5",
        "--partitions",
        "4",
        "--quiet",
    ]);
    let sum = encode(&a).unwrap();
    assert_eq!(sum.frames, 5);
    assert_eq!(sum.key_frames, 3);
    assert_eq!(decode_ivf(&output).len(), 5);
}

#[test]
fn option_errors() {
    let parse =
        |l: &[&str]| Cli::try_parse_from(std::iter::once("encode").chain(l.iter().copied()));
    assert!(parse(&["in.y4m", "-o", "x.ivf", "-q", "64"]).is_err());
    // A level and a bitrate together are cq's (the other modes refuse
    // the pair when encoding: unsupported_rate_control_combinations_...).
    assert!(parse(&["in.y4m", "-o", "x.ivf", "-q", "10", "--bitrate", "100"]).is_ok());
    assert!(parse(&["in.y4m", "-o", "x.ivf", "--speed", "9"]).is_err());
    assert!(parse(&["in.y4m", "-o", "x.ivf", "--partitions", "3"]).is_err());
    assert!(parse(&["in.y4m", "-o", "x.ivf", "--bitrate", "0"]).is_err());
    assert!(parse(&["in.y4m"]).is_err(), "output is required");
    let a = parse(&["-", "-o", "x.ivf"]).unwrap().args;
    assert_eq!(a.input, PathBuf::from("-"));
    assert_eq!((a.quantizer, a.bitrate, a.keyint), (None, None, 128));
}

/// Runs the encoder on `input_bytes` and returns the error text, after
/// checking that the directory holds only the input (and the old output,
/// untouched, when there was one).
fn failing(input_bytes: &[u8], old_output: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.y4m");
    let output = dir.path().join("out.ivf");
    std::fs::write(&input, input_bytes).unwrap();
    if let Some(old) = old_output {
        std::fs::write(&output, old).unwrap();
    }
    let err = encode(&args(&[s(&input), "-o", s(&output), "--quiet"])).unwrap_err();
    match old_output {
        Some(old) => {
            assert_eq!(listing(dir.path()), ["in.y4m", "out.ivf"]);
            assert_eq!(std::fs::read(&output).unwrap(), old);
        }
        None => assert_eq!(listing(dir.path()), ["in.y4m"]),
    }
    format!("{err:#}")
}

#[test]
fn bad_inputs_fail_cleanly() {
    let frame_422 = [&b"FRAME\n"[..], &[128u8; 16 * 16 * 2]].concat();
    let e = failing(
        &[&b"YUV4MPEG2 W16 H16 F30:1 C422\n"[..], &frame_422].concat(),
        None,
    );
    assert!(e.contains("4:2:2") && e.contains("supported"), "{e}");

    let e = failing(b"YUV4MPEG2 W16 H16 F30:1 C420p10\n", None);
    assert!(e.contains("more than 8 bits"), "{e}");
    let e = failing(b"YUV4MPEG2 W16 H16 F30:1 C444\n", None);
    assert!(e.contains("4:4:4"), "{e}");
    let e = failing(b"YUV4MPEG2 W16 H16 F30:1 It C420jpeg\n", None);
    assert!(e.contains("interlaced"), "{e}");
    let e = failing(b"YUV4MPEG2 W16 F30:1\n", None);
    assert!(e.contains("malformed") && e.contains("H"), "{e}");
    let e = failing(b"not a y4m file at all\n", None);
    assert!(e.contains("YUV4MPEG2"), "{e}");

    // A whole frame, then one cut short: the old output must survive.
    let mut good = Vec::new();
    write_y4m_bytes(&mut good, &frames(16, 16, 2));
    let cut = &good[..good.len() - 100];
    let e = failing(cut, Some(b"previous output"));
    assert!(e.contains("frame 1"), "{e}");
    let e = failing(cut, None);
    assert!(e.contains("frame 1"), "{e}");

    // A header and no frames.
    let e = failing(b"YUV4MPEG2 W16 H16 F30:1 C420jpeg\n", None);
    assert!(e.contains("no frames"), "{e}");
}

fn write_y4m_bytes(out: &mut Vec<u8>, frames: &[Image]) {
    let mut w = Y4mWriter::new(out, frames[0].width, frames[0].height, (30, 1)).unwrap();
    for f in frames {
        w.write_frame(f).unwrap();
    }
}

#[test]
fn missing_input_and_output_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.y4m");
    let out = dir.path().join("out.ivf");
    let e = encode(&args(&[s(&missing), "-o", s(&out)])).unwrap_err();
    assert!(format!("{e:#}").contains("nope.y4m"));
    let input = dir.path().join("in.y4m");
    write_y4m(&input, &frames(16, 16, 1));
    let bad_out = dir.path().join("no/such/dir/out.ivf");
    assert!(encode(&args(&[s(&input), "-o", s(&bad_out)])).is_err());
    assert_eq!(listing(dir.path()), ["in.y4m"]);
}

/// Encodes `input` with `flags` and returns the output's bytes.
fn encode_bytes(dir: &Path, input: &Path, flags: &[&str]) -> Vec<u8> {
    let output = dir.join("alias.ivf");
    let mut list = vec![s(input), "-o", s(&output), "--quiet"];
    list.extend_from_slice(flags);
    encode(&args(&list)).unwrap_or_else(|e| panic!("{flags:?}: {e:#}"));
    std::fs::read(&output).unwrap()
}

#[test]
fn vpxenc_aliases_give_the_primary_flags_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.y4m");
    write_y4m(&input, &frames(40, 24, 8));
    let default = encode_bytes(dir.path(), &input, &[]);
    // (alias flags, primary flags): the same bytes, and not the default's,
    // so an alias that were silently ignored would fail.
    let pairs: &[(&[&str], &[&str])] = &[
        (&["--target-bitrate", "60"], &["--bitrate", "60"]),
        (
            &["--end-usage", "vbr", "--target-bitrate", "60"],
            &["-b", "60"],
        ),
        (&["--end-usage", "vbr"], &["--bitrate", "256"]),
        (
            &["--end-usage", "q", "--cq-level", "20"],
            &["--quantizer", "20"],
        ),
        (&["--cq-level", "20"], &["-q", "20"]),
        (
            &["--end-usage", "cq", "--cq-level", "20"],
            &["--quantizer", "20"],
        ),
        // Without a lookahead there are no alt-refs, no planned groups and
        // no scene cuts.
        (
            &[
                "--auto-alt-ref",
                "0",
                "--auto-golden",
                "0",
                "--scene-cuts",
                "0",
            ],
            &["--lag-in-frames", "0"],
        ),
        // A fixed golden interval replaces the planned groups.
        (&["--golden-interval", "12"], &["--auto-golden", "0"]),
        // --min-q/--max-q bound every frame, boosted ones included, so
        // they are not the same as the quantizer alone.
        (
            &["--min-q", "20", "--max-q", "20"],
            &["-q", "20", "--min-q", "20", "--max-q", "20"],
        ),
        (
            &["-q", "10", "--min-q", "20"],
            &["-q", "20", "--min-q", "20"],
        ),
        (
            &["-q", "50", "--max-q", "40"],
            &["-q", "40", "--max-q", "40"],
        ),
        // Without a bitrate target there is nothing for a first pass to
        // spread, and cq without a cap is q at its level; a generous cap
        // never binds.
        (
            &["--end-usage", "cq", "--cq-level", "20", "--passes", "2"],
            &["--quantizer", "20"],
        ),
        (
            &[
                "--end-usage",
                "cq",
                "--cq-level",
                "20",
                "--target-bitrate",
                "100000",
            ],
            // Under a cap the groups are fixed and there are no scene
            // cuts (planned ones are for a fixed quantizer this round).
            &[
                "--quantizer",
                "20",
                "--auto-golden",
                "0",
                "--scene-cuts",
                "0",
            ],
        ),
        (&["--kf-max-dist", "3"], &["--keyint", "3"]),
        (&["--cpu-used", "7"], &["--speed", "7"]),
        (&["--rt"], &["--speed", "8"]),
        (&["--best"], &["--speed", "0"]),
        (&["--rt", "--cpu-used", "6"], &["--speed", "6"]),
        (&["--token-parts", "2"], &["--partitions", "4"]),
        (&["--token-parts", "3"], &["--partitions", "8"]),
    ];
    for (alias, primary) in pairs {
        let a = encode_bytes(dir.path(), &input, alias);
        let p = encode_bytes(dir.path(), &input, primary);
        assert!(a == p, "{alias:?} differs from {primary:?}");
        assert!(a != default, "{alias:?} gives the default's bytes");
    }
    // The defaults' own spellings, and --threads, which changes nothing
    // (the default is the cores available).
    for same in [
        &["--good"][..],
        &["--speed", "4"],
        &["--token-parts", "0"],
        &["--end-usage", "q"],
        &["-q", "32"],
        &["--keyint", "128"],
        &["--threads", "4"],
        &["--threads", "1"],
        &["-t", "3"],
        &[
            "--lag-in-frames",
            "25",
            "--auto-alt-ref",
            "1",
            "--arnr-maxframes",
            "7",
            "--arnr-strength",
            "5",
            "--arnr-type",
            "3",
        ],
        &[
            "--auto-golden",
            "1",
            "--scene-cuts",
            "1",
            "--kf-min-dist",
            "0",
        ],
    ] {
        assert!(
            encode_bytes(dir.path(), &input, same) == default,
            "{same:?} changed the output"
        );
    }
}

#[test]
fn unsupported_rate_control_combinations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.y4m");
    let output = dir.path().join("out.ivf");
    write_y4m(&input, &frames(16, 16, 2));
    let err = |flags: &[&str]| {
        let mut list = vec![s(&input), "-o", s(&output)];
        list.extend_from_slice(flags);
        let e = format!("{:#}", encode(&args(&list)).unwrap_err());
        assert!(!output.exists(), "{flags:?}");
        e
    };
    let e = err(&["--end-usage", "cbr", "--passes", "2"]);
    assert!(e.contains("one-pass"), "{e}");
    let e = err(&["--buf-sz", "1000"]);
    assert!(e.contains("--end-usage cbr"), "{e}");
    let e = err(&["--end-usage", "vbr", "--buf-optimal-sz", "1000"]);
    assert!(e.contains("--end-usage cbr"), "{e}");
    let e = err(&["--end-usage", "cbr", "--buf-sz", "1000"]);
    assert!(e.contains("must not exceed --buf-sz"), "{e}");
    let e = err(&["--fpf", "stats.txt", "--target-bitrate", "100"]);
    assert!(e.contains("--passes 2"), "{e}");
    let e = err(&["--workers", "2", "--end-usage", "cbr"]);
    assert!(e.contains("--workers"), "{e}");
    let e = err(&["--workers", "2", "--passes", "2", "-b", "100"]);
    assert!(e.contains("--workers"), "{e}");
    let e = err(&["--workers", "2", "-q", "20", "--max-q", "40"]);
    assert!(e.contains("--workers"), "{e}");
    let e = err(&["--end-usage", "cbr", "--target-bitrate", "1"]);
    assert!(e.contains("too low"), "{e}");
    let e = err(&["--workers", "2", "--auto-alt-ref", "1"]);
    assert!(e.contains("--workers"), "{e}");
    let e = err(&["--end-usage", "q", "--target-bitrate", "100"]);
    assert!(e.contains("--end-usage vbr"), "{e}");
    let e = err(&["--end-usage", "vbr", "--cq-level", "10"]);
    assert!(e.contains("--end-usage q"), "{e}");
    let e = err(&["--target-bitrate", "100", "--cq-level", "3"]);
    assert!(e.contains("--end-usage q"), "{e}");
    let e = err(&["--min-q", "30", "--max-q", "20"]);
    assert!(e.contains("above --max-q"), "{e}");

    let parse =
        |l: &[&str]| Cli::try_parse_from(std::iter::once("encode").chain(l.iter().copied()));
    assert!(parse(&["i", "-o", "o", "--token-parts", "4"]).is_err());
    assert!(parse(&["i", "-o", "o", "--token-parts", "1", "--partitions", "2"]).is_err());
    assert!(parse(&["i", "-o", "o", "--rt", "--best"]).is_err());
    assert!(parse(&["i", "-o", "o", "--good", "--rt"]).is_err());
    assert!(parse(&["i", "-o", "o", "--cpu-used", "9"]).is_err());
    assert!(parse(&["i", "-o", "o", "--end-usage", "abr"]).is_err());
    assert!(parse(&["i", "-o", "o", "--cq-level", "64"]).is_err());
    assert!(parse(&["i", "-o", "o", "--passes", "3"]).is_err());
    assert!(parse(&["i", "-o", "o", "--buf-sz", "0"]).is_err());
}

#[test]
fn skip_and_limit_select_the_frames_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let src = frames(40, 24, 9);
    let input = dir.path().join("in.y4m");
    write_y4m(&input, &src);
    // --skip 3 --limit 4 is the encode of frames 3..7 as a clip of its own.
    let cut = dir.path().join("cut.y4m");
    write_y4m(&cut, &src[3..7]);
    let want = encode_bytes(dir.path(), &cut, &[]);
    let got = encode_bytes(dir.path(), &input, &["--skip", "3", "--limit", "4"]);
    assert!(got == want);
    assert_eq!(decode_ivf(&dir.path().join("alias.ivf")).len(), 4);
    // Skip alone keeps the rest; the ExCamera pipeline skips the same way.
    let rest = dir.path().join("rest.y4m");
    write_y4m(&rest, &src[2..]);
    for extra in [&[][..], &["--workers", "2", "--chunk-frames", "3"]] {
        let want = encode_bytes(dir.path(), &rest, extra);
        let mut flags = vec!["--skip", "2"];
        flags.extend_from_slice(extra);
        let got = encode_bytes(dir.path(), &input, &flags);
        assert!(got == want, "{extra:?}");
        assert_eq!(decode_ivf(&dir.path().join("alias.ivf")).len(), 7);
    }
    // Skipping everything is an error naming the frame count.
    let out = dir.path().join("none.ivf");
    let e = encode(&args(&[s(&input), "-o", s(&out), "--skip", "9"])).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("--skip 9") && e.contains("9 frames"), "{e}");
    assert!(!out.exists());
}
