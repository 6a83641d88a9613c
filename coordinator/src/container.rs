//! The two containers VP8 travels in: IVF (libvpx's test format, `vpxenc
//! --ivf`) and WebM (Matroska with VP8, vpxenc's default output).
//!
//! Reading sniffs the first four bytes, so a file's name never decides
//! how it is parsed; writing picks the container from the output's
//! extension unless a flag forces one. WebM is muxed by libwebm (the
//! muxer vpxenc itself uses, through the `webm` crate) and demuxed by the
//! pure-Rust `matroska-demuxer`.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use excam_codec::container::ivf::{IvfError, IvfHeader, IvfReader, IvfWriter, IVF_SIGNATURE};

/// Why a container cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The file cannot be opened.
    #[error("cannot open {}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's first bytes cannot be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file starts as IVF but its header is not one.
    #[error("{} is not a readable IVF file", .path.display())]
    IvfHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with the header.
        #[source]
        source: IvfError,
    },
    /// The file starts as WebM but cannot be used.
    #[error("{} is not a readable WebM file", .path.display())]
    WebmHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: WebmError,
    },
    /// The file is neither container.
    #[error(
        "{} is neither IVF nor WebM: it starts with {found}, not \"DKIF\" (IVF) \
         nor the EBML signature 1A 45 DF A3 (WebM, Matroska)",
        .path.display()
    )]
    Unknown {
        /// The file.
        path: PathBuf,
        /// Its first bytes, described (hex, and text when printable).
        found: String,
    },
    /// A WebM file's clusters cannot be parsed past some frame.
    #[error("malformed WebM: {0}")]
    MalformedWebm(String),
    /// libwebm refused to start a WebM output.
    #[error("cannot start the WebM output: {0}")]
    WebmStart(String),
    /// libwebm refused a frame.
    #[error("cannot write a WebM frame: {0}")]
    WebmFrame(String),
    /// libwebm could not write the cues and sizes at the end.
    #[error("cannot finish the WebM output")]
    WebmFinish,
    /// An IVF frame cannot be read or written.
    #[error(transparent)]
    Ivf(#[from] IvfError),
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why a WebM file's header cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebmError {
    /// The demuxer's own message.
    #[error("{0}")]
    Demux(String),
    /// No track is a video track.
    #[error("it has no video track")]
    NoVideoTrack,
    /// The video track is not VP8.
    #[error("its video track is {0}, not VP8 (V_VP8); excam decodes VP8 only")]
    NotVp8(String),
}

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// The first four bytes of every EBML (Matroska, WebM) file.
const EBML_MAGIC: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];

/// A VP8 container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// IVF: a 32-byte header, then a 12-byte header per frame.
    Ivf,
    /// WebM: EBML/Matroska with one `V_VP8` track.
    Webm,
}

impl Container {
    /// The container `path`'s extension names: WebM for `.webm` and
    /// `.mkv`, IVF for anything else (excam's historical output).
    pub fn from_path(path: &Path) -> Container {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("webm" | "mkv") => Container::Webm,
            _ => Container::Ivf,
        }
    }
}

/// One compressed frame read from a container.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// The VP8 frame.
    pub data: Vec<u8>,
}

/// A VP8 stream opened from an IVF or WebM file.
pub struct VideoReader {
    /// Which container the file turned out to be.
    pub container: Container,
    /// Frames per second as (numerator, denominator), what a Y4M header
    /// of the decoded frames should say.
    pub fps: (usize, usize),
    /// Whether the container says the samples are full range (`Some(true)`,
    /// WebM `Colour/Range` 2) or studio range (`Some(false)`, Range 1);
    /// `None` when it says nothing (IVF never does).
    pub full_range: Option<bool>,
    frames: Frames,
}

enum Frames {
    Ivf(IvfReader<BufReader<File>>),
    Webm {
        file: Box<matroska_demuxer::MatroskaFile<BufReader<File>>>,
        track: u64,
        /// Frames read ahead to guess the frame rate, handed out first.
        ahead: std::collections::VecDeque<Vec<u8>>,
        /// An error met reading ahead, reported after those frames.
        error: Option<String>,
        /// Set after the end or an error: the stream position is unknown.
        done: bool,
    },
}

