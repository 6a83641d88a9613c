//! Forward 4x4 DCT and Walsh-Hadamard transforms.
//!
//! Both are integer approximations whose rounding matches libvpx's C
//! reference (`vp8_short_fdct4x4_c`, `vp8_short_walsh4x4_c`) exactly. The
//! inverse transforms are fixed by the bitstream (RFC 6386 section 14), but
//! the forward ones are the encoder's choice; matching libvpx keeps our
//! coefficient decisions, and so our rate-distortion behaviour, comparable
//! with the reference encoder.
//!
//! Intermediate results are truncated to 16 bits between the passes, as the
//! C code does by storing them in a `short` array; for in-range residuals
//! (-255..=255, or DC values of such blocks for the WHT) nothing is lost.
//!
//! One quirk of libvpx's rounding biases is kept on purpose: the horizontal
//! pass adds 14500 before its `>> 12`, so even an all-zero (or flat) block
//! comes out with coefficient 1 (first horizontal AC) equal to 1. The
//! quantizer's zero bin removes it (the smallest zero bin is 3), and the
//! inverse transform of that stray 1 rounds away, so it is harmless, but a
//! caller must not use "all coefficients zero" as a test for a flat block.

/// Forward 4x4 DCT of a residual block.
///
/// `input` is the residual (source minus prediction) in raster order, row by
/// row. The result is the 16 coefficients in raster order (index
/// `row * 4 + col`, row = vertical frequency), scaled so that the VP8 inverse
/// DCT of RFC 6386 section 14.4 reconstructs the residual.
pub fn fdct4x4(input: &[i16; 16]) -> [i16; 16] {
    fdct4x4_dispatch(input)
}

#[cfg(target_arch = "x86_64")]
use crate::dsp::fdct::fdct4x4_x86;

crate::dsp::dispatch::dispatch! {
    fn fdct4x4_dispatch(input: &[i16; 16]) -> [i16; 16] {
        #[cfg(target_arch = "x86_64")]
        if let Some(out) = fdct4x4_x86(input) {
            return out;
        }
        fdct4x4_portable(input)
    }
}

/// The portable build of [`fdct4x4`], for comparing the dispatched one.
#[cfg(test)]
pub(crate) fn fdct4x4_portable_for_test(input: &[i16; 16]) -> [i16; 16] {
    fdct4x4_portable(input)
}

#[inline(always)]
fn fdct4x4_portable(input: &[i16; 16]) -> [i16; 16] {
    let mut tmp = [0i16; 16];
    // Horizontal pass. The factor 8 gives the second pass three extra bits
    // of precision before its final >> 4 (libvpx's scaling).
    for r in 0..4 {
        let ip = &input[r * 4..r * 4 + 4];
        let a1 = (i32::from(ip[0]) + i32::from(ip[3])) * 8;
        let b1 = (i32::from(ip[1]) + i32::from(ip[2])) * 8;
        let c1 = (i32::from(ip[1]) - i32::from(ip[2])) * 8;
        let d1 = (i32::from(ip[0]) - i32::from(ip[3])) * 8;
        let op = &mut tmp[r * 4..r * 4 + 4];
        op[0] = (a1 + b1) as i16;
        op[2] = (a1 - b1) as i16;
        // 2217 and 5352 are sqrt(2)*sin(pi/8) and sqrt(2)*cos(pi/8) in Q12;
        // the odd-looking offsets are libvpx's rounding biases.
        op[1] = ((c1 * 2217 + d1 * 5352 + 14500) >> 12) as i16;
        op[3] = ((d1 * 2217 - c1 * 5352 + 7500) >> 12) as i16;
    }
    let mut out = [0i16; 16];
    // Vertical pass.
    for c in 0..4 {
        let a1 = i32::from(tmp[c]) + i32::from(tmp[12 + c]);
        let b1 = i32::from(tmp[4 + c]) + i32::from(tmp[8 + c]);
        let c1 = i32::from(tmp[4 + c]) - i32::from(tmp[8 + c]);
        let d1 = i32::from(tmp[c]) - i32::from(tmp[12 + c]);
        out[c] = ((a1 + b1 + 7) >> 4) as i16;
        out[8 + c] = ((a1 - b1 + 7) >> 4) as i16;
        // The `+ (d1 != 0)` nudge is part of libvpx's rounding and must be
        // kept for bit-exactness.
        out[4 + c] = (((c1 * 2217 + d1 * 5352 + 12000) >> 16) + i32::from(d1 != 0)) as i16;
        out[12 + c] = ((d1 * 2217 - c1 * 5352 + 51000) >> 16) as i16;
    }
    out
}

