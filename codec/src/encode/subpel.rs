//! Sub-pixel reference planes for motion search: a reference filtered at
//! every quarter-pixel phase once per frame, so that pricing a fractional
//! vector is a plain SAD or SSE against memory instead of a six-tap filter
//! per candidate block.
//!
//! VP8's six-tap prediction (RFC 6386 section 18.3) depends only on the
//! integer position and the phase of each output sample (the first pass
//! rounds to 8 bits before the second, and both passes are the same for
//! every sample), so a whole-plane filtering at one phase holds exactly the
//! predictions of every block at that phase. Samples near the plane's
//! border read clamped coordinates, as the decoder's edge path does.

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::encode::modes::MvCosts;
use crate::encode::workers::Workers;
use crate::inter_pred::{self, SIXTAP_FILTERS};
use crate::picture::PlaneBuf;
use crate::prediction::RefFrame;

/// One reference's luma filtered at the 15 fractional quarter-pixel
/// phases, each with the reference's geometry (border and stride).
pub(crate) struct SubpelPlanes {
    /// Indexed by `(fy / 2) * 4 + fx / 2` (eighths of a pixel, even only);
    /// entry 0 (whole pixels) is empty: the reference itself serves.
    planes: Vec<Vec<u8>>,
}

/// The six-tap sum of one sample, rounded and clamped like the decoder's
/// filter, in 16-bit lanes: the exact sum lies in -8160..=40800, so adding
/// 64 * 128 (plus the rounding 64) makes it a `u16` and wrapping
/// arithmetic computes it exactly, eight or sixteen samples per
/// instruction once vectorised.
#[inline(always)]
fn tap6(s: [u8; 6], t: &[u16; 6]) -> u8 {
    let mut v: u16 = 64 * 128 + 64;
    for k in 0..6 {
        v = v.wrapping_add(u16::from(s[k]).wrapping_mul(t[k]));
    }
    ((v >> 7) as i16 - 64).clamp(0, 255) as u8
}

/// Horizontal pass: `out[i]` from `row[i..i + 6]`.
#[inline(always)]
fn filter_h(row: &[u8], t: &[u16; 6], out: &mut [u8]) {
    let n = out.len();
    let row = &row[..n + 5];
    // Sixteen outputs at a time from a fixed 21-sample window, so the
    // taps become six shifted vector loads.
    let full = n / 16 * 16;
    for (c, o16) in out[..full].chunks_exact_mut(16).enumerate() {
        let w: &[u8; 21] = row[c * 16..c * 16 + 21].try_into().expect("window");
        for (i, o) in o16.iter_mut().enumerate() {
            *o = tap6([w[i], w[i + 1], w[i + 2], w[i + 3], w[i + 4], w[i + 5]], t);
        }
    }
    for (i, o) in out.iter_mut().enumerate().skip(full) {
        *o = tap6(
            [
                row[i],
                row[i + 1],
                row[i + 2],
                row[i + 3],
                row[i + 4],
                row[i + 5],
            ],
            t,
        );
    }
}

/// Vertical pass: `out[i]` from `rows[0..6][i]`.
#[inline(always)]
fn filter_v(rows: [&[u8]; 6], t: &[u16; 6], out: &mut [u8]) {
    let n = out.len();
    let r: [&[u8]; 6] = rows.map(|r| &r[..n]);
    // Zipped iterators rather than indices: no bounds checks left in the
    // loop, so it vectorises in every build (indexing did only in some,
    // depending on how the crate was split into codegen units).
    let taps = r[0]
        .iter()
        .zip(r[1])
        .zip(r[2])
        .zip(r[3])
        .zip(r[4])
        .zip(r[5]);
    for (o, (((((&a, &b), &c), &d), &e), &f)) in out.iter_mut().zip(taps) {
        *o = tap6([a, b, c, d, e, f], t);
    }
}

thread_local! {
    /// Plane buffers of finished frames, reused: allocating a megabyte of
    /// fresh pages per frame costs more in page faults than filtering it.
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `n` bytes (contents unspecified; callers overwrite all).
fn take_buffer(n: usize) -> Vec<u8> {
    let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    v.resize(n, 0);
    v
}

fn give_buffer(v: Vec<u8>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        // Enough for the planes of three references plus scratch.
        if p.len() < 64 {
            p.push(v);
        }
    });
}

