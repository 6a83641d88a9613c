//! `excam decode`: IVF or WebM in, Y4M / raw I420 / per-frame MD5s out.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use excam_codec::container::y4m::{Y4mError, Y4mWriter};
use excam_codec::{Decoder, Picture};
use excam_coordinator::container::VideoReader;
use excam_coordinator::images::{FrameSink, Pattern, Range};
use excam_coordinator::output::{is_null_device, is_special_file, AtomicFile};
use md5::{Digest, Md5};

/// The long `--help` text of this subcommand (clap takes a
/// subcommand's help from its variant in `main.rs`, which uses this).
pub const LONG_ABOUT: &str = "Decode a VP8 stream in an IVF or WebM file \
        (told apart by their signatures, not the name).\n\n\
        With -o, writes every shown frame to OUT: Y4M for .y4m, raw I420 \
        (the bytes `vpxdec --i420` writes) for .yuv or .i420, or Y4M to \
        standard output for `-`. --format overrides the guess. The file \
        is written beside OUT under a temporary name and renamed into place \
        only when the whole stream decoded, so a failed decode leaves no \
        partial file. An OUT that is a device or a FIFO (/dev/stdout, a \
        named pipe) is written in place, as Y4M unless --format says \
        otherwise; /dev/null, like --null, decodes without writing.\n\n\
        With --null (alias --noblit, as vpxdec), decodes every frame and \
        writes nothing: a conformance or speed check whose exit status says \
        whether the whole stream decoded.\n\n\
        With --frames DIR/%04d.png (or .jpg), writes every shown frame as \
        an RGB image numbered from 1, converted with BT.601's matrix (the \
        colour space VP8 defines) in studio range unless the WebM file says \
        full range or --range overrides it.\n\n\
        With --md5, prints one line per shown frame in the format of the \
        official test vectors' .ivf.md5 files, \
        `<md5>  <stem>-<W>x<H>-<NNNN>.i420`, where NNNN is the 1-based \
        position of the frame in the file (hidden frames use up a \
        number but print no line), so `diff <(excam decode X.ivf --md5) \
        X.ivf.md5` is a conformance check.\n\n\
        Decoding stops at the first frame that fails, with an error naming \
        its 0-based index, and the exit status is non-zero.";

/// Arguments of `excam decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The VP8 stream to decode, in an IVF or WebM container.
    pub input: PathBuf,

    /// Where to write the decoded frames (`-` for standard output).
    #[arg(
        short,
        long,
        value_name = "OUT",
        required_unless_present_any = ["md5", "null", "frames"]
    )]
    pub output: Option<PathBuf>,

    /// Output format, overriding the guess from OUT's extension.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Print an MD5 per shown frame instead of writing frames.
    #[arg(long, conflicts_with_all = ["output", "format"])]
    pub md5: bool,

    /// Decode every frame but write nothing (vpxdec's --noblit, FFmpeg's
    /// `-f null`); the same as `-o /dev/null`.
    #[arg(long, visible_alias = "noblit", conflicts_with_all = ["output", "format", "md5"])]
    pub null: bool,

    /// Threads per frame: macroblock rows are decoded as a wavefront (a
    /// row's token partition, reconstruction and loop filter on one
    /// thread, a macroblock once the row above is two ahead). The output
    /// is the same for any count [default: the cores available].
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Write every shown frame as a PNG or JPEG image (by the extension),
    /// named by a pattern with one `%d`/`%04d` field, numbered from 1.
    #[arg(long, value_name = "PATTERN", conflicts_with_all = ["output", "format", "md5", "null"])]
    pub frames: Option<PathBuf>,

    /// The YCbCr range for --frames: `limited` (studio swing, BT.601) or
    /// `full`. Default: what the WebM file's Colour element says, else
    /// limited.
    #[arg(long, value_enum)]
    pub range: Option<RangeArg>,
}

/// `--range`: [`Range`] for clap (the library's enum has no clap derive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RangeArg {
    /// Studio swing, as BT.601 video: Y 16..235 and Cb/Cr 16..240 span the
    /// full RGB range (what VP8 streams are unless a container says
    /// otherwise).
    Limited,
    /// Full swing, as JPEG: Y, Cb and Cr use all of 0..255.
    Full,
}

impl From<RangeArg> for Range {
    fn from(r: RangeArg) -> Range {
        match r {
            RangeArg::Limited => Range::Limited,
            RangeArg::Full => Range::Full,
        }
    }
}

/// Picture formats `excam decode` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// YUV4MPEG2 with a C420jpeg header, what most players read.
    Y4m,
    /// Raw planar Y, U, V per frame with no header, as `vpxdec --i420`.
    I420,
}

impl Format {
    /// The format named by `path`'s extension, if any.
    fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "y4m" => Some(Format::Y4m),
            "yuv" | "i420" => Some(Format::I420),
            _ => None,
        }
    }
}