impl VideoReader {
    /// Opens `path`, telling IVF from WebM by their signatures.
    ///
    /// # Errors
    ///
    /// An unreadable file, one that is neither IVF nor WebM (the error
    /// says what its first bytes are), a malformed header, or a WebM file
    /// without a VP8 video track.
    pub fn open(path: &Path) -> Result<VideoReader> {
        let path_buf = || path.to_path_buf();
        let mut file = File::open(path).map_err(|source| ContainerError::Open {
            path: path_buf(),
            source,
        })?;
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut file, &mut magic)
            .and_then(|got| file.rewind().map(|_| got))
            .map_err(|source| ContainerError::Read {
                path: path_buf(),
                source,
            })?;
        let reader = BufReader::with_capacity(1 << 20, file);
        if got == 4 && magic == IVF_SIGNATURE {
            let ivf = IvfReader::new(reader).map_err(|source| ContainerError::IvfHeader {
                path: path_buf(),
                source,
            })?;
            let fps = ivf_frame_rate(ivf.header());
            return Ok(VideoReader {
                container: Container::Ivf,
                fps,
                full_range: None,
                frames: Frames::Ivf(ivf),
            });
        }
        if got == 4 && magic == EBML_MAGIC {
            return open_webm(reader).map_err(|source| ContainerError::WebmHeader {
                path: path_buf(),
                source,
            });
        }
        Err(ContainerError::Unknown {
            path: path_buf(),
            found: describe_magic(&magic[..got]),
        })
    }
}

