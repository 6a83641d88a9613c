//! The decoder state that passes from frame to frame.

use std::sync::Arc;

use crate::header::{BufferCopy, FilterDeltas, FrameHeader, FrameSize, SegmentFeatures};
use crate::image::Image;
use crate::modes::MbInfo;
use crate::picture::Picture;
use crate::prediction::RefFrame;
use crate::probs::Probabilities;

/// The three reference pictures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct References {
    /// The last frame.
    pub last: Arc<Picture>,
    /// The golden frame.
    pub golden: Arc<Picture>,
    /// The alternate reference frame.
    pub altref: Arc<Picture>,
}

impl References {
    /// The picture of reference `ref_frame`; the last frame for
    /// [`RefFrame::Intra`], which predicts from none.
    pub fn get(&self, ref_frame: RefFrame) -> &Arc<Picture> {
        match ref_frame {
            RefFrame::Golden => &self.golden,
            RefFrame::AltRef => &self.altref,
            RefFrame::Intra | RefFrame::Last => &self.last,
        }
    }
}

/// Everything a VP8 decoder carries from one frame to the next.
///
/// A value: cloning it is cheap (reference pictures and the segment map are
/// shared through `Arc`), two states compare equal exactly when they would
/// decode every future frame identically, and it can be hashed. The empty
/// state (`DecoderState::default()`) accepts only a key frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecoderState {
    pub(crate) probs: Probabilities,
    pub(crate) segment_features: SegmentFeatures,
    pub(crate) segment_map: Arc<Vec<u8>>,
    pub(crate) filter_deltas: FilterDeltas,
    pub(crate) refs: Option<References>,
    pub(crate) size: FrameSize,
}

impl DecoderState {
    /// The empty state, before any key frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// True until a key frame has been decoded.
    pub fn is_empty(&self) -> bool {
        self.refs.is_none()
    }

    /// The reference pictures, if a key frame has been decoded.
    pub fn references(&self) -> Option<&References> {
        self.refs.as_ref()
    }

    /// The probabilities that the next frame inherits.
    pub fn probabilities(&self) -> &Probabilities {
        &self.probs
    }

    /// Display width and height of the stream, (0, 0) before a key frame.
    pub fn dimensions(&self) -> (usize, usize) {
        (self.size.width as usize, self.size.height as usize)
    }

    /// The dimensions and scaling codes of the last key frame.
    pub fn frame_size(&self) -> FrameSize {
        self.size
    }

    /// The last-frame reference as a picture, if any.
    pub fn last_frame(&self) -> Option<Image> {
        self.refs.as_ref().map(|r| r.last.to_frame())
    }
}

/// The state after a frame: reference updates (RFC 9.7–9.8), the
/// probabilities that persist (9.9 and `refresh_entropy_probs`), segment
/// map and features, filter deltas. Shared by the decoder and the encoder.
pub(crate) fn next_state(
    state: &DecoderState,
    hdr: &FrameHeader,
    pic: Arc<Picture>,
    mbs: &[MbInfo],
) -> DecoderState {
    let tag = hdr.tag;
    let frame_size = hdr.size.unwrap_or(state.size);
    let refs = match &state.refs {
        Some(old) if !tag.key_frame => {
            let mut r = old.clone();
            // Copies use the references as they were before this frame.
            match hdr.copy_to_altref {
                BufferCopy::Last => r.altref = old.last.clone(),
                BufferCopy::Other => r.altref = old.golden.clone(),
                BufferCopy::None | BufferCopy::Reserved => {}
            }
            match hdr.copy_to_golden {
                BufferCopy::Last => r.golden = old.last.clone(),
                BufferCopy::Other => r.golden = old.altref.clone(),
                BufferCopy::None | BufferCopy::Reserved => {}
            }
            if hdr.refresh_golden {
                r.golden = pic.clone();
            }
            if hdr.refresh_altref {
                r.altref = pic.clone();
            }
            if hdr.refresh_last {
                r.last = pic.clone();
            }
            r
        }
        _ => References {
            last: pic.clone(),
            golden: pic.clone(),
            altref: pic.clone(),
        },
    };

    let probs = if hdr.refresh_entropy {
        hdr.probs.clone()
    } else if tag.key_frame {
        Probabilities::default()
    } else {
        state.probs.clone()
    };
    let segment_map = if hdr.update_segment_map || tag.key_frame {
        Arc::new(mbs.iter().map(|m| m.segment).collect())
    } else {
        state.segment_map.clone()
    };
    DecoderState {
        probs,
        segment_features: hdr.segment_features,
        segment_map,
        filter_deltas: hdr.filter_deltas,
        refs: Some(refs),
        size: frame_size,
    }
}
