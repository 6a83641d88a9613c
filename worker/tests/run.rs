//! End-to-end tests of `run_task`: every chunk of a job run concurrently
//! against a local store and an embedded relay, compared byte for byte with
//! the phase functions run serially in one process.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use excam_codec::container::y4m::Y4mWriter;
use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::wire::state_digest;
use excam_codec::{DecoderState, Image};
use excam_rendezvous::{Relay, RelayConfig, RelaySecret, TlsIdentity};
use excam_worker::input::probe_input;
use excam_worker::keys;
use excam_worker::run::{encode_serially, run_task};
use excam_worker::store::{LocalStore, Store};
use excam_worker::task::{
    CodecParams, InputSpec, RelaySpec, StoreSpec, Task, TaskResult, TASK_VERSION,
};
use excam_worker::TaskError;

const W: usize = 64;
const H: usize = 48;
const FRAMES: usize = 20;
const N: usize = 4;
const X: usize = 3;
const INPUT_KEY: &str = "input/clip.y4m";

/// A moving diagonal pattern with a drifting colour.
fn clip() -> Vec<Image> {
    (0..FRAMES)
        .map(|t| {
            let mut f = Image::filled(W, H, [0, 128, 128]);
            for y in 0..H {
                for x in 0..W {
                    let v = ((x + 2 * t) * 5 + (y + t) * 3) % 256;
                    let blob = if (x as isize - 10 - 2 * t as isize).abs() < 6
                        && (y as isize - 20).abs() < 6
                    {
                        200
                    } else {
                        0
                    };
                    f.planes[0].row_mut(y)[x] = (v as u8).wrapping_add(blob);
                }
            }
            for p in 1..3 {
                let (cw, ch) = (f.planes[p].width, f.planes[p].height);
                for y in 0..ch {
                    for x in 0..cw {
                        f.planes[p].row_mut(y)[x] = (100 + p * 20 + (x + y + t) % 30) as u8;
                    }
                }
            }
            f
        })
        .collect()
}

fn y4m(frames: &[Image]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Y4mWriter::new(&mut out, W, H, (30, 1)).unwrap();
    for f in frames {
        w.write_frame(f).unwrap();
    }
    drop(w);
    out
}

fn encoder_config() -> EncoderConfig {
    let mut cfg = EncoderConfig::new(W, H);
    cfg.speed = 6;
    cfg.golden.interval = 8;
    cfg
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<LocalStore>,
    input: InputSpec,
    frames: Vec<Image>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Arc::new(LocalStore::new(&root));
    let frames = clip();
    store.put(INPUT_KEY, y4m(&frames).into()).await.unwrap();
    let (input, header) = probe_input(store.as_ref(), INPUT_KEY).await.unwrap();
    assert_eq!((header.width, header.height), (W, H));
    assert_eq!(input.frames, FRAMES);
    Fixture {
        _dir: dir,
        root,
        store,
        input,
        frames,
    }
}

fn task(fx: &Fixture, job: &str, chunk: usize, relay: Option<RelaySpec>) -> Task {
    Task {
        version: TASK_VERSION,
        job: job.to_string(),
        run: "run-1".to_string(),
        chunk,
        chunks: FRAMES.div_ceil(N),
        chunk_frames: N,
        group_chunks: X,
        input: fx.input.clone(),
        codec: CodecParams::from_config(&encoder_config()),
        store: StoreSpec::Local {
            root: fx.root.clone(),
        },
        relay,
        attempt: 1,
        wait_timeout_s: 60.0,
        fault: None,
        merge: None,
    }
}

struct TestRelay {
    spec: RelaySpec,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    async fn start(job: &str) -> TestRelay {
        Self::start_on(job, "127.0.0.1:0", RelaySecret::generate(), None).await
    }

    /// A relay on `addr` with the given secret and certificate (to restart
    /// one where it was).
    async fn start_on(
        job: &str,
        addr: &str,
        secret: RelaySecret,
        identity: Option<TlsIdentity>,
    ) -> TestRelay {
        let mut cfg = RelayConfig::new(secret.clone());
        cfg.identity = identity;
        // A relay stopped a moment ago may still hold its UDP port until
        // quinn's endpoint driver task notices its last handle is gone: retry
        // the bind briefly, as a restarted relay process would.
        let t = std::time::Instant::now();
        let relay = loop {
            match Relay::bind(addr.parse().unwrap(), cfg.clone()) {
                Ok(r) => break r,
                Err(e) if t.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("relay bind on {addr}: {e}"),
            }
        };
        let spec = RelaySpec {
            addr: relay.local_addr().to_string(),
            fingerprint: relay.fingerprint().to_string(),
            job: job.to_string(),
            token: secret.token(job),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            relay
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestRelay {
            spec,
            stop: Some(stop),
            server,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), self.server).await;
    }
}