/// `bytes` as hex, and as text when they are printable.
fn describe_magic(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{} (\"{}\")", hex.join(" "), String::from_utf8_lossy(bytes))
    } else {
        hex.join(" ")
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The frame rate for a Y4M header: one frame per timebase unit, as
/// vpxdec assumes, or 30 fps if the IVF header's timebase is empty.
fn ivf_frame_rate(h: &IvfHeader) -> (usize, usize) {
    if h.timebase_num == 0 || h.timebase_den == 0 {
        (30, 1)
    } else {
        (h.timebase_den as usize, h.timebase_num as usize)
    }
}

fn open_webm(reader: BufReader<File>) -> Result<VideoReader, WebmError> {
    use matroska_demuxer::{Frame, MatroskaFile, TrackType};
    let mut file = MatroskaFile::open(reader).map_err(|e| WebmError::Demux(e.to_string()))?;
    let track = file
        .tracks()
        .iter()
        .find(|t| t.track_type() == TrackType::Video)
        .ok_or(WebmError::NoVideoTrack)?;
    if track.codec_id() != "V_VP8" {
        return Err(WebmError::NotVp8(track.codec_id().to_string()));
    }
    let number = track.track_number().get();
    let full_range = match track
        .video()
        .and_then(|v| v.colour())
        .and_then(|c| c.range())
    {
        Some(matroska_demuxer::Range::Full) => Some(true),
        Some(matroska_demuxer::Range::Broadcast) => Some(false),
        _ => None,
    };
    let default_duration = track.default_duration().map(|d| d.get());
    let scale = file.info().timestamp_scale().get();
    // The frame rate: the track's default duration if it has one, else
    // vpxdec's guess from the timestamps of the first second (at most 50
    // frames) of video.
    let mut ahead = std::collections::VecDeque::new();
    let mut stamps = Vec::new();
    let mut frame = Frame::default();
    let mut error = None;
    while ahead.len() < 50 {
        match file.next_frame(&mut frame) {
            Ok(true) if frame.track == number => {
                stamps.push(frame.timestamp.saturating_mul(scale));
                ahead.push_back(std::mem::take(&mut frame.data));
                if stamps.last().unwrap() - stamps[0] >= 1_000_000_000 {
                    break;
                }
            }
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if ahead.is_empty() => return Err(WebmError::Demux(e.to_string())),
            // Hand out what was read; the error comes after it.
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let fps = match default_duration {
        Some(d) if d > 0 => reduce(1_000_000_000, d),
        _ => match (stamps.first(), stamps.last()) {
            (Some(&a), Some(&b)) if b > a => {
                reduce((stamps.len() as u64 - 1) * 1_000_000, (b - a) / 1000)
            }
            _ => (30, 1),
        },
    };
    Ok(VideoReader {
        container: Container::Webm,
        fps,
        full_range,
        frames: Frames::Webm {
            file: Box::new(file),
            track: number,
            ahead,
            error,
            done: false,
        },
    })
}

/// `num/den` in lowest terms, as usizes.
fn reduce(num: u64, den: u64) -> (usize, usize) {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let g = gcd(num, den).max(1);
    ((num / g) as usize, (den / g).max(1) as usize)
}

impl Iterator for VideoReader {
    type Item = Result<VideoFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.frames {
            Frames::Ivf(r) => r
                .next()
                .map(|f| f.map(|f| VideoFrame { data: f.data }).map_err(Into::into)),
            Frames::Webm {
                file,
                track,
                ahead,
                error,
                done,
            } => {
                if let Some(data) = ahead.pop_front() {
                    return Some(Ok(VideoFrame { data }));
                }
                if let Some(e) = error.take() {
                    *done = true;
                    return Some(Err(ContainerError::MalformedWebm(e)));
                }
                let mut frame = matroska_demuxer::Frame::default();
                while !*done {
                    match file.next_frame(&mut frame) {
                        Ok(true) if frame.track == *track => {
                            return Some(Ok(VideoFrame { data: frame.data }))
                        }
                        Ok(true) => {}
                        Ok(false) => *done = true,
                        Err(e) => {
                            *done = true;
                            return Some(Err(ContainerError::MalformedWebm(e.to_string())));
                        }
                    }
                }
                None
            }
        }
    }
}

/// When a frame is presented, for [`VideoWriter::write_frame_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameTime {
    /// A shown frame at this time in frame-rate ticks.
    Shown(u64),
    /// A hidden frame (an alt-ref), the `nth` since the shown frame at
    /// `after` (none before the first shown frame), coded before the
    /// shown frame at `next`.
    Hidden {
        /// The last shown frame's time.
        after: Option<u64>,
        /// 1 for the first hidden frame after it, and so on.
        nth: u64,
        /// The next shown frame's time.
        next: u64,
    },
}

/// Where an encode's frames go: an IVF or a WebM muxer over a file.
pub enum VideoWriter {
    /// IVF.
    Ivf(IvfWriter<std::io::BufWriter<File>>),
    /// WebM through libwebm, with the frame duration in nanoseconds.
    Webm {
        /// The segment being written.
        segment: webm::mux::Segment<WebmSink>,
        /// Its video track.
        track: webm::mux::VideoTrack,
        /// Nanoseconds per frame-rate tick.
        tick_ns: f64,
    },
}

/// The file under a WebM muxer: seekable (cues, sizes and the duration
/// are written back at the end) or, for a pipe, written straight through.
pub enum WebmSink {
    /// A regular file or a seekable device.
    Seekable(std::io::BufWriter<File>),
    /// A pipe.
    Stream(std::io::BufWriter<File>),
}

impl Write for WebmSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            WebmSink::Seekable(w) | WebmSink::Stream(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            WebmSink::Seekable(w) | WebmSink::Stream(w) => w.flush(),
        }
    }
}

impl Seek for WebmSink {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match self {
            WebmSink::Seekable(w) => w.seek(pos),
            WebmSink::Stream(_) => Err(std::io::ErrorKind::Unsupported.into()),
        }
    }
}

