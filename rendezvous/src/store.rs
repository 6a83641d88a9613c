//! The relay's memory: jobs, their mailboxes, and the accounting that keeps
//! it under the memory cap.
//!
//! All state sits behind one `std::sync::Mutex`; critical sections are
//! short and never await. Waiting (a get for its mailbox, a put for memory)
//! happens on `Notify`s whose `Notified` futures are created while the lock
//! is held, so no wakeup can slip between a check and the wait.
//!
//! Bytes are reserved *before* a put's body is read, so the bytes held —
//! contents plus reservations — never exceed the cap; what a slow put has
//! not been allowed to send yet waits in QUIC flow control instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Tombstones live this many TTLs.
const TOMBSTONE_TTL_FACTOR: u32 = 4;

/// Why a store operation did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The mailbox was filled once and has been dropped.
    Evicted,
    /// A get's deadline passed before the mailbox was filled.
    Timeout,
    /// A put brought different bytes than the mailbox holds.
    Conflict,
    /// No memory could be reserved before the put's deadline.
    Full,
    /// The put's job holds its whole share of the memory cap in unread
    /// mailboxes and reservations, and none was freed before the deadline.
    JobShare { held: u64, share: u64 },
    /// The job has ended.
    JobEnded,
    /// A count limit is reached.
    Limit(&'static str),
    /// The relay is draining.
    ShuttingDown,
}

/// Bounds the store enforces.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Cap on mailbox contents plus reservations, all jobs together.
    pub memory: u64,
    /// Cap on one job's unread contents plus reservations: a job cannot
    /// take the whole of `memory` and starve the others.
    pub job_share: u64,
    /// Gets waiting on one mailbox at once.
    pub max_waiters_per_mailbox: usize,
    pub ttl: Duration,
    pub max_jobs: usize,
    pub max_mailboxes: usize,
    pub max_mailboxes_per_job: usize,
    /// Drop a mailbox once read instead of making it evictable
    /// (`RelayConfig::drop_on_read`).
    pub drop_on_read: bool,
}

/// Counters reported by [`Relay::stats`](crate::Relay::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Open authenticated connections.
    pub connections: u64,
    /// Connections handshaking or not yet authenticated.
    pub unauthenticated: u64,
    /// Jobs with state on the relay (including ended jobs remembered until their TTL).
    pub jobs: usize,
    /// Mailboxes that are filled or awaited.
    pub mailboxes: usize,
    /// Bytes of mailbox contents plus reservations of puts being received.
    pub bytes_held: u64,
    /// Highest `bytes_held` since start.
    pub peak_bytes_held: u64,
    /// Mailboxes dropped to make room or because their TTL passed.
    pub evictions: u64,
    /// Puts refused with `Conflict`.
    pub conflicts: u64,
}

pub(crate) struct Store {
    inner: Mutex<Inner>,
    /// Woken whenever bytes are released or become evictable.
    space: Notify,
    limits: Limits,
    pub(crate) connections: AtomicU64,
    pub(crate) unauthenticated: AtomicU64,
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Job>,
    /// Contents of filled mailboxes plus outstanding reservations.
    held: u64,
    peak: u64,
    /// Contents of mailboxes that have been read (and may be evicted).
    evictable_bytes: u64,
    /// Read mailboxes by the sequence number of their last read: oldest first.
    evictable: BTreeMap<u64, (String, String)>,
    mailboxes: usize,
    seq: u64,
    evictions: u64,
    conflicts: u64,
    shutting_down: bool,
}

struct Job {
    boxes: HashMap<String, Mailbox>,
    /// Evicted or expired mailboxes, so a later get answers `Evicted` at once.
    tombstones: HashMap<String, (u64, Instant)>,
    tomb_order: BTreeMap<u64, String>,
    ended: Option<Instant>,
    last_use: Instant,
    /// This job's mailbox contents plus its outstanding reservations.
    held: u64,
    /// The part of `held` in read (evictable) mailboxes.
    evictable: u64,
}

impl Job {
    /// Bytes that count against the job's share: what no eviction can free.
    fn pinned(&self) -> u64 {
        self.held - self.evictable
    }
}

struct Mailbox {
    /// Distinguishes successive mailboxes of one name, for waiter bookkeeping.
    id: u64,
    filled: Option<Filled>,
    notify: Arc<Notify>,
    waiters: usize,
}

