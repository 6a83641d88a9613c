//! The state wire format: a [`DecoderState`] as bytes, to hand it from one
//! worker to the next.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic "EXST" | version u16 | compression u8 | reserved u8
//! | body length u64 (uncompressed) | payload length u64 | crc32 of payload u32
//! | payload (the body, compressed)
//! ```
//!
//! The body is canonical: the same state always gives the same body, so its
//! SHA-256 ([`state_digest`]) identifies a state. Reference pictures that
//! are the same picture are stored once, so a state after a frame that
//! refreshed all three references carries one picture, not three.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::header::{FilterDeltas, FrameSize, SegmentFeatures};
use crate::picture::{Picture, BORDER_UV, BORDER_Y};
use crate::probs::Probabilities;
use crate::state::{DecoderState, References};

const MAGIC: &[u8; 4] = b"EXST";
/// Current version of the format.
pub const WIRE_VERSION: u16 = 1;
const HEADER_LEN: usize = 4 + 2 + 1 + 1 + 8 + 8 + 4;
/// Largest body accepted: three 16383x16383 pictures plus extras.
const MAX_BODY: u64 = 3 * 16384 * 16384 * 3 / 2 + (1 << 24);
/// Largest output per input byte of an LZ4 block.
const LZ4_MAX_RATIO: usize = 255;

/// How the body is compressed.
///
/// Measured on a 640x480 camera state (one picture, 463 KB raw) on the
/// 2-core development machine: LZ4 gives 194 KB in 1.3 ms and reads back
/// in 0.7 ms; DEFLATE (fastest level) 176 KB in 4.4 ms / 3.0 ms; zstd
/// level 1 155 KB in 3.6 ms / 0.5 ms. At the 50–100 MB/s a cloud function
/// moves data, LZ4's total (compress + transfer + decompress) is the
/// lowest, and it is pure Rust, so it is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    /// Stored as is.
    None = 0,
    /// LZ4 block format (lz4_flex).
    Lz4 = 1,
}

