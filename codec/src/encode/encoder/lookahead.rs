//! First-pass-style statistics of the frames waiting in the lookahead,
//! and what the group planner derives from them: how long a golden group
//! runs, how much its reference frames are worth, where the content cuts.
//!
//! Each frame is compared with the one before it, luma only, per 16x16
//! block: an intra cost (the block's absolute deviation from its own
//! mean, a stand-in for DC prediction) and an inter cost (the SAD of the
//! best full-pel match found by a small logarithmic search). Their ratio
//! says how much of a frame is carried over from its predecessor, which
//! is what libvpx's `vp8/encoder/firstpass.c` calls the prediction decay
//! and x264's macroblock tree the propagate fraction: a reference frame
//! is worth coding finely in proportion to how many later frames inherit
//! it. Another source of statistics (a real first pass) can fill
//! [`FrameStats`] the same way.

use crate::encode::temporal_filter::{search16, ArnrParams};
use crate::encode::workers::Workers;
use crate::image::{Image, Plane};

use super::rate_control::{step, MIN_QI};

/// A frame its predecessor predicts no better than this share
/// ([`FrameStats::carry`]) is a scene-cut candidate: inter prediction
/// saves less than a fifth of the intra cost.
pub const CUT_MAX_CARRY: f64 = 0.2;

/// One frame's statistics against the frame before it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameStats {
    /// Sum over the luma blocks of their intra cost (absolute deviation
    /// from the block mean).
    pub intra: f64,
    /// Sum over the luma blocks of the best inter cost (SAD of the best
    /// full-pel match in the previous frame).
    pub inter: f64,
    /// Share of blocks (0..=1) whose zero-motion SAD is within 1/16 of the
    /// best match: the static part of the picture.
    pub zero_motion: f64,
    /// Mean length of the blocks' motion vectors, in pixels.
    pub motion: f64,
    /// Sum over the chroma blocks (8x8, both planes) of their intra cost,
    /// as [`intra`](Self::intra).
    pub chroma_intra: f64,
    /// Sum over the chroma blocks of their SAD against the previous frame
    /// at the luma block's vector (halved, rounded to full pels).
    pub chroma_inter: f64,
}

impl FrameStats {
    /// [`carry`](Self::carry) of the chroma planes: how much of this
    /// frame's chroma its predecessor predicts along the luma motion.
    pub fn chroma_carry(&self) -> f64 {
        if self.chroma_intra <= 0.0 {
            return 1.0;
        }
        (1.0 - self.chroma_inter / self.chroma_intra).clamp(0.0, 1.0)
    }

    /// How much of this frame its predecessor predicts, 0..=1: 1 when
    /// inter prediction costs nothing, 0 when it is no better than intra
    /// (a scene cut).
    pub fn carry(&self) -> f64 {
        if self.intra <= 0.0 {
            return 1.0;
        }
        (1.0 - self.inter / self.intra).clamp(0.0, 1.0)
    }
}

/// Statistics of `cur` against `prev` (same size).
pub fn frame_stats(prev: &Image, cur: &Image) -> FrameStats {
    frame_stats_on(prev, cur, Workers::SERIAL)
}

/// One block's measures, summed into [`FrameStats`] in raster order.
struct BlockStats {
    intra: u32,
    inter: u32,
    zero: bool,
    motion: f64,
    chroma_intra: u32,
    chroma_inter: u32,
}

