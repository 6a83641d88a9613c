//! Harness of the worker's fuzz target, in a library so that
//! `worker/tests/fuzz_replay.rs` runs the same code without libFuzzer.

pub mod harness;
