//! The frame tag, key frame header and first-partition frame header
//! (RFC 6386 sections 9 and 19.1–19.2).

use crate::bool_decoder::BoolDecoder;
use crate::bool_encoder::BoolEncoder;
use crate::error::DecodeError;
use crate::probs::Probabilities;
use crate::tables;

/// How many token partitions follow the first partition (RFC 6386
/// section 9.5: a 2-bit log2 count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PartitionCount {
    /// One token partition.
    #[default]
    One = 0,
    /// Two, macroblock rows alternating.
    Two = 1,
    /// Four.
    Four = 2,
    /// Eight.
    Eight = 3,
}

impl PartitionCount {
    /// The count coded by the header's 2-bit field `bits` (its low two bits).
    pub fn from_log2(bits: u32) -> Self {
        [Self::One, Self::Two, Self::Four, Self::Eight][(bits & 3) as usize]
    }

    /// The value for `n` partitions, if VP8 can code it (1, 2, 4 or 8).
    pub fn from_count(n: usize) -> Option<Self> {
        match n {
            1 => Some(Self::One),
            2 => Some(Self::Two),
            4 => Some(Self::Four),
            8 => Some(Self::Eight),
            _ => None,
        }
    }

    /// The number of token partitions.
    #[inline]
    pub fn count(self) -> usize {
        1 << self as u8
    }

    /// The header's 2-bit field.
    pub fn log2(self) -> u32 {
        self as u32
    }
}

/// What an inter frame copies into the golden or the alt-ref buffer,
/// before this frame's refreshes (RFC 6386 section 9.7,
/// `copy_buffer_to_golden` / `copy_buffer_to_alternate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BufferCopy {
    /// Nothing.
    #[default]
    None = 0,
    /// The last frame.
    Last = 1,
    /// The other of the two: the alt-ref frame into golden, the golden
    /// frame into alt-ref.
    Other = 2,
    /// The 2-bit field's unassigned value 3; copies nothing, and is kept
    /// so that a header is written back as it was read.
    Reserved = 3,
}

impl BufferCopy {
    /// The value of the header's 2-bit field `bits` (its low two bits).
    pub fn from_bits(bits: u32) -> Self {
        [Self::None, Self::Last, Self::Other, Self::Reserved][(bits & 3) as usize]
    }

    /// The value of the encoder's `copy_to_golden`/`copy_to_altref`
    /// parameter (0 none, 1 last, 2 the other), if it is one.
    pub fn from_param(v: u8) -> Option<Self> {
        (v <= 2).then(|| Self::from_bits(u32::from(v)))
    }
}

/// The three-byte frame tag that starts every frame (RFC 9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTag {
    /// True for a key frame (intra only, resets the state).
    pub key_frame: bool,
    /// Bitstream version 0..7 as libvpx reads it; 1..3 select bilinear
    /// filters (and full-pixel chroma for 3), 4..7 behave like 0.
    pub version: u8,
    /// False for frames that update references but are not displayed.
    pub show_frame: bool,
    /// Size in bytes of the first partition (modes and header).
    pub first_part_size: usize,
}

/// Dimensions from a key frame header (RFC 9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FrameSize {
    /// Width in pixels (14 bits).
    pub width: u16,
    /// Height in pixels (14 bits).
    pub height: u16,
    /// Horizontal upscaling code (reported, not applied).
    pub horiz_scale: u8,
    /// Vertical upscaling code (reported, not applied).
    pub vert_scale: u8,
}

