//! Property tests of the bitstream layer: what the writers write, the
//! readers read back. Headers and mode records are drawn by parsing
//! random bytes (every byte string parses to some valid syntax), then
//! written and parsed again: the second parse must equal the first.

use excam_codec::bool_decoder::BoolDecoder;
use excam_codec::bool_encoder::BoolEncoder;
use excam_codec::encode::modes::write_modes;
use excam_codec::header::{
    parse_header, write_header, FilterDeltas, FrameHeader, FrameSize, FrameTag, Inherited,
    SegmentFeatures,
};
use excam_codec::modes::read_modes;
use excam_codec::probs::Probabilities;
use proptest::prelude::*;

/// What a header inherits from the frames before it.
#[derive(Clone, Debug)]
struct Prev {
    segment_features: SegmentFeatures,
    filter_deltas: FilterDeltas,
    probs: Probabilities,
}

impl Prev {
    fn inherited(&self) -> Inherited<'_> {
        Inherited {
            segment_features: &self.segment_features,
            filter_deltas: &self.filter_deltas,
            probs: &self.probs,
        }
    }
}

fn tag(key_frame: bool, version: u8, show_frame: bool) -> (FrameTag, Option<FrameSize>) {
    let tag = FrameTag {
        key_frame,
        version,
        show_frame,
        first_part_size: 0,
    };
    let size = key_frame.then_some(FrameSize {
        width: 176,
        height: 144,
        horiz_scale: 0,
        vert_scale: 0,
    });
    (tag, size)
}

fn parse(bytes: &[u8], key: bool, version: u8, prev: &Prev) -> FrameHeader {
    let (t, size) = tag(key, version, true);
    let mut bd = BoolDecoder::new(bytes);
    parse_header(&mut bd, t, size, prev.inherited()).expect("any bytes parse")
}

fn write(hdr: &FrameHeader, prev: &Prev) -> Vec<u8> {
    let mut bw = BoolEncoder::new();
    write_header(&mut bw, hdr, prev.inherited());
    bw.finish()
}

/// A state to inherit from: that after a header parsed from `bytes`.
fn prev_from(bytes: &[u8]) -> Prev {
    let empty = Prev {
        segment_features: SegmentFeatures::default(),
        filter_deltas: FilterDeltas::default(),
        probs: Probabilities::default(),
    };
    let h = parse(bytes, true, 0, &empty);
    Prev {
        segment_features: h.segment_features,
        filter_deltas: h.filter_deltas,
        probs: h.probs,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Key and inter frame headers, from any inherited state.
    #[test]
    fn header_round_trips(
        first in prop::collection::vec(any::<u8>(), 64..400),
        bytes in prop::collection::vec(any::<u8>(), 64..400),
        key in any::<bool>(),
        version in 0u8..4,
    ) {
        let prev = prev_from(&first);
        let hdr = parse(&bytes, key, version, &prev);
        let again = parse(&write(&hdr, &prev), key, version, &prev);
        prop_assert_eq!(again, hdr);
    }

    /// Per-macroblock records (segment ids, skip flags, intra and inter
    /// modes, B_PRED sub-modes, vectors, split vectors) of key and inter
    /// frames, with the header they are coded under.
    #[test]
    fn modes_round_trip(
        first in prop::collection::vec(any::<u8>(), 64..400),
        hdr_bytes in prop::collection::vec(any::<u8>(), 64..400),
        mode_bytes in prop::collection::vec(any::<u8>(), 16..2000),
        key in any::<bool>(),
        mb_cols in 1usize..7,
        mb_rows in 1usize..6,
        seg_seed in any::<u64>(),
    ) {
        let prev = prev_from(&first);
        let hdr = parse(&hdr_bytes, key, 0, &prev);
        let n = mb_cols * mb_rows;
        let segment_map: Vec<u8> = (0..n).map(|i| ((seg_seed >> (2 * (i % 32))) & 3) as u8).collect();
        let mut bd = BoolDecoder::new(&mode_bytes);
        let mbs = read_modes(&mut bd, &hdr, mb_cols, mb_rows, &segment_map);
        let mut bw = BoolEncoder::new();
        write_modes(&mut bw, &hdr, &mbs, mb_cols, mb_rows);
        let bytes = bw.finish();
        let mut bd = BoolDecoder::new(&bytes);
        let again = read_modes(&mut bd, &hdr, mb_cols, mb_rows, &segment_map);
        prop_assert_eq!(again, mbs);
    }
}
