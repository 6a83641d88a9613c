//! IVF, the simple frame container libvpx's tools read and write.
//!
//! Layout (all integers little-endian): a 32-byte file header
//! (`"DKIF"`, version u16, header length u16, fourcc, width u16, height u16,
//! timebase denominator u32, timebase numerator u32, frame count u32, unused
//! u32), then per frame a 12-byte header (size u32, pts u64) and `size` bytes.
//!
//! The reader trusts nothing in the file: sizes are checked against a limit
//! and frame buffers grow only as bytes actually arrive, so a corrupt or
//! hostile size field cannot make it allocate gigabytes up front.
//!
//! The writer lays its bytes out with the `ivf` crate (rav1e's muxer). That
//! crate writes to a `dyn Write` and panics if the write fails, and its
//! header always says `AV01` with a frame count of 0; so the header and
//! each frame record are built in memory (where writing cannot fail), the
//! header's fourcc and frame count set from [`IvfHeader`], and only then
//! written out, with I/O errors returned as [`IvfError::Io`].

use std::io::{self, Read, Seek, SeekFrom, Write};

/// The four bytes every IVF file starts with.
pub const IVF_SIGNATURE: [u8; 4] = *b"DKIF";
/// Length of the IVF file header, as written by libvpx.
pub const IVF_HEADER_LEN: usize = 32;
/// Length of the header in front of each frame.
pub const IVF_FRAME_HEADER_LEN: usize = 12;
/// Default largest frame [`IvfReader`] accepts: 256 MiB, far above any real
/// VP8 frame, small enough that a garbage size field is caught early.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 256 << 20;
/// Byte offset of the frame count inside the file header.
const FRAME_COUNT_OFFSET: u64 = 24;

