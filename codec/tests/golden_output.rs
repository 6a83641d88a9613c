//! Golden output: the encoder's bytes and states, pinned by SHA-256.
//!
//! Encodes a matrix of pictures and parameters through the public API
//! only (`encode` with many [`EncodeParams`], the streaming `Encoder`
//! under both rate controls, `encode_given_state` and `rebase` chains as
//! ExCamera runs them, rebases of the official test vectors) and compares
//! a digest of every stream and its final state with
//! `tests/golden_output.sha256`. A refactoring that is meant to leave
//! the output alone must leave this file alone; a change that means to
//! alter the output re-records it, with
//! `EXCAM_GOLDEN_RECORD=1 cargo test -p excam-codec --release --test golden_output`,
//! and says so in its commit.
//!
//! Every stream is also decoded with the codec's decoder, which must end
//! each frame in exactly the encoder's state and show its reconstruction.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use excam_codec::container::ivf::IvfReader;
use excam_codec::encode::encoder::{
    Encoder, EncoderConfig, EncoderStatus, GoldenPolicy, RateControl,
};
use excam_codec::encode::quantize::quantizer_to_qindex;
use excam_codec::wire::state_digest;
use excam_codec::{
    decode, encode, encode_given_state, rebase, DecoderState, EncodeParams, EncodedFrame, Image,
};
use sha2::{Digest, Sha256};

use common::carphone;

const GOLDEN: &str = "tests/golden_output.sha256";

/// A deterministic linear congruential generator (Numerical Recipes').
struct Lcg(u32);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 24) as u8
    }
}

/// Pictures with something for every coding tool: a gradient (intra
/// prediction, smooth residual), a textured square moving by a few
/// pixels a frame (motion search, split MVs), a second shape moving the
/// other way, and low-amplitude noise (tokens, skip decisions).
fn synthetic(w: usize, h: usize, n: usize, seed: u32) -> Vec<Image> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|t| {
            let mut f = Image::filled(w, h, [0, 0, 0]);
            let (sx, sy) = (3 * t + 2, 2 * t + 1);
            let (bx, by) = ((w + 7).saturating_sub(5 * t) % w.max(1), (h / 3 + t) % h);
            for y in 0..h {
                for x in 0..w {
                    let mut v = (x * 180 / w.max(1) + y * 60 / h.max(1)) as i32 + 10;
                    if (sx..sx + w / 3 + 4).contains(&x) && (sy..sy + h / 3 + 4).contains(&y) {
                        v = 40 + (((x - sx) ^ (y - sy)) as i32 & 7) * 22;
                    }
                    if (bx..bx + 9).contains(&x) && (by..by + 7).contains(&y) {
                        v = 235 - v / 4;
                    }
                    v += (rng.next() % 9) as i32 - 4;
                    f.planes[0].row_mut(y)[x] = v.clamp(0, 255) as u8;
                }
            }
            for p in 1..3 {
                let plane = &mut f.planes[p];
                for y in 0..plane.height {
                    for x in 0..plane.width {
                        let v = 90 + p * 25 + (x * 2 + y + t * (p + 1)) % 50;
                        plane.row_mut(y)[x] = (v as u8).wrapping_add(rng.next() % 3);
                    }
                }
            }
            f
        })
        .collect()
}

/// Digests of one case: every frame's bytes and the final state, after
/// checking that the decoder agrees with the encoder frame by frame.
#[derive(Default)]
struct Stream {
    hash: Sha256,
    frames: usize,
}

impl Stream {
    fn push(&mut self, name: &str, before: &DecoderState, e: &EncodedFrame) {
        let (state, shown) = decode(before, &e.data)
            .unwrap_or_else(|err| panic!("{name}: frame {} does not decode: {err}", self.frames));
        assert!(
            state == e.state,
            "{name}: frame {}: decoder state differs from the encoder's",
            self.frames
        );
        assert_eq!(
            shown,
            e.shown.as_ref().map(|p| p.to_frame()),
            "{name}: frame {}: shown picture differs",
            self.frames
        );
        self.hash.update((e.data.len() as u64).to_le_bytes());
        self.hash.update(&e.data);
        self.frames += 1;
    }

    fn finish(self, last: &DecoderState) -> String {
        let mut h = self.hash;
        h.update(state_digest(last));
        let d = h.finalize();
        format!("{}:{d:x}", self.frames)
    }
}

