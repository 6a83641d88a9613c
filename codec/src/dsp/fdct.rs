//! SSE2 forward 4x4 DCT of the encoder (`encode::fdct`); its portable
//! twin there is the definition, and the tests there compare the two.

/// `fdct4x4_portable` (`encode::fdct`) with SSE2 for residuals (every input in
/// -255..=255, `None` otherwise): the four rows widened to 32-bit lanes
/// and transposed so each pass works on whole vectors, the products by
/// 2217 and 5352 as `pmaddwd` on interleaved 16-bit pairs (in range the
/// pass sums stay below 2^15, so nothing is lost: the 16-bit truncation
/// between the passes never applies).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn fdct4x4_x86(input: &[i16; 16]) -> Option<[i16; 16]> {
    use core::arch::x86_64::*;
    // SAFETY: the loads and stores touch exactly the 32 bytes of `input`
    // and `out`, unaligned; SSE2 is always present on x86-64.
    unsafe {
        let x01 = _mm_loadu_si128(input.as_ptr().cast());
        let x23 = _mm_loadu_si128(input.as_ptr().add(8).cast());
        let lim = _mm_set1_epi16(255);
        let nlim = _mm_set1_epi16(-255);
        let bad = _mm_or_si128(
            _mm_or_si128(_mm_cmpgt_epi16(x01, lim), _mm_cmplt_epi16(x01, nlim)),
            _mm_or_si128(_mm_cmpgt_epi16(x23, lim), _mm_cmplt_epi16(x23, nlim)),
        );
        if _mm_movemask_epi8(bad) != 0 {
            return None;
        }
        // Sign-extended rows, lane = column.
        let widen_lo = |v: __m128i| _mm_srai_epi32::<16>(_mm_unpacklo_epi16(v, v));
        let widen_hi = |v: __m128i| _mm_srai_epi32::<16>(_mm_unpackhi_epi16(v, v));
        let transpose = |r0: __m128i, r1: __m128i, r2: __m128i, r3: __m128i| {
            let t0 = _mm_unpacklo_epi32(r0, r1);
            let t1 = _mm_unpacklo_epi32(r2, r3);
            let t2 = _mm_unpackhi_epi32(r0, r1);
            let t3 = _mm_unpackhi_epi32(r2, r3);
            (
                _mm_unpacklo_epi64(t0, t1),
                _mm_unpackhi_epi64(t0, t1),
                _mm_unpacklo_epi64(t2, t3),
                _mm_unpackhi_epi64(t2, t3),
            )
        };
        // c * k1 + d * k2 per 32-bit lane, with c and d in 16-bit range.
        let madd = |c: __m128i, d: __m128i, k1: i16, k2: i16| {
            let k = _mm_set_epi16(k2, k1, k2, k1, k2, k1, k2, k1);
            let c16 = _mm_packs_epi32(c, c);
            let d16 = _mm_packs_epi32(d, d);
            _mm_madd_epi16(_mm_unpacklo_epi16(c16, d16), k)
        };
        let (c0, c1, c2, c3) =
            transpose(widen_lo(x01), widen_hi(x01), widen_lo(x23), widen_hi(x23));
        // Horizontal pass on columns (lane = row).
        let a1 = _mm_slli_epi32::<3>(_mm_add_epi32(c0, c3));
        let b1 = _mm_slli_epi32::<3>(_mm_add_epi32(c1, c2));
        let cc = _mm_slli_epi32::<3>(_mm_sub_epi32(c1, c2));
        let dd = _mm_slli_epi32::<3>(_mm_sub_epi32(c0, c3));
        let t0 = _mm_add_epi32(a1, b1);
        let t2 = _mm_sub_epi32(a1, b1);
        let t1 = _mm_srai_epi32::<12>(_mm_add_epi32(
            madd(cc, dd, 2217, 5352),
            _mm_set1_epi32(14500),
        ));
        let t3 = _mm_srai_epi32::<12>(_mm_add_epi32(
            madd(cc, dd, -5352, 2217),
            _mm_set1_epi32(7500),
        ));
        // Vertical pass on rows (lane = column).
        let (r0, r1, r2, r3) = transpose(t0, t1, t2, t3);
        let a1 = _mm_add_epi32(r0, r3);
        let b1 = _mm_add_epi32(r1, r2);
        let cc = _mm_sub_epi32(r1, r2);
        let dd = _mm_sub_epi32(r0, r3);
        let seven = _mm_set1_epi32(7);
        let o0 = _mm_srai_epi32::<4>(_mm_add_epi32(_mm_add_epi32(a1, b1), seven));
        let o2 = _mm_srai_epi32::<4>(_mm_add_epi32(_mm_sub_epi32(a1, b1), seven));
        // + (d1 != 0): add one, then minus one where d1 == 0.
        let o1 = _mm_add_epi32(
            _mm_srai_epi32::<16>(_mm_add_epi32(
                madd(cc, dd, 2217, 5352),
                _mm_set1_epi32(12000 + 65536),
            )),
            _mm_cmpeq_epi32(dd, _mm_setzero_si128()),
        );
        let o3 = _mm_srai_epi32::<16>(_mm_add_epi32(
            madd(cc, dd, -5352, 2217),
            _mm_set1_epi32(51000),
        ));
        let mut out = [0i16; 16];
        _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_packs_epi32(o0, o1));
        _mm_storeu_si128(out.as_mut_ptr().add(8).cast(), _mm_packs_epi32(o2, o3));
        Some(out)
    }
}