/// [`frame_stats`] with the block rows measured on `workers` (each row's
/// search starts from zero motion) and summed in raster order on the
/// calling thread, so the floating-point sums are the same for any
/// count.
pub(crate) fn frame_stats_on(prev: &Image, cur: &Image, workers: Workers) -> FrameStats {
    let (a, b) = (&cur.planes[0], &prev.planes[0]);
    let (cols, rows) = (a.width / 16, a.height / 16);
    let mut s = FrameStats::default();
    if cols == 0 || rows == 0 {
        return s;
    }
    let row_stats = |by: usize| {
        let mut hint = (0, 0);
        (0..cols)
            .map(|bx| {
                let (x0, y0) = ((bx * 16) as i32, (by * 16) as i32);
                // No exhaustive start (`near` 0): the group planner's
                // thresholds were fitted on these statistics, and with
                // the temporal filter's start (+-2 pixels) the carries
                // rose a little and groups grew: rd-harness --anchor
                // best, speed 0, carphone_cif +12.04% -> +13.61%,
                // carphone_qcif +3.86% -> +6.34% (BD-rate PSNR),
                // although on fine texture (ffmpeg's scrolling cellauto)
                // the carry went from 0.8 to the true 0.998.
                let (mv, sad, zero_sad) = search16(a, b, x0, y0, hint, 0);
                hint = mv;
                let cmv = (half_round(mv.0), half_round(mv.1));
                let (mut chroma_intra, mut chroma_inter) = (0, 0);
                for p in 1..3 {
                    let (ca, cb) = (&cur.planes[p], &prev.planes[p]);
                    let (cx, cy) = (x0 as usize / 2, y0 as usize / 2);
                    chroma_intra += block_intra_cost(ca, cx, cy, 8);
                    chroma_inter += block_sad(ca, cb, cx, cy, cmv, 8);
                }
                BlockStats {
                    intra: intra_cost(a, x0 as usize, y0 as usize),
                    inter: sad,
                    zero: zero_sad <= sad + sad / 16,
                    motion: ((mv.0 * mv.0 + mv.1 * mv.1) as f64).sqrt(),
                    chroma_intra,
                    chroma_inter,
                }
            })
            .collect::<Vec<_>>()
    };
    let bands = workers.ranges(rows);
    let measured = workers.run(bands.len(), |i| {
        bands[i].clone().map(row_stats).collect::<Vec<_>>()
    });
    let mut zero = 0usize;
    let mut motion = 0.0;
    for block in measured.iter().flatten().flatten() {
        s.intra += block.intra as f64;
        s.inter += block.inter as f64;
        zero += usize::from(block.zero);
        motion += block.motion;
        // Whole numbers far below 2^53: exact in any grouping.
        s.chroma_intra += block.chroma_intra as f64;
        s.chroma_inter += block.chroma_inter as f64;
    }
    let n = (cols * rows) as f64;
    s.zero_motion = zero as f64 / n;
    s.motion = motion / n;
    s
}

/// Absolute deviation of the 16x16 block at (x0, y0) from its mean.
// Inlined so each call site's block size is a constant (measured:
// called, they cost 25% more instructions).
#[inline(always)]
fn intra_cost(p: &Plane, x0: usize, y0: usize) -> u32 {
    block_intra_cost(p, x0, y0, 16)
}

/// Absolute deviation of the `n` x `n` block at (x0, y0) from its mean.
// Inlined so each call site's block size is a constant (measured:
// called, they cost 25% more instructions).
#[inline(always)]
fn block_intra_cost(p: &Plane, x0: usize, y0: usize, n: usize) -> u32 {
    let rows = || (0..n).map(move |r| &p.data[(y0 + r) * p.stride + x0..][..n]);
    let sum: u32 = rows().flatten().map(|&v| v as u32).sum();
    let count = (n * n) as u32;
    let mean = ((sum + count / 2) / count) as u8;
    rows().flatten().map(|&v| v.abs_diff(mean) as u32).sum()
}

/// A luma vector component halved for chroma, rounded to the nearest
/// pixel (halves away from zero).
fn half_round(v: i32) -> i32 {
    (v + v.signum()) / 2
}

/// SAD of the `n` x `n` block at (x0, y0) of `a` against `b` at `mv`,
/// `b` read with its borders replicated.
// Inlined so each call site's block size is a constant (measured:
// called, they cost 25% more instructions).
#[inline(always)]
fn block_sad(a: &Plane, b: &Plane, x0: usize, y0: usize, mv: (i32, i32), n: usize) -> u32 {
    let at = |x: i32, y: i32| {
        let x = x.clamp(0, b.width as i32 - 1) as usize;
        let y = y.clamp(0, b.height as i32 - 1) as usize;
        b.data[y * b.stride + x]
    };
    let mut sad = 0u32;
    for r in 0..n {
        let row = &a.data[(y0 + r) * a.stride + x0..][..n];
        for (c, &v) in row.iter().enumerate() {
            let (x, y) = (x0 as i32 + c as i32 + mv.0, y0 as i32 + r as i32 + mv.1);
            sad += v.abs_diff(at(x, y)) as u32;
        }
    }
    sad
}

/// Expected number of later frames that inherit a reference coded at the
/// start of `stats` (`stats[i]` compares frame i + 1 with frame i): the
/// sum of the running products of [`FrameStats::carry`].
pub fn reference_weight(stats: &[FrameStats]) -> f64 {
    let mut acc = 1.0;
    let mut sum = 0.0;
    for s in stats {
        acc *= s.carry();
        sum += acc;
    }
    sum
}

/// Length of the group a reference frame starts, at most `max_len` and
/// at least `min_len.min(max_len)`: it ends once the running product of
/// [`FrameStats::carry`] over `stats` (frame after the reference first)
/// falls below `min_carry`, the point where later frames have drifted so
/// far from the reference that a fresh one pays.
pub fn group_length(stats: &[FrameStats], min_len: usize, max_len: usize, min_carry: f64) -> usize {
    let max_len = max_len.min(stats.len());
    let mut acc = 1.0;
    for (i, s) in stats.iter().take(max_len).enumerate() {
        acc *= s.carry();
        if acc < min_carry && i + 1 >= min_len {
            return i + 1;
        }
    }
    max_len
}

