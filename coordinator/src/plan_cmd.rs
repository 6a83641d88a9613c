//! `excam plan`: predicts the wall time and cost of an ExCamera\[N,x\] job
//! without running it (see [`excam_coordinator::plan`]).

use std::path::PathBuf;

use anyhow::{bail, Context};
use excam_coordinator::plan::{
    self, check_max_cost, plan_job_with, plot::plot_sweep, render, report, sweep::sweep,
    CloudParams, JobShape, PlanOptions,
};

/// Long help of `excam plan`.
pub const LONG_ABOUT: &str = "\
Predict how long an ExCamera[N,x] encode takes and what it costs, by a \
discrete-event simulation of its schedule: worker start-up, frame fetch, \
phases 1 and 2 in parallel, the serial phase-3 chain of each group with its \
relay hops, stragglers, retries, speculative twins and output assembly.

The codec's speed comes from a calibration of this machine (`excam \
calibrate`, or a built-in one); the cloud's from cloud parameters whose \
defaults and sources are listed by `excam plan --list-params`. The result is \
the mean over --runs seeded simulations.

Give the job as --width/--height/--frames or as a Y4M file.";

/// Which cloud parameter set to start from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// AWS Lambda (the embedded cloud_params.toml).
    Lambda,
    /// This machine running the processes backend: workers share its cores.
    Local,
}

/// Arguments of `excam plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// A Y4M file to take width, height and frame count from (instead of
    /// --width, --height and --frames).
    pub input: Option<PathBuf>,
    /// Frame width in pixels.
    #[arg(long, required_unless_present_any = ["input", "list_params"])]
    pub width: Option<usize>,
    /// Frame height in pixels.
    #[arg(long, required_unless_present_any = ["input", "list_params"])]
    pub height: Option<usize>,
    /// Frames in the video.
    #[arg(long, required_unless_present_any = ["input", "list_params"])]
    pub frames: Option<usize>,
    /// Workers running at once [default: one per chunk].
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// ExCamera N: frames per chunk, i.e. per worker.
    #[arg(long, default_value_t = 6)]
    pub chunk_frames: usize,
    /// ExCamera x: chunks per group; each group starts with a key frame and
    /// runs its phase-3 chain serially.
    #[arg(long, default_value_t = 16)]
    pub group_chunks: usize,
    /// Memory of each Lambda worker in MB (CPU share grows with it: one
    /// vCPU per 1769 MB) [default: the cloud parameters' lambda_memory_mb].
    #[arg(long)]
    pub lambda_memory: Option<u32>,
    /// Calibration file written by `excam calibrate` [default: a built-in
    /// calibration of the development machine].
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Start from these cloud parameters: lambda or local.
    #[arg(long, value_enum, default_value_t = Profile::Lambda)]
    pub profile: Profile,
    /// A file of `key = value` cloud parameters laid over the profile.
    #[arg(long)]
    pub cloud: Option<PathBuf>,
    /// Override one cloud parameter (repeatable), e.g. `--set
    /// straggler_prob=0.05`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A runtime `--report` JSON of a real run: its measured start-up,
    /// hop latency, straggling and worker speed replace the parameters'
    /// (with --profile local: its hop latency, and from a single-worker run
    /// the fixed per-task, per-phase and wrap-up costs) (repeatable;
    /// applied after --cloud, before --set).
    #[arg(long)]
    pub report: Vec<PathBuf>,
    /// Seed of the first simulation (same seed, same plan).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulations to average.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub runs: u64,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Try a grid of N, x and worker counts and print the time/cost frontier.
    #[arg(long)]
    pub sweep: bool,
    /// With --sweep: write an SVG of time against cost here.
    #[arg(long, requires = "sweep")]
    pub plot: Option<PathBuf>,
    /// Fail (exit 1) if the predicted cost exceeds this many USD.
    #[arg(long)]
    pub max_cost: Option<f64>,
    /// Print the cloud parameters in effect, with their documentation, and exit.
    #[arg(long)]
    pub list_params: bool,
}

