//! Rebase: keep a compressed frame's decisions (modes, reference frames,
//! motion vectors, quantizer, loop filter, segmentation), redo its residual
//! against a different state. This is how an ExCamera chunk encoded from a
//! key frame is re-attached to the true end state of the chunk before it.

use thiserror::Error;

use crate::decode::{decode_picture, parse_modes};
use crate::encode::analysis::{quantize, FrameAnalysis, MbCoded, TokenContexts};
use crate::encode::fdct::fdct4x4;
use crate::encode::finish::finish;
use crate::encode::quantize::Quantizer;
use crate::encode::syntax::{check_picture, search_refs, Decided, FrameInputs, FrameSyntax};
use crate::encode::workers::Workers;
use crate::encode::{EncodeError, EncodeParams, EncodedFrame};
use crate::error::DecodeError;
use crate::header::{FrameHeader, FrameTag};
use crate::image::Image;
use crate::intra_pred;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};
use crate::prediction::{LumaMode, RefFrame};
use crate::recon;
use crate::state::DecoderState;
use crate::tokens::MbCoeffs;

/// Why a frame could not be rebased.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RebaseError {
    /// The frame does not decode against the state it was encoded from.
    #[error("frame does not decode against its original state: {0}")]
    Decode(#[from] DecodeError),
    /// Re-encoding failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The target state has no references or another picture size.
    #[error("target state ({0}x{1}) cannot take a {2}x{3} inter frame")]
    Incompatible(usize, usize, usize, usize),
}

/// Re-encodes `frame` (compressed, decodable from `original`) so that it
/// decodes from `target` instead: same decisions, new residual, new
/// token/skip/reference probabilities. `image` is the source picture the
/// frame was made from. Key frames depend on no state and are returned
/// unchanged. Rebasing onto the original state reproduces the original
/// reconstruction for frames coded at the default
/// [`EncodeParams::lambda_scale`] (the streaming encoder codes its golden
/// refreshes finer, so those come out re-quantized).
pub fn rebase(
    original: &DecoderState,
    target: &DecoderState,
    image: &Image,
    frame: &[u8],
) -> Result<EncodedFrame, RebaseError> {
    let (h, modes) = parse_modes(original, frame)?;
    if h.tag.key_frame {
        let again = decode_picture(target, frame)?;
        return Ok(EncodedFrame {
            data: frame.to_vec(),
            state: again.state,
            shown: again.shown,
            key_frame: true,
            q_index: h.quant.q_index,
            filter_level: h.filter_level,
        });
    }
    let (tw, th) = target.dimensions();
    let (fw, fh) = original.dimensions();
    if target.is_empty() || (tw, th) != (fw, fh) || (image.width, image.height) != (tw, th) {
        return Err(RebaseError::Incompatible(tw, th, fw, fh));
    }
    check_picture(image)?;
    // Rebased frames are coded at the default (inter frame) lambda, the
    // one all but key and golden frames are encoded at: such a frame,
    // rebased onto the state it was made against, comes out as it went in.
    let moved = original.references() != target.references();
    let params = EncodeParams {
        q_index: h.quant.q_index,
        show_frame: h.tag.show_frame,
        sign_bias_golden: h.sign_bias_golden,
        sign_bias_altref: h.sign_bias_altref,
        filter_level: Some(h.filter_level),
        sharpness: h.sharpness,
        partitions: h.partitions.count(),
        ..EncodeParams::default()
    };
    let decided = decide_forced(target, image, &h, &modes, moved, params.lambda_scale);
    Ok(finish(target, decided, &params, Workers::SERIAL)?)
}

/// Decides a frame for `image` against `state` with the decisions of a
/// parsed frame (`orig` header, `orig_modes` records): same modes, vectors,
/// quantizers, segments and loop filter settings, residual coded anew
/// on `state`'s references. `moved`: `state` is not the one the decisions
/// were made against (see [`code_forced_mb`]).
pub(crate) fn decide_forced(
    state: &DecoderState,
    image: &Image,
    orig: &FrameHeader,
    orig_modes: &[MbInfo],
    moved: bool,
    lambda_scale: u32,
) -> Decided {
    let segmentation = orig.segmentation_enabled.then_some(&orig.segment_features);
    let inputs = FrameInputs::new(
        state,
        image,
        false,
        &orig.quant,
        segmentation,
        orig.tag.version,
        lambda_scale,
    );
    let sign_bias = [false, false, orig.sign_bias_golden, orig.sign_bias_altref];
    let speed = EncodeParams::default().speed;
    let refs = search_refs(state, false, speed, orig.sign_bias_altref);
    let analysis = inputs.analysis(state, speed, &refs, sign_bias, Workers::SERIAL);
    let mb_cols = inputs.mb_cols;
    let (modes, residual, recon) =
        inputs.code_macroblocks(Workers::SERIAL, |pic, ctx, _, mb_x, mb_y| {
            let info = &orig_modes[mb_y * mb_cols + mb_x];
            code_forced_mb(&analysis, &inputs.quants, pic, ctx, info, moved, mb_x, mb_y)
        });
    Decided {
        syntax: FrameSyntax {
            header: forced_header(state, orig, &modes),
            modes,
            residual,
            mb_cols: inputs.mb_cols,
            mb_rows: inputs.mb_rows,
        },
        recon,
        src: inputs.src,
    }
}

