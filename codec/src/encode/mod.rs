//! The VP8 encoder: `encode(state, image, params)` codes one frame as a
//! key frame or as an inter frame predicted from whatever state it is
//! handed, and returns the bytes with the state a decoder will have after
//! them. Kernels (transforms, quantization, distortion) sit beside the
//! decision logic, each in its own module.

use std::sync::Arc;

use thiserror::Error;

use crate::header::{BufferCopy, PartitionCount};
use crate::image::Image;
use crate::picture::Picture;
use crate::state::DecoderState;
use workers::Workers;

pub mod analysis;
pub mod encoder;
mod entropy;
pub mod fdct;
mod finish;
pub mod frame;
pub mod loop_filter_pick;
pub mod modes;
pub mod motion;
pub mod quantize;
pub mod rebase;
pub mod sad;
pub mod split;
pub mod subpel;
mod syntax;
pub mod temporal_filter;
pub mod tokenize;
pub mod trellis;
mod wavefront;
mod workers;

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The picture is empty, too large for VP8 (16383 max) or its planes
    /// do not match its size.
    #[error("unsupported picture size {0}x{1} (VP8 allows 1..=16383 per side, 4:2:0 planes)")]
    BadDimensions(usize, usize),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    BadParam(&'static str),
    /// A partition exceeds what its size field can express.
    #[error("partition of {0} bytes is too large for VP8's size fields")]
    FirstPartitionTooLarge(usize),
}

/// How to code one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeParams {
    /// Quantizer index 0..=127 (see [`quantize::quantizer_to_qindex`] for
    /// vpxenc's 0..=63 scale).
    pub q_index: u8,
    /// Code a key frame even if the state allows an inter frame.
    pub key_frame: bool,
    /// Inter frames: replace the last-frame reference.
    pub refresh_last: bool,
    /// Inter frames: replace the golden reference.
    pub refresh_golden: bool,
    /// Inter frames: replace the altref reference.
    pub refresh_altref: bool,
    /// Inter frames without golden refresh: 1 copies last, 2 altref.
    pub copy_to_golden: u8,
    /// Inter frames without altref refresh: 1 copies last, 2 golden.
    pub copy_to_altref: u8,
    /// Whether a decoder displays the frame.
    pub show_frame: bool,
    /// Inter frames: the golden reference lies in the future of this
    /// frame (`sign_bias_golden`), so motion vectors of neighbours that
    /// use it are negated when predicting vectors into past references.
    pub sign_bias_golden: bool,
    /// Inter frames: the same for the alt-ref reference; libvpx sets it
    /// while a hidden alt-ref frame built from a future frame is in use.
    pub sign_bias_altref: bool,
    /// Search effort: 0 slowest and best, 8 fastest.
    pub speed: u8,
    /// Loop filter level, or `None` to search for the best one.
    pub filter_level: Option<u8>,
    /// Loop filter sharpness 0..=7.
    pub sharpness: u8,
    /// Token partitions: 1, 2, 4 or 8.
    pub partitions: usize,
    /// Rate-distortion trade-off: lambda = (scale / 9) * step^2 / 256 per
    /// bit, step the luma AC quantizer step (see `analysis::rd_lambda`).
    /// The default, [`INTER_LAMBDA_SCALE`], suits an ordinary inter frame;
    /// frames that stay referenced longer do better at
    /// [`REFERENCE_LAMBDA_SCALE`].
    pub lambda_scale: u32,
    /// Whether the probabilities this frame uses persist into the next
    /// frame (`refresh_entropy_probs`). With `false` the next frame starts
    /// from the probabilities this frame inherited, so a lost or skipped
    /// frame does not change how later frames decode (error resilience).
    pub refresh_entropy: bool,
    /// Threads to encode the frame on: its macroblocks are decided as a
    /// wavefront over macroblock rows (a row's macroblock starts once the
    /// row above is two macroblocks ahead, as libvpx's encoder threads),
    /// the motion search planes are built and the loop filter level is
    /// searched on them, and the loop filter runs beside the token
    /// writing. 0 and 1 both mean the calling thread only, and at most
    /// 64 (or one per macroblock row for the wavefront) are used; called
    /// directly, [`encode`] starts its helpers for the frame, while the
    /// streaming [`encoder::Encoder`] keeps them. The bytes are the same
    /// for any count.
    pub threads: usize,
}

