//! Lookahead and hidden alt-ref frames: the streaming encoder holds
//! `lag_in_frames` frames, codes a hidden, temporally filtered alt-ref
//! frame for each golden group, marks the alt-ref's sign bias in the
//! frames that use it, and every packet (hidden ones included) decodes to
//! the state the encoder reports; vpxdec shows exactly the shown frames'
//! pictures; rebase keeps a hidden frame hidden with its decisions.

mod common;

use excam_codec::decode::parse_frame_header;
use excam_codec::encode::encoder::{EncoderConfig, EncoderStatus, RateControl, MAX_LAG};
use excam_codec::{decode_picture, rebase, DecoderState, Image};

use common::{check_decodes, encode_all, have_vpxdec, shown_md5s, vpxdec_md5s, write_ivf};

/// A textured picture panning right and down, with a square moving the
/// other way and some deterministic noise (which the filter removes).
fn clip(w: usize, h: usize, n: usize) -> Vec<Image> {
    let mut seed = 0x9e37_79b9u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 7) as i32 - 3
    };
    (0..n)
        .map(|t| {
            let mut f = Image::filled(w, h, [0, 0, 0]);
            for (pi, plane) in f.planes.iter_mut().enumerate() {
                let s = if pi == 0 { 1 } else { 2 };
                for y in 0..plane.height {
                    for x in 0..plane.width {
                        let (fx, fy) = (x * s + t, y * s + t / 2);
                        let mut v = ((fx * 5) ^ (fy * 3)) as i32 % 160 + 40;
                        let sq = (w - (4 * t) % w, 10);
                        if (x * s).abs_diff(sq.0) < 12 && (y * s).abs_diff(sq.1) < 12 {
                            v = 220 - 30 * pi as i32;
                        }
                        plane.row_mut(y)[x] = (v + noise()).clamp(0, 255) as u8;
                    }
                }
            }
            f
        })
        .collect()
}

fn arf_config(w: usize, h: usize, speed: u8) -> EncoderConfig {
    let mut cfg = EncoderConfig::with_speed(w, h, speed);
    assert_eq!(cfg.lag_in_frames, MAX_LAG);
    assert!(cfg.alt_ref.enabled);
    // These tests pin the fixed group layout; tests/scene_cut.rs covers
    // groups planned from the lookahead.
    cfg.group.adaptive = false;
    cfg.scene_cuts = false;
    cfg.golden.interval = 8;
    cfg.rate = RateControl::Quantizer(30);
    cfg
}

#[test]
fn lookahead_holds_lag_frames_and_flush_drains_them() {
    let frames = clip(48, 32, 10);
    let mut cfg = EncoderConfig::new(48, 32);
    cfg.lag_in_frames = 3;
    let mut enc = cfg.build().unwrap();
    for f in &frames[..3] {
        enc.send_frame(Some(f.clone())).unwrap();
        assert_eq!(
            enc.receive_packet().unwrap_err(),
            EncoderStatus::NeedMoreData
        );
    }
    enc.send_frame(Some(frames[3].clone())).unwrap();
    assert_eq!(
        enc.send_frame(Some(frames[4].clone())).unwrap_err(),
        EncoderStatus::EnoughData
    );
    assert_eq!(enc.receive_packet().unwrap().pts, 0);
    assert_eq!(
        enc.receive_packet().unwrap_err(),
        EncoderStatus::NeedMoreData
    );
    enc.send_frame(Some(frames[4].clone())).unwrap();
    assert_eq!(enc.receive_packet().unwrap().pts, 1);
    enc.flush();
    let rest: Vec<u64> = std::iter::from_fn(|| enc.receive_packet().ok())
        .map(|p| p.pts)
        .collect();
    assert_eq!(rest, [2, 3, 4]);
    assert_eq!(
        enc.receive_packet().unwrap_err(),
        EncoderStatus::LimitReached
    );
}

/// A lookahead by itself changes no decision: the same bytes as lag 0.
#[test]
fn lookahead_without_alt_ref_keeps_the_stream() {
    let frames = clip(64, 48, 20);
    let mut cfg = EncoderConfig::new(64, 48);
    cfg.golden.interval = 6;
    let plain = encode_all(&cfg, &frames);
    cfg.lag_in_frames = 7;
    let lagged = encode_all(&cfg, &frames);
    assert_eq!(plain.len(), lagged.len());
    for (a, b) in plain.iter().zip(&lagged) {
        assert!(a.data == b.data && a.pts == b.pts);
    }
}

