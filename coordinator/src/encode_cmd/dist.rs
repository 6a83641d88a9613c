//! The `excam encode` flags of the distributed runtime (`--backend`,
//! the store, the relay, retries and deadlines) and their mapping onto a
//! [`JobConfig`]'s infrastructure, policy and test hooks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use excam_coordinator::runtime::scheduler::SchedulerConfig;
use excam_coordinator::runtime::{
    default_store_dir, processes, run_job_blocking, BackendChoice, Infrastructure, JobConfig,
    JobSpec, Policy, Pricing, RelayChoice, TestHooks,
};
use excam_rendezvous::{Fingerprint, RelaySecret};
use excam_worker::chunk::Phase;
use excam_worker::task::Fault;

use super::EncodeArgs;

/// Which backend encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// Tasks in this process (the ExCamera job with --workers, or the serial encoder).
    Local,
    /// `excam-worker` processes on this machine.
    Processes,
    /// AWS Lambda invocations with an S3 store.
    Lambda,
}

/// Flags of the distributed runtime.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Cloud")]
pub struct DistArgs {
    /// Where chunks are encoded: local threads, excam-worker processes, or Lambda.
    #[arg(long, value_enum, default_value_t = BackendArg::Local)]
    pub backend: BackendArg,
    /// Lambda function to invoke (lambda backend).
    #[arg(long, default_value = "excam-worker")]
    pub function: String,
    /// S3 bucket for the input, states and chunks (lambda backend).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Store directory of the local and processes backends [default: excam-UID/store
    /// in the temp dir, private to this user (0700)].
    #[arg(long)]
    pub store_dir: Option<PathBuf>,
    /// The worker executable (processes backend) [default: excam-worker
    /// next to this excam, else this excam itself as `excam worker`].
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// Lambda memory size in MB used for the cost estimate.
    #[arg(long, default_value_t = 3008)]
    pub lambda_memory: u32,
    /// Lambda price per GB-second in USD, for the cost estimate.
    #[arg(long, default_value_t = 0.0000166667)]
    pub price_per_gb_s: f64,
    /// Lambda price per request in USD, for the cost estimate.
    #[arg(long, default_value_t = 0.0000002)]
    pub price_per_request: f64,
    /// Most tasks running at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrency: u64,
    /// Failed attempts allowed per chunk before the job fails.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tries: u32,
    /// Seconds an attempt may run before it is abandoned and retried.
    #[arg(long, default_value_t = 900.0)]
    pub task_timeout: f64,
    /// Seconds a chunk may stay throttled (Lambda's TooManyRequests) with
    /// no attempt getting through before the job fails; throttled attempts
    /// back off and do not count against --max-tries.
    #[arg(long, default_value_t = 600.0)]
    pub throttle_timeout: f64,
    /// A task running this many times its peers' median gets a speculative twin.
    #[arg(long, default_value_t = 2.0)]
    pub straggler_factor: f64,
    /// Seconds a task may always run before it counts as a straggler.
    #[arg(long, default_value_t = 5.0)]
    pub straggler_floor: f64,
    /// Reuse the verified chunks of an earlier run of the same job.
    #[arg(long)]
    pub resume: bool,
    /// Keep the job's intermediate objects (states, checkpoints, results).
    #[arg(long)]
    pub keep_intermediate: bool,
    /// MiB of finished chunks the coordinator holds while an earlier chunk
    /// is still running (the output is written in order as chunks finish);
    /// chunks past it are fetched again from the store when their turn comes.
    #[arg(long, default_value_t = 256)]
    pub assembly_memory: u64,
    /// Write a JSON report of every task and attempt here, and a timeline SVG beside it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run the embedded relay on this UDP address [default for local and processes: 127.0.0.1:0].
    #[arg(long, conflicts_with = "relay")]
    pub relay_listen: Option<SocketAddr>,
    /// host:port workers use to reach the embedded relay [default: its bound address].
    #[arg(long, requires = "relay_listen")]
    pub relay_public: Option<String>,
    /// Use the relay at this host:port (secret from $EXCAM_RELAY_SECRET).
    #[arg(long, requires = "relay_fingerprint")]
    pub relay: Option<String>,
    /// Certificate fingerprint of the --relay.
    #[arg(long, requires = "relay")]
    pub relay_fingerprint: Option<Fingerprint>,
    /// Pass states through the store alone, without a relay.
    #[arg(long, conflicts_with_all = ["relay", "relay_listen"])]
    pub no_relay: bool,
    /// Test only: `CHUNK:ATTEMPT:KIND:PHASE[:SECONDS]`, KIND one of crash, hang, error, slow,
    /// lose-state (the state handed on at the end of PHASE goes nowhere).
    #[arg(long, hide = true)]
    pub inject_fault: Vec<String>,
    /// Test only: smallest part (bytes) of an `-o s3://` output's multipart
    /// upload but the last, instead of S3's 5 MiB.
    #[arg(long, hide = true)]
    pub s3_min_part: Option<u64>,
    /// Test only: restart the embedded relay after this many chunks are done.
    #[arg(long, hide = true)]
    pub restart_relay_after: Option<usize>,
}

