//! Streamed, in-order assembly of the output while the job runs.
//!
//! A chunk is final once it is done and starts where its written
//! predecessor ends (a group head starts from no state): nothing the
//! chain does later can change its bytes. The coordinator already holds a
//! done chunk's frames (the scheduler fetched them to verify its
//! checksum), so the [`Assembler`] writes each chunk to the temporary
//! output as soon as every chunk before it is written, and the file is
//! complete moments after the last chunk is done instead of being written
//! only then.
//!
//! Memory stays bounded: a done chunk that cannot be written yet because
//! an earlier one is missing is held only while the held frames stay under
//! a byte limit; past it only its result is kept and its object is fetched
//! again (and checked again) when its turn comes.
//!
//! What was written is checked against the job's final results before the
//! file is finished: a chunk that ran again after it was written (a lost
//! state regenerates a done chunk; its bytes are the same, since a chunk
//! is a pure function of its frames and its predecessor's state) must
//! have the same checksum, else the output is written again from the
//! store. A failed job drops the temporary file, so nothing half-written
//! is left (see [`crate::output`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use excam_worker::store::Store;
use excam_worker::task::{CodecParams, TaskResult};
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use super::chain;
use super::scheduler::{self, ChunkDone, DoneHook};
use crate::container::{Container, VideoWriter};

/// Default bound of the frames held for chunks that are done but not yet
/// writable: 256 MiB.
pub const DEFAULT_HOLD_BYTES: u64 = 256 << 20;

/// What the assembly did, for the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AssemblyReport {
    /// When each chunk was written to the output, seconds since the job's
    /// start (the last write of the chunk if the output was written again).
    pub chunk_written_s: Vec<f64>,
    /// When the scheduler's last chunk was done, seconds since the job's
    /// start.
    pub last_chunk_done_s: f64,
    /// When the output was complete under its final name, seconds since the
    /// job's start.
    pub output_done_s: f64,
    /// Most frame bytes held at once for chunks not yet writable.
    pub held_peak_bytes: u64,
    /// The bound on them.
    pub hold_limit_bytes: u64,
    /// Chunks whose objects were fetched again because they were not held.
    pub refetched: usize,
    /// Times the written output was dropped and written again from the
    /// store (a written chunk's checksum differed from the final result's).
    pub rewrites: usize,
    /// An `s3://` output's parts, in order (empty for a file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartReport>,
}

/// One part of an `s3://` output's multipart upload.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartReport {
    /// Part number, from 1.
    pub number: i32,
    /// Its first chunk.
    pub first_chunk: usize,
    /// Chunks merged into it.
    pub chunks: usize,
    /// Bytes.
    pub bytes: u64,
    /// S3's ETag of the copied part.
    pub etag: String,
    /// When it was copied into the upload, seconds since the job's start.
    pub copied_s: f64,
}

/// A finished assembly: the temporary file and what it holds.
pub struct Assembled {
    /// The complete output, not yet under its final name.
    pub tmp: NamedTempFile,
    /// Key frames.
    pub key_frames: usize,
    /// VP8 bytes, without container framing.
    pub vp8_bytes: u64,
    /// What the assembly did.
    pub report: AssemblyReport,
}

enum Msg {
    Done {
        chunk: usize,
        result: Box<TaskResult>,
        frames: Vec<Vec<u8>>,
        at: Instant,
    },
    Finish {
        results: Vec<TaskResult>,
    },
}

/// Writes chunks to the output in order as they are done, on a thread of
/// its own (the muxer and the file writes block); see the module docs.
pub struct Assembler {
    tx: mpsc::Sender<Msg>,
    thread: std::thread::JoinHandle<anyhow::Result<Assembled>>,
}

/// The assembler's settings.
pub struct AssemblyParams<'a> {
    /// Final output path (the temporary file goes beside it).
    pub output: &'a Path,
    /// IVF or WebM.
    pub container: Container,
    /// Picture size and frame rate.
    pub codec: &'a CodecParams,
    /// Frames each chunk must hold.
    pub expected: &'a [usize],
    /// N x ... chunks per group (group heads start from no state).
    pub group_chunks: usize,
    /// Bound on the frame bytes held for chunks not yet writable.
    pub hold_bytes: u64,
    /// The job's start, which report times are relative to.
    pub t0: Instant,
    /// Longest fetching a chunk object again may take (the job's task
    /// time-out): every wait of the job is bounded.
    pub fetch_timeout: Duration,
}

