//! Inverse transforms: the 4x4 inverse DCT and inverse Walsh-Hadamard
//! transform of RFC 6386 section 14, and the summation of predictor and
//! residue (section 14.5).
//!
//! Bit-exactness notes (matching dixie `idct_add.c`, RFC 20.8, and libvpx):
//!
//! * Both transforms do the vertical (column) pass first and the horizontal
//!   (row) pass second; the rounding shift happens only in the second pass.
//! * The intermediate result of the first pass is stored in 16-bit integers
//!   in the reference code, so it is wrapped to `i16` here too. This only
//!   matters for out-of-range coefficients from corrupt or adversarial
//!   streams, but it keeps us identical to libvpx on those.

/// `sqrt(2) * cos(pi/8) - 1` in Q16 (RFC 14.4, `cospi8sqrt2minus1`).
const COS_PI8_SQRT2_MINUS1: i32 = 20091;
/// `sqrt(2) * sin(pi/8)` in Q16 (RFC 14.4, `sinpi8sqrt2`).
const SIN_PI8_SQRT2: i32 = 35468;

/// Multiplies by `sqrt(2) * cos(pi/8)` the way RFC 14.4 does: `x + x*k >> 16`.
#[inline(always)]
fn mul_cos(x: i32) -> i32 {
    x + ((x * COS_PI8_SQRT2_MINUS1) >> 16)
}

/// Multiplies by `sqrt(2) * sin(pi/8)` the way RFC 14.4 does.
#[inline(always)]
fn mul_sin(x: i32) -> i32 {
    (x * SIN_PI8_SQRT2) >> 16
}

/// One 1-D inverse DCT butterfly on four values (RFC 14.4).
#[inline(always)]
fn idct_1d(i0: i32, i1: i32, i2: i32, i3: i32) -> [i32; 4] {
    let a = i0 + i2;
    let b = i0 - i2;
    let c = mul_sin(i1) - mul_cos(i3);
    let d = mul_cos(i1) + mul_sin(i3);
    [a + d, b + c, b - c, a - d]
}

/// Checks that a 4x4 block at `pos` with `stride` fits in a buffer of
/// `len` bytes, panicking with a clear message otherwise.
#[inline(always)]
fn check_block4(len: usize, pos: usize, stride: usize) {
    assert!(
        stride >= 4 && pos + 3 * stride + 4 <= len,
        "4x4 block at {pos} (stride {stride}) out of bounds of {len}-byte buffer"
    );
}

/// Inverse DCT of one 4x4 block of dequantized coefficients, added to the
/// prediction already in `dst` (RFC 14.4 and 14.5).
///
/// `coeffs` is in natural raster order (not zigzag): `coeffs[4 * row + col]`.
/// The 4x4 prediction at `dst[pos..]` (rows `stride` apart) is replaced by
/// `clamp(prediction + residue, 0, 255)`. Bit-exact with dixie's
/// `vp8_dixie_idct_add` and libvpx's `vp8_short_idct4x4llm_c`.
///
/// Runs the SIMD kernel of `crate::dsp::idct` where there is one, else
/// [`idct4x4_add_scalar`]; both give the same bytes.
///
/// # Panics
/// If the block does not fit in `dst`.
#[inline]
pub fn idct4x4_add(coeffs: &[i16; 16], dst: &mut [u8], pos: usize, stride: usize) {
    if !crate::dsp::idct::idct4x4_add(coeffs, dst, pos, stride) {
        idct4x4_add_scalar(coeffs, dst, pos, stride);
    }
}

