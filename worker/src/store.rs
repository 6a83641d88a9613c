//! Durable storage for a job: the input video, checkpoints, states and
//! finished chunks. One small interface, a local-directory and an S3
//! implementation.

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

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
