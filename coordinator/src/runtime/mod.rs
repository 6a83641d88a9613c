//! The distributed runtime: one task per chunk on `excam-worker`
//! processes or Lambda functions, states through a relay with the store
//! as durable fallback, and the coordinator that plans, schedules,
//! verifies, assembles and reports.
//!
//! Use it as a library through [`JobConfig`] and [`run_job`]. Output bytes
//! depend only on the input, the codec parameters, N and x: never on the
//! backend, the worker count, retries or scheduling (each chunk's bytes
//! are a pure function of its frames and its predecessor's state, see
//! `excam_worker::chunk`).

pub mod backend;
pub mod chain;
pub mod cli;
mod embedded_relay;
mod input;
#[cfg(feature = "cloud")]
pub mod lambda;
pub mod local;
pub mod processes;
pub mod progress;
pub mod report;
mod resume;
pub mod scheduler;
mod state_audit;
pub mod timeline;
pub mod worker_api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use excam_codec::image::i420_len;
use excam_rendezvous::{Fingerprint, RelaySecret};
use excam_worker::task::{
    codec_version, CodecParams, Fault, InputSpec, RelaySpec, StoreSpec, Task, TASK_VERSION,
};
use sha2::{Digest, Sha256};

use backend::Backend;
use embedded_relay::EmbeddedRelay;
#[cfg(not(feature = "cloud"))]
use input::NO_CLOUD;
use input::{locate_input, parse_header, upload_input};
use report::build_report;
use report::Report;
use resume::load_reusable;
use scheduler::{run_schedule, ChunkDone, Schedule, ScheduleError, SchedulerConfig};
use worker_api::{job_prefix, result_key};

/// Where the workers run.
#[derive(Clone, Debug)]
pub enum BackendChoice {
    /// Tasks run in this process ([`local::LocalBackend`]), a store in a
    /// directory.
    Local {
        /// Store root.
        store_dir: PathBuf,
    },
    /// `excam-worker` processes on this machine, a store in a directory.
    Processes {
        /// The worker executable.
        worker_bin: PathBuf,
        /// Store root.
        store_dir: PathBuf,
    },
    /// Lambda invocations, a store in S3.
    Lambda {
        /// Function name.
        function: String,
        /// Bucket.
        bucket: String,
        /// Key prefix ("" for none).
        prefix: String,
    },
}

/// How states travel between workers.
#[derive(Clone, Debug)]
pub enum RelayChoice {
    /// Through the store alone.
    None,
    /// A relay run inside the coordinator for the job's duration.
    Embedded {
        /// UDP address to bind.
        listen: SocketAddr,
        /// `host:port` workers dial (default: the bound address).
        public: Option<String>,
    },
    /// A relay run elsewhere.
    External {
        /// `host:port`.
        addr: String,
        /// Its certificate's fingerprint.
        fingerprint: Fingerprint,
        /// The relay's secret, to mint the job's token.
        secret: RelaySecret,
    },
}

/// The input video.
#[derive(Clone, Debug)]
pub enum InputSource {
    /// A local Y4M file, uploaded (or linked) into the store.
    File(PathBuf),
    /// A Y4M object in the job's S3 bucket, used in place.
    S3 {
        /// Bucket (must be the store's).
        bucket: String,
        /// Key.
        key: String,
    },
}

impl InputSource {
    /// Parses `s3://bucket/key` or a path.
    pub fn parse(s: &str) -> InputSource {
        match s.strip_prefix("s3://").and_then(|r| r.split_once('/')) {
            Some((b, k)) => InputSource::S3 {
                bucket: b.to_string(),
                key: k.to_string(),
            },
            None => InputSource::File(PathBuf::from(s)),
        }
    }
}

