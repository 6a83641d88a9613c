//! SSE2 versions of the normal loop filter (RFC 6386 section 15.3), the
//! hottest kernel of the decoder in profiles (about 40% of a decode), and
//! of the simple filter (section 15.2).
//!
//! It follows libvpx's formulation (`vp8_loop_filter_*_c` and
//! `loopfilter_sse2.asm`): pixels are biased to signed bytes (`^ 0x80`),
//! the masks are byte compares of saturating differences, and the filter
//! taps use saturating signed byte arithmetic, so 16 pixels of an edge
//! are filtered per instruction. Saturating step by step gives the same
//! result as the scalar code's exact sums clamped once, because every
//! partial sum moves the same way. SSE2 is part of the x86-64 baseline,
//! so no runtime detection is needed.
//!
//! [`crate::loop_filter::filter_mb_normal_n`] and
//! [`crate::loop_filter::filter_mb_simple_scalar`] are the scalar twins;
//! the tests below compare them on random and extreme pixels and limits.

use core::arch::x86_64::*;

use crate::loop_filter::EdgeLimits;

/// Absolute difference of unsigned bytes.
#[inline(always)]
unsafe fn abd(a: __m128i, b: __m128i) -> __m128i {
    _mm_or_si128(_mm_subs_epu8(a, b), _mm_subs_epu8(b, a))
}

/// Arithmetic shift right of signed bytes by `N`.
#[inline(always)]
unsafe fn sra_i8<const N: i32>(x: __m128i) -> __m128i {
    // Each byte lands in the high half of a 16-bit lane; shifting by 8 + N
    // sign-extends it and divides; the pack cannot saturate.
    let lo = _mm_sra_epi16(_mm_unpacklo_epi8(x, x), _mm_cvtsi32_si128(8 + N));
    let hi = _mm_sra_epi16(_mm_unpackhi_epi8(x, x), _mm_cvtsi32_si128(8 + N));
    _mm_packs_epi16(lo, hi)
}

/// `clamp((63 + w * k) >> 7)` per signed byte (the wide taps of MBfilter).
#[inline(always)]
unsafe fn tap(w: __m128i, k: i16) -> __m128i {
    let k = _mm_set1_epi16(k);
    let r = _mm_set1_epi16(63);
    let lo = _mm_srai_epi16(_mm_unpacklo_epi8(w, w), 8);
    let hi = _mm_srai_epi16(_mm_unpackhi_epi8(w, w), 8);
    let lo = _mm_srai_epi16(_mm_add_epi16(_mm_mullo_epi16(lo, k), r), 7);
    let hi = _mm_srai_epi16(_mm_add_epi16(_mm_mullo_epi16(hi, k), r), 7);
    _mm_packs_epi16(lo, hi)
}

/// The eight pixel rows across an edge, `p3 p2 p1 p0 q0 q1 q2 q3`, one
/// lane per position along the edge.
type Rows = [__m128i; 8];

/// Filter enable mask (RFC 15.3 `filter_yes`) and high edge variance
/// mask (`hev`), 0xff where true.
#[inline(always)]
unsafe fn masks(v: &Rows, edge: u8, interior: u8, hev_threshold: u8) -> (__m128i, __m128i) {
    let [p3, p2, p1, p0, q0, q1, q2, q3] = *v;
    let zero = _mm_setzero_si128();
    let ap1p0 = abd(p1, p0);
    let aq1q0 = abd(q1, q0);
    let mut m = _mm_max_epu8(abd(p3, p2), abd(p2, p1));
    m = _mm_max_epu8(m, _mm_max_epu8(ap1p0, aq1q0));
    m = _mm_max_epu8(m, _mm_max_epu8(abd(q2, q1), abd(q3, q2)));
    let interior_ok = _mm_cmpeq_epi8(_mm_subs_epu8(m, _mm_set1_epi8(interior as i8)), zero);
    // |p0 - q0| * 2 + |p1 - q1| / 2, saturating at 255: every edge limit
    // is at most 193, so saturation cannot turn a failure into a pass.
    let a = abd(p0, q0);
    let b = _mm_and_si128(_mm_srli_epi16(abd(p1, q1), 1), _mm_set1_epi8(0x7f));
    let sum = _mm_adds_epu8(_mm_adds_epu8(a, a), b);
    let edge_ok = _mm_cmpeq_epi8(_mm_subs_epu8(sum, _mm_set1_epi8(edge as i8)), zero);
    let mask = _mm_and_si128(interior_ok, edge_ok);
    let t = _mm_set1_epi8(hev_threshold as i8);
    let not_hev = _mm_cmpeq_epi8(_mm_subs_epu8(_mm_max_epu8(ap1p0, aq1q0), t), zero);
    let hev = _mm_xor_si128(not_hev, _mm_set1_epi8(-1));
    (mask, hev)
}

