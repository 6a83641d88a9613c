//! Structure-aware fuzz harnesses for the codec's three entry points that
//! take a state from elsewhere: [`decode`], [`encode_given_state`] (and
//! [`encode`]) and [`rebase`].
//!
//! Shared by the cargo-fuzz targets (`codec/fuzz/fuzz_targets/`) and by
//! `codec/tests/fuzz_replay.rs`, which replays the seeds, the committed
//! regressions and any local corpus as an ordinary test.
//!
//! Random bytes almost never make a state (its body has an exact length
//! and a checksum), so hostile states are made the way a corrupted or
//! malicious one would look: a real state, taken after some frames of a
//! real stream, written to the wire format, its body bytes flipped at
//! positions the fuzzer picks, the checksum made right again, and read
//! back with the reader workers use. Frames are real frames of the same
//! streams, flipped and cut, or raw bytes; pictures are real decoded
//! pictures, edited, or flat ones of any size; encoder parameters are any
//! values of their types.
//!
//! Whatever the codec accepts is checked, not only survived: every frame
//! the encoder or rebase returns must decode against the state it was
//! made for, to exactly the state the encoder says it leaves, and every
//! state the decoder produces must survive the wire format.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use excam_codec::container::ivf::IvfReader;
use excam_codec::wire::{decode_state, encode_state, frame as framed, Compression};
use excam_codec::{
    decode, decode_picture_threaded, encode, encode_given_state, rebase, DecoderState,
    EncodeParams, Image,
};

/// Bytes before the body in the state wire format.
const WIRE_HEADER: usize = 28;
/// Frames of each stream kept as bases.
const BASE_FRAMES: usize = 6;
/// Frames decoded per input at most.
const MAX_FRAMES: usize = 8;
/// Byte flips applied per state, frame or picture at most.
const MAX_EDITS: usize = 64;
/// Key frames larger than this are not decoded: legal and bounded (see
/// `codec/tests/robustness.rs`), but they turn the fuzzer into a memory
/// benchmark.
const MAX_PIXELS: usize = 1 << 20;
/// Largest side of a flat picture handed to the encoder: big enough to
/// mismatch every base, small enough to encode in milliseconds.
const MAX_FLAT_SIDE: usize = 96;

/// Streams whose states, frames and pictures seed every input: sizes from
/// 1x1 to 65x47 and odd ones, token partitions, error resilience, a
/// sharpness, hidden alt-ref frames, extreme quantizers, dropped frames,
/// and a stream made by excam's own encoder.
const STREAMS: &[&str] = &[
    "excam-size-1x1",
    "excam-size-3x3",
    "excam-size-17x9",
    "excam-size-33x31",
    "excam-size-65x47",
    "excam-token-parts-3-odd",
    "excam-error-resilient",
    "excam-sharpness-4",
    "excam-altref-2pass",
    "excam-q0",
    "excam-q63",
    "excam-drop-frame",
];

/// One stream cut into what the harnesses pick from.
pub struct Base {
    /// Where it came from.
    pub name: String,
    /// `states[k]`: the state after the first `k` frames.
    pub states: Vec<DecoderState>,
    /// The frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// The shown pictures, in order.
    pub pictures: Vec<Image>,
}

impl Base {
    fn from_frames(name: String, frames: Vec<Vec<u8>>) -> Option<Base> {
        let mut states = vec![DecoderState::default()];
        let mut pictures = Vec::new();
        for f in &frames {
            let (next, shown) = decode(states.last()?, f).ok()?;
            pictures.extend(shown);
            states.push(next);
        }
        (!pictures.is_empty()).then_some(Base {
            name,
            states,
            frames,
            pictures,
        })
    }
}

/// The repository root: the first ancestor of this crate with `test-vectors/`.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|p| p.join("test-vectors/streams.tsv").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

