//! Picture quality metrics: PSNR as vpxenc reports it and SSIM as ffmpeg's
//! `ssim` filter computes it, so benchmarks need neither tool.
//!
//! PSNR: vpxenc's "Overall" figure is `10 log10(255^2 N / SSE)` over the
//! total squared error and total sample count of all three planes of all
//! frames, capped at 100 dB (libvpx's `vpx_sse_to_psnr`); its "Avg" figure
//! is the mean of the per-frame values computed the same way. For frames of
//! one size, "Overall" equals the "average" printed by ffmpeg's `psnr`
//! filter, and the per-plane overall values equal its `y`/`u`/`v`.
//!
//! SSIM: ffmpeg's approximation of Wang et al. Sums are taken over 4x4
//! blocks and combined 2x2 into 8x8 windows stepped by 4 samples; each
//! window's SSIM is evaluated in 32-bit floats with ffmpeg's integer
//! constants, and the plane value is the mean over windows. Samples past the
//! last whole 4x4 block are ignored, as in ffmpeg. The combined value
//! weights the planes by their sample counts; the clip value ("All:") is the
//! mean of the per-frame combined values. This agrees with ffmpeg's C code
//! to all printed digits. ffmpeg's default x86 build uses an SSE4 routine
//! for the last step that drifts from its own C code on some plane widths
//! (e.g. +0.002 on 88-sample-wide chroma), so there only luma agrees
//! exactly and "All:" to about 1e-3; `ffmpeg -cpuflags 0` gives our numbers.

use crate::image::{Image, Plane};

/// The value PSNR is capped at, and reported for identical pictures
/// (libvpx's `MAX_PSNR`).
pub const MAX_PSNR: f64 = 100.0;

/// PSNR in dB of `sse` over `samples` samples with peak value `peak`,
/// capped at [`MAX_PSNR`] (libvpx's `vpx_sse_to_psnr`).
pub fn sse_to_psnr(samples: f64, peak: f64, sse: f64) -> f64 {
    if sse > 0.0 {
        (10.0 * (samples * peak * peak / sse).log10()).min(MAX_PSNR)
    } else {
        MAX_PSNR
    }
}

fn check_same_size(a: &Plane, b: &Plane) {
    assert!(
        a.width == b.width && a.height == b.height,
        "plane sizes differ: {}x{} vs {}x{}",
        a.width,
        a.height,
        b.width,
        b.height
    );
}

/// Sum of squared differences between two planes of the same size (padding
/// ignored). Panics if the sizes differ.
pub fn plane_sse(a: &Plane, b: &Plane) -> u64 {
    check_same_size(a, b);
    a.rows()
        .zip(b.rows())
        .map(|(ra, rb)| {
            ra.iter()
                .zip(rb)
                .map(|(&x, &y)| {
                    let d = i32::from(x) - i32::from(y);
                    (d * d) as u32
                })
                .sum::<u32>() as u64
        })
        .sum()
}

/// PSNR of one frame pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FramePsnr {
    /// Per-plane PSNR (Y, U, V) in dB.
    pub planes: [f64; 3],
    /// PSNR over all three planes together in dB (vpxenc's per-frame value).
    pub all: f64,
    /// Per-plane squared error.
    pub sse: [u64; 3],
    /// Per-plane sample counts.
    pub samples: [u64; 3],
}

/// PSNR of `b` against `a`, per plane and over all planes. Panics if the
/// frames differ in size.
pub fn frame_psnr(a: &Image, b: &Image) -> FramePsnr {
    let mut sse = [0u64; 3];
    let mut samples = [0u64; 3];
    let mut planes = [0.0; 3];
    for i in 0..3 {
        sse[i] = plane_sse(&a.planes[i], &b.planes[i]);
        samples[i] = (a.planes[i].width * a.planes[i].height) as u64;
        planes[i] = sse_to_psnr(samples[i] as f64, 255.0, sse[i] as f64);
    }
    let all = sse_to_psnr(
        samples.iter().sum::<u64>() as f64,
        255.0,
        sse.iter().sum::<u64>() as f64,
    );
    FramePsnr {
        planes,
        all,
        sse,
        samples,
    }
}

/// Accumulates PSNR over a sequence of frames.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PsnrStats {
    frames: u64,
    sse: [u64; 3],
    samples: [u64; 3],
    /// Sums of per-frame PSNR: Y, U, V, all.
    psnr_sum: [f64; 4],
}

impl PsnrStats {
    /// No frames yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame pair and returns its PSNR.
    pub fn add(&mut self, a: &Image, b: &Image) -> FramePsnr {
        let p = frame_psnr(a, b);
        self.add_frame(&p);
        p
    }

    /// Adds an already computed frame PSNR.
    pub fn add_frame(&mut self, p: &FramePsnr) {
        self.frames += 1;
        for i in 0..3 {
            self.sse[i] += p.sse[i];
            self.samples[i] += p.samples[i];
            self.psnr_sum[i] += p.planes[i];
        }
        self.psnr_sum[3] += p.all;
    }