/// Macroblock-edge filter (RFC 15.3 `MBfilter`) of all lanes.
#[inline(always)]
unsafe fn mb_edge(v: &mut Rows, lim: &EdgeLimits) {
    let (mask, hev) = masks(v, lim.mb_edge, lim.interior, lim.hev_threshold);
    let bias = _mm_set1_epi8(-128);
    let [ps2, ps1, ps0, qs0, qs1, qs2] =
        [v[1], v[2], v[3], v[4], v[5], v[6]].map(|x| _mm_xor_si128(x, bias));
    let d = _mm_subs_epi8(qs0, ps0);
    let mut s = _mm_subs_epi8(ps1, qs1);
    s = _mm_adds_epi8(s, d);
    s = _mm_adds_epi8(s, d);
    s = _mm_adds_epi8(s, d);
    s = _mm_and_si128(s, mask);
    // High variance lanes: only p0 and q0 move, by the common adjustment.
    let f = _mm_and_si128(s, hev);
    let f1 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(4)));
    let f2 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(3)));
    let qs0 = _mm_subs_epi8(qs0, f1);
    let ps0 = _mm_adds_epi8(ps0, f2);
    // Other lanes: 27/128, 18/128 and 9/128 of the filter value.
    let w = _mm_andnot_si128(hev, s);
    let u = tap(w, 27);
    let (qs0, ps0) = (_mm_subs_epi8(qs0, u), _mm_adds_epi8(ps0, u));
    let u = tap(w, 18);
    let (qs1, ps1) = (_mm_subs_epi8(qs1, u), _mm_adds_epi8(ps1, u));
    let u = tap(w, 9);
    let (qs2, ps2) = (_mm_subs_epi8(qs2, u), _mm_adds_epi8(ps2, u));
    v[1] = _mm_xor_si128(ps2, bias);
    v[2] = _mm_xor_si128(ps1, bias);
    v[3] = _mm_xor_si128(ps0, bias);
    v[4] = _mm_xor_si128(qs0, bias);
    v[5] = _mm_xor_si128(qs1, bias);
    v[6] = _mm_xor_si128(qs2, bias);
}

/// Subblock-edge filter (RFC 15.3 `subblock_filter`) of all lanes.
#[inline(always)]
unsafe fn sub_edge(v: &mut Rows, lim: &EdgeLimits) {
    let (mask, hev) = masks(v, lim.sub_edge, lim.interior, lim.hev_threshold);
    let bias = _mm_set1_epi8(-128);
    let [ps1, ps0, qs0, qs1] = [v[2], v[3], v[4], v[5]].map(|x| _mm_xor_si128(x, bias));
    let d = _mm_subs_epi8(qs0, ps0);
    let mut f = _mm_and_si128(_mm_subs_epi8(ps1, qs1), hev);
    f = _mm_adds_epi8(f, d);
    f = _mm_adds_epi8(f, d);
    f = _mm_adds_epi8(f, d);
    f = _mm_and_si128(f, mask);
    let f1 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(4)));
    let f2 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(3)));
    let qs0 = _mm_subs_epi8(qs0, f1);
    let ps0 = _mm_adds_epi8(ps0, f2);
    // f1 is at most 15, so f1 + 1 cannot wrap.
    let a = _mm_andnot_si128(hev, sra_i8::<1>(_mm_add_epi8(f1, _mm_set1_epi8(1))));
    let qs1 = _mm_subs_epi8(qs1, a);
    let ps1 = _mm_adds_epi8(ps1, a);
    v[2] = _mm_xor_si128(ps1, bias);
    v[3] = _mm_xor_si128(ps0, bias);
    v[4] = _mm_xor_si128(qs0, bias);
    v[5] = _mm_xor_si128(qs1, bias);
}

