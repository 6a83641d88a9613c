//! The scheduler against in-process backends with planted failures.

//! The scheduling logic against a simulated backend: chunk `c`'s task
//! waits for chunk `c-1`'s to finish (the serial phase), then writes a
//! one-frame chunk object. Real workers are exercised by the
//! `runtime_*` integration tests.

use std::sync::Mutex as StdMutex;

use async_trait::async_trait;
use excam_worker::task::{CodecParams, InputSpec, StoreSpec, TASK_VERSION};

use super::*;
use crate::runtime::worker_api::open_store;

struct Sim {
    store: Arc<dyn Store>,
    finished: StdMutex<Vec<bool>>,
    /// (chunk, attempt) -> behaviour: "fail", "throttle", "slow", "hang".
    script: HashMap<(usize, u32), &'static str>,
    max_running: StdMutex<(usize, usize)>,
}

#[async_trait]
impl Backend for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }
    async fn run(&self, task: Task) -> Result<TaskResult, AttemptError> {
        struct Guard<'a>(&'a StdMutex<(usize, usize)>);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.lock().unwrap().0 -= 1;
            }
        }
        {
            let mut m = self.max_running.lock().unwrap();
            m.0 += 1;
            m.1 = m.1.max(m.0);
        }
        let _g = Guard(&self.max_running);
        let c = task.chunk;
        match self.script.get(&(c, task.attempt)) {
            Some(&"fail") => {
                return Err(AttemptError::new(
                    FailureKind::FunctionError,
                    "phase 3 (rebase): injected",
                ))
            }
            Some(&"throttle") => {
                return Err(AttemptError::new(
                    FailureKind::Throttled,
                    "TooManyRequestsException: rate exceeded",
                ))
            }
            Some(&"slow") => tokio::time::sleep(Duration::from_secs(30)).await,
            Some(&"hang") => std::future::pending::<()>().await,
            _ => {}
        }
        // The serial phase: wait for the predecessor.
        while c > 0 && !self.finished.lock().unwrap()[c - 1] {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let obj = {
            let mut o = b"EXFL".to_vec();
            o.extend_from_slice(&1u32.to_le_bytes());
            o.extend_from_slice(&1u32.to_le_bytes());
            o.push(c as u8);
            o
        };
        let key = format!("jobs/j/chunks/{c}");
        self.store
            .put(&key, bytes::Bytes::from(obj.clone()))
            .await
            .unwrap();
        self.finished.lock().unwrap()[c] = true;
        Ok(TaskResult {
            version: TASK_VERSION,
            job: "j".into(),
            run: "r".into(),
            chunk: c,
            attempt: task.attempt,
            chunk_key: key,
            chunk_sha256: hex::encode(Sha256::digest(&obj)),
            chunk_bytes: obj.len() as u64,
            frames: 1,
            // A consistent chain: chunk c starts where c-1 ends.
            source_state: hex::encode([c as u8; 32]),
            final_state: hex::encode([c as u8 + 1; 32]),
            phase1_state: None,
            phases: vec![],
            state_bytes: None,
            worker: "sim".into(),
            total_seconds: 0.02,
            key_frames: None,
        })
    }
}

