//! The worker's structured fuzz target (`worker/fuzz`, `task`) as an
//! ordinary test: its harness on its seeds, on every committed regression
//! (`worker/fuzz/regressions/task/`) and on a local corpus if one was
//! grown (`worker/fuzz/corpus/task/`, not committed; at most 300 units).

#[path = "../fuzz/src/harness.rs"]
mod harness;

#[path = "../../fuzz/smoke.rs"]
mod smoke;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    smoke::dir_inputs(dir)
}

#[test]
fn task_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = harness::seeds();
    // `fuzz/seed.sh` sets this to write the seeds as the starting corpus.
    if std::env::var_os("EXCAM_WRITE_FUZZ_SEEDS").is_some() {
        let dir = fuzz.join("corpus/task");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
        }
    }
    for s in &seeds {
        harness::run("task", s);
    }
    let regressions = inputs(&fuzz.join("regressions/task"));
    for r in &regressions {
        harness::run("task", r);
    }
    let corpus = inputs(&fuzz.join("corpus/task"));
    let step = corpus.len().div_ceil(300).max(1);
    for c in corpus.iter().step_by(step) {
        harness::run("task", c);
    }
    eprintln!(
        "task: {} seeds, {} regressions, {} of {} corpus units",
        seeds.len(),
        regressions.len(),
        corpus.len().div_ceil(step),
        corpus.len()
    );
}

/// The harness's checks bite: the untouched tasks of both chunks succeed
/// and their answers are checked against the store.
#[test]
fn untouched_tasks_succeed_and_are_checked() {
    for second in [false, true] {
        let plants = if second {
            // Chunk 1 waits for chunk 0's states: plant the real ones.
            vec![
                harness::Plant::State {
                    final_state: false,
                    edits: harness::Edits::default(),
                    raw: None,
                },
                harness::Plant::State {
                    final_state: true,
                    edits: harness::Edits::default(),
                    raw: None,
                },
            ]
        } else {
            vec![]
        };
        let ok = harness::task_run(&harness::TaskInput {
            second,
            fields: vec![],
            plants,
        });
        assert!(ok, "chunk {} did not succeed", u8::from(second));
    }
}

/// CI's brief run of the `task` target (see `fuzz/smoke.rs`): whole worker
/// tasks against a store planted with mutated states, inputs, results and
/// checkpoints.
#[test]
fn task_smoke() {
    use arbitrary::{Arbitrary, Unstructured};
    let mut ran = 0;
    let n = smoke::smoke("task", &harness::seeds(), 20, |d| {
        if let Ok(i) = harness::TaskInput::arbitrary(&mut Unstructured::new(d)) {
            ran += usize::from(harness::task_run(&i));
        }
    });
    eprintln!("task: {ran} of {n} smoke inputs ran a task to its end");
    assert!(ran > 0, "no smoke input ran a task");
}
