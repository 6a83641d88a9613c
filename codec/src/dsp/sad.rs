//! SSE2 kernels of the encoder's block distortion (`encode::sad`): SAD,
//! SSE (with and without the signed sum) and the 4x4 residual, each with
//! one bounds check per block. SSE2 is part of the x86-64 baseline, so no
//! runtime detection is needed. The portable fixed-width loops in
//! `encode::sad` are their scalar twins; the tests there compare them.

/// Panics unless `h` rows of `w` samples `stride` apart from `pos` lie
/// inside `buf` (`h` > 0), the one check the x86 kernels below make
/// instead of one per row.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn check_rows(buf: &[u8], pos: usize, stride: usize, w: usize, h: usize) {
    let end = (h - 1)
        .checked_mul(stride)
        .and_then(|o| o.checked_add(pos))
        .and_then(|o| o.checked_add(w));
    assert!(
        end.is_some_and(|e| e <= buf.len()),
        "block of {w}x{h} at {pos} (stride {stride}) outside {} samples",
        buf.len()
    );
}

/// Loads `W` (16, 8 or 4) samples at `p` into the low lanes of a register.
///
/// # Safety
///
/// `p..p + W` must be readable.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn load<const W: usize>(p: *const u8) -> core::arch::x86_64::__m128i {
    use core::arch::x86_64::*;
    // SAFETY: the caller guarantees W readable bytes at `p`; the loads
    // are unaligned ones.
    unsafe {
        match W {
            16 => _mm_loadu_si128(p.cast()),
            8 => _mm_loadl_epi64(p.cast()),
            _ => _mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()),
        }
    }
}

/// `sad_fixed` (`encode::sad`) with SSE2 (`psadbw` per row, part of the x86-64
/// baseline) and one bounds check per block. `h` > 0.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn sad_x86<const W: usize>(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    h: usize,
) -> u32 {
    use core::arch::x86_64::*;
    check_rows(a, a_pos, a_stride, W, h);
    check_rows(b, b_pos, b_stride, W, h);
    // SAFETY: check_rows proved every row read below lies inside `a` and
    // `b`; SSE2 is always present on x86-64.
    unsafe {
        let (pa, pb) = (a.as_ptr().add(a_pos), b.as_ptr().add(b_pos));
        let mut acc = _mm_setzero_si128();
        for y in 0..h {
            let va = load::<W>(pa.add(y * a_stride));
            let vb = load::<W>(pb.add(y * b_stride));
            acc = _mm_add_epi64(acc, _mm_sad_epu8(va, vb));
        }
        let hi = _mm_unpackhi_epi64(acc, acc);
        _mm_cvtsi128_si32(_mm_add_epi64(acc, hi)) as u32
    }
}

/// `sse_sum_fixed` (`encode::sad`) with SSE2 and one bounds check per block: 16-bit
/// differences, squared and summed in pairs (`pmaddwd`) into 32-bit lanes
/// (at most 2 * 2 * 255^2 per row per lane, so `h` <= 4096 cannot
/// overflow). `h` > 0.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn sse_sum_x86<const W: usize>(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    h: usize,
) -> (u64, i64) {
    use core::arch::x86_64::*;
    check_rows(a, a_pos, a_stride, W, h);
    check_rows(b, b_pos, b_stride, W, h);
    // SAFETY: check_rows proved every row read below lies inside `a` and
    // `b`; SSE2 is always present on x86-64.
    unsafe {
        let (pa, pb) = (a.as_ptr().add(a_pos), b.as_ptr().add(b_pos));
        let zero = _mm_setzero_si128();
        let ones = _mm_set1_epi16(1);
        let mut sse = zero;
        let mut sum = zero;
        for y in 0..h {
            let va = load::<W>(pa.add(y * a_stride));
            let vb = load::<W>(pb.add(y * b_stride));
            let lo = _mm_sub_epi16(_mm_unpacklo_epi8(va, zero), _mm_unpacklo_epi8(vb, zero));
            sse = _mm_add_epi32(sse, _mm_madd_epi16(lo, lo));
            sum = _mm_add_epi32(sum, _mm_madd_epi16(lo, ones));
            if W == 16 {
                let hi = _mm_sub_epi16(_mm_unpackhi_epi8(va, zero), _mm_unpackhi_epi8(vb, zero));
                sse = _mm_add_epi32(sse, _mm_madd_epi16(hi, hi));
                sum = _mm_add_epi32(sum, _mm_madd_epi16(hi, ones));
            }
        }
        let mut e = [0u32; 4];
        let mut m = [0i32; 4];
        _mm_storeu_si128(e.as_mut_ptr().cast(), sse);
        _mm_storeu_si128(m.as_mut_ptr().cast(), sum);
        (
            e.iter().map(|&v| u64::from(v)).sum(),
            m.iter().map(|&v| i64::from(v)).sum(),
        )
    }
}

