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
        core::array::from_fn(|s| {
            Dequant::new(
                segment_q_index(quant, segmentation, features, s) as i32,
                quant,
            )
        })
    }
}

/// The base q index of segment `segment` (RFC 6386 section 9.3): the
/// frame's, or the segment's absolute value or delta, clamped to 0..=127.
pub fn segment_q_index(
    quant: &QuantIndices,
    segmentation: bool,
    features: &SegmentFeatures,
    segment: usize,
) -> u8 {
    let base = quant.q_index as i32;
    let q = if !segmentation {
        base
    } else if features.absolute {
        features.quant[segment] as i32
    } else {
        base + features.quant[segment] as i32
    };
    q.clamp(0, 127) as u8
}

/// The quantizer deltas libvpx's encoder sends at base index `q_index`
/// (`vp8_set_quantizer`): all zero except a positive Y2 DC delta below
/// q index 4, which keeps the Y2 DC step from becoming needlessly fine at
/// the lowest quantizers.
pub fn libvpx_quant_indices(q_index: u8) -> QuantIndices {
    QuantIndices {
        q_index,
        y2_dc: if q_index < 4 { 4 - q_index as i8 } else { 0 },
        ..QuantIndices::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequant_special_rules() {
        let z = QuantIndices::default();
        for q in 0..128i32 {
            let f = Dequant::new(q, &z);
            let (dc, ac) = (DC_QUANT[q as usize], AC_QUANT[q as usize]);
            assert_eq!(f.y1, [dc, ac]);
            assert_eq!(f.y2[0], dc * 2);
            // libvpx computes 155/100 as (x * 101581) >> 16; same values.
            let libvpx = ((ac * 101581) >> 16).max(8);
            assert_eq!(f.y2[1], libvpx, "q {q}");
            assert_eq!(f.uv, [dc.min(132), ac]);
        }
        assert_eq!(Dequant::new(0, &z).y2, [8, 8]);
        assert_eq!(Dequant::new(127, &z).uv[0], 132);
        assert_eq!(Dequant::new(127, &z).y2, [314, 440]);
    }

    #[test]
    fn deltas_are_applied_and_clamped() {
        let d = QuantIndices {
            q_index: 0,
            y1_dc: 3,
            y2_dc: -15,
            y2_ac: 15,
            uv_dc: -2,
            uv_ac: 1,
        };
        let f = Dequant::new(10, &d);
        assert_eq!(f.y1, [DC_QUANT[13], AC_QUANT[10]]);
        assert_eq!(f.y2[0], DC_QUANT[0] * 2);
        assert_eq!(f.uv, [DC_QUANT[8], AC_QUANT[11]]);
        let f = Dequant::new(120, &d);
        assert_eq!(f.y2[1], AC_QUANT[127] * 155 / 100);
        assert_eq!(libvpx_quant_indices(0).y2_dc, 4);
        assert_eq!(libvpx_quant_indices(3).y2_dc, 1);
        assert_eq!(
            libvpx_quant_indices(4),
            QuantIndices {
                q_index: 4,
                ..QuantIndices::default()
            }
        );
    }

    #[test]
    fn segment_q_index_absolute_delta_and_clamped() {
        let quant = QuantIndices {
            q_index: 100,
            ..QuantIndices::default()
        };
        let mut f = SegmentFeatures {
            quant: [-5, 40, 0, -127],
            ..SegmentFeatures::default()
        };
        assert_eq!(segment_q_index(&quant, false, &f, 1), 100);
        assert_eq!(segment_q_index(&quant, true, &f, 0), 95);
        assert_eq!(segment_q_index(&quant, true, &f, 1), 127);
        assert_eq!(segment_q_index(&quant, true, &f, 3), 0);
        f.absolute = true;
        f.quant = [7, 127, 0, -3];
        assert_eq!(segment_q_index(&quant, true, &f, 0), 7);
        assert_eq!(segment_q_index(&quant, true, &f, 3), 0);
    }
}
