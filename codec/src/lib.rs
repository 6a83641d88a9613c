//! excam's VP8 codec, in explicit state-passing style.
//!
//! The decoder is a pure function over values: [`decode`] takes a
//! [`DecoderState`] and one compressed frame and returns the next state and
//! the picture to show, leaving its input untouched. Nothing here does I/O
//! on files or sockets; the [`container`] module only parses and writes
//! bytes handed to it.

pub mod bool_decoder;
pub mod container;
pub mod encode;
pub mod error;
pub mod idct;
pub mod image;
pub mod inter_pred;
pub mod intra_pred;
pub mod loop_filter;
pub mod metrics;
pub mod tables;
