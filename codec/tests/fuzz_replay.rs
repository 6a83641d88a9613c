//! The structured fuzz targets (`codec/fuzz`, see its README) as an
//! ordinary test: every target's harness runs on its seeds, on every
//! committed regression input (`codec/fuzz/regressions/<target>/`, the
//! inputs that once crashed it) and on the local corpus if one was grown
//! (`codec/fuzz/corpus/<target>/`, not committed). CI cannot afford to
//! build the libFuzzer crates; this keeps every past crash fixed there.

#[path = "../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;

/// Files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .flatten()
        .filter(|e| e.path().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Local corpora can hold tens of thousands of units; a test replays at
/// most this many per target (spread over the corpus).
const MAX_CORPUS: usize = 2000;

/// With `EXCAM_WRITE_FUZZ_SEEDS` set, writes `seeds` into the target's
/// corpus directory (what `codec/fuzz/seed.sh` does) before replaying.
fn write_seeds(fuzz: &Path, target: &str, seeds: &[Vec<u8>]) {
    if std::env::var_os("EXCAM_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = fuzz.join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
    }
}

fn replay(target: &str) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = harness::seeds(target);
    write_seeds(&fuzz, target, &seeds);
    assert!(seeds.len() > 20, "{target}: only {} seeds", seeds.len());
    let reached = seeds.iter().filter(|s| harness::run(target, s)).count();
    eprintln!(
        "{target}: {reached} of {} seeds reached a coded frame",
        seeds.len()
    );
    // A harness that never gets past its input checks fuzzes nothing.
    assert!(reached > 0, "{target}: no seed reached a coded frame");
    let regressions = inputs(&fuzz.join("regressions").join(target));
    for (name, data) in &regressions {
        eprintln!("{target}: regression {name}");
        harness::run(target, data);
    }
    let corpus = inputs(&fuzz.join("corpus").join(target));
    let step = corpus.len().div_ceil(MAX_CORPUS).max(1);
    for (_, data) in corpus.iter().step_by(step) {
        harness::run(target, data);
    }
    eprintln!(
        "{target}: {} seeds, {} regressions, {} of {} corpus units",
        seeds.len(),
        regressions.len(),
        corpus.len().div_ceil(step),
        corpus.len()
    );
}

#[test]
fn decode_chain_replays() {
    replay("decode_chain");
}

#[test]
fn encode_state_replays() {
    replay("encode_state");
}

#[test]
fn rebase_replays() {
    replay("rebase");
}

/// The bases come from the repository's test vectors; without them the
/// harnesses would fuzz almost nothing.
#[test]
fn bases_cover_the_streams() {
    let b = harness::bases();
    assert!(b.len() >= 12, "{} bases", b.len());
    assert!(b.iter().any(|b| b.name == "excam-own"));
    assert!(b.iter().all(|b| b.states.len() == b.frames.len() + 1));
}

#[path = "../../fuzz/smoke.rs"]
#[allow(dead_code)]
mod smoke;

/// CI's brief run of a target (see `fuzz/smoke.rs`): its harness on
/// mutations of its seeds and regressions.
fn smoke_run(target: &str, seeds: Vec<Vec<u8>>, min_execs: usize) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = seeds;
    seeds.extend(
        inputs(&fuzz.join("regressions").join(target))
            .into_iter()
            .map(|(_, d)| d),
    );
    assert!(!seeds.is_empty(), "{target}: no seeds");
    let mut reached = 0;
    let n = smoke::smoke(target, &seeds, min_execs, |d| {
        reached += usize::from(harness::run(target, d));
    });
    eprintln!("{target}: {reached} of {n} smoke inputs reached the codec's output");
    assert!(n >= min_execs);
    // Mutations that all stop at the input checks would test nothing.
    assert!(
        reached > 0,
        "{target}: no smoke input got past the input checks"
    );
}

#[test]
fn decode_smoke() {
    smoke_run("decode", harness::raw_seeds("decode"), 200);
}

#[test]
fn state_smoke() {
    smoke_run("state", harness::raw_seeds("state"), 200);
}

#[test]
fn decode_chain_smoke() {
    smoke_run("decode_chain", harness::seeds("decode_chain"), 50);
}

#[test]
fn encode_state_smoke() {
    smoke_run("encode_state", harness::seeds("encode_state"), 20);
}

#[test]
fn rebase_smoke() {
    smoke_run("rebase", harness::seeds("rebase"), 20);
}

/// The raw targets' seeds decode: a harness that rejects all of them
/// would fuzz nothing past its input checks.
#[test]
fn raw_seeds_reach_the_codec() {
    let d = harness::raw_seeds("decode");
    assert!(d.len() >= 10, "{} decode seeds", d.len());
    assert!(d.iter().all(|s| harness::raw_decode(s)));
    let s = harness::raw_seeds("state");
    assert!(s.len() >= 10, "{} state seeds", s.len());
    assert!(s.iter().all(|s| harness::raw_state(s)));
}
