//! The simulation's engine: attempts walking a worker's twelve steps
//! through the job's [`JobGraph`], timed events, and the shared work clock
//! of the CPU steps (see the [module documentation](super)).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};

use excam_worker::graph::{HandOff, JobGraph, Node};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Cat, PathStep, RunResult, SimParams};

const S_START: usize = 0;
const S_FETCH: usize = 1;
const S_ENC: usize = 2;
const S_SEND1: usize = 3;
const S_WAIT1: usize = 4;
const S_DESER1: usize = 5;
const S_GS: usize = 6;
const S_WAITF: usize = 7;
const S_DESERF: usize = 8;
const S_REB: usize = 9;
const S_SENDF: usize = 10;
const S_OUT: usize = 11;
const NSTEPS: usize = 12;

const STEP_CAT: [Cat; NSTEPS] = [
    Cat::Startup,
    Cat::Fetch,
    Cat::Encode,
    Cat::Relay,
    Cat::Relay,
    Cat::Relay,
    Cat::GivenState,
    Cat::Relay,
    Cat::Relay,
    Cat::Rebase,
    Cat::Relay,
    Cat::Output,
];

const EPS: f64 = 1e-12;

#[derive(Clone, Copy, Debug, PartialEq)]
struct T(f64);
impl Eq for T {}
impl PartialOrd for T {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for T {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Launch,
    StepDone { aid: usize, step: usize },
    DepArrive { dep: usize },
    Retry { task: usize },
    TwinCheck { gen: u64 },
}

enum Action {
    Skip,
    Delay(f64),
    Cpu(f64),
    Wait(usize),
}

#[derive(Clone, Debug)]
struct Attempt {
    task: usize,
    alive: bool,
    in_cpu: bool,
    cpu_seq: u64,
    step: usize,
    start: f64,
    end: f64,
    ends: [f64; NSTEPS],
    cold: f64,
    slow: f64,
    fail_step: Option<usize>,
}

#[derive(Clone, Debug, Default)]
struct Task {
    launch: f64,
    done: Option<f64>,
    live: usize,
    tries: u64,
    attempts: Vec<usize>,
    winner: usize,
}

struct Sim<'a> {
    p: &'a SimParams,
    /// The job's (chunk, phase) graph: who heads a group, who hands on,
    /// which hand-off each phase waits for.
    graph: JobGraph,
    seed: u64,
    chunks: usize,
    now: f64,
    work: f64,
    n_cpu: usize,
    seq: u64,
    timed: BinaryHeap<Reverse<(T, u64, Event)>>,
    cpu: BinaryHeap<Reverse<(T, u64, usize)>>,
    attempts: Vec<Attempt>,
    tasks: Vec<Task>,
    next_task: usize,
    running: usize,
    launch_pending: bool,
    avail: Vec<f64>,
    source: Vec<usize>,
    emitted_at: Vec<f64>,
    consumed: Vec<f64>,
    waiters: Vec<Vec<usize>>,
    finished: usize,
    durations: Vec<f64>,
    spec_set: BTreeSet<(u64, usize)>,
    spec_gen: u64,
    all_done: f64,
    retries: usize,
    twins: usize,
    relay_bytes: f64,
    s3_gets: usize,
    s3_puts: usize,
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finalizer: decorrelates nearby seeds.
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs one simulation of the job `p` with random seed `seed`.
pub(super) fn run(p: &SimParams, seed: u64) -> RunResult {
    let chunks = p.frames.div_ceil(p.chunk_frames.max(1));
    // With no frames there are no tasks and the graph is never asked.
    let graph = JobGraph::new(
        p.frames.max(1),
        p.chunk_frames.max(1),
        p.group_chunks.max(1),
    )
    .expect("a shape of at least one frame, N and x has a graph");
    let mut sim = Sim {
        p,
        graph,
        seed,
        chunks,
        now: 0.0,
        work: 0.0,
        n_cpu: 0,
        seq: 0,
        timed: BinaryHeap::new(),
        cpu: BinaryHeap::new(),
        attempts: Vec::with_capacity(chunks + chunks / 8),
        tasks: vec![Task::default(); chunks],
        next_task: 0,
        running: 0,
        launch_pending: false,
        avail: vec![f64::INFINITY; 2 * chunks],
        source: vec![usize::MAX; 2 * chunks],
        emitted_at: vec![f64::INFINITY; 2 * chunks],
        consumed: vec![f64::INFINITY; 2 * chunks],
        waiters: vec![Vec::new(); 2 * chunks],
        finished: 0,
        durations: Vec::with_capacity(chunks),
        spec_set: BTreeSet::new(),
        spec_gen: 0,
        all_done: 0.0,
        retries: 0,
        twins: 0,
        relay_bytes: 0.0,
        s3_gets: 0,
        s3_puts: 0,
    };
    sim.run();
    sim.result()
}

impl Sim<'_> {
    fn push(&mut self, t: f64, e: Event) {
        self.seq += 1;
        self.timed.push(Reverse((T(t), self.seq, e)));
    }

