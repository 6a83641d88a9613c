//! excam's VP8 codec, in explicit state-passing style.
//!
//! The decoder is a pure function over values: [`decode`] takes a
//! [`DecoderState`] and one compressed frame and returns the next state and
//! the picture to show, leaving its input untouched. Nothing here does I/O
//! on files or sockets; the [`container`] module only parses and writes
//! bytes handed to it.

// Codec loops index several parallel arrays by block or macroblock number;
// iterator chains would hide the geometry.
#![allow(clippy::needless_range_loop)]
// `unsafe` lives only in `dsp` (SIMD kernels behind safe, bounds-checked
// entry points), where every block states why it is sound.
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]

pub mod bool_decoder;
pub mod bool_encoder;
pub mod container;
#[allow(unsafe_code)]
pub mod dsp;
pub mod encode;
pub mod error;
pub mod idct;
pub mod image;
pub mod inter_pred;
pub mod intra_pred;
pub mod loop_filter;
pub mod metrics;
pub mod tables;

pub mod decode;
pub mod decoder;
pub mod dequant;
pub mod header;
pub mod modes;
pub mod picture;
pub mod probs;
pub mod recon;
pub mod state;
pub mod tokens;
pub mod wire;

pub use decode::{decode, decode_picture, decode_picture_threaded, Decoded, FrameInfo};
pub use decoder::Decoder;
pub use encode::rebase::{encode_given_state, rebase, RebaseError};
pub use encode::{encode, EncodeError, EncodeParams, EncodedFrame};
pub use error::{DecodeError, FrameError};
pub use image::{Frame, Image, Plane};
pub use picture::Picture;
pub use state::DecoderState;

/// Identifies the code that produces the codec's output bytes: the crate
/// version and a digest of its sources taken at build time (see
/// `build.rs`). Anything that caches encoded bytes, or names a job by what
/// its output depends on, keys on this, so two builds whose output may
/// differ never share a cache entry.
pub const CODEC_VERSION: &str = concat!(
    "excam-codec-",
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("EXCAM_CODEC_SOURCE_DIGEST")
);
