//! Harnesses of the relay's fuzz targets, in a library so that
//! `rendezvous/tests/fuzz_replay.rs` runs the same code without libFuzzer.

pub mod harness;
