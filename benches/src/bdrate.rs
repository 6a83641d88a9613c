//! Bjøntegaard delta rate (VCEG-M33): the average bitrate difference
//! between two rate-distortion curves at equal quality.
//!
//! Each curve's log10(rate) is fitted as a cubic polynomial of PSNR by
//! least squares; both fits are integrated over the PSNR interval the two
//! curves share, and the difference of the mean log rates is turned into a
//! percentage. Negative means the test curve needs fewer bits.

/// One operating point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RdPoint {
    /// Bitrate (any unit, the same for both curves).
    pub rate: f64,
    /// Quality in dB.
    pub psnr: f64,
}

/// Least-squares polynomial of degree `deg` through `(x, y)`; coefficients
/// lowest order first. Solves the normal equations by Gaussian elimination
/// with partial pivoting (x is centred by the caller to keep them well
/// conditioned).
fn polyfit(x: &[f64], y: &[f64], deg: usize) -> Option<Vec<f64>> {
    let n = deg + 1;
    let mut a = vec![vec![0.0; n + 1]; n];
    for (&xi, &yi) in x.iter().zip(y) {
        let pows: Vec<f64> = (0..2 * n).map(|k| xi.powi(k as i32)).collect();
        for r in 0..n {
            for c in 0..n {
                a[r][c] += pows[r + c];
            }
            a[r][n] += pows[r] * yi;
        }
    }
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for r in 0..n {
            if r != col {
                let f = a[r][col] / a[col][col];
                let pivot_row = a[col].clone();
                for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    Some((0..n).map(|i| a[i][n] / a[i][i]).collect())
}

/// Integral of the polynomial `p` from `lo` to `hi`.
fn integrate(p: &[f64], lo: f64, hi: f64) -> f64 {
    let prim = |x: f64| {
        p.iter()
            .enumerate()
            .map(|(k, c)| c * x.powi(k as i32 + 1) / (k as f64 + 1.0))
            .sum::<f64>()
    };
    prim(hi) - prim(lo)
}

/// BD-rate of `test` against `reference` in percent, or `None` when a
/// curve has fewer than four points, the curves share no PSNR range, or
/// the fit is degenerate.
pub fn bd_rate(reference: &[RdPoint], test: &[RdPoint]) -> Option<f64> {
    if reference.len() < 4 || test.len() < 4 {
        return None;
    }
    let range = |c: &[RdPoint]| {
        let lo = c.iter().map(|p| p.psnr).fold(f64::INFINITY, f64::min);
        let hi = c.iter().map(|p| p.psnr).fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let (rl, rh) = range(reference);
    let (tl, th) = range(test);
    let (lo, hi) = (rl.max(tl), rh.min(th));
    if hi <= lo {
        return None;
    }
    // Centre PSNR on the shared interval so the cubic's normal equations
    // stay well conditioned.
    let mid = (lo + hi) / 2.0;
    let fit = |c: &[RdPoint]| {
        let x: Vec<f64> = c.iter().map(|p| p.psnr - mid).collect();
        let y: Vec<f64> = c.iter().map(|p| p.rate.log10()).collect();
        polyfit(&x, &y, 3)
    };
    let (pr, pt) = (fit(reference)?, fit(test)?);
    let avg = (integrate(&pt, lo - mid, hi - mid) - integrate(&pr, lo - mid, hi - mid)) / (hi - lo);
    Some((10f64.powf(avg) - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> Vec<RdPoint> {
        [
            (120.0, 33.1),
            (250.0, 36.0),
            (480.0, 38.7),
            (900.0, 41.2),
            (1700.0, 43.9),
        ]
        .iter()
        .map(|&(rate, psnr)| RdPoint { rate, psnr })
        .collect()
    }

    #[test]
    fn identical_curves_are_zero() {
        let c = curve();
        assert!(bd_rate(&c, &c).unwrap().abs() < 1e-9);
    }

    #[test]
    fn scaled_rates_give_the_scale() {
        let c = curve();
        let more: Vec<RdPoint> = c
            .iter()
            .map(|p| RdPoint {
                rate: p.rate * 1.1,
                ..*p
            })
            .collect();
        assert!((bd_rate(&c, &more).unwrap() - 10.0).abs() < 1e-6);
        let less: Vec<RdPoint> = c
            .iter()
            .map(|p| RdPoint {
                rate: p.rate / 1.1,
                ..*p
            })
            .collect();
        assert!((bd_rate(&c, &less).unwrap() - (1.0 / 1.1 - 1.0) * 100.0).abs() < 1e-6);
    }

    #[test]
    fn better_quality_at_same_rate_is_negative() {
        let c = curve();
        let better: Vec<RdPoint> = c
            .iter()
            .map(|p| RdPoint {
                psnr: p.psnr + 0.5,
                ..*p
            })
            .collect();
        assert!(bd_rate(&c, &better).unwrap() < -5.0);
    }

    #[test]
    fn disjoint_or_short_curves_have_none() {
        let c = curve();
        let far: Vec<RdPoint> = c
            .iter()
            .map(|p| RdPoint {
                psnr: p.psnr + 20.0,
                ..*p
            })
            .collect();
        assert_eq!(bd_rate(&c, &far), None);
        assert_eq!(bd_rate(&c[..3], &c), None);
    }
}
