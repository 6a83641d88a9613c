//! Whole-pixel block copies (the prediction of a vector with no fraction)
//! with one bounds check per block instead of one per row: the twin of
//! [`crate::inter_pred::copy_block_scalar`].

/// Copies a `w` x `h` block (`w` in {4, 8, 16}) from `src[pos..]` (pitch
/// `stride`) to `dst[dst_pos..]` (pitch `dst_stride`); returns `false`
/// (having copied nothing) for other widths or if a row would leave
/// either slice.
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
) -> bool {
    if h == 0 || !matches!(w, 4 | 8 | 16) {
        return false;
    }
    let src_end = pos + (h - 1) * stride + w;
    let dst_end = dst_pos + (h - 1) * dst_stride + w;
    if src_end > src.len() || dst_end > dst.len() {
        return false;
    }
    // SAFETY: rows r in 0..h read `src[pos + r * stride..][..w]` and write
    // `dst[dst_pos + r * dst_stride..][..w]`, the last of which end at
    // `src_end` and `dst_end`, checked above; `src` and `dst` are distinct
    // borrows, so the ranges do not overlap.
    unsafe {
        let s = src.as_ptr().add(pos);
        let d = dst.as_mut_ptr().add(dst_pos);
        match w {
            16 => rows::<16>(s, stride, h, d, dst_stride),
            8 => rows::<8>(s, stride, h, d, dst_stride),
            _ => rows::<4>(s, stride, h, d, dst_stride),
        }
    }
    true
}

/// Copies `h` rows of `W` bytes; each row is a single fixed-size move.
#[inline(always)]
unsafe fn rows<const W: usize>(s: *const u8, stride: usize, h: usize, d: *mut u8, ds: usize) {
    for r in 0..h {
        core::ptr::copy_nonoverlapping(s.add(r * stride), d.add(r * ds), W);
    }
}

#[cfg(test)]
mod tests {
    use crate::inter_pred::copy_block_scalar;

    #[test]
    fn copy_matches_scalar_and_refuses_out_of_bounds() {
        let src: Vec<u8> = (0..40 * 40).map(|i| (i * 7 + i / 40) as u8).collect();
        for w in [4, 8, 16] {
            for h in [1, 4, 8, 16] {
                for pos in [0, 3, 41, 40 * 40 - (h - 1) * 40 - w] {
                    let mut a = vec![1u8; 20 * 17];
                    let mut b = a.clone();
                    assert!(super::copy_block(&src, pos, 40, w, h, &mut a, 3, 20));
                    copy_block_scalar(&src, pos, 40, w, h, &mut b, 3, 20);
                    assert_eq!(a, b);
                }
                let mut a = vec![1u8; 20 * 17];
                let last = 40 * 40 - (h - 1) * 40 - w + 1;
                assert!(!super::copy_block(&src, last, 40, w, h, &mut a, 3, 20));
                assert!(!super::copy_block(
                    &src,
                    0,
                    40,
                    w,
                    h,
                    &mut a[..(h - 1) * 20 + w + 2],
                    3,
                    20
                ));
            }
        }
        let mut a = [0u8; 64];
        assert!(!super::copy_block(&src, 0, 40, 5, 4, &mut a, 0, 8));
    }
}
