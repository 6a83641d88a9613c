//! Groups planned from the lookahead statistics: static content gets long
//! golden groups with finely coded references, busy content short ones;
//! the content cutting to another scene gets a key frame there (within
//! `kf_min_dist`); every stream decodes to the encoder's states, and
//! vpxdec shows exactly our pictures.

mod common;

use excam_codec::encode::encoder::{EncoderConfig, Packet, RateControl, MAX_LAG};
use excam_codec::Image;

use common::{check_decodes, encode_all, have_vpxdec, shown_md5s, vpxdec_md5s, write_ivf};

/// A textured picture: `scene` picks the texture, `pan` shifts it, a
/// bright square moves across at `t`, `noise` adds deterministic noise.
fn picture(w: usize, h: usize, scene: usize, pan: usize, t: usize, noise: u32) -> Image {
    let mut seed = 0x9e37_79b9u32 ^ (t as u32).wrapping_mul(0x85eb_ca6b);
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut f = Image::filled(w, h, [0, 0, 0]);
    for (pi, plane) in f.planes.iter_mut().enumerate() {
        let s = if pi == 0 { 1 } else { 2 };
        for y in 0..plane.height {
            for x in 0..plane.width {
                let (fx, fy) = (x * s + pan, y * s + pan / 2);
                let mut v = if scene == 0 {
                    ((fx * 5) ^ (fy * 3)) as i32 % 160 + 40
                } else {
                    (((fx / 6 + fy / 5) % 2) * 150) as i32 + 50 - (fy % 7) as i32 * 4
                };
                let sq = ((8 + 3 * t) % w, h / 2);
                if (x * s).abs_diff(sq.0) < 8 && (y * s).abs_diff(sq.1) < 8 {
                    v = 220 - 30 * pi as i32;
                }
                if noise > 0 {
                    v += (rnd() % (2 * noise + 1)) as i32 - noise as i32;
                }
                plane.row_mut(y)[x] = v.clamp(0, 255) as u8;
            }
        }
    }
    f
}

/// K key, A hidden alt-ref, G golden, i inter.
fn layout(packets: &[Packet]) -> String {
    packets
        .iter()
        .map(|p| match (p.key_frame, p.golden, p.show_frame) {
            (true, _, _) => 'K',
            (_, _, false) => 'A',
            (_, true, _) => 'G',
            _ => 'i',
        })
        .collect()
}

fn key_pts(packets: &[Packet]) -> Vec<u64> {
    packets
        .iter()
        .filter(|p| p.key_frame)
        .map(|p| p.pts)
        .collect()
}

fn cfg(w: usize, h: usize) -> EncoderConfig {
    let mut cfg = EncoderConfig::with_speed(w, h, 4);
    assert!(cfg.group.adaptive && cfg.scene_cuts && cfg.lag_in_frames > 0);
    cfg.rate = RateControl::Quantizer(30);
    cfg
}

/// A still scene with one small moving square: one long group, as long as
/// the group length limit allows ([`EncoderConfig::group_max_len`], 17
/// frames at 30 fps) or, without the limit, over the whole lookahead; its
/// key frame far finer than the fixed boost (half the q index); a
/// panning, noisy scene: groups of the minimum length.
#[test]
fn static_content_gets_long_groups_busy_content_short_ones() {
    let (w, h) = (96, 64);
    let still: Vec<Image> = (0..40).map(|t| picture(w, h, 0, 0, t, 0)).collect();
    let mut c = cfg(w, h);
    assert_eq!(c.group_max_len(), 17);
    // Shown frames before the first golden refresh after the key frame.
    let first_group = |packets: &[Packet]| {
        let lay = layout(packets);
        let first_golden = lay[1..].find(['G', 'K']).map(|i| i + 1);
        let shown = lay[..first_golden.unwrap_or(lay.len())]
            .chars()
            .filter(|&ch| ch != 'A')
            .count();
        (shown, lay)
    };
    let packets = encode_all(&c, &still);
    check_decodes(&packets, "still");
    let (shown, lay) = first_group(&packets);
    assert_eq!(shown, 17, "{lay}");
    // Later groups too.
    assert!(lay.contains(&format!("GA{}G", "i".repeat(16))), "{lay}");
    let inter_qi = packets
        .iter()
        .find(|p| !p.golden && p.show_frame)
        .unwrap()
        .q_index;
    assert!(
        (packets[0].q_index as u32) < inter_qi as u32 / 2,
        "key q index {} vs inter {inter_qi}",
        packets[0].q_index
    );
    c.group.max_len = MAX_LAG;
    let packets = encode_all(&c, &still);
    check_decodes(&packets, "still, groups up to the lookahead");
    let (shown, lay) = first_group(&packets);
    assert!(shown >= 25, "{lay}");
    let busy: Vec<Image> = (0..30).map(|t| picture(w, h, 1, 5 * t, t, 40)).collect();
    let packets = encode_all(&c, &busy);
    check_decodes(&packets, "busy");
    let lay = layout(&packets);
    assert_eq!(key_pts(&packets), [0], "{lay}");
    let groups = lay.chars().filter(|&ch| ch == 'G').count();
    assert!(groups >= 3, "{lay}");
}

