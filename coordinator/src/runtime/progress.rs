//! Progress reports that fit wherever stderr goes: a live bar on a
//! terminal, plain periodic lines in a log, one JSON object per line for
//! tools (`--progress json`), nothing with `--quiet`.
//!
//! Two reporters share the style: [`FrameProgress`] for an encode that
//! produces frames one by one (frames, fps, kbit/s, ETA) and [`Display`]
//! for a distributed job (chunks done, tasks running, queued, retried and
//! twinned, and the estimated dollars spent so far).
//!
//! Everything goes to stderr: stdout may be the video (`-o -`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::scheduler::{Event, Observer};

/// How progress is reported (`--progress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// A live bar redrawn in place (indicatif draws it only on a terminal).
    Bar,
    /// A plain line every [`PLAIN_INTERVAL`] and at the end.
    Plain,
    /// One JSON object per line, per update, for tools.
    Json,
    /// Nothing (what `--quiet` selects).
    None,
}

/// How often plain lines are printed.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
/// How often JSON lines are printed at most (the last one always is).
pub const JSON_INTERVAL: Duration = Duration::from_millis(250);

/// The mode for the rest of the process (set once by the CLI).
static MODE: AtomicU8 = AtomicU8::new(0);

impl ProgressMode {
    const ALL: [ProgressMode; 5] = [
        ProgressMode::Auto,
        ProgressMode::Bar,
        ProgressMode::Plain,
        ProgressMode::Json,
        ProgressMode::None,
    ];

    /// Makes `self` the mode of every reporter created afterwards that is
    /// not told to be quiet. The CLI calls this once from its flags, so
    /// the runtime need not thread a presentation detail through every
    /// configuration struct.
    pub fn set_global(self) {
        let i = Self::ALL.iter().position(|m| *m == self).unwrap_or(0);
        MODE.store(i as u8, Ordering::Relaxed);
    }

    /// The mode set by [`set_global`](Self::set_global) (default `Auto`).
    pub fn global() -> ProgressMode {
        Self::ALL[usize::from(MODE.load(Ordering::Relaxed)).min(4)]
    }

    /// `Auto` made concrete for stderr as it is; `quiet` forces `None`.
    pub fn resolve(self, quiet: bool) -> ProgressMode {
        match self {
            _ if quiet => ProgressMode::None,
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        }
    }
}

/// Writes one line to stderr, ignoring failures: losing a progress line
/// must not fail an encode.
fn emit(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// Seconds to go at the current rate, if it can be told.
fn eta(done: f64, total: Option<f64>, elapsed: f64) -> Option<f64> {
    let total = total?;
    (done > 0.0 && total >= done).then(|| elapsed / done * (total - done))
}

/// Progress of an encode producing frames one at a time.
pub struct FrameProgress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
}

impl FrameProgress {
    /// A reporter in the global mode for `total` frames (if known).
    pub fn new(quiet: bool, total: Option<u64>) -> FrameProgress {
        Self::with_mode(ProgressMode::global().resolve(quiet), total)
    }

