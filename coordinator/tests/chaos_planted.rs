//! States and chunks that do not belong to a run, planted in the store of
//! the processes backend, never reach the output: a job either gives the
//! local backend's bytes or fails with a chain error.
//!
//! - A stale state from an earlier, failed run of the same job: a rerun
//!   never reads it (states are scoped to their run), and a `--resume`
//!   that reuses that run's chunks checks every state it carries over
//!   against the result that names it.
//! - Chunks of another encoder build: another build's job has another id
//!   (the codec version is part of it), so its records are never taken,
//!   even when they are copied under this job's id.

mod runtime_support;

use std::path::{Path, PathBuf};

use runtime_support::*;

/// Rewrites a store object and its checksum sidecar, as a writer would.
fn rewrite(p: &Path, bytes: &[u8]) {
    use sha2::{Digest, Sha256};
    std::fs::write(p, bytes).unwrap();
    let mut side = p.as_os_str().to_owned();
    side.push(".sha256");
    std::fs::write(side, format!("{}\n", hex::encode(Sha256::digest(bytes)))).unwrap();
}

/// State objects (not sidecars) under `dir`, sorted by path.
fn states(dir: &Path) -> Vec<PathBuf> {
    find_files(dir, "/states/")
        .into_iter()
        .filter(|p| p.extension().is_none())
        .collect()
}

/// A first run that fails at chunk 5 leaves the states of chunks 0-4 in
/// the store; each is replaced by another chunk's (a stale or planted
/// state, checksum made right). A rerun must not read them, and a
/// `--resume` that reuses chunks 0-4 must notice that the states it would
/// carry over are not the ones their results name.
#[test]
fn stale_states_of_a_failed_run_never_reach_the_output() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("planted-stale");
    let out = dir.join("out.ivf");
    let base = processes_args(&dir, &out, &worker);

    let mut a = base.clone();
    a.extend(
        // At phase 3, which waits for chunk 4: the others are done by then.
        ["--max-tries", "1", "--inject-fault", "5:1:error:rebase"]
            .iter()
            .map(|s| s.to_string()),
    );
    let o = excam(&a);
    assert!(!o.status.success(), "the first run was meant to fail");
    assert!(!out.exists(), "a failed run left an output");

    let store = dir.join("store");
    let planted = states(&store);
    assert!(planted.len() >= 4, "states of the failed run: {planted:?}");
    let bytes: Vec<Vec<u8>> = planted.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut changed = 0;
    for (i, p) in planted.iter().enumerate() {
        // A group head's phase-1 and final states are the same state.
        let other = &bytes[(i + 1) % bytes.len()];
        changed += usize::from(other != &bytes[i]);
        rewrite(p, other);
    }
    assert!(changed >= 3, "{changed} states changed");

    // A plain rerun: a new run id, its own states.
    let o = excam(&base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "a stale state reached the output"
    );
    std::fs::remove_file(&out).unwrap();

    // The same failure again, the states planted again, then --resume.
    let o = excam(&a);
    assert!(!o.status.success());
    let planted = states(&store);
    let bytes: Vec<Vec<u8>> = planted.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (i, p) in planted.iter().enumerate() {
        rewrite(p, &bytes[(i + 1) % bytes.len()]);
    }
    let mut r = base.clone();
    r.push("--resume".into());
    r.retain(|x| x != "--quiet");
    let o = excam(&r);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "a planted state reached the output"
    );
    assert!(err.contains("runs again"), "{err}");
}

