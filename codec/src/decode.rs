//! Frame decoding: `decode(state, bytes) -> (state', picture)` (RFC 6386
//! section 5 gives the overall process).

use std::sync::Arc;

use crate::bool_decoder::BoolDecoder;
use crate::decode_rows::{decode_rows, RowFrame, RowScratch};
use crate::dequant::Dequant;
use crate::error::DecodeError;
use crate::header::{self, FrameHeader, Inherited};
use crate::image::Image;
use crate::loop_filter;
use crate::modes::{self, MbInfo};
use crate::picture::Picture;
use crate::recon::{self, SubpelFilter};
use crate::state::{next_state, DecoderState, References};
use crate::tokens::{self, MbCoeffs, TokenContext};

/// A partition may read this many bytes past its end before the decoder
/// calls it corrupt. libvpx pads with zeros silently; a small allowance
/// keeps us as tolerant on mildly truncated data while still refusing
/// streams that are mostly missing.
pub(crate) const OVERRUN_SLACK_BITS: usize = 8 * 64;

/// What a decoded frame was, besides its picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The parsed frame header.
    pub header: FrameHeader,
    /// Display width of the frame.
    pub width: usize,
    /// Display height of the frame.
    pub height: usize,
}

/// The result of [`decode_picture`].
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The state after the frame.
    pub state: DecoderState,
    /// The reconstructed picture, if the frame is to be shown.
    pub shown: Option<Arc<Picture>>,
    /// Header and size of the frame.
    pub info: FrameInfo,
    /// Per-macroblock prediction records, in raster order.
    pub modes: Vec<MbInfo>,
}

/// Decodes one compressed frame against `state`.
///
/// Returns the next state and, when the frame is shown, its picture. The
/// input state is never modified, so a corrupt frame leaves the caller
/// with the state it had.
pub fn decode(
    state: &DecoderState,
    data: &[u8],
) -> Result<(DecoderState, Option<Image>), DecodeError> {
    let d = decode_picture(state, data)?;
    Ok((d.state, d.shown.map(|p| p.to_frame())))
}

/// Reads only the headers of a frame (for `excam info` and tools).
pub fn parse_frame_header(state: &DecoderState, data: &[u8]) -> Result<FrameHeader, DecodeError> {
    let (tag, size, off) = header::parse_tag(data)?;
    if !tag.key_frame && state.refs.is_none() {
        return Err(DecodeError::NoKeyFrame);
    }
    let mut bd = BoolDecoder::new(&data[off..]);
    header::parse_header(
        &mut bd,
        tag,
        size,
        Inherited {
            segment_features: &state.segment_features,
            filter_deltas: &state.filter_deltas,
            probs: &state.probs,
        },
    )
}

/// Splits the data after the first partition into token partitions.
pub(crate) fn token_partitions(data: &[u8], count: usize) -> Result<Vec<&[u8]>, DecodeError> {
    let table = 3 * (count - 1);
    if data.len() < table {
        return Err(DecodeError::Truncated("token partition size table"));
    }
    let (sizes, mut rest) = data.split_at(table);
    let mut parts = Vec::with_capacity(count);
    for i in 0..count {
        let len = if i + 1 < count {
            let s = &sizes[3 * i..3 * i + 3];
            s[0] as usize | (s[1] as usize) << 8 | (s[2] as usize) << 16
        } else {
            rest.len()
        };
        // libvpx refuses empty or overlong partitions.
        if len == 0 || len > rest.len() {
            return Err(DecodeError::BadPartitionSize {
                index: i + 1,
                claimed: len,
                available: rest.len(),
            });
        }
        let (p, r) = rest.split_at(len);
        parts.push(p);
        rest = r;
    }
    Ok(parts)
}

/// Decodes one frame and returns the new state, the picture to show and
/// what the frame was.
pub fn decode_picture(state: &DecoderState, data: &[u8]) -> Result<Decoded, DecodeError> {
    decode_picture_threaded(state, data, 1)
}

