//! Runtime `--report` files as further calibration.
//!
//! The runtime's report (schema version 1, `coordinator/src/runtime/
//! report.rs`) is read as JSON values, defensively: missing or odd fields
//! are skipped, never a panic, so a report from an older or newer runtime
//! still helps. The subset used:
//!
//! ```text
//! { "tasks": [ { "frames": 6, "winner_attempt": 1,
//!                "phases": [ { "phase": "encode" | "encode_given_state" | "rebase",
//!                              "start_s": 0.8, "seconds": 1.2, "wait_seconds": 0.0 } ],
//!                "attempts": [ { "attempt": 1, "start_s": 0.1 } ] } ],
//!   "hops": [ { "chunk": 3, "latency_s": 0.02 } ] }
//! ```
//!
//! For the cloud (each worker its own CPU): the worker speed (calibrated
//! phase-1 work over measured phase-1 seconds, for the frame size of the
//! plan), the start-up time (first phase start minus the winning attempt's
//! launch: spawn or cold start plus the frame fetch), the hop latency
//! (median of the `hops` whose receiver was waiting: the predecessor's
//! hand-off start to the decoded state) and the straggler fraction
//! (phase-1 time over twice the median).
//!
//! For workers sharing this machine's cores (`machine_cores > 0`, the
//! processes backend): the hop latency, and from a run in which no two
//! attempts overlapped, the fixed work around the codec — per task
//! (start-up and wrap-up outside the phases), per phase (phase time minus
//! the calibrated coding) and the coordinator's wrap-up after the last
//! task.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Calibration, CloudParams, ParamError};

/// Why a runtime report cannot refine a plan.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file cannot be read.
    #[error("cannot read report {}", .path.display())]
    Read {
        /// The report.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("report {} is not JSON", .path.display())]
    NotJson {
        /// The report.
        path: PathBuf,
        /// Where the JSON breaks.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON lacks what the planner reads.
    #[error("report {}", .path.display())]
    Content {
        /// The report.
        path: PathBuf,
        /// What is missing.
        #[source]
        source: Box<ReportError>,
    },
    /// No task list.
    #[error("field `tasks`: missing or not an array")]
    NoTasks,
    /// No task has phase timings.
    #[error("field `tasks`: no task has a `phases` list")]
    NoPhases,
}

/// What a report measured; `None` where it does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeReport {
    /// Frame size, if given.
    pub size: Option<(usize, usize)>,
    /// Per task: phase-1 seconds per frame.
    pub encode_s_per_frame: Vec<f64>,
    /// Per task: start-up seconds.
    pub startup_s: Vec<f64>,
    /// Measured hand-off latencies into phase 3.
    pub hop_waits_s: Vec<f64>,
    /// Per task: seconds of the winning attempt outside its phases
    /// (start-up before the first, wrap-up after the last).
    pub task_overhead_s: Vec<f64>,
    /// Per phase: (which, frames, seconds without the wait, group head).
    pub phase_s: Vec<(String, f64, f64, bool)>,
    /// Whether no two attempts ever ran at once (the per-task and
    /// per-phase overheads are then uncontended).
    pub serial: bool,
    /// Seconds from the last attempt's end to the finished output.
    pub finish_s: Option<f64>,
    /// Tasks read.
    pub tasks: usize,
}

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_f64))
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

impl RuntimeReport {
    /// Reads the subset of a report file this planner uses.
    ///
    /// # Errors
    /// Unreadable or non-JSON file, or no task list.
    pub fn load(path: &Path) -> Result<RuntimeReport, ReportError> {
        let path_buf = || path.to_path_buf();
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path_buf(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|source| ReportError::NotJson {
            path: path_buf(),
            source,
        })?;
        RuntimeReport::from_value(&v).map_err(|e| ReportError::Content {
            path: path_buf(),
            source: Box::new(e),
        })
    }

