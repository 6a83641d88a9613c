//! Inter prediction: sub-pixel interpolation of reference blocks
//! (RFC 6386 section 18.3; dixie `predict.c`, RFC 20.14; libvpx
//! `vp8/common/filter.c`).
//!
//! Both filters are separable and applied as in libvpx: a horizontal pass
//! producing 8-bit samples (each `(sum + 64) >> 7`, clamped to 0..=255),
//! then a vertical pass over those samples with the same rounding.
//!
//! # Fast paths
//! Filter 0 of both tables is the identity `[.., 128, ..]`: for any sample
//! `x` in 0..=255, `(128 * x + 64) >> 7 == x` and the clamp does nothing,
//! so a pass with a zero fraction returns its input unchanged. Hence
//! `mx == 0` makes the 2-D filter equal to the vertical pass alone,
//! `my == 0` equal to the horizontal pass alone, and `mx == my == 0` equal
//! to a plain copy. libvpx and dixie do compute the identity passes (or
//! copy, for whole-pixel vectors); skipping them changes no output bit.

pub use crate::tables::{BILINEAR_FILTERS, SIXTAP_FILTERS};

/// Largest block edge the filters handle.
const MAX_BLOCK: usize = 16;

/// Tap magnitudes of [`SIXTAP_FILTERS`]. Every filter has the sign pattern
/// `+ - + + - +`, so a sum splits into a positive part (at most
/// `(3 + 77 + 77 + 3) * 255 = 40800`) and a negative part (at most
/// `(16 + 16) * 255`), both of which fit in `u16`. Sixteen-bit lanes
/// vectorise twice as wide as `i32` ones, and SSE2 has a 16-bit multiply
/// but no 32-bit one.
const SIXTAP_MAGNITUDES: [[u16; 6]; 8] = {
    let mut out = [[0u16; 6]; 8];
    let mut f = 0;
    while f < 8 {
        let mut k = 0;
        while k < 6 {
            out[f][k] = SIXTAP_FILTERS[f][k].unsigned_abs() as u16;
            k += 1;
        }
        f += 1;
    }
    out
};

/// Six-taps one output row of width `W`: `clamp((sum + 64) >> 7)` of the
/// signed sum, computed as `(positive + 64) - negative`, saturating at 0
/// (a negative sum clamps to 0 either way), then shifted and clamped at
/// 255. Each window has length exactly `W` so the loop has no bounds
/// checks and vectorises.
#[inline(always)]
fn sixtap_row<const W: usize>(win: [&[u8]; 6], taps: &[u16; 6], out: &mut [u8]) {
    let (s0, s1, s2) = (&win[0][..W], &win[1][..W], &win[2][..W]);
    let (s3, s4, s5) = (&win[3][..W], &win[4][..W], &win[5][..W]);
    let out = &mut out[..W];
    for c in 0..W {
        let pos = u16::from(s0[c]) * taps[0]
            + u16::from(s2[c]) * taps[2]
            + u16::from(s3[c]) * taps[3]
            + u16::from(s5[c]) * taps[5];
        let neg = u16::from(s1[c]) * taps[1] + u16::from(s4[c]) * taps[4];
        out[c] = ((pos + 64).saturating_sub(neg) >> 7).min(255) as u8;
    }
}

/// Two-taps one output row of width `W` (bilinear). Never leaves 0..=255,
/// so no clamp is needed.
#[inline(always)]
fn bilinear_row<const W: usize>(a: &[u8], b: &[u8], taps: &[i32; 2], out: &mut [u8]) {
    let (a, b, out) = (&a[..W], &b[..W], &mut out[..W]);
    for c in 0..W {
        let sum = i32::from(a[c]) * taps[0] + i32::from(b[c]) * taps[1];
        out[c] = ((sum + 64) >> 7) as u8;
    }
}