impl Assembler {
    /// Creates the temporary output and starts the writer thread; chunks
    /// not held are fetched again from `store` on the async runtime
    /// `rt`.
    ///
    /// # Errors
    /// The temporary file cannot be created.
    pub fn start(
        p: AssemblyParams<'_>,
        store: Arc<dyn Store>,
        rt: tokio::runtime::Handle,
    ) -> anyhow::Result<Assembler> {
        let tmp = crate::output::temp_beside(p.output)?;
        let (tx, rx) = mpsc::channel();
        let mut w = Writer {
            tmp: Some(tmp),
            mux: None,
            output: p.output.to_path_buf(),
            container: p.container,
            size: (p.codec.width, p.codec.height),
            fps: p.codec.framerate,
            expected: p.expected.to_vec(),
            group_chunks: p.group_chunks,
            hold_limit: p.hold_bytes,
            t0: p.t0,
            fetch_timeout: p.fetch_timeout,
            store,
            rt,
            next: 0,
            prev_final: None,
            written: vec![None; p.expected.len()],
            held: BTreeMap::new(),
            held_bytes: 0,
            pts: 0,
            keys: 0,
            bytes: 0,
            broken: false,
            report: AssemblyReport {
                chunk_written_s: vec![0.0; p.expected.len()],
                hold_limit_bytes: p.hold_bytes,
                ..AssemblyReport::default()
            },
        };
        let thread = std::thread::Builder::new()
            .name("excam-assemble".into())
            .spawn(move || {
                w.open()?;
                w.run(rx)
            })
            .context("cannot start the assembly thread")?;
        Ok(Assembler { tx, thread })
    }

    /// Hands over a done chunk, taking its frames (the [`ChunkDone`] keeps
    /// its result; its frames are the assembler's now).
    pub fn chunk_done(&self, chunk: usize, done: &mut ChunkDone) {
        let frames = std::mem::take(&mut done.frames);
        // A send fails only if the thread has already stopped on an
        // error, which `finish` reports.
        let _ = self.tx.send(Msg::Done {
            chunk,
            result: Box::new(done.result.clone()),
            frames,
            at: Instant::now(),
        });
    }

    /// Completes the output once the schedule passed the chain check:
    /// writes what is left, checks what was written against `results`
    /// (each chunk's final result, in order), and finishes the container.
    /// Blocks until the file is complete.
    ///
    /// # Errors
    /// A chunk object that cannot be fetched again or does not verify,
    /// write errors.
    pub fn finish(self, results: Vec<TaskResult>) -> anyhow::Result<Assembled> {
        let _ = self.tx.send(Msg::Finish { results });
        drop(self.tx);
        self.thread
            .join()
            .map_err(|_| anyhow!("the assembly thread panicked"))?
    }
}

/// The final result of every chunk, in order.
///
/// # Errors
/// A chunk is missing.
pub fn final_results(chunks: &[Option<ChunkDone>]) -> anyhow::Result<Vec<TaskResult>> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_ref()
                .map(|c| c.result.clone())
                .ok_or_else(|| anyhow!("chunk {i} is missing"))
        })
        .collect()
}

impl DoneHook for Assembler {
    fn done(&self, _count: usize, chunk: usize, done: &mut ChunkDone) {
        self.chunk_done(chunk, done);
    }
}

/// A chunk waiting for its turn: its result, and its frames unless they
/// were over the hold bound.
struct Held {
    result: TaskResult,
    frames: Option<Vec<Vec<u8>>>,
    /// Bytes of `frames` counted against the bound.
    counted: u64,
}

struct Writer {
    tmp: Option<NamedTempFile>,
    mux: Option<VideoWriter>,
    output: std::path::PathBuf,
    container: Container,
    size: (usize, usize),
    fps: (u32, u32),
    expected: Vec<usize>,
    group_chunks: usize,
    hold_limit: u64,
    t0: Instant,
    fetch_timeout: Duration,
    store: Arc<dyn Store>,
    rt: tokio::runtime::Handle,
    /// The first chunk not yet written.
    next: usize,
    /// The final state of chunk `next - 1`.
    prev_final: Option<String>,
    /// Checksum of each chunk as written.
    written: Vec<Option<String>>,
    held: BTreeMap<usize, Held>,
    held_bytes: u64,
    pts: u64,
    keys: usize,
    bytes: u64,
    /// A chunk does not continue the written chain: stop writing; the
    /// chain check decides what happens to the job.
    broken: bool,
    report: AssemblyReport,
}

fn frame_bytes(frames: &[Vec<u8>]) -> u64 {
    frames.iter().map(|f| f.len() as u64).sum()
}

