//! Benchmarks and the harness that compares excam with libvpx.

#![forbid(unsafe_code)]

pub mod bdrate;
