//! One frame decoded on several threads, as a wavefront over macroblock
//! rows (libvpx's `vp8mt_decode_mb_rows`, FFmpeg's VP8 slice threads).
//!
//! Threads take rows in order from a counter and do all of a row: read
//! its macroblock records and tokens, reconstruct it, loop filter it and
//! copy it into the picture. What a row needs from the row above is
//! handed over through that row's [`RowSync`]:
//!
//! * **Records.** The first partition's decoder passes from row to row,
//!   with the records of the row above (vector prediction and intra mode
//!   contexts read them). This chain is short (the records are about 7%
//!   of a frame's work) and runs ahead of the rest.
//! * **Tokens.** Row `r` reads token partition `r % P`, whose decoder the
//!   partition's previous row (`r - P`) passes on when it has read all
//!   of its tokens; macroblock `c` also needs the above context the row
//!   above left in column `c`. With two or more partitions a row reads
//!   each macroblock's tokens just before reconstructing it (libvpx's
//!   order). With one partition a row reads all of its tokens first:
//!   the rows' token reading is a chain, but each row's reconstruction
//!   overlaps the next row's reading, so two threads still share the
//!   work.
//! * **Intra edges.** Macroblock `c` predicts from the unfiltered bottom
//!   line of the row above, up to the first four pixels of macroblock
//!   `c + 1` (the above-right of B_PRED subblocks; for the last
//!   macroblock the four pixels right of the picture). The row above
//!   publishes that line as it reconstructs, before it filters, as libvpx
//!   keeps its unfiltered rows aside.
//! * **Loop filter.** A row is filtered one macroblock behind its
//!   reconstruction (filtering a macroblock changes the right column of
//!   the one on its left, which the next one's intra prediction reads).
//!   Filtering macroblock `c` of row `r` reads the bottom four lines of
//!   row `r - 1` in its columns as that row's own filtering left them
//!   (final once the row above has filtered `c + 1`) and changes the
//!   bottom three (the macroblock edge filter's `p2..p0`): the row above
//!   hands its filtered bottom lines down macroblock by macroblock, and
//!   the final values of those three lines are written out by row `r`.
//!
//! Each thread reconstructs and filters in a band of its own (one
//! macroblock row plus four lines above it, [`PlaneBuf::band`]) and copies
//! the finished lines into the picture, whose lines are split into one
//! disjoint slice per row. So every pixel goes through exactly the
//! operations, in the same order, as in the single-thread decoder, and
//! the picture is the same for any thread count.
//!
//! A row whose tokens or records overrun their partition records its
//! error and rows below it give up waiting (rows above it finish); the
//! caller then decodes the frame again on one thread, which finds the
//! error in stream order.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::bool_decoder::BoolDecoder;
use crate::decode::OVERRUN_SLACK_BITS;
use crate::dequant::Dequant;
use crate::error::DecodeError;
use crate::header::FrameHeader;
use crate::loop_filter::{EdgeLimits, FrameFilter};
use crate::modes::{self, MbInfo};
use crate::picture::{extend_line, Picture, PlaneBuf, BORDER_UV, BORDER_Y};
use crate::recon::{self, SubpelFilter};
use crate::state::References;
use crate::tokens::{self, MbCoeffs, TokenContext, TokenProbs};

/// Lines of one macroblock row per plane: luma, then chroma.
const LINES: [usize; 3] = [16, 8, 8];

/// Lines above a band: the bottom lines of the row above that its
/// filtering reads (`p3..p0`).
const TAIL: usize = 4;

/// Lines of the row above that filtering a row changes (`p2..p0`), whose
/// final values the lower row writes out.
const CHANGED: usize = 3;

/// How long a thread spins for the row above before it sleeps: a
/// macroblock takes about a microsecond, a thread woken from sleep tens.
const SPIN: Duration = Duration::from_micros(20);