impl VideoWriter {
    /// Starts a `container` stream of `width` x `height` VP8 at `fps`
    /// (numerator, denominator) on `file`; `seekable` says whether the
    /// file can be seeked back (not a pipe).
    ///
    /// # Errors
    ///
    /// Write errors, or a size the container cannot hold.
    pub fn new(
        container: Container,
        file: File,
        seekable: bool,
        width: usize,
        height: usize,
        fps: (u32, u32),
    ) -> Result<VideoWriter> {
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        match container {
            Container::Ivf => {
                let hdr = IvfHeader::vp8(width as u16, height as u16, fps.1, fps.0);
                Ok(VideoWriter::Ivf(IvfWriter::new(out, &hdr)?))
            }
            Container::Webm => {
                use webm::mux::{SegmentBuilder, SegmentMode, VideoCodecId, Writer};
                let writer = if seekable {
                    Writer::new(WebmSink::Seekable(out))
                } else {
                    Writer::new_non_seek(WebmSink::Stream(out))
                };
                let err = |e: webm::mux::Error| ContainerError::WebmStart(e.to_string());
                let builder = SegmentBuilder::new(writer)
                    .map_err(err)?
                    .set_writing_app(concat!("excam ", env!("CARGO_PKG_VERSION")))
                    .map_err(err)?
                    .set_mode(if seekable {
                        SegmentMode::File
                    } else {
                        SegmentMode::Live
                    })
                    .map_err(err)?;
                let (builder, track) = builder
                    .add_video_track(width as u32, height as u32, VideoCodecId::VP8, None)
                    .map_err(err)?;
                Ok(VideoWriter::Webm {
                    segment: builder.build(),
                    track,
                    tick_ns: 1e9 * fps.1 as f64 / fps.0 as f64,
                })
            }
        }
    }

    /// Appends one frame with its time (see [`FrameTime`]).
    ///
    /// # Errors
    ///
    /// Write errors.
    pub fn write_frame_at(&mut self, when: FrameTime, data: &[u8], key: bool) -> Result<()> {
        match when {
            FrameTime::Shown(pts) => self.write_frame(pts, data, key),
            FrameTime::Hidden { after, nth, next } => match self {
                // IVF: vpxenc stamps a hidden frame one tick after the
                // last shown frame, which is the next frame's time.
                VideoWriter::Ivf(w) => Ok(w.write_frame(next, data)?),
                VideoWriter::Webm {
                    segment,
                    track,
                    tick_ns,
                } => {
                    // WebM counts milliseconds: vpxenc's hidden frames sit
                    // 1 ms after the frame before them, so the timestamps
                    // increase and players going by time show no extra
                    // frame.
                    let base = after.map_or(0, |p| (p as f64 * *tick_ns).round() as u64);
                    segment
                        .add_frame(*track, data, base + nth * 1_000_000, key)
                        .map_err(|e| ContainerError::WebmFrame(e.to_string()))
                }
            },
        }
    }

    /// Appends one frame with presentation time `pts` in frame-rate ticks.
    ///
    /// # Errors
    ///
    /// Write errors.
    pub fn write_frame(&mut self, pts: u64, data: &[u8], key: bool) -> Result<()> {
        match self {
            VideoWriter::Ivf(w) => Ok(w.write_frame(pts, data)?),
            VideoWriter::Webm {
                segment,
                track,
                tick_ns,
            } => segment
                .add_frame(*track, data, (pts as f64 * *tick_ns).round() as u64, key)
                .map_err(|e| ContainerError::WebmFrame(e.to_string())),
        }
    }

    /// Completes the stream: the IVF frame count, or WebM's cues and
    /// sizes (patched in place when the file is seekable).
    ///
    /// # Errors
    ///
    /// Write errors.
    pub fn finish(self, seekable: bool) -> Result<()> {
        match self {
            VideoWriter::Ivf(w) => {
                let mut out = if seekable {
                    w.finish()?
                } else {
                    // As vpxenc's on a pipe, the header keeps frame count 0.
                    w.into_inner()?
                };
                out.flush()?;
            }
            VideoWriter::Webm { segment, .. } => {
                let writer = segment
                    .finalize(None)
                    .map_err(|_| ContainerError::WebmFinish)?;
                match writer.into_inner() {
                    WebmSink::Seekable(mut w) | WebmSink::Stream(mut w) => w.flush()?,
                }
            }
        }
        Ok(())
    }
}
