//! CBR's decoder buffer (a leaky bucket, libvpx's `buffer_level`), and
//! coding a frame so that it fits in it.

use crate::encode::{encode_on, EncodeError, EncodeParams, EncodedFrame};
use crate::image::Image;

/// The decoder buffer of [`RateControl::Cbr`](super::RateControl::Cbr), in milliseconds of the
/// channel rate (vpxenc's `--buf-sz`, `--buf-initial-sz`,
/// `--buf-optimal-sz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferModel {
    /// Capacity: bits beyond it are lost to the channel (the buffer never
    /// holds more).
    pub size_ms: u32,
    /// Fill before the first frame is decoded.
    pub initial_ms: u32,
    /// The level the controller steers toward.
    pub optimal_ms: u32,
}

/// vpxenc's defaults: 6000, 4000 and 5000 ms.
impl Default for BufferModel {
    fn default() -> Self {
        BufferModel {
            size_ms: 6000,
            initial_ms: 4000,
            optimal_ms: 5000,
        }
    }
}

/// Bits an inter frame that repeats the last one (every macroblock
/// skipped, no motion, no loop filter) takes at most: the header and a
/// little per macroblock. Checked by `minimal_frames_fit_the_bounds` over
/// sizes after noise (probabilities far from a skip-friendly state).
pub(super) fn repeat_frame_bits(width: usize, height: usize) -> f64 {
    320.0 + macroblocks(width, height)
}

/// Bits a key frame of flat grey takes at most (as above).
pub(super) fn flat_key_bits(width: usize, height: usize) -> f64 {
    1024.0 + 5.0 * macroblocks(width, height)
}

fn macroblocks(width: usize, height: usize) -> f64 {
    (width.div_ceil(16) * height.div_ceil(16)) as f64
}

/// The decoder buffer: the channel adds `per_frame` bits for each shown
/// frame, every frame takes its size out, and bits beyond `size` are lost
/// (the buffer never holds more).
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    pub(super) level: f64,
    pub(super) size: f64,
    pub(super) optimal: f64,
    per_frame: f64,
}

impl Bucket {
    pub(super) fn new(kbps: u32, model: &BufferModel, per_frame: f64) -> Self {
        let bits_per_ms = kbps as f64;
        Bucket {
            level: model.initial_ms as f64 * bits_per_ms,
            size: model.size_ms as f64 * bits_per_ms,
            optimal: model.optimal_ms as f64 * bits_per_ms,
            per_frame,
        }
    }

    /// A shown frame's time passes: its share of the channel arrives.
    pub(super) fn fill(&mut self) {
        self.level += self.per_frame;
    }

    /// A frame of `bits` is taken out; what overflows the capacity is
    /// lost.
    pub(super) fn drain(&mut self, bits: f64) {
        self.level = (self.level - bits).min(self.size);
    }
}

impl super::Encoder {
    /// Encodes `image` with `params` (its q index within the allowed
    /// range); where the rate controller limits the frame's size
    /// ([`RateController::frame_limit`](super::rate_control::RateController::frame_limit)),
    /// re-codes it at coarser q indices while it takes more, and under a
    /// hard limit (CBR) as a last resort codes a minimal frame: the last
    /// frame repeated (an inter frame whose macroblocks all skip), or for a
    /// key frame a flat grey picture.
    pub(super) fn encode_rc(
        &self,
        image: &Image,
        params: &EncodeParams,
    ) -> Result<EncodedFrame, EncodeError> {
        // Every frame, boosted or forced, within `--min-q/--max-q`.
        let (_, hi) = self.rc.q_range();
        let mut params = params.clone();
        params.q_index = params.q_index.clamp(self.rc.q_range().0, hi);
        params.threads = self.cfg.threads;
        let pool = self.pool.as_deref();
        let mut out = encode_on(&self.state, image, &params, pool)?;
        let key = params.key_frame || self.state.is_empty();
        let Some((max_bits, hard)) = self.rc.frame_limit(key) else {
            return Ok(out);
        };
        while (out.data.len() * 8) as f64 > max_bits && params.q_index < hi {
            params.q_index =
                self.rc
                    .retry_q_index(params.q_index, (out.data.len() * 8) as f64, max_bits);
            out = encode_on(&self.state, image, &params, pool)?;
        }
        if !hard || (out.data.len() * 8) as f64 <= max_bits {
            return Ok(out);
        }
        // Minimal frames, unfiltered: a flat key frame where a key frame
        // was due, else (or if even that does not fit) the last frame
        // repeated, refreshing what the frame would have refreshed.
        params.filter_level = Some(0);
        if out.key_frame || self.state.is_empty() {
            let flat = Image::filled(image.width, image.height, [128, 128, 128]);
            let out = encode_on(&self.state, &flat, &params, pool)?;
            if (out.data.len() * 8) as f64 <= max_bits || self.state.is_empty() {
                return Ok(out);
            }
            params.key_frame = false;
            params.refresh_golden = true;
            params.refresh_altref = true;
        }
        let last = self.state.last_frame().expect("a key frame was coded");
        encode_on(&self.state, &last, &params, pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode;
    use crate::state::DecoderState;

    fn noise(w: usize, h: usize, seed: u32) -> Image {
        let mut f = Image::filled(w, h, [128, 128, 128]);
        let mut x = seed.wrapping_mul(2654435761) | 1;
        for p in 0..3 {
            let (pw, ph) = if p == 0 {
                (w, h)
            } else {
                (w.div_ceil(2), h.div_ceil(2))
            };
            for y in 0..ph {
                for v in &mut f.planes[p].row_mut(y)[..pw] {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *v = x as u8;
                }
            }
        }
        f
    }

    /// The fallbacks of `Encoder::encode_rc` stay within their bounds
    /// whatever came before them (noise, so the
    /// probabilities are far from a skip-friendly state).
    #[test]
    fn minimal_frames_fit_the_bounds() {
        for (w, h) in [
            (16, 16),
            (48, 32),
            (176, 144),
            (352, 288),
            (640, 480),
            (1280, 720),
        ] {
            let params = EncodeParams {
                q_index: 127,
                speed: 8,
                ..EncodeParams::default()
            };
            let key = encode(&DecoderState::new(), &noise(w, h, 1), &params).unwrap();
            let inter = encode(&key.state, &noise(w, h, 2), &params).unwrap();
            let minimal = EncodeParams {
                filter_level: Some(0),
                ..params.clone()
            };
            let last = inter.state.last_frame().unwrap();
            let repeat = encode(&inter.state, &last, &minimal).unwrap();
            let flat = encode(
                &inter.state,
                &Image::filled(w, h, [128; 3]),
                &EncodeParams {
                    key_frame: true,
                    ..minimal.clone()
                },
            )
            .unwrap();
            for (what, f, bound) in [
                ("repeat", &repeat, repeat_frame_bits(w, h)),
                ("flat key", &flat, flat_key_bits(w, h)),
            ] {
                let bits = (f.data.len() * 8) as f64;
                assert!(bits <= bound, "{w}x{h} {what}: {bits} bits > {bound}");
            }
            assert!(!repeat.key_frame && flat.key_frame);
        }
    }
}
