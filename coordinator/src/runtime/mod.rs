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

pub mod assemble;
pub mod backend;
pub mod chain;
mod config;
mod embedded_relay;
mod error;
mod input;
#[cfg(feature = "cloud")]
pub mod lambda;
pub mod local;
pub mod processes;
pub mod progress;
pub mod report;
mod resume;
#[cfg(feature = "cloud")]
pub mod s3_output;
pub mod scheduler;
mod state_audit;
mod store_dir;
pub mod timeline;
pub mod worker_api;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use excam_codec::image::i420_len;
use excam_worker::task::{
    codec_version, CodecParams, InputSpec, RelaySpec, StoreSpec, Task, TASK_VERSION,
};
use sha2::{Digest, Sha256};

use assemble::{Assembler, AssemblyParams};
use backend::Backend;
pub use config::{
    BackendChoice, Infrastructure, InputSource, JobConfig, JobSpec, Policy, Pricing, RelayChoice,
    TestHooks,
};
use embedded_relay::EmbeddedRelay;
pub use error::{BackendError, DrawError, InputError, JobError, RelayStartError, WriteError};
use input::{locate_input, parse_header, upload_input};
use report::build_report;
use report::Report;
use resume::load_reusable;
use scheduler::{run_schedule, ChunkDone, DoneHook, Schedule, ScheduleError};
pub use store_dir::{default_store_dir, StoreDirError};
use worker_api::{job_prefix, result_key};

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
/// `max_tries` times (the message names chunk, phase and last error), a
/// broken chain, or [`JobError::Cancelled`] when `cancel` turns true (see
/// [`JobError`]). No output file is left then.
pub async fn run_job(
    cfg: JobConfig,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<JobOutcome, JobError> {
    let t0 = Instant::now();
    let started_unix_s = unix_now();
    let JobConfig {
        job: spec,
        infra,
        policy,
        hooks,
    } = &cfg;
    if spec.chunk_frames == 0 || spec.group_chunks == 0 {
        return Err(JobError::Settings(
            "chunk frames and group chunks must be at least 1".into(),
        ));
    }
    let store_root = |dir: &Path| {
        std::path::absolute(dir).map_err(|source| BackendError::StoreDir {
            path: dir.to_path_buf(),
            source,
        })
    };
    let (store_spec, backend): (StoreSpec, Arc<dyn Backend>) = match &infra.backend {
        BackendChoice::Local { store_dir } => {
            let root = store_root(store_dir)?;
            (StoreSpec::Local { root }, Arc::new(local::LocalBackend))
        }
        BackendChoice::Processes {
            worker_bin,
            worker_args,
            store_dir,
        } => {
            if !worker_bin.is_file() {
                return Err(BackendError::NoWorker(worker_bin.clone()).into());
            }
            let root = store_root(store_dir)?;
            (
                StoreSpec::Local { root },
                Arc::new(processes::ProcessBackend {
                    worker_bin: worker_bin.clone(),
                    worker_args: worker_args.clone(),
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
        BackendChoice::Lambda { .. } => return Err(BackendError::NoCloud.into()),
    };
    // Tasks in this process share its cores: more of them at once than
    // `local::max_in_flight` adds memory (each holds its chunk's frames
    // and states), not speed.
    let mut sched_cfg = policy.scheduler.clone();
    if matches!(infra.backend, BackendChoice::Local { .. }) {
        sched_cfg.max_concurrency = sched_cfg.max_concurrency.min(local::max_in_flight());
    }
    let s3_target = s3_target(spec, &store_spec)?;
    if s3_target.is_some() {
        sched_cfg.verify_in_store = true;
    }
    let store = worker_api::open_store(&store_spec).await?;

    // The input: its identity (for the job id), header and store key.
    let (identity, input_key, head, total) =
        locate_input(&spec.input, &store_spec, store.as_ref()).await?;
    let (hdr, mut first_frame_offset, mut frames) = parse_header(&head, total)?;
    let stride = 6 + i420_len(hdr.width, hdr.height) as u64;
    let mut identity = identity;
    if spec.skip > 0 {
        if spec.skip >= frames {
            return Err(InputError::SkipsAll {
                skip: spec.skip,
                frames,
            }
            .into());
        }
        first_frame_offset += spec.skip as u64 * stride;
        frames -= spec.skip;
        identity = format!("{identity}:skip={}", spec.skip);
    }
    if let Some(l) = spec.limit {
        frames = frames.min(l);
    }
    if frames == 0 {
        return Err(InputError::NoFrames.into());
    }
    let mut codec = spec.codec.clone();
    codec.width = hdr.width;
    codec.height = hdr.height;
    codec.framerate = (hdr.framerate.0 as u32, hdr.framerate.1 as u32);
    codec
        .to_config()
        .map_err(|e| JobError::Settings(format!("invalid encoder settings: {e}")))?;
    let job = job_id(
        &identity,
        &codec,
        spec.chunk_frames,
        spec.group_chunks,
        frames,
    );
    let chunks = frames.div_ceil(spec.chunk_frames);
    let input = InputSpec {
        key: input_key.clone(),
        first_frame_offset,
        frame_stride: 6 + i420_len(hdr.width, hdr.height) as u64,
        frames,
    };
    if let InputSource::File(path) = &spec.input {
        upload_input(store.as_ref(), &input_key, path, total, spec.quiet).await?;
    }

    let mut relay_handle: Option<EmbeddedRelay> = None;
    let relay = match &infra.relay {
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
                chunk_frames: spec.chunk_frames,
                group_chunks: spec.group_chunks,
                input: input.clone(),
                codec: codec.clone(),
                store: store_spec.clone(),
                relay: relay.clone(),
                attempt: 0,
                wait_timeout_s: policy.scheduler.task_timeout.as_secs_f64(),
                fault: None,
                merge: None,
            })
            .collect()
    };
    let expected: Vec<usize> = (0..chunks)
        .map(|i| (frames - i * spec.chunk_frames).min(spec.chunk_frames))
        .collect();

    // The restart hook runs on the scheduler's task: hand it to a helper.
    let relay_cell = Arc::new(tokio::sync::Mutex::new(relay_handle));
    let restart_at = hooks.restart_relay_after;
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
    let hold_bytes = policy
        .assembly_hold_bytes
        .unwrap_or(assemble::DEFAULT_HOLD_BYTES);
    let runs = async {
        for round in 0..2 {
            let run = hex::encode(rand::random::<[u8; 8]>());
            let mut reused: Vec<Option<ChunkDone>> = vec![None; chunks];
            if policy.resume || round > 0 {
                reused = load_reusable(
                    store.as_ref(),
                    &make_tasks(&run),
                    &job,
                    &run,
                    &expected,
                    spec.group_chunks,
                    (codec.width as u16, codec.height as u16),
                    spec.quiet,
                )
                .await;
            }
            n_reused = reused.iter().filter(|r| r.is_some()).count();
            // Each run writes its own temporary output (or upload) as
            // chunks are done (a run after a failed chain check starts it
            // afresh).
            let assembler = match &s3_target {
                None => Sink::File(
                    Assembler::start(
                        AssemblyParams {
                            output: &spec.output,
                            container: spec.container,
                            codec: &codec,
                            expected: &expected,
                            group_chunks: spec.group_chunks,
                            hold_bytes,
                            t0,
                            fetch_timeout: sched_cfg.task_timeout,
                        },
                        store.clone(),
                        tokio::runtime::Handle::current(),
                    )
                    .map_err(assembly_error)?,
                ),
                #[cfg(feature = "cloud")]
                Some((bucket, key, store_bucket, prefix)) => Sink::S3(
                    s3_output::S3Assembler::start(s3_output::S3Params {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        store: excam_worker::store::S3Store::from_env(
                            store_bucket.clone(),
                            prefix.clone(),
                        )
                        .await,
                        backend: backend.clone(),
                        tasks: make_tasks(&run),
                        expected: expected.clone(),
                        group_chunks: spec.group_chunks,
                        min_part: policy.s3_min_part_bytes.unwrap_or(s3_output::S3_MIN_PART),
                        max_tries: sched_cfg.max_tries,
                        timeout: sched_cfg.task_timeout,
                        size: (codec.width, codec.height),
                        fps: codec.framerate,
                        t0,
                    })
                    .await
                    .map_err(assembly_error)?,
                ),
                #[cfg(not(feature = "cloud"))]
                Some(_) => return Err(BackendError::NoCloud.into()),
            };
            for (i, c) in reused.iter_mut().enumerate() {
                if let Some(c) = c {
                    assembler.chunk_done(i, c);
                }
            }
            let hook = Hooks {
                assembler: &assembler,
                restart: &on_done,
            };
            let display = progress::Display::new(chunks, n_reused, spec.quiet).with_prices(
                progress::Prices::new(
                    infra.pricing.lambda_memory_mb,
                    infra.pricing.price_per_gb_s,
                    infra.pricing.price_per_request,
                ),
            );
            if !spec.quiet {
                eprintln!(
                    "job {}: {frames} frames in {chunks} chunks of {} (x={}) on {}{}",
                    &job[..16],
                    spec.chunk_frames,
                    spec.group_chunks,
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
                &sched_cfg,
                &hooks.faults,
                &display,
                &hook,
                cancel.clone(),
            )
            .await;
            display.finish();
            let s = match s {
                Ok(s) => s,
                Err((e, s)) => {
                    if let Some(path) = &spec.report {
                        let _ = timeline::write_with_svg(&report_of(&s, 0), path);
                    }
                    return Err(match e {
                        ScheduleError::Cancelled => JobError::Cancelled,
                        source => JobError::Failed {
                            job: job.clone(),
                            source,
                        },
                    });
                }
            };
            // Nothing is written unless every chunk starts where its
            // predecessor ends; the job's objects stay for inspection then.
            match chain::check(&s.chunks, spec.group_chunks) {
                Ok(()) => return Ok((s, assembler)),
                Err(e) => match chain::rerun_after(&s.chunks, &e, spec.group_chunks) {
                    Some(range) if round == 0 => {
                        if !spec.quiet {
                            eprintln!("{e}: running chunks {range:?} again");
                        }
                        for i in range {
                            // Best effort: a record left behind only costs one
                            // more failed check.
                            let _ = store.delete_prefix(&result_key(&job, i)).await;
                        }
                    }
                    _ => {
                        return Err(JobError::Chain {
                            job: job.clone(),
                            source: e,
                        })
                    }
                },
            }
        }
        // Each arm of the second run returns; kept an error, not a panic.
        Err(JobError::ChainTwice { job: job.clone() })
    };
    // The output is finished before the relay stops: stopping it may wait
    // for idle clients, and nothing needs it once every chunk is done.
    let finished = match runs.await {
        Ok((sched, assembler)) => finish_output(assembler, &sched, &spec.output, t0)
            .await
            .map(|out| (sched, out)),
        Err(e) => Err(e),
    };
    if let Some(r) = relay_cell.lock().await.as_mut() {
        r.stop().await;
    }
    let (sched, (output_bytes, stats, assembly)) = finished?;
    if !policy.keep_intermediate {
        if let Err(e) = store.delete_prefix(&job_prefix(&job)).await {
            eprintln!("warning: cannot clean up {}: {e}", job_prefix(&job));
        }
        // A local job's copy of its input file (a hard link when the store
        // shares its file system) is cheap to make again for a rerun; the
        // default store must not collect every clip ever encoded.
        if matches!(infra.backend, BackendChoice::Local { .. })
            && matches!(spec.input, InputSource::File(_))
        {
            let _ = store.delete_prefix(&input.key).await;
        }
    }
    let mut report = report_of(&sched, output_bytes);
    report.assembly = Some(assembly);
    if let Some(path) = &spec.report {
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

/// Runs the job `cfg` on a runtime of its own, Ctrl-C cancelling it.
///
/// # Errors
/// As [`run_job`]; [`JobError::Cancelled`] on Ctrl-C.
pub fn run_job_blocking(cfg: JobConfig) -> Result<JobOutcome, JobError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(JobError::Runtime)?;
    let out = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        run_job(cfg, rx).await
    });
    // Worker processes were killed when their futures dropped; do not wait
    // for stray blocking tasks.
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where the output goes: a file written here, or an S3 object assembled
/// there.
enum Sink {
    File(Assembler),
    #[cfg(feature = "cloud")]
    S3(s3_output::S3Assembler),
}

impl Sink {
    fn chunk_done(&self, chunk: usize, done: &mut ChunkDone) {
        match self {
            Sink::File(a) => a.chunk_done(chunk, done),
            #[cfg(feature = "cloud")]
            Sink::S3(a) => a.chunk_done(chunk, done),
        }
    }
}

/// For an `s3://` output: (bucket, key, the store's bucket and prefix).
/// The parts are copied from objects in the job's store, so that must be
/// in S3; WebM is refused (its cues and sizes are written back at the end,
/// which server-side copies cannot do).
fn s3_target(
    spec: &JobSpec,
    store: &StoreSpec,
) -> Result<Option<(String, String, String, String)>, JobError> {
    let Some(text) = spec.output.to_str().filter(|t| t.starts_with("s3://")) else {
        return Ok(None);
    };
    #[cfg(not(feature = "cloud"))]
    {
        let _ = store;
        Err(JobError::Settings(format!(
            "-o {text}: {}",
            BackendError::NoCloud
        )))
    }
    #[cfg(feature = "cloud")]
    {
        let (bucket, key) = s3_output::parse_s3_output(&spec.output)
            .expect("an s3:// output")
            .map_err(|e| JobError::Settings(e.to_string()))?;
        let StoreSpec::S3 { bucket: sb, prefix } = store else {
            return Err(JobError::Settings(format!(
                "-o {text} assembles the output in S3 from the chunk objects, so the job's \
                 store must be in S3: use --backend lambda --bucket BUCKET"
            )));
        };
        if spec.container != crate::container::Container::Ivf {
            return Err(JobError::Settings(format!(
                "-o {text}: an S3 output is written as IVF (WebM's cues and sizes are \
                 written back at the end, which parts copied in S3 cannot do); \
                 pass --ivf or name the object .ivf"
            )));
        }
        Ok(Some((bucket, key, sb.clone(), prefix.clone())))
    }
}

/// Completes the streamed output of a schedule that passed the chain
/// check and puts it in place; returns its size, (key frames, VP8 bytes)
/// and what the assembly did.
async fn finish_output(
    sink: Sink,
    sched: &Schedule,
    output: &Path,
    t0: Instant,
) -> Result<(u64, (usize, u64), assemble::AssemblyReport), JobError> {
    // Most of the output is written by now; the temporary file vanishes
    // (the upload is aborted) on any error.
    let results = assemble::final_results(&sched.chunks).map_err(assembly_error)?;
    let assembler = match sink {
        Sink::File(a) => a,
        #[cfg(feature = "cloud")]
        Sink::S3(a) => {
            let done = a.finish(results).await.map_err(assembly_error)?;
            let mut report = done.report;
            report.output_done_s = t0.elapsed().as_secs_f64();
            return Ok((done.size, (done.key_frames, done.vp8_bytes), report));
        }
    };
    let output = output.to_path_buf();
    let (size, stats, mut report) = tokio::task::spawn_blocking(move || {
        let done = assembler
            .finish(results)
            .map_err(|e| WriteError::Assembly(format!("{e:#}")))?;
        let size = persist_output(done.tmp, &output)?;
        Ok::<_, WriteError>((size, (done.key_frames, done.vp8_bytes), done.report))
    })
    .await
    .map_err(|e| WriteError::Assembly(format!("the output writer stopped: {e}")))??;
    report.output_done_s = t0.elapsed().as_secs_f64();
    Ok((size, stats, report))
}

/// The streamed assemblies report with `anyhow` (their messages carry
/// the chunk and part numbers); the job's error keeps that text.
fn assembly_error(e: anyhow::Error) -> JobError {
    JobError::Output(WriteError::Assembly(format!("{e:#}")))
}

/// Puts the finished temporary output in place (standard output gets a
/// copy: a pipe cannot be patched, and a failed job must write nothing);
/// returns its size.
fn persist_output(tmp: tempfile::NamedTempFile, output: &Path) -> Result<u64, WriteError> {
    let size = tmp.as_file().metadata().map_or(0, |m| m.len());
    if output == Path::new("-") {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut tmp.reopen()?, &mut out).map_err(WriteError::Stdout)?;
        std::io::Write::flush(&mut out).map_err(WriteError::Stdout)?;
        return Ok(size);
    }
    crate::output::persist(tmp, output)?;
    Ok(size)
}

/// The scheduler's done-hook of a run: the streamed assembly, then the
/// relay-restart test hook.
struct Hooks<'a> {
    assembler: &'a Sink,
    restart: &'a (dyn Fn(usize) + Send + Sync),
}

impl DoneHook for Hooks<'_> {
    fn done(&self, count: usize, chunk: usize, done: &mut ChunkDone) {
        self.assembler.chunk_done(chunk, done);
        (self.restart)(count);
    }
}