/// Everything a distributed encode needs.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Input.
    pub input: InputSource,
    /// Output file (written atomically).
    pub output: PathBuf,
    /// The output's container.
    pub container: crate::container::Container,
    /// Codec settings; width, height and frame rate are taken from the input.
    pub codec: CodecParams,
    /// N.
    pub chunk_frames: usize,
    /// x.
    pub group_chunks: usize,
    /// Skip this many frames of the input first.
    pub skip: usize,
    /// Encode at most this many frames (after `skip`).
    pub limit: Option<usize>,
    /// Where workers run.
    pub backend: BackendChoice,
    /// How states travel.
    pub relay: RelayChoice,
    /// Concurrency, retries, stragglers, timeouts.
    pub scheduler: SchedulerConfig,
    /// Reuse verified chunks of an earlier run of the same job.
    pub resume: bool,
    /// Keep `jobs/{job}/` after success.
    pub keep_intermediate: bool,
    /// Write the JSON report here (and the SVG beside it).
    pub report: Option<PathBuf>,
    /// No display, no log lines.
    pub quiet: bool,
    /// Memory for the cost estimate, MB.
    pub lambda_memory_mb: u32,
    /// USD per GB-second.
    pub price_per_gb_s: f64,
    /// USD per request.
    pub price_per_request: f64,
    /// Faults to inject: (chunk, attempt) -> fault (tests).
    pub faults: HashMap<(usize, u32), Fault>,
    /// Restart the embedded relay once this many chunks are done (tests).
    pub restart_relay_after: Option<usize>,
}

/// What a finished job produced.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// Job id.
    pub job: String,
    /// Frames.
    pub frames: usize,
    /// Key frames.
    pub key_frames: usize,
    /// VP8 bytes (without IVF framing).
    pub bytes: u64,
    /// kbit/s at the input's frame rate.
    pub kbps: f64,
    /// Wall time.
    pub wall: Duration,
    /// Tasks run in this invocation (chunks not reused).
    pub tasks_run: usize,
    /// Chunks reused from an earlier run.
    pub reused: usize,
    /// The report (also written when asked).
    pub report: Report,
}

/// The job was cancelled (Ctrl-C); the CLI exits with 130.
#[derive(Debug, thiserror::Error)]
#[error("cancelled: no output written")]
pub struct Cancelled;

/// Hex SHA-256 naming a job: same input, parameters and codec version give
/// the same id, so a rerun finds its earlier results.
pub fn job_id(
    input_identity: &str,
    codec: &CodecParams,
    chunk_frames: usize,
    group_chunks: usize,
    frames: usize,
) -> String {
    let mut h = Sha256::new();
    h.update(b"excam-job-1\n");
    h.update(input_identity.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(codec).unwrap_or_default());
    h.update(
        format!(
            "\n{chunk_frames} {group_chunks} {frames}\n{}",
            codec_version()
        )
        .as_bytes(),
    );
    hex::encode(h.finalize())
}