/// A stream excam's own encoder makes: a moving gradient, 40x24 (not a
/// multiple of 16), a key frame, inter frames, a golden refresh and a
/// hidden frame, through [`encode`] with the state each frame leaves.
fn own_stream() -> Vec<Vec<u8>> {
    let (w, h) = (40, 24);
    let mut state = DecoderState::default();
    let mut out = Vec::new();
    for t in 0..BASE_FRAMES {
        let mut f = Image::filled(w, h, [0, 128, 128]);
        for y in 0..h {
            for (x, v) in f.planes[0].row_mut(y).iter_mut().enumerate() {
                *v = ((x * 5 + y * 3 + t * 7) % 256) as u8;
            }
        }
        let params = EncodeParams {
            q_index: 20 + 10 * t as u8,
            refresh_golden: t == 3,
            show_frame: t != 4,
            speed: [0, 4, 8][t % 3],
            ..EncodeParams::default()
        };
        let Ok(e) = encode(&state, &f, &params) else {
            break;
        };
        out.push(e.data);
        state = e.state;
    }
    out
}

/// The bases, read once per process.
pub fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let dir = repo_root().join("test-vectors");
        let mut out = Vec::new();
        for name in STREAMS {
            let Ok(file) = std::fs::File::open(dir.join(format!("{name}.ivf"))) else {
                continue;
            };
            let Ok(reader) = IvfReader::new(file) else {
                continue;
            };
            let frames: Vec<Vec<u8>> = reader
                .take(BASE_FRAMES)
                .map_while(Result::ok)
                .map(|f| f.data)
                .collect();
            out.extend(Base::from_frames(name.to_string(), frames));
        }
        out.extend(Base::from_frames("excam-own".into(), own_stream()));
        assert!(
            out.len() > 1,
            "no fuzz bases: test-vectors/ not found from {}",
            env!("CARGO_MANIFEST_DIR")
        );
        out
    })
}

fn pick<T>(items: &[T], i: u8) -> &T {
    &items[usize::from(i) % items.len()]
}

/// Byte flips: `(position, xor)`, positions taken modulo the length.
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct Edits(pub Vec<(u32, u8)>);

impl Edits {
    fn apply(&self, bytes: &mut [u8]) {
        if bytes.is_empty() {
            return;
        }
        for &(pos, x) in self.0.iter().take(MAX_EDITS) {
            let n = bytes.len();
            bytes[pos as usize % n] ^= x;
        }
    }
}

/// A state: a base's state after some frames, its wire body edited.
#[derive(Arbitrary, Debug, Clone)]
pub struct StateSpec {
    /// Which base.
    pub base: u8,
    /// After how many of its frames.
    pub at: u8,
    /// Flips in the wire body.
    pub edits: Edits,
    /// Read the edited bytes LZ4-compressed instead of stored.
    pub lz4: bool,
}

impl StateSpec {
    /// The state, or `None` if the edited bytes are refused (as they
    /// should be, mostly).
    pub fn build(&self) -> Option<DecoderState> {
        let b = pick(bases(), self.base);
        let s = pick(&b.states, self.at);
        if self.edits.0.is_empty() {
            return Some(s.clone());
        }
        let wire = encode_state(s, Compression::None);
        let mut body = wire[WIRE_HEADER..].to_vec();
        self.edits.apply(&mut body);
        let bytes = if self.lz4 {
            framed(1, body.len() as u64, &lz4_flex::block::compress(&body))
        } else {
            framed(0, body.len() as u64, &body)
        };
        let state = decode_state(&bytes).ok()?;
        // What the reader accepted is a state: it writes back to itself.
        let again = decode_state(&encode_state(&state, Compression::Lz4)).expect("re-read");
        assert!(again == state, "state does not survive a wire round trip");
        Some(state)
    }
}

/// A compressed frame.
#[derive(Arbitrary, Debug, Clone)]
pub enum FrameSpec {
    /// A base's frame, flipped and cut.
    Real {
        /// Which base.
        base: u8,
        /// Which of its frames.
        index: u8,
        /// Flips.
        edits: Edits,
        /// Keep only this many bytes.
        cut: Option<u16>,
    },
    /// Bytes as they come.
    Raw(Vec<u8>),
}

impl FrameSpec {
    /// The bytes.
    pub fn build(&self) -> Vec<u8> {
        match self {
            FrameSpec::Real {
                base,
                index,
                edits,
                cut,
            } => {
                let b = pick(bases(), *base);
                let mut f = pick(&b.frames, *index).clone();
                edits.apply(&mut f);
                if let Some(c) = cut {
                    f.truncate(usize::from(*c));
                }
                f
            }
            FrameSpec::Raw(v) => v.clone(),
        }
    }
}

