//! What one simulated run adds up to ([`RunResult`]), from the engine's
//! finished state: the wall time (the chunks fetched over the
//! coordinator's link and written in order as they arrive, or merged and
//! copied in S3), the critical
//! path walked back from the last chunk through the hand-offs it waited
//! for, the phases' ends, and the relay's and the store's counts.

use std::cmp::Ordering;

use super::super::{Cat, PathStep, RunResult};
use super::{Sim, EPS, STEP_CAT, S_ENC, S_GS, S_OUT, S_REB, S_SEND1, S_SENDF, S_WAIT1, S_WAITF};

impl Sim<'_> {
    /// The run's result, once every task has finished.
    pub(super) fn result(&self) -> RunResult {
        let p = self.p;
        let c = self.chunks;
        // Each chunk is fetched as soon as its task is done, over the
        // coordinator's one link (GETs overlap their first-byte latency),
        // and written to the output as soon as it and every chunk before
        // it are fetched (the runtime's streamed assembly): what is left
        // after the last task is the tail of the fetches and writes, and
        // `finish`.
        let mut done: Vec<(f64, usize)> = (0..c)
            .map(|i| (self.tasks[i].done.unwrap_or(self.all_done), i))
            .collect();
        done.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut link = 0.0f64;
        let mut fetched = vec![0.0f64; c];
        for (t, i) in done {
            let bytes = self.len(i) as f64 * p.out_frame_bytes;
            link = link.max(t + p.s3_latency) + bytes / p.coord_bw;
            fetched[i] = link;
        }
        let mut written = 0.0f64;
        for (i, &f) in fetched.iter().enumerate() {
            let bytes = self.len(i) as f64 * p.out_frame_bytes;
            written = written.max(f) + bytes / p.write_bw.max(1.0);
        }
        if p.output_in_s3 {
            written = self.s3_assembly_end();
        }
        let assembly = (written - self.all_done).max(0.0) + p.finish;
        let wall = self.all_done + assembly;

        let mut path = vec![PathStep {
            chunk: None,
            category: Cat::Assembly,
            seconds: assembly,
        }];
        let last = (0..c)
            .max_by(|&a, &b| {
                let (x, y) = (self.tasks[a].done, self.tasks[b].done);
                x.partial_cmp(&y).unwrap_or(Ordering::Equal).then(b.cmp(&a))
            })
            .expect("at least one chunk");
        let mut aid = self.tasks[last].winner;
        let mut from = S_OUT;
        'walk: loop {
            let a = &self.attempts[aid];
            for st in (0..=from).rev() {
                let begin = if st == 0 { a.start } else { a.ends[st - 1] };
                let d = a.ends[st] - begin;
                if matches!(st, S_WAIT1 | S_WAITF) && d > EPS {
                    let dep = 2 * (a.task - 1) + usize::from(st == S_WAITF);
                    path.push(PathStep {
                        chunk: Some(a.task - 1),
                        category: Cat::Relay,
                        seconds: a.ends[st] - self.emitted_at[dep],
                    });
                    aid = self.source[dep];
                    from = if st == S_WAITF { S_SENDF } else { S_SEND1 };
                    continue 'walk;
                }
                if d > 0.0 {
                    path.push(PathStep {
                        chunk: Some(a.task),
                        category: STEP_CAT[st],
                        seconds: d,
                    });
                }
            }
            let t = &self.tasks[a.task];
            if a.start > t.launch {
                path.push(PathStep {
                    chunk: Some(a.task),
                    category: Cat::Retry,
                    seconds: a.start - t.launch,
                });
            }
            if t.launch > p.upload_s {
                path.push(PathStep {
                    chunk: Some(a.task),
                    category: Cat::Queue,
                    seconds: t.launch - p.upload_s,
                });
            }
            if p.upload_s > 0.0 {
                path.push(PathStep {
                    chunk: None,
                    category: Cat::Upload,
                    seconds: p.upload_s,
                });
            }
            break;
        }
        path.reverse();
        // Merge neighbours with the same chunk and category.
        let mut merged: Vec<PathStep> = Vec::new();
        for s in path {
            match merged.last_mut() {
                Some(m) if m.chunk == s.chunk && m.category == s.category => m.seconds += s.seconds,
                _ => merged.push(s),
            }
        }
        let mut breakdown = [0.0; 11];
        for s in &merged {
            let k = Cat::ALL
                .iter()
                .position(|&x| x == s.category)
                .expect("a category");
            breakdown[k] += s.seconds;
        }

        let mut phase_end_s = [0.0f64; 4];
        for t in &self.tasks {
            let a = &self.attempts[t.winner];
            for (k, st) in [S_ENC, S_GS, S_REB, S_OUT].into_iter().enumerate() {
                phase_end_s[k] = phase_end_s[k].max(a.ends[st]);
            }
        }

        let span = self.last_relay - self.first_relay;
        let relay_utilisation = if self.relay_bytes > 0.0 && p.relay_capacity.is_finite() {
            self.relay_bytes / p.relay_capacity / span.max(1e-9)
        } else {
            0.0
        };
        let store_hops = (0..2 * c)
            .filter(|&d| self.source[d] != usize::MAX && self.by_store[d])
            .count();

        RunResult {
            wall_s: wall,
            breakdown,
            critical_path: merged,
            phase_end_s,
            worker_seconds: self.attempts.iter().map(|a| a.end - a.start).sum(),
            attempts: self.attempts.len(),
            retries: self.retries,
            twins: self.twins,
            relay_bytes: self.relay_bytes,
            peak_relay_bytes: self.peak_held,
            store_hops,
            relay_busy_s: self.relay_busy,
            relay_saturated_s: self.relay_saturated,
            relay_utilisation,
            s3_gets: self.s3_gets + c,
            s3_puts: self.s3_puts,
        }
    }

    /// When an output assembled in S3 is complete: parts of consecutive
    /// chunks (IVF framing included, the file header in the first) close
    /// at the minimum part size; a part's merge starts once its chunks and
    /// all before them are done: a worker's start-up, one GET per chunk,
    /// the PUT of the part, then the server-side copy; the upload
    /// completes one request after the last part.
    fn s3_assembly_end(&self) -> f64 {
        let p = self.p;
        let c = self.chunks;
        let (mut ready, mut end) = (0.0f64, 0.0f64);
        let (mut bytes, mut n) = (32.0f64, 0usize);
        for i in 0..c {
            ready = ready.max(self.tasks[i].done.unwrap_or(self.all_done));
            let len = self.len(i) as f64;
            bytes += len * (p.out_frame_bytes + 12.0);
            n += 1;
            if bytes >= p.s3_min_part || i + 1 == c {
                let merge = p.cold_median
                    + (n as f64 + 2.0) * p.s3_latency
                    + 3.0 * bytes / p.s3_bw.max(1.0);
                end = end.max(ready + merge);
                (bytes, n) = (0.0, 0);
            }
        }
        end + p.s3_latency
    }
}
