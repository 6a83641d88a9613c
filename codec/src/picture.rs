//! Reference pictures: macroblock-aligned planes with a replicated border,
//! shared between states through `Arc`.

use crate::image::{Image, Plane};

/// Border around luma reference planes, in pixels. Motion vectors may
/// point up to about 19 pixels outside the picture before the decoder
/// clamps them; farther reads take a slower edge-clamping path.
pub(crate) const BORDER_Y: usize = 32;
/// Border around chroma reference planes.
pub(crate) const BORDER_UV: usize = 16;

/// One plane of a picture, with `border` pixels on every side.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PlaneBuf {
    /// Width of the decoded area (a multiple of 8 or 16).
    pub width: usize,
    /// Height of the decoded area.
    pub height: usize,
    pub border: usize,
    pub stride: usize,
    pub data: Vec<u8>,
    /// Lines stored above line `y0` (`border` for a whole plane).
    pub top: usize,
    /// Plane line of the first decoded line held: 0 for a whole plane;
    /// for a band of one macroblock row ([`PlaneBuf::band`]) the row's
    /// first line, so that code indexing by plane coordinates works on
    /// the band unchanged.
    pub y0: isize,
}

impl PlaneBuf {
    pub fn new(width: usize, height: usize, border: usize) -> Self {
        let stride = width + 2 * border;
        PlaneBuf {
            width,
            height,
            border,
            stride,
            data: vec![0; stride * (height + 2 * border)],
            top: border,
            y0: 0,
        }
    }

    /// A band of `lines` lines of a `width`-wide plane with `border`
    /// columns each side (the stride of a whole plane's), `top` lines
    /// above them and one spare line below; its lines start at plane line
    /// `y0`, which the caller moves from row to row.
    pub fn band(width: usize, lines: usize, border: usize, top: usize) -> Self {
        let stride = width + 2 * border;
        PlaneBuf {
            width,
            height: lines,
            border,
            stride,
            data: vec![0; stride * (top + lines + 1)],
            top,
            y0: 0,
        }
    }

    /// Index of pixel (0, `y0`).
    #[inline]
    pub fn origin(&self) -> usize {
        self.top * self.stride + self.border
    }

    /// Index of pixel (x, y); x may be negative down to -border, y down
    /// to `y0 - top`.
    #[inline]
    pub fn index(&self, x: isize, y: isize) -> usize {
        (self.origin() as isize + (y - self.y0) * self.stride as isize + x) as usize
    }

    /// Replicates the edge pixels of the decoded area into the border, so
    /// that reads outside the picture see the nearest edge pixel.
    pub fn extend_borders(&mut self) {
        let (w, h, b, s) = (self.width, self.height, self.border, self.stride);
        for line in self.data[b * s..(h + b) * s].chunks_exact_mut(s) {
            extend_line(line, b, w);
        }
        self.extend_top_bottom();
    }

    /// Copies the first and the last line, borders included, into the
    /// lines above and below the decoded area (the second half of
    /// [`PlaneBuf::extend_borders`], for a plane whose lines have their
    /// side borders already).
    pub fn extend_top_bottom(&mut self) {
        let (h, b, s) = (self.height, self.border, self.stride);
        let (top, rest) = self.data.split_at_mut(b * s);
        let first = &rest[..s];
        for r in top.chunks_exact_mut(s) {
            r.copy_from_slice(first);
        }
        let last_start = (h + b - 1) * s;
        let (body, bottom) = self.data.split_at_mut((h + b) * s);
        let last = &body[last_start..last_start + s];
        for r in bottom.chunks_exact_mut(s) {
            r.copy_from_slice(last);
        }
    }

    /// The top-left `w` x `h` pixels as a plain plane.
    pub fn crop(&self, w: usize, h: usize) -> Plane {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            let i = self.index(0, y as isize);
            data.extend_from_slice(&self.data[i..i + w]);
        }
        Plane {
            width: w,
            height: h,
            stride: w,
            data,
        }
    }
}

/// Replicates the first and last of the `width` pixels after `border`
/// into the `border` pixels on either side: one line of
/// [`PlaneBuf::extend_borders`].
#[inline]
pub(crate) fn extend_line(line: &mut [u8], border: usize, width: usize) {
    let left = line[border];
    let right = line[border + width - 1];
    line[..border].fill(left);
    line[border + width..].fill(right);
}

/// A decoded picture as the decoder keeps it for reference: planes padded
/// to whole macroblocks, with borders, plus the display size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Picture {
    pub(crate) planes: [PlaneBuf; 3],
    pub(crate) width: usize,
    pub(crate) height: usize,
}

impl Picture {
    /// A picture of `width` x `height` display pixels.
    pub(crate) fn new(width: usize, height: usize) -> Self {
        let mbw = width.div_ceil(16);
        let mbh = height.div_ceil(16);
        Picture {
            planes: [
                PlaneBuf::new(mbw * 16, mbh * 16, BORDER_Y),
                PlaneBuf::new(mbw * 8, mbh * 8, BORDER_UV),
                PlaneBuf::new(mbw * 8, mbh * 8, BORDER_UV),
            ],
            width,
            height,
        }
    }

    /// Display width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Display height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The visible rows of plane `plane` (0 = Y, 1 = U, 2 = V), top to
    /// bottom, each cropped to the display width (chroma: half, rounded
    /// up). Together they are the bytes `vpxdec --i420` writes for this
    /// picture; reading them costs no copy, unlike [`Picture::to_frame`].
    ///
    /// # Panics
    /// If `plane > 2`.
    pub fn visible_rows(&self, plane: usize) -> impl Iterator<Item = &[u8]> {
        let (w, h) = if plane == 0 {
            (self.width, self.height)
        } else {
            (self.width.div_ceil(2), self.height.div_ceil(2))
        };
        let p = &self.planes[plane];
        (0..h).map(move |y| {
            let i = p.index(0, y as isize);
            &p.data[i..i + w]
        })
    }

    /// The visible picture as an [`Image`].
    pub fn to_frame(&self) -> Image {
        let cw = self.width.div_ceil(2);
        let ch = self.height.div_ceil(2);
        Image {
            width: self.width,
            height: self.height,
            planes: [
                self.planes[0].crop(self.width, self.height),
                self.planes[1].crop(cw, ch),
                self.planes[2].crop(cw, ch),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_rows_are_the_cropped_frame() {
        let mut pic = Picture::new(21, 11);
        for (k, p) in pic.planes.iter_mut().enumerate() {
            for (i, v) in p.data.iter_mut().enumerate() {
                *v = (i * 7 + k) as u8;
            }
        }
        let frame = pic.to_frame();
        for k in 0..3 {
            let rows: Vec<&[u8]> = pic.visible_rows(k).collect();
            let want: Vec<&[u8]> = frame.planes[k].rows().collect();
            assert_eq!(rows, want, "plane {k}");
        }
        assert_eq!(pic.visible_rows(1).count(), 6);
        assert_eq!(pic.visible_rows(1).next().unwrap().len(), 11);
    }
}