/// Loads `N` (8 or 16) bytes at `p` into the low lanes.
#[inline(always)]
unsafe fn load<const N: usize>(p: *const u8) -> __m128i {
    if N == 16 {
        _mm_loadu_si128(p as *const __m128i)
    } else {
        _mm_loadl_epi64(p as *const __m128i)
    }
}

/// Stores the low `N` (8 or 16) lanes at `p`.
#[inline(always)]
unsafe fn store<const N: usize>(p: *mut u8, v: __m128i) {
    if N == 16 {
        _mm_storeu_si128(p as *mut __m128i, v)
    } else {
        _mm_storel_epi64(p as *mut __m128i, v)
    }
}

/// The rows across the horizontal edge starting at `edge` (q0's row).
#[inline(always)]
unsafe fn load_h<const N: usize>(edge: *const u8, stride: usize) -> Rows {
    let first = edge.sub(4 * stride);
    core::array::from_fn(|k| load::<N>(first.add(k * stride)))
}

/// The last three stages of a 16-row byte transpose: `a[i]` interleaves
/// rows `2i` and `2i + 1` byte by byte (8 columns of each); the result
/// holds the 8 columns, lane `i` of `out[c]` being byte `c` of row `i`.
#[inline(always)]
unsafe fn transpose_16x8_pairs(a: &[__m128i; 8]) -> Rows {
    let b: [__m128i; 8] = core::array::from_fn(|i| {
        let (x, y) = (a[2 * (i / 2)], a[2 * (i / 2) + 1]);
        if i % 2 == 0 {
            _mm_unpacklo_epi16(x, y)
        } else {
            _mm_unpackhi_epi16(x, y)
        }
    });
    // b[0], b[1]: rows 0-3, columns 0-3 and 4-7; b[2], b[3]: rows 4-7; ...
    let c = [
        _mm_unpacklo_epi32(b[0], b[2]),
        _mm_unpackhi_epi32(b[0], b[2]),
        _mm_unpacklo_epi32(b[1], b[3]),
        _mm_unpackhi_epi32(b[1], b[3]),
    ];
    let d = [
        _mm_unpacklo_epi32(b[4], b[6]),
        _mm_unpackhi_epi32(b[4], b[6]),
        _mm_unpacklo_epi32(b[5], b[7]),
        _mm_unpackhi_epi32(b[5], b[7]),
    ];
    core::array::from_fn(|col| {
        if col % 2 == 0 {
            _mm_unpacklo_epi64(c[col / 2], d[col / 2])
        } else {
            _mm_unpackhi_epi64(c[col / 2], d[col / 2])
        }
    })
}

/// Transposes 16 rows of 8 bytes (low halves of `r`) into 8 vectors of
/// 16 lanes: `out[c]` lane `i` is byte `c` of row `i`.
#[inline(always)]
unsafe fn transpose_16x8(r: &[__m128i; 16]) -> Rows {
    let a: [__m128i; 8] = core::array::from_fn(|i| _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]));
    transpose_16x8_pairs(&a)
}

/// Transposes 16 rows of 16 bytes into 16 columns of 16 lanes: `out[c]`
/// lane `i` is byte `c` of row `i`. The first stage interleaves each
/// pair of rows once for both halves (libvpx's `vp8_loop_filter_bv_y`
/// works on such a whole-block transpose too).
#[inline(always)]
unsafe fn transpose_16x16(r: &[__m128i; 16]) -> [__m128i; 16] {
    let lo: [__m128i; 8] = core::array::from_fn(|i| _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]));
    let hi: [__m128i; 8] = core::array::from_fn(|i| _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]));
    let (lo, hi) = (transpose_16x8_pairs(&lo), transpose_16x8_pairs(&hi));
    core::array::from_fn(|c| if c < 8 { lo[c] } else { hi[c - 8] })
}

