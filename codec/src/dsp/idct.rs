//! Inverse DCT plus add, and DC-only add, with SSE2: the SIMD twins of
//! [`crate::idct::idct4x4_add_scalar`] and
//! [`crate::idct::idct_dc_add_scalar`].
//!
//! Exactness: the first (vertical) pass is stored as `i16` by the
//! reference, so doing it in wrapping 16-bit lanes gives the same bits;
//! the multiplications `(x * k) >> 16` are `pmulhw` (for 35468, which is
//! not an `i16`, `pmulhw(x, 35468 - 65536) + x`, the same value). The
//! second pass is done in 32-bit lanes like the scalar code, so no sum
//! wraps; its results, `(v + 4) >> 3`, lie within +-15761 and pack to
//! `i16` unchanged, and the unsigned pack after adding the prediction is
//! the clamp to 0..=255.

/// Adds the inverse DCT of `coeffs` to the 4x4 block at `dst[pos..]`
/// with SSE2; returns `false` (having done nothing) where there is no
/// SSE2 kernel or the block does not fit in `dst`.
#[inline]
pub fn idct4x4_add(coeffs: &[i16; 16], dst: &mut [u8], pos: usize, stride: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if stride < 4 || pos + 3 * stride + 4 > dst.len() {
            return false;
        }
        // SAFETY: SSE2 is part of x86-64. The kernel reads and writes 4
        // bytes at `pos + r * stride` for r in 0..4, inside `dst` by the
        // check above, and reads the 16 coefficients of `coeffs`.
        unsafe { x86::idct4x4_add(coeffs, dst.as_mut_ptr().add(pos), stride) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (coeffs, dst, pos, stride);
        false
    }
}

/// Adds `(dc + 4) >> 3` to the 4x4 block at `dst[pos..]` with SSE2;
/// returns `false` (having done nothing) where there is no SSE2 kernel or
/// the block does not fit.
#[inline]
pub fn idct_dc_add(dc: i16, dst: &mut [u8], pos: usize, stride: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if stride < 4 || pos + 3 * stride + 4 > dst.len() {
            return false;
        }
        // SAFETY: as in `idct4x4_add`: 4 bytes of 4 rows, checked above.
        unsafe { x86::dc_add(dc, dst.as_mut_ptr().add(pos), stride) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dc, dst, pos, stride);
        false
    }
}