/// Runs every chunk task of a job at once; results in chunk order.
/// One task per chunk of the fixture's clip, all through `relay` if given.
fn job_tasks(fx: &Fixture, job: &str, relay: Option<&RelaySpec>) -> Vec<Task> {
    (0..FRAMES.div_ceil(N))
        .map(|i| task(fx, job, i, relay.cloned()))
        .collect()
}

async fn run_job(tasks: Vec<Task>) -> Vec<Result<TaskResult, TaskError>> {
    let handles: Vec<_> = tasks
        .into_iter()
        .rev() // successors first: they must wait for their predecessors
        .map(|t| tokio::spawn(run_task(t)))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out.reverse();
    out
}

async fn chunk_frames(store: &dyn Store, r: &TaskResult) -> Vec<Vec<u8>> {
    let bytes = store.get(&r.chunk_key).await.unwrap();
    assert_eq!(bytes.len() as u64, r.chunk_bytes);
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        r.chunk_sha256
    );
    keys::decode_frames(&bytes).unwrap()
}

/// Checks the chunks decode as one stream, each from the state it names.
fn check_chain(results: &[TaskResult], chunks: &[Vec<Vec<u8>>]) {
    let mut state = DecoderState::default();
    let mut shown = 0;
    for (r, frames) in results.iter().zip(chunks) {
        if r.source_state != hex::encode([0u8; 32]) {
            assert_eq!(
                r.source_state,
                hex::encode(state_digest(&state)),
                "chunk {}",
                r.chunk
            );
        }
        for f in frames {
            let (s, pic) = excam_codec::decode(&state, f).unwrap();
            state = s;
            shown += usize::from(pic.is_some());
        }
    }
    assert_eq!(shown, FRAMES);
}