    /// A reporter in `mode` (already resolved: not `Auto`).
    pub fn with_mode(mode: ProgressMode, total: Option<u64>) -> FrameProgress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let (bar, template) = match total {
                Some(n) => (
                    ProgressBar::new(n),
                    "{bar:30} {pos}/{len} frames, {msg} [{elapsed_precise}, ETA {eta}]",
                ),
                None => (
                    ProgressBar::no_length(),
                    "{pos} frames, {msg} [{elapsed_precise}]",
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        FrameProgress {
            mode,
            bar,
            total,
            start: Instant::now(),
            last: None,
        }
    }

    /// Reports `frames` encoded so far, `bytes` of VP8 for them, at
    /// `seconds_per_frame` of video each; `q` is the last frame's
    /// quantizer (0..63).
    pub fn update(&mut self, frames: u64, bytes: u64, seconds_per_frame: f64, q: u8) {
        self.report(frames, bytes, seconds_per_frame, Some(q), false);
    }

    /// The last report: always printed in the plain and JSON modes; the bar
    /// is removed.
    pub fn finish(&mut self, frames: u64, bytes: u64, seconds_per_frame: f64) {
        self.report(frames, bytes, seconds_per_frame, None, true);
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Removes the bar without a last report (the caller reports instead).
    pub fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn report(&mut self, frames: u64, bytes: u64, spf: f64, q: Option<u8>, last: bool) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let fps = frames as f64 / elapsed.max(1e-9);
        let kbps = if frames == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 / (frames as f64 * spf) / 1000.0
        };
        let eta = eta(frames as f64, self.total.map(|t| t as f64), elapsed);
        let interval = match self.mode {
            ProgressMode::Plain => PLAIN_INTERVAL,
            ProgressMode::Json => JSON_INTERVAL,
            _ => Duration::ZERO,
        };
        let due = last || self.last.is_none_or(|t| now.duration_since(t) >= interval);
        match self.mode {
            ProgressMode::Bar => {
                if let Some(b) = &self.bar {
                    b.set_position(frames);
                    let q = q.map(|q| format!(", q {q}")).unwrap_or_default();
                    b.set_message(format!("{fps:.1} fps, {kbps:.1} kbit/s{q}"));
                }
            }
            ProgressMode::Plain if due => {
                let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
                let eta = eta.map(|s| format!(", ETA {s:.0} s")).unwrap_or_default();
                emit(&format!(
                    "[{elapsed:7.2} s] {frames}{of} frames, {fps:.1} fps, {kbps:.1} kbit/s{eta}{}",
                    if last { ", done" } else { "" }
                ));
            }
            ProgressMode::Json if due => emit(
                &json!({
                    "event": if last { "done" } else { "progress" },
                    "frames": frames,
                    "total_frames": self.total,
                    "bytes": bytes,
                    "elapsed_s": elapsed,
                    "fps": fps,
                    "kbps": kbps,
                    "eta_s": eta,
                    "q": q,
                })
                .to_string(),
            ),
            _ => return,
        }
        self.last = Some(now);
    }
}

/// Progress of the local ExCamera pipeline: chunks done per phase.
pub struct PhaseProgress {
    mode: ProgressMode,
    bars: Vec<ProgressBar>,
    names: [String; 3],
    chunks: u64,
    start: Instant,
    state: Mutex<([u64; 3], Option<Instant>)>,
}

impl PhaseProgress {
    /// A reporter in the global mode for three phases named `names`, each
    /// over `chunks` chunks.
    pub fn new(quiet: bool, names: [String; 3], chunks: u64) -> PhaseProgress {
        let mode = ProgressMode::global().resolve(quiet);
        let mut bars = Vec::new();
        if mode == ProgressMode::Bar {
            let multi =
                indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "{prefix:>30} {bar:30} {pos}/{len} chunks [{elapsed_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            for n in &names {
                let b = multi.add(ProgressBar::new(chunks));
                b.set_style(style.clone());
                b.set_prefix(n.clone());
                bars.push(b);
            }
        }
        PhaseProgress {
            mode,
            bars,
            names,
            chunks,
            start: Instant::now(),
            state: Mutex::new(([0; 3], None)),
        }
    }

    /// Phase `phase` (0..3) has `done` chunks done.
    pub fn update(&self, phase: usize, done: u64) {
        self.report(Some((phase, done)), false);
    }

    /// Removes the bars; plain and JSON modes print a last line.
    pub fn finish(&self) {
        for b in &self.bars {
            b.finish_and_clear();
        }
        self.report(None, true);
    }

    fn report(&self, update: Option<(usize, u64)>, last: bool) {
        let now = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if let Some((phase, done)) = update.filter(|(p, _)| *p < 3) {
            st.0[phase] = st.0[phase].max(done);
            if let Some(b) = self.bars.get(phase) {
                b.set_position(done);
            }
        }
        let interval = match self.mode {
            ProgressMode::Plain => PLAIN_INTERVAL,
            ProgressMode::Json => JSON_INTERVAL,
            _ => return,
        };
        if !last && st.1.is_some_and(|t| now.duration_since(t) < interval) {
            return;
        }
        st.1 = Some(now);
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let d = st.0;
        if self.mode == ProgressMode::Plain {
            emit(&format!(
                "[{elapsed:7.2} s] chunks done of {}: {} {}, {} {}, {} {}{}",
                self.chunks,
                self.names[0],
                d[0],
                self.names[1],
                d[1],
                self.names[2],
                d[2],
                if last { ", done" } else { "" }
            ));
        } else {
            emit(
                &json!({
                    "event": if last { "done" } else { "progress" },
                    "chunks": self.chunks,
                    "phases": [
                        {"phase": self.names[0], "done": d[0]},
                        {"phase": self.names[1], "done": d[1]},
                        {"phase": self.names[2], "done": d[2]},
                    ],
                    "elapsed_s": elapsed,
                })
                .to_string(),
            );
        }
    }
}

