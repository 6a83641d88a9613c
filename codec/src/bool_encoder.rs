//! The boolean entropy encoder (RFC 6386 Section 7), the inverse of
//! [`crate::bool_decoder::BoolDecoder`], and a bit-cost estimate for rate
//! control.

use crate::prediction::TreeLeaf;

/// A boolean entropy encoder writing one partition (RFC 6386 Section 7.3
/// `bool_encoder`).
///
/// Follows the RFC's encoder: `bottom` holds the low end of the coding
/// interval with up to 24 pending bits below the byte about to be written,
/// and a carry out of `bottom` is propagated into the bytes already
/// written.
#[derive(Debug, Clone)]
pub struct BoolEncoder {
    /// Bytes written so far (some may still be increased by a carry).
    output: Vec<u8>,
    /// Interval width, 128..=255 between calls.
    range: u32,
    /// Low end of the interval, pending bits at the top.
    bottom: u32,
    /// Shifts left before the top byte of `bottom` is complete.
    bit_count: u32,
}

impl Default for BoolEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BoolEncoder {
    /// Starts an empty partition (RFC 6386 Section 7.3
    /// `init_bool_encoder`).
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// Like [`new`](Self::new), reserving room for `bytes` bytes of output.
    pub fn with_capacity(bytes: usize) -> Self {
        BoolEncoder {
            output: Vec::with_capacity(bytes),
            range: 255,
            bottom: 0,
            bit_count: 24,
        }
    }

    /// Adds one to the bytes written so far, propagating the carry
    /// (RFC 6386 Section 7.3 `add_one_to_output`). The RFC shows the carry
    /// never runs past the first byte.
    fn add_one_to_output(&mut self) {
        for byte in self.output.iter_mut().rev() {
            if *byte == 255 {
                *byte = 0;
            } else {
                *byte += 1;
                return;
            }
        }
    }

    /// Writes `bit`, whose probability of being `false` is `prob / 256`
    /// (RFC 6386 Section 7.3 `write_bool`).
    #[inline]
    pub fn put_bool(&mut self, prob: u8, bit: bool) {
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        if bit {
            self.bottom = self.bottom.wrapping_add(split);
            self.range -= split;
        } else {
            self.range = split;
        }
        while self.range < 128 {
            self.range <<= 1;
            if self.bottom & (1 << 31) != 0 {
                self.add_one_to_output();
            }
            self.bottom <<= 1;
            self.bit_count -= 1;
            if self.bit_count == 0 {
                self.output.push((self.bottom >> 24) as u8);
                self.bottom &= (1 << 24) - 1;
                self.bit_count = 8;
            }
        }
    }

    /// Writes a bit at probability one half.
    #[inline]
    pub fn put_bit(&mut self, bit: bool) {
        self.put_bool(128, bit);
    }

    /// Writes the low `bits` bits of `value`, most significant first, at
    /// probability one half: the inverse of
    /// [`BoolDecoder::read_literal`](crate::bool_decoder::BoolDecoder::read_literal)
    /// (RFC 6386 Section 7.3 `read_literal`).
    pub fn put_literal(&mut self, bits: u32, value: u32) {
        for i in (0..bits).rev() {
            let bit = i < u32::BITS && (value >> i) & 1 != 0;
            self.put_bit(bit);
        }
    }

    /// Writes `value` as a `bits`-wide magnitude and a sign bit (set for
    /// negative): the inverse of
    /// [`BoolDecoder::read_signed`](crate::bool_decoder::BoolDecoder::read_signed)
    /// (RFC 6386 Section 19.2).
    pub fn put_signed(&mut self, bits: u32, value: i32) {
        self.put_literal(bits, value.unsigned_abs());
        self.put_bit(value < 0);
    }

    /// Writes a flag for `value != 0` and, if set, `value` as
    /// [`put_signed`](Self::put_signed): the inverse of
    /// [`BoolDecoder::read_optional_signed`](crate::bool_decoder::BoolDecoder::read_optional_signed).
    pub fn put_optional_signed(&mut self, bits: u32, value: i32) {
        self.put_bit(value != 0);
        if value != 0 {
            self.put_signed(bits, value);
        }
    }

