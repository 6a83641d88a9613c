//! Block distortion: sum of absolute differences, sum of squared errors and
//! variance between two blocks of 8-bit samples.
//!
//! Blocks are addressed as `(buffer, pos, stride)`: sample `(x, y)` of the
//! block is `buffer[pos + y * stride + x]`. This lets callers compare a
//! block of the source frame with a block of a reference frame (or of a
//! small prediction buffer) without copying. The inner loops run over row
//! slices with fixed-width kernels for 16, 8 and 4 samples so the compiler
//! can unroll and vectorise them; the motion search calls these millions of
//! times per frame.

#[cfg(target_arch = "x86_64")]
use crate::dsp::sad::{diff4x4_x86, sad_x86, sse_sum_x86, sse_x86};

/// One row of `w` samples from each block.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows<'a>(
    a: &'a [u8],
    a_pos: usize,
    a_stride: usize,
    b: &'a [u8],
    b_pos: usize,
    b_stride: usize,
    w: usize,
    h: usize,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    (0..h).map(move |y| {
        let ra = a_pos + y * a_stride;
        let rb = b_pos + y * b_stride;
        (&a[ra..ra + w], &b[rb..rb + w])
    })
}

/// The row of `w` samples starting at `pos`, as a fixed-size array so the
/// per-row kernels have no inner bounds checks.
#[inline(always)]
fn row<const W: usize>(buf: &[u8], pos: usize) -> &[u8; W] {
    buf[pos..pos + W].try_into().expect("row length")
}

/// SAD over a block `W` wide. The per-row `|i32(a) - i32(b)|` reduction is
/// the shape LLVM recognises as a `psadbw`-style sum of absolute
/// differences.
#[inline(always)]
fn sad_fixed<const W: usize>(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    h: usize,
) -> u32 {
    let mut total = 0i32;
    for y in 0..h {
        let ra = row::<W>(a, a_pos + y * a_stride);
        let rb = row::<W>(b, b_pos + y * b_stride);
        for i in 0..W {
            total += (i32::from(ra[i]) - i32::from(rb[i])).abs();
        }
    }
    total as u32
}

/// SSE and signed sum over a block `W` wide, with per-column accumulators.
#[inline(always)]
fn sse_sum_fixed<const W: usize>(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    h: usize,
) -> (u64, i64) {
    // 255^2 * 4096 rows still fits a u32 lane; blocks are at most 16 rows.
    let mut sse = [0u32; W];
    let mut sum = [0i32; W];
    for y in 0..h {
        let ra = row::<W>(a, a_pos + y * a_stride);
        let rb = row::<W>(b, b_pos + y * b_stride);
        for i in 0..W {
            let d = i32::from(ra[i]) - i32::from(rb[i]);
            sse[i] += (d * d) as u32;
            sum[i] += d;
        }
    }
    (
        sse.iter().map(|&v| u64::from(v)).sum(),
        sum.iter().map(|&v| i64::from(v)).sum(),
    )
}

/// The 4x4 difference `a - b` in raster order, portably.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn diff4x4_portable(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
) -> [i16; 16] {
    let mut r = [0i16; 16];
    for i in 0..4 {
        let ra = row::<4>(a, a_pos + i * a_stride);
        let rb = row::<4>(b, b_pos + i * b_stride);
        for j in 0..4 {
            r[i * 4 + j] = i16::from(ra[j]) - i16::from(rb[j]);
        }
    }
    r
}

/// The 4x4 difference `a - b` (a residual: source minus prediction) in
/// raster order.
///
/// Panics if either block reaches outside its buffer.
#[inline]
pub(crate) fn diff4x4(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
) -> [i16; 16] {
    #[cfg(target_arch = "x86_64")]
    {
        diff4x4_x86(a, a_pos, a_stride, b, b_pos, b_stride)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        diff4x4_portable(a, a_pos, a_stride, b, b_pos, b_stride)
    }
}