/// The inverse of [`transpose_16x8`] but for the last stage: `out[k]`
/// holds rows `2k` (low half) and `2k + 1` (high half), 8 bytes each.
#[inline(always)]
unsafe fn transpose_8x16_pairs(v: &Rows) -> [__m128i; 8] {
    let e: [__m128i; 8] = core::array::from_fn(|i| {
        let (x, y) = (v[2 * (i / 2)], v[2 * (i / 2) + 1]);
        if i % 2 == 0 {
            _mm_unpacklo_epi8(x, y)
        } else {
            _mm_unpackhi_epi8(x, y)
        }
    });
    // e[0]: columns 0-1 of rows 0-7, e[1]: of rows 8-15, e[2]: columns 2-3...
    let f = [
        _mm_unpacklo_epi16(e[0], e[2]),
        _mm_unpackhi_epi16(e[0], e[2]),
        _mm_unpacklo_epi16(e[4], e[6]),
        _mm_unpackhi_epi16(e[4], e[6]),
        _mm_unpacklo_epi16(e[1], e[3]),
        _mm_unpackhi_epi16(e[1], e[3]),
        _mm_unpacklo_epi16(e[5], e[7]),
        _mm_unpackhi_epi16(e[5], e[7]),
    ];
    // f[0]: rows 0-3 columns 0-3, f[1]: rows 4-7 columns 0-3,
    // f[2]: rows 0-3 columns 4-7, f[3]: rows 4-7 columns 4-7; then 8-15.
    [
        _mm_unpacklo_epi32(f[0], f[2]),
        _mm_unpackhi_epi32(f[0], f[2]),
        _mm_unpacklo_epi32(f[1], f[3]),
        _mm_unpackhi_epi32(f[1], f[3]),
        _mm_unpacklo_epi32(f[4], f[6]),
        _mm_unpackhi_epi32(f[4], f[6]),
        _mm_unpacklo_epi32(f[5], f[7]),
        _mm_unpackhi_epi32(f[5], f[7]),
    ]
}

/// The inverse of [`transpose_16x8`]: 16 rows of 8 bytes in the low
/// halves of the result.
#[inline(always)]
unsafe fn transpose_8x16(v: &Rows) -> [__m128i; 16] {
    let g = transpose_8x16_pairs(v);
    // g[k] holds rows 2k and 2k + 1.
    core::array::from_fn(|row| {
        let x = g[row / 2];
        if row % 2 == 0 {
            x
        } else {
            _mm_unpackhi_epi64(x, x)
        }
    })
}

/// The inverse of [`transpose_16x16`] (which is its own inverse; this
/// form reuses the 8-column stages): 16 rows of 16 bytes.
#[inline(always)]
unsafe fn transpose_16x16_back(c: &[__m128i; 16]) -> [__m128i; 16] {
    let lo = transpose_8x16_pairs(&core::array::from_fn(|k| c[k]));
    let hi = transpose_8x16_pairs(&core::array::from_fn(|k| c[8 + k]));
    core::array::from_fn(|row| {
        let k = row / 2;
        if row % 2 == 0 {
            _mm_unpacklo_epi64(lo[k], hi[k])
        } else {
            _mm_unpackhi_epi64(lo[k], hi[k])
        }
    })
}

/// Runs [`sub_edge`] on the vertical edge before column `q0` of the
/// transposed block `c` (columns `q0 - 4 .. q0 + 4`).
#[inline(always)]
unsafe fn sub_edge_columns(c: &mut [__m128i; 16], q0: usize, lim: &EdgeLimits) {
    let mut v: Rows = core::array::from_fn(|k| c[q0 - 4 + k]);
    sub_edge(&mut v, lim);
    c[q0 - 2..q0 + 2].copy_from_slice(&v[2..6]);
}

/// The columns across the vertical edge at `edge` (q0's column), `N` rows.
#[inline(always)]
unsafe fn load_v<const N: usize>(edge: *const u8, stride: usize) -> Rows {
    let first = edge.sub(4);
    let r: [__m128i; 16] = core::array::from_fn(|i| {
        if i < N {
            _mm_loadl_epi64(first.add(i * stride) as *const __m128i)
        } else {
            _mm_setzero_si128()
        }
    });
    transpose_16x8(&r)
}

/// Writes back the columns of a vertical edge.
#[inline(always)]
unsafe fn store_v<const N: usize>(v: &Rows, edge: *mut u8, stride: usize) {
    let first = edge.sub(4);
    let r = transpose_8x16(v);
    for (i, row) in r.iter().enumerate().take(N) {
        _mm_storel_epi64(first.add(i * stride) as *mut __m128i, *row);
    }
}