/// Horizontal six-tap windows of a row starting two samples before `at`.
#[inline(always)]
fn h_windows(src: &[u8], at: usize) -> [&[u8]; 6] {
    let s = &src[at - 2..];
    [&s[0..], &s[1..], &s[2..], &s[3..], &s[4..], &s[5..]]
}

/// Vertical six-tap windows for the output row at `at`: the rows two
/// before to three after.
#[inline(always)]
fn v_windows(src: &[u8], at: usize, stride: usize) -> [&[u8]; 6] {
    let s = &src[at - 2 * stride..];
    core::array::from_fn(|k| &s[k * stride..])
}

#[allow(clippy::too_many_arguments)]
fn sixtap_w<const W: usize>(
    src: &[u8],
    pos: usize,
    stride: usize,
    mx: usize,
    my: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    let hx = &SIXTAP_MAGNITUDES[mx];
    let vy = &SIXTAP_MAGNITUDES[my];
    match (mx, my) {
        (0, 0) => copy_block(src, pos, stride, W, h, dst, dst_pos, dst_stride),
        (_, 0) => {
            for r in 0..h {
                let win = h_windows(src, pos + r * stride);
                sixtap_row::<W>(win, hx, &mut dst[dst_pos + r * dst_stride..]);
            }
        }
        (0, _) => {
            for r in 0..h {
                let win = v_windows(src, pos + r * stride, stride);
                sixtap_row::<W>(win, vy, &mut dst[dst_pos + r * dst_stride..]);
            }
        }
        _ => {
            // Horizontal pass over rows -2..h+3 into a W-pitched buffer,
            // then the vertical pass out of it.
            let mut tmp = [0u8; MAX_BLOCK * (MAX_BLOCK + 5)];
            let first = pos - 2 * stride;
            for (r, out) in tmp.chunks_exact_mut(W).take(h + 5).enumerate() {
                sixtap_row::<W>(h_windows(src, first + r * stride), hx, out);
            }
            for r in 0..h {
                let win = v_windows(&tmp, (r + 2) * W, W);
                sixtap_row::<W>(win, vy, &mut dst[dst_pos + r * dst_stride..]);
            }
        }
    }
}

/// Panics unless the fractions and height are supported (the width is
/// checked by the dispatch).
#[inline(always)]
fn check_args(mx: usize, my: usize, h: usize) {
    assert!(
        mx < 8 && my < 8,
        "sub-pixel fraction out of range: {mx}, {my}"
    );
    assert!(
        matches!(h, 4 | 8 | 16),
        "unsupported block height {h} (must be 4, 8 or 16)"
    );
}

/// Predicts a `w` x `h` block (`w`, `h` in {4, 8, 16}) with the six-tap
/// filters (RFC 18.3).
///
/// `src[pos]` is the integer-position top-left sample of the block in the
/// reference plane (row pitch `stride`); `mx`, `my` in 0..8 are the
/// eighth-pel fractions of the motion vector. The caller guarantees that
/// `src` holds two rows/columns before and three after the block (pad
/// with an emulated edge near the frame border). The result goes to
/// `dst[dst_pos..]` with pitch `dst_stride`. Bit-exact with libvpx's
/// `vp8_sixtap_predict*` and dixie's `sixtap_2d`; see the module docs for
/// why skipping passes with a zero fraction is exact.
///
/// # Panics
/// On unsupported sizes or fractions, or out-of-bounds accesses.
///
/// Runs the SIMD kernel of `crate::dsp::subpel` where the CPU has one,
/// else [`sixtap_scalar`]; both give the same bytes.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn sixtap(
    src: &[u8],
    pos: usize,
    stride: usize,
    mx: usize,
    my: usize,
    w: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    check_args(mx, my, h);
    if crate::dsp::subpel::sixtap(src, pos, stride, mx, my, w, h, dst, dst_pos, dst_stride) {
        return;
    }
    sixtap_scalar(src, pos, stride, mx, my, w, h, dst, dst_pos, dst_stride);
}

