//! Rebase: keep a compressed frame's decisions (modes, reference frames,
//! motion vectors, quantizer, loop filter, segmentation), redo its residual
//! against a different state. This is how an ExCamera chunk encoded from a
//! key frame is re-attached to the true end state of the chunk before it.

use thiserror::Error;

use crate::decode::{decode_picture, parse_modes};
use crate::encode::analysis::{quantize, FrameAnalysis, MbCoded, TokenContexts};
use crate::encode::fdct::fdct4x4;
use crate::encode::frame::{encode_frame_with, Forced};
use crate::encode::quantize::Quantizer;
use crate::encode::{EncodeError, EncodeParams, EncodedFrame};
use crate::error::DecodeError;
use crate::image::Frame;
use crate::intra_pred;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};
use crate::recon;
use crate::state::DecoderState;
use crate::tables::{B_PRED, SPLITMV};
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
    image: &Frame,
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
        partitions: h.partitions,
        ..EncodeParams::default()
    };
    let forced = Forced {
        header: h,
        modes,
        moved,
    };
    Ok(encode_frame_with(target, image, &params, Some(&forced))?)
}

/// Encodes an inter frame for `image` predicted from `state` that
/// replaces all three references, as the key frame it stands in for would
/// have: the first frame of an ExCamera chunk, re-encoded given the state
/// its predecessor ends in.
pub fn encode_given_state(
    state: &DecoderState,
    image: &Frame,
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
    crate::encode::frame::encode_frame(state, image, &p)
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
/// new prediction (ExCamera[6,16] BD-rate -0.2 to -0.4 points on carphone
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
    if info.ref_frame == 0 && info.y_mode == B_PRED {
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
            if qb.eob > 1 {
                crate::idct::idct4x4_add(&qb.dequant, &mut p.data, pos, stride);
            } else if qb.dequant[0] != 0 {
                crate::idct::idct_dc_add(qb.dequant[0], &mut p.data, pos, stride);
            }
            out.levels[b] = qb.levels;
            out.coeffs.blocks[b] = qb.dequant;
            out.coeffs.eobs[b] = qb.eob as u8;
            out.has_residual |= qb.eob > 0;
        }
        for pl in 1..3 {
            let p = &mut pic.planes[pl];
            let (above, left, tl) = recon::edges::<8>(p, mb_x * 8, mb_y * 8);
            let pos = p.index((mb_x * 8) as isize, (mb_y * 8) as isize);
            let stride = p.stride;
            intra_pred::predict_chroma8(
                info.uv_mode,
                &above,
                &left,
                tl,
                mb_y > 0,
                mb_x > 0,
                &mut p.data,
                pos,
                stride,
            );
        }
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
        update_token_contexts(&out, ctx, mb_x);
        return out;
    } else if same_quant {
        // The encoder's own residual coding (RD-optimised levels), so a
        // frame rebased onto its own state comes out as it went in.
        recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
        let y2 = info.y_mode != SPLITMV;
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
        update_token_contexts(&out, ctx, mb_x);
        return out;
    } else {
        // Segments with their own quantizer: plain quantization.
        recon::reconstruct_mb(pic, a.refs, a.filter, info, None, mb_x, mb_y);
        out = a.code_residual_with(q, pic, mb_x, mb_y, info.y_mode != SPLITMV);
        out.info = *info;
    }
    out.info.skip = !out.has_residual;
    // The final reconstruction, exactly as the decoder will make it: the
    // prediction is in place, so only B_PRED (whose subblocks were already
    // reconstructed above) and the residual remain.
    let mut c = MbCoeffs::new();
    c.blocks = out.coeffs.blocks;
    c.eobs = out.coeffs.eobs;
    if info.ref_frame == 0 && info.y_mode == B_PRED {
        let res = if out.has_residual { Some(&mut c) } else { None };
        recon::reconstruct_mb(pic, a.refs, a.filter, &out.info, res, mb_x, mb_y);
    } else if out.has_residual {
        recon::add_residual(pic, &out.info, &mut c, mb_x, mb_y);
    }
    update_token_contexts(&out, ctx, mb_x);
    out
}

/// Sets the above/left token contexts after a coded macroblock as the
/// decoder will.
pub(crate) fn update_token_contexts(c: &MbCoded, ctx: &mut TokenContexts, mb_x: usize) {
    let y2 = c.info.y_mode != B_PRED && c.info.y_mode != SPLITMV;
    let above = &mut ctx.above[mb_x];
    let left = &mut ctx.left;
    if !c.has_residual {
        crate::tokens::skip_mb_coeffs(y2, above, left);
        return;
    }
    let first = if y2 {
        let nz = c.levels[24].iter().any(|&l| l != 0) as u8;
        above[8] = nz;
        left[8] = nz;
        1
    } else {
        0
    };
    for b in 0..16 {
        let nz = c.levels[b][first..].iter().any(|&l| l != 0) as u8;
        above[b & 3] = nz;
        left[b >> 2] = nz;
    }
    for b in 16..24 {
        let base = if b < 20 { 4 } else { 6 };
        let i = b & 3;
        let nz = c.levels[b].iter().any(|&l| l != 0) as u8;
        above[base + (i & 1)] = nz;
        left[base + (i >> 1)] = nz;
    }
}