/// Two scenes back to back: a key frame where the second starts (and
/// nowhere else), unless scene cuts are off or `kf_min_dist` forbids it;
/// vpxdec decodes the stream to our pictures.
#[test]
fn scene_cut_gets_a_key_frame() {
    let (w, h) = (96, 64);
    let frames: Vec<Image> = (0..32)
        .map(|t| {
            if t < 14 {
                picture(w, h, 0, t, t, 2)
            } else {
                picture(w, h, 1, t, t, 2)
            }
        })
        .collect();
    let c = cfg(w, h);
    let packets = encode_all(&c, &frames);
    check_decodes(&packets, "cut");
    assert_eq!(key_pts(&packets), [0, 14], "{}", layout(&packets));
    // The alt-ref of the first group stands for a frame before the cut.
    for (i, p) in packets.iter().enumerate() {
        if !p.show_frame {
            assert!(
                packets[i + 1].pts < 14 || p.pts >= 14,
                "{}",
                layout(&packets)
            );
        }
    }
    let mut far = c.clone();
    far.kf_min_dist = 20;
    assert_eq!(key_pts(&encode_all(&far, &frames)), [0]);
    let mut off = c.clone();
    off.scene_cuts = false;
    assert_eq!(key_pts(&encode_all(&off, &frames)), [0]);

    if !have_vpxdec() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ivf = dir.path().join("cut.ivf");
    write_ivf(&ivf, w, h, &packets);
    let theirs = vpxdec_md5s(&ivf).expect("vpxdec runs");
    let ours = shown_md5s(&packets);
    assert_eq!(ours.len(), frames.len());
    assert_eq!(theirs, ours);
}

/// The golden frame that ends an alt-ref group (the frame the alt-ref
/// was built from) predicts mostly from the alt-ref, as libvpx's does,
/// rather than from the coarse last frame: the next group's golden
/// reference is then the fine alt-ref's picture. (Priced as the other
/// inter frames, a quarter of its macroblocks took the alt-ref here.)
#[test]
fn golden_frame_after_an_alt_ref_group_predicts_from_it() {
    use excam_codec::prediction::RefFrame;
    let (w, h) = (96, 64);
    let still: Vec<Image> = (0..40).map(|t| picture(w, h, 0, 0, t, 3)).collect();
    let packets = encode_all(&cfg(w, h), &still);
    check_decodes(&packets, "still with noise");
    let lay = layout(&packets);
    let mut state = excam_codec::DecoderState::new();
    let (mut from_arf, mut total) = (0, 0);
    for (i, p) in packets.iter().enumerate() {
        let d = excam_codec::decode_picture(&state, &p.data).unwrap();
        // A golden frame whose group had an alt-ref (an 'A' since the
        // group's key or golden frame).
        let group_start = lay[..i].rfind(['K', 'G']);
        let had_arf = group_start.is_some_and(|s| lay[s..i].contains('A'));
        if p.golden && !p.key_frame && had_arf {
            from_arf += d
                .modes
                .iter()
                .filter(|m| m.ref_frame == RefFrame::AltRef)
                .count();
            total += d.modes.len();
        }
        state = d.state;
    }
    assert!(total > 0, "no golden frame after an alt-ref group: {lay}");
    assert!(
        from_arf * 2 > total,
        "{from_arf} of {total} macroblocks from the alt-ref ({lay})"
    );
}