/// Parses an `--inject-fault` value.
fn parse_fault(s: &str) -> anyhow::Result<((usize, u32), Fault)> {
    let p: Vec<&str> = s.split(':').collect();
    if p.len() < 4 {
        bail!("--inject-fault {s:?}: want CHUNK:ATTEMPT:KIND:PHASE[:SECONDS]");
    }
    let chunk: usize = p[0].parse().context("fault chunk")?;
    let attempt: u32 = p[1].parse().context("fault attempt")?;
    let phase = match p[3] {
        "encode" | "1" => Phase::Encode,
        "given-state" | "encode_given_state" | "2" => Phase::EncodeGivenState,
        "rebase" | "3" => Phase::Rebase,
        other => bail!("unknown phase {other:?}"),
    };
    let fault = match p[2] {
        "crash" => Fault::Crash { phase },
        "hang" => Fault::Hang { phase },
        "error" => Fault::Error { phase },
        "lose-state" => Fault::LoseState { phase },
        "slow" => Fault::Slow {
            phase,
            seconds: p.get(4).context("slow needs SECONDS")?.parse()?,
        },
        other => bail!("unknown fault {other:?}"),
    };
    Ok(((chunk, attempt), fault))
}

/// The job `job` with the runtime flags of `args` (`--backend`, the
/// store, the relay, retries, deadlines, test faults).
///
/// # Errors
/// Inconsistent flags.
pub(super) fn job_config(job: JobSpec, args: &EncodeArgs) -> anyhow::Result<JobConfig> {
    let d = &args.dist;
    let local = d.backend == BackendArg::Local;
    if job.skip > 0 && !local {
        bail!("--skip is supported by the local backend only (yet)");
    }
    if args.psnr && !local {
        bail!("--psnr is computed by the local backend only (yet)");
    }

    if args.input.as_os_str() == "-" {
        bail!("the distributed backends need a file or s3:// input, not standard input");
    }
    let mut max_concurrency = d.max_concurrency as usize;
    let workers = args.workers.map(|w| w as usize);
    let backend = match d.backend {
        BackendArg::Local => {
            if let Some(w) = workers {
                max_concurrency = max_concurrency.min(w);
            }
            BackendChoice::Local {
                store_dir: match &d.store_dir {
                    Some(dir) => dir.clone(),
                    None => default_store_dir()?,
                },
            }
        }
        BackendArg::Processes => {
            if let Some(w) = workers {
                max_concurrency = max_concurrency.min(w);
            }
            let (worker_bin, worker_args) = worker_command(d.worker_bin.as_ref())?;
            BackendChoice::Processes {
                worker_bin,
                worker_args,
                store_dir: match &d.store_dir {
                    Some(dir) => dir.clone(),
                    None => default_store_dir()?,
                },
            }
        }
        BackendArg::Lambda => BackendChoice::Lambda {
            function: d.function.clone(),
            bucket: d
                .bucket
                .clone()
                .context("--backend lambda needs --bucket")?,
            prefix: d.prefix.clone(),
        },
    };
    let relay = if d.no_relay {
        RelayChoice::None
    } else if let (Some(addr), Some(fp)) = (&d.relay, &d.relay_fingerprint) {
        let secret = RelaySecret::from_env()?
            .context("--relay needs the relay's secret in $EXCAM_RELAY_SECRET")?;
        RelayChoice::External {
            addr: addr.clone(),
            fingerprint: *fp,
            secret,
        }
    } else if let Some(listen) = d.relay_listen {
        RelayChoice::Embedded {
            listen,
            public: d.relay_public.clone(),
        }
    } else if d.backend != BackendArg::Lambda {
        RelayChoice::Embedded {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            public: None,
        }
    } else {
        // Lambda workers cannot reach a loopback relay.
        RelayChoice::None
    };
    let faults: HashMap<(usize, u32), Fault> = d
        .inject_fault
        .iter()
        .map(|s| parse_fault(s))
        .collect::<anyhow::Result<_>>()?;
    if !(d.task_timeout > 0.0
        && d.throttle_timeout > 0.0
        && d.straggler_factor > 0.0
        && d.straggler_floor >= 0.0)
    {
        bail!("--task-timeout, --throttle-timeout and --straggler-factor must be positive, --straggler-floor not negative");
    }
    Ok(JobConfig {
        job,
        infra: Infrastructure {
            backend,
            relay,
            pricing: Pricing {
                lambda_memory_mb: d.lambda_memory,
                price_per_gb_s: d.price_per_gb_s,
                price_per_request: d.price_per_request,
            },
        },
        policy: Policy {
            scheduler: SchedulerConfig {
                max_concurrency,
                max_tries: d.max_tries,
                task_timeout: Duration::from_secs_f64(d.task_timeout),
                throttle_timeout: Duration::from_secs_f64(d.throttle_timeout),
                straggler_factor: d.straggler_factor,
                straggler_floor: Duration::from_secs_f64(d.straggler_floor),
                ..SchedulerConfig::default()
            },
            resume: d.resume,
            keep_intermediate: d.keep_intermediate,
            assembly_hold_bytes: Some(d.assembly_memory.saturating_mul(1 << 20)),
            s3_min_part_bytes: d.s3_min_part,
        },
        hooks: TestHooks {
            faults,
            restart_relay_after: d.restart_relay_after,
        },
    })
}

