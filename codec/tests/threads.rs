//! Threads for one stream (issue 19): a frame decided on any number of
//! threads (`EncodeParams::threads`, the macroblock-row wavefront) is the
//! same bytes and the same state as on one thread, over speeds, odd
//! sizes, one-macroblock rows and columns, token partitions, and key,
//! inter, golden, hidden alt-ref and copy frames; the streaming encoder's
//! packets likewise; and every frame decodes to the state the encoder
//! kept.

mod common;

use excam_codec::encode::encoder::EncoderConfig;
use excam_codec::{
    decode_picture, decode_picture_threaded, encode, Decoder, DecoderState, EncodeParams, Image,
};

use common::{carphone, check_decodes, encode_all};

/// A moving pattern with texture, a drifting edge and noise, so intra
/// (B_PRED included), inter and split decisions all happen.
fn synthetic(w: usize, h: usize, n: usize) -> Vec<Image> {
    let mut seed = 0x9e37_79b9u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 17) as i32 - 8
    };
    (0..n)
        .map(|t| {
            let mut f = Image::filled(w, h, [0, 0, 0]);
            for (pi, plane) in f.planes.iter_mut().enumerate() {
                let (pw, ph) = (plane.width, plane.height);
                for y in 0..ph {
                    for x in 0..pw {
                        let (fx, fy) = (x + t * 2, y + t);
                        let mut v = ((fx * 7) ^ (fy * 5)) as i32 % 160 + 40;
                        if (fx / 9 + fy / 7) % 3 == 0 {
                            v = 200 - 30 * pi as i32;
                        }
                        plane.row_mut(y)[x] = (v + noise()).clamp(0, 255) as u8;
                    }
                }
            }
            f
        })
        .collect()
}

/// The params of frame `i` of a pattern that visits every frame kind:
/// a key frame, inter frames, a golden refresh, a hidden alt-ref with
/// sign bias and frames predicting from it, copies between buffers.
fn frame_params(i: usize, speed: u8, partitions: usize, threads: usize) -> EncodeParams {
    let mut p = EncodeParams {
        q_index: [40, 20, 60, 90][i % 4],
        speed,
        partitions,
        threads,
        key_frame: i == 0,
        ..EncodeParams::default()
    };
    match i {
        2 => p.refresh_golden = true,
        3 => {
            p.refresh_altref = true;
            p.refresh_last = false;
            p.show_frame = false;
            p.sign_bias_altref = true;
        }
        4 | 5 => p.sign_bias_altref = true,
        6 => {
            p.copy_to_golden = 1;
            p.copy_to_altref = 2;
        }
        _ => {}
    }
    p
}

/// Encodes `frames` with [`frame_params`] on `threads` threads; checks
/// that each frame decodes to the state the encoder returned, and
/// returns every frame's bytes and state.
fn run(
    frames: &[Image],
    speed: u8,
    partitions: usize,
    threads: usize,
) -> Vec<(Vec<u8>, DecoderState)> {
    let mut state = DecoderState::new();
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let e = encode(&state, f, &frame_params(i, speed, partitions, threads)).unwrap();
        let d = decode_picture(&state, &e.data).unwrap();
        assert!(
            d.state == e.state,
            "frame {i}: decoder state differs from the encoder's"
        );
        state = e.state.clone();
        out.push((e.data, e.state));
    }
    out
}

/// Asserts that 2, 3 and 8 threads give what one thread gives.
fn assert_thread_counts_agree(what: &str, frames: &[Image], speed: u8, partitions: usize) {
    let one = run(frames, speed, partitions, 1);
    for threads in [2, 3, 8] {
        let many = run(frames, speed, partitions, threads);
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            assert!(
                a.0 == b.0,
                "{what}: frame {i} bytes differ on {threads} threads"
            );
            assert!(
                a.1 == b.1,
                "{what}: frame {i} state differs on {threads} threads"
            );
        }
    }
}

#[test]
fn thread_counts_agree_on_real_content_at_every_speed_group() {
    let Some(frames) = carphone(8) else { return };
    for speed in [0, 2, 4, 6, 8] {
        assert_thread_counts_agree(&format!("carphone speed {speed}"), &frames, speed, 1);
    }
}

#[test]
fn thread_counts_agree_with_token_partitions() {
    let frames = synthetic(100, 72, 8);
    for parts in [2, 4, 8] {
        assert_thread_counts_agree(&format!("100x72 {parts} partitions"), &frames, 4, parts);
    }
}

#[test]
fn thread_counts_agree_on_odd_and_thin_sizes() {
    // Odd sizes, one macroblock row, one macroblock column, one
    // macroblock, more threads than rows, and widths whose rows hand
    // over every 8 and 16 macroblocks (with a short last batch).
    for (w, h) in [
        (37, 53),
        (161, 9),
        (15, 140),
        (16, 16),
        (8, 40),
        (130, 33),
        (700, 40),
        (1300, 20),
    ] {
        let frames = synthetic(w, h, 8);
        for speed in [1, 5] {
            assert_thread_counts_agree(&format!("{w}x{h} speed {speed}"), &frames, speed, 1);
        }
    }
}

