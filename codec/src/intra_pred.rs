//! Intra prediction (RFC 6386 section 12; dixie `predict.c`, RFC 20.14).
//!
//! All predictors take their edge pixels as explicit arrays and write the
//! predicted block into `dst` at `pos` with row pitch `stride`. They never
//! read `dst`, so the caller decides where edges come from.
//!
//! Edge conventions (the caller's job, as in libvpx `vp8_setup_intra_recon`):
//! pixels above the frame, including the corner of the top macroblock row,
//! are 127; pixels left of the frame, including the corner of the left
//! macroblock column below the top row, are 129. For 16x16 and chroma DC
//! prediction the `have_above` / `have_left` flags say which edges really
//! exist; dixie gets the same result by copying the existing edge over the
//! missing one (and 127/129 when neither exists, which averages to 128).

use crate::prediction::{ChromaMode, LumaMode, SubblockMode};

/// Panics unless an `n` x `n` block at `pos` with `stride` fits in `len`.
#[inline(always)]
fn check_block(len: usize, pos: usize, stride: usize, n: usize) {
    assert!(
        stride >= n && pos + (n - 1) * stride + n <= len,
        "{n}x{n} block at {pos} (stride {stride}) out of bounds of {len}-byte buffer"
    );
}

/// Shared implementation of the whole-block modes for N = 16 (luma) and
/// N = 8 (chroma), RFC 12.2.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn predict_block<const N: usize>(
    mode: ChromaMode,
    above: &[u8; N],
    left: &[u8; N],
    top_left: u8,
    have_above: bool,
    have_left: bool,
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) {
    check_block(dst.len(), pos, stride, N);
    let rows = dst[pos..pos + (N - 1) * stride + N].chunks_mut(stride);
    match mode {
        ChromaMode::Dc => {
            // log2(N) - 1 + number of edges: (sum + half) >> shift, which is
            // exactly dixie's "duplicate the existing edge" trick.
            let log2n = N.trailing_zeros();
            let sum_above: u32 = above.iter().map(|&v| u32::from(v)).sum();
            let sum_left: u32 = left.iter().map(|&v| u32::from(v)).sum();
            let dc = match (have_above, have_left) {
                (false, false) => 128,
                (true, true) => {
                    let shift = log2n + 1;
                    (sum_above + sum_left + (1 << (shift - 1))) >> shift
                }
                (true, false) => (sum_above + (1 << (log2n - 1))) >> log2n,
                (false, true) => (sum_left + (1 << (log2n - 1))) >> log2n,
            } as u8;
            for row in rows {
                row[..N].fill(dc);
            }
        }
        ChromaMode::V => {
            for row in rows {
                row[..N].copy_from_slice(above);
            }
        }
        ChromaMode::H => {
            for (row, &l) in rows.zip(left) {
                row[..N].fill(l);
            }
        }
        ChromaMode::Tm => {
            for (row, &l) in rows.zip(left) {
                let d = i16::from(l) - i16::from(top_left);
                for (px, &a) in row[..N].iter_mut().zip(above) {
                    *px = (i16::from(a) + d).clamp(0, 255) as u8;
                }
            }
        }
    }
}

/// Predicts a 16x16 luma block with one of the whole-block modes
/// `Dc`, `V`, `H` or `Tm` (RFC 12.2, 12.3).
///
/// * DC: `(sum(above) + sum(left) + 16) >> 5` when both edges exist,
///   `(sum + 8) >> 4` of the one that exists, 128 if neither.
/// * V / H: copies `above` down / `left` across.
/// * TM: `clamp(left[r] + above[c] - top_left, 0, 255)`.
///
/// V, H and TM use the edge arrays as given, whatever the flags say; the
/// caller fills edges outside the frame with 127 (above) and 129 (left).
///
/// # Panics
/// On an invalid mode or if the block does not fit in `dst`.
#[allow(clippy::too_many_arguments)]
pub fn predict_luma16(
    mode: LumaMode,
    above: &[u8; 16],
    left: &[u8; 16],
    top_left: u8,
    have_above: bool,
    have_left: bool,
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) {
    // The whole-block modes share their numbers with the chroma modes.
    let mode = match mode {
        LumaMode::Dc => ChromaMode::Dc,
        LumaMode::V => ChromaMode::V,
        LumaMode::H => ChromaMode::H,
        LumaMode::Tm => ChromaMode::Tm,
        _ => panic!("{mode:?} is not a 16x16 intra prediction mode"),
    };
    predict_block::<16>(
        mode, above, left, top_left, have_above, have_left, dst, pos, stride,
    );
}