/// Encodes `frames` one `encode` call each with the params `per_frame`
/// gives (frame index, params).
fn per_frame(name: &str, frames: &[Image], per_frame: impl Fn(usize) -> EncodeParams) -> String {
    let mut state = DecoderState::default();
    let mut s = Stream::default();
    for (i, f) in frames.iter().enumerate() {
        let e = encode(&state, f, &per_frame(i)).unwrap_or_else(|e| panic!("{name}: {e}"));
        s.push(name, &state, &e);
        state = e.state;
    }
    s.finish(&state)
}

fn qi(q: u8) -> u8 {
    quantizer_to_qindex(q)
}

/// `encode` with one parameter at a time moved from a base.
fn encode_matrix(out: &mut BTreeMap<String, String>) {
    let small = synthetic(64, 48, 4, 7);
    let base = |speed: u8, q: u8| EncodeParams {
        q_index: qi(q),
        speed,
        ..EncodeParams::default()
    };
    for speed in 0..=8 {
        let name = format!("encode/64x48/speed{speed}/q32");
        out.insert(name.clone(), per_frame(&name, &small, |_| base(speed, 32)));
    }
    for q in [4, 63] {
        for speed in [1, 4, 8] {
            let name = format!("encode/64x48/speed{speed}/q{q}");
            out.insert(name.clone(), per_frame(&name, &small, |_| base(speed, q)));
        }
    }
    // Reference refreshes, copies, hidden frames and sign of every flag.
    let refs = synthetic(48, 32, 8, 11);
    let flags = |i: usize| {
        let mut p = base(2, 32);
        match i {
            1 => p.refresh_golden = true,
            2 => p.copy_to_altref = 1,
            3 => {
                p.refresh_last = false;
                p.copy_to_golden = 2;
                p.show_frame = false;
            }
            4 => p.refresh_altref = true,
            5 => {
                p.copy_to_golden = 1;
                p.copy_to_altref = 2;
            }
            6 => p.key_frame = true,
            7 => {
                p.refresh_golden = true;
                p.refresh_altref = true;
                p.lambda_scale = 30;
            }
            _ => {}
        }
        p
    };
    out.insert(
        "encode/48x32/reference-flags".into(),
        per_frame("reference-flags", &refs, flags),
    );
    for speed in [0, 4] {
        let name = format!("encode/48x32/reference-flags/speed{speed}");
        out.insert(
            name.clone(),
            per_frame(&name, &refs, |i| EncodeParams { speed, ..flags(i) }),
        );
    }
    // Partitions and sizes.
    let cif = synthetic(176, 144, 3, 3);
    for partitions in [1, 2, 4, 8] {
        let name = format!("encode/176x144/partitions{partitions}");
        out.insert(
            name.clone(),
            per_frame(&name, &cif, |_| EncodeParams {
                partitions,
                ..base(4, 32)
            }),
        );
    }
    for (w, h) in [(33, 17), (17, 33), (1, 1), (15, 9), (100, 75)] {
        let frames = synthetic(w, h, 3, (w * h) as u32);
        for speed in [2, 6] {
            let name = format!("encode/{w}x{h}/speed{speed}");
            out.insert(name.clone(), per_frame(&name, &frames, |_| base(speed, 20)));
        }
    }
    // Loop filter: fixed levels, sharpness, searched.
    for (level, sharpness) in [(Some(0), 0), (Some(17), 0), (Some(63), 5), (None, 3)] {
        let name = format!("encode/64x48/filter{level:?}/sharpness{sharpness}");
        out.insert(
            name.clone(),
            per_frame(&name, &small, |_| EncodeParams {
                filter_level: level,
                sharpness,
                ..base(4, 32)
            }),
        );
    }
    out.insert(
        "encode/64x48/no-entropy-refresh".into(),
        per_frame("no-entropy-refresh", &small, |i| EncodeParams {
            refresh_entropy: i % 2 == 0,
            ..base(3, 40)
        }),
    );
    for lambda_scale in [20, 60, 90] {
        let name = format!("encode/64x48/lambda{lambda_scale}");
        out.insert(
            name.clone(),
            per_frame(&name, &small, |_| EncodeParams {
                lambda_scale,
                ..base(4, 32)
            }),
        );
    }
}

/// Runs the streaming encoder over `frames` and returns every packet's
/// bytes and the states before and after them.
fn stream(name: &str, cfg: &EncoderConfig, frames: &[Image]) -> (String, Vec<EncodedFrame>) {
    let mut enc: Encoder = cfg.build().unwrap();
    let mut state = DecoderState::default();
    let mut s = Stream::default();
    let mut coded = Vec::new();
    for f in frames {
        enc.send_frame(Some(f.clone())).unwrap();
        let p = enc.receive_packet().unwrap();
        let e = EncodedFrame {
            data: p.data,
            state: p.state,
            shown: p.reconstruction,
            key_frame: p.key_frame,
            q_index: p.q_index,
            filter_level: p.filter_level,
        };
        s.push(name, &state, &e);
        state = e.state.clone();
        coded.push(e);
    }
    enc.flush();
    assert!(matches!(
        enc.receive_packet(),
        Err(EncoderStatus::LimitReached)
    ));
    (s.finish(&state), coded)
}

