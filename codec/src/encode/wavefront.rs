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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::encode::analysis::{MbCoded, TokenContexts};
use crate::encode::syntax::FrameInputs;
use crate::modes::MbInfo;
use crate::picture::Picture;
use crate::recon;
use crate::tokens::TokenContext;

/// What one row has published for the row below.
struct Published {
    /// Macroblocks of the row published so far; `mb_cols` also means the
    /// pixels right of the picture (see [`recon::extend_row_right`]).
    done: usize,
    /// A thread panicked: nobody will publish more, waiters give up.
    failed: bool,
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
}

/// A coded row: its macroblocks and its pixel lines (every plane's lines
/// of the row, whole strides with their borders).
struct RowOut {
    mb_y: usize,
    coded: Vec<MbCoded>,
    strips: [Vec<u8>; 3],
}

/// Marks every row failed if the thread holding it unwinds, so no
/// thread waits forever for a row that will not come.
struct FailGuard<'a>(&'a [Row]);

impl Drop for FailGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for row in self.0 {
                row.lock().failed = true;
                row.ready.notify_all();
            }
        }
    }
}

/// Plane heights of one macroblock row: luma, then chroma.
const ROW_LINES: [usize; 3] = [16, 8, 8];

/// [`FrameInputs::code_macroblocks`] on `threads` threads (2 or more,
/// at most the row count); the result is the same as on one.
pub(crate) fn code_rows<F>(
    inputs: &FrameInputs,
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
                done: 0,
                failed: false,
                lines: [
                    vec![0; mb_cols * 16 + 4],
                    vec![0; mb_cols * 8],
                    vec![0; mb_cols * 8],
                ],
                ctx: vec![[0; 9]; mb_cols],
                info: vec![MbInfo::default(); mb_cols],
            }),
            ready: Condvar::new(),
        })
        .collect();
    let next = AtomicUsize::new(0);
    let work = || code_rows_on_this_thread(inputs, code_mb, &rows, &next);
    let mut outs: Vec<RowOut> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut outs = work();
        for h in helpers {
            match h.join() {
                Ok(o) => outs.extend(o),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        outs
    });
    outs.sort_by_key(|o| o.mb_y);
    assert_eq!(outs.len(), mb_rows, "every row coded once");

    let mut pic = Picture::new(inputs.width, inputs.height);
    recon::init_intra_borders(&mut pic);
    let mut modes = Vec::with_capacity(mb_cols * mb_rows);
    let mut coded = Vec::with_capacity(mb_cols * mb_rows);
    for o in outs {
        for (p, (plane, strip)) in pic.planes.iter_mut().zip(&o.strips).enumerate() {
            let start = plane.index(-(plane.border as isize), (o.mb_y * ROW_LINES[p]) as isize);
            plane.data[start..start + strip.len()].copy_from_slice(strip);
        }
        modes.extend(o.coded.iter().map(|c| c.info));
        coded.extend(o.coded);
    }
    (modes, coded, pic)
}

/// Takes rows from `next` until none is left and codes them; returns the
/// rows coded, or those coded so far if another thread failed.
fn code_rows_on_this_thread<F>(
    inputs: &FrameInputs,
    code_mb: &F,
    rows: &[Row],
    next: &AtomicUsize,
) -> Vec<RowOut>
where
    F: Fn(&mut Picture, &mut TokenContexts, &[MbInfo], usize, usize) -> MbCoded + Sync,
{
    let _guard = FailGuard(rows);
    let (mb_cols, mb_rows) = (inputs.mb_cols, inputs.mb_rows);
    let mut pic = Picture::new(inputs.width, inputs.height);
    recon::init_intra_borders(&mut pic);
    let mut ctx = TokenContexts {
        above: vec![[0; 9]; mb_cols],
        left: [0; 9],
    };
    // Only this thread's rows and the rows above them are filled in:
    // a decision reads no other records.
    let mut modes = vec![MbInfo::default(); mb_cols * mb_rows];
    let mut outs = Vec::new();
    loop {
        let mb_y = next.fetch_add(1, Ordering::Relaxed);
        if mb_y >= mb_rows {
            return outs;
        }
        ctx.left = [0; 9];
        if mb_y == 0 {
            ctx.above.fill([0; 9]);
        }
        // Macroblocks of the row above copied in so far.
        let mut have = 0;
        let mut coded = Vec::with_capacity(mb_cols);
        for mb_x in 0..mb_cols {
            if mb_y > 0 {
                let need = (mb_x + 2).min(mb_cols);
                if have < need {
                    match take_above(
                        &rows[mb_y - 1],
                        need,
                        have,
                        &mut pic,
                        &mut ctx,
                        &mut modes,
                        mb_y,
                    ) {
                        Some(n) => have = n,
                        None => return outs,
                    }
                }
            }
            let c = code_mb(&mut pic, &mut ctx, &modes, mb_x, mb_y);
            modes[mb_y * mb_cols + mb_x] = c.info;
            if mb_x + 1 == mb_cols {
                recon::extend_row_right(&mut pic, mb_y);
            }
            publish(
                &rows[mb_y],
                &pic,
                ctx.above[mb_x],
                c.info,
                mb_x,
                mb_y,
                mb_cols,
            );
            coded.push(c);
        }
        let strips = std::array::from_fn(|p| {
            let plane = &pic.planes[p];
            let start = plane.index(-(plane.border as isize), (mb_y * ROW_LINES[p]) as isize);
            plane.data[start..start + ROW_LINES[p] * plane.stride].to_vec()
        });
        outs.push(RowOut {
            mb_y,
            coded,
            strips,
        });
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
    let mut p = above.lock();
    while p.done < need && !p.failed {
        p = above.ready.wait(p).unwrap_or_else(PoisonError::into_inner);
    }
    if p.failed {
        return None;
    }
    let done = p.done;
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

/// Publishes macroblock `mb_x` of row `mb_y`, just coded into `pic`, for
/// the row below.
fn publish(
    row: &Row,
    pic: &Picture,
    ctx: TokenContext,
    info: MbInfo,
    mb_x: usize,
    mb_y: usize,
    mb_cols: usize,
) {
    let mut p = row.lock();
    for (i, plane) in pic.planes.iter().enumerate() {
        let size = ROW_LINES[i];
        let (x0, mut x1) = (mb_x * size, (mb_x + 1) * size);
        if i == 0 && mb_x + 1 == mb_cols {
            x1 += 4;
        }
        let start = plane.index(0, ((mb_y + 1) * size) as isize - 1);
        p.lines[i][x0..x1].copy_from_slice(&plane.data[start + x0..start + x1]);
    }
    p.ctx[mb_x] = ctx;
    p.info[mb_x] = info;
    p.done = mb_x + 1;
    drop(p);
    row.ready.notify_all();
}
