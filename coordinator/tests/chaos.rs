//! A short chaos run (the long one is `benches/chaos.sh`): `--backend
//! processes` at one frame per chunk, so every frame is a task, while
//! faults are injected from every side:
//!
//! - from outside, by this test: worker processes killed (SIGKILL) and
//!   stalled (SIGSTOP, some resumed later, some never), state objects in
//!   the store corrupted (a byte flipped) and deleted;
//! - by the coordinator: the embedded relay restarted mid-job
//!   (`--restart-relay-after`);
//! - inside the workers (`EXCAM_CHAOS`, test builds): store operations
//!   failing and stalling, tasks refused as throttled.
//!
//! Whatever happens, the job must end within its bound either with the
//! local backend's exact bytes or with a clear error and no output file.

mod runtime_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_support::{excam, scratch, serial, worker_bin};

/// Frames of the clip; with one frame per chunk, tasks of the job.
const FRAMES: usize = 160;
const WIDTH: usize = 64;
const HEIGHT: usize = 48;
/// The job must be over by then (a hang fails the test).
const BOUND: Duration = Duration::from_secs(300);

/// A 64x48 Y4M clip: a moving pattern over a fixed noise texture, so
/// every frame differs and motion search has something to find.
fn tiny_clip(path: &Path) {
    let mut out = format!("YUV4MPEG2 W{WIDTH} H{HEIGHT} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    let mut x: u32 = 0x1234_5678;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 27) as u8
    };
    let texture: Vec<u8> = (0..WIDTH * HEIGHT).map(|_| noise()).collect();
    for t in 0..FRAMES {
        out.extend_from_slice(b"FRAME\n");
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let v = ((x + t) * 4 % 200) as u8 / 2 + ((y + t / 3) * 3 % 100) as u8;
                out.push(v.wrapping_add(texture[y * WIDTH + x]));
            }
        }
        for p in 0..2 {
            for y in 0..HEIGHT / 2 {
                for x in 0..WIDTH / 2 {
                    out.push((100 + p * 40 + (x + y + t) % 16) as u8);
                }
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

fn encode_args(clip: &Path, out: &Path) -> Vec<String> {
    [
        "encode",
        &clip.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--chunk-frames",
        "1",
        "--group-chunks",
        "12",
        "-q",
        "32",
        "--speed",
        "8",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// PIDs of the `excam-worker` processes whose parent is `parent`.
fn workers_of(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm.starts_with("excam-worker") && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

fn signal(pid: i32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// State objects of the job in the store (not their checksum sidecars).
fn state_objects(store: &Path) -> Vec<PathBuf> {
    runtime_support::find_files(store, "/states/")
        .into_iter()
        .filter(|p| p.extension().is_none())
        .collect()
}

#[test]
fn chaos_run_is_byte_identical_or_fails_cleanly() {
    let Some(worker) = worker_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: no excam-worker with fault injection"
        );
        return;
    };
    let _g = serial();
    let dir = scratch("chaos");
    let clip = dir.join("tiny.y4m");
    tiny_clip(&clip);

    let reference = dir.join("local.ivf");
    let mut a = encode_args(&clip, &reference);
    a.extend(["--workers".into(), "2".into()]);
    let o = excam(&a);
    assert!(o.status.success(), "local encode: {o:?}");
    let reference = std::fs::read(&reference).unwrap();

    let out = dir.join("out.ivf");
    let store = dir.join("store");
    let log = dir.join("chaos.log");
    let mut a = encode_args(&clip, &out);
    a.extend(
        [
            "--backend",
            "processes",
            "--worker-bin",
            &worker.display().to_string(),
            "--store-dir",
            &store.display().to_string(),
            "--max-concurrency",
            "6",
            "--max-tries",
            "10",
            "--task-timeout",
            "15",
            "--straggler-floor",
            "3",
            "--restart-relay-after",
            "60",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(&a)
        .env(
            "EXCAM_CHAOS",
            "store_error=0.01,throttle=0.03,slow_store=0.01",
        )
        .env("EXCAM_CHAOS_LOG", &log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let coordinator = child.id();
    // The stderr pipe is drained by a thread so a chatty run cannot block.
    let mut err_pipe = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err_pipe, &mut s).ok();
        s
    });

    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut stopped: Vec<(i32, Instant)> = Vec::new();
    let mut tick = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chaos run still going after {BOUND:?}: {counts:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
        tick += 1;
        let workers = workers_of(coordinator);
        let pick = |n: usize| (tick as usize * 7919) % n.max(1);
        if tick.is_multiple_of(15)
            && !workers.is_empty()
            && signal(workers[pick(workers.len())], "-KILL")
        {
            *counts.entry("killed").or_default() += 1;
        }
        if tick.is_multiple_of(25) && !workers.is_empty() {
            let pid = workers[pick(workers.len())];
            if signal(pid, "-STOP") {
                *counts.entry("stalled").or_default() += 1;
                // Every other stall ends after 2 s; the rest last until the
                // coordinator gives up on the attempt and kills it.
                if tick.is_multiple_of(50) {
                    stopped.push((pid, Instant::now()));
                }
            }
        }
        stopped.retain(|&(pid, at)| {
            let due = at.elapsed() > Duration::from_secs(2);
            if due {
                signal(pid, "-CONT");
            }
            !due
        });
        if tick % 10 == 5 {
            let states = state_objects(&store);
            if !states.is_empty() {
                let victim = &states[pick(states.len())];
                if tick % 20 == 5 {
                    if std::fs::remove_file(victim).is_ok() {
                        *counts.entry("state_deleted").or_default() += 1;
                    }
                } else if let Ok(mut b) = std::fs::read(victim) {
                    if !b.is_empty() {
                        let i = pick(b.len());
                        b[i] ^= 0x5a;
                        if std::fs::write(victim, b).is_ok() {
                            *counts.entry("state_corrupted").or_default() += 1;
                        }
                    }
                }
            }
        }
    };
    let stderr = err_reader.join().unwrap();
    let chaos_log = std::fs::read_to_string(&log).unwrap_or_default();
    for kind in ["store_error", "throttle", "slow_store"] {
        let n = chaos_log.lines().filter(|l| l.starts_with(kind)).count();
        counts.insert(kind, n);
    }
    eprintln!(
        "chaos: {FRAMES} tasks in {:.1} s, exit {status}, faults {counts:?}",
        started.elapsed().as_secs_f64()
    );
    for kind in [
        "killed",
        "stalled",
        "state_corrupted",
        "throttle",
        "store_error",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {counts:?}"
        );
    }
    if status.success() {
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == reference,
            "a chaos run succeeded with bytes other than the local backend's"
        );
    } else {
        assert!(!out.exists(), "a failed run left {out:?}");
        let why = stderr
            .lines()
            .find(|l| l.starts_with("excam: error:"))
            .unwrap_or_else(|| panic!("a failed run must say why: {stderr}"));
        eprintln!("chaos: clean failure: {}", &why[..why.len().min(600)]);
    }
}
