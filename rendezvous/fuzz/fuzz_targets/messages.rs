//! Streams of relay protocol frames of every kind, with junk and flipped
//! bytes, read frame by frame in arbitrary pieces; see `src/harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| excam_rendezvous_fuzz::harness::run("messages", data));