/// Whether a key frame is too large to be worth decoding here.
fn too_large(d: &[u8]) -> bool {
    if d.len() >= 10 && d[0] & 1 == 0 {
        let w = (u16::from_le_bytes([d[6], d[7]]) & 0x3fff) as usize;
        let h = (u16::from_le_bytes([d[8], d[9]]) & 0x3fff) as usize;
        return w * h > MAX_PIXELS;
    }
    false
}

/// A source picture.
#[derive(Arbitrary, Debug, Clone)]
pub enum PictureSpec {
    /// A base's decoded picture, its samples flipped.
    Real {
        /// Which base.
        base: u8,
        /// Which of its pictures.
        index: u8,
        /// Flips over Y, U and V in order.
        edits: Edits,
    },
    /// A flat picture of any size up to [`MAX_FLAT_SIDE`] (0 included).
    Flat {
        /// Width.
        width: u8,
        /// Height.
        height: u8,
        /// Y, U, V.
        yuv: [u8; 3],
    },
}

impl PictureSpec {
    /// The picture.
    pub fn build(&self) -> Image {
        match self {
            PictureSpec::Real { base, index, edits } => {
                let b = pick(bases(), *base);
                let mut f = pick(&b.pictures, *index).clone();
                let mut i420 = f.to_i420();
                edits.apply(&mut i420);
                if let Some(g) = Image::from_i420(f.width, f.height, &i420) {
                    f = g;
                }
                f
            }
            PictureSpec::Flat { width, height, yuv } => Image::filled(
                usize::from(*width) % (MAX_FLAT_SIDE + 1),
                usize::from(*height) % (MAX_FLAT_SIDE + 1),
                *yuv,
            ),
        }
    }
}

/// Every field of [`EncodeParams`], any value of its type.
#[derive(Arbitrary, Debug, Clone)]
pub struct ParamsSpec {
    q_index: u8,
    key_frame: bool,
    refresh_last: bool,
    refresh_golden: bool,
    refresh_altref: bool,
    copy_to_golden: u8,
    copy_to_altref: u8,
    show_frame: bool,
    speed: u8,
    filter_level: Option<u8>,
    sharpness: u8,
    partitions: u8,
    lambda_scale: u32,
    refresh_entropy: bool,
    sign_bias_golden: bool,
    sign_bias_altref: bool,
}

impl ParamsSpec {
    /// The parameters.
    pub fn build(&self) -> EncodeParams {
        EncodeParams {
            q_index: self.q_index,
            key_frame: self.key_frame,
            refresh_last: self.refresh_last,
            refresh_golden: self.refresh_golden,
            refresh_altref: self.refresh_altref,
            copy_to_golden: self.copy_to_golden,
            copy_to_altref: self.copy_to_altref,
            show_frame: self.show_frame,
            speed: self.speed,
            filter_level: self.filter_level,
            // Half the values valid, half any value at all, so that most
            // inputs get past validation and the rest test it.
            sharpness: if self.sharpness & 0x80 == 0 {
                self.sharpness & 7
            } else {
                self.sharpness & 0x7f
            },
            partitions: if self.partitions & 0x80 == 0 {
                1 << (self.partitions & 3)
            } else {
                usize::from(self.partitions & 0x7f)
            },
            lambda_scale: self.lambda_scale,
            refresh_entropy: self.refresh_entropy,
            sign_bias_golden: self.sign_bias_golden,
            sign_bias_altref: self.sign_bias_altref,
            // Not a field of the spec, so stored inputs keep their
            // meaning; tests/threads.rs checks that thread counts agree.
            threads: 1,
        }
    }
}

/// Checks a frame the encoder or rebase made against `state`: it decodes,
/// to the state the encoder said, and shows the picture it said.
fn check_encoded(
    what: &str,
    state: &DecoderState,
    data: &[u8],
    claimed: &DecoderState,
    shown: Option<Image>,
) {
    let (next, picture) = decode(state, data)
        .unwrap_or_else(|e| panic!("{what}: its frame does not decode against its state: {e}"));
    assert!(
        next == *claimed,
        "{what}: the decoder ends in another state than the encoder says"
    );
    assert_eq!(
        picture.is_some(),
        shown.is_some(),
        "{what}: shown or not differs"
    );
    if let (Some(a), Some(b)) = (picture, shown) {
        assert!(a == b, "{what}: the decoder shows another picture");
    }
}

