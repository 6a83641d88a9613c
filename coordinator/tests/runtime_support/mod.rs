//! Shared helpers of the runtime tests: the clip, the worker binary (built
//! with fault injection), the local reference encode, vpxdec.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Frames, N and x of the small job every test runs.
pub const LIMIT: &str = "24";
/// N.
pub const N: &str = "4";
/// x.
pub const X: &str = "3";

/// The carphone clip, made by the shared script when missing.
pub fn clip() -> PathBuf {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = PathBuf::from("/tmp/clips");
        let p = dir.join("carphone_176x144_120f.y4m");
        if !p.exists() {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/clips/make-clips.sh");
            let st = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .status()
                .unwrap();
            assert!(st.success(), "make-clips.sh failed");
        }
        p
    })
    .clone()
}

/// target/release (where the test's own deps dir sits).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `excam-worker` built with the `fault-injection` feature (faults act only
/// when a task carries one, so every test may use it); `None` with a
/// printed reason if it cannot be built.
pub fn worker_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("EXCAM_TEST_WORKER_BIN") {
            // The fault tests need a worker built with fault injection; a
            // plain `cargo build` of the workspace leaves one without it.
            let v = Command::new(&p)
                .arg("--version")
                .output()
                .unwrap_or_else(|e| panic!("EXCAM_TEST_WORKER_BIN={p:?}: {e}"));
            assert!(
                String::from_utf8_lossy(&v.stdout).contains("fault-injection"),
                "EXCAM_TEST_WORKER_BIN={p:?} was built without the fault-injection \
                 feature; build it with `cargo test --workspace --release --no-run` \
                 or `cargo build --release -p excam-worker --features fault-injection`"
            );
            return Some(PathBuf::from(p));
        }
        let profile = profile_dir();
        let target = profile.parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env("CARGO_TARGET_DIR", &target)
            .args([
                "build",
                "--release",
                "-p",
                "excam-worker",
                "--features",
                "fault-injection",
            ])
            .status();
        let bin = profile.join("excam-worker");
        match st {
            Ok(s) if s.success() && bin.exists() => Some(bin),
            other => {
                eprintln!("skipping: cannot build excam-worker with fault-injection: {other:?}");
                None
            }
        }
    })
    .clone()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("runtime")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The common encode arguments.
pub fn common_args(out: &Path) -> Vec<String> {
    vec![
        "encode".into(),
        clip().display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "--limit".into(),
        LIMIT.into(),
        "--chunk-frames".into(),
        N.into(),
        "--group-chunks".into(),
        X.into(),
        "-q".into(),
        "32".into(),
        "--quiet".into(),
    ]
}

/// Longest one `excam` run of a runtime test may take: the jobs take
/// seconds, so a run past this is a hang, reported as a failure.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Runs `excam` with `args` (bounded by [`RUN_LIMIT`]).
pub fn excam(args: &[String]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_excam")).args(args),
        RUN_LIMIT,
    )
}

/// Runs `cmd` (no stdin) and collects its output like
/// [`Command::output`], but kills it and fails the test if it has not
/// ended within `limit`: a job that never ends must fail its test, not
/// hang the whole test run.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Readers on threads: a child blocked on a full pipe would never end.
    let reader = |mut r: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            let _ = tx.send(b);
        });
        rx
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // A grandchild may still hold a pipe open: do not wait on it forever.
    let grace = Duration::from_secs(10);
    let stdout = out.recv_timeout(grace).unwrap_or_default();
    let stderr = err.recv_timeout(grace).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "{cmd:?} did not end within {} s (killed); its stderr:\n{}",
            limit.as_secs(),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The local backend's output for the common job (computed once).
pub fn local_reference() -> Vec<u8> {
    static REF: OnceLock<Vec<u8>> = OnceLock::new();
    REF.get_or_init(|| {
        let d = scratch("local-reference");
        let out = d.join("local.ivf");
        let mut a = common_args(&out);
        a.extend(["--workers".into(), "2".into()]);
        let o = excam(&a);
        assert!(o.status.success(), "local encode failed: {o:?}");
        std::fs::read(&out).unwrap()
    })
    .clone()
}

/// Args for the processes backend with a store and a report in `dir`.
pub fn processes_args(dir: &Path, out: &Path, worker: &Path) -> Vec<String> {
    let mut a = common_args(out);
    a.extend([
        "--backend".into(),
        "processes".into(),
        "--worker-bin".into(),
        worker.display().to_string(),
        "--store-dir".into(),
        dir.join("store").display().to_string(),
        "--report".into(),
        dir.join("report.json").display().to_string(),
        "--straggler-floor".into(),
        "3".into(),
        "--task-timeout".into(),
        "60".into(),
    ]);
    a
}

/// The report a run wrote.
pub fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// How many tasks of the job's report reused a stored chunk.
pub fn reused_tasks(dir: &Path) -> usize {
    report(dir)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["reused"] == true)
        .count()
}

/// Whether vpxdec is installed.
pub fn have_vpxdec() -> bool {
    Command::new("vpxdec")
        .arg("--help")
        .output()
        .map(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false)
}

/// Per-frame MD5 lines of `ivf` from vpxdec and from `excam decode`.
pub fn md5_lines(ivf: &Path) -> (Vec<u8>, Vec<u8>) {
    let scratch = ivf.parent().unwrap();
    let theirs = Command::new("vpxdec")
        .current_dir(scratch)
        .args(["--codec=vp8", "--md5", "--i420", "-o", "f-%wx%h-%4.i420"])
        .arg(ivf)
        .output()
        .unwrap();
    assert!(theirs.status.success(), "vpxdec failed: {theirs:?}");
    let ours = excam(&["decode".into(), ivf.display().to_string(), "--md5".into()]);
    assert!(ours.status.success());
    // Compare the per-frame hashes only: the name column differs by design.
    let hashes = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    };
    (hashes(&theirs.stdout), hashes(&ours.stdout))
}

/// Serializes the heavy tests: timing (stragglers) must not depend on how
/// many other encodes share the two cores.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Files under `dir` whose path contains `needle`.
pub fn find_files(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(needle) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
