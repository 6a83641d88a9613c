//! `-o s3://bucket/key`: the IVF assembled in S3, its bytes never passing
//! through the coordinator.
//!
//! The output is one multipart upload whose parts S3 copies server side
//! (`UploadPartCopy`) from objects in the job's store. Chunk objects are
//! frame lists, not IVF, and S3 wants every part but the last to be at
//! least 5 MiB, while a chunk of N frames is usually far smaller (a 6-frame
//! 4K chunk is well under a megabyte). So consecutive final chunks are
//! grouped into parts of at least [`S3_MIN_PART`] bytes of IVF, and a
//! *merge task* on the job's own backend (a worker, like the encoding
//! tasks: see [`Merge`]) reads each group's chunk objects, checks them
//! against their results' SHA-256, frames them as IVF records (the first
//! part with the file header) and writes the part object; the coordinator
//! then copies it into the upload. The coordinator sends requests only.
//!
//! Why workers and not the coordinator: putting small chunks together
//! means reading them, and the point is that the coordinator's link is not
//! on the critical path. Why not the encoding tasks themselves: a chunk's
//! neighbours finish at other times and on other workers, and part
//! boundaries depend on sizes known only when chunks are done.
//!
//! Parts start as the prefix of final chunks grows (a chunk is final once
//! it is done and continues the chain written before it, as for the file
//! output, see [`super::assemble`]), so most of the copying overlaps the
//! encode; at the end only the last part's merge and copy and the
//! `CompleteMultipartUpload` remain. A failed job aborts the upload: no
//! object appears at the output key, and an older one there stays.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use excam_codec::container::ivf::{IvfHeader, IVF_FRAME_HEADER_LEN};
use excam_worker::store::S3Store;
use excam_worker::task::{Merge, MergePiece, Task, TaskResult};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::assemble::{AssemblyReport, PartReport};
use super::backend::Backend;
use super::chain;
use super::scheduler::{ChunkDone, DoneHook};

/// Smallest part S3 accepts but for the last one: 5 MiB.
pub const S3_MIN_PART: u64 = 5 << 20;

/// `s3://bucket/key` split, or `None` if `output` is not an S3 URL.
///
/// # Errors
/// An S3 URL without a bucket or a key.
pub fn parse_s3_output(output: &std::path::Path) -> Option<anyhow::Result<(String, String)>> {
    let s = output.to_str()?.strip_prefix("s3://")?;
    Some(match s.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() && !k.ends_with('/') => {
            Ok((b.to_string(), k.to_string()))
        }
        _ => Err(anyhow!(
            "-o s3://{s}: an S3 output needs a bucket and an object key (s3://BUCKET/KEY)"
        )),
    })
}

/// `fut`, or an error naming `what` if it has not ended within `limit`.
async fn within<T>(
    limit: std::time::Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| anyhow!("{what}: no answer within {:.0} s", limit.as_secs_f64()))
}

/// Bytes chunk `r`'s frames take as IVF frame records (its object holds an
/// 8-byte header and a 4-byte length per frame before the frames).
fn ivf_bytes(r: &TaskResult) -> u64 {
    let f = r.frames as u64;
    r.chunk_bytes.saturating_sub(8 + 4 * f) + IVF_FRAME_HEADER_LEN as u64 * f
}

/// What the S3 assembly needs.
pub struct S3Params {
    /// Output bucket.
    pub bucket: String,
    /// Output key.
    pub key: String,
    /// The job's store (the part objects go there; its client is used).
    pub store: S3Store,
    /// The job's backend, which runs the merge tasks.
    pub backend: Arc<dyn Backend>,
    /// Each chunk's task (a merge task is its first chunk's task with
    /// [`Task::merge`] set).
    pub tasks: Vec<Task>,
    /// Frames each chunk holds.
    pub expected: Vec<usize>,
    /// x (group heads start from no state).
    pub group_chunks: usize,
    /// Smallest part but the last ([`S3_MIN_PART`]; tests go lower,
    /// which only servers that do not check accept).
    pub min_part: u64,
    /// Tries per merge.
    pub max_tries: u32,
    /// Longest a merge attempt or one S3 request of the assembly may take
    /// (the job's task time-out): every wait of the job is bounded.
    pub timeout: std::time::Duration,
    /// Picture size and frame rate (the IVF header).
    pub size: (usize, usize),
    /// Frame rate numerator and denominator.
    pub fps: (u32, u32),
    /// The job's start, which report times are relative to.
    pub t0: Instant,
}