/// What the rows of a frame are decoded from.
pub(crate) struct RowFrame<'a> {
    pub hdr: &'a FrameHeader,
    pub refs: Option<&'a References>,
    pub filter: SubpelFilter,
    pub width: usize,
    pub height: usize,
    pub mb_cols: usize,
    pub mb_rows: usize,
    pub dequant: &'a [Dequant; 4],
    pub probs: &'a TokenProbs,
    /// The segment map of earlier frames.
    pub prev_segments: &'a [u8],
}

/// What one row publishes for the row below.
struct RowSync {
    progress: Progress,
    /// The row's records.
    modes: Mutex<Vec<MbInfo>>,
    /// Per macroblock: its unfiltered bottom line, eight pixels a word
    /// (words 0 and 1 luma, 2 U, 3 V), and in word 4 the above token
    /// context it leaves, one bit per flag.
    slots: Vec<MbSlot>,
    /// The four pixels right of the picture on the unfiltered bottom
    /// luma line.
    right: AtomicU64,
    /// Per macroblock: its filtered bottom [`TAIL`] luma lines, two
    /// words a line.
    tail_y: Vec<MbSlot>,
    /// Per macroblock: its filtered bottom [`TAIL`] chroma lines, a U
    /// and a V word a line.
    tail_uv: Vec<MbSlot>,
}

/// What one macroblock hands down, in a cache line of its own: the
/// thread of the row below reads a macroblock's while the row's thread
/// writes the next one's, and sharing lines would make every write
/// invalidate the reader's copy.
#[repr(align(64))]
struct MbSlot([AtomicU64; 8]);

impl MbSlot {
    fn new() -> Self {
        MbSlot(core::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// How far a row is, in a cache line of its own (the row's thread
/// writes it, the next row's reads it).
#[repr(align(64))]
struct Progress {
    /// The row's records are read (and the first partition's decoder
    /// handed back).
    moded: AtomicBool,
    /// The row has read all of its tokens (the row's length) or not
    /// (0); its token partition is handed back before.
    parsed: AtomicUsize,
    /// Macroblocks reconstructed.
    built: AtomicUsize,
    /// Macroblocks whose bottom lines in `tail_y`/`tail_uv` are final as
    /// far as the row's own loop filter goes (a macroblock's are once
    /// the next one is filtered: its left edge changes them).
    filtered: AtomicUsize,
}

/// Waiting for other rows, and failing.
struct Waits {
    /// Threads asleep in [`Waits::wait`], so that publishers know to
    /// wake them.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// The first row that failed (`usize::MAX`: none). Rows below it
    /// give up; rows above it go on, since one of them may fail too and
    /// the first failure is the frame's error.
    failed: AtomicUsize,
    error: Mutex<Option<(usize, DecodeError)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held leaves plain data behind; the
    // `failed` row, not the poison, says whether to go on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Waits {
    /// Waits until `ready()`, as row `row`; false if a row above failed.
    fn wait(&self, row: usize, ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if ready() {
                return true;
            }
            if self.failed.load(Ordering::SeqCst) < row {
                return false;
            }
            spins += 1;
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut g = lock(&self.lock);
            // Counted before `ready()` is checked again: a publisher that
            // stores after this check sees the sleeper and wakes it.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            while !ready() && self.failed.load(Ordering::SeqCst) >= row {
                g = self.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Wakes sleepers after a progress counter was stored (`SeqCst`).
    #[inline]
    fn notify(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        let g = lock(&self.lock);
        self.wake.notify_all();
        drop(g);
    }

    /// Row `row` failed with `e`.
    fn fail(&self, row: usize, e: DecodeError) {
        {
            let mut err = lock(&self.error);
            if err.as_ref().is_none_or(|(r, _)| row < *r) {
                *err = Some((row, e));
            }
        }
        self.failed.fetch_min(row, Ordering::SeqCst);
        self.wake_all();
    }
}

/// Fails every row if the thread holding it unwinds, so that no thread
/// waits for ever for a row that will not come.
struct PanicGuard<'a>(&'a Waits);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failed.store(0, Ordering::SeqCst);
            self.0.wake_all();
        }
    }
}