    fn rate(&self) -> f64 {
        if self.p.cores > 0.0 && self.n_cpu > 0 {
            self.p.speed * (self.p.cores / self.n_cpu as f64).min(1.0)
        } else {
            self.p.speed
        }
    }

    fn is_head(&self, i: usize) -> bool {
        self.graph.is_head(i)
    }

    fn hands_on(&self, i: usize) -> bool {
        self.graph.chain_succ(i).is_some()
    }

    fn len(&self, i: usize) -> usize {
        self.graph.frame_range(i).len()
    }

    /// The dependency slot of a hand-off: two per chunk.
    fn slot(chunk: usize, h: HandOff) -> usize {
        2 * chunk + h as usize
    }

    /// Waits for the hand-off `node` reads, if `node` is in the graph.
    fn wait_for(&self, node: Node) -> Action {
        match self.graph.awaits(node) {
            Some((c, h)) if self.graph.contains(node) => Action::Wait(Self::slot(c, h)),
            _ => Action::Skip,
        }
    }

    fn run(&mut self) {
        self.try_launch();
        loop {
            while let Some(&Reverse((_, seq, aid))) = self.cpu.peek() {
                let a = &self.attempts[aid];
                if a.alive && a.in_cpu && a.cpu_seq == seq {
                    break;
                }
                self.cpu.pop();
            }
            let rate = self.rate();
            let t_cpu = self
                .cpu
                .peek()
                .map(|Reverse((w, _, _))| self.now + (w.0 - self.work).max(0.0) / rate);
            let t_ev = self.timed.peek().map(|Reverse((t, _, _))| t.0);
            let (t, is_cpu) = match (t_cpu, t_ev) {
                (None, None) => break,
                (Some(a), None) => (a, true),
                (None, Some(b)) => (b, false),
                (Some(a), Some(b)) => {
                    if a <= b {
                        (a, true)
                    } else {
                        (b, false)
                    }
                }
            };
            if self.n_cpu > 0 {
                self.work += (t - self.now) * rate;
            }
            self.now = t.max(self.now);
            if is_cpu {
                let Reverse((w, _, aid)) = self.cpu.pop().expect("peeked");
                self.work = self.work.max(w.0);
                self.attempts[aid].in_cpu = false;
                self.n_cpu -= 1;
                if self.complete_step(aid) {
                    self.advance(aid);
                }
            } else {
                let Reverse((_, _, e)) = self.timed.pop().expect("peeked");
                self.handle(e);
            }
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Launch => {
                self.launch_pending = false;
                self.try_launch();
            }
            Event::StepDone { aid, step } => {
                let a = &self.attempts[aid];
                if a.alive && a.step == step && self.complete_step(aid) {
                    self.advance(aid);
                }
            }
            Event::DepArrive { dep } => {
                if self.avail[dep] > self.now + EPS {
                    return;
                }
                let waiting = std::mem::take(&mut self.waiters[dep]);
                for aid in waiting {
                    let a = &self.attempts[aid];
                    if a.alive && matches!(a.step, S_WAIT1 | S_WAITF) {
                        self.consume(dep);
                        if self.complete_step(aid) {
                            self.advance(aid);
                        }
                    }
                }
            }
            Event::Retry { task } => {
                if self.tasks[task].done.is_none() && self.tasks[task].live == 0 {
                    self.retries += 1;
                    self.start_attempt(task);
                }
            }
            Event::TwinCheck { gen } => {
                if gen != self.spec_gen {
                    return;
                }
                let m = self.median();
                while let Some(&(lb, task)) = self.spec_set.first() {
                    if f64::from_bits(lb) + self.deadline(m) > self.now + 1e-9 {
                        break;
                    }
                    self.spec_set.pop_first();
                    if self.tasks[task].done.is_none() {
                        self.twins += 1;
                        self.start_attempt(task);
                    }
                }
                self.schedule_twin_check();
            }
        }
    }

