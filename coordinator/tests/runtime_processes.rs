//! `--backend processes`: byte-identical to `--backend local`, through
//! crashes, hangs, errors, slow workers, a relay restart, a corrupted
//! chunk, a killed coordinator (`--resume`) and Ctrl-C.

mod runtime_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_support::*;

/// Runs the processes backend with `extra` flags; asserts success and
/// byte-identity with the local backend; returns the report.
fn run_ok(name: &str, extra: &[&str]) -> Option<serde_json::Value> {
    let worker = worker_bin()?;
    let reference = local_reference();
    let _g = serial();
    let dir = scratch(name);
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    a.extend(extra.iter().map(|s| s.to_string()));
    let o = excam(&a);
    assert!(
        o.status.success(),
        "{name}: encode failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == reference,
        "{name}: output differs from --backend local"
    );
    Some(report(&dir))
}

fn attempts(rep: &serde_json::Value, chunk: usize) -> Vec<serde_json::Value> {
    rep["tasks"][chunk]["attempts"].as_array().unwrap().clone()
}

#[test]
fn processes_output_equals_local_and_vpxdec() {
    let Some(rep) = run_ok("plain", &[]) else {
        return;
    };
    assert_eq!(rep["chunks"], 6);
    assert_eq!(rep["totals"]["retries"], 0);
    assert_eq!(rep["tasks"].as_array().unwrap().len(), 6);
    // Phase timings of every task, hop latencies of the 4 non-head chunks.
    // Group heads (chunks 0 and 3 with x=3) have no phase 2.
    for (i, t) in rep["tasks"].as_array().unwrap().iter().enumerate() {
        let phases = if i % 3 == 0 { 2 } else { 3 };
        assert_eq!(t["phases"].as_array().unwrap().len(), phases, "{t}");
    }
    assert_eq!(rep["hops"].as_array().unwrap().len(), 4);
    for h in rep["hops"].as_array().unwrap() {
        // From the sender's hand-off start to the receiver's decoded state:
        // positive, and well under the test's time limits.
        let l = h["latency_s"].as_f64().unwrap();
        assert!(l > 0.0 && l < 30.0, "{h}");
        assert!(h["waiting"].is_boolean(), "{h}");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime/plain");
    assert!(dir.join("report.svg").exists());
    let svg = std::fs::read_to_string(dir.join("report.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("rect"));
    // Intermediates are cleaned up.
    assert!(find_files(&dir.join("store"), "results").is_empty());
    if have_vpxdec() {
        let (theirs, ours) = md5_lines(&dir.join("out.ivf"));
        assert_eq!(theirs, ours, "vpxdec decodes differently");
    } else {
        eprintln!("vpxdec not on PATH: decode comparison skipped");
    }
}

/// A lone `excam` (as `cargo install --path coordinator` leaves it, with no
/// `excam-worker` beside it) runs the processes backend with itself as the
/// worker (`excam worker`): same bytes as the local backend.
#[test]
fn lone_excam_is_its_own_worker() {
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("lone-excam");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let excam_copy = bin.join("excam");
    std::fs::copy(env!("CARGO_BIN_EXE_excam"), &excam_copy).unwrap();
    assert!(!bin.join("excam-worker").exists() && !dir.join("excam-worker").exists());
    let out = dir.join("out.ivf");
    let mut a = common_args(&out);
    a.extend(
        [
            "--backend",
            "processes",
            "--store-dir",
            &dir.join("store").display().to_string(),
            "--report",
            &dir.join("report.json").display().to_string(),
        ]
        .map(String::from),
    );
    let o = Command::new(&excam_copy).args(&a).output().unwrap();
    assert!(
        o.status.success(),
        "lone excam: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "output differs from --backend local"
    );
    // Every attempt ran in a child process (the processes backend), not in
    // the coordinator.
    let rep = report(&dir);
    assert_eq!(rep["backend"], "processes", "{rep}");
    // The worker's own command line answers under `excam worker`.
    let v = Command::new(&excam_copy)
        .args(["worker", "--version"])
        .output()
        .unwrap();
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("excam worker "));
    let bad = Command::new(&excam_copy)
        .arg("worker")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("bad task JSON"));
}

#[test]
fn processes_backend_writes_webm_with_the_local_frames() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("webm");
    let ivf = dir.join("local.ivf");
    std::fs::write(&ivf, &reference).unwrap();
    let out = dir.join("out.webm");
    let o = excam(&processes_args(&dir, &out, &worker));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"\x1a\x45\xdf\xa3");
    // The same VP8 frames as the local backend's IVF, in a WebM that
    // vpxdec decodes as excam does.
    let md5 = |p: &Path| {
        let r = excam(&["decode".into(), p.display().to_string(), "--md5".into()]);
        assert!(r.status.success(), "{r:?}");
        // The hashes; the name column follows the file's name.
        String::from_utf8(r.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(md5(&out), md5(&ivf));
    if have_vpxdec() {
        let (theirs, ours) = md5_lines(&out);
        assert_eq!(theirs, ours, "vpxdec decodes differently");
    }
}

/// When each chunk's winning attempt ended (the coordinator had it),
/// seconds since the job's start.
fn done_times(rep: &serde_json::Value) -> Vec<f64> {
    rep["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let w = t["winner_attempt"].as_u64().unwrap();
            let a = t["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["attempt"].as_u64() == Some(w))
                .unwrap();
            a["end_s"].as_f64().unwrap()
        })
        .collect()
}

/// Issue 21: the output is written in chunk order while the job runs, each
/// chunk as soon as it and every chunk before it are done, so the file is
/// complete moments after the last chunk: at most 5% of the wall time (job
/// start to the finished output) passes between the two.
#[test]
fn output_is_streamed_and_complete_moments_after_the_last_chunk() {
    let Some(rep) = run_ok("streamed", &[]) else {
        return;
    };
    let a = &rep["assembly"];
    let f = |k: &str| a[k].as_f64().unwrap_or_else(|| panic!("no {k} in {a}"));
    let (last, out) = (f("last_chunk_done_s"), f("output_done_s"));
    let done = done_times(&rep);
    let last_end = done.iter().copied().fold(0.0, f64::max);
    assert!(
        (last - last_end).abs() < 0.05,
        "{a} vs attempts ending at {done:?}"
    );
    eprintln!(
        "streamed assembly: last chunk done {last:.3} s, output complete {out:.3} s \
         ({:.1}% of the wall time), report wall {:.3} s",
        100.0 * (out - last) / out,
        rep["wall_seconds"]
    );
    assert!(
        out - last <= 0.05 * out,
        "{:.3} s from the last chunk to the output is over 5% of {out:.3} s: {a}",
        out - last
    );
    // Each chunk went out once it and all before it were done, not at
    // the end: within 5% of the wall time of that moment.
    let written: Vec<f64> = a["chunk_written_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let mut ready = 0.0f64;
    for (i, (&d, &w)) in done.iter().zip(&written).enumerate() {
        ready = ready.max(d);
        assert!(
            w >= ready - 1e-3 && w - ready <= 0.05 * out,
            "chunk {i} written at {w:.3} s, ready at {ready:.3} s: {a}"
        );
    }
    assert!(
        written[0] < last - 0.05 * out,
        "chunk 0 was written only at the end: {a}"
    );
    assert_eq!(a["refetched"], 0, "{a}");
}

/// With no room to hold a chunk that waits for an earlier one, each such
/// chunk is fetched again when its turn comes, and the bytes do not change.
#[test]
fn assembly_memory_bound_refetches_waiting_chunks() {
    let Some(rep) = run_ok(
        "assembly-bound",
        &["--assembly-memory", "0", "--max-concurrency", "2"],
    ) else {
        return;
    };
    let a = &rep["assembly"];
    let done = done_times(&rep);
    // A chunk arrived before an earlier one: it could not go out at once.
    let waited = (0..done.len())
        .filter(|&i| (0..i).any(|j| done[j] > done[i]))
        .count();
    assert_eq!(a["refetched"].as_u64(), Some(waited as u64), "{a} {done:?}");
    assert_eq!(a["hold_limit_bytes"], 0);
    let biggest = rep["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["chunk_bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(a["held_peak_bytes"].as_u64().unwrap() <= biggest, "{a}");
}

#[test]
fn fewer_slots_than_chunks_still_completes_identically() {
    let Some(rep) = run_ok("concurrency2", &["--max-concurrency", "2"]) else {
        return;
    };
    // Never more than 2 attempts overlapped.
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for t in rep["tasks"].as_array().unwrap() {
        for a in t["attempts"].as_array().unwrap() {
            spans.push((a["start_s"].as_f64().unwrap(), a["end_s"].as_f64().unwrap()));
        }
    }
    for &(s, _) in &spans {
        let live = spans.iter().filter(|&&(a, b)| a <= s && s < b).count();
        assert!(live <= 2, "{live} attempts running at {s}");
    }
}

#[test]
fn crash_mid_chain_is_retried() {
    let Some(rep) = run_ok("crash", &["--inject-fault", "4:1:crash:rebase"]) else {
        return;
    };
    let a = attempts(&rep, 4);
    assert_eq!(a[0]["outcome"]["status"], "failed", "{a:?}");
    assert_eq!(a[0]["outcome"]["kind"], "crash");
    assert!(a.iter().any(|x| x["outcome"]["status"] == "ok"));
}

#[test]
fn function_error_on_first_attempt_is_retried() {
    let Some(rep) = run_ok("error", &["--inject-fault", "1:1:error:encode"]) else {
        return;
    };
    let a = attempts(&rep, 1);
    assert_eq!(a[0]["outcome"]["kind"], "function_error", "{a:?}");
    assert_eq!(a[0]["phase"], "encode");
    assert_eq!(rep["totals"]["retries"], 1);
}

#[test]
fn hanging_worker_gets_a_twin() {
    let Some(rep) = run_ok("hang", &["--inject-fault", "2:1:hang:given-state"]) else {
        return;
    };
    let a = attempts(&rep, 2);
    assert!(a.len() >= 2, "{a:?}");
    assert!(a
        .iter()
        .any(|x| x["speculative"] == true || x["attempt"] == 2));
    assert_ne!(a[0]["outcome"]["status"], "ok");
}

#[test]
fn slow_worker_loses_to_its_twin() {
    let t = Instant::now();
    let Some(rep) = run_ok("slow", &["--inject-fault", "5:1:slow:encode:40"]) else {
        return;
    };
    assert!(
        t.elapsed() < Duration::from_secs(40),
        "the twin should have won"
    );
    let a = attempts(&rep, 5);
    assert_eq!(a[0]["outcome"]["status"], "lost_race", "{a:?}");
    assert!(a[1]["speculative"].as_bool().unwrap());
    assert_eq!(rep["totals"]["speculative"], 1);
}

#[test]
fn relay_restart_mid_job() {
    let Some(_) = run_ok(
        "relay-restart",
        &["--restart-relay-after", "2", "--max-concurrency", "3"],
    ) else {
        return;
    };
}

#[test]
fn store_alone_without_relay() {
    let Some(_) = run_ok("no-relay", &["--no-relay"]) else {
        return;
    };
}

#[test]
fn corrupted_chunk_is_refused_and_redone() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("corrupt");
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    a.push("--keep-intermediate".into());
    assert!(excam(&a).status.success());
    let chunks = find_files(&dir.join("store"), "/chunks/");
    let victim = chunks
        .iter()
        .find(|p| !p.to_string_lossy().ends_with(".sha256"))
        .expect("a chunk object");
    let mut bytes = std::fs::read(victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(victim, bytes).unwrap();
    std::fs::remove_file(&out).unwrap();
    a.push("--resume".into());
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == reference);
    let reused = reused_tasks(&dir);
    assert_eq!(reused, 5, "exactly the corrupted chunk is redone");
}

/// `--resume` after a run whose stored records were tampered with: chunk
/// 1's result claims another start state (a chunk of another chain), and
/// the state chunk 4 hands on is replaced by chunk 3's (a stale or planted
/// state) while chunk 5 must run again and needs it. Neither may reach the
/// output: the job gives the reference bytes.
#[test]
fn resume_refuses_mismatched_results_and_planted_states() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("resume-planted");
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    a.push("--keep-intermediate".into());
    assert!(excam(&a).status.success());
    let store = dir.join("store");
    let result = |i: usize| {
        find_files(&store, &format!("/results/{i}.json"))
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .expect("a result record")
    };
    // Rewrites a store object and its checksum sidecar, as a writer would.
    let rewrite = |p: &Path, bytes: &[u8]| {
        use sha2::{Digest, Sha256};
        std::fs::write(p, bytes).unwrap();
        let mut side = p.as_os_str().to_owned();
        side.push(".sha256");
        std::fs::write(side, format!("{}\n", hex::encode(Sha256::digest(bytes)))).unwrap();
    };
    let p1 = result(1);
    let mut r1: serde_json::Value = serde_json::from_slice(&std::fs::read(&p1).unwrap()).unwrap();
    r1["source_state"] = serde_json::Value::String("ab".repeat(32));
    rewrite(&p1, &serde_json::to_vec(&r1).unwrap());
    let finals = |i: usize| {
        find_files(&store, &format!("/states/{i}/final"))
            .into_iter()
            .find(|p| p.extension().is_none())
            .expect("a final state")
    };
    let planted = std::fs::read(finals(3)).unwrap();
    rewrite(&finals(4), &planted);
    std::fs::remove_file(result(5)).unwrap();
    std::fs::remove_file(&out).unwrap();
    a.push("--resume".into());
    a.retain(|x| x != "--quiet");
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == reference,
        "a tampered record reached the output"
    );
    // Chunk 1 (its claim), 4 (its state) and 5 (deleted) ran again; 0, 3
    // and 2 were reused (2 continues the state chunk 1's new run ends in,
    // which the chain check confirmed).
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chunk 4 runs again"), "{err}");
    assert_eq!(reused_tasks(&dir), 3);
}

