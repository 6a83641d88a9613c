//! Where an encode's stream goes: a temporary file renamed over the
//! output path once complete, or a device, FIFO or standard output
//! written in place; and the counts the summary reports.

use std::fs::File;
use std::io::{self, Seek};
use std::path::Path;
use std::time::Instant;

use excam_codec::encode::encoder::Packet;
use excam_codec::metrics::PsnrStats;

use super::{EncodeError, Summary};
use crate::container::{FrameTime, VideoWriter};

/// Opens where the stream goes. A regular path gets a temporary file
/// beside it (returned), which deletes itself when dropped, i.e. on every
/// error path; only [`Output::finish`] puts it at the output path. A
/// device or FIFO (`/dev/null`, a named pipe) cannot be renamed over, so
/// it is opened and written in place, as vpxenc does.
pub(super) fn open_output(output: &Path) -> Result<(Dest, File), EncodeError> {
    if output == Path::new("-") {
        // Standard output, as vpxenc's `-o -`: a pipe is streamed, a
        // redirected file is patched in place at the end.
        use std::os::fd::AsFd;
        let mut file = File::from(
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map_err(EncodeError::Stdout)?,
        );
        let seekable = file.stream_position().is_ok();
        return Ok((Dest::InPlace { seekable }, file));
    }
    if crate::output::is_special_file(output) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(output)
            .map_err(|source| EncodeError::OpenOutput {
                path: output.to_path_buf(),
                source,
            })?;
        let seekable = file.stream_position().is_ok();
        return Ok((Dest::InPlace { seekable }, file));
    }
    let tmp = crate::output::temp_beside(output)?;
    let file = tmp.reopen().map_err(EncodeError::OpenTemp)?;
    Ok((Dest::Temp(tmp), file))
}

/// How the output reaches its path: see [`open_output`].
pub(super) enum Dest {
    /// Renamed over the path once complete.
    Temp(tempfile::NamedTempFile),
    /// Written in place; a pipe cannot seek back to patch the frame count.
    InPlace { seekable: bool },
}

impl Dest {
    /// Whether the output can be seeked back to patch its headers.
    pub(super) fn seekable(&self) -> bool {
        match self {
            Dest::Temp(_) => true,
            Dest::InPlace { seekable } => *seekable,
        }
    }
}

/// The output side of an encode: the container, where it goes, and the
/// counts the summary reports.
pub(super) struct Output {
    writer: VideoWriter,
    dest: Dest,
    /// PSNR of the shown frames against their sources.
    pub(super) psnr: PsnrStats,
    /// Shown frames written.
    pub(super) frames: u64,
    key_frames: u64,
    /// Bytes of every frame, hidden ones included.
    pub(super) bytes: u64,
    /// Hidden frames written since the last shown one.
    hidden_in_row: u64,
    /// The last shown frame's time.
    last_pts: Option<u64>,
    /// Duration of one frame at the input's rate.
    pub(super) seconds_per_frame: f64,
}

impl Output {
    /// An output writing through `writer` to `dest`, at `fps` frames per
    /// second (numerator, denominator).
    pub(super) fn new(writer: VideoWriter, dest: Dest, fps: (u32, u32)) -> Output {
        Output {
            writer,
            dest,
            psnr: PsnrStats::new(),
            frames: 0,
            key_frames: 0,
            bytes: 0,
            hidden_in_row: 0,
            last_pts: None,
            seconds_per_frame: fps.1 as f64 / fps.0 as f64,
        }
    }

    /// Writes one packet of the streaming encoder. A hidden frame has no
    /// time of its own: it is stamped just after the last shown frame, as
    /// vpxenc does, so that timestamps stay increasing.
    pub(super) fn write_packet(&mut self, p: &Packet) -> Result<(), EncodeError> {
        let when = if p.show_frame {
            self.hidden_in_row = 0;
            self.last_pts = Some(p.pts);
            FrameTime::Shown(p.pts)
        } else {
            self.hidden_in_row += 1;
            FrameTime::Hidden {
                after: self.last_pts,
                nth: self.hidden_in_row,
                next: p.pts,
            }
        };
        self.writer
            .write_frame_at(when, &p.data, p.key_frame)
            .map_err(EncodeError::WriteOutput)?;
        self.frames += p.show_frame as u64;
        self.key_frames += p.key_frame as u64;
        self.bytes += p.data.len() as u64;
        Ok(())
    }

    /// Writes the next shown frame of a stream without hidden frames (the
    /// ExCamera pipeline's), stamped with its index.
    pub(super) fn write_shown(&mut self, frame: &[u8]) -> Result<(), EncodeError> {
        let key = frame[0] & 1 == 0;
        self.writer
            .write_frame(self.frames, frame, key)
            .map_err(EncodeError::WriteOutput)?;
        self.key_frames += key as u64;
        self.bytes += frame.len() as u64;
        self.frames += 1;
        Ok(())
    }

    /// Completes the container, moves the file into place at `path` and
    /// sums up.
    pub(super) fn finish(self, path: &Path, start: Instant) -> Result<Summary, EncodeError> {
        self.writer
            .finish(self.dest.seekable())
            .map_err(EncodeError::WriteOutput)?;
        if let Dest::Temp(tmp) = self.dest {
            crate::output::persist(tmp, path)?;
        }
        let secs = self.frames as f64 * self.seconds_per_frame;
        let psnr = &self.psnr;
        Ok(Summary {
            frames: self.frames,
            key_frames: self.key_frames,
            bytes: self.bytes,
            kbps: self.bytes as f64 * 8.0 / secs / 1000.0,
            psnr: psnr.overall(),
            psnr_planes: psnr.overall_planes(),
            psnr_avg: psnr.average(),
            psnr_avg_planes: psnr.average_planes(),
            elapsed: start.elapsed(),
        })
    }
}
