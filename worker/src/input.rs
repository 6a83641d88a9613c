//! The input video in the store: a Y4M file whose frames sit at a fixed
//! stride after the header, so a worker reads its chunk with one ranged
//! read and never the rest of the file.
//!
//! Only 8-bit 4:2:0 progressive Y4M is accepted (`C420`, `C420jpeg`,
//! `C420paldv`, `C420mpeg2` or no `C` tag), with bare `FRAME` lines:
//! frame parameters would make the stride vary.

use excam_codec::container::y4m::{Y4mError, Y4mHeader, Y4mReader};
use excam_codec::image::i420_len;
use excam_codec::Image;
use thiserror::Error;

use crate::store::{Store, StoreError};
use crate::task::InputSpec;

/// The line every frame starts with.
pub const FRAME_LINE: &[u8] = b"FRAME\n";
/// Bytes [`probe_input`] reads from the start of the file: more than the
/// longest header line the Y4M reader accepts (1024) plus a `FRAME` line.
pub const HEAD_BYTES: u64 = 4096;

/// Why the input cannot be used.
#[derive(Debug, Error)]
pub enum InputError {
    /// The Y4M header is malformed or describes an unsupported format.
    #[error("input {key}: {source}")]
    Header {
        /// Store key of the input.
        key: String,
        /// The reader's complaint.
        source: Y4mError,
    },
    /// The file is not a header followed by whole frames of the header's size.
    #[error("input {key}: {message}")]
    Layout {
        /// Store key of the input.
        key: String,
        /// What does not fit.
        message: String,
    },
    /// A frame read does not start with a bare `FRAME` line.
    #[error("input {key}: frame {index}: {message}")]
    Frame {
        /// Store key of the input.
        key: String,
        /// Zero-based frame number.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The frames asked for are not in the video, or the size asked for is
    /// not the video's.
    #[error("input {key}: {message}")]
    Request {
        /// Store key of the input.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Builds the [`InputSpec`] of a Y4M file from its first bytes (`head`: at
/// least the header line, ideally [`HEAD_BYTES`]) and its total size.
/// Returns the header too (size and frame rate).
///
/// # Errors
/// [`InputError::Header`] for an unsupported or malformed header,
/// [`InputError::Layout`] if the size is not a whole number of frames or
/// the first frame line carries parameters.
pub fn input_spec(
    key: &str,
    head: &[u8],
    total_size: u64,
) -> Result<(InputSpec, Y4mHeader), InputError> {
    let layout = |message: String| InputError::Layout {
        key: key.to_string(),
        message,
    };
    let header_end = match head.iter().position(|&b| b == b'\n') {
        Some(p) => p + 1,
        // Let the reader say what is wrong (no magic, too long, cut short).
        None => head.len(),
    };
    let reader = Y4mReader::new(&head[..header_end]).map_err(|source| InputError::Header {
        key: key.to_string(),
        source,
    })?;
    let header = *reader.header();
    let picture = i420_len(header.width, header.height) as u64;
    let stride = FRAME_LINE.len() as u64 + picture;
    let offset = header_end as u64;
    if total_size < offset {
        return Err(layout(format!(
            "file of {total_size} bytes is shorter than its header"
        )));
    }
    let first = &head[header_end..];
    if first.len() >= FRAME_LINE.len() && !first.starts_with(FRAME_LINE) {
        return Err(frame_line_error(key, 0, first).into_layout());
    }
    let body = total_size - offset;
    if body == 0 {
        return Err(layout("no frames after the header".into()));
    }
    if !body.is_multiple_of(stride) {
        return Err(layout(format!(
            "{body} bytes after the header are not a whole number of {}x{} frames \
             ({stride} bytes each: \"FRAME\\n\" and {picture} picture bytes); \
             the file is cut short or its FRAME lines carry parameters, which are not supported",
            header.width, header.height
        )));
    }
    let frames = usize::try_from(body / stride).map_err(|_| layout("too many frames".into()))?;
    Ok((
        InputSpec {
            key: key.to_string(),
            first_frame_offset: offset,
            frame_stride: stride,
            frames,
        },
        header,
    ))
}

impl InputError {
    fn into_layout(self) -> InputError {
        match self {
            InputError::Frame {
                key,
                index,
                message,
            } => InputError::Layout {
                key,
                message: format!("frame {index}: {message}"),
            },
            e => e,
        }
    }
}

fn frame_line_error(key: &str, index: usize, data: &[u8]) -> InputError {
    let message = if data.starts_with(b"FRAME ") {
        "the FRAME line carries parameters, which are not supported \
         (frames must sit at a fixed stride); rewrite the file without them"
            .to_string()
    } else {
        let shown = String::from_utf8_lossy(&data[..data.len().min(8)]).into_owned();
        format!(
            "does not start with \"FRAME\\n\" (found {shown:?}): not the stride the header implies"
        )
    };
    InputError::Frame {
        key: key.to_string(),
        index,
        message,
    }
}

/// Reads the head and size of `key` in `store` and builds its
/// [`InputSpec`] ([`input_spec`]).
///
/// # Errors
/// [`InputError::Store`] ([`StoreError::NotFound`] if absent), or
/// [`input_spec`]'s errors.
pub async fn probe_input(
    store: &dyn Store,
    key: &str,
) -> Result<(InputSpec, Y4mHeader), InputError> {
    let size = store
        .size(key)
        .await?
        .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
    let head = store.get_range(key, 0, size.min(HEAD_BYTES)).await?;
    input_spec(key, &head, size)
}

/// Reads frames `first..first + count` of the input with one ranged read,
/// checking that each starts with a bare `FRAME` line.
///
/// # Errors
/// [`InputError::Request`] if the frames are not in the video or
/// `width`x`height` does not match its stride, [`InputError::Frame`] for a
/// frame without its `FRAME` line, [`InputError::Store`] if the read fails.
pub async fn read_frames(
    store: &dyn Store,
    input: &InputSpec,
    width: usize,
    height: usize,
    first: usize,
    count: usize,
) -> Result<Vec<Image>, InputError> {
    let key = &input.key;
    let request = |message: String| InputError::Request {
        key: key.clone(),
        message,
    };
    let picture = i420_len(width, height);
    let stride = (FRAME_LINE.len() + picture) as u64;
    if stride != input.frame_stride {
        return Err(request(format!(
            "a {width}x{height} frame takes {stride} bytes, but the input's stride is {}",
            input.frame_stride
        )));
    }
    if first
        .checked_add(count)
        .is_none_or(|end| end > input.frames)
    {
        return Err(request(format!(
            "frames {first}..{} asked for, the video has {}",
            first.saturating_add(count),
            input.frames
        )));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let offset = input.first_frame_offset + first as u64 * stride;
    let data = store.get_range(key, offset, count as u64 * stride).await?;
    let stride = stride as usize;
    let mut frames = Vec::with_capacity(count);
    for (k, raw) in data.chunks_exact(stride).enumerate() {
        if !raw.starts_with(FRAME_LINE) {
            return Err(frame_line_error(key, first + k, raw));
        }
        let f = Image::from_i420(width, height, &raw[FRAME_LINE.len()..])
            .expect("picture length checked by the stride");
        frames.push(f);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y4m(header: &str, frames: usize, w: usize, h: usize) -> Vec<u8> {
        let mut v = format!("YUV4MPEG2 {header}\n").into_bytes();
        for k in 0..frames {
            v.extend_from_slice(FRAME_LINE);
            v.extend((0..i420_len(w, h)).map(|i| (i + k) as u8));
        }
        v
    }

    #[test]
    fn spec_of_a_simple_file() {
        let f = y4m("W4 H2 F25:1 C420jpeg", 3, 4, 2);
        let (spec, h) = input_spec("in.y4m", &f, f.len() as u64).unwrap();
        assert_eq!((h.width, h.height), (4, 2));
        assert_eq!(spec.first_frame_offset, 31);
        assert_eq!(spec.frame_stride, 6 + 12);
        assert_eq!(spec.frames, 3);
        // No C tag, odd size (chroma rounds up).
        let f = y4m("W5 H3", 2, 5, 3);
        let (spec, _) = input_spec("in.y4m", &f[..20], f.len() as u64).unwrap();
        assert_eq!(spec.frame_stride, 6 + 15 + 2 * 6);
        assert_eq!(spec.frames, 2);
    }

    #[test]
    fn spec_errors_are_clear() {
        let f = y4m("W4 H2 C422", 1, 4, 2);
        let e = input_spec("k", &f, f.len() as u64).unwrap_err();
        assert!(e.to_string().contains("4:2:2"), "{e}");
        let f = y4m("W4 H2 It", 1, 4, 2);
        let e = input_spec("k", &f, f.len() as u64).unwrap_err();
        assert!(e.to_string().contains("progressive"), "{e}");
        let f = y4m("W4 H2", 2, 4, 2);
        let e = input_spec("k", &f, f.len() as u64 - 1).unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
        let e = input_spec("k", &f[..16], 16).unwrap_err();
        assert!(e.to_string().contains("no frames"), "{e}");
        let mut p = b"YUV4MPEG2 W4 H2\nFRAME Ixx\n".to_vec();
        p.extend_from_slice(&[0; 12]);
        let e = input_spec("k", &p, p.len() as u64).unwrap_err();
        assert!(e.to_string().contains("parameters"), "{e}");
        let e = input_spec("k", b"RIFF....", 8).unwrap_err();
        assert!(matches!(e, InputError::Header { .. }), "{e}");
    }
}
