//! Macroblock reconstruction: intra and inter prediction into the picture
//! being built, plus the inverse transforms of the residual (RFC 6386
//! sections 12, 14 and 18). The encoder reconstructs with this same code,
//! so its references match the decoder's by construction.

use crate::idct;
use crate::inter_pred;
use crate::intra_pred;
use crate::modes::{MbInfo, MotionVector};
use crate::picture::{Picture, PlaneBuf};
use crate::prediction::{LumaMode, RefFrame};
use crate::tokens::MbCoeffs;

/// Which sub-pixel filter a frame's version selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubpelFilter {
    /// Six-tap filters (version 0).
    SixTap,
    /// Bilinear filters (versions 1 and 2).
    Bilinear,
    /// Bilinear luma, whole-pixel chroma (version 3).
    BilinearFullPixelChroma,
}

impl SubpelFilter {
    /// The filter of a bitstream version (libvpx treats 4..7 like 0).
    pub fn for_version(version: u8) -> Self {
        match version {
            1 | 2 => SubpelFilter::Bilinear,
            3 => SubpelFilter::BilinearFullPixelChroma,
            _ => SubpelFilter::SixTap,
        }
    }
}

/// Prepares a picture under construction for intra prediction: the row
/// above the picture reads as 127 and the column left of it as 129, as in
/// libvpx (`vp8_setup_intra_recon`).
pub fn init_intra_borders(pic: &mut Picture) {
    for p in pic.planes.iter_mut() {
        let w = p.width;
        let start = p.index(-1, -1);
        // The above row extends 4 pixels past the right edge for the
        // above-right pixels of the last macroblock.
        let end = (start + w + 5).min(p.data.len());
        p.data[start..end].fill(127);
        for y in 0..p.height {
            let i = p.index(-1, y as isize);
            p.data[i] = 129;
        }
    }
}

/// After a macroblock row is reconstructed, copies its last pixel of
/// the bottom luma row into the 4 pixels right of the picture: they are
/// the above-right pixels of the next row's last macroblock.
pub fn extend_row_right(pic: &mut Picture, mb_y: usize) {
    let p = &mut pic.planes[0];
    let y = (mb_y * 16 + 15) as isize;
    let i = p.index(p.width as isize - 1, y);
    let v = p.data[i];
    p.data[i + 1..i + 5].fill(v);
}

/// Adds the residual of one 4x4 block at `pos`: the whole inverse DCT
/// when AC coefficients follow (`eob > 1`), else the DC alone. The
/// encoder's B_PRED search and rebase reconstruct sub-blocks with it too.
#[inline]
pub(crate) fn add_block(coeffs: &[i16; 16], eob: u8, dst: &mut [u8], pos: usize, stride: usize) {
    if eob > 1 {
        idct::idct4x4_add(coeffs, dst, pos, stride);
    } else if coeffs[0] != 0 {
        idct::idct_dc_add(coeffs[0], dst, pos, stride);
    }
}

/// Reconstructs one macroblock in place. `coeffs` is `None` when the
/// macroblock has no residual.
pub fn reconstruct_mb(
    pic: &mut Picture,
    refs: Option<&crate::state::References>,
    filter: SubpelFilter,
    mb: &MbInfo,
    coeffs: Option<&mut MbCoeffs>,
    mb_x: usize,
    mb_y: usize,
) {
    if mb.ref_frame == RefFrame::Intra {
        predict_intra_chroma(pic, mb, mb_x, mb_y);
        if mb.y_mode == LumaMode::B {
            predict_and_add_bpred(pic, mb, coeffs.as_deref(), mb_x, mb_y);
            if let Some(c) = coeffs {
                add_chroma(pic, c, mb_x, mb_y);
            }
            return;
        }
        predict_intra_luma(pic, mb, mb_x, mb_y);
    } else if let Some(refs) = refs {
        predict_inter(pic, refs.get(mb.ref_frame), filter, mb, mb_x, mb_y);
    }
    if let Some(c) = coeffs {
        add_residual(pic, mb, c, mb_x, mb_y);
    }
}

/// Adds the residual of a macroblock that is not B_PRED to the prediction
/// already in `pic` (the second half of [`reconstruct_mb`]).
pub fn add_residual(pic: &mut Picture, mb: &MbInfo, c: &mut MbCoeffs, mb_x: usize, mb_y: usize) {
    let y = &mut pic.planes[0];
    let stride = y.stride;
    let base = y.index(mb_x as isize * 16, mb_y as isize * 16);
    if mb.y_mode != LumaMode::SplitMv {
        // The Y2 block carries the luma DCs.
        let dcs = if c.eobs[24] > 1 {
            idct::iwht4x4(&c.blocks[24])
        } else {
            [((c.blocks[24][0] as i32 + 3) >> 3) as i16; 16]
        };
        for (b, dc) in dcs.iter().enumerate() {
            c.blocks[b][0] = *dc;
        }
    }
    for row in 0..4 {
        let pos = base + row * 4 * stride;
        add_block_row::<4>(c, 4 * row, &mut y.data, pos, stride);
    }
    add_chroma(pic, c, mb_x, mb_y);
}