/// Parses the uncompressed data chunk. Returns the tag, the key frame
/// dimensions, and the offset of the first partition.
pub fn parse_tag(data: &[u8]) -> Result<(FrameTag, Option<FrameSize>, usize), DecodeError> {
    if data.len() < 3 {
        return Err(DecodeError::Truncated("frame tag needs 3 bytes"));
    }
    let raw = u32::from(data[0]) | u32::from(data[1]) << 8 | u32::from(data[2]) << 16;
    let tag = FrameTag {
        key_frame: raw & 1 == 0,
        version: ((raw >> 1) & 7) as u8,
        show_frame: (raw >> 4) & 1 == 1,
        first_part_size: (raw >> 5) as usize,
    };
    let mut offset = 3;
    let mut size = None;
    if tag.key_frame {
        if data.len() < 10 {
            return Err(DecodeError::Truncated("key frame header needs 10 bytes"));
        }
        if data[3..6] != [0x9d, 0x01, 0x2a] {
            return Err(DecodeError::BadStartCode(data[3], data[4], data[5]));
        }
        let w = u16::from_le_bytes([data[6], data[7]]);
        let h = u16::from_le_bytes([data[8], data[9]]);
        let s = FrameSize {
            width: w & 0x3fff,
            height: h & 0x3fff,
            horiz_scale: (w >> 14) as u8,
            vert_scale: (h >> 14) as u8,
        };
        if s.width == 0 || s.height == 0 {
            return Err(DecodeError::ZeroSize(s.width, s.height));
        }
        size = Some(s);
        offset = 10;
    }
    if tag.first_part_size == 0 {
        return Err(DecodeError::BadPartitionSize {
            index: 0,
            claimed: 0,
            available: data.len() - offset,
        });
    }
    if data.len() - offset < tag.first_part_size {
        return Err(DecodeError::BadPartitionSize {
            index: 0,
            claimed: tag.first_part_size,
            available: data.len() - offset,
        });
    }
    Ok((tag, size, offset))
}

/// Writes the frame tag and key frame header: the uncompressed chunk
/// (RFC 9.1). `first_part_size` is the size of the first partition.
pub fn write_tag(tag: &FrameTag, size: Option<&FrameSize>, out: &mut Vec<u8>) {
    let raw = (!tag.key_frame as u32)
        | (tag.version as u32 & 7) << 1
        | (tag.show_frame as u32) << 4
        | (tag.first_part_size as u32) << 5;
    out.extend_from_slice(&raw.to_le_bytes()[..3]);
    if let Some(s) = size {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&(s.width | (s.horiz_scale as u16) << 14).to_le_bytes());
        out.extend_from_slice(&(s.height | (s.vert_scale as u16) << 14).to_le_bytes());
    }
}

/// Per-segment quantizer and loop filter adjustments (RFC 9.3). They
/// persist until a frame updates them or a key frame resets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SegmentFeatures {
    /// True when the values replace the frame's, false when they add to it.
    pub absolute: bool,
    /// Quantizer index value or delta per segment.
    pub quant: [i8; 4],
    /// Loop filter level value or delta per segment.
    pub filter_level: [i8; 4],
}

/// Loop filter level deltas by reference frame and mode (RFC 9.4).
/// They persist until updated or reset by a key frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FilterDeltas {
    /// Indexed by reference frame: intra, last, golden, altref.
    pub ref_frame: [i8; 4],
    /// Indexed by mode class: B_PRED, ZEROMV, other MV modes, SPLITMV.
    pub mode: [i8; 4],
}

/// Quantizer indices of a frame (RFC 9.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuantIndices {
    /// Base index 0..127 (luma AC).
    pub q_index: u8,
    /// Luma DC delta.
    pub y1_dc: i8,
    /// Y2 DC delta.
    pub y2_dc: i8,
    /// Y2 AC delta.
    pub y2_ac: i8,
    /// Chroma DC delta.
    pub uv_dc: i8,
    /// Chroma AC delta.
    pub uv_ac: i8,
}

