//! Constant tables of the VP8 bitstream: prediction-mode numbering, the
//! coding trees, the fixed and default probabilities, the quantizer
//! lookups and the sub-pixel interpolation filters.
//!
//! Every table here is transcribed from RFC 6386 ("VP8 Data Format and
//! Decoding Guide"); each item names the section it comes from. Where a
//! table appears twice in the RFC (once in the prose, once in the reference
//! decoder of Section 20), both copies were checked to agree.
//!
//! # Tree representation
//!
//! Trees follow the RFC's `tree_index` convention (Section 8.1): a tree is a
//! flat array of pairs; the pair starting at an even index `i` describes a
//! node, `tree[i]` being taken on a `0` bit and `tree[i + 1]` on a `1` bit.
//! A positive entry is the index of the next pair; any other entry is a
//! leaf whose value is stored negated (so a leaf of value 0 is stored as
//! `0`, which cannot be confused with a link because no link points back
//! to the root). The probability of the node at index `i` is `probs[i / 2]`.

// ---------------------------------------------------------------------------
// Prediction modes
// ---------------------------------------------------------------------------

// The modes themselves are the enums of [`crate::prediction`]; their
// discriminants are the leaf values of the trees below.
use crate::prediction::{ChromaMode, LumaMode, MvSplit, SubMvRef, SubblockMode};

/// Number of luma intra modes (`num_ymodes`, RFC 6386 Section 8.1).
pub const NUM_YMODES: usize = 5;

/// Number of chroma intra modes (`num_uv_modes`, RFC 6386 Section 8.1).
pub const NUM_UV_MODES: usize = 4;

/// Number of subblock intra modes (`num_intra_bmodes`, RFC 6386
/// Section 11.2).
pub const NUM_INTRA_BMODES: usize = 10;

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

/// Luma mode tree for inter frames (RFC 6386 Section 8.1 `ymode_tree`),
/// yielding [`LumaMode::Dc`]..=[`LumaMode::B`]. Probabilities: [`DEFAULT_YMODE_PROBS`]
/// as updated by the frame header.
pub const YMODE_TREE: [i8; 8] = [
    -(LumaMode::Dc as i8),
    2,
    4,
    6,
    -(LumaMode::V as i8),
    -(LumaMode::H as i8),
    -(LumaMode::Tm as i8),
    -(LumaMode::B as i8),
];

/// Luma mode tree for key frames (RFC 6386 Section 11.2 `kf_ymode_tree`),
/// yielding [`LumaMode::Dc`]..=[`LumaMode::B`]. Probabilities: [`KF_YMODE_PROBS`].
pub const KF_YMODE_TREE: [i8; 8] = [
    -(LumaMode::B as i8),
    2,
    4,
    6,
    -(LumaMode::Dc as i8),
    -(LumaMode::V as i8),
    -(LumaMode::H as i8),
    -(LumaMode::Tm as i8),
];

/// Chroma mode tree (RFC 6386 Section 8.1 / 11.4 `uv_mode_tree`), yielding
/// [`ChromaMode::Dc`]..=[`ChromaMode::Tm`].
pub const UV_MODE_TREE: [i8; 6] = [
    -(ChromaMode::Dc as i8),
    2,
    -(ChromaMode::V as i8),
    4,
    -(ChromaMode::H as i8),
    -(ChromaMode::Tm as i8),
];

/// Subblock intra mode tree (RFC 6386 Section 11.2 `bmode_tree`), yielding
/// [`SubblockMode::Dc`]..=[`SubblockMode::Hu`].
pub const BMODE_TREE: [i8; 18] = [
    -(SubblockMode::Dc as i8),
    2,
    -(SubblockMode::Tm as i8),
    4,
    -(SubblockMode::Ve as i8),
    6,
    8,
    12,
    -(SubblockMode::He as i8),
    10,
    -(SubblockMode::Rd as i8),
    -(SubblockMode::Vr as i8),
    -(SubblockMode::Ld as i8),
    14,
    -(SubblockMode::Vl as i8),
    16,
    -(SubblockMode::Hd as i8),
    -(SubblockMode::Hu as i8),
];

/// Inter-frame macroblock mode tree (RFC 6386 Section 16.2 `mv_ref_tree`),
/// yielding [`LumaMode::NearestMv`]..=[`LumaMode::SplitMv`]. Probabilities are derived from
/// [`MODE_CONTEXTS`] (Section 16.3).
pub const MV_REF_TREE: [i8; 8] = [
    -(LumaMode::ZeroMv as i8),
    2,
    -(LumaMode::NearestMv as i8),
    4,
    -(LumaMode::NearMv as i8),
    6,
    -(LumaMode::NewMv as i8),
    -(LumaMode::SplitMv as i8),
];

/// Split sub-MV reference tree (RFC 6386 Section 16.4 `sub_mv_ref_tree`),
/// yielding [`SubMvRef::Left`]..=[`SubMvRef::New`]. Probabilities: a row of
/// [`SUB_MV_REF_PROBS`].
pub const SUB_MV_REF_TREE: [i8; 6] = [
    -(SubMvRef::Left as i8),
    2,
    -(SubMvRef::Above as i8),
    4,
    -(SubMvRef::Zero as i8),
    -(SubMvRef::New as i8),
];

/// Split-MV partitioning tree (RFC 6386 Section 16.4 `mvpartition_tree`;
/// dixie's `split_mv_tree`, Section 20.13), yielding [`MvSplit::TopBottom`]..=
/// [`MvSplit::Sixteen`]. Probabilities: [`MBSPLIT_PROBS`].
pub const MBSPLIT_TREE: [i8; 6] = [
    -(MvSplit::Sixteen as i8),
    2,
    -(MvSplit::Quarters as i8),
    4,
    -(MvSplit::TopBottom as i8),
    -(MvSplit::LeftRight as i8),
];