enum Msg {
    Done {
        chunk: usize,
        result: Box<TaskResult>,
    },
    Finish {
        results: Vec<TaskResult>,
    },
}

/// A finished S3 assembly.
pub struct S3Assembled {
    /// Bytes of the output object.
    pub size: u64,
    /// Key frames.
    pub key_frames: usize,
    /// VP8 bytes, without container framing.
    pub vp8_bytes: u64,
    /// What the assembly did.
    pub report: AssemblyReport,
}

/// Groups final chunks into parts and has them merged and copied as the
/// job runs; see the module docs.
pub struct S3Assembler {
    tx: mpsc::UnboundedSender<Msg>,
    task: tokio::task::JoinHandle<anyhow::Result<S3Assembled>>,
}

impl S3Assembler {
    /// Starts the multipart upload and the task that feeds it.
    ///
    /// # Errors
    /// The upload cannot be started (no such bucket, no permission).
    pub async fn start(p: S3Params) -> anyhow::Result<S3Assembler> {
        let create = p
            .store
            .client()
            .create_multipart_upload()
            .bucket(&p.bucket)
            .key(&p.key)
            .content_type("video/x-ivf")
            .send();
        let created = within(p.timeout, "starting the upload", create)
            .await?
            .map_err(|e| {
                anyhow!(
                    "cannot start the upload to s3://{}/{}: {}",
                    p.bucket,
                    p.key,
                    DisplayErrorContext(&e)
                )
            })?;
        let upload_id = created
            .upload_id()
            .context("no upload id in the CreateMultipartUpload answer")?
            .to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let client = p.store.client().clone();
            let timeout = p.timeout;
            let (bucket, key) = (p.bucket.clone(), p.key.clone());
            let mut s = Parts::new(p, upload_id.clone());
            let res = s.run(rx).await;
            if res.is_err() {
                // Nothing appears at the key; the copied parts are dropped.
                let abort = client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send();
                let _ = within(timeout, "aborting the upload", abort).await;
            }
            res
        });
        Ok(S3Assembler { tx, task })
    }

    /// A chunk is done (its frames are not needed: workers merge them).
    pub fn chunk_done(&self, chunk: usize, done: &ChunkDone) {
        let _ = self.tx.send(Msg::Done {
            chunk,
            result: Box::new(done.result.clone()),
        });
    }

    /// Merges and copies what is left and completes the upload.
    ///
    /// # Errors
    /// A merge that failed `max_tries` times, a copy or the completion
    /// refused; the upload is aborted then.
    pub async fn finish(self, results: Vec<TaskResult>) -> anyhow::Result<S3Assembled> {
        let _ = self.tx.send(Msg::Finish { results });
        drop(self.tx);
        self.task
            .await
            .map_err(|e| anyhow!("the S3 assembly stopped: {e}"))?
    }
}

impl DoneHook for S3Assembler {
    fn done(&self, _count: usize, chunk: usize, done: &mut ChunkDone) {
        self.chunk_done(chunk, done);
    }
}

/// One part being merged and copied: (part number, ETag, bytes, key
/// frames).
type PartJobs = JoinSet<anyhow::Result<(i32, String, u64, usize)>>;

struct Parts {
    p: S3Params,
    upload_id: String,
    /// First chunk not yet in a part.
    next: usize,
    prev_final: Option<String>,
    held: BTreeMap<usize, TaskResult>,
    /// Chunks of the part being filled.
    cur: Vec<TaskResult>,
    cur_bytes: u64,
    /// Frames before the part being filled.
    pts: u64,
    /// Checksum of each chunk put in a part.
    used: Vec<Option<String>>,
    jobs: PartJobs,
    /// Key frames the merges counted.
    keys: usize,
    report: AssemblyReport,
}