/// The portable [`sixtap`], the definition the SIMD kernels are tested
/// against (public for benches).
///
/// # Panics
/// As [`sixtap`].
#[allow(clippy::too_many_arguments)]
pub fn sixtap_scalar(
    src: &[u8],
    pos: usize,
    stride: usize,
    mx: usize,
    my: usize,
    w: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    check_args(mx, my, h);
    match w {
        4 => sixtap_w::<4>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        8 => sixtap_w::<8>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        16 => sixtap_w::<16>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        _ => panic!("unsupported block width {w} (must be 4, 8 or 16)"),
    }
}

#[allow(clippy::too_many_arguments)]
fn bilinear_w<const W: usize>(
    src: &[u8],
    pos: usize,
    stride: usize,
    mx: usize,
    my: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    let hx = &BILINEAR_FILTERS[mx];
    let vy = &BILINEAR_FILTERS[my];
    match (mx, my) {
        (0, 0) => copy_block(src, pos, stride, W, h, dst, dst_pos, dst_stride),
        (_, 0) => {
            for r in 0..h {
                let row = &src[pos + r * stride..];
                bilinear_row::<W>(row, &row[1..], hx, &mut dst[dst_pos + r * dst_stride..]);
            }
        }
        (0, _) => {
            for r in 0..h {
                let row = &src[pos + r * stride..];
                bilinear_row::<W>(
                    row,
                    &row[stride..],
                    vy,
                    &mut dst[dst_pos + r * dst_stride..],
                );
            }
        }
        _ => {
            // Horizontal pass over rows 0..h+1, then vertical.
            let mut tmp = [0u8; MAX_BLOCK * (MAX_BLOCK + 1)];
            for (r, out) in tmp.chunks_exact_mut(W).take(h + 1).enumerate() {
                let row = &src[pos + r * stride..];
                bilinear_row::<W>(row, &row[1..], hx, out);
            }
            for r in 0..h {
                let row = &tmp[r * W..];
                bilinear_row::<W>(row, &row[W..], vy, &mut dst[dst_pos + r * dst_stride..]);
            }
        }
    }
}

/// Predicts a `w` x `h` block (`w`, `h` in {4, 8, 16}) with the bilinear
/// filters (RFC 18.3; used when the frame header's version is 1 or 2).
///
/// Same contract as [`sixtap`], except that `src` needs only one column and
/// row after the block (and none before). Bit-exact with libvpx's
/// `vp8_bilinear_predict*`: horizontal pass over `h + 1` rows, then
/// vertical, each `(sum + 64) >> 7`.
///
/// # Panics
/// On unsupported sizes or fractions, or out-of-bounds accesses.
#[allow(clippy::too_many_arguments)]
pub fn bilinear(
    src: &[u8],
    pos: usize,
    stride: usize,
    mx: usize,
    my: usize,
    w: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    check_args(mx, my, h);
    match w {
        4 => bilinear_w::<4>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        8 => bilinear_w::<8>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        16 => bilinear_w::<16>(src, pos, stride, mx, my, h, dst, dst_pos, dst_stride),
        _ => panic!("unsupported block width {w} (must be 4, 8 or 16)"),
    }
}

/// Copies a `w` x `h` block from `src[pos..]` (pitch `stride`) to
/// `dst[dst_pos..]` (pitch `dst_stride`): the whole-pixel prediction of
/// RFC 18.3 (both fractions zero).
///
/// # Panics
/// On out-of-bounds accesses.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn copy_block(
    src: &[u8],
    pos: usize,
    stride: usize,
    w: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    if !crate::dsp::copy::copy_block(src, pos, stride, w, h, dst, dst_pos, dst_stride) {
        copy_block_scalar(src, pos, stride, w, h, dst, dst_pos, dst_stride);
    }
}