/// [`decode_picture`] on up to `threads` threads; the result is the same
/// for any thread count.
///
/// With two or more threads the macroblock rows of the frame are decoded
/// as a wavefront, each thread reading the tokens of a row and
/// reconstructing and loop filtering it (see `decode_rows`). The threads
/// are started for this frame; a [`crate::Decoder`] made with
/// [`crate::Decoder::with_threads`] keeps its threads from frame to frame.
pub fn decode_picture_threaded(
    state: &DecoderState,
    data: &[u8],
    threads: usize,
) -> Result<Decoded, DecodeError> {
    decode_picture_on(state, data, threads, None, &mut None)
}

/// [`decode_picture_threaded`] with the helper threads taken from `pool`
/// when one is given, and the threads' buffers kept in `scratch` from
/// frame to frame.
pub(crate) fn decode_picture_on(
    state: &DecoderState,
    data: &[u8],
    threads: usize,
    pool: Option<&rayon::ThreadPool>,
    scratch: &mut Option<RowScratch>,
) -> Result<Decoded, DecodeError> {
    if threads <= 1 {
        return decode_serial(state, data);
    }
    let Head {
        hdr,
        bd,
        parts,
        frame_size,
    } = parse_head(state, data)?;
    let (width, height) = (frame_size.width as usize, frame_size.height as usize);
    let mb_rows = height.div_ceil(16);
    if mb_rows < 2 {
        return decode_serial(state, data);
    }
    let tag = hdr.tag;
    let dequant = Dequant::per_segment(&hdr.quant, hdr.segmentation_enabled, &hdr.segment_features);
    let probs = tokens::TokenProbs::new(&hdr.probs.coeff);
    let frame = RowFrame {
        hdr: &hdr,
        refs: if tag.key_frame {
            None
        } else {
            state.refs.as_ref()
        },
        filter: SubpelFilter::for_version(tag.version),
        width,
        height,
        mb_cols: width.div_ceil(16),
        mb_rows,
        dequant: &dequant,
        probs: &probs,
        prev_segments: &state.segment_map,
    };
    let decoders = parts.iter().map(|p| BoolDecoder::new(p)).collect();
    let Ok((pic, mbs)) = decode_rows(&frame, bd, decoders, threads, pool, scratch) else {
        // A damaged frame: the serial decoder says what is wrong with it
        // (the first error in stream order, which the rows, decoded out
        // of order, may not have reached).
        return decode_serial(state, data);
    };
    Ok(finish(state, hdr, pic, mbs, width, height))
}

/// Decodes a frame on the calling thread alone.
fn decode_serial(state: &DecoderState, data: &[u8]) -> Result<Decoded, DecodeError> {
    let Front {
        hdr,
        mbs,
        parts,
        frame_size,
    } = parse_front(state, data)?;
    let (width, height) = (frame_size.width as usize, frame_size.height as usize);
    let mb_cols = width.div_ceil(16);
    let mb_rows = height.div_ceil(16);
    let tag = hdr.tag;
    let dequant = Dequant::per_segment(&hdr.quant, hdr.segmentation_enabled, &hdr.segment_features);
    let tokens = RowTokens {
        mbs: &mbs,
        mb_cols,
        partitions: hdr.partitions.count(),
        dequant: &dequant,
        probs: tokens::TokenProbs::new(&hdr.probs.coeff),
    };
    let decoders: Vec<BoolDecoder> = parts.iter().map(|p| BoolDecoder::new(p)).collect();
    let mut recon = RowRecon {
        pic: Picture::new(width, height),
        refs: if tag.key_frame {
            None
        } else {
            state.refs.as_ref()
        },
        filter: SubpelFilter::for_version(tag.version),
        mbs: &mbs,
        mb_cols,
        skips: vec![false; mbs.len()],
        hdr: &hdr,
    };
    recon::init_intra_borders(&mut recon.pic);
    let mut reader = tokens.reader(decoders);
    let mut row = RowCoeffs::new(mb_cols);
    for mb_y in 0..mb_rows {
        reader.read_row(&tokens, mb_y, &mut row)?;
        recon.row(mb_y, &mut row);
    }
    recon.finish(mb_rows);
    let pic = recon.pic;
    Ok(finish(state, hdr, pic, mbs, width, height))
}