    /// Writes the path from the root of `tree` to the leaf `leaf_value` (a
    /// raw `u8` or a typed mode of [`crate::prediction`]),
    /// the node at index `i` having probability `probs[i / 2]` (RFC 6386
    /// Section 8.1; the inverse of
    /// [`BoolDecoder::read_tree`](crate::bool_decoder::BoolDecoder::read_tree)).
    ///
    /// # Panics
    ///
    /// If `leaf_value` is not a leaf of `tree`, or `tree`/`probs` are
    /// malformed as described at `read_tree`.
    pub fn put_tree(&mut self, tree: &[i8], probs: &[u8], leaf_value: impl TreeLeaf) {
        self.put_tree_from(tree, probs, leaf_value.leaf(), 0);
    }

    /// Like [`put_tree`](Self::put_tree) but starting at node index
    /// `start`, the inverse of
    /// [`BoolDecoder::read_tree_from`](crate::bool_decoder::BoolDecoder::read_tree_from)
    /// (used for tokens after a zero, RFC 6386 Section 13.2).
    ///
    /// # Panics
    ///
    /// As [`put_tree`](Self::put_tree), and if the leaf is not below
    /// `start`.
    pub fn put_tree_from(&mut self, tree: &[i8], probs: &[u8], leaf_value: u8, start: usize) {
        walk_tree_path(tree, leaf_value, start, |node, bit| {
            self.put_bool(probs[node >> 1], bit)
        });
    }

    /// Number of bytes written so far; the partition will be at most four
    /// bytes longer after [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.output.len()
    }

    /// Whether no byte has been written yet.
    pub fn is_empty(&self) -> bool {
        self.output.is_empty()
    }

    /// Flushes the pending bits and returns the partition (RFC 6386 Section
    /// 7.3 `flush_bool_encoder`). The output decodes identically with a
    /// decoder that pads with zero bytes, as
    /// [`BoolDecoder`](crate::bool_decoder::BoolDecoder) does, and never
    /// makes its [`bits_past_end`](crate::bool_decoder::BoolDecoder::bits_past_end)
    /// non-zero for the bools written.
    pub fn finish(mut self) -> Vec<u8> {
        let c = self.bit_count;
        let mut v = self.bottom;
        if v & (1 << (32 - c)) != 0 {
            self.add_one_to_output();
        }
        // Move the remaining bits to the top of `v` (a shift by 32 or more
        // leaves nothing), then write four bytes of it.
        v = v.checked_shl(c & 7).unwrap_or(0);
        v = v.checked_shl(8 * (c >> 3)).unwrap_or(0);
        self.output.extend_from_slice(&v.to_be_bytes());
        self.output
    }
}

/// Cost in 1/256 bit of coding a bool with probability `p / 256`,
/// `round(-256 * log2(p / 256))`, for `p` in 0..=256; index 0 (a zero
/// coded at probability 0, which the coder treats like probability 1)
/// repeats the cost of index 1. Generated with `f64::log2`, see the test
/// `cost_table_matches_log2`.
const PROB_COST: [u16; 257] = [
    2048, 2048, 1792, 1642, 1536, 1454, 1386, 1329, 1280, 1236, 1198, 1162, 1130, 1101, 1073, 1048,
    1024, 1002, 980, 961, 942, 924, 906, 890, 874, 859, 845, 831, 817, 804, 792, 780, 768, 757,
    746, 735, 724, 714, 705, 695, 686, 676, 668, 659, 650, 642, 634, 626, 618, 611, 603, 596, 589,
    582, 575, 568, 561, 555, 548, 542, 536, 530, 524, 518, 512, 506, 501, 495, 490, 484, 479, 474,
    468, 463, 458, 453, 449, 444, 439, 434, 430, 425, 420, 416, 412, 407, 403, 399, 394, 390, 386,
    382, 378, 374, 370, 366, 362, 358, 355, 351, 347, 343, 340, 336, 333, 329, 326, 322, 319, 315,
    312, 309, 305, 302, 299, 296, 292, 289, 286, 283, 280, 277, 274, 271, 268, 265, 262, 259, 256,
    253, 250, 247, 245, 242, 239, 236, 234, 231, 228, 226, 223, 220, 218, 215, 212, 210, 207, 205,
    202, 200, 197, 195, 193, 190, 188, 185, 183, 181, 178, 176, 174, 171, 169, 167, 164, 162, 160,
    158, 156, 153, 151, 149, 147, 145, 143, 140, 138, 136, 134, 132, 130, 128, 126, 124, 122, 120,
    118, 116, 114, 112, 110, 108, 106, 104, 102, 101, 99, 97, 95, 93, 91, 89, 87, 86, 84, 82, 80,
    78, 77, 75, 73, 71, 70, 68, 66, 64, 63, 61, 59, 58, 56, 54, 53, 51, 49, 48, 46, 44, 43, 41, 40,
    38, 36, 35, 33, 32, 30, 28, 27, 25, 24, 22, 21, 19, 18, 16, 15, 13, 12, 10, 9, 7, 6, 4, 3, 1,
    0,
];

