//! Raw I420: tightly packed Y, U, V planes, frame after frame, no header.
//!
//! This is what `vpxdec --i420` and `ffmpeg -f rawvideo -pix_fmt yuv420p`
//! write. The size is not in the data, so the caller supplies it.

use std::io::{self, Read, Write};

use crate::image::{i420_len, Image};

/// Errors from reading raw I420.
#[derive(Debug, thiserror::Error)]
pub enum I420Error {
    /// The underlying reader or writer failed.
    #[error("I420 I/O error: {0}")]
    Io(#[from] io::Error),
    /// The size given is zero or too large to address.
    #[error("invalid I420 frame size {width}x{height}")]
    InvalidSize {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// The input ended inside a frame: the size is probably wrong, or the
    /// file is cut short.
    #[error("I420 frame {index}: input ends after {got} of {expected} bytes")]
    TruncatedFrame {
        /// Zero-based frame number.
        index: u64,
        /// Bytes present.
        got: usize,
        /// Bytes in one frame.
        expected: usize,
    },
}

/// Reads raw I420 frames of a fixed size from any [`Read`].
///
/// Use [`next_frame`](I420Reader::next_frame) or iterate: the iterator
/// yields `Result<Image, I420Error>` and ends after the first error.
#[derive(Debug)]
pub struct I420Reader<R> {
    reader: R,
    width: usize,
    height: usize,
    frame_len: usize,
    frames_read: u64,
    failed: bool,
}

impl<R: Read> I420Reader<R> {
    /// A reader of `width` x `height` frames.
    pub fn new(reader: R, width: usize, height: usize) -> Result<Self, I420Error> {
        // Check before `i420_len`, which would overflow on absurd sizes.
        let valid = width > 0
            && height > 0
            && width
                .checked_add(1)
                .and_then(|w1| w1.checked_mul(height.checked_add(1)?))
                .and_then(|n| n.checked_mul(2))
                .is_some();
        if !valid {
            return Err(I420Error::InvalidSize { width, height });
        }
        Ok(I420Reader {
            reader,
            width,
            height,
            frame_len: i420_len(width, height),
            frames_read: 0,
            failed: false,
        })
    }

    /// Number of frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The next frame, or `None` at a clean end of input.
    pub fn next_frame(&mut self) -> Result<Option<Image>, I420Error> {
        // The buffer grows with the data, so a wrong (huge) size given by a
        // caller costs memory only if the input really is that long.
        let mut buf = Vec::new();
        (&mut self.reader)
            .take(self.frame_len as u64)
            .read_to_end(&mut buf)?;
        if buf.is_empty() {
            return Ok(None);
        }
        if buf.len() < self.frame_len {
            return Err(I420Error::TruncatedFrame {
                index: self.frames_read,
                got: buf.len(),
                expected: self.frame_len,
            });
        }
        self.frames_read += 1;
        Ok(Image::from_i420(self.width, self.height, &buf))
    }
}

impl<R: Read> Iterator for I420Reader<R> {
    type Item = Result<Image, I420Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_frame() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes one frame as tightly packed I420 (stride padding dropped), the
/// same bytes `vpxdec --i420` writes for it.
pub fn write_i420_frame<W: Write>(writer: &mut W, frame: &Image) -> io::Result<()> {
    for p in &frame.planes {
        if p.stride == p.width {
            // Common case: one write per plane.
            writer.write_all(&p.data[..p.width * p.height])?;
        } else {
            for r in p.rows() {
                writer.write_all(r)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Plane;

    fn frame(w: usize, h: usize, seed: u8) -> Image {
        let b: Vec<u8> = (0..i420_len(w, h)).map(|i| (i as u8) ^ seed).collect();
        Image::from_i420(w, h, &b).unwrap()
    }

    #[test]
    fn round_trip_odd_size() {
        let frames = [frame(7, 5, 0), frame(7, 5, 0x55), frame(7, 5, 0xAA)];
        let mut out = Vec::new();
        for f in &frames {
            write_i420_frame(&mut out, f).unwrap();
        }
        // 7x5 luma + 2 * 4x3 chroma.
        assert_eq!(out.len(), 3 * (35 + 24));
        assert_eq!(&out[..59], &frames[0].to_i420()[..]);
        let got: Vec<Image> = I420Reader::new(&out[..], 7, 5)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, frames);
    }

    #[test]
    fn write_drops_stride_padding() {
        let f = frame(3, 3, 9);
        let mut padded = f.clone();
        padded.planes[0] = Plane {
            width: 3,
            height: 3,
            stride: 8,
            data: f.planes[0]
                .rows()
                .flat_map(|r| r.iter().copied().chain([0xEE; 5]))
                .collect(),
        };
        let mut out = Vec::new();
        write_i420_frame(&mut out, &padded).unwrap();
        assert_eq!(out, f.to_i420());
    }

    #[test]
    fn empty_input_is_no_frames() {
        let mut r = I420Reader::new(&[][..], 16, 16).unwrap();
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn truncated_frame() {
        let mut bytes = frame(4, 4, 1).to_i420();
        bytes.extend_from_slice(&[1, 2, 3]);
        let mut r = I420Reader::new(&bytes[..], 4, 4).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        assert!(matches!(
            r.next_frame(),
            Err(I420Error::TruncatedFrame {
                index: 1,
                got: 3,
                expected: 24
            })
        ));
        let mut r = I420Reader::new(&bytes[..], 4, 4).unwrap();
        assert_eq!(r.by_ref().count(), 2);
        assert!(r.next().is_none(), "iterator stops after an error");
    }

    #[test]
    fn invalid_sizes() {
        for (w, h) in [(0, 4), (4, 0), (usize::MAX, 2), (1 << 40, 1 << 40)] {
            assert!(matches!(
                I420Reader::new(&[][..], w, h),
                Err(I420Error::InvalidSize { .. })
            ));
        }
    }

    #[test]
    fn huge_declared_size_does_not_allocate_up_front() {
        // 60000x60000 is ~5 GB per frame; only 10 bytes exist.
        let mut r = I420Reader::new(&[7u8; 10][..], 60000, 60000).unwrap();
        assert!(matches!(
            r.next_frame(),
            Err(I420Error::TruncatedFrame { got: 10, .. })
        ));
    }
}