impl Drop for SubpelPlanes {
    fn drop(&mut self) {
        for v in self.planes.drain(..) {
            if v.capacity() > 0 {
                give_buffer(v);
            }
        }
    }
}

/// Samples of clamp padding beyond the border, for the filter taps.
const PAD: usize = 3;

impl SubpelPlanes {
    /// Filters `reference` at every fractional phase.
    #[cfg(test)]
    pub fn new(reference: &PlaneBuf, sixtap: bool) -> Self {
        Self::build(reference, sixtap, Workers::SERIAL, None)
    }

    /// [`new`](Self::new) on up to `workers.count()` threads (one per
    /// horizontal phase at most), taking and returning scratch buffers
    /// from `spare` before the thread's own pool. The planes are the same
    /// for any count.
    fn build(
        reference: &PlaneBuf,
        sixtap: bool,
        workers: Workers,
        spare: Option<&Mutex<Vec<Vec<u8>>>>,
    ) -> Self {
        let take = |n: usize| {
            let v = spare.and_then(|s| s.lock().unwrap_or_else(PoisonError::into_inner).pop());
            let mut v = v.unwrap_or_else(|| take_buffer(n));
            v.resize(n, 0);
            v
        };
        let give = |v: Vec<u8>| match spare {
            Some(s) => s.lock().unwrap_or_else(PoisonError::into_inner).push(v),
            None => give_buffer(v),
        };
        let (bw, bh) = (
            reference.width + 2 * reference.border,
            reference.height + 2 * reference.border,
        );
        // The bordered plane plus PAD clamped samples on every side, so
        // the 16x16 filter calls below never read outside.
        let es = bw + 2 * PAD;
        let eh = bh + 2 * PAD;
        let mut ext = take(es * eh);
        for y in 0..eh {
            let sy = y.saturating_sub(PAD).min(bh - 1);
            let row = &reference.data[sy * reference.stride..sy * reference.stride + bw];
            let out = &mut ext[y * es..(y + 1) * es];
            out[..PAD].fill(row[0]);
            out[PAD..PAD + bw].copy_from_slice(row);
            out[PAD + bw..].fill(row[bw - 1]);
        }
        if !sixtap {
            let planes = by_blocks(&ext, es, bw, bh, false);
            give(ext);
            return planes;
        }
        // One column of phases per horizontal phase: its horizontal pass
        // (none for whole pixels) and the planes of every vertical phase.
        let mut columns: Vec<Column> = (0..4)
            .map(|c| Column {
                fx: c * 2,
                hpass: if c == 0 { Vec::new() } else { take(bw * eh) },
                planes: (usize::from(c == 0)..4).map(|_| take(bw * bh)).collect(),
            })
            .collect();
        let threads = workers.count().clamp(1, columns.len());
        if threads == 1 {
            for c in &mut columns {
                fill_column(&ext, es, bw, bh, c);
            }
        } else {
            // Column i on job i % threads.
            let mut groups: Vec<Vec<&mut Column>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, c) in columns.iter_mut().enumerate() {
                groups[i % threads].push(c);
            }
            let groups: Vec<Mutex<Vec<&mut Column>>> = groups.into_iter().map(Mutex::new).collect();
            let ext = &ext[..];
            workers.run(threads, |i| {
                let mut g = groups[i].lock().unwrap_or_else(PoisonError::into_inner);
                for c in g.iter_mut() {
                    fill_column(ext, es, bw, bh, c);
                }
            });
        }
        let mut planes = vec![Vec::new(); 16];
        for c in columns {
            let first_fy = usize::from(c.fx == 0);
            for (k, p) in c.planes.into_iter().enumerate() {
                planes[(first_fy + k) * 4 + c.fx / 2] = p;
            }
            if c.hpass.capacity() > 0 {
                give(c.hpass);
            }
        }
        give(ext);
        SubpelPlanes { planes }
    }

    /// The plane holding phase `(fx, fy)` (eighths, even, not both zero).
    #[inline]
    pub fn plane(&self, fx: usize, fy: usize) -> &[u8] {
        &self.planes[(fy / 2) * 4 + fx / 2]
    }
}