/// The portable [`idct4x4_add`], the definition the SIMD kernel is tested
/// against (public for benches).
///
/// # Panics
/// If the block does not fit in `dst`.
pub fn idct4x4_add_scalar(coeffs: &[i16; 16], dst: &mut [u8], pos: usize, stride: usize) {
    check_block4(dst.len(), pos, stride);

    // Vertical pass: column `c` uses coeffs[c], [c+4], [c+8], [c+12].
    // The reference stores this intermediate as `short`, hence `as i16`.
    let mut tmp = [0i32; 16];
    for c in 0..4 {
        let out = idct_1d(
            i32::from(coeffs[c]),
            i32::from(coeffs[4 + c]),
            i32::from(coeffs[8 + c]),
            i32::from(coeffs[12 + c]),
        );
        for (r, v) in out.into_iter().enumerate() {
            tmp[4 * r + c] = i32::from(v as i16);
        }
    }

    // Horizontal pass with rounding, then add to the prediction.
    for (r, t) in tmp.chunks_exact(4).enumerate() {
        let out = idct_1d(t[0], t[1], t[2], t[3]);
        let start = pos + r * stride;
        let row = &mut dst[start..start + 4];
        for (px, v) in row.iter_mut().zip(out) {
            let residue = (v + 4) >> 3;
            *px = (i32::from(*px) + residue).clamp(0, 255) as u8;
        }
    }
}

/// Adds the residue of a block whose only non-zero coefficient is the DC
/// (RFC 14.4/14.5; libvpx `vp8_dc_only_idct_add_c`).
///
/// With only `coeffs[0]` set, every output of the inverse DCT equals
/// `(dc + 4) >> 3`, so this is exactly [`idct4x4_add`] with `[dc, 0, ...]`
/// but much cheaper.
///
/// Runs the SIMD kernel of `crate::dsp::idct` where there is one, else
/// [`idct_dc_add_scalar`].
///
/// # Panics
/// If the block does not fit in `dst`.
#[inline]
pub fn idct_dc_add(dc: i16, dst: &mut [u8], pos: usize, stride: usize) {
    if !crate::dsp::idct::idct_dc_add(dc, dst, pos, stride) {
        idct_dc_add_scalar(dc, dst, pos, stride);
    }
}

/// Adds `(dcs[i] + 4) >> 3` to each 4x4 block `i` of the `N` (2 or 4)
/// blocks side by side at `dst[pos..]`: [`idct_dc_add`] on each, in one
/// SIMD pass where there is one.
///
/// # Panics
/// If a block does not fit in `dst`.
pub fn idct_dc_add_row<const N: usize>(dcs: &[i16; N], dst: &mut [u8], pos: usize, stride: usize) {
    if !crate::dsp::idct::idct_dc_add_row(dcs, dst, pos, stride) {
        for (i, &dc) in dcs.iter().enumerate() {
            idct_dc_add_scalar(dc, dst, pos + 4 * i, stride);
        }
    }
}

/// The portable [`idct_dc_add`] (public for benches).
///
/// # Panics
/// If the block does not fit in `dst`.
pub fn idct_dc_add_scalar(dc: i16, dst: &mut [u8], pos: usize, stride: usize) {
    check_block4(dst.len(), pos, stride);
    let residue = (i32::from(dc) + 4) >> 3;
    for r in 0..4 {
        let start = pos + r * stride;
        for px in &mut dst[start..start + 4] {
            *px = (i32::from(*px) + residue).clamp(0, 255) as u8;
        }
    }
}

