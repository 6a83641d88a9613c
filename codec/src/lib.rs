//! excam's VP8 codec, in explicit state-passing style.
//!
//! The decoder is a pure function over values: [`decode()`] takes a
//! [`DecoderState`] and one compressed frame and returns the next state and
//! the picture to show, leaving its input untouched. Nothing here does I/O
//! on files or sockets; the [`container`] module only parses and writes
//! bytes handed to it.
//!
//! ```text
//! decode(state, frame)                     -> (state', picture)
//! encode(state, picture, params)           -> frame + state'
//! rebase(original, target, picture, frame) -> frame' + state''
//! ```
//!
//! # Decoding
//!
//! A state is a value: decoding the same frame twice from one state gives
//! the same result, and the old state stays usable.
//!
//! ```
//! use excam_codec::container::ivf::IvfReader;
//! use excam_codec::{decode, DecoderState};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/excam-altref-2pass.ivf"))?;
//! let mut state = DecoderState::default();
//! let mut shown = 0;
//! for frame in IvfReader::new(&bytes[..])? {
//!     let (next, picture) = decode(&state, &frame?.data)?;
//!     shown += picture.is_some() as usize; // hidden frames show nothing
//!     state = next;
//! }
//! assert!(shown > 0);
//! # Ok(())
//! # }
//! ```
//!
//! [`Decoder`] wraps the same function for callers that want a mutable
//! decoder object.
//!
//! # Encoding
//!
//! [`encode()`] codes one picture against a state: a key frame from the
//! empty state (or when asked), otherwise an inter frame predicted from the
//! state's references. The result carries the state a decoder will have
//! after it, so encoder and decoder never drift.
//!
//! ```
//! use excam_codec::{decode, encode, DecoderState, EncodeParams, Image};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let picture = Image::filled(64, 48, [90, 120, 140]);
//! let key = encode(&DecoderState::default(), &picture, &EncodeParams::default())?;
//! assert!(key.key_frame);
//! let inter = encode(&key.state, &picture, &EncodeParams::default())?;
//! assert!(!inter.key_frame);
//! // A decoder that decodes both frames ends in the encoder's state.
//! let (s1, _) = decode(&DecoderState::default(), &key.data)?;
//! let (s2, _) = decode(&s1, &inter.data)?;
//! assert_eq!(s2, inter.state);
//! # Ok(())
//! # }
//! ```
//!
//! [`encode::encoder::Encoder`] is the streaming encoder (send frames,
//! receive packets) with key-frame placement and rate control.
//!
//! # Rebasing
//!
//! [`rebase`] re-encodes a frame that was made against one state so that
//! it decodes against another, keeping its modes and motion vectors and
//! recomputing the residual: the step that lets ExCamera encode chunks in
//! parallel and stitch them together afterwards.
//!
//! ```
//! use excam_codec::{decode, encode, rebase, DecoderState, EncodeParams, Image};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let a = Image::filled(64, 48, [60, 128, 128]);
//! let b = Image::filled(64, 48, [70, 128, 128]);
//! let params = EncodeParams::default();
//! // Two chunks, each started from a key frame of its own.
//! let a_key = encode(&DecoderState::default(), &a, &params)?;
//! let b_key = encode(&DecoderState::default(), &b, &params)?;
//! let b_next = encode(&b_key.state, &b, &params)?;
//! // Rebase the second chunk's inter frame onto the first chunk's end.
//! let moved = rebase(&b_key.state, &a_key.state, &b, &b_next.data)?;
//! let (after, _) = decode(&a_key.state, &moved.data)?;
//! assert_eq!(after, moved.state);
//! # Ok(())
//! # }
//! ```
//!
//! # Moving states: the wire format
//!
//! [`wire`] turns a state into versioned, checksummed (CRC-32), optionally
//! LZ4-compressed bytes and back, and gives its SHA-256 digest, which
//! names a state in job records; decoding checks everything and never
//! trusts a length it has not bounded.
//!
//! ```
//! use excam_codec::wire::{decode_state, encode_state, state_digest, Compression};
//! use excam_codec::{encode, DecoderState, EncodeParams, Image};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = encode(&DecoderState::default(), &Image::filled(32, 32, [16, 128, 128]), &EncodeParams::default())?;
//! let bytes = encode_state(&key.state, Compression::Lz4);
//! let back = decode_state(&bytes)?;
//! assert_eq!(back, key.state);
//! assert_eq!(state_digest(&back), state_digest(&key.state));
//! let mut bad = bytes.clone();
//! *bad.last_mut().unwrap() ^= 1;
//! assert!(decode_state(&bad).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! The ExCamera pipeline that combines these (chunks encoded in parallel,
//! then rebased in a chain) is `excam_coordinator::pipeline`.

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
pub(crate) mod dsp;
pub mod encode;
pub mod error;
pub mod idct;
pub mod image;
pub mod inter_pred;
pub(crate) mod intra_pred;
pub mod loop_filter;
pub mod metrics;
pub mod tables;

pub mod decode;
pub(crate) mod decode_rows;
pub mod decoder;
pub(crate) mod dequant;
pub mod header;
pub mod modes;
pub mod picture;
pub mod prediction;
pub mod probs;
pub(crate) mod recon;
pub mod state;
pub(crate) mod tokens;
pub mod wire;

pub use decode::{decode, decode_picture, decode_picture_threaded, Decoded, FrameInfo};
pub use decoder::Decoder;
pub use encode::rebase::{encode_given_state, rebase, RebaseError};
pub use encode::{encode, EncodeError, EncodeParams, EncodedFrame};
pub use error::{DecodeError, FrameError};
#[allow(deprecated)] // the old name stays reachable where it was
pub use image::Frame;
pub use image::{Image, Plane};
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
