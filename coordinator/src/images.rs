//! Decoded pictures as RGB images: `excam decode X --frames DIR/%04d.png`.
//!
//! VP8 defines one colour space (RFC 6386 section 9.2, `color_space` 0:
//! "YUV color space similar to ITU-R BT.601"), so the conversion is
//! BT.601's matrix. The range is studio swing (Y 16..235, chroma 16..240)
//! unless the container says the samples are full range (WebM's
//! `Colour/Range` = 2) or the caller overrides it. Chroma is upsampled by
//! repeating each sample over its 2x2 block, as libyuv's `I420ToARGB`
//! does, so every output pixel depends only on the samples coded for it.
//! Out-of-gamut results are clamped to 0..255.
//!
//! Files are written with the `image` crate (PNG or JPEG, by extension);
//! conversion and compression of a batch of pictures run on rayon's pool,
//! one picture per task, while the decoder (serial by nature) goes on.

use std::path::{Path, PathBuf};

/// Why pictures cannot be written as image files.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The `--frames` pattern is not UTF-8.
    #[error("--frames {}: not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    /// The pattern's extension names no format excam writes.
    #[error(
        "--frames {0}: cannot tell the image format; end the pattern in \
         .png or .jpg (for example frames/%04d.png)"
    )]
    Format(String),
    /// The pattern has more than one field, or a `%` that starts none.
    #[error(
        "--frames {0}: needs exactly one frame-number field, %d or %0Nd \
         (write %% for a literal %)"
    )]
    Fields(String),
    /// The pattern has no frame-number field.
    #[error("--frames {0}: has no frame-number field; write e.g. %04d for 0001, 0002, ...")]
    NoField(String),
    /// The directory the pattern names does not exist.
    #[error("--frames: directory {} does not exist", .0.display())]
    NoDirectory(PathBuf),
    /// An image file cannot be created.
    #[error("cannot create {}", .path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An image cannot be encoded or written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: image::ImageError,
    },
}

type Result<T, E = ImageError> = std::result::Result<T, E>;
use excam_codec::Picture;
use rayon::prelude::*;

/// How luma and chroma samples map to 0..255 RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Studio swing, as BT.601 video: Y 16..235 and Cb/Cr 16..240 span the
    /// full RGB range (what VP8 streams are unless a container says
    /// otherwise).
    Limited,
    /// Full swing, as JPEG: Y, Cb and Cr use all of 0..255.
    Full,
}

/// Fixed-point (16 fractional bits) BT.601 YCbCr -> RGB coefficients:
/// luma gain, then V->R, U->G, V->G, U->B, and the luma offset.
#[derive(Clone, Copy, Debug)]
struct Matrix {
    y: i32,
    vr: i32,
    ug: i32,
    vg: i32,
    ub: i32,
    y_off: i32,
}

/// `x` as a 16.16 fixed-point constant, rounded.
const fn fx(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

impl Range {
    fn matrix(self) -> Matrix {
        // Kr = 0.299, Kb = 0.114 (BT.601). For studio swing the luma
        // excursion is 219 and the chroma excursion 224 codes.
        match self {
            Range::Limited => Matrix {
                y: fx(255.0 / 219.0),
                vr: fx(255.0 / 224.0 * 1.402),
                ug: fx(255.0 / 224.0 * 1.772 * 0.114 / 0.587),
                vg: fx(255.0 / 224.0 * 1.402 * 0.299 / 0.587),
                ub: fx(255.0 / 224.0 * 1.772),
                y_off: 16,
            },
            Range::Full => Matrix {
                y: fx(1.0),
                vr: fx(1.402),
                ug: fx(1.772 * 0.114 / 0.587),
                vg: fx(1.402 * 0.299 / 0.587),
                ub: fx(1.772),
                y_off: 0,
            },
        }
    }
}

/// One pixel's RGB from its luma and (co-sited or shared) chroma samples.
#[inline]
fn pixel(m: &Matrix, y: u8, u: u8, v: u8) -> [u8; 3] {
    let clamp = |x: i32| ((x + (1 << 15)) >> 16).clamp(0, 255) as u8;
    let l = m.y * (i32::from(y) - m.y_off);
    let u = i32::from(u) - 128;
    let v = i32::from(v) - 128;
    [
        clamp(l + m.vr * v),
        clamp(l - m.ug * u - m.vg * v),
        clamp(l + m.ub * u),
    ]
}

/// The picture's visible area as packed 8-bit RGB, row after row.
pub fn to_rgb(picture: &Picture, range: Range) -> Vec<u8> {
    let (w, h) = (picture.width(), picture.height());
    let m = range.matrix();
    let mut rgb = vec![0u8; w * h * 3];
    let ys: Vec<&[u8]> = picture.visible_rows(0).collect();
    let us: Vec<&[u8]> = picture.visible_rows(1).collect();
    let vs: Vec<&[u8]> = picture.visible_rows(2).collect();
    for (y, out) in rgb.chunks_exact_mut(w * 3).enumerate() {
        let (yr, ur, vr) = (ys[y], us[y / 2], vs[y / 2]);
        for (x, px) in out.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&pixel(&m, yr[x], ur[x / 2], vr[x / 2]));
        }
    }
    rgb
}