/// A thread's own buffers, kept from row to row.
struct Work {
    /// The records of the row.
    mbs: Vec<MbInfo>,
    /// Band planes: the row being decoded and [`TAIL`] lines above.
    pic: Picture,
    coeffs: Vec<MbCoeffs>,
    /// Per macroblock: some token other than an immediate end of block.
    residual: Vec<bool>,
    /// Per macroblock: no coefficients (for the loop filter).
    skips: Vec<bool>,
    limits: [Option<EdgeLimits>; 64],
}

/// The buffers of [`decode_rows`], kept from frame to frame for one
/// frame size (a [`crate::Decoder`] holds one).
pub(crate) struct RowScratch {
    mb_cols: usize,
    mb_rows: usize,
    rows: Vec<RowSync>,
    /// Threads' buffers not in use.
    works: Mutex<Vec<Work>>,
    /// A picture of this size nothing refers to any more, to decode the
    /// next frame into instead of allocating and zeroing a new one (the
    /// rows write every byte of it, borders included).
    pub spare: Option<Picture>,
}

impl RowScratch {
    fn new(mb_cols: usize, mb_rows: usize) -> Self {
        RowScratch {
            mb_cols,
            mb_rows,
            rows: (0..mb_rows)
                .map(|_| RowSync {
                    progress: Progress {
                        moded: AtomicBool::new(false),
                        parsed: AtomicUsize::new(0),
                        built: AtomicUsize::new(0),
                        filtered: AtomicUsize::new(0),
                    },
                    modes: Mutex::new(vec![MbInfo::default(); mb_cols]),
                    slots: (0..mb_cols).map(|_| MbSlot::new()).collect(),
                    right: AtomicU64::new(0),
                    tail_y: (0..mb_cols).map(|_| MbSlot::new()).collect(),
                    tail_uv: (0..mb_cols).map(|_| MbSlot::new()).collect(),
                })
                .collect(),
            works: Mutex::new(Vec::new()),
            spare: None,
        }
    }

    /// Scratch for a frame of `mb_cols` x `mb_rows` macroblocks in
    /// `slot`, reused if it has that size, with every row's progress
    /// cleared.
    fn for_frame(slot: &mut Option<RowScratch>, mb_cols: usize, mb_rows: usize) -> &RowScratch {
        if slot
            .as_ref()
            .is_none_or(|s| (s.mb_cols, s.mb_rows) != (mb_cols, mb_rows))
        {
            *slot = Some(RowScratch::new(mb_cols, mb_rows));
        }
        let s = slot.as_mut().expect("just set");
        for r in s.rows.iter_mut() {
            *r.progress.moded.get_mut() = false;
            *r.progress.parsed.get_mut() = 0;
            *r.progress.built.get_mut() = 0;
            *r.progress.filtered.get_mut() = 0;
        }
        s
    }
}

impl Work {
    fn new(f: &RowFrame) -> Self {
        let cols = f.mb_cols;
        let mut w = Work {
            mbs: vec![MbInfo::default(); cols],
            pic: Picture {
                planes: [
                    PlaneBuf::band(16 * cols, 16, BORDER_Y, TAIL),
                    PlaneBuf::band(8 * cols, 8, BORDER_UV, TAIL),
                    PlaneBuf::band(8 * cols, 8, BORDER_UV, TAIL),
                ],
                width: f.width,
                height: f.height,
            },
            coeffs: (0..cols).map(|_| MbCoeffs::new()).collect(),
            residual: vec![false; cols],
            skips: vec![false; cols],
            limits: [None; 64],
        };
        // The column left of the picture reads as 129 for intra
        // prediction (`recon::init_intra_borders`); nothing writes it.
        for p in w.pic.planes.iter_mut() {
            for y in 0..p.height as isize {
                let i = p.index(-1, y);
                p.data[i] = 129;
            }
        }
        w
    }
}

