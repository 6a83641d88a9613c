//! The boolean entropy decoder (RFC 6386 Section 7).
//!
//! Every part of a VP8 frame after the uncompressed data chunk is coded as
//! a sequence of bools, each with a probability (of being `false`) given
//! as an 8-bit value `prob / 256`. [`BoolDecoder`] reads them back.
//!
//! The arithmetic is exactly that of RFC 6386 Section 7.3 and of the
//! reference decoder's `bool_decoder.h` (Section 20.2): the same `range`,
//! the same `split = 1 + (((range - 1) * prob) >> 8)`, the same comparison
//! against the top byte of the value. Only the buffering differs: instead
//! of shifting one bit and reading one byte at a time, the decoder holds a
//! 64-bit window of the input, normalises with a single shift computed
//! from `leading_zeros`, and refills seven bytes at a time.
//!
//! Bytes past the end of the input read as zeros, as in libvpx; this never
//! fails, and [`BoolDecoder::bits_past_end`] tells the caller afterwards
//! whether the data ran out.

/// Number of bits of the value window.
const WINDOW_BITS: u32 = u64::BITS;

/// A boolean entropy decoder over one partition (RFC 6386 Section 7.3).
///
/// The window `value` holds the not yet consumed input bits left-aligned:
/// its top byte plays the role of the top byte of dixie's 16-bit `value`.
/// `bits` counts how many of its bits (from the top) were loaded from the
/// input (or are zero padding past the end); it is at least 8 whenever a
/// bool is decided.
///
/// The decoder is `Copy` so that hot loops (the token reader) can work on
/// a local copy that lives in registers and store it back once, instead
/// of loading and storing the state through a reference for every bool.
#[derive(Debug, Clone, Copy)]
pub struct BoolDecoder<'a> {
    /// The whole partition.
    data: &'a [u8],
    /// Index in `data` of the next byte to load into the window.
    pos: usize,
    /// Input bits, left-aligned; bits below the `bits` loaded ones are 0.
    value: u64,
    /// Number of valid bits at the top of `value`.
    bits: u32,
    /// Current interval width, 128..=255 between calls.
    range: u32,
    /// Zero bits loaded into the window after the end of `data`.
    padding_bits: usize,
}

/// The refill state [`BoolDecoder::fill_slow`] works on, passed by value
/// so that a decoder copied into a local does not have its address taken.
struct Refill {
    pos: usize,
    value: u64,
    bits: u32,
    padding_bits: usize,
}

impl<'a> BoolDecoder<'a> {
    /// Starts decoding `data`, one partition (RFC 6386 Section 7.3
    /// `init_bool_decoder`).
    ///
    /// Never fails: an empty or short partition decodes as if followed by
    /// zero bytes (libvpx's behaviour). Unlike dixie, which ignores a
    /// partition of a single byte, that byte is used.
    pub fn new(data: &'a [u8]) -> Self {
        let mut decoder = BoolDecoder {
            data,
            pos: 0,
            value: 0,
            bits: 0,
            range: 255,
            padding_bits: 0,
        };
        decoder.fill();
        decoder
    }

