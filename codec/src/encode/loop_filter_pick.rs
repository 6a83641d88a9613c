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
            return frame_sse(&pic.planes, src);
        }
        let mut h = hdr.clone();
        h.filter_level = level;
        let mut trial = TRIAL
            .with(|t| t.take())
            .filter(|t| t.iter().zip(&pic.planes).all(|(t, p)| same_layout(t, p)))
            .unwrap_or_else(|| pic.planes.clone());
        filter_into(&mut trial, pic, &h, mbs, skips, mb_cols);
        let e = frame_sse(&trial, src);
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
    /// Planes to filter trials in, kept between the trials a thread
    /// measures (fresh ones cost their page faults each time).
    static TRIAL: std::cell::Cell<Option<[PlaneBuf; 3]>> = const { std::cell::Cell::new(None) };
}

/// Whether a kept trial plane can take `p`'s samples as they lie.
fn same_layout(t: &PlaneBuf, p: &PlaneBuf) -> bool {
    (t.width, t.height, t.border, t.stride, t.top, t.y0)
        == (p.width, p.height, p.border, p.stride, p.top, p.y0)
        && t.data.len() == p.data.len()
}