/// `diff4x4_portable` (`encode::sad`) with SSE2 and one bounds check per block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn diff4x4_x86(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
) -> [i16; 16] {
    use core::arch::x86_64::*;
    check_rows(a, a_pos, a_stride, 4, 4);
    check_rows(b, b_pos, b_stride, 4, 4);
    let mut r = [0i16; 16];
    // SAFETY: check_rows proved the four 4-sample rows of each block lie
    // inside `a` and `b`; `r` has room for the two 16-byte stores; SSE2 is
    // always present on x86-64.
    unsafe {
        let (pa, pb) = (a.as_ptr().add(a_pos), b.as_ptr().add(b_pos));
        let zero = _mm_setzero_si128();
        let rows = |p: *const u8, stride: usize, k: usize| {
            let r0 = load::<4>(p.add(k * stride));
            let r1 = load::<4>(p.add((k + 1) * stride));
            _mm_unpacklo_epi8(_mm_unpacklo_epi32(r0, r1), zero)
        };
        let d0 = _mm_sub_epi16(rows(pa, a_stride, 0), rows(pb, b_stride, 0));
        let d1 = _mm_sub_epi16(rows(pa, a_stride, 2), rows(pb, b_stride, 2));
        _mm_storeu_si128(r.as_mut_ptr().cast(), d0);
        _mm_storeu_si128(r.as_mut_ptr().add(8).cast(), d1);
    }
    r
}

/// [`sse_sum_x86`] without the signed sum, which most callers drop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn sse_x86<const W: usize>(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    h: usize,
) -> u64 {
    use core::arch::x86_64::*;
    check_rows(a, a_pos, a_stride, W, h);
    check_rows(b, b_pos, b_stride, W, h);
    // SAFETY: check_rows proved every row read below lies inside `a` and
    // `b`; SSE2 is always present on x86-64.
    unsafe {
        let (pa, pb) = (a.as_ptr().add(a_pos), b.as_ptr().add(b_pos));
        let zero = _mm_setzero_si128();
        let mut sse = zero;
        for y in 0..h {
            let va = load::<W>(pa.add(y * a_stride));
            let vb = load::<W>(pb.add(y * b_stride));
            let lo = _mm_sub_epi16(_mm_unpacklo_epi8(va, zero), _mm_unpacklo_epi8(vb, zero));
            sse = _mm_add_epi32(sse, _mm_madd_epi16(lo, lo));
            if W == 16 {
                let hi = _mm_sub_epi16(_mm_unpackhi_epi8(va, zero), _mm_unpackhi_epi8(vb, zero));
                sse = _mm_add_epi32(sse, _mm_madd_epi16(hi, hi));
            }
        }
        let mut e = [0u32; 4];
        _mm_storeu_si128(e.as_mut_ptr().cast(), sse);
        e.iter().map(|&v| u64::from(v)).sum()
    }
}
