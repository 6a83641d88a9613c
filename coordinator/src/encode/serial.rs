//! The serial encode: frames through the streaming
//! [`Encoder`](excam_codec::encode::encoder::Encoder) one by one, packets
//! written as they come out of its lookahead.

use std::collections::VecDeque;
use std::io::Read;
use std::time::Instant;

use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{Encoder, EncoderConfig, EncoderStatus, Packet};
use excam_codec::encode::quantize::qindex_to_quantizer;
use excam_codec::Image;

use super::sink::Output;
use super::{no_frames, EncodeError, EncodeSpec, Summary};
use crate::runtime::progress::FrameProgress;

/// Encodes the frames `reader` has left (or `held`, standard input kept
/// by a first pass) with `enc` into `out`.
#[allow(clippy::too_many_arguments)]
pub(super) fn encode<R: Read>(
    spec: &EncodeSpec,
    cfg: &EncoderConfig,
    mut enc: Encoder,
    mut reader: Y4mReader<R>,
    mut held: Option<VecDeque<Image>>,
    mut out: Output,
    mut progress: FrameProgress,
    start: Instant,
) -> Result<Summary, EncodeError> {
    let mut waiting = VecDeque::new();
    let mut read = 0u64;
    let mut buffer_min: Option<u64> = None;
    let seconds_per_frame = out.seconds_per_frame;
    // Writes every packet the encoder has ready, and the progress line.
    let mut drain = |enc: &mut Encoder,
                     waiting: &mut VecDeque<Image>,
                     out: &mut Output|
     -> Result<(), EncodeError> {
        loop {
            let p: Packet = match enc.receive_packet() {
                Ok(p) => p,
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => return Ok(()),
                Err(e) => return Err(status_error(e)),
            };
            out.write_packet(&p)?;
            if let Some(level) = enc.buffer_level() {
                buffer_min = Some(buffer_min.map_or(level, |m| m.min(level)));
            }
            if let Some(rec) = &p.reconstruction {
                let src = waiting.pop_front().ok_or(EncodeError::ShowedMore)?;
                out.psnr.add(&src, &rec.to_frame());
            }
            progress.update(
                out.frames,
                out.bytes,
                seconds_per_frame,
                qindex_to_quantizer(p.q_index),
            );
        }
    };
    while read < spec.limit.unwrap_or(u64::MAX) {
        let next = match &mut held {
            Some(frames) => frames.pop_front(),
            None => reader
                .next_frame()
                .map_err(EncodeError::read_input(&spec.input))?,
        };
        let Some(frame) = next else {
            break;
        };
        enc.send_frame(Some(frame.clone())).map_err(status_error)?;
        // The source frames the lookahead still holds, for the PSNR.
        waiting.push_back(frame);
        read += 1;
        drain(&mut enc, &mut waiting, &mut out)?;
    }
    enc.flush();
    drain(&mut enc, &mut waiting, &mut out)?;
    progress.finish(out.frames, out.bytes, seconds_per_frame);
    if out.frames == 0 {
        return Err(no_frames(spec));
    }
    if let (Some(min), Some(kbps), false) = (buffer_min, cfg.rate.kbps(), spec.quiet) {
        eprintln!(
            "cbr buffer: lowest level {:.0} ms ({min} bits)",
            min as f64 / kbps as f64
        );
    }
    out.finish(&spec.output, start)
}

fn status_error(e: EncoderStatus) -> EncodeError {
    EncodeError::Encoder(e)
}
