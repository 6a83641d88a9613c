//! Encoder correctness: every frame the encoder writes decodes to exactly
//! the state and picture the encoder kept (over odd sizes, quantizers
//! across 0..=63, every speed preset, key-frame intervals, bitrate mode
//! and every combination of reference refresh/copy flags), libvpx's
//! vpxdec agrees with our decoder on the encoder's streams, and the
//! bitrate mode meets its target.

mod common;

use std::path::PathBuf;

use excam_codec::encode::encoder::{
    Encoder, EncoderConfig, GoldenPolicy, Packet, RateControl, MAX_SPEED,
};
use excam_codec::encode::quantize::quantizer_to_qindex;
use excam_codec::{decode_picture, encode, DecoderState, EncodeParams, Image};

use common::{carphone, have_vpxdec, shown_md5s, vpxdec_md5s, write_ivf};

/// A moving test pattern: a gradient that drifts, a bright square that
/// moves diagonally, and a little deterministic noise, so motion search,
/// intra prediction and residual coding all have work to do.
fn synthetic(w: usize, h: usize, n: usize) -> Vec<Image> {
    let mut seed = 0x1234_5678u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 9) as i32 - 4
    };
    (0..n)
        .map(|t| {
            let mut f = Image::filled(w, h, [0, 0, 0]);
            for (pi, plane) in f.planes.iter_mut().enumerate() {
                let (pw, ph) = (plane.width, plane.height);
                let scale = if pi == 0 { 1 } else { 2 };
                for y in 0..ph {
                    for x in 0..pw {
                        let (fx, fy) = (x * scale, y * scale);
                        let mut v = ((fx + 2 * t) * 3 + fy * 2) as i32 % 200 + 20;
                        let (sx, sy) = (3 * t % w.max(1), 2 * t % h.max(1));
                        if fx >= sx && fx < sx + 12 && fy >= sy && fy < sy + 10 {
                            v = 230 - 20 * pi as i32;
                        }
                        plane.row_mut(y)[x] = (v + noise()).clamp(0, 255) as u8;
                    }
                }
            }
            f
        })
        .collect()
}

/// Decodes `data` against `state` and checks that the result is exactly
/// what the encoder says it is.
fn check_decodes_to(state: &DecoderState, p: &Packet, what: &str) -> DecoderState {
    let d = decode_picture(state, &p.data).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(d.state == p.state, "{what}: decoder state differs");
    assert_eq!(
        d.shown.map(|s| s.to_frame()),
        p.reconstruction.as_ref().map(|r| r.to_frame()),
        "{what}: picture differs"
    );
    d.state
}

/// Encodes `frames` with `cfg` and checks every packet against the decoder.
fn round_trip(cfg: &EncoderConfig, frames: &[Image], what: &str) -> Vec<Packet> {
    let mut enc: Encoder = cfg.build().unwrap();
    let mut state = DecoderState::new();
    let mut packets = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        enc.send_frame(Some(f.clone())).unwrap();
        let p = enc.receive_packet().unwrap();
        assert_eq!(p.pts, i as u64);
        state = check_decodes_to(&state, &p, &format!("{what} frame {i}"));
        packets.push(p);
    }
    enc.send_frame(None).unwrap();
    assert!(enc.receive_packet().is_err());
    packets
}

#[test]
fn odd_sizes_every_speed_quantizers_across_the_range() {
    let qs = [0u8, 7, 20, 33, 46, 63];
    for (w, h) in [(1, 1), (17, 9), (33, 31), (175, 143)] {
        let n = if w > 100 { 4 } else { 6 };
        let frames = synthetic(w, h, n);
        for speed in 0..=MAX_SPEED {
            let mut cfg = EncoderConfig::new(w, h);
            cfg.speed = speed;
            cfg.rate = RateControl::Quantizer(qs[(speed as usize + w) % qs.len()]);
            cfg.keyint = 1 + speed as u32 % 4;
            cfg.golden = GoldenPolicy {
                interval: 2,
                q_boost: 5,
            };
            round_trip(&cfg, &frames, &format!("{w}x{h} speed {speed}"));
        }
    }
}

#[test]
fn every_quantizer_on_a_small_clip() {
    let frames = synthetic(33, 31, 3);
    for q in 0..=63u8 {
        let mut cfg = EncoderConfig::new(33, 31);
        cfg.rate = RateControl::Quantizer(q);
        cfg.speed = 8 - q % 9;
        let packets = round_trip(&cfg, &frames, &format!("q {q}"));
        assert_eq!(packets[1].q_index, quantizer_to_qindex(q));
    }
}

#[test]
fn partitions_entropy_and_bitrate_modes() {
    let frames = synthetic(48, 40, 8);
    for partitions in [1, 2, 4, 8] {
        for refresh_entropy in [true, false] {
            let mut cfg = EncoderConfig::new(48, 40);
            cfg.partitions = partitions;
            cfg.refresh_entropy = refresh_entropy;
            cfg.rate = RateControl::Bitrate { kbps: 100 };
            cfg.keyint = 5;
            let what = format!("{partitions} partitions, refresh_entropy {refresh_entropy}");
            let packets = round_trip(&cfg, &frames, &what);
            if !refresh_entropy {
                // Without refresh, every frame leaves the probabilities as
                // its key frame set them: the defaults.
                let key = packets[0].state.probabilities().clone();
                for p in &packets[1..5] {
                    assert_eq!(p.state.probabilities(), &key, "{what}");
                }
            }
        }
    }
}