/// A frame being decoded by rows.
struct Rows<'a, 'd, 'o> {
    frame: &'a RowFrame<'a>,
    mb_cols: usize,
    /// Whether the frame is loop filtered.
    lf: bool,
    filter: FrameFilter<'a>,
    next: AtomicUsize,
    rows: &'a [RowSync],
    works: &'a Mutex<Vec<Work>>,
    /// The first partition's decoder, between the rows that read it.
    modes_bd: Mutex<Option<BoolDecoder<'d>>>,
    /// Each token partition's decoder, between the rows that read it.
    decoders: Vec<Mutex<Option<BoolDecoder<'d>>>>,
    /// Per plane, per row: the picture lines the row writes.
    out: [Vec<Mutex<&'o mut [u8]>>; 3],
    waits: Waits,
}

/// Packs a token context (nine 0/1 flags) into bits.
#[inline]
fn pack(ctx: &TokenContext) -> u16 {
    ctx.iter()
        .enumerate()
        .fold(0, |acc, (i, &f)| acc | (u16::from(f & 1) << i))
}

#[inline]
fn unpack(bits: u16) -> TokenContext {
    core::array::from_fn(|i| ((bits >> i) & 1) as u8)
}

/// The plane lines `[lo, hi)` of plane `plane` that row `r` of `rows`
/// writes into the picture.
fn band_lines(plane: usize, r: usize, rows: usize, lf: bool) -> (usize, usize) {
    let l = LINES[plane];
    let back = if lf { CHANGED } else { 0 };
    let lo = if r == 0 { 0 } else { r * l - back };
    let hi = if r + 1 == rows {
        rows * l
    } else {
        (r + 1) * l - back
    };
    (lo, hi)
}

/// Decodes the rows of `frame` on `threads` threads (the calling one
/// and `threads - 1` more, from `pool` if given, else started for this
/// frame), reading the macroblock records with `modes_bd` (the first
/// partition's decoder after the header) and the token partitions with
/// `decoders`. Returns the loop filtered picture with its borders
/// extended, and the records.
pub(crate) fn decode_rows(
    frame: &RowFrame,
    modes_bd: BoolDecoder,
    decoders: Vec<BoolDecoder>,
    threads: usize,
    pool: Option<&rayon::ThreadPool>,
    scratch: &mut Option<RowScratch>,
) -> Result<(Picture, Vec<MbInfo>), DecodeError> {
    let mb_cols = frame.mb_cols;
    let mb_rows = frame.mb_rows;
    let threads = threads.clamp(1, mb_rows.max(1));
    let lf = frame.hdr.filter_level != 0;
    let spare = scratch.as_mut().and_then(|s| s.spare.take());
    let mut pic = spare
        .filter(|p| (p.width, p.height) == (frame.width, frame.height))
        .unwrap_or_else(|| Picture::new(frame.width, frame.height));
    let mbs = {
        let mut out: [Vec<Mutex<&mut [u8]>>; 3] = Default::default();
        for (plane, (p, o)) in pic.planes.iter_mut().zip(out.iter_mut()).enumerate() {
            let (s, b) = (p.stride, p.border);
            // The first row's lines start with the border above the
            // picture, the last row's end with the border below it: the
            // rows that write the first and the last line fill them.
            let mut rest = &mut p.data[..];
            for r in 0..mb_rows {
                let (lo, hi) = band_lines(plane, r, mb_rows, lf);
                let lines =
                    hi - lo + if r == 0 { b } else { 0 } + if r + 1 == mb_rows { b } else { 0 };
                let (band, tail) = std::mem::take(&mut rest).split_at_mut(lines * s);
                rest = tail;
                o.push(Mutex::new(band));
            }
        }
        let scratch = RowScratch::for_frame(scratch, mb_cols, mb_rows);
        let shared = Rows {
            frame,
            mb_cols,
            lf,
            filter: FrameFilter::new(frame.hdr, &[], &[], mb_cols),
            next: AtomicUsize::new(0),
            rows: &scratch.rows,
            works: &scratch.works,
            modes_bd: Mutex::new(Some(modes_bd)),
            decoders: decoders.into_iter().map(|d| Mutex::new(Some(d))).collect(),
            out,
            waits: Waits {
                sleepers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                wake: Condvar::new(),
                failed: AtomicUsize::new(usize::MAX),
                error: Mutex::new(None),
            },
        };
        let work = || shared.work();
        match pool {
            Some(pool) => pool.in_place_scope(|s| {
                for _ in 1..threads {
                    s.spawn(|_| work());
                }
                work();
            }),
            None => std::thread::scope(|s| {
                let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
                work();
                for h in helpers {
                    if let Err(panic) = h.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
            }),
        }
        let error = shared
            .waits
            .error
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, e)) = error {
            return Err(e);
        }
        let mut mbs = Vec::with_capacity(mb_cols * mb_rows);
        for r in scratch.rows.iter() {
            mbs.extend_from_slice(&lock(&r.modes));
        }
        mbs
    };
    Ok((pic, mbs))
}

