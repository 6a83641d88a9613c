//! The second half of encoding a frame: from its decided syntax to bytes
//! and the next state (probabilities, loop filter, bitstream).

use std::sync::Arc;

use crate::bool_encoder::BoolEncoder;
use crate::encode::analysis::MbCoded;
use crate::encode::entropy::{
    count_modes, optimize_coeff_probs, optimize_mode_probs, prob_from_counts,
};
use crate::encode::loop_filter_pick::pick_filter_level;
use crate::encode::modes::write_modes;
use crate::encode::syntax::{Decided, FrameSyntax};
use crate::encode::tokenize::{tokenize_block, TokenCounter, TokenCounts, TokenWriter};
use crate::encode::workers::Workers;
use crate::encode::{EncodeError, EncodeParams, EncodedFrame};
use crate::header::{self, FrameHeader, Inherited};
use crate::loop_filter::apply_loop_filter;
use crate::modes::MbInfo;
use crate::prediction::RefFrame;
use crate::state::{next_state, DecoderState};
use crate::tokens::{skip_mb_coeffs, walk_mb_blocks};

/// Turns a decided frame into bytes and the state after them: chooses
/// the probabilities the frame sends, the loop filter level
/// (`params.filter_level`, or searched at `params.speed`), filters the
/// reconstruction and writes the bitstream.
///
/// On two or more of `workers` the loop filter (level search and
/// filtering) runs beside the probabilities and the token partitions:
/// neither reads what the other writes, and the first partition, which
/// carries the level, is written once both are done.
pub(crate) fn finish(
    state: &DecoderState,
    decided: Decided,
    params: &EncodeParams,
    workers: Workers,
) -> Result<EncodedFrame, EncodeError> {
    let Decided {
        mut syntax,
        recon: mut pic,
        src,
    } = decided;
    let FrameSyntax {
        header: ref mut hdr,
        ref modes,
        ref residual,
        mb_cols,
        mb_rows,
    } = syntax;
    let skips: Vec<bool> = residual.iter().map(|c| !c.has_residual).collect();
    // The loop filter reads the header's filter fields only, which
    // choosing probabilities leaves alone.
    let mut filter_hdr = hdr.clone();
    let (level, parts) = workers.join(
        || {
            filter_hdr.filter_level = match params.filter_level {
                Some(l) => l.min(63),
                None => pick_filter_level(
                    &pic,
                    &src,
                    &filter_hdr,
                    modes,
                    &skips,
                    mb_cols,
                    params,
                    workers,
                ),
            };
            if filter_hdr.filter_level > 0 {
                apply_loop_filter(&mut pic, &filter_hdr, modes, &skips, mb_cols);
            }
            for p in pic.planes.iter_mut() {
                p.extend_borders();
            }
            filter_hdr.filter_level
        },
        || {
            choose_probabilities(hdr, modes, residual, mb_cols, mb_rows);
            write_token_partitions(hdr, residual, mb_cols)
        },
    );
    syntax.header.filter_level = level;

    let data = write_frame(state, &mut syntax, &parts)?;
    let hdr = &syntax.header;
    let pic = Arc::new(pic);
    let new_state = next_state(state, hdr, pic.clone(), &syntax.modes);
    Ok(EncodedFrame {
        data,
        state: new_state,
        shown: hdr.tag.show_frame.then_some(pic),
        key_frame: hdr.tag.key_frame,
        q_index: params.q_index,
        filter_level: hdr.filter_level,
    })
}

/// Sets the probabilities the frame sends from what it codes (`hdr`'s,
/// the frame's records `mbs` and levels `residual`): token and (inter
/// frames) mode probabilities where an update pays, and the
/// per-macroblock flag probabilities.
fn choose_probabilities(
    hdr: &mut FrameHeader,
    mbs: &[MbInfo],
    residual: &[MbCoded],
    mb_cols: usize,
    mb_rows: usize,
) {
    let mut counts: TokenCounts = [[[[[0; 2]; 11]; 3]; 8]; 4];
    walk_frame_tokens(residual, mb_cols, |_, c, b, t, first, cx| {
        tokenize_block(
            &c.levels[b],
            first,
            cx,
            &mut TokenCounter {
                counts: &mut counts[t],
            },
        )
    });
    let base = hdr.probs.clone();
    hdr.probs.coeff = optimize_coeff_probs(&base, &counts);
    if !hdr.tag.key_frame {
        let mode_counts = count_modes(hdr, mbs, mb_cols, mb_rows);
        optimize_mode_probs(&mut hdr.probs, &mode_counts);
    }
    let n = mbs.len() as u32;
    let skipped = mbs.iter().filter(|m| m.skip).count() as u32;
    let intra = mbs
        .iter()
        .filter(|m| m.ref_frame == RefFrame::Intra)
        .count() as u32;
    let last = mbs.iter().filter(|m| m.ref_frame == RefFrame::Last).count() as u32;
    let golden = mbs
        .iter()
        .filter(|m| m.ref_frame == RefFrame::Golden)
        .count() as u32;
    let inter = n - intra;
    hdr.skip_prob = Some(prob_from_counts(n - skipped, skipped));
    hdr.prob_intra = prob_from_counts(intra, inter);
    hdr.prob_last = prob_from_counts(last, inter - last);
    hdr.prob_golden = prob_from_counts(golden, inter - last - golden);
}