/// One hidden alt-ref per golden group, coded right after the group's key
/// or golden frame; the frames of the group mark the alt-ref's sign bias;
/// all of it decodes to the encoder's states.
#[test]
fn hidden_alt_refs_per_group_with_sign_bias() {
    let frames = clip(64, 48, 37);
    let cfg = arf_config(64, 48, 2);
    let packets = encode_all(&cfg, &frames);
    let shown = check_decodes(&packets, "arf");
    assert_eq!(shown, (0..37).collect::<Vec<u64>>());
    // Groups start at 0, 8, 16, 24 and 32; the last spans frames 33..=36
    // (4 frames, the minimum).
    let layout: String = packets
        .iter()
        .map(|p| match (p.key_frame, p.golden, p.show_frame) {
            (true, _, _) => 'K',
            (_, _, false) => 'A',
            (_, true, _) => 'G',
            _ => 'i',
        })
        .collect();
    let group = format!("GA{}", "i".repeat(7));
    let want = format!("KA{}{}GAiiii", "i".repeat(7), group.repeat(3));
    assert_eq!(layout, want);
    let mut state = DecoderState::new();
    for (i, p) in packets.iter().enumerate() {
        if !p.key_frame {
            let hdr = parse_frame_header(&state, &p.data).unwrap();
            // The hidden frame refreshes only the alt-ref.
            if !p.show_frame {
                assert!(hdr.refresh_altref && !hdr.refresh_last && !hdr.refresh_golden);
            }
            // Every frame after an alt-ref predicts with its sign bias set,
            // up to and including the golden frame that ends the group.
            let after_arf = packets[..=i].iter().any(|q| !q.show_frame);
            assert_eq!(hdr.sign_bias_altref, after_arf, "packet {i}");
            assert!(!hdr.sign_bias_golden);
        }
        state = p.state.clone();
    }
    // Hidden frames carry the next shown frame's time.
    for w in packets.windows(2) {
        if !w[0].show_frame {
            assert_eq!(w[0].pts, w[1].pts);
        }
    }
}

/// A key frame inside the lookahead ends the group before it; a stream
/// shorter than a group still gets its alt-ref; groups too short get none.
#[test]
fn groups_end_at_key_frames_and_at_the_end_of_the_stream() {
    let frames = clip(48, 32, 14);
    let mut cfg = arf_config(48, 32, 4);
    cfg.keyint = 10;
    cfg.golden.interval = 20;
    let packets = encode_all(&cfg, &frames);
    check_decodes(&packets, "keyint 10");
    let layout: String = packets
        .iter()
        .map(|p| {
            if p.key_frame {
                'K'
            } else if p.show_frame {
                'i'
            } else {
                'A'
            }
        })
        .collect();
    // The alt-ref of the first group stands for frame 9, the last before
    // the key frame; the second group (the 3 frames after the key frame
    // at 10) is too short for one.
    assert_eq!(layout, "KAiiiiiiiiiKiii");
    let frames = clip(48, 32, 3);
    let packets = encode_all(&arf_config(48, 32, 4), &frames);
    assert!(packets.iter().all(|p| p.show_frame), "3 frames: no alt-ref");
}

/// libvpx decodes streams with hidden alt-refs to exactly the pictures of
/// our shown frames, over speeds, quantizers, partitions, key frame
/// intervals and the bitrate mode.
#[test]
fn vpxdec_agrees_on_alt_ref_streams() {
    if !have_vpxdec() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = clip(72, 40, 30);
    let mut hidden = 0;
    for (i, (speed, rate)) in [
        (0, RateControl::Quantizer(10)),
        (2, RateControl::Quantizer(45)),
        (4, RateControl::Quantizer(30)),
        (5, RateControl::Bitrate { kbps: 120 }),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = arf_config(72, 40, speed);
        cfg.rate = rate;
        cfg.partitions = [1, 2, 4, 8][i];
        cfg.keyint = [128, 17, 0, 128][i];
        cfg.golden.interval = [8, 6, 12, 0][i];
        let packets = encode_all(&cfg, &frames);
        check_decodes(&packets, &format!("case {i}"));
        hidden += packets.iter().filter(|p| !p.show_frame).count();
        let ivf = dir.path().join("a.ivf");
        write_ivf(&ivf, 72, 40, &packets);
        let ours = shown_md5s(&packets);
        assert_eq!(ours.len(), frames.len());
        assert_eq!(vpxdec_md5s(&ivf).unwrap(), ours, "case {i}");
    }
    assert!(hidden >= 8, "only {hidden} hidden frames");
}

/// Rebasing a hidden alt-ref onto another state keeps it hidden, keeps
/// its reference updates and sign bias, and decodes to what rebase says.
#[test]
fn rebase_keeps_a_hidden_alt_ref_hidden() {
    let frames = clip(64, 48, 20);
    let cfg = arf_config(64, 48, 2);
    let packets = encode_all(&cfg, &frames);
    let arf = packets.iter().position(|p| !p.show_frame).unwrap();
    assert_eq!(arf, 1);
    // Onto its own state: the same state as the original.
    let before = &packets[arf - 1].state;
    let hdr = parse_frame_header(before, &packets[arf].data).unwrap();
    // The source: the frame the alt-ref stands for (the filtered one is
    // internal); rebase re-codes residuals against it.
    let image = &frames[8];
    let r = rebase(before, before, image, &packets[arf].data).unwrap();
    assert!(r.shown.is_none());
    let d = decode_picture(before, &r.data).unwrap();
    assert!(d.shown.is_none() && d.state == r.state);
    // Onto a different state (the key frame re-coded finer).
    let mut other_cfg = cfg.clone();
    other_cfg.rate = RateControl::Quantizer(10);
    let other = encode_all(&other_cfg, &frames[..1]);
    let target = &other[0].state;
    let r = rebase(before, target, image, &packets[arf].data).unwrap();
    assert!(r.shown.is_none());
    let d = decode_picture(target, &r.data).unwrap();
    assert!(d.shown.is_none() && d.state == r.state);
    let rh = parse_frame_header(target, &r.data).unwrap();
    assert_eq!(
        (rh.refresh_altref, rh.refresh_last, rh.refresh_golden),
        (hdr.refresh_altref, hdr.refresh_last, hdr.refresh_golden)
    );
    assert_eq!(rh.sign_bias_altref, hdr.sign_bias_altref);
    assert!(!rh.tag.show_frame);
}