/// Input of [`decode_chain`].
#[derive(Arbitrary, Debug)]
pub struct DecodeInput {
    /// The state decoding starts from.
    pub state: StateSpec,
    /// Frames decoded in turn; one that fails is skipped.
    pub frames: Vec<FrameSpec>,
}

/// A hostile state, then frames decoded from it one after the other.
/// Returns whether a frame decoded.
pub fn decode_chain(input: &DecodeInput) -> bool {
    let Some(mut state) = input.state.build() else {
        return false;
    };
    let mut decoded = false;
    for f in input.frames.iter().take(MAX_FRAMES) {
        let data = f.build();
        if too_large(&data) {
            continue;
        }
        if let Ok((next, shown)) = decode(&state, &data) {
            if let Some(p) = &shown {
                assert_eq!((p.width, p.height), next.dimensions());
            }
            let again = decode_state(&encode_state(&next, Compression::Lz4))
                .expect("a decoded state reads back");
            assert!(again == next, "a decoded state does not survive the wire");
            state = next;
            decoded = true;
        }
    }
    decoded
}

/// Input of [`encode_from_state`].
#[derive(Arbitrary, Debug)]
pub struct EncodeInput {
    /// The state to encode against.
    pub state: StateSpec,
    /// The source picture.
    pub picture: PictureSpec,
    /// The parameters.
    pub params: ParamsSpec,
    /// `encode_given_state` (a chunk's first frame) rather than `encode`.
    pub given_state: bool,
}

/// A hostile state, picture and parameters into the encoder; whatever it
/// returns must decode against that state as it says. Returns whether the
/// encoder made a frame.
pub fn encode_from_state(input: &EncodeInput) -> bool {
    let Some(state) = input.state.build() else {
        return false;
    };
    let picture = input.picture.build();
    let params = input.params.build();
    let (what, out) = if input.given_state {
        (
            "encode_given_state",
            encode_given_state(&state, &picture, &params),
        )
    } else {
        ("encode", encode(&state, &picture, &params))
    };
    let Ok(enc) = out else {
        return false;
    };
    check_encoded(
        what,
        &state,
        &enc.data,
        &enc.state,
        enc.shown.map(|p| p.to_frame()),
    );
    true
}

/// Input of [`rebase_onto`].
#[derive(Arbitrary, Debug)]
pub struct RebaseInput {
    /// The state the frame was made against.
    pub original: StateSpec,
    /// The state to move it to.
    pub target: StateSpec,
    /// The source picture.
    pub picture: PictureSpec,
    /// The frame.
    pub frame: FrameSpec,
}

/// A frame, its claimed original state and a hostile target state into
/// rebase; whatever it returns must decode against the target as it says.
/// Returns whether rebase made a frame.
pub fn rebase_onto(input: &RebaseInput) -> bool {
    let (Some(original), Some(target)) = (input.original.build(), input.target.build()) else {
        return false;
    };
    let picture = input.picture.build();
    let frame = input.frame.build();
    if too_large(&frame) {
        return false;
    }
    let Ok(enc) = rebase(&original, &target, &picture, &frame) else {
        return false;
    };
    check_encoded(
        "rebase",
        &target,
        &enc.data,
        &enc.state,
        enc.shown.map(|p| p.to_frame()),
    );
    true
}

/// Runs the harness `target` on raw fuzzer bytes (what a target binary and
/// the replay test both call). Returns whether the input got as far as a
/// decoded, encoded or rebased frame.
pub fn run(target: &str, data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    match target {
        "decode_chain" => DecodeInput::arbitrary_take_rest(u).is_ok_and(|i| decode_chain(&i)),
        "encode_state" => EncodeInput::arbitrary(&mut u).is_ok_and(|i| encode_from_state(&i)),
        "rebase" => RebaseInput::arbitrary(&mut u).is_ok_and(|i| rebase_onto(&i)),
        "decode" => raw_decode(data),
        "state" => raw_state(data),
        other => panic!("no harness {other}"),
    }
}

/// Frames of a raw IVF file at most (target `decode`).
const RAW_MAX_FRAMES: usize = 16;

/// Key frames larger than this are skipped (target `decode`): a 16383 x
/// 16383 picture is valid VP8 but would make each run take seconds.
const RAW_MAX_PIXELS: usize = 1024 * 1024;

