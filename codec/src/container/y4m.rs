//! YUV4MPEG2 (`.y4m`) reading and writing, on top of the `y4m` crate.
//!
//! VP8 codes 8-bit 4:2:0 progressive pictures only, so the reader accepts
//! exactly that (`C420jpeg`, `C420paldv`, `C420mpeg2`, `C420` or no `C`
//! tag; `Ip`, `I?` or no `I` tag) and refuses everything else with an error
//! naming what it found. The `y4m` crate ignores the interlacing tag and
//! reports unknown colorspaces without naming them, so the header line is
//! read and checked here first and then handed to the crate.

use std::io::{self, Cursor, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::image::{chroma_size, i420_len, Image, Plane};

/// Largest width or height accepted. VP8 stores sizes in 14 bits; the cap
/// also bounds the frame buffer the `y4m` crate allocates from the header.
pub const MAX_Y4M_DIMENSION: usize = 16383;
/// Longest header line accepted (the `y4m` crate's own limit).
const MAX_HEADER_LEN: usize = 1024;
const MAGIC: &[u8] = b"YUV4MPEG2 ";
const SUPPORTED: &str =
    "8-bit 4:2:0 progressive (C420jpeg, C420paldv, C420mpeg2, C420 or no C tag)";

/// Errors from reading or writing Y4M.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The underlying reader or writer failed.
    #[error("Y4M I/O error: {0}")]
    Io(#[from] io::Error),
    /// The stream header is not a valid YUV4MPEG2 header.
    #[error("malformed Y4M header: {0}")]
    MalformedHeader(String),
    /// The colorspace is not 8-bit 4:2:0.
    #[error("unsupported Y4M colorspace C{found} ({kind}); supported: {SUPPORTED}")]
    UnsupportedColorspace {
        /// The value of the `C` tag, without the `C`.
        found: String,
        /// What it is, e.g. "4:2:2 chroma" or "10-bit samples".
        kind: &'static str,
    },
    /// The `I` tag says the video is interlaced or mixed.
    #[error("unsupported Y4M interlacing I{found} ({kind}); supported: {SUPPORTED}")]
    Interlaced {
        /// The value of the `I` tag, without the `I`.
        found: char,
        /// What it means.
        kind: &'static str,
    },
    /// A frame does not start with a valid `FRAME` line.
    #[error("Y4M frame {index}: malformed frame header")]
    MalformedFrameHeader {
        /// Zero-based frame number.
        index: u64,
    },
    /// The input ended inside a frame.
    #[error("Y4M frame {index}: input ends inside the frame ({expected} picture bytes expected)")]
    TruncatedFrame {
        /// Zero-based frame number.
        index: u64,
        /// Picture bytes a whole frame has.
        expected: usize,
    },
    /// A frame given to the writer has a different size from the stream.
    #[error("Y4M writer: frame is {got_w}x{got_h}, stream is {width}x{height}")]
    SizeMismatch {
        /// Stream width.
        width: usize,
        /// Stream height.
        height: usize,
        /// Frame width.
        got_w: usize,
        /// Frame height.
        got_h: usize,
    },
    /// Any other error reported by the `y4m` crate.
    #[error("Y4M: {0}")]
    Other(String),
}

/// The 4:2:0 chroma siting a Y4M stream declares. It does not change the
/// sample layout, only where chroma samples sit relative to luma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Y4mColorspace {
    /// `C420jpeg`: chroma centred between luma samples (what ffmpeg writes).
    C420jpeg,
    /// `C420paldv`: PAL DV siting.
    C420paldv,
    /// `C420mpeg2`: MPEG-2 siting.
    C420mpeg2,
    /// `C420` or no `C` tag.
    C420,
}

/// What a Y4M stream header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Y4mHeader {
    /// Luma width.
    pub width: usize,
    /// Luma height.
    pub height: usize,
    /// Frames per second as numerator and denominator (25:1 if absent, as
    /// ffmpeg assumes).
    pub framerate: (usize, usize),
    /// Pixel aspect ratio (1:1 if absent).
    pub pixel_aspect: (usize, usize),
    /// Chroma siting.
    pub colorspace: Y4mColorspace,
}

