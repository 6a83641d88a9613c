//! Encoding one frame against a given state:
//! `encode(state, image, params) -> (bytes, state')`, as
//! `decide_search` then `finish`.

use crate::dequant::libvpx_quant_indices;
use crate::encode::finish::finish;
use crate::encode::syntax::{check_picture, search_refs, Decided, FrameInputs, FrameSyntax};
use crate::encode::workers::Workers;
use crate::encode::{EncodeError, EncodeParams, EncodedFrame};
use crate::header::{
    BufferCopy, FilterDeltas, FrameHeader, FrameSize, FrameTag, PartitionCount, SegmentFeatures,
};
use crate::image::Image;
use crate::prediction::RefFrame;
use crate::state::DecoderState;

/// libvpx's default loop filter deltas: intra and golden/altref frames get
/// stronger/weaker filtering, B_PRED and SPLITMV stronger, ZEROMV weaker.
const DEFAULT_FILTER_DELTAS: FilterDeltas = FilterDeltas {
    ref_frame: [2, 0, -2, -2],
    mode: [4, -2, 2, 4],
};

/// Encodes `frame` against `state` (see [`crate::encode::encode`]).
pub(crate) fn encode_frame(
    state: &DecoderState,
    frame: &Image,
    params: &EncodeParams,
    workers: Workers,
) -> Result<EncodedFrame, EncodeError> {
    check_picture(frame)?;
    if params.q_index > 127 {
        return Err(EncodeError::BadParam("q_index must be 0..=127"));
    }
    let decided = decide_search(state, frame, params, workers);
    finish(state, decided, params, workers)
}

/// Decides a new frame for `frame` against `state` by rate-distortion
/// search: a key frame if the state is empty, the size changed or
/// `params` ask for one, else an inter frame; on `workers`.
pub(crate) fn decide_search(
    state: &DecoderState,
    frame: &Image,
    params: &EncodeParams,
    workers: Workers,
) -> Decided {
    let (w, h) = (frame.width, frame.height);
    let key = params.key_frame || state.is_empty() || state.dimensions() != (w, h);
    let quant = libvpx_quant_indices(params.q_index);
    let inputs = FrameInputs::new(state, frame, key, &quant, None, 0, params.lambda_scale);
    let sign_bias = [
        false,
        false,
        !key && params.sign_bias_golden,
        !key && params.sign_bias_altref,
    ];
    let refs = search_refs(
        state,
        key,
        params.speed,
        sign_bias[RefFrame::AltRef.index()],
    );
    let mut analysis = inputs.analysis(state, params.speed, &refs, sign_bias, workers);
    if !key && params.refresh_golden && params.sign_bias_altref {
        // The golden frame that ends an alt-ref group: the frame the
        // alt-ref was built from. Priced as usual (last 0.4 bits, alt-ref
        // 3.4) most of its macroblocks stayed on the coarse last frame, and
        // the next group's golden reference with them; libvpx codes it
        // almost all from the alt-ref. Last at 1 bit and the alt-ref next
        // to free (golden, the old group's, out of the way): rd-harness
        // --anchor best, 18 clips, mean BD-rate -0.57 PSNR / -1.22 SSIM,
        // better on 17 (benches/README.md, quality6). The frame's real
        // probabilities still come from its counts.
        analysis.prob_last = 128;
        analysis.prob_golden = 1;
    }
    let (modes, residual, recon) = inputs
        .code_macroblocks(workers, |pic, ctx, modes, mb_x, mb_y| {
            analysis.encode_mb(pic, ctx, modes, mb_x, mb_y)
        });
    let header = search_header(state, params, key, (w, h), &inputs);
    Decided {
        syntax: FrameSyntax {
            header,
            modes,
            residual,
            mb_cols: inputs.mb_cols,
            mb_rows: inputs.mb_rows,
        },
        recon,
        src: inputs.src,
    }
}

/// The header of a newly decided frame: reference updates from `params`,
/// libvpx's quantizer and loop filter deltas, no segmentation.
fn search_header(
    state: &DecoderState,
    params: &EncodeParams,
    key: bool,
    (w, h): (usize, usize),
    inputs: &FrameInputs,
) -> FrameHeader {
    let filter_deltas = DEFAULT_FILTER_DELTAS;
    FrameHeader {
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
        update_filter_deltas: key || state.filter_deltas != filter_deltas,
        filter_deltas,
        // encode() refused counts and copies the header cannot carry.
        partitions: PartitionCount::from_count(params.partitions)
            .expect("encode() checks the partition count"),
        quant: libvpx_quant_indices(params.q_index),
        refresh_golden: key || params.refresh_golden,
        refresh_altref: key || params.refresh_altref,
        copy_to_golden: if key || params.refresh_golden {
            BufferCopy::None
        } else {
            BufferCopy::from_param(params.copy_to_golden).expect("encode() checks copy_to_golden")
        },
        copy_to_altref: if key || params.refresh_altref {
            BufferCopy::None
        } else {
            BufferCopy::from_param(params.copy_to_altref).expect("encode() checks copy_to_altref")
        },
        sign_bias_golden: !key && params.sign_bias_golden,
        sign_bias_altref: !key && params.sign_bias_altref,
        refresh_entropy: params.refresh_entropy,
        refresh_last: key || params.refresh_last,
        // Set by `finish` from the coded frame.
        probs: inputs.base_probs.clone(),
        skip_prob: None,
        prob_intra: 0,
        prob_last: 0,
        prob_golden: 0,
    }
}
