//! The motion-compensated temporal filter that builds hidden alt-ref
//! frames (libvpx's ARNR, `vp8/encoder/temporal_filter.c`).
//!
//! An alt-ref frame is coded from a denoised version of a future frame:
//! every 16x16 block of the centre frame is matched in the frames around
//! it, and each pixel becomes a weighted mean of its matches, a match
//! counting less the more it differs (so edges and occlusions keep the
//! centre frame's pixels). Averaging removes the noise that no later
//! frame can predict, which makes the alt-ref a better reference for the
//! whole group than any one source frame.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::encode::workers::Workers;
use crate::image::{Image, Plane};

/// Block-match error (sum of squared deviations from the mean difference
/// over a 16x16 block) below which a match gets full weight: libvpx's
/// `THRESH_LOW`.
const THRESH_LOW: u64 = 10_000;
/// ... and below which it still gets half weight (`THRESH_HIGH`); above
/// it, the block of that frame is left out.
const THRESH_HIGH: u64 = 20_000;
/// Search range of the full-pel block match, in pixels each way.
const SEARCH_RANGE: i32 = 24;

/// Filter settings (vpxenc's `--arnr-maxframes`, `--arnr-strength`;
/// `--arnr-type` is always 3, centred).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArnrParams {
    /// Frames averaged, the centre one included: 1..=15.
    pub max_frames: u8,
    /// Filter strength 0..=6: a pixel difference `d` weighs
    /// `16 - min(16, 3 d^2 >> strength)`, so larger values average more.
    pub strength: u8,
}

/// The denoised `frames[center]`, averaged with up to
/// `params.max_frames - 1` frames around it (as many before as after, as
/// far as `frames` reaches). All frames must have the centre's size.
///
/// # Panics
///
/// If `center` is out of range or a frame's size differs; the encoder
/// checks sizes when frames are queued.
pub fn filter(frames: &[Image], center: usize, params: &ArnrParams) -> Image {
    let frames: Vec<&Image> = frames.iter().collect();
    filter_on(&frames, center, params, Workers::SERIAL)
}

/// [`filter`] of borrowed frames (the encoder's lookahead holds them)
/// with its macroblock rows shared among `workers`: each
/// row's block matches start from zero motion and its pixels are
/// averaged from its own blocks only, so a band of rows is filtered the
/// same wherever it runs and the picture is the same for any count.
pub(crate) fn filter_on(
    frames: &[&Image],
    center: usize,
    params: &ArnrParams,
    workers: Workers,
) -> Image {
    let c = frames[center];
    let half = (params.max_frames.max(1) as usize - 1) / 2;
    let back = half.min(center);
    let fwd = half.min(frames.len() - 1 - center);
    if back + fwd == 0 {
        return c.clone();
    }
    let others: Vec<&Image> = (center - back..=center + fwd)
        .filter(|&i| i != center)
        .map(|i| frames[i])
        .collect();
    let strength = params.strength.min(6) as u32;
    let mb_rows = c.height.div_ceil(16);
    // Bands of a few rows each, more than threads, so a thread that
    // finishes early takes another.
    let bands = (workers.count() * 4).min(mb_rows);
    let band = |i: usize| (i * mb_rows / bands)..((i + 1) * mb_rows / bands);
    let next = AtomicUsize::new(0);
    let done = workers.run(workers.count().min(bands), |_| {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= bands {
                return out;
            }
            out.push((i, filter_band(c, &others, strength, band(i))));
        }
    });
    let mut out = c.clone();
    for (i, lines) in done.into_iter().flatten() {
        let rows = band(i);
        for (p, lines) in lines.iter().enumerate() {
            let plane = &mut out.planes[p];
            let y0 = (rows.start * MB_LINES[p]).min(plane.height);
            plane.data[y0 * plane.stride..][..lines.len()].copy_from_slice(lines);
        }
    }
    out
}

/// Lines of one macroblock row per plane: luma, then chroma.
const MB_LINES: [usize; 3] = [16, 8, 8];

