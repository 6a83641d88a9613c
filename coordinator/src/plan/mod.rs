//! The planner: how long an ExCamera\[N,x\] job will take and what it will
//! cost, before running it.
//!
//! The inputs are a [`JobShape`] (frame size and count, N, x, workers), a
//! [`Calibration`] of the codec measured on this machine (`excam
//! calibrate`) and the [`CloudParams`] of where it will run (defaults with
//! their sources in `cloud_params.toml`). [`plan_job`] turns them into a
//! [`Plan`] by running the discrete-event simulation of [`sim`] over a few
//! seeds. `excam encode --dry-run` and `--max-cost` use [`plan_job`] and
//! [`check_max_cost`] before touching any cloud service.

pub mod calibrate;
pub mod cloud;
pub mod plot;
pub mod report;
pub mod sim;
pub mod sweep;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use excam_codec::container::y4m::Y4mReader;
use excam_codec::image::i420_len;
use serde::Serialize;

pub use calibrate::{load_calibration, Calibration, CalibrationError, CalibrationFileError};
pub use cloud::{CloudParams, ParamError};
pub use sim::{Cat, PathStep, RunResult, SimParams};

/// The shape of a job: what the plan depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct JobShape {
    /// Luma width in pixels.
    pub width: usize,
    /// Luma height in pixels.
    pub height: usize,
    /// Frames in the video.
    pub frames: usize,
    /// N: frames per chunk.
    pub chunk_frames: usize,
    /// x: chunks per group.
    pub group_chunks: usize,
    /// Workers running at once (further capped by `max_concurrency`).
    pub workers: usize,
}

impl JobShape {
    /// Chunks (= tasks).
    pub fn chunks(&self) -> usize {
        self.frames.div_ceil(self.chunk_frames.max(1))
    }

    /// Groups (independent phase-3 chains).
    pub fn groups(&self) -> usize {
        self.chunks().div_ceil(self.group_chunks.max(1))
    }

    /// Checks every field is usable.
    ///
    /// # Errors
    /// The first field that is zero or too large.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("width", self.width),
            ("height", self.height),
            ("frames", self.frames),
            ("chunk-frames", self.chunk_frames),
            ("group-chunks", self.group_chunks),
            ("workers", self.workers),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.width > 16383 || self.height > 16383 {
            return Err(format!(
                "{}x{} is larger than VP8's 16383x16383",
                self.width, self.height
            ));
        }
        if self.frames > 100_000_000 {
            return Err(format!(
                "{} frames is more than the planner handles",
                self.frames
            ));
        }
        Ok(())
    }

    /// Reads width, height and frame count from a Y4M file's header and
    /// length (each frame is a `FRAME` line plus its I420 samples).
    ///
    /// # Errors
    /// Unreadable file or header.
    pub fn from_y4m(
        path: &Path,
        chunk_frames: usize,
        group_chunks: usize,
        workers: Option<usize>,
    ) -> Result<JobShape, ShapeError> {
        let file = std::fs::File::open(path).map_err(|source| ShapeError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let len = file.metadata()?.len();
        let mut r = BufReader::new(file);
        let mut first = Vec::new();
        r.read_until(b'\n', &mut first)?;
        let hdr = *Y4mReader::new(&first[..])
            .map_err(|source| ShapeError::NotY4m {
                path: path.to_path_buf(),
                source,
            })?
            .header();
        let frame = i420_len(hdr.width, hdr.height) as u64 + 6;
        let frames = (len.saturating_sub(first.len() as u64) / frame) as usize;
        if frames == 0 {
            return Err(ShapeError::NoFrame(path.to_path_buf()));
        }
        let chunks = frames.div_ceil(chunk_frames.max(1));
        Ok(JobShape {
            width: hdr.width,
            height: hdr.height,
            frames,
            chunk_frames,
            group_chunks,
            workers: workers.unwrap_or(chunks),
        })
    }
}

/// How many simulations a plan averages, and from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// First seed.
    pub seed: u64,
    /// Simulations (seeds `seed..seed + runs`).
    pub runs: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { seed: 1, runs: 5 }
    }
}