    /// Loads input bytes into the window until it holds at least 57 valid
    /// bits, padding with zeros past the end of the data.
    #[inline(always)]
    fn fill(&mut self) {
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            // Fast path: take seven whole bytes (56 bits) from one
            // big-endian load; `bits < 8` here, so they fit below the
            // valid bits.
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_be_bytes(word) >> 8;
            self.value |= word << (WINDOW_BITS - 56 - self.bits);
            self.bits += 56;
            self.pos += 7;
        } else {
            let r = Self::fill_slow(
                self.data,
                Refill {
                    pos: self.pos,
                    value: self.value,
                    bits: self.bits,
                    padding_bits: self.padding_bits,
                },
            );
            self.pos = r.pos;
            self.value = r.value;
            self.bits = r.bits;
            self.padding_bits = r.padding_bits;
        }
    }

    /// Byte-at-a-time refill near the end of the data, then zero padding.
    #[cold]
    #[inline(never)]
    fn fill_slow(data: &[u8], mut r: Refill) -> Refill {
        while r.bits <= WINDOW_BITS - 8 {
            match data.get(r.pos) {
                Some(&byte) => {
                    r.value |= u64::from(byte) << (WINDOW_BITS - 8 - r.bits);
                    r.pos += 1;
                }
                // Past the end: the window's low bits are already zero.
                None => r.padding_bits += 8,
            }
            r.bits += 8;
        }
        r
    }

    /// Decides one bool against `split` (1..=range-1) and renormalises.
    #[inline(always)]
    fn decide(&mut self, split: u32) -> bool {
        let big_split = u64::from(split) << (WINDOW_BITS - 8);
        let bit = self.value >= big_split;
        // Both possible next ranges (1..=255 each) and the shifts that
        // bring them back into 128..=255 are computed before the
        // comparison is known, then selected branch-free (the outcome is
        // unpredictable by design): the shift is off the critical path
        // from one bool's split to the next.
        let (lo, hi) = (split, self.range - split);
        let (lo_shift, hi_shift) = (
            lo.leading_zeros() - (u32::BITS - 8),
            hi.leading_zeros() - (u32::BITS - 8),
        );
        let mask = u64::from(bit).wrapping_neg();
        let shift = if bit { hi_shift } else { lo_shift };
        self.range = if bit { hi << hi_shift } else { lo << lo_shift };
        self.value = (self.value - (big_split & mask)) << shift;
        self.bits -= shift;
        bit
    }

    /// Reads one bool whose probability of being `false` is `prob / 256`
    /// (RFC 6386 Section 7.3 `read_bool`; dixie's `bool_get`).
    #[inline(always)]
    pub fn read_bool(&mut self, prob: u8) -> bool {
        if self.bits < 8 {
            self.fill();
        }
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        self.decide(split)
    }

    /// Reads one bool at probability one half (dixie's `bool_get_bit`,
    /// RFC 6386 Section 20.2).
    #[inline(always)]
    pub fn read_bit(&mut self) -> bool {
        if self.bits < 8 {
            self.fill();
        }
        // `1 + ((range - 1) * 128 >> 8)` without the multiply.
        let split = (self.range + 1) >> 1;
        self.decide(split)
    }

    /// Reads a sign bit at probability one half and returns `-v` if it
    /// is set, `v` otherwise: the sign of a DCT token (RFC 6386 Section
    /// 13.2).
    ///
    /// Branch-free, unlike [`read_bool`](Self::read_bool): a sign is a
    /// coin toss, so a branch on it would be mispredicted half the time.
    /// At probability one half both candidate ranges lie in 64..=128, so
    /// the normalisation shift is 0 or 1 and needs no bit scan.
    #[inline(always)]
    pub fn read_sign(&mut self, v: i32) -> i32 {
        if self.bits < 8 {
            self.fill();
        }
        let split = (self.range + 1) >> 1;
        let big_split = u64::from(split) << (WINDOW_BITS - 8);
        let bit = self.value >= big_split;
        let mask = u64::from(bit).wrapping_neg();
        let range = core::hint::select_unpredictable(bit, self.range - split, split);
        let shift = 1 - (range >> 7);
        self.range = range << shift;
        self.value = (self.value - (big_split & mask)) << shift;
        self.bits -= shift;
        let neg = -i32::from(bit);
        (v ^ neg) - neg
    }

    /// Reads a one-bit flag, `L(1)` in the frame header syntax (RFC 6386
    /// Section 19.2); the same as [`read_bit`](Self::read_bit).
    #[inline]
    pub fn read_flag(&mut self) -> bool {
        self.read_bit()
    }

    /// Reads a `bits`-wide unsigned literal, most significant bit first,
    /// each bit at probability one half (RFC 6386 Section 7.3
    /// `read_literal`; `L(n)` in Section 19.2).
    ///
    /// Only the low 32 bits of the value are kept if `bits > 32`.
    #[inline]
    pub fn read_literal(&mut self, bits: u32) -> u32 {
        let mut v = 0u32;
        for _ in 0..bits {
            v = (v << 1) | u32::from(self.read_bit());
        }
        v
    }

    /// Reads a `bits`-wide magnitude followed by a sign bit (set means
    /// negative), the form of the frame header's quantizer and loop-filter
    /// deltas (RFC 6386 Sections 9.3, 9.6 and 19.2; dixie's `bool_get_int`,
    /// Section 20.2).
    #[inline]
    pub fn read_signed(&mut self, bits: u32) -> i32 {
        let magnitude = self.read_literal(bits) as i32;
        if self.read_bit() {
            magnitude.wrapping_neg()
        } else {
            magnitude
        }
    }

    /// Reads a flag and, if it is set, a value as
    /// [`read_signed`](Self::read_signed); otherwise returns 0 (dixie's
    /// `bool_maybe_get_int`, RFC 6386 Section 20.2).
    #[inline]
    pub fn read_optional_signed(&mut self, bits: u32) -> i32 {
        if self.read_flag() {
            self.read_signed(bits)
        } else {
            0
        }
    }

    /// Reads a value coded with `tree`, whose node at index `i` has
    /// probability `probs[i / 2]` (RFC 6386 Section 8.1 `treed_read`).
    ///
    /// The tree uses the RFC convention described in
    /// [`crate::tables`]: positive entries link to the next pair, other
    /// entries are negated leaf values.
    ///
    /// # Panics
    ///
    /// If `tree` links out of bounds or `probs` is shorter than the number
    /// of nodes. Trees that contain a cycle never return. Neither can
    /// happen with the trees of [`crate::tables`], whatever the input data.
    #[inline]
    pub fn read_tree(&mut self, tree: &[i8], probs: &[u8]) -> u8 {
        self.read_tree_from(tree, probs, 0)
    }

    /// [`read_tree`](Self::read_tree) for a tree whose leaves are the
    /// values of `T` (the mode trees of [`crate::tables`]).
    ///
    /// # Panics
    ///
    /// As [`read_tree`](Self::read_tree), and if `tree` yields a leaf that
    /// is no value of `T`.
    #[inline(always)]
    pub fn read_tree_as<T: crate::prediction::TreeLeaf>(&mut self, tree: &[i8], probs: &[u8]) -> T {
        T::from_leaf(self.read_tree_from(tree, probs, 0))
    }

    /// Like [`read_tree`](Self::read_tree) but starts at the node with index
    /// `start` instead of the root. The token reader uses this to skip the
    /// end-of-block branch after a zero token (RFC 6386 Section 13.2;
    /// [`crate::tables::COEFF_TREE_NO_EOB_START`]).
    ///
    /// # Panics
    ///
    /// As [`read_tree`](Self::read_tree), and if `start` is out of bounds.
    // Always inlined: the mode parser calls it a few times per
    // macroblock, and where LLVM kept it out of line the calls cost 13M
    // instructions over 120 frames of 1280x720 (callgrind).
    #[inline(always)]
    pub fn read_tree_from(&mut self, tree: &[i8], probs: &[u8], start: usize) -> u8 {
        let mut node = start;
        loop {
            let next = tree[node + usize::from(self.read_bool(probs[node >> 1]))];
            if next <= 0 {
                return next.unsigned_abs();
            }
            node = next as usize;
        }
    }

    /// Number of bits the decoder has looked at beyond the end of the data.
    ///
    /// This counts the bits already shifted out plus the 8-bit window that
    /// the next decision compares against, minus the length of the data in
    /// bits, saturating at 0. A non-zero result means some decoded bool
    /// depended on the implied zero padding: the same condition as libvpx's
    /// `vp8dx_bool_error`, which reports a truncated partition. Encoders
    /// that flush as RFC 6386 Section 7.3 does never cause it.
    pub fn bits_past_end(&self) -> usize {
        // Bits shifted out of the window so far, plus the 8 of the
        // decision window, is everything loaded minus what is still
        // waiting below the decision window.
        let loaded = 8 * self.pos + self.padding_bits;
        let looked_at = loaded + 8 - self.bits as usize;
        looked_at.saturating_sub(8 * self.data.len())
    }

    /// Whether [`bits_past_end`](Self::bits_past_end) is non-zero, that is,
    /// the partition was too short for what has been read from it.
    pub fn is_past_end(&self) -> bool {
        self.bits_past_end() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time decoder transcribing RFC 6386 Section 7.3 (with zero
    /// padding past the end), used as the oracle.
    struct Reference<'a> {
        data: &'a [u8],
        pos: usize,
        value: u32,
        range: u32,
        bit_count: u32,
        /// Total number of normalisation shifts.
        shifts: usize,
    }

    impl<'a> Reference<'a> {
        fn byte(&mut self) -> u32 {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            u32::from(b)
        }

        fn new(data: &'a [u8]) -> Self {
            let mut r = Reference {
                data,
                pos: 0,
                value: 0,
                range: 255,
                bit_count: 0,
                shifts: 0,
            };
            r.value = (r.byte() << 8) | r.byte();
            r
        }

        fn read_bool(&mut self, prob: u8) -> bool {
            let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
            let big = split << 8;
            let ret = if self.value >= big {
                self.range -= split;
                self.value -= big;
                true
            } else {
                self.range = split;
                false
            };
            while self.range < 128 {
                self.value <<= 1;
                self.range <<= 1;
                self.bit_count += 1;
                self.shifts += 1;
                if self.bit_count == 8 {
                    self.bit_count = 0;
                    self.value |= self.byte();
                }
            }
            ret
        }
    }

    /// Small deterministic PRNG (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn hand_computed_example() {
        // Input 0x80 0x00: value = 0x8000, range 255.
        // prob 128: split = 1 + (254 * 128 >> 8) = 128, SPLIT = 0x8000,
        // value >= SPLIT so the bool is 1; range = 127, value = 0;
        // normalise by one bit: range 254.
        // prob 128 again: split = 1 + (253 * 128 >> 8) = 127; value 0 < split
        // so 0, range = 127 -> 254.
        let mut d = BoolDecoder::new(&[0x80, 0x00]);
        assert!(d.read_bool(128));
        assert!(!d.read_bool(128));
        // Everything afterwards is zeros.
        assert_eq!(d.read_literal(16), 0);

        // Input 0xff 0xff: prob 1: split = 1 + (254 >> 8) = 1; value
        // 0xffff >= 0x0100 so 1, range 254 (no shift).
        // prob 255: split = 1 + (253 * 255 >> 8) = 253; 0xfeff >= 0xfd00
        // so 1, range 1 -> shift 7.
        let mut d = BoolDecoder::new(&[0xff, 0xff]);
        assert!(d.read_bool(1));
        assert!(d.read_bool(255));
    }

    #[test]
    fn matches_reference_on_random_input() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for len in [0usize, 1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 1000] {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut ours = BoolDecoder::new(&data);
            let mut oracle = Reference::new(&data);
            for i in 0..(len * 12 + 64) {
                let prob = (rng.next() >> 56) as u8;
                assert_eq!(
                    ours.read_bool(prob),
                    oracle.read_bool(prob),
                    "len {len} bool {i}"
                );
            }
        }
    }

    #[test]
    fn literal_and_signed() {
        // 0b1010_0000 ... with prob-128 bits: a run of literal reads.
        let data = [0x00u8; 4];
        let mut d = BoolDecoder::new(&data);
        assert_eq!(d.read_literal(7), 0);
        assert_eq!(d.read_signed(4), 0);
        assert_eq!(d.read_optional_signed(6), 0);
        assert!(!d.is_past_end());
    }

    #[test]
    fn empty_and_past_end_reads_are_zero() {
        let mut d = BoolDecoder::new(&[]);
        for prob in 0..=255u8 {
            assert!(!d.read_bool(prob));
        }
        assert_eq!(d.read_literal(32), 0);
        assert_eq!(d.read_signed(32), 0);
        assert!(d.is_past_end());

        // Any data: reading far past the end never panics.
        let mut d = BoolDecoder::new(&[0xde, 0xad, 0xbe, 0xef, 0x55]);
        for i in 0..100_000u32 {
            d.read_bool((i * 37) as u8);
        }
        assert!(d.bits_past_end() > 0);
        let _ = d.read_literal(40);
        let _ = d.read_signed(32);
        // Once the data is exhausted every bool decodes as 0.
        for prob in 0..=255u8 {
            assert!(!d.read_bool(prob));
        }
    }

    #[test]
    fn bits_past_end_counts_the_window() {
        // Nothing at all: the first decision already looks at 8 padding
        // bits. A prob-128 zero from range 255 leaves range 128: no shift.
        let mut d = BoolDecoder::new(&[]);
        assert_eq!(d.bits_past_end(), 8);
        assert!(!d.read_bit());
        assert_eq!(d.bits_past_end(), 8);
        assert!(!d.read_bit());
        assert_eq!(d.bits_past_end(), 9);

        // Against the oracle's count of shifted-out bits.
        let mut rng = Rng(99);
        for len in [1usize, 2, 5, 9, 20] {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut ours = BoolDecoder::new(&data);
            let mut oracle = Reference::new(&data);
            for _ in 0..len * 16 {
                let prob = (rng.next() >> 56) as u8;
                ours.read_bool(prob);
                oracle.read_bool(prob);
                let expected = (oracle.shifts + 8).saturating_sub(8 * len);
                assert_eq!(ours.bits_past_end(), expected);
            }
        }
    }

    #[test]
    fn tree_reading() {
        use crate::tables::{COEFF_TREE, COEFF_TREE_NO_EOB_START, ZERO_TOKEN};
        // With all-zero input every bool is 0: the leftmost leaf.
        let mut d = BoolDecoder::new(&[0; 8]);
        assert_eq!(d.read_tree(&COEFF_TREE, &[128; 11]), 11);
        assert_eq!(
            d.read_tree_from(&COEFF_TREE, &[128; 11], COEFF_TREE_NO_EOB_START),
            ZERO_TOKEN
        );
    }
}