/// The q index of a reference frame that `weight` later frames inherit
/// (see [`reference_weight`]), when the inter frames use `inter_qi`: the
/// one whose quantizer step is nearest to the inter step times
/// `(1 + weight)^(-exp)`, never above `inter_qi` nor below vpxenc's
/// lowest default q index.
pub fn reference_q_index(inter_qi: u8, weight: f64, exp: f64) -> u8 {
    let target = step(inter_qi) * (1.0 + weight.max(0.0)).powf(-exp);
    let lo = MIN_QI.min(inter_qi);
    (lo..=inter_qi)
        .min_by(|&a, &b| {
            (step(a) - target)
                .abs()
                .total_cmp(&(step(b) - target).abs())
        })
        .unwrap_or(inter_qi)
}

/// Mean block motion (pixels per frame, [`FrameStats::motion`]) below
/// which a group counts as filmed by a steady camera.
pub const STEADY_MAX_MOTION: f64 = 0.5;

/// The temporal filter for the alt-ref of a group whose frames have
/// `stats`: `base`, or on a steady camera (mean motion below
/// [`STEADY_MAX_MOTION`]) two more frames and one step stronger. More
/// averaging removes more noise where the blocks match well, and blurs
/// the alt-ref where the camera shakes: rd-harness --anchor best, speed
/// 0, with 9 frames at strength 6 for every group, the box clips gained
/// 0.6-2.0 points of BD-rate PSNR while handheld_cif lost 0.8 (SSIM 2.8),
/// testsrc2 and anim 0.3-0.5 (benches/README.md).
pub fn arnr_for_group(base: ArnrParams, stats: &[FrameStats]) -> ArnrParams {
    if stats.is_empty() {
        return base;
    }
    let motion = stats.iter().map(|s| s.motion).sum::<f64>() / stats.len() as f64;
    if motion >= STEADY_MAX_MOTION {
        return base;
    }
    ArnrParams {
        max_frames: (base.max_frames + 2).min(15),
        strength: (base.strength + 1).min(6),
    }
}

/// Whether the content cuts at `stats[i]`: see [`scene_cut`].
pub fn is_cut(stats: &[FrameStats], i: usize, max_carry: f64) -> bool {
    let Some(s) = stats.get(i) else {
        return false;
    };
    let c = s.carry();
    c < max_carry
        && stats
            .get(i + 1)
            .is_none_or(|n| n.carry() >= (2.0 * max_carry).min(0.9) && n.carry() > c)
}