/// Everything the first partition says before the per-macroblock data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame tag.
    pub tag: FrameTag,
    /// Key frame dimensions, `None` for inter frames.
    pub size: Option<FrameSize>,
    /// Key frames: the color space bit (0 is the only defined value).
    pub color_space: bool,
    /// Key frames: the clamping type bit (1: no clamping needed).
    pub clamping_type: bool,
    /// Whether macroblocks carry segment ids this frame.
    pub segmentation_enabled: bool,
    /// Whether the segment map is coded in this frame.
    pub update_segment_map: bool,
    /// Whether this frame changed the segment features.
    pub update_segment_features: bool,
    /// Probabilities of the segment id tree.
    pub segment_tree_probs: [u8; 3],
    /// Segment features in force for this frame.
    pub segment_features: SegmentFeatures,
    /// True for the simple loop filter.
    pub filter_simple: bool,
    /// Frame loop filter level 0..63.
    pub filter_level: u8,
    /// Loop filter sharpness 0..7.
    pub sharpness: u8,
    /// Whether the reference/mode deltas apply.
    pub filter_deltas_enabled: bool,
    /// Whether this frame changed the deltas.
    pub update_filter_deltas: bool,
    /// Deltas in force for this frame.
    pub filter_deltas: FilterDeltas,
    /// Number of DCT token partitions.
    pub partitions: PartitionCount,
    /// Quantizer indices.
    pub quant: QuantIndices,
    /// Copy this frame into the golden reference.
    pub refresh_golden: bool,
    /// Copy this frame into the altref reference.
    pub refresh_altref: bool,
    /// 0: none, 1: last frame, 2: altref → golden (before the refreshes).
    pub copy_to_golden: BufferCopy,
    /// 0: none, 1: last frame, 2: golden → altref (before the refreshes).
    pub copy_to_altref: BufferCopy,
    /// Sign bias of the golden reference (MV prediction).
    pub sign_bias_golden: bool,
    /// Sign bias of the altref reference (MV prediction).
    pub sign_bias_altref: bool,
    /// Whether the probabilities of this frame persist.
    pub refresh_entropy: bool,
    /// Copy this frame into the last-frame reference.
    pub refresh_last: bool,
    /// Probabilities used by this frame (after its updates).
    pub probs: Probabilities,
    /// Probability that a macroblock has no coefficients, if coded.
    pub skip_prob: Option<u8>,
    /// Probability that a macroblock is intra (inter frames).
    pub prob_intra: u8,
    /// Probability that an inter macroblock uses the last frame.
    pub prob_last: u8,
    /// Probability that a non-last inter macroblock uses golden.
    pub prob_golden: u8,
}

/// What a frame header inherits from the state before it.
pub struct Inherited<'a> {
    /// Segment features of the previous frame.
    pub segment_features: &'a SegmentFeatures,
    /// Loop filter deltas of the previous frame.
    pub filter_deltas: &'a FilterDeltas,
    /// Persisting probabilities.
    pub probs: &'a Probabilities,
}

/// Reads the frame header from the first partition (RFC 9.2–9.11, 19.2).
pub fn parse_header(
    bd: &mut BoolDecoder,
    tag: FrameTag,
    size: Option<FrameSize>,
    prev: Inherited,
) -> Result<FrameHeader, DecodeError> {
    let key = tag.key_frame;
    let (mut color_space, mut clamping_type) = (false, false);
    if key {
        color_space = bd.read_bit();
        clamping_type = bd.read_bit();
    }
    // A key frame resets features, deltas and probabilities.
    let mut segment_features = if key {
        SegmentFeatures::default()
    } else {
        *prev.segment_features
    };
    let mut filter_deltas = if key {
        FilterDeltas::default()
    } else {
        *prev.filter_deltas
    };
    let mut probs = if key {
        Probabilities::default()
    } else {
        prev.probs.clone()
    };

    let seg = read_segmentation(bd, &mut segment_features);
    let lf = read_loop_filter(bd, &mut filter_deltas);
    let partitions = PartitionCount::from_log2(bd.read_literal(2));
    let quant = read_quant(bd);
    let refresh = read_refresh(bd, key);
    read_coeff_updates(bd, &mut probs);
    let skip_prob = if bd.read_flag() {
        Some(bd.read_literal(8) as u8)
    } else {
        None
    };
    let [prob_intra, prob_last, prob_golden] = if key {
        [0; 3]
    } else {
        read_inter_probs(bd, &mut probs)
    };

    Ok(FrameHeader {
        tag,
        size,
        color_space,
        clamping_type,
        segmentation_enabled: seg.enabled,
        update_segment_map: seg.update_map,
        update_segment_features: seg.update_features,
        segment_tree_probs: seg.tree_probs,
        segment_features,
        filter_simple: lf.simple,
        filter_level: lf.level,
        sharpness: lf.sharpness,
        filter_deltas_enabled: lf.deltas_enabled,
        update_filter_deltas: lf.update_deltas,
        filter_deltas,
        partitions,
        quant,
        refresh_golden: refresh.golden,
        refresh_altref: refresh.altref,
        copy_to_golden: refresh.copy_to_golden,
        copy_to_altref: refresh.copy_to_altref,
        sign_bias_golden: refresh.sign_bias_golden,
        sign_bias_altref: refresh.sign_bias_altref,
        refresh_entropy: refresh.entropy,
        refresh_last: refresh.last,
        probs,
        skip_prob,
        prob_intra,
        prob_last,
        prob_golden,
    })
}