/// Critical-path seconds per category; they add up to the wall time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Input upload by the coordinator.
    pub upload: f64,
    /// Waiting to be invoked (ramp-up, concurrency cap).
    pub queue: f64,
    /// Worker start-up.
    pub startup: f64,
    /// Fetching frames.
    pub fetch: f64,
    /// Phase 1.
    pub encode: f64,
    /// Phase 2.
    pub given_state: f64,
    /// Phase 3 coding (the serial chain's compute).
    pub rebase: f64,
    /// State hops: serialize, relay, deserialize.
    pub relay: f64,
    /// Waiting for retries and twins.
    pub retry: f64,
    /// Writing chunks.
    pub output: f64,
    /// Assembling the output.
    pub assembly: f64,
}

impl Phases {
    fn from_array(a: &[f64; 11]) -> Phases {
        Phases {
            upload: a[0],
            queue: a[1],
            startup: a[2],
            fetch: a[3],
            encode: a[4],
            given_state: a[5],
            rebase: a[6],
            relay: a[7],
            retry: a[8],
            output: a[9],
            assembly: a[10],
        }
    }

    /// (name, seconds) in job order.
    pub fn entries(&self) -> [(&'static str, f64); 11] {
        [
            ("upload", self.upload),
            ("queue", self.queue),
            ("startup", self.startup),
            ("fetch", self.fetch),
            ("encode", self.encode),
            ("given_state", self.given_state),
            ("rebase", self.rebase),
            ("relay", self.relay),
            ("retry", self.retry),
            ("output", self.output),
            ("assembly", self.assembly),
        ]
    }

    /// The category with the most seconds.
    pub fn dominant(&self) -> (&'static str, f64) {
        self.entries()
            .into_iter()
            .fold(("", -1.0), |b, e| if e.1 > b.1 { e } else { b })
    }
}

/// When the last chunk finished each phase (mean over runs).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseEnds {
    /// Phase 1.
    pub encode: f64,
    /// Phase 2.
    pub given_state: f64,
    /// Phase 3.
    pub rebase: f64,
    /// Every chunk written.
    pub written: f64,
}

/// Where the money goes, USD.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostBreakdown {
    /// Lambda GB-seconds.
    pub lambda_compute: f64,
    /// Lambda requests.
    pub lambda_requests: f64,
    /// S3 GETs and PUTs.
    pub s3_requests: f64,
    /// The relay server.
    pub relay: f64,
}

/// Cost of one task's work without waiting, seconds on one worker.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TaskCosts {
    /// Phase 1 of a full chunk.
    pub encode: f64,
    /// Phase 2 (or 3) of a full chunk.
    pub given_state: f64,
    /// One hop: serialize, relay, deserialize.
    pub hop: f64,
    /// Fetching a chunk's frames.
    pub fetch: f64,
}

/// A predicted job: means over the simulated runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The job.
    pub shape: JobShape,
    /// Chunks.
    pub chunks: usize,
    /// Groups.
    pub groups: usize,
    /// Simulations averaged.
    pub runs: usize,
    /// First seed.
    pub seed: u64,
    /// Expected wall time, seconds.
    pub wall_s: f64,
    /// Fastest run.
    pub wall_s_min: f64,
    /// Slowest run.
    pub wall_s_max: f64,
    /// Critical-path seconds per category (sums to `wall_s`).
    pub phases: Phases,
    /// When the last chunk finished each phase.
    pub phase_end_s: PhaseEnds,
    /// The critical path of the first run.
    pub critical_path: Vec<PathStep>,
    /// Seconds of every attempt of every worker.
    pub worker_seconds: f64,
    /// Worker-seconds times memory in GB.
    pub gb_seconds: f64,
    /// Lambda invocations (attempts).
    pub lambda_requests: f64,
    /// Retries after failures.
    pub retries: f64,
    /// Speculative twins.
    pub twins: f64,
    /// Predicted cost, USD.
    pub cost_usd: f64,
    /// Its parts.
    pub cost: CostBreakdown,
    /// State bytes through the relay.
    pub relay_bytes: f64,
    /// Most state bytes the relay holds at once.
    pub peak_relay_bytes: f64,
    /// How states travel in this plan: "relay" (and the store) or "store".
    pub channel: &'static str,
    /// With `state_channel` 0, the wall time of the channel not taken.
    pub other_channel_wall_s: Option<f64>,
    /// Delivered bytes per second the relays can move.
    pub relay_capacity_bytes_s: f64,
    /// Bytes the relays hold at most for the job.
    pub relay_memory_bytes: f64,
    /// Relay bytes / (capacity x the time states were moving): above 1
    /// the relays cannot keep up.
    pub relay_utilisation: f64,
    /// Seconds the relay's capacity slowed hops below a connection's speed.
    pub relay_saturated_s: f64,
    /// Hand-offs whose state came by the store.
    pub store_hops: f64,
    /// Hand-offs in the job.
    pub hops: f64,
    /// Planned for arm64 workers.
    pub arm64: bool,
    /// S3 GETs.
    pub s3_gets: f64,
    /// S3 PUTs.
    pub s3_puts: f64,
    /// Worker speed relative to the calibrating machine.
    pub worker_speed: f64,
    /// Worker memory, MB.
    pub memory_mb: f64,
    /// Bytes of one state on the wire.
    pub state_bytes: f64,
    /// One task's work, seconds.
    pub task: TaskCosts,
    /// Probability some task exhausts `max_attempts`.
    pub p_job_failure: f64,
}