/// A job with other settings stands in for another encoder build (its
/// chunks differ, and so does its job id, as another build's would by
/// its codec version). Its result records, chunk objects and states,
/// copied into this job's directory as they are, are never reused.
#[test]
fn chunks_of_another_build_are_never_reused() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("planted-foreign");
    let out = dir.join("out.ivf");
    let store = dir.join("store");

    // The "other build": same clip, q 40, records kept.
    let other_out = dir.join("other.ivf");
    let mut other = processes_args(&dir, &other_out, &worker);
    let q = other.iter().position(|x| x == "-q").unwrap();
    other[q + 1] = "40".into();
    other.push("--keep-intermediate".into());
    assert!(excam(&other).status.success());
    let other_bytes = std::fs::read(&other_out).unwrap();
    assert!(other_bytes != reference);
    let jobs: Vec<PathBuf> = std::fs::read_dir(store.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(jobs.len(), 1);
    let other_job = jobs[0].clone();

    // This build's job, run once so that its id is known, records kept.
    let mut a = processes_args(&dir, &out, &worker);
    a.push("--keep-intermediate".into());
    assert!(excam(&a).status.success());
    std::fs::remove_file(&out).unwrap();
    let job = std::fs::read_dir(store.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| *p != other_job)
        .expect("this job's directory");
    assert_ne!(job, other_job);

    // Replace this job's records of chunks 3-5 with the other build's,
    // copying its chunk objects and states alongside.
    let copy_tree = |from: &Path, to: &Path| {
        for f in find_files(from, "") {
            let rel = f.strip_prefix(from).unwrap();
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f, &dest).unwrap();
        }
    };
    copy_tree(&other_job.join("chunks"), &job.join("chunks"));
    copy_tree(&other_job.join("runs"), &job.join("runs"));
    for i in 3..6 {
        let name = format!("results/{i}.json");
        let theirs = std::fs::read(other_job.join(&name)).unwrap();
        rewrite(&job.join(&name), &theirs);
    }
    a.push("--resume".into());
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "another build's chunk reached the output"
    );
    let reused = reused_tasks(&dir);
    assert_eq!(reused, 3, "chunks 0-2 reused, the other build's 3-5 redone");

    // Now the other build's records of a whole group (3-5: chunk 3 heads
    // it, so their chain holds among themselves) with this job's id
    // written into them and their chunk objects' keys moved under this
    // job: only the chunks' content addresses, recomputed from this job's
    // settings and input, can tell them apart.
    std::fs::remove_file(&out).unwrap();
    let this_id = job.file_name().unwrap().to_str().unwrap().to_string();
    let other_id = other_job.file_name().unwrap().to_str().unwrap().to_string();
    for i in 3..6 {
        let name = format!("results/{i}.json");
        let mut r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(other_job.join(&name)).unwrap()).unwrap();
        r["job"] = this_id.clone().into();
        let key = r["chunk_key"]
            .as_str()
            .unwrap()
            .replace(&other_id, &this_id);
        r["chunk_key"] = key.into();
        rewrite(&job.join(&name), &serde_json::to_vec(&r).unwrap());
    }
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "a record rewritten to this job's id reached the output"
    );
    let reused = reused_tasks(&dir);
    assert_eq!(reused, 3, "chunks 0-2 reused, the rewritten 3-5 redone");
}

/// A state lost after its producer finished (the store object gone, no
/// relay to hold a copy) is written again by running the producer again:
/// the job ends with the reference bytes. Without that, the successor
/// would wait for the state until its timeout on every try and the job
/// would fail.
#[test]
fn a_lost_state_is_written_again_by_its_producer() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    for (phase, what) in [("rebase", "final"), ("encode", "phase-1")] {
        let dir = scratch(&format!("lost-state-{phase}"));
        let out = dir.join("out.ivf");
        let mut a = processes_args(&dir, &out, &worker);
        // Chunk 1 (not a group head) loses a hand-off at its first try.
        a.extend(
            [
                "--no-relay",
                "--max-tries",
                "1",
                "--inject-fault",
                &format!("1:1:lose-state:{phase}"),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a.retain(|x| x != "--quiet");
        let o = excam(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "lost {what} state: {err}");
        assert!(
            std::fs::read(&out).unwrap() == reference,
            "lost {what} state: output differs"
        );
        assert!(err.contains("chunk 1: runs again"), "{err}");
        let tasks = report(&dir)["tasks"].as_array().unwrap().clone();
        assert_eq!(tasks[1]["winner_attempt"], 2, "lost {what} state");
        assert_eq!(tasks[1]["retries"], 0, "no attempt of chunk 1 failed");
    }
}
