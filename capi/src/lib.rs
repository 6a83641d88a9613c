//! C API for excam: a streaming VP8 encoder, a decoder and an
//! ExCamera-style parallel encoder, behind opaque handles.
//!
//! The safe core lives here; every raw pointer is handled in [`ffi`], the
//! only module with `unsafe` (C callers hand us pointers, so the FFI layer
//! cannot avoid it). See `include/excam.h` for the C declarations.

#![deny(unsafe_code)]

use std::sync::Arc;

use excam_codec::encode::GIVEN_STATE_LAMBDA_SCALE;
use excam_codec::{encode, encode_given_state, rebase, DecoderState, EncodeParams, Image, Picture};

// The C boundary: raw pointers in, so unsafe here and nowhere else.
#[allow(unsafe_code)]
pub mod ffi;

/// Encoder settings, validated by [`EncoderCore::new`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Luma width, 1..=16383.
    pub width: usize,
    /// Luma height, 1..=16383.
    pub height: usize,
    /// Quantizer index 0..=63 (vpxenc's --min-q/--max-q scale), mapped to
    /// the VP8 q index 0..=127.
    pub quantizer: u8,
    /// Key frame interval in frames (0: only the first frame).
    pub keyint: u32,
    /// Speed 0..=8, as vpxenc's --cpu-used magnitude.
    pub speed: u8,
}

impl Settings {
    /// Checks ranges; the message says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 || self.width > 16383 || self.height > 16383 {
            return Err(format!(
                "bad picture size {}x{} (1..=16383)",
                self.width, self.height
            ));
        }
        if self.quantizer > 63 {
            return Err(format!("quantizer {} out of range 0..=63", self.quantizer));
        }
        if self.speed > 8 {
            return Err(format!("speed {} out of range 0..=8", self.speed));
        }
        Ok(())
    }

    /// VP8 q index for the 0..=63 quantizer, as libvpx's q_trans table
    /// spreads 0..=63 over 0..=127 (approximately linear).
    pub fn q_index(&self) -> u8 {
        ((self.quantizer as u32 * 127 + 31) / 63) as u8
    }

    fn params(&self, key: bool) -> EncodeParams {
        EncodeParams {
            q_index: self.q_index(),
            key_frame: key,
            speed: self.speed,
            ..EncodeParams::default()
        }
    }
}

/// One compressed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// VP8 frame bytes.
    pub data: Vec<u8>,
    /// Presentation index of the frame (0, 1, ...).
    pub pts: u64,
    /// Whether it is a key frame.
    pub key: bool,
}

/// A streaming encoder: one frame in, one packet out.
pub struct EncoderCore {
    settings: Settings,
    state: DecoderState,
    frames: u64,
    queue: std::collections::VecDeque<Packet>,
    flushed: bool,
}

impl EncoderCore {
    /// A new encoder, or why the settings are bad.
    pub fn new(settings: Settings) -> Result<Self, String> {
        settings.validate()?;
        Ok(EncoderCore {
            settings,
            state: DecoderState::default(),
            frames: 0,
            queue: Default::default(),
            flushed: false,
        })
    }

    /// Encodes one frame, queueing its packet.
    pub fn send(&mut self, frame: &Image) -> Result<(), String> {
        if self.flushed {
            return Err("encoder already flushed".into());
        }
        if (frame.width, frame.height) != (self.settings.width, self.settings.height) {
            return Err(format!(
                "frame is {}x{}, encoder is {}x{}",
                frame.width, frame.height, self.settings.width, self.settings.height
            ));
        }
        let k = self.settings.keyint as u64;
        let key = self.frames == 0 || (k > 0 && self.frames.is_multiple_of(k));
        let out =
            encode(&self.state, frame, &self.settings.params(key)).map_err(|e| e.to_string())?;
        self.state = out.state;
        self.queue.push_back(Packet {
            data: out.data,
            pts: self.frames,
            key: out.key_frame,
        });
        self.frames += 1;
        Ok(())
    }

    /// Marks the end of input.
    pub fn flush(&mut self) {
        self.flushed = true;
    }

    /// The next packet, if any.
    pub fn receive(&mut self) -> Option<Packet> {
        self.queue.pop_front()
    }

    /// Whether input ended and every packet was taken.
    pub fn finished(&self) -> bool {
        self.flushed && self.queue.is_empty()
    }
}

/// A decoder keeping the last shown picture.
#[derive(Default)]
pub struct DecoderCore {
    inner: excam_codec::Decoder,
    /// The last shown picture, cropped to its visible size.
    pub shown: Option<Image>,
}

