//! Thousands of mutated versions of the test vectors through `decode`:
//! bit flips, truncation, byte insertion and deletion, overwritten sizes.
//! None may panic or hang; every failure must be a typed `DecodeError`
//! with a message, and a failed frame must leave the caller's state as it
//! was (the `Decoder` wrapper keeps the old state on error).
//!
//! Deterministic (a fixed xorshift seed), no extra dependencies; a few
//! seconds in release.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use excam_codec::container::ivf::IvfReader;
use excam_codec::{decode, DecodeError, DecoderState};

/// Frames taken from the start of each stream.
const FRAMES: usize = 4;
/// Mutated versions of each stream.
const MUTANTS_PER_STREAM: usize = 40;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn streams() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![manifest.join("../test-vectors")];
    let shared = manifest.join("../../shared/vp8-test-vectors");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!(
            "note: {} is absent; mutating the generated streams only",
            shared.display()
        );
    }
    let mut out = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "ivf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn first_frames(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    IvfReader::new(&bytes[..])
        .unwrap()
        .take(FRAMES)
        .map(|f| f.unwrap().data)
        .collect()
}

/// One random mutation of one frame; returns a description for failures.
fn mutate(frames: &mut [Vec<u8>], rng: &mut Rng) -> String {
    // The key frame carries the most header; hit it half the time.
    let fi = if rng.next() & 1 == 0 {
        0
    } else {
        rng.below(frames.len())
    };
    let f = &mut frames[fi];
    // Mutations near the start (headers, partition sizes) matter most.
    let near = |rng: &mut Rng, len: usize| {
        if rng.next() & 1 == 0 {
            rng.below(len.min(32))
        } else {
            rng.below(len)
        }
    };
    match rng.next() % 6 {
        0 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let at = near(rng, f.len());
                f[at] ^= 1 << rng.below(8);
            }
            format!("frame {fi}: {n} bit flips")
        }
        1 => {
            let len = rng.below(f.len());
            f.truncate(len);
            format!("frame {fi}: truncated to {len}")
        }
        2 => {
            let at = near(rng, f.len() + 1);
            let n = 1 + rng.below(16);
            for _ in 0..n {
                f.insert(at, rng.next() as u8);
            }
            format!("frame {fi}: {n} bytes inserted at {at}")
        }
        3 => {
            let at = near(rng, f.len());
            let n = (1 + rng.below(16)).min(f.len() - at);
            f.drain(at..at + n);
            format!("frame {fi}: {n} bytes deleted at {at}")
        }
        4 => {
            let at = near(rng, f.len());
            let v = [0x00, 0xff, 0x80, 0x7f][rng.below(4)];
            let n = (1 + rng.below(4)).min(f.len() - at);
            f[at..at + n].fill(v);
            format!("frame {fi}: {n} bytes set to {v:#x} at {at}")
        }
        _ => {
            // Random bytes over a stretch anywhere.
            let at = rng.below(f.len());
            let n = (1 + rng.below(64)).min(f.len() - at);
            for b in &mut f[at..at + n] {
                *b = rng.next() as u8;
            }
            format!("frame {fi}: {n} random bytes at {at}")
        }
    }
}

#[test]
fn mutated_vectors_never_panic() {
    let mut rng = Rng(0x005e_ed0f_e2ca_f00d);
    let (mut runs, mut errors, mut frames_ok) = (0usize, 0usize, 0usize);
    for path in streams() {
        let original = first_frames(&path);
        if original.is_empty() {
            continue;
        }
        for m in 0..MUTANTS_PER_STREAM {
            let mut frames = original.clone();
            let what = mutate(&mut frames, &mut rng);
            if m % 3 == 0 {
                // A second mutation now and then.
                mutate(&mut frames, &mut rng);
            }
            runs += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut state = DecoderState::new();
                let (mut ok, mut err) = (0, 0);
                for f in &frames {
                    match decode(&state, f) {
                        Ok((next, shown)) => {
                            if let Some(p) = shown {
                                assert_eq!((p.width, p.height), next.dimensions());
                            }
                            state = next;
                            ok += 1;
                        }
                        Err(e) => {
                            let _: &DecodeError = &e;
                            assert!(!e.to_string().is_empty());
                            err += 1;
                        }
                    }
                }
                (ok, err)
            }));
            match outcome {
                Ok((ok, err)) => {
                    frames_ok += ok;
                    errors += err;
                }
                Err(_) => panic!("{}: mutant {m} ({what}) panicked", path.display()),
            }
        }
    }
    eprintln!("{runs} mutants: {frames_ok} frames decoded, {errors} typed errors");
    assert!(runs >= 1500, "only {runs} mutants");
    // Mutations must actually be hitting the error paths.
    assert!(errors > runs / 10, "only {errors} errors in {runs} mutants");
}

#[test]
fn failed_frame_keeps_the_state() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/excam-altref-2pass.ivf");
    let frames = first_frames(&path);
    let mut decoder = excam_codec::Decoder::new();
    decoder.decode(&frames[0]).unwrap();
    let before = decoder.state().clone();
    // Frame 1 with its first partition cut short.
    let err = decoder.decode(&frames[1][..5]).unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!(decoder.state(), &before);
    // The untouched state still decodes the real frame 1 as before.
    let (shown_a, _) = decoder.decode(&frames[1]).unwrap();
    let mut fresh = excam_codec::Decoder::new();
    fresh.decode(&frames[0]).unwrap();
    let (shown_b, _) = fresh.decode(&frames[1]).unwrap();
    assert_eq!(shown_a, shown_b);
}