/// The new state and what to show, once the picture is decoded.
fn finish(
    state: &DecoderState,
    hdr: FrameHeader,
    pic: Picture,
    mbs: Vec<MbInfo>,
    width: usize,
    height: usize,
) -> Decoded {
    let pic = Arc::new(pic);
    let new_state = next_state(state, &hdr, pic.clone(), &mbs);
    Decoded {
        state: new_state,
        shown: if hdr.tag.show_frame { Some(pic) } else { None },
        info: FrameInfo {
            header: hdr,
            width,
            height,
        },
        modes: mbs,
    }
}

/// The coefficients of one macroblock row, as the token reader hands
/// them to reconstruction.
struct RowCoeffs {
    /// Per macroblock; all zero where `residual` is false.
    coeffs: Vec<MbCoeffs>,
    /// Per macroblock: some token other than an immediate end of block
    /// was coded.
    residual: Vec<bool>,
}

impl RowCoeffs {
    fn new(mb_cols: usize) -> Self {
        RowCoeffs {
            coeffs: (0..mb_cols).map(|_| MbCoeffs::new()).collect(),
            residual: vec![false; mb_cols],
        }
    }
}

/// What the token reader reads a frame with.
pub(crate) struct RowTokens<'a> {
    pub mbs: &'a [MbInfo],
    pub mb_cols: usize,
    pub partitions: usize,
    pub dequant: &'a [Dequant; 4],
    pub probs: tokens::TokenProbs,
}

impl RowTokens<'_> {
    fn reader<'d>(&self, decoders: Vec<BoolDecoder<'d>>) -> TokenReader<'d> {
        TokenReader {
            decoders,
            above: vec![[0; 9]; self.mb_cols],
        }
    }
}

/// The token reader's state across rows (one thread).
struct TokenReader<'d> {
    /// One per token partition; row `r` reads partition `r % count`.
    decoders: Vec<BoolDecoder<'d>>,
    /// The above contexts, per macroblock column.
    above: Vec<TokenContext>,
}

impl TokenReader<'_> {
    /// Reads the tokens of row `mb_y` into `row` (whose macroblocks with
    /// a residual are cleared first, as reconstruction leaves them).
    fn read_row(
        &mut self,
        t: &RowTokens,
        mb_y: usize,
        row: &mut RowCoeffs,
    ) -> Result<(), DecodeError> {
        let bd = &mut self.decoders[mb_y % t.partitions];
        let mut left: TokenContext = [0; 9];
        let mbs = &t.mbs[mb_y * t.mb_cols..(mb_y + 1) * t.mb_cols];
        let cells = mbs
            .iter()
            .zip(self.above.iter_mut())
            .zip(row.coeffs.iter_mut().zip(row.residual.iter_mut()));
        for ((mb, above), (coeffs, residual)) in cells {
            if *residual {
                *coeffs = MbCoeffs::new();
            }
            let has_y2 = mb.y_mode.has_y2();
            *residual = if mb.skip {
                tokens::skip_mb_coeffs(has_y2, above, &mut left);
                false
            } else {
                tokens::read_mb_coeffs(
                    bd,
                    &t.probs,
                    has_y2,
                    &t.dequant[mb.segment as usize & 3],
                    above,
                    &mut left,
                    coeffs,
                )
            };
        }
        if bd.bits_past_end() > OVERRUN_SLACK_BITS {
            return Err(DecodeError::PartitionOverrun(1 + mb_y % t.partitions));
        }
        Ok(())
    }
}

