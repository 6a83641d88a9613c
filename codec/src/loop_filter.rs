//! The in-loop deblocking filter (RFC 6386 section 15; dixie
//! `dixie_loopfilter.c`, RFC 20.6; libvpx `vp8/common/loopfilter_filters.c`).
//!
//! The kernels work on a whole edge at once: the pixels straddling an edge
//! are gathered into eight rows of `N` lanes (`p3 p2 p1 p0 | q0 q1 q2 q3`,
//! one lane per position along the edge), filtered with branch-free
//! lane-wise arithmetic the compiler can vectorise, and written back.
//! Horizontal edges load rows directly; vertical edges transpose.

use crate::decode::{filter_levels, mode_class};
#[cfg(target_arch = "x86_64")]
use crate::dsp::loop_filter as sse2;
use crate::header::FrameHeader;
use crate::modes::MbInfo;
use crate::picture::PlaneBuf;
use crate::prediction::LumaMode;

/// Thresholds controlling the filter of one macroblock (RFC 15.4).
///
/// `mb_edge` and `sub_edge` are the complete limits compared against
/// `|p0 - q0| * 2 + |p1 - q1| / 2` (they already include the interior
/// limit), for macroblock and subblock edges respectively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Edge limit of macroblock edges: `(level + 2) * 2 + interior`.
    pub mb_edge: u8,
    /// Edge limit of inner subblock edges: `level * 2 + interior`.
    pub sub_edge: u8,
    /// Limit on differences between neighbouring interior pixels (normal
    /// filter only).
    pub interior: u8,
    /// High edge variance threshold (normal filter only).
    pub hev_threshold: u8,
}

/// Computes the filter thresholds of a macroblock (RFC 15.4; dixie
/// `calculate_filter_parameters`, libvpx `vp8_loop_filter_update_sharpness`
/// and `lfi_n->hev_thr`).
///
/// `level` is the macroblock's final loop filter level (after segment and
/// mode/reference deltas, clamped to 0..=63; larger values are clamped
/// here) and `sharpness` the frame's sharpness level (0..=7).
///
/// * interior limit: `level`, shifted right by 1 (sharpness 1..=4) or 2
///   (sharpness 5..=7) and capped at `9 - sharpness` when sharpness is
///   non-zero; at least 1.
/// * hev threshold: 1 from level 15, 2 from level 40 on key frames;
///   on inter frames 1 from 15, 2 from 20, 3 from 40.
/// * edge limits as documented on [`EdgeLimits`].
///
/// `simple` selects the simple filter. In dixie and libvpx it uses the very
/// same `mb_edge` / `sub_edge` values as the normal filter (dixie computes
/// `(level + 2) * 2 + interior` for it explicitly; the normal filter passes
/// `level + 2` and forms `2 * E + I` inside), so the interior limit, and
/// hence the sharpness, affects the simple filter too even though RFC 15.4
/// calls it a normal-filter threshold. The simple filter ignores
/// `interior` and `hev_threshold` themselves; they are still filled in.
///
/// A level of 0 means "do not filter": callers must skip the macroblock
/// rather than filter it with these limits (RFC 15).
pub fn edge_limits(level: u8, sharpness: u8, key_frame: bool, simple: bool) -> EdgeLimits {
    // The simple filter's limits coincide with the normal ones; see above.
    let _ = simple;
    let level = level.min(63);
    let sharpness = sharpness.min(7);
    let mut interior = level;
    if sharpness > 0 {
        interior >>= if sharpness > 4 { 2 } else { 1 };
        interior = interior.min(9 - sharpness);
    }
    let interior = interior.max(1);
    let hev_threshold =
        u8::from(level >= 15) + u8::from(level >= 40) + u8::from(level >= 20 && !key_frame);
    EdgeLimits {
        mb_edge: (level + 2) * 2 + interior,
        sub_edge: level * 2 + interior,
        interior,
        hev_threshold,
    }
}

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

/// The loop filter of one frame as the decoder applies it (RFC 6386
/// section 15.1; libvpx `vp8_loop_filter_frame`): per-macroblock levels
/// from the segment, reference frame and mode deltas, then the normal
/// filter on luma and both chroma planes or the simple filter on luma.
///
/// The decoder and the encoder's level search both walk macroblocks
/// through [`FrameFilter::filter_rows`], so the search measures exactly
/// the luma the decoder produces.
pub(crate) struct FrameFilter<'a> {
    /// Level per segment, reference frame and mode class.
    levels: [[[u8; 4]; 4]; 4],
    sharpness: u8,
    key_frame: bool,
    simple: bool,
    mbs: &'a [MbInfo],
    /// Per macroblock: no coefficients were coded.
    skips: &'a [bool],
    mb_cols: usize,
}