/// Errors from reading or writing IVF.
#[derive(Debug, thiserror::Error)]
pub enum IvfError {
    /// The underlying reader or writer failed.
    #[error("IVF I/O error: {0}")]
    Io(#[from] io::Error),
    /// The input ended before the 32-byte file header was complete.
    #[error("not an IVF file: input ends after {got} bytes, inside the 32-byte header")]
    TruncatedHeader {
        /// Bytes present.
        got: usize,
    },
    /// The file does not start with `DKIF`.
    #[error("not an IVF file: signature is {found:?}, expected \"DKIF\"")]
    BadSignature {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The header-length field is smaller than the header itself.
    #[error("bad IVF header length {found}: must be at least 32")]
    BadHeaderLength {
        /// The value of the field.
        found: u16,
    },
    /// The input ended inside a 12-byte frame header.
    #[error("IVF frame {index}: input ends inside its frame header ({got} of 12 bytes)")]
    TruncatedFrameHeader {
        /// Zero-based frame number.
        index: u64,
        /// Bytes present.
        got: usize,
    },
    /// A frame header declares a size above the reader's limit.
    #[error("IVF frame {index}: declared size {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Zero-based frame number.
        index: u64,
        /// Declared size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The input ended inside a frame's data.
    #[error("IVF frame {index}: truncated, {got} of {size} bytes present")]
    TruncatedFrame {
        /// Zero-based frame number.
        index: u64,
        /// Bytes present.
        got: usize,
        /// Declared size.
        size: u32,
    },
    /// A value does not fit its header field when writing.
    #[error("cannot write IVF: {0}")]
    Unrepresentable(&'static str),
}

/// The IVF file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IvfHeader {
    /// Codec tag, `*b"VP80"` for VP8. Not checked by the reader: some
    /// official VP8 vectors say `I420` here.
    pub fourcc: [u8; 4],
    /// Width in pixels as the header states it (the stream may differ).
    pub width: u16,
    /// Height in pixels as the header states it (the stream may differ).
    pub height: u16,
    /// Timebase numerator: a pts unit lasts `timebase_num / timebase_den`
    /// seconds.
    pub timebase_num: u32,
    /// Timebase denominator.
    pub timebase_den: u32,
    /// Number of frames the header claims. Writers that cannot seek leave
    /// it as given, so readers should not rely on it.
    pub frame_count: u32,
}

impl IvfHeader {
    /// A VP8 header (fourcc `VP80`) with a zero frame count.
    pub fn vp8(width: u16, height: u16, timebase_num: u32, timebase_den: u32) -> Self {
        IvfHeader {
            fourcc: *b"VP80",
            width,
            height,
            timebase_num,
            timebase_den,
            frame_count: 0,
        }
    }

    /// The 32 header bytes, version 0.
    pub fn to_bytes(&self) -> [u8; IVF_HEADER_LEN] {
        let mut v = Vec::with_capacity(IVF_HEADER_LEN);
        // libvpx stores the timebase as "rate" (den) then "scale" (num);
        // the crate calls them frame rate numerator and denominator.
        ::ivf::write_ivf_header(
            &mut v,
            self.width.into(),
            self.height.into(),
            self.timebase_den as usize,
            self.timebase_num as usize,
        );
        let mut b: [u8; IVF_HEADER_LEN] =
            v.try_into().expect("the ivf crate writes a 32-byte header");
        // The crate hard-codes these two fields.
        b[8..12].copy_from_slice(&self.fourcc);
        b[24..28].copy_from_slice(&self.frame_count.to_le_bytes());
        b
    }

    /// Parses the first 32 bytes of a file. Returns the header and the
    /// header-length field, which may exceed 32.
    fn parse(b: &[u8; IVF_HEADER_LEN]) -> Result<(Self, u16), IvfError> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let sig = [b[0], b[1], b[2], b[3]];
        if sig != IVF_SIGNATURE {
            return Err(IvfError::BadSignature { found: sig });
        }
        // The version field is not checked: libvpx only warns about it.
        let header_len = u16_at(6);
        if (header_len as usize) < IVF_HEADER_LEN {
            return Err(IvfError::BadHeaderLength { found: header_len });
        }
        Ok((
            IvfHeader {
                fourcc: [b[8], b[9], b[10], b[11]],
                width: u16_at(12),
                height: u16_at(14),
                timebase_den: u32_at(16),
                timebase_num: u32_at(20),
                frame_count: u32_at(24),
            },
            header_len,
        ))
    }
}

/// One compressed frame from an IVF file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IvfFrame {
    /// Presentation timestamp in timebase units.
    pub pts: u64,
    /// The compressed frame.
    pub data: Vec<u8>,
}

/// Reads as many bytes as fit in `buf` unless the input ends first; returns
/// how many were read. Unlike `read_exact`, this tells a clean end of input
/// (0) from a truncated record.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads IVF frames from any [`Read`]; a `&[u8]` works for data in memory.
///
/// Use [`next_frame`](IvfReader::next_frame) or iterate: the iterator yields
/// `Result<IvfFrame, IvfError>` and ends after the first error.
#[derive(Debug)]
pub struct IvfReader<R> {
    reader: R,
    header: IvfHeader,
    frames_read: u64,
    max_frame_size: u32,
    failed: bool,
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut reader: R) -> Result<Self, IvfError> {
        let mut b = [0u8; IVF_HEADER_LEN];
        let got = read_full(&mut reader, &mut b)?;
        if got < IVF_HEADER_LEN {
            // Report a wrong signature first: a short non-IVF file is more
            // usefully described as "not IVF" than as "truncated".
            if got >= 4 && b[0..4] != IVF_SIGNATURE {
                return Err(IvfError::BadSignature {
                    found: [b[0], b[1], b[2], b[3]],
                });
            }
            return Err(IvfError::TruncatedHeader { got });
        }
        let (header, header_len) = IvfHeader::parse(&b)?;
        // A longer header is allowed and its extra bytes skipped, so a future
        // header extension does not make old files unreadable.
        let extra = header_len as usize - IVF_HEADER_LEN;
        if extra > 0 {
            let skipped = io::copy(&mut (&mut reader).take(extra as u64), &mut io::sink())?;
            if skipped < extra as u64 {
                return Err(IvfError::TruncatedHeader {
                    got: IVF_HEADER_LEN + skipped as usize,
                });
            }
        }
        Ok(IvfReader {
            reader,
            header,
            frames_read: 0,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            failed: false,
        })
    }

    /// Sets the largest frame size accepted (default
    /// [`DEFAULT_MAX_FRAME_SIZE`]).
    pub fn with_max_frame_size(mut self, max: u32) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// Number of frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The next frame, or `None` at a clean end of input (the input ends
    /// exactly between frames).
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>, IvfError> {
        let index = self.frames_read;
        let mut fh = [0u8; IVF_FRAME_HEADER_LEN];
        let got = read_full(&mut self.reader, &mut fh)?;
        if got == 0 {
            return Ok(None);
        }
        if got < IVF_FRAME_HEADER_LEN {
            return Err(IvfError::TruncatedFrameHeader { index, got });
        }
        let size = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]);
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&fh[4..12]);
        let pts = u64::from_le_bytes(pts);
        if size > self.max_frame_size {
            return Err(IvfError::FrameTooLarge {
                index,
                size: size.into(),
                limit: self.max_frame_size.into(),
            });
        }
        // `read_to_end` grows the buffer as bytes arrive, so the declared
        // size costs memory only once the data is really there.
        let mut data = Vec::new();
        (&mut self.reader)
            .take(u64::from(size))
            .read_to_end(&mut data)?;
        if data.len() < size as usize {
            return Err(IvfError::TruncatedFrame {
                index,
                got: data.len(),
                size,
            });
        }
        self.frames_read += 1;
        Ok(Some(IvfFrame { pts, data }))
    }
}

