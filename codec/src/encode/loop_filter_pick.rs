//! Choosing the loop filter level by measuring the filtered
//! reconstruction's error against the source.

use crate::encode::workers::Workers;
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
///
/// The levels of each round of the search (the guess with its first
/// neighbours, then the neighbours of each new best) are measured
/// together on `workers`: the serial search measures the same ones.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pick_filter_level(
    pic: &Picture,
    src: &[PlaneBuf; 3],
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
    params: &EncodeParams,
    workers: Workers,
) -> u8 {
    let g = guess(hdr.quant.q_index);
    if params.speed >= 6 {
        return g;
    }
    let eval = |level: u8| -> u64 {
        if level == 0 {
            return luma_sse(&pic.planes[0], &src[0]);
        }
        let mut h = hdr.clone();
        h.filter_level = level;
        let luma = &pic.planes[0];
        let mut trial = TRIAL
            .with(|t| t.take())
            .filter(|t| {
                (t.width, t.height, t.border, t.stride, t.top, t.y0)
                    == (
                        luma.width,
                        luma.height,
                        luma.border,
                        luma.stride,
                        luma.top,
                        luma.y0,
                    )
                    && t.data.len() == luma.data.len()
            })
            .unwrap_or_else(|| luma.clone());
        filter_luma(&mut trial, pic, &h, mbs, skips, mb_cols);
        let e = luma_sse(&trial, &src[0]);
        TRIAL.with(|t| t.set(Some(trial)));
        e
    };
    let mut cache: Vec<(u8, u64)> = Vec::new();
    // Measures the levels of `want` not measured yet, all at once.
    let measure = |want: &[i32], cache: &mut Vec<(u8, u64)>| {
        let mut todo: Vec<u8> = Vec::new();
        for &l in want {
            if (0..=63).contains(&l)
                && !cache.iter().any(|c| c.0 as i32 == l)
                && !todo.contains(&(l as u8))
            {
                todo.push(l as u8);
            }
        }
        let errors = workers.run(todo.len(), |i| eval(todo[i]));
        cache.extend(todo.into_iter().zip(errors));
    };
    let lookup = |cache: &[(u8, u64)], l: u8| cache.iter().find(|c| c.0 == l).expect("measured").1;
    // Each trial filters the whole frame; the guess is usually within a
    // few levels of the best, and wider first steps measured no better.
    let mut step: i32 = if params.speed <= 2 { 2 } else { 1 };
    measure(&[g as i32, g as i32 - step, g as i32 + step], &mut cache);
    let mut best = g;
    let mut best_e = lookup(&cache, g);
    while step >= 1 {
        let mut improved = true;
        while improved {
            improved = false;
            let cands = [best as i32 - step, best as i32 + step];
            measure(&cands, &mut cache);
            for cand in cands {
                if !(0..=63).contains(&cand) {
                    continue;
                }
                let e = lookup(&cache, cand as u8);
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

thread_local! {
    /// A luma plane to filter trials in, kept between the trials a
    /// thread measures (a fresh one costs its page faults each time).
    static TRIAL: std::cell::Cell<Option<PlaneBuf>> = const { std::cell::Cell::new(None) };
}