/// Every combination of reference refresh and copy flags, chained so the
/// three references drift apart, with hidden frames among them.
#[test]
fn refresh_and_copy_flag_combinations() {
    let frames = synthetic(33, 31, 8);
    let mut state = DecoderState::new();
    let mut i = 0usize;
    for refresh_last in [true, false] {
        for refresh_golden in [false, true] {
            for refresh_altref in [false, true] {
                for copy_to_golden in 0..3u8 {
                    for copy_to_altref in 0..3u8 {
                        let params = EncodeParams {
                            q_index: (i * 13 % 128) as u8,
                            refresh_last,
                            refresh_golden,
                            refresh_altref,
                            copy_to_golden,
                            copy_to_altref,
                            show_frame: i % 5 != 3,
                            speed: (i % 9) as u8,
                            refresh_entropy: i % 4 != 1,
                            ..EncodeParams::default()
                        };
                        let out = encode(&state, &frames[i % frames.len()], &params).unwrap();
                        let d = decode_picture(&state, &out.data).unwrap();
                        assert!(d.state == out.state, "flags {params:?}");
                        assert_eq!(
                            d.shown.map(|s| s.to_frame()),
                            out.shown.map(|s| s.to_frame()),
                            "flags {params:?}"
                        );
                        assert_eq!(out.key_frame, i == 0);
                        state = out.state;
                        i += 1;
                    }
                }
            }
        }
    }
    assert_eq!(i, 72);
}

#[test]
fn carphone_every_speed() {
    let Some(frames) = carphone(6) else { return };
    for speed in 0..=MAX_SPEED {
        let mut cfg = EncoderConfig::new(176, 144);
        cfg.speed = speed;
        cfg.rate = RateControl::Quantizer(8 + 6 * speed);
        cfg.keyint = 4;
        cfg.golden.interval = 3;
        round_trip(&cfg, &frames, &format!("carphone speed {speed}"));
    }
}

/// The contract with the outside world: libvpx decodes the encoder's
/// streams to the very pictures our decoder (and so the encoder) has.
#[test]
fn vpxdec_agrees_on_a_matrix_of_settings() {
    if !have_vpxdec() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut clips: Vec<(String, Vec<Image>)> = vec![
        ("synthetic 33x31".into(), synthetic(33, 31, 8)),
        ("synthetic 175x143".into(), synthetic(175, 143, 5)),
    ];
    if let Some(f) = carphone(10) {
        clips.push(("carphone".into(), f));
    }
    let rates = [
        RateControl::Quantizer(4),
        RateControl::Quantizer(30),
        RateControl::Quantizer(63),
        RateControl::Bitrate { kbps: 150 },
    ];
    let mut checked = 0;
    for (name, frames) in &clips {
        let (w, h) = (frames[0].width, frames[0].height);
        for (i, rate) in rates.iter().enumerate() {
            for speed in [0, 4, MAX_SPEED] {
                let mut cfg = EncoderConfig::new(w, h);
                cfg.rate = *rate;
                cfg.speed = speed;
                cfg.partitions = [1, 2, 4, 8][(i + speed as usize) % 4];
                cfg.keyint = [0, 3, 128][(i + 2 * speed as usize) % 3];
                cfg.golden.interval = 3;
                cfg.refresh_entropy = i != 2;
                let what = format!("{name} {rate:?} speed {speed}");
                let packets = round_trip(&cfg, frames, &what);
                let ivf: PathBuf = dir.path().join("s.ivf");
                write_ivf(&ivf, w, h, &packets);
                let theirs = vpxdec_md5s(&ivf).unwrap();
                let ours = shown_md5s(&packets);
                assert_eq!(theirs, ours, "{what}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 24);
}

/// The one-pass bitrate mode lands within 10% of its target over the
/// 120-frame carphone clip, at several targets.
#[test]
fn bitrate_mode_meets_its_target() {
    let Some(frames) = carphone(120) else { return };
    for kbps in [80u32, 250] {
        let mut cfg = EncoderConfig::new(176, 144);
        cfg.framerate = (30000, 1001);
        cfg.rate = RateControl::Bitrate { kbps };
        cfg.speed = MAX_SPEED;
        let mut enc = cfg.build().unwrap();
        let mut bits = 0usize;
        for f in &frames {
            enc.send_frame(Some(f.clone())).unwrap();
            bits += enc.receive_packet().unwrap().size() * 8;
        }
        let got = bits as f64 / (frames.len() as f64 * 1001.0 / 30000.0) / 1000.0;
        let err = (got - kbps as f64) / kbps as f64;
        eprintln!("target {kbps} kbit/s: got {got:.1} ({:+.1}%)", err * 100.0);
        assert!(err.abs() < 0.10, "target {kbps} kbit/s, got {got:.1}");
    }
}
