//! Encoding one frame against a given state:
//! `encode(state, image, params) -> (bytes, state')`.

use std::sync::Arc;

use crate::bool_encoder::{cost_bool, BoolEncoder};
use crate::decode::{apply_loop_filter, next_state};
use crate::encode::analysis::{FrameAnalysis, MbCoded, TokenContexts};
use crate::encode::entropy::{count_modes, optimize_mode_probs};
use crate::encode::loop_filter_pick::pick_filter_level;
use crate::encode::modes::write_modes;
use crate::encode::quantize::{QuantDeltas, Quantizer};
use crate::encode::tokenize::{tokenize_block, TokenCounter, TokenCounts, TokenWriter};
use crate::encode::{EncodeError, EncodeParams, EncodedFrame};
use crate::header::{
    self, FilterDeltas, FrameHeader, FrameSize, FrameTag, Inherited, QuantIndices, SegmentFeatures,
};
use crate::image::Frame;
use crate::modes::{MbInfo, GOLDEN_FRAME, INTRA_FRAME, LAST_FRAME};
use crate::picture::{Picture, PlaneBuf};
use crate::probs::Probabilities;
use crate::recon::{self, SubpelFilter};
use crate::state::DecoderState;
use crate::tables::{B_PRED, COEFF_UPDATE_PROBS, SPLITMV};

/// libvpx's default loop filter deltas: intra and golden/altref frames get
/// stronger/weaker filtering, B_PRED and SPLITMV stronger, ZEROMV weaker.
const DEFAULT_FILTER_DELTAS: FilterDeltas = FilterDeltas {
    ref_frame: [2, 0, -2, -2],
    mode: [4, -2, 2, 4],
};

/// Copies a frame into macroblock-aligned planes, replicating the right
/// and bottom edges into the padding.
fn pad_source(frame: &Frame) -> [PlaneBuf; 3] {
    let mbw = frame.width.div_ceil(16);
    let mbh = frame.height.div_ceil(16);
    core::array::from_fn(|i| {
        let (w, h) = if i == 0 {
            (mbw * 16, mbh * 16)
        } else {
            (mbw * 8, mbh * 8)
        };
        let src = &frame.planes[i];
        let mut p = PlaneBuf::new(w, h, 0);
        for y in 0..h {
            let sy = y.min(src.height - 1);
            let row = src.row(sy);
            let dst = &mut p.data[y * w..(y + 1) * w];
            dst[..src.width].copy_from_slice(row);
            let last = row[src.width - 1];
            dst[src.width..].fill(last);
        }
        p
    })
}

/// Probability of a zero bit given counts, clamped to 1..=255.
pub(crate) fn prob_from_counts(zeros: u32, ones: u32) -> u8 {
    let total = zeros as u64 + ones as u64;
    if total == 0 {
        return 128;
    }
    ((zeros as u64 * 256 + total / 2) / total).clamp(1, 255) as u8
}

fn branch_cost(p: u8, counts: [u32; 2]) -> u64 {
    counts[0] as u64 * cost_bool(p, false) as u64 + counts[1] as u64 * cost_bool(p, true) as u64
}

/// Chooses which coefficient probabilities to update: those whose saving
/// on this frame's tokens pays for the update's own bits.
fn optimize_coeff_probs(base: &Probabilities, counts: &TokenCounts) -> [[[[u8; 11]; 3]; 8]; 4] {
    let mut out = base.coeff;
    for i in 0..4 {
        for j in 0..8 {
            for k in 0..3 {
                for l in 0..11 {
                    let c = counts[i][j][k][l];
                    let old = base.coeff[i][j][k][l];
                    let new = prob_from_counts(c[0], c[1]);
                    let up = COEFF_UPDATE_PROBS[i][j][k][l];
                    let keep = branch_cost(old, c) + cost_bool(up, false) as u64;
                    let change = branch_cost(new, c) + cost_bool(up, true) as u64 + 8 * 256;
                    if change < keep {
                        out[i][j][k][l] = new;
                    }
                }
            }
        }
    }
    out
}

