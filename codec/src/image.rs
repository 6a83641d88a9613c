//! Pictures: 8-bit 4:2:0 planes with a public, documented layout.
//!
//! An [`Image`] holds three [`Plane`]s, Y then U then V. Each plane stores its
//! rows top to bottom, `stride` bytes apart, and each row holds `width`
//! samples left to right followed by `stride - width` bytes of padding that
//! carry no meaning. The chroma planes are `(width + 1) / 2` by
//! `(height + 1) / 2`, as in libvpx's I420 output.

/// One plane of 8-bit samples, row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Plane {
    /// Samples per row that belong to the picture.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
    /// Distance in bytes between the starts of two rows (`>= width`).
    pub stride: usize,
    /// `stride * height` bytes.
    pub data: Vec<u8>,
}

impl Plane {
    /// A plane of the given size filled with `value`, with `stride == width`.
    pub fn filled(width: usize, height: usize, value: u8) -> Self {
        Plane {
            width,
            height,
            stride: width,
            data: vec![value; width * height],
        }
    }

    /// Row `y` without its padding.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }

    /// Row `y` without its padding, mutable.
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let s = self.stride;
        &mut self.data[y * s..y * s + self.width]
    }

    /// Iterates over the rows without padding.
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.height).map(move |y| self.row(y))
    }
}

/// The name [`Image`] had before. A VP8 *frame* is compressed bytes
/// (`&[u8]`); an uncompressed picture is an [`Image`], which the whole
/// workspace now says. The alias stays for code written against the old
/// name.
#[deprecated(note = "an uncompressed picture is an `Image`; a VP8 frame is `&[u8]`")]
pub type Frame = Image;

/// A 4:2:0 picture: Y at full size, U and V at half size rounded up.
///
/// An uncompressed picture. A compressed VP8 frame stays a plain `&[u8]`
/// at the API ([`crate::decode()`], [`crate::rebase()`],
/// [`crate::EncodedFrame::data`]): every source of frames (IVF, WebM, the
/// worker's store, the C API) hands them over as byte slices, the decoder
/// validates each frame's tag and partitions itself and reports a bad one
/// as a [`crate::DecodeError`], so a wrapper type would add a conversion at
/// every call site and no check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Image {
    /// Luma width in pixels.
    pub width: usize,
    /// Luma height in pixels.
    pub height: usize,
    /// Y, U, V.
    pub planes: [Plane; 3],
}

impl Image {
    /// A frame of the given luma size with every sample set to the given
    /// Y, U and V values.
    pub fn filled(width: usize, height: usize, yuv: [u8; 3]) -> Self {
        let (cw, ch) = chroma_size(width, height);
        Image {
            width,
            height,
            planes: [
                Plane::filled(width, height, yuv[0]),
                Plane::filled(cw, ch, yuv[1]),
                Plane::filled(cw, ch, yuv[2]),
            ],
        }
    }

    /// Builds a frame from tightly packed I420 bytes (Y, then U, then V,
    /// no padding). Returns `None` if `bytes` has the wrong length.
    pub fn from_i420(width: usize, height: usize, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != i420_len(width, height) {
            return None;
        }
        let (cw, ch) = chroma_size(width, height);
        let ylen = width * height;
        let clen = cw * ch;
        let plane = |w, h, b: &[u8]| Plane {
            width: w,
            height: h,
            stride: w,
            data: b.to_vec(),
        };
        Some(Image {
            width,
            height,
            planes: [
                plane(width, height, &bytes[..ylen]),
                plane(cw, ch, &bytes[ylen..ylen + clen]),
                plane(cw, ch, &bytes[ylen + clen..]),
            ],
        })
    }

    /// Appends the frame as tightly packed I420 (what `vpxdec --i420` writes).
    pub fn write_i420(&self, out: &mut Vec<u8>) {
        for p in &self.planes {
            for r in p.rows() {
                out.extend_from_slice(r);
            }
        }
    }

    /// The frame as tightly packed I420 bytes.
    pub fn to_i420(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(i420_len(self.width, self.height));
        self.write_i420(&mut v);
        v
    }
}

/// Size of the chroma planes for a luma size: half, rounded up.
pub fn chroma_size(width: usize, height: usize) -> (usize, usize) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// Bytes in one tightly packed I420 picture of this size.
pub fn i420_len(width: usize, height: usize) -> usize {
    let (cw, ch) = chroma_size(width, height);
    width * height + 2 * cw * ch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i420_round_trip_odd_size() {
        let bytes: Vec<u8> = (0..i420_len(5, 3)).map(|i| i as u8).collect();
        let f = Image::from_i420(5, 3, &bytes).unwrap();
        assert_eq!(f.planes[1].width, 3);
        assert_eq!(f.planes[1].height, 2);
        assert_eq!(f.to_i420(), bytes);
        assert!(Image::from_i420(5, 3, &bytes[1..]).is_none());
    }
}
