//! DCT token coding, the mirror of `crate::tokens`: turns quantized
//! levels into the branch decisions of the token tree (RFC 6386 section
//! 13), which a writer, a counter and a cost estimator all consume.

use crate::bool_encoder::{cost_bool, BoolEncoder};
use crate::probs::CoeffProbs;
use crate::tables::{COEFF_BANDS, DCT_CAT_BASE, DCT_CAT_PROBS, PCAT1, PCAT2};

/// Largest level a token can carry (DCT_CAT6: 67 + 2^11 - 1).
pub const MAX_LEVEL: i32 = 2048 + 66;

/// Receives the branch decisions of one block's tokens.
pub trait TokenSink {
    /// A decision on tree node `node` under `[band][ctx]` probabilities.
    fn tree(&mut self, band: usize, ctx: usize, node: usize, bit: bool);
    /// A bit with a fixed probability (extra bits and signs).
    fn fixed(&mut self, prob: u8, bit: bool);
}

/// Walks the tokens of one block: `levels` in zigzag order, coding from
/// position `first` with context `ctx`. Returns true if any level is
/// non-zero (which sets the neighbours' context).
pub fn tokenize_block<S: TokenSink>(
    levels: &[i16; 16],
    first: usize,
    ctx: usize,
    sink: &mut S,
) -> bool {
    let last = match (first..16).rev().find(|&i| levels[i] != 0) {
        Some(l) => l,
        None => {
            sink.tree(COEFF_BANDS[first], ctx, 0, false);
            return false;
        }
    };
    let mut ctx = ctx;
    let mut after_zero = false;
    for n in first..=last {
        let band = COEFF_BANDS[n];
        if !after_zero {
            sink.tree(band, ctx, 0, true);
        }
        let v = (levels[n] as i32).unsigned_abs().min(MAX_LEVEL as u32) as i32;
        if v == 0 {
            sink.tree(band, ctx, 1, false);
            ctx = 0;
            after_zero = true;
            continue;
        }
        after_zero = false;
        sink.tree(band, ctx, 1, true);
        if v == 1 {
            sink.tree(band, ctx, 2, false);
        } else {
            sink.tree(band, ctx, 2, true);
            if v <= 4 {
                sink.tree(band, ctx, 3, false);
                if v == 2 {
                    sink.tree(band, ctx, 4, false);
                } else {
                    sink.tree(band, ctx, 4, true);
                    sink.tree(band, ctx, 5, v == 4);
                }
            } else {
                sink.tree(band, ctx, 3, true);
                if v <= 10 {
                    sink.tree(band, ctx, 6, false);
                    if v <= 6 {
                        sink.tree(band, ctx, 7, false);
                        sink.fixed(PCAT1[0], v == 6);
                    } else {
                        sink.tree(band, ctx, 7, true);
                        let e = v - 7;
                        sink.fixed(PCAT2[0], e & 2 != 0);
                        sink.fixed(PCAT2[1], e & 1 != 0);
                    }
                } else {
                    sink.tree(band, ctx, 6, true);
                    // Categories 3..=6 (RFC 6386 section 13.2).
                    let cat = match v {
                        11..=18 => 0,
                        19..=34 => 1,
                        35..=66 => 2,
                        _ => 3,
                    };
                    let (base, probs) = (DCT_CAT_BASE[2 + cat], DCT_CAT_PROBS[2 + cat]);
                    sink.tree(band, ctx, 8, cat >= 2);
                    sink.tree(band, ctx, 9 + (cat >= 2) as usize, cat & 1 == 1);
                    let e = v - base;
                    let nbits = probs.len();
                    for (i, &p) in probs.iter().enumerate() {
                        sink.fixed(p, (e >> (nbits - 1 - i)) & 1 == 1);
                    }
                }
            }
        }
        sink.fixed(128, levels[n] < 0);
        ctx = if v == 1 { 1 } else { 2 };
    }
    if last < 15 {
        sink.tree(COEFF_BANDS[last + 1], ctx, 0, false);
    }
    true
}

/// Writes tokens with a bool encoder.
pub struct TokenWriter<'a> {
    /// Destination.
    pub bw: &'a mut BoolEncoder,
    /// Probabilities of the block type being written.
    pub probs: &'a [[[u8; 11]; 3]; 8],
}

impl TokenSink for TokenWriter<'_> {
    #[inline]
    fn tree(&mut self, band: usize, ctx: usize, node: usize, bit: bool) {
        self.bw.put_bool(self.probs[band][ctx][node], bit);
    }
    #[inline]
    fn fixed(&mut self, prob: u8, bit: bool) {
        self.bw.put_bool(prob, bit);
    }
}

/// Branch counts `[type][band][ctx][node][bit]` for probability updates.
pub type TokenCounts = [[[[[u32; 2]; 11]; 3]; 8]; 4];

