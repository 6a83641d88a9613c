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
//! From it: the worker speed (calibrated phase-1 work over measured
//! phase-1 seconds, for the frame size of the plan), the start-up time
//! (first phase start minus the winning attempt's launch: spawn or cold
//! start plus the frame fetch), the hop latency (median of `hops`, which
//! runs from the predecessor's phase-3 end to the end of the wait) and the
//! straggler fraction (phase-1 time over twice the median).

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::{Calibration, CloudParams};

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
    pub fn load(path: &Path) -> anyhow::Result<RuntimeReport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read report {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("report {} is not JSON", path.display()))?;
        RuntimeReport::from_value(&v).with_context(|| format!("report {}", path.display()))
    }

    /// Reads the subset from parsed JSON.
    ///
    /// # Errors
    /// No task list.
    pub fn from_value(v: &Value) -> anyhow::Result<RuntimeReport> {
        let tasks = ["tasks", "results", "chunks"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_array))
            .context("field `tasks`: missing or not an array")?;
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
            if let (Some(p), Some(f)) = (phase("encode"), frames) {
                let secs = num(p, &["seconds"]).unwrap_or(f64::NAN)
                    - num(p, &["wait_seconds"]).unwrap_or(0.0);
                if secs.is_finite() && secs > 0.0 && f >= 1.0 {
                    r.encode_s_per_frame.push(secs / f);
                }
            }
            let winner = num(t, &["winner_attempt"]);
            let launch = t
                .get("attempts")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|x| winner.is_none() || num(x, &["attempt"]) == winner)
                })
                .and_then(|a| num(a, &["start_s"]))
                .or_else(|| num(t, &["invoked_s"]));
            let first = phases
                .iter()
                .filter_map(|p| num(p, &["start_s"]))
                .fold(f64::INFINITY, f64::min);
            if let Some(inv) = launch {
                let s = first - inv;
                if (0.0..3600.0).contains(&s) {
                    r.startup_s.push(s);
                }
            }
        }
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
        anyhow::ensure!(r.tasks > 0, "field `tasks`: no task has a `phases` list");
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
    ) -> anyhow::Result<()> {
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
        let mut cloud = CloudParams::local();
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
}