/// Visits the path from node `start` of `tree` down to the leaf
/// `leaf_value`, from the top, as `visit(node, bit)` (the probability of
/// a node is `probs[node / 2]`): the one tree walk every writer, pricer
/// and counter of tree-coded symbols follows.
///
/// # Panics
///
/// If `leaf_value` is not a leaf below `start`, or the tree is deeper
/// than 16 levels (VP8's deepest, the token tree, has 11).
#[inline(always)]
pub(crate) fn walk_tree_path(
    tree: &[i8],
    leaf_value: u8,
    start: usize,
    mut visit: impl FnMut(usize, bool),
) {
    // Collect the path bottom-up: find the entry holding the leaf, then
    // repeatedly the entry linking to the current pair.
    let leaf = -i16::from(leaf_value);
    let mut entry = (start..tree.len())
        .find(|&i| i16::from(tree[i]) == leaf && (tree[i] <= 0))
        .unwrap_or_else(|| panic!("{leaf_value} is not a leaf of the tree"));
    let mut nodes = [0u16; 16];
    let mut bits = 0u16;
    let mut depth = 0;
    loop {
        let node = entry & !1;
        nodes[depth] = node as u16;
        bits |= ((entry & 1) as u16) << depth;
        depth += 1;
        if node == start {
            break;
        }
        entry = (start..tree.len())
            .find(|&i| tree[i] > 0 && tree[i] as usize == node)
            .unwrap_or_else(|| panic!("node {node} is not reachable from {start}"));
    }
    for d in (0..depth).rev() {
        visit(usize::from(nodes[d]), (bits >> d) & 1 == 1);
    }
}

/// A probability table the frame header may update from the frame's own
/// symbols (RFC 6386 sections 16.2 and 17.2), whose decisions a branch
/// counter records per entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updatable {
    /// The 19 probabilities of motion vector component 0 (rows) or 1
    /// (columns).
    Mv(usize),
    /// The intra luma mode tree of inter frames.
    YMode,
    /// The intra chroma mode tree of inter frames.
    UvMode,
}

/// Where a syntax writer sends its decisions (rav1e's `WriterBase<S>`):
/// the [`BoolEncoder`] codes them, [`BitCost`] prices them, and the
/// encoder's branch counter records the decisions under updatable
/// probabilities to choose the frame's probability updates. Each syntax
/// element is written once, generic over the sink, so the bits the
/// encoder prices and counts are the bits it writes.
pub trait BitSink {
    /// One decision whose probability of being `false` is `prob / 256`.
    fn put_bool(&mut self, prob: u8, bit: bool);

    /// One decision under entry `index` of the updatable table `table`,
    /// whose current value is `prob`. Coding and pricing treat it as
    /// [`put_bool`](Self::put_bool).
    #[inline(always)]
    fn put_updatable(&mut self, table: Updatable, index: usize, prob: u8, bit: bool) {
        let _ = (table, index);
        self.put_bool(prob, bit);
    }

    /// The path to the leaf `leaf` of `tree` under the fixed
    /// probabilities `probs` (RFC 6386 section 8.1).
    ///
    /// # Panics
    ///
    /// If `leaf` is not a leaf of `tree`.
    #[inline]
    fn put_tree(&mut self, tree: &[i8], probs: &[u8], leaf: impl TreeLeaf) {
        walk_tree_path(tree, leaf.leaf(), 0, |node, bit| {
            self.put_bool(probs[node >> 1], bit)
        });
    }

