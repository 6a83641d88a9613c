//! A streaming decoder on top of the pure [`decode`](fn@crate::decode)
//! function, for callers that just want pictures in order.

use std::sync::Arc;

use crate::decode::{decode_picture_on, FrameInfo};
use crate::decode_rows::RowScratch;
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
    /// The `threads - 1` helper threads, started once for the stream
    /// (shared by clones); `None` with one thread, or if the system would
    /// not start them (then each frame starts its own).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The threads' buffers, kept from frame to frame.
    scratch: Scratch,
}

/// [`RowScratch`] in a [`Decoder`]: a clone starts without buffers.
#[derive(Default)]
struct Scratch(Option<RowScratch>);

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch(None)
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
}

impl Decoder {
    /// The most threads [`Decoder::with_threads`] keeps (a frame uses at
    /// most one per macroblock row anyway).
    pub const MAX_THREADS: usize = 256;

    /// A decoder that expects a key frame first.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that decodes each frame on up to `threads` threads
    /// ([`crate::decode_picture_threaded`]), the calling one and
    /// `threads - 1` helpers that live as long as the decoder; the
    /// pictures are the same for any count. At most
    /// [`Decoder::MAX_THREADS`] threads are kept.
    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.min(Self::MAX_THREADS);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("excam-decode-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        Decoder {
            threads,
            pool,
            ..Self::default()
        }
    }

    /// Decodes the next compressed frame. Returns the picture to show, or
    /// `None` for a hidden frame. On error the state is left as it was, so
    /// the caller may skip the frame and go on.
    pub fn decode(&mut self, data: &[u8]) -> Result<(Option<Arc<Picture>>, FrameInfo), FrameError> {
        let index = self.frames;
        self.frames += 1;
        let d = decode_picture_on(
            &self.state,
            data,
            self.threads,
            self.pool.as_deref(),
            &mut self.scratch.0,
        )
        .map_err(|source| FrameError { index, source })?;
        let old = std::mem::replace(&mut self.state, d.state);
        // A reference picture the new state and the caller dropped is
        // the next frame's buffer.
        if let (Some(scratch), Some(refs)) = (self.scratch.0.as_mut(), old.refs) {
            for p in [refs.last, refs.golden, refs.altref] {
                if let Ok(pic) = Arc::try_unwrap(p) {
                    scratch.spare = Some(pic);
                }
            }
        }
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
