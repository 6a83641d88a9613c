//! The in-loop deblocking filter (RFC 6386 section 15; dixie
//! `dixie_loopfilter.c`, RFC 20.6; libvpx `vp8/common/loopfilter_filters.c`).
//!
//! This file holds what decides the filtering: the thresholds of a level
//! ([`edge_limits`]), each macroblock's level from the segment, reference
//! and mode deltas (`filter_levels`), and the per-frame
//! driver (`FrameFilter`) the decoder and the encoder's level search
//! share. The edge kernels are in `edges`: they work on a whole edge at
//! once, the pixels straddling it gathered into eight rows of `N` lanes
//! (`p3 p2 p1 p0 | q0 q1 q2 q3`, one lane per position along the edge),
//! filtered with branch-free lane-wise arithmetic the compiler can
//! vectorise, and written back; horizontal edges load rows directly,
//! vertical edges transpose.

use crate::header::FrameHeader;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};
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

mod edges;
#[cfg(test)]
mod tests;

// The scalar twin the SIMD kernels are tested against.
#[cfg_attr(not(test), allow(unused_imports))]
pub(crate) use edges::filter_mb_normal_n;
pub use edges::{
    filter_mb_normal, filter_mb_normal_scalar, filter_mb_normal_uv, filter_mb_simple,
    filter_mb_simple_scalar,
};

/// Loop filter level per segment, reference frame and mode class
/// (libvpx `vp8_loop_filter_frame_init`).
pub(crate) fn filter_levels(hdr: &FrameHeader) -> [[[u8; 4]; 4]; 4] {
    let mut out = [[[0u8; 4]; 4]; 4];
    let clamp = |v: i32| v.clamp(0, 63) as u8;
    for (seg, lv) in out.iter_mut().enumerate() {
        let mut level = hdr.filter_level as i32;
        if hdr.segmentation_enabled {
            let f = hdr.segment_features.filter_level[seg] as i32;
            level = if hdr.segment_features.absolute {
                f
            } else {
                level + f
            };
            level = level.clamp(0, 63);
        }
        if !hdr.filter_deltas_enabled {
            *lv = [[level as u8; 4]; 4];
            continue;
        }
        let d = &hdr.filter_deltas;
        let intra = level + d.ref_frame[0] as i32;
        lv[0][0] = clamp(intra + d.mode[0] as i32);
        lv[0][1] = clamp(intra);
        for r in 1..4 {
            let l = level + d.ref_frame[r] as i32;
            for m in 1..4 {
                lv[r][m] = clamp(l + d.mode[m] as i32);
            }
        }
    }
    out
}

/// The mode class that indexes the loop filter mode deltas.
pub(crate) fn mode_class(y_mode: LumaMode) -> usize {
    match y_mode {
        LumaMode::B => 0,
        LumaMode::Dc | LumaMode::V | LumaMode::H | LumaMode::Tm | LumaMode::ZeroMv => 1,
        LumaMode::NearestMv | LumaMode::NearMv | LumaMode::NewMv => 2,
        LumaMode::SplitMv => 3,
    }
}

/// Loop filters a reconstructed frame in place (RFC 6386 section 15).
pub(crate) fn apply_loop_filter(
    pic: &mut Picture,
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
) {
    let rows = mbs.len() / mb_cols.max(1);
    let [y, u, v] = &mut pic.planes;
    FrameFilter::new(hdr, mbs, skips, mb_cols).filter_rows(y, Some((u, v)), 0..rows);
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
            let row = mb_y * mb_cols..(mb_y + 1) * mb_cols;
            let uv = uv.as_mut().map(|(u, v)| (&mut **u, &mut **v));
            let (mbs, skips) = (&self.mbs[row.clone()], &self.skips[row]);
            self.filter_row(y, uv, mb_y, mbs, skips, &mut limits);
        }
    }

    /// Filters macroblock row `mb_y` as [`FrameFilter::filter_rows`]
    /// does, given the row's records `mbs` and "no coefficients" flags
    /// `skips` (the threaded decoder keeps them per row, not per frame)
    /// and a cache of limits per level.
    pub(crate) fn filter_row(
        &self,
        y: &mut PlaneBuf,
        mut uv: Option<(&mut PlaneBuf, &mut PlaneBuf)>,
        mb_y: usize,
        mbs: &[MbInfo],
        skips: &[bool],
        limits: &mut [Option<EdgeLimits>; 64],
    ) {
        for (mb_x, (mb, &skip)) in mbs.iter().zip(skips).enumerate() {
            let uv = uv.as_mut().map(|(u, v)| (&mut **u, &mut **v));
            self.filter_mb(y, uv, mb_x, mb_y, mb, skip, limits);
        }
    }

    /// Filters macroblock (`mb_x`, `mb_y`), whose record is `mb` and
    /// which had no coefficients if `skip`: one step of
    /// [`FrameFilter::filter_row`] (the threaded decoder filters each
    /// macroblock as soon as the row above lets it).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn filter_mb(
        &self,
        y: &mut PlaneBuf,
        uv: Option<(&mut PlaneBuf, &mut PlaneBuf)>,
        mb_x: usize,
        mb_y: usize,
        mb: &MbInfo,
        skip: bool,
        limits: &mut [Option<EdgeLimits>; 64],
    ) {
        let level =
            self.levels[mb.segment as usize & 3][mb.ref_frame.index()][mode_class(mb.y_mode)];
        if level == 0 {
            return;
        }
        // Inner edges unless nothing was coded and the mode has a Y2
        // block (RFC 6386 section 15.1).
        let inner = !(skip && mb.y_mode.has_y2());
        let lim = *limits[usize::from(level & 63)]
            .get_or_insert_with(|| edge_limits(level, self.sharpness, self.key_frame, self.simple));
        let (left, top) = (mb_x > 0, mb_y > 0);
        let pos = y.index(mb_x as isize * 16, mb_y as isize * 16);
        if self.simple {
            filter_mb_simple(&mut y.data, pos, y.stride, &lim, left, top, inner);
            return;
        }
        filter_mb_normal(&mut y.data, pos, y.stride, 16, &lim, left, top, inner);
        if let Some((u, v)) = uv {
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