/// Image formats `--frames` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// Lossless PNG, 8-bit RGB.
    Png,
    /// Baseline JPEG at [`JPEG_QUALITY`].
    Jpeg,
}

/// The JPEG quality `--frames X.jpg` uses (FFmpeg's `-q:v 2` territory:
/// close to the source, still far smaller than PNG).
pub const JPEG_QUALITY: u8 = 95;

/// A file-name pattern with one printf-style frame-number field, `%d` or
/// `%0Nd` (as FFmpeg's image2 muxer and vpxdec's `-o` take).
#[derive(Clone, Debug)]
pub struct Pattern {
    prefix: String,
    width: usize,
    suffix: String,
    /// Picked from the extension.
    pub format: ImageFormat,
}

impl Pattern {
    /// Parses `pattern`.
    ///
    /// # Errors
    ///
    /// A pattern without exactly one `%d`/`%0Nd` field (`%%` is a literal
    /// `%`), one that is not UTF-8, or an extension other than `.png`,
    /// `.jpg` or `.jpeg`.
    pub fn parse(pattern: &Path) -> Result<Pattern> {
        let text = pattern
            .to_str()
            .ok_or_else(|| ImageError::NotUtf8(pattern.to_path_buf()))?;
        let format = match pattern
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => ImageFormat::Png,
            Some("jpg" | "jpeg") => ImageFormat::Jpeg,
            _ => return Err(ImageError::Format(text.to_string())),
        };
        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut width = None;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let out = if width.is_some() {
                &mut suffix
            } else {
                &mut prefix
            };
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if chars.next() != Some('d') || width.is_some() {
                return Err(ImageError::Fields(text.to_string()));
            }
            // `%4d` pads with spaces in printf; file names want zeros, and
            // FFmpeg pads `%4d` with zeros too.
            width = Some(digits.parse::<usize>().unwrap_or(0).min(20));
        }
        let Some(width) = width else {
            return Err(ImageError::NoField(text.to_string()));
        };
        Ok(Pattern {
            prefix,
            width,
            suffix,
            format,
        })
    }

    /// The file name of frame `n`.
    pub fn path(&self, n: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}{n:0width$}{}",
            self.prefix,
            self.suffix,
            width = self.width
        ))
    }
}

