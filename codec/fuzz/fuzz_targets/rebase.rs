//! A frame, the state it claims and a hostile target state into `rebase`; what comes out must decode against the target as rebase says.
//! See `src/harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    excam_codec_fuzz::harness::run("rebase", data);
});
