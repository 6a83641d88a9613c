//! Fuzzes the relay's frame parser: no input may panic it, and whatever it
//! accepts must re-encode to exactly the bytes it was parsed from.
//!
//! Run with `cargo +nightly fuzz run frame_parser` from `rendezvous/`.

#![no_main]

use excam_rendezvous::proto::{decode_frame, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the receiver's payload limit, so the limit
    // check is fuzzed too; the rest is the frame.
    let (limit, frame) = match data.split_first_chunk::<8>() {
        Some((l, rest)) => (u64::from_le_bytes(*l), rest),
        None => (1 << 20, data),
    };
    if let Ok(Some(d)) = decode_frame(frame, limit) {
        assert!(d.used <= frame.len());
        assert!(d.payload.len() as u64 <= limit);
        let head = match &d.message {
            Message::Request(r) => r.encode(d.payload.len() as u64),
            Message::Response(r) => r.encode(d.payload.len() as u64),
        };
        assert_eq!(&head[..], &frame[..d.used - d.payload.len()]);
    }
});