/// What a distributed job costs, to show the dollars spent so far (the
/// same model as the report's estimate).
#[derive(Clone, Copy, Debug, Default)]
pub struct Prices {
    /// USD per worker-second (memory in GB times the GB-second price).
    pub per_worker_second: f64,
    /// USD per invocation.
    pub per_request: f64,
}

impl Prices {
    /// Prices for workers of `memory_mb` at `per_gb_s` and `per_request`.
    pub fn new(memory_mb: u32, per_gb_s: f64, per_request: f64) -> Prices {
        Prices {
            per_worker_second: f64::from(memory_mb) / 1024.0 * per_gb_s,
            per_request,
        }
    }
}

/// The live display of a distributed job.
pub struct Display {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    chunks: usize,
    start: Instant,
    done: AtomicUsize,
    retries: AtomicUsize,
    twins: AtomicUsize,
    prices: Prices,
    /// Worker-seconds of ended attempts, launches, and when each running
    /// attempt started.
    spend: Mutex<Spend>,
}

#[derive(Default)]
struct Spend {
    ended_seconds: f64,
    attempts: usize,
    running: HashMap<(usize, u32), Instant>,
    last_line: Option<Instant>,
}

impl Display {
    /// A display for `chunks` chunks of which `reused` are already done,
    /// in the global mode.
    pub fn new(chunks: usize, reused: usize, quiet: bool) -> Display {
        Self::with_mode(ProgressMode::global().resolve(quiet), chunks, reused)
    }

    /// A display in `mode` (already resolved: not `Auto`).
    pub fn with_mode(mode: ProgressMode, chunks: usize, reused: usize) -> Display {
        let bar = (mode == ProgressMode::Bar).then(|| {
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
            mode,
            bar,
            chunks,
            start: Instant::now(),
            done: AtomicUsize::new(reused),
            retries: AtomicUsize::new(0),
            twins: AtomicUsize::new(0),
            prices: Prices::default(),
            spend: Mutex::new(Spend::default()),
        }
    }

    /// Shows the estimated cost so far at these prices.
    pub fn with_prices(mut self, prices: Prices) -> Display {
        self.prices = prices;
        self
    }

    /// Removes the bar; the plain and JSON modes print a last line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.summary(0, true);
    }

    /// Estimated USD spent so far: ended attempts, the running ones up to
    /// now, and a request per launch.
    fn dollars(&self, spend: &Spend, now: Instant) -> f64 {
        let live: f64 = spend
            .running
            .values()
            .map(|t| now.duration_since(*t).as_secs_f64())
            .sum();
        (spend.ended_seconds + live) * self.prices.per_worker_second
            + spend.attempts as f64 * self.prices.per_request
    }

