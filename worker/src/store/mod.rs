//! Durable storage for a job: the input video, checkpoints, states and
//! finished chunks. One small interface, a local-directory and an S3
//! implementation.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::task::StoreSpec;

mod local;
#[cfg(feature = "cloud")]
mod s3;

pub use local::LocalStore;
#[cfg(feature = "cloud")]
pub use s3::{reuse_aws_config, S3Store};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No object under that key.
    #[error("no object at {0}")]
    NotFound(String),
    /// The object's bytes do not match their recorded checksum.
    #[error("object {key} is corrupt: checksum mismatch")]
    Corrupt {
        /// Its key.
        key: String,
    },
    /// A write-once object already holds other bytes
    /// ([`Store::put_once`]).
    #[error("object {key} already holds different bytes (objects there are written once)")]
    Conflict {
        /// Its key.
        key: String,
    },
    /// The key is not acceptable (empty, absolute, `..`).
    #[error("bad key {0:?}")]
    BadKey(String),
    /// Anything else (I/O, network, service error), with the key.
    #[error("{key}: {message}")]
    Other {
        /// Key involved.
        key: String,
        /// What went wrong.
        message: String,
    },
}

/// A flat key → bytes store. Keys are `/`-separated relative paths.
///
/// `put` records a SHA-256 of what it writes and `get` verifies it, so a
/// corrupted object is reported as [`StoreError::Corrupt`], never returned.
#[async_trait]
pub trait Store: Send + Sync {
    /// Writes `data` under `key`, replacing any object there; atomic for
    /// readers (they see the old or the new object, never a mix).
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError>;
    /// Writes `data` under `key` once: an object already there with the
    /// same bytes is left as it is (a retry or a twin wrote it), one with
    /// other bytes is [`StoreError::Conflict`], never replaced. A corrupt
    /// object (checksum mismatch) is replaced, since nothing can read it.
    ///
    /// The look and the write are two requests, so two writers of
    /// different bytes racing on an absent key could both succeed; states
    /// are scoped to one coordinator run, where every writer of a key is an
    /// attempt of the same deterministic chunk, and the coordinator's chain
    /// check would refuse the job if one ever differed.
    async fn put_once(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        match self.get(key).await {
            Ok(existing) if existing == data => Ok(()),
            Ok(_) => Err(StoreError::Conflict {
                key: key.to_string(),
            }),
            Err(StoreError::NotFound(_) | StoreError::Corrupt { .. }) => self.put(key, data).await,
            Err(e) => Err(e),
        }
    }
    /// Reads a whole object, verifying its checksum.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;
    /// Reads `len` bytes at `offset` (no checksum: used for the input).
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError>;
    /// Size of an object, or `None` if absent.
    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Deletes every object whose key starts with `prefix`.
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;
    /// Uploads a local file under `key` (multipart for big files), calling
    /// `progress(bytes_done, bytes_total)` as it goes.
    async fn upload_file(
        &self,
        key: &str,
        path: &std::path::Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError>;
}

/// Size of the parts of a multipart upload, and the file size above which
/// [`S3Store::upload_file`] uses one: 8 MiB.
pub const PART_SIZE: u64 = 8 << 20;
/// Parts of a multipart upload in flight at once.
#[cfg(feature = "cloud")]
const PARTS_IN_FLIGHT: usize = 4;

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Checks a key: non-empty, relative, `/`-separated, no empty, `.` or `..`
/// components, no backslash or NUL.
fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(StoreError::BadKey(key.to_string()));
    }
    Ok(())
}

/// Checks a prefix for [`Store::delete_prefix`]: like a key, but may be
/// empty or end with `/`.
fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() {
        return if prefix.is_empty() {
            Ok(())
        } else {
            Err(StoreError::BadKey(prefix.to_string()))
        };
    }
    check_key(body)
}

fn other(key: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Other {
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn io_err(key: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(key.to_string())
    } else {
        other(key, e)
    }
}

/// Opens the store a task names: a directory, or an S3 bucket with
/// credentials, region and endpoint from the standard AWS configuration
/// chain (see [`S3Store::from_env`]).
///
/// # Errors
/// [`StoreError::Other`] if the local root exists but is not a directory.
pub async fn open_store(spec: &StoreSpec) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        StoreSpec::Local { root } => {
            if root.exists() && !root.is_dir() {
                return Err(other(
                    &root.display().to_string(),
                    "store root is not a directory",
                ));
            }
            Ok(Arc::new(LocalStore::new(root.clone())))
        }
        #[cfg(feature = "cloud")]
        StoreSpec::S3 { bucket, prefix } => Ok(Arc::new(
            S3Store::from_env(bucket.clone(), prefix.clone()).await,
        )),
        #[cfg(not(feature = "cloud"))]
        StoreSpec::S3 { bucket, .. } => Err(other(
            &format!("s3://{bucket}"),
            "this build has no S3 support (built without the `cloud` feature)",
        )),
    }
}