    fn try_launch(&mut self) {
        while self.next_task < self.chunks && self.running < self.p.concurrency.max(1) {
            let t = self.p.upload_s + self.next_task as f64 / self.p.invoke_rate;
            if t > self.now + EPS {
                if !self.launch_pending {
                    self.launch_pending = true;
                    self.push(t, Event::Launch);
                }
                return;
            }
            let i = self.next_task;
            self.next_task += 1;
            self.running += 1;
            self.tasks[i].launch = self.now;
            if self.p.speculation {
                let was_empty = self.spec_set.is_empty();
                self.spec_set.insert((self.now.to_bits(), i));
                if was_empty {
                    self.schedule_twin_check();
                }
            }
            self.start_attempt(i);
        }
    }

    fn median(&self) -> f64 {
        let d = &self.durations;
        let n = d.len();
        if n.is_multiple_of(2) {
            (d[n / 2 - 1] + d[n / 2]) / 2.0
        } else {
            d[n / 2]
        }
    }

    /// How long a task may run before it gets a twin.
    fn deadline(&self, median: f64) -> f64 {
        (self.p.speculation_factor * median).max(self.p.speculation_floor)
    }

    fn schedule_twin_check(&mut self) {
        if !self.p.speculation
            || self.finished < self.p.speculation_min_finished.max(1)
            || self.finished == 0
        {
            return;
        }
        if let Some(&(lb, _)) = self.spec_set.first() {
            let deadline = f64::from_bits(lb) + self.deadline(self.median());
            self.spec_gen += 1;
            let gen = self.spec_gen;
            self.push(deadline.max(self.now), Event::TwinCheck { gen });
        }
    }