/// The planes of one horizontal phase `fx`, and its horizontal pass.
struct Column {
    fx: usize,
    /// The horizontal pass over every extended row (empty for `fx` 0).
    hpass: Vec<u8>,
    /// The planes of vertical phases 0, 2, 4, 6 (2, 4, 6 for `fx` 0).
    planes: Vec<Vec<u8>>,
}

/// Filters block by block with the decoder's kernels (used for the
/// bilinear filter, which the encoder does not otherwise pick).
fn by_blocks(ext: &[u8], es: usize, bw: usize, bh: usize, sixtap: bool) -> SubpelPlanes {
    let mut planes = vec![Vec::new()];
    for phase in 1..16 {
        let (fx, fy) = ((phase & 3) * 2, (phase >> 2) * 2);
        let mut p = take_buffer(bw * bh);
        for ty in (0..bh).step_by(16) {
            for tx in (0..bw).step_by(16) {
                let pos = (ty + PAD) * es + tx + PAD;
                let dpos = ty * bw + tx;
                if sixtap {
                    inter_pred::sixtap(ext, pos, es, fx, fy, 16, 16, &mut p, dpos, bw);
                } else {
                    inter_pred::bilinear(ext, pos, es, fx, fy, 16, 16, &mut p, dpos, bw);
                }
            }
        }
        planes.push(p);
    }
    SubpelPlanes { planes }
}

/// The six-tap filtering of one [`Column`] from the extended plane
/// `ext` (stride `es`) of a `bw` x `bh` bordered reference.
#[inline(always)]
fn fill_column_body(ext: &[u8], es: usize, bw: usize, bh: usize, c: &mut Column) {
    // The horizontal pass over every extended row, then vertical passes
    // over it (or over the reference for whole-pixel columns): the same
    // two roundings as the block filter, without recomputing the first
    // pass for each vertical phase.
    let taps = |f: usize| SIXTAP_FILTERS[f].map(|t| t as u16);
    let eh = bh + 2 * PAD;
    let fx = c.fx;
    if fx != 0 {
        for y in 0..eh {
            let row = &ext[y * es + PAD - 2..y * es + PAD + bw + 3];
            filter_h(row, &taps(fx), &mut c.hpass[y * bw..(y + 1) * bw]);
        }
    }
    let (src, stride, col) = if fx == 0 {
        (ext, es, PAD)
    } else {
        (&c.hpass[..], bw, 0)
    };
    let first_fy = usize::from(fx == 0);
    for (k, p) in c.planes.iter_mut().enumerate() {
        let fy = (first_fy + k) * 2;
        for y in 0..bh {
            let out = &mut p[y * bw..(y + 1) * bw];
            if fy == 0 {
                let at = (y + PAD) * stride + col;
                out.copy_from_slice(&src[at..at + bw]);
            } else {
                let rows: [&[u8]; 6] = core::array::from_fn(|k| {
                    let at = (y + PAD + k - 2) * stride + col;
                    &src[at..at + bw]
                });
                filter_v(rows, &taps(fy), out);
            }
        }
    }
}

crate::dsp::dispatch::dispatch! {
    /// [`fill_column_body`], vectorised for the CPU at hand.
    fn fill_column(ext: &[u8], es: usize, bw: usize, bh: usize, c: &mut Column) -> () {
        fill_column_body(ext, es, bw, bh, c)
    }
}

/// What the motion search of one frame reuses across macroblocks.
pub(crate) struct SearchCache {
    /// Vector costs under the frame's vector probabilities.
    pub mv_costs: MvCosts,
    subpel: [OnceLock<SubpelPlanes>; 4],
    /// Buffers from the pool of the thread that made the cache, for a
    /// build on another thread (a wavefront's), whose own pool is new:
    /// fresh pages cost more than the filtering.
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Buffers a [`SearchCache`] holds for builds: three references' worth.
const SPARE_BUFFERS: usize = 3 * 19;

impl SearchCache {
    /// A cache for a frame coded with vector probabilities `mv_probs`.
    pub fn new(mv_probs: &[[u8; 19]; 2]) -> Self {
        let spare = POOL.with(|p| {
            let mut p = p.borrow_mut();
            let keep = p.len().saturating_sub(SPARE_BUFFERS);
            p.split_off(keep)
        });
        SearchCache {
            mv_costs: MvCosts::new(mv_probs),
            subpel: Default::default(),
            spare: Mutex::new(spare),
        }
    }

