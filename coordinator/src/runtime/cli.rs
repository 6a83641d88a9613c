//! The `excam encode` flags of the distributed backends, and the glue from
//! them to [`run_job`](super::run_job).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use excam_rendezvous::{Fingerprint, RelaySecret};
use excam_worker::chunk::Phase;
use excam_worker::task::{CodecParams, Fault};

use super::{BackendChoice, InputSource, JobConfig, RelayChoice};
use crate::runtime::scheduler::SchedulerConfig;

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
    /// The excam-worker executable [default: next to this one].
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

/// What `excam encode` asks of a job besides the runtime's own flags
/// ([`DistArgs`]): typed, so this module needs nothing of the command's.
#[derive(Clone, Debug)]
pub struct EncodeJob {
    /// Input path, `s3://bucket/key` or `-`.
    pub input: String,
    /// Output path.
    pub output: PathBuf,
    /// Output container.
    pub container: crate::container::Container,
    /// Codec settings (size and rate are filled from the input).
    pub codec: CodecParams,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Frames to skip first.
    pub skip: usize,
    /// Most frames to encode.
    pub limit: Option<usize>,
    /// Whether PSNR was asked for.
    pub psnr: bool,
    /// `--workers`.
    pub workers: Option<usize>,
    /// No display, no log lines.
    pub quiet: bool,
}

/// The job `job` and the runtime flags `d` describe.
///
/// # Errors
/// Inconsistent flags.
pub fn job_config(args: &EncodeJob, d: &DistArgs) -> anyhow::Result<JobConfig> {
    let input_text = args.input.clone();
    let local = d.backend == BackendArg::Local;
    if args.skip > 0 && !local {
        bail!("--skip is supported by the local backend only (yet)");
    }
    if args.psnr && !local {
        bail!("--psnr is computed by the local backend only (yet)");
    }

    if input_text == "-" {
        bail!("the distributed backends need a file or s3:// input, not standard input");
    }
    let mut max_concurrency = d.max_concurrency as usize;
    let backend = match d.backend {
        BackendArg::Local => {
            if let Some(w) = args.workers {
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
            if let Some(w) = args.workers {
                max_concurrency = max_concurrency.min(w);
            }
            BackendChoice::Processes {
                worker_bin: d
                    .worker_bin
                    .clone()
                    .unwrap_or_else(super::processes::default_worker_bin),
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
        input: InputSource::parse(&input_text),
        output: args.output.clone(),
        container: args.container,
        codec: args.codec.clone(),
        chunk_frames: args.chunk_frames,
        group_chunks: args.group_chunks,
        skip: args.skip,
        limit: args.limit,
        backend,
        relay,
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
        report: d.report.clone(),
        quiet: args.quiet,
        lambda_memory_mb: d.lambda_memory,
        price_per_gb_s: d.price_per_gb_s,
        price_per_request: d.price_per_request,
        faults,
        restart_relay_after: d.restart_relay_after,
    })
}

/// Runs the job `cfg` on a runtime of its own, Ctrl-C cancelling it.
///
/// # Errors
/// As [`run_job`](super::run_job); [`Cancelled`](super::Cancelled) on Ctrl-C.
pub fn run_job_blocking(cfg: super::JobConfig) -> anyhow::Result<super::JobOutcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        super::run_job(cfg, rx).await
    });
    // Worker processes were killed when their futures dropped; do not wait
    // for stray blocking tasks.
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// `$TMPDIR/excam-UID/store`: the processes backend's store when none is
/// given. States and tasks are private to the user who runs the job, so
/// the per-user directory is created 0700, and one that already exists is
/// used only if it is a real directory (not a symlink) of this user that
/// nobody else can enter; otherwise another user could read, plant or
/// delete states under predictable job ids.
pub fn default_store_dir() -> anyhow::Result<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let base = std::env::temp_dir().join(format!("excam-{uid}"));
    private_dir(&base, uid)?;
    Ok(base.join("store"))
}

/// Creates `dir` with mode 0700, or checks that the existing one is this
/// user's own private directory.
fn private_dir(dir: &std::path::Path, uid: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let m = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    if !m.file_type().is_dir() {
        bail!(
            "{} is not a directory (a symlink or file is in the way); remove it or pass --store-dir",
            dir.display()
        );
    }
    if m.uid() != uid {
        bail!(
            "{} belongs to user {}, not to you ({uid}); remove it or pass --store-dir",
            dir.display(),
            m.uid()
        );
    }
    if m.mode() & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {:o}); run chmod 700 on it or pass --store-dir",
            dir.display(),
            m.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::private_dir;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn private_dir_is_made_0700_and_refuses_open_or_foreign_ones() {
        let t = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let d = t.path().join("mine");
        private_dir(&d, uid).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        private_dir(&d, uid).unwrap();

        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&d, uid).unwrap_err().to_string();
        assert!(e.contains("open to other users"), "{e}");

        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        let e = private_dir(&link, uid).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");

        let e = private_dir(&d, uid + 1).unwrap_err().to_string();
        assert!(e.contains("belongs to user"), "{e}");
    }
}
