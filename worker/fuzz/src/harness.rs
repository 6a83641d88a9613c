//! Structure-aware harness of a whole worker task: the task format, the
//! states and checkpoints a worker reads from the store, and the result it
//! answers with.
//!
//! A real task of a tiny job (40x24, 4 frames, 2 chunks of 2, one group)
//! is written as JSON, its fields overwritten with arbitrary JSON values
//! (numbers of every range, strings, wrong types), parsed as the worker
//! parses its stdin, and run with [`run_task_as`] against a local store
//! holding the input and whatever the fuzzer planted: the predecessor's
//! states (real ones with flipped bytes, or raw bytes), and checkpoints
//! (real frame lists with flipped or cut frames, with the right or a
//! wrong context, or raw bytes). No relay; waits are cut to 50 ms.
//!
//! Checked: no panic, no hang (a task must end within 20 s), and a task
//! that succeeds answers with a result that holds: the chunk object is in
//! the store with the digest and size the result names, its frames
//! decode, from the state the result says it starts from, to the state it
//! says it ends in.
//!
//! Shared by the cargo-fuzz target `task` and `worker/tests/fuzz_replay.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use excam_codec::wire::{decode_state, encode_state, frame as framed, state_digest, Compression};
use excam_codec::{decode, DecoderState};
use excam_worker::keys;
use excam_worker::run_task_as;
use excam_worker::store::{LocalStore, Store};
use excam_worker::task::{CodecParams, InputSpec, StoreSpec, Task, TaskResult, TASK_VERSION};
use serde_json::Value;

const W: usize = 40;
const H: usize = 24;
const FRAMES: usize = 4;
const INPUT_KEY: &str = "input/clip.y4m";
/// Bytes before the body in the state wire format.
const WIRE_HEADER: usize = 28;
/// Longest a task may run before the harness calls it a hang.
const TASK_BOUND: Duration = Duration::from_secs(20);

/// Task fields the fuzzer may overwrite, as JSON paths.
const FIELDS: &[&[&str]] = &[
    &["version"],
    &["chunk"],
    &["chunks"],
    &["chunk_frames"],
    &["group_chunks"],
    &["attempt"],
    &["wait_timeout_s"],
    &["job"],
    &["run"],
    &["input", "key"],
    &["input", "first_frame_offset"],
    &["input", "frame_stride"],
    &["input", "frames"],
    &["codec", "width"],
    &["codec", "height"],
    &["codec", "framerate"],
    &["codec", "quantizer"],
    &["codec", "bitrate_kbps"],
    &["codec", "keyint"],
    &["codec", "speed"],
    &["codec", "partitions"],
    &["codec", "golden_interval"],
    &["codec", "golden_boost"],
    &["codec", "refresh_entropy"],
];

/// The clip as Y4M bytes: a moving gradient.
fn clip() -> Vec<u8> {
    let mut out = format!("YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for t in 0..FRAMES {
        out.extend_from_slice(b"FRAME\n");
        for y in 0..H {
            for x in 0..W {
                out.push(((x * 6 + y * 2 + t * 5) % 240) as u8);
            }
        }
        for p in 0..2 * (W / 2) * (H / 2) {
            out.push((110 + p % 7 + t) as u8);
        }
    }
    out
}

/// What every input starts from.
pub struct Fixture {
    /// Scratch root: one directory per run under it.
    root: PathBuf,
    clip: Vec<u8>,
    /// The real task of chunk `i`, as JSON.
    tasks: [Value; 2],
    /// Chunk 0's phase-1 and final states.
    states: [Vec<u8>; 2],
    /// Chunk 1's phase-1 and phase-2 checkpoints, and chunk 0's phase-1 one.
    checkpoints: [Vec<u8>; 3],
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn task(root: &Path, job: &str, run: &str, chunk: usize, clip_len: usize) -> Task {
    let (input, _) =
        excam_worker::input::input_spec(INPUT_KEY, &clip()[..200], clip_len as u64).expect("spec");
    let mut cfg = excam_codec::encode::encoder::EncoderConfig::new(W, H);
    cfg.rate = excam_codec::encode::encoder::RateControl::Quantizer(30);
    cfg.speed = 6;
    Task {
        version: TASK_VERSION,
        job: job.into(),
        run: run.into(),
        chunk,
        chunks: 2,
        chunk_frames: 2,
        group_chunks: 2,
        input: InputSpec { ..input },
        codec: CodecParams::from_config(&cfg),
        store: StoreSpec::Local {
            root: root.to_path_buf(),
        },
        relay: None,
        attempt: 1,
        wait_timeout_s: 0.05,
        fault: None,
        merge: None,
    }
}

/// The fixture, made once per process: runs the tiny job for real.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("excam-worker-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let reference = root.join("reference");
        let clip = clip();
        let rt = runtime();
        let store = LocalStore::new(&reference);
        rt.block_on(store.put(INPUT_KEY, clip.clone().into()))
            .expect("input");
        let tasks = [0, 1].map(|i| task(&reference, "ref", "r", i, clip.len()));
        for t in &tasks {
            rt.block_on(run_task_as(t.clone(), "fuzz".into()))
                .expect("the reference job runs");
        }
        let get = |k: String| {
            rt.block_on(store.get(&k))
                .expect("reference object")
                .to_vec()
        };
        Fixture {
            states: [
                get(keys::state_phase1("ref", "r", 0)),
                get(keys::state_final("ref", "r", 0)),
            ],
            checkpoints: [
                get(keys::ckpt_phase1("ref", 1)),
                get(keys::ckpt_phase2("ref", 1)),
                get(keys::ckpt_phase1("ref", 0)),
            ],
            tasks: tasks.map(|t| serde_json::to_value(t).expect("task JSON")),
            root,
            clip,
        }
    })
}