/// Walks the tokens of one macroblock in decoder order with its contexts.
fn walk_mb_tokens(
    coded: &MbCoded,
    above: &mut [u8; 9],
    left: &mut [u8; 9],
    mut block: impl FnMut(usize, usize, usize, usize) -> bool,
) {
    let y2 = coded.info.y_mode != B_PRED && coded.info.y_mode != SPLITMV;
    let (ty, first) = if y2 {
        let nz = block(1, 24, 0, (above[8] + left[8]) as usize) as u8;
        above[8] = nz;
        left[8] = nz;
        (0, 1)
    } else {
        (3, 0)
    };
    for b in 0..16 {
        let (a, l) = (b & 3, b >> 2);
        let nz = block(ty, b, first, (above[a] + left[l]) as usize) as u8;
        above[a] = nz;
        left[l] = nz;
    }
    for b in 16..24 {
        let base = if b < 20 { 4 } else { 6 };
        let i = b & 3;
        let (a, l) = (base + (i & 1), base + (i >> 1));
        let nz = block(2, b, 0, (above[a] + left[l]) as usize) as u8;
        above[a] = nz;
        left[l] = nz;
    }
}

/// Decisions imposed on a frame by [`crate::encode::rebase::rebase`]: the
/// original frame's header and macroblock records.
pub(crate) struct Forced {
    pub header: FrameHeader,
    pub modes: Vec<MbInfo>,
    /// Whether the frame is coded against a state other than the one its
    /// decisions were made against (a real rebase, not the identity).
    pub moved: bool,
}

/// Encodes `frame` against `state` (see [`crate::encode::encode`]).
pub(crate) fn encode_frame(
    state: &DecoderState,
    frame: &Frame,
    params: &EncodeParams,
) -> Result<EncodedFrame, EncodeError> {
    encode_frame_with(state, frame, params, None)
}

