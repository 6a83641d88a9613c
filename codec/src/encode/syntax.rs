//! The value the encoder's two halves meet at: a frame's syntax.
//!
//! Encoding a frame is *decide*, then *finish*. Deciding chooses every
//! macroblock's prediction and quantised residual: by rate-distortion
//! search for a new frame ([`crate::encode::frame::decide_search`]), or by
//! keeping a parsed frame's modes and vectors and redoing its residual on
//! another state for a rebase ([`crate::encode::rebase::decide_forced`]).
//! Both produce a [`Decided`]: the [`FrameSyntax`] and the reconstruction
//! it gives. [`crate::encode::finish::finish`] turns that into bytes and
//! the next state (probability optimisation, loop filter, bitstream).

use crate::dequant::{segment_q_index, Dequant};
use crate::encode::analysis::{rd_lambda, FrameAnalysis, MbCoded};
use crate::encode::quantize::Quantizer;
use crate::encode::subpel::SearchCache;
use crate::encode::workers::Workers;
use crate::encode::EncodeError;
use crate::header::{FrameHeader, QuantIndices, SegmentFeatures};
use crate::image::Image;
use crate::modes::MbInfo;
use crate::picture::{Picture, PlaneBuf};
use crate::prediction::RefFrame;
use crate::probs::Probabilities;
use crate::recon::SubpelFilter;
use crate::state::DecoderState;

/// Everything a frame's bitstream says: the header and, per macroblock,
/// its prediction record and quantised levels.
///
/// The header's `probs` are the probabilities the frame starts from (the
/// state's, or the defaults on a key frame) until
/// [`finish`](crate::encode::finish::finish) replaces them with the ones
/// it sends; its `filter_level`, `skip_prob` and reference probabilities
/// are likewise set there, from the coded frame.
pub(crate) struct FrameSyntax {
    /// The frame header.
    pub header: FrameHeader,
    /// Prediction records in raster order.
    pub modes: Vec<MbInfo>,
    /// Quantised levels in raster order (`info` repeats `modes`).
    pub residual: Vec<MbCoded>,
    /// Macroblocks per row.
    pub mb_cols: usize,
    /// Macroblock rows.
    pub mb_rows: usize,
}

/// What deciding a frame yields.
pub(crate) struct Decided {
    /// The frame's syntax.
    pub syntax: FrameSyntax,
    /// Its reconstruction before the loop filter, as a decoder makes it.
    pub recon: Picture,
    /// The source picture padded to whole macroblocks (the loop filter
    /// level search measures against it).
    pub src: [PlaneBuf; 3],
}

/// The per-frame inputs of a decision: padded source, quantizers,
/// starting probabilities, rate-distortion multiplier.
pub(crate) struct FrameInputs {
    /// Source planes padded to whole macroblocks.
    pub src: [PlaneBuf; 3],
    /// Whether the frame is a key frame.
    pub key: bool,
    /// Picture width in pixels.
    pub width: usize,
    /// Picture height in pixels.
    pub height: usize,
    /// Macroblocks per row.
    pub mb_cols: usize,
    /// Macroblock rows.
    pub mb_rows: usize,
    /// The frame's quantizer (base q index).
    pub quant: Quantizer,
    /// The quantizer of each segment (all `quant` without segmentation).
    pub quants: [Quantizer; 4],
    /// The probabilities the frame starts from.
    pub base_probs: Probabilities,
    /// Rate-distortion multiplier.
    pub lambda: u64,
    /// Sub-pixel interpolation filter (the header's version).
    pub filter: SubpelFilter,
}

/// The most threads one frame is coded on: more than the rows of a
/// 1080p frame gain nothing.
pub(crate) const MAX_THREADS: usize = 64;

/// Checks the picture against VP8's limits and its own size.
pub(crate) fn check_picture(frame: &Image) -> Result<(), EncodeError> {
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
    Ok(())
}

