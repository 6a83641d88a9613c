//! The edge kernels (RFC 6386 sections 15.2-15.3): the pixels straddling
//! an edge are gathered into rows of lanes, filtered lane-wise and written
//! back. On x86-64 the per-macroblock entry points run the SSE2/AVX2
//! versions in `crate::dsp::loop_filter`, and the scalar functions here
//! are their twins.

#[cfg(target_arch = "x86_64")]
use crate::dsp::loop_filter as sse2;

use super::EdgeLimits;

/// Pixels straddling an edge: `R` rows of `N` lanes, row `R/2 - 1` being
/// the last pixel before the edge (`p0`) and row `R/2` the first after
/// (`q0`).
type Segments<const N: usize, const R: usize> = [[u8; N]; R];

/// Gathers the `R` rows straddling the horizontal edge whose first
/// after-edge row starts at `edge`.
#[inline(always)]
fn load_h<const N: usize, const R: usize>(
    plane: &[u8],
    edge: usize,
    stride: usize,
) -> Segments<N, R> {
    let first = edge - R / 2 * stride;
    core::array::from_fn(|k| {
        let s = first + k * stride;
        plane[s..s + N].try_into().unwrap()
    })
}

/// Writes back rows `lo..R-lo` of a horizontal edge (the outer rows are
/// never modified).
#[inline(always)]
fn store_h<const N: usize, const R: usize>(
    seg: &Segments<N, R>,
    lo: usize,
    plane: &mut [u8],
    edge: usize,
    stride: usize,
) {
    let first = edge - R / 2 * stride;
    for (k, row) in seg.iter().enumerate().take(R - lo).skip(lo) {
        let s = first + k * stride;
        plane[s..s + N].copy_from_slice(row);
    }
}

/// Gathers (transposing) the `R` columns straddling the vertical edge at
/// column `edge`, for `N` rows.
#[inline(always)]
fn load_v<const N: usize, const R: usize>(
    plane: &[u8],
    edge: usize,
    stride: usize,
) -> Segments<N, R> {
    let mut seg = [[0u8; N]; R];
    for lane in 0..N {
        let s = edge + lane * stride - R / 2;
        let px: &[u8; R] = plane[s..s + R].try_into().unwrap();
        for (row, &v) in seg.iter_mut().zip(px) {
            row[lane] = v;
        }
    }
    seg
}

/// Writes back (transposing) the columns of a vertical edge.
#[inline(always)]
fn store_v<const N: usize, const R: usize>(
    seg: &Segments<N, R>,
    plane: &mut [u8],
    edge: usize,
    stride: usize,
) {
    for lane in 0..N {
        let s = edge + lane * stride - R / 2;
        let px: &mut [u8; R] = (&mut plane[s..s + R]).try_into().unwrap();
        for (p, row) in px.iter_mut().zip(seg) {
            *p = row[lane];
        }
    }
}

/// Clamps to the signed 8-bit range (RFC 15.2 `c`).
#[inline(always)]
fn sat8(x: i32) -> i32 {
    x.clamp(-128, 127)
}