/// The original frame's header on a new state: the same decisions, with
/// segment and loop filter delta updates sent wherever the new state
/// differs from the original's, and the new state's probabilities to
/// start from.
fn forced_header(state: &DecoderState, orig: &FrameHeader, modes: &[MbInfo]) -> FrameHeader {
    let ids_differ = state.segment_map.len() != modes.len()
        || state
            .segment_map
            .iter()
            .zip(modes)
            .any(|(&s, m)| s != m.segment);
    let update_segment_features = orig.segmentation_enabled
        && (orig.update_segment_features || state.segment_features != orig.segment_features);
    let update_filter_deltas = orig.filter_deltas_enabled
        && (orig.update_filter_deltas || state.filter_deltas != orig.filter_deltas);
    // What the header does not send, a decoder keeps from the state it
    // decodes against (a key frame resets it, as parsed in `orig`): the
    // new state's features and deltas, not the original's, even where
    // segmentation or the deltas are off in this frame.
    let keep = !orig.tag.key_frame;
    FrameHeader {
        tag: FrameTag {
            first_part_size: 0,
            ..orig.tag
        },
        update_segment_map: orig.segmentation_enabled && (orig.update_segment_map || ids_differ),
        update_segment_features,
        segment_features: if keep && !update_segment_features {
            state.segment_features
        } else {
            orig.segment_features
        },
        update_filter_deltas,
        filter_deltas: if keep && !update_filter_deltas {
            state.filter_deltas
        } else {
            orig.filter_deltas
        },
        probs: state.probs.clone(),
        ..orig.clone()
    }
}

/// Encodes an inter frame for `image` predicted from `state` that
/// replaces all three references, as the key frame it stands in for would
/// have: the first frame of an ExCamera chunk, re-encoded given the state
/// its predecessor ends in.
pub fn encode_given_state(
    state: &DecoderState,
    image: &Image,
    params: &EncodeParams,
) -> Result<EncodedFrame, EncodeError> {
    if state.is_empty() || state.dimensions() != (image.width, image.height) {
        return Err(EncodeError::BadParam(
            "encode_given_state needs a state of the same picture size",
        ));
    }
    let p = EncodeParams {
        key_frame: false,
        refresh_last: true,
        refresh_golden: true,
        refresh_altref: true,
        ..params.clone()
    };
    super::encode(state, image, &p)
}

fn residual4(
    src: &PlaneBuf,
    pred: &[u8],
    pos: usize,
    stride: usize,
    x: usize,
    y: usize,
) -> [i16; 16] {
    let mut r = [0i16; 16];
    for i in 0..4 {
        let s = src.index(x as isize, (y + i) as isize);
        for j in 0..4 {
            r[i * 4 + j] = src.data[s + j] as i16 - pred[pos + i * stride + j] as i16;
        }
    }
    r
}

