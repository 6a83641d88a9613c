//! [`LocalStore`]: a store in a local directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{check_key, check_prefix, hex_sha256, io_err, other, Store, StoreError, PART_SIZE};

/// Suffix of the file holding an object's SHA-256 (hex) next to it.
const SIDECAR: &str = ".sha256";
/// Temporary files start with this; they are never objects.
const TMP_PREFIX: &str = ".excam-tmp-";

/// A [`Store`] in a local directory: key `a/b` is the file `root/a/b`, its
/// SHA-256 in `root/a/b.sha256`.
///
/// Writes go to a temporary file in the same directory and are renamed into
/// place, so readers never see half an object. The checksum file is
/// renamed into place first: a reader racing a replacement of an object
/// with different bytes may see the new checksum with the old bytes, and
/// rereads before reporting [`StoreError::Corrupt`]. Files put there by
/// other means (no checksum file) are returned unverified. Keys may not end
/// in `.sha256` or have a component starting with `.excam-tmp-`.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_path(dest: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!("{TMP_PREFIX}{}-{n}-{name}", std::process::id()))
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(SIDECAR);
    PathBuf::from(s)
}

impl LocalStore {
    /// A store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the file holding `key`.
    ///
    /// # Errors
    /// [`StoreError::BadKey`] for keys that are not acceptable.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        if key.ends_with(SIDECAR) || key.split('/').any(|c| c.starts_with(TMP_PREFIX)) {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    async fn write_atomic(key: &str, dest: &Path, data: &[u8]) -> Result<(), StoreError> {
        let tmp = tmp_path(dest);
        let res = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(data).await?;
            f.flush().await?;
            drop(f);
            tokio::fs::rename(&tmp, dest).await
        }
        .await;
        if res.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        res.map_err(|e| other(key, e))
    }

    async fn make_parent(key: &str, path: &Path) -> Result<(), StoreError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| other(key, e))?;
        }
        Ok(())
    }

    async fn read_sidecar(key: &str, path: &Path) -> Result<Option<String>, StoreError> {
        match tokio::fs::read_to_string(sidecar_path(path)).await {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(other(key, e)),
        }
    }

    /// Finds the files under `dir` (recursively), as keys relative to the root.
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                Self::walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                let key: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((key.join("/"), path));
            }
        }
        Ok(())
    }

    /// Removes the empty directories under `dir` (and `dir` itself if empty).
    fn prune(dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut empty = true;
        for entry in entries.flatten() {
            let p = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && Self::prune(&p) {
                continue;
            }
            empty = false;
        }
        empty && std::fs::remove_dir(dir).is_ok()
    }
}

#[async_trait]
impl Store for LocalStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        Self::make_parent(key, &path).await?;
        let sum = hex_sha256(&data);
        Self::write_atomic(key, &sidecar_path(&path), format!("{sum}\n").as_bytes()).await?;
        Self::write_atomic(key, &path, &data).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let mut expected = Self::read_sidecar(key, &path).await?;
        // A concurrent replacement may pair a new checksum with old bytes
        // for a moment: reread a few times before calling it corrupt.
        for attempt in 0..3 {
            let data = tokio::fs::read(&path).await.map_err(|e| io_err(key, e))?;
            let Some(want) = &expected else {
                return Ok(Bytes::from(data));
            };
            if hex_sha256(&data) == *want {
                return Ok(Bytes::from(data));
            }
            let again = Self::read_sidecar(key, &path).await?;
            if again == expected && attempt > 0 {
                break;
            }
            expected = again;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(StoreError::Corrupt {
            key: key.to_string(),
        })
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_err(key, e))?;
        let size = f.metadata().await.map_err(|e| other(key, e))?.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(other(
                key,
                format!("range {offset}+{len} is beyond the object's end ({size} bytes)"),
            ));
        }
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| other(key, e))?;
        let n = usize::try_from(len).map_err(|_| other(key, "range too large"))?;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf).await.map_err(|e| other(key, e))?;
        Ok(Bytes::from(buf))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(other(key, e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        check_prefix(prefix)?;
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            // Only the directory the prefix names (or its parent, for a
            // partial last component) can hold matching keys.
            let dir = match prefix.rsplit_once('/') {
                Some((d, _)) => root.join(d),
                None => root.clone(),
            };
            let mut files = Vec::new();
            Self::walk(&root, &dir, &mut files).map_err(|e| other(&prefix, e))?;
            for (key, path) in files {
                let name = key.rsplit('/').next().unwrap_or("");
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let object = key.strip_suffix(SIDECAR).unwrap_or(&key);
                if object.starts_with(prefix.as_str()) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(other(&key, e)),
                    }
                }
            }
            if dir != root {
                Self::prune(&dir);
            }
            Ok(())
        })
        .await
        .map_err(|e| other("", e))?
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError> {
        let dest = self.path(key)?;
        Self::make_parent(key, &dest).await?;
        let total = tokio::fs::metadata(path)
            .await
            .map_err(|e| other(key, format!("{}: {e}", path.display())))?
            .len();
        let tmp = tmp_path(&dest);
        // A hard link costs no copy; the file is then only read, to hash it.
        let linked = tokio::fs::hard_link(path, &tmp).await.is_ok();
        let res = async {
            let mut src = tokio::fs::File::open(if linked { tmp.as_path() } else { path }).await?;
            let mut out = if linked {
                None
            } else {
                Some(tokio::fs::File::create(&tmp).await?)
            };
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; PART_SIZE as usize];
            let mut done = 0u64;
            progress(0, total);
            loop {
                let n = src.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                if let Some(o) = out.as_mut() {
                    o.write_all(&buf[..n]).await?;
                }
                done += n as u64;
                progress(done.min(total), total);
            }
            if let Some(mut o) = out {
                o.flush().await?;
            }
            Ok::<_, std::io::Error>(hex::encode(hasher.finalize()))
        }
        .await;
        let sum = match res {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(other(key, e));
            }
        };
        Self::write_atomic(key, &sidecar_path(&dest), format!("{sum}\n").as_bytes()).await?;
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(other(key, e));
        }
        Ok(())
    }
}