/// Clamps to a pixel value (RFC 15.2 `s2u` after `u2s` arithmetic).
#[inline(always)]
fn pixel(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

/// The rounding pair of RFC 15.2 `common_adjust`: `(a + 4) >> 3` applied
/// to q0 and `(a + 3) >> 3` applied to p0, each saturated first.
#[inline(always)]
fn adjust_pair(a: i32) -> (i32, i32) {
    ((a + 4).min(127) >> 3, (a + 3).min(127) >> 3)
}

/// Loads the 8 pixels of lane `x` as `i32`.
#[inline(always)]
fn lane8<const N: usize>(s: &Segments<N, 8>, x: usize) -> [i32; 8] {
    core::array::from_fn(|k| i32::from(s[k][x]))
}

/// The normal filter's enable test (RFC 15.3 `filter_yes`).
#[inline(always)]
fn normal_mask(v: &[i32; 8], edge: i32, interior: i32) -> bool {
    let [p3, p2, p1, p0, q0, q1, q2, q3] = *v;
    ((p0 - q0).abs() * 2 + ((p1 - q1).abs() >> 1)) <= edge
        && (p3 - p2).abs() <= interior
        && (p2 - p1).abs() <= interior
        && (p1 - p0).abs() <= interior
        && (q3 - q2).abs() <= interior
        && (q2 - q1).abs() <= interior
        && (q1 - q0).abs() <= interior
}

/// High edge variance test (RFC 15.3 `hev`).
#[inline(always)]
fn high_edge_variance(v: &[i32; 8], threshold: i32) -> bool {
    (v[2] - v[3]).abs() > threshold || (v[5] - v[4]).abs() > threshold
}

/// Macroblock-edge filter over all lanes (RFC 15.3 `MBfilter`).
#[inline(always)]
fn mb_edge_lanes<const N: usize>(s: &mut Segments<N, 8>, lim: &EdgeLimits) {
    let (edge, interior, thresh) = (
        i32::from(lim.mb_edge),
        i32::from(lim.interior),
        i32::from(lim.hev_threshold),
    );
    for x in 0..N {
        let v = lane8(s, x);
        let [_, p2, p1, p0, q0, q1, q2, _] = v;
        let mask = normal_mask(&v, edge, interior);
        let hev = high_edge_variance(&v, thresh);
        let w = sat8(sat8(p1 - q1) + 3 * (q0 - p0));
        // High variance: common_adjust with outer taps, only p0/q0 move.
        let (f1, f2) = adjust_pair(w);
        // Otherwise: 27/128, 18/128 and 9/128 of w on three pixel pairs.
        let a0 = (27 * w + 63) >> 7;
        let a1 = (18 * w + 63) >> 7;
        let a2 = (9 * w + 63) >> 7;
        let (dp0, dq0, d1, d2) = match (mask, hev) {
            (false, _) => (0, 0, 0, 0),
            (true, true) => (f2, f1, 0, 0),
            (true, false) => (a0, a0, a1, a2),
        };
        s[1][x] = pixel(p2 + d2);
        s[2][x] = pixel(p1 + d1);
        s[3][x] = pixel(p0 + dp0);
        s[4][x] = pixel(q0 - dq0);
        s[5][x] = pixel(q1 - d1);
        s[6][x] = pixel(q2 - d2);
    }
}

/// Subblock-edge filter over all lanes (RFC 15.3 `subblock_filter`).
#[inline(always)]
fn sub_edge_lanes<const N: usize>(s: &mut Segments<N, 8>, lim: &EdgeLimits) {
    let (edge, interior, thresh) = (
        i32::from(lim.sub_edge),
        i32::from(lim.interior),
        i32::from(lim.hev_threshold),
    );
    for x in 0..N {
        let v = lane8(s, x);
        let [_, _, p1, p0, q0, q1, _, _] = v;
        let mask = normal_mask(&v, edge, interior);
        let hev = high_edge_variance(&v, thresh);
        let outer = if hev { sat8(p1 - q1) } else { 0 };
        let a = sat8(outer + 3 * (q0 - p0));
        let (f1, f2) = adjust_pair(a);
        let d1 = if hev { 0 } else { (f1 + 1) >> 1 };
        let (dp0, dq0, d1) = if mask { (f2, f1, d1) } else { (0, 0, 0) };
        s[2][x] = pixel(p1 + d1);
        s[3][x] = pixel(p0 + dp0);
        s[4][x] = pixel(q0 - dq0);
        s[5][x] = pixel(q1 - d1);
    }
}

/// Simple filter over all lanes (RFC 15.2 `simple_segment`).
#[inline(always)]
fn simple_lanes<const N: usize>(s: &mut Segments<N, 4>, limit: u8) {
    let limit = i32::from(limit);
    let [p1s, p0s, q0s, q1s] = s;
    let lanes = p1s
        .iter()
        .zip(p0s.iter_mut())
        .zip(q0s.iter_mut())
        .zip(q1s.iter());
    for (((&p1, p0s), q0s), &q1) in lanes {
        let (p1, p0, q0, q1) = (
            i32::from(p1),
            i32::from(*p0s),
            i32::from(*q0s),
            i32::from(q1),
        );
        let mask = ((p0 - q0).abs() * 2 + ((p1 - q1).abs() >> 1)) <= limit;
        let a = sat8(sat8(p1 - q1) + 3 * (q0 - p0));
        let (f1, f2) = adjust_pair(a);
        let (dp0, dq0) = if mask { (f2, f1) } else { (0, 0) };
        *p0s = pixel(p0 + dp0);
        *q0s = pixel(q0 - dq0);
    }
}

/// The scalar normal filter of one macroblock of one plane; the SIMD
/// version must match it exactly.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn filter_mb_normal_n<const N: usize>(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    // Inner edges every 4 pixels: 4, 8, 12 for luma, 4 for chroma.
    let inner = (1..N / 4).map(|i| 4 * i);
    if filter_left {
        let mut s = load_v::<N, 8>(plane, pos, stride);
        mb_edge_lanes(&mut s, lim);
        store_v(&s, plane, pos, stride);
    }
    if filter_inner {
        for off in inner.clone() {
            let mut s = load_v::<N, 8>(plane, pos + off, stride);
            sub_edge_lanes(&mut s, lim);
            store_v(&s, plane, pos + off, stride);
        }
    }
    if filter_top {
        let mut s = load_h::<N, 8>(plane, pos, stride);
        mb_edge_lanes(&mut s, lim);
        store_h(&s, 1, plane, pos, stride);
    }
    if filter_inner {
        for off in inner {
            let edge = pos + off * stride;
            let mut s = load_h::<N, 8>(plane, edge, stride);
            sub_edge_lanes(&mut s, lim);
            store_h(&s, 2, plane, edge, stride);
        }
    }
}

