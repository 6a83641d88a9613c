//! `--backend lambda` against emulated AWS on loopback: S3 served by
//! `s3s-fs` in this process (SigV4 on, fixed keys), Lambda by
//! `cargo lambda watch --only-lambda-apis`, and a pool of `excam-worker`
//! processes in Lambda mode polling its runtime API. Skips when
//! cargo-lambda is not installed (fails under `CI=true`).
//!
//! The emulator queues an invocation until one of the pool's instances
//! asks for it, where Lambda would start another instance (or throttle).
//! So every job here runs with `--max-concurrency` at most the pool's
//! size: with more invocations than instances, the instances could all be
//! taken by chunks waiting for a predecessor's state while that
//! predecessor sits in the queue behind them, until their waits time
//! out. Each job is bounded too ([`RUN_LIMIT`], `--task-timeout`), so a
//! stuck job fails its test instead of hanging the run.

// Needs the AWS SDK, which only the default `cloud` feature brings.
#![cfg(feature = "cloud")]

mod runtime_support;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runtime_support::*;

const KEY: &str = "AKIAEXCAMTEST000";
const SECRET: &str = "excam-test-secret-key-0123456789";
const BUCKET: &str = "excam";

/// Whether cargo-lambda is installed; under `CI=true` its absence fails.
fn have_cargo_lambda() -> bool {
    // `cargo-lambda --version` is refused (it wants a subcommand), but
    // runs: only a failure to start it means it is missing.
    let ok = Command::new("cargo-lambda")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok || std::env::var("CI").as_deref() != Ok("true"),
        "CI: cargo-lambda is not on PATH (pip install cargo-lambda)"
    );
    if !ok {
        eprintln!("skipping: cargo-lambda is not on PATH (pip install cargo-lambda)");
    }
    ok
}

/// A free loopback TCP port (bound and released).
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves S3 over `root` on a loopback port until the runtime stops.
fn serve_s3(rt: &tokio::runtime::Runtime, root: &Path) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(KEY, SECRET));
    let service = b.build();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let svc = service.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    port
}

