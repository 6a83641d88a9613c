//! Fuzzes the relay's frame parser: no input may panic it, and whatever it
//! accepts must re-encode to exactly the bytes it was parsed from.
//!
//! Run with `cargo +nightly fuzz run frame_parser` from `rendezvous/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is `harness::frame_parser`, which `rendezvous/tests/fuzz_replay.rs` also runs.
fuzz_target!(|data: &[u8]| excam_rendezvous_fuzz::harness::frame_parser(data));