/// The reconstruction stage: prediction, residual and loop filter.
struct RowRecon<'a> {
    pic: Picture,
    refs: Option<&'a References>,
    filter: SubpelFilter,
    mbs: &'a [MbInfo],
    mb_cols: usize,
    /// Per macroblock: no coefficients (its inner edges are not filtered).
    skips: Vec<bool>,
    hdr: &'a FrameHeader,
}

impl RowRecon<'_> {
    /// Reconstructs row `mb_y` and loop filters the row above it, which
    /// nothing reads unfiltered any more: intra prediction of the rows
    /// below only sees row `mb_y`.
    fn row(&mut self, mb_y: usize, row: &mut RowCoeffs) {
        let cols = self.mb_cols;
        let mbs = &self.mbs[mb_y * cols..(mb_y + 1) * cols];
        for (mb_x, mb) in mbs.iter().enumerate() {
            let residual = row.residual[mb_x];
            // A macroblock without coefficients skips its inner loop filter
            // edges, whether or not the skip flag was coded.
            self.skips[mb_y * cols + mb_x] = !residual;
            let c = if residual {
                Some(&mut row.coeffs[mb_x])
            } else {
                None
            };
            recon::reconstruct_mb(&mut self.pic, self.refs, self.filter, mb, c, mb_x, mb_y);
        }
        recon::extend_row_right(&mut self.pic, mb_y);
        if mb_y > 0 {
            self.loop_filter(mb_y - 1..mb_y);
        }
    }

    fn loop_filter(&mut self, rows: core::ops::Range<usize>) {
        if self.hdr.filter_level == 0 {
            return;
        }
        let [y, u, v] = &mut self.pic.planes;
        loop_filter::FrameFilter::new(self.hdr, self.mbs, &self.skips, self.mb_cols).filter_rows(
            y,
            Some((u, v)),
            rows,
        );
    }

    /// Filters the last row and extends the borders for prediction.
    fn finish(&mut self, mb_rows: usize) {
        if mb_rows > 0 {
            self.loop_filter(mb_rows - 1..mb_rows);
        }
        for p in self.pic.planes.iter_mut() {
            p.extend_borders();
        }
    }
}
/// A frame's first partition, parsed: everything but the residual.
struct Front<'a> {
    hdr: FrameHeader,
    mbs: Vec<MbInfo>,
    parts: Vec<&'a [u8]>,
    frame_size: crate::header::FrameSize,
}

/// A frame's header, with the first partition's decoder where the
/// macroblock records start.
struct Head<'a> {
    hdr: FrameHeader,
    bd: BoolDecoder<'a>,
    parts: Vec<&'a [u8]>,
    frame_size: crate::header::FrameSize,
}

fn parse_head<'a>(state: &DecoderState, data: &'a [u8]) -> Result<Head<'a>, DecodeError> {
    let (tag, size, off) = header::parse_tag(data)?;
    if !tag.key_frame && state.refs.is_none() {
        return Err(DecodeError::NoKeyFrame);
    }
    // Like libvpx, the first partition's decoder may run on into the data
    // that follows it; only corrupt streams ever get there.
    let mut bd = BoolDecoder::new(&data[off..]);
    let hdr = header::parse_header(
        &mut bd,
        tag,
        size,
        Inherited {
            segment_features: &state.segment_features,
            filter_deltas: &state.filter_deltas,
            probs: &state.probs,
        },
    )?;
    let frame_size = size.unwrap_or(state.size);
    let parts = token_partitions(&data[off + tag.first_part_size..], hdr.partitions.count())?;
    Ok(Head {
        hdr,
        bd,
        parts,
        frame_size,
    })
}