/// Filters one macroblock of one plane like [`crate::loop_filter::filter_mb_normal_n`],
/// or returns false (doing nothing) if the pixels it would touch are not
/// all inside `plane`.
///
/// The same SSE2 code is also compiled with AVX2 enabled and chosen when
/// the CPU has it: the VEX forms take three operands, which saves most
/// of the register copies two-operand SSE2 needs (the luma filter had 360
/// `movdqa` in 1,900 instructions); the arithmetic is the same.
#[inline]
pub(crate) fn filter_mb_normal<const N: usize>(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) -> bool {
    #[target_feature(enable = "avx2")]
    unsafe fn avx2<const N: usize>(
        plane: &mut [u8],
        pos: usize,
        stride: usize,
        lim: &EdgeLimits,
        filter_left: bool,
        filter_top: bool,
        filter_inner: bool,
    ) -> bool {
        normal_body::<N>(
            plane,
            pos,
            stride,
            lim,
            filter_left,
            filter_top,
            filter_inner,
        )
    }
    if crate::dsp::dispatch::has_avx2() {
        // SAFETY: `avx2` is `normal_body` compiled for AVX2, which the CPU
        // was just checked to support; it has no other preconditions.
        return unsafe {
            avx2::<N>(
                plane,
                pos,
                stride,
                lim,
                filter_left,
                filter_top,
                filter_inner,
            )
        };
    }
    normal_body::<N>(
        plane,
        pos,
        stride,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    )
}

/// The body of [`filter_mb_normal`], inlined into its SSE2 and AVX2
/// builds.
#[inline(always)]
fn normal_body<const N: usize>(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) -> bool {
    // Everything touched lies in rows -4..N and columns -4..N around
    // `pos` (inner edges end at column / row N - 1; outer edges reach 4
    // into the neighbours). Check that whole box once.
    let Some(first) = pos.checked_sub(4 * stride + 4) else {
        return false;
    };
    let last = pos + (N - 1) * stride + N - 1;
    if stride < N || last >= plane.len() || first >= plane.len() {
        return false;
    }
    let base = plane.as_mut_ptr();
    // SAFETY: every load and store below addresses a byte in rows -4..N,
    // columns -4..N relative to `pos` (16- or 8-byte row accesses start
    // at column -4 or 0 and end by column N - 1 + 4 - 4 = N - 1 for the
    // transposed vertical edges, or at column N - 1 for horizontal ones),
    // and the check above puts that box inside `plane`, which is borrowed
    // mutably for the whole call. SSE2 is always available on x86-64.
    unsafe {
        let p = base.add(pos);
        if filter_left {
            let mut v = load_v::<N>(p, stride);
            mb_edge(&mut v, lim);
            store_v::<N>(&v, p, stride);
        }
        if filter_inner && N == 16 {
            // All three inner edges in one transposed block: 16 rows in
            // and out once instead of three 8-column round trips.
            let r: [__m128i; 16] =
                core::array::from_fn(|i| _mm_loadu_si128(p.add(i * stride) as *const __m128i));
            let mut c = transpose_16x16(&r);
            for q0 in [4, 8, 12] {
                sub_edge_columns(&mut c, q0, lim);
            }
            let r = transpose_16x16_back(&c);
            for (i, row) in r.iter().enumerate() {
                _mm_storeu_si128(p.add(i * stride) as *mut __m128i, *row);
            }
        } else if filter_inner {
            for off in (4..N).step_by(4) {
                let e = p.add(off);
                let mut v = load_v::<N>(e, stride);
                sub_edge(&mut v, lim);
                store_v::<N>(&v, e, stride);
            }
        }
        if filter_top {
            let mut v = load_h::<N>(p, stride);
            mb_edge(&mut v, lim);
            let first = p.sub(4 * stride);
            for k in 1..7 {
                store::<N>(first.add(k * stride), v[k]);
            }
        }
        if filter_inner {
            for off in (4..N).step_by(4) {
                let e = p.add(off * stride);
                let mut v = load_h::<N>(e, stride);
                sub_edge(&mut v, lim);
                let first = e.sub(4 * stride);
                for k in 2..6 {
                    store::<N>(first.add(k * stride), v[k]);
                }
            }
        }
    }
    true
}