/// The filtered lines of macroblock rows `rows` of `c`, per plane (whole
/// lines of the plane's stride, up to its height): each block matched in
/// `others` and averaged as [`filter`] describes.
fn filter_band(c: &Image, others: &[&Image], strength: u32, rows: Range<usize>) -> [Vec<u8>; 3] {
    let lines = |p: usize| {
        let plane = &c.planes[p];
        (rows.start * MB_LINES[p]).min(plane.height)..(rows.end * MB_LINES[p]).min(plane.height)
    };
    let mut band = Band {
        first_mb_row: rows.start,
        acc: core::array::from_fn(|p| vec![0; lines(p).len() * c.planes[p].stride]),
        cnt: core::array::from_fn(|p| vec![0; lines(p).len() * c.planes[p].stride]),
    };
    let mb_cols = c.width.div_ceil(16);
    for mb_y in rows.clone() {
        let mut left_mv = (0, 0);
        for mb_x in 0..mb_cols {
            let (x0, y0) = ((mb_x * 16) as i32, (mb_y * 16) as i32);
            // The centre frame against itself: full weight.
            accumulate_block(c, c, (x0, y0), (0, 0), 2, strength, &mut band);
            for o in others {
                let (mv, err) = best_match(&c.planes[0], &o.planes[0], x0, y0, left_mv);
                left_mv = mv;
                let weight = if err < THRESH_LOW {
                    2
                } else if err < THRESH_HIGH {
                    1
                } else {
                    0
                };
                if weight > 0 {
                    accumulate_block(c, o, (x0, y0), mv, weight, strength, &mut band);
                }
            }
        }
    }
    core::array::from_fn(|p| {
        let plane = &c.planes[p];
        let lines = lines(p);
        let mut out = plane.data[lines.start * plane.stride..lines.end * plane.stride].to_vec();
        for ((px, &a), &n) in out.iter_mut().zip(&band.acc[p]).zip(&band.cnt[p]) {
            // Every picture pixel has at least the centre's own weight
            // (32); row padding has none and keeps its bytes.
            let n = n as u32;
            if let Some(v) = (a + n / 2).checked_div(n) {
                *px = v.min(255) as u8;
            }
        }
        out
    })
}

/// The accumulators of a band of macroblock rows starting at row
/// `first_mb_row`: per plane, weighted sums and weights of its lines.
struct Band {
    first_mb_row: usize,
    acc: [Vec<u32>; 3],
    cnt: [Vec<u16>; 3],
}

/// Reads `plane` at (x, y), clamped to its edges (the picture extended by
/// replicating its borders, as references are).
#[inline]
fn at(plane: &Plane, x: i32, y: i32) -> u8 {
    let x = x.clamp(0, plane.width as i32 - 1) as usize;
    let y = y.clamp(0, plane.height as i32 - 1) as usize;
    plane.data[y * plane.stride + x]
}

/// Sum of absolute differences of the 16x16 block at (x0, y0) in `a`
/// and at (x0 + mv) in `b`, giving up once past `limit`.
fn sad16(a: &Plane, b: &Plane, x0: i32, y0: i32, mv: (i32, i32), limit: u32) -> u32 {
    let inside = |p: &Plane, x: i32, y: i32| {
        x >= 0 && y >= 0 && x + 16 <= p.width as i32 && y + 16 <= p.height as i32
    };
    let (bx, by) = (x0 + mv.0, y0 + mv.1);
    let mut sad = 0u32;
    if inside(a, x0, y0) && inside(b, bx, by) {
        for r in 0..16 {
            let ra = &a.data[(y0 + r) as usize * a.stride + x0 as usize..][..16];
            let rb = &b.data[(by + r) as usize * b.stride + bx as usize..][..16];
            sad += ra
                .iter()
                .zip(rb)
                .map(|(&p, &q)| p.abs_diff(q) as u32)
                .sum::<u32>();
            if sad > limit {
                return sad;
            }
        }
    } else {
        for r in 0..16 {
            for col in 0..16 {
                let p = at(a, x0 + col, y0 + r);
                let q = at(b, bx + col, by + r);
                sad += p.abs_diff(q) as u32;
            }
            if sad > limit {
                return sad;
            }
        }
    }
    sad
}

/// The full-pel motion vector of the block at (x0, y0) of `a` in `b`
/// ([`search16`] from the vectors within [`NEAR_RANGE`] of zero and the
/// left block's vector) with its error: the sum of squared deviations of the
/// difference from its mean, libvpx's block variance.
fn best_match(a: &Plane, b: &Plane, x0: i32, y0: i32, hint: (i32, i32)) -> ((i32, i32), u64) {
    let (best, _, _) = search16(a, b, x0, y0, hint, NEAR_RANGE);
    let (mut sum, mut sse) = (0i64, 0u64);
    for r in 0..16 {
        for col in 0..16 {
            let d =
                at(a, x0 + col, y0 + r) as i64 - at(b, x0 + best.0 + col, y0 + best.1 + r) as i64;
            sum += d;
            sse += (d * d) as u64;
        }
    }
    (best, sse - (sum * sum / 256) as u64)
}

