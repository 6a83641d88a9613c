//! Progress on stderr when it is not a terminal: plain lines by default,
//! one JSON object per line with `--progress json`, nothing with
//! `--quiet` or `--progress none`; for the serial encoder, the local
//! ExCamera pipeline and the processes backend.

mod runtime_support;

use std::path::Path;

use runtime_support::*;

/// `excam encode` of the test clip's first 24 frames to `out`, with `extra`.
fn encode(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a: Vec<String> = common_args(out)
        .into_iter()
        .filter(|a| a != "--quiet")
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    let o = excam(&a);
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every stderr line that is a JSON object, parsed; other lines (the
/// summary) are returned apart.
fn json_lines(stderr: &[u8]) -> (Vec<serde_json::Value>, Vec<String>) {
    let (mut json, mut other) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(stderr).lines() {
        if line.starts_with('{') {
            json.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")));
        } else {
            other.push(line.to_string());
        }
    }
    (json, other)
}

#[test]
fn serial_encode_json_and_plain() {
    let dir = scratch("progress-serial");
    let out = dir.join("out.ivf");
    let o = encode(&out, &["--progress", "json"]);
    let (json, _) = json_lines(&o.stderr);
    assert!(!json.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = json.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["frames"], 24);
    assert_eq!(last["total_frames"], 24);
    assert!(last["fps"].as_f64().unwrap() > 0.0);
    assert!(last["kbps"].as_f64().unwrap() > 0.0);
    let ivf = std::fs::read(&out).unwrap();
    let bytes = last["bytes"].as_u64().unwrap();
    // The IVF header counts every frame record, hidden alt-ref frames
    // included (as vpxenc's does); progress counts shown frames.
    let records = u32::from_le_bytes(ivf[24..28].try_into().unwrap()) as u64;
    assert!(records >= 24, "{records} IVF records for 24 shown frames");
    assert_eq!(
        ivf.len() as u64,
        32 + records * 12 + bytes,
        "bytes is the VP8 payload of the IVF"
    );
    for p in &json[..json.len() - 1] {
        assert_eq!(p["event"], "progress");
        assert!(p["frames"].as_u64().unwrap() <= 24);
        assert!(p["q"].as_u64().is_some());
    }

    // stderr is a pipe here, so the default is plain lines, the last
    // saying done.
    let o = encode(&out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no progress line: {err}"));
    assert!(
        last.contains("24/24 frames") && last.ends_with(", done"),
        "{last}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no escape codes off a terminal: {err:?}"
    );

    for quiet in [&["--quiet"][..], &["--progress", "none"]] {
        let o = encode(&out, quiet);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.lines()
                .any(|l| l.starts_with('[') || l.starts_with('{')),
            "{quiet:?}: {err}"
        );
    }
}

#[test]
fn local_pipeline_json() {
    let dir = scratch("progress-pipeline");
    // From a file to a file, local workers run on the job runtime: its
    // task counts.
    let out = dir.join("out.ivf");
    let o = encode(&out, &["--workers", "2", "--progress", "json"]);
    let (json, _) = json_lines(&o.stderr);
    let last = json.last().expect("JSON lines");
    assert_eq!(last["event"], "done");
    assert_eq!(last["chunks"], 6);
    assert_eq!(last["chunks_done"], 6);
    assert_eq!(last["running"], 0);
    assert_eq!(last["queued"], 0);

    // To standard output, the in-memory pipeline: its phases.
    let mut a: Vec<String> = common_args(&out)
        .into_iter()
        .filter(|a| a != "--quiet")
        .collect();
    let o_at = a.iter().position(|a| a == "-o").unwrap();
    a[o_at + 1] = "-".into();
    a.extend(["--workers", "2", "--progress", "json"].map(String::from));
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A pipe keeps the IVF header's frame count at 0; the frames match.
    let file = std::fs::read(&out).unwrap();
    assert_eq!(
        o.stdout[32..],
        file[32..],
        "same frames through the pipeline and the runtime"
    );
    let (json, _) = json_lines(&o.stderr);
    let last = json.last().expect("JSON lines");
    assert_eq!(last["event"], "done");
    assert_eq!(last["chunks"], 6);
    let phases = last["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3);
    // Every chunk passes every phase (a group's head trivially).
    for p in phases {
        assert_eq!(p["done"], 6, "{p}");
    }
}

#[test]
fn processes_backend_json_counts_tasks_and_dollars() {
    let Some(worker) = worker_bin() else { return };
    let _g = serial();
    let dir = scratch("progress-processes");
    let out = dir.join("out.ivf");
    let mut a: Vec<String> = processes_args(&dir, &out, &worker)
        .into_iter()
        .filter(|a| a != "--quiet")
        .collect();
    a.extend(["--progress".into(), "json".into()]);
    let o = excam(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (json, _) = json_lines(&o.stderr);
    let last = json.last().expect("JSON lines");
    assert_eq!(last["event"], "done");
    assert_eq!(last["chunks_done"], 6);
    assert_eq!(last["chunks"], 6);
    assert_eq!(last["queued"], 0);
    for k in ["running", "retried", "twins"] {
        assert!(last[k].as_u64().is_some(), "{k}");
    }
    // The same cost model as the report: close to its estimate.
    let usd = last["usd"].as_f64().unwrap();
    let rep = report(&dir);
    let est = rep["totals"]["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!(usd > 0.0, "{usd}");
    assert!(
        (usd - est).abs() <= est * 0.5,
        "progress ${usd} vs report ${est}"
    );
}