/// Inverse Walsh-Hadamard transform of the Y2 block (RFC 14.3).
///
/// `input` holds the dequantized Y2 coefficients in natural raster order;
/// `output[i]` is the DC coefficient of luma subblock `i` (raster order
/// within the macroblock). Bit-exact with dixie's `vp8_dixie_walsh` and
/// libvpx's `vp8_short_inv_walsh4x4_c`.
pub fn iwht4x4(input: &[i16; 16]) -> [i16; 16] {
    // Vertical pass; the reference stores it as `short`.
    let mut tmp = [0i32; 16];
    for c in 0..4 {
        let i0 = i32::from(input[c]);
        let i1 = i32::from(input[4 + c]);
        let i2 = i32::from(input[8 + c]);
        let i3 = i32::from(input[12 + c]);
        let a = i0 + i3;
        let b = i1 + i2;
        let cc = i1 - i2;
        let d = i0 - i3;
        tmp[c] = i32::from((a + b) as i16);
        tmp[4 + c] = i32::from((cc + d) as i16);
        tmp[8 + c] = i32::from((a - b) as i16);
        tmp[12 + c] = i32::from((d - cc) as i16);
    }

    // Horizontal pass with rounding `(x + 3) >> 3`.
    let mut out = [0i16; 16];
    for (o, t) in out.chunks_exact_mut(4).zip(tmp.chunks_exact(4)) {
        let a = t[0] + t[3];
        let b = t[1] + t[2];
        let cc = t[1] - t[2];
        let d = t[0] - t[3];
        o[0] = ((a + b + 3) >> 3) as i16;
        o[1] = ((cc + d + 3) >> 3) as i16;
        o[2] = ((a - b + 3) >> 3) as i16;
        o[3] = ((d - cc + 3) >> 3) as i16;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straightforward transliteration-free restatement of the RFC 14.4
    /// reference (`vp8_short_idct4x4llm_c`) used as an oracle.
    fn idct_reference(input: &[i16; 16]) -> [i32; 16] {
        let k1 = |x: i32| x + ((x * 20091) >> 16);
        let k2 = |x: i32| (x * 35468) >> 16;
        let mut mid = [0i16; 16];
        for i in 0..4 {
            let ip = |k: usize| i32::from(input[i + 4 * k]);
            let a1 = ip(0) + ip(2);
            let b1 = ip(0) - ip(2);
            let c1 = k2(ip(1)) - k1(ip(3));
            let d1 = k1(ip(1)) + k2(ip(3));
            mid[i] = (a1 + d1) as i16;
            mid[12 + i] = (a1 - d1) as i16;
            mid[4 + i] = (b1 + c1) as i16;
            mid[8 + i] = (b1 - c1) as i16;
        }
        let mut out = [0i32; 16];
        for i in 0..4 {
            let ip = |k: usize| i32::from(mid[4 * i + k]);
            let a1 = ip(0) + ip(2);
            let b1 = ip(0) - ip(2);
            let c1 = k2(ip(1)) - k1(ip(3));
            let d1 = k1(ip(1)) + k2(ip(3));
            out[4 * i] = (a1 + d1 + 4) >> 3;
            out[4 * i + 3] = (a1 - d1 + 4) >> 3;
            out[4 * i + 1] = (b1 + c1 + 4) >> 3;
            out[4 * i + 2] = (b1 - c1 + 4) >> 3;
        }
        out
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
    fn zero_coefficients_leave_prediction() {
        let mut buf: Vec<u8> = (0..64).map(|i| (i * 4) as u8).collect();
        let before = buf.clone();
        idct4x4_add(&[0; 16], &mut buf, 9, 8);
        assert_eq!(buf, before);
    }

    #[test]
    fn dc_only_by_hand() {
        // dc = 100: (100 + 4) >> 3 = 13 everywhere.
        let mut c = [0i16; 16];
        c[0] = 100;
        let mut buf = [50u8; 16];
        idct4x4_add(&c, &mut buf, 0, 4);
        assert_eq!(buf, [63u8; 16]);
        // dc = -100: (-96) >> 3 = -12, prediction 5 clamps to 0.
        c[0] = -100;
        let mut buf = [5u8; 16];
        idct4x4_add(&c, &mut buf, 0, 4);
        assert_eq!(buf, [0u8; 16]);
    }

    #[test]
    fn first_ac_by_hand() {
        // Only coeffs[1] = 100 (horizontal frequency 1).
        // Column pass: column 1 is [100, 100, 100, 100] (a1 = b1 = 100).
        // Row pass on [0, 100, 0, 0]: c1 = 100*35468>>16 = 54,
        // d1 = 100 + (100*20091>>16) = 130.
        // Outputs: (130+4)>>3 = 16, (54+4)>>3 = 7, (-54+4)>>3 = -7,
        // (-130+4)>>3 = -16.
        let mut c = [0i16; 16];
        c[1] = 100;
        let mut buf = [128u8; 16];
        idct4x4_add(&c, &mut buf, 0, 4);
        for row in buf.chunks(4) {
            assert_eq!(row, [144, 135, 121, 112]);
        }
    }

    #[test]
    fn matches_reference_on_random_blocks() {
        let mut rng = Lcg(1);
        for iter in 0..20000 {
            let mut c = [0i16; 16];
            let range = if iter % 2 == 0 { 512 } else { 65536 };
            for v in &mut c {
                *v = ((rng.next() % range) as i32 - (range as i32 / 2)) as i16;
            }
            let mut buf = [0u8; 40];
            for v in buf.iter_mut() {
                *v = rng.next() as u8;
            }
            let expect = idct_reference(&c);
            let mut got = buf;
            idct4x4_add(&c, &mut got, 3, 9);
            for r in 0..4 {
                for col in 0..4 {
                    let i = 3 + 9 * r + col;
                    let e = (i32::from(buf[i]) + expect[4 * r + col]).clamp(0, 255);
                    assert_eq!(i32::from(got[i]), e);
                }
            }
        }
    }

    #[test]
    fn dc_add_equals_full_idct() {
        for dc in i16::MIN..=i16::MAX {
            let mut c = [0i16; 16];
            c[0] = dc;
            let pred: [u8; 16] = core::array::from_fn(|i| (i * 17) as u8);
            let mut a = pred;
            let mut b = pred;
            idct4x4_add(&c, &mut a, 0, 4);
            idct_dc_add(dc, &mut b, 0, 4);
            assert_eq!(a, b, "dc = {dc}");
        }
    }

    #[test]
    fn dc_add_respects_stride() {
        let mut buf = [10u8; 24];
        idct_dc_add(80, &mut buf, 1, 6); // +10
        for r in 0..4 {
            for c in 0..6 {
                let inside = (1..5).contains(&c);
                assert_eq!(buf[6 * r + c], if inside { 20 } else { 10 });
            }
        }
    }

    #[test]
    fn wht_dc_only() {
        // Only the DC: every first-pass column 0 value is 800, row pass
        // gives (800 + 3) >> 3 = 100 for every subblock.
        let mut y2 = [0i16; 16];
        y2[0] = 800;
        assert_eq!(iwht4x4(&y2), [100i16; 16]);
        y2[0] = -5;
        // (-5 + 3) >> 3 = -1
        assert_eq!(iwht4x4(&y2), [-1i16; 16]);
    }

    #[test]
    fn wht_by_hand() {
        // input[1] = 8 (first horizontal basis function).
        // Vertical pass: column 1 becomes [8, 8, 8, 8].
        // Row [0, 8, 0, 0]: a = 0, b = 8, c = 8, d = 0 ->
        // [(8+3)>>3, (8+3)>>3, (-8+3)>>3, (-8+3)>>3] = [1, 1, -1, -1].
        let mut y2 = [0i16; 16];
        y2[1] = 8;
        let out = iwht4x4(&y2);
        for row in out.chunks(4) {
            assert_eq!(row, [1, 1, -1, -1]);
        }
        // input[4] = 8 (first vertical basis function):
        // column 0 becomes [8, 8, -8, -8]; each row is DC-only.
        let mut y2 = [0i16; 16];
        y2[4] = 8;
        let out = iwht4x4(&y2);
        assert_eq!(&out[0..4], [1, 1, 1, 1]);
        assert_eq!(&out[4..8], [1, 1, 1, 1]);
        assert_eq!(&out[8..12], [-1, -1, -1, -1]);
        assert_eq!(&out[12..16], [-1, -1, -1, -1]);
    }

    #[test]
    fn wht_sum_of_basis_functions() {
        // Row [800, 8, 0, 0]: a = 800, b = 8, c = 8, d = 800 ->
        // [(808+3)>>3, (808+3)>>3, (792+3)>>3, (792+3)>>3] = [101, 101, 99, 99].
        let mut y2 = [0i16; 16];
        y2[0] = 800;
        y2[1] = 8;
        let out = iwht4x4(&y2);
        for row in out.chunks(4) {
            assert_eq!(row, [101, 101, 99, 99]);
        }
    }
}