/// Adds `(dcs[i] + 4) >> 3` to the 4x4 block `i` of the `4 * N`-pixel
/// wide, 4-row strip at `dst[pos..]` (`N` = 2 or 4 blocks side by side)
/// with SSE2: the DC-only blocks of a macroblock row in one pass, as
/// FFmpeg's `vp8_idct_dc_add4y`/`add4uv` do. Returns `false` (having done
/// nothing) where there is no SSE2 kernel or the strip does not fit.
#[inline]
pub fn idct_dc_add_row<const N: usize>(
    dcs: &[i16; N],
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !(N == 2 || N == 4) || stride < 4 * N || pos + 3 * stride + 4 * N > dst.len() {
            return false;
        }
        // SAFETY: SSE2 is part of x86-64. The kernel reads and writes
        // `4 * N` bytes at `pos + r * stride` for r in 0..4, inside `dst`
        // by the check above.
        unsafe { x86::dc_add_row::<N>(dcs, dst.as_mut_ptr().add(pos), stride) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dcs, dst, pos, stride);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// `x * (sqrt(2) cos(pi/8))` as RFC 14.4 rounds it, wrapping in 16 bits.
    #[inline(always)]
    unsafe fn mul_cos16(x: __m128i) -> __m128i {
        _mm_add_epi16(x, _mm_mulhi_epi16(x, _mm_set1_epi16(20091)))
    }

    /// `x * (sqrt(2) sin(pi/8))` as RFC 14.4 rounds it, wrapping in 16 bits.
    #[inline(always)]
    unsafe fn mul_sin16(x: __m128i) -> __m128i {
        _mm_add_epi16(
            x,
            _mm_mulhi_epi16(x, _mm_set1_epi16((35468 - 65536) as i16)),
        )
    }

    /// Sign-extends the low four `i16` lanes to `i32`.
    #[inline(always)]
    unsafe fn widen(x: __m128i) -> __m128i {
        _mm_srai_epi32(_mm_unpacklo_epi16(x, x), 16)
    }

    /// The multiplications of the second pass, exact in 32 bits: the high
    /// halves from `pmulhw` (exact), plus `x` itself.
    #[inline(always)]
    unsafe fn mul_cos32(x: __m128i) -> __m128i {
        _mm_add_epi32(widen(x), widen(_mm_mulhi_epi16(x, _mm_set1_epi16(20091))))
    }

    #[inline(always)]
    unsafe fn mul_sin32(x: __m128i) -> __m128i {
        _mm_add_epi32(
            widen(x),
            widen(_mm_mulhi_epi16(x, _mm_set1_epi16((35468 - 65536) as i16))),
        )
    }

    /// Loads 4 bytes.
    #[inline(always)]
    unsafe fn load4(p: *const u8) -> __m128i {
        _mm_cvtsi32_si128(core::ptr::read_unaligned(p as *const i32))
    }

    /// Stores the low 4 bytes.
    #[inline(always)]
    unsafe fn store4(p: *mut u8, v: __m128i) {
        core::ptr::write_unaligned(p as *mut i32, _mm_cvtsi128_si32(v));
    }

    /// Adds the 16-bit residue rows `r01` (rows 0 and 1) and `r23` to the
    /// prediction, clamping to 0..=255.
    #[inline(always)]
    unsafe fn add_rows(d: *mut u8, stride: usize, r01: __m128i, r23: __m128i) {
        let zero = _mm_setzero_si128();
        let p01 = _mm_unpacklo_epi8(_mm_unpacklo_epi32(load4(d), load4(d.add(stride))), zero);
        let p23 = _mm_unpacklo_epi8(
            _mm_unpacklo_epi32(load4(d.add(2 * stride)), load4(d.add(3 * stride))),
            zero,
        );
        let o01 = _mm_packus_epi16(_mm_adds_epi16(p01, r01), zero);
        let o23 = _mm_packus_epi16(_mm_adds_epi16(p23, r23), zero);
        store4(d, o01);
        store4(d.add(stride), _mm_srli_si128(o01, 4));
        store4(d.add(2 * stride), o23);
        store4(d.add(3 * stride), _mm_srli_si128(o23, 4));
    }

    pub(super) unsafe fn idct4x4_add(c: &[i16; 16], d: *mut u8, stride: usize) {
        let p = c.as_ptr() as *const __m128i;
        let c01 = _mm_loadu_si128(p);
        let c23 = _mm_loadu_si128(p.add(1));
        // Vertical pass, lanes = columns (low four lanes used).
        let i0 = c01;
        let i1 = _mm_srli_si128(c01, 8);
        let i2 = c23;
        let i3 = _mm_srli_si128(c23, 8);
        let a = _mm_add_epi16(i0, i2);
        let b = _mm_sub_epi16(i0, i2);
        let cc = _mm_sub_epi16(mul_sin16(i1), mul_cos16(i3));
        let dd = _mm_add_epi16(mul_cos16(i1), mul_sin16(i3));
        let t0 = _mm_add_epi16(a, dd);
        let t1 = _mm_add_epi16(b, cc);
        let t2 = _mm_sub_epi16(b, cc);
        let t3 = _mm_sub_epi16(a, dd);
        // Transpose: column k of the intermediate into one register.
        let u01 = _mm_unpacklo_epi16(t0, t1);
        let u23 = _mm_unpacklo_epi16(t2, t3);
        let col01 = _mm_unpacklo_epi32(u01, u23);
        let col23 = _mm_unpackhi_epi32(u01, u23);
        let j0 = col01;
        let j1 = _mm_srli_si128(col01, 8);
        let j2 = col23;
        let j3 = _mm_srli_si128(col23, 8);
        // Horizontal pass in 32 bits, lanes = rows.
        let a = _mm_add_epi32(widen(j0), widen(j2));
        let b = _mm_sub_epi32(widen(j0), widen(j2));
        let cc = _mm_sub_epi32(mul_sin32(j1), mul_cos32(j3));
        let dd = _mm_add_epi32(mul_cos32(j1), mul_sin32(j3));
        let four = _mm_set1_epi32(4);
        let o0 = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(a, dd), four), 3);
        let o1 = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(b, cc), four), 3);
        let o2 = _mm_srai_epi32(_mm_add_epi32(_mm_sub_epi32(b, cc), four), 3);
        let o3 = _mm_srai_epi32(_mm_add_epi32(_mm_sub_epi32(a, dd), four), 3);
        // Back to rows: (r0c0 r1c0 r2c0 r3c0 r0c1 ..) -> (r0c0 r0c1 ..).
        let p01 = _mm_packs_epi32(o0, o1);
        let p23 = _mm_packs_epi32(o2, o3);
        let u = _mm_unpacklo_epi16(p01, p23);
        let v = _mm_unpackhi_epi16(p01, p23);
        let r01 = _mm_unpacklo_epi16(u, v);
        let r23 = _mm_unpackhi_epi16(u, v);
        add_rows(d, stride, r01, r23);
    }

    /// `N` (2 or 4) DC-only blocks side by side; see `idct_dc_add_row`.
    pub(super) unsafe fn dc_add_row<const N: usize>(dcs: &[i16; N], d: *mut u8, stride: usize) {
        let r: [i16; N] = dcs.map(|dc| ((i32::from(dc) + 4) >> 3) as i16);
        let zero = _mm_setzero_si128();
        // Residues per 16-bit lane: blocks 0 and 1 in `lo`, 2 and 3 in `hi`.
        let lo = _mm_unpacklo_epi64(_mm_set1_epi16(r[0]), _mm_set1_epi16(r[1 % N]));
        if N == 4 {
            let hi = _mm_unpacklo_epi64(_mm_set1_epi16(r[2 % N]), _mm_set1_epi16(r[3 % N]));
            for row in 0..4 {
                let p = d.add(row * stride);
                let x = _mm_loadu_si128(p as *const __m128i);
                let l = _mm_adds_epi16(_mm_unpacklo_epi8(x, zero), lo);
                let h = _mm_adds_epi16(_mm_unpackhi_epi8(x, zero), hi);
                _mm_storeu_si128(p as *mut __m128i, _mm_packus_epi16(l, h));
            }
        } else {
            for row in 0..4 {
                let p = d.add(row * stride);
                let x = _mm_loadl_epi64(p as *const __m128i);
                let l = _mm_adds_epi16(_mm_unpacklo_epi8(x, zero), lo);
                _mm_storel_epi64(p as *mut __m128i, _mm_packus_epi16(l, zero));
            }
        }
    }

    pub(super) unsafe fn dc_add(dc: i16, d: *mut u8, stride: usize) {
        let r = _mm_set1_epi16(((i32::from(dc) + 4) >> 3) as i16);
        add_rows(d, stride, r, r);
    }
}