/// Visits every coded block of a frame in bitstream order with its token
/// context: `block(mb_y, macroblock, index, plane_type, first, ctx)`
/// returns whether the block has a non-zero level (see
/// [`walk_mb_blocks`]). Macroblocks without residual only reset their
/// contexts, as the decoder does.
fn walk_frame_tokens(
    residual: &[MbCoded],
    mb_cols: usize,
    mut block: impl FnMut(usize, &MbCoded, usize, usize, usize, usize) -> bool,
) {
    let mut above = vec![[0u8; 9]; mb_cols];
    let mut left = [0u8; 9];
    for (i, c) in residual.iter().enumerate() {
        let (mb_x, mb_y) = (i % mb_cols, i / mb_cols);
        if mb_x == 0 {
            left = [0; 9];
        }
        let y2 = c.info.y_mode.has_y2();
        if !c.has_residual {
            skip_mb_coeffs(y2, &mut above[mb_x], &mut left);
        } else {
            walk_mb_blocks(y2, &mut above[mb_x], &mut left, |b, t, first, cx| {
                block(mb_y, c, b, t, first, cx)
            });
        }
    }
}

/// The token partitions of a frame whose header `hdr` holds the token
/// probabilities it sends: row `r` in partition `r % P`.
fn write_token_partitions(hdr: &FrameHeader, residual: &[MbCoded], mb_cols: usize) -> Vec<Vec<u8>> {
    let np = hdr.partitions.count();
    let mut parts: Vec<BoolEncoder> = (0..np).map(|_| BoolEncoder::new()).collect();
    walk_frame_tokens(residual, mb_cols, |mb_y, c, b, t, first, cx| {
        tokenize_block(
            &c.levels[b],
            first,
            cx,
            &mut TokenWriter {
                bw: &mut parts[mb_y % np],
                probs: &hdr.probs.coeff[t],
            },
        )
    });
    parts.into_iter().map(|p| p.finish()).collect()
}

/// Writes the frame: tag, first partition (header and modes), partition
/// sizes and the token partitions `parts`. Sets the header's first
/// partition size.
fn write_frame(
    state: &DecoderState,
    syntax: &mut FrameSyntax,
    parts: &[Vec<u8>],
) -> Result<Vec<u8>, EncodeError> {
    let hdr: &FrameHeader = &syntax.header;
    let mut bw = BoolEncoder::with_capacity(1024 + syntax.modes.len() * 4);
    header::write_header(
        &mut bw,
        hdr,
        Inherited {
            segment_features: &state.segment_features,
            filter_deltas: &state.filter_deltas,
            probs: &state.probs,
        },
    );
    write_modes(&mut bw, hdr, &syntax.modes, syntax.mb_cols, syntax.mb_rows);
    let first = bw.finish();
    if first.len() >= 1 << 19 {
        return Err(EncodeError::FirstPartitionTooLarge(first.len()));
    }
    syntax.header.tag.first_part_size = first.len();
    let hdr = &syntax.header;
    let mut data = Vec::with_capacity(first.len() + parts.iter().map(Vec::len).sum::<usize>() + 32);
    header::write_tag(&hdr.tag, hdr.size.as_ref(), &mut data);
    data.extend_from_slice(&first);
    append_token_partitions(&mut data, parts)?;
    Ok(data)
}

/// Appends the token partitions as the decoder splits them
/// ([`crate::decode::token_partitions`], RFC 6386 section 9.5): the
/// sizes of all but the last, 3 bytes little-endian each, then the
/// partitions.
fn append_token_partitions(data: &mut Vec<u8>, parts: &[Vec<u8>]) -> Result<(), EncodeError> {
    for p in &parts[..parts.len() - 1] {
        if p.len() >= 1 << 24 {
            return Err(EncodeError::FirstPartitionTooLarge(p.len()));
        }
        data.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
    }
    for p in parts {
        data.extend_from_slice(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Token partitions of any count and non-empty sizes come back
        /// from the decoder's splitter as they went in.
        #[test]
        fn token_partitions_round_trip(
            parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..=8)
                .prop_filter("1, 2, 4 or 8 partitions", |p| p.len().is_power_of_two())
        ) {
            let mut data = Vec::new();
            append_token_partitions(&mut data, &parts).unwrap();
            let split = crate::decode::token_partitions(&data, parts.len()).unwrap();
            prop_assert_eq!(split, parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }
}