/// Counts token branch decisions of one block type.
pub struct TokenCounter<'a> {
    /// Counts of the block type.
    pub counts: &'a mut [[[[u32; 2]; 11]; 3]; 8],
}

impl TokenSink for TokenCounter<'_> {
    #[inline]
    fn tree(&mut self, band: usize, ctx: usize, node: usize, bit: bool) {
        self.counts[band][ctx][node][bit as usize] += 1;
    }
    #[inline]
    fn fixed(&mut self, _prob: u8, _bit: bool) {}
}

/// Sums the cost in 1/256 bits of the tokens.
pub struct TokenCost<'a> {
    /// Probabilities of the block type.
    pub probs: &'a [[[u8; 11]; 3]; 8],
    /// Accumulated cost.
    pub cost: u32,
}

impl TokenSink for TokenCost<'_> {
    #[inline]
    fn tree(&mut self, band: usize, ctx: usize, node: usize, bit: bool) {
        self.cost += cost_bool(self.probs[band][ctx][node], bit);
    }
    #[inline]
    fn fixed(&mut self, prob: u8, bit: bool) {
        self.cost += cost_bool(prob, bit);
    }
}

/// Cost in 1/256 bits of coding a block.
pub fn block_cost(
    probs: &CoeffProbs,
    block_type: usize,
    levels: &[i16; 16],
    first: usize,
    ctx: usize,
) -> u32 {
    let mut c = TokenCost {
        probs: &probs[block_type],
        cost: 0,
    };
    tokenize_block(levels, first, ctx, &mut c);
    c.cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bool_decoder::BoolDecoder;
    use crate::dequant::Dequant;
    use crate::probs::Probabilities;
    use crate::tables::ZIGZAG;
    use crate::tokens::{read_mb_coeffs, MbCoeffs, TokenProbs};

    /// Writes a macroblock's 25 blocks with our tokenizer and reads them back
    /// with the decoder's token reader.
    #[test]
    fn tokens_round_trip_through_decoder() {
        let probs = Probabilities::default().coeff;
        let mut seed = 12345u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for trial in 0..200 {
            let mut levels = [[0i16; 16]; 25];
            for b in levels.iter_mut() {
                for v in b.iter_mut() {
                    let r = rnd();
                    *v = match r % 10 {
                        0..=5 => 0,
                        6 | 7 => (r as i16 >> 8) % 3,
                        8 => (r as i16 >> 8) % 70,
                        _ => ((r >> 8) % (2 * MAX_LEVEL as u32)) as i16 - MAX_LEVEL as i16,
                    };
                }
            }
            let has_y2 = trial % 2 == 0;
            let mut bw = BoolEncoder::new();
            let mut above = [0u8; 9];
            let mut left = [0u8; 9];
            let mut write = |t: usize,
                             b: usize,
                             first: usize,
                             ai: usize,
                             li: usize,
                             above: &mut [u8; 9],
                             left: &mut [u8; 9]| {
                let ctx = (above[ai] + left[li]) as usize;
                let nz = tokenize_block(
                    &levels[b],
                    first,
                    ctx,
                    &mut TokenWriter {
                        bw: &mut bw,
                        probs: &probs[t],
                    },
                );
                above[ai] = nz as u8;
                left[li] = nz as u8;
            };
            let first = if has_y2 {
                write(1, 24, 0, 8, 8, &mut above, &mut left);
                1
            } else {
                0
            };
            for b in 0..16 {
                write(
                    if has_y2 { 0 } else { 3 },
                    b,
                    first,
                    b & 3,
                    b >> 2,
                    &mut above,
                    &mut left,
                );
            }
            for b in 16..24 {
                let base = if b < 20 { 4 } else { 6 };
                let i = b & 3;
                write(
                    2,
                    b,
                    0,
                    base + (i & 1),
                    base + (i >> 1),
                    &mut above,
                    &mut left,
                );
            }
            let bytes = bw.finish();
            let mut bd = BoolDecoder::new(&bytes);
            let dq = Dequant {
                y1: [1, 1],
                y2: [1, 1],
                uv: [1, 1],
            };
            let mut out = MbCoeffs::new();
            let (mut a2, mut l2) = ([0u8; 9], [0u8; 9]);
            read_mb_coeffs(
                &mut bd,
                &TokenProbs::new(&probs),
                has_y2,
                &dq,
                &mut a2,
                &mut l2,
                &mut out,
            );
            assert_eq!((a2, l2), (above, left));
            for b in 0..25 {
                if b == 24 && !has_y2 {
                    continue;
                }
                let first = if b < 16 && has_y2 { 1 } else { 0 };
                for n in first..16 {
                    let want = levels[b][n].clamp(-MAX_LEVEL as i16, MAX_LEVEL as i16);
                    assert_eq!(
                        out.blocks[b][ZIGZAG[n]], want,
                        "trial {trial} block {b} pos {n}"
                    );
                }
            }
        }
    }
}