impl<'a> FrameFilter<'a> {
    /// The filter of the frame `hdr` over its macroblock records `mbs` (in
    /// raster order, `mb_cols` per row) and their "no coefficients"
    /// flags.
    pub(crate) fn new(
        hdr: &FrameHeader,
        mbs: &'a [MbInfo],
        skips: &'a [bool],
        mb_cols: usize,
    ) -> Self {
        FrameFilter {
            levels: filter_levels(hdr),
            sharpness: hdr.sharpness,
            key_frame: hdr.tag.key_frame,
            simple: hdr.filter_simple,
            mbs,
            skips,
            mb_cols,
        }
    }

    /// Filters the macroblock rows `rows` in raster order: luma `y` and,
    /// when `uv` is given and the filter is the normal one, both chroma
    /// planes. Chroma never affects luma, so a luma-only pass leaves `y`
    /// exactly as the full one does.
    ///
    /// Row `r` reads and modifies the bottom rows of row `r - 1`, so rows
    /// must be filtered in order, each after all of its macroblocks are
    /// reconstructed.
    pub(crate) fn filter_rows(
        &self,
        y: &mut PlaneBuf,
        mut uv: Option<(&mut PlaneBuf, &mut PlaneBuf)>,
        rows: core::ops::Range<usize>,
    ) {
        let mb_cols = self.mb_cols;
        // Limits per level, computed once per call rather than per block.
        let mut limits: [Option<EdgeLimits>; 64] = [None; 64];
        for mb_y in rows {
            for mb_x in 0..mb_cols {
                let i = mb_y * mb_cols + mb_x;
                let mb = &self.mbs[i];
                let level = self.levels[mb.segment as usize & 3][mb.ref_frame as usize & 3]
                    [mode_class(mb.y_mode)];
                if level == 0 {
                    continue;
                }
                let inner =
                    !(self.skips[i] && mb.y_mode != LumaMode::B && mb.y_mode != LumaMode::SplitMv);
                let lim = *limits[usize::from(level & 63)].get_or_insert_with(|| {
                    edge_limits(level, self.sharpness, self.key_frame, self.simple)
                });
                let (left, top) = (mb_x > 0, mb_y > 0);
                let pos = y.index(mb_x as isize * 16, mb_y as isize * 16);
                if self.simple {
                    filter_mb_simple(&mut y.data, pos, y.stride, &lim, left, top, inner);
                    continue;
                }
                filter_mb_normal(&mut y.data, pos, y.stride, 16, &lim, left, top, inner);
                if let Some((u, v)) = uv.as_mut() {
                    // U and V have the same geometry; filter them together.
                    let pos = u.index(mb_x as isize * 8, mb_y as isize * 8);
                    filter_mb_normal_uv(
                        &mut u.data,
                        &mut v.data,
                        pos,
                        u.stride,
                        &lim,
                        left,
                        top,
                        inner,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits of level 20, sharpness 0, key frame: interior 20,
    /// mb_edge 64, sub_edge 60, hev threshold 1.
    fn lim20() -> EdgeLimits {
        edge_limits(20, 0, true, false)
    }

    /// Filters one horizontal segment across the left MB edge of a 16x16
    /// luma block (all 16 rows equal) and returns row 0, columns 0..8
    /// (p3..q3, the edge being between columns 3 and 4).
    fn left_edge(seg: [u8; 8], lim: &EdgeLimits) -> [u8; 8] {
        let stride = 24;
        let mut plane = vec![0u8; stride * 16];
        for r in 0..16 {
            plane[r * stride..r * stride + 8].copy_from_slice(&seg);
        }
        filter_mb_normal(&mut plane, 4, stride, 16, lim, true, false, false);
        for r in 1..16 {
            assert_eq!(plane[r * stride..r * stride + 8], plane[0..8]);
        }
        plane[0..8].try_into().unwrap()
    }

    /// Filters the inner vertical edge at column 4 of an 8x8 chroma block
    /// (all rows equal, left neighbour absent) and returns columns 0..8.
    fn inner_edge(seg: [u8; 8], lim: &EdgeLimits) -> [u8; 8] {
        let stride = 8;
        let mut plane = vec![0u8; stride * 8];
        for r in 0..8 {
            plane[r * stride..r * stride + 8].copy_from_slice(&seg);
        }
        filter_mb_normal(&mut plane, 0, stride, 8, lim, false, false, true);
        plane[0..8].try_into().unwrap()
    }

    #[test]
    fn limits() {
        assert_eq!(
            lim20(),
            EdgeLimits {
                mb_edge: 64,
                sub_edge: 60,
                interior: 20,
                hev_threshold: 1
            }
        );
        assert_eq!(edge_limits(20, 0, false, false).hev_threshold, 2);
        assert_eq!(edge_limits(14, 0, false, false).hev_threshold, 0);
        assert_eq!(edge_limits(15, 0, false, false).hev_threshold, 1);
        assert_eq!(edge_limits(63, 0, true, false).hev_threshold, 2);
        assert_eq!(edge_limits(63, 0, false, false).hev_threshold, 3);
        // sharpness 2: 32 >> 1 = 16, capped at 9 - 2 = 7.
        let l = edge_limits(32, 2, true, false);
        assert_eq!((l.interior, l.mb_edge, l.sub_edge), (7, 75, 71));
        // sharpness 5: 32 >> 2 = 8, capped at 4.
        assert_eq!(edge_limits(32, 5, true, false).interior, 4);
        // sharpness 1: 6 >> 1 = 3 (cap 8 not reached).
        assert_eq!(edge_limits(6, 1, true, false).interior, 3);
        // Never below 1.
        assert_eq!(edge_limits(1, 7, true, false).interior, 1);
        assert_eq!(edge_limits(0, 0, true, false).interior, 1);
        // Maximum: (63 + 2) * 2 + 63 = 193 fits a u8.
        assert_eq!(edge_limits(63, 0, true, false).mb_edge, 193);
        // The simple filter uses the same limits (dixie filter_row_simple).
        for level in 0..64 {
            for sharp in 0..8 {
                let n = edge_limits(level, sharp, true, false);
                let s = edge_limits(level, sharp, true, true);
                assert_eq!((n.mb_edge, n.sub_edge), (s.mb_edge, s.sub_edge));
            }
        }
    }

    #[test]
    fn mb_edge_without_hev() {
        // w = c(c(80 - 90) + 3 * 10) = 20; 27w -> (540+63)>>7 = 4,
        // 18w -> (360+63)>>7 = 3, 9w -> (180+63)>>7 = 1.
        let out = left_edge([80, 80, 80, 80, 90, 90, 90, 90], &lim20());
        assert_eq!(out, [80, 81, 83, 84, 86, 87, 89, 90]);
    }

    #[test]
    fn mb_edge_with_hev() {
        // |p1 - p0| = 5 > 1: common_adjust with outer taps:
        // a = c(c(75 - 90) + 30) = 15; q0 -= (15+4)>>3 = 2; p0 += (15+3)>>3 = 2.
        let out = left_edge([80, 80, 75, 80, 90, 90, 90, 90], &lim20());
        assert_eq!(out, [80, 80, 75, 82, 88, 90, 90, 90]);
    }

    #[test]
    fn mb_edge_disabled() {
        // Edge test: 2 * 100 + 0 > 64.
        let seg = [0, 0, 0, 0, 100, 100, 100, 100];
        assert_eq!(left_edge(seg, &lim20()), seg);
        // Interior test: |p3 - p2| = 21 > 20.
        let seg = [59, 80, 80, 80, 90, 90, 90, 90];
        assert_eq!(left_edge(seg, &lim20()), seg);
        // Edge value exactly at the limit still filters: 2*27 + 20/2 = 64.
        let out = left_edge([80, 80, 80, 80, 107, 100, 100, 100], &lim20());
        assert_ne!(out[3], 80);
    }

    #[test]
    fn subblock_edge_without_hev() {
        // a = c(3 * 10) = 30; f1 = 34>>3 = 4, f2 = 33>>3 = 4;
        // p1/q1 move by (4 + 1) >> 1 = 2.
        let out = inner_edge([80, 80, 80, 80, 90, 90, 90, 90], &lim20());
        assert_eq!(out, [80, 80, 82, 84, 86, 88, 90, 90]);
    }

    #[test]
    fn subblock_edge_with_hev() {
        // a = c(c(75 - 90) + 30) = 15 -> +2 / -2, p1 and q1 untouched.
        let out = inner_edge([80, 80, 75, 80, 90, 90, 90, 90], &lim20());
        assert_eq!(out, [80, 80, 75, 82, 88, 90, 90, 90]);
    }

    #[test]
    fn subblock_edge_rounding_down() {
        // Step -7 (90 -> 83): a = -21; f1 = -17>>3 = -3, f2 = -18>>3 = -3;
        // p0 = 87, q0 = 86; p1/q1 move by (-3 + 1) >> 1 = -1.
        let out = inner_edge([90, 90, 90, 90, 83, 83, 83, 83], &lim20());
        assert_eq!(out, [90, 90, 89, 87, 86, 84, 83, 83]);
    }

    #[test]
    fn top_edge_matches_left_edge() {
        // The same segment down a column across the top MB edge.
        let seg = [80, 80, 80, 80, 90, 90, 90, 90];
        let stride = 16;
        let mut plane = vec![0u8; stride * 20];
        for (k, &v) in seg.iter().enumerate() {
            plane[k * stride..k * stride + 16].fill(v);
        }
        filter_mb_normal(
            &mut plane,
            4 * stride,
            stride,
            16,
            &lim20(),
            false,
            true,
            false,
        );
        let col: Vec<u8> = (0..8).map(|k| plane[k * stride + 7]).collect();
        assert_eq!(col, [80, 81, 83, 84, 86, 87, 89, 90]);
    }

    #[test]
    fn simple_filter() {
        // p1 p0 | q0 q1 = 80 80 | 90 90 across the left edge:
        // a = c(c(80 - 90) + 30) = 20; q0 -= 24>>3 = 3; p0 += 23>>3 = 2.
        let stride = 20;
        let mut plane = vec![0u8; stride * 16];
        for r in 0..16 {
            plane[r * stride..r * stride + 20].copy_from_slice(&[
                80, 80, 80, 80, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90,
            ]);
        }
        let lim = edge_limits(20, 0, true, true);
        filter_mb_simple(&mut plane, 4, stride, &lim, true, false, false);
        assert_eq!(plane[0..8], [80, 80, 80, 82, 87, 90, 90, 90]);
        assert_eq!(
            plane[15 * stride..15 * stride + 8],
            [80, 80, 80, 82, 87, 90, 90, 90]
        );
        // Over the limit (2 * 40 + 20 > 64): untouched.
        let mut plane2 = vec![50u8; stride * 16];
        for r in 0..16 {
            plane2[r * stride + 4..r * stride + 20].fill(90);
        }
        let before = plane2.clone();
        filter_mb_simple(&mut plane2, 4, stride, &lim, true, false, false);
        assert_eq!(plane2, before);
    }

    // ---- Whole-macroblock comparison against a scalar restatement of the
    // ---- RFC per-segment procedures, applied in dixie's order.

    fn seg_get(p: &[u8], at: usize, step: usize) -> [i32; 8] {
        core::array::from_fn(|k| i32::from(p[at + k * step - 4 * step]))
    }

    fn seg_set(p: &mut [u8], at: usize, step: usize, v: [i32; 8]) {
        for (k, x) in v.into_iter().enumerate() {
            p[at + k * step - 4 * step] = x.clamp(0, 255) as u8;
        }
    }

    fn common_adjust(v: &mut [i32; 8], outer: bool) -> i32 {
        let c = |x: i32| x.clamp(-128, 127);
        let a = c(if outer { c(v[2] - v[5]) } else { 0 } + 3 * (v[4] - v[3]));
        let b = c(a + 3) >> 3;
        let a = c(a + 4) >> 3;
        v[4] = (v[4] - a).clamp(0, 255);
        v[3] = (v[3] + b).clamp(0, 255);
        a
    }

    fn ref_filter_yes(v: &[i32; 8], e: i32, i: i32) -> bool {
        (v[3] - v[4]).abs() * 2 + (v[2] - v[5]).abs() / 2 <= e
            && (1..4).all(|k| (v[k] - v[k - 1]).abs() <= i)
            && (5..8).all(|k| (v[k] - v[k - 1]).abs() <= i)
    }

    fn ref_segment(p: &mut [u8], at: usize, step: usize, lim: &EdgeLimits, mb: bool) {
        let mut v = seg_get(p, at, step);
        let e = i32::from(if mb { lim.mb_edge } else { lim.sub_edge });
        if !ref_filter_yes(&v, e, i32::from(lim.interior)) {
            return;
        }
        let t = i32::from(lim.hev_threshold);
        let hev = (v[2] - v[3]).abs() > t || (v[5] - v[4]).abs() > t;
        if mb {
            if hev {
                common_adjust(&mut v, true);
            } else {
                let c = |x: i32| x.clamp(-128, 127);
                let w = c(c(v[2] - v[5]) + 3 * (v[4] - v[3]));
                for (k, m) in [(3usize, 27), (2, 18), (1, 9)] {
                    let a = c((m * w + 63) >> 7);
                    v[k] += a;
                    v[7 - k] -= a;
                }
            }
        } else {
            let a = (common_adjust(&mut v, hev) + 1) >> 1;
            if !hev {
                v[2] += a;
                v[5] -= a;
            }
        }
        seg_set(p, at, step, v);
    }

    #[allow(clippy::too_many_arguments)]
    fn ref_mb(
        p: &mut [u8],
        pos: usize,
        stride: usize,
        n: usize,
        lim: &EdgeLimits,
        l: bool,
        t: bool,
        inner: bool,
    ) {
        let inner_offs: Vec<usize> = (1..n / 4).map(|i| 4 * i).collect();
        if l {
            for r in 0..n {
                ref_segment(p, pos + r * stride, 1, lim, true);
            }
        }
        if inner {
            for &o in &inner_offs {
                for r in 0..n {
                    ref_segment(p, pos + o + r * stride, 1, lim, false);
                }
            }
        }
        if t {
            for c in 0..n {
                ref_segment(p, pos + c, stride, lim, true);
            }
        }
        if inner {
            for &o in &inner_offs {
                for c in 0..n {
                    ref_segment(p, pos + o * stride + c, stride, lim, false);
                }
            }
        }
    }

    fn ref_mb_simple(
        p: &mut [u8],
        pos: usize,
        stride: usize,
        lim: &EdgeLimits,
        l: bool,
        t: bool,
        inner: bool,
    ) {
        let one = |p: &mut [u8], at: usize, step: usize, limit: u8| {
            let mut v = seg_get(p, at, step);
            if (v[3] - v[4]).abs() * 2 + (v[2] - v[5]).abs() / 2 <= i32::from(limit) {
                common_adjust(&mut v, true);
                seg_set(p, at, step, v);
            }
        };
        if l {
            (0..16).for_each(|r| one(p, pos + r * stride, 1, lim.mb_edge));
        }
        if inner {
            for o in [4, 8, 12] {
                (0..16).for_each(|r| one(p, pos + o + r * stride, 1, lim.sub_edge));
            }
        }
        if t {
            (0..16).for_each(|c| one(p, pos + c, stride, lim.mb_edge));
        }
        if inner {
            for o in [4, 8, 12] {
                (0..16).for_each(|c| one(p, pos + o * stride + c, stride, lim.sub_edge));
            }
        }
    }

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

    #[test]
    fn whole_macroblock_matches_scalar_reference() {
        let mut rng = Lcg(5);
        let stride = 24;
        for iter in 0..3000 {
            // Low-contrast noise around a random base with a random step so
            // that all branches (off, hev, non-hev, clamping) occur.
            let base = (rng.next() % 256) as i32;
            let spread = [4, 12, 30, 255][iter % 4];
            let plane: Vec<u8> = (0..stride * 24)
                .map(|_| {
                    (base + (rng.next() % spread) as i32 - spread as i32 / 2).clamp(0, 255) as u8
                })
                .collect();
            let level = (rng.next() % 64) as u8;
            let lim = edge_limits(level, (rng.next() % 8) as u8, iter % 3 == 0, false);
            let flags = rng.next();
            let (l, t, inner) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
            for n in [16usize, 8] {
                let mut got = plane.clone();
                let mut want = plane.clone();
                let pos = 4 * stride + 4;
                filter_mb_normal(&mut got, pos, stride, n, &lim, l, t, inner);
                ref_mb(&mut want, pos, stride, n, &lim, l, t, inner);
                assert_eq!(got, want, "iter {iter} size {n}");
            }
            let mut got = plane.clone();
            let mut want = plane;
            filter_mb_simple(&mut got, 4 * stride + 4, stride, &lim, l, t, inner);
            ref_mb_simple(&mut want, 4 * stride + 4, stride, &lim, l, t, inner);
            assert_eq!(got, want, "simple, iter {iter}");
        }
    }
}
