//! A hostile state (a real one with its wire body flipped), then real, mutated or raw frames decoded from it in turn.
//! See `src/harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    excam_codec_fuzz::harness::run("decode_chain", data);
});
