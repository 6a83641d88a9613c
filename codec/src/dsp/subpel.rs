//! Six-tap sub-pixel prediction with SSSE3 (RFC 6386 section 18.3), the
//! SIMD twin of [`crate::inter_pred::sixtap_scalar`].
//!
//! `pmaddubsw` multiplies unsigned pixel bytes by signed tap bytes (every
//! six-tap coefficient fits in `i8`) and adds adjacent products into a
//! saturating `i16`. The taps are paired so that no step saturates
//! before the last one: the outer pair `(t0, t5)` (at most 1530) plus the
//! pair `(t2, t4)`, whose positive tap is matched with a negative one (at
//! most 31365 on its own, 28305 with the outer pair), and only then the
//! pair `(t1, t3)`. A saturating add of two in-range values is the exact
//! sum clamped to `i16`, and a clamped sum of 32767 or more ends up as
//! 255 after `+ 64 >> 7` and the unsigned pack either way, so the result
//! equals the scalar `clamp((sum + 64) >> 7, 0, 255)` for every input.
//! The tests check this on random and on 0/255 planes for every filter.

/// Predicts a `w` x `h` six-tap block with SSSE3 if the CPU has it and
/// every byte the wide loads touch lies inside `src`; returns `false`
/// (having written nothing) otherwise. Arguments as
/// [`crate::inter_pred::sixtap`], which has checked `mx`, `my` < 8 and
/// `w`, `h` in {4, 8, 16}.
///
/// Where the CPU has AVX2, the same code compiled with AVX2 enabled runs
/// instead (VEX three-operand forms, fewer register copies).
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
) -> bool {
    #[cfg(target_arch = "x86_64")]
    let avx2 = super::dispatch::has_avx2();
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    sixtap_with(
        avx2, src, pos, stride, mx, my, w, h, dst, dst_pos, dst_stride,
    )
}