    /// The sub-pixel planes of reference `rf` if already built.
    pub fn built_subpel(&self, rf: RefFrame) -> Option<&SubpelPlanes> {
        self.subpel[rf.index()].get()
    }

    /// The sub-pixel planes of inter reference `rf`, whose luma is
    /// `reference`, built on the calling thread if not built yet (a
    /// macroblock's search runs on a wavefront thread, which must not
    /// wait for helpers: they may be waiting for its row).
    pub fn subpel(&self, rf: RefFrame, reference: &PlaneBuf, sixtap: bool) -> &SubpelPlanes {
        self.subpel_on(rf, reference, sixtap, Workers::SERIAL)
    }

    /// [`subpel`](Self::subpel) built on `workers` if not built yet.
    pub fn subpel_on(
        &self,
        rf: RefFrame,
        reference: &PlaneBuf,
        sixtap: bool,
        workers: Workers,
    ) -> &SubpelPlanes {
        self.subpel[rf.index()]
            .get_or_init(|| SubpelPlanes::build(reference, sixtap, workers, Some(&self.spare)))
    }
}

impl Drop for SearchCache {
    fn drop(&mut self) {
        let spare = self.spare.get_mut().unwrap_or_else(PoisonError::into_inner);
        for v in spare.drain(..) {
            give_buffer(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::predict_block_into;

    /// Every phase plane equals block prediction at that phase, inside
    /// the picture and out in the border.
    #[test]
    fn planes_equal_block_prediction() {
        let mut r = PlaneBuf::new(48, 32, 32);
        let mut s = 9u32;
        for y in 0..32 {
            for x in 0..48 {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let i = r.index(x, y);
                r.data[i] = (s >> 24) as u8;
            }
        }
        r.extend_borders();
        for sixtap in [true, false] {
            let sp = SubpelPlanes::new(&r, sixtap);
            for phase in 1..16 {
                let (fx, fy) = ((phase & 3) * 2, (phase >> 2) * 2);
                let plane = sp.plane(fx, fy);
                for (x, y) in [(0isize, 0isize), (5, 7), (-30, -30), (40, 20), (-3, 28)] {
                    let mut pred = [0u8; 16];
                    let (bx, by) = (x.max(0) as usize, y.max(0) as usize);
                    let (dx, dy) = (x - bx as isize, y - by as isize);
                    predict_block_into(
                        &r,
                        bx,
                        by,
                        4,
                        4,
                        (dx, dy),
                        (fx, fy),
                        sixtap,
                        &mut pred,
                        0,
                        4,
                    );
                    for i in 0..4 {
                        for j in 0..4 {
                            let p = plane[r.index(x + j as isize, y + i as isize)];
                            assert_eq!(p, pred[i * 4 + j], "phase {phase} at {x},{y}");
                        }
                    }
                }
            }
        }
    }

    /// Built on 2, 3, 4 or 8 threads, with buffers from a spare list of
    /// odd sizes, the planes are those of one thread.
    #[test]
    fn threaded_build_equals_serial() {
        // Whole macroblocks, as every reference is.
        let mut r = PlaneBuf::new(48, 16, 32);
        let mut s = 5u32;
        for v in r.data.iter_mut() {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = (s >> 24) as u8;
        }
        for sixtap in [true, false] {
            let one = SubpelPlanes::new(&r, sixtap);
            for threads in [2, 3, 4, 8] {
                let spare = Mutex::new(vec![vec![7u8; 3], vec![9u8; 100_000], Vec::new()]);
                let workers = Workers::new(threads, None);
                let many = SubpelPlanes::build(&r, sixtap, workers, Some(&spare));
                assert!(
                    one.planes == many.planes,
                    "{threads} threads, six-tap {sixtap}"
                );
            }
        }
    }
}
