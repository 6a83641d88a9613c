//! Harnesses of the codec's fuzz targets, in a library so that
//! `codec/tests/fuzz_replay.rs` runs the very same code on the seeds and
//! regressions without libFuzzer.

pub mod harness;