/// Classifies a `C` tag value.
fn colorspace(value: &str) -> Result<Y4mColorspace, Y4mError> {
    let unsupported = |kind| {
        Err(Y4mError::UnsupportedColorspace {
            found: value.to_owned(),
            kind,
        })
    };
    match value {
        "420jpeg" => Ok(Y4mColorspace::C420jpeg),
        "420paldv" => Ok(Y4mColorspace::C420paldv),
        "420mpeg2" => Ok(Y4mColorspace::C420mpeg2),
        "420" => Ok(Y4mColorspace::C420),
        v if v.starts_with("420p") => unsupported("4:2:0 with more than 8 bits per sample"),
        v if v.starts_with("422") => unsupported("4:2:2 chroma"),
        v if v.starts_with("444") => unsupported("4:4:4 chroma"),
        v if v.starts_with("411") => unsupported("4:1:1 chroma"),
        v if v.starts_with("mono") => unsupported("monochrome, no chroma planes"),
        _ => unsupported("unknown colorspace"),
    }
}

fn malformed(msg: impl Into<String>) -> Y4mError {
    Y4mError::MalformedHeader(msg.into())
}

fn parse_usize(tag: char, v: &str) -> Result<usize, Y4mError> {
    v.parse()
        .map_err(|_| malformed(format!("{tag} value {v:?} is not a number")))
}

fn parse_ratio(tag: char, v: &str) -> Result<(usize, usize), Y4mError> {
    let (n, d) = v
        .split_once(':')
        .ok_or_else(|| malformed(format!("{tag} value {v:?} is not N:D")))?;
    Ok((parse_usize(tag, n)?, parse_usize(tag, d)?))
}

/// Parses the parameters of a header line (without the magic and newline).
fn parse_header(params: &str) -> Result<Y4mHeader, Y4mError> {
    let (mut w, mut h) = (None, None);
    let mut framerate = (25, 1);
    let mut pixel_aspect = (1, 1);
    let mut cs = Y4mColorspace::C420;
    for tok in params.split(' ').filter(|t| !t.is_empty()) {
        let mut chars = tok.chars();
        let tag = chars.next().unwrap_or(' ');
        let v = chars.as_str();
        match tag {
            'W' => w = Some(parse_usize('W', v)?),
            'H' => h = Some(parse_usize('H', v)?),
            'F' => framerate = parse_ratio('F', v)?,
            'A' => pixel_aspect = parse_ratio('A', v)?,
            'C' => cs = colorspace(v)?,
            'I' => match v {
                "p" | "?" | "" => {}
                "t" => {
                    return Err(Y4mError::Interlaced {
                        found: 't',
                        kind: "interlaced, top field first",
                    })
                }
                "b" => {
                    return Err(Y4mError::Interlaced {
                        found: 'b',
                        kind: "interlaced, bottom field first",
                    })
                }
                "m" => {
                    return Err(Y4mError::Interlaced {
                        found: 'm',
                        kind: "mixed progressive and interlaced",
                    })
                }
                other => return Err(malformed(format!("unknown interlacing value I{other}"))),
            },
            // X (extensions) and unknown tags are ignored, as the spec asks.
            _ => {}
        }
    }
    let width = w.ok_or_else(|| malformed("no W (width) parameter"))?;
    let height = h.ok_or_else(|| malformed("no H (height) parameter"))?;
    if width == 0 || height == 0 || width > MAX_Y4M_DIMENSION || height > MAX_Y4M_DIMENSION {
        return Err(malformed(format!(
            "size {width}x{height} outside 1..={MAX_Y4M_DIMENSION}"
        )));
    }
    if framerate.0 == 0 || framerate.1 == 0 {
        return Err(malformed(format!(
            "frame rate {}:{} is not positive",
            framerate.0, framerate.1
        )));
    }
    Ok(Y4mHeader {
        width,
        height,
        framerate,
        pixel_aspect,
        colorspace: cs,
    })
}

