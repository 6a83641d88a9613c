//! Choosing the loop filter level by measuring the filtered
//! reconstruction's error against the source.

use crate::decode::apply_loop_filter;
use crate::encode::EncodeParams;
use crate::header::FrameHeader;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};

/// A starting level from the quantizer, close to what the search finds on
/// typical camera footage.
fn guess(q_index: u8) -> u8 {
    ((q_index as u32 * 40) / 127 + 2).min(63) as u8
}

fn luma_sse(pic: &Picture, src: &PlaneBuf) -> u64 {
    let p = &pic.planes[0];
    let mut sse = 0u64;
    for y in 0..src.height {
        let a = &src.data[y * src.stride..y * src.stride + src.width];
        let i = p.index(0, y as isize);
        let b = &p.data[i..i + src.width];
        sse += a
            .iter()
            .zip(b)
            .map(|(&x, &y)| ((x as i32 - y as i32).pow(2)) as u64)
            .sum::<u64>();
    }
    sse
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
    let mut cache: Vec<(u8, u64)> = Vec::new();
    let mut eval = |level: u8, cache: &mut Vec<(u8, u64)>| -> u64 {
        if let Some(&(_, e)) = cache.iter().find(|(l, _)| *l == level) {
            return e;
        }
        let e = if level == 0 {
            luma_sse(pic, &src[0])
        } else {
            let mut trial = pic.clone();
            h.filter_level = level;
            apply_loop_filter(&mut trial, &h, mbs, skips, mb_cols);
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