crate::dsp::dispatch::dispatch! {
    /// Sum of absolute differences between two `w` by `h` blocks.
    ///
    /// Panics if either block reaches outside its buffer.
    pub fn sad(
        a: &[u8],
        a_pos: usize,
        a_stride: usize,
        b: &[u8],
        b_pos: usize,
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> u32 {
        sad_portable(a, a_pos, a_stride, b, b_pos, b_stride, w, h)
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sad_portable(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    w: usize,
    h: usize,
) -> u32 {
    // The fixed kernels sum in i32; 2^31 / (255 * 16) rows is far beyond any
    // block, but stay correct for absurd heights.
    #[cfg(target_arch = "x86_64")]
    if h > 0 && h <= 65_536 {
        match w {
            16 => return sad_x86::<16>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            8 => return sad_x86::<8>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            4 => return sad_x86::<4>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            _ => {}
        }
    }
    match if h <= 65_536 { w } else { 0 } {
        16 => sad_fixed::<16>(a, a_pos, a_stride, b, b_pos, b_stride, h),
        8 => sad_fixed::<8>(a, a_pos, a_stride, b, b_pos, b_stride, h),
        4 => sad_fixed::<4>(a, a_pos, a_stride, b, b_pos, b_stride, h),
        _ => rows(a, a_pos, a_stride, b, b_pos, b_stride, w, h)
            .map(|(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| u32::from(p.abs_diff(q)))
                    .sum::<u32>()
            })
            .sum(),
    }
}

crate::dsp::dispatch::dispatch! {
    /// Sum of squared errors and sum of signed differences (`a - b`).
    pub fn sse_and_sum(
        a: &[u8],
        a_pos: usize,
        a_stride: usize,
        b: &[u8],
        b_pos: usize,
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> (u64, i64) {
        sse_and_sum_portable(a, a_pos, a_stride, b, b_pos, b_stride, w, h)
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sse_and_sum_portable(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    w: usize,
    h: usize,
) -> (u64, i64) {
    #[cfg(target_arch = "x86_64")]
    if h > 0 && h <= 4096 {
        match w {
            16 => return sse_sum_x86::<16>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            8 => return sse_sum_x86::<8>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            4 => return sse_sum_x86::<4>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            _ => {}
        }
    }
    if h <= 4096 {
        match w {
            16 => return sse_sum_fixed::<16>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            8 => return sse_sum_fixed::<8>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            4 => return sse_sum_fixed::<4>(a, a_pos, a_stride, b, b_pos, b_stride, h),
            _ => {}
        }
    }
    rows(a, a_pos, a_stride, b, b_pos, b_stride, w, h).fold((0u64, 0i64), |acc, (x, y)| {
        x.iter().zip(y).fold(acc, |(sse, sum), (&p, &q)| {
            let d = i64::from(p) - i64::from(q);
            (sse + (d * d) as u64, sum + d)
        })
    })
}

crate::dsp::dispatch::dispatch! {
    /// Sum of squared errors between two `w` by `h` blocks.
    pub fn sse(
        a: &[u8],
        a_pos: usize,
        a_stride: usize,
        b: &[u8],
        b_pos: usize,
        b_stride: usize,
        w: usize,
        h: usize,
    ) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if h > 0 && h <= 4096 {
            match w {
                16 => return sse_x86::<16>(a, a_pos, a_stride, b, b_pos, b_stride, h),
                8 => return sse_x86::<8>(a, a_pos, a_stride, b, b_pos, b_stride, h),
                4 => return sse_x86::<4>(a, a_pos, a_stride, b, b_pos, b_stride, h),
                _ => {}
            }
        }
        sse_and_sum_portable(a, a_pos, a_stride, b, b_pos, b_stride, w, h).0
    }
}

/// Variance of the difference `a - b` times the number of samples, i.e.
/// `sse - sum^2 / (w * h)` as libvpx's `vpx_variance` functions return it
/// (the DC part of the error removed, since a residual's DC is cheap to
/// code). 0 for an empty block.
#[allow(clippy::too_many_arguments)]
pub fn variance(
    a: &[u8],
    a_pos: usize,
    a_stride: usize,
    b: &[u8],
    b_pos: usize,
    b_stride: usize,
    w: usize,
    h: usize,
) -> u64 {
    let n = (w * h) as u64;
    if n == 0 {
        return 0;
    }
    let (sse, sum) = sse_and_sum(a, a_pos, a_stride, b, b_pos, b_stride, w, h);
    sse - (sum * sum) as u64 / n
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn naive(
        a: &[u8],
        ap: usize,
        asd: usize,
        b: &[u8],
        bp: usize,
        bsd: usize,
        w: usize,
        h: usize,
    ) -> (u32, u64, i64) {
        let (mut sad, mut sse, mut sum) = (0u32, 0u64, 0i64);
        for y in 0..h {
            for x in 0..w {
                let d = i64::from(a[ap + y * asd + x]) - i64::from(b[bp + y * bsd + x]);
                sad += d.unsigned_abs() as u32;
                sse += (d * d) as u64;
                sum += d;
            }
        }
        (sad, sse, sum)
    }

    #[test]
    fn matches_naive_on_random_blocks() {
        let mut rng = Rng(0xdead_beef);
        let a: Vec<u8> = (0..64 * 64).map(|_| rng.next() as u8).collect();
        let b: Vec<u8> = (0..80 * 70).map(|_| rng.next() as u8).collect();
        for &(w, h) in &[(16, 16), (16, 8), (8, 16), (8, 8), (4, 4), (3, 5), (1, 1)] {
            for _ in 0..200 {
                let ap = (rng.next() % 40) as usize * 64 + (rng.next() % 40) as usize;
                let bp = (rng.next() % 50) as usize * 80 + (rng.next() % 60) as usize;
                let (s, e, m) = naive(&a, ap, 64, &b, bp, 80, w, h);
                assert_eq!(sad(&a, ap, 64, &b, bp, 80, w, h), s);
                assert_eq!(sse(&a, ap, 64, &b, bp, 80, w, h), e);
                assert_eq!(sse_and_sum(&a, ap, 64, &b, bp, 80, w, h), (e, m));
                let n = (w * h) as i64;
                assert_eq!(
                    variance(&a, ap, 64, &b, bp, 80, w, h),
                    (e as i64 - m * m / n) as u64
                );
            }
        }
    }

    /// The x86 kernels equal their portable twins (the fixed-width loops).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_kernels_match_portable() {
        let mut rng = Rng(0x1234_5678);
        let a: Vec<u8> = (0..64 * 64).map(|_| rng.next() as u8).collect();
        let b: Vec<u8> = (0..80 * 70).map(|_| rng.next() as u8).collect();
        for h in [1usize, 4, 8, 16] {
            for _ in 0..300 {
                let ap = (rng.next() % 40) as usize * 64 + (rng.next() % 40) as usize;
                let bp = (rng.next() % 50) as usize * 80 + (rng.next() % 60) as usize;
                macro_rules! both {
                    ($w:literal) => {
                        assert_eq!(
                            sad_x86::<$w>(&a, ap, 64, &b, bp, 80, h),
                            sad_fixed::<$w>(&a, ap, 64, &b, bp, 80, h)
                        );
                        assert_eq!(
                            sse_sum_x86::<$w>(&a, ap, 64, &b, bp, 80, h),
                            sse_sum_fixed::<$w>(&a, ap, 64, &b, bp, 80, h)
                        );
                        assert_eq!(
                            sse_x86::<$w>(&a, ap, 64, &b, bp, 80, h),
                            sse_sum_fixed::<$w>(&a, ap, 64, &b, bp, 80, h).0
                        );
                    };
                }
                both!(16);
                both!(8);
                both!(4);
            }
        }
        for _ in 0..1000 {
            let ap = (rng.next() % 40) as usize * 64 + (rng.next() % 40) as usize;
            let bp = (rng.next() % 50) as usize * 80 + (rng.next() % 60) as usize;
            assert_eq!(
                diff4x4_x86(&a, ap, 64, &b, bp, 80),
                diff4x4_portable(&a, ap, 64, &b, bp, 80)
            );
        }
        let white = [255u8; 256];
        let black = [0u8; 256];
        assert_eq!(diff4x4_x86(&black, 0, 4, &white, 0, 4), [-255; 16]);
        assert_eq!(diff4x4_x86(&white, 0, 4, &black, 0, 4), [255; 16]);
        assert_eq!(
            sse_sum_x86::<16>(&white, 0, 16, &black, 0, 16, 16),
            (255 * 255 * 256, 255 * 256)
        );
        assert_eq!(
            sse_sum_x86::<16>(&black, 0, 16, &white, 0, 16, 16),
            (255 * 255 * 256, -255 * 256)
        );
    }

    #[test]
    fn extremes() {
        let white = [255u8; 256];
        let black = [0u8; 256];
        assert_eq!(sad(&white, 0, 16, &black, 0, 16, 16, 16), 255 * 256);
        assert_eq!(sse(&white, 0, 16, &black, 0, 16, 16, 16), 255 * 255 * 256);
        // A constant offset has no variance.
        assert_eq!(variance(&white, 0, 16, &black, 0, 16, 16, 16), 0);
        assert_eq!(sad(&white, 0, 16, &white, 0, 16, 16, 16), 0);
        assert_eq!(variance(&white, 0, 16, &black, 0, 16, 0, 0), 0);
    }

    #[test]
    fn variance_of_checkerboard() {
        // +-10 alternating: sum 0, sse = 100 per sample.
        let a: Vec<u8> = (0..64)
            .map(|i| if (i + i / 8) % 2 == 0 { 110 } else { 90 })
            .collect();
        let b = [100u8; 64];
        assert_eq!(variance(&a, 0, 8, &b, 0, 8, 8, 8), 6400);
        assert_eq!(sad(&a, 0, 8, &b, 0, 8, 8, 8), 640);
    }

    #[test]
    #[should_panic]
    fn out_of_bounds_panics() {
        let a = [0u8; 16];
        sad(&a, 0, 4, &a, 1, 4, 4, 4);
    }
}
