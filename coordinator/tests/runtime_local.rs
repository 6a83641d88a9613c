//! `--workers N` on the local backend runs on the runtime's scheduler
//! (tasks in this process): byte-identical to the in-memory pipeline (what
//! `-o -` still uses) and to the processes backend, with retries of
//! injected failures, `--report` and `--resume`.

mod runtime_support;

use std::path::{Path, PathBuf};

use runtime_support::*;

/// Local-backend args with a store and a report in `dir`.
fn local_args(dir: &Path, out: &Path) -> Vec<String> {
    let mut a = common_args(out);
    a.extend([
        "--workers".into(),
        "2".into(),
        "--store-dir".into(),
        dir.join("store").display().to_string(),
        "--report".into(),
        dir.join("report.json").display().to_string(),
        "--task-timeout".into(),
        "60".into(),
    ]);
    a
}

/// The in-memory pipeline's bytes for the common job: standard output is
/// not a path the runtime can rename into, so `-o -` takes that path.
fn pipeline_reference() -> Vec<u8> {
    let dir = scratch("local-pipeline-reference");
    let mut a = common_args(Path::new("-"));
    a.extend(["--workers".into(), "3".into()]);
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(dir.join("pipe.ivf"), &o.stdout).unwrap();
    o.stdout
}

/// Whether IVF file `file` holds the stream `piped` holds: a pipe cannot
/// be seeked back to patch the header's frame count (bytes 24..28), so
/// that field alone may differ.
fn same_stream(file: &[u8], piped: &[u8]) -> bool {
    file.len() == piped.len()
        && file.len() > 32
        && file[..24] == piped[..24]
        && file[28..] == piped[28..]
}

fn run(dir: &Path, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let out = dir.join("out.ivf");
    let mut a = local_args(dir, &out);
    a.extend(extra.iter().map(|s| s.to_string()));
    let o = excam(&a);
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (out, report(dir))
}

fn attempts(rep: &serde_json::Value, chunk: usize) -> Vec<serde_json::Value> {
    rep["tasks"][chunk]["attempts"].as_array().unwrap().clone()
}

#[test]
fn local_runtime_equals_the_pipeline_and_reports_every_task() {
    let _g = serial();
    let reference = pipeline_reference();
    let dir = scratch("local-plain");
    let (out, rep) = run(&dir, &[]);
    assert!(
        same_stream(&std::fs::read(&out).unwrap(), &reference),
        "the local backend's output differs from the in-memory pipeline's"
    );
    assert_eq!(rep["backend"], "local");
    assert_eq!(rep["chunks"], 6);
    assert_eq!(rep["totals"]["retries"], 0);
    let tasks = rep["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    for (i, t) in tasks.iter().enumerate() {
        // Heads (0 and 3 at x=3) run phases 1 and 3 only.
        let phases = if i % 3 == 0 { 2 } else { 3 };
        assert_eq!(t["phases"].as_array().unwrap().len(), phases, "{t}");
    }
    assert!(dir.join("report.svg").exists());
    if have_vpxdec() {
        let (theirs, ours) = md5_lines(&out);
        assert_eq!(theirs, ours, "vpxdec decodes differently");
    }
}

#[test]
fn local_backend_retries_injected_failures() {
    let _g = serial();
    let reference = pipeline_reference();
    let dir = scratch("local-retry");
    let (out, rep) = run(
        &dir,
        &[
            "--inject-fault",
            "2:1:error:rebase",
            "--inject-fault",
            "4:1:crash:given-state",
        ],
    );
    assert!(same_stream(&std::fs::read(&out).unwrap(), &reference));
    let a2 = attempts(&rep, 2);
    assert_eq!(a2[0]["outcome"]["status"], "failed", "{a2:?}");
    assert_eq!(a2[0]["outcome"]["kind"], "function_error");
    assert_eq!(a2[0]["phase"], "rebase");
    assert_eq!(a2.last().unwrap()["outcome"]["status"], "ok");
    let a4 = attempts(&rep, 4);
    assert_eq!(a4[0]["outcome"]["kind"], "crash", "{a4:?}");
    assert_eq!(a4[0]["phase"], "encode_given_state");
    assert_eq!(rep["totals"]["retries"], 2);
}

#[test]
fn local_backend_fails_cleanly_after_max_tries() {
    let _g = serial();
    let dir = scratch("local-fail");
    let out = dir.join("out.ivf");
    let mut a = local_args(&dir, &out);
    a.extend(
        [
            "--max-tries",
            "2",
            "--inject-fault",
            "1:1:error:encode",
            "--inject-fault",
            "1:2:error:encode",
        ]
        .map(String::from),
    );
    let o = excam(&a);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("chunk 1") && err.contains("phase 1") && err.contains("2 tries"),
        "{err}"
    );
    assert!(!out.exists(), "a failed job left output");
}

#[test]
fn local_backend_resumes_from_its_store() {
    let _g = serial();
    let reference = pipeline_reference();
    let dir = scratch("local-resume");
    let (out, _) = run(&dir, &["--keep-intermediate"]);
    std::fs::remove_file(&out).unwrap();
    // Chunk 4 is lost; everything else is reused.
    let results = find_files(&dir.join("store"), "results");
    let victim = results
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "4" || n == "4.json"))
        .unwrap_or_else(|| panic!("no result record of chunk 4 in {results:?}"));
    std::fs::remove_file(victim).unwrap();
    let (out, rep) = run(&dir, &["--resume"]);
    assert!(same_stream(&std::fs::read(&out).unwrap(), &reference));
    let reused: Vec<bool> = rep["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reused"] == true)
        .collect();
    assert_eq!(reused, [true, true, true, true, false, true], "{rep}");
}

#[test]
fn local_skip_runs_on_the_runtime_like_the_pipeline() {
    let _g = serial();
    let dir = scratch("local-skip");
    let mut a = common_args(Path::new("-"));
    a.extend(["--workers", "2", "--skip", "5"].map(String::from));
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (out, rep) = run(&dir, &["--skip", "5"]);
    assert!(same_stream(&std::fs::read(&out).unwrap(), &o.stdout));
    assert_eq!(rep["frames"], 24);
}
