//! The excam coordinator: the `excam` CLI's commands, the ExCamera\[N,x\]
//! pipeline on local threads ([`pipeline`]), the distributed runtime that
//! runs the same job on `excam-worker` processes or AWS Lambda
//! ([`runtime`]), the planner that predicts a job's time and cost
//! ([`plan`]), and the IVF/WebM containers ([`container`]).
//!
//! # The pipeline
//!
//! [`pipeline::run_pipeline`] encodes a clip ExCamera-style: chunks of N
//! frames encoded from key frames in parallel, then each chunk's first
//! frame re-encoded against its predecessor's final state and the rest
//! rebased, so only every x-th chunk keeps a key frame. The output never
//! depends on the number of workers.
//!
//! ```
//! use excam_codec::encode::encoder::EncoderConfig;
//! use excam_codec::{decode, DecoderState, Image};
//! use excam_coordinator::pipeline::{run_pipeline, LocalExchange, PipelineConfig, PipelineStats};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Twelve frames of a slowly brightening picture.
//! let frames: Vec<Image> = (0..12u8).map(|i| Image::filled(64, 48, [60 + 4 * i, 128, 128])).collect();
//! let mut cfg = PipelineConfig::new(EncoderConfig::new(64, 48));
//! (cfg.chunk_frames, cfg.group_chunks, cfg.workers) = (4, 3, 2); // ExCamera\[4,3\]
//! let chunks = run_pipeline(&frames, &cfg, &LocalExchange::default(), &|_, _, _| {}, None, &mut PipelineStats::default())?;
//! assert_eq!(chunks.len(), 3);
//! // One stream: a key frame, then inter frames all the way.
//! let stream: Vec<&Vec<u8>> = chunks.iter().flat_map(|c| &c.frames).collect();
//! assert_eq!(stream.len(), 12);
//! let mut state = DecoderState::default();
//! for (i, f) in stream.iter().enumerate() {
//!     assert_eq!(f[0] & 1 == 0, i == 0, "only frame 0 is a key frame");
//!     state = decode(&state, f)?.0;
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod container;
pub mod encode;
pub mod images;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod runtime;