/// Simple filter (RFC 15.2 `simple_segment`) of all lanes of `v[2..6]`
/// (`p1 p0 q0 q1`): `common_adjust` with the outer taps where
/// `|p0 - q0| * 2 + |p1 - q1| / 2 <= limit`; only `p0` and `q0` change.
#[inline(always)]
unsafe fn simple_edge(v: &mut Rows, limit: u8) {
    let [p1, p0, q0, q1] = [v[2], v[3], v[4], v[5]];
    let zero = _mm_setzero_si128();
    // Saturating at 255 is harmless: every edge limit is at most 193.
    let a = abd(p0, q0);
    let b = _mm_and_si128(_mm_srli_epi16(abd(p1, q1), 1), _mm_set1_epi8(0x7f));
    let sum = _mm_adds_epu8(_mm_adds_epu8(a, a), b);
    let mask = _mm_cmpeq_epi8(_mm_subs_epu8(sum, _mm_set1_epi8(limit as i8)), zero);
    let bias = _mm_set1_epi8(-128);
    let [ps1, ps0, qs0, qs1] = [p1, p0, q0, q1].map(|x| _mm_xor_si128(x, bias));
    let d = _mm_subs_epi8(qs0, ps0);
    let mut f = _mm_subs_epi8(ps1, qs1);
    f = _mm_adds_epi8(f, d);
    f = _mm_adds_epi8(f, d);
    f = _mm_adds_epi8(f, d);
    f = _mm_and_si128(f, mask);
    let f1 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(4)));
    let f2 = sra_i8::<3>(_mm_adds_epi8(f, _mm_set1_epi8(3)));
    v[3] = _mm_xor_si128(_mm_adds_epi8(ps0, f2), bias);
    v[4] = _mm_xor_si128(_mm_subs_epi8(qs0, f1), bias);
}

/// Filters one luma macroblock with the simple filter like
/// [`crate::loop_filter::filter_mb_simple_scalar`], or returns false
/// (doing nothing) if the pixels it would touch are not all inside
/// `plane`.
#[inline]
pub(crate) fn filter_mb_simple(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) -> bool {
    // The same box as the normal filter's: rows -4..16, columns -4..16
    // (the vertical edges load and store 8 columns, of which the simple
    // filter changes the middle two).
    let Some(first) = pos.checked_sub(4 * stride + 4) else {
        return false;
    };
    let last = pos + 15 * stride + 15;
    if stride < 16 || last >= plane.len() || first >= plane.len() {
        return false;
    }
    let base = plane.as_mut_ptr();
    // SAFETY: the vertical edges load and store 8-byte rows at columns
    // -4..4 around `pos + off` (off 0, 4, 8, 12) for rows 0..16; the
    // horizontal ones load 16-byte rows -2..2 around rows 0, 4, 8 and 12
    // and store rows -1 and 0. All of that lies in rows -4..16, columns
    // -4..16 around `pos`, which the check above puts inside `plane`,
    // borrowed mutably for the whole call. SSE2 is always available on
    // x86-64.
    unsafe {
        let p = base.add(pos);
        let vertical = |e: *mut u8, limit: u8| {
            let mut v = load_v::<16>(e, stride);
            simple_edge(&mut v, limit);
            store_v::<16>(&v, e, stride);
        };
        let horizontal = |e: *mut u8, limit: u8| {
            let mut v: Rows = [_mm_setzero_si128(); 8];
            for k in 2..6 {
                v[k] = load::<16>(e.add(k * stride).sub(4 * stride));
            }
            simple_edge(&mut v, limit);
            store::<16>(e.sub(stride), v[3]);
            store::<16>(e, v[4]);
        };
        if filter_left {
            vertical(p, lim.mb_edge);
        }
        if filter_inner {
            for off in [4, 8, 12] {
                vertical(p.add(off), lim.sub_edge);
            }
        }
        if filter_top {
            horizontal(p, lim.mb_edge);
        }
        if filter_inner {
            for off in [4, 8, 12] {
                horizontal(p.add(off * stride), lim.sub_edge);
            }
        }
    }
    true
}

