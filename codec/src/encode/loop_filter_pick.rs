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

/// Squared error between the source luma and a picture's luma plane, by
/// macroblock with the dispatched kernel (both planes are whole
/// macroblocks).
fn luma_sse(p: &PlaneBuf, src: &PlaneBuf) -> u64 {
    let mut sse = 0u64;
    for y in (0..src.height).step_by(16) {
        for x in (0..src.width).step_by(16) {
            sse += crate::encode::sad::sse(
                &src.data,
                y * src.stride + x,
                src.stride,
                &p.data,
                p.index(x as isize, y as isize),
                p.stride,
                16,
                16,
            );
        }
    }
    sse
}

/// Loop filters only the luma of `pic` into `out` at `hdr`'s level: the
/// luma the decoder's [`crate::loop_filter::apply_loop_filter`] would leave
/// (through the same driver; chroma never affects it), without copying or
/// filtering chroma.
fn filter_luma(
    out: &mut PlaneBuf,
    pic: &Picture,
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
) {
    out.data.copy_from_slice(&pic.planes[0].data);
    let rows = mbs.len() / mb_cols.max(1);
    FrameFilter::new(hdr, mbs, skips, mb_cols).filter_rows(out, None, 0..rows);
}

/// Searches levels around the guess and returns the one whose filtered
/// luma is closest to the source. Fast speeds take the guess.
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
    let mut trial = pic.planes[0].clone();
    let mut cache: Vec<(u8, u64)> = Vec::new();
    let mut eval = |level: u8, cache: &mut Vec<(u8, u64)>| -> u64 {
        if let Some(&(_, e)) = cache.iter().find(|(l, _)| *l == level) {
            return e;
        }
        let e = if level == 0 {
            luma_sse(&pic.planes[0], &src[0])
        } else {
            h.filter_level = level;
            filter_luma(&mut trial, pic, &h, mbs, skips, mb_cols);
            luma_sse(&trial, &src[0])
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
