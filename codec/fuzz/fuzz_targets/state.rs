//! Fuzzes `excam_codec::wire::decode_state`, the reader of states that
//! arrive from other workers and the relay.
//!
//! Random bytes rarely get past the checksum, so most inputs are framed
//! here with a valid one: the first byte picks raw bytes (even) or a
//! framed body (odd; bit 1 picks LZ4, whose claimed body length is then
//! the next four bytes), so the fuzzer reaches the decompressor and the
//! body parser behind the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is `harness::raw_state`, which `codec/tests/fuzz_replay.rs` also runs.
fuzz_target!(|data: &[u8]| {
    excam_codec_fuzz::harness::raw_state(data);
});
