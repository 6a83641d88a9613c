//! Runtime `--report` files as further calibration.
//!
//! The runtime's report schema belongs to the runtime; this module reads
//! only the subset below, defensively (missing fields are skipped, never a
//! panic), so a report from an older or newer runtime still helps:
//!
//! ```json
//! { "width": 640, "height": 480,              // optional: frame size
//!   "tasks": [                                // or "results" / "chunks"
//!     { "chunk": 3, "frames": 6,
//!       "invoked_s": 0.12,                     // optional: when the coordinator invoked it
//!       "twin": false,                         // optional
//!       "phases": [                            // the worker's PhaseReport
//!         { "phase": "encode", "start_unix_s": 1.7e9, "seconds": 1.2,
//!           "wait_seconds": 0.0 }, ... ] } ] }
//! ```
//!
//! From it: the worker speed (calibrated phase-1 work over measured
//! phase-1 seconds), the start-up time (first phase start minus invocation,
//! with both on one clock, i.e. `invoked_unix_s` if the coordinator gives
//! it), the hop latency (phase-3 waits of chunks whose predecessor was
//! already done with phase 3's coding, i.e. the smallest positive waits)
//! and the straggler fraction (phase-1 time over twice the median).

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
    /// Positive phase-3 waits.
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
            if let (Some(inv), Some(first)) = (
                num(t, &["invoked_unix_s", "invoked_s"]),
                phases
                    .first()
                    .and_then(|p| num(p, &["start_unix_s", "start_s"])),
            ) {
                let s = first - inv;
                if (0.0..3600.0).contains(&s) {
                    r.startup_s.push(s);
                }
            }
            if let Some(p) = phase("rebase") {
                if let Some(w) = num(p, &["wait_seconds"]) {
                    if w > 0.0 && w.is_finite() {
                        r.hop_waits_s.push(w);
                    }
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
    pub fn apply(&self, cloud: &mut CloudParams, cal: &Calibration) -> anyhow::Result<()> {
        if let (Some((w, h)), Some(m)) = (self.size, median(&mut self.encode_s_per_frame.clone())) {
            let predicted = cal.encode_s_per_mpx * (w * h) as f64 / 1e6;
            // The measured speed includes the memory-dependent CPU share;
            // lambda_vcpu_speed is per full vCPU.
            let share = cloud.vcpus().min(cloud.worker_threads) / cloud.worker_threads;
            cloud.set("lambda_vcpu_speed", predicted / m / share)?;
        }
        if let Some(m) = median(&mut self.startup_s.clone()) {
            cloud.set("cold_start_s", m.max(1e-6))?;
        }
        if !self.hop_waits_s.is_empty() {
            // The smallest waits are hops alone (no compute of the
            // predecessor behind them).
            let mut w = self.hop_waits_s.clone();
            w.sort_by(f64::total_cmp);
            let k = (w.len() / 10).max(1);
            let low = w[..k].iter().sum::<f64>() / k as f64;
            cloud.set("relay_latency_s", low)?;
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