/// The portable [`copy_block`], with bounds checks on every row (public
/// for benches and tests).
///
/// # Panics
/// On out-of-bounds accesses.
#[allow(clippy::too_many_arguments)]
pub fn copy_block_scalar(
    src: &[u8],
    pos: usize,
    stride: usize,
    w: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    match w {
        16 => copy_block_w::<16>(src, pos, stride, h, dst, dst_pos, dst_stride),
        8 => copy_block_w::<8>(src, pos, stride, h, dst, dst_pos, dst_stride),
        4 => copy_block_w::<4>(src, pos, stride, h, dst, dst_pos, dst_stride),
        _ => {
            for r in 0..h {
                let s = pos + r * stride;
                let d = dst_pos + r * dst_stride;
                dst[d..d + w].copy_from_slice(&src[s..s + w]);
            }
        }
    }
}

/// [`copy_block`] for a width known at compile time: each row becomes a
/// single move instead of a call to `memmove`, which dominated whole-pixel
/// prediction in profiles.
#[inline(always)]
fn copy_block_w<const W: usize>(
    src: &[u8],
    pos: usize,
    stride: usize,
    h: usize,
    dst: &mut [u8],
    dst_pos: usize,
    dst_stride: usize,
) {
    for r in 0..h {
        let s = pos + r * stride;
        let d = dst_pos + r * dst_stride;
        let row: &[u8; W] = src[s..s + W].try_into().unwrap();
        let out: &mut [u8; W] = (&mut dst[d..d + W]).try_into().unwrap();
        *out = *row;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const STRIDE: usize = 32;
    /// Block origin in a 32x32 test plane: room for 2 before, 3 after.
    const ORIGIN: usize = 4 * STRIDE + 4;

    fn random_plane(rng: &mut Lcg) -> Vec<u8> {
        (0..STRIDE * STRIDE).map(|_| rng.next() as u8).collect()
    }

    /// Per-pixel reference: always both passes, no fast paths, computing
    /// each output pixel directly from the 6x6 neighbourhood.
    fn sixtap_reference(
        src: &[u8],
        pos: usize,
        stride: usize,
        mx: usize,
        my: usize,
        x: usize,
        y: usize,
    ) -> u8 {
        let hf = SIXTAP_FILTERS[mx];
        let vf = SIXTAP_FILTERS[my];
        let at = |dx: isize, dy: isize| -> i32 {
            let i = pos as isize + (y as isize + dy) * stride as isize + x as isize + dx;
            i32::from(src[i as usize])
        };
        let mut sum = 0;
        for (ky, &tv) in vf.iter().enumerate() {
            let dy = ky as isize - 2;
            let mut hsum = 0;
            for (kx, &th) in hf.iter().enumerate() {
                hsum += at(kx as isize - 2, dy) * th;
            }
            let hval = ((hsum + 64) >> 7).clamp(0, 255);
            sum += hval * tv;
        }
        ((sum + 64) >> 7).clamp(0, 255) as u8
    }

    fn bilinear_reference(
        src: &[u8],
        pos: usize,
        stride: usize,
        mx: usize,
        my: usize,
        x: usize,
        y: usize,
    ) -> u8 {
        let hf = BILINEAR_FILTERS[mx];
        let vf = BILINEAR_FILTERS[my];
        let at = |dx: usize, dy: usize| i32::from(src[pos + (y + dy) * stride + x + dx]);
        let h0 = (at(0, 0) * hf[0] + at(1, 0) * hf[1] + 64) >> 7;
        let h1 = (at(0, 1) * hf[0] + at(1, 1) * hf[1] + 64) >> 7;
        ((h0 * vf[0] + h1 * vf[1] + 64) >> 7) as u8
    }

    #[test]
    fn filters_sum_to_128() {
        for f in SIXTAP_FILTERS {
            assert_eq!(f.iter().sum::<i32>(), 128);
        }
        for f in BILINEAR_FILTERS {
            assert_eq!(f.iter().sum::<i32>(), 128);
        }
    }

    #[test]
    fn identity_at_zero_fraction() {
        let mut rng = Lcg(7);
        let src = random_plane(&mut rng);
        for (w, h) in [(4, 4), (8, 8), (16, 16), (16, 8), (8, 4)] {
            let mut a = vec![0u8; 16 * 16];
            let mut b = vec![0u8; 16 * 16];
            sixtap(&src, ORIGIN, STRIDE, 0, 0, w, h, &mut a, 0, 16);
            bilinear(&src, ORIGIN, STRIDE, 0, 0, w, h, &mut b, 0, 16);
            for r in 0..h {
                let want = &src[ORIGIN + r * STRIDE..][..w];
                assert_eq!(&a[16 * r..16 * r + w], want);
                assert_eq!(&b[16 * r..16 * r + w], want);
            }
        }
    }

    #[test]
    fn sixtap_half_pel_step_by_hand() {
        // Every row: 0 for x < 8, 100 for x >= 8. Half-pel horizontal
        // (filter 4 = [3, -16, 77, 77, -16, 3]) of the samples x-2..=x+3:
        // x = 6: 0,0,0,0,100,100     -> (-1600 + 300 + 64) >> 7 = -10 -> 0
        // x = 7: 0,0,0,100,100,100   -> (7700 - 1600 + 300 + 64) >> 7 = 50
        // x = 8: 0,0,100,..,100      -> (7700 + 7700 - 1600 + 300 + 64) >> 7 = 110
        // x = 9: 0,100,..,100        -> (12500 + 64) >> 7 = 98
        let mut src = vec![0u8; STRIDE * STRIDE];
        for r in 0..STRIDE {
            for c in 8..STRIDE {
                src[r * STRIDE + c] = 100;
            }
        }
        let mut out = [0u8; 16];
        // Block at (6, 4), 4x4, mx = 4, my = 0.
        sixtap(&src, 4 * STRIDE + 6, STRIDE, 4, 0, 4, 4, &mut out, 0, 4);
        for row in out.chunks(4) {
            assert_eq!(row, [0, 50, 110, 98]);
        }
        // The same step transposed, filtered vertically, gives the same.
        let t: Vec<u8> = (0..STRIDE * STRIDE)
            .map(|i| src[(i % STRIDE) * STRIDE + i / STRIDE])
            .collect();
        sixtap(&t, 6 * STRIDE + 4, STRIDE, 0, 4, 4, 4, &mut out, 0, 4);
        for c in 0..4 {
            let col: Vec<u8> = (0..4).map(|r| out[4 * r + c]).collect();
            assert_eq!(col, [0, 50, 110, 98]);
        }
    }

    #[test]
    fn bilinear_by_hand() {
        // Two columns 40 | 200: mx = 2 ([96, 32]): (40*96 + 200*32 + 64)
        // >> 7 = (3840 + 6400 + 64) >> 7 = 80.
        let mut src = vec![40u8; STRIDE * STRIDE];
        for r in 0..STRIDE {
            for c in 5..STRIDE {
                src[r * STRIDE + c] = 200;
            }
        }
        let mut out = [0u8; 16];
        bilinear(&src, 4 * STRIDE + 1, STRIDE, 2, 0, 4, 4, &mut out, 0, 4);
        for row in out.chunks(4) {
            assert_eq!(row, [40, 40, 40, 80]);
        }
    }

    #[test]
    fn sixtap_matches_per_pixel_reference() {
        let mut rng = Lcg(42);
        for _ in 0..4 {
            let src = random_plane(&mut rng);
            for mx in 0..8 {
                for my in 0..8 {
                    for w in [4, 8, 16] {
                        for h in [4, 8, 16] {
                            let mut out = vec![0xAAu8; 20 * 18];
                            sixtap(&src, ORIGIN, STRIDE, mx, my, w, h, &mut out, 21, 20);
                            for y in 0..18 {
                                for x in 0..20 {
                                    let got = out[y * 20 + x];
                                    let inside = (1..=h).contains(&y) && (1..=w).contains(&x);
                                    let want = if inside {
                                        sixtap_reference(&src, ORIGIN, STRIDE, mx, my, x - 1, y - 1)
                                    } else {
                                        0xAA
                                    };
                                    assert_eq!(got, want, "mx {mx} my {my} {w}x{h} at {x},{y}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sixtap_extreme_values_clamp() {
        // Checkerboard 0/255 maximises overshoot; compare with reference.
        let src: Vec<u8> = (0..STRIDE * STRIDE)
            .map(|i| {
                if (i / STRIDE + i % STRIDE) & 1 == 0 {
                    255
                } else {
                    0
                }
            })
            .collect();
        for mx in 0..8 {
            for my in 0..8 {
                let mut out = [0u8; 64];
                sixtap(&src, ORIGIN, STRIDE, mx, my, 8, 8, &mut out, 0, 8);
                for y in 0..8 {
                    for x in 0..8 {
                        let want = sixtap_reference(&src, ORIGIN, STRIDE, mx, my, x, y);
                        assert_eq!(out[8 * y + x], want);
                    }
                }
            }
        }
    }

    #[test]
    fn sixtap_binary_planes_match_reference() {
        // Random 0/255 pixels hit every sign pattern of the taps, including
        // 255 under all positive taps and 0 under the negative ones: the
        // largest positive part the 16-bit split must hold.
        let mut rng = Lcg(99);
        for _ in 0..64 {
            let src: Vec<u8> = (0..STRIDE * STRIDE)
                .map(|_| if rng.next() & 1 == 0 { 0 } else { 255 })
                .collect();
            for mx in 0..8 {
                for my in 0..8 {
                    let mut out = [0u8; 256];
                    sixtap(&src, ORIGIN, STRIDE, mx, my, 16, 16, &mut out, 0, 16);
                    for y in 0..16 {
                        for x in 0..16 {
                            let want = sixtap_reference(&src, ORIGIN, STRIDE, mx, my, x, y);
                            assert_eq!(out[16 * y + x], want, "mx {mx} my {my} at {x},{y}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bilinear_matches_per_pixel_reference() {
        let mut rng = Lcg(9);
        for _ in 0..4 {
            let src = random_plane(&mut rng);
            for mx in 0..8 {
                for my in 0..8 {
                    for w in [4, 8, 16] {
                        for h in [4, 8, 16] {
                            let mut out = vec![0u8; 16 * 16];
                            bilinear(&src, ORIGIN, STRIDE, mx, my, w, h, &mut out, 0, 16);
                            for y in 0..h {
                                for x in 0..w {
                                    let want =
                                        bilinear_reference(&src, ORIGIN, STRIDE, mx, my, x, y);
                                    assert_eq!(out[16 * y + x], want, "mx {mx} my {my}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sixtap_needs_only_the_promised_margin() {
        // A 16x16 block whose 2-before / 3-after margin exactly fills the
        // buffer: 21x21 samples.
        let mut rng = Lcg(3);
        let src: Vec<u8> = (0..21 * 21).map(|_| rng.next() as u8).collect();
        let mut out = [0u8; 256];
        sixtap(&src, 2 * 21 + 2, 21, 3, 5, 16, 16, &mut out, 0, 16);
        assert_eq!(out[0], sixtap_reference(&src, 2 * 21 + 2, 21, 3, 5, 0, 0));
        assert_eq!(
            out[255],
            sixtap_reference(&src, 2 * 21 + 2, 21, 3, 5, 15, 15)
        );
        // Bilinear: 17x17.
        let src: Vec<u8> = (0..17 * 17).map(|_| rng.next() as u8).collect();
        bilinear(&src, 0, 17, 3, 5, 16, 16, &mut out, 0, 16);
        assert_eq!(out[255], bilinear_reference(&src, 0, 17, 3, 5, 15, 15));
    }

    #[test]
    fn copy_block_copies() {
        let src: Vec<u8> = (0..100).map(|i| i as u8).collect();
        let mut dst = [0u8; 12];
        copy_block(&src, 11, 10, 3, 4, &mut dst, 0, 3);
        assert_eq!(dst, [11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43]);
    }
}