/// Predicts one 8x8 chroma block (RFC 12.2).
///
/// Same as [`predict_luma16`] on 8x8: DC is `(sum + 8) >> 4` with both
/// edges, `(sum + 4) >> 3` with one, 128 with none.
///
/// # Panics
/// On an invalid mode or if the block does not fit in `dst`.
#[allow(clippy::too_many_arguments)]
pub fn predict_chroma8(
    mode: ChromaMode,
    above: &[u8; 8],
    left: &[u8; 8],
    top_left: u8,
    have_above: bool,
    have_left: bool,
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) {
    predict_block::<8>(
        mode, above, left, top_left, have_above, have_left, dst, pos, stride,
    );
}

/// `(x + 2y + z + 2) >> 2`, the 3-tap smoothing average of RFC 12.3.
#[inline(always)]
fn avg3(x: u8, y: u8, z: u8) -> u8 {
    ((u16::from(x) + 2 * u16::from(y) + u16::from(z) + 2) >> 2) as u8
}

/// `(x + y + 1) >> 1`, the 2-tap average of RFC 12.3.
#[inline(always)]
fn avg2(x: u8, y: u8) -> u8 {
    ((u16::from(x) + u16::from(y) + 1) >> 1) as u8
}

/// Computes the 4x4 subblock prediction as rows (RFC 12.3).
fn subblock_rows(
    mode: SubblockMode,
    above: &[u8; 8],
    left: &[u8; 4],
    top_left: u8,
) -> [[u8; 4]; 4] {
    let a = above;
    let l = left;
    let p = top_left;
    // The edge as one line from bottom-left, through the corner, to the
    // above-right: e[0..4] = L[3..=0], e[4] = P, e[5..13] = A[0..8].
    let e: [u8; 13] = [
        l[3], l[2], l[1], l[0], p, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
    ];
    match mode {
        SubblockMode::Dc => {
            let sum: u32 = a[..4].iter().chain(l).map(|&v| u32::from(v)).sum();
            [[((sum + 4) >> 3) as u8; 4]; 4]
        }
        SubblockMode::Tm => core::array::from_fn(|r| {
            let d = i16::from(l[r]) - i16::from(p);
            core::array::from_fn(|c| (i16::from(a[c]) + d).clamp(0, 255) as u8)
        }),
        SubblockMode::Ve => {
            // Smoothed above row, using the corner and the first above-right.
            let row = core::array::from_fn(|c| avg3(e[4 + c], e[5 + c], e[6 + c]));
            [row; 4]
        }
        SubblockMode::He => {
            // Smoothed left column; the bottom row repeats L[3].
            let v = [
                avg3(p, l[0], l[1]),
                avg3(l[0], l[1], l[2]),
                avg3(l[1], l[2], l[3]),
                avg3(l[2], l[3], l[3]),
            ];
            core::array::from_fn(|r| [v[r]; 4])
        }
        SubblockMode::Ld => core::array::from_fn(|r| {
            core::array::from_fn(|c| {
                let i = r + c;
                // The last sample repeats A[7].
                avg3(a[i], a[i + 1], a[(i + 2).min(7)])
            })
        }),
        SubblockMode::Rd => core::array::from_fn(|r| {
            core::array::from_fn(|c| {
                let i = 4 + c - r;
                avg3(e[i - 1], e[i], e[i + 1])
            })
        }),
        SubblockMode::Vr => {
            let r0: [u8; 4] = core::array::from_fn(|c| avg2(e[4 + c], e[5 + c]));
            let r1: [u8; 4] = core::array::from_fn(|c| avg3(e[3 + c], e[4 + c], e[5 + c]));
            [
                r0,
                r1,
                [avg3(l[1], l[0], p), r0[0], r0[1], r0[2]],
                [avg3(l[2], l[1], l[0]), r1[0], r1[1], r1[2]],
            ]
        }
        SubblockMode::Vl => {
            let r0: [u8; 4] = core::array::from_fn(|c| avg2(a[c], a[c + 1]));
            let r1: [u8; 4] = core::array::from_fn(|c| avg3(a[c], a[c + 1], a[c + 2]));
            [
                r0,
                r1,
                [r0[1], r0[2], r0[3], avg3(a[4], a[5], a[6])],
                [r1[1], r1[2], r1[3], avg3(a[5], a[6], a[7])],
            ]
        }
        SubblockMode::Hd => {
            let r0 = [
                avg2(l[0], p),
                avg3(l[0], p, a[0]),
                avg3(p, a[0], a[1]),
                avg3(a[0], a[1], a[2]),
            ];
            let r1 = [avg2(l[1], l[0]), avg3(l[1], l[0], p), r0[0], r0[1]];
            let r2 = [avg2(l[2], l[1]), avg3(l[2], l[1], l[0]), r1[0], r1[1]];
            let r3 = [avg2(l[3], l[2]), avg3(l[3], l[2], l[1]), r2[0], r2[1]];
            [r0, r1, r2, r3]
        }
        SubblockMode::Hu => [
            [
                avg2(l[0], l[1]),
                avg3(l[0], l[1], l[2]),
                avg2(l[1], l[2]),
                avg3(l[1], l[2], l[3]),
            ],
            [
                avg2(l[1], l[2]),
                avg3(l[1], l[2], l[3]),
                avg2(l[2], l[3]),
                avg3(l[2], l[3], l[3]),
            ],
            [avg2(l[2], l[3]), avg3(l[2], l[3], l[3]), l[3], l[3]],
            [l[3]; 4],
        ],
    }
}