/// A shape the planner cannot plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

/// Turns a job, a calibration and cloud parameters into simulation inputs.
///
/// # Errors
/// A bad shape or calibration.
pub fn sim_params(
    shape: &JobShape,
    cal: &Calibration,
    cloud: &CloudParams,
) -> Result<SimParams, PlanError> {
    shape.validate().map_err(PlanError)?;
    cal.validate().map_err(|e| PlanError(e.0))?;
    let px = (shape.width * shape.height) as f64;
    let mpx = px / 1e6;
    let raw_mb = cal.state_raw_bytes_per_px * px / 1e6;
    let in_frame = i420_len(shape.width, shape.height) as f64;
    let mut concurrency = if cloud.max_concurrency >= 1.0 {
        shape.workers.min(cloud.max_concurrency as usize)
    } else {
        shape.workers
    };
    concurrency = concurrency.min(cloud.account_concurrency.max(1.0) as usize);
    let upload_s = if cloud.upload_input > 0.0 {
        cloud.s3_latency_s
            + shape.frames as f64 * in_frame / (cloud.coordinator_throughput_mb_s * 1e6)
    } else {
        0.0
    };
    Ok(SimParams {
        frames: shape.frames,
        chunk_frames: shape.chunk_frames,
        group_chunks: shape.group_chunks,
        concurrency,
        scale_step: cloud.lambda_scale_step,
        scale_period: cloud.lambda_scale_period_s,
        invoke_rate: cloud.invoke_rate_per_s,
        position_major: cloud.launch_order == 1.0,
        speed: cloud.worker_speed(),
        cores: cloud.machine_cores,
        cold_median: cloud.cold_start_s,
        cold_sigma: cloud.cold_start_sigma,
        task_cpu: cloud.task_cpu_s,
        phase_cpu: cloud.phase_cpu_s,
        finish: cloud.finish_s,
        frame_work: [
            cal.encode_s_per_mpx * mpx,
            cal.encode_given_state_s_per_mpx * mpx,
            cal.rebase_s_per_mpx * mpx,
        ],
        ser_work: raw_mb * (cal.serialize_s_per_mb + cal.compress_s_per_mb),
        deser_work: raw_mb * cal.decompress_s_per_mb,
        relay_latency: cloud.relay_latency_s,
        state_bytes: cal.state_wire_bytes_per_px * px,
        relay_bw: cloud.relay_throughput_mb_s * 1e6,
        use_relay: cloud.state_channel != 2.0,
        relay_capacity: cloud.relay_capacity_bytes_s(),
        relay_memory: cloud.relays * cloud.relay_memory_mb * 1e6,
        relay_slots: (cloud.relays * cloud.relay_max_connections) as usize,
        store_poll: cloud.store_poll_s,
        s3_latency: cloud.s3_latency_s,
        s3_bw: cloud.s3_throughput_mb_s * 1e6,
        in_frame_bytes: in_frame,
        out_frame_bytes: cal.output_bytes_per_px * px,
        upload_s,
        coord_bw: cloud.coordinator_throughput_mb_s * 1e6,
        assembly_parallelism: cloud.assembly_parallelism.max(1.0) as usize,
        write_bw: cloud.output_write_mb_s * 1e6,
        output_in_s3: cloud.output_in_s3 > 0.0,
        s3_min_part: cloud.s3_min_part_mb * (1 << 20) as f64,
        straggler_prob: cloud.straggler_prob,
        straggler_alpha: cloud.straggler_alpha,
        straggler_max: cloud.straggler_max_factor,
        failure_prob: cloud.failure_prob,
        retry_delay: cloud.retry_delay_s,
        speculation: cloud.speculation > 0.0,
        speculation_factor: cloud.speculation_factor,
        speculation_min_finished: cloud.speculation_min_finished as usize,
        speculation_floor: cloud.speculation_floor_s,
        chain_tail_twins: cloud.twin_chain_tails > 0.0,
        speculation_tail_floor: cloud.speculation_tail_floor_s,
    })
}