/// Kills its children when dropped, so a failing test leaves nothing running.
struct Procs {
    children: Arc<Mutex<Vec<Child>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.children.lock().unwrap().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn aws_env(cmd: &mut Command, s3: u16, lambda: u16) {
    cmd.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{s3}"))
        .env(
            "AWS_ENDPOINT_URL_LAMBDA",
            format!("http://127.0.0.1:{lambda}"),
        )
        .env_remove("AWS_PROFILE");
}

/// Starts the emulator and `instances` workers (restarted if they die).
fn start_lambda(worker: &Path, s3: u16, instances: usize) -> (u16, Procs) {
    let port = free_port();
    let children = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let emu = Command::new("cargo-lambda")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    children.lock().unwrap().push(emu);
    // Wait for the emulator to listen.
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let spawn_worker = {
        let worker = worker.to_path_buf();
        move || {
            let mut c = Command::new(&worker);
            aws_env(&mut c, s3, port);
            c.env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/excam-worker"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "excam-worker")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        }
    };
    for _ in 0..instances {
        let c = spawn_worker();
        children.lock().unwrap().push(c);
    }
    // Supervisor: a worker that dies (a crash fault) is replaced, as
    // Lambda starts a new instance.
    {
        let children = children.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                {
                    let mut cs = children.lock().unwrap();
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    for c in cs.iter_mut().skip(1) {
                        if let Ok(Some(_)) = c.try_wait() {
                            *c = spawn_worker();
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }
    (port, Procs { children, stop })
}

fn lambda_run(
    name: &str,
    instances: usize,
    extra: &[&str],
) -> Option<(PathBuf, serde_json::Value)> {
    lambda_job(name, instances, extra, None)
}

/// [`lambda_run`], the output going to `s3://excam/{s3_key}` if given
/// (read back from the s3s-fs directory for the comparison).
fn lambda_job(
    name: &str,
    instances: usize,
    extra: &[&str],
    s3_key: Option<&str>,
) -> Option<(PathBuf, serde_json::Value)> {
    if !have_cargo_lambda() {
        return None;
    }
    let worker = worker_bin()?;
    let reference = local_reference();
    let _g = serial();
    let dir = scratch(name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = serve_s3(&rt, &dir.join("s3"));
    let (lport, procs) = start_lambda(&worker, s3, instances);
    let out = match s3_key {
        Some(k) => PathBuf::from(format!("s3://{BUCKET}/{k}")),
        None => dir.join("out.ivf"),
    };
    let mut a = common_args(&out);
    a.extend(
        [
            "--backend",
            "lambda",
            "--bucket",
            BUCKET,
            "--prefix",
            "runs/t",
            "--relay-listen",
            "127.0.0.1:0",
            "--task-timeout",
            "120",
            // No more invocations than instances (see the module docs).
            "--max-concurrency",
            &instances.to_string(),
        ]
        .map(String::from),
    );
    a.extend([
        "--report".to_string(),
        dir.join("report.json").display().to_string(),
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_excam"));
    aws_env(&mut cmd, s3, lport);
    let o = output_within(cmd.args(&a), RUN_LIMIT);
    drop(procs);
    assert!(
        o.status.success(),
        "{name}: lambda encode failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let file = match s3_key {
        Some(k) => dir.join("s3").join(BUCKET).join(k),
        None => out,
    };
    assert!(
        std::fs::read(&file).unwrap() == reference,
        "{name}: lambda output differs from local"
    );
    let rep = report(&dir);
    Some((dir, rep))
}

#[test]
fn lambda_output_equals_local_with_fewer_instances_than_chunks() {
    let Some((_, rep)) = lambda_run("lambda", 3, &[]) else {
        return;
    };
    assert_eq!(rep["backend"], "lambda");
    assert_eq!(rep["chunks"], 6);
    // The workers are Lambda instances: their ids are request ids, not pids.
    assert!(rep["tasks"][0]["attempts"][0]["worker"].is_string());
}

#[test]
fn lambda_function_error_and_crash_are_retried() {
    let Some((_, rep)) = lambda_run(
        "lambda-faults",
        3,
        &[
            "--inject-fault",
            "1:1:error:given-state",
            "--inject-fault",
            "4:1:crash:rebase",
        ],
    ) else {
        return;
    };
    let a1 = &rep["tasks"][1]["attempts"][0];
    assert_eq!(a1["outcome"]["kind"], "function_error", "{a1}");
    assert!(rep["totals"]["retries"].as_u64().unwrap() >= 1);
    // The emulator never answers for an instance that died (AWS would
    // answer Runtime.ExitError), so chunk 4 is rescued by a retry after its
    // time-out or, sooner, by a speculative twin; its first attempt never wins.
    let a4 = rep["tasks"][4]["attempts"].as_array().unwrap();
    assert!(a4.len() >= 2, "{a4:?}");
    assert_ne!(a4[0]["outcome"]["status"], "ok", "{a4:?}");
}

/// Issue 21: `-o s3://bucket/key` is assembled in S3: a worker merges the
/// final chunks into a part object and the coordinator copies it into a
/// multipart upload with `UploadPartCopy`. s3s-fs enforces S3's 5 MiB
/// minimum for every part but the last (`EntityTooSmall`), so this
/// 30 KB job makes one part of all six chunks. The object equals the local
/// file.
#[test]
fn s3_output_is_assembled_from_merged_parts_and_equals_the_local_file() {
    let Some((dir, rep)) = lambda_job("lambda-s3-output", 3, &[], Some("videos/out.ivf")) else {
        return;
    };
    let parts = rep["assembly"]["parts"].as_array().unwrap().clone();
    let size = std::fs::metadata(dir.join("s3").join(BUCKET).join("videos/out.ivf"))
        .unwrap()
        .len();
    assert_eq!(parts.len(), 1, "{parts:?}");
    let p = &parts[0];
    assert_eq!(p["number"], 1, "{p}");
    assert_eq!(p["first_chunk"], 0, "{p}");
    assert_eq!(p["chunks"], 6, "{p}");
    assert_eq!(p["bytes"].as_u64(), Some(size), "{p}");
    assert!(!p["etag"].as_str().unwrap().is_empty(), "{p}");
    assert_eq!(rep["output_bytes"].as_u64(), Some(size));
    // Nothing was written to a local file, and the job's objects (the part
    // object included) are cleaned up.
    assert!(!Path::new("s3:").exists());
    assert!(find_files(&dir.join("s3").join(BUCKET), "parts").is_empty());
}

/// A job that fails leaves no object at the output key: the upload is
/// aborted.
#[test]
fn failed_s3_output_leaves_no_object() {
    if !have_cargo_lambda() {
        return;
    }
    let Some(worker) = worker_bin() else { return };
    let _g = serial();
    let dir = scratch("lambda-s3-output-fails");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = serve_s3(&rt, &dir.join("s3"));
    let (lport, procs) = start_lambda(&worker, s3, 3);
    let mut a = common_args(Path::new("s3://excam/videos/failed.ivf"));
    a.extend(
        [
            "--backend",
            "lambda",
            "--bucket",
            BUCKET,
            "--relay-listen",
            "127.0.0.1:0",
            "--max-concurrency",
            "3",
            "--task-timeout",
            "120",
            "--max-tries",
            "2",
            "--inject-fault",
            "4:1:error:encode",
            "--inject-fault",
            "4:2:error:encode",
        ]
        .map(String::from),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_excam"));
    aws_env(&mut cmd, s3, lport);
    let o = output_within(cmd.args(&a), RUN_LIMIT);
    drop(procs);
    assert!(!o.status.success(), "the job should fail");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("chunk 4 failed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir
        .join("s3")
        .join(BUCKET)
        .join("videos/failed.ivf")
        .exists());
}
