//! The threads one frame's encode runs on: the calling thread and, for
//! a streaming [`Encoder`](crate::encode::encoder::Encoder), helpers kept
//! in a rayon pool for the whole stream (threads started for every frame
//! cost their start-up and fresh pages each time), else helpers started
//! for the call.
//!
//! Every parallel step of the encoder hands its work out through here,
//! and each one's result is independent of how many threads ran it, so
//! the bytes are the same for any count.

use std::sync::Arc;

/// Up to [`Workers::count`] threads: the calling one and helpers.
#[derive(Clone, Copy)]
pub(crate) struct Workers<'a> {
    threads: usize,
    pool: Option<&'a rayon::ThreadPool>,
}

impl<'a> Workers<'a> {
    /// The calling thread alone.
    pub const SERIAL: Workers<'static> = Workers {
        threads: 1,
        pool: None,
    };

    /// `threads` threads (0 means 1): the calling one and `threads - 1`
    /// helpers from `pool` if given (which should have that many), else
    /// started for each call.
    pub fn new(threads: usize, pool: Option<&'a rayon::ThreadPool>) -> Self {
        Workers {
            threads: threads.max(1),
            pool,
        }
    }

    /// How many threads work runs on at most.
    pub fn count(&self) -> usize {
        self.threads
    }

    /// Runs `work(i)` for `i` in `0..n` on up to `n` threads at once, the
    /// calling thread doing `work(0)`; returns the results in order of
    /// `i`. The jobs may wait for each other only in ways that cannot
    /// deadlock when fewer of them run at once than `n` (a job still
    /// waiting to start holds nothing another one waits for).
    pub fn run<T, F>(&self, n: usize, work: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync,
    {
        if n <= 1 {
            return (0..n).map(work).collect();
        }
        let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
        let (first, rest) = out.split_first_mut().expect("n >= 1");
        let work = &work;
        match self.pool {
            Some(pool) => pool.in_place_scope(|s| {
                for (i, slot) in rest.iter_mut().enumerate() {
                    s.spawn(move |_| *slot = Some(work(i + 1)));
                }
                *first = Some(work(0));
            }),
            None => std::thread::scope(|s| {
                let helpers: Vec<_> = rest
                    .iter_mut()
                    .enumerate()
                    .map(|(i, slot)| s.spawn(move || *slot = Some(work(i + 1))))
                    .collect();
                *first = Some(work(0));
                for h in helpers {
                    if let Err(panic) = h.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
            }),
        }
        out.into_iter().map(|r| r.expect("every job ran")).collect()
    }

    /// Runs `a` on the calling thread and `b` beside it on a helper (both
    /// here on one thread), and returns both results.
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        if self.threads < 2 {
            let ra = a();
            return (ra, b());
        }
        let mut rb = None;
        let ra = match self.pool {
            Some(pool) => pool.in_place_scope(|s| {
                s.spawn(|_| rb = Some(b()));
                a()
            }),
            None => std::thread::scope(|s| {
                let h = s.spawn(b);
                let ra = a();
                rb = Some(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                ra
            }),
        };
        (ra, rb.expect("the helper ran"))
    }

    /// Splits `0..n` items into up to `count()` contiguous ranges of
    /// nearly equal size, for [`run`](Self::run).
    pub fn ranges(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        let parts = self.threads.min(n).max(1);
        (0..parts)
            .map(|i| (i * n / parts)..((i + 1) * n / parts))
            .collect()
    }
}

/// A pool of `threads - 1` helper threads for a stream encoded on
/// `threads`, or `None` for one thread or if the system would not start
/// them (each call then starts its own).
pub(crate) fn helper_pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    (threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .thread_name(|i| format!("excam-encode-{i}"))
                .build()
                .ok()
        })
        .flatten()
        .map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_results_in_order_on_any_count() {
        let pool = helper_pool(3).unwrap();
        for w in [
            Workers::SERIAL,
            Workers::new(2, None),
            Workers::new(3, Some(&pool)),
        ] {
            assert_eq!(w.run(5, |i| i * 10), vec![0, 10, 20, 30, 40]);
            assert_eq!(w.run(0, |i| i), Vec::<usize>::new());
            assert_eq!(w.join(|| 1, || 2), (1, 2));
            let r = w.ranges(10);
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, 10);
            assert!(r.windows(2).all(|p| p[0].end == p[1].start));
        }
    }

    #[test]
    fn a_panicking_job_reaches_the_caller() {
        let pool = helper_pool(2).unwrap();
        for w in [Workers::new(2, None), Workers::new(2, Some(&pool))] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                w.run(3, |i| assert!(i != 2, "planted"))
            }));
            assert!(r.is_err());
        }
    }
}