/// Adds the residual of the `N` blocks from `first` on, side by side at
/// `pos`: all at once when none has more than a DC (common after a Y2
/// block), else block by block.
#[inline]
fn add_block_row<const N: usize>(
    c: &MbCoeffs,
    first: usize,
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) {
    let eobs = &c.eobs[first..first + N];
    if eobs.iter().all(|&e| e <= 1) {
        let dcs: [i16; N] = core::array::from_fn(|i| c.blocks[first + i][0]);
        if dcs.iter().any(|&dc| dc != 0) {
            idct::idct_dc_add_row(&dcs, dst, pos, stride);
        }
        return;
    }
    for (i, &eob) in eobs.iter().enumerate() {
        add_block(&c.blocks[first + i], eob, dst, pos + 4 * i, stride);
    }
}

fn add_chroma(pic: &mut Picture, c: &MbCoeffs, mb_x: usize, mb_y: usize) {
    for (pl, first) in [(1usize, 16usize), (2, 20)] {
        let p = &mut pic.planes[pl];
        let stride = p.stride;
        let base = p.index(mb_x as isize * 8, mb_y as isize * 8);
        for row in 0..2 {
            let pos = base + row * 4 * stride;
            add_block_row::<2>(c, first + 2 * row, &mut p.data, pos, stride);
        }
    }
}

pub(crate) fn edges<const N: usize>(p: &PlaneBuf, x: usize, y: usize) -> ([u8; N], [u8; N], u8) {
    let stride = p.stride;
    let top = p.index(x as isize, y as isize - 1);
    let mut above = [0u8; N];
    above.copy_from_slice(&p.data[top..top + N]);
    let mut left = [0u8; N];
    for (i, l) in left.iter_mut().enumerate() {
        *l = p.data[top + stride * (i + 1) - 1];
    }
    (above, left, p.data[top - 1])
}

fn predict_intra_luma(pic: &mut Picture, mb: &MbInfo, mb_x: usize, mb_y: usize) {
    let p = &mut pic.planes[0];
    let (x, y) = (mb_x * 16, mb_y * 16);
    let (above, left, tl) = edges::<16>(p, x, y);
    let pos = p.index(x as isize, y as isize);
    let stride = p.stride;
    intra_pred::predict_luma16(
        mb.y_mode,
        &above,
        &left,
        tl,
        mb_y > 0,
        mb_x > 0,
        &mut p.data,
        pos,
        stride,
    );
}

/// Predicts both chroma planes of an intra macroblock with its chroma mode.
pub(crate) fn predict_intra_chroma(pic: &mut Picture, mb: &MbInfo, mb_x: usize, mb_y: usize) {
    for p in pic.planes[1..].iter_mut() {
        let (x, y) = (mb_x * 8, mb_y * 8);
        let (above, left, tl) = edges::<8>(p, x, y);
        let pos = p.index(x as isize, y as isize);
        let stride = p.stride;
        intra_pred::predict_chroma8(
            mb.uv_mode,
            &above,
            &left,
            tl,
            mb_y > 0,
            mb_x > 0,
            &mut p.data,
            pos,
            stride,
        );
    }
}

fn predict_and_add_bpred(
    pic: &mut Picture,
    mb: &MbInfo,
    coeffs: Option<&MbCoeffs>,
    mb_x: usize,
    mb_y: usize,
) {
    let p = &mut pic.planes[0];
    let stride = p.stride;
    let (x0, y0) = (mb_x * 16, mb_y * 16);
    let above_right_mb = above_right_of_mb(p, x0, y0);
    for b in 0..16 {
        let (above, left, tl, pos) = subblock_edges(p, x0, y0, b, &above_right_mb);
        intra_pred::predict_4x4(mb.b_modes[b], &above, &left, tl, &mut p.data, pos, stride);
        if let Some(c) = coeffs {
            add_block(&c.blocks[b], c.eobs[b], &mut p.data, pos, stride);
        }
    }
}

/// The four pixels above and right of the macroblock at (`x0`, `y0`):
/// the above-right edge of every subblock in its right column, even below
/// the first subblock row (RFC 6386 section 12.3).
pub(crate) fn above_right_of_mb(p: &PlaneBuf, x0: usize, y0: usize) -> [u8; 4] {
    let i = p.index(x0 as isize + 16, y0 as isize - 1);
    let mut ar = [0u8; 4];
    ar.copy_from_slice(&p.data[i..i + 4]);
    ar
}

