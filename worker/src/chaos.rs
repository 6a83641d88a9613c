//! Random faults for chaos runs (`benches/chaos.sh`,
//! `coordinator/tests/chaos.rs`); compiled only with the test-only
//! `fault-injection` feature, and idle unless `EXCAM_CHAOS` is set.
//!
//! `EXCAM_CHAOS` is a comma-separated list of `name=probability`:
//!
//! - `store_error`: each store operation fails with an I/O-like error
//!   (what a flaky disk or an S3 5xx looks like to the worker);
//! - `throttle`: the worker refuses the task at once with exit status
//!   [`THROTTLED_EXIT`] (the processes backend's stand-in for Lambda's
//!   TooManyRequests: not counted as a try, backed off);
//! - `slow_store`: each store operation first waits 50-500 ms (throttled
//!   or distant storage).
//!
//! Every fault injected is appended as one line to the file named by
//! `EXCAM_CHAOS_LOG`, if set, so a chaos run can count what it did.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::store::{Store, StoreError};

/// Exit status of a worker that refuses a task as throttled
/// (`EX_TEMPFAIL`).
pub const THROTTLED_EXIT: u8 = 75;

/// The faults to inject and where to record them.
#[derive(Debug)]
pub struct Chaos {
    store_error: f64,
    throttle: f64,
    slow_store: f64,
    log: Option<PathBuf>,
    rng: Mutex<u64>,
}

impl Chaos {
    /// The faults `EXCAM_CHAOS` asks for, or `None` if it is unset.
    ///
    /// # Errors
    /// A message naming an unknown fault or a bad probability.
    pub fn from_env() -> Result<Option<Arc<Chaos>>, String> {
        let Ok(spec) = std::env::var("EXCAM_CHAOS") else {
            return Ok(None);
        };
        let mut c = Chaos {
            store_error: 0.0,
            throttle: 0.0,
            slow_store: 0.0,
            log: std::env::var_os("EXCAM_CHAOS_LOG").map(PathBuf::from),
            rng: Mutex::new(seed()),
        };
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (name, p) = part
                .split_once('=')
                .ok_or_else(|| format!("EXCAM_CHAOS: {part:?} is not name=probability"))?;
            let p: f64 = p
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("EXCAM_CHAOS: bad probability in {part:?}"))?;
            match name {
                "store_error" => c.store_error = p,
                "throttle" => c.throttle = p,
                "slow_store" => c.slow_store = p,
                other => return Err(format!("EXCAM_CHAOS: unknown fault {other:?}")),
            }
        }
        Ok(Some(Arc::new(c)))
    }

    /// True with probability `p`.
    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let mut x = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // xorshift64*
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let r = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        r < p
    }

    /// Records one injected fault.
    pub fn note(&self, what: &str) {
        tracing::warn!("chaos: {what}");
        if let Some(path) = &self.log {
            // One short line per write with O_APPEND: lines from
            // concurrent workers do not interleave.
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = f.write_all(format!("{what}\n").as_bytes());
            }
        }
    }

    /// Whether this task is to be refused as throttled (recorded if so).
    pub fn throttled(&self) -> bool {
        let t = self.roll(self.throttle);
        if t {
            self.note("throttle");
        }
        t
    }

    /// `store` with this chaos's store faults.
    pub fn wrap(self: &Arc<Self>, store: Arc<dyn Store>) -> Arc<dyn Store> {
        if self.store_error <= 0.0 && self.slow_store <= 0.0 {
            return store;
        }
        Arc::new(ChaosStore {
            inner: store,
            chaos: self.clone(),
        })
    }

    /// Before a store operation: maybe a pause, maybe an error.
    async fn before(&self, op: &str, key: &str) -> Result<(), StoreError> {
        if self.roll(self.slow_store) {
            let ms = 50 + (self.roll(0.5) as u64) * 450;
            self.note(&format!("slow_store {op} {ms}ms"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.roll(self.store_error) {
            self.note(&format!("store_error {op}"));
            return Err(StoreError::Other {
                key: key.to_string(),
                message: format!("injected store error ({op})"),
            });
        }
        Ok(())
    }
}

/// A seed that differs between worker processes and runs.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// A store whose operations fail or stall at random.
struct ChaosStore {
    inner: Arc<dyn Store>,
    chaos: Arc<Chaos>,
}

#[async_trait]
impl Store for ChaosStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.chaos.before("put", key).await?;
        self.inner.put(key, data).await
    }

    async fn put_once(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.chaos.before("put", key).await?;
        self.inner.put_once(key, data).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.chaos.before("get", key).await?;
        self.inner.get(key).await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        self.chaos.before("get_range", key).await?;
        self.inner.get_range(key, offset, len).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.chaos.before("size", key).await?;
        self.inner.size(key).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        self.chaos.before("delete", prefix).await?;
        self.inner.delete_prefix(prefix).await
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError> {
        self.chaos.before("upload", key).await?;
        self.inner.upload_file(key, path, progress).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(store_error: f64) -> Arc<Chaos> {
        Arc::new(Chaos {
            store_error,
            throttle: 0.0,
            slow_store: 0.0,
            log: None,
            rng: Mutex::new(12345),
        })
    }

    #[test]
    fn probabilities_are_honoured_roughly() {
        let c = chaos(0.0);
        let hits = (0..10_000).filter(|_| c.roll(0.1)).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| c.roll(0.0)));
        assert!((0..1000).all(|_| c.roll(1.0)));
    }

    #[tokio::test]
    async fn a_chaos_store_fails_some_operations_and_passes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(crate::store::LocalStore::new(dir.path()));
        let store = chaos(0.5).wrap(inner.clone());
        let mut failed = 0;
        for i in 0..200 {
            let key = format!("k/{i}");
            match store.put(&key, Bytes::from(vec![i as u8; 10])).await {
                Err(StoreError::Other { message, .. }) => {
                    assert!(message.contains("injected"));
                    failed += 1;
                    assert!(inner.size(&key).await.unwrap().is_none());
                }
                Err(e) => panic!("{e}"),
                Ok(()) => assert_eq!(inner.get(&key).await.unwrap().len(), 10),
            }
        }
        assert!((50..150).contains(&failed), "{failed}");
    }
}