    /// Number of frames added.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// vpxenc's "Overall": total squared error over total samples, all
    /// planes of all frames.
    pub fn overall(&self) -> f64 {
        sse_to_psnr(
            self.samples.iter().sum::<u64>() as f64,
            255.0,
            self.sse.iter().sum::<u64>() as f64,
        )
    }

    /// Per-plane PSNR of the total squared error (ffmpeg `psnr`'s y/u/v).
    pub fn overall_planes(&self) -> [f64; 3] {
        std::array::from_fn(|i| sse_to_psnr(self.samples[i] as f64, 255.0, self.sse[i] as f64))
    }

    /// vpxenc's "Avg": the mean of the per-frame all-plane PSNR.
    pub fn average(&self) -> f64 {
        self.mean(3)
    }

    /// Mean of the per-frame per-plane PSNR (vpxenc's Y/U/V columns).
    pub fn average_planes(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.mean(i))
    }

    fn mean(&self, i: usize) -> f64 {
        if self.frames == 0 {
            MAX_PSNR
        } else {
            self.psnr_sum[i] / self.frames as f64
        }
    }
}

/// ffmpeg's window constants for 8-bit samples, pre-scaled for sums over 64
/// samples: `C1 = (0.01*255)^2 * 64`, `C2 = (0.03*255)^2 * 64 * 63`.
const SSIM_C1: i64 = 416;
const SSIM_C2: i64 = 235_963;

/// SSIM of one 8x8 window from its sums (of a, of b, of a^2 + b^2, of a*b).
/// The products are exact integers; only the final ratio is taken in f32,
/// exactly as ffmpeg does, so results agree to float rounding.
fn ssim_window(s1: i64, s2: i64, ss: i64, s12: i64) -> f32 {
    let vars = ss * 64 - s1 * s1 - s2 * s2;
    let covar = s12 * 64 - s1 * s2;
    ((2 * s1 * s2 + SSIM_C1) as f32) * ((2 * covar + SSIM_C2) as f32)
        / (((s1 * s1 + s2 * s2 + SSIM_C1) as f32) * ((vars + SSIM_C2) as f32))
}

/// SSIM of two planes of the same size, as ffmpeg's `ssim` filter computes
/// it. Planes too small for one 8x8 window give 1.0 (ffmpeg would divide by
/// zero). Panics if the sizes differ.
pub fn plane_ssim(a: &Plane, b: &Plane) -> f64 {
    check_same_size(a, b);
    let wb = a.width / 4;
    let hb = a.height / 4;
    if wb < 2 || hb < 2 {
        return 1.0;
    }
    // Sums per 4x4 block: [sum a, sum b, sum a^2 + b^2, sum a*b].
    let block_row = |by: usize| -> Vec<[i64; 4]> {
        (0..wb)
            .map(|bx| {
                let mut s = [0u32; 4];
                for y in 0..4 {
                    let ra = &a.row(by * 4 + y)[bx * 4..bx * 4 + 4];
                    let rb = &b.row(by * 4 + y)[bx * 4..bx * 4 + 4];
                    for (&x, &z) in ra.iter().zip(rb) {
                        let (x, z) = (u32::from(x), u32::from(z));
                        s[0] += x;
                        s[1] += z;
                        s[2] += x * x + z * z;
                        s[3] += x * z;
                    }
                }
                s.map(i64::from)
            })
            .collect()
    };
    let mut total = 0.0f64;
    let mut prev = block_row(0);
    for by in 1..hb {
        let cur = block_row(by);
        for bx in 0..wb - 1 {
            let s = |k: usize| prev[bx][k] + prev[bx + 1][k] + cur[bx][k] + cur[bx + 1][k];
            total += f64::from(ssim_window(s(0), s(1), s(2), s(3)));
        }
        prev = cur;
    }
    total / ((hb - 1) * (wb - 1)) as f64
}

/// SSIM of one frame pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameSsim {
    /// Per-plane SSIM (Y, U, V).
    pub planes: [f64; 3],
    /// Planes weighted by their sample counts (ffmpeg's per-frame "All").
    pub all: f64,
}

/// SSIM of `b` against `a` per plane and combined as ffmpeg does. Panics if
/// the frames differ in size.
pub fn frame_ssim(a: &Image, b: &Image) -> FrameSsim {
    let planes: [f64; 3] = std::array::from_fn(|i| plane_ssim(&a.planes[i], &b.planes[i]));
    let sizes: [f64; 3] = std::array::from_fn(|i| (a.planes[i].width * a.planes[i].height) as f64);
    let total: f64 = sizes.iter().sum();
    let all = (0..3).map(|i| planes[i] * sizes[i] / total).sum();
    FrameSsim { planes, all }
}

/// SSIM expressed in dB, `10 log10(1 / (1 - ssim))`, as ffmpeg prints it in
/// parentheses; infinite for a perfect match.
pub fn ssim_db(ssim: f64) -> f64 {
    if (1.0 - ssim).abs() > 1e-9 {
        10.0 * (1.0 / (1.0 - ssim)).log10()
    } else {
        f64::INFINITY
    }
}

/// Accumulates SSIM over a sequence of frames.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SsimStats {
    frames: u64,
    /// Sums of per-frame SSIM: Y, U, V, all.
    sum: [f64; 4],
}