    /// The bar's message, a plain line or a JSON line, as the mode says.
    fn summary(&self, running: usize, last: bool) {
        let now = Instant::now();
        let Ok(mut spend) = self.spend.lock() else {
            return;
        };
        let done = self.done.load(Ordering::Relaxed);
        let retries = self.retries.load(Ordering::Relaxed);
        let twins = self.twins.load(Ordering::Relaxed);
        // Twins run beside their chunk's first attempt; they queue nothing.
        let queued = self
            .chunks
            .saturating_sub(done + running.saturating_sub(twins));
        let queued = if last { 0 } else { queued };
        let usd = self.dollars(&spend, now);
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let interval = match self.mode {
            ProgressMode::Plain => PLAIN_INTERVAL,
            ProgressMode::Json => JSON_INTERVAL,
            _ => Duration::ZERO,
        };
        let due = last
            || spend
                .last_line
                .is_none_or(|t| now.duration_since(t) >= interval);
        match self.mode {
            ProgressMode::Bar => {
                if let Some(b) = &self.bar {
                    b.set_message(format!(
                        "{running} running, {queued} queued, {retries} retried, \
                         {twins} twins, ${usd:.4}"
                    ));
                }
            }
            ProgressMode::Plain if due => emit(&format!(
                "[{elapsed:7.2} s] {done}/{} chunks, {running} running, {queued} queued, \
                 {retries} retried, {twins} twins, ${usd:.4} so far{}",
                self.chunks,
                if last { ", done" } else { "" }
            )),
            ProgressMode::Json if due => emit(
                &json!({
                    "event": if last { "done" } else { "progress" },
                    "chunks_done": done,
                    "chunks": self.chunks,
                    "running": running,
                    "queued": queued,
                    "retried": retries,
                    "twins": twins,
                    "elapsed_s": elapsed,
                    "eta_s": eta(done as f64, Some(self.chunks as f64), elapsed),
                    "usd": usd,
                })
                .to_string(),
            ),
            _ => return,
        }
        spend.last_line = Some(now);
    }

    /// A plain-mode line about one task (retries, twins, failures).
    fn line(&self, msg: &str) {
        if self.mode == ProgressMode::Plain {
            emit(&format!(
                "[{:7.2} s] {msg}",
                self.start.elapsed().as_secs_f64()
            ));
        }
    }

    /// Moves an attempt from running to ended.
    fn ended(&self, chunk: usize, attempt: Option<u32>, seconds: Option<f64>) {
        let now = Instant::now();
        let Ok(mut spend) = self.spend.lock() else {
            return;
        };
        let started = match attempt {
            Some(a) => spend.running.remove(&(chunk, a)),
            None => None,
        };
        let s = seconds
            .or_else(|| started.map(|t| now.duration_since(t).as_secs_f64()))
            .unwrap_or(0.0);
        spend.ended_seconds += s;
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
                if let Ok(mut spend) = self.spend.lock() {
                    spend.attempts += 1;
                    spend.running.insert((*chunk, *attempt), Instant::now());
                }
                if *speculative {
                    self.twins.fetch_add(1, Ordering::Relaxed);
                    self.line(&format!("chunk {chunk}: straggler, twin attempt {attempt}"));
                } else if *attempt > 1 {
                    self.line(&format!("chunk {chunk}: attempt {attempt}"));
                }
            }
            Event::Done { chunk, result } => {
                let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                self.ended(*chunk, Some(result.attempt), Some(result.total_seconds));
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
                self.ended(*chunk, Some(*attempt), None);
                self.line(&format!("chunk {chunk}: attempt {attempt} failed: {error}"));
            }
            Event::LostRace { chunk, attempt } => {
                self.ended(*chunk, Some(*attempt), None);
                self.line(&format!(
                    "chunk {chunk}: attempt {attempt} lost the race, stopped"
                ));
            }
            Event::Regenerating { chunk, reason } => {
                self.done.fetch_sub(1, Ordering::Relaxed);
                self.line(&format!("chunk {chunk}: runs again, {reason}"));
            }
        }
        self.summary(running, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_proportional() {
        assert_eq!(eta(10.0, Some(30.0), 5.0), Some(10.0));
        assert_eq!(eta(0.0, Some(30.0), 5.0), None);
        assert_eq!(eta(10.0, None, 5.0), None);
    }

    #[test]
    fn prices_per_worker_second() {
        let p = Prices::new(2048, 0.5, 0.1);
        assert_eq!(p.per_worker_second, 1.0);
        assert_eq!(p.per_request, 0.1);
    }

    #[test]
    fn global_mode_round_trips() {
        for m in ProgressMode::ALL {
            m.set_global();
            assert_eq!(ProgressMode::global(), m);
        }
        ProgressMode::Auto.set_global();
        assert_eq!(ProgressMode::Json.resolve(true), ProgressMode::None);
        assert_eq!(ProgressMode::Plain.resolve(false), ProgressMode::Plain);
    }
}
