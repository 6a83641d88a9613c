//! `excam info`: one line of header facts per frame.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use excam_codec::decode::{decode_picture, parse_frame_header};
use excam_codec::header::{BufferCopy, FrameHeader};
use excam_codec::{DecoderState, FrameError};
use excam_coordinator::container::VideoReader;

/// The long `--help` text of this subcommand (clap takes a
/// subcommand's help from its variant in `main.rs`, which uses this).
pub const LONG_ABOUT: &str = "Print one line per frame of a VP8 IVF or WebM file.\n\n\
    Fields, space separated:\n  \
    INDEX            0-based position in the file\n  \
    key|inter        frame type\n  \
    shown|hidden     whether the frame is displayed\n  \
    bytes=N          compressed size\n  \
    size=WxH         key frames only: the coded size\n  \
    q=N              base quantizer index 0..127\n  \
    refresh=R,...    references this frame replaces: last, golden, altref (- for none)\n  \
    copy=G<X,A<Y     reference copies before the refreshes (- for none)\n  \
    entropy=keep|drop  whether this frame's probabilities persist\n  \
    parts=N          token partitions (1, 2, 4, 8)\n  \
    filter=T:L:S     loop filter type (normal/simple), level 0..63, sharpness 0..7\n\n\
    Every frame is decoded too, since each header depends on the state \
    the previous frames left; a frame that fails stops the listing with an \
    error naming it.";

/// Arguments of `excam info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The VP8 stream, in an IVF or WebM container.
    pub input: PathBuf,
}

/// Runs `excam info`.
pub fn run(args: &InfoArgs) -> Result<()> {
    let reader = VideoReader::open(&args.input)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut state = DecoderState::new();
    for (index, frame) in reader.enumerate() {
        let frame = frame
            .with_context(|| format!("{}: cannot read frame {index}", args.input.display()))?;
        let index = index as u64;
        let fail = |source| FrameError { index, source };
        let hdr = parse_frame_header(&state, &frame.data)
            .map_err(fail)
            .with_context(|| format!("{}: cannot parse header", args.input.display()))?;
        writeln!(out, "{}", describe(index, frame.data.len(), &hdr))
            .context("cannot write to standard output")?;
        state = decode_picture(&state, &frame.data)
            .map_err(fail)
            .with_context(|| format!("{}: cannot decode", args.input.display()))?
            .state;
    }
    out.flush().context("cannot write to standard output")
}

/// Names a reference-copy code (RFC 6386 section 9.7).
fn copy_source(code: BufferCopy, other: &'static str) -> &'static str {
    match code {
        BufferCopy::Last => "last",
        BufferCopy::Other => other,
        BufferCopy::None | BufferCopy::Reserved => "-",
    }
}

/// The `excam info` line of one frame.
fn describe(index: u64, bytes: usize, h: &FrameHeader) -> String {
    let mut refresh = Vec::new();
    if h.refresh_last {
        refresh.push("last");
    }
    if h.refresh_golden {
        refresh.push("golden");
    }
    if h.refresh_altref {
        refresh.push("altref");
    }
    let refresh = if refresh.is_empty() {
        "-".to_string()
    } else {
        refresh.join(",")
    };
    let size = match h.size {
        Some(s) => format!(" size={}x{}", s.width, s.height),
        None => String::new(),
    };
    format!(
        "{index} {} {} bytes={bytes}{size} q={} refresh={refresh} copy=G<{},A<{} \
         entropy={} parts={} filter={}:{}:{}",
        if h.tag.key_frame { "key" } else { "inter" },
        if h.tag.show_frame { "shown" } else { "hidden" },
        h.quant.q_index,
        copy_source(h.copy_to_golden, "altref"),
        copy_source(h.copy_to_altref, "golden"),
        if h.refresh_entropy { "keep" } else { "drop" },
        h.partitions.count(),
        if h.filter_simple { "simple" } else { "normal" },
        h.filter_level,
        h.sharpness,
    )
}