/// Why state bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// Fewer bytes than the header or the lengths it gives.
    #[error("truncated state: {0}")]
    Truncated(&'static str),
    /// Not a state at all.
    #[error("not an excam state (bad magic)")]
    BadMagic,
    /// Written by an incompatible version.
    #[error("state format version {0} is not supported (this build reads version {WIRE_VERSION})")]
    UnsupportedVersion(u16),
    /// Unknown compression method.
    #[error("unknown compression method {0}")]
    UnknownCompression(u8),
    /// The payload does not match its checksum.
    #[error("state checksum mismatch (corrupt bytes)")]
    Checksum,
    /// The payload does not decompress to the declared length.
    #[error("state payload is corrupt: {0}")]
    Corrupt(&'static str),
    /// A length or value in the body is out of range.
    #[error("invalid state body: {0}")]
    Invalid(&'static str),
    /// A well-formed state of another stream's frame size.
    #[error("state is for a {}x{} stream, not {}x{}", found.0, found.1, expected.0, expected.1)]
    WrongSize {
        /// The state's frame size.
        found: (u16, u16),
        /// The size the reader expected.
        expected: (u16, u16),
    },
}

fn put_picture(out: &mut Vec<u8>, p: &Picture) {
    for plane in &p.planes {
        for y in 0..plane.height {
            let i = plane.index(0, y as isize);
            out.extend_from_slice(&plane.data[i..i + plane.width]);
        }
    }
}

/// The canonical, uncompressed body of a state.
fn body(state: &DecoderState) -> Vec<u8> {
    let mut out = Vec::new();
    let s = state.size;
    out.extend_from_slice(&s.width.to_le_bytes());
    out.extend_from_slice(&s.height.to_le_bytes());
    out.push(s.horiz_scale);
    out.push(s.vert_scale);
    let p = &state.probs;
    for a in &p.coeff {
        for b in a {
            for c in b {
                out.extend_from_slice(c);
            }
        }
    }
    out.extend_from_slice(&p.y_mode);
    out.extend_from_slice(&p.uv_mode);
    out.extend_from_slice(&p.mv[0]);
    out.extend_from_slice(&p.mv[1]);
    let f = &state.segment_features;
    out.push(f.absolute as u8);
    out.extend(f.quant.iter().map(|&v| v as u8));
    out.extend(f.filter_level.iter().map(|&v| v as u8));
    let d = &state.filter_deltas;
    out.extend(d.ref_frame.iter().map(|&v| v as u8));
    out.extend(d.mode.iter().map(|&v| v as u8));
    out.extend_from_slice(&(state.segment_map.len() as u32).to_le_bytes());
    out.extend_from_slice(&state.segment_map);
    match &state.refs {
        None => out.push(0),
        Some(r) => {
            // Distinct pictures in order of first use; equal ones share.
            let all = [&r.last, &r.golden, &r.altref];
            let mut table: Vec<&Arc<Picture>> = Vec::new();
            let mut index = [0u8; 3];
            for (i, p) in all.iter().enumerate() {
                let pos = table.iter().position(|q| Arc::ptr_eq(q, p) || q == p);
                index[i] = match pos {
                    Some(k) => k as u8,
                    None => {
                        table.push(p);
                        (table.len() - 1) as u8
                    }
                };
            }
            out.push(table.len() as u8);
            out.extend_from_slice(&index);
            for p in table {
                put_picture(&mut out, p);
            }
        }
    }
    out
}

/// SHA-256 of a state's canonical body: equal states have equal digests.
pub fn state_digest(state: &DecoderState) -> [u8; 32] {
    Sha256::digest(body(state)).into()
}

/// Serializes a state with the given compression.
pub fn encode_state(state: &DecoderState, compression: Compression) -> Vec<u8> {
    let body = body(state);
    let payload = match compression {
        Compression::None => body.clone(),
        Compression::Lz4 => lz4_flex::block::compress(&body),
    };
    frame(compression as u8, body.len() as u64, &payload)
}

/// Wraps `payload` in the wire header: `method` (0 none, 1 LZ4), the body
/// length it claims, and a valid checksum. [`encode_state`] uses it; tests
/// and fuzzers use it to put arbitrary bodies behind a valid checksum.
pub fn frame(method: u8, body_len: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    out.push(method);
    out.push(0);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.data.len() - self.pos < n {
            return Err(StateError::Truncated("state body"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i8s<const N: usize>(&mut self) -> Result<[i8; N], StateError> {
        let s = self.take(N)?;
        Ok(core::array::from_fn(|i| s[i] as i8))
    }
    fn fill(&mut self, out: &mut [u8]) -> Result<(), StateError> {
        out.copy_from_slice(self.take(out.len())?);
        Ok(())
    }
}

fn read_picture(r: &mut Reader, w: usize, h: usize) -> Result<Picture, StateError> {
    let mut p = Picture::new(w, h);
    for plane in p.planes.iter_mut() {
        for y in 0..plane.height {
            let i = plane.index(0, y as isize);
            let wd = plane.width;
            plane.data[i..i + wd].copy_from_slice(r.take(wd)?);
        }
        plane.extend_borders();
    }
    debug_assert_eq!(p.planes[0].border, BORDER_Y);
    debug_assert_eq!(p.planes[1].border, BORDER_UV);
    Ok(p)
}

/// Reads a state written by [`encode_state`]. Corrupt or truncated bytes
/// give an error, never a panic.
///
/// Bytes from elsewhere are better read with [`decode_state_for`], which
/// bounds what they may make the reader allocate by the frame size the
/// caller expects; this bounds it only by the largest VP8 frame (a few
/// megabytes of hostile input can still claim about a gigabyte here).
pub fn decode_state(bytes: &[u8]) -> Result<DecoderState, StateError> {
    decode_state_within(bytes, MAX_BODY)
}

/// The longest body a state of a `width`x`height` stream can have: the
/// fixed fields, one segment id per macroblock and three reference
/// pictures.
pub fn max_body_len(width: u16, height: u16) -> u64 {
    // Reference pictures are stored as decoded, in whole macroblocks: a
    // 40x24 stream's pictures are 48x32 (sizing them by the display size
    // refused every real state of a size that is not a multiple of 16).
    let (w, h) = (
        (width as u64).div_ceil(16) * 16,
        (height as u64).div_ceil(16) * 16,
    );
    let picture = w * h + 2 * (w / 2) * (h / 2);
    let mbs = w.div_ceil(16) * h.div_ceil(16);
    // Size (6), probabilities (1,056 + 4 + 3 + 38), segment and filter
    // settings (17), map length (4), reference count and index (4).
    let fixed = 6 + 1056 + 4 + 3 + 38 + 17 + 4 + 4;
    fixed + mbs + 3 * picture
}

/// Reads a state that must belong to a `width`x`height` stream (or be the
/// empty state before any key frame). A body longer than such a state can
/// be is refused before anything is decompressed or allocated, so hostile
/// bytes cost at most about three of the caller's own pictures.
pub fn decode_state_for(bytes: &[u8], width: u16, height: u16) -> Result<DecoderState, StateError> {
    let state = decode_state_within(bytes, max_body_len(width, height))?;
    let s = state.size;
    if (s.width, s.height) != (0, 0) && (s.width, s.height) != (width, height) {
        return Err(StateError::WrongSize {
            found: (s.width, s.height),
            expected: (width, height),
        });
    }
    Ok(state)
}

fn decode_state_within(bytes: &[u8], max_body: u64) -> Result<DecoderState, StateError> {
    if bytes.len() < HEADER_LEN {
        return Err(StateError::Truncated("header"));
    }
    if &bytes[..4] != MAGIC {
        return Err(StateError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != WIRE_VERSION {
        return Err(StateError::UnsupportedVersion(version));
    }
    let method = bytes[6];
    let body_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let payload_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != payload_len {
        return Err(StateError::Truncated("payload length differs from header"));
    }
    if body_len > max_body {
        return Err(StateError::Invalid("body length too large"));
    }
    if crc32fast::hash(payload) != crc {
        return Err(StateError::Checksum);
    }
    let body_len = body_len as usize;
    let body = match method {
        0 => payload.to_vec(),
        // An LZ4 block inflates at most 255-fold (a length byte adds 255
        // bytes of match): a larger claim is corrupt, and refusing it here
        // keeps a few hostile bytes from allocating a gigabyte.
        1 if body_len > payload.len().saturating_mul(LZ4_MAX_RATIO) + 16 => {
            return Err(StateError::Corrupt("lz4 body length beyond its payload"))
        }
        1 => lz4_flex::block::decompress(payload, body_len)
            .map_err(|_| StateError::Corrupt("lz4"))?,
        m => return Err(StateError::UnknownCompression(m)),
    };
    if body.len() != body_len {
        return Err(StateError::Corrupt(
            "decompressed length differs from header",
        ));
    }
    parse_body(&body)
}

fn parse_body(body: &[u8]) -> Result<DecoderState, StateError> {
    let mut r = Reader { data: body, pos: 0 };
    let width = r.u16()?;
    let height = r.u16()?;
    let size = FrameSize {
        width,
        height,
        horiz_scale: r.u8()?,
        vert_scale: r.u8()?,
    };
    if width > 16383 || height > 16383 || size.horiz_scale > 3 || size.vert_scale > 3 {
        return Err(StateError::Invalid("frame size"));
    }
    let mut probs = Probabilities::default();
    for a in probs.coeff.iter_mut() {
        for b in a.iter_mut() {
            for c in b.iter_mut() {
                r.fill(c)?;
            }
        }
    }
    r.fill(&mut probs.y_mode)?;
    r.fill(&mut probs.uv_mode)?;
    r.fill(&mut probs.mv[0])?;
    r.fill(&mut probs.mv[1])?;
    let segment_features = SegmentFeatures {
        absolute: r.u8()? != 0,
        quant: r.i8s()?,
        filter_level: r.i8s()?,
    };
    let filter_deltas = FilterDeltas {
        ref_frame: r.i8s()?,
        mode: r.i8s()?,
    };
    // What a bitstream can set (RFC 6386 9.3, 9.6: 7- and 6-bit
    // magnitudes with a sign); the codec relies on it, so a state that no
    // decoding could reach is refused here.
    let six_bits = |v: &i8| (-63..=63).contains(v);
    if segment_features.quant.contains(&i8::MIN)
        || !segment_features.filter_level.iter().all(six_bits)
    {
        return Err(StateError::Invalid("segment feature out of range"));
    }
    if !filter_deltas
        .ref_frame
        .iter()
        .chain(&filter_deltas.mode)
        .all(six_bits)
    {
        return Err(StateError::Invalid("loop filter delta out of range"));
    }
    let mb_count = (width as usize).div_ceil(16) * (height as usize).div_ceil(16);
    let map_len = r.u32()? as usize;
    if map_len != 0 && map_len != mb_count {
        return Err(StateError::Invalid("segment map length"));
    }
    let segment_map = r.take(map_len)?.to_vec();
    if segment_map.iter().any(|&s| s > 3) {
        return Err(StateError::Invalid("segment id"));
    }
    let refs = match r.u8()? {
        0 => None,
        n @ 1..=3 => {
            if width == 0 || height == 0 {
                return Err(StateError::Invalid("references without a size"));
            }
            let index: [u8; 3] = r.take(3)?.try_into().expect("3 bytes");
            if index.iter().any(|&i| i >= n) {
                return Err(StateError::Invalid("reference index"));
            }
            // The pictures must all be there before any is allocated.
            let (w, h) = (width as usize, height as usize);
            let picture = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
            if r.data.len() - r.pos < picture * n as usize {
                return Err(StateError::Truncated("reference pictures"));
            }
            let mut table = Vec::with_capacity(n as usize);
            for _ in 0..n {
                table.push(Arc::new(read_picture(
                    &mut r,
                    width as usize,
                    height as usize,
                )?));
            }
            Some(References {
                last: table[index[0] as usize].clone(),
                golden: table[index[1] as usize].clone(),
                altref: table[index[2] as usize].clone(),
            })
        }
        _ => return Err(StateError::Invalid("reference count")),
    };
    if r.pos != body.len() {
        return Err(StateError::Invalid("trailing bytes in body"));
    }
    Ok(DecoderState {
        probs,
        segment_features,
        segment_map: Arc::new(segment_map),
        filter_deltas,
        refs,
        size,
    })
}