/// Forward 4x4 Walsh-Hadamard transform of the 16 luma DC coefficients.
///
/// `input[i]` is the DC coefficient (index 0 of [`fdct4x4`]'s output) of
/// luma subblock `i` in raster order. The result is the Y2 block's
/// coefficients in raster order, scaled for the inverse WHT of RFC 6386
/// section 14.3.
pub fn fwht4x4(input: &[i16; 16]) -> [i16; 16] {
    let mut tmp = [0i16; 16];
    for r in 0..4 {
        let ip = &input[r * 4..r * 4 + 4];
        let a1 = (i32::from(ip[0]) + i32::from(ip[2])) * 4;
        let d1 = (i32::from(ip[1]) + i32::from(ip[3])) * 4;
        let c1 = (i32::from(ip[1]) - i32::from(ip[3])) * 4;
        let b1 = (i32::from(ip[0]) - i32::from(ip[2])) * 4;
        let op = &mut tmp[r * 4..r * 4 + 4];
        // libvpx biases the DC term by one when a1 is non-zero; kept for
        // bit-exactness.
        op[0] = (a1 + d1 + i32::from(a1 != 0)) as i16;
        op[1] = (b1 + c1) as i16;
        op[2] = (b1 - c1) as i16;
        op[3] = (a1 - d1) as i16;
    }
    let mut out = [0i16; 16];
    for c in 0..4 {
        let a1 = i32::from(tmp[c]) + i32::from(tmp[8 + c]);
        let d1 = i32::from(tmp[4 + c]) + i32::from(tmp[12 + c]);
        let c1 = i32::from(tmp[4 + c]) - i32::from(tmp[12 + c]);
        let b1 = i32::from(tmp[c]) - i32::from(tmp[8 + c]);
        let mut v = [a1 + d1, b1 + c1, b1 - c1, a1 - d1];
        for (k, x) in v.iter_mut().enumerate() {
            // Round negative values towards zero before the shift, so the
            // transform treats +x and -x symmetrically.
            *x += i32::from(*x < 0);
            out[k * 4 + c] = ((*x + 3) >> 3) as i16;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6386 section 14.4 inverse DCT (reference for the round trip).
    fn idct_ref(input: &[i16; 16]) -> [i16; 16] {
        const C: i32 = 20091; // cos(pi/8)*sqrt(2) - 1, Q16
        const S: i32 = 35468; // sin(pi/8)*sqrt(2), Q16
        let mut tmp = [0i16; 16];
        for i in 0..4 {
            let ip = |k: usize| i32::from(input[k * 4 + i]);
            let a1 = ip(0) + ip(2);
            let b1 = ip(0) - ip(2);
            let c1 = ((ip(1) * S) >> 16) - (ip(3) + ((ip(3) * C) >> 16));
            let d1 = (ip(1) + ((ip(1) * C) >> 16)) + ((ip(3) * S) >> 16);
            tmp[i] = (a1 + d1) as i16;
            tmp[12 + i] = (a1 - d1) as i16;
            tmp[4 + i] = (b1 + c1) as i16;
            tmp[8 + i] = (b1 - c1) as i16;
        }
        let mut out = [0i16; 16];
        for r in 0..4 {
            let ip = |k: usize| i32::from(tmp[r * 4 + k]);
            let a1 = ip(0) + ip(2);
            let b1 = ip(0) - ip(2);
            let c1 = ((ip(1) * S) >> 16) - (ip(3) + ((ip(3) * C) >> 16));
            let d1 = (ip(1) + ((ip(1) * C) >> 16)) + ((ip(3) * S) >> 16);
            out[r * 4] = ((a1 + d1 + 4) >> 3) as i16;
            out[r * 4 + 3] = ((a1 - d1 + 4) >> 3) as i16;
            out[r * 4 + 1] = ((b1 + c1 + 4) >> 3) as i16;
            out[r * 4 + 2] = ((b1 - c1 + 4) >> 3) as i16;
        }
        out
    }

    /// RFC 6386 section 14.3 inverse WHT.
    fn iwht_ref(input: &[i16; 16]) -> [i16; 16] {
        let mut tmp = [0i32; 16];
        for i in 0..4 {
            let ip = |k: usize| i32::from(input[k * 4 + i]);
            let a1 = ip(0) + ip(3);
            let b1 = ip(1) + ip(2);
            let c1 = ip(1) - ip(2);
            let d1 = ip(0) - ip(3);
            tmp[i] = a1 + b1;
            tmp[4 + i] = c1 + d1;
            tmp[8 + i] = a1 - b1;
            tmp[12 + i] = d1 - c1;
        }
        let mut out = [0i16; 16];
        for r in 0..4 {
            let ip = |k: usize| tmp[r * 4 + k];
            let a1 = ip(0) + ip(3);
            let b1 = ip(1) + ip(2);
            let c1 = ip(1) - ip(2);
            let d1 = ip(0) - ip(3);
            out[r * 4] = ((a1 + b1 + 3) >> 3) as i16;
            out[r * 4 + 1] = ((c1 + d1 + 3) >> 3) as i16;
            out[r * 4 + 2] = ((a1 - b1 + 3) >> 3) as i16;
            out[r * 4 + 3] = ((d1 - c1 + 3) >> 3) as i16;
        }
        out
    }

    /// The SSE2 transform equals the portable one on every residual it
    /// takes, and declines inputs outside -255..=255.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_matches_portable() {
        let mut rng = Rng(0x5eed_f00d);
        for i in 0..200_000 {
            let amp = [255, 40, 4, 1][i % 4];
            let r: [i16; 16] = core::array::from_fn(|_| rng.range(-amp, amp) as i16);
            assert_eq!(fdct4x4_x86(&r), Some(fdct4x4_portable(&r)), "{r:?}");
        }
        for v in [255i16, -255] {
            let r = [v; 16];
            assert_eq!(fdct4x4_x86(&r), Some(fdct4x4_portable(&r)));
            let alt: [i16; 16] =
                core::array::from_fn(|k| if (k + k / 4) % 2 == 0 { v } else { -v });
            assert_eq!(fdct4x4_x86(&alt), Some(fdct4x4_portable(&alt)));
        }
        let mut r = [0i16; 16];
        r[7] = 256;
        assert_eq!(fdct4x4_x86(&r), None);
        r[7] = -256;
        assert_eq!(fdct4x4_x86(&r), None);
    }

    /// Small deterministic PRNG (xorshift) so the tests need no crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn range(&mut self, lo: i32, hi: i32) -> i32 {
            lo + (self.next() % (hi - lo + 1) as u64) as i32
        }
    }

    fn max_err(a: &[i16; 16], b: &[i16; 16]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
            .max()
            .unwrap()
    }

    #[test]
    fn dct_round_trip_random_within_one() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut worst = 0;
        let mut exact = 0usize;
        const N: usize = 200_000;
        for _ in 0..N {
            let mut x = [0i16; 16];
            for v in &mut x {
                *v = rng.range(-255, 255) as i16;
            }
            let e = max_err(&x, &idct_ref(&fdct4x4(&x)));
            worst = worst.max(e);
            exact += usize::from(e == 0);
        }
        // Measured: the worst per-sample error over 200k random blocks is 1,
        // and most blocks come back exactly.
        assert_eq!(worst, 1);
        assert!(exact > N / 2, "only {exact} of {N} blocks exact");
    }

    #[test]
    fn dct_round_trip_small_residuals_within_one() {
        // Small residuals are the common case after good prediction.
        let mut rng = Rng(12345);
        for _ in 0..50_000 {
            let mut x = [0i16; 16];
            for v in &mut x {
                *v = rng.range(-8, 8) as i16;
            }
            assert!(max_err(&x, &idct_ref(&fdct4x4(&x))) <= 1, "{x:?}");
        }
    }

    #[test]
    fn dct_dc_only() {
        for v in -255..=255i16 {
            let x = [v; 16];
            let c = fdct4x4(&x);
            // A flat block has only a DC term, equal to 2 * sum / 4 = 8v
            // (the VP8 inverse divides by 8), plus libvpx's stray bias of 1
            // in coefficient 1 (see the module docs).
            assert_eq!(c[0], 8 * v, "dc for {v}");
            assert_eq!(c[1], 1, "{v}: {c:?}");
            assert!(c[2..].iter().all(|&k| k == 0), "{v}: {c:?}");
            assert_eq!(idct_ref(&c), x);
        }
    }

    #[test]
    fn dct_zero_and_known_vector() {
        // libvpx's rounding bias leaves a 1 in coefficient 1 (module docs).
        let mut zero_out = [0i16; 16];
        zero_out[1] = 1;
        assert_eq!(fdct4x4(&[0; 16]), zero_out);
        // Hand-computed with libvpx's formulas: a single 1 at the top-left.
        let mut x = [0i16; 16];
        x[0] = 1;
        // Rows: row 0 -> [8, (8*5352+14500)>>12 = 14, 8, (8*2217+7500)>>12 = 6]
        // Columns, e.g. col 0: a1 = 8, d1 = 8 -> out[0] = (8+7)>>4 = 0,
        // out[4] = ((8*5352+12000)>>16) + 1 = 1, out[12] = (8*2217+51000)>>16 = 1.
        let c = fdct4x4(&x);
        assert_eq!(c[0], 0);
        assert_eq!(c[4], 1);
        assert_eq!(c[12], 1);
        assert_eq!(c[1], (14 + 7) >> 4);
    }

    #[test]
    fn dct_is_linear_up_to_rounding() {
        // Negating the input negates the output up to the asymmetric
        // rounding offsets (at most 1).
        let mut rng = Rng(777);
        let mut worst = 0;
        for _ in 0..10_000 {
            let mut x = [0i16; 16];
            for v in &mut x {
                *v = rng.range(-255, 255) as i16;
            }
            let neg: [i16; 16] = x.map(|v| -v);
            let a = fdct4x4(&x);
            let b = fdct4x4(&neg);
            for k in 0..16 {
                worst = worst.max((a[k] + b[k]).abs());
            }
        }
        // Measured: 2.
        assert!(worst <= 2, "worst {worst}");
    }

    #[test]
    fn wht_round_trip() {
        // The WHT round trip is exact up to rounding of the final >> 3;
        // measure the bound on DC values of real fdct outputs.
        let mut rng = Rng(4242);
        let mut worst = 0;
        for _ in 0..100_000 {
            let mut x = [0i16; 16];
            for v in &mut x {
                *v = rng.range(-2040, 2040) as i16;
            }
            worst = worst.max(max_err(&x, &iwht_ref(&fwht4x4(&x))));
        }
        // Measured bound.
        // Measured: 1 (the WHT pair is not lossless; the >> 3 rounds).
        assert_eq!(worst, 1, "worst {worst}");
    }

    #[test]
    fn wht_dc_only_and_extremes() {
        for v in [-2040i16, -1, 0, 1, 7, 100, 2040] {
            let x = [v; 16];
            let c = fwht4x4(&x);
            assert!(c[1..].iter().all(|&k| k == 0), "{v}: {c:?}");
            assert_eq!(iwht_ref(&c), x, "{v}");
        }
        assert_eq!(fwht4x4(&[0; 16]), [0; 16]);
    }

    #[test]
    fn full_y2_chain_round_trip() {
        // fdct on 16 subblocks -> fwht of their DCs -> iwht -> idct gives the
        // residual back within a small bound: this is the path every
        // 16x16-predicted macroblock takes.
        let mut rng = Rng(99);
        let mut worst = 0;
        for _ in 0..5_000 {
            let mut blocks = [[0i16; 16]; 16];
            let mut coeffs = [[0i16; 16]; 16];
            let mut dcs = [0i16; 16];
            for (b, blk) in blocks.iter_mut().enumerate() {
                for v in blk.iter_mut() {
                    *v = rng.range(-255, 255) as i16;
                }
                coeffs[b] = fdct4x4(blk);
                dcs[b] = coeffs[b][0];
            }
            let back = iwht_ref(&fwht4x4(&dcs));
            for b in 0..16 {
                let mut c = coeffs[b];
                c[0] = back[b];
                worst = worst.max(max_err(&blocks[b], &idct_ref(&c)));
            }
        }
        // Measured: 1 (the WHT pair is not lossless; the >> 3 rounds).
        assert_eq!(worst, 1, "worst {worst}");
    }
}