/// Plans `shape` with the default [`PlanOptions`] (5 seeded runs): the
/// function `excam encode --dry-run` calls.
///
/// # Errors
/// A zero or oversized field of `shape`, or an invalid calibration.
pub fn plan_job(
    shape: &JobShape,
    cal: &Calibration,
    cloud: &CloudParams,
) -> Result<Plan, PlanError> {
    plan_job_with(shape, cal, cloud, &PlanOptions::default())
}

/// [`plan_job`] with explicit seeds.
///
/// # Errors
/// As [`plan_job`].
pub fn plan_job_with(
    shape: &JobShape,
    cal: &Calibration,
    cloud: &CloudParams,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let mut p = sim_params(shape, cal, cloud)?;
    let simulate = |p: &SimParams| -> Vec<RunResult> {
        (0..opts.runs.max(1) as u64)
            .map(|k| sim::simulate(p, opts.seed.wrapping_add(k)))
            .collect()
    };
    let mean_wall = |r: &[RunResult]| r.iter().map(|r| r.wall_s).sum::<f64>() / r.len() as f64;
    let mut runs = simulate(&p);
    // state_channel 0: plan the store alone too, keep the faster.
    let mut other_channel_wall_s = None;
    if cloud.state_channel == 0.0 {
        let mut q = p.clone();
        q.use_relay = false;
        let store_runs = simulate(&q);
        let (a, b) = (mean_wall(&runs), mean_wall(&store_runs));
        // Equal times (every hop by the store anyway): no relay needed.
        if b <= a {
            other_channel_wall_s = Some(a);
            runs = store_runs;
            p = q;
        } else {
            other_channel_wall_s = Some(b);
        }
    }
    let n = runs.len() as f64;
    let mean = |f: &dyn Fn(&RunResult) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let mut breakdown = [0.0; 11];
    for r in &runs {
        for (b, x) in breakdown.iter_mut().zip(r.breakdown) {
            *b += x / n;
        }
    }
    let memory_gb = cloud.lambda_memory_mb / 1024.0;
    let worker_seconds = mean(&|r| r.worker_seconds);
    let gb_seconds = worker_seconds * memory_gb;
    let lambda_requests = mean(&|r| r.attempts as f64);
    let s3_gets = mean(&|r| r.s3_gets as f64);
    let upload_parts = if cloud.upload_input > 0.0 {
        (shape.frames as f64 * p.in_frame_bytes / 16e6).ceil()
    } else {
        0.0
    };
    let s3_puts = mean(&|r| r.s3_puts as f64) + upload_parts;
    let wall_s = mean(&|r| r.wall_s);
    let cost = CostBreakdown {
        lambda_compute: gb_seconds * cloud.price_gb_s_now(),
        lambda_requests: lambda_requests * cloud.price_per_request,
        s3_requests: s3_gets * cloud.price_s3_get + s3_puts * cloud.price_s3_put,
        relay: wall_s / 3600.0 * cloud.relay_usd_per_hour,
    };
    let cost_usd = cost.lambda_compute + cost.lambda_requests + cost.s3_requests + cost.relay;
    let nf = shape.chunk_frames.min(shape.frames) as f64;
    let task = TaskCosts {
        encode: nf * p.frame_work[0] / p.speed,
        given_state: (p.frame_work[1] + (nf - 1.0) * p.frame_work[2]) / p.speed,
        hop: (p.ser_work + p.deser_work) / p.speed
            + if p.use_relay {
                p.relay_latency + p.state_bytes / p.relay_bw
            } else {
                2.0 * (p.s3_latency + p.state_bytes / p.s3_bw) + p.store_poll
            },
        fetch: p.s3_latency + nf * p.in_frame_bytes / p.s3_bw,
    };
    let chunks = shape.chunks();
    let q = cloud.failure_prob.powf(cloud.max_attempts.max(1.0));
    Ok(Plan {
        shape: *shape,
        chunks,
        groups: shape.groups(),
        runs: runs.len(),
        seed: opts.seed,
        wall_s,
        wall_s_min: runs.iter().map(|r| r.wall_s).fold(f64::INFINITY, f64::min),
        wall_s_max: runs.iter().map(|r| r.wall_s).fold(0.0, f64::max),
        phases: Phases::from_array(&breakdown),
        phase_end_s: PhaseEnds {
            encode: mean(&|r| r.phase_end_s[0]),
            given_state: mean(&|r| r.phase_end_s[1]),
            rebase: mean(&|r| r.phase_end_s[2]),
            written: mean(&|r| r.phase_end_s[3]),
        },
        critical_path: runs[0].critical_path.clone(),
        worker_seconds,
        gb_seconds,
        lambda_requests,
        retries: mean(&|r| r.retries as f64),
        twins: mean(&|r| r.twins as f64),
        cost_usd,
        cost,
        relay_bytes: mean(&|r| r.relay_bytes),
        peak_relay_bytes: mean(&|r| r.peak_relay_bytes),
        channel: if p.use_relay { "relay" } else { "store" },
        other_channel_wall_s,
        relay_capacity_bytes_s: p.relay_capacity,
        relay_memory_bytes: p.relay_memory,
        relay_utilisation: mean(&|r| r.relay_utilisation),
        relay_saturated_s: mean(&|r| r.relay_saturated_s),
        store_hops: mean(&|r| r.store_hops as f64),
        hops: 2.0 * (chunks - shape.groups().min(chunks)) as f64,
        arm64: cloud.arm64 > 0.0,
        s3_gets,
        s3_puts,
        worker_speed: p.speed,
        memory_mb: cloud.lambda_memory_mb,
        state_bytes: p.state_bytes,
        task,
        p_job_failure: 1.0 - (1.0 - q).powf(chunks as f64),
    })
}