#[cfg(test)]
mod tests {
    use crate::idct::{idct4x4_add_scalar, idct_dc_add_scalar};

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
    }

    /// SIMD and scalar agree on random coefficients of every magnitude
    /// (small, typical, full `i16` range including -32768 and 32767,
    /// where the intermediate wraps) and random predictions.
    #[test]
    fn idct_simd_matches_scalar() {
        let mut rng = Lcg(11);
        let stride = 9;
        for iter in 0..200_000 {
            let coeffs: [i16; 16] = core::array::from_fn(|_| match iter % 5 {
                0 => (rng.next() % 64) as i16 - 32,
                1 => (rng.next() % 4096) as i16 - 2048,
                2 => rng.next() as i16,
                3 => [i16::MIN, i16::MAX, 0, -1][(rng.next() % 4) as usize],
                _ => {
                    if rng.next().is_multiple_of(4) {
                        rng.next() as i16
                    } else {
                        0
                    }
                }
            });
            let pred: Vec<u8> = (0..stride * 4).map(|_| rng.next() as u8).collect();
            let (mut a, mut b) = (pred.clone(), pred.clone());
            assert!(super::idct4x4_add(&coeffs, &mut a, 1, stride));
            idct4x4_add_scalar(&coeffs, &mut b, 1, stride);
            assert_eq!(a, b, "{coeffs:?}");
            let dc = coeffs[0];
            let (mut a, mut b) = (pred.clone(), pred);
            assert!(super::idct_dc_add(dc, &mut a, 1, stride));
            idct_dc_add_scalar(dc, &mut b, 1, stride);
            assert_eq!(a, b, "dc {dc}");
        }
    }

    /// The strip forms agree with one scalar DC add per block, on random
    /// and extreme DCs and predictions.
    #[test]
    fn dc_add_row_matches_scalar() {
        fn check<const N: usize>(rng: &mut Lcg) {
            let stride = 4 * N + 3;
            for iter in 0..50_000 {
                let dcs: [i16; N] = core::array::from_fn(|_| match iter % 4 {
                    0 => (rng.next() % 512) as i16 - 256,
                    1 => rng.next() as i16,
                    2 => [i16::MIN, i16::MAX, 0, -1, -4, 3][(rng.next() % 6) as usize],
                    _ => (rng.next() % 16) as i16 - 8,
                });
                let pred: Vec<u8> = (0..stride * 4 + 2)
                    .map(|_| match iter % 3 {
                        0 => rng.next() as u8,
                        1 => [0u8, 255][(rng.next() % 2) as usize],
                        _ => 250 + (rng.next() % 6) as u8,
                    })
                    .collect();
                let (mut a, mut b) = (pred.clone(), pred);
                assert!(super::idct_dc_add_row::<N>(&dcs, &mut a, 1, stride));
                for (i, &dc) in dcs.iter().enumerate() {
                    idct_dc_add_scalar(dc, &mut b, 1 + 4 * i, stride);
                }
                assert_eq!(a, b, "{dcs:?}");
            }
        }
        let mut rng = Lcg(29);
        check::<2>(&mut rng);
        check::<4>(&mut rng);
        // Strips that do not fit, and unsupported widths, are refused.
        assert!(!super::idct_dc_add_row::<4>(&[1; 4], &mut [0u8; 63], 0, 16));
        assert!(!super::idct_dc_add_row::<4>(
            &[1; 4],
            &mut [0u8; 256],
            0,
            15
        ));
        assert!(!super::idct_dc_add_row::<3>(
            &[1; 3],
            &mut [0u8; 256],
            0,
            16
        ));
    }

    #[test]
    fn refuses_blocks_that_do_not_fit() {
        let mut buf = [0u8; 15];
        assert!(!super::idct4x4_add(&[1; 16], &mut buf, 0, 4));
        assert!(!super::idct_dc_add(8, &mut buf, 0, 4));
        assert!(!super::idct_dc_add(8, &mut [0u8; 64], 0, 3));
    }
}