struct Filled {
    bytes: Bytes,
    /// Sequence number of the last read, once read.
    read_seq: Option<u64>,
    last_use: Instant,
}

/// Memory reserved for a put whose body is being received. Dropping it
/// returns the bytes unless the put committed them.
pub(crate) struct Reservation {
    store: Arc<Store>,
    job: String,
    len: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.len > 0 {
            let mut i = self.store.lock();
            i.held -= self.len;
            if let Some(j) = i.jobs.get_mut(&self.job) {
                j.held = j.held.saturating_sub(self.len);
            }
            drop(i);
            self.store.space.notify_waiters();
        }
    }
}

impl Inner {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn add_held(&mut self, n: u64) {
        self.held += n;
        self.peak = self.peak.max(self.held);
    }

    /// The job, created if new; refuses ended jobs and too many jobs.
    fn job(&mut self, job: &str, limits: &Limits, now: Instant) -> Result<&mut Job, StoreError> {
        if !self.jobs.contains_key(job) {
            if self.jobs.len() >= limits.max_jobs {
                return Err(StoreError::Limit("jobs"));
            }
            self.jobs.insert(
                job.to_owned(),
                Job {
                    boxes: HashMap::new(),
                    tombstones: HashMap::new(),
                    tomb_order: BTreeMap::new(),
                    ended: None,
                    last_use: now,
                    held: 0,
                    evictable: 0,
                },
            );
        }
        let j = self.jobs.get_mut(job).expect("inserted above");
        if j.ended.is_some() {
            return Err(StoreError::JobEnded);
        }
        j.last_use = now;
        Ok(j)
    }

    /// Room for one more mailbox in `job`, evicting a read one if the
    /// relay-wide count is at its limit.
    fn room_for_mailbox(
        &mut self,
        job: &str,
        limits: &Limits,
        now: Instant,
    ) -> Result<(), StoreError> {
        if self.jobs.get(job).map_or(0, |j| j.boxes.len()) >= limits.max_mailboxes_per_job {
            return Err(StoreError::Limit("mailboxes per job"));
        }
        if self.mailboxes >= limits.max_mailboxes && !self.evict_oldest(limits, now) {
            return Err(StoreError::Limit("mailboxes"));
        }
        Ok(())
    }

    /// Drops the least recently read mailbox; false if none has been read.
    fn evict_oldest(&mut self, limits: &Limits, now: Instant) -> bool {
        let Some((_, (job, name))) = self.evictable.pop_first() else {
            return false;
        };
        self.drop_mailbox(&job, &name, limits, now);
        self.evictions += 1;
        true
    }

    /// Removes a filled mailbox, releasing its bytes and leaving a tombstone.
    fn drop_mailbox(&mut self, job: &str, name: &str, limits: &Limits, now: Instant) {
        let Some(j) = self.jobs.get_mut(job) else {
            return;
        };
        let Some(mb) = j.boxes.remove(name) else {
            return;
        };
        self.mailboxes -= 1;
        if let Some(f) = mb.filled {
            let len = f.bytes.len() as u64;
            self.held -= len;
            j.held -= len;
            if let Some(seq) = f.read_seq {
                self.evictable.remove(&seq);
                self.evictable_bytes -= len;
                j.evictable -= len;
            }
        }
        self.seq += 1;
        let seq = self.seq;
        if let Some((old, _)) = j.tombstones.insert(name.to_owned(), (seq, now)) {
            j.tomb_order.remove(&old);
        }
        j.tomb_order.insert(seq, name.to_owned());
        // Tombstones are only a courtesy (an instant `Evicted`); bound them.
        while j.tombstones.len() > limits.max_mailboxes_per_job {
            if let Some((_, n)) = j.tomb_order.pop_first() {
                j.tombstones.remove(&n);
            }
        }
    }

