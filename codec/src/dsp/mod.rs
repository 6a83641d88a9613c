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
//! * `loop_filter`: the normal loop filter with SSE2, 16 pixels of an
//!   edge at a time (scalar twin: `loop_filter::filter_mb_normal_n`).
//! * `sad`, `fdct` (x86-64 only): the encoder's SSE2 distortion kernels
//!   and forward DCT (scalar twins in `encode::sad`, `encode::fdct`).
//! * `dispatch`: the encoder's AVX2 multiversioning macro; the `unsafe`
//!   it expands to is written here, and allowed where it lands.
//!
//! The crate denies `unsafe_code` everywhere else (`lib.rs`).

pub mod copy;
pub mod cpu;
pub(crate) mod dispatch;
#[cfg(target_arch = "x86_64")]
pub(crate) mod fdct;
pub mod idct;
#[cfg(target_arch = "x86_64")]
pub(crate) mod loop_filter;
#[cfg(target_arch = "x86_64")]
pub(crate) mod sad;
pub mod subpel;
