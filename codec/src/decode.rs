//! Frame decoding: `decode(state, bytes) -> (state', picture)` (RFC 6386
//! section 5 gives the overall process).

use std::sync::Arc;

use crate::bool_decoder::BoolDecoder;
use crate::dequant::Dequant;
use crate::error::DecodeError;
use crate::header::{self, FrameHeader, Inherited};
use crate::image::Frame;
use crate::loop_filter;
use crate::modes::{self, MbInfo};
use crate::picture::Picture;
use crate::recon::{self, SubpelFilter};
use crate::state::{next_state, DecoderState};
use crate::tables::{B_PRED, SPLITMV, ZEROMV};
use crate::tokens::{self, MbCoeffs, TokenContext};

/// A partition may read this many bytes past its end before the decoder
/// calls it corrupt. libvpx pads with zeros silently; a small allowance
/// keeps us as tolerant on mildly truncated data while still refusing
/// streams that are mostly missing.
const OVERRUN_SLACK_BITS: usize = 8 * 64;

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
) -> Result<(DecoderState, Option<Frame>), DecodeError> {
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

/// Loop filter level per segment, reference frame and mode class
/// (libvpx `vp8_loop_filter_frame_init`).
pub(crate) fn filter_levels(hdr: &FrameHeader) -> [[[u8; 4]; 4]; 4] {
    let mut out = [[[0u8; 4]; 4]; 4];
    let clamp = |v: i32| v.clamp(0, 63) as u8;
    for (seg, lv) in out.iter_mut().enumerate() {
        let mut level = hdr.filter_level as i32;
        if hdr.segmentation_enabled {
            let f = hdr.segment_features.filter_level[seg] as i32;
            level = if hdr.segment_features.absolute {
                f
            } else {
                level + f
            };
            level = level.clamp(0, 63);
        }
        if !hdr.filter_deltas_enabled {
            *lv = [[level as u8; 4]; 4];
            continue;
        }
        let d = &hdr.filter_deltas;
        let intra = level + d.ref_frame[0] as i32;
        lv[0][0] = clamp(intra + d.mode[0] as i32);
        lv[0][1] = clamp(intra);
        for r in 1..4 {
            let l = level + d.ref_frame[r] as i32;
            for m in 1..4 {
                lv[r][m] = clamp(l + d.mode[m] as i32);
            }
        }
    }
    out
}

/// The mode class that indexes the loop filter mode deltas.
pub(crate) fn mode_class(y_mode: u8) -> usize {
    match y_mode {
        B_PRED => 0,
        ZEROMV => 1,
        SPLITMV => 3,
        m if m < B_PRED => 1,
        _ => 2,
    }
}

pub(crate) fn apply_loop_filter(
    pic: &mut Picture,
    hdr: &FrameHeader,
    mbs: &[MbInfo],
    skips: &[bool],
    mb_cols: usize,
) {
    let levels = filter_levels(hdr);
    let key = hdr.tag.key_frame;
    for (i, mb) in mbs.iter().enumerate() {
        let (mb_x, mb_y) = (i % mb_cols, i / mb_cols);
        let level = levels[mb.segment as usize][mb.ref_frame as usize][mode_class(mb.y_mode)];
        if level == 0 {
            continue;
        }
        let inner = !(skips[i] && mb.y_mode != B_PRED && mb.y_mode != SPLITMV);
        let lim = loop_filter::edge_limits(level, hdr.sharpness, key, hdr.filter_simple);
        if hdr.filter_simple {
            let p = &mut pic.planes[0];
            let pos = p.index(mb_x as isize * 16, mb_y as isize * 16);
            let stride = p.stride;
            loop_filter::filter_mb_simple(
                &mut p.data,
                pos,
                stride,
                &lim,
                mb_x > 0,
                mb_y > 0,
                inner,
            );
        } else {
            let [y, u, v] = &mut pic.planes;
            let pos = y.index(mb_x as isize * 16, mb_y as isize * 16);
            loop_filter::filter_mb_normal(
                &mut y.data,
                pos,
                y.stride,
                16,
                &lim,
                mb_x > 0,
                mb_y > 0,
                inner,
            );
            // U and V have the same geometry; filter them together.
            let pos = u.index(mb_x as isize * 8, mb_y as isize * 8);
            loop_filter::filter_mb_normal_uv(
                &mut u.data,
                &mut v.data,
                pos,
                u.stride,
                &lim,
                mb_x > 0,
                mb_y > 0,
                inner,
            );
        }
    }
}

/// Decodes one frame and returns the new state, the picture to show and
/// what the frame was.
pub fn decode_picture(state: &DecoderState, data: &[u8]) -> Result<Decoded, DecodeError> {
    let Front {
        hdr,
        mbs,
        parts,
        frame_size,
    } = parse_front(state, data)?;
    let tag = hdr.tag;
    let (width, height) = (frame_size.width as usize, frame_size.height as usize);
    let mb_cols = width.div_ceil(16);
    let mb_rows = height.div_ceil(16);

    let dequant = Dequant::per_segment(&hdr.quant, hdr.segmentation_enabled, &hdr.segment_features);
    let filter = SubpelFilter::for_version(tag.version);
    let refs = if tag.key_frame {
        None
    } else {
        state.refs.as_ref()
    };

    let mut pic = Picture::new(width, height);
    recon::init_intra_borders(&mut pic);
    let mut decoders: Vec<BoolDecoder> = parts.iter().map(|p| BoolDecoder::new(p)).collect();
    let mut above_ctx: Vec<TokenContext> = vec![[0; 9]; mb_cols];
    let mut skips = vec![false; mbs.len()];
    let mut coeffs = MbCoeffs::new();
    let token_probs = tokens::TokenProbs::new(&hdr.probs.coeff);
    for mb_y in 0..mb_rows {
        let bd = &mut decoders[mb_y % hdr.partitions];
        let mut left_ctx: TokenContext = [0; 9];
        for mb_x in 0..mb_cols {
            let i = mb_y * mb_cols + mb_x;
            let mb = &mbs[i];
            let has_y2 = mb.y_mode != B_PRED && mb.y_mode != SPLITMV;
            let mut residual = false;
            if mb.skip {
                tokens::skip_mb_coeffs(has_y2, &mut above_ctx[mb_x], &mut left_ctx);
            } else {
                residual = tokens::read_mb_coeffs(
                    bd,
                    &token_probs,
                    has_y2,
                    &dequant[mb.segment as usize],
                    &mut above_ctx[mb_x],
                    &mut left_ctx,
                    &mut coeffs,
                );
            }
            // A macroblock without coefficients skips its inner loop filter
            // edges, whether or not the skip flag was coded.
            skips[i] = !residual;
            let c = if residual { Some(&mut coeffs) } else { None };
            recon::reconstruct_mb(&mut pic, refs, filter, mb, c, mb_x, mb_y);
            if residual {
                coeffs = MbCoeffs::new();
            }
        }
        recon::extend_row_right(&mut pic, mb_y);
        if bd.bits_past_end() > OVERRUN_SLACK_BITS {
            return Err(DecodeError::PartitionOverrun(1 + mb_y % hdr.partitions));
        }
    }

    if hdr.filter_level > 0 {
        apply_loop_filter(&mut pic, &hdr, &mbs, &skips, mb_cols);
    }
    for p in pic.planes.iter_mut() {
        p.extend_borders();
    }
    let pic = Arc::new(pic);

    let new_state = next_state(state, &hdr, pic.clone(), &mbs);
    Ok(Decoded {
        state: new_state,
        shown: if tag.show_frame { Some(pic) } else { None },
        info: FrameInfo {
            header: hdr,
            width,
            height,
        },
        modes: mbs,
    })
}

/// A frame's first partition, parsed: everything but the residual.
struct Front<'a> {
    hdr: FrameHeader,
    mbs: Vec<MbInfo>,
    parts: Vec<&'a [u8]>,
    frame_size: crate::header::FrameSize,
}

fn parse_front<'a>(state: &DecoderState, data: &'a [u8]) -> Result<Front<'a>, DecodeError> {
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
    let mb_cols = (frame_size.width as usize).div_ceil(16);
    let mb_rows = (frame_size.height as usize).div_ceil(16);
    let parts = token_partitions(&data[off + tag.first_part_size..], hdr.partitions)?;
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