/// Refuses a plan predicted to cost more than `max_usd`: what `excam
/// encode --max-cost` checks before launching anything.
///
/// # Errors
/// A message giving the predicted cost, the limit and the largest parts.
pub fn check_max_cost(plan: &Plan, max_usd: f64) -> Result<(), String> {
    if !max_usd.is_finite() || max_usd < 0.0 {
        return Err(format!("--max-cost {max_usd} is not a non-negative amount"));
    }
    if plan.cost_usd > max_usd {
        return Err(format!(
            "predicted cost ${:.4} exceeds --max-cost ${max_usd:.4} (Lambda compute ${:.4} for {:.0} GB-s, requests ${:.4}, S3 ${:.4}); not launching",
            plan.cost_usd,
            plan.cost.lambda_compute,
            plan.gb_seconds,
            plan.cost.lambda_requests,
            plan.cost.s3_requests
        ));
    }
    Ok(())
}

fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// A human-readable plan, as `excam plan` and `excam encode --dry-run`
/// print it.
pub fn render(plan: &Plan) -> String {
    let s = &plan.shape;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "ExCamera[{},{}] {}x{} x {} frames: {} chunks in {} groups, {} workers ({} MB, speed {:.2}x this machine)",
        s.chunk_frames,
        s.group_chunks,
        s.width,
        s.height,
        s.frames,
        plan.chunks,
        plan.groups,
        s.workers,
        plan.memory_mb,
        plan.worker_speed
    );
    let _ = writeln!(
        o,
        "predicted wall time  {:.2} s  (over {} runs: {:.2} .. {:.2} s)",
        plan.wall_s, plan.runs, plan.wall_s_min, plan.wall_s_max
    );
    let _ = writeln!(o, "critical path by phase:");
    for (name, v) in plan.phases.entries() {
        if v > 0.0005 {
            let _ = writeln!(
                o,
                "  {name:<12} {v:>9.3} s  {:>5.1}%",
                100.0 * v / plan.wall_s
            );
        }
    }
    let e = &plan.phase_end_s;
    let _ = writeln!(
        o,
        "last chunk done with  phase 1 at {:.2} s, phase 2 at {:.2} s, phase 3 at {:.2} s, written at {:.2} s",
        e.encode, e.given_state, e.rebase, e.written
    );
    let _ = writeln!(
        o,
        "one task: phase 1 {:.3} s, phase 2/3 {:.3} s each, hop {:.3} s, fetch {:.3} s",
        plan.task.encode, plan.task.given_state, plan.task.hop, plan.task.fetch
    );
    let chain: Vec<usize> = {
        let mut v: Vec<usize> = plan.critical_path.iter().filter_map(|p| p.chunk).collect();
        v.dedup();
        v
    };
    let shown = if chain.len() > 12 {
        format!(
            "{} .. {} ({} chunks)",
            chain[..3]
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" -> "),
            chain[chain.len() - 3..]
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" -> "),
            chain.len()
        )
    } else {
        chain
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let _ = writeln!(o, "critical chain (run 1): chunk {shown}");
    let _ = writeln!(
        o,
        "worker-seconds {:.1}, GB-seconds {:.1}, {:.0} invocations ({:.1} retries, {:.1} twins)",
        plan.worker_seconds, plan.gb_seconds, plan.lambda_requests, plan.retries, plan.twins
    );
    let _ = writeln!(
        o,
        "cost ${:.4}  (compute ${:.4}, requests ${:.4}, S3 ${:.4}, relay ${:.4})",
        plan.cost_usd,
        plan.cost.lambda_compute,
        plan.cost.lambda_requests,
        plan.cost.s3_requests,
        plan.cost.relay
    );
    let other = match plan.other_channel_wall_s {
        Some(w) => format!(
            " (the {} would take {w:.2} s)",
            if plan.channel == "relay" {
                "store alone"
            } else {
                "relay"
            }
        ),
        None => String::new(),
    };
    let _ = writeln!(
        o,
        "states by {}{other}: {} per state, {:.0} of {:.0} hops by the store",
        if plan.channel == "relay" {
            "the relay and the store"
        } else {
            "the store alone (--relay none)"
        },
        bytes(plan.state_bytes),
        plan.store_hops,
        plan.hops
    );
    if plan.channel == "relay" {
        let _ = writeln!(
            o,
            "relay {} in total at {}/s capacity: utilisation {:.0}%, saturated {:.1} s; peak held {} of {}",
            bytes(plan.relay_bytes),
            bytes(plan.relay_capacity_bytes_s),
            100.0 * plan.relay_utilisation,
            plan.relay_saturated_s,
            bytes(plan.peak_relay_bytes),
            bytes(plan.relay_memory_bytes)
        );
    }
    let _ = writeln!(
        o,
        "S3 {:.0} GETs, {:.0} PUTs{}",
        plan.s3_gets,
        plan.s3_puts,
        if plan.arm64 { "; arm64 workers" } else { "" }
    );
    if plan.p_job_failure > 1e-6 {
        let _ = writeln!(
            o,
            "probability some chunk exhausts its attempts: {:.2e}",
            plan.p_job_failure
        );
    }
    o
}

/// Why a job's shape cannot be read from a Y4M file.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// The file cannot be opened.
    #[error("cannot open {}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Its header is not a Y4M header excam reads.
    #[error("cannot read {} as Y4M", .path.display())]
    NotY4m {
        /// The file.
        path: PathBuf,
        /// What the Y4M reader found.
        #[source]
        source: excam_codec::container::y4m::Y4mError,
    },
    /// It is shorter than one frame.
    #[error("{} holds no whole frame", .0.display())]
    NoFrame(PathBuf),
}