impl<'d> Rows<'_, 'd, '_> {
    /// Decodes rows until none is left (or a row above failed).
    fn work(&self) {
        let _guard = PanicGuard(&self.waits);
        let popped = lock(self.works).pop();
        let mut w = popped.unwrap_or_else(|| Work::new(self.frame));
        // The limits depend on the frame's sharpness and type.
        w.limits = [None; 64];
        self.work_rows(&mut w);
        lock(self.works).push(w);
    }

    fn work_rows(&self, w: &mut Work) {
        let f = self.frame;
        loop {
            let r = self.next.fetch_add(1, Ordering::Relaxed);
            if r >= f.mb_rows || self.waits.failed.load(Ordering::SeqCst) < r {
                return;
            }
            for (p, l) in w.pic.planes.iter_mut().zip(LINES) {
                p.y0 = (r * l) as isize;
            }
            let interleave = self.decoders.len() > 1;
            let done = self.read_modes(w, r)
                && (interleave || self.read_tokens(w, r))
                && self.reconstruct(w, r, interleave);
            if !done {
                return;
            }
            self.write_out(w, r);
        }
    }

    /// Reads the records of row `r` into `w.mbs`.
    fn read_modes(&self, w: &mut Work, r: usize) -> bool {
        let f = self.frame;
        let cols = self.mb_cols;
        let above = r.checked_sub(1).map(|a| &self.rows[a]);
        if let Some(a) = above {
            if !self
                .waits
                .wait(r, || a.progress.moded.load(Ordering::SeqCst))
            {
                return false;
            }
        }
        let mut bd = lock(&self.modes_bd)
            .take()
            .expect("the first partition's decoder is handed back before a row is marked read");
        let above_mbs = above.map(|a| lock(&a.modes));
        modes::read_mode_row(
            &mut bd,
            f.hdr,
            r,
            cols,
            f.mb_rows,
            f.prev_segments,
            above_mbs.as_deref().map(|v| &v[..]),
            &mut w.mbs,
        );
        drop(above_mbs);
        let mine = &self.rows[r];
        lock(&mine.modes).copy_from_slice(&w.mbs);
        let overrun = r + 1 == f.mb_rows && bd.bits_past_end() > OVERRUN_SLACK_BITS;
        *lock(&self.modes_bd) = Some(bd);
        mine.progress.moded.store(true, Ordering::SeqCst);
        self.waits.notify();
        if overrun {
            self.waits.fail(r, DecodeError::PartitionOverrun(0));
            return false;
        }
        true
    }