/// Writes the frame header into the first partition, the mirror of
/// [`parse_header`]: every field is read and written in this one module.
/// Probabilities that differ from those inherited (`prev`) are sent as
/// updates; the caller decides which differences pay for themselves.
pub fn write_header(bw: &mut BoolEncoder, hdr: &FrameHeader, prev: Inherited) {
    let key = hdr.tag.key_frame;
    if key {
        bw.put_bit(hdr.color_space);
        bw.put_bit(hdr.clamping_type);
    }
    let base_probs = if key {
        Probabilities::default()
    } else {
        prev.probs.clone()
    };
    let base_deltas = if key {
        FilterDeltas::default()
    } else {
        *prev.filter_deltas
    };
    write_segmentation(bw, hdr);
    write_loop_filter(bw, hdr, &base_deltas);
    bw.put_literal(2, hdr.partitions.log2());
    write_quant(bw, &hdr.quant);
    write_refresh(bw, hdr);
    write_coeff_updates(bw, &hdr.probs, &base_probs);
    bw.put_bit(hdr.skip_prob.is_some());
    if let Some(p) = hdr.skip_prob {
        bw.put_literal(8, p as u32);
    }
    if !key {
        write_inter_probs(bw, hdr, &base_probs);
    }
}

// Each section of the header below is read and written side by side, in
// the order the header codes them, so the two cannot drift apart.

/// The segmentation section's flags and tree probabilities (RFC 9.3).
struct Segmentation {
    enabled: bool,
    update_map: bool,
    update_features: bool,
    tree_probs: [u8; 3],
}

/// Reads the segmentation section; updated features replace `features`.
fn read_segmentation(bd: &mut BoolDecoder, features: &mut SegmentFeatures) -> Segmentation {
    let mut seg = Segmentation {
        enabled: bd.read_flag(),
        update_map: false,
        update_features: false,
        tree_probs: [255u8; 3],
    };
    if seg.enabled {
        seg.update_map = bd.read_flag();
        seg.update_features = bd.read_flag();
        if seg.update_features {
            features.absolute = bd.read_flag();
            for q in features.quant.iter_mut() {
                *q = bd.read_optional_signed(7) as i8;
            }
            for l in features.filter_level.iter_mut() {
                *l = bd.read_optional_signed(6) as i8;
            }
        }
        if seg.update_map {
            for p in seg.tree_probs.iter_mut() {
                if bd.read_flag() {
                    *p = bd.read_literal(8) as u8;
                }
            }
        }
    }
    seg
}

/// Writes the segmentation section of `hdr`.
fn write_segmentation(bw: &mut BoolEncoder, hdr: &FrameHeader) {
    bw.put_bit(hdr.segmentation_enabled);
    if hdr.segmentation_enabled {
        bw.put_bit(hdr.update_segment_map);
        bw.put_bit(hdr.update_segment_features);
        if hdr.update_segment_features {
            let f = &hdr.segment_features;
            bw.put_bit(f.absolute);
            for &q in &f.quant {
                bw.put_optional_signed(7, q as i32);
            }
            for &l in &f.filter_level {
                bw.put_optional_signed(6, l as i32);
            }
        }
        if hdr.update_segment_map {
            for &p in &hdr.segment_tree_probs {
                bw.put_bit(p != 255);
                if p != 255 {
                    bw.put_literal(8, p as u32);
                }
            }
        }
    }
}

/// The loop filter section's fields (RFC 9.6) and its delta flags (9.4).
struct LoopFilter {
    simple: bool,
    level: u8,
    sharpness: u8,
    deltas_enabled: bool,
    update_deltas: bool,
}

/// Reads the loop filter section; updated deltas replace those in `deltas`.
fn read_loop_filter(bd: &mut BoolDecoder, deltas: &mut FilterDeltas) -> LoopFilter {
    let mut lf = LoopFilter {
        simple: bd.read_flag(),
        level: bd.read_literal(6) as u8,
        sharpness: bd.read_literal(3) as u8,
        deltas_enabled: bd.read_flag(),
        update_deltas: false,
    };
    if lf.deltas_enabled {
        lf.update_deltas = bd.read_flag();
        if lf.update_deltas {
            // Unlike the segment features, an absent delta keeps its old value.
            for d in deltas.ref_frame.iter_mut().chain(deltas.mode.iter_mut()) {
                if bd.read_flag() {
                    *d = bd.read_signed(6) as i8;
                }
            }
        }
    }
    lf
}

