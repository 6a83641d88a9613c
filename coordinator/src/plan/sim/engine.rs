//! The simulation's engine: attempts walking a worker's twelve steps
//! through the job's [`JobGraph`], timed events, and the shared work clock
//! of the CPU steps (see the [module documentation](super)).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};

use excam_worker::graph::{HandOff, JobGraph, Node};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Cat, RunResult, SimParams};

mod result;

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

/// A hop through the relay: (work target, seq, dep, sender, emission time).
type Flow = (T, u64, usize, usize, T);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Launch,
    StepDone {
        aid: usize,
        step: usize,
    },
    DepArrive {
        dep: usize,
    },
    /// A state offered by the store path arrives (it may lose to the relay).
    StoreArrive {
        dep: usize,
        aid: usize,
        emitted: T,
    },
    Retry {
        task: usize,
    },
    TwinCheck {
        gen: u64,
    },
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
    /// Holds one of the relays' connection slots.
    slot: bool,
    cold: f64,
    slow: f64,
    fail_step: Option<usize>,
}

#[derive(Clone, Debug, Default)]
struct Task {
    launched: bool,
    launch: f64,
    /// When its twin clock started (see [`Sim::start_twin_clock`]).
    clock: Option<f64>,
    /// The clock started at the predecessor's end, not at launch.
    tail_clock: bool,
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
    /// The order tasks are invoked in (see [`SimParams::position_major`]).
    order: Vec<usize>,
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
    /// Tasks whose clock started when their predecessor finished: only
    /// their tail (phase 3) is left, so they get a deadline of their own.
    tail_set: BTreeSet<(u64, usize)>,
    /// Sorted tail times (predecessor done to done) of finished tasks.
    tails: Vec<f64>,
    spec_gen: u64,
    all_done: f64,
    retries: usize,
    twins: usize,
    relay_bytes: f64,
    s3_gets: usize,
    s3_puts: usize,
    /// The relay's work clock: bytes one hop has moved since the start.
    relay_work: f64,
    /// Hops in flight through the relay: (work target, seq, dep, sender,
    /// emission time).
    flows: BinaryHeap<Reverse<Flow>>,
    held: f64,
    peak_held: f64,
    /// Bytes the relay holds for each hand-off until it is taken.
    held_for: Vec<f64>,
    /// Whether the hand-off's first arrival came by the store.
    by_store: Vec<bool>,
    slots_used: usize,
    relay_busy: f64,
    relay_saturated: f64,
    first_relay: f64,
    last_relay: f64,
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
        order: Vec::new(),
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
        tail_set: BTreeSet::new(),
        tails: Vec::new(),
        spec_gen: 0,
        all_done: 0.0,
        retries: 0,
        twins: 0,
        relay_bytes: 0.0,
        s3_gets: 0,
        s3_puts: 0,
        relay_work: 0.0,
        flows: BinaryHeap::new(),
        held: 0.0,
        peak_held: 0.0,
        held_for: vec![0.0; 2 * chunks],
        by_store: vec![false; 2 * chunks],
        slots_used: 0,
        relay_busy: 0.0,
        relay_saturated: 0.0,
        first_relay: f64::INFINITY,
        last_relay: 0.0,
    };
    sim.order = if p.position_major {
        sim.graph.launch_order()
    } else {
        (0..chunks).collect()
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

    /// Bytes per second each hop in flight through the relay moves.
    fn flow_rate(&self) -> f64 {
        let n = self.flows.len().max(1) as f64;
        self.p.relay_bw.min(self.p.relay_capacity / n)
    }

    /// Environments Lambda lets run at `t`, within the concurrency cap.
    fn scale_cap(&self, t: f64) -> usize {
        let steps = 1.0 + (t / self.p.scale_period.max(1e-9)).floor();
        let cap = (self.p.scale_step * steps).min(self.p.concurrency.max(1) as f64);
        (cap as usize).max(1)
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
            let flow_rate = self.flow_rate();
            let t_flow = self
                .flows
                .peek()
                .map(|Reverse((w, ..))| self.now + (w.0 - self.relay_work).max(0.0) / flow_rate);
            // The earliest of the three clocks; ties go to the CPU, then
            // the relay, then timed events (as before the relay had a clock).
            let mut next = None::<(f64, u8)>;
            for (t, k) in [(t_cpu, 0u8), (t_flow, 1), (t_ev, 2)] {
                if let Some(t) = t {
                    if next.is_none_or(|(b, _)| t < b) {
                        next = Some((t, k));
                    }
                }
            }
            let Some((t, kind)) = next else { break };
            if self.n_cpu > 0 {
                self.work += (t - self.now) * rate;
            }
            if !self.flows.is_empty() {
                let dt = (t - self.now).max(0.0);
                self.relay_work += dt * flow_rate;
                self.relay_busy += dt;
                if flow_rate < self.p.relay_bw {
                    self.relay_saturated += dt;
                }
            }
            self.now = t.max(self.now);
            if kind == 1 {
                let Reverse((w, _, dep, aid, emitted)) = self.flows.pop().expect("peeked");
                self.relay_work = self.relay_work.max(w.0);
                self.last_relay = self.now;
                let arrival = self.now + self.p.relay_latency;
                self.offer(dep, arrival, aid, emitted.0, false);
            } else if kind == 0 {
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
            Event::StoreArrive { dep, aid, emitted } => {
                self.offer(dep, self.now, aid, emitted.0, true);
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
                for tail in [false, true] {
                    let limit = self.deadline(tail);
                    loop {
                        let set = if tail {
                            &mut self.tail_set
                        } else {
                            &mut self.spec_set
                        };
                        let Some(&(lb, task)) = set.first() else {
                            break;
                        };
                        if f64::from_bits(lb) + limit > self.now + 1e-9 {
                            break;
                        }
                        set.pop_first();
                        if self.tasks[task].done.is_none() {
                            self.twins += 1;
                            self.start_attempt(task);
                        }
                    }
                }
                self.schedule_twin_check();
            }
        }
    }

    fn try_launch(&mut self) {
        while self.next_task < self.chunks && self.running < self.p.concurrency.max(1) {
            if self.running >= self.scale_cap(self.now) {
                // Lambda adds environments at the next scaling step.
                if !self.launch_pending {
                    self.launch_pending = true;
                    let period = self.p.scale_period.max(1e-9);
                    let next = ((self.now / period).floor() + 1.0) * period;
                    self.push(next, Event::Launch);
                }
                return;
            }
            let t = self.p.upload_s + self.next_task as f64 / self.p.invoke_rate;
            if t > self.now + EPS {
                if !self.launch_pending {
                    self.launch_pending = true;
                    self.push(t, Event::Launch);
                }
                return;
            }
            let i = self.order[self.next_task];
            self.next_task += 1;
            self.running += 1;
            self.tasks[i].launch = self.now;
            self.tasks[i].launched = true;
            let pred_done = self
                .graph
                .chain_pred(i)
                .is_none_or(|p| self.tasks[p].done.is_some());
            if pred_done {
                self.start_twin_clock(i);
            }
            self.start_attempt(i);
        }
    }

    /// Starts the time after which `task` gets a twin, as the runtime's
    /// scheduler does: from its launch, or for a chunk that waits for a
    /// predecessor's final state, from when that predecessor finished
    /// (waiting is not the task's fault).
    fn start_twin_clock(&mut self, task: usize) {
        if !self.p.speculation || self.tasks[task].clock.is_some() {
            return;
        }
        let tail = self.p.chain_tail_twins && self.tasks[task].launch < self.now;
        self.tasks[task].clock = Some(self.now);
        self.tasks[task].tail_clock = tail;
        let set = if tail {
            &mut self.tail_set
        } else {
            &mut self.spec_set
        };
        set.insert((self.now.to_bits(), task));
        self.schedule_twin_check();
    }

    fn median(d: &[f64]) -> f64 {
        let n = d.len();
        if n.is_multiple_of(2) {
            (d[n / 2 - 1] + d[n / 2]) / 2.0
        } else {
            d[n / 2]
        }
    }

    /// How long a task may run before it gets a twin: a multiple of the
    /// median working time, or for a task whose predecessor has finished
    /// while it ran (`tail`), of the median tail once enough are known.
    fn deadline(&self, tail: bool) -> f64 {
        let enough = self.p.speculation_min_finished.max(1);
        if tail && self.tails.len() >= enough {
            (self.p.speculation_factor * Self::median(&self.tails))
                .max(self.p.speculation_tail_floor)
        } else {
            (self.p.speculation_factor * Self::median(&self.durations))
                .max(self.p.speculation_floor)
        }
    }

    fn schedule_twin_check(&mut self) {
        if !self.p.speculation
            || self.finished < self.p.speculation_min_finished.max(1)
            || self.finished == 0
        {
            return;
        }
        let first = |set: &BTreeSet<(u64, usize)>| set.first().map(|&(lb, _)| f64::from_bits(lb));
        let due = [
            first(&self.spec_set).map(|c| c + self.deadline(false)),
            first(&self.tail_set).map(|c| c + self.deadline(true)),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min);
        if let Some(deadline) = due {
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
            slot: false,
            cold,
            slow,
            fail_step,
        });
        if p.use_relay && self.slots_used < p.relay_slots {
            self.slots_used += 1;
            self.attempts[aid].slot = true;
        }
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
            if self.by_store[dep] {
                self.s3_gets += 1;
            }
            // Taken: the relay lets go of it.
            self.held -= self.held_for[dep];
            self.held_for[dep] = 0.0;
        }
    }

    /// Gives back the relay connection slot `aid` holds.
    fn release_slot(&mut self, aid: usize) {
        if std::mem::take(&mut self.attempts[aid].slot) {
            self.slots_used -= 1;
        }
    }

    /// Sends a state both ways: a PUT to the store (always) and, when
    /// there is room, through the relay.
    fn emit(&mut self, dep: usize, aid: usize) {
        let p = self.p;
        let b = p.state_bytes;
        self.s3_puts += 1;
        let store = self.now + 2.0 * (p.s3_latency + b / p.s3_bw) + p.store_poll;
        let emitted = T(self.now);
        self.push(store, Event::StoreArrive { dep, aid, emitted });
        let wanted = self.consumed[dep].is_infinite() && self.avail[dep].is_infinite();
        if wanted && p.use_relay && self.attempts[aid].slot && self.held + b <= p.relay_memory {
            self.held += b;
            self.held_for[dep] += b;
            self.peak_held = self.peak_held.max(self.held);
            self.relay_bytes += b;
            self.first_relay = self.first_relay.min(self.now);
            self.seq += 1;
            self.flows.push(Reverse((
                T(self.relay_work + b),
                self.seq,
                dep,
                aid,
                emitted,
            )));
        }
    }

    /// A state of `dep` reachable at `arrival` (sent at `emitted` by
    /// `aid`); the first offer wins.
    fn offer(&mut self, dep: usize, arrival: f64, aid: usize, emitted: f64, store: bool) {
        if arrival < self.avail[dep] {
            self.avail[dep] = arrival;
            self.source[dep] = aid;
            self.emitted_at[dep] = emitted;
            self.by_store[dep] = store;
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
            self.release_slot(aid);
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
        for &o in &others {
            self.release_slot(o);
        }
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
        // The runtime's medians are of working time: the winner's run
        // less its waits for states.
        let a = &self.attempts[aid];
        let waited: f64 = [S_WAIT1, S_WAITF]
            .iter()
            .map(|&st| a.ends[st] - a.ends[st - 1])
            .filter(|d| d.is_finite())
            .sum();
        let d = (now - a.start - waited).max(0.0);
        let t = &mut self.tasks[task];
        t.done = Some(now);
        t.winner = aid;
        t.live = 0;
        if let Some(c) = t.clock {
            if t.tail_clock {
                self.tail_set.remove(&(c.to_bits(), task));
                let tail = now - c;
                let at = self.tails.partition_point(|&x| x < tail);
                self.tails.insert(at, tail);
            } else {
                self.spec_set.remove(&(c.to_bits(), task));
            }
        }
        if let Some(s) = self.graph.chain_succ(task) {
            if self.tasks[s].launched && self.tasks[s].done.is_none() {
                self.start_twin_clock(s);
            }
        }
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
}