    fn start_attempt(&mut self, task: usize) {
        let p = self.p;
        let ord = self.tasks[task].tries;
        self.tasks[task].tries += 1;
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ mix(task as u64 ^ (ord << 40))));
        // Always draw the same values in the same order, whatever the
        // parameters, so that plans stay comparable.
        let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let cold = p.cold_median * (p.cold_sigma * normal).exp();
        let (s1, s2): (f64, f64) = (rng.gen(), rng.gen());
        let slow = if s1 < p.straggler_prob {
            (1.0 - s2)
                .powf(-1.0 / p.straggler_alpha)
                .min(p.straggler_max)
        } else {
            1.0
        };
        let (f1, f2): (f64, f64) = (rng.gen(), rng.gen());
        let fail_step =
            (f1 < p.failure_prob).then(|| ((f2 * NSTEPS as f64) as usize).min(NSTEPS - 1));
        let aid = self.attempts.len();
        self.attempts.push(Attempt {
            task,
            alive: true,
            in_cpu: false,
            cpu_seq: 0,
            step: 0,
            start: self.now,
            end: f64::NAN,
            ends: [f64::NAN; NSTEPS],
            cold,
            slow,
            fail_step,
        });
        self.tasks[task].live += 1;
        self.tasks[task].attempts.push(aid);
        self.advance(aid);
    }

    fn action(&self, aid: usize) -> Action {
        let a = &self.attempts[aid];
        let p = self.p;
        let i = a.task;
        let n = self.len(i) as f64;
        let head = self.is_head(i);
        match a.step {
            S_START => Action::Delay(a.cold),
            S_FETCH => Action::Delay(p.s3_latency + n * p.in_frame_bytes / p.s3_bw),
            S_ENC => Action::Cpu((n * p.frame_work[0] + p.task_cpu + p.phase_cpu) * a.slow),
            S_SEND1 | S_SENDF if self.hands_on(i) => Action::Cpu(p.ser_work * a.slow),
            S_WAIT1 => self.wait_for(Node::given_state(i)),
            S_WAITF => self.wait_for(Node::rebase(i)),
            S_DESER1 | S_DESERF if !head => Action::Cpu(p.deser_work * a.slow),
            S_GS | S_REB if !head => {
                Action::Cpu((p.frame_work[1] + (n - 1.0) * p.frame_work[2] + p.phase_cpu) * a.slow)
            }
            // A head's phase 3 only stores its chunk.
            S_REB => Action::Cpu(p.phase_cpu * a.slow),
            S_OUT => Action::Delay(p.s3_latency + n * p.out_frame_bytes / p.s3_bw),
            _ => Action::Skip,
        }
    }

    /// Runs `aid` forward until it has to wait for time, CPU or a state.
    fn advance(&mut self, aid: usize) {
        loop {
            if self.attempts[aid].step == NSTEPS {
                self.finish(aid);
                return;
            }
            match self.action(aid) {
                Action::Skip => {}
                Action::Delay(d) => {
                    let step = self.attempts[aid].step;
                    self.push(self.now + d, Event::StepDone { aid, step });
                    return;
                }
                Action::Cpu(w) if w > 0.0 => {
                    self.seq += 1;
                    let a = &mut self.attempts[aid];
                    a.in_cpu = true;
                    a.cpu_seq = self.seq;
                    self.cpu.push(Reverse((T(self.work + w), self.seq, aid)));
                    self.n_cpu += 1;
                    return;
                }
                Action::Cpu(_) => {}
                Action::Wait(dep) => {
                    if self.avail[dep] <= self.now + EPS {
                        self.consume(dep);
                    } else {
                        self.waiters[dep].push(aid);
                        return;
                    }
                }
            }
            if !self.complete_step(aid) {
                return;
            }
        }
    }

    fn consume(&mut self, dep: usize) {
        if self.consumed[dep].is_infinite() {
            self.consumed[dep] = self.now;
        }
    }

    fn emit(&mut self, dep: usize, aid: usize) {
        let p = self.p;
        self.relay_bytes += p.state_bytes;
        let arrival = self.now + p.relay_latency + p.state_bytes / p.relay_bw;
        if arrival < self.avail[dep] {
            self.avail[dep] = arrival;
            self.source[dep] = aid;
            self.emitted_at[dep] = self.now;
            self.push(arrival, Event::DepArrive { dep });
        }
    }

    /// Ends the current step of `aid`; false if the attempt failed there.
    fn complete_step(&mut self, aid: usize) -> bool {
        let now = self.now;
        let (task, step) = {
            let a = &mut self.attempts[aid];
            a.ends[a.step] = now;
            (a.task, a.step)
        };
        if self.attempts[aid].fail_step == Some(step) {
            let a = &mut self.attempts[aid];
            a.alive = false;
            a.end = now;
            let t = &mut self.tasks[task];
            t.live -= 1;
            if t.live == 0 && t.done.is_none() {
                self.push(now + self.p.retry_delay, Event::Retry { task });
            }
            return false;
        }
        match step {
            S_FETCH => self.s3_gets += 1,
            S_SEND1 if self.hands_on(task) => self.emit(Self::slot(task, HandOff::Phase1), aid),
            S_SENDF if self.hands_on(task) => self.emit(Self::slot(task, HandOff::Final), aid),
            S_OUT => self.s3_puts += 1,
            _ => {}
        }
        self.attempts[aid].step += 1;
        true
    }

    fn finish(&mut self, aid: usize) {
        let now = self.now;
        let task = self.attempts[aid].task;
        self.attempts[aid].alive = false;
        self.attempts[aid].end = now;
        let others = self.tasks[task].attempts.clone();
        for o in others {
            let a = &mut self.attempts[o];
            if o != aid && a.alive {
                a.alive = false;
                a.end = now;
                if a.in_cpu {
                    a.in_cpu = false;
                    self.n_cpu -= 1;
                }
            }
        }
        let t = &mut self.tasks[task];
        t.done = Some(now);
        t.winner = aid;
        t.live = 0;
        let d = now - t.launch;
        self.spec_set.remove(&(t.launch.to_bits(), task));
        let at = self.durations.partition_point(|&x| x < d);
        self.durations.insert(at, d);
        self.running -= 1;
        self.finished += 1;
        if self.finished == self.chunks {
            self.all_done = now;
        }
        self.schedule_twin_check();
        self.try_launch();
    }

    fn result(&self) -> RunResult {
        let p = self.p;
        let c = self.chunks;
        let out_bytes = p.frames as f64 * p.out_frame_bytes;
        let rounds = c.div_ceil(p.assembly_parallelism.max(1)) as f64;
        let assembly = rounds * p.s3_latency + out_bytes / p.coord_bw + p.finish;
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

        // Relay memory: a state is held from its sending until first taken.
        let mut ev: Vec<(f64, f64)> = Vec::new();
        for dep in 0..2 * c {
            if self.source[dep] != usize::MAX {
                ev.push((self.emitted_at[dep], p.state_bytes));
                ev.push((self.consumed[dep].min(wall), -p.state_bytes));
            }
        }
        ev.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let (mut cur, mut peak) = (0.0f64, 0.0f64);
        for (_, b) in ev {
            cur += b;
            peak = peak.max(cur);
        }

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
            peak_relay_bytes: peak,
            s3_gets: self.s3_gets + c,
            s3_puts: self.s3_puts,
        }
    }
}
