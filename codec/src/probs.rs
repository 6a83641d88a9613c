//! Entropy probabilities that persist from frame to frame (RFC 6386
//! sections 9.9–9.11, 13.4, 16.2, 17.2).

use crate::tables;

/// Coefficient probabilities, indexed `[block type][band][context][node]`.
pub type CoeffProbs = [[[[u8; 11]; 3]; 8]; 4];

/// The probabilities a frame may update and later frames inherit: what
/// libvpx calls the frame context.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Probabilities {
    /// DCT token probabilities.
    pub coeff: CoeffProbs,
    /// Luma intra mode probabilities for inter frames.
    pub y_mode: [u8; 4],
    /// Chroma intra mode probabilities for inter frames.
    pub uv_mode: [u8; 3],
    /// Motion vector probabilities, row component then column.
    pub mv: [[u8; 19]; 2],
}

impl Default for Probabilities {
    fn default() -> Self {
        Probabilities {
            coeff: tables::DEFAULT_COEFF_PROBS,
            y_mode: tables::DEFAULT_YMODE_PROBS,
            uv_mode: tables::DEFAULT_UV_MODE_PROBS,
            mv: tables::DEFAULT_MV_PROBS,
        }
    }
}