/// [`EncodeParams::lambda_scale`] of an inter frame that only the next
/// frame predicts from directly (it refreshes the last reference alone).
///
/// Chosen with [`REFERENCE_LAMBDA_SCALE`] on carphone and box (120 frames)
/// and box (384 frames), speed 4, q 10..50, BD-rate on ffmpeg's mean PSNR
/// against 40 for every frame: inter 60 with key and golden 40 -2.17 /
/// -1.84 / -0.61%; inter 60 with 30 -2.60 / -2.50 / -1.17%; 70 with 30
/// -2.50 / -2.21 / -0.16%; 60 with 20 -2.14 / -2.47 / -0.91%; 50 with 25
/// -1.58 / -2.13 / -1.39%. The frames many others predict from are worth
/// coding finely; the rest are worth fewer bits. Re-measured against 40
/// for every frame with `excamera-bench` (overall PSNR, 120 frames):
/// serial -1.95% carphone, -1.71% box; ExCamera\[6,16\] -1.08% / -0.80%.
pub const INTER_LAMBDA_SCALE: u32 = 60;

/// [`EncodeParams::lambda_scale`] of a key or golden frame: see
/// [`INTER_LAMBDA_SCALE`].
pub const REFERENCE_LAMBDA_SCALE: u32 = 30;

/// [`EncodeParams::lambda_scale`] of an inter frame that stands in for a
/// key frame (an ExCamera chunk's first frame, coded given its
/// predecessor's state): it refreshes golden, but the next chunk start
/// replaces it a chunk later, so it sits between
/// [`REFERENCE_LAMBDA_SCALE`] and [`INTER_LAMBDA_SCALE`]. ExCamera\[6,16\]
/// BD-rate against 30 (`excamera-bench`, speed 4, q 10..50, carphone / box
/// 120 frames): 20 +1.01% / -, 40 -0.43% / -0.44%, 50 +0.06% / -0.58%,
/// 60 +0.92% / -.
pub const GIVEN_STATE_LAMBDA_SCALE: u32 = 40;

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            q_index: 40,
            key_frame: false,
            refresh_last: true,
            refresh_golden: false,
            refresh_altref: false,
            copy_to_golden: 0,
            copy_to_altref: 0,
            show_frame: true,
            sign_bias_golden: false,
            sign_bias_altref: false,
            speed: 4,
            filter_level: None,
            sharpness: 0,
            partitions: 1,
            lambda_scale: INTER_LAMBDA_SCALE,
            refresh_entropy: true,
            threads: 1,
        }
    }
}

/// One compressed frame and the state after it.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// The VP8 frame bytes.
    pub data: Vec<u8>,
    /// The state a decoder has after decoding `data` from the input state.
    pub state: DecoderState,
    /// The reconstruction, if the frame is shown.
    pub shown: Option<Arc<Picture>>,
    /// Whether a key frame was coded.
    pub key_frame: bool,
    /// Quantizer index used.
    pub q_index: u8,
    /// Loop filter level used.
    pub filter_level: u8,
}

/// Encodes `image` against `state`: a key frame if the state is empty, the
/// size changed or the params ask for one, otherwise an inter frame
/// predicted from the state's references.
pub fn encode(
    state: &DecoderState,
    image: &Image,
    params: &EncodeParams,
) -> Result<EncodedFrame, EncodeError> {
    encode_on(state, image, params, None)
}

/// [`encode`] with the helper threads of `pool` (which should have
/// `params.threads - 1` of them) instead of threads started for the call.
pub(crate) fn encode_on(
    state: &DecoderState,
    image: &Image,
    params: &EncodeParams,
    pool: Option<&rayon::ThreadPool>,
) -> Result<EncodedFrame, EncodeError> {
    if PartitionCount::from_count(params.partitions).is_none() {
        return Err(EncodeError::BadParam("partitions must be 1, 2, 4 or 8"));
    }
    if params.sharpness > 7 {
        return Err(EncodeError::BadParam("sharpness must be 0..=7"));
    }
    // The header has two bits for each; a value it cannot carry as given
    // would leave the encoder's idea of the references apart from the
    // decoder's (found by the encode_state fuzz target).
    if BufferCopy::from_param(params.copy_to_golden).is_none()
        || BufferCopy::from_param(params.copy_to_altref).is_none()
    {
        return Err(EncodeError::BadParam(
            "copy_to_golden and copy_to_altref must be 0..=2",
        ));
    }
    let workers = Workers::new(params.threads.min(syntax::MAX_THREADS), pool);
    frame::encode_frame(state, image, params, workers)
}
