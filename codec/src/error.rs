//! Error types of the codec.

use thiserror::Error;

/// Why a compressed frame could not be decoded.
///
/// Every variant names what was wrong with the bytes; none of them leaves
/// the caller's [`crate::DecoderState`] changed, since decoding is a pure
/// function of its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The frame is shorter than its headers claim.
    #[error("truncated frame: {0}")]
    Truncated(&'static str),
    /// A key frame does not start with the VP8 start code 9d 01 2a.
    #[error("invalid key frame start code {0:02x} {1:02x} {2:02x} (expected 9d 01 2a)")]
    BadStartCode(u8, u8, u8),
    /// A key frame gives a width or height of zero.
    #[error("key frame has zero width or height ({0}x{1})")]
    ZeroSize(u16, u16),
    /// An inter frame arrived before any key frame.
    #[error("inter frame without a preceding key frame")]
    NoKeyFrame,
    /// A partition size points past the end of the frame.
    #[error("partition {index} claims {claimed} bytes but only {available} remain")]
    BadPartitionSize {
        /// 0 for the first (mode) partition, 1.. for token partitions.
        index: usize,
        /// What the header claims.
        claimed: usize,
        /// What is left in the frame.
        available: usize,
    },
    /// The entropy decoder ran far past the end of a partition's data:
    /// the partition is truncated or corrupt.
    #[error("partition {0} is truncated or corrupt (read past its end)")]
    PartitionOverrun(usize),
    /// The first partition reserves bits that must be zero.
    #[error("reserved color space bit set")]
    ReservedColorSpace,
}

/// A [`DecodeError`] together with the index of the frame it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("frame {index}: {source}")]
pub struct FrameError {
    /// Zero-based index of the frame in the stream.
    pub index: u64,
    /// What went wrong.
    #[source]
    pub source: DecodeError,
}
