//! A short mutational fuzz run inside `cargo test`: CI's brief run of each
//! fuzz target.
//!
//! The libFuzzer targets (`codec/fuzz`, `rendezvous/fuzz`, `worker/fuzz`)
//! need nightly Rust, cargo-fuzz and an ASan build of each crate, which CI's
//! time budget does not hold; their long runs are local (counts in the
//! issue notes). This runs each target's own harness on its seeds mutated
//! the way libFuzzer's default mutators do (bit flips, interesting bytes,
//! inserted, erased, copied and spliced ranges, truncation), and on pure
//! random bytes, for a short time budget. It has no coverage feedback, so it
//! only finds shallow bugs; what it guarantees is that every harness runs
//! on fresh inputs in every CI run.
//!
//! Each run draws a new seed (printed); `EXCAM_FUZZ_SMOKE_SEED` repeats one
//! and `EXCAM_FUZZ_SMOKE_SECS` sets the budget per target (default 4 s). An
//! input that panics a harness is written to
//! `target/fuzz-smoke/<target>-<seed>-<n>` before the test fails, so it can be
//! replayed with the libFuzzer target or kept as a regression.
//!
//! Included with `#[path]` by each crate's fuzz replay test.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest input made.
const MAX_LEN: usize = 1 << 16;

/// xorshift64*: small, seedable, good enough for mutation choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// The bytes libFuzzer tries first: boundaries of signed and unsigned
/// integers.
const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 16, 64];

/// One mutation of `d` in place.
fn mutate_once(d: &mut Vec<u8>, seeds: &[Vec<u8>], r: &mut Rng) {
    match r.below(9) {
        0 if !d.is_empty() => {
            let i = r.below(d.len());
            d[i] ^= 1 << r.below(8);
        }
        1 if !d.is_empty() => {
            let i = r.below(d.len());
            d[i] = r.byte();
        }
        2 if !d.is_empty() => {
            let i = r.below(d.len());
            d[i] = INTERESTING[r.below(INTERESTING.len())];
        }
        3 => {
            let at = r.below(d.len() + 1);
            let n = 1 + r.below(16);
            let ins: Vec<u8> = (0..n).map(|_| r.byte()).collect();
            d.splice(at..at, ins);
        }
        4 if !d.is_empty() => {
            let at = r.below(d.len());
            let n = 1 + r.below((d.len() - at).min(64));
            d.drain(at..at + n);
        }
        5 if !d.is_empty() => {
            // Copy a range of the input over another place in it.
            let from = r.below(d.len());
            let n = 1 + r.below((d.len() - from).min(64));
            let part = d[from..from + n].to_vec();
            let to = r.below(d.len());
            let end = (to + n).min(d.len());
            d[to..end].copy_from_slice(&part[..end - to]);
        }
        6 if !seeds.is_empty() => {
            // Splice: this input's head, another seed's tail.
            let other = &seeds[r.below(seeds.len())];
            let cut = r.below(d.len() + 1);
            let from = r.below(other.len() + 1);
            d.truncate(cut);
            d.extend_from_slice(&other[from..]);
        }
        7 if !d.is_empty() => {
            let n = r.below(d.len());
            d.truncate(n);
        }
        _ if d.len() >= 2 => {
            // A little-endian integer field nudged by a small amount.
            let i = r.below(d.len() - 1);
            let v = u16::from_le_bytes([d[i], d[i + 1]]);
            let delta = (r.below(33) as u16).wrapping_sub(16);
            d[i..i + 2].copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
        }
        _ => d.push(r.byte()),
    }
    d.truncate(MAX_LEN);
}

/// One input: a mutated seed, or (one time in sixteen, or without seeds)
/// random bytes.
fn input(seeds: &[Vec<u8>], r: &mut Rng) -> Vec<u8> {
    if seeds.is_empty() || r.below(16) == 0 {
        let n = r.below(4096);
        return (0..n).map(|_| r.byte()).collect();
    }
    let mut d = seeds[r.below(seeds.len())].clone();
    for _ in 0..1 + r.below(8) {
        mutate_once(&mut d, seeds, r);
    }
    d
}

fn seed() -> u64 {
    if let Some(s) = std::env::var("EXCAM_FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

fn budget() -> Duration {
    let secs = std::env::var("EXCAM_FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Where a panicking input is kept: `target/fuzz-smoke/` of the workspace.
fn crash_dir() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() && dir.pop() {}
    dir.join("target").join("fuzz-smoke")
}

/// Runs `exec` on mutations of `seeds` for the time budget (at least
/// `min_execs` inputs, so a slow harness still runs some); returns how many
/// inputs ran. A panic in `exec` keeps the input (see the module docs) and
/// fails the calling test.
pub fn smoke(
    target: &str,
    seeds: &[Vec<u8>],
    min_execs: usize,
    mut exec: impl FnMut(&[u8]),
) -> usize {
    let seed = seed();
    let budget = budget();
    let mut r = Rng(seed);
    let start = Instant::now();
    let mut n = 0;
    while n < min_execs || start.elapsed() < budget {
        let data = input(seeds, &mut r);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| exec(&data))) {
            let dir = crash_dir();
            let path = dir.join(format!("{target}-{seed}-{n}"));
            let kept = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &data));
            eprintln!(
                "{target}: input {n} of smoke seed {seed} panicked; kept as {} ({kept:?}); \
                 EXCAM_FUZZ_SMOKE_SEED={seed} repeats the run",
                path.display()
            );
            resume_unwind(p);
        }
        n += 1;
    }
    eprintln!(
        "{target}: smoke run of {n} mutated inputs in {:.1} s (seed {seed}), no panic",
        start.elapsed().as_secs_f64()
    );
    n
}

/// The files of `dir` (committed regressions, a local corpus), sorted by
/// name; none if it does not exist.
pub fn dir_inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("a fuzz input file reads"))
        .collect()
}
