//! Macroblock rows decided on several threads at once, as a wavefront
//! (libvpx's `vp8/encoder/ethreading.c`): macroblock `c` of row `r` may
//! start once row `r - 1` has finished macroblock `c + 1`, whose bottom
//! pixels are its above and above-right intra edge.
//!
//! A macroblock's decision reads, besides the frame's inputs, only what
//! the macroblocks above, above-left, above-right and left of it left
//! behind: the bottom pixel line of the row above (intra edges), the
//! records of the macroblocks above and above-left (vector prediction),
//! the above token context (token costs), and its own row's left
//! context. Each thread codes whole rows in a private [`Picture`] with
//! private records and contexts; after each macroblock it publishes that
//! row's bottom pixels, its record and its above token context, and the
//! thread coding the next row copies them in before it needs them. So
//! each macroblock sees exactly the inputs it sees when rows are coded in
//! raster order on one thread, and the frame is the same bytes for any
//! thread count. Rows are handed out in order from a counter, so the row
//! a thread waits for is always being coded by another one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::encode::analysis::{MbCoded, TokenContexts};
use crate::encode::syntax::{FrameInputs, MAX_THREADS};
use crate::encode::workers::Workers;
use crate::modes::MbInfo;
use crate::picture::Picture;
use crate::recon;
use crate::tokens::TokenContext;

impl FrameInputs {
    /// Codes every macroblock with `code_mb(pic, ctx, modes, mb_x, mb_y)`,
    /// which leaves the macroblock's reconstruction in `pic` and its token
    /// contexts updated, and returns the records, the levels and the
    /// reconstruction.
    ///
    /// `code_mb` may read only the pixels, records and token contexts of
    /// the macroblocks left, above-left, above and above-right of its own
    /// (as VP8's prediction and contexts do): on more than one of
    /// `workers` rows are coded as a wavefront ([`code_rows`]) where
    /// nothing else is in place yet. The result is the same for any
    /// count. (It lives here, not in `syntax.rs`, so that the frame's
    /// inputs do not depend on the walk that uses them.)
    pub fn code_macroblocks<F>(
        &self,
        workers: Workers,
        code_mb: F,
    ) -> (Vec<MbInfo>, Vec<MbCoded>, Picture)
    where
        F: Fn(&mut Picture, &mut TokenContexts, &[MbInfo], usize, usize) -> MbCoded + Sync,
    {
        let (mb_cols, mb_rows) = (self.mb_cols, self.mb_rows);
        let threads = workers.count().min(mb_rows).min(MAX_THREADS);
        if threads > 1 {
            return code_rows(self, workers, threads, &code_mb);
        }
        let mut pic = Picture::new(self.width, self.height);
        recon::init_intra_borders(&mut pic);
        let mut ctx = TokenContexts {
            above: vec![[0; 9]; mb_cols],
            left: [0; 9],
        };
        let mut modes: Vec<MbInfo> = Vec::with_capacity(mb_cols * mb_rows);
        let mut coded: Vec<MbCoded> = Vec::with_capacity(mb_cols * mb_rows);
        for mb_y in 0..mb_rows {
            ctx.left = [0; 9];
            for mb_x in 0..mb_cols {
                let c = code_mb(&mut pic, &mut ctx, &modes, mb_x, mb_y);
                modes.push(c.info);
                coded.push(c);
            }
            recon::extend_row_right(&mut pic, mb_y);
        }
        (modes, coded, pic)
    }
}

/// What one row has published for the row below.
struct Published {
    /// Threads blocked in [`Row::ready`] (so the publisher knows to wake
    /// them).
    waiters: usize,
    /// The row's bottom luma line (plus the 4 pixels right of the
    /// picture) and bottom chroma lines, from x = 0.
    lines: [Vec<u8>; 3],
    /// The above token context each macroblock leaves for the row below.
    ctx: Vec<TokenContext>,
    /// The row's macroblock records.
    info: Vec<MbInfo>,
}

/// One row's hand-over point.
struct Row {
    published: Mutex<Published>,
    /// Macroblocks of the row published so far; `mb_cols` also means the
    /// pixels right of the picture (see [`recon::extend_row_right`]).
    /// Stored under the lock, after the data.
    done: AtomicUsize,
    /// A thread panicked: nobody will publish more, waiters give up.
    failed: AtomicBool,
    ready: Condvar,
}