impl<R: Read> Iterator for IvfReader<R> {
    type Item = Result<IvfFrame, IvfError>;

    fn next(&mut self) -> Option<Self::Item> {
        // After an error the stream position is unknown; stop rather than
        // read garbage as frames.
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

/// Writes an IVF file to any [`Write`].
///
/// The header is written at once with the frame count it was given. If the
/// writer can also [`Seek`], [`finish`](IvfWriter::finish) patches the count
/// to the number of frames actually written; otherwise use
/// [`into_inner`](IvfWriter::into_inner) and the count stays as given.
#[derive(Debug)]
pub struct IvfWriter<W: Write> {
    writer: W,
    frames_written: u32,
    /// Bytes written since the start of the header, to find it again when
    /// patching without needing `Seek` at construction.
    bytes_written: u64,
    /// The frame record being written, kept to reuse its allocation.
    record: Vec<u8>,
}

impl<W: Write> IvfWriter<W> {
    /// Writes the 32-byte header.
    pub fn new(mut writer: W, header: &IvfHeader) -> Result<Self, IvfError> {
        writer.write_all(&header.to_bytes())?;
        Ok(IvfWriter {
            writer,
            frames_written: 0,
            bytes_written: IVF_HEADER_LEN as u64,
            record: Vec::new(),
        })
    }

    /// Appends one frame.
    pub fn write_frame(&mut self, pts: u64, data: &[u8]) -> Result<(), IvfError> {
        let size = u32::try_from(data.len())
            .map_err(|_| IvfError::Unrepresentable("frame larger than 4 GiB"))?;
        let count = self
            .frames_written
            .checked_add(1)
            .ok_or(IvfError::Unrepresentable("more than 2^32-1 frames"))?;
        // The record is built in memory (where the crate cannot fail):
        // one copy of the frame, small next to coding it.
        self.record.clear();
        ::ivf::write_ivf_frame(&mut self.record, pts, data);
        debug_assert_eq!(self.record[..4], size.to_le_bytes());
        self.writer.write_all(&self.record)?;
        self.frames_written = count;
        self.bytes_written += (IVF_FRAME_HEADER_LEN + data.len()) as u64;
        Ok(())
    }

    /// Number of frames written so far.
    pub fn frames_written(&self) -> u32 {
        self.frames_written
    }

    /// Flushes and gives back the writer without touching the header.
    pub fn into_inner(mut self) -> Result<W, IvfError> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Patches the header's frame count to the frames written, leaves the
    /// position at the end of the data, flushes and gives back the writer.
    pub fn finish(mut self) -> Result<W, IvfError> {
        let back = self.bytes_written - FRAME_COUNT_OFFSET;
        let back = i64::try_from(back).map_err(|_| IvfError::Unrepresentable("file too long"))?;
        self.writer.seek(SeekFrom::Current(-back))?;
        self.writer.write_all(&self.frames_written.to_le_bytes())?;
        self.writer.seek(SeekFrom::Current(back - 4))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sample_file() -> Vec<u8> {
        let mut w = IvfWriter::new(Vec::new(), &IvfHeader::vp8(176, 144, 1, 30)).unwrap();
        w.write_frame(0, b"key").unwrap();
        w.write_frame(1, &[]).unwrap();
        w.write_frame(7, &[9u8; 1000]).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample_file();
        assert_eq!(bytes.len(), 32 + 3 * 12 + 3 + 1000);
        let mut r = IvfReader::new(&bytes[..]).unwrap();
        let h = *r.header();
        assert_eq!(h.fourcc, *b"VP80");
        assert_eq!((h.width, h.height), (176, 144));
        assert_eq!((h.timebase_num, h.timebase_den), (1, 30));
        assert_eq!(
            h.frame_count, 0,
            "non-seeking writer leaves the count as given"
        );
        assert_eq!(
            r.next_frame().unwrap(),
            Some(IvfFrame {
                pts: 0,
                data: b"key".to_vec()
            })
        );
        let rest: Vec<IvfFrame> = r.map(Result::unwrap).collect();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].pts, 1);
        assert!(rest[0].data.is_empty());
        assert_eq!(rest[1].pts, 7);
        assert_eq!(rest[1].data, vec![9u8; 1000]);
    }

    #[test]
    fn header_bytes_match_libvpx_layout() {
        let mut h = IvfHeader::vp8(0x0102, 0x0304, 1, 30);
        h.frame_count = 5;
        let b = h.to_bytes();
        assert_eq!(&b[0..4], b"DKIF");
        assert_eq!(&b[4..8], &[0, 0, 32, 0]);
        assert_eq!(&b[8..12], b"VP80");
        assert_eq!(&b[12..16], &[2, 1, 4, 3]);
        assert_eq!(&b[16..20], &[30, 0, 0, 0], "rate (den) comes first");
        assert_eq!(&b[20..24], &[1, 0, 0, 0]);
        assert_eq!(&b[24..28], &[5, 0, 0, 0]);
        assert_eq!(&b[28..32], &[0; 4]);
    }

    #[test]
    fn frame_record_bytes_match_libvpx_layout() {
        let mut w = IvfWriter::new(Vec::new(), &IvfHeader::vp8(2, 2, 1, 25)).unwrap();
        w.write_frame(0x0102_0304_0506_0708, b"abc").unwrap();
        let b = w.into_inner().unwrap();
        assert_eq!(&b[32..36], &[3, 0, 0, 0], "size, little-endian u32");
        assert_eq!(
            &b[36..44],
            &[8, 7, 6, 5, 4, 3, 2, 1],
            "pts, little-endian u64"
        );
        assert_eq!(&b[44..], b"abc");
    }

    #[test]
    fn write_errors_are_returned_not_panics() {
        #[derive(Debug)]
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = IvfWriter::new(Full, &IvfHeader::vp8(2, 2, 1, 25)).unwrap_err();
        assert!(matches!(e, IvfError::Io(_)), "{e}");
    }

    #[test]
    fn finish_patches_frame_count_and_keeps_position() {
        let mut w = IvfWriter::new(Cursor::new(Vec::new()), &IvfHeader::vp8(2, 2, 1, 25)).unwrap();
        for i in 0..4 {
            w.write_frame(i, &[i as u8; 3]).unwrap();
        }
        let mut cur = w.finish().unwrap();
        let end = cur.position();
        // Appending after finish must go to the end, not over the data.
        cur.write_all(b"x").unwrap();
        let bytes = cur.into_inner();
        assert_eq!(end as usize, 32 + 4 * 15);
        assert_eq!(bytes.len(), end as usize + 1);
        let r = IvfReader::new(&bytes[..end as usize]).unwrap();
        assert_eq!(r.header().frame_count, 4);
        assert_eq!(r.count(), 4);
    }

    #[test]
    fn finish_works_after_a_prefix_in_the_same_file() {
        // The header need not be at offset 0 of the writer.
        let mut cur = Cursor::new(Vec::new());
        cur.write_all(b"prefix").unwrap();
        let mut w = IvfWriter::new(cur, &IvfHeader::vp8(2, 2, 1, 25)).unwrap();
        w.write_frame(0, b"a").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let r = IvfReader::new(&bytes[6..]).unwrap();
        assert_eq!(r.header().frame_count, 1);
    }

    #[test]
    fn wrong_signature() {
        let mut bytes = sample_file();
        bytes[0..4].copy_from_slice(b"RIFF");
        match IvfReader::new(&bytes[..]) {
            Err(IvfError::BadSignature { found }) => assert_eq!(&found, b"RIFF"),
            other => panic!("expected BadSignature, got {other:?}"),
        }
        // Short garbage is "not IVF", not "truncated".
        assert!(matches!(
            IvfReader::new(&b"GIF89a"[..]),
            Err(IvfError::BadSignature { .. })
        ));
    }

    #[test]
    fn truncated_header() {
        let bytes = sample_file();
        for len in [0, 3, 4, 31] {
            match IvfReader::new(&bytes[..len]) {
                Err(IvfError::TruncatedHeader { got }) => assert_eq!(got, len),
                other => panic!("len {len}: expected TruncatedHeader, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_header_length() {
        let mut bytes = sample_file();
        bytes[6] = 16;
        assert!(matches!(
            IvfReader::new(&bytes[..]),
            Err(IvfError::BadHeaderLength { found: 16 })
        ));
    }

    #[test]
    fn longer_header_is_skipped() {
        let orig = sample_file();
        let mut bytes = orig[..32].to_vec();
        bytes[6] = 40;
        bytes.extend_from_slice(&[0xAA; 8]);
        bytes.extend_from_slice(&orig[32..]);
        let r = IvfReader::new(&bytes[..]).unwrap();
        let frames: Vec<_> = r.map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data, b"key");
        // ...but the extra bytes must exist.
        assert!(matches!(
            IvfReader::new(&bytes[..36]),
            Err(IvfError::TruncatedHeader { got: 36 })
        ));
    }

    #[test]
    fn truncated_frame_header_and_data() {
        let bytes = sample_file();
        // Cut inside the second frame's 12-byte header.
        let cut = 32 + 12 + 3 + 5;
        let mut r = IvfReader::new(&bytes[..cut]).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::TruncatedFrameHeader { index: 1, got: 5 })
        ));
        // Cut inside the third frame's data.
        let cut = bytes.len() - 10;
        let mut r = IvfReader::new(&bytes[..cut]).unwrap();
        let items: Vec<_> = r.by_ref().collect();
        assert_eq!(
            items.len(),
            3,
            "two frames, one error, then the iterator stops"
        );
        assert!(matches!(
            items[2],
            Err(IvfError::TruncatedFrame {
                index: 2,
                got: 990,
                size: 1000
            })
        ));
        assert!(r.next().is_none());
    }