/// Tree for short motion-vector magnitudes 0..=7 (RFC 6386 Section 17.1
/// `small_mvtree`). Probabilities: the 7 entries of an MV probability row
/// starting at [`MVP_SHORT`].
pub const SMALL_MV_TREE: [i8; 14] = [2, 8, 4, 6, -0, -1, -2, -3, 10, 12, -4, -5, -6, -7];

/// Segment id tree (RFC 6386 Section 10 `mb_segment_tree`), yielding
/// segment ids 0..=3.
pub const SEGMENT_ID_TREE: [i8; 6] = [2, 4, -0, -1, -2, -3];

// ---------------------------------------------------------------------------
// DCT tokens
// ---------------------------------------------------------------------------

/// Token for the coefficient value 0 (RFC 6386 Section 13.2 `DCT_0`; dixie's
/// `ZERO_TOKEN`, Section 20.16).
pub const ZERO_TOKEN: u8 = 0;
/// Token for the value 1 (RFC 6386 Section 13.2 `DCT_1`).
pub const ONE_TOKEN: u8 = 1;
/// Token for the value 2 (RFC 6386 Section 13.2 `DCT_2`).
pub const TWO_TOKEN: u8 = 2;
/// Token for the value 3 (RFC 6386 Section 13.2 `DCT_3`).
pub const THREE_TOKEN: u8 = 3;
/// Token for the value 4 (RFC 6386 Section 13.2 `DCT_4`).
pub const FOUR_TOKEN: u8 = 4;
/// Token for the range 5..=6, 1 extra bit (RFC 6386 Section 13.2
/// `dct_cat1`).
pub const DCT_CAT1: u8 = 5;
/// Token for the range 7..=10, 2 extra bits (RFC 6386 Section 13.2
/// `dct_cat2`).
pub const DCT_CAT2: u8 = 6;
/// Token for the range 11..=18, 3 extra bits (RFC 6386 Section 13.2
/// `dct_cat3`).
pub const DCT_CAT3: u8 = 7;
/// Token for the range 19..=34, 4 extra bits (RFC 6386 Section 13.2
/// `dct_cat4`).
pub const DCT_CAT4: u8 = 8;
/// Token for the range 35..=66, 5 extra bits (RFC 6386 Section 13.2
/// `dct_cat5`).
pub const DCT_CAT5: u8 = 9;
/// Token for the range 67..=2114, 11 extra bits (RFC 6386 Section 13.2
/// `dct_cat6`; the RFC comment says "67 - 2048" but 11 extra bits reach
/// 67 + 2047).
pub const DCT_CAT6: u8 = 10;
/// End-of-block token (RFC 6386 Section 13.2 `dct_eob`; dixie's
/// `DCT_EOB_TOKEN`).
pub const DCT_EOB_TOKEN: u8 = 11;
/// Number of DCT tokens (`num_dct_tokens`, RFC 6386 Section 13.2).
pub const NUM_DCT_TOKENS: usize = 12;

/// DCT token tree (RFC 6386 Section 13.2 `coeff_tree`), yielding
/// [`ZERO_TOKEN`]..=[`DCT_EOB_TOKEN`]. After a [`ZERO_TOKEN`] the EOB
/// branch is skipped by starting at node index [`COEFF_TREE_NO_EOB_START`].
pub const COEFF_TREE: [i8; 22] = [
    -(DCT_EOB_TOKEN as i8),
    2,
    -(ZERO_TOKEN as i8),
    4,
    -(ONE_TOKEN as i8),
    6,
    8,
    12,
    -(TWO_TOKEN as i8),
    10,
    -(THREE_TOKEN as i8),
    -(FOUR_TOKEN as i8),
    14,
    16,
    -(DCT_CAT1 as i8),
    -(DCT_CAT2 as i8),
    18,
    20,
    -(DCT_CAT3 as i8),
    -(DCT_CAT4 as i8),
    -(DCT_CAT5 as i8),
    -(DCT_CAT6 as i8),
];

/// Node index in [`COEFF_TREE`] at which decoding starts when the previous
/// token was [`ZERO_TOKEN`], skipping the EOB branch (RFC 6386 Section
/// 13.2).
pub const COEFF_TREE_NO_EOB_START: usize = 2;

/// Extra-bit probabilities of [`DCT_CAT1`], most significant bit first
/// (RFC 6386 Section 13.2 `Pcat1`, without the terminating 0).
pub const PCAT1: [u8; 1] = [159];
/// Extra-bit probabilities of [`DCT_CAT2`], MSB first (RFC 6386 Section
/// 13.2 `Pcat2`).
pub const PCAT2: [u8; 2] = [165, 145];
/// Extra-bit probabilities of [`DCT_CAT3`], MSB first (RFC 6386 Section
/// 13.2 `Pcat3`).
pub const PCAT3: [u8; 3] = [173, 148, 140];
/// Extra-bit probabilities of [`DCT_CAT4`], MSB first (RFC 6386 Section
/// 13.2 `Pcat4`).
pub const PCAT4: [u8; 4] = [176, 155, 140, 135];
/// Extra-bit probabilities of [`DCT_CAT5`], MSB first (RFC 6386 Section
/// 13.2 `Pcat5`).
pub const PCAT5: [u8; 5] = [180, 157, 141, 134, 130];
/// Extra-bit probabilities of [`DCT_CAT6`], MSB first (RFC 6386 Section
/// 13.2 `Pcat6`).
pub const PCAT6: [u8; 11] = [254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129];

/// Extra-bit probabilities of the six categories, indexed by
/// `token - DCT_CAT1`; the number of extra bits is the slice length
/// (RFC 6386 Section 13.2). The value is `DCT_CAT_BASE[k]` plus the extra
/// bits read most significant first.
pub const DCT_CAT_PROBS: [&[u8]; 6] = [&PCAT1, &PCAT2, &PCAT3, &PCAT4, &PCAT5, &PCAT6];

/// Smallest value of each category token, indexed by `token - DCT_CAT1`
/// (RFC 6386 Section 13.2 comments on `dct_token`; dixie's `extrabits`
/// `min_val`, Section 20.16).
pub const DCT_CAT_BASE: [i32; 6] = [5, 7, 11, 19, 35, 67];

