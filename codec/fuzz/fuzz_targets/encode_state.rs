//! A hostile state, picture and parameters into `encode_given_state` or `encode`; what comes out must decode against the state as the encoder says.
//! See `src/harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    excam_codec_fuzz::harness::run("encode_state", data);
});