/// Runs a distributed encode to completion.
///
/// # Errors
/// Bad input or settings, store or relay failures, a chunk that failed
/// `max_tries` times (the message names chunk, phase and last error), or
/// [`Cancelled`] when `cancel` turns true. No output file is left then.
pub async fn run_job(
    cfg: JobConfig,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<JobOutcome> {
    let t0 = Instant::now();
    let started_unix_s = unix_now();
    if cfg.chunk_frames == 0 || cfg.group_chunks == 0 {
        bail!("chunk frames and group chunks must be at least 1");
    }
    let (store_spec, backend): (StoreSpec, Arc<dyn Backend>) = match &cfg.backend {
        BackendChoice::Local { store_dir } => {
            let root = std::path::absolute(store_dir)
                .with_context(|| format!("bad store dir {}", store_dir.display()))?;
            (StoreSpec::Local { root }, Arc::new(local::LocalBackend))
        }
        BackendChoice::Processes {
            worker_bin,
            store_dir,
        } => {
            if !worker_bin.is_file() {
                bail!(
                    "worker executable {} not found (build excam-worker or pass --worker-bin)",
                    worker_bin.display()
                );
            }
            let root = std::path::absolute(store_dir)
                .with_context(|| format!("bad store dir {}", store_dir.display()))?;
            (
                StoreSpec::Local { root },
                Arc::new(processes::ProcessBackend {
                    worker_bin: worker_bin.clone(),
                }),
            )
        }
        #[cfg(feature = "cloud")]
        BackendChoice::Lambda {
            function,
            bucket,
            prefix,
        } => (
            StoreSpec::S3 {
                bucket: bucket.clone(),
                prefix: prefix.trim_matches('/').to_string(),
            },
            Arc::new(lambda::LambdaBackend::new(function.clone()).await),
        ),
        #[cfg(not(feature = "cloud"))]
        BackendChoice::Lambda { .. } => bail!(NO_CLOUD),
    };
    let store = worker_api::open_store(&store_spec).await?;

    // The input: its identity (for the job id), header and store key.
    let (identity, input_key, head, total) =
        locate_input(&cfg, &store_spec, store.as_ref()).await?;
    let (hdr, mut first_frame_offset, mut frames) = parse_header(&head, total)?;
    let stride = 6 + i420_len(hdr.width, hdr.height) as u64;
    let mut identity = identity;
    if cfg.skip > 0 {
        if cfg.skip >= frames {
            bail!(
                "--skip {} skips the whole input: it has {frames} frames",
                cfg.skip
            );
        }
        first_frame_offset += cfg.skip as u64 * stride;
        frames -= cfg.skip;
        identity = format!("{identity}:skip={}", cfg.skip);
    }
    if let Some(l) = cfg.limit {
        frames = frames.min(l);
    }
    if frames == 0 {
        bail!("the input has no frames");
    }
    let mut codec = cfg.codec.clone();
    codec.width = hdr.width;
    codec.height = hdr.height;
    codec.framerate = (hdr.framerate.0 as u32, hdr.framerate.1 as u32);
    codec
        .to_config()
        .map_err(|e| anyhow::anyhow!("invalid encoder settings: {e}"))?;
    let job = job_id(
        &identity,
        &codec,
        cfg.chunk_frames,
        cfg.group_chunks,
        frames,
    );
    let chunks = frames.div_ceil(cfg.chunk_frames);
    let input = InputSpec {
        key: input_key.clone(),
        first_frame_offset,
        frame_stride: 6 + i420_len(hdr.width, hdr.height) as u64,
        frames,
    };
    if let InputSource::File(path) = &cfg.input {
        upload_input(store.as_ref(), &input_key, path, total, cfg.quiet).await?;
    }

    let mut relay_handle: Option<EmbeddedRelay> = None;
    let relay = match &cfg.relay {
        RelayChoice::None => None,
        RelayChoice::Embedded { listen, public } => {
            let r = EmbeddedRelay::start(*listen)?;
            let spec = RelaySpec {
                addr: public.clone().unwrap_or_else(|| r.addr.to_string()),
                fingerprint: r.identity.fingerprint().to_string(),
                job: job.clone(),
                token: r.secret.token(&job),
            };
            relay_handle = Some(r);
            Some(spec)
        }
        RelayChoice::External {
            addr,
            fingerprint,
            secret,
        } => Some(RelaySpec {
            addr: addr.clone(),
            fingerprint: fingerprint.to_string(),
            job: job.clone(),
            token: secret.token(&job),
        }),
    };

    let make_tasks = |run: &str| -> Vec<Task> {
        (0..chunks)
            .map(|i| Task {
                version: TASK_VERSION,
                job: job.clone(),
                run: run.to_string(),
                chunk: i,
                chunks,
                chunk_frames: cfg.chunk_frames,
                group_chunks: cfg.group_chunks,
                input: input.clone(),
                codec: codec.clone(),
                store: store_spec.clone(),
                relay: relay.clone(),
                attempt: 0,
                wait_timeout_s: cfg.scheduler.task_timeout.as_secs_f64(),
                fault: None,
            })
            .collect()
    };
    let expected: Vec<usize> = (0..chunks)
        .map(|i| (frames - i * cfg.chunk_frames).min(cfg.chunk_frames))
        .collect();

    // The restart hook runs on the scheduler's task: hand it to a helper.
    let relay_cell = Arc::new(tokio::sync::Mutex::new(relay_handle));
    let restart_at = cfg.restart_relay_after;
    let restarted = Arc::new(Mutex::new(false));
    let on_done = {
        let relay_cell = relay_cell.clone();
        let restarted = restarted.clone();
        move |done: usize| {
            if restart_at.is_some_and(|k| done >= k) {
                let mut r = restarted.lock().expect("restart flag");
                if !*r {
                    *r = true;
                    let cell = relay_cell.clone();
                    tokio::spawn(async move {
                        if let Some(relay) = cell.lock().await.as_mut() {
                            if let Err(e) = relay.restart().await {
                                eprintln!("relay restart failed: {e:#}");
                            }
                        }
                    });
                }
            }
        }
    };

    // A run: a fresh run id (its states live under it, so nothing an
    // earlier run left is read unless checked and carried over), the
    // chunks an earlier run finished (`--resume`, or the first run here
    // when the chain check sent some chunks back), the schedule and the
    // chain check. A reused chunk that does not continue the chain its
    // predecessor's new run ends in sends its group's rest back for one
    // more run; a chunk made in this run that breaks the chain fails the
    // job.
    let report_of = |s: &Schedule, output_bytes: u64| {
        build_report(
            &cfg,
            &job,
            backend.name(),
            frames,
            chunks,
            started_unix_s,
            t0,
            s,
            output_bytes,
        )
    };
    let mut n_reused = 0;
    let runs = async {
        for round in 0..2 {
            let run = hex::encode(rand::random::<[u8; 8]>());
            let mut reused: Vec<Option<ChunkDone>> = vec![None; chunks];
            if cfg.resume || round > 0 {
                reused = load_reusable(
                    store.as_ref(),
                    &make_tasks(&run),
                    &job,
                    &run,
                    &expected,
                    cfg.group_chunks,
                    (codec.width as u16, codec.height as u16),
                    cfg.quiet,
                )
                .await;
            }
            n_reused = reused.iter().filter(|r| r.is_some()).count();
            let display = progress::Display::new(chunks, n_reused, cfg.quiet).with_prices(
                progress::Prices::new(
                    cfg.lambda_memory_mb,
                    cfg.price_per_gb_s,
                    cfg.price_per_request,
                ),
            );
            if !cfg.quiet {
                eprintln!(
                    "job {}: {frames} frames in {chunks} chunks of {} (x={}) on {}{}",
                    &job[..16],
                    cfg.chunk_frames,
                    cfg.group_chunks,
                    backend.name(),
                    if n_reused > 0 {
                        format!(", {n_reused} chunks reused")
                    } else {
                        String::new()
                    }
                );
            }
            let s = run_schedule(
                backend.clone(),
                store.clone(),
                make_tasks(&run),
                expected.clone(),
                reused,
                &cfg.scheduler,
                &cfg.faults,
                &display,
                &on_done,
                cancel.clone(),
            )
            .await;
            display.finish();
            let s = match s {
                Ok(s) => s,
                Err((e, s)) => {
                    if let Some(path) = &cfg.report {
                        let _ = timeline::write_with_svg(&report_of(&s, 0), path);
                    }
                    return Err(match e {
                        ScheduleError::Cancelled => anyhow::Error::new(Cancelled),
                        other => anyhow::Error::new(other)
                            .context(format!("job {} failed; no output written", &job[..16])),
                    });
                }
            };
            // Nothing is written unless every chunk starts where its
            // predecessor ends; the job's objects stay for inspection then.
            match chain::check(&s.chunks, cfg.group_chunks) {
                Ok(()) => return Ok(s),
                Err(e) => match chain::rerun_after(&s.chunks, &e, cfg.group_chunks) {
                    Some(range) if round == 0 => {
                        if !cfg.quiet {
                            eprintln!("{e}: running chunks {range:?} again");
                        }
                        for i in range {
                            // Best effort: a record left behind only costs one
                            // more failed check.
                            let _ = store.delete_prefix(&result_key(&job, i)).await;
                        }
                    }
                    _ => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "job {} failed; its objects are kept for inspection",
                            &job[..16]
                        )))
                    }
                },
            }
        }
        // Each arm of the second run returns; kept an error, not a panic.
        Err(anyhow::anyhow!(
            "job {}: the chain check failed twice; no output written",
            &job[..16]
        ))
    };
    let sched = runs.await;
    if let Some(r) = relay_cell.lock().await.as_mut() {
        r.stop().await;
    }
    let sched = sched?;

    // Assemble in chunk order; the temporary file vanishes on any error.
    let (output_bytes, stats) = write_output(&cfg.output, cfg.container, &codec, &sched)?;
    if !cfg.keep_intermediate {
        if let Err(e) = store.delete_prefix(&job_prefix(&job)).await {
            eprintln!("warning: cannot clean up {}: {e}", job_prefix(&job));
        }
        // A local job's copy of its input file (a hard link when the store
        // shares its file system) is cheap to make again for a rerun; the
        // default store must not collect every clip ever encoded.
        if matches!(cfg.backend, BackendChoice::Local { .. })
            && matches!(cfg.input, InputSource::File(_))
        {
            let _ = store.delete_prefix(&input.key).await;
        }
    }
    let report = report_of(&sched, output_bytes);
    if let Some(path) = &cfg.report {
        timeline::write_with_svg(&report, path)?;
    }
    let secs = frames as f64 * codec.framerate.1 as f64 / codec.framerate.0.max(1) as f64;
    Ok(JobOutcome {
        job,
        frames,
        key_frames: stats.0,
        bytes: stats.1,
        kbps: stats.1 as f64 * 8.0 / secs.max(1e-9) / 1000.0,
        wall: t0.elapsed(),
        tasks_run: chunks - n_reused,
        reused: n_reused,
        report,
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes the IVF or WebM; returns its size and (key frames, VP8 bytes).
fn write_output(
    output: &Path,
    container: crate::container::Container,
    codec: &CodecParams,
    sched: &Schedule,
) -> anyhow::Result<(u64, (usize, u64))> {
    let tmp = crate::output::temp_beside(output)?;
    let mut ivf = crate::container::VideoWriter::new(
        container,
        tmp.reopen()?,
        true,
        codec.width,
        codec.height,
        codec.framerate,
    )?;
    let (mut n, mut keys, mut bytes) = (0u64, 0usize, 0u64);
    for c in &sched.chunks {
        let c = c.as_ref().context("a chunk is missing")?;
        for f in &c.frames {
            let key = f.first().is_some_and(|b| b & 1 == 0);
            ivf.write_frame(n, f, key)
                .context("cannot write the output")?;
            n += 1;
            keys += key as usize;
            bytes += f.len() as u64;
        }
    }
    ivf.finish(true).context("cannot write the output")?;
    let size = tmp.as_file().metadata().map_or(0, |m| m.len());
    if output == Path::new("-") {
        // Standard output gets the finished file: a pipe cannot be
        // patched, and a failed job must write nothing.
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut tmp.reopen()?, &mut out).context("cannot write to standard output")?;
        std::io::Write::flush(&mut out).context("cannot write to standard output")?;
        return Ok((size, (keys, bytes)));
    }
    crate::output::persist(tmp, output)?;
    Ok((size, (keys, bytes)))
}