/// Index into `stats` of the first frame (at index `min_dist` or later)
/// that the content cuts to: its predecessor predicts it no better than
/// `max_carry`, while the frame after it predicts well from it (at least
/// twice that share, or it is the last one known), so a burst of
/// changes does not cost a key frame at its first frame. libvpx's `test_candidate_kf` asks
/// the same two questions.
pub fn scene_cut(stats: &[FrameStats], min_dist: usize, max_carry: f64) -> Option<usize> {
    (min_dist..stats.len()).find(|&i| is_cut(stats, i, max_carry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: usize, h: usize, shift: usize, seed: usize) -> Image {
        let mut f = Image::filled(w, h, [0, 128, 128]);
        let p = &mut f.planes[0];
        for y in 0..h {
            for x in 0..w {
                // Smooth blobs (so a logarithmic search converges) with a
                // little fixed texture.
                let u = (x + shift) as f64;
                let v = 128.0
                    + 70.0 * (u * 0.19).sin() * (y as f64 * 0.23).cos()
                    + ((x + shift) * 7 + y * 3 + seed) as f64 % 5.0;
                p.data[y * p.stride + x] = v as u8;
            }
        }
        f
    }

    /// Measured in bands of rows on 2, 3 and 8 threads, the statistics
    /// (floating-point sums included) are exactly the serial ones.
    #[test]
    fn any_thread_count_measures_the_same_statistics() {
        let pool = crate::encode::workers::helper_pool(2).unwrap();
        for (w, h) in [(64, 48), (200, 120), (40, 200)] {
            let (a, b) = (textured(w, h, 0, 1), textured(w, h, 3, 2));
            let one = frame_stats(&a, &b);
            assert!(one.motion > 0.0 && one.inter > 0.0, "{w}x{h}: {one:?}");
            for threads in [2, 3, 8] {
                for pool in [None, Some(&*pool)] {
                    let many = frame_stats_on(&a, &b, Workers::new(threads, pool));
                    assert_eq!(many, one, "{w}x{h}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn static_frames_carry_everything() {
        let a = textured(64, 48, 0, 0);
        let s = frame_stats(&a, &a);
        assert_eq!(s.inter, 0.0);
        assert!(s.intra > 0.0);
        assert_eq!(s.zero_motion, 1.0);
        assert_eq!(s.carry(), 1.0);
    }

    #[test]
    fn chroma_carry_sees_chroma_noise() {
        let a = textured(64, 48, 0, 0);
        let mut b = a.clone();
        assert_eq!(frame_stats(&a, &b).chroma_carry(), 1.0);
        // Flat chroma with a little texture, then fresh noise on it in
        // each frame: the luma still carries everything.
        let mut c = a.clone();
        for (f, seed) in [(&mut b, 1u32), (&mut c, 2)] {
            for p in 1..3 {
                let pl = &mut f.planes[p];
                for (i, v) in pl.data.iter_mut().enumerate() {
                    let h = (i as u32 ^ (seed << 20)).wrapping_mul(2_654_435_761) >> 29;
                    *v = 120 + (i % 7) as u8 + h as u8;
                }
            }
        }
        let s = frame_stats(&b, &c);
        assert_eq!(s.carry(), 1.0);
        assert!(s.chroma_carry() < 0.5, "{s:?}");
    }

    #[test]
    fn motion_is_found_and_a_cut_carries_nothing() {
        let a = textured(96, 64, 0, 0);
        let b = textured(96, 64, 3, 0);
        let s = frame_stats(&a, &b);
        // The right column of blocks matches outside the picture.
        assert!(s.carry() > 0.75, "{s:?}");
        assert!(s.motion > 2.0 && s.zero_motion < 0.5, "{s:?}");
        let mut other = Image::filled(96, 64, [0, 128, 128]);
        for (i, v) in other.planes[0].data.iter_mut().enumerate() {
            *v = ((i * 7919) % 251) as u8;
        }
        let cut = frame_stats(&a, &other);
        assert!(cut.carry() < 0.3, "{cut:?}");
    }

    fn st(carry: f64) -> FrameStats {
        FrameStats {
            intra: 100.0,
            inter: 100.0 * (1.0 - carry),
            ..FrameStats::default()
        }
    }

    #[test]
    fn reference_q_falls_with_the_weight() {
        let qi = 80;
        assert_eq!(reference_q_index(qi, 0.0, 0.33), qi);
        let few = reference_q_index(qi, 3.0, 0.33);
        let many = reference_q_index(qi, 24.0, 0.33);
        assert!(many < few && few < qi, "{many} {few}");
        // 25^(-1/3) is about 0.34 of the step.
        let r = step(many) / step(qi);
        assert!((0.3..0.4).contains(&r), "{r}");
        assert_eq!(reference_q_index(2, 100.0, 1.0), 2);
    }

    #[test]
    fn steady_groups_get_a_stronger_filter() {
        let base = ArnrParams {
            max_frames: 7,
            strength: 5,
        };
        let moving = |m: f64| FrameStats {
            motion: m,
            ..st(0.9)
        };
        let steady = vec![moving(0.1); 10];
        let got = arnr_for_group(base, &steady);
        assert_eq!((got.max_frames, got.strength), (9, 6));
        let mut shaky = steady.clone();
        shaky.extend(vec![moving(3.0); 2]);
        assert_eq!(arnr_for_group(base, &shaky), base);
        assert_eq!(arnr_for_group(base, &[]), base);
        let top = ArnrParams {
            max_frames: 15,
            strength: 6,
        };
        assert_eq!(arnr_for_group(top, &steady), top);
    }

    #[test]
    fn weights_lengths_and_cuts() {
        let still = vec![st(1.0); 24];
        assert_eq!(reference_weight(&still), 24.0);
        assert_eq!(group_length(&still, 6, 24, 0.3), 24);
        let busy = vec![st(0.7); 24];
        assert!(reference_weight(&busy) < 3.0);
        assert_eq!(group_length(&busy, 6, 24, 0.3), 6);
        assert_eq!(group_length(&busy, 2, 24, 0.3), 4);
        let mut cut = vec![st(0.95); 10];
        cut[6] = st(0.05);
        assert_eq!(scene_cut(&cut, 1, 0.2), Some(6));
        assert_eq!(scene_cut(&cut, 7, 0.2), None);
        assert!(is_cut(&cut, 6, 0.2) && !is_cut(&cut, 5, 0.2) && !is_cut(&cut, 10, 0.2));
        // A bad frame whose successor does not predict well from it
        // either is not (yet) a cut.
        cut[7] = st(0.3);
        assert_eq!(scene_cut(&cut, 1, 0.2), None);
    }
}