    /// Takes row `r`'s token partition, once the partition's previous
    /// row has read all of its tokens; `None` if a row above failed.
    fn take_partition(&self, r: usize) -> Option<BoolDecoder<'d>> {
        let parts = self.decoders.len();
        if r >= parts {
            let prev = &self.rows[r - parts];
            let cols = self.mb_cols;
            if !self
                .waits
                .wait(r, || prev.progress.parsed.load(Ordering::SeqCst) == cols)
            {
                return None;
            }
        }
        let bd = lock(&self.decoders[r % parts])
            .take()
            .expect("a partition's decoder is handed back before its row is marked read");
        Some(bd)
    }

    /// Hands row `r`'s token partition on after its last token; false
    /// (and the frame fails) if the row read too far past its end.
    fn give_partition(&self, r: usize, bd: BoolDecoder<'d>) -> bool {
        let parts = self.decoders.len();
        let overrun = bd.bits_past_end() > OVERRUN_SLACK_BITS;
        *lock(&self.decoders[r % parts]) = Some(bd);
        self.rows[r]
            .progress
            .parsed
            .store(self.mb_cols, Ordering::SeqCst);
        self.waits.notify();
        if overrun {
            self.waits
                .fail(r, DecodeError::PartitionOverrun(1 + r % parts));
        }
        !overrun
    }

    /// Reads the tokens of macroblock `c` of row `r` into `w.coeffs[c]`;
    /// the row above must have read its column `c`.
    #[inline]
    fn read_mb(
        &self,
        w: &mut Work,
        r: usize,
        c: usize,
        bd: &mut BoolDecoder,
        left: &mut TokenContext,
    ) {
        let f = self.frame;
        let mut above: TokenContext = match r.checked_sub(1) {
            Some(a) => unpack(self.rows[a].slots[c].0[4].load(Ordering::Relaxed) as u16),
            None => [0; 9],
        };
        let (mb, coeffs) = (&w.mbs[c], &mut w.coeffs[c]);
        // Reconstruction leaves the coefficients it used changed.
        if w.residual[c] {
            *coeffs = MbCoeffs::new();
        }
        let has_y2 = mb.y_mode.has_y2();
        w.residual[c] = if mb.skip {
            tokens::skip_mb_coeffs(has_y2, &mut above, left);
            false
        } else {
            tokens::read_mb_coeffs(
                bd,
                f.probs,
                has_y2,
                &f.dequant[mb.segment as usize & 3],
                &mut above,
                left,
                coeffs,
            )
        };
        self.rows[r].slots[c].0[4].store(u64::from(pack(&above)), Ordering::Relaxed);
    }

    /// Reads all tokens of row `r` into `w.coeffs`, after the row above
    /// has read all of its: with one token partition the rows' reading is
    /// a chain, which the rows' reconstruction overlaps.
    fn read_tokens(&self, w: &mut Work, r: usize) -> bool {
        let cols = self.mb_cols;
        if let Some(a) = r.checked_sub(1).map(|a| &self.rows[a]) {
            if !self
                .waits
                .wait(r, || a.progress.parsed.load(Ordering::SeqCst) == cols)
            {
                return false;
            }
        }
        let Some(mut bd) = self.take_partition(r) else {
            return false;
        };
        let mut left: TokenContext = [0; 9];
        for c in 0..cols {
            self.read_mb(w, r, c, &mut bd, &mut left);
        }
        self.give_partition(r, bd)
    }

    /// Reconstructs row `r` into `w.pic`, publishing its bottom lines,
    /// and loop filters it. With `interleave` each macroblock's tokens are
    /// read just before it is reconstructed, as libvpx does: with two or
    /// more partitions a row's tokens depend on the row above only
    /// through its contexts, which the row above has read by the time it
    /// has reconstructed the macroblocks this one waits for, and reading
    /// in the same pass keeps the rows a steady distance apart.
    fn reconstruct(&self, w: &mut Work, r: usize, interleave: bool) -> bool {
        let f = self.frame;
        let cols = self.mb_cols;
        if r == 0 {
            // The row above the picture reads as 127, to 4 pixels right
            // of it (`recon::init_intra_borders`).
            for p in w.pic.planes.iter_mut() {
                let i = p.index(-1, -1);
                p.data[i..i + p.width + 5].fill(127);
            }
        } else {
            for p in w.pic.planes.iter_mut() {
                let i = p.index(-1, p.y0 - 1);
                p.data[i] = 129;
            }
        }
        let above = r.checked_sub(1).map(|a| &self.rows[a]);
        let mine = &self.rows[r];
        let mut tokens = None;
        if interleave {
            let Some(bd) = self.take_partition(r) else {
                return false;
            };
            tokens = Some((bd, [0u8; 9]));
        }
        // Macroblocks of the row above whose bottom line is copied in.
        let mut have = 0;
        for c in 0..cols {
            if let Some(a) = above {
                let need = (c + 2).min(cols);
                if have < need {
                    if !self
                        .waits
                        .wait(r, || a.progress.built.load(Ordering::SeqCst) >= need)
                    {
                        return false;
                    }
                    let done = a.progress.built.load(Ordering::Acquire);
                    copy_line_in(&mut w.pic, a, have, done, cols);
                    have = done;
                }
            }
            if let Some((bd, left)) = tokens.as_mut() {
                self.read_mb(w, r, c, bd, left);
            }
            let residual = w.residual[c];
            // A macroblock without coefficients skips its inner loop
            // filter edges, whether or not the skip flag was coded.
            w.skips[c] = !residual;
            let coeffs = if residual {
                Some(&mut w.coeffs[c])
            } else {
                None
            };
            recon::reconstruct_mb(&mut w.pic, f.refs, f.filter, &w.mbs[c], coeffs, c, r);
            if c + 1 == cols {
                recon::extend_row_right(&mut w.pic, r);
            }
            if r + 1 < f.mb_rows {
                publish_line(&w.pic, mine, c, cols);
                mine.progress.built.store(c + 1, Ordering::SeqCst);
                self.waits.notify();
            }
            // The loop filter follows one macroblock behind: filtering
            // changes the right column of the macroblock on its left,
            // which this one's intra prediction has just read.
            if self.lf && c > 0 && !self.filter_mb(w, r, c - 1) {
                return false;
            }
        }
        if let Some((bd, _)) = tokens {
            if !self.give_partition(r, bd) {
                return false;
            }
        }
        !self.lf || self.filter_mb(w, r, cols - 1)
    }

    /// Loop filters macroblock `c` of row `r` in `w.pic`, once the row
    /// above has left its bottom lines there final, and hands the final
    /// bottom lines of this row's macroblocks to the row below.
    fn filter_mb(&self, w: &mut Work, r: usize, c: usize) -> bool {
        let cols = self.mb_cols;
        if r > 0 {
            let a = &self.rows[r - 1];
            if !self
                .waits
                .wait(r, || a.progress.filtered.load(Ordering::SeqCst) > c)
            {
                return false;
            }
            copy_tail_in(&mut w.pic, a, c);
        }
        let [y, u, v] = &mut w.pic.planes;
        self.filter
            .filter_mb(y, Some((u, v)), c, r, &w.mbs[c], w.skips[c], &mut w.limits);
        if r + 1 < self.frame.mb_rows {
            let mine = &self.rows[r];
            if c > 0 {
                publish_tail(&w.pic, mine, c - 1);
            }
            let done = if c + 1 == cols {
                publish_tail(&w.pic, mine, c);
                cols
            } else {
                c
            };
            mine.progress.filtered.store(done, Ordering::SeqCst);
            self.waits.notify();
        }
        true
    }

    /// Copies the lines of row `r` that are final into the picture, with
    /// their left and right borders.
    fn write_out(&self, w: &Work, r: usize) {
        let rows = self.frame.mb_rows;
        for (i, p) in w.pic.planes.iter().enumerate() {
            let (lo, hi) = band_lines(i, r, rows, self.lf);
            let mut band = lock(&self.out[i][r]);
            let (s, b, width) = (p.stride, p.border, p.width);
            let above = if r == 0 { b } else { 0 };
            let (head, body) = band.split_at_mut(above * s);
            let (body, foot) = body.split_at_mut((hi - lo) * s);
            for (dst, y) in body.chunks_exact_mut(s).zip(lo..hi) {
                let src = p.index(0, y as isize);
                dst[b..b + width].copy_from_slice(&p.data[src..src + width]);
                extend_line(dst, b, width);
            }
            // The borders above and below the picture repeat its first and
            // last lines (`PlaneBuf::extend_borders`).
            for dst in head.chunks_exact_mut(s) {
                dst.copy_from_slice(&body[..s]);
            }
            for dst in foot.chunks_exact_mut(s) {
                dst.copy_from_slice(&body[body.len() - s..]);
            }
        }
    }
}

