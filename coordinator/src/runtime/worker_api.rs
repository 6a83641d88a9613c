//! The points where the coordinator meets the worker crate: opening a
//! store, the names of a job's objects, and the chunk-object format.
//!
//! Kept in one place so the rest of the runtime does not care which side
//! of the crate boundary each piece lives on. Written while the worker's
//! `store::open_store` and `keys` were not yet on this branch: the
//! directory store, key names and frame-list format here mirror the
//! worker's (same `.sha256` sidecars, same `EXFL` frame lists); once the
//! worker's modules are merged these should become re-exports of them, and
//! S3 must come from the worker's `S3Store` (until then `open_store`
//! refuses S3).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use excam_worker::store::{Store, StoreError};
use excam_worker::task::StoreSpec;
use sha2::{Digest, Sha256};

/// Opens the store a task names, as the worker would.
///
/// # Errors
/// A message saying why the store cannot be used.
pub async fn open_store(spec: &StoreSpec) -> anyhow::Result<Arc<dyn Store>> {
    match spec {
        StoreSpec::Local { root } => {
            std::fs::create_dir_all(root)
                .map_err(|e| anyhow::anyhow!("cannot create store {}: {e}", root.display()))?;
            Ok(Arc::new(DirStore { root: root.clone() }))
        }
        StoreSpec::S3 { .. } => anyhow::bail!("S3 stores need the worker's S3 store"),
    }
}

/// Key of the result record of `chunk` in `job`.
pub fn result_key(job: &str, chunk: usize) -> String {
    format!("jobs/{job}/results/{chunk}.json")
}

/// Prefix of every intermediate object of `job`.
pub fn job_prefix(job: &str) -> String {
    format!("jobs/{job}/")
}

/// Parses a chunk object into its frames.
///
/// # Errors
/// A message when the bytes are not a frame list.
pub fn decode_chunk_object(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if data.len() < 8 || &data[..4] != b"EXFL" {
        return Err("not a frame list".into());
    }
    let count = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let table_end = count
        .checked_mul(4)
        .and_then(|t| t.checked_add(8))
        .filter(|&t| t <= data.len())
        .ok_or("truncated frame list")?;
    let mut frames = Vec::with_capacity(count);
    let mut pos = table_end;
    for k in 0..count {
        let at = 8 + 4 * k;
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or("truncated frame")?;
        frames.push(data[pos..end].to_vec());
        pos = end;
    }
    if pos != data.len() {
        return Err("bytes after the last frame".into());
    }
    Ok(frames)
}

/// A directory store with a `.sha256` sidecar per object.
struct DirStore {
    root: std::path::PathBuf,
}

impl DirStore {
    fn path(&self, key: &str) -> Result<std::path::PathBuf, StoreError> {
        if key.is_empty() || key.starts_with('/') || key.split('/').any(|c| c == "..") {
            return Err(StoreError::BadKey(key.into()));
        }
        Ok(self.root.join(key))
    }
}

fn other(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other {
        key: key.into(),
        message: e.to_string(),
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(tmp, path)
}

#[async_trait]
impl Store for DirStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let p = self.path(key)?;
        let sum = hex::encode(Sha256::digest(&data));
        let mut side = p.clone().into_os_string();
        side.push(".sha256");
        write_atomic(Path::new(&side), sum.as_bytes()).map_err(|e| other(key, e))?;
        write_atomic(&p, &data).map_err(|e| other(key, e))
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let p = self.path(key)?;
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.into()))
            }
            Err(e) => return Err(other(key, e)),
        };
        let mut side = p.into_os_string();
        side.push(".sha256");
        if let Ok(sum) = std::fs::read_to_string(&side) {
            if sum.trim() != hex::encode(Sha256::digest(&data)) {
                return Err(StoreError::Corrupt { key: key.into() });
            }
        }
        Ok(Bytes::from(data))
    }
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        use std::io::{Read, Seek};
        let p = self.path(key)?;
        let mut f = std::fs::File::open(&p).map_err(|e| other(key, e))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| other(key, e))?;
        let mut buf = Vec::new();
        f.take(len)
            .read_to_end(&mut buf)
            .map_err(|e| other(key, e))?;
        Ok(Bytes::from(buf))
    }
    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match std::fs::metadata(self.path(key)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(other(key, e)),
        }
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let p = self.root.join(prefix.trim_end_matches('/'));
        match std::fs::remove_dir_all(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(other(prefix, e)),
        }
    }
    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError> {
        let p = self.path(key)?;
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| other(key, e))?;
        }
        let total = std::fs::metadata(path).map_err(|e| other(key, e))?.len();
        let _ = std::fs::remove_file(&p);
        if std::fs::hard_link(path, &p).is_err() {
            std::fs::copy(path, &p).map_err(|e| other(key, e))?;
        }
        progress(total, total);
        Ok(())
    }
}