/// Half-width of the window around zero motion that the block match of
/// the filter ([`search16`]) searches exhaustively before its
/// logarithmic steps. rd-harness --anchor best, speed 0, q 10..50 on six
/// training clips: mean BD-rate PSNR / SSIM +10.88% / +18.75% -> +10.74%
/// / +18.37% against none (see benches/README.md).
const NEAR_RANGE: i32 = 2;

/// The full-pel motion vector of the 16x16 block at (x0, y0) of `a` in
/// `b` found by a logarithmic search (step 8 down to 1, within
/// +-24 pixels) from the best of the vectors within `near` pixels of
/// zero (searched exhaustively) and `hint` (the left block's vector),
/// with its SAD and the SAD at zero motion.
///
/// The exhaustive start matters on fine texture (text, cellular
/// automata, dither, sensor noise): there the SAD is no smooth function
/// of the vector, so the first step of 8 pixels lands on a random lower
/// SAD and the search never comes back to a one-pixel shift that matches
/// exactly. On ffmpeg's scrolling `cellauto` (one row per frame) the
/// search from zero alone found 0.8 of each frame carried over, where
/// 287 of 288 rows are; with `near` 2, 0.998.
pub(crate) fn search16(
    a: &Plane,
    b: &Plane,
    x0: i32,
    y0: i32,
    hint: (i32, i32),
    near: i32,
) -> ((i32, i32), u32, u32) {
    let mut best = (0, 0);
    let zero_sad = sad16(a, b, x0, y0, best, u32::MAX);
    let mut best_sad = zero_sad;
    for dy in -near..=near {
        for dx in -near..=near {
            if (dx, dy) == (0, 0) {
                continue;
            }
            let s = sad16(a, b, x0, y0, (dx, dy), best_sad);
            if s < best_sad {
                best = (dx, dy);
                best_sad = s;
            }
        }
    }
    if hint.0.abs().max(hint.1.abs()) > near {
        let s = sad16(a, b, x0, y0, hint, best_sad);
        if s < best_sad {
            best = hint;
            best_sad = s;
        }
    }
    let mut step = 8;
    while step >= 1 {
        let mut moved = true;
        while moved {
            moved = false;
            let centre = best;
            for (dx, dy) in [(step, 0), (-step, 0), (0, step), (0, -step)] {
                let mv = (centre.0 + dx, centre.1 + dy);
                if mv.0.abs() > SEARCH_RANGE || mv.1.abs() > SEARCH_RANGE {
                    continue;
                }
                let s = sad16(a, b, x0, y0, mv, best_sad);
                if s < best_sad {
                    best = mv;
                    best_sad = s;
                    moved = true;
                }
            }
        }
        step /= 2;
    }
    (best, best_sad, zero_sad)
}

/// `plane` at (x, y), or halfway to the next pixel right (`half.0`)
/// and/or down (`half.1`): the rounded mean of the pixels around that
/// point, clamped to the edges like [`at`].
#[inline]
fn sample_half(plane: &Plane, x: i32, y: i32, half: (bool, bool)) -> u32 {
    let (dx, dy) = (i32::from(half.0), i32::from(half.1));
    let sum = at(plane, x, y) as u32
        + at(plane, x + dx, y) as u32
        + at(plane, x, y + dy) as u32
        + at(plane, x + dx, y + dy) as u32;
    (sum + 2) / 4
}

