//! The typed values of VP8's prediction syntax: luma, chroma and subblock
//! modes, the sub-vector references of split macroblocks, split types and
//! reference frames (RFC 6386 sections 8.1, 11.2, 16.2-16.4).
//!
//! Each enum's discriminants are the leaf values of its coding tree in
//! [`crate::tables`] (and libvpx's numbering), so tables indexed by mode
//! take `mode as usize` and a tree leaf converts back with
//! [`TreeLeaf::from_leaf`].

/// A value coded as a leaf of one of the mode trees of [`crate::tables`].
pub trait TreeLeaf: Copy {
    /// The value of leaf `v`, as [`crate::bool_decoder::BoolDecoder::read_tree`]
    /// returns it.
    ///
    /// # Panics
    ///
    /// If `v` is no leaf of this type's tree; the trees of
    /// [`crate::tables`] yield only valid leaves, whatever the input data.
    fn from_leaf(v: u8) -> Self;
    /// The leaf value that codes `self`.
    fn leaf(self) -> u8;
}

/// Raw leaf values, for the trees whose leaves are numbers (tokens,
/// segment ids, short vector magnitudes).
impl TreeLeaf for u8 {
    #[inline(always)]
    fn from_leaf(v: u8) -> Self {
        v
    }
    #[inline(always)]
    fn leaf(self) -> u8 {
        self
    }
}

macro_rules! tree_leaf {
    ($ty:ident, $first:expr, [$($v:ident),+ $(,)?]) => {
        impl $ty {
            /// Every value, in leaf order.
            pub const ALL: [$ty; [$($ty::$v),+].len()] = [$($ty::$v),+];
        }
        impl TreeLeaf for $ty {
            #[inline(always)]
            fn from_leaf(v: u8) -> Self {
                Self::ALL[usize::from(v - $first)]
            }
            #[inline(always)]
            fn leaf(self) -> u8 {
                self as u8
            }
        }
    };
}

/// A macroblock's luma prediction: one of five intra modes, or one of the
/// five inter modes (RFC 6386 section 8.1 `intra_mbmode`, section 16.2
/// `mv_ref`; libvpx's `MB_PREDICTION_MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum LumaMode {
    /// Intra: DC from the row above and the column left.
    #[default]
    Dc = 0,
    /// Intra: copy the row above.
    V = 1,
    /// Intra: copy the column left.
    H = 2,
    /// Intra: "TrueMotion".
    Tm = 3,
    /// Intra: each 4x4 subblock predicted with its own [`SubblockMode`].
    B = 4,
    /// Inter: the "nearest" neighbouring vector.
    NearestMv = 5,
    /// Inter: the "near" neighbouring vector.
    NearMv = 6,
    /// Inter: the zero vector.
    ZeroMv = 7,
    /// Inter: a vector coded relative to the best neighbouring one.
    NewMv = 8,
    /// Inter: split into partitions with their own vectors ([`MvSplit`]).
    SplitMv = 9,
}
tree_leaf!(
    LumaMode,
    0,
    [Dc, V, H, Tm, B, NearestMv, NearMv, ZeroMv, NewMv, SplitMv]
);

impl LumaMode {
    /// Whether a Y2 (second-order DC) block carries the luma DCs: every
    /// mode but B_PRED and SPLITMV.
    #[inline]
    pub fn has_y2(self) -> bool {
        !matches!(self, LumaMode::B | LumaMode::SplitMv)
    }

    /// The subblock mode a 16x16 intra mode stands for as the context of
    /// later key-frame B_PRED macroblocks (RFC 6386 section 11.3).
    #[inline]
    pub fn implied_subblock_mode(self) -> SubblockMode {
        match self {
            LumaMode::V => SubblockMode::Ve,
            LumaMode::H => SubblockMode::He,
            LumaMode::Tm => SubblockMode::Tm,
            _ => SubblockMode::Dc,
        }
    }
}

/// A macroblock's chroma intra prediction (RFC 6386 section 8.1
/// `intra_mbmode` without B_PRED; `uv_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ChromaMode {
    /// DC from the row above and the column left.
    #[default]
    Dc = 0,
    /// Copy the row above.
    V = 1,
    /// Copy the column left.
    H = 2,
    /// "TrueMotion".
    Tm = 3,
}
tree_leaf!(ChromaMode, 0, [Dc, V, H, Tm]);

/// A 4x4 subblock's intra prediction in a B_PRED macroblock (RFC 6386
/// section 11.2 `intra_bmode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SubblockMode {
    /// DC.
    #[default]
    Dc = 0,
    /// TrueMotion.
    Tm = 1,
    /// Vertical, smoothed.
    Ve = 2,
    /// Horizontal, smoothed.
    He = 3,
    /// Southwest diagonal ("left down").
    Ld = 4,
    /// Southeast diagonal ("right down").
    Rd = 5,
    /// Vertical right.
    Vr = 6,
    /// Vertical left.
    Vl = 7,
    /// Horizontal down.
    Hd = 8,
    /// Horizontal up.
    Hu = 9,
}
tree_leaf!(SubblockMode, 0, [Dc, Tm, Ve, He, Ld, Rd, Vr, Vl, Hd, Hu]);

/// Where a split macroblock's partition takes its vector from (RFC 6386
/// section 16.4 `sub_mv_ref`: `LEFT4x4`..`NEW4x4`, leaves 10..=13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SubMvRef {
    /// The vector of the subblock to the left.
    Left = 10,
    /// The vector of the subblock above.
    Above = 11,
    /// The zero vector.
    Zero = 12,
    /// A vector coded relative to the macroblock's best vector.
    New = 13,
}
tree_leaf!(SubMvRef, 10, [Left, Above, Zero, New]);

/// How a SPLITMV macroblock is partitioned (RFC 6386 section 16.4
/// `mvpartition`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MvSplit {
    /// Two 16x8 halves, top and bottom.
    #[default]
    TopBottom = 0,
    /// Two 8x16 halves, left and right.
    LeftRight = 1,
    /// Four 8x8 quarters.
    Quarters = 2,
    /// Sixteen 4x4 subblocks.
    Sixteen = 3,
}
tree_leaf!(MvSplit, 0, [TopBottom, LeftRight, Quarters, Sixteen]);

impl MvSplit {
    /// The row of this split in the split tables ([`crate::tables::MBSPLITS`]).
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The picture a macroblock predicts from (RFC 6386 section 16.1;
/// libvpx's `MV_REFERENCE_FRAME`). Per-reference tables (sign bias,
/// loop-filter deltas) are indexed by [`RefFrame::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RefFrame {
    /// None: the macroblock is intra-predicted from its own frame.
    #[default]
    Intra = 0,
    /// The last frame.
    Last = 1,
    /// The golden frame.
    Golden = 2,
    /// The alternate reference frame.
    AltRef = 3,
}

impl RefFrame {
    /// The position of this reference in per-reference tables, 0..=3.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value comes back from its own leaf.
    #[test]
    fn leaves_round_trip() {
        fn check<T: TreeLeaf + PartialEq + std::fmt::Debug>(all: &[T]) {
            for &v in all {
                assert_eq!(T::from_leaf(v.leaf()), v);
            }
        }
        check(&LumaMode::ALL);
        check(&ChromaMode::ALL);
        check(&SubblockMode::ALL);
        check(&SubMvRef::ALL);
        check(&MvSplit::ALL);
        assert_eq!(SubMvRef::from_leaf(12), SubMvRef::Zero);
    }
}