/// Writes the loop filter section of `hdr`; deltas equal to `old` (those
/// in force before this frame) are not sent.
fn write_loop_filter(bw: &mut BoolEncoder, hdr: &FrameHeader, old: &FilterDeltas) {
    bw.put_bit(hdr.filter_simple);
    bw.put_literal(6, hdr.filter_level as u32);
    bw.put_literal(3, hdr.sharpness as u32);
    bw.put_bit(hdr.filter_deltas_enabled);
    if hdr.filter_deltas_enabled {
        bw.put_bit(hdr.update_filter_deltas);
        if hdr.update_filter_deltas {
            let new = &hdr.filter_deltas;
            let pairs = old
                .ref_frame
                .iter()
                .zip(&new.ref_frame)
                .chain(old.mode.iter().zip(&new.mode));
            for (&o, &n) in pairs {
                // An absent delta keeps its old value, so send only changes.
                bw.put_bit(o != n);
                if o != n {
                    bw.put_signed(6, n as i32);
                }
            }
        }
    }
}

/// Reads the quantizer indices (RFC 9.6).
fn read_quant(bd: &mut BoolDecoder) -> QuantIndices {
    QuantIndices {
        q_index: bd.read_literal(7) as u8,
        y1_dc: bd.read_optional_signed(4) as i8,
        y2_dc: bd.read_optional_signed(4) as i8,
        y2_ac: bd.read_optional_signed(4) as i8,
        uv_dc: bd.read_optional_signed(4) as i8,
        uv_ac: bd.read_optional_signed(4) as i8,
    }
}

/// Writes the quantizer indices.
fn write_quant(bw: &mut BoolEncoder, q: &QuantIndices) {
    bw.put_literal(7, q.q_index as u32);
    for d in [q.y1_dc, q.y2_dc, q.y2_ac, q.uv_dc, q.uv_ac] {
        bw.put_optional_signed(4, d as i32);
    }
}

/// Which references this frame refreshes or copies, their sign biases and
/// whether its probabilities persist (RFC 9.7–9.8).
struct Refresh {
    golden: bool,
    altref: bool,
    copy_to_golden: BufferCopy,
    copy_to_altref: BufferCopy,
    sign_bias_golden: bool,
    sign_bias_altref: bool,
    entropy: bool,
    last: bool,
}

/// Reads the refresh flags; a key frame codes only `refresh_entropy` and
/// refreshes every reference.
fn read_refresh(bd: &mut BoolDecoder, key: bool) -> Refresh {
    let mut r = Refresh {
        golden: true,
        altref: true,
        copy_to_golden: BufferCopy::None,
        copy_to_altref: BufferCopy::None,
        sign_bias_golden: false,
        sign_bias_altref: false,
        entropy: false,
        last: true,
    };
    if !key {
        r.golden = bd.read_flag();
        r.altref = bd.read_flag();
        if !r.golden {
            r.copy_to_golden = BufferCopy::from_bits(bd.read_literal(2));
        }
        if !r.altref {
            r.copy_to_altref = BufferCopy::from_bits(bd.read_literal(2));
        }
        r.sign_bias_golden = bd.read_flag();
        r.sign_bias_altref = bd.read_flag();
    }
    r.entropy = bd.read_flag();
    r.last = key || bd.read_flag();
    r
}

/// Writes the refresh flags of `hdr`.
fn write_refresh(bw: &mut BoolEncoder, hdr: &FrameHeader) {
    let key = hdr.tag.key_frame;
    if !key {
        bw.put_bit(hdr.refresh_golden);
        bw.put_bit(hdr.refresh_altref);
        if !hdr.refresh_golden {
            bw.put_literal(2, hdr.copy_to_golden as u32);
        }
        if !hdr.refresh_altref {
            bw.put_literal(2, hdr.copy_to_altref as u32);
        }
        bw.put_bit(hdr.sign_bias_golden);
        bw.put_bit(hdr.sign_bias_altref);
    }
    bw.put_bit(hdr.refresh_entropy);
    if !key {
        bw.put_bit(hdr.refresh_last);
    }
}