/// Adds the block of `other` at `mv` from macroblock (x0, y0) to the
/// accumulators of all three planes with `weight` (0..=2) per pixel
/// times the closeness of each pixel to the centre's.
fn accumulate_block(
    centre: &Image,
    other: &Image,
    (x0, y0): (i32, i32),
    mv: (i32, i32),
    weight: u32,
    strength: u32,
    band: &mut Band,
) {
    let rounding = if strength > 0 { 1 << (strength - 1) } else { 0 };
    for p in 0..3 {
        // Chroma at half resolution: an odd luma vector lands halfway
        // between two chroma pixels, which are averaged (libvpx predicts
        // the filter's chroma at the vector's fractional position too).
        // Rounding the vector to whole chroma pixels instead misaligned
        // it by up to a pixel: rd-harness --anchor best, speed 0, six
        // training clips, mean BD-rate PSNR / SSIM +1.07% / +23.01% ->
        // +0.89% / +22.76%, no clip worse by 0.1 points.
        let (size, bx, by, mv, half) = if p == 0 {
            (16, x0, y0, mv, (false, false))
        } else {
            let half = (mv.0.rem_euclid(2) == 1, mv.1.rem_euclid(2) == 1);
            (
                8,
                x0 / 2,
                y0 / 2,
                (mv.0.div_euclid(2), mv.1.div_euclid(2)),
                half,
            )
        };
        let cp = &centre.planes[p];
        let op = &other.planes[p];
        let first_line = band.first_mb_row * MB_LINES[p];
        let x_end = (bx + size).min(cp.width as i32);
        for r in 0..size {
            let y = by + r;
            if y >= cp.height as i32 {
                break;
            }
            // The block's pixels of this line in the centre and in the
            // band's accumulators.
            let line = |v: usize| v * cp.stride + bx as usize..v * cp.stride + x_end as usize;
            let src = &cp.data[line(y as usize)];
            let acc = &mut band.acc[p][line(y as usize - first_line)];
            let cnt = &mut band.cnt[p][line(y as usize - first_line)];
            for (((x, &s), a), n) in (bx..x_end).zip(src).zip(acc).zip(cnt) {
                let v = sample_half(op, x + mv.0, y + mv.1, half);
                let d = (s as i32).abs_diff(v as i32);
                let m = ((3 * d * d + rounding) >> strength).min(16);
                let m = (16 - m) * weight;
                *a += m * v;
                *n += m as u16;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(w: usize, h: usize, seed: u32, shift: usize) -> Image {
        let mut f = Image::filled(w, h, [0, 128, 128]);
        let mut s = seed;
        for y in 0..h {
            for x in 0..w {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let noise = ((s >> 16) % 9) as i32 - 4;
                // A smooth gradient moving `shift` pixels right per frame.
                let base = (((x + 64 - shift) * 3 + y * 2) % 200) as i32 + 20;
                f.planes[0].data[y * f.planes[0].stride + x] = (base + noise) as u8;
            }
        }
        f
    }

    fn mse(a: &Image, b: &Image) -> f64 {
        let d: u64 = a.planes[0]
            .data
            .iter()
            .zip(&b.planes[0].data)
            .map(|(&p, &q)| (p as i64 - q as i64).pow(2) as u64)
            .sum();
        d as f64 / a.planes[0].data.len() as f64
    }

    /// Black and white cells (like ffmpeg's `cellauto`) scrolled up
    /// `scroll` rows: a fresh row enters at the bottom each frame.
    fn cells(w: usize, h: usize, scroll: usize) -> Image {
        let mut f = Image::filled(w, h, [0, 128, 128]);
        let p = &mut f.planes[0];
        for y in 0..h {
            let row = (y + scroll) as u64;
            for x in 0..w {
                let mut v = row.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x as u64 * 0xbf58_476d);
                v ^= v >> 29;
                v = v.wrapping_mul(0x94d0_49bb_1331_11eb);
                p.data[y * p.stride + x] = if (v >> 40) & 1 == 1 { 255 } else { 0 };
            }
        }
        f
    }

    #[test]
    fn a_one_row_shift_of_fine_texture_is_found() {
        let (cur, prev) = (cells(160, 128, 1), cells(160, 128, 0));
        let (a, b) = (&cur.planes[0], &prev.planes[0]);
        let (mut exact, mut exact_from_zero) = (0, 0);
        let mut blocks = 0;
        // Interior blocks: the bottom row holds the fresh row.
        for by in 0..7 {
            for bx in 0..10 {
                let (x0, y0) = (bx * 16, by * 16);
                blocks += 1;
                let (mv, sad, _) = search16(a, b, x0, y0, (0, 0), NEAR_RANGE);
                exact += usize::from(mv == (0, 1) && sad == 0);
                let (mv, sad, _) = search16(a, b, x0, y0, (0, 0), 0);
                exact_from_zero += usize::from(mv == (0, 1) && sad == 0);
            }
        }
        assert_eq!(exact, blocks);
        // The logarithmic search alone wanders off on most of them
        // (what the exhaustive start is for).
        assert!(exact_from_zero < blocks / 2, "{exact_from_zero}/{blocks}");
    }

    /// Frame `t` of a picture panning right one luma pixel per frame:
    /// fine luma texture (so the block match is exact) and a chroma ramp
    /// of 4 per chroma pixel, which moves half a chroma pixel per frame.
    fn panning(w: usize, h: usize, t: usize) -> Image {
        let mut f = Image::filled(w, h, [0, 128, 128]);
        for y in 0..h {
            for x in 0..w {
                let u = (x + 64 - t) as u64;
                let mut v = u.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (y as u64 * 0xbf58_476d);
                v ^= v >> 29;
                f.planes[0].data[y * f.planes[0].stride + x] =
                    (v.wrapping_mul(0x94d0_49bb) >> 56) as u8;
            }
        }
        for p in 1..3 {
            let pl = &mut f.planes[p];
            for y in 0..pl.height {
                for x in 0..pl.width {
                    // 4 * (x - t / 2): even frames on the pixels, odd
                    // ones halfway between.
                    pl.data[y * pl.stride + x] = (40 + 4 * x - 2 * t) as u8;
                }
            }
        }
        f
    }

    #[test]
    fn chroma_follows_a_half_pixel_vector() {
        // Only later frames, so a misalignment cannot cancel out between
        // frames before and after the centre.
        let frames: Vec<Image> = (0..4).map(|t| panning(64, 48, t)).collect();
        let p = ArnrParams {
            max_frames: 7,
            strength: 5,
        };
        let out = filter(&frames, 0, &p);
        for pl in 1..3 {
            let (got, want) = (&out.planes[pl], &frames[0].planes[pl]);
            // Away from the right edge, where the replicated border
            // breaks the ramp.
            for y in 0..got.height {
                for x in 0..got.width - 4 {
                    let i = y * got.stride + x;
                    assert_eq!(got.data[i], want.data[i], "plane {pl} at ({x}, {y})");
                }
            }
        }
    }

    /// Filtered in bands of rows on 2, 3 and 8 threads (kept or started
    /// per call), odd sizes included, the picture is the serial one.
    #[test]
    fn any_thread_count_filters_the_same_picture() {
        let pool = crate::encode::workers::helper_pool(3).unwrap();
        for (w, h) in [(64, 48), (75, 45), (17, 130), (200, 16)] {
            let frames: Vec<Image> = (0..7).map(|i| noisy(w, h, 3 + i as u32, i)).collect();
            let p = ArnrParams {
                max_frames: 7,
                strength: 5,
            };
            let one = filter(&frames, 3, &p);
            assert_ne!(one, frames[3], "{w}x{h}: the filter changed nothing");
            for threads in [2, 3, 8] {
                for pool in [None, Some(&*pool)] {
                    let refs: Vec<&Image> = frames.iter().collect();
                    let many = filter_on(&refs, 3, &p, Workers::new(threads, pool));
                    assert!(many == one, "{w}x{h}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn one_frame_or_zero_strength_window_is_the_centre() {
        let frames = vec![noisy(40, 24, 1, 0)];
        let p = ArnrParams {
            max_frames: 7,
            strength: 5,
        };
        assert_eq!(filter(&frames, 0, &p), frames[0]);
        let frames: Vec<Image> = (0..5).map(|i| noisy(40, 24, i, 0)).collect();
        let p = ArnrParams {
            max_frames: 1,
            strength: 5,
        };
        assert_eq!(filter(&frames, 2, &p), frames[2]);
    }

    /// Averaging moving, noisy frames brings the centre closer to the
    /// clean picture: the motion search must follow the shift.
    #[test]
    fn filtering_removes_noise_of_a_moving_picture() {
        let (w, h) = (64, 48);
        let frames: Vec<Image> = (0..7).map(|i| noisy(w, h, 7 + i as u32, i * 2)).collect();
        let clean = {
            let mut f = noisy(w, h, 0, 6);
            for y in 0..h {
                for x in 0..w {
                    f.planes[0].data[y * f.planes[0].stride + x] =
                        ((((x + 64 - 6) * 3 + y * 2) % 200) + 20) as u8;
                }
            }
            f
        };
        let p = ArnrParams {
            max_frames: 7,
            strength: 5,
        };
        let out = filter(&frames, 3, &p);
        let before = mse(&frames[3], &clean);
        let after = mse(&out, &clean);
        assert!(after < before * 0.6, "mse {before:.2} -> {after:.2}");
    }
}
