//! Reference pictures: macroblock-aligned planes with a replicated border,
//! shared between states through `Arc`.

use std::sync::Mutex;

use crate::image::{Frame, Plane};

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
        }
    }

    /// Like [`PlaneBuf::new`], but the pixels are unspecified: the buffer
    /// may be one a dropped picture left in [`RECYCLED`]. For pictures
    /// whose every pixel is written before it is read (the decoder's).
    fn new_recycled(width: usize, height: usize, border: usize) -> Self {
        let stride = width + 2 * border;
        PlaneBuf {
            width,
            height,
            border,
            stride,
            data: take_recycled(stride * (height + 2 * border)),
        }
    }

    /// Index of pixel (0, 0).
    #[inline]
    pub fn origin(&self) -> usize {
        self.border * self.stride + self.border
    }

    /// Index of pixel (x, y); x and y may be negative down to -border.
    #[inline]
    pub fn index(&self, x: isize, y: isize) -> usize {
        (self.origin() as isize + y * self.stride as isize + x) as usize
    }

    /// Replicates the edge pixels of the decoded area into the border, so
    /// that reads outside the picture see the nearest edge pixel.
    pub fn extend_borders(&mut self) {
        let (w, h, b, s) = (self.width, self.height, self.border, self.stride);
        for y in 0..h {
            let row = (y + b) * s;
            let left = self.data[row + b];
            let right = self.data[row + b + w - 1];
            self.data[row..row + b].fill(left);
            self.data[row + b + w..row + s].fill(right);
        }
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

/// Plane buffers of dropped pictures, most recent last, which
/// [`Picture::new_recycled`] hands out again: a decoder makes a new
/// picture every frame and drops an old reference about as often, and
/// taking that buffer back saves zeroing (and on large frames faulting
/// in) fresh memory each time. Holds at most [`RECYCLED_MAX`] buffers.
static RECYCLED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Two pictures' worth of planes: enough for a decoder's steady state
/// (one picture in, one out per frame), and little memory kept after.
const RECYCLED_MAX: usize = 6;

/// A buffer of `len` bytes from [`RECYCLED`] if there is one (contents
/// unspecified), else a new zeroed one.
fn take_recycled(len: usize) -> Vec<u8> {
    {
        // A panic while the lock was held cannot leave the list invalid.
        let mut pool = RECYCLED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter().rposition(|b| b.len() == len) {
            return pool.remove(i);
        }
    }
    vec![0; len]
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

    /// Like [`Picture::new`], but with unspecified pixels (buffers of
    /// dropped pictures are reused): for the decoder, which writes every
    /// pixel of a new picture before reading it (the intra borders, every
    /// macroblock, then the replicated borders).
    pub(crate) fn new_recycled(width: usize, height: usize) -> Self {
        let mbw = width.div_ceil(16);
        let mbh = height.div_ceil(16);
        Picture {
            planes: [
                PlaneBuf::new_recycled(mbw * 16, mbh * 16, BORDER_Y),
                PlaneBuf::new_recycled(mbw * 8, mbh * 8, BORDER_UV),
                PlaneBuf::new_recycled(mbw * 8, mbh * 8, BORDER_UV),
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

    /// The visible picture as a [`Frame`].
    pub fn to_frame(&self) -> Frame {
        let cw = self.width.div_ceil(2);
        let ch = self.height.div_ceil(2);
        Frame {
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

impl Drop for Picture {
    /// Leaves the plane buffers to [`RECYCLED`] for the next new picture.
    fn drop(&mut self) {
        let mut pool = RECYCLED.lock().unwrap_or_else(|e| e.into_inner());
        for p in &mut self.planes {
            let data = core::mem::take(&mut p.data);
            if data.is_empty() {
                continue;
            }
            if pool.len() >= RECYCLED_MAX {
                pool.remove(0);
            }
            pool.push(data);
        }
    }
}

/// Fills the recycled-buffer list with `count` buffers of each plane size
/// of a `width` x `height` picture, every byte `byte`, so that tests can
/// check that no decoded pixel depends on what a reused buffer held.
#[cfg(test)]
pub(crate) fn poison_recycled(width: usize, height: usize, byte: u8) {
    let mut pic = Picture::new(width, height);
    for p in &mut pic.planes {
        p.data.fill(byte);
    }
    let mut pool = RECYCLED.lock().unwrap_or_else(|e| e.into_inner());
    pool.clear();
    drop(pool);
    drop(pic);
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
