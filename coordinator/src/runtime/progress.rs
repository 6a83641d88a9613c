//! The live display of a distributed job: chunks done per phase, workers
//! running, retries, twins and ETA on a terminal; plain log lines when
//! stderr is not one; nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::scheduler::{Event, Observer};

/// Counts events and shows them.
pub struct Display {
    bar: Option<ProgressBar>,
    log: bool,
    chunks: usize,
    start: Instant,
    done: AtomicUsize,
    /// Chunks past each phase (a task reports all three at once).
    phases: [AtomicUsize; 3],
    retries: AtomicUsize,
    twins: AtomicUsize,
}

impl Display {
    /// A display for `chunks` chunks of which `reused` are already done.
    pub fn new(chunks: usize, reused: usize, quiet: bool) -> Display {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::new(chunks as u64);
            b.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} chunks {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_position(reused as u64);
            b
        });
        Display {
            bar,
            log: !quiet && !tty,
            chunks,
            start: Instant::now(),
            done: AtomicUsize::new(reused),
            phases: [
                AtomicUsize::new(reused),
                AtomicUsize::new(reused),
                AtomicUsize::new(reused),
            ],
            retries: AtomicUsize::new(0),
            twins: AtomicUsize::new(0),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn status(&self, running: usize) -> String {
        let p = |i: usize| self.phases[i].load(Ordering::Relaxed);
        format!(
            "phases {}/{}/{}, {running} running, {} retries, {} twins",
            p(0),
            p(1),
            p(2),
            self.retries.load(Ordering::Relaxed),
            self.twins.load(Ordering::Relaxed)
        )
    }

    fn line(&self, msg: &str) {
        if self.log {
            eprintln!("[{:7.2} s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }
}

impl Observer for Display {
    fn event(&self, ev: &Event<'_>, running: usize) {
        match ev {
            Event::Launched {
                chunk,
                attempt,
                speculative,
            } => {
                if *speculative {
                    self.twins.fetch_add(1, Ordering::Relaxed);
                    self.line(&format!("chunk {chunk}: straggler, twin attempt {attempt}"));
                } else if *attempt > 1 {
                    self.line(&format!("chunk {chunk}: attempt {attempt}"));
                }
            }
            Event::Done { chunk, result } => {
                let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                // A task answers once, after all three of its phases.
                for c in &self.phases {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                self.line(&format!(
                    "chunk {chunk} done ({d}/{}) by {} in {:.2} s",
                    self.chunks, result.worker, result.total_seconds
                ));
                if let Some(b) = &self.bar {
                    b.set_position(d as u64);
                }
            }
            Event::Failed {
                chunk,
                attempt,
                error,
            } => {
                self.retries.fetch_add(1, Ordering::Relaxed);
                self.line(&format!("chunk {chunk}: attempt {attempt} failed: {error}"));
            }
            Event::LostRace { chunk, attempt } => {
                self.line(&format!(
                    "chunk {chunk}: attempt {attempt} lost the race, stopped"
                ));
            }
        }
        if let Some(b) = &self.bar {
            b.set_message(self.status(running));
        }
    }
}
