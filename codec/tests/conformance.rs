//! Every official VP8 test vector (in ../shared/vp8-test-vectors) and every
//! stream generated into test-vectors/ decodes to exactly the per-frame
//! MD5s libvpx gives.

use std::path::{Path, PathBuf};

use excam_codec::container::ivf::IvfReader;
use excam_codec::{decode_picture_threaded, Decoder, DecoderState};
use md5::{Digest, Md5};

/// Decodes `path` and returns its lines in the `.ivf.md5` format. Frames
/// are numbered by their position in the file (hidden frames take a
/// number too), as vpxdec's `%4` does. `threads` is passed to
/// [`decode_picture_threaded`] (threads started per frame), or with
/// `kept` to [`Decoder::with_threads`] (threads and buffers kept from
/// frame to frame).
fn md5_lines(path: &Path, threads: usize, kept: bool) -> Vec<String> {
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    let file = std::fs::File::open(path).unwrap();
    let reader = IvfReader::new(std::io::BufReader::new(file)).unwrap();
    let mut state = DecoderState::default();
    let mut decoder = Decoder::with_threads(threads);
    let mut lines = Vec::new();
    for (i, frame) in reader.enumerate() {
        let frame = frame.unwrap();
        let shown = if kept {
            decoder
                .decode(&frame.data)
                .map(|(shown, _)| shown)
                .map_err(|e| e.source)
        } else {
            decode_picture_threaded(&state, &frame.data, threads).map(|d| {
                state = d.state;
                d.shown
            })
        };
        let shown = shown.unwrap_or_else(|e| panic!("{}: frame {i}: {e}", path.display()));
        if let Some(p) = shown {
            let f = p.to_frame();
            let digest = Md5::digest(f.to_i420());
            lines.push(format!(
                "{digest:x}  {stem}-{}x{}-{:04}.i420",
                f.width,
                f.height,
                i + 1
            ));
        }
    }
    lines
}

fn check_dir(dir: &Path, threads: usize, kept: bool) -> usize {
    let mut ivfs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ivf"))
        .collect();
    ivfs.sort();
    let mut failures = Vec::new();
    for ivf in &ivfs {
        let expected = std::fs::read_to_string(ivf.with_extension("ivf.md5")).unwrap();
        let expected: Vec<&str> = expected.lines().collect();
        let got = md5_lines(ivf, threads, kept);
        let got_hashes: Vec<&str> = got.iter().map(|l| &l[..32]).collect();
        let want_hashes: Vec<&str> = expected.iter().map(|l| &l[..32]).collect();
        if got_hashes != want_hashes {
            failures.push(ivf.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{threads} threads (kept: {kept}), mismatching streams: {failures:#?}"
    );
    ivfs.len()
}

#[test]
fn official_vectors_match_libvpx() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vp8-test-vectors");
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    assert_eq!(check_dir(&dir, 1, false), 62);
}

#[test]
fn generated_vectors_match_libvpx() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    assert!(check_dir(&dir, 1, false) >= 40);
}

/// The row-wavefront decoder gives the same pictures on every vector
/// with any thread count (fewer, as many and more threads than rows or
/// partitions), its threads started per frame or kept by a `Decoder`.
#[test]
fn official_vectors_match_libvpx_threaded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vp8-test-vectors");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is absent under CI",
            dir.display()
        );
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    assert_eq!(check_dir(&dir, 2, false), 62);
    for threads in [2, 3, 8] {
        assert_eq!(check_dir(&dir, threads, true), 62, "{threads} threads");
    }
}

#[test]
fn generated_vectors_match_libvpx_threaded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    assert!(check_dir(&dir, 2, false) >= 40);
    for threads in [2, 3, 8] {
        assert!(check_dir(&dir, threads, true) >= 40, "{threads} threads");
    }
}