#[test]
fn resume_after_the_coordinator_is_killed() {
    let Some(worker) = worker_bin() else { return };
    let reference = local_reference();
    let _g = serial();
    let dir = scratch("resume");
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    let base = a.clone();
    // Chunk 5 is slow and no twin rescues it: the coordinator is killed
    // while it runs, after the other chunks' results are stored.
    let floor = a.iter().position(|x| x == "--straggler-floor").unwrap();
    a[floor + 1] = "100".into();
    a.extend(["--inject-fault", "5:1:slow:encode:90"].map(String::from));
    let log = dir.join("killed.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(&a)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        // The first group's finished records (chunks 0-2, which chain):
        // not the store's temporary files of a write in progress, and with
        // their checksum sidecar in place. Any three records would not do:
        // chunk 2's record can land before chunk 1's (it hands its state on
        // first), and a chunk whose predecessor reruns is not reused.
        let done: Vec<String> = find_files(&dir.join("store"), "/results/")
            .iter()
            .filter(|p| {
                let mut side = p.as_os_str().to_owned();
                side.push(".sha256");
                Path::new(&side).exists()
            })
            .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .collect();
        if (0..3).all(|i| done.contains(&format!("{i}.json"))) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no results appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished too early: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed job left output");
    let mut b = base;
    b.push("--resume".into());
    let o = excam(&b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&out).unwrap() == reference);
    let reused = reused_tasks(&dir);
    assert!(reused >= 3, "only {reused} chunks reused");
}