impl DecoderCore {
    /// Decodes one VP8 frame; a shown frame replaces [`Self::shown`].
    pub fn decode(&mut self, data: &[u8]) -> Result<bool, String> {
        let (pic, _info): (Option<Arc<Picture>>, _) =
            self.inner.decode(data).map_err(|e| e.to_string())?;
        match pic {
            Some(p) => {
                self.shown = Some(p.to_frame());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// ExCamera[n, x] encode: chunks of `chunk` frames encoded in parallel
/// (each from a key frame, on `threads` threads), then serially attached:
/// each chunk after the first has its first frame coded given the state
/// the previous chunk ends in ([`encode_given_state`]) and its other frames
/// [`rebase`]d onto the new states, as the coordinator's pipeline does.
/// Only the first frame is a key frame.
pub fn encode_parallel(
    settings: &Settings,
    frames: &[Image],
    chunk: usize,
    threads: usize,
) -> Result<Vec<Packet>, String> {
    settings.validate()?;
    if chunk == 0 {
        return Err("chunk size must be at least 1".into());
    }
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (settings.width, settings.height) {
            return Err(format!(
                "frame {i} is {}x{}, expected {}x{}",
                f.width, f.height, settings.width, settings.height
            ));
        }
    }
    let chunks: Vec<&[Image]> = frames.chunks(chunk).collect();
    let threads = threads.clamp(1, chunks.len().max(1));
    // Phase 1: each chunk independently, from a key frame. For each frame
    // keep its bytes and the state it was coded against.
    type Coded = Vec<(Vec<u8>, DecoderState)>;
    let mut coded: Vec<Option<Result<Coded, String>>> = (0..chunks.len()).map(|_| None).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(&mut coded);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= chunks.len() {
                    break;
                }
                let r = encode_chunk(settings, chunks[i]);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let coded: Vec<Coded> = coded
        .into_iter()
        .map(|c| c.unwrap_or_else(|| Err("chunk not encoded".into())))
        .collect::<Result<_, _>>()?;
    // Phase 2: serial rebase onto the true end state of the chunk before.
    let mut out = Vec::with_capacity(frames.len());
    let mut state = DecoderState::default();
    let mut pts = 0u64;
    for (ci, (c, imgs)) in coded.into_iter().zip(chunks).enumerate() {
        for (fi, ((data, original), img)) in c.into_iter().zip(imgs).enumerate() {
            let e = if ci == 0 {
                // The first chunk is already coded against the true states.
                excam_codec::decode_picture(&state, &data)
                    .map(|d| (data, d.state, fi == 0))
                    .map_err(|e| e.to_string())?
            } else if fi == 0 {
                let p = EncodeParams {
                    lambda_scale: GIVEN_STATE_LAMBDA_SCALE,
                    ..settings.params(false)
                };
                let r = encode_given_state(&state, img, &p).map_err(|e| e.to_string())?;
                (r.data, r.state, r.key_frame)
            } else {
                let r = rebase(&original, &state, img, &data).map_err(|e| e.to_string())?;
                (r.data, r.state, r.key_frame)
            };
            state = e.1;
            out.push(Packet {
                data: e.0,
                pts,
                key: e.2,
            });
            pts += 1;
        }
    }
    Ok(out)
}

fn encode_chunk(
    settings: &Settings,
    frames: &[Image],
) -> Result<Vec<(Vec<u8>, DecoderState)>, String> {
    let mut state = DecoderState::default();
    let mut v = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let r = encode(&state, f, &settings.params(i == 0)).map_err(|e| e.to_string())?;
        v.push((r.data, std::mem::replace(&mut state, r.state)));
    }
    Ok(v)
}

/// An IVF file of `packets` (VP8, timebase fps_den/fps_num).
pub fn ivf_bytes(
    settings: &Settings,
    fps_num: u32,
    fps_den: u32,
    packets: &[Packet],
) -> Result<Vec<u8>, String> {
    use excam_codec::container::ivf::{IvfHeader, IvfWriter};
    let h = IvfHeader::vp8(
        settings.width as u16,
        settings.height as u16,
        fps_den,
        fps_num,
    );
    let mut w = IvfWriter::new(std::io::Cursor::new(Vec::new()), &h).map_err(|e| e.to_string())?;
    for p in packets {
        w.write_frame(p.pts, &p.data).map_err(|e| e.to_string())?;
    }
    w.finish()
        .map(|c| c.into_inner())
        .map_err(|e| e.to_string())
}

/// Crate and codec version.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

#[cfg(test)]
mod tests {
    use super::*;
    use excam_codec::metrics::frame_psnr;

    fn clip(n: usize, w: usize, h: usize) -> Vec<Image> {
        (0..n)
            .map(|t| {
                let mut f = Image::filled(w, h, [0, 128, 128]);
                for y in 0..h {
                    for (x, p) in f.planes[0].row_mut(y).iter_mut().enumerate() {
                        *p = (((x + 3 * t) ^ y) * 3 + 16) as u8;
                    }
                }
                f
            })
            .collect()
    }

    fn settings() -> Settings {
        Settings {
            width: 64,
            height: 48,
            quantizer: 16,
            keyint: 0,
            speed: 4,
        }
    }

    /// One chunk covering the whole clip is exactly the serial encoder's output.
    #[test]
    fn one_chunk_equals_serial() {
        let frames = clip(6, 64, 48);
        let mut e = EncoderCore::new(settings()).unwrap();
        let mut serial = vec![];
        for f in &frames {
            e.send(f).unwrap();
            serial.push(e.receive().unwrap());
        }
        assert_eq!(encode_parallel(&settings(), &frames, 6, 2).unwrap(), serial);
    }

    /// ExCamera\[3,2\]: one key frame, and the rebased stream decodes close
    /// to the source (a broken rebase drifts far from it).
    #[test]
    fn parallel_decodes_close_to_source() {
        let frames = clip(10, 64, 48);
        let p = encode_parallel(&settings(), &frames, 3, 2).unwrap();
        assert_eq!(p.len(), 10);
        assert_eq!(p.iter().filter(|p| p.key).count(), 1);
        let mut d = DecoderCore::default();
        for (pk, src) in p.iter().zip(&frames) {
            assert!(d.decode(&pk.data).unwrap());
            let psnr = frame_psnr(src, d.shown.as_ref().unwrap()).all;
            assert!(psnr > 30.0, "frame {} psnr {psnr}", pk.pts);
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(EncoderCore::new(Settings {
            speed: 9,
            ..settings()
        })
        .is_err());
        assert!(EncoderCore::new(Settings {
            width: 0,
            ..settings()
        })
        .is_err());
        assert!(encode_parallel(&settings(), &clip(2, 64, 48), 0, 1).is_err());
        assert!(encode_parallel(&settings(), &clip(2, 32, 48), 1, 1).is_err());
    }
}
