//! What a first pass records about a clip and the second pass reads
//! ([`EncoderConfig::first_pass`](super::EncoderConfig::first_pass)), and
//! its text form (vpxenc's `--fpf` file).

use crate::encode::EncodeError;

/// One frame's first-pass numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassFrameStats {
    /// Bits the frame took in the analysis encode at
    /// [`FirstPassStats::q_index`].
    pub bits: u32,
    /// Bits it took at [`FirstPassStats::fine_q_index`].
    pub fine_bits: u32,
    /// Whether the analysis coded it as a key frame.
    pub key_frame: bool,
}

/// What a first pass learned about a clip: the input of the second pass
/// ([`EncoderConfig::first_pass`](super::EncoderConfig::first_pass)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstPassStats {
    /// Luma width and height analysed.
    pub width: usize,
    /// See `width`.
    pub height: usize,
    /// The q index every analysed frame was coded at.
    pub q_index: u8,
    /// The finer q index of the second analysis encode (half the first).
    pub fine_q_index: u8,
    /// Per frame, in input order.
    pub frames: Vec<PassFrameStats>,
}

/// First line of [`FirstPassStats::to_text`], with a version.
const TEXT_MAGIC: &str = "excam-fpf 1";

impl FirstPassStats {
    /// The statistics as text, vpxenc's `--fpf` file: a header line
    /// `excam-fpf 1 WIDTH HEIGHT QINDEX FINE_QINDEX`, then one line per
    /// frame, `BITS FINE_BITS K` (key frame) or `... I` (inter).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{TEXT_MAGIC} {} {} {} {}\n",
            self.width, self.height, self.q_index, self.fine_q_index
        );
        for f in &self.frames {
            s.push_str(&format!(
                "{} {} {}\n",
                f.bits,
                f.fine_bits,
                if f.key_frame { 'K' } else { 'I' }
            ));
        }
        s
    }

    /// Parses [`to_text`](Self::to_text)'s output.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BadParam`] for anything else.
    pub fn from_text(text: &str) -> Result<Self, EncodeError> {
        const BAD: EncodeError = EncodeError::BadParam("not an excam first-pass statistics file");
        let mut lines = text.lines();
        let head = lines.next().ok_or(BAD)?;
        let rest = head.strip_prefix(TEXT_MAGIC).ok_or(BAD)?;
        let nums: Vec<usize> = rest
            .split_whitespace()
            .map(|t| t.parse().map_err(|_| BAD))
            .collect::<Result<_, _>>()?;
        let [width, height, q_index, fine_q_index] = nums[..] else {
            return Err(BAD);
        };
        if q_index > 127 || fine_q_index > q_index {
            return Err(BAD);
        }
        let mut frames = Vec::new();
        for line in lines {
            let mut it = line.split_whitespace();
            let (Some(bits), Some(fine_bits), Some(kind), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(BAD);
            };
            let bits = bits.parse().map_err(|_| BAD)?;
            let fine_bits = fine_bits.parse().map_err(|_| BAD)?;
            let key_frame = match kind {
                "K" => true,
                "I" => false,
                _ => return Err(BAD),
            };
            frames.push(PassFrameStats {
                bits,
                fine_bits,
                key_frame,
            });
        }
        Ok(FirstPassStats {
            width,
            height,
            q_index: q_index as u8,
            fine_q_index: fine_q_index as u8,
            frames,
        })
    }

    /// Sum of the analysed bits of frames `from..`.
    pub(super) fn bits_from(&self, from: usize) -> f64 {
        self.frames.iter().skip(from).map(|f| f.bits as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_garbage() {
        let s = FirstPassStats {
            width: 48,
            height: 32,
            q_index: 60,
            fine_q_index: 30,
            frames: vec![
                PassFrameStats {
                    bits: 9000,
                    fine_bits: 20000,
                    key_frame: true,
                },
                PassFrameStats {
                    bits: 700,
                    fine_bits: 1500,
                    key_frame: false,
                },
            ],
        };
        assert_eq!(FirstPassStats::from_text(&s.to_text()), Ok(s.clone()));
        for bad in [
            "",
            "excam-fpf 2 48 32 60 30\n",
            "excam-fpf 1 48 32 60\n",
            "excam-fpf 1 48 32 200 30\n",
            "excam-fpf 1 48 32 60 61\n",
            "excam-fpf 1 48 32 60 30\n12 13 X\n",
            "excam-fpf 1 48 32 60 30\n12 13\n",
            "excam-fpf 1 48 32 60 30\n-3 4 I\n",
            "excam-fpf 1 48 32 60 30\n3 4 I 5\n",
        ] {
            assert!(FirstPassStats::from_text(bad).is_err(), "{bad:?}");
        }
    }
}