/// The prediction edges of luma subblock `b` of the macroblock at
/// (`x0`, `y0`): above (4) and above-right (4) pixels, left pixels, the
/// top-left pixel, and the index of the subblock's first pixel.
pub(crate) fn subblock_edges(
    p: &PlaneBuf,
    x0: usize,
    y0: usize,
    b: usize,
    above_right_mb: &[u8; 4],
) -> ([u8; 8], [u8; 4], u8, usize) {
    let (bx, by) = (b & 3, b >> 2);
    let stride = p.stride;
    let top = p.index((x0 + bx * 4) as isize, (y0 + by * 4) as isize - 1);
    let mut above = [0u8; 8];
    above[..4].copy_from_slice(&p.data[top..top + 4]);
    if bx == 3 && by > 0 {
        above[4..].copy_from_slice(above_right_mb);
    } else {
        above[4..].copy_from_slice(&p.data[top + 4..top + 8]);
    }
    let mut left = [0u8; 4];
    for (i, l) in left.iter_mut().enumerate() {
        *l = p.data[top + stride * (i + 1) - 1];
    }
    (above, left, p.data[top - 1], top + stride)
}

/// Predicts a `w` x `h` block at plane position (`x`, `y`) displaced by
/// (`dx`, `dy`) whole pixels plus (`fx`, `fy`) eighths, reading as if the
/// reference extended its edge pixels without limit.
#[allow(clippy::too_many_arguments)]
fn predict_block(
    src: &PlaneBuf,
    dst: &mut PlaneBuf,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    d: (isize, isize),
    f: (usize, usize),
    sixtap: bool,
) {
    let dpos = dst.index(x as isize, y as isize);
    let dstride = dst.stride;
    predict_block_into(src, x, y, w, h, d, f, sixtap, &mut dst.data, dpos, dstride);
}

/// Like `predict_block`, into any buffer (the encoder predicts into
/// scratch blocks while it searches).
#[allow(clippy::too_many_arguments)]
pub(crate) fn predict_block_into(
    src: &PlaneBuf,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    (dx, dy): (isize, isize),
    (fx, fy): (usize, usize),
    sixtap: bool,
    dst: &mut [u8],
    dpos: usize,
    dstride: usize,
) {
    let sx = x as isize + dx;
    let sy = y as isize + dy;
    let b = src.border as isize;
    // Rows and columns the filters may touch: 2 before, 3 after.
    let inside = sx - 2 >= -b
        && sy - 2 >= -b
        && sx + w as isize + 3 <= src.width as isize + b
        && sy + h as isize + 3 <= src.height as isize + b;
    // Only the rare far-outside case needs the gather buffer; leaving it
    // uninitialised otherwise saves clearing 441 bytes per block.
    let mut tmp;
    let (buf, pos, stride): (&[u8], usize, usize) = if inside {
        (&src.data, src.index(sx, sy), src.stride)
    } else {
        // Far outside: gather with clamped coordinates.
        tmp = [0u8; 21 * 21];
        let tw = w + 5;
        for r in 0..h + 5 {
            let yy = (sy - 2 + r as isize).clamp(-b, src.height as isize + b - 1);
            for c in 0..tw {
                let xx = (sx - 2 + c as isize).clamp(-b, src.width as isize + b - 1);
                tmp[r * tw + c] = src.data[src.index(xx, yy)];
            }
        }
        (&tmp, 2 * tw + 2, tw)
    };
    if fx == 0 && fy == 0 {
        inter_pred::copy_block(buf, pos, stride, w, h, dst, dpos, dstride);
    } else if sixtap {
        inter_pred::sixtap(buf, pos, stride, fx, fy, w, h, dst, dpos, dstride);
    } else {
        inter_pred::bilinear(buf, pos, stride, fx, fy, w, h, dst, dpos, dstride);
    }
}

/// Splits a luma vector (quarter pixels) into whole pixels and eighths.
pub(crate) fn luma_offset(v: i16) -> (isize, usize) {
    ((v >> 2) as isize, ((v & 3) * 2) as usize)
}

/// Splits a chroma vector (eighth pixels) into whole pixels and eighths.
pub(crate) fn chroma_offset(v: i32) -> (isize, usize) {
    ((v >> 3) as isize, (v & 7) as usize)
}