/// Runs `excam decode`.
pub fn run(args: &DecodeArgs) -> Result<()> {
    if args.range.is_some() && args.frames.is_none() {
        bail!("--range applies to --frames only (the YUV outputs keep the samples as coded)");
    }
    let reader = VideoReader::open(&args.input)?;
    if args.md5 {
        let stem = args
            .input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stdout = io::stdout().lock();
        return print_md5s(reader, &stem, BufWriter::new(stdout), args);
    }
    if let Some(pattern) = &args.frames {
        let range = args
            .range
            .map(Range::from)
            .unwrap_or(match reader.full_range {
                Some(true) => Range::Full,
                _ => Range::Limited,
            });
        return write_images(reader, &args.input, Pattern::parse(pattern)?, range);
    }
    let out = match args.output.as_deref() {
        Some(out) if !is_null_device(out) => out,
        // --null, or -o /dev/null: the decode is the whole job.
        _ => return for_each_shown(reader, args, |_, _| Ok(())),
    };
    let to_stdout = out == Path::new("-");
    // A device or FIFO has no extension to go by and cannot be renamed
    // over: it is written in place, in Y4M unless told otherwise.
    let in_place = !to_stdout && is_special_file(out);
    let format = match (args.format, to_stdout || in_place) {
        (Some(f), _) => f,
        (None, true) => Format::Y4m,
        (None, false) => Format::from_path(out).with_context(|| {
            format!(
                "cannot tell the output format from {}: use a .y4m, .yuv or .i420 \
                 name, or --format y4m|i420",
                out.display()
            )
        })?,
    };
    let fps = reader.fps;
    if to_stdout {
        let mut sink = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        write_frames(reader, format, fps, &mut sink, args)?;
        sink.flush().context("cannot write to standard output")?;
        Ok(())
    } else if in_place {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(out)
            .with_context(|| format!("cannot open {}", out.display()))?;
        let mut sink = BufWriter::with_capacity(1 << 20, file);
        write_frames(reader, format, fps, &mut sink, args)?;
        sink.flush()
            .with_context(|| format!("cannot write {}", out.display()))
    } else {
        let mut sink = AtomicFile::create(out)?;
        write_frames(reader, format, fps, &mut sink, args)?;
        Ok(sink.commit()?)
    }
}

/// Decodes every frame of `reader`, calling `shown` with the 0-based
/// index in the file and the picture of each shown frame.
fn for_each_shown(
    reader: VideoReader,
    args: &DecodeArgs,
    mut shown: impl FnMut(u64, &Picture) -> Result<()>,
) -> Result<()> {
    let input = &args.input;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let mut decoder = Decoder::with_threads(threads);
    for (index, frame) in reader.enumerate() {
        let frame =
            frame.with_context(|| format!("{}: cannot read frame {index}", input.display()))?;
        let (picture, _) = decoder
            .decode(&frame.data)
            .with_context(|| format!("{}: cannot decode", input.display()))?;
        if let Some(p) = picture {
            shown(index as u64, &p)?;
        }
    }
    Ok(())
}

/// Writes every shown frame as an image; refuses a stream whose key frame
/// uses the colour space RFC 6386 reserves, which has no RGB meaning.
fn write_images(reader: VideoReader, input: &Path, pattern: Pattern, range: Range) -> Result<()> {
    let mut sink = FrameSink::new(pattern, range)?;
    let mut decoder = Decoder::new();
    for (index, frame) in reader.enumerate() {
        let frame =
            frame.with_context(|| format!("{}: cannot read frame {index}", input.display()))?;
        let (picture, info) = decoder
            .decode(&frame.data)
            .with_context(|| format!("{}: cannot decode", input.display()))?;
        if info.header.tag.key_frame && info.header.color_space {
            bail!(
                "{}: frame {index} says color_space 1, which RFC 6386 (9.2) reserves; \
                 only color_space 0 (BT.601 YUV) converts to RGB",
                input.display()
            );
        }
        if let Some(p) = picture {
            sink.push(p)?;
        }
    }
    sink.finish()?;
    Ok(())
}

/// The visible I420 rows of `p`, Y then U then V.
fn i420_rows(p: &Picture) -> impl Iterator<Item = &[u8]> {
    (0..3).flat_map(move |k| p.visible_rows(k))
}

fn print_md5s<W: Write>(
    reader: VideoReader,
    stem: &str,
    mut out: W,
    args: &DecodeArgs,
) -> Result<()> {
    for_each_shown(reader, args, |index, picture| {
        let mut md5 = Md5::new();
        for row in i420_rows(picture) {
            md5.update(row);
        }
        writeln!(
            out,
            "{:x}  {stem}-{}x{}-{:04}.i420",
            md5.finalize(),
            picture.width(),
            picture.height(),
            index + 1
        )
        .context("cannot write to standard output")
    })?;
    out.flush().context("cannot write to standard output")
}

fn write_frames<W: Write>(
    reader: VideoReader,
    format: Format,
    fps: (usize, usize),
    sink: &mut W,
    args: &DecodeArgs,
) -> Result<()> {
    match format {
        Format::I420 => for_each_shown(reader, args, |_, picture| {
            i420_rows(picture)
                .try_for_each(|row| sink.write_all(row))
                .context("cannot write output")
        }),
        Format::Y4m => {
            // The Y4M header needs the first frame's size, so the writer
            // takes the sink when that frame arrives.
            let mut sink = Some(sink);
            let mut writer: Option<Y4mWriter<&mut W>> = None;
            for_each_shown(reader, args, move |index, picture| {
                let frame = picture.to_frame();
                if let Some(s) = sink.take() {
                    writer = Some(
                        Y4mWriter::new(s, frame.width, frame.height, fps)
                            .context("cannot write Y4M header")?,
                    );
                }
                let w = writer.as_mut().expect("created for the first frame");
                w.write_frame(&frame).map_err(|e| match e {
                    Y4mError::SizeMismatch {
                        width,
                        height,
                        got_w,
                        got_h,
                    } => anyhow!(
                        "frame {index} changes the size from {width}x{height} to \
                         {got_w}x{got_h}; Y4M holds one size per file, use --format i420"
                    ),
                    e => anyhow::Error::new(e).context("cannot write output"),
                })
            })
        }
    }
}