fn encoder_matrix(out: &mut BTreeMap<String, String>, clip: &[Image], tag: &str) {
    let (w, h) = (clip[0].width, clip[0].height);
    let cfgs: Vec<(String, EncoderConfig)> = vec![
        ("q20-keyint5-golden3".into(), {
            let mut c = EncoderConfig::new(w, h);
            c.rate = RateControl::Quantizer(20);
            c.keyint = 5;
            c.golden = GoldenPolicy {
                interval: 3,
                q_boost: 16,
            };
            c
        }),
        ("q45-keyint0-nogolden-speed7".into(), {
            let mut c = EncoderConfig::new(w, h);
            c.rate = RateControl::Quantizer(45);
            c.keyint = 0;
            c.speed = 7;
            c.golden = GoldenPolicy {
                interval: 0,
                q_boost: 0,
            };
            c
        }),
        ("bitrate200-partitions2".into(), {
            let mut c = EncoderConfig::new(w, h);
            c.rate = RateControl::Bitrate { kbps: 200 };
            c.partitions = 2;
            c
        }),
        ("bitrate60-speed1-noentropy".into(), {
            let mut c = EncoderConfig::new(w, h);
            c.rate = RateControl::Bitrate { kbps: 60 };
            c.speed = 1;
            c.keyint = 7;
            c.refresh_entropy = false;
            c
        }),
    ];
    for (name, cfg) in cfgs {
        let name = format!("encoder/{tag}/{name}");
        let (digest, _) = stream(&name, &cfg, clip);
        out.insert(name, digest);
    }
}

/// ExCamera[`chunk_frames`, `group_chunks`] as the worker runs it, through
/// the codec's API: every chunk encoded from a key frame; then each chunk
/// that does not start a group has its first frame encoded given its
/// predecessor's phase-1 state and the rest rebased onto that, and again
/// given the predecessor's true final state.
fn excamera(
    out: &mut BTreeMap<String, String>,
    tag: &str,
    clip: &[Image],
    cfg: &EncoderConfig,
    chunk_frames: usize,
    group_chunks: usize,
) {
    let name = format!("excamera/{tag}/[{chunk_frames},{group_chunks}]");
    let chunks: Vec<&[Image]> = clip.chunks(chunk_frames).collect();
    let phase1: Vec<Vec<EncodedFrame>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| stream(&format!("{name}/phase1/{i}"), cfg, c).1)
        .collect();
    let first = Encoder::given_state_params_for(cfg, true).unwrap();
    // States before each frame of a coded chunk starting from `start`.
    let code_from = |frames: &[Image],
                     decisions: &[EncodedFrame],
                     sources: &[DecoderState],
                     start: DecoderState| {
        let mut before = vec![start];
        let mut coded: Vec<EncodedFrame> = Vec::new();
        for (k, image) in frames.iter().enumerate() {
            let cur = before.last().unwrap();
            let e = if k == 0 {
                encode_given_state(cur, image, &first).unwrap()
            } else {
                rebase(&sources[k], cur, image, &decisions[k].data).unwrap()
            };
            before.push(e.state.clone());
            coded.push(e);
        }
        (before, coded)
    };
    let sources_of = |coded: &[EncodedFrame]| {
        let mut s = vec![DecoderState::default()];
        s.extend(coded.iter().map(|e| e.state.clone()));
        s
    };
    let mut s = Stream::default();
    let mut true_state = DecoderState::default();
    for (i, frames) in chunks.iter().enumerate() {
        let coded = if i % group_chunks == 0 {
            phase1[i].clone()
        } else {
            let pred = phase1[i - 1].last().unwrap().state.clone();
            let (_, p2) = code_from(frames, &phase1[i], &sources_of(&phase1[i]), pred);
            let mut src2 = vec![phase1[i - 1].last().unwrap().state.clone()];
            src2.extend(p2.iter().map(|e| e.state.clone()));
            let (_, p3) = code_from(frames, &p2, &src2, true_state.clone());
            p3
        };
        for e in &coded {
            s.push(&name, &true_state, e);
            true_state = e.state.clone();
        }
    }
    out.insert(name, s.finish(&true_state));
}