/// [`sixtap`], with the AVX2 build allowed or not (the tests run both).
#[allow(clippy::too_many_arguments)]
#[inline]
fn sixtap_with(
    avx2: bool,
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
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !super::cpu::features().ssse3 || mx >= 8 || my >= 8 || h > 16 || h == 0 {
            return false;
        }
        // Reads span rows -2..=h+2 and, per row, bytes -2 .. -2 + 16 (one
        // 16-byte load for 8 outputs) or -2 .. 6 + 16 (two, for 16).
        let tail = if w == 16 { 22 } else { 14 };
        let Some(first) = pos.checked_sub(2 * stride + 2) else {
            return false;
        };
        let end = pos + (h + 2) * stride + tail;
        if end > src.len() || dst_pos + (h - 1) * dst_stride + w > dst.len() {
            return false;
        }
        let _ = first;
        // SAFETY: SSSE3 was detected above, and AVX2 before `avx2` was
        // set (see `sixtap`). Every source access is inside
        // `src[first..end]` (see `x86::h8`/`x86::v_row`: rows -2..=h+2
        // of `pos`, bytes -2..tail of each), every destination store
        // inside `dst[dst_pos..dst_pos + (h - 1) * dst_stride + w]`, both
        // checked just now; the intermediate buffer is local, sized for
        // 21 rows of 16 and left uninitialised, and the second pass reads
        // only bytes the first pass wrote (see `x86::sixtap`).
        unsafe {
            let s = src.as_ptr().add(pos);
            let d = dst.as_mut_ptr().add(dst_pos);
            // `avx2` is only true when the CPU has AVX2 (`sixtap`, or the
            // tests after the same check); that build is the same SSSE3
            // code in VEX form.
            if avx2 {
                match w {
                    16 => x86::sixtap_avx2::<16>(s, stride, mx, my, h, d, dst_stride),
                    8 => x86::sixtap_avx2::<8>(s, stride, mx, my, h, d, dst_stride),
                    4 => x86::sixtap_avx2::<4>(s, stride, mx, my, h, d, dst_stride),
                    _ => return false,
                }
                return true;
            }
            match w {
                16 => x86::sixtap_ssse3::<16>(s, stride, mx, my, h, d, dst_stride),
                8 => x86::sixtap_ssse3::<8>(s, stride, mx, my, h, d, dst_stride),
                4 => x86::sixtap_ssse3::<4>(s, stride, mx, my, h, d, dst_stride),
                _ => return false,
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (
            avx2, src, pos, stride, mx, my, w, h, dst, dst_pos, dst_stride,
        );
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use crate::tables::SIXTAP_FILTERS;

    /// One filter as `pmaddubsw` operands: each 16-bit lane holds a tap
    /// pair, low byte for the first sample of a pair.
    struct Taps {
        /// `(t0, t5)`: samples at -2 and +3.
        outer: __m128i,
        /// `(t2, t4)`: samples at 0 and +2.
        mid: __m128i,
        /// `(t1, t3)`: samples at -1 and +1.
        inner: __m128i,
        /// Whether the outer taps are non-zero (even fractions).
        six: bool,
    }

    #[inline(always)]
    unsafe fn pair(lo: i32, hi: i32) -> __m128i {
        _mm_set1_epi16(((hi as i16) << 8) | (lo as i16 & 0xff))
    }

    #[inline(always)]
    unsafe fn taps(f: usize) -> Taps {
        let t = SIXTAP_FILTERS[f];
        Taps {
            outer: pair(t[0], t[5]),
            mid: pair(t[2], t[4]),
            inner: pair(t[1], t[3]),
            six: t[0] != 0 || t[5] != 0,
        }
    }

    /// `(sum + 64) >> 7` of the three pair sums, in the order that keeps
    /// saturation exact (module docs).
    #[inline(always)]
    unsafe fn finish(outer: __m128i, mid: __m128i, inner: __m128i, t: &Taps) -> __m128i {
        let mut sum = mid;
        if t.six {
            sum = _mm_adds_epi16(outer, sum);
        }
        sum = _mm_adds_epi16(sum, inner);
        _mm_srai_epi16(_mm_adds_epi16(sum, _mm_set1_epi16(64)), 7)
    }

    /// Horizontal six-tap of 8 outputs from the 16 bytes at `p` (the
    /// sample two before the first output), as `i16` lanes.
    #[inline(always)]
    unsafe fn h8(p: *const u8, t: &Taps) -> __m128i {
        let v = _mm_loadu_si128(p as *const __m128i);
        let sh_outer = _mm_setr_epi8(0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 5, 10, 6, 11, 7, 12);
        let sh_mid = _mm_setr_epi8(2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9, 8, 10, 9, 11);
        let sh_inner = _mm_setr_epi8(1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9, 8, 10);
        let outer = if t.six {
            _mm_maddubs_epi16(_mm_shuffle_epi8(v, sh_outer), t.outer)
        } else {
            _mm_setzero_si128()
        };
        let mid = _mm_maddubs_epi16(_mm_shuffle_epi8(v, sh_mid), t.mid);
        let inner = _mm_maddubs_epi16(_mm_shuffle_epi8(v, sh_inner), t.inner);
        finish(outer, mid, inner, t)
    }

    /// Horizontal pass of one row of `W` outputs: `s` is the block's
    /// first sample of the row; reads `s - 2 .. s + 14` (or `s + 22` for
    /// `W` = 16).
    #[inline(always)]
    unsafe fn h_row<const W: usize>(s: *const u8, t: &Taps, out: *mut u8) {
        let lo = h8(s.sub(2), t);
        if W == 16 {
            let hi = h8(s.add(6), t);
            _mm_storeu_si128(out as *mut __m128i, _mm_packus_epi16(lo, hi));
        } else {
            store::<W>(out, _mm_packus_epi16(lo, lo));
        }
    }

    /// Loads `W` bytes (4, 8 or 16) into the low lanes.
    #[inline(always)]
    unsafe fn load<const W: usize>(p: *const u8) -> __m128i {
        match W {
            16 => _mm_loadu_si128(p as *const __m128i),
            8 => _mm_loadl_epi64(p as *const __m128i),
            _ => _mm_cvtsi32_si128(core::ptr::read_unaligned(p as *const i32)),
        }
    }

    /// Stores the low `W` bytes (4, 8 or 16).
    #[inline(always)]
    unsafe fn store<const W: usize>(p: *mut u8, v: __m128i) {
        match W {
            16 => _mm_storeu_si128(p as *mut __m128i, v),
            8 => _mm_storel_epi64(p as *mut __m128i, v),
            _ => core::ptr::write_unaligned(p as *mut i32, _mm_cvtsi128_si32(v)),
        }
    }

    /// Vertical pass of one row of `W` outputs at `s`, reading `W` bytes
    /// of the rows -2..=3 around it (`pitch` apart).
    #[inline(always)]
    unsafe fn v_row<const W: usize>(s: *const u8, pitch: usize, t: &Taps, out: *mut u8) {
        let up = s.sub(2 * pitch);
        let r0 = load::<W>(up);
        let r1 = load::<W>(up.add(pitch));
        let r2 = load::<W>(up.add(2 * pitch));
        let r3 = load::<W>(up.add(3 * pitch));
        let r4 = load::<W>(up.add(4 * pitch));
        let r5 = load::<W>(up.add(5 * pitch));
        let zero = _mm_setzero_si128();
        let outer = if t.six {
            _mm_maddubs_epi16(_mm_unpacklo_epi8(r0, r5), t.outer)
        } else {
            zero
        };
        let mid = _mm_maddubs_epi16(_mm_unpacklo_epi8(r2, r4), t.mid);
        let inner = _mm_maddubs_epi16(_mm_unpacklo_epi8(r1, r3), t.inner);
        let lo = finish(outer, mid, inner, t);
        if W == 16 {
            let outer = if t.six {
                _mm_maddubs_epi16(_mm_unpackhi_epi8(r0, r5), t.outer)
            } else {
                zero
            };
            let mid = _mm_maddubs_epi16(_mm_unpackhi_epi8(r2, r4), t.mid);
            let inner = _mm_maddubs_epi16(_mm_unpackhi_epi8(r1, r3), t.inner);
            let hi = finish(outer, mid, inner, t);
            _mm_storeu_si128(out as *mut __m128i, _mm_packus_epi16(lo, hi));
        } else {
            store::<W>(out, _mm_packus_epi16(lo, lo));
        }
    }

    /// [`sixtap`] compiled for SSSE3. The helpers are all
    /// `#[inline(always)]` without target features of their own, so that
    /// they are compiled into this entry and into [`sixtap_avx2`] alike.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn sixtap_ssse3<const W: usize>(
        s: *const u8,
        stride: usize,
        mx: usize,
        my: usize,
        h: usize,
        d: *mut u8,
        dst_stride: usize,
    ) {
        sixtap::<W>(s, stride, mx, my, h, d, dst_stride)
    }

    /// [`sixtap`] compiled with AVX2 enabled: the same SSSE3 code in
    /// VEX three-operand form, with fewer register copies.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sixtap_avx2<const W: usize>(
        s: *const u8,
        stride: usize,
        mx: usize,
        my: usize,
        h: usize,
        d: *mut u8,
        dst_stride: usize,
    ) {
        sixtap::<W>(s, stride, mx, my, h, d, dst_stride)
    }

    /// The whole block; the skipped passes of zero fractions are exact
    /// (see `inter_pred`'s module docs).
    #[inline(always)]
    unsafe fn sixtap<const W: usize>(
        s: *const u8,
        stride: usize,
        mx: usize,
        my: usize,
        h: usize,
        d: *mut u8,
        dst_stride: usize,
    ) {
        match (mx, my) {
            (0, 0) => {
                for r in 0..h {
                    store::<W>(d.add(r * dst_stride), load::<W>(s.add(r * stride)));
                }
            }
            (_, 0) => {
                let t = taps(mx);
                for r in 0..h {
                    h_row::<W>(s.add(r * stride), &t, d.add(r * dst_stride));
                }
            }
            (0, _) => {
                let t = taps(my);
                for r in 0..h {
                    v_row::<W>(s.add(r * stride), stride, &t, d.add(r * dst_stride));
                }
            }
            _ => {
                let (tx, ty) = (taps(mx), taps(my));
                // Not cleared: the first pass writes rows 0..h + 5 of `W`
                // bytes each (at most 21 x 16), and the second reads only
                // those (rows r..=r + 5 for r < h).
                let mut tmp = core::mem::MaybeUninit::<[u8; 16 * 21]>::uninit();
                let first = s.sub(2 * stride);
                let t = tmp.as_mut_ptr().cast::<u8>();
                for r in 0..h + 5 {
                    h_row::<W>(first.add(r * stride), &tx, t.add(r * W));
                }
                let t = tmp.as_ptr().cast::<u8>();
                for r in 0..h {
                    v_row::<W>(t.add((r + 2) * W), W, &ty, d.add(r * dst_stride));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::inter_pred::sixtap_scalar;

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

    /// The SSSE3 kernel equals the scalar twin for every filter pair and
    /// block size, on random planes, 0/255 planes (the extremes of every
    /// tap sign pattern) and constant planes, at several positions and
    /// strides.
    #[test]
    fn sixtap_simd_matches_scalar() {
        if !crate::dsp::cpu::features().ssse3 {
            eprintln!("no SSSE3 on this CPU: nothing to compare");
            return;
        }
        let mut rng = Lcg(5);
        for kind in 0..4 {
            for stride in [24usize, 40, 61] {
                let src: Vec<u8> = (0..stride * 30)
                    .map(|i| match kind {
                        0 => rng.next() as u8,
                        1 => {
                            if rng.next() & 1 == 0 {
                                0
                            } else {
                                255
                            }
                        }
                        2 => 255,
                        _ => (((i % stride) * 13) ^ ((i / stride) * 7)) as u8,
                    })
                    .collect();
                for mx in 0..8 {
                    for my in 0..8 {
                        for w in [4, 8, 16] {
                            for h in [4, 8, 16] {
                                let pos = 2 * stride + 2 + (rng.next() % 3) as usize;
                                let mut a = vec![0x55u8; 20 * 18];
                                let mut b = a.clone();
                                let mut c = a.clone();
                                assert!(super::sixtap(
                                    &src, pos, stride, mx, my, w, h, &mut a, 21, 20
                                ));
                                sixtap_scalar(&src, pos, stride, mx, my, w, h, &mut b, 21, 20);
                                assert_eq!(
                                    a, b,
                                    "kind {kind} stride {stride} mx {mx} my {my} {w}x{h}"
                                );
                                // The SSSE3 build too, whatever `sixtap`
                                // dispatched to.
                                assert!(super::sixtap_with(
                                    false, &src, pos, stride, mx, my, w, h, &mut c, 21, 20
                                ));
                                assert_eq!(c, b, "SSSE3 build: mx {mx} my {my} {w}x{h}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Blocks whose wide loads would leave the buffer are refused, so
    /// the caller's scalar path handles them.
    #[test]
    fn sixtap_simd_refuses_blocks_at_buffer_edges() {
        let src = vec![7u8; 21 * 21];
        let mut out = [0u8; 256];
        // 16x16 with exactly the 2-before / 3-after margin: the second
        // 16-byte load of the last rows would run past the end.
        assert!(!super::sixtap(
            &src,
            2 * 21 + 2,
            21,
            3,
            5,
            16,
            16,
            &mut out,
            0,
            16
        ));
        // Too close to the start.
        assert!(!super::sixtap(
            &src,
            2 * 21 + 1,
            21,
            3,
            5,
            4,
            4,
            &mut out,
            0,
            16
        ));
        // Destination too small.
        let big = vec![7u8; 64 * 64];
        assert!(!super::sixtap(
            &big,
            4 * 64 + 4,
            64,
            3,
            5,
            16,
            16,
            &mut out[..255],
            0,
            16
        ));
    }
}