/// Encodes `frame` against `state`, searching for decisions, or with the
/// decisions of `forced` (rebase).
pub(crate) fn encode_frame_with(
    state: &DecoderState,
    frame: &Frame,
    params: &EncodeParams,
    forced: Option<&Forced>,
) -> Result<EncodedFrame, EncodeError> {
    let (w, h) = (frame.width, frame.height);
    if w == 0 || h == 0 || w > 16383 || h > 16383 {
        return Err(EncodeError::BadDimensions(w, h));
    }
    if frame.planes[0].width != w
        || frame.planes[0].height != h
        || frame.planes[1].width != w.div_ceil(2)
    {
        return Err(EncodeError::BadDimensions(w, h));
    }
    if params.q_index > 127 {
        return Err(EncodeError::BadParam("q_index must be 0..=127"));
    }
    let key = params.key_frame || state.is_empty() || state.dimensions() != (w, h);
    let src = pad_source(frame);
    let mb_cols = w.div_ceil(16);
    let mb_rows = h.div_ceil(16);
    let deltas = match forced {
        Some(f) => QuantDeltas {
            y1_dc: f.header.quant.y1_dc,
            y2_dc: f.header.quant.y2_dc,
            y2_ac: f.header.quant.y2_ac,
            uv_dc: f.header.quant.uv_dc,
            uv_ac: f.header.quant.uv_ac,
        },
        None => QuantDeltas::libvpx(params.q_index),
    };
    let quant = Quantizer::new(params.q_index, &deltas);
    // Per-segment quantizers (only rebase keeps segmentation).
    let quants: [Quantizer; 4] = core::array::from_fn(|s| match forced {
        Some(f) if f.header.segmentation_enabled => {
            let sf = &f.header.segment_features;
            let q = if sf.absolute {
                sf.quant[s] as i32
            } else {
                params.q_index as i32 + sf.quant[s] as i32
            };
            Quantizer::new(q.clamp(0, 127) as u8, &deltas)
        }
        _ => quant.clone(),
    });
    let base_probs = if key {
        Probabilities::default()
    } else {
        state.probs.clone()
    };
    let lambda = crate::encode::analysis::rd_lambda(&quant, params.lambda_scale, key);
    let refs = if key { None } else { state.refs.as_ref() };
    let filter = match forced {
        Some(f) => SubpelFilter::for_version(f.header.tag.version),
        None => SubpelFilter::SixTap,
    };

    // Only search references that differ from the ones before them.
    let sign_bias = [
        false,
        false,
        !key && params.sign_bias_golden,
        !key && params.sign_bias_altref,
    ];
    let mut search_refs = vec![LAST_FRAME];
    if let Some(r) = refs {
        if params.speed <= 4 && !Arc::ptr_eq(&r.golden, &r.last) && r.golden != r.last {
            search_refs.push(GOLDEN_FRAME);
        }
        // A hidden alt-ref built from future frames (sign bias set) is
        // worth searching wherever golden is.
        let altref_speed = if params.sign_bias_altref { 4 } else { 2 };
        if params.speed <= altref_speed
            && !Arc::ptr_eq(&r.altref, &r.last)
            && !Arc::ptr_eq(&r.altref, &r.golden)
            && r.altref != r.golden
            && r.altref != r.last
        {
            search_refs.push(3);
        }
    }
    let analysis = FrameAnalysis {
        src: &src,
        refs,
        quant: &quant,
        probs: &base_probs,
        key,
        lambda,
        speed: params.speed,
        filter,
        mb_cols,
        mb_rows,
        sign_bias,
        prob_skip: 128,
        prob_intra: 40,
        prob_last: 200,
        prob_golden: 128,
        search_refs: &search_refs,
        search: crate::encode::subpel::SearchCache::new(&base_probs.mv),
    };
    let mut pic = Picture::new(w, h);
    recon::init_intra_borders(&mut pic);
    let mut ctx = TokenContexts {
        above: vec![[0; 9]; mb_cols],
        left: [0; 9],
    };
    let mut mbs: Vec<MbInfo> = Vec::with_capacity(mb_cols * mb_rows);
    let mut coded: Vec<MbCoded> = Vec::with_capacity(mb_cols * mb_rows);
    for mb_y in 0..mb_rows {
        ctx.left = [0; 9];
        for mb_x in 0..mb_cols {
            let c = match forced {
                Some(f) => {
                    let info = &f.modes[mb_y * mb_cols + mb_x];
                    crate::encode::rebase::code_forced_mb(
                        &analysis, &quants, &mut pic, &mut ctx, info, f.moved, mb_x, mb_y,
                    )
                }
                None => analysis.encode_mb(&mut pic, &mut ctx, &mbs, mb_x, mb_y),
            };
            mbs.push(c.info);
            coded.push(c);
        }
        recon::extend_row_right(&mut pic, mb_y);
    }

    // Entropy: token statistics and the per-macroblock flag probabilities.
    let mut counts: TokenCounts = [[[[[0; 2]; 11]; 3]; 8]; 4];
    {
        let mut above = vec![[0u8; 9]; mb_cols];
        let mut left = [0u8; 9];
        for (i, c) in coded.iter().enumerate() {
            let mb_x = i % mb_cols;
            if mb_x == 0 {
                left = [0; 9];
            }
            let y2 = c.info.y_mode != B_PRED && c.info.y_mode != SPLITMV;
            if !c.has_residual {
                crate::tokens::skip_mb_coeffs(y2, &mut above[mb_x], &mut left);
            } else {
                walk_mb_tokens(c, &mut above[mb_x], &mut left, |t, b, first, cx| {
                    tokenize_block(
                        &c.levels[b],
                        first,
                        cx,
                        &mut TokenCounter {
                            counts: &mut counts[t],
                        },
                    )
                });
            }
        }
    }
    let mut probs = base_probs.clone();
    probs.coeff = optimize_coeff_probs(&base_probs, &counts);
    if !key {
        let mode_counts = count_modes(&mbs, mb_cols, mb_rows, sign_bias);
        optimize_mode_probs(&mut probs, &mode_counts);
    }
    let n = mbs.len() as u32;
    let skipped = mbs.iter().filter(|m| m.skip).count() as u32;
    let intra = mbs.iter().filter(|m| m.ref_frame == INTRA_FRAME).count() as u32;
    let last = mbs.iter().filter(|m| m.ref_frame == LAST_FRAME).count() as u32;
    let golden = mbs.iter().filter(|m| m.ref_frame == GOLDEN_FRAME).count() as u32;
    let inter = n - intra;

    let filter_deltas = DEFAULT_FILTER_DELTAS;
    let update_filter_deltas = key || state.filter_deltas != filter_deltas;
    let mut hdr = FrameHeader {
        tag: FrameTag {
            key_frame: key,
            version: 0,
            show_frame: params.show_frame,
            first_part_size: 0,
        },
        size: key.then_some(FrameSize {
            width: w as u16,
            height: h as u16,
            horiz_scale: 0,
            vert_scale: 0,
        }),
        color_space: false,
        clamping_type: false,
        segmentation_enabled: false,
        update_segment_map: false,
        update_segment_features: false,
        segment_tree_probs: [255; 3],
        segment_features: if key {
            SegmentFeatures::default()
        } else {
            state.segment_features
        },
        filter_simple: false,
        filter_level: 0,
        sharpness: params.sharpness,
        filter_deltas_enabled: true,
        update_filter_deltas,
        filter_deltas,
        partitions: params.partitions,
        quant: QuantIndices {
            q_index: params.q_index,
            y1_dc: deltas.y1_dc,
            y2_dc: deltas.y2_dc,
            y2_ac: deltas.y2_ac,
            uv_dc: deltas.uv_dc,
            uv_ac: deltas.uv_ac,
        },
        refresh_golden: key || params.refresh_golden,
        refresh_altref: key || params.refresh_altref,
        copy_to_golden: if key || params.refresh_golden {
            0
        } else {
            params.copy_to_golden
        },
        copy_to_altref: if key || params.refresh_altref {
            0
        } else {
            params.copy_to_altref
        },
        sign_bias_golden: sign_bias[2],
        sign_bias_altref: sign_bias[3],
        refresh_entropy: params.refresh_entropy,
        refresh_last: key || params.refresh_last,
        probs,
        skip_prob: Some(prob_from_counts(n - skipped, skipped)),
        prob_intra: prob_from_counts(intra, inter),
        prob_last: prob_from_counts(last, inter - last),
        prob_golden: prob_from_counts(golden, inter - last - golden),
    };

    if let Some(f) = forced {
        impose_header(&mut hdr, &f.header, state, &mbs);
    }

    // Loop filter: pick the level, then filter the reconstruction.
    let skips: Vec<bool> = coded.iter().map(|c| !c.has_residual).collect();
    hdr.filter_level = match params.filter_level {
        Some(l) => l.min(63),
        None => pick_filter_level(&pic, &src, &hdr, &mbs, &skips, mb_cols, params),
    };
    if hdr.filter_level > 0 {
        apply_loop_filter(&mut pic, &hdr, &mbs, &skips, mb_cols);
    }
    for p in pic.planes.iter_mut() {
        p.extend_borders();
    }

    // Bitstream: first partition (header and modes), then the tokens.
    let mut bw = BoolEncoder::with_capacity(1024 + mbs.len() * 4);
    header::write_header(
        &mut bw,
        &hdr,
        Inherited {
            segment_features: &state.segment_features,
            filter_deltas: &state.filter_deltas,
            probs: &state.probs,
        },
    );
    write_modes(&mut bw, &hdr, &mbs, mb_cols, mb_rows);
    let first = bw.finish();
    let np = hdr.partitions;
    let mut parts: Vec<BoolEncoder> = (0..np).map(|_| BoolEncoder::new()).collect();
    let mut above = vec![[0u8; 9]; mb_cols];
    for mb_y in 0..mb_rows {
        let bw = &mut parts[mb_y % np];
        let mut left = [0u8; 9];
        for mb_x in 0..mb_cols {
            let c = &coded[mb_y * mb_cols + mb_x];
            if !c.has_residual {
                let y2 = c.info.y_mode != B_PRED && c.info.y_mode != SPLITMV;
                crate::tokens::skip_mb_coeffs(y2, &mut above[mb_x], &mut left);
                continue;
            }
            walk_mb_tokens(c, &mut above[mb_x], &mut left, |t, b, first, cx| {
                tokenize_block(
                    &c.levels[b],
                    first,
                    cx,
                    &mut TokenWriter {
                        bw,
                        probs: &hdr.probs.coeff[t],
                    },
                )
            });
        }
    }
    let parts: Vec<Vec<u8>> = parts.into_iter().map(|p| p.finish()).collect();
    hdr.tag.first_part_size = first.len();
    if first.len() >= 1 << 19 {
        return Err(EncodeError::FirstPartitionTooLarge(first.len()));
    }
    let mut data = Vec::with_capacity(first.len() + parts.iter().map(Vec::len).sum::<usize>() + 32);
    header::write_tag(&hdr.tag, hdr.size.as_ref(), &mut data);
    data.extend_from_slice(&first);
    for p in &parts[..np - 1] {
        if p.len() >= 1 << 24 {
            return Err(EncodeError::FirstPartitionTooLarge(p.len()));
        }
        data.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
    }
    for p in &parts {
        data.extend_from_slice(p);
    }

    let pic = Arc::new(pic);
    let new_state = next_state(state, &hdr, pic.clone(), &mbs);
    Ok(EncodedFrame {
        data,
        state: new_state,
        shown: hdr.tag.show_frame.then_some(pic),
        key_frame: key,
        q_index: params.q_index,
        filter_level: hdr.filter_level,
    })
}