impl Row {
    fn lock(&self) -> MutexGuard<'_, Published> {
        // A panic while the lock was held leaves plain data behind; the
        // `failed` flag, not the poison, says whether to go on.
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `need` macroblocks are published; false if a thread
    /// failed. A macroblock takes some microseconds at the fast speeds,
    /// less than a sleeping thread takes to wake on a busy machine, so
    /// the wait spins for a while before it sleeps (libvpx's encoder
    /// threads spin too).
    fn wait_for(&self, need: usize) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.done.load(Ordering::Acquire) >= need {
                return true;
            }
            if self.failed.load(Ordering::Acquire) {
                return false;
            }
            spins += 1;
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut p = self.lock();
            p.waiters += 1;
            while self.done.load(Ordering::Acquire) < need && !self.failed.load(Ordering::Acquire) {
                p = self.ready.wait(p).unwrap_or_else(PoisonError::into_inner);
            }
            p.waiters -= 1;
        }
    }
}

/// How long a thread spins for the row above before it sleeps: a few
/// macroblocks' time at speed 8.
const SPIN: Duration = Duration::from_micros(100);

/// What one thread coded: its picture, which holds the pixels of its
/// rows, and those rows' macroblocks.
struct ThreadOut {
    pic: Picture,
    rows: Vec<(usize, Vec<MbCoded>)>,
}

/// Marks every row failed if the thread holding it unwinds, so no
/// thread waits forever for a row that will not come.
struct FailGuard<'a>(&'a [Row]);

impl Drop for FailGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for row in self.0 {
                let p = row.lock();
                row.failed.store(true, Ordering::Release);
                drop(p);
                row.ready.notify_all();
            }
        }
    }
}