async fn check_job(fx: &Fixture, results: &[TaskResult]) -> Vec<Vec<Vec<u8>>> {
    let reference = encode_serially(&fx.frames, &encoder_config(), N, X).unwrap();
    assert_eq!(results.len(), reference.len());
    let mut got = Vec::new();
    for (r, want) in results.iter().zip(&reference) {
        let frames = chunk_frames(fx.store.as_ref(), r).await;
        assert_eq!(
            &frames, want,
            "chunk {} differs from the serial run",
            r.chunk
        );
        assert_eq!(r.frames, want.len());
        got.push(frames);
    }
    check_chain(results, &got);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_with_relay_matches_serial_run_and_retry_reuses_checkpoints() {
    let fx = fixture().await;
    let job = "job-relay";
    let relay = TestRelay::start(job).await;
    let tasks = job_tasks(&fx, job, Some(&relay.spec));
    let results: Vec<TaskResult> = run_job(tasks.clone())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let first = check_job(&fx, &results).await;

    for r in &results {
        // Results are stored too (compared as JSON: floats need not
        // round-trip exactly through serde_json).
        let stored = fx.store.get(&keys::result(job, r.chunk)).await.unwrap();
        assert_eq!(&stored[..], serde_json::to_string(r).unwrap().as_bytes());
        let plan = tasks[r.chunk].plan();
        let phases: Vec<_> = r.phases.iter().map(|p| p.phase).collect();
        if plan.is_head() {
            assert_eq!(phases.len(), 2, "{phases:?}");
        } else {
            assert_eq!(phases.len(), 3, "{phases:?}");
        }
        assert!(r.phases.iter().all(|p| !p.from_checkpoint));
        assert_eq!(r.state_bytes.is_some(), plan.hands_on());
        assert!(r.chunk_key.starts_with(&format!("jobs/{job}/chunks/")));
    }

    // A second attempt of a chunk in the middle of a group: phases 1 and 2
    // come from their checkpoints, the bytes are the same.
    let mut retry = tasks[1].clone();
    retry.attempt = 2;
    let again = run_task(retry).await.unwrap();
    assert_eq!(again.attempt, 2);
    assert!(again.phases[0].from_checkpoint && again.phases[1].from_checkpoint);
    assert!(!again.phases[2].from_checkpoint);
    assert_eq!(again.chunk_key, results[1].chunk_key);
    assert_eq!(again.chunk_sha256, results[1].chunk_sha256);
    assert_eq!(chunk_frames(fx.store.as_ref(), &again).await, first[1]);

    // A corrupted checkpoint is recomputed, with the same result.
    let ckpt = fx.root.join(keys::ckpt_phase1(job, 2));
    let mut b = std::fs::read(&ckpt).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    std::fs::write(&ckpt, b).unwrap();
    let again = run_task(tasks[2].clone()).await.unwrap();
    assert!(!again.phases[0].from_checkpoint);
    assert_eq!(again.chunk_sha256, results[2].chunk_sha256);

    // The job id reused with other settings: the checkpoint is stale and
    // not resumed from; the chunk gets another address.
    // (In a run of its own: states are scoped to a run.)
    let mut other = tasks[0].clone();
    other.codec.quantizer = Some(45);
    other.relay = None;
    other.run = "run-2".into();
    let r = run_task(other.clone()).await.unwrap();
    assert!(!r.phases[0].from_checkpoint);
    assert_ne!(r.chunk_key, results[0].chunk_key);
    // In the first run's scope, the write-once state objects betray it,
    // with or without the relay: a clear failure, nothing replaced.
    other.run = tasks[0].run.clone();
    let e = run_task(other.clone()).await.unwrap_err();
    assert_eq!(e.phase, Some(excam_worker::chunk::Phase::Encode));
    assert!(e.message.contains("different bytes"), "{e}");
    other.relay = Some(relay.spec.clone());
    let e = run_task(other).await.unwrap_err();
    assert_eq!(e.phase, Some(excam_worker::chunk::Phase::Encode));
    assert!(e.message.contains("different bytes"), "{e}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_without_relay_uses_the_store() {
    let fx = fixture().await;
    let job = "job-store";
    let tasks = job_tasks(&fx, job, None);
    let results: Vec<TaskResult> = run_job(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    check_job(&fx, &results).await;
    // Waiting was measured for chunks that had to wait.
    assert!(results
        .iter()
        .all(|r| r.phases.iter().all(|p| p.wait_seconds <= p.seconds)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_that_vanishes_falls_back_to_the_store() {
    let fx = fixture().await;
    let job = "job-lost-relay";
    let relay = TestRelay::start(job).await;
    let spec = relay.spec.clone();
    // The relay is gone before anyone connects: every task must still finish.
    relay.stop().await;
    let tasks = job_tasks(&fx, job, Some(&spec));
    let results: Vec<TaskResult> = run_job(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    check_job(&fx, &results).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_restarted_mid_job_loses_nothing() {
    let fx = fixture().await;
    let job = "job-restart";
    let secret = RelaySecret::generate();
    let identity = TlsIdentity::self_signed().unwrap();
    let relay =
        TestRelay::start_on(job, "127.0.0.1:0", secret.clone(), Some(identity.clone())).await;
    let spec = relay.spec.clone();
    let tasks = job_tasks(&fx, job, Some(&spec));
    // Chunk 0 finishes and hands its states to the relay (and the store)...
    let first = run_task(tasks[0].clone()).await.unwrap();
    // ...then the relay restarts, empty, at the same address and identity.
    relay.stop().await;
    let relay = TestRelay::start_on(job, &spec.addr, secret, Some(identity)).await;
    assert_eq!(relay.spec.fingerprint, spec.fingerprint);
    let mut results = vec![first];
    for r in run_job(tasks[1..].to_vec()).await {
        results.push(r.unwrap());
    }
    check_job(&fx, &results).await;
    // Chunk 1 found chunk 0's states in the store after a relay wait.
    assert!(results[1].phases[1].wait_seconds > 0.0);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_restarted_with_a_new_identity_degrades_to_the_store() {
    let fx = fixture().await;
    let job = "job-new-identity";
    let relay = TestRelay::start(job).await;
    let spec = relay.spec.clone();
    let tasks = job_tasks(&fx, job, Some(&spec));
    let first = run_task(tasks[0].clone()).await.unwrap();
    // Restarted at the same address with a new certificate and secret:
    // the tasks' pinned fingerprint and token no longer match.
    relay.stop().await;
    let relay = TestRelay::start_on(job, &spec.addr, RelaySecret::generate(), None).await;
    assert_ne!(relay.spec.fingerprint, spec.fingerprint);
    let mut results = vec![first];
    for r in run_job(tasks[1..].to_vec()).await {
        results.push(r.expect("a task must fall back to the store"));
    }
    check_job(&fx, &results).await;
    // And with only the secret changed (same certificate), likewise.
    relay.stop().await;
    let relay = TestRelay::start(job).await;
    let mut t = task(
        &fx,
        job,
        1,
        Some(RelaySpec {
            token: RelaySecret::generate().token(job),
            ..relay.spec.clone()
        }),
    );
    t.attempt = 2;
    let r = run_task(t)
        .await
        .expect("a refused token must fall back to the store");
    assert_eq!(r.final_state, results[1].final_state);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tasks_fail_clearly() {
    let fx = fixture().await;
    let mut t = task(&fx, "bad", 0, None);
    t.version = 99;
    let e = run_task(t).await.unwrap_err();
    assert_eq!(e.phase, None);
    assert!(e.message.contains("version"), "{e}");

    let mut t = task(&fx, "bad", 7, None);
    t.chunk = 7;
    assert!(run_task(t)
        .await
        .unwrap_err()
        .message
        .contains("out of range"));

    // A successor whose predecessor never comes times out in phase 2.
    let mut t = task(&fx, "lonely", 1, None);
    t.wait_timeout_s = 0.3;
    let e = run_task(t).await.unwrap_err();
    assert_eq!(e.phase, Some(excam_worker::chunk::Phase::EncodeGivenState));
    assert!(e.message.contains("timed out"), "{e}");
    let j = e.to_json();
    assert!(j.contains("\"phase\":\"encode_given_state\""), "{j}");

    // Missing input.
    let mut t = task(&fx, "bad", 0, None);
    t.input.key = "input/none.y4m".into();
    let e = run_task(t).await.unwrap_err();
    assert!(e.message.contains("none.y4m"), "{e}");
}

fn run_bin(stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_excam-worker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_runs_a_task_from_stdin() {
    let fx = fixture().await;
    let job = "job-bin";
    // Chunk 0 first (it needs nobody), then chunk 1 (waits for its state in
    // the store).
    let mut results = Vec::new();
    for i in 0..2 {
        let t = task(&fx, job, i, None);
        let out = run_bin(&serde_json::to_vec(&t).unwrap());
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let r: TaskResult = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!((r.job.as_str(), r.chunk), (job, i));
        assert!(r.worker.contains(':'), "{}", r.worker);
        results.push(r);
    }
    let reference = encode_serially(&fx.frames, &encoder_config(), N, X).unwrap();
    for (r, want) in results.iter().zip(&reference) {
        assert_eq!(&chunk_frames(fx.store.as_ref(), r).await, want);
    }
}

#[test]
fn binary_rejects_bad_json() {
    for input in [&b"{not json"[..], b"{\"version\": 1}", b""] {
        let out = run_bin(input);
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["error"].as_str().unwrap().contains("task JSON"), "{v}");
        assert!(v["phase"].is_null(), "{v}");
    }
}

#[test]
fn binary_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_excam-worker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("LAMBDA MODE") && text.contains("stdin"),
        "{text}"
    );
}

/// Without the `fault-injection` feature a task's fault is ignored.
#[cfg(not(feature = "fault-injection"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_ignored_without_the_feature() {
    use excam_worker::chunk::Phase;
    use excam_worker::task::Fault;
    let fx = fixture().await;
    let mut t = task(&fx, "job-no-fault", 0, None);
    t.fault = Some(Fault::Error {
        phase: Phase::Encode,
    });
    run_task(t).await.unwrap();
}

#[cfg(feature = "fault-injection")]
mod faults {
    use super::*;
    use excam_worker::chunk::Phase;
    use excam_worker::task::Fault;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn error_fault_returns_the_error() {
        let fx = fixture().await;
        for phase in [Phase::Encode, Phase::Rebase] {
            let mut t = task(&fx, "job-fault", 0, None);
            t.fault = Some(Fault::Error { phase });
            let e = run_task(t).await.unwrap_err();
            assert_eq!(e.phase, Some(phase));
            assert!(e.message.contains("injected"), "{e}");
        }
        // A slow phase still finishes.
        let mut t = task(&fx, "job-fault", 0, None);
        t.fault = Some(Fault::Slow {
            phase: Phase::Encode,
            seconds: 0.2,
        });
        let r = run_task(t).await.unwrap();
        assert!(r.phases[0].seconds >= 0.2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_fault_kills_the_process() {
        let fx = fixture().await;
        let mut t = task(&fx, "job-crash", 0, None);
        t.fault = Some(Fault::Crash {
            phase: Phase::Encode,
        });
        let out = run_bin(&serde_json::to_vec(&t).unwrap());
        assert!(!out.status.success());
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(6),
                "SIGABRT expected: {:?}",
                out.status
            );
        }
        assert!(out.stdout.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hang_fault_hangs() {
        let fx = fixture().await;
        let mut t = task(&fx, "job-hang", 0, None);
        t.fault = Some(Fault::Hang {
            phase: Phase::Encode,
        });
        let r = tokio::time::timeout(Duration::from_millis(500), run_task(t)).await;
        assert!(r.is_err(), "a hung task must not finish");
    }
}