/// Copies the decisions of an original frame header into a rebased one,
/// sending updates wherever the new state differs from the original's.
fn impose_header(hdr: &mut FrameHeader, orig: &FrameHeader, state: &DecoderState, mbs: &[MbInfo]) {
    hdr.tag.version = orig.tag.version;
    hdr.tag.show_frame = orig.tag.show_frame;
    hdr.segmentation_enabled = orig.segmentation_enabled;
    hdr.segment_features = orig.segment_features;
    hdr.update_segment_features = orig.segmentation_enabled
        && (orig.update_segment_features || state.segment_features != orig.segment_features);
    let ids_differ = state.segment_map.len() != mbs.len()
        || state
            .segment_map
            .iter()
            .zip(mbs)
            .any(|(&s, m)| s != m.segment);
    hdr.update_segment_map = orig.segmentation_enabled && (orig.update_segment_map || ids_differ);
    hdr.segment_tree_probs = orig.segment_tree_probs;
    hdr.filter_simple = orig.filter_simple;
    hdr.sharpness = orig.sharpness;
    hdr.filter_deltas_enabled = orig.filter_deltas_enabled;
    hdr.filter_deltas = orig.filter_deltas;
    hdr.update_filter_deltas = orig.filter_deltas_enabled
        && (orig.update_filter_deltas || state.filter_deltas != orig.filter_deltas);
    hdr.partitions = orig.partitions;
    hdr.quant = orig.quant;
    hdr.refresh_golden = orig.refresh_golden;
    hdr.refresh_altref = orig.refresh_altref;
    hdr.copy_to_golden = orig.copy_to_golden;
    hdr.copy_to_altref = orig.copy_to_altref;
    hdr.sign_bias_golden = orig.sign_bias_golden;
    hdr.sign_bias_altref = orig.sign_bias_altref;
    hdr.refresh_entropy = orig.refresh_entropy;
    hdr.refresh_last = orig.refresh_last;
}