/// Applies the normal loop filter to one macroblock of one plane
/// (RFC 15.1 and 15.3; dixie `filter_row_normal`).
///
/// `size` is 16 for luma or 8 for chroma; the block's top-left pixel is
/// `plane[pos]` and rows are `stride` apart. Edges are filtered in the
/// order the RFC requires:
///
/// 1. the left macroblock edge, if `filter_left` (not the leftmost column),
/// 2. the inner vertical subblock edges, if `filter_inner` (columns 4, 8
///    and 12 for luma, 4 for chroma),
/// 3. the top macroblock edge, if `filter_top` (not the top row),
/// 4. the inner horizontal subblock edges, if `filter_inner`.
///
/// `filter_inner` is false exactly when the macroblock has no non-zero
/// coefficient and its mode is neither `LumaMode::B` nor `LumaMode::SplitMv` (RFC 15.1).
/// Macroblock edges read and modify pixels of the left / above neighbours
/// (four columns / rows), so `pos` must be at least 4 (or `4 * stride`)
/// past the plane start when those edges are filtered.
///
/// # Panics
/// If `size` is not 8 or 16 or the pixels touched are out of bounds.
#[allow(clippy::too_many_arguments)]
pub fn filter_mb_normal(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    size: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    assert!(stride >= size, "stride {stride} narrower than block {size}");
    #[cfg(target_arch = "x86_64")]
    {
        let done = match size {
            16 => sse2::filter_mb_normal::<16>(
                plane,
                pos,
                stride,
                lim,
                filter_left,
                filter_top,
                filter_inner,
            ),
            8 => sse2::filter_mb_normal::<8>(
                plane,
                pos,
                stride,
                lim,
                filter_left,
                filter_top,
                filter_inner,
            ),
            _ => false,
        };
        if done {
            return;
        }
    }
    filter_mb_normal_scalar(
        plane,
        pos,
        stride,
        size,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    );
}