/// Predicts one 4x4 luma subblock with one of the ten subblock modes
/// `SubblockMode::Dc` (0) .. `SubblockMode::Hu` (9) (RFC 12.3).
///
/// `above[0..4]` is the row above the subblock and `above[4..8]` the four
/// pixels above and to the right; `left` is the column to the left (top to
/// bottom) and `top_left` the corner pixel. Formulas are those of RFC 12.3
/// and dixie's `predict_*_4x4`, including their edge quirks: `SubblockMode::Ve`
/// smooths with the corner and `above[4]`, `SubblockMode::He`'s last row is
/// `(L[2] + 3 L[3] + 2) >> 2`, `SubblockMode::Ld`'s last pixel repeats `above[7]`,
/// and `SubblockMode::Hu` fills the bottom-right with `L[3]`.
///
/// # Panics
/// On an invalid mode or if the block does not fit in `dst`.
pub fn predict_4x4(
    mode: SubblockMode,
    above: &[u8; 8],
    left: &[u8; 4],
    top_left: u8,
    dst: &mut [u8],
    pos: usize,
    stride: usize,
) {
    check_block(dst.len(), pos, stride, 4);
    let block = subblock_rows(mode, above, left, top_left);
    for (r, row) in block.iter().enumerate() {
        let start = pos + r * stride;
        dst[start..start + 4].copy_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run4(mode: SubblockMode, above: [u8; 8], left: [u8; 4], p: u8) -> [[u8; 4]; 4] {
        let mut buf = [0u8; 16];
        predict_4x4(mode, &above, &left, p, &mut buf, 0, 4);
        core::array::from_fn(|r| buf[4 * r..4 * r + 4].try_into().unwrap())
    }

    const A: [u8; 8] = [10, 20, 30, 40, 50, 60, 70, 80];
    const L: [u8; 4] = [12, 22, 32, 42];
    const P: u8 = 4;

    #[test]
    fn luma16_dc_variants() {
        let above = [100u8; 16];
        let mut left = [50u8; 16];
        left[0] = 51; // sum_left = 801
        let mut buf = [0u8; 16 * 20];
        // both: (1600 + 801 + 16) >> 5 = 75
        predict_luma16(LumaMode::Dc, &above, &left, 0, true, true, &mut buf, 2, 20);
        assert!(buf[2..18].iter().all(|&v| v == 75));
        assert_eq!(buf[0], 0);
        assert_eq!(buf[18], 0);
        assert!(buf[15 * 20 + 2..15 * 20 + 18].iter().all(|&v| v == 75));
        // above only: (1600 + 8) >> 4 = 100
        predict_luma16(LumaMode::Dc, &above, &left, 0, true, false, &mut buf, 2, 20);
        assert_eq!(buf[2], 100);
        // left only: (801 + 8) >> 4 = 50
        predict_luma16(LumaMode::Dc, &above, &left, 0, false, true, &mut buf, 2, 20);
        assert_eq!(buf[2], 50);
        // none: 128
        predict_luma16(
            LumaMode::Dc,
            &above,
            &left,
            0,
            false,
            false,
            &mut buf,
            2,
            20,
        );
        assert!(buf[2..18].iter().all(|&v| v == 128));
    }

    #[test]
    fn luma16_dc_rounding_matches_dixie_duplication() {
        // dixie duplicates the existing edge over the missing one and then
        // uses (sum + 16) >> 5; check equality for awkward sums.
        for s in 0..16u8 {
            let above: [u8; 16] =
                core::array::from_fn(|i| s.wrapping_mul(37).wrapping_add(i as u8 * 13));
            let sum: u32 = above.iter().map(|&v| u32::from(v)).sum();
            let dixie = ((2 * sum + 16) >> 5) as u8;
            let mut buf = [0u8; 256];
            predict_luma16(
                LumaMode::Dc,
                &above,
                &[0; 16],
                0,
                true,
                false,
                &mut buf,
                0,
                16,
            );
            assert_eq!(buf[0], dixie);
        }
    }

    #[test]
    fn chroma8_modes() {
        let above: [u8; 8] = [10, 20, 30, 40, 50, 60, 70, 250];
        let left: [u8; 8] = [5, 6, 7, 8, 9, 10, 11, 200];
        let mut buf = [0u8; 64];
        // DC both: sum = 530 + 256 = 786; (786 + 8) >> 4 = 49
        predict_chroma8(ChromaMode::Dc, &above, &left, 0, true, true, &mut buf, 0, 8);
        assert!(buf.iter().all(|&v| v == 49));
        // DC left only: (256 + 4) >> 3 = 32
        predict_chroma8(
            ChromaMode::Dc,
            &above,
            &left,
            0,
            false,
            true,
            &mut buf,
            0,
            8,
        );
        assert!(buf.iter().all(|&v| v == 32));
        predict_chroma8(ChromaMode::V, &above, &left, 0, true, true, &mut buf, 0, 8);
        for r in 0..8 {
            assert_eq!(buf[8 * r..8 * r + 8], above);
        }
        predict_chroma8(ChromaMode::H, &above, &left, 0, true, true, &mut buf, 0, 8);
        for r in 0..8 {
            assert!(buf[8 * r..8 * r + 8].iter().all(|&v| v == left[r]));
        }
        // TM with P = 20: row 0 (L=5): A - 15 clamped; row 7 (L=200): A + 180.
        predict_chroma8(
            ChromaMode::Tm,
            &above,
            &left,
            20,
            true,
            true,
            &mut buf,
            0,
            8,
        );
        assert_eq!(buf[0..8], [0, 5, 15, 25, 35, 45, 55, 235]);
        assert_eq!(buf[56..64], [190, 200, 210, 220, 230, 240, 250, 255]);
    }

    #[test]
    fn luma16_v_h_tm() {
        let above: [u8; 16] = core::array::from_fn(|i| (i * 10) as u8);
        let left: [u8; 16] = core::array::from_fn(|i| (i * 16) as u8);
        let mut buf = [0u8; 256];
        predict_luma16(LumaMode::V, &above, &left, 0, false, false, &mut buf, 0, 16);
        assert_eq!(buf[16 * 9..16 * 10], above);
        predict_luma16(LumaMode::H, &above, &left, 0, false, false, &mut buf, 0, 16);
        assert!(buf[16 * 9..16 * 10].iter().all(|&v| v == 144));
        predict_luma16(
            LumaMode::Tm,
            &above,
            &left,
            100,
            true,
            true,
            &mut buf,
            0,
            16,
        );
        // r = 9: L = 144, d = 44; c = 15: 150 + 44 = 194; r = 15: L = 240,
        // d = 140; c = 15: 290 -> 255; r = 0, c = 0: 0 - 100 -> 0.
        assert_eq!(buf[16 * 9 + 15], 194);
        assert_eq!(buf[255], 255);
        assert_eq!(buf[0], 0);
        assert_eq!(buf[16 * 9], 44);
    }

    #[test]
    fn b_dc() {
        // (10+20+30+40 + 12+22+32+42 + 4) >> 3 = 212 >> 3 = 26
        assert_eq!(run4(SubblockMode::Dc, A, L, P), [[26; 4]; 4]);
    }

    #[test]
    fn b_tm() {
        let out = run4(SubblockMode::Tm, A, L, 30);
        // row 0: L=12, d=-18: [-8->0, 2, 12, 22]; row 3: L=42, d=12
        assert_eq!(out[0], [0, 2, 12, 22]);
        assert_eq!(out[3], [22, 32, 42, 52]);
    }

    #[test]
    fn b_ve() {
        // (4+20+20+2)>>2 = 11, (10+40+30+2)>>2 = 20, 30, (30+80+50+2)>>2 = 40
        assert_eq!(run4(SubblockMode::Ve, A, L, P), [[11, 20, 30, 40]; 4]);
        // above[4] matters for the last column.
        let mut a = A;
        a[4] = 255;
        // (30 + 80 + 255 + 2) >> 2 = 91
        assert_eq!(run4(SubblockMode::Ve, a, L, P)[0][3], 91);
    }

    #[test]
    fn b_he() {
        // (4+24+22+2)>>2 = 13, (12+44+32+2)>>2 = 22, (22+64+42+2)>>2 = 32,
        // (32+84+42+2)>>2 = 40
        let out = run4(SubblockMode::He, A, L, P);
        assert_eq!(out, [[13; 4], [22; 4], [32; 4], [40; 4]]);
    }

    #[test]
    fn b_ld() {
        // A is linear (step 10), so avg3 is exact except the last pixel:
        // (70 + 160 + 80 + 2) >> 2 = 78.
        let out = run4(SubblockMode::Ld, A, L, P);
        assert_eq!(out[0], [20, 30, 40, 50]);
        assert_eq!(out[1], [30, 40, 50, 60]);
        assert_eq!(out[2], [40, 50, 60, 70]);
        assert_eq!(out[3], [50, 60, 70, 78]);
    }

    #[test]
    fn b_rd() {
        // Edge line: L3..L0 = 42 32 22 12, P = 4, A = 10 20 30 ...
        // (0,0) = (12 + 8 + 10 + 2) >> 2 = 8
        // (0,1) = (4 + 20 + 20 + 2) >> 2 = 11; (0,2) = 20; (0,3) = 30
        // (1,0) = (22 + 24 + 4 + 2) >> 2 = 13
        // (2,0) = (32 + 44 + 12 + 2) >> 2 = 22
        // (3,0) = (42 + 64 + 22 + 2) >> 2 = 32
        let out = run4(SubblockMode::Rd, A, L, P);
        assert_eq!(out[0], [8, 11, 20, 30]);
        assert_eq!(out[1], [13, 8, 11, 20]);
        assert_eq!(out[2], [22, 13, 8, 11]);
        assert_eq!(out[3], [32, 22, 13, 8]);
    }

    #[test]
    fn b_vr() {
        // row 0: avg2(P,A0)=7, avg2(10,20)=15, 25, 35
        // row 1: avg3(L0,P,A0)=8, avg3(P,A0,A1)=11, 20, 30
        // row 2: avg3(L1,L0,P) = (22+24+4+2)>>2 = 13, then row0[0..3]
        // row 3: avg3(L2,L1,L0) = (32+44+12+2)>>2 = 22, then row1[0..3]
        let out = run4(SubblockMode::Vr, A, L, P);
        assert_eq!(out[0], [7, 15, 25, 35]);
        assert_eq!(out[1], [8, 11, 20, 30]);
        assert_eq!(out[2], [13, 7, 15, 25]);
        assert_eq!(out[3], [22, 8, 11, 20]);
    }

    #[test]
    fn b_vl() {
        let a = [10, 20, 30, 40, 50, 60, 70, 90];
        // row 0: 15 25 35 45; row 1: 20 30 40 50
        // row 2: 25 35 45 avg3(50,60,70)=60
        // row 3: 30 40 50 avg3(60,70,90) = (60+140+90+2)>>2 = 73
        let out = run4(SubblockMode::Vl, a, L, P);
        assert_eq!(out[0], [15, 25, 35, 45]);
        assert_eq!(out[1], [20, 30, 40, 50]);
        assert_eq!(out[2], [25, 35, 45, 60]);
        assert_eq!(out[3], [30, 40, 50, 73]);
    }

    #[test]
    fn b_hd() {
        // row 0: avg2(L0,P) = 8, avg3(L0,P,A0) = 8, avg3(P,A0,A1) = 11,
        //        avg3(A0,A1,A2) = 20
        // row 1: avg2(L1,L0) = 17, avg3(L1,L0,P) = 13, 8, 8
        // row 2: avg2(L2,L1) = 27, avg3(L2,L1,L0) = 22, 17, 13
        // row 3: avg2(L3,L2) = 37, avg3(L3,L2,L1) = 32, 27, 22
        let out = run4(SubblockMode::Hd, A, L, P);
        assert_eq!(out[0], [8, 8, 11, 20]);
        assert_eq!(out[1], [17, 13, 8, 8]);
        assert_eq!(out[2], [27, 22, 17, 13]);
        assert_eq!(out[3], [37, 32, 27, 22]);
    }

    #[test]
    fn b_hu() {
        // row 0: avg2(12,22)=17, avg3(12,22,32)=22, avg2(22,32)=27,
        //        avg3(22,32,42)=32
        // row 1: 27, 32, avg2(32,42)=37, avg3(32,42,42)=(32+84+42+2)>>2=40
        // row 2: 37, 40, 42, 42; row 3: 42 x4
        let out = run4(SubblockMode::Hu, A, L, P);
        assert_eq!(out[0], [17, 22, 27, 32]);
        assert_eq!(out[1], [27, 32, 37, 40]);
        assert_eq!(out[2], [37, 40, 42, 42]);
        assert_eq!(out[3], [42; 4]);
    }

    #[test]
    fn predict_4x4_respects_pos_and_stride() {
        let mut buf = [1u8; 7 * 6];
        predict_4x4(SubblockMode::Dc, &A, &L, P, &mut buf, 8, 7);
        for r in 0..6 {
            for c in 0..7 {
                let inside = (1..5).contains(&r) && (1..5).contains(&c);
                assert_eq!(buf[7 * r + c], if inside { 26 } else { 1 });
            }
        }
    }
}