/// The chroma half of the inter prediction of a macroblock that is not
/// SPLITMV (vector `mv`), into `pu` and `pv`: for the encoder, which may
/// have the luma prediction from elsewhere.
pub(crate) fn predict_inter_chroma16(
    pu: &mut PlaneBuf,
    pv: &mut PlaneBuf,
    reference: &Picture,
    filter: SubpelFilter,
    mv: MotionVector,
    mb_x: usize,
    mb_y: usize,
) {
    let sixtap = filter == SubpelFilter::SixTap;
    let full_pixel = filter == SubpelFilter::BilinearFullPixelChroma;
    // Chroma vectors are the luma ones in eighths of a chroma pixel.
    let mut cmv = [mv.col as i32, mv.row as i32];
    if full_pixel {
        cmv = cmv.map(|v| v & !7);
    }
    let (dx, fx) = chroma_offset(cmv[0]);
    let (dy, fy) = chroma_offset(cmv[1]);
    for (src, dst) in [(&reference.planes[1], pu), (&reference.planes[2], pv)] {
        predict_block(
            src,
            dst,
            mb_x * 8,
            mb_y * 8,
            8,
            8,
            (dx, dy),
            (fx, fy),
            sixtap,
        );
    }
}

fn predict_inter(
    pic: &mut Picture,
    reference: &Picture,
    filter: SubpelFilter,
    mb: &MbInfo,
    mb_x: usize,
    mb_y: usize,
) {
    let sixtap = filter == SubpelFilter::SixTap;
    let full_pixel = filter == SubpelFilter::BilinearFullPixelChroma;
    let (x0, y0) = (mb_x * 16, mb_y * 16);
    let [py, pu, pv] = &mut pic.planes;
    if mb.y_mode != LumaMode::SplitMv {
        let (dx, fx) = luma_offset(mb.mv.col);
        let (dy, fy) = luma_offset(mb.mv.row);
        predict_block(
            &reference.planes[0],
            py,
            x0,
            y0,
            16,
            16,
            (dx, dy),
            (fx, fy),
            sixtap,
        );
        predict_inter_chroma16(pu, pv, reference, filter, mb.mv, mb_x, mb_y);
        return;
    }
    // Each pixel's prediction depends only on its position and vector,
    // so an 8x8 quadrant whose four vectors agree (every quadrant of the
    // 16x8, 8x16 and 8x8 partitionings) is predicted as one block, as
    // libvpx does, instead of four 4x4 ones.
    let luma = |b: usize, size: usize, py: &mut PlaneBuf| {
        let mv: MotionVector = mb.mvs[b];
        let (dx, fx) = luma_offset(mv.col);
        let (dy, fy) = luma_offset(mv.row);
        let (x, y) = (x0 + (b & 3) * 4, y0 + (b >> 2) * 4);
        predict_block(
            &reference.planes[0],
            py,
            x,
            y,
            size,
            size,
            (dx, dy),
            (fx, fy),
            sixtap,
        );
    };
    for k in [0, 2, 8, 10] {
        let quad = [k, k + 1, k + 4, k + 5];
        if quad.iter().all(|&b| mb.mvs[b] == mb.mvs[k]) {
            luma(k, 8, py);
        } else {
            for b in quad {
                luma(b, 4, py);
            }
        }
    }
    // Each chroma 4x4 block takes the average vector of the four luma
    // blocks it covers, rounded half away from zero (libvpx build_uvmvs).
    let cmvs: [[i32; 2]; 4] = core::array::from_fn(|q| {
        let k = (q >> 1) * 8 + (q & 1) * 2;
        let avg = |f: fn(&MotionVector) -> i16| {
            let sum: i32 = [k, k + 1, k + 4, k + 5]
                .iter()
                .map(|&b| f(&mb.mvs[b]) as i32 * 2)
                .sum();
            let r = (sum + 4 * sum.signum().max(0) - 4 * (sum < 0) as i32) / 8;
            if full_pixel {
                r & !7
            } else {
                r
            }
        };
        [avg(|m| m.col), avg(|m| m.row)]
    });
    // One 8x8 block per plane when the four vectors agree.
    let (count, size) = if cmvs.iter().all(|v| *v == cmvs[0]) {
        (1, 8)
    } else {
        (4, 4)
    };
    for (q, &[c, r]) in cmvs.iter().enumerate().take(count) {
        let (dx, fx) = chroma_offset(c);
        let (dy, fy) = chroma_offset(r);
        let (x, y) = (x0 / 2 + (q & 1) * 4, y0 / 2 + (q >> 1) * 4);
        for (src, dst) in [
            (&reference.planes[1], &mut *pu),
            (&reference.planes[2], &mut *pv),
        ] {
            predict_block(src, dst, x, y, size, size, (dx, dy), (fx, fy), sixtap);
        }
    }
}