/// Counts the bytes read through it, so that "end of input" from the `y4m`
/// crate can be told apart: nothing consumed means a clean end, anything
/// consumed means a truncated frame.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads 8-bit 4:2:0 Y4M frames as [`Image`]s from any [`Read`].
///
/// Use [`next_frame`](Y4mReader::next_frame) or iterate: the iterator yields
/// `Result<Image, Y4mError>` and ends after the first error.
pub struct Y4mReader<R: Read> {
    decoder: ::y4m::Decoder<io::Chain<Cursor<Vec<u8>>, Counting<R>>>,
    header: Y4mHeader,
    count: Arc<AtomicU64>,
    frames_read: u64,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for Y4mReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mReader")
            .field("header", &self.header)
            .field("frames_read", &self.frames_read)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Y4mReader<R> {
    /// Reads and checks the stream header.
    pub fn new(mut reader: R) -> Result<Self, Y4mError> {
        // Byte by byte, so that nothing after the header line is consumed.
        let mut line = Vec::new();
        loop {
            let mut b = [0u8; 1];
            match reader.read(&mut b) {
                Ok(0) => return Err(malformed("input ends inside the header line")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            line.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
            if line.len() >= MAX_HEADER_LEN {
                return Err(malformed(format!(
                    "no end of header line in the first {MAX_HEADER_LEN} bytes"
                )));
            }
            if line.len() == MAGIC.len() && line != MAGIC {
                return Err(malformed("does not start with \"YUV4MPEG2 \""));
            }
        }
        if !line.starts_with(MAGIC) {
            return Err(malformed("does not start with \"YUV4MPEG2 \""));
        }
        let params = std::str::from_utf8(&line[MAGIC.len()..line.len() - 1])
            .map_err(|_| malformed("header is not UTF-8"))?;
        let header = parse_header(params)?;

        let count = Arc::new(AtomicU64::new(0));
        let input = Cursor::new(line).chain(Counting {
            inner: reader,
            count: Arc::clone(&count),
        });
        let limits = ::y4m::Limits {
            bytes: i420_len(header.width, header.height),
        };
        let decoder = ::y4m::Decoder::new_with_limits(input, limits)
            .map_err(|e| malformed(format!("rejected by the y4m crate: {e}")))?;
        Ok(Y4mReader {
            decoder,
            header,
            count,
            frames_read: 0,
            failed: false,
        })
    }

    /// The stream header.
    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// Number of frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The next frame, or `None` at a clean end of input.
    pub fn next_frame(&mut self) -> Result<Option<Image>, Y4mError> {
        let index = self.frames_read;
        let before = self.count.load(Ordering::Relaxed);
        let (w, h) = (self.header.width, self.header.height);
        match self.decoder.read_frame() {
            Ok(f) => {
                let (cw, ch) = chroma_size(w, h);
                let plane = |pw, ph, data: &[u8]| Plane {
                    width: pw,
                    height: ph,
                    stride: pw,
                    data: data.to_vec(),
                };
                let frame = Image {
                    width: w,
                    height: h,
                    planes: [
                        plane(w, h, f.get_y_plane()),
                        plane(cw, ch, f.get_u_plane()),
                        plane(cw, ch, f.get_v_plane()),
                    ],
                };
                self.frames_read += 1;
                Ok(Some(frame))
            }
            Err(::y4m::Error::EOF) => {
                if self.count.load(Ordering::Relaxed) == before {
                    Ok(None)
                } else {
                    Err(Y4mError::TruncatedFrame {
                        index,
                        expected: i420_len(w, h),
                    })
                }
            }
            Err(::y4m::Error::ParseError(_)) => Err(Y4mError::MalformedFrameHeader { index }),
            Err(::y4m::Error::IoError(e)) => Err(Y4mError::Io(e)),
            Err(e) => Err(Y4mError::Other(e.to_string())),
        }
    }
}

impl<R: Read> Iterator for Y4mReader<R> {
    type Item = Result<Image, Y4mError>;

    fn next(&mut self) -> Option<Self::Item> {
        // After an error the position in the stream is unknown.
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

/// Writes [`Image`]s as a `C420jpeg` Y4M stream to any [`Write`].
pub struct Y4mWriter<W: Write> {
    encoder: ::y4m::Encoder<W>,
    width: usize,
    height: usize,
    /// Scratch buffer for frames whose planes have stride padding.
    packed: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for Y4mWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mWriter")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header: `W H F(num:den) C420jpeg`, progressive.
    pub fn new(
        writer: W,
        width: usize,
        height: usize,
        framerate: (usize, usize),
    ) -> Result<Self, Y4mError> {
        if width == 0 || height == 0 || framerate.0 == 0 || framerate.1 == 0 {
            return Err(malformed(format!(
                "cannot write size {width}x{height} at {}:{} fps",
                framerate.0, framerate.1
            )));
        }
        let encoder = ::y4m::encode(width, height, ::y4m::Ratio::new(framerate.0, framerate.1))
            .with_colorspace(::y4m::Colorspace::C420jpeg)
            .write_header(writer)
            .map_err(y4m_write_error)?;
        Ok(Y4mWriter {
            encoder,
            width,
            height,
            packed: Vec::new(),
        })
    }

    /// Appends one frame; it must have the stream's size.
    pub fn write_frame(&mut self, frame: &Image) -> Result<(), Y4mError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(Y4mError::SizeMismatch {
                width: self.width,
                height: self.height,
                got_w: frame.width,
                got_h: frame.height,
            });
        }
        // The crate wants tightly packed planes; reuse one buffer for them.
        self.packed.clear();
        let mut ends = [0usize; 3];
        for (i, p) in frame.planes.iter().enumerate() {
            for r in p.rows() {
                self.packed.extend_from_slice(r);
            }
            ends[i] = self.packed.len();
        }
        let planes = [
            &self.packed[..ends[0]],
            &self.packed[ends[0]..ends[1]],
            &self.packed[ends[1]..ends[2]],
        ];
        self.encoder
            .write_frame(&::y4m::Frame::new(planes, None))
            .map_err(y4m_write_error)
    }
}

fn y4m_write_error(e: ::y4m::Error) -> Y4mError {
    match e {
        ::y4m::Error::IoError(e) => Y4mError::Io(e),
        // The crate maps a short write (UnexpectedEof) to its EOF variant.
        ::y4m::Error::EOF => Y4mError::Io(io::ErrorKind::UnexpectedEof.into()),
        e => Y4mError::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_frame(w: usize, h: usize, seed: u8) -> Image {
        let bytes: Vec<u8> = (0..i420_len(w, h))
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect();
        Image::from_i420(w, h, &bytes).unwrap()
    }

    fn stream(header: &str, frames: &[&[u8]]) -> Vec<u8> {
        let mut v = format!("YUV4MPEG2 {header}\n").into_bytes();
        for f in frames {
            v.extend_from_slice(b"FRAME\n");
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn round_trip_odd_size() {
        let frames = [test_frame(5, 3, 1), test_frame(5, 3, 99)];
        let mut out = Vec::new();
        let mut w = Y4mWriter::new(&mut out, 5, 3, (30000, 1001)).unwrap();
        for f in &frames {
            w.write_frame(f).unwrap();
        }
        drop(w);
        assert!(out.starts_with(b"YUV4MPEG2 W5 H3 F30000:1001 C420jpeg\nFRAME\n"));
        assert_eq!(out.len(), 37 + 2 * (6 + i420_len(5, 3)));

        let mut r = Y4mReader::new(&out[..]).unwrap();
        assert_eq!(
            *r.header(),
            Y4mHeader {
                width: 5,
                height: 3,
                framerate: (30000, 1001),
                pixel_aspect: (1, 1),
                colorspace: Y4mColorspace::C420jpeg
            }
        );
        assert_eq!(r.next_frame().unwrap().as_ref(), Some(&frames[0]));
        assert_eq!(r.next_frame().unwrap().as_ref(), Some(&frames[1]));
        assert_eq!(r.next_frame().unwrap(), None);
        assert_eq!(r.frames_read(), 2);
    }

    #[test]
    fn writer_drops_stride_padding() {
        let f = test_frame(4, 2, 3);
        let mut padded = f.clone();
        for p in &mut padded.planes {
            let mut data = Vec::new();
            for r in p.rows() {
                data.extend_from_slice(r);
                data.extend_from_slice(&[0xEE; 3]);
            }
            p.stride = p.width + 3;
            p.data = data;
        }
        let mut out = Vec::new();
        let mut w = Y4mWriter::new(&mut out, 4, 2, (25, 1)).unwrap();
        w.write_frame(&padded).unwrap();
        drop(w);
        let got: Vec<Image> = Y4mReader::new(&out[..])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, vec![f]);
    }

    #[test]
    fn writer_rejects_wrong_size() {
        let mut w = Y4mWriter::new(io::sink(), 4, 2, (25, 1)).unwrap();
        assert!(matches!(
            w.write_frame(&test_frame(2, 2, 0)),
            Err(Y4mError::SizeMismatch {
                width: 4,
                height: 2,
                got_w: 2,
                got_h: 2
            })
        ));
    }

    #[test]
    fn accepts_all_420_8bit_variants_and_defaults() {
        let f = test_frame(3, 3, 5).to_i420();
        for (tag, cs) in [
            (" C420jpeg", Y4mColorspace::C420jpeg),
            (" C420paldv", Y4mColorspace::C420paldv),
            (" C420mpeg2", Y4mColorspace::C420mpeg2),
            (" C420", Y4mColorspace::C420),
            ("", Y4mColorspace::C420),
        ] {
            let s = stream(&format!("W3 H3 F30:1 Ip A1:1{tag} XYSCSS=420JPEG"), &[&f]);
            let mut r = Y4mReader::new(&s[..]).unwrap();
            assert_eq!(r.header().colorspace, cs, "tag {tag:?}");
            assert_eq!(r.next_frame().unwrap().unwrap().to_i420(), f);
        }
        // No F, A or I: defaults.
        let s = stream("W3 H3", &[&f]);
        let r = Y4mReader::new(&s[..]).unwrap();
        assert_eq!(r.header().framerate, (25, 1));
        assert_eq!(r.header().pixel_aspect, (1, 1));
    }

    #[test]
    fn frame_parameters_are_allowed() {
        let f = test_frame(2, 2, 0).to_i420();
        let mut s = b"YUV4MPEG2 W2 H2 F25:1\nFRAME Ixyz\n".to_vec();
        s.extend_from_slice(&f);
        let frames: Vec<_> = Y4mReader::new(&s[..]).unwrap().collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].as_ref().unwrap().to_i420(), f);
    }

    fn header_err(header: &str) -> Y4mError {
        let s = stream(header, &[]);
        Y4mReader::new(&s[..]).expect_err(header)
    }

    #[test]
    fn unsupported_colorspaces_say_what_was_found() {
        for (c, kind_part) in [
            ("422", "4:2:2"),
            ("422p10", "4:2:2"),
            ("444", "4:4:4"),
            ("444alpha", "4:4:4"),
            ("mono", "monochrome"),
            ("mono12", "monochrome"),
            ("420p10", "more than 8 bits"),
            ("420p12", "more than 8 bits"),
            ("411", "4:1:1"),
            ("weird", "unknown"),
        ] {
            let e = header_err(&format!("W4 H4 F25:1 C{c}"));
            match &e {
                Y4mError::UnsupportedColorspace { found, kind } => {
                    assert_eq!(found, c);
                    assert!(kind.contains(kind_part), "{c}: {kind}");
                }
                other => panic!("C{c}: expected UnsupportedColorspace, got {other:?}"),
            }
            let msg = e.to_string();
            assert!(msg.contains(&format!("C{c}")), "{msg}");
            assert!(msg.contains("8-bit 4:2:0"), "{msg}");
        }
    }

    #[test]
    fn interlaced_is_refused() {
        for (i, kind_part) in [('t', "top"), ('b', "bottom"), ('m', "mixed")] {
            let e = header_err(&format!("W4 H4 F25:1 I{i} C420jpeg"));
            assert!(
                matches!(&e, Y4mError::Interlaced { found, kind } if *found == i && kind.contains(kind_part)),
                "{e:?}"
            );
            assert!(e.to_string().contains("progressive"));
        }
    }

    #[test]
    fn malformed_headers() {
        for header in [
            "H4 F25:1",
            "W4 F25:1",
            "W0 H4",
            "W4 H-1",
            "Wabc H4",
            "W4 H4 F25",
            "W4 H4 F25:0",
            "W4 H4 Iz",
            "W99999 H4",
        ] {
            assert!(
                matches!(header_err(header), Y4mError::MalformedHeader(_)),
                "{header}"
            );
        }
        for bad in [
            &b""[..],
            b"YUV4MPEG2",
            b"YUV4MPEG W4 H4\n",
            b"RIFF\x00\x00\x00\x00WAVEfmt ",
            b"YUV4MPEG2 W4 H4",
        ] {
            assert!(
                matches!(Y4mReader::new(bad), Err(Y4mError::MalformedHeader(_))),
                "{bad:?}"
            );
        }
        let long = [b' '; 5000];
        let mut s = b"YUV4MPEG2 W4 H4".to_vec();
        s.extend_from_slice(&long);
        assert!(matches!(
            Y4mReader::new(&s[..]),
            Err(Y4mError::MalformedHeader(m)) if m.contains("end of header")
        ));
    }

    #[test]
    fn truncated_frame_vs_clean_end() {
        let f = test_frame(4, 4, 2).to_i420();
        let s = stream("W4 H4 F25:1", &[&f, &f]);
        // Clean end after two frames.
        let r = Y4mReader::new(&s[..]).unwrap();
        assert_eq!(r.filter(Result::is_ok).count(), 2);
        // Cut inside the second frame's picture data, and inside its
        // FRAME line.
        for cut in [s.len() - 1, s.len() - f.len() - 3] {
            let mut r = Y4mReader::new(&s[..cut]).unwrap();
            assert!(r.next_frame().unwrap().is_some());
            match r.next_frame() {
                Err(Y4mError::TruncatedFrame { index, expected }) => {
                    assert_eq!((index, expected), (1, 24))
                }
                other => panic!("cut {cut}: expected TruncatedFrame, got {other:?}"),
            }
            // The iterator stops after the error.
            let mut r = Y4mReader::new(&s[..cut]).unwrap();
            assert_eq!(r.by_ref().count(), 2);
            assert!(r.next().is_none());
        }
    }

    #[test]
    fn bad_frame_marker() {
        let f = test_frame(2, 2, 0).to_i420();
        let mut s = stream("W2 H2", &[&f]);
        s.extend_from_slice(b"FRAMX\n");
        s.extend_from_slice(&f);
        let mut r = Y4mReader::new(&s[..]).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        assert!(matches!(
            r.next_frame(),
            Err(Y4mError::MalformedFrameHeader { index: 1 })
        ));
    }

    #[test]
    fn reads_the_shared_carphone_clip() {
        // Real ffmpeg output (with Ip, A128:117, C420mpeg2 and an X tag). Lives outside the
        // repo, so skip when it is absent, as the shared/ README asks.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/clips/carphone_176x144_120f.y4m"
        );
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("skipping: {path} not found");
            return;
        };
        let r = Y4mReader::new(&bytes[..]).unwrap();
        let h = *r.header();
        assert_eq!((h.width, h.height), (176, 144));
        assert_eq!(h.framerate, (30000, 1001));
        assert_eq!(h.pixel_aspect, (128, 117));
        assert_eq!(h.colorspace, Y4mColorspace::C420mpeg2);
        let frames: Vec<Image> = r.map(Result::unwrap).collect();
        assert_eq!(frames.len(), 120);
        // The last frame's bytes are the last bytes of the file.
        let last = frames[119].to_i420();
        assert_eq!(&bytes[bytes.len() - last.len()..], &last[..]);
    }
}
