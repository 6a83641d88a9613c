//! Choosing the loop filter level by measuring the filtered
//! reconstruction's error against the source.

use crate::encode::EncodeParams;
use crate::header::FrameHeader;
use crate::loop_filter::FrameFilter;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};

/// A starting level from the quantizer, close to what the search finds on
/// typical camera footage.
fn guess(q_index: u8) -> u8 {
    ((q_index as u32 * 40) / 127 + 2).min(63) as u8
}

/// Squared error between a source plane and a picture's plane, in
/// `block` x `block` squares with the dispatched kernel (both planes are
/// whole macroblocks: 16 for luma, 8 for chroma).
fn plane_sse(p: &PlaneBuf, src: &PlaneBuf, block: usize) -> u64 {
    let mut sse = 0u64;
    for y in (0..src.height).step_by(block) {
        for x in (0..src.width).step_by(block) {
            sse += crate::encode::sad::sse(
                &src.data,
                y * src.stride + x,
                src.stride,
                &p.data,
                p.index(x as isize, y as isize),
                p.stride,
                block,
                block,
            );
        }
    }
    sse
}

/// Squared error of all three planes against the source: what PSNR
/// "overall" counts (each sample alike).
fn frame_sse(planes: &[PlaneBuf; 3], src: &[PlaneBuf; 3]) -> u64 {
    plane_sse(&planes[0], &src[0], 16)
        + plane_sse(&planes[1], &src[1], 8)
        + plane_sse(&planes[2], &src[2], 8)
}

/// Loop filters `pic` into `out` at `hdr`'s level: the planes the
/// decoder's [`crate::loop_filter::apply_loop_filter`] would leave
/// (through the same driver), without touching `pic`.
fn filter_into(
    out: &mut [PlaneBuf; 3],
    pic: &Picture,
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
) {
    for (o, p) in out.iter_mut().zip(&pic.planes) {
        o.data.copy_from_slice(&p.data);
    }
    let rows = mbs.len() / mb_cols.max(1);
    let [y, u, v] = out;
    FrameFilter::new(hdr, mbs, skips, mb_cols).filter_rows(y, Some((u, v)), 0..rows);
}

/// Searches levels around the guess and returns the one whose filtered
/// picture is closest to the source, chroma included. libvpx measures
/// luma only; the level filters chroma too, and on a static camera a
/// level that luma finds harmless smooths the chroma of every skipped
/// macroblock again each frame (rd-harness --anchor best, 18 clips:
/// mean BD-rate -0.14 PSNR, -0.37 SSIM, benches/README.md, quality6).
/// Fast speeds take the guess.
pub(crate) fn pick_filter_level(
    pic: &Picture,
    src: &[PlaneBuf; 3],
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
    params: &EncodeParams,
) -> u8 {
    let g = guess(hdr.quant.q_index);
    if params.speed >= 6 {
        return g;
    }
    let mut h = hdr.clone();
    let mut trial = pic.planes.clone();
    let mut cache: Vec<(u8, u64)> = Vec::new();
    let mut eval = |level: u8, cache: &mut Vec<(u8, u64)>| -> u64 {
        if let Some(&(_, e)) = cache.iter().find(|(l, _)| *l == level) {
            return e;
        }
        let e = if level == 0 {
            frame_sse(&pic.planes, src)
        } else {
            h.filter_level = level;
            filter_into(&mut trial, pic, &h, mbs, skips, mb_cols);
            frame_sse(&trial, src)
        };
        cache.push((level, e));
        e
    };
    let mut best = g;
    let mut best_e = eval(g, &mut cache);
    // Each trial filters the whole frame; the guess is usually within a
    // few levels of the best, and wider first steps measured no better.
    let mut step: i32 = if params.speed <= 2 { 2 } else { 1 };
    while step >= 1 {
        let mut improved = true;
        while improved {
            improved = false;
            for cand in [best as i32 - step, best as i32 + step] {
                if !(0..=63).contains(&cand) {
                    continue;
                }
                let e = eval(cand as u8, &mut cache);
                if e < best_e {
                    best_e = e;
                    best = cand as u8;
                    improved = true;
                }
            }
        }
        step /= 2;
    }
    best
}
