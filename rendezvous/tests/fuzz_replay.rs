//! The relay's structured fuzz target (`rendezvous/fuzz`, `messages`) as an
//! ordinary test: its harness on its seeds, on every committed regression
//! (`rendezvous/fuzz/regressions/messages/`) and on a local corpus if one
//! was grown (`rendezvous/fuzz/corpus/messages/`, not committed).

#[path = "../fuzz/src/harness.rs"]
mod harness;

#[path = "../../fuzz/smoke.rs"]
mod smoke;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    smoke::dir_inputs(dir)
}

#[test]
fn messages_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = harness::seeds();
    // `fuzz/seed.sh` sets this to write the seeds as the starting corpus.
    if std::env::var_os("EXCAM_WRITE_FUZZ_SEEDS").is_some() {
        let dir = fuzz.join("corpus/messages");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
        }
    }
    for s in &seeds {
        harness::run("messages", s);
    }
    let regressions = inputs(&fuzz.join("regressions/messages"));
    for r in &regressions {
        harness::run("messages", r);
    }
    let corpus = inputs(&fuzz.join("corpus/messages"));
    for c in &corpus {
        harness::run("messages", c);
    }
    eprintln!(
        "messages: {} seeds, {} regressions, {} corpus units",
        seeds.len(),
        regressions.len(),
        corpus.len()
    );
}

/// The harness's own checks bite: a stream of valid frames reads back as
/// written, and a hello's token is checked against `Debug`.
#[test]
fn a_well_formed_stream_reads_back() {
    use harness::{Piece, StreamInput};
    let pieces = vec![
        Piece::Hello {
            job: "job".into(),
            token: "t".repeat(64),
        },
        Piece::Put {
            mailbox: "state/1/final".into(),
            timeout_ms: 1500,
            payload: vec![7; 300],
        },
        Piece::Get {
            mailbox: "state/1/final".into(),
            timeout_ms: 0,
        },
        Piece::Response {
            status: 0,
            message: "ok".into(),
            payload: vec![1, 2, 3],
        },
        Piece::EndJob,
    ];
    for reads in [vec![], vec![1], vec![3, 200, 7]] {
        harness::stream(&StreamInput {
            limit: 1 << 20,
            reads,
            pieces: pieces.clone(),
        });
    }
}

/// CI's brief run of the `messages` target (see `fuzz/smoke.rs`).
#[test]
fn messages_smoke() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = harness::seeds();
    seeds.extend(inputs(&fuzz.join("regressions/messages")));
    smoke::smoke("messages", &seeds, 1000, |d| harness::run("messages", d));
}

/// CI's brief run of the `frame_parser` target: frames of every kind,
/// mutated.
#[test]
fn frame_parser_smoke() {
    let seeds: Vec<Vec<u8>> = harness::seeds()
        .into_iter()
        .map(|s| {
            let mut v = (1u64 << 20).to_le_bytes().to_vec();
            v.extend(s);
            v
        })
        .collect();
    smoke::smoke("frame_parser", &seeds, 1000, harness::frame_parser);
}