thread_local! {
    /// The helpers' pictures of the last frame the thread coded on
    /// several threads, for the next frame's helpers.
    static HELPER_PICTURES: std::cell::Cell<Vec<Picture>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// Plane heights of one macroblock row: luma, then chroma.
const ROW_LINES: [usize; 3] = [16, 8, 8];

/// [`FrameInputs::code_macroblocks`] on `threads` of `workers` (2 or
/// more, at most the row count); the result is the same as on one.
pub(crate) fn code_rows<F>(
    inputs: &FrameInputs,
    workers: Workers,
    threads: usize,
    code_mb: &F,
) -> (Vec<MbInfo>, Vec<MbCoded>, Picture)
where
    F: Fn(&mut Picture, &mut TokenContexts, &[MbInfo], usize, usize) -> MbCoded + Sync,
{
    let (mb_cols, mb_rows) = (inputs.mb_cols, inputs.mb_rows);
    let rows: Vec<Row> = (0..mb_rows)
        .map(|_| Row {
            published: Mutex::new(Published {
                waiters: 0,
                lines: [
                    vec![0; mb_cols * 16 + 4],
                    vec![0; mb_cols * 8],
                    vec![0; mb_cols * 8],
                ],
                ctx: vec![[0; 9]; mb_cols],
                info: vec![MbInfo::default(); mb_cols],
            }),
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            ready: Condvar::new(),
        })
        .collect();
    let next = AtomicUsize::new(0);
    // The helpers' pictures of the last frame this thread coded: a
    // helper codes into one of them instead of a fresh (zeroed, page
    // faulted) picture.
    let spare = Mutex::new(HELPER_PICTURES.with(|h| h.take()));
    // A job that starts late finds fewer rows left, or none: it never
    // holds a row another one waits for before it starts.
    let mut outs = workers
        .run(threads, |job| {
            let pic = if job == 0 {
                // The calling thread's picture becomes the frame's.
                None
            } else {
                let mut spare = spare.lock().unwrap_or_else(PoisonError::into_inner);
                spare
                    .iter()
                    .position(|p| (p.width, p.height) == (inputs.width, inputs.height))
                    .map(|i| spare.swap_remove(i))
            };
            code_rows_on_this_thread(inputs, code_mb, &rows, &next, pic)
        })
        .into_iter();
    let mine = outs.next().expect("the calling thread's job");
    let theirs = outs;

    // This thread's picture becomes the frame's: the other threads' rows
    // are copied in, whole lines with their borders.
    let mut pic = mine.pic;
    let mut by_row: Vec<Option<Vec<MbCoded>>> = (0..mb_rows).map(|_| None).collect();
    for (mb_y, coded) in mine.rows {
        by_row[mb_y] = Some(coded);
    }
    let mut kept = Vec::new();
    for t in theirs {
        for (mb_y, coded) in t.rows {
            for (p, (dst, src)) in pic.planes.iter_mut().zip(&t.pic.planes).enumerate() {
                let start = dst.index(-(dst.border as isize), (mb_y * ROW_LINES[p]) as isize);
                let end = start + ROW_LINES[p] * dst.stride;
                dst.data[start..end].copy_from_slice(&src.data[start..end]);
            }
            by_row[mb_y] = Some(coded);
        }
        kept.push(t.pic);
    }
    HELPER_PICTURES.with(|h| h.set(kept));
    let mut modes = Vec::with_capacity(mb_cols * mb_rows);
    let mut coded = Vec::with_capacity(mb_cols * mb_rows);
    for row in by_row {
        let row = row.expect("every row is coded");
        modes.extend(row.iter().map(|c| c.info));
        coded.extend(row);
    }
    (modes, coded, pic)
}

/// Takes rows from `next` until none is left and codes them; returns
/// the rows coded, or those coded so far if another thread failed (it
/// then panicked, and the scope passes that on).
fn code_rows_on_this_thread<F>(
    inputs: &FrameInputs,
    code_mb: &F,
    rows: &[Row],
    next: &AtomicUsize,
    pic: Option<Picture>,
) -> ThreadOut
where
    F: Fn(&mut Picture, &mut TokenContexts, &[MbInfo], usize, usize) -> MbCoded + Sync,
{
    let _guard = FailGuard(rows);
    let (mb_cols, mb_rows) = (inputs.mb_cols, inputs.mb_rows);
    let sync = sync_interval(inputs.width);
    let mut ctx = TokenContexts {
        above: vec![[0; 9]; mb_cols],
        left: [0; 9],
    };
    // Only this thread's rows and the rows above them are filled in:
    // a decision reads no other records.
    let mut modes = vec![MbInfo::default(); mb_cols * mb_rows];
    // A picture used before holds another frame's pixels where this
    // thread codes no rows: never read, as the zeros of a fresh one are
    // not (they too differ from the frame's pixels there).
    let mut out = ThreadOut {
        pic: pic.unwrap_or_else(|| Picture::new(inputs.width, inputs.height)),
        rows: Vec::new(),
    };
    recon::init_intra_borders(&mut out.pic);
    loop {
        let mb_y = next.fetch_add(1, Ordering::Relaxed);
        if mb_y >= mb_rows {
            return out;
        }
        ctx.left = [0; 9];
        if mb_y == 0 {
            ctx.above.fill([0; 9]);
        }
        // Macroblocks of the row above copied in so far, and of this
        // row published.
        let mut have = 0;
        let mut published = 0;
        let mut coded = Vec::with_capacity(mb_cols);
        for mb_x in 0..mb_cols {
            if mb_y > 0 {
                let need = (mb_x + 2).min(mb_cols);
                if have < need {
                    match take_above(
                        &rows[mb_y - 1],
                        need,
                        have,
                        &mut out.pic,
                        &mut ctx,
                        &mut modes,
                        mb_y,
                    ) {
                        Some(n) => have = n,
                        None => return out,
                    }
                }
            }
            let c = code_mb(&mut out.pic, &mut ctx, &modes, mb_x, mb_y);
            modes[mb_y * mb_cols + mb_x] = c.info;
            if mb_x + 1 == mb_cols {
                recon::extend_row_right(&mut out.pic, mb_y);
            }
            if (mb_x + 1) % sync == 0 || mb_x + 1 == mb_cols {
                let from = published;
                published = mb_x + 1;
                let row = mb_y * mb_cols;
                let done = Done {
                    ctx: &ctx.above[from..published],
                    info: &modes[row + from..row + published],
                    from,
                    mb_y,
                    mb_cols,
                };
                publish(&rows[mb_y], &out.pic, done);
            }
            coded.push(c);
        }
        out.rows.push((mb_y, coded));
    }
}

/// Waits until the row above row `mb_y` has published `need`
/// macroblocks, then copies what it published beyond the first `have`
/// into `pic` (its bottom lines), `ctx` and `modes`. Returns how many are
/// copied now, or `None` if a thread failed.
fn take_above(
    above: &Row,
    need: usize,
    have: usize,
    pic: &mut Picture,
    ctx: &mut TokenContexts,
    modes: &mut [MbInfo],
    mb_y: usize,
) -> Option<usize> {
    if !above.wait_for(need) {
        return None;
    }
    let p = above.lock();
    let done = above.done.load(Ordering::Acquire);
    let mb_cols = ctx.above.len();
    for (i, plane) in pic.planes.iter_mut().enumerate() {
        let size = ROW_LINES[i];
        let (x0, mut x1) = (have * size, done * size);
        if i == 0 && done == mb_cols {
            // The pixels right of the picture: the last macroblock's
            // above-right.
            x1 += 4;
        }
        let start = plane.index(0, (mb_y * size) as isize - 1);
        plane.data[start + x0..start + x1].copy_from_slice(&p.lines[i][x0..x1]);
    }
    ctx.above[have..done].copy_from_slice(&p.ctx[have..done]);
    let row = (mb_y - 1) * mb_cols;
    modes[row + have..row + done].copy_from_slice(&p.info[have..done]);
    Some(done)
}

/// Macroblocks of one row published at once: each hand-over costs
/// cache lines moving between cores, as much as a macroblock's coding
/// at the fast speeds, so wide frames hand over every few macroblocks
/// (libvpx's `nsync`: 1 below 640 pixels, 8 up to 1280, 16 up to
/// 2560, then 32). The row below then trails further behind, which
/// changes when it codes, not what.
fn sync_interval(width: usize) -> usize {
    match width {
        0..640 => 1,
        640..=1280 => 8,
        1281..=2560 => 16,
        _ => 32,
    }
}

/// The macroblocks `from..from + ctx.len()` of row `mb_y`, just coded:
/// their above token contexts and records.
struct Done<'a> {
    ctx: &'a [TokenContext],
    info: &'a [MbInfo],
    from: usize,
    mb_y: usize,
    mb_cols: usize,
}