    /// Reserves `len` bytes for `job`, evicting read mailboxes oldest
    /// first, if that can make enough room within both the relay's cap and
    /// the job's share; otherwise changes nothing and says which bound held.
    fn try_reserve(
        &mut self,
        job: &str,
        len: u64,
        limits: &Limits,
        now: Instant,
    ) -> Result<(), StoreError> {
        let j = self.job(job, limits, now)?;
        let pinned = j.pinned();
        if pinned + len > limits.job_share {
            return Err(StoreError::JobShare {
                held: pinned,
                share: limits.job_share,
            });
        }
        let cap = limits.memory;
        if self.held - self.evictable_bytes + len > cap {
            return Err(StoreError::Full);
        }
        while self.held + len > cap {
            if !self.evict_oldest(limits, now) {
                return Err(StoreError::Full);
            }
        }
        self.add_held(len);
        // Eviction never removes a job entry, so `job` is still there.
        if let Some(j) = self.jobs.get_mut(job) {
            j.held += len;
        }
        Ok(())
    }
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Store {
        Store {
            inner: Mutex::new(Inner::default()),
            space: Notify::new(),
            limits,
            connections: AtomicU64::new(0),
            unauthenticated: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters possibly off but
        // the maps intact; serving on beats taking the relay down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn stats(&self) -> RelayStats {
        let i = self.lock();
        RelayStats {
            connections: self.connections.load(Ordering::Relaxed),
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            jobs: i.jobs.len(),
            mailboxes: i.mailboxes,
            bytes_held: i.held,
            peak_bytes_held: i.peak,
            evictions: i.evictions,
            conflicts: i.conflicts,
        }
    }

    /// The contents of a filled mailbox, if any, without marking it read.
    pub(crate) fn peek(&self, job: &str, name: &str) -> Result<Option<Bytes>, StoreError> {
        let i = self.lock();
        match i.jobs.get(job) {
            Some(j) if j.ended.is_some() => Err(StoreError::JobEnded),
            Some(j) => Ok(j
                .boxes
                .get(name)
                .and_then(|mb| mb.filled.as_ref().map(|f| f.bytes.clone()))),
            None => Ok(None),
        }
    }

    /// Counts a put refused because its bytes differ.
    pub(crate) fn note_conflict(&self) {
        self.lock().conflicts += 1;
    }

    /// Waits until `len` bytes fit under the cap and under `job`'s share,
    /// or `deadline`; then answers which bound was still in the way.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        job: &str,
        len: u64,
        deadline: Instant,
    ) -> Result<Reservation, StoreError> {
        if len > self.limits.memory {
            return Err(StoreError::Full);
        }
        if len > self.limits.job_share {
            return Err(StoreError::JobShare {
                held: 0,
                share: self.limits.job_share,
            });
        }
        let mut expired = false;
        loop {
            let notified = self.space.notified();
            {
                let mut i = self.lock();
                if i.shutting_down {
                    return Err(StoreError::ShuttingDown);
                }
                match i.try_reserve(job, len, &self.limits, Instant::now()) {
                    Ok(()) => {
                        return Ok(Reservation {
                            store: self.clone(),
                            job: job.to_owned(),
                            len,
                        })
                    }
                    Err(e @ (StoreError::Full | StoreError::JobShare { .. })) => {
                        if expired {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            // `notified` was created before the check, so a release between
            // the check and this await still wakes us.
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                expired = true;
            }
        }
    }

    /// Fills a mailbox with received bytes; an identical refill succeeds.
    pub(crate) fn fill(
        &self,
        job: &str,
        name: &str,
        bytes: Bytes,
        mut res: Reservation,
    ) -> Result<(), StoreError> {
        let outcome = {
            let mut i = self.lock();
            let now = Instant::now();
            self.fill_locked(&mut i, job, name, bytes, &mut res, now)
        };
        // Dropped after the lock is released: an uncommitted reservation
        // takes the lock to return its bytes.
        drop(res);
        outcome
    }

    fn fill_locked(
        &self,
        i: &mut Inner,
        job: &str,
        name: &str,
        bytes: Bytes,
        res: &mut Reservation,
        now: Instant,
    ) -> Result<(), StoreError> {
        i.job(job, &self.limits, now)?;
        let exists = i.jobs[job].boxes.contains_key(name);
        if !exists {
            i.room_for_mailbox(job, &self.limits, now)?;
        }
        let id = i.next_seq();
        let j = i.jobs.get_mut(job).expect("created above");
        if let Some((seq, _)) = j.tombstones.remove(name) {
            // A producer's retry after eviction refills the mailbox.
            j.tomb_order.remove(&seq);
        }
        let mb = j.boxes.entry(name.to_owned()).or_insert_with(|| Mailbox {
            id,
            filled: None,
            notify: Arc::new(Notify::new()),
            waiters: 0,
        });
        if let Some(f) = &mb.filled {
            if f.bytes == bytes {
                return Ok(());
            }
            i.conflicts += 1;
            return Err(StoreError::Conflict);
        }
        debug_assert_eq!(res.len, bytes.len() as u64);
        mb.filled = Some(Filled {
            bytes,
            read_seq: None,
            last_use: now,
        });
        mb.notify.notify_waiters();
        if !exists {
            i.mailboxes += 1;
        }
        // The reservation's bytes now belong to the mailbox.
        res.len = 0;
        Ok(())
    }

    /// Waits until the mailbox is filled (or evicted, or `deadline`) and
    /// returns its contents; [`Store::mark_read`] follows on delivery.
    pub(crate) async fn get(
        &self,
        job: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<Bytes, StoreError> {
        let mut waiter: Option<WaiterGuard<'_>> = None;
        let mut expired = false;
        loop {
            let notify: Arc<Notify>;
            let notified;
            {
                let mut i = self.lock();
                if i.shutting_down {
                    return Err(StoreError::ShuttingDown);
                }
                let now = Instant::now();
                match self.try_read(&mut i, job, name, now)? {
                    Some(bytes) => {
                        drop(i);
                        drop(waiter);
                        return Ok(bytes);
                    }
                    None if expired => return Err(StoreError::Timeout),
                    None => {}
                }
                if waiter.is_none() {
                    if !i.jobs[job].boxes.contains_key(name) {
                        i.room_for_mailbox(job, &self.limits, now)?;
                        let id = i.next_seq();
                        i.mailboxes += 1;
                        i.jobs
                            .get_mut(job)
                            .expect("created by try_read")
                            .boxes
                            .insert(
                                name.to_owned(),
                                Mailbox {
                                    id,
                                    filled: None,
                                    notify: Arc::new(Notify::new()),
                                    waiters: 0,
                                },
                            );
                    }
                    let mb = i
                        .jobs
                        .get_mut(job)
                        .and_then(|j| j.boxes.get_mut(name))
                        .expect("inserted above");
                    if mb.waiters >= self.limits.max_waiters_per_mailbox {
                        return Err(StoreError::Limit("gets waiting on one mailbox"));
                    }
                    mb.waiters += 1;
                    waiter = Some(WaiterGuard {
                        store: self,
                        job,
                        name,
                        id: mb.id,
                    });
                }
                let mb = &i.jobs[job].boxes[name];
                notify = mb.notify.clone();
                notified = notify.notified();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                expired = true;
            }
        }
    }

    /// Reads a filled mailbox; `Ok(None)` when it is empty or absent.
    fn try_read(
        &self,
        i: &mut Inner,
        job: &str,
        name: &str,
        now: Instant,
    ) -> Result<Option<Bytes>, StoreError> {
        i.job(job, &self.limits, now)?;
        let j = i.jobs.get_mut(job).expect("created above");
        if j.tombstones.contains_key(name) {
            return Err(StoreError::Evicted);
        }
        let Some(f) = j.boxes.get_mut(name).and_then(|mb| mb.filled.as_mut()) else {
            return Ok(None);
        };
        f.last_use = now;
        let bytes = f.bytes.clone();
        Ok(Some(bytes))
    }

    /// Records that a reader has received a mailbox's contents (its answer
    /// was acknowledged), which makes the mailbox evictable (or drops it,
    /// with [`Limits::drop_on_read`]). Marking on
    /// delivery rather than when the answer starts means a reader whose
    /// connection breaks mid-answer can still retry and find the contents.
    pub(crate) fn mark_read(&self, job: &str, name: &str) {
        let mut i = self.lock();
        let seq = i.next_seq();
        let Some(j) = i.jobs.get_mut(job) else {
            return; // Ended and forgotten meanwhile.
        };
        let Some(f) = j.boxes.get_mut(name).and_then(|mb| mb.filled.as_mut()) else {
            return; // Evicted or ended meanwhile.
        };
        f.last_use = Instant::now();
        if self.limits.drop_on_read {
            // Its single reader has it: free the bytes now, leaving a
            // tombstone so a retried reader hears `Evicted` at once.
            i.drop_mailbox(job, name, &self.limits, Instant::now());
            drop(i);
            self.space.notify_waiters();
            return;
        }
        let len = f.bytes.len() as u64;
        let old = f.read_seq.replace(seq);
        let first_read = old.is_none();
        if first_read {
            j.evictable += len;
        }
        if let Some(old) = old {
            i.evictable.remove(&old);
        }
        i.evictable.insert(seq, (job.to_owned(), name.to_owned()));
        if first_read {
            i.evictable_bytes += len;
            drop(i);
            self.space.notify_waiters();
        }
    }

    /// Ends a job: drops its mailboxes and releases its waiters.
    pub(crate) fn end_job(&self, job: &str) {
        {
            let mut i = self.lock();
            let now = Instant::now();
            let Some(j) = i.jobs.get_mut(job) else {
                // Remember the end so stragglers are told, not silently served.
                let _ = i.job(job, &self.limits, now);
                if let Some(j) = i.jobs.get_mut(job) {
                    j.ended = Some(now);
                }
                return;
            };
            j.ended = Some(now);
            j.last_use = now;
            let boxes = std::mem::take(&mut j.boxes);
            j.tombstones.clear();
            j.tomb_order.clear();
            for (_, mb) in boxes {
                i.mailboxes -= 1;
                if let Some(f) = mb.filled {
                    let len = f.bytes.len() as u64;
                    i.held -= len;
                    if let Some(j) = i.jobs.get_mut(job) {
                        j.held -= len;
                        if f.read_seq.is_some() {
                            j.evictable -= len;
                        }
                    }
                    if let Some(seq) = f.read_seq {
                        i.evictable.remove(&seq);
                        i.evictable_bytes -= len;
                    }
                }
                mb.notify.notify_waiters();
            }
        }
        self.space.notify_waiters();
    }

    /// Drops mailboxes unused for the TTL, old tombstones, and idle or
    /// long-ended jobs.
    pub(crate) fn sweep(&self, now: Instant) {
        let ttl = self.limits.ttl;
        // Tombstones (and the idle jobs holding them) outlive the contents
        // so that a late reader still hears `Evicted` at once instead of
        // waiting out its timeout; they are small and bounded in number.
        let tomb_ttl = ttl.saturating_mul(TOMBSTONE_TTL_FACTOR);
        let mut freed = false;
        let mut i = self.lock();
        let expired: Vec<(String, String)> = i
            .jobs
            .iter()
            .flat_map(|(jn, j)| {
                j.boxes.iter().filter_map(move |(n, mb)| match &mb.filled {
                    Some(f) if now.saturating_duration_since(f.last_use) >= ttl => {
                        Some((jn.clone(), n.clone()))
                    }
                    _ => None,
                })
            })
            .collect();
        for (jn, n) in expired {
            i.drop_mailbox(&jn, &n, &self.limits, now);
            i.evictions += 1;
            freed = true;
        }
        for j in i.jobs.values_mut() {
            while let Some((&seq, name)) = j.tomb_order.first_key_value() {
                let born = j.tombstones.get(name).map(|t| t.1);
                if born.is_some_and(|b| now.saturating_duration_since(b) < tomb_ttl) {
                    break;
                }
                let name = name.clone();
                j.tomb_order.remove(&seq);
                j.tombstones.remove(&name);
            }
        }
        i.jobs.retain(|_, j| {
            let idle = now.saturating_duration_since(j.last_use) >= tomb_ttl;
            // A job with a reservation outstanding stays: its put commits
            // into it and its accounting must still be there.
            !(idle && j.boxes.is_empty() && j.tombstones.is_empty() && j.held == 0)
        });
        drop(i);
        if freed {
            self.space.notify_waiters();
        }
    }

    /// Starts draining: waiting gets and puts answer `ShuttingDown`.
    pub(crate) fn shutdown(&self) {
        let mut i = self.lock();
        i.shutting_down = true;
        for j in i.jobs.values() {
            for mb in j.boxes.values() {
                mb.notify.notify_waiters();
            }
        }
        drop(i);
        self.space.notify_waiters();
    }
}

/// Counts a get waiting on a mailbox, and removes the mailbox when its last
/// waiter leaves without it being filled (timeout, cancellation).
struct WaiterGuard<'a> {
    store: &'a Store,
    job: &'a str,
    name: &'a str,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let mut i = self.store.lock();
        let Some(j) = i.jobs.get_mut(self.job) else {
            return;
        };
        let Some(mb) = j.boxes.get_mut(self.name) else {
            return;
        };
        if mb.id != self.id {
            return;
        }
        mb.waiters -= 1;
        if mb.waiters == 0 && mb.filled.is_none() {
            j.boxes.remove(self.name);
            i.mailboxes -= 1;
        }
    }
}