struct Quiet;
impl Observer for Quiet {
    fn event(&self, _: &Event<'_>, _: usize) {}
}

async fn run(
    n: usize,
    script: &[((usize, u32), &'static str)],
    cfg: SchedulerConfig,
) -> (Result<Schedule, (ScheduleError, Schedule)>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let spec = StoreSpec::Local {
        root: dir.path().to_path_buf(),
    };
    let store = open_store(&spec).await.unwrap();
    let sim = Arc::new(Sim {
        store: store.clone(),
        finished: StdMutex::new(vec![false; n]),
        script: script.iter().copied().collect(),
        max_running: StdMutex::new((0, 0)),
    });
    let task = |i| Task {
        version: TASK_VERSION,
        job: "j".into(),
        run: "r".into(),
        chunk: i,
        chunks: n,
        chunk_frames: 1,
        group_chunks: n,
        input: InputSpec {
            key: "in".into(),
            first_frame_offset: 0,
            frame_stride: 1,
            frames: n,
        },
        codec: CodecParams::from_config(&excam_codec::encode::encoder::EncoderConfig::new(16, 16)),
        store: spec.clone(),
        relay: None,
        attempt: 0,
        wait_timeout_s: 10.0,
        fault: None,
        merge: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let r = run_schedule(
        sim.clone(),
        store,
        (0..n).map(task).collect(),
        vec![1; n],
        vec![],
        &cfg,
        &HashMap::new(),
        &Quiet,
        &|_: usize| {},
        rx,
    )
    .await;
    let max = sim.max_running.lock().unwrap().1;
    (r, max)
}

fn cfg(conc: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_concurrency: conc,
        straggler_floor: Duration::from_millis(300),
        task_timeout: Duration::from_secs(20),
        ..SchedulerConfig::default()
    }
}

#[tokio::test]
async fn chain_order_with_two_slots_for_twelve_chunks() {
    let (r, max) = run(12, &[], cfg(2)).await;
    let s = r.ok().unwrap();
    assert!(s
        .chunks
        .iter()
        .enumerate()
        .all(|(i, c)| c.as_ref().unwrap().frames == vec![vec![i as u8]]));
    assert!(max <= 2, "{max} ran at once");
}

#[tokio::test]
async fn failures_are_retried_and_a_straggler_gets_a_twin() {
    let (r, _) = run(
        6,
        &[((2, 1), "fail"), ((4, 1), "slow"), ((5, 1), "hang")],
        cfg(3),
    )
    .await;
    let s = r.ok().unwrap();
    let a2: Vec<_> = s.attempts.iter().filter(|a| a.chunk == 2).collect();
    assert!(matches!(
        a2[0].outcome,
        Some(Outcome::Failed {
            kind: FailureKind::FunctionError
        })
    ));
    assert_eq!(a2[1].outcome, Some(Outcome::Ok));
    let a4: Vec<_> = s.attempts.iter().filter(|a| a.chunk == 4).collect();
    assert_eq!(a4[0].outcome, Some(Outcome::LostRace));
    assert!(a4[1].speculative);
    assert!(s.twins >= 2);
}

#[tokio::test]
async fn a_chunk_failing_every_try_names_chunk_and_phase() {
    let script = [((3, 1), "fail"), ((3, 2), "fail")];
    let mut c = cfg(4);
    c.max_tries = 2;
    let (r, _) = run(5, &script, c).await;
    let Err((e, _)) = r else {
        panic!("should fail")
    };
    let msg = e.to_string();
    assert!(msg.contains("chunk 3") && msg.contains("phase 3"), "{msg}");
}

#[tokio::test]
async fn throttling_uses_no_tries_but_ends_at_the_throttle_timeout() {
    // Throttled three times, then through: fine even with one try.
    let script = [
        ((1, 1), "throttle"),
        ((1, 2), "throttle"),
        ((1, 3), "throttle"),
    ];
    let mut c = cfg(4);
    c.max_tries = 1;
    let (r, _) = run(3, &script, c).await;
    let s = r.ok().expect("throttles are not failures");
    assert_eq!(s.attempts.iter().filter(|a| a.chunk == 1).count(), 4);

    // Throttled for good: the job fails once the timeout has passed,
    // naming the chunk, instead of retrying forever.
    let script: Vec<_> = (1..=1000).map(|a| ((2, a), "throttle")).collect();
    let mut c = cfg(4);
    c.throttle_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let (r, _) = run(4, &script, c).await;
    let Err((e, _)) = r else {
        panic!("a permanently throttled chunk must fail the job")
    };
    assert!(
        matches!(e, ScheduleError::Throttled { chunk: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("TooManyRequests"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