impl Parts {
    fn new(p: S3Params, upload_id: String) -> Parts {
        let n = p.expected.len();
        let header = 32;
        Parts {
            upload_id,
            next: 0,
            prev_final: None,
            held: BTreeMap::new(),
            cur: Vec::new(),
            cur_bytes: header,
            pts: 0,
            used: vec![None; n],
            jobs: JoinSet::new(),
            keys: 0,
            report: AssemblyReport {
                chunk_written_s: vec![0.0; n],
                ..AssemblyReport::default()
            },
            p,
        }
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> anyhow::Result<S3Assembled> {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Msg::Done { chunk, result }) => {
                        let at = self.p.t0.elapsed().as_secs_f64();
                        self.report.last_chunk_done_s = self.report.last_chunk_done_s.max(at);
                        if chunk >= self.next && chunk < self.used.len() {
                            self.held.insert(chunk, *result);
                        }
                        self.drain();
                    }
                    Some(Msg::Finish { results }) => return self.complete(results).await,
                    None => bail!("the job ended before its output was complete"),
                },
                Some(j) = self.jobs.join_next(), if !self.jobs.is_empty() => {
                    self.part_copied(j)?;
                }
            }
        }
    }

    fn part_copied(
        &mut self,
        j: Result<anyhow::Result<(i32, String, u64, usize)>, tokio::task::JoinError>,
    ) -> anyhow::Result<()> {
        let (number, etag, bytes, keys) = j.map_err(|e| anyhow!("a part stopped: {e}"))??;
        self.keys += keys;
        let t = self.p.t0.elapsed().as_secs_f64();
        let part = self
            .report
            .parts
            .iter_mut()
            .find(|r| r.number == number)
            .context("a part nobody started")?;
        part.etag = etag;
        part.copied_s = t;
        part.bytes = bytes;
        for c in part.first_chunk..part.first_chunk + part.chunks {
            self.report.chunk_written_s[c] = t;
        }
        Ok(())
    }

    /// Puts the final chunks continuing the prefix into parts.
    fn drain(&mut self) {
        while let Some(r) = self.held.get(&self.next) {
            if chain::link(
                self.next,
                r,
                self.prev_final.as_deref(),
                self.p.group_chunks,
            )
            .is_err()
            {
                // The chain check at the end decides.
                return;
            }
            let r = self.held.remove(&self.next).expect("just seen");
            self.add(r);
        }
    }

    fn add(&mut self, r: TaskResult) {
        self.used[self.next] = Some(r.chunk_sha256.clone());
        self.prev_final = Some(r.final_state.clone());
        self.cur_bytes += ivf_bytes(&r);
        self.cur.push(r);
        self.next += 1;
        if self.cur_bytes >= self.p.min_part {
            self.close_part();
        }
    }

    /// Starts merging and copying the chunks gathered so far as one part.
    fn close_part(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let chunks = std::mem::take(&mut self.cur);
        let bytes = std::mem::replace(&mut self.cur_bytes, 0);
        let number = self.report.parts.len() as i32 + 1;
        let first = self.next - chunks.len();
        let frames: u64 = chunks.iter().map(|r| r.frames as u64).sum();
        let prefix = if number == 1 {
            let mut h = IvfHeader::vp8(
                self.p.size.0 as u16,
                self.p.size.1 as u16,
                self.p.fps.1,
                self.p.fps.0,
            );
            h.frame_count = self.p.expected.iter().sum::<usize>() as u32;
            hex::encode(h.to_bytes())
        } else {
            String::new()
        };
        let template = &self.p.tasks[first];
        let merge = Merge {
            pieces: chunks
                .iter()
                .map(|r| MergePiece {
                    key: r.chunk_key.clone(),
                    sha256: r.chunk_sha256.clone(),
                    frames: r.frames,
                })
                .collect(),
            first_pts: self.pts,
            prefix_hex: prefix,
            out_key: format!(
                "{}runs/{}/parts/{number}",
                super::worker_api::job_prefix(&template.job),
                template.run
            ),
        };
        self.pts += frames;
        self.report.parts.push(PartReport {
            number,
            first_chunk: first,
            chunks: chunks.len(),
            bytes,
            etag: String::new(),
            copied_s: 0.0,
        });
        let mut task = template.clone();
        task.merge = Some(merge);
        let backend = self.p.backend.clone();
        let store_bucket = self.p.store.bucket().to_string();
        let object = self
            .p
            .store
            .object_key(&task.merge.as_ref().expect("set").out_key);
        let client = self.p.store.client().clone();
        let (bucket, key, upload_id) = (
            self.p.bucket.clone(),
            self.p.key.clone(),
            self.upload_id.clone(),
        );
        let tries = self.p.max_tries.max(1);
        let timeout = self.p.timeout;
        self.jobs.spawn(async move {
            let object = object.map_err(|e| anyhow!("part {number}: {e}"))?;
            let mut last = String::new();
            let mut merged = None;
            for attempt in 1..=tries {
                task.attempt = attempt;
                match tokio::time::timeout(timeout, backend.run(task.clone())).await {
                    Ok(Ok(r)) => {
                        merged = Some(r);
                        break;
                    }
                    Ok(Err(e)) => last = e.message,
                    Err(_) => last = format!("no answer within {:.0} s", timeout.as_secs_f64()),
                }
            }
            let r = merged.ok_or_else(|| {
                anyhow!("merging part {number} failed {tries} times; last error: {last}")
            })?;
            if r.chunk_bytes != bytes || r.chunk_key != task.merge.as_ref().expect("set").out_key {
                bail!(
                    "merged part {number} is {} bytes at {}, expected {bytes}",
                    r.chunk_bytes,
                    r.chunk_key
                );
            }
            let copy = client
                .upload_part_copy()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(format!("{store_bucket}/{object}"))
                .send();
            let copied = within(timeout, &format!("copying part {number}"), copy)
                .await?
                .map_err(|e| anyhow!("copying part {number}: {}", DisplayErrorContext(&e)))?;
            let etag = copied
                .copy_part_result()
                .and_then(|c| c.e_tag())
                .with_context(|| format!("no ETag for part {number}"))?
                .to_string();
            Ok((number, etag, bytes, r.key_frames.unwrap_or(0)))
        });
    }

    /// Puts the rest of the chunks into parts (the last may be small),
    /// waits for every part and completes the upload.
    async fn complete(&mut self, results: Vec<TaskResult>) -> anyhow::Result<S3Assembled> {
        for (i, used) in self.used.iter().enumerate().take(self.next) {
            if used.as_deref() != results.get(i).map(|r| r.chunk_sha256.as_str()) {
                bail!("chunk {i} changed after it was put into a part of the output");
            }
        }
        let vp8_bytes = results
            .iter()
            .map(|r| r.chunk_bytes.saturating_sub(8 + 4 * r.frames as u64))
            .sum();
        for r in results.into_iter().skip(self.next) {
            self.add(r);
        }
        self.close_part();
        while let Some(j) = self.jobs.join_next().await {
            self.part_copied(j)?;
        }
        let parts: Vec<CompletedPart> = self
            .report
            .parts
            .iter()
            .map(|r| {
                CompletedPart::builder()
                    .part_number(r.number)
                    .e_tag(&r.etag)
                    .build()
            })
            .collect();
        let size = self.report.parts.iter().map(|r| r.bytes).sum();
        let complete = self
            .p
            .store
            .client()
            .complete_multipart_upload()
            .bucket(&self.p.bucket)
            .key(&self.p.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send();
        within(self.p.timeout, "completing the upload", complete)
            .await?
            .map_err(|e| {
                anyhow!(
                    "cannot complete s3://{}/{}: {}",
                    self.p.bucket,
                    self.p.key,
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(S3Assembled {
            size,
            key_frames: self.keys,
            vp8_bytes,
            report: std::mem::take(&mut self.report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_outputs_are_parsed_and_bad_ones_named() {
        let p = |s: &str| parse_s3_output(std::path::Path::new(s));
        assert!(p("out.ivf").is_none());
        assert_eq!(
            p("s3://b/dir/out.ivf").unwrap().unwrap(),
            ("b".to_string(), "dir/out.ivf".to_string())
        );
        for bad in ["s3://b", "s3://b/", "s3:///k", "s3://b/dir/"] {
            let e = p(bad).unwrap().unwrap_err().to_string();
            assert!(e.contains("bucket and an object key"), "{bad}: {e}");
        }
    }
}