/// A thread count of 0 means one thread; a huge one is capped, not an
/// error or a thread per row beyond the cap.
#[test]
fn zero_and_huge_thread_counts_code_the_same_frame() {
    let frames = synthetic(64, 48, 2);
    let one = run(&frames, 4, 1, 1);
    assert!(run(&frames, 4, 1, 0) == one);
    assert!(run(&frames, 4, 1, usize::MAX) == one);
}

/// The streaming encoder (lookahead, planned groups, hidden alt-refs,
/// rate control) gives the same packets for any `EncoderConfig::threads`,
/// and they decode to its own states.
#[test]
fn streaming_encoder_packets_agree_across_thread_counts() {
    let frames = carphone(24).unwrap_or_else(|| synthetic(96, 80, 24));
    let (w, h) = (frames[0].width, frames[0].height);
    for speed in [1, 4] {
        let mut cfg = EncoderConfig::with_speed(w, h, speed);
        cfg.lag_in_frames = cfg.lag_in_frames.min(8);
        cfg.partitions = 2;
        let one = encode_all(&cfg, &frames);
        assert!(
            one.iter().any(|p| !p.show_frame),
            "speed {speed}: an alt-ref was coded"
        );
        check_decodes(&one, &format!("speed {speed}, 1 thread"));
        for threads in [2, 3] {
            cfg.threads = threads;
            let many = encode_all(&cfg, &frames);
            assert_eq!(many.len(), one.len());
            for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                assert!(
                    a.data == b.data && a.state == b.state,
                    "speed {speed}: packet {i} differs on {threads} threads"
                );
            }
        }
    }
}

/// The streaming encoder keeps its helper threads for the stream and
/// runs on them the lookahead's statistics, the alt-ref temporal filter,
/// the sub-pixel planes, the wavefront and the loop filter level search
/// beside the token partitions: at every speed preset, with and without
/// alt-refs, on an odd size with a short last macroblock row and column,
/// 2, 3 and 8 threads give the packets one thread gives.
#[test]
fn streaming_encoder_agrees_at_every_speed_with_and_without_alt_refs() {
    let frames = synthetic(75, 45, 14);
    for speed in 0..=8 {
        for alt_ref in [true, false] {
            let mut cfg = EncoderConfig::with_speed(75, 45, speed);
            cfg.lag_in_frames = 6;
            cfg.alt_ref.enabled = alt_ref;
            cfg.alt_ref.min_group = 2;
            cfg.golden.interval = 6;
            let what = format!("speed {speed}, alt-ref {alt_ref}");
            let one = encode_all(&cfg, &frames);
            check_decodes(&one, &what);
            if alt_ref {
                assert!(
                    one.iter().any(|p| !p.show_frame),
                    "{what}: no alt-ref coded"
                );
            }
            for threads in [2, 3, 8] {
                cfg.threads = threads;
                let many = encode_all(&cfg, &frames);
                assert_eq!(many.len(), one.len(), "{what}, {threads} threads");
                for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                    assert!(
                        a.data == b.data && a.state == b.state,
                        "{what}: packet {i} differs on {threads} threads"
                    );
                }
            }
        }
    }
}

/// The decoder's threads (the macroblock-row wavefront): 2, 3 and 8
/// threads, started per frame (`decode_picture_threaded`) or kept by a
/// `Decoder`, end every frame in the state one thread gives (reference
/// pictures with their borders, probabilities, segment map), on every
/// frame kind, with 1, 2, 4 and 8 token partitions, odd sizes, one
/// macroblock column and more threads than rows.
#[test]
fn decoder_thread_counts_agree() {
    for (w, h) in [(100, 72), (37, 53), (15, 140), (130, 33), (8, 40)] {
        let frames = synthetic(w, h, 8);
        for parts in [1, 2, 4, 8] {
            // `run` checks that one thread decodes each frame to the
            // encoder's state.
            let coded = run(&frames, 4, parts, 1);
            for threads in [2, 3, 8] {
                let mut state = DecoderState::new();
                let mut decoder = Decoder::with_threads(threads);
                for (i, (data, want)) in coded.iter().enumerate() {
                    let d = decode_picture_threaded(&state, data, threads).unwrap();
                    assert!(
                        d.state == *want,
                        "{w}x{h}, {parts} partitions, {threads} threads: frame {i} differs"
                    );
                    state = d.state;
                    decoder.decode(data).unwrap();
                    assert!(
                        decoder.state() == want,
                        "{w}x{h}, {parts} partitions, {threads} kept threads: frame {i} differs"
                    );
                }
            }
        }
    }
}

/// A decoder asked for 0, 1 or more threads than it keeps
/// (`Decoder::MAX_THREADS`) decodes as one thread does.
#[test]
fn decoder_zero_and_huge_thread_counts() {
    let coded = run(&synthetic(64, 48, 3), 4, 2, 1);
    for threads in [0, 1, usize::MAX] {
        let mut decoder = Decoder::with_threads(threads);
        for (i, (data, want)) in coded.iter().enumerate() {
            decoder.decode(data).unwrap();
            assert!(decoder.state() == want, "{threads} threads: frame {i}");
        }
    }
}