impl Writer {
    /// (Re)starts the output: a new muxer on the temporary file, emptied.
    fn open(&mut self) -> anyhow::Result<()> {
        if self.mux.is_some() || self.next > 0 {
            // Drop the old muxer first: it owns a handle on the file.
            self.mux = None;
            let old = self.tmp.take().context("no temporary file")?;
            drop(old);
            self.tmp = Some(crate::output::temp_beside(&self.output)?);
        }
        let tmp = self.tmp.as_ref().context("no temporary file")?;
        self.mux = Some(VideoWriter::new(
            self.container,
            tmp.reopen()?,
            true,
            self.size.0,
            self.size.1,
            self.fps,
        )?);
        self.next = 0;
        self.prev_final = None;
        self.written.iter_mut().for_each(|w| *w = None);
        self.pts = 0;
        self.keys = 0;
        self.bytes = 0;
        self.broken = false;
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) -> anyhow::Result<Assembled> {
        for msg in rx {
            match msg {
                Msg::Done {
                    chunk,
                    result,
                    frames,
                    at,
                } => {
                    self.report.last_chunk_done_s = self
                        .report
                        .last_chunk_done_s
                        .max(at.duration_since(self.t0).as_secs_f64());
                    self.take(chunk, *result, frames);
                    self.drain()?;
                }
                Msg::Finish { results } => return self.complete(&results),
            }
        }
        Err(anyhow!("the job ended before its output was complete"))
    }

    /// Records a done chunk: held with its frames while they fit under the
    /// bound (the next chunk to write always fits: it goes out at once).
    fn take(&mut self, chunk: usize, result: TaskResult, frames: Vec<Vec<u8>>) {
        if chunk >= self.written.len() {
            return;
        }
        if chunk < self.next {
            // Ran again after it was written: `complete` compares checksums.
            return;
        }
        if let Some(old) = self.held.remove(&chunk) {
            self.held_bytes -= old.counted;
        }
        let size = frame_bytes(&frames);
        // The next chunk goes out at once: it is not held.
        let (frames, counted) = if chunk == self.next {
            (Some(frames), 0)
        } else if self.held_bytes + size <= self.hold_limit {
            (Some(frames), size)
        } else {
            (None, 0)
        };
        self.held_bytes += counted;
        self.report.held_peak_bytes = self.report.held_peak_bytes.max(self.held_bytes);
        self.held.insert(
            chunk,
            Held {
                result,
                frames,
                counted,
            },
        );
    }

    /// Writes the held chunks that continue the written prefix.
    fn drain(&mut self) -> anyhow::Result<()> {
        while !self.broken {
            let Some(h) = self.held.get(&self.next) else {
                return Ok(());
            };
            if chain::link(
                self.next,
                &h.result,
                self.prev_final.as_deref(),
                self.group_chunks,
            )
            .is_err()
            {
                self.broken = true;
                return Ok(());
            }
            let h = self.held.remove(&self.next).expect("just seen");
            self.held_bytes -= h.counted;
            let frames = match h.frames {
                Some(f) => f,
                None => self.fetch(&h.result)?,
            };
            self.write(&h.result, &frames)?;
        }
        Ok(())
    }

