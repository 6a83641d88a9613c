//! A whole worker task with fuzzed fields, planted states and checkpoints;
//! see `src/harness.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| excam_worker_fuzz::harness::run("task", data));