/// Any JSON value worth putting in a task field.
#[derive(Arbitrary, Debug, Clone)]
pub enum Json {
    /// A small signed number.
    Int(i64),
    /// Any unsigned number.
    Uint(u64),
    /// Any float (NaN and infinities become null in JSON).
    Float(f64),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// null.
    Null,
    /// A pair, as the frame rate is.
    Pair(u32, u32),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Int(i) => Value::from(*i),
            Json::Uint(u) => Value::from(*u),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Text(s) => Value::from(s.clone()),
            Json::Bool(b) => Value::from(*b),
            Json::Null => Value::Null,
            Json::Pair(a, b) => Value::from(vec![*a, *b]),
        }
    }
}

/// Byte flips `(position, xor)`, positions modulo the length.
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct Edits(pub Vec<(u32, u8)>);

impl Edits {
    fn apply(&self, b: &mut [u8]) {
        if b.is_empty() {
            return;
        }
        for &(p, x) in self.0.iter().take(64) {
            let n = b.len();
            b[p as usize % n] ^= x;
        }
    }
}

/// Something planted in the store before the task runs.
#[derive(Arbitrary, Debug, Clone)]
pub enum Plant {
    /// Chunk 0's state of this run (what chunk 1 waits for).
    State {
        /// The final state rather than the phase-1 one.
        final_state: bool,
        /// Flips in the wire body (checksum made right again).
        edits: Edits,
        /// Raw bytes instead.
        raw: Option<Vec<u8>>,
    },
    /// A checkpoint (a frame list with its context).
    Checkpoint {
        /// Which: 0 chunk 1 phase 1, 1 chunk 1 phase 2, 2 chunk 0 phase 1.
        which: u8,
        /// Flips in the frames (not the context).
        edits: Edits,
        /// Drop the frame at this index.
        drop_frame: Option<u8>,
        /// Replace the context with this one.
        context: Option<[u8; 32]>,
        /// Raw bytes instead.
        raw: Option<Vec<u8>>,
    },
}

/// Input of [`task_run`].
#[derive(Arbitrary, Debug)]
pub struct TaskInput {
    /// Run chunk 1 (which waits for chunk 0's states) rather than chunk 0.
    pub second: bool,
    /// Field overwrites: index into the field list, value.
    pub fields: Vec<(u8, Json)>,
    /// Objects planted.
    pub plants: Vec<Plant>,
}

fn set(v: &mut Value, path: &[&str], to: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        cur = &mut cur[*k];
    }
    cur[path[path.len() - 1]] = to;
}

fn edited_state(bytes: &[u8], edits: &Edits) -> Vec<u8> {
    let Ok(s) = decode_state(bytes) else {
        return bytes.to_vec();
    };
    let wire = encode_state(&s, Compression::None);
    let mut body = wire[WIRE_HEADER..].to_vec();
    edits.apply(&mut body);
    framed(0, body.len() as u64, &body)
}