/// Filters the vertical edge at column `c` of the 8x8 blocks at `pu` and
/// `pv` (U rows become lanes 0..8, V rows lanes 8..16).
///
/// # Safety
/// Rows 0..8, columns `c - 4..c + 4` around both pointers must be valid
/// for reads and writes.
#[inline(always)]
unsafe fn vertical_uv(
    pu: *mut u8,
    pv: *mut u8,
    stride: usize,
    c: usize,
    mb: bool,
    lim: &EdgeLimits,
) {
    let r: [__m128i; 16] = core::array::from_fn(|i| {
        let base = if i < 8 { pu } else { pv };
        _mm_loadl_epi64(base.add((i % 8) * stride + c).sub(4) as *const __m128i)
    });
    let mut rows = transpose_16x8(&r);
    if mb {
        mb_edge(&mut rows, lim);
    } else {
        sub_edge(&mut rows, lim);
    }
    let out = transpose_8x16(&rows);
    for (i, row) in out.iter().enumerate() {
        let base = if i < 8 { pu } else { pv };
        _mm_storel_epi64(base.add((i % 8) * stride + c).sub(4) as *mut __m128i, *row);
    }
}

/// Filters the same 8x8 macroblock of both chroma planes at once, U in
/// lanes 0..8 and V in lanes 8..16 (as libvpx's `loop_filter_bv_sse2`
/// does), or returns false (doing nothing) if the pixels it would touch
/// are not all inside both planes. The planes are independent, so this
/// equals [`filter_mb_normal`] on each.
///
/// Compiled for AVX2 too, like [`filter_mb_normal`].
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn filter_mb_normal_uv(
    u: &mut [u8],
    v: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) -> bool {
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2(
        u: &mut [u8],
        v: &mut [u8],
        pos: usize,
        stride: usize,
        lim: &EdgeLimits,
        filter_left: bool,
        filter_top: bool,
        filter_inner: bool,
    ) -> bool {
        normal_uv_body(
            u,
            v,
            pos,
            stride,
            lim,
            filter_left,
            filter_top,
            filter_inner,
        )
    }
    if crate::dsp::dispatch::has_avx2() {
        // SAFETY: `avx2` is `normal_uv_body` compiled for AVX2, which the
        // CPU was just checked to support; it has no other preconditions.
        return unsafe {
            avx2(
                u,
                v,
                pos,
                stride,
                lim,
                filter_left,
                filter_top,
                filter_inner,
            )
        };
    }
    normal_uv_body(
        u,
        v,
        pos,
        stride,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    )
}

/// The body of [`filter_mb_normal_uv`], inlined into its SSE2 and AVX2
/// builds.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn normal_uv_body(
    u: &mut [u8],
    v: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) -> bool {
    let Some(first) = pos.checked_sub(4 * stride + 4) else {
        return false;
    };
    let last = pos + 7 * stride + 7;
    let len = u.len().min(v.len());
    if stride < 8 || last >= len || first >= len {
        return false;
    }
    // SAFETY: as in `filter_mb_normal` with N = 8: every access is an
    // 8-byte row slice within rows -4..8, columns -4..8 around `pos`, of
    // `u` or `v`, and the check above puts that box inside both slices,
    // which are borrowed mutably (and are distinct) for the whole call.
    unsafe {
        let pu = u.as_mut_ptr().add(pos);
        let pv = v.as_mut_ptr().add(pos);
        // Row `r` (may be negative) of both planes, column offset `c`.
        let at = |base: *mut u8, r: isize, c: isize| base.offset(r * stride as isize + c);
        let load_pair = |r: isize| {
            _mm_unpacklo_epi64(
                _mm_loadl_epi64(at(pu, r, 0) as *const __m128i),
                _mm_loadl_epi64(at(pv, r, 0) as *const __m128i),
            )
        };
        let store_pair = |r: isize, x: __m128i| {
            _mm_storel_epi64(at(pu, r, 0) as *mut __m128i, x);
            _mm_storel_epi64(at(pv, r, 0) as *mut __m128i, _mm_unpackhi_epi64(x, x));
        };
        if filter_left {
            vertical_uv(pu, pv, stride, 0, true, lim);
        }
        if filter_inner {
            vertical_uv(pu, pv, stride, 4, false, lim);
        }
        if filter_top {
            let mut rows: Rows = core::array::from_fn(|k| load_pair(k as isize - 4));
            mb_edge(&mut rows, lim);
            for k in 1..7 {
                store_pair(k as isize - 4, rows[k]);
            }
        }
        if filter_inner {
            let mut rows: Rows = core::array::from_fn(|k| load_pair(k as isize));
            sub_edge(&mut rows, lim);
            for k in 2..6 {
                store_pair(k as isize, rows[k]);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