/// Builds the cloud parameters from the profile, --cloud, --report, --set
/// and --lambda-memory, in that order.
fn cloud_params(args: &PlanArgs) -> anyhow::Result<CloudParams> {
    let mut cloud = match args.profile {
        Profile::Lambda => CloudParams::default(),
        Profile::Local => {
            let mut c = CloudParams::local();
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            c.set("machine_cores", cores as f64)?;
            c
        }
    };
    if let Some(path) = &args.cloud {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        cloud.apply_text(&text, &path.display().to_string())?;
    }
    for path in &args.report {
        let r = report::RuntimeReport::load(path)?;
        let cal = plan::load_calibration(args.calibration.as_deref())?;
        let size = match (args.width, args.height, &args.input) {
            (Some(w), Some(h), _) => Some((w, h)),
            (_, _, Some(y4m)) => JobShape::from_y4m(y4m, 1, 1, None)
                .ok()
                .map(|s| (s.width, s.height)),
            _ => None,
        };
        r.apply(&mut cloud, &cal, size)
            .with_context(|| format!("{}", path.display()))?;
    }
    for s in &args.set {
        cloud.set_str(s)?;
    }
    if let Some(mb) = args.lambda_memory {
        cloud.set("lambda_memory_mb", f64::from(mb))?;
    }
    Ok(cloud)
}

/// Runs `excam plan`.
///
/// # Errors
/// Bad arguments, calibration or parameter files, or --max-cost exceeded.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let cloud = cloud_params(args)?;
    if args.list_params {
        println!(
            "{}",
            match args.profile {
                Profile::Lambda => plan::cloud::DEFAULT_PARAMS,
                Profile::Local => plan::cloud::LOCAL_PARAMS,
            }
        );
        println!("# In effect:");
        let v = serde_json::to_value(&cloud)?;
        for k in CloudParams::KEYS {
            println!("{k} = {}", v[k]);
        }
        return Ok(());
    }
    let cal = plan::load_calibration(args.calibration.as_deref())?;
    let shape = match &args.input {
        Some(path) => {
            let s = JobShape::from_y4m(path, args.chunk_frames, args.group_chunks, args.workers)?;
            if let Some(f) = args.frames {
                JobShape {
                    frames: f.min(s.frames),
                    workers: args
                        .workers
                        .unwrap_or(f.min(s.frames).div_ceil(args.chunk_frames.max(1))),
                    ..s
                }
            } else {
                s
            }
        }
        None => {
            let (Some(width), Some(height), Some(frames)) = (args.width, args.height, args.frames)
            else {
                bail!("give --width, --height and --frames, or a Y4M file");
            };
            JobShape {
                width,
                height,
                frames,
                chunk_frames: args.chunk_frames,
                group_chunks: args.group_chunks,
                workers: args
                    .workers
                    .unwrap_or_else(|| frames.div_ceil(args.chunk_frames.max(1))),
            }
        }
    };
    shape.validate().map_err(|e| anyhow::anyhow!(e))?;
    let opts = PlanOptions {
        seed: args.seed,
        runs: args.runs as usize,
    };
    if args.sweep {
        let extra: Vec<usize> = args.workers.into_iter().collect();
        let mut points = sweep(&shape, &extra, &cal, &cloud, &opts)?;
        points.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        if args.json {
            println!("{}", serde_json::to_string_pretty(&points)?);
        } else {
            println!(
                "{}x{} x {} frames: {} plans, time/cost frontier:",
                shape.width,
                shape.height,
                shape.frames,
                points.len()
            );
            println!(
                "  {:>4} {:>4} {:>8} {:>10} {:>11}",
                "N", "x", "workers", "wall s", "cost USD"
            );
            for p in points.iter().filter(|p| p.frontier) {
                println!(
                    "  {:>4} {:>4} {:>8} {:>10.2} {:>11.5}",
                    p.chunk_frames, p.group_chunks, p.workers, p.wall_s, p.cost_usd
                );
            }
        }
        if let Some(path) = &args.plot {
            let title = format!(
                "excam plan: {}x{} x {} frames",
                shape.width, shape.height, shape.frames
            );
            plot_sweep(&points, &title, path)?;
            if !args.json {
                println!("plot written to {}", path.display());
            }
        }
        return Ok(());
    }
    let plan = plan_job_with(&shape, &cal, &cloud, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    if let Some(max) = args.max_cost {
        check_max_cost(&plan, max).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(())
}