fn planted(f: &Fixture, p: &Plant) -> Vec<u8> {
    match p {
        Plant::State { raw: Some(r), .. } | Plant::Checkpoint { raw: Some(r), .. } => r.clone(),
        Plant::State {
            final_state, edits, ..
        } => edited_state(&f.states[usize::from(*final_state)], edits),
        Plant::Checkpoint {
            which,
            edits,
            drop_frame,
            context,
            ..
        } => {
            let real = &f.checkpoints[usize::from(*which) % 3];
            let (c, mut frames) = keys::decode_checkpoint(real).expect("reference checkpoint");
            for fr in &mut frames {
                edits.apply(fr);
            }
            if let Some(d) = drop_frame {
                if usize::from(*d) < frames.len() {
                    frames.remove(usize::from(*d));
                }
            }
            keys::encode_checkpoint(&context.unwrap_or(c), &frames)
        }
    }
}

fn plant_key(p: &Plant, job: &str, run: &str) -> String {
    match p {
        Plant::State { final_state, .. } => {
            if *final_state {
                keys::state_final(job, run, 0)
            } else {
                keys::state_phase1(job, run, 0)
            }
        }
        Plant::Checkpoint { which, .. } => match which % 3 {
            0 => keys::ckpt_phase1(job, 1),
            1 => keys::ckpt_phase2(job, 1),
            _ => keys::ckpt_phase1(job, 0),
        },
    }
}

/// Checks a successful task's answer against the store.
async fn check_result(store: &LocalStore, task: &Task, r: &TaskResult) {
    use sha2::Digest;
    assert_eq!((r.job.as_str(), r.chunk), (task.job.as_str(), task.chunk));
    let data = store
        .get(&r.chunk_key)
        .await
        .expect("the result's chunk object");
    assert_eq!(r.chunk_bytes, data.len() as u64);
    assert_eq!(r.chunk_sha256, hex::encode(sha2::Sha256::digest(&data)));
    let frames = keys::decode_frames(&data).expect("a frame list");
    assert_eq!(frames.len(), r.frames);
    // The frames decode from the state the result names to the one it
    // says they end in.
    let mut state = if r.source_state == hex::encode([0u8; 32]) {
        DecoderState::default()
    } else {
        let key = keys::state_final(&task.job, &task.run, task.chunk - 1);
        let s = decode_state(&store.get(&key).await.expect("the source state")).expect("state");
        assert_eq!(hex::encode(state_digest(&s)), r.source_state);
        s
    };
    for f in &frames {
        state = decode(&state, f).expect("a chunk frame decodes").0;
    }
    assert_eq!(hex::encode(state_digest(&state)), r.final_state);
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs one input (see the module doc). Returns whether the task succeeded.
pub fn task_run(input: &TaskInput) -> bool {
    let f = fixture();
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = f.root.join(format!("run-{n}"));
    let mut v = f.tasks[usize::from(input.second)].clone();
    set(&mut v, &["job"], Value::from(format!("job{n}")));
    for (i, j) in input.fields.iter().take(8) {
        set(&mut v, FIELDS[usize::from(*i) % FIELDS.len()], j.value());
    }
    // The worker reads its task as JSON text.
    let text = serde_json::to_string(&v).expect("JSON");
    let Ok(mut task) = serde_json::from_str::<Task>(&text) else {
        return false;
    };
    // Keep the store here and every wait short.
    task.store = StoreSpec::Local { root: dir.clone() };
    // NaN and infinities too (the worker refuses those itself).
    if task.wait_timeout_s.is_finite() {
        task.wait_timeout_s = task.wait_timeout_s.min(0.05);
    }
    let rt = runtime();
    let ok = rt.block_on(async {
        let store = LocalStore::new(&dir);
        store
            .put(INPUT_KEY, f.clip.clone().into())
            .await
            .expect("input");
        for p in input.plants.iter().take(4) {
            // Keys built from fuzzed job or run names may be refused.
            let _ = store
                .put(&plant_key(p, &task.job, &task.run), planted(f, p).into())
                .await;
        }
        let out = tokio::time::timeout(TASK_BOUND, run_task_as(task.clone(), "fuzz".into()))
            .await
            .unwrap_or_else(|_| panic!("task still running after {TASK_BOUND:?}: {task:?}"));
        match out {
            Ok(r) => {
                check_result(&store, &task, &r).await;
                true
            }
            Err(_) => false,
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

/// Runs the harness `target` on raw fuzzer bytes.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "task" => {
            if let Ok(i) = TaskInput::arbitrary(&mut Unstructured::new(data)) {
                task_run(&i);
            }
        }
        other => panic!("no harness {other}"),
    }
}

/// Seeds: both chunks untouched, then inputs from a fixed pseudo-random
/// sequence.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2f6b_1d3c_9a01_77e5;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    let mut out = vec![vec![0], vec![1]];
    for i in 0..60 {
        out.push((0..(8 + i * 6)).map(|_| next()).collect());
    }
    out
}