/// Rebases of official test vectors (segmentation, other filter types
/// and versions, probability updates the encoder never makes): each
/// inter frame rebased onto its own state (identity) and onto the state
/// two frames earlier, with its decoded picture as source.
fn vector_rebases(out: &mut BTreeMap<String, String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vp8-test-vectors");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing (CI=true: fixtures are required)",
            dir.display()
        );
        eprintln!("skipping vector rebases: {} not found", dir.display());
        return;
    }
    let mut names: Vec<String> = (1..=18)
        .filter(|&n| n != 8)
        .map(|n| format!("vp80-00-comprehensive-{n:03}"))
        .collect();
    names.extend(
        [
            "vp80-02-inter-1418",
            "vp80-03-segmentation-1403",
            "vp80-03-segmentation-1407",
            "vp80-03-segmentation-1425",
            "vp80-03-segmentation-1437",
            "vp80-04-partitions-1405",
            "vp80-05-sharpness-1430",
            "vp80-05-sharpness-1443",
        ]
        .map(String::from),
    );
    for n in &names {
        let path: PathBuf = dir.join(format!("{n}.ivf"));
        let reader =
            IvfReader::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        let mut states = vec![DecoderState::default()];
        let mut data = Vec::new();
        let mut pictures = Vec::new();
        for frame in reader.take(7) {
            let frame = frame.unwrap();
            let d = excam_codec::decode_picture(states.last().unwrap(), &frame.data).unwrap();
            pictures.push(
                d.state
                    .last_frame()
                    .unwrap_or_else(|| Image::filled(1, 1, [0; 3])),
            );
            states.push(d.state);
            data.push(frame.data);
        }
        let name = format!("rebase/{n}");
        let mut s = Stream::default();
        let mut last = DecoderState::default();
        for i in 2..data.len() {
            for target in [&states[i], &states[i - 2]] {
                match rebase(&states[i], target, &pictures[i], &data[i]) {
                    Ok(e) => {
                        s.push(&name, target, &e);
                        last = e.state;
                    }
                    // A key frame in between changes the size, or the
                    // picture is another size: refused, and said so.
                    Err(e) => s.hash.update(e.to_string()),
                }
            }
        }
        out.insert(name, s.finish(&last));
    }
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("`name digest` lines");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn encoder_output_matches_recorded_hashes() {
    let mut got = BTreeMap::new();
    encode_matrix(&mut got);
    let syn = synthetic(64, 48, 12, 5);
    encoder_matrix(&mut got, &syn, "synthetic64x48");
    let mut cfg = EncoderConfig::new(64, 48);
    cfg.rate = RateControl::Quantizer(30);
    excamera(&mut got, "synthetic64x48", &syn, &cfg, 2, 3);
    excamera(&mut got, "synthetic64x48", &syn, &cfg, 3, 16);
    if let Some(clip) = carphone(12) {
        encoder_matrix(&mut got, &clip[..6], "carphone");
        let mut cfg = EncoderConfig::new(176, 144);
        cfg.rate = RateControl::Quantizer(32);
        excamera(&mut got, "carphone", &clip, &cfg, 2, 3);
        excamera(&mut got, "carphone", &clip, &cfg, 6, 16);
        cfg.speed = 8;
        cfg.rate = RateControl::Bitrate { kbps: 300 };
        excamera(&mut got, "carphone-speed8-bitrate", &clip, &cfg, 3, 2);
    }
    vector_rebases(&mut got);

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let text: String = got.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::env::var("EXCAM_GOLDEN_RECORD").as_deref() == Ok("1") {
        let header = "# name frames:sha256(frame lengths and bytes, final state digest)\n\
                      # recorded by tests/golden_output.rs with EXCAM_GOLDEN_RECORD=1\n";
        std::fs::write(&path, format!("{header}{text}")).unwrap();
        return;
    }
    let want =
        parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (record it: see the module docs)", path.display())
        }));
    let mut diffs = Vec::new();
    for (k, v) in &got {
        match want.get(k) {
            Some(w) if w == v => {}
            Some(w) => diffs.push(format!("{k}: recorded {w}, now {v}")),
            None => diffs.push(format!("{k}: not recorded")),
        }
    }
    for k in want.keys() {
        // Cases over absent fixtures are skipped (or failed under CI).
        let skipped = k.contains("carphone") && carphone(1).is_none();
        if !got.contains_key(k) && !skipped {
            diffs.push(format!("{k}: recorded but not produced"));
        }
    }
    assert!(diffs.is_empty(), "output changed:\n{}", diffs.join("\n"));
}
