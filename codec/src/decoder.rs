//! A streaming decoder on top of the pure [`decode`](fn@crate::decode)
//! function, for callers that just want pictures in order.

use std::sync::Arc;

use crate::decode::{decode_picture_threaded, FrameInfo};
use crate::error::FrameError;
use crate::picture::Picture;
use crate::state::DecoderState;

/// Decodes a stream frame by frame, keeping the state between calls.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    state: DecoderState,
    frames: u64,
    /// Threads per frame; 0 and 1 both mean the calling thread only.
    threads: usize,
}

impl Decoder {
    /// A decoder that expects a key frame first.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that decodes each frame on up to `threads` threads
    /// ([`crate::decode_picture_threaded`]); the pictures are the same for
    /// any count.
    pub fn with_threads(threads: usize) -> Self {
        Decoder {
            threads,
            ..Self::default()
        }
    }

    /// Decodes the next compressed frame. Returns the picture to show, or
    /// `None` for a hidden frame. On error the state is left as it was, so
    /// the caller may skip the frame and go on.
    pub fn decode(&mut self, data: &[u8]) -> Result<(Option<Arc<Picture>>, FrameInfo), FrameError> {
        let index = self.frames;
        self.frames += 1;
        let d = decode_picture_threaded(&self.state, data, self.threads)
            .map_err(|source| FrameError { index, source })?;
        self.state = d.state;
        Ok((d.shown, d.info))
    }

    /// The current state.
    pub fn state(&self) -> &DecoderState {
        &self.state
    }

    /// Number of frames passed to [`Decoder::decode`] so far.
    pub fn frames_seen(&self) -> u64 {
        self.frames
    }
}
