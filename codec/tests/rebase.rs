//! rebase and encode-given-state: decisions kept, residual redone, and the
//! result always decodes to the reconstruction the encoder reports.

use excam_codec::{decode, encode, encode_given_state, rebase, DecoderState, EncodeParams, Image};

/// A small moving, textured synthetic clip (deterministic).
fn clip(w: usize, h: usize, n: usize, seed: u32) -> Vec<Image> {
    (0..n)
        .map(|t| {
            let mut bytes = Vec::new();
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            for y in 0..h {
                for x in 0..w {
                    let v = ((x + 2 * t) * 7 + (y + t) * 3) as u32
                        ^ seed.wrapping_mul((x * y) as u32 + 1) >> 28;
                    bytes.push((v % 200 + 20) as u8);
                }
            }
            for p in 0..2 {
                for y in 0..ch {
                    for x in 0..cw {
                        bytes.push((100 + p * 30 + (x + y + t) % 40) as u8);
                    }
                }
            }
            Image::from_i420(w, h, &bytes).unwrap()
        })
        .collect()
}

/// Encodes a clip serially and returns the states before each frame and
/// the frames' bytes.
fn encode_clip(frames: &[Image], q: u8, speed: u8) -> (Vec<DecoderState>, Vec<Vec<u8>>) {
    let mut states = vec![DecoderState::default()];
    let mut out = Vec::new();
    for f in frames {
        let p = EncodeParams {
            q_index: q,
            speed,
            ..Default::default()
        };
        let e = encode(states.last().unwrap(), f, &p).unwrap();
        out.push(e.data);
        states.push(e.state);
    }
    (states, out)
}

#[test]
fn rebase_onto_original_state_is_identity_on_reconstruction() {
    for (w, h, q) in [(64, 48, 40), (33, 31, 10), (80, 64, 100)] {
        let frames = clip(w, h, 5, 3);
        let (states, bytes) = encode_clip(&frames, q, 2);
        for i in 1..frames.len() {
            let r = rebase(&states[i], &states[i], &frames[i], &bytes[i]).unwrap();
            assert!(r.state == states[i + 1], "{w}x{h} q{q} frame {i}");
        }
    }
}

#[test]
fn rebased_frame_decodes_to_its_reconstruction_on_a_new_state() {
    let frames = clip(64, 48, 8, 5);
    let (states, bytes) = encode_clip(&frames, 50, 4);
    // A different history: another encode of the first frames at another q.
    let (other, _) = encode_clip(&frames[..4], 20, 4);
    let mut target = other[4].clone();
    for i in 4..frames.len() {
        let r = rebase(&states[i], &target, &frames[i], &bytes[i]).unwrap();
        let (decoded, shown) = decode(&target, &r.data).unwrap();
        assert!(
            decoded == r.state,
            "frame {i}: decoder disagrees with rebase"
        );
        assert_eq!(shown.unwrap(), r.shown.as_ref().unwrap().to_frame());
        // The decisions are the original frame's.
        let orig = excam_codec::decode_picture(&states[i], &bytes[i]).unwrap();
        let new = excam_codec::decode_picture(&target, &r.data).unwrap();
        for (a, b) in orig.modes.iter().zip(&new.modes) {
            assert_eq!(
                (a.y_mode, a.ref_frame, a.mvs, a.b_modes),
                (b.y_mode, b.ref_frame, b.mvs, b.b_modes)
            );
        }
        assert_eq!(orig.info.header.quant, new.info.header.quant);
        target = r.state;
    }
}

#[test]
fn wrong_original_state_is_refused_or_differs() {
    let frames = clip(64, 48, 3, 9);
    let (states, bytes) = encode_clip(&frames, 40, 4);
    // An empty state cannot parse an inter frame.
    assert!(rebase(&DecoderState::default(), &states[1], &frames[1], &bytes[1]).is_err());
    // A target of another size is refused.
    let small = clip(32, 32, 1, 1);
    let (s2, _) = encode_clip(&small, 40, 4);
    assert!(rebase(&states[1], &s2[1], &frames[1], &bytes[1]).is_err());
}

#[test]
fn encode_given_state_refreshes_all_references() {
    let frames = clip(64, 48, 4, 11);
    let (states, _) = encode_clip(&frames[..2], 40, 4);
    let e = encode_given_state(&states[2], &frames[2], &EncodeParams::default()).unwrap();
    assert!(!e.key_frame);
    let refs = e.state.references().unwrap();
    assert!(refs.last == refs.golden && refs.golden == refs.altref);
    let (d, _) = decode(&states[2], &e.data).unwrap();
    assert!(d == e.state);
    assert!(encode_given_state(
        &DecoderState::default(),
        &frames[0],
        &EncodeParams::default()
    )
    .is_err());
}

/// Frames from libvpx streams with segmentation (per-segment quantizers)
/// and other bitstream versions rebase onto their own states and decode to
/// what the rebase reports.
#[test]
fn libvpx_streams_with_segmentation_rebase_consistently() {
    use excam_codec::container::ivf::IvfReader;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vp8-test-vectors");
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    for name in [
        "vp80-03-segmentation-1401.ivf",
        "vp80-03-segmentation-1436.ivf",
        "vp80-00-comprehensive-007.ivf",
    ] {
        let reader = IvfReader::new(std::fs::File::open(dir.join(name)).unwrap()).unwrap();
        let mut state = DecoderState::default();
        for (i, f) in reader.take(8).enumerate() {
            let f = f.unwrap().data;
            let (next, shown) = decode(&state, &f).unwrap();
            if i > 0 && !state.is_empty() && next.dimensions() == state.dimensions() {
                if let Some(img) = shown.clone() {
                    let r = rebase(&state, &state, &img, &f).unwrap();
                    let (d, _) = decode(&state, &r.data).unwrap();
                    assert!(d == r.state, "{name} frame {i}");
                }
            }
            state = next;
        }
    }
}
