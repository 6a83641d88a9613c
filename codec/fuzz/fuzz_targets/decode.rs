//! Fuzzes `excam_codec::decode` over whole streams.
//!
//! The input is an IVF file (the seeds are the first frames of the
//! official vectors). Every frame goes through `decode` with the state the
//! previous frames left; a frame that fails must leave the state as it was,
//! so decoding carries on with the next one, as a player would.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The body is `harness::raw_decode`, which `codec/tests/fuzz_replay.rs` also runs.
fuzz_target!(|data: &[u8]| {
    excam_codec_fuzz::harness::raw_decode(data);
});