/// Codes one macroblock with decisions fixed by `info`, leaving its
/// reconstruction in `pic` and updating the token contexts. When the frame
/// has `moved` to a new state, a macroblock that sent a residual may drop
/// it for the skip flag if that costs less in rate and distortion on the
/// new prediction (ExCamera\[6,16\] BD-rate -0.2 to -0.4 points on carphone
/// and box). One that was skipped stays skipped: giving it a residual, by
/// the same test, measured 0.3 to 0.9 points worse.
#[allow(clippy::too_many_arguments)]
pub(crate) fn code_forced_mb(
    a: &FrameAnalysis,
    quants: &[Quantizer; 4],
    pic: &mut Picture,
    ctx: &mut TokenContexts,
    info: &MbInfo,
    moved: bool,
    mb_x: usize,
    mb_y: usize,
) -> MbCoded {
    let q = &quants[info.segment as usize & 3];
    let same_quant = quants.iter().all(|x| x.qindex == a.quant.qindex);
    let mut out = MbCoded {
        info: *info,
        levels: [[0; 16]; 25],
        coeffs: MbCoeffs::new(),
        has_residual: false,
    };
    let src = a.src;
    if info.ref_frame == RefFrame::Intra && info.y_mode == LumaMode::B {
        // Subblocks predict from each other's reconstruction: code them in
        // order, reconstructing as we go (recon's own B_PRED code path).
        let (x0, y0) = (mb_x * 16, mb_y * 16);
        let stride = pic.planes[0].stride;
        let above_right_mb = recon::above_right_of_mb(&pic.planes[0], x0, y0);
        for b in 0..16 {
            let (x, y) = (x0 + (b & 3) * 4, y0 + (b >> 2) * 4);
            let p = &mut pic.planes[0];
            let (above, left, tl, pos) = recon::subblock_edges(p, x0, y0, b, &above_right_mb);
            intra_pred::predict_4x4(info.b_modes[b], &above, &left, tl, &mut p.data, pos, stride);
            let c = fdct4x4(&residual4(&src[0], &p.data, pos, stride, x, y));
            let qb = quantize(&c, &q.y1, false);
            recon::add_block(&qb.dequant, qb.eob as u8, &mut p.data, pos, stride);
            out.levels[b] = qb.levels;
            out.coeffs.blocks[b] = qb.dequant;
            out.coeffs.eobs[b] = qb.eob as u8;
            out.has_residual |= qb.eob > 0;
        }
        recon::predict_intra_chroma(pic, info, mb_x, mb_y);
        let mut chroma = MbCoded {
            info: *info,
            levels: [[0; 16]; 25],
            coeffs: MbCoeffs::new(),
            has_residual: false,
        };
        a.code_chroma_with(q, pic, mb_x, mb_y, &mut chroma);
        for b in 16..24 {
            out.levels[b] = chroma.levels[b];
            out.coeffs.blocks[b] = chroma.coeffs.blocks[b];
            out.coeffs.eobs[b] = chroma.coeffs.eobs[b];
        }
        out.has_residual |= chroma.has_residual;
    } else if info.skip {
        // A macroblock the encoder sent without residual stays so.
        recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
        out.info.skip = true;
        ctx.update(&out, mb_x);
        return out;
    } else if same_quant {
        // The encoder's own residual coding (RD-optimised levels), so a
        // frame rebased onto its own state comes out as it went in.
        recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
        let y2 = info.y_mode != LumaMode::SplitMv;
        let mut coded = a.code_residual_rd(pic, ctx, mb_x, mb_y, y2);
        coded.info = *info;
        out = coded;
        out.info.skip = !out.has_residual;
        if out.has_residual {
            let pred_sse = moved.then(|| a.mb_sse(pic, mb_x, mb_y));
            let mut c = MbCoeffs::new();
            c.blocks = out.coeffs.blocks;
            c.eobs = out.coeffs.eobs;
            recon::add_residual(pic, &out.info, &mut c, mb_x, mb_y);
            if pred_sse.is_some_and(|p| a.skip_beats(pic, ctx, &out, p, mb_x, mb_y)) {
                recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
                out.levels = [[0; 16]; 25];
                out.coeffs = MbCoeffs::new();
                out.has_residual = false;
                out.info.skip = true;
            }
        }
        ctx.update(&out, mb_x);
        return out;
    } else {
        // Segments with their own quantizer: plain quantization.
        recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
        out = a.code_residual_with(q, pic, mb_x, mb_y, info.y_mode != LumaMode::SplitMv);
        out.info = *info;
    }
    out.info.skip = !out.has_residual;
    // The final reconstruction, exactly as the decoder will make it: the
    // prediction is in place, so only B_PRED (whose subblocks were already
    // reconstructed above) and the residual remain.
    let mut c = MbCoeffs::new();
    c.blocks = out.coeffs.blocks;
    c.eobs = out.coeffs.eobs;
    if info.ref_frame == RefFrame::Intra && info.y_mode == LumaMode::B {
        let res = if out.has_residual { Some(&mut c) } else { None };
        recon::reconstruct_mb(pic, a.refs, a.filter, &out.info, res, mb_x, mb_y);
    } else if out.has_residual {
        recon::add_residual(pic, &out.info, &mut c, mb_x, mb_y);
    }
    ctx.update(&out, mb_x);
    out
}
