//! Harnesses of the relay's fuzz targets, in a library so that the relay's
//! tests (`rendezvous/tests/fuzz_replay.rs`, `rendezvous/tests/live_relay.rs`)
//! run the same code without libFuzzer.

pub mod harness;
pub mod live;