    /// Like [`put_tree`](Self::put_tree), `probs` being the updatable
    /// table `table`.
    #[inline]
    fn put_updatable_tree(
        &mut self,
        table: Updatable,
        tree: &[i8],
        probs: &[u8],
        leaf: impl TreeLeaf,
    ) {
        walk_tree_path(tree, leaf.leaf(), 0, |node, bit| {
            self.put_updatable(table, node >> 1, probs[node >> 1], bit)
        });
    }
}

impl BitSink for BoolEncoder {
    #[inline]
    fn put_bool(&mut self, prob: u8, bit: bool) {
        BoolEncoder::put_bool(self, prob, bit);
    }
}

/// A [`BitSink`] that adds up the estimated cost, in 1/256 bit, of what
/// is written to it ([`cost_bool`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BitCost(pub u32);

impl BitSink for BitCost {
    #[inline]
    fn put_bool(&mut self, prob: u8, bit: bool) {
        self.0 += cost_bool(prob, bit);
    }
}

/// Estimated cost, in 1/256 bit, of coding `bit` at probability `prob`
/// (of a zero, RFC 6386 Section 7.1): `-256 * log2(P(bit))` rounded, from
/// a precomputed table. For rate estimation; the true cost also depends
/// on the coder's integer `split` approximation.
#[inline]
pub fn cost_bool(prob: u8, bit: bool) -> u32 {
    let p = if bit {
        256 - usize::from(prob)
    } else {
        usize::from(prob)
    };
    u32::from(PROB_COST[p])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bool_decoder::BoolDecoder;
    use crate::tables;

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
    fn cost_table_matches_log2() {
        for (p, &cost) in PROB_COST.iter().enumerate() {
            let expected = (-256.0 * (p.max(1) as f64 / 256.0).log2()).round() as u16;
            assert_eq!(cost, expected, "p = {p}");
        }
        assert_eq!(cost_bool(128, false), 256);
        assert_eq!(cost_bool(128, true), 256);
        assert_eq!(cost_bool(255, true), 2048);
        assert_eq!(cost_bool(0, true), 0);
        assert_eq!(cost_bool(0, false), 2048);
    }

    #[test]
    fn empty_partition() {
        let out = BoolEncoder::new().finish();
        assert_eq!(out, [0, 0, 0, 0]);
    }

    #[test]
    fn random_bools_round_trip() {
        let mut rng = Rng(0x0dd_ba11_cafe_f00d);
        for round in 0..50 {
            let n = [0, 1, 2, 7, 100, 5000][round % 6] + round;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let r = rng.next();
                let prob = (r >> 56) as u8;
                // Bias the bits toward the probability half the time, so
                // long runs of likely and unlikely values both occur.
                let bit = if round % 2 == 0 {
                    (r >> 8) as u8 >= prob
                } else {
                    r & 1 == 1
                };
                items.push((prob, bit));
            }
            let mut enc = BoolEncoder::new();
            for &(prob, bit) in &items {
                enc.put_bool(prob, bit);
            }
            let data = enc.finish();
            let mut dec = BoolDecoder::new(&data);
            for (i, &(prob, bit)) in items.iter().enumerate() {
                assert_eq!(dec.read_bool(prob), bit, "round {round} bool {i}");
            }
            assert_eq!(dec.bits_past_end(), 0, "round {round}");
        }
    }

    #[test]
    fn extreme_probabilities_round_trip() {
        // Unlikely values at extreme probabilities force long carries.
        for &(prob, bit) in &[
            (255u8, true),
            (1, false),
            (0, false),
            (255, false),
            (1, true),
        ] {
            let mut enc = BoolEncoder::new();
            for _ in 0..3000 {
                enc.put_bool(prob, bit);
            }
            let data = enc.finish();
            let mut dec = BoolDecoder::new(&data);
            for i in 0..3000 {
                assert_eq!(dec.read_bool(prob), bit, "prob {prob} bit {bit} #{i}");
            }
            assert_eq!(dec.bits_past_end(), 0);
        }
    }

    #[test]
    fn literals_and_signed_round_trip() {
        let mut rng = Rng(7);
        let mut values = Vec::new();
        let mut enc = BoolEncoder::new();
        for _ in 0..2000 {
            let bits = (rng.next() % 33) as u32;
            let value = (rng.next() as u32) & (((1u64 << bits) - 1) as u32);
            let sbits = (rng.next() % 8) as u32;
            let magnitude = (rng.next() as i32) & ((1 << sbits) - 1);
            let signed = if rng.next() & 1 == 1 {
                -magnitude
            } else {
                magnitude
            };
            enc.put_literal(bits, value);
            enc.put_signed(sbits, signed);
            enc.put_optional_signed(sbits, signed);
            values.push((bits, value, sbits, signed));
        }
        let data = enc.finish();
        let mut dec = BoolDecoder::new(&data);
        for &(bits, value, sbits, signed) in &values {
            assert_eq!(dec.read_literal(bits), value);
            assert_eq!(dec.read_signed(sbits), signed);
            assert_eq!(dec.read_optional_signed(sbits), signed);
        }
        assert!(!dec.is_past_end());
    }

    #[test]
    fn hand_computed_bytes() {
        // One 1 at prob 128: split = 128, so bottom = 128 and range = 127;
        // one normalising shift gives range 254, bottom 256, bit_count 23.
        // Flush: no carry (bit 9 clear); v = 256 << (23 & 7) = 0x8000, then
        // << 8 * (23 >> 3) = 0x8000_0000, written as four bytes.
        let mut enc = BoolEncoder::new();
        enc.put_bit(true);
        assert_eq!(enc.finish(), [0x80, 0, 0, 0]);
        let mut dec = BoolDecoder::new(&[0x80, 0, 0, 0]);
        assert!(dec.read_bit());
    }

    #[test]
    fn carry_propagates_into_written_bytes() {
        // Bools read from a stream whose value sits exactly on a byte
        // boundary (0x80 00 00 ...): while encoding them the interval
        // straddles the boundary for longer than the encoder's 24 bits of
        // lookahead, so it first writes 0x7f 0xff ... and must later carry
        // into them. Without the carry the output would read 0x7f ff ...
        let source = [0x12, 0x34, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x55, 0xaa];
        let mut dec = BoolDecoder::new(&source);
        let bits: Vec<bool> = (0..80).map(|_| dec.read_bool(60)).collect();
        let mut enc = BoolEncoder::new();
        for &bit in &bits {
            enc.put_bool(60, bit);
        }
        let data = enc.finish();
        assert_eq!(data, [0x12, 0x34, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x54, 0xe8]);
        let mut dec = BoolDecoder::new(&data);
        for &bit in &bits {
            assert_eq!(dec.read_bool(60), bit);
        }
    }

    #[test]
    fn trees_round_trip() {
        let trees: [(&[i8], Vec<u8>); 10] = [
            (&tables::YMODE_TREE, (0..=4).collect()),
            (&tables::KF_YMODE_TREE, (0..=4).collect()),
            (&tables::UV_MODE_TREE, (0..=3).collect()),
            (&tables::BMODE_TREE, (0..=9).collect()),
            (&tables::MV_REF_TREE, (5..=9).collect()),
            (&tables::SUB_MV_REF_TREE, (10..=13).collect()),
            (&tables::MBSPLIT_TREE, (0..=3).collect()),
            (&tables::SMALL_MV_TREE, (0..=7).collect()),
            (&tables::COEFF_TREE, (0..=11).collect()),
            (&tables::SEGMENT_ID_TREE, (0..=3).collect()),
        ];
        let mut rng = Rng(42);
        let mut written = Vec::new();
        let mut enc = BoolEncoder::new();
        for _ in 0..3000 {
            let t = (rng.next() % trees.len() as u64) as usize;
            let (tree, leaves) = &trees[t];
            let leaf = leaves[(rng.next() % leaves.len() as u64) as usize];
            let probs: Vec<u8> = (0..tree.len() / 2).map(|_| rng.next() as u8).collect();
            // Tokens other than EOB may also be coded without the EOB branch.
            let start = if t == 8 && leaf != tables::DCT_EOB_TOKEN && rng.next() & 1 == 1 {
                tables::COEFF_TREE_NO_EOB_START
            } else {
                0
            };
            enc.put_tree_from(tree, &probs, leaf, start);
            written.push((t, probs, leaf, start));
        }
        let data = enc.finish();
        let mut dec = BoolDecoder::new(&data);
        for (t, probs, leaf, start) in &written {
            assert_eq!(dec.read_tree_from(trees[*t].0, probs, *start), *leaf);
        }
        assert!(!dec.is_past_end());
    }
}