/// Converts `picture` and writes it to `path`.
///
/// # Errors
///
/// The image cannot be encoded or the file cannot be written.
pub fn save(picture: &Picture, range: Range, format: ImageFormat, path: &Path) -> Result<()> {
    let (w, h) = (picture.width() as u32, picture.height() as u32);
    let rgb = to_rgb(picture, range);
    let file = std::fs::File::create(path).map_err(|source| ImageError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let out = std::io::BufWriter::new(file);
    let res = match format {
        ImageFormat::Png => image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(out),
            &rgb,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
        ImageFormat::Jpeg => image::ImageEncoder::write_image(
            image::codecs::jpeg::JpegEncoder::new_with_quality(out, JPEG_QUALITY),
            &rgb,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        ),
    };
    res.map_err(|source| ImageError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes pictures to numbered files, a batch at a time on rayon's pool.
pub struct FrameSink {
    pattern: Pattern,
    range: Range,
    batch: Vec<(u64, std::sync::Arc<Picture>)>,
    /// Pictures held before a batch is written: enough to keep every
    /// thread busy, few enough that memory stays small.
    batch_len: usize,
    written: u64,
}

impl FrameSink {
    /// A sink numbering files from 1, as FFmpeg's image2 and vpxdec do.
    ///
    /// # Errors
    ///
    /// The directory the pattern names does not exist.
    pub fn new(pattern: Pattern, range: Range) -> Result<FrameSink> {
        let first = pattern.path(1);
        if let Some(dir) = first.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(ImageError::NoDirectory(dir.to_path_buf()));
            }
        }
        Ok(FrameSink {
            pattern,
            range,
            batch: Vec::new(),
            batch_len: 2 * rayon::current_num_threads().max(1),
            written: 0,
        })
    }

    /// Queues the next shown picture, writing the batch when it is full.
    ///
    /// # Errors
    ///
    /// See [`save`].
    pub fn push(&mut self, picture: std::sync::Arc<Picture>) -> Result<()> {
        self.written += 1;
        self.batch.push((self.written, picture));
        if self.batch.len() >= self.batch_len {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is queued; returns the number of files written in all.
    ///
    /// # Errors
    ///
    /// See [`save`].
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.written)
    }

    fn flush(&mut self) -> Result<()> {
        let (pattern, range) = (&self.pattern, self.range);
        let batch = std::mem::take(&mut self.batch);
        batch
            .par_iter()
            .try_for_each(|(n, p)| save(p, range, pattern.format, &pattern.path(*n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_reference_colours() {
        let lim = Range::Limited.matrix();
        assert_eq!(pixel(&lim, 16, 128, 128), [0, 0, 0]);
        assert_eq!(pixel(&lim, 235, 128, 128), [255, 255, 255]);
        assert_eq!(pixel(&lim, 126, 128, 128), [128, 128, 128]);
        // Below black and above white clamp instead of wrapping.
        assert_eq!(pixel(&lim, 0, 128, 128), [0, 0, 0]);
        assert_eq!(pixel(&lim, 255, 128, 128), [255, 255, 255]);
        // BT.601 studio-swing primaries (Y, Cb, Cr rounded to integers, so
        // the result may be one code off the ideal 0/255).
        let near =
            |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 2);
        assert!(
            near(pixel(&lim, 81, 90, 240), [255, 0, 0]),
            "{:?}",
            pixel(&lim, 81, 90, 240)
        );
        assert!(
            near(pixel(&lim, 145, 54, 34), [0, 255, 0]),
            "{:?}",
            pixel(&lim, 145, 54, 34)
        );
        assert!(
            near(pixel(&lim, 41, 240, 110), [0, 0, 255]),
            "{:?}",
            pixel(&lim, 41, 240, 110)
        );
        let full = Range::Full.matrix();
        assert_eq!(pixel(&full, 0, 128, 128), [0, 0, 0]);
        assert_eq!(pixel(&full, 255, 128, 128), [255, 255, 255]);
        assert!(
            near(pixel(&full, 76, 85, 255), [255, 0, 0]),
            "{:?}",
            pixel(&full, 76, 85, 255)
        );
        assert!(
            near(pixel(&full, 150, 44, 21), [0, 255, 0]),
            "{:?}",
            pixel(&full, 150, 44, 21)
        );
        assert!(
            near(pixel(&full, 29, 255, 107), [0, 0, 255]),
            "{:?}",
            pixel(&full, 29, 255, 107)
        );
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse(Path::new("out/f%04d.png")).unwrap();
        assert_eq!(p.path(7), Path::new("out/f0007.png"));
        assert_eq!(p.format, ImageFormat::Png);
        let p = Pattern::parse(Path::new("a%%b-%d.JPG")).unwrap();
        assert_eq!(p.path(12), Path::new("a%b-12.JPG"));
        assert_eq!(p.format, ImageFormat::Jpeg);
        for bad in ["f.png", "f%d%d.png", "f%x.png", "f%04d.bmp", "f%04d"] {
            assert!(Pattern::parse(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