/// Runs `excam encode --backend processes|lambda`: the job and the
/// summary line.
///
/// # Errors
/// As [`run_job_blocking`].
pub(super) fn run_distributed(cfg: JobConfig) -> anyhow::Result<()> {
    let quiet = cfg.job.quiet;
    let output = cfg.job.output.clone();
    let out = run_job_blocking(cfg)?;
    if !quiet {
        let t = &out.report.totals;
        eprintln!(
            "{} frames ({} key) -> {}: {:.2} kbit/s, {:.2} s wall, {} tasks run ({} reused), \
             {} retries, {} twins, {:.1} worker-s, {:.1} GB-s, est. ${:.6}",
            out.frames,
            out.key_frames,
            output.display(),
            out.kbps,
            out.wall.as_secs_f64(),
            out.tasks_run,
            out.reused,
            t.retries,
            t.speculative,
            t.worker_seconds,
            t.gb_seconds,
            t.cost_usd
        );
    }
    Ok(())
}

/// The worker the processes backend starts: `--worker-bin`, else an
/// `excam-worker` beside this executable, else this `excam` as `excam
/// worker` (so that a lone `cargo install`ed excam runs the processes
/// backend too).
fn worker_command(given: Option<&PathBuf>) -> anyhow::Result<(PathBuf, Vec<String>)> {
    if let Some(bin) = given {
        return Ok((bin.clone(), Vec::new()));
    }
    if let Some(bin) = processes::sibling_worker_bin() {
        return Ok((bin, Vec::new()));
    }
    let me = std::env::current_exe().context("cannot find this executable to run as the worker")?;
    Ok((me, vec!["worker".to_string()]))
}