impl FrameInputs {
    /// Inputs for coding `frame` (already checked) as a key frame (`key`)
    /// or against `state`, at the quantizer indices `quant` with the
    /// given segmentation, interpolation `version` and lambda scale.
    pub fn new(
        state: &DecoderState,
        frame: &Image,
        key: bool,
        quant: &QuantIndices,
        segmentation: Option<&SegmentFeatures>,
        version: u8,
        lambda_scale: u32,
    ) -> Self {
        let q_index = quant.q_index;
        let quants: [Quantizer; 4] = core::array::from_fn(|s| {
            let features = segmentation.copied().unwrap_or_default();
            let q = segment_q_index(quant, segmentation.is_some(), &features, s);
            Quantizer::new(q, &Dequant::new(q as i32, quant))
        });
        let base_quant = Quantizer::new(q_index, &Dequant::new(q_index as i32, quant));
        let base_probs = if key {
            Probabilities::default()
        } else {
            state.probs.clone()
        };
        FrameInputs {
            src: pad_source(frame),
            key,
            width: frame.width,
            height: frame.height,
            mb_cols: frame.width.div_ceil(16),
            mb_rows: frame.height.div_ceil(16),
            lambda: rd_lambda(&base_quant, lambda_scale, key),
            quant: base_quant,
            quants,
            base_probs,
            filter: SubpelFilter::for_version(version),
        }
    }

    /// The macroblock decision context over these inputs, predicting
    /// from `state`'s references (inter frames) and searching those of
    /// them `speed` allows. On more than one of `workers` the motion
    /// search planes of those references are built on them now (the
    /// macroblocks, which otherwise build them when first needed, run on
    /// wavefront threads that must not wait for helpers).
    pub fn analysis<'a>(
        &'a self,
        state: &'a DecoderState,
        speed: u8,
        search_refs: &'a [RefFrame],
        sign_bias: [bool; 4],
        workers: Workers,
    ) -> FrameAnalysis<'a> {
        let analysis = FrameAnalysis {
            src: &self.src,
            refs: if self.key { None } else { state.refs.as_ref() },
            quant: &self.quant,
            probs: &self.base_probs,
            key: self.key,
            lambda: self.lambda,
            speed,
            filter: self.filter,
            mb_cols: self.mb_cols,
            mb_rows: self.mb_rows,
            sign_bias,
            prob_skip: 128,
            prob_intra: 40,
            prob_last: 200,
            prob_golden: 128,
            search_refs,
            search: SearchCache::new(&self.base_probs.mv),
        };
        if let (true, Some(refs)) = (workers.count() > 1, analysis.refs) {
            let sixtap = self.filter == SubpelFilter::SixTap;
            for &rf in search_refs {
                let reference = &refs.get(rf).planes[0];
                analysis.search.subpel_on(rf, reference, sixtap, workers);
            }
        }
        analysis
    }
}

/// The references worth searching at `speed`: last always, golden and
/// altref only at slower speeds and only where they differ from the
/// references before them. A hidden alt-ref built from future frames
/// (`altref_sign_bias` set) is worth searching wherever golden is.
pub(crate) fn search_refs(
    state: &DecoderState,
    key: bool,
    speed: u8,
    altref_sign_bias: bool,
) -> Vec<RefFrame> {
    let altref_speed = if altref_sign_bias { 4 } else { 2 };
    let mut out = vec![RefFrame::Last];
    if let Some(r) = state.refs.as_ref().filter(|_| !key) {
        if speed <= 4 && !std::sync::Arc::ptr_eq(&r.golden, &r.last) && r.golden != r.last {
            out.push(RefFrame::Golden);
        }
        if speed <= altref_speed
            && !std::sync::Arc::ptr_eq(&r.altref, &r.last)
            && !std::sync::Arc::ptr_eq(&r.altref, &r.golden)
            && r.altref != r.golden
            && r.altref != r.last
        {
            out.push(RefFrame::AltRef);
        }
    }
    out
}

/// Copies a frame into macroblock-aligned planes, replicating the right
/// and bottom edges into the padding.
fn pad_source(frame: &Image) -> [PlaneBuf; 3] {
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
