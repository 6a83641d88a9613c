//! Benchmarks and the harness that compares excam with libvpx.

pub mod bdrate;