impl SsimStats {
    /// No frames yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame pair and returns its SSIM.
    pub fn add(&mut self, a: &Image, b: &Image) -> FrameSsim {
        let s = frame_ssim(a, b);
        self.add_frame(&s);
        s
    }

    /// Adds an already computed frame SSIM.
    pub fn add_frame(&mut self, s: &FrameSsim) {
        self.frames += 1;
        for i in 0..3 {
            self.sum[i] += s.planes[i];
        }
        self.sum[3] += s.all;
    }

    /// Number of frames added.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Mean per-plane SSIM (ffmpeg's Y/U/V).
    pub fn planes(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.mean(i))
    }

    /// Mean of the per-frame combined SSIM (ffmpeg's "All:").
    pub fn all(&self) -> f64 {
        self.mean(3)
    }

    fn mean(&self, i: usize) -> f64 {
        if self.frames == 0 {
            1.0
        } else {
            self.sum[i] / self.frames as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(w: usize, h: usize, seed: u32, amp: u32) -> Image {
        add_noise(Image::filled(w, h, [128, 100, 160]), seed, amp)
    }

    fn add_noise(mut f: Image, seed: u32, amp: u32) -> Image {
        let mut s = seed;
        for p in &mut f.planes {
            for v in &mut p.data {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = (s >> 16) % (2 * amp + 1);
                *v = (i32::from(*v) + n as i32 - amp as i32).clamp(0, 255) as u8;
            }
        }
        f
    }

    #[test]
    fn identical_frames_hit_the_caps() {
        let f = noisy(33, 17, 1, 40);
        let p = frame_psnr(&f, &f);
        assert_eq!(p.all, MAX_PSNR);
        assert_eq!(p.planes, [MAX_PSNR; 3]);
        let s = frame_ssim(&f, &f);
        assert!((s.all - 1.0).abs() < 1e-6, "{s:?}");
        assert_eq!(ssim_db(1.0), f64::INFINITY);
    }

    #[test]
    fn psnr_of_known_error() {
        // Every sample off by 5: MSE 25, PSNR = 10 log10(65025 / 25).
        let a = Image::filled(16, 16, [100, 100, 100]);
        let b = Image::filled(16, 16, [105, 95, 105]);
        let p = frame_psnr(&a, &b);
        let want = 10.0 * (65025.0f64 / 25.0).log10();
        for v in p.planes.iter().chain([&p.all]) {
            assert!((v - want).abs() < 1e-12);
        }
        assert_eq!(p.sse, [256 * 25, 64 * 25, 64 * 25]);
        // Tiny error is capped.
        assert_eq!(sse_to_psnr(1e12, 255.0, 1.0), MAX_PSNR);
    }

    #[test]
    fn overall_is_total_sse_and_average_is_mean_of_frames() {
        let a = Image::filled(16, 16, [100, 100, 100]);
        let b1 = Image::filled(16, 16, [101, 100, 100]); // Y off by 1
        let b2 = Image::filled(16, 16, [110, 100, 100]); // Y off by 10
        let mut st = PsnrStats::new();
        let p1 = st.add(&a, &b1);
        let p2 = st.add(&a, &b2);
        let n: f64 = 384.0 * 2.0;
        let sse: f64 = 256.0 * (1.0 + 100.0);
        assert!((st.overall() - 10.0 * (65025.0 * n / sse).log10()).abs() < 1e-9);
        assert!((st.average() - (p1.all + p2.all) / 2.0).abs() < 1e-12);
        assert_eq!(st.overall_planes()[1], MAX_PSNR);
        assert!(st.overall() < st.average());
        assert_eq!(st.frames(), 2);
    }

    #[test]
    fn ssim_orders_by_distortion() {
        let a = noisy(64, 48, 7, 60);
        let mut prev = 1.0;
        for amp in [2, 8, 30] {
            // Same noise pattern, growing amplitude.
            let b = add_noise(a.clone(), 99, amp);
            let s = frame_ssim(&a, &b);
            assert!(s.all < prev, "amp {amp}: {} !< {prev}", s.all);
            assert!(s.all > 0.0);
            prev = s.all;
        }
    }

    #[test]
    fn ssim_weights_planes_by_size() {
        let a = noisy(32, 32, 3, 50);
        let mut b = a.clone();
        // Distort only U.
        for v in &mut b.planes[1].data {
            *v = v.wrapping_add(40);
        }
        let s = frame_ssim(&a, &b);
        assert!((s.planes[0] - 1.0).abs() < 1e-6);
        let want = (1024.0 * s.planes[0] + 256.0 * s.planes[1] + 256.0 * s.planes[2]) / 1536.0;
        assert!((s.all - want).abs() < 1e-12);
        assert!(s.planes[1] < 0.99);
    }

    #[test]
    fn tiny_planes_do_not_divide_by_zero() {
        let a = noisy(6, 6, 1, 10);
        let b = noisy(6, 6, 2, 10);
        assert_eq!(plane_ssim(&a.planes[0], &b.planes[0]), 1.0);
    }
}
