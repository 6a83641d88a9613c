//! Runtime CPU dispatch for the encoder's hot kernels.
//!
//! The kernels are written as plain loops over fixed-width rows, which the
//! compiler vectorises; built for the x86-64 baseline (SSE2) they lack
//! 32-bit vector multiplies and use half-width registers. Each dispatched
//! kernel is compiled a second time with AVX2 enabled and chosen once per
//! call from a cached CPU check, so one binary runs everywhere and uses
//! the wider instructions where they exist. Both versions come from the
//! same source, and tests compare them on random inputs.

/// Whether the CPU supports AVX2 (detected once).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 unknown, 1 no, 2 yes.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let yes = std::is_x86_feature_detected!("avx2");
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        s => s == 2,
    }
}

/// The expansion's `unsafe` (declaring the AVX2 build, and calling it
/// after the CPU check) carries its own `#[allow(unsafe_code)]`, so the
/// modules that use the macro stay under the crate's `deny`.
///
/// Defines `$name`, which runs `$body` (an expression over the arguments)
/// compiled for AVX2 when the CPU has it and for the baseline otherwise.
/// The body should call `#[inline(always)]` kernels so that they are
/// compiled into each version.
macro_rules! dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments, unsafe_code)]
                unsafe fn avx2($($arg: $ty),*) -> $ret $body
                if $crate::dsp::dispatch::has_avx2() {
                    // SAFETY: `avx2` only differs from the portable body in
                    // being compiled for AVX2, which the CPU was just
                    // checked to support; it has no other preconditions.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body
        }
    };
}

pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use crate::encode::fdct::fdct4x4;
    use crate::encode::sad::{sad, sse_and_sum};

    /// The dispatched kernels (AVX2 where available) equal plain scalar
    /// restatements on random blocks of every size.
    #[test]
    fn dispatched_kernels_match_scalar() {
        let mut s = 3u32;
        let mut rnd = move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        };
        let a: Vec<u8> = (0..64 * 40).map(|_| rnd() as u8).collect();
        let b: Vec<u8> = (0..64 * 40).map(|_| rnd() as u8).collect();
        for (w, h) in [(16, 16), (16, 8), (8, 16), (8, 8), (4, 4), (12, 5)] {
            for _ in 0..50 {
                let (pa, pb) = ((rnd() % 200) as usize, (rnd() % 200) as usize);
                let (mut sad_ref, mut sse_ref, mut sum_ref) = (0u32, 0u64, 0i64);
                for y in 0..h {
                    for x in 0..w {
                        let d = i64::from(a[pa + y * 64 + x]) - i64::from(b[pb + y * 40 + x]);
                        sad_ref += d.unsigned_abs() as u32;
                        sse_ref += (d * d) as u64;
                        sum_ref += d;
                    }
                }
                assert_eq!(sad(&a, pa, 64, &b, pb, 40, w, h), sad_ref);
                assert_eq!(
                    sse_and_sum(&a, pa, 64, &b, pb, 40, w, h),
                    (sse_ref, sum_ref)
                );
            }
        }
        for _ in 0..10_000 {
            let r: [i16; 16] = core::array::from_fn(|_| (rnd() % 511) as i16 - 255);
            // fdct4x4's own tests pin its values; here the dispatched build
            // must agree with the portable one.
            assert_eq!(
                fdct4x4(&r),
                crate::encode::fdct::fdct4x4_portable_for_test(&r)
            );
        }
    }
}