/// [`filter_mb_normal`] without SIMD: the scalar definition the SIMD
/// version must match exactly (public for the benches that compare the
/// two).
///
/// # Panics
/// As [`filter_mb_normal`].
#[allow(clippy::too_many_arguments)]
pub fn filter_mb_normal_scalar(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    size: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    assert!(stride >= size, "stride {stride} narrower than block {size}");
    let (l, t, i) = (filter_left, filter_top, filter_inner);
    match size {
        16 => filter_mb_normal_n::<16>(plane, pos, stride, lim, l, t, i),
        8 => filter_mb_normal_n::<8>(plane, pos, stride, lim, l, t, i),
        _ => panic!("unsupported macroblock size {size} (must be 8 or 16)"),
    }
}

/// Applies the normal loop filter to the same 8x8 macroblock of both
/// chroma planes: the same as [`filter_mb_normal`] with `size` 8 on `u`
/// and then on `v`, but both planes share one pass of the SIMD kernel
/// where there is one.
///
/// # Panics
/// If the pixels touched are out of bounds.
#[allow(clippy::too_many_arguments)]
pub fn filter_mb_normal_uv(
    u: &mut [u8],
    v: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if sse2::filter_mb_normal_uv(
        u,
        v,
        pos,
        stride,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    ) {
        return;
    }
    for p in [u, v] {
        filter_mb_normal(
            p,
            pos,
            stride,
            8,
            lim,
            filter_left,
            filter_top,
            filter_inner,
        );
    }
}

/// Applies the simple loop filter to one luma macroblock (RFC 15.2; dixie
/// `filter_row_simple`). The simple filter never touches chroma.
///
/// Same geometry and edge order as [`filter_mb_normal`] with `size` 16:
/// macroblock edges use `lim.mb_edge`, inner edges `lim.sub_edge`; the
/// interior limit and hev threshold are not used. Only the two pixels each
/// side of an edge are read, and only `p0` / `q0` change.
///
/// # Panics
/// If the pixels touched are out of bounds.
pub fn filter_mb_simple(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    assert!(stride >= 16, "stride {stride} narrower than a macroblock");
    #[cfg(target_arch = "x86_64")]
    if sse2::filter_mb_simple(
        plane,
        pos,
        stride,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    ) {
        return;
    }
    filter_mb_simple_scalar(
        plane,
        pos,
        stride,
        lim,
        filter_left,
        filter_top,
        filter_inner,
    );
}

/// The scalar simple filter of one luma macroblock, [`filter_mb_simple`]
/// without SIMD: the definition the SIMD version must match exactly
/// (public for the benches that compare the two).
///
/// # Panics
/// If the pixels touched are out of bounds.
#[inline(always)]
pub fn filter_mb_simple_scalar(
    plane: &mut [u8],
    pos: usize,
    stride: usize,
    lim: &EdgeLimits,
    filter_left: bool,
    filter_top: bool,
    filter_inner: bool,
) {
    if filter_left {
        let mut s = load_v::<16, 4>(plane, pos, stride);
        simple_lanes(&mut s, lim.mb_edge);
        store_v(&s, plane, pos, stride);
    }
    if filter_inner {
        for off in [4, 8, 12] {
            let mut s = load_v::<16, 4>(plane, pos + off, stride);
            simple_lanes(&mut s, lim.sub_edge);
            store_v(&s, plane, pos + off, stride);
        }
    }
    if filter_top {
        let mut s = load_h::<16, 4>(plane, pos, stride);
        simple_lanes(&mut s, lim.mb_edge);
        store_h(&s, 1, plane, pos, stride);
    }
    if filter_inner {
        for off in [4, 8, 12] {
            let edge = pos + off * stride;
            let mut s = load_h::<16, 4>(plane, edge, stride);
            simple_lanes(&mut s, lim.sub_edge);
            store_h(&s, 1, plane, edge, stride);
        }
    }
}