    /// Fetches a chunk object again and checks it as the scheduler did.
    fn fetch(&mut self, result: &TaskResult) -> anyhow::Result<Vec<Vec<u8>>> {
        self.report.refetched += 1;
        let expected = self.expected[result.chunk];
        let store = self.store.clone();
        let r = result.clone();
        let limit = self.fetch_timeout;
        self.rt
            .block_on(async move {
                let fetch = scheduler::verify(store.as_ref(), &r, expected);
                tokio::time::timeout(limit, fetch)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "fetching it again took over {:.0} s",
                            limit.as_secs_f64()
                        ))
                    })
            })
            .map_err(|e| anyhow!("chunk {}: {e}", result.chunk))
    }

    fn write(&mut self, result: &TaskResult, frames: &[Vec<u8>]) -> anyhow::Result<()> {
        let mux = self.mux.as_mut().context("the output is closed")?;
        for f in frames {
            let key = f.first().is_some_and(|b| b & 1 == 0);
            mux.write_frame(self.pts, f, key)
                .context("cannot write the output")?;
            self.pts += 1;
            self.keys += key as usize;
            self.bytes += f.len() as u64;
        }
        let i = self.next;
        self.written[i] = Some(result.chunk_sha256.clone());
        self.prev_final = Some(result.final_state.clone());
        self.report.chunk_written_s[i] = self.t0.elapsed().as_secs_f64();
        self.next += 1;
        Ok(())
    }

    /// Checks the written prefix against the final results, writes the
    /// rest and finishes the container.
    fn complete(mut self, results: &[TaskResult]) -> anyhow::Result<Assembled> {
        let stale = self.broken
            || (0..self.next).any(|i| {
                self.written[i].as_deref() != results.get(i).map(|r| r.chunk_sha256.as_str())
            });
        if stale {
            self.report.rewrites += 1;
            self.open()?;
        }
        for (i, r) in results.iter().enumerate().skip(self.next) {
            let held = self.held.remove(&i);
            let frames = match held {
                Some(Held {
                    result,
                    frames: Some(f),
                    ..
                }) if result.chunk_sha256 == r.chunk_sha256 => f,
                _ => self.fetch(r)?,
            };
            self.write(r, &frames)?;
        }
        self.held.clear();
        self.held_bytes = 0;
        let mux = self.mux.take().context("the output is closed")?;
        mux.finish(true).context("cannot write the output")?;
        Ok(Assembled {
            tmp: self.tmp.take().context("no temporary file")?,
            key_frames: self.keys,
            vp8_bytes: self.bytes,
            report: self.report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use excam_worker::keys::encode_frames;
    use excam_worker::store::LocalStore;
    use sha2::{Digest, Sha256};

    /// A job of `n` one-group chunks of 3 made-up frames each (the
    /// container does not look inside): chunk `i`'s frames, stored.
    struct Job {
        store: Arc<dyn Store>,
        results: Vec<TaskResult>,
        frames: Vec<Vec<Vec<u8>>>,
        dir: tempfile::TempDir,
    }

    fn digest(i: usize) -> String {
        hex::encode([i as u8 + 1; 32])
    }

    async fn job(n: usize, salt: u8) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().join("store")));
        let mut results = Vec::new();
        let mut frames = Vec::new();
        for i in 0..n {
            // First frame of the job a key frame (bit 0 clear), the rest not.
            let f: Vec<Vec<u8>> = (0..3)
                .map(|k| {
                    let key = i == 0 && k == 0;
                    let mut b = vec![if key { 0x10 } else { 0x11 }; 50 + 10 * i + k];
                    b[1] = salt;
                    b
                })
                .collect();
            let obj = encode_frames(&f);
            let key = format!("chunks/{i}-{salt}");
            store
                .put(&key, bytes::Bytes::from(obj.clone()))
                .await
                .unwrap();
            results.push(TaskResult {
                version: excam_worker::task::TASK_VERSION,
                job: "j".into(),
                run: "r".into(),
                chunk: i,
                attempt: 1,
                chunk_key: key,
                chunk_sha256: hex::encode(Sha256::digest(&obj)),
                chunk_bytes: obj.len() as u64,
                frames: 3,
                source_state: if i == 0 {
                    hex::encode([0u8; 32])
                } else {
                    digest(i - 1)
                },
                final_state: digest(i),
                phase1_state: None,
                phases: vec![],
                state_bytes: None,
                worker: String::new(),
                total_seconds: 0.0,
                key_frames: None,
            });
            frames.push(f);
        }
        Job {
            store,
            results,
            frames,
            dir,
        }
    }

    fn codec() -> CodecParams {
        CodecParams::from_config(&excam_codec::encode::encoder::EncoderConfig::new(16, 16))
    }

    fn start(j: &Job, container: Container, hold: u64) -> Assembler {
        let c = codec();
        Assembler::start(
            AssemblyParams {
                output: &j.dir.path().join("out"),
                container,
                codec: &c,
                expected: &vec![3; j.results.len()],
                group_chunks: j.results.len(),
                hold_bytes: hold,
                t0: Instant::now(),
                fetch_timeout: Duration::from_secs(60),
            },
            j.store.clone(),
            tokio::runtime::Handle::current(),
        )
        .unwrap()
    }

    fn done(j: &Job, i: usize) -> ChunkDone {
        ChunkDone {
            result: j.results[i].clone(),
            frames: j.frames[i].clone(),
            reused: false,
        }
    }

    /// The file a writer makes from all of `j`'s frames in order, at once.
    fn reference(j: &Job, container: Container) -> Vec<u8> {
        reference_of(j.dir.path(), &j.frames, container)
    }

    fn reference_of(dir: &Path, frames: &[Vec<Vec<u8>>], container: Container) -> Vec<u8> {
        let c = codec();
        let path = dir.join("reference");
        let f = std::fs::File::create(&path).unwrap();
        let mut w = VideoWriter::new(container, f, true, c.width, c.height, c.framerate).unwrap();
        for (n, f) in frames.iter().flatten().enumerate() {
            w.write_frame(n as u64, f, f[0] & 1 == 0).unwrap();
        }
        w.finish(true).unwrap();
        std::fs::read(path).unwrap()
    }

    async fn finish(a: Assembler, results: Vec<TaskResult>) -> Assembled {
        tokio::task::spawn_blocking(move || a.finish(results))
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_arriving_out_of_order_are_written_in_order_within_the_bound() {
        for container in [Container::Ivf, Container::Webm] {
            let j = job(6, 0).await;
            let want = reference(&j, container);
            // Room for about one chunk's frames: 5 arrives while 4, 3 and 2
            // are missing and is held; 4 does not fit beside it and is
            // fetched again when its turn comes.
            let one = frame_bytes(&j.frames[5]);
            let a = start(&j, container, one + 10);
            for i in [0, 1, 5, 4, 3, 2] {
                a.chunk_done(i, &mut done(&j, i));
            }
            let out = finish(a, j.results.clone()).await;
            assert_eq!(
                std::fs::read(out.tmp.path()).unwrap(),
                want,
                "{container:?}"
            );
            let r = &out.report;
            assert!(r.held_peak_bytes <= one + 10, "{r:?}");
            assert_eq!(
                (r.refetched, r.rewrites),
                (2, 0),
                "4 and 3 fetched again: {r:?}"
            );
            assert_eq!(out.key_frames, 1);
            assert_eq!(out.vp8_bytes, frame_bytes(&j.frames.concat()));
            // Every chunk was written before the job's end was announced.
            assert!(r.chunk_written_s.iter().all(|&t| t > 0.0), "{r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_room_nothing_is_fetched_twice_and_the_prefix_goes_out_at_once() {
        let j = job(4, 0).await;
        let a = start(&j, Container::Ivf, 1 << 20);
        for i in [3, 0, 1] {
            a.chunk_done(i, &mut done(&j, i));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        a.chunk_done(2, &mut done(&j, 2));
        let out = finish(a, j.results.clone()).await;
        assert_eq!(
            std::fs::read(out.tmp.path()).unwrap(),
            reference(&j, Container::Ivf)
        );
        let r = &out.report;
        assert_eq!(r.refetched, 0, "{r:?}");
        // Chunks 0 and 1 were written before chunk 2 arrived, 3 after it.
        let at = |i: usize| r.chunk_written_s[i];
        assert!(at(0) <= at(1) && at(1) < at(2) && at(2) <= at(3), "{r:?}");
        assert!(
            at(2) - at(1) >= 0.15,
            "0 and 1 went out before 2 came: {r:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_that_breaks_the_chain_is_not_written_and_a_changed_one_is_rewritten() {
        let j = job(3, 0).await;
        let other = job(3, 7).await;
        // Copy the other job's chunk objects into this store so they can be
        // fetched: a chunk 1 whose bytes differ (salt 7) and whose source
        // state is foreign.
        for r in &other.results {
            let b = other.store.get(&r.chunk_key).await.unwrap();
            j.store.put(&r.chunk_key, b).await.unwrap();
        }
        let a = start(&j, Container::Ivf, 1 << 20);
        let mut foreign = done(&j, 1);
        foreign.result.source_state = hex::encode([9u8; 32]);
        a.chunk_done(0, &mut done(&j, 0));
        a.chunk_done(1, &mut foreign);
        // Chunk 1 is not written (the chain is broken), so the final
        // results decide; here chunk 0 ran again with other bytes too.
        let mut results = j.results.clone();
        results[0] = other.results[0].clone();
        let out = finish(a, results).await;
        let mut want = j.frames.clone();
        want[0] = other.frames[0].clone();
        assert_eq!(
            std::fs::read(out.tmp.path()).unwrap(),
            reference_of(j.dir.path(), &want, Container::Ivf)
        );
        assert_eq!(out.report.rewrites, 1, "{:?}", out.report);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_object_that_changed_in_the_store_fails_the_assembly() {
        let j = job(3, 0).await;
        let a = start(&j, Container::Ivf, 0);
        // Chunk 2 is not held (no room): its object must verify again when
        // chunk 1 is written, after it was replaced.
        a.chunk_done(2, &mut done(&j, 2));
        a.chunk_done(0, &mut done(&j, 0));
        let k = &j.results[2].chunk_key;
        j.store
            .put(k, bytes::Bytes::from(encode_frames(&vec![vec![1u8; 9]; 3])))
            .await
            .unwrap();
        a.chunk_done(1, &mut done(&j, 1));
        let a_results = j.results.clone();
        let err = tokio::task::spawn_blocking(move || a.finish(a_results))
            .await
            .unwrap()
            .err()
            .expect("a changed object must fail the assembly");
        assert!(err.to_string().contains("SHA-256"), "{err:#}");
    }
}
