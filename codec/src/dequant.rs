//! Dequantization factors (RFC 6386 sections 9.6 and 14.1).

use crate::header::{QuantIndices, SegmentFeatures};
use crate::tables::{AC_QUANT, DC_QUANT};

/// DC and AC factors for the three kinds of block of a macroblock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dequant {
    /// Luma blocks `[dc, ac]`.
    pub y1: [i32; 2],
    /// The Y2 (second order) block `[dc, ac]`.
    pub y2: [i32; 2],
    /// Chroma blocks `[dc, ac]`.
    pub uv: [i32; 2],
}

fn dc_q(q: i32) -> i32 {
    DC_QUANT[q.clamp(0, 127) as usize]
}

fn ac_q(q: i32) -> i32 {
    AC_QUANT[q.clamp(0, 127) as usize]
}

impl Dequant {
    /// The factors for base index `q` (already adjusted for the segment)
    /// and the frame's deltas.
    pub fn new(q: i32, d: &QuantIndices) -> Self {
        let q = q.clamp(0, 127);
        Dequant {
            y1: [dc_q(q + d.y1_dc as i32), ac_q(q)],
            y2: [
                dc_q(q + d.y2_dc as i32) * 2,
                (ac_q(q + d.y2_ac as i32) * 155 / 100).max(8),
            ],
            uv: [dc_q(q + d.uv_dc as i32).min(132), ac_q(q + d.uv_ac as i32)],
        }
    }

    /// The factors of each of the four segments (all equal when
    /// segmentation is off).
    pub fn per_segment(
        quant: &QuantIndices,
        segmentation: bool,
        features: &SegmentFeatures,
    ) -> [Dequant; 4] {
        let base = quant.q_index as i32;
        core::array::from_fn(|s| {
            let q = if !segmentation {
                base
            } else if features.absolute {
                features.quant[s] as i32
            } else {
                base + features.quant[s] as i32
            };
            Dequant::new(q, quant)
        })
    }
}
