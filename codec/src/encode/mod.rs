//! Encoder-side kernels: forward transforms, quantization and block
//! distortion measures.
//!
//! These are the building blocks the encoder proper is assembled from. Each
//! kernel is bit-exact with its libvpx counterpart where the bitstream or the
//! reconstruction depends on it (transforms, quantization), because the
//! encoder's reconstruction has to equal what any VP8 decoder produces.

pub mod fdct;
pub mod quantize;
pub mod sad;
