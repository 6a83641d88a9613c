//! Fuzzes `excam_codec::decode` over whole streams.
//!
//! The input is an IVF file (the seeds are the first frames of the
//! official vectors). Every frame goes through `decode` with the state the
//! previous frames left; a frame that fails must leave the state as it was,
//! so decoding carries on with the next one, as a player would.

#![no_main]

use excam_codec::container::ivf::IvfReader;
use excam_codec::{decode, DecoderState};
use libfuzzer_sys::fuzz_target;

/// Frames decoded per input at most: mutations rarely need more, and it
/// keeps each run short.
const MAX_FRAMES: usize = 16;

/// Key frames larger than this many pixels are skipped. Huge sizes are
/// legal and bounded (see `codec/tests/robustness.rs`, which decodes a
/// 16383x16383 frame), but at hundreds of megabytes each they would turn
/// the fuzzer into a memory benchmark.
const MAX_PIXELS: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = IvfReader::new(data).map(|r| r.with_max_frame_size(1 << 20)) else {
        return;
    };
    let mut state = DecoderState::new();
    for frame in reader.take(MAX_FRAMES) {
        let Ok(frame) = frame else { break };
        let d = &frame.data;
        if d.len() >= 10 && d[0] & 1 == 0 {
            let w = (u16::from_le_bytes([d[6], d[7]]) & 0x3fff) as usize;
            let h = (u16::from_le_bytes([d[8], d[9]]) & 0x3fff) as usize;
            if w * h > MAX_PIXELS {
                continue;
            }
        }
        // A failed frame leaves the state as it was; go on with the next.
        if let Ok((next, shown)) = decode(&state, d) {
            if let Some(f) = shown {
                let (w, h) = next.dimensions();
                assert_eq!((f.width, f.height), (w, h));
            }
            state = next;
        }
    }
});