fn parse_front<'a>(state: &DecoderState, data: &'a [u8]) -> Result<Front<'a>, DecodeError> {
    let Head {
        hdr,
        mut bd,
        parts,
        frame_size,
    } = parse_head(state, data)?;
    let mb_cols = (frame_size.width as usize).div_ceil(16);
    let mb_rows = (frame_size.height as usize).div_ceil(16);
    let mbs = modes::read_modes(&mut bd, &hdr, mb_cols, mb_rows, &state.segment_map);
    if bd.bits_past_end() > OVERRUN_SLACK_BITS {
        return Err(DecodeError::PartitionOverrun(0));
    }
    Ok(Front {
        hdr,
        mbs,
        parts,
        frame_size,
    })
}

/// Parses a frame's header and per-macroblock records without
/// reconstructing it (what rebase needs from the original frame).
pub fn parse_modes(
    state: &DecoderState,
    data: &[u8],
) -> Result<(FrameHeader, Vec<MbInfo>), DecodeError> {
    let f = parse_front(state, data)?;
    Ok((f.hdr, f.mbs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ivf::IvfReader;

    fn frames(name: &str) -> Vec<Vec<u8>> {
        let path = format!("{}/../test-vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        IvfReader::new(&bytes[..])
            .unwrap()
            .map(|f| f.unwrap().data)
            .collect()
    }

    /// Decodes `frames` with `threads`, going on after errors from the
    /// last good state; the shown pictures' luma and each frame's error.
    fn run(frames: &[Vec<u8>], threads: usize) -> Vec<Result<Option<Vec<u8>>, DecodeError>> {
        let mut state = DecoderState::new();
        frames
            .iter()
            .map(|f| {
                let d = decode_picture_threaded(&state, f, threads)?;
                state = d.state;
                Ok(d.shown.map(|p| p.planes[0].data.clone()))
            })
            .collect()
    }

    /// [`run`] through a [`crate::Decoder`] that keeps its threads.
    fn run_kept(frames: &[Vec<u8>], threads: usize) -> Vec<Result<Option<Vec<u8>>, DecodeError>> {
        let mut decoder = crate::Decoder::with_threads(threads);
        frames
            .iter()
            .map(|f| {
                let (shown, _) = decoder.decode(f).map_err(|e| e.source)?;
                Ok(shown.map(|p| p.planes[0].data.clone()))
            })
            .collect()
    }

    /// Every thread count gives the same pictures and the same errors,
    /// also on damaged frames (bytes flipped or cut off in the token
    /// partitions, where the rows that fail are not the first ones) and
    /// with the threads kept from frame to frame.
    #[test]
    fn thread_counts_agree_on_good_and_damaged_streams() {
        for name in ["excam-token-parts-2.ivf", "excam-size-65x47.ivf"] {
            let good = frames(name);
            let want = run(&good, 1);
            assert!(want.iter().all(|r| r.is_ok()), "{name}");
            for threads in [2, 3, 8] {
                assert!(run(&good, threads) == want, "{name}: {threads} threads");
                assert!(
                    run_kept(&good, threads) == want,
                    "{name}: {threads} kept threads"
                );
            }
            let mut s = 0x2545_f491_u32;
            let mut rnd = move || {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s
            };
            let mut errors = 0;
            for trial in 0..40 {
                let mut bad = good.clone();
                for f in bad.iter_mut().skip(trial % 3) {
                    let len = f.len();
                    if trial % 2 == 0 {
                        f.truncate(len / 2 + rnd() as usize % (len / 2 + 1));
                    } else {
                        for _ in 0..4 {
                            let at = len / 4 + rnd() as usize % (len - len / 4);
                            f[at] ^= 1 << (rnd() % 8);
                        }
                    }
                }
                let want = run(&bad, 1);
                errors += want.iter().filter(|r| r.is_err()).count();
                assert!(run(&bad, 2) == want, "{name}: trial {trial}");
                assert!(run_kept(&bad, 3) == want, "{name}: trial {trial}, kept");
            }
            // The damage must have exercised the error paths.
            assert!(errors > 0, "{name}: no damaged frame was refused");
        }
    }
}
