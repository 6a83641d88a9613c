use super::edges::*;
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
            .map(|_| (base + (rng.next() % spread) as i32 - spread as i32 / 2).clamp(0, 255) as u8)
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
