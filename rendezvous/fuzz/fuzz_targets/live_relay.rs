//! Scripts of hostile and honest QUIC clients against a live relay on
//! loopback; see `src/live.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| excam_rendezvous_fuzz::live::run(data));