/// Reads the token probability updates into `probs` (RFC 13.4).
fn read_coeff_updates(bd: &mut BoolDecoder, probs: &mut Probabilities) {
    for (i, plane) in probs.coeff.iter_mut().enumerate() {
        for (j, band) in plane.iter_mut().enumerate() {
            for (k, ctx) in band.iter_mut().enumerate() {
                for (l, p) in ctx.iter_mut().enumerate() {
                    if bd.read_bool(tables::COEFF_UPDATE_PROBS[i][j][k][l]) {
                        *p = bd.read_literal(8) as u8;
                    }
                }
            }
        }
    }
}

/// Writes as updates the token probabilities of `new` that differ from
/// `base`.
fn write_coeff_updates(bw: &mut BoolEncoder, new: &Probabilities, base: &Probabilities) {
    for i in 0..4 {
        for j in 0..8 {
            for k in 0..3 {
                for l in 0..11 {
                    let p = new.coeff[i][j][k][l];
                    let changed = p != base.coeff[i][j][k][l];
                    bw.put_bool(tables::COEFF_UPDATE_PROBS[i][j][k][l], changed);
                    if changed {
                        bw.put_literal(8, p as u32);
                    }
                }
            }
        }
    }
}

/// Reads an inter frame's reference probabilities, returned as
/// `[prob_intra, prob_last, prob_golden]`, and its mode and MV probability
/// updates into `probs` (RFC 9.10, 16.2, 17.2).
fn read_inter_probs(bd: &mut BoolDecoder, probs: &mut Probabilities) -> [u8; 3] {
    // Array elements are evaluated left to right, the header's order.
    let refs = [
        bd.read_literal(8) as u8,
        bd.read_literal(8) as u8,
        bd.read_literal(8) as u8,
    ];
    if bd.read_flag() {
        for p in probs.y_mode.iter_mut() {
            *p = bd.read_literal(8) as u8;
        }
    }
    if bd.read_flag() {
        for p in probs.uv_mode.iter_mut() {
            *p = bd.read_literal(8) as u8;
        }
    }
    for (i, comp) in probs.mv.iter_mut().enumerate() {
        for (j, p) in comp.iter_mut().enumerate() {
            if bd.read_bool(tables::MV_UPDATE_PROBS[i][j]) {
                let x = bd.read_literal(7) as u8;
                *p = if x == 0 { 1 } else { x << 1 };
            }
        }
    }
    refs
}

/// Writes an inter frame's reference probabilities and, as updates, its
/// mode and MV probabilities that differ from `base`.
fn write_inter_probs(bw: &mut BoolEncoder, hdr: &FrameHeader, base: &Probabilities) {
    bw.put_literal(8, hdr.prob_intra as u32);
    bw.put_literal(8, hdr.prob_last as u32);
    bw.put_literal(8, hdr.prob_golden as u32);
    let y_changed = hdr.probs.y_mode != base.y_mode;
    bw.put_bit(y_changed);
    if y_changed {
        for &p in &hdr.probs.y_mode {
            bw.put_literal(8, p as u32);
        }
    }
    let uv_changed = hdr.probs.uv_mode != base.uv_mode;
    bw.put_bit(uv_changed);
    if uv_changed {
        for &p in &hdr.probs.uv_mode {
            bw.put_literal(8, p as u32);
        }
    }
    for i in 0..2 {
        for j in 0..19 {
            let new = hdr.probs.mv[i][j];
            let changed = new != base.mv[i][j];
            bw.put_bool(tables::MV_UPDATE_PROBS[i][j], changed);
            if changed {
                bw.put_literal(7, (new >> 1) as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every count VP8 codes comes back from its 2-bit field and from
    /// itself; other counts have no value.
    #[test]
    fn partition_counts() {
        for (bits, n) in [(0, 1), (1, 2), (2, 4), (3, 8)] {
            let p = PartitionCount::from_log2(bits);
            assert_eq!((p.count(), p.log2()), (n, bits));
            assert_eq!(PartitionCount::from_count(n), Some(p));
        }
        for n in [0, 3, 5, 16] {
            assert_eq!(PartitionCount::from_count(n), None);
        }
    }

    /// The encoder's parameter values 0..=2 are the header's; 3 exists
    /// only in the header.
    #[test]
    fn buffer_copies() {
        for bits in 0..4 {
            assert_eq!(BufferCopy::from_bits(bits) as u32, bits);
        }
        assert_eq!(BufferCopy::from_param(2), Some(BufferCopy::Other));
        assert_eq!(BufferCopy::from_param(3), None);
    }
}