/// Number of entries in each coefficient probability list, one per
/// internal node of [`COEFF_TREE`] (`num_dct_tokens - 1`, RFC 6386
/// Section 13.3).
pub const NUM_COEFF_NODES: usize = 11;

/// Coefficient position to probability band (RFC 6386 Section 13.3
/// `coeff_bands`). Entries 0..=15 are the RFC's table. The 17th entry
/// (index 16) is not in the RFC nor in dixie (whose `bands_x` has 16
/// entries); it is a sentinel, 0, so that a token reader may look up the
/// band of position `c + 1` after the last coefficient without a bounds
/// check. It is never used to choose a probability.
pub const COEFF_BANDS: [usize; 17] = [0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0];

/// Zigzag scan order: `ZIGZAG[i]` is the raster position (within the 4x4
/// block) of the `i`-th decoded coefficient (the zig-zag order of RFC 6386
/// Section 13; table `zigzag` of dixie's tokens.c, Section 20.16).
pub const ZIGZAG: [usize; 16] = [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15];

/// Probabilities that each coefficient probability is updated in a frame
/// header, indexed `[block type][band][context][node]` (RFC 6386 Section
/// 13.4 `coeff_update_probs`; dixie's `k_coeff_entropy_update_probs`,
/// Section 20.18).
pub const COEFF_UPDATE_PROBS: [[[[u8; 11]; 3]; 8]; 4] = [
    [
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [223, 241, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 244, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [234, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 246, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [239, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 253, 255, 254, 255, 255, 255, 255, 255, 255],
            [250, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [217, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [225, 252, 241, 253, 255, 255, 254, 255, 255, 255, 255],
            [234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255],
        ],
        [
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [223, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [238, 253, 254, 254, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [247, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [186, 251, 250, 255, 255, 255, 255, 255, 255, 255, 255],
            [234, 251, 244, 254, 255, 255, 255, 255, 255, 255, 255],
            [251, 251, 243, 253, 254, 255, 254, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [236, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 253, 253, 254, 254, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [248, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 254, 252, 254, 255, 255, 255, 255, 255, 255, 255],
            [248, 254, 249, 253, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [246, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 254, 251, 254, 254, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [248, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [245, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 251, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
];

/// Default coefficient probabilities, loaded on key frames, indexed
/// `[block type][band][context][node]` (RFC 6386 Section 13.5
/// `default_coeff_probs`; dixie's `k_default_coeff_probs`, Section 20.18).
pub const DEFAULT_COEFF_PROBS: [[[[u8; 11]; 3]; 8]; 4] = [
    [
        [
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128],
            [189, 129, 242, 255, 227, 213, 255, 219, 128, 128, 128],
            [106, 126, 227, 252, 214, 209, 255, 255, 128, 128, 128],
        ],
        [
            [1, 98, 248, 255, 236, 226, 255, 255, 128, 128, 128],
            [181, 133, 238, 254, 221, 234, 255, 154, 128, 128, 128],
            [78, 134, 202, 247, 198, 180, 255, 219, 128, 128, 128],
        ],
        [
            [1, 185, 249, 255, 243, 255, 128, 128, 128, 128, 128],
            [184, 150, 247, 255, 236, 224, 128, 128, 128, 128, 128],
            [77, 110, 216, 255, 236, 230, 128, 128, 128, 128, 128],
        ],
        [
            [1, 101, 251, 255, 241, 255, 128, 128, 128, 128, 128],
            [170, 139, 241, 252, 236, 209, 255, 255, 128, 128, 128],
            [37, 116, 196, 243, 228, 255, 255, 255, 128, 128, 128],
        ],
        [
            [1, 204, 254, 255, 245, 255, 128, 128, 128, 128, 128],
            [207, 160, 250, 255, 238, 128, 128, 128, 128, 128, 128],
            [102, 103, 231, 255, 211, 171, 128, 128, 128, 128, 128],
        ],
        [
            [1, 152, 252, 255, 240, 255, 128, 128, 128, 128, 128],
            [177, 135, 243, 255, 234, 225, 128, 128, 128, 128, 128],
            [80, 129, 211, 255, 194, 224, 128, 128, 128, 128, 128],
        ],
        [
            [1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [246, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [198, 35, 237, 223, 193, 187, 162, 160, 145, 155, 62],
            [131, 45, 198, 221, 172, 176, 220, 157, 252, 221, 1],
            [68, 47, 146, 208, 149, 167, 221, 162, 255, 223, 128],
        ],
        [
            [1, 149, 241, 255, 221, 224, 255, 255, 128, 128, 128],
            [184, 141, 234, 253, 222, 220, 255, 199, 128, 128, 128],
            [81, 99, 181, 242, 176, 190, 249, 202, 255, 255, 128],
        ],
        [
            [1, 129, 232, 253, 214, 197, 242, 196, 255, 255, 128],
            [99, 121, 210, 250, 201, 198, 255, 202, 128, 128, 128],
            [23, 91, 163, 242, 170, 187, 247, 210, 255, 255, 128],
        ],
        [
            [1, 200, 246, 255, 234, 255, 128, 128, 128, 128, 128],
            [109, 178, 241, 255, 231, 245, 255, 255, 128, 128, 128],
            [44, 130, 201, 253, 205, 192, 255, 255, 128, 128, 128],
        ],
        [
            [1, 132, 239, 251, 219, 209, 255, 165, 128, 128, 128],
            [94, 136, 225, 251, 218, 190, 255, 255, 128, 128, 128],
            [22, 100, 174, 245, 186, 161, 255, 199, 128, 128, 128],
        ],
        [
            [1, 182, 249, 255, 232, 235, 128, 128, 128, 128, 128],
            [124, 143, 241, 255, 227, 234, 128, 128, 128, 128, 128],
            [35, 77, 181, 251, 193, 211, 255, 205, 128, 128, 128],
        ],
        [
            [1, 157, 247, 255, 236, 231, 255, 255, 128, 128, 128],
            [121, 141, 235, 255, 225, 227, 255, 255, 128, 128, 128],
            [45, 99, 188, 251, 195, 217, 255, 224, 128, 128, 128],
        ],
        [
            [1, 1, 251, 255, 213, 255, 128, 128, 128, 128, 128],
            [203, 1, 248, 255, 255, 128, 128, 128, 128, 128, 128],
            [137, 1, 177, 255, 224, 255, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [253, 9, 248, 251, 207, 208, 255, 192, 128, 128, 128],
            [175, 13, 224, 243, 193, 185, 249, 198, 255, 255, 128],
            [73, 17, 171, 221, 161, 179, 236, 167, 255, 234, 128],
        ],
        [
            [1, 95, 247, 253, 212, 183, 255, 255, 128, 128, 128],
            [239, 90, 244, 250, 211, 209, 255, 255, 128, 128, 128],
            [155, 77, 195, 248, 188, 195, 255, 255, 128, 128, 128],
        ],
        [
            [1, 24, 239, 251, 218, 219, 255, 205, 128, 128, 128],
            [201, 51, 219, 255, 196, 186, 128, 128, 128, 128, 128],
            [69, 46, 190, 239, 201, 218, 255, 228, 128, 128, 128],
        ],
        [
            [1, 191, 251, 255, 255, 128, 128, 128, 128, 128, 128],
            [223, 165, 249, 255, 213, 255, 128, 128, 128, 128, 128],
            [141, 124, 248, 255, 255, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 16, 248, 255, 255, 128, 128, 128, 128, 128, 128],
            [190, 36, 230, 255, 236, 255, 128, 128, 128, 128, 128],
            [149, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 226, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [247, 192, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [240, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 134, 252, 255, 255, 128, 128, 128, 128, 128, 128],
            [213, 62, 250, 255, 255, 128, 128, 128, 128, 128, 128],
            [55, 93, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [202, 24, 213, 235, 186, 191, 220, 160, 240, 175, 255],
            [126, 38, 182, 232, 169, 184, 228, 174, 255, 187, 128],
            [61, 46, 138, 219, 151, 178, 240, 170, 255, 216, 128],
        ],
        [
            [1, 112, 230, 250, 199, 191, 247, 159, 255, 255, 128],
            [166, 109, 228, 252, 211, 215, 255, 174, 128, 128, 128],
            [39, 77, 162, 232, 172, 180, 245, 178, 255, 255, 128],
        ],
        [
            [1, 52, 220, 246, 198, 199, 249, 220, 255, 255, 128],
            [124, 74, 191, 243, 183, 193, 250, 221, 255, 255, 128],
            [24, 71, 130, 219, 154, 170, 243, 182, 255, 255, 128],
        ],
        [
            [1, 182, 225, 249, 219, 240, 255, 224, 128, 128, 128],
            [149, 150, 226, 252, 216, 205, 255, 171, 128, 128, 128],
            [28, 108, 170, 242, 183, 194, 254, 223, 255, 255, 128],
        ],
        [
            [1, 81, 230, 252, 204, 203, 255, 192, 128, 128, 128],
            [123, 102, 209, 247, 188, 196, 255, 233, 128, 128, 128],
            [20, 95, 153, 243, 164, 173, 255, 203, 128, 128, 128],
        ],
        [
            [1, 222, 248, 255, 216, 213, 128, 128, 128, 128, 128],
            [168, 175, 246, 252, 235, 205, 255, 255, 128, 128, 128],
            [47, 116, 215, 255, 211, 212, 255, 255, 128, 128, 128],
        ],
        [
            [1, 121, 236, 253, 212, 214, 255, 255, 128, 128, 128],
            [141, 84, 213, 252, 201, 202, 255, 219, 128, 128, 128],
            [42, 80, 160, 240, 162, 185, 255, 205, 128, 128, 128],
        ],
        [
            [1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [244, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
];

// ---------------------------------------------------------------------------
// Quantizer lookups
// ---------------------------------------------------------------------------

/// DC coefficient dequantization factor by quantizer index 0..=127
/// (RFC 6386 Section 14.1 `dc_qlookup`; dixie's `dc_q_lookup`,
/// Section 20.3).
pub const DC_QUANT: [i32; 128] = [
    4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 17, 18, 19, 20, 20, 21, 21, 22, 22, 23,
    23, 24, 25, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 37, 38, 39, 40, 41, 42, 43, 44,
    45, 46, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67,
    68, 69, 70, 71, 72, 73, 74, 75, 76, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91,
    93, 95, 96, 98, 100, 101, 102, 104, 106, 108, 110, 112, 114, 116, 118, 122, 124, 126, 128, 130,
    132, 134, 136, 138, 140, 143, 145, 148, 151, 154, 157,
];

/// AC coefficient dequantization factor by quantizer index 0..=127
/// (RFC 6386 Section 14.1 `ac_qlookup`; dixie's `ac_q_lookup`,
/// Section 20.3).
pub const AC_QUANT: [i32; 128] = [
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
    29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52,
    53, 54, 55, 56, 57, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94,
    96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 119, 122, 125, 128, 131, 134, 137, 140,
    143, 146, 149, 152, 155, 158, 161, 164, 167, 170, 173, 177, 181, 185, 189, 193, 197, 201, 205,
    209, 213, 217, 221, 225, 229, 234, 239, 245, 249, 254, 259, 264, 269, 274, 279, 284,
];

// ---------------------------------------------------------------------------
// Mode probabilities
// ---------------------------------------------------------------------------

/// Fixed key-frame luma mode probabilities for [`KF_YMODE_TREE`]
/// (RFC 6386 Section 11.2 `kf_ymode_prob`).
pub const KF_YMODE_PROBS: [u8; 4] = [145, 156, 163, 128];

/// Fixed key-frame chroma mode probabilities for [`UV_MODE_TREE`]
/// (RFC 6386 Section 11.4 `kf_uv_mode_prob`).
pub const KF_UV_MODE_PROBS: [u8; 3] = [142, 114, 183];

/// Key-frame subblock mode probabilities for [`BMODE_TREE`], indexed
/// `[above mode][left mode]` (RFC 6386 Sections 11.3 and 11.5
/// `kf_bmode_prob [A] [L]`; dixie's `kf_b_mode_probs`, Section 20.13).
pub const KF_BMODE_PROBS: [[[u8; 9]; 10]; 10] = [
    [
        [231, 120, 48, 89, 115, 113, 120, 152, 112],
        [152, 179, 64, 126, 170, 118, 46, 70, 95],
        [175, 69, 143, 80, 85, 82, 72, 155, 103],
        [56, 58, 10, 171, 218, 189, 17, 13, 152],
        [144, 71, 10, 38, 171, 213, 144, 34, 26],
        [114, 26, 17, 163, 44, 195, 21, 10, 173],
        [121, 24, 80, 195, 26, 62, 44, 64, 85],
        [170, 46, 55, 19, 136, 160, 33, 206, 71],
        [63, 20, 8, 114, 114, 208, 12, 9, 226],
        [81, 40, 11, 96, 182, 84, 29, 16, 36],
    ],
    [
        [134, 183, 89, 137, 98, 101, 106, 165, 148],
        [72, 187, 100, 130, 157, 111, 32, 75, 80],
        [66, 102, 167, 99, 74, 62, 40, 234, 128],
        [41, 53, 9, 178, 241, 141, 26, 8, 107],
        [104, 79, 12, 27, 217, 255, 87, 17, 7],
        [74, 43, 26, 146, 73, 166, 49, 23, 157],
        [65, 38, 105, 160, 51, 52, 31, 115, 128],
        [87, 68, 71, 44, 114, 51, 15, 186, 23],
        [47, 41, 14, 110, 182, 183, 21, 17, 194],
        [66, 45, 25, 102, 197, 189, 23, 18, 22],
    ],
    [
        [88, 88, 147, 150, 42, 46, 45, 196, 205],
        [43, 97, 183, 117, 85, 38, 35, 179, 61],
        [39, 53, 200, 87, 26, 21, 43, 232, 171],
        [56, 34, 51, 104, 114, 102, 29, 93, 77],
        [107, 54, 32, 26, 51, 1, 81, 43, 31],
        [39, 28, 85, 171, 58, 165, 90, 98, 64],
        [34, 22, 116, 206, 23, 34, 43, 166, 73],
        [68, 25, 106, 22, 64, 171, 36, 225, 114],
        [34, 19, 21, 102, 132, 188, 16, 76, 124],
        [62, 18, 78, 95, 85, 57, 50, 48, 51],
    ],
    [
        [193, 101, 35, 159, 215, 111, 89, 46, 111],
        [60, 148, 31, 172, 219, 228, 21, 18, 111],
        [112, 113, 77, 85, 179, 255, 38, 120, 114],
        [40, 42, 1, 196, 245, 209, 10, 25, 109],
        [100, 80, 8, 43, 154, 1, 51, 26, 71],
        [88, 43, 29, 140, 166, 213, 37, 43, 154],
        [61, 63, 30, 155, 67, 45, 68, 1, 209],
        [142, 78, 78, 16, 255, 128, 34, 197, 171],
        [41, 40, 5, 102, 211, 183, 4, 1, 221],
        [51, 50, 17, 168, 209, 192, 23, 25, 82],
    ],
    [
        [125, 98, 42, 88, 104, 85, 117, 175, 82],
        [95, 84, 53, 89, 128, 100, 113, 101, 45],
        [75, 79, 123, 47, 51, 128, 81, 171, 1],
        [57, 17, 5, 71, 102, 57, 53, 41, 49],
        [115, 21, 2, 10, 102, 255, 166, 23, 6],
        [38, 33, 13, 121, 57, 73, 26, 1, 85],
        [41, 10, 67, 138, 77, 110, 90, 47, 114],
        [101, 29, 16, 10, 85, 128, 101, 196, 26],
        [57, 18, 10, 102, 102, 213, 34, 20, 43],
        [117, 20, 15, 36, 163, 128, 68, 1, 26],
    ],
    [
        [138, 31, 36, 171, 27, 166, 38, 44, 229],
        [67, 87, 58, 169, 82, 115, 26, 59, 179],
        [63, 59, 90, 180, 59, 166, 93, 73, 154],
        [40, 40, 21, 116, 143, 209, 34, 39, 175],
        [57, 46, 22, 24, 128, 1, 54, 17, 37],
        [47, 15, 16, 183, 34, 223, 49, 45, 183],
        [46, 17, 33, 183, 6, 98, 15, 32, 183],
        [65, 32, 73, 115, 28, 128, 23, 128, 205],
        [40, 3, 9, 115, 51, 192, 18, 6, 223],
        [87, 37, 9, 115, 59, 77, 64, 21, 47],
    ],
    [
        [104, 55, 44, 218, 9, 54, 53, 130, 226],
        [64, 90, 70, 205, 40, 41, 23, 26, 57],
        [54, 57, 112, 184, 5, 41, 38, 166, 213],
        [30, 34, 26, 133, 152, 116, 10, 32, 134],
        [75, 32, 12, 51, 192, 255, 160, 43, 51],
        [39, 19, 53, 221, 26, 114, 32, 73, 255],
        [31, 9, 65, 234, 2, 15, 1, 118, 73],
        [88, 31, 35, 67, 102, 85, 55, 186, 85],
        [56, 21, 23, 111, 59, 205, 45, 37, 192],
        [55, 38, 70, 124, 73, 102, 1, 34, 98],
    ],
    [
        [102, 61, 71, 37, 34, 53, 31, 243, 192],
        [69, 60, 71, 38, 73, 119, 28, 222, 37],
        [68, 45, 128, 34, 1, 47, 11, 245, 171],
        [62, 17, 19, 70, 146, 85, 55, 62, 70],
        [75, 15, 9, 9, 64, 255, 184, 119, 16],
        [37, 43, 37, 154, 100, 163, 85, 160, 1],
        [63, 9, 92, 136, 28, 64, 32, 201, 85],
        [86, 6, 28, 5, 64, 255, 25, 248, 1],
        [56, 8, 17, 132, 137, 255, 55, 116, 128],
        [58, 15, 20, 82, 135, 57, 26, 121, 40],
    ],
    [
        [164, 50, 31, 137, 154, 133, 25, 35, 218],
        [51, 103, 44, 131, 131, 123, 31, 6, 158],
        [86, 40, 64, 135, 148, 224, 45, 183, 128],
        [22, 26, 17, 131, 240, 154, 14, 1, 209],
        [83, 12, 13, 54, 192, 255, 68, 47, 28],
        [45, 16, 21, 91, 64, 222, 7, 1, 197],
        [56, 21, 39, 155, 60, 138, 23, 102, 213],
        [85, 26, 85, 85, 128, 128, 32, 146, 171],
        [18, 11, 7, 63, 144, 171, 4, 4, 246],
        [35, 27, 10, 146, 174, 171, 12, 26, 128],
    ],
    [
        [190, 80, 35, 99, 180, 80, 126, 54, 45],
        [85, 126, 47, 87, 176, 51, 41, 20, 32],
        [101, 75, 128, 139, 118, 146, 116, 128, 85],
        [56, 41, 15, 176, 236, 85, 37, 9, 62],
        [146, 36, 19, 30, 171, 255, 97, 27, 20],
        [71, 30, 17, 119, 118, 255, 17, 18, 138],
        [101, 38, 60, 138, 55, 70, 43, 26, 142],
        [138, 45, 61, 62, 219, 1, 81, 188, 64],
        [32, 41, 20, 117, 151, 142, 20, 21, 163],
        [112, 19, 12, 61, 195, 128, 48, 4, 24],
    ],
];

/// Initial inter-frame luma mode probabilities for [`YMODE_TREE`], reset
/// on key frames (RFC 6386 Section 16.1 `ymode_prob`).
pub const DEFAULT_YMODE_PROBS: [u8; 4] = [112, 86, 140, 37];

/// Initial inter-frame chroma mode probabilities for [`UV_MODE_TREE`],
/// reset on key frames (RFC 6386 Section 16.1 `uv_mode_prob`).
pub const DEFAULT_UV_MODE_PROBS: [u8; 3] = [162, 101, 204];

/// Fixed subblock mode probabilities for [`BMODE_TREE`] in inter frames
/// (RFC 6386 Section 16.1 `bmode_prob`).
pub const DEFAULT_BMODE_PROBS: [u8; 9] = [120, 90, 79, 133, 87, 85, 80, 111, 151];

// ---------------------------------------------------------------------------
// Motion vectors
// ---------------------------------------------------------------------------

/// Offset, within an MV probability row, of the "long form" flag
/// probability (RFC 6386 Section 17.1 `mvpis_short`).
pub const MVP_IS_SHORT: usize = 0;
/// Offset of the sign probability (RFC 6386 Section 17.1 `MVPsign`).
pub const MVP_SIGN: usize = 1;
/// Offset of the 7 probabilities of [`SMALL_MV_TREE`] (RFC 6386
/// Section 17.1 `MVPshort`).
pub const MVP_SHORT: usize = 2;
/// Offset of the [`MV_LONG_BITS`] per-bit probabilities of the long form,
/// indexed by bit number (RFC 6386 Section 17.1 `MVPbits = MVPshort + 7`).
pub const MVP_BITS: usize = 9;
/// Number of bits of a long-form MV magnitude (RFC 6386 Section 17.1).
pub const MV_LONG_BITS: usize = 10;
/// Number of probabilities per MV component (RFC 6386 Section 17.1
/// `MVPcount`).
pub const MVP_COUNT: usize = 19;

/// Default MV decoding probabilities, row component then column component,
/// reset on key frames; layout given by [`MVP_IS_SHORT`], [`MVP_SIGN`],
/// [`MVP_SHORT`] and [`MVP_BITS`] (RFC 6386 Section 17.2
/// `default_mv_context`).
pub const DEFAULT_MV_PROBS: [[u8; 19]; 2] = [
    [
        162, 128, 225, 146, 172, 147, 214, 39, 156, 128, 129, 132, 75, 145, 178, 206, 239, 254, 254,
    ],
    [
        164, 128, 204, 170, 119, 235, 140, 230, 228, 128, 130, 130, 74, 148, 180, 203, 236, 254,
        254,
    ],
];

/// Probabilities that each MV probability is updated in an inter frame
/// header, row then column (RFC 6386 Section 17.2 `vp8_mv_update_probs`).
pub const MV_UPDATE_PROBS: [[u8; 19]; 2] = [
    [
        237, 246, 253, 253, 254, 254, 254, 254, 254, 254, 254, 254, 254, 254, 250, 250, 252, 254,
        254,
    ],
    [
        231, 243, 245, 253, 254, 254, 254, 254, 254, 254, 254, 254, 254, 254, 251, 251, 254, 254,
        254,
    ],
];

/// Probabilities for [`MV_REF_TREE`] by neighbour census: node `i` uses
/// `MODE_CONTEXTS[cnt[i]][i]` (RFC 6386 Section 16.3 `vp8_mode_contexts`;
/// dixie's `mv_counts_to_probs`, Section 20.13).
pub const MODE_CONTEXTS: [[u8; 4]; 6] = [
    [7, 1, 1, 143],
    [14, 18, 14, 107],
    [135, 64, 57, 68],
    [60, 56, 128, 65],
    [159, 134, 128, 34],
    [234, 188, 128, 28],
];

/// Probabilities for [`SUB_MV_REF_TREE`] by context 0..=4 (normal, left
/// zero, above zero, left and above equal, left and above equal and zero)
/// (RFC 6386 Section 16.4 `sub_mv_ref_prob`).
pub const SUB_MV_REF_PROBS: [[u8; 3]; 5] = [
    [147, 136, 18],
    [106, 145, 1],
    [179, 121, 1],
    [223, 1, 34],
    [208, 1, 1],
];

/// Fixed probabilities for [`MBSPLIT_TREE`] (RFC 6386 Section 16.4
/// `mvpartition_probs`).
pub const MBSPLIT_PROBS: [u8; 3] = [110, 111, 150];

/// Partition index of each of the 16 luma subblocks (raster order), per
/// partitioning [`MvSplit::TopBottom`]..=[`MvSplit::Sixteen`] (RFC 6386 Section 16.4 comments on
/// `MVpartition`; dixie's `mv_partitions`, Section 20.13).
pub const MBSPLITS: [[u8; 16]; 4] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
    [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1],
    [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
];

/// Number of partitions (motion vectors) of each partitioning
/// [`MvSplit::TopBottom`]..=[`MvSplit::Sixteen`] (RFC 6386 Section 16.4).
pub const MBSPLIT_COUNT: [usize; 4] = [2, 2, 4, 16];

/// The six-tap sub-pixel filters, indexed by eighth-pel fraction
/// (RFC 18.3, `subpixel_filters`). Taps apply to samples at offsets
/// -2..=3 from the integer position; each filter sums to 128. Luma uses
/// only the even (quarter-pel) entries; the odd ones, which have zero outer
/// taps, serve chroma's eighth-pel vectors.
pub const SIXTAP_FILTERS: [[i32; 6]; 8] = [
    [0, 0, 128, 0, 0, 0],
    [0, -6, 123, 12, -1, 0],
    [2, -11, 108, 36, -8, 1],
    [0, -9, 93, 50, -6, 0],
    [3, -16, 77, 77, -16, 3],
    [0, -6, 50, 93, -9, 0],
    [1, -8, 36, 108, -11, 2],
    [0, -1, 12, 123, -6, 0],
];

/// The bilinear sub-pixel filters used by stream versions 1 and 2,
/// indexed by eighth-pel fraction (RFC 18.3). Taps apply to samples at
/// offsets 0 and 1.
pub const BILINEAR_FILTERS: [[i32; 2]; 8] = [
    [128, 0],
    [112, 16],
    [96, 32],
    [80, 48],
    [64, 64],
    [48, 80],
    [32, 96],
    [16, 112],
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prediction::TreeLeaf;

    /// Walks `tree` from the root and returns its leaves in visiting order,
    /// asserting that every pair is reached exactly once and links stay in
    /// bounds.
    fn leaves(tree: &[i8]) -> Vec<u8> {
        assert!(tree.len() >= 2 && tree.len() & 1 == 0);
        let mut reached = vec![0u32; tree.len() / 2];
        let mut out = Vec::new();
        let mut stack = vec![0usize];
        reached[0] = 1;
        while let Some(node) = stack.pop() {
            for &entry in &tree[node..node + 2] {
                if entry > 0 {
                    let next = entry as usize;
                    assert!(next & 1 == 0 && next < tree.len(), "bad link {next}");
                    reached[next / 2] += 1;
                    stack.push(next);
                } else {
                    out.push((-entry) as u8);
                }
            }
        }
        assert!(
            reached.iter().all(|&r| r == 1),
            "pairs reached: {reached:?}"
        );
        out
    }

    fn leaves_of<T: TreeLeaf>(values: &[T]) -> Vec<u8> {
        values.iter().map(|v| v.leaf()).collect()
    }

    fn assert_tree(tree: &[i8], mut expected: Vec<u8>) {
        let mut got = leaves(tree);
        assert_eq!(got.len(), tree.len() / 2 + 1);
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected, "each leaf exactly once");
    }

    #[test]
    fn trees_are_well_formed() {
        assert_tree(&YMODE_TREE, leaves_of(&LumaMode::ALL[..5]));
        assert_tree(&KF_YMODE_TREE, leaves_of(&LumaMode::ALL[..5]));
        assert_tree(&UV_MODE_TREE, leaves_of(&ChromaMode::ALL));
        assert_tree(&BMODE_TREE, leaves_of(&SubblockMode::ALL));
        assert_tree(&MV_REF_TREE, leaves_of(&LumaMode::ALL[5..]));
        assert_tree(&SUB_MV_REF_TREE, leaves_of(&SubMvRef::ALL));
        assert_tree(&MBSPLIT_TREE, leaves_of(&MvSplit::ALL));
        assert_tree(&SMALL_MV_TREE, (0..=7).collect());
        assert_tree(&COEFF_TREE, (ZERO_TOKEN..=DCT_EOB_TOKEN).collect());
        assert_tree(&SEGMENT_ID_TREE, (0..=3).collect());
        assert_eq!(BMODE_TREE.len() / 2, NUM_INTRA_BMODES - 1);
        assert_eq!(COEFF_TREE.len() / 2, NUM_COEFF_NODES);
        assert_eq!(NUM_DCT_TOKENS, DCT_EOB_TOKEN as usize + 1);
    }

    #[test]
    fn tree_shapes_match_rfc_codes() {
        // Leaves in depth-first order, "0" branch first, match the RFC's
        // code assignments (e.g. B_PRED = "0" in kf_ymode_tree).
        assert_eq!(KF_YMODE_TREE[0], -(LumaMode::B as i8));
        assert_eq!(MV_REF_TREE[0], -(LumaMode::ZeroMv as i8));
        assert_eq!(MBSPLIT_TREE[0], -(MvSplit::Sixteen as i8));
        assert_eq!(COEFF_TREE[0], -(DCT_EOB_TOKEN as i8));
        assert_eq!(COEFF_TREE[COEFF_TREE_NO_EOB_START], -(ZERO_TOKEN as i8));
        assert_eq!(COEFF_TREE[21], -(DCT_CAT6 as i8));
        assert_eq!(
            BMODE_TREE[16..],
            [-(SubblockMode::Hd as i8), -(SubblockMode::Hu as i8)]
        );
    }

    #[test]
    fn quantizer_tables() {
        assert_eq!((DC_QUANT[0], DC_QUANT[7], DC_QUANT[127]), (4, 10, 157));
        assert_eq!((AC_QUANT[0], AC_QUANT[63], AC_QUANT[127]), (4, 76, 284));
        assert!(DC_QUANT.windows(2).all(|w| w[0] <= w[1]));
        assert!(AC_QUANT.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn coefficient_tables() {
        assert_eq!(COEFF_UPDATE_PROBS[0][0][0], [255; 11]);
        assert_eq!(
            COEFF_UPDATE_PROBS[0][1][0],
            [176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(
            COEFF_UPDATE_PROBS[1][0][2],
            [234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255]
        );
        assert_eq!(
            COEFF_UPDATE_PROBS[3][7][1],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(DEFAULT_COEFF_PROBS[0][0][0], [128; 11]);
        assert_eq!(
            DEFAULT_COEFF_PROBS[0][1][0],
            [253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128]
        );
        assert_eq!(
            DEFAULT_COEFF_PROBS[3][7][2],
            [238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128]
        );
        assert_eq!(
            COEFF_BANDS[..16],
            [0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7]
        );
        let mut seen = ZIGZAG;
        seen.sort_unstable();
        assert_eq!(seen, core::array::from_fn::<usize, 16, _>(|i| i));
        assert_eq!((ZIGZAG[2], ZIGZAG[15]), (4, 15));
    }

    #[test]
    fn category_tables() {
        let bits: Vec<usize> = DCT_CAT_PROBS.iter().map(|p| p.len()).collect();
        assert_eq!(bits, [1, 2, 3, 4, 5, 11]);
        for k in 0..5 {
            // Each category starts right after the previous one ends.
            assert_eq!(DCT_CAT_BASE[k] + (1 << bits[k]), DCT_CAT_BASE[k + 1]);
        }
        assert_eq!(DCT_CAT_BASE[0], FOUR_TOKEN as i32 + 1);
        assert_eq!((PCAT6[0], PCAT6[10]), (254, 129));
    }

    #[test]
    fn mode_probability_tables() {
        assert_eq!(
            KF_BMODE_PROBS[0][0],
            [231, 120, 48, 89, 115, 113, 120, 152, 112]
        );
        // [above = 0][left = 1] and [above = 1][left = 0] differ: checks order.
        assert_eq!(
            KF_BMODE_PROBS[0][1],
            [152, 179, 64, 126, 170, 118, 46, 70, 95]
        );
        assert_eq!(
            KF_BMODE_PROBS[1][0],
            [134, 183, 89, 137, 98, 101, 106, 165, 148]
        );
        assert_eq!(KF_BMODE_PROBS[9][9], [112, 19, 12, 61, 195, 128, 48, 4, 24]);
        assert_eq!(KF_YMODE_PROBS, [145, 156, 163, 128]);
        assert_eq!(KF_UV_MODE_PROBS, [142, 114, 183]);
        assert_eq!(DEFAULT_YMODE_PROBS, [112, 86, 140, 37]);
        assert_eq!(DEFAULT_UV_MODE_PROBS, [162, 101, 204]);
        assert_eq!(DEFAULT_BMODE_PROBS[0], 120);
        assert_eq!(DEFAULT_BMODE_PROBS[8], 151);
    }

    #[test]
    fn motion_vector_tables() {
        assert_eq!(MVP_BITS + MV_LONG_BITS, MVP_COUNT);
        assert_eq!(MVP_SHORT + SMALL_MV_TREE.len() / 2, MVP_BITS);
        assert_eq!(
            DEFAULT_MV_PROBS[0],
            [
                162, 128, 225, 146, 172, 147, 214, 39, 156, 128, 129, 132, 75, 145, 178, 206, 239,
                254, 254
            ]
        );
        assert_eq!(DEFAULT_MV_PROBS[1][MVP_IS_SHORT], 164);
        assert_eq!(DEFAULT_MV_PROBS[1][MVP_SIGN], 128);
        assert_eq!(DEFAULT_MV_PROBS[1][MVP_SHORT], 204);
        assert_eq!(DEFAULT_MV_PROBS[1][MVP_BITS], 128);
        assert_eq!(DEFAULT_MV_PROBS[1][18], 254);
        assert_eq!((MV_UPDATE_PROBS[0][0], MV_UPDATE_PROBS[0][18]), (237, 254));
        assert_eq!((MV_UPDATE_PROBS[1][0], MV_UPDATE_PROBS[1][15]), (231, 251));
        assert_eq!(MODE_CONTEXTS[0], [7, 1, 1, 143]);
        assert_eq!(MODE_CONTEXTS[5], [234, 188, 128, 28]);
        assert_eq!(SUB_MV_REF_PROBS[0], [147, 136, 18]);
        assert_eq!(SUB_MV_REF_PROBS[4], [208, 1, 1]);
        assert_eq!(MBSPLIT_PROBS, [110, 111, 150]);
    }

    #[test]
    fn split_tables() {
        for (split, parts) in MBSPLITS.iter().enumerate() {
            let max = *parts.iter().max().unwrap() as usize;
            assert_eq!(max + 1, MBSPLIT_COUNT[split]);
        }
        assert_eq!(MBSPLITS[MvSplit::TopBottom as usize][7..9], [0, 1]);
        assert_eq!(MBSPLITS[MvSplit::LeftRight as usize][..4], [0, 0, 1, 1]);
        assert_eq!(MBSPLITS[MvSplit::Quarters as usize][8..12], [2, 2, 3, 3]);
        assert_eq!(MBSPLITS[MvSplit::Sixteen as usize][15], 15);
    }
}