    /// A reader over a few bytes that fails the test if it is handed a huge
    /// buffer, which would mean the caller allocated for the declared frame
    /// size before the data existed.
    struct Stingy<'a>(&'a [u8]);
    impl Read for Stingy<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(
                buf.len() <= 1 << 20,
                "read into a {} byte buffer",
                buf.len()
            );
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn absurd_frame_size_is_rejected_without_allocating() {
        let mut bytes = IvfHeader::vp8(16, 16, 1, 30).to_bytes().to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(b"tiny");
        let mut r = IvfReader::new(Stingy(&bytes)).unwrap();
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::FrameTooLarge {
                index: 0,
                size: 0xFFFF_FFFF,
                limit
            }) if limit == u64::from(DEFAULT_MAX_FRAME_SIZE)
        ));

        // Just under the limit: the frame is declared as 200 MiB but only 4
        // bytes exist. The reader must report truncation, and its buffer
        // must track the data, not the declared size.
        let mut bytes = IvfHeader::vp8(16, 16, 1, 30).to_bytes().to_vec();
        bytes.extend_from_slice(&(200u32 << 20).to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(b"tiny");
        let mut r = IvfReader::new(Stingy(&bytes)).unwrap();
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::TruncatedFrame {
                index: 0,
                got: 4,
                ..
            })
        ));
    }

    #[test]
    fn custom_frame_size_limit() {
        let bytes = sample_file();
        let mut r = IvfReader::new(&bytes[..]).unwrap().with_max_frame_size(100);
        assert!(r.next_frame().unwrap().is_some());
        assert!(r.next_frame().unwrap().is_some());
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::FrameTooLarge {
                index: 2,
                size: 1000,
                limit: 100
            })
        ));
    }

    #[test]
    fn reads_an_official_style_stream_written_by_vpxenc() {
        // Header of a real vpxenc output file (176x144, 1/30, 29 frames).
        let mut b = *b"DKIF\0\0\x20\0VP80\xb0\0\x90\0\x1e\0\0\0\x01\0\0\0\x1d\0\0\0\0\0\0\0";
        let r = IvfReader::new(&b[..]).unwrap();
        let h = r.header();
        assert_eq!((h.width, h.height, h.frame_count), (176, 144, 29));
        assert_eq!((h.timebase_num, h.timebase_den), (1, 30));
        // The fourcc is reported, not checked.
        b[8..12].copy_from_slice(b"I420");
        assert_eq!(IvfReader::new(&b[..]).unwrap().header().fourcc, *b"I420");
    }

    #[test]
    fn reads_a_real_vpxenc_stream() {
        // Made by test-vectors/generate.sh: 31 IVF frames, one a hidden altref.
        let bytes = include_bytes!("../../../test-vectors/excam-altref-2pass.ivf");
        let r = IvfReader::new(&bytes[..]).unwrap();
        let h = *r.header();
        assert_eq!(h.fourcc, *b"VP80");
        assert_eq!((h.width, h.height, h.frame_count), (64, 48, 31));
        let frames: Vec<IvfFrame> = r.map(Result::unwrap).collect();
        assert_eq!(frames.len(), 31);
        let total: usize = frames.iter().map(|f| 12 + f.data.len()).sum();
        assert_eq!(32 + total, bytes.len(), "every byte accounted for");
        // A VP8 key frame starts with its start code at bytes 3..6.
        assert_eq!(&frames[0].data[3..6], &[0x9d, 0x01, 0x2a]);
        // Re-writing with a seeking writer gives the identical file.
        let mut w = IvfWriter::new(
            Cursor::new(Vec::new()),
            &IvfHeader {
                frame_count: 0,
                ..h
            },
        )
        .unwrap();
        for f in &frames {
            w.write_frame(f.pts, &f.data).unwrap();
        }
        assert_eq!(w.finish().unwrap().into_inner(), bytes.to_vec());
    }

    #[test]
    fn reads_every_generated_test_vector() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension() != Some(std::ffi::OsStr::new("ivf")) {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let r = IvfReader::new(&bytes[..]).unwrap();
            let count = r.header().frame_count;
            let frames: Vec<IvfFrame> = r.map(Result::unwrap).collect();
            assert_eq!(frames.len() as u32, count, "{path:?}");
            assert_eq!(&frames[0].data[3..6], &[0x9d, 0x01, 0x2a], "{path:?}");
            // One MD5 line per shown frame: never more lines than frames.
            let md5 = std::fs::read_to_string(path.with_extension("ivf.md5")).unwrap();
            assert!(md5.lines().count() <= frames.len(), "{path:?}");
            n += 1;
        }
        assert!(n >= 40, "only {n} streams in {dir}");
    }
}