/// The words of plane `plane` of a macroblock's unfiltered bottom line
/// in its slot.
fn line_words(slot: &MbSlot, plane: usize) -> &[AtomicU64] {
    match plane {
        0 => &slot.0[..2],
        _ => &slot.0[1 + plane..2 + plane],
    }
}

/// The word of line `t` (of [`TAIL`]) of plane `plane`, `j`-th of the
/// line, of a macroblock's filtered bottom lines in row `a`.
fn tail_word(a: &RowSync, c: usize, plane: usize, t: usize, j: usize) -> &AtomicU64 {
    match plane {
        0 => &a.tail_y[c].0[2 * t + j],
        _ => &a.tail_uv[c].0[2 * t + plane - 1],
    }
}

/// Copies the bottom line of row `a`'s macroblocks `from..to` into the
/// line above the band `pic` (and, with the last one, the four pixels
/// right of the picture).
fn copy_line_in(pic: &mut Picture, a: &RowSync, from: usize, to: usize, cols: usize) {
    for (i, p) in pic.planes.iter_mut().enumerate() {
        let l = LINES[i];
        let start = p.index(0, p.y0 - 1);
        let dst = &mut p.data[start..];
        for (c, slot) in a.slots.iter().enumerate().take(to).skip(from) {
            for (j, w) in line_words(slot, i).iter().enumerate() {
                let at = c * l + 8 * j;
                dst[at..at + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
        }
        if i == 0 && to == cols {
            let right = a.right.load(Ordering::Relaxed).to_le_bytes();
            dst[16 * cols..16 * cols + 4].copy_from_slice(&right[..4]);
        }
    }
}

/// Publishes the bottom line of macroblock `c` of the band `pic` (and,
/// for the last one, the four pixels right of the picture) in `mine`.
fn publish_line(pic: &Picture, mine: &RowSync, c: usize, cols: usize) {
    for (i, p) in pic.planes.iter().enumerate() {
        let l = LINES[i];
        let start = p.index(0, p.y0 + l as isize - 1);
        let src = &p.data[start..];
        for (j, w) in line_words(&mine.slots[c], i).iter().enumerate() {
            let at = c * l + 8 * j;
            let v = u64::from_le_bytes(src[at..at + 8].try_into().expect("8 bytes"));
            w.store(v, Ordering::Relaxed);
        }
        if i == 0 && c + 1 == cols {
            let mut right = [0u8; 8];
            right[..4].copy_from_slice(&src[16 * cols..16 * cols + 4]);
            mine.right
                .store(u64::from_le_bytes(right), Ordering::Relaxed);
        }
    }
}

/// Copies the bottom [`TAIL`] lines of macroblock `c` of row `a`, as its
/// loop filter left them, into the lines above the band `pic`.
fn copy_tail_in(pic: &mut Picture, a: &RowSync, c: usize) {
    for (i, p) in pic.planes.iter_mut().enumerate() {
        let l = LINES[i];
        for t in 0..TAIL {
            let start = p.index((c * l) as isize, p.y0 - (TAIL - t) as isize);
            for (j, d) in p.data[start..start + l].chunks_exact_mut(8).enumerate() {
                let w = tail_word(a, c, i, t, j);
                d.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
        }
    }
}

/// Publishes the bottom [`TAIL`] lines of macroblock `c` of the band
/// `pic` in `mine`.
fn publish_tail(pic: &Picture, mine: &RowSync, c: usize) {
    for (i, p) in pic.planes.iter().enumerate() {
        let l = LINES[i];
        for t in 0..TAIL {
            let start = p.index((c * l) as isize, p.y0 + (l - TAIL + t) as isize);
            for (j, s) in p.data[start..start + l].chunks_exact(8).enumerate() {
                let v = u64::from_le_bytes(s.try_into().expect("8 bytes"));
                tail_word(mine, c, i, t, j).store(v, Ordering::Relaxed);
            }
        }
    }
}