/// Target `decode`: raw bytes as an IVF file, decoded frame after frame
/// from the empty state. Every picture shown has the state's dimensions,
/// and the threaded decoder (three threads, the row wavefront) gives the
/// same state, picture or error as the serial one. Returns whether a
/// frame decoded.
pub fn raw_decode(data: &[u8]) -> bool {
    let Ok(reader) = IvfReader::new(data).map(|r| r.with_max_frame_size(1 << 20)) else {
        return false;
    };
    let mut state = DecoderState::new();
    let mut any = false;
    for frame in reader.take(RAW_MAX_FRAMES) {
        let Ok(frame) = frame else { break };
        let d = &frame.data;
        if d.len() >= 10 && d[0] & 1 == 0 {
            let w = (u16::from_le_bytes([d[6], d[7]]) & 0x3fff) as usize;
            let h = (u16::from_le_bytes([d[8], d[9]]) & 0x3fff) as usize;
            if w * h > RAW_MAX_PIXELS {
                continue;
            }
        }
        let threaded =
            decode_picture_threaded(&state, d, 3).map(|t| (t.state, t.shown.map(|p| p.to_frame())));
        let serial = decode(&state, d);
        match (&serial, &threaded) {
            (Ok(a), Ok(b)) => assert!(a == b, "threaded decode gave another frame"),
            (Err(a), Err(b)) => assert_eq!(a, b, "threaded decode gave another error"),
            _ => panic!(
                "threaded decode: {threaded:?} where the serial decode gave {serial:?}",
                threaded = threaded.as_ref().map(|_| ()),
                serial = serial.as_ref().map(|_| ())
            ),
        }
        // A failed frame leaves the state as it was; go on with the next.
        if let Ok((next, shown)) = serial {
            if let Some(f) = shown {
                let (w, h) = next.dimensions();
                assert_eq!((f.width, f.height), (w, h));
            }
            state = next;
            any = true;
        }
    }
    any
}

/// Target `state`: raw bytes as a wire-format state (the first byte picks
/// bare bytes, or a framed body with a right or an arbitrary length).
/// Whatever is accepted must write back to bytes that read as itself.
/// Returns whether a state was accepted.
pub fn raw_state(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let input = if mode & 1 == 0 {
        rest.to_vec()
    } else if mode & 2 == 0 {
        framed(0, rest.len() as u64, rest)
    } else {
        let Some((len, payload)) = rest.split_first_chunk::<4>() else {
            return false;
        };
        framed(1, u32::from_le_bytes(*len) as u64, payload)
    };
    let Ok(state) = decode_state(&input) else {
        return false;
    };
    let again = decode_state(&encode_state(&state, Compression::Lz4)).expect("re-read");
    assert!(again == state);
    true
}

/// Seeds of the raw targets: the repository's own IVF streams (`decode`)
/// and states taken from them in the wire format (`state`).
pub fn raw_seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "decode" => STREAMS
            .iter()
            .filter_map(|name| {
                let path = repo_root().join(format!("test-vectors/{name}.ivf"));
                let mut bytes = std::fs::read(path).ok()?;
                // The first frames are what a mutation reaches; the rest
                // would only slow each run.
                bytes.truncate(64 << 10);
                Some(bytes)
            })
            .collect(),
        "state" => bases()
            .iter()
            .flat_map(|b| b.states.iter().take(3))
            .map(|s| {
                let mut v = vec![0u8];
                v.extend(encode_state(s, Compression::None));
                v
            })
            .collect(),
        other => panic!("no raw harness {other}"),
    }
}

/// The structured targets.
pub const TARGETS: &[&str] = &["decode_chain", "encode_state", "rebase"];

/// Seed inputs for `target`: for every base and every point in it, an
/// input that starts from that state (the first bytes pick base and
/// point, then "no edits"), followed by bytes of a fixed pseudo-random
/// sequence that pick the frames, picture and parameters. Written out by
/// `codec/fuzz/seed.sh` and replayed by `codec/tests/fuzz_replay.rs`.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ target.len() as u64;
    let mut next = move || {
        // xorshift64*: deterministic across platforms and versions.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    let mut out = Vec::new();
    for b in 0..bases().len() {
        for k in 0..=BASE_FRAMES {
            let mut s = vec![b as u8, k as u8, 0, 0];
            let tail = 16 + usize::from(next()) * 2;
            s.extend((0..tail).map(|_| next()));
            out.push(s);
        }
    }
    out
}