#[test]
fn always_failing_chunk_fails_cleanly() {
    let Some(worker) = worker_bin() else { return };
    let _g = serial();
    let dir = scratch("fail");
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    a.extend(["--max-tries", "1", "--inject-fault", "2:1:error:rebase"].map(String::from));
    let o = excam(&a);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chunk 2") && err.contains("phase 3"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("out.ivf"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn ctrl_c_cancels_with_130() {
    let Some(worker) = worker_bin() else { return };
    let _g = serial();
    let dir = scratch("sigint");
    let out = dir.join("out.ivf");
    let mut a = processes_args(&dir, &out, &worker);
    a.extend(["--inject-fault", "0:1:hang:encode"].map(String::from));
    let mut child = Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(&a)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(st.code(), Some(130));
    assert!(!out.exists());
}

/// `-o s3://` needs the job's store in S3 (the parts are copied from the
/// chunk objects there) and IVF: anything else is refused up front, with
/// nothing written.
#[test]
fn s3_output_needs_a_store_in_s3_and_ivf() {
    let dir = scratch("s3-output-refused");
    for backend in ["local", "processes"] {
        let mut a = common_args(Path::new("s3://bucket/out.ivf"));
        a.extend([
            "--workers".into(),
            "2".into(),
            "--backend".into(),
            backend.into(),
        ]);
        let o = excam(&a);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("store must be in S3"), "{backend}: {err}");
    }
    let mut a = common_args(Path::new("s3://bucket/out.webm"));
    a.extend(
        [
            "--backend",
            "lambda",
            "--bucket",
            "bucket",
            "--workers",
            "2",
        ]
        .map(String::from),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(&a)
        .current_dir(&dir)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("written as IVF"), "{err}");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
}
