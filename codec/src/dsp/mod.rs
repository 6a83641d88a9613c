//! SIMD kernels of the decoder's hot paths, the one place where their
//! `unsafe` lives.
//!
//! Each kernel here has a safe entry point that checks every byte it will
//! touch against the slices it was given, picks an implementation for the
//! CPU (detected once, [`cpu`]) and returns `false` when it has none or
//! the block is too close to the end of a buffer for its wide loads; the
//! caller then runs the portable scalar twin, which stays the definition
//! of the result. Tests compare the two on random and extreme inputs.
//!
//! * [`subpel`]: six-tap sub-pixel prediction with SSSE3 `pmaddubsw`
//!   (runtime detected).
//! * [`idct`]: inverse DCT plus add, and DC-only add, with SSE2 (the
//!   x86-64 baseline).
//! * [`copy`]: whole-pixel block copies with one bounds check per block.
//!
//! The loop filter's SSE2 kernel (`loop_filter/sse2.rs`) and the
//! encoder's AVX2 dispatch (`encode/simd.rs`) predate this module.

pub mod copy;
pub mod cpu;
pub mod idct;
pub mod subpel;
