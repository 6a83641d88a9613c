//! The SIMD loop filters against their scalar twins, on random and
//! extreme pixels and limits.

use crate::loop_filter::{edge_limits, filter_mb_normal_n, filter_mb_simple_scalar};

/// xorshift32: deterministic test data.
fn rng(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

fn check<const N: usize>(seed: u32) {
    let stride = 40;
    let mut s = seed;
    for trial in 0..3000 {
        // Smooth pictures with small noise exercise every branch
        // (mask on and off, high variance on and off); pure noise
        // almost never passes the masks.
        let amp = [2u32, 8, 40, 256][trial % 4];
        let base = rng(&mut s) % 256;
        let mut plane: Vec<u8> = (0..stride * 28)
            .map(|_| (base + rng(&mut s) % amp).min(255) as u8)
            .collect();
        let level = (rng(&mut s) % 64) as u8;
        let sharp = (rng(&mut s) % 8) as u8;
        let key = rng(&mut s) & 1 == 0;
        let lim = edge_limits(level.max(1), sharp, key, false);
        let flags = rng(&mut s);
        let (l, t, i) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        let pos = 6 * stride + 6;
        let mut scalar = plane.clone();
        filter_mb_normal_n::<N>(&mut scalar, pos, stride, &lim, l, t, i);
        let mut sse2 = plane.clone();
        assert!(super::filter_mb_normal::<N>(
            &mut plane, pos, stride, &lim, l, t, i
        ));
        assert_eq!(plane, scalar, "trial {trial} {lim:?} l{l} t{t} i{i}");
        // The baseline build too, whatever this CPU dispatches to.
        assert!(super::normal_body::<N>(
            &mut sse2, pos, stride, &lim, l, t, i
        ));
        assert_eq!(sse2, scalar, "SSE2 build: trial {trial}");
    }
}

#[test]
fn luma_matches_scalar() {
    check::<16>(0x1234_5678);
}

#[test]
fn chroma_matches_scalar() {
    check::<8>(0x9abc_def1);
}

#[test]
fn chroma_pair_matches_scalar() {
    let stride = 24;
    let mut s = 0x0bad_cafe_u32;
    for trial in 0..3000 {
        let amp = [2u32, 8, 40, 256][trial % 4];
        let mut planes: [Vec<u8>; 2] = core::array::from_fn(|_| {
            let base = rng(&mut s) % 256;
            (0..stride * 20)
                .map(|_| (base + rng(&mut s) % amp).min(255) as u8)
                .collect()
        });
        let level = (rng(&mut s) % 63 + 1) as u8;
        let lim = edge_limits(level, (rng(&mut s) % 8) as u8, rng(&mut s) & 1 == 0, false);
        let flags = rng(&mut s);
        let (l, t, i) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        let pos = 6 * stride + 6;
        let mut scalar = planes.clone();
        for p in scalar.iter_mut() {
            filter_mb_normal_n::<8>(p, pos, stride, &lim, l, t, i);
        }
        let mut sse2 = planes.clone();
        let [u, v] = &mut planes;
        assert!(super::filter_mb_normal_uv(u, v, pos, stride, &lim, l, t, i));
        assert_eq!(planes, scalar, "trial {trial} {lim:?} l{l} t{t} i{i}");
        // The baseline build too, whatever this CPU dispatches to.
        let [u, v] = &mut sse2;
        assert!(super::normal_uv_body(u, v, pos, stride, &lim, l, t, i));
        assert_eq!(sse2, scalar, "SSE2 build: trial {trial}");
    }
}

#[test]
fn simple_matches_scalar() {
    let stride = 40;
    let mut s = 0x5eed_1e55_u32;
    let mut changed = 0;
    for trial in 0..4000 {
        let amp = [2u32, 8, 40, 120, 256][trial % 5];
        let base = rng(&mut s) % 256;
        let mut plane: Vec<u8> = (0..stride * 28)
            .map(|_| (base + rng(&mut s) % amp).min(255) as u8)
            .collect();
        if trial % 7 == 0 {
            // Extremes: saturation of every intermediate.
            for p in plane.iter_mut() {
                *p = if rng(&mut s) & 1 == 0 { 0 } else { 255 };
            }
        }
        let level = (rng(&mut s) % 63 + 1) as u8;
        let lim = edge_limits(level, (rng(&mut s) % 8) as u8, rng(&mut s) & 1 == 0, true);
        let flags = rng(&mut s);
        let (l, t, i) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        let pos = 6 * stride + 6;
        let mut scalar = plane.clone();
        filter_mb_simple_scalar(&mut scalar, pos, stride, &lim, l, t, i);
        changed += usize::from(scalar != plane);
        assert!(super::filter_mb_simple(
            &mut plane, pos, stride, &lim, l, t, i
        ));
        assert_eq!(plane, scalar, "trial {trial} {lim:?} l{l} t{t} i{i}");
    }
    // The filter really ran on most trials, not just the masks.
    assert!(changed > 1000, "only {changed} trials changed pixels");
    let lim = edge_limits(30, 0, true, true);
    let mut plane = vec![0u8; 40 * 40];
    assert!(!super::filter_mb_simple(
        &mut plane, 3, 40, &lim, true, true, true
    ));
    assert!(!super::filter_mb_simple(
        &mut plane,
        40 * 30,
        40,
        &lim,
        true,
        true,
        true
    ));
}

#[test]
fn refuses_blocks_near_the_plane_edges() {
    let lim = edge_limits(30, 0, true, false);
    let mut plane = vec![0u8; 40 * 40];
    assert!(!super::filter_mb_normal::<16>(
        &mut plane, 3, 40, &lim, true, true, true
    ));
    assert!(!super::filter_mb_normal::<16>(
        &mut plane,
        40 * 30,
        40,
        &lim,
        true,
        true,
        true
    ));
}