/// Publishes the macroblocks `done`, coded into `pic`, for the row below.
fn publish(row: &Row, pic: &Picture, done: Done) {
    let Done {
        ctx,
        info,
        from,
        mb_y,
        mb_cols,
    } = done;
    let to = from + ctx.len();
    let mut p = row.lock();
    for (i, plane) in pic.planes.iter().enumerate() {
        let size = ROW_LINES[i];
        let (x0, mut x1) = (from * size, to * size);
        if i == 0 && to == mb_cols {
            x1 += 4;
        }
        let start = plane.index(0, ((mb_y + 1) * size) as isize - 1);
        p.lines[i][x0..x1].copy_from_slice(&plane.data[start + x0..start + x1]);
    }
    p.ctx[from..to].copy_from_slice(ctx);
    p.info[from..to].copy_from_slice(info);
    row.done.store(to, Ordering::Release);
    let wake = p.waiters > 0;
    drop(p);
    if wake {
        row.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use crate::dequant::libvpx_quant_indices;
    use crate::image::Image;
    use crate::state::DecoderState;

    use super::*;

    /// A panic while coding one macroblock reaches the caller on any
    /// thread count; the threads waiting for its row give up instead of
    /// waiting for ever.
    #[test]
    fn a_panicking_macroblock_fails_the_frame_without_hanging() {
        let state = DecoderState::new();
        let image = Image::filled(64, 128, [90, 128, 128]);
        let quant = libvpx_quant_indices(40);
        let inputs = FrameInputs::new(&state, &image, true, &quant, None, 0, 60);
        let analysis = inputs.analysis(&state, 4, &[], [false; 4], Workers::SERIAL);
        let pool = crate::encode::workers::helper_pool(3).unwrap();
        for threads in [1, 2, 3, 8] {
            for at in [(0, 0), (1, 3), (3, 7)] {
                for pool in [None, Some(&*pool)] {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        inputs.code_macroblocks(
                            Workers::new(threads, pool),
                            |pic, ctx, modes, x, y| {
                                assert!((x, y) != at, "planted failure");
                                analysis.encode_mb(pic, ctx, modes, x, y)
                            },
                        )
                    }));
                    assert!(r.is_err(), "{threads} threads, failure at {at:?}");
                }
            }
        }
    }
}