    /// Reads the subset from parsed JSON.
    ///
    /// # Errors
    /// No task list.
    pub fn from_value(v: &Value) -> Result<RuntimeReport, ReportError> {
        let tasks = ["tasks", "results", "chunks"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_array))
            .ok_or(ReportError::NoTasks)?;
        let size = match (num(v, &["width"]), num(v, &["height"])) {
            (Some(w), Some(h)) if w >= 1.0 && h >= 1.0 => Some((w as usize, h as usize)),
            _ => None,
        };
        let mut r = RuntimeReport {
            size,
            ..RuntimeReport::default()
        };
        for t in tasks {
            // A task may be an attempt list or carry its winning result.
            let t = t.get("result").unwrap_or(t);
            let Some(phases) = t.get("phases").and_then(Value::as_array) else {
                continue;
            };
            r.tasks += 1;
            let frames = num(t, &["frames"]);
            let phase = |name: &str| {
                phases.iter().find(|p| {
                    p.get("phase")
                        .and_then(Value::as_str)
                        .map(|s| s.replace('-', "_"))
                        == Some(name.to_string())
                })
            };
            let head = phase("encode_given_state").is_none();
            if let Some(f) = frames {
                for p in phases {
                    let name = p
                        .get("phase")
                        .and_then(Value::as_str)
                        .map(|s| s.replace('-', "_"));
                    let secs = num(p, &["seconds"]).unwrap_or(f64::NAN)
                        - num(p, &["wait_seconds"]).unwrap_or(0.0);
                    if let Some(name) = name {
                        if secs.is_finite() && secs >= 0.0 {
                            r.phase_s.push((name, f, secs, head));
                        }
                    }
                }
            }
            if let (Some(p), Some(f)) = (phase("encode"), frames) {
                let secs = num(p, &["seconds"]).unwrap_or(f64::NAN)
                    - num(p, &["wait_seconds"]).unwrap_or(0.0);
                if secs.is_finite() && secs > 0.0 && f >= 1.0 {
                    r.encode_s_per_frame.push(secs / f);
                }
            }
            let winner = num(t, &["winner_attempt"]);
            let won = t.get("attempts").and_then(Value::as_array).and_then(|a| {
                a.iter()
                    .find(|x| winner.is_none() || num(x, &["attempt"]) == winner)
            });
            let launch = won
                .and_then(|a| num(a, &["start_s"]))
                .or_else(|| num(t, &["invoked_s"]));
            let first = phases
                .iter()
                .filter_map(|p| num(p, &["start_s"]))
                .fold(f64::INFINITY, f64::min);
            let last_end = phases
                .iter()
                .filter_map(|p| Some(num(p, &["start_s"])? + num(p, &["seconds"])?))
                .fold(f64::NEG_INFINITY, f64::max);
            if let Some(inv) = launch {
                let s = first - inv;
                if (0.0..3600.0).contains(&s) {
                    r.startup_s.push(s);
                    if let Some(end) = won.and_then(|a| num(a, &["end_s"])) {
                        let tail = end - last_end;
                        if (0.0..3600.0).contains(&tail) {
                            r.task_overhead_s.push(s + tail);
                        }
                    }
                }
            }
        }
        // Serial: no two attempts (of any task) overlapped in time.
        let mut spans: Vec<(f64, f64)> = tasks
            .iter()
            .filter_map(|t| t.get("attempts").and_then(Value::as_array))
            .flatten()
            .filter_map(|a| Some((num(a, &["start_s"])?, num(a, &["end_s"])?)))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let last_end = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        // The output complete (streamed assembly's record), else the
        // whole run with its clean-up (older reports).
        let end = v
            .get("assembly")
            .and_then(|a| num(a, &["output_done_s"]))
            .or_else(|| num(v, &["wall_seconds"]));
        r.finish_s = end
            .map(|w| w - last_end)
            .filter(|f| (0.0..3600.0).contains(f));
        r.serial = !spans.is_empty() && spans.windows(2).all(|w| w[1].0 >= w[0].1 - 1e-3);
        for h in v
            .get("hops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // A hop whose receiver was not yet waiting measures the
            // receiver's lateness, not the hand-off.
            if h.get("waiting").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if let Some(l) = num(h, &["latency_s"]) {
                if (0.0..3600.0).contains(&l) {
                    r.hop_waits_s.push(l);
                }
            }
        }
        if r.tasks == 0 {
            return Err(ReportError::NoPhases);
        }
        Ok(r)
    }

    /// Replaces the cloud parameters the report measured.
    ///
    /// # Errors
    /// A derived value out of range (reported with the key).
    /// `size` is the frame size of the job the report is for, when the
    /// report does not say.
    pub fn apply(
        &self,
        cloud: &mut CloudParams,
        cal: &Calibration,
        size: Option<(usize, usize)>,
    ) -> Result<(), ParamError> {
        if cloud.machine_cores > 0.0 {
            return self.apply_local(cloud, cal, size);
        }
        if let (Some((w, h)), Some(m)) = (
            self.size.or(size),
            median(&mut self.encode_s_per_frame.clone()),
        ) {
            let predicted = cal.encode_s_per_mpx * (w * h) as f64 / 1e6;
            // The measured speed includes the memory-dependent CPU share;
            // lambda_vcpu_speed is per full vCPU.
            let share = cloud.vcpus().min(cloud.worker_threads) / cloud.worker_threads;
            cloud.set("lambda_vcpu_speed", predicted / m / share)?;
        }
        if let Some(m) = median(&mut self.startup_s.clone()) {
            cloud.set("cold_start_s", m.max(1e-6))?;
        }
        if let Some(m) = median(&mut self.hop_waits_s.clone()) {
            cloud.set("relay_latency_s", m)?;
        }
        if self.encode_s_per_frame.len() >= 4 {
            let mut v = self.encode_s_per_frame.clone();
            let m = median(&mut v).unwrap_or(0.0);
            let slow = v.iter().filter(|&&x| x > 2.0 * m).count();
            cloud.set("straggler_prob", (slow as f64 / v.len() as f64).min(0.5))?;
        }
        Ok(())
    }

    /// [`RuntimeReport::apply`] for workers sharing this machine's cores
    /// (the processes backend): the codec runs at the calibration's speed
    /// by definition, so what a report adds is the fixed work around it —
    /// per task (process start-up, connections, wrap-up) and per phase
    /// (checkpoint, state and chunk writes) — and the hop latency. The
    /// fixed work is read only from a report of a run in which no two
    /// attempts overlapped, where it was not slowed by sharing the cores.
    fn apply_local(
        &self,
        cloud: &mut CloudParams,
        cal: &Calibration,
        size: Option<(usize, usize)>,
    ) -> Result<(), ParamError> {
        if let Some(m) = median(&mut self.hop_waits_s.clone()) {
            cloud.set("relay_latency_s", m)?;
        }
        let Some((w, h)) = self.size.or(size) else {
            return Ok(());
        };
        if !self.serial {
            return Ok(());
        }
        let mpx = (w * h) as f64 / 1e6;
        let coding = |name: &str, f: f64, head: bool| -> f64 {
            match name {
                "encode" => f * cal.encode_s_per_mpx * mpx,
                "encode_given_state" => {
                    (cal.encode_given_state_s_per_mpx + (f - 1.0) * cal.rebase_s_per_mpx) * mpx
                }
                "rebase" if !head => f * cal.rebase_s_per_mpx * mpx,
                _ => 0.0,
            }
        };
        let mut fixed: Vec<f64> = self
            .phase_s
            .iter()
            .map(|(name, f, secs, head)| (secs - coding(name, *f, *head)).max(0.0))
            .collect();
        if let Some(m) = median(&mut fixed) {
            cloud.set("phase_cpu_s", m)?;
        }
        if let Some(f) = self.finish_s {
            cloud.set("finish_s", f)?;
        }
        if let Some(m) = median(&mut self.task_overhead_s.clone()) {
            // Start-up on one machine is work on its cores, not a wait.
            cloud.set("task_cpu_s", m)?;
            cloud.set("cold_start_s", 1e-6)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_reports_set_speed_startup_and_hops() {
        let tasks: Vec<Value> = (0..4)
            .map(|c| {
                let launch = 0.1 * c as f64;
                serde_json::json!({
                    "chunk": c, "frames": 2, "winner_attempt": 1,
                    "attempts": [{"attempt": 1, "start_s": launch}],
                    "phases": [{"phase": "encode", "start_s": launch + 0.05,
                                "seconds": 0.2, "wait_seconds": 0.0}]
                })
            })
            .collect();
        let v = serde_json::json!({
            "version": 1,
            "tasks": tasks,
            "hops": [{"chunk": 1, "latency_s": 0.02}, {"chunk": 2, "latency_s": 0.04},
                     {"chunk": 3, "latency_s": 0.03}]
        });
        let r = RuntimeReport::from_value(&v).unwrap();
        let cal = Calibration::default();
        let mut cloud = CloudParams::default();
        r.apply(&mut cloud, &cal, Some((1000, 1000))).unwrap();
        // 0.1 s per 1-Mpx frame measured against the calibration's cost.
        let want = cal.encode_s_per_mpx / 0.1;
        assert!((cloud.lambda_vcpu_speed - want).abs() < 1e-9 * want);
        assert!((cloud.cold_start_s - 0.05).abs() < 1e-9);
        assert!((cloud.relay_latency_s - 0.03).abs() < 1e-12);
        assert_eq!(cloud.straggler_prob, 0.0);
        let e = RuntimeReport::from_value(&serde_json::json!({"tasks": 3})).unwrap_err();
        assert!(format!("{e}").contains("tasks"));
    }

    #[test]
    fn serial_local_reports_set_fixed_costs_and_contended_ones_do_not() {
        let cal = Calibration::default();
        let enc = 2.0 * cal.encode_s_per_mpx;
        let tasks = |gap: f64| -> Vec<Value> {
            (0..4)
                .map(|c| {
                    let launch = gap * c as f64;
                    let p1 = launch + 0.05;
                    let p3 = p1 + enc + 0.03;
                    serde_json::json!({
                        "chunk": c, "frames": 2, "winner_attempt": 1,
                        "attempts": [{"attempt": 1, "start_s": launch,
                                      "end_s": p3 + 0.03 + 0.02}],
                        // Heads (no phase 2): their phase 3 codes nothing.
                        "phases": [
                            {"phase": "encode", "start_s": p1,
                             "seconds": enc + 0.03, "wait_seconds": 0.0},
                            {"phase": "rebase", "start_s": p3,
                             "seconds": 0.03, "wait_seconds": 0.0}]
                    })
                })
                .collect()
        };
        let serial = RuntimeReport::from_value(&serde_json::json!({"tasks": tasks(10.0)})).unwrap();
        assert!(serial.serial);
        let mut cloud = CloudParams::local();
        let speed = cloud.lambda_vcpu_speed;
        serial.apply(&mut cloud, &cal, Some((1000, 1000))).unwrap();
        assert!(
            (cloud.task_cpu_s - 0.07).abs() < 1e-9,
            "{}",
            cloud.task_cpu_s
        );
        assert!(
            (cloud.phase_cpu_s - 0.03).abs() < 1e-9,
            "{}",
            cloud.phase_cpu_s
        );
        // Same machine: the codec's speed is the calibration's.
        assert_eq!(cloud.lambda_vcpu_speed, speed);

        let overlapped =
            RuntimeReport::from_value(&serde_json::json!({"tasks": tasks(0.01)})).unwrap();
        assert!(!overlapped.serial);
        let mut cloud = CloudParams::local();
        let before = cloud.clone();
        overlapped
            .apply(&mut cloud, &cal, Some((1000, 1000)))
            .unwrap();
        assert_eq!(cloud, before);
    }
}
