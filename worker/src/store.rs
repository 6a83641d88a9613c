//! Durable storage for a job: the input video, checkpoints, states and
//! finished chunks. One small interface, a local-directory and an S3
//! implementation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "cloud")]
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
#[cfg(feature = "cloud")]
use aws_sdk_s3::primitives::ByteStream;
#[cfg(feature = "cloud")]
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::task::StoreSpec;

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

#[cfg(feature = "cloud")]
/// A failed S3 GetObject as a store error: a missing key (NoSuchKey, or a
/// bare 404 from servers that send no error code) is `NotFound`.
fn get_error(
    key: &str,
    e: &SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> StoreError {
    let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key())
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
    if missing {
        StoreError::NotFound(key.to_string())
    } else {
        other(key, sdk_message(e))
    }
}

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

// ---------------------------------------------------------------------------
// Local directory.

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

// ---------------------------------------------------------------------------
// S3.

#[cfg(feature = "cloud")]
/// Metadata key holding an object's SHA-256 (sent as `x-amz-meta-sha256`).
const SHA_META: &str = "sha256";

#[cfg(feature = "cloud")]
/// A [`Store`] in an S3 bucket (or an S3-compatible service): key `k` is the
/// object `prefix/k`.
///
/// `put` records the SHA-256 of the bytes in the object's metadata
/// (`x-amz-meta-sha256`) and `get` verifies it; objects written by other
/// tools (no such metadata) are returned unverified.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

#[cfg(feature = "cloud")]
/// The shared AWS configuration, when [`reuse_aws_config`] asked for it.
static SDK_CONFIG: tokio::sync::OnceCell<aws_config::SdkConfig> =
    tokio::sync::OnceCell::const_new();
#[cfg(feature = "cloud")]
static REUSE_SDK_CONFIG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "cloud")]
/// Makes [`S3Store::client_from_env`] load the AWS configuration once and
/// share it (credentials cache, HTTP connection pool) for the rest of the
/// process: what a Lambda function serving many invocations on one Tokio
/// runtime wants. Only for processes with a single runtime: pooled
/// connections belong to the runtime that made them.
pub fn reuse_aws_config() {
    REUSE_SDK_CONFIG.store(true, Ordering::Relaxed);
}

#[cfg(feature = "cloud")]
fn sdk_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    DisplayErrorContext(e).to_string()
}

#[cfg(feature = "cloud")]
impl S3Store {
    /// Abandons a multipart upload so its parts stop costing storage; a
    /// failure here only leaves parts for the bucket's lifecycle rules.
    async fn abort_upload(&self, object: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(upload_id)
            .send()
            .await;
    }

    /// A store in `bucket` under `prefix` (may be empty; a trailing `/` is
    /// optional), using `client`.
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> S3Store {
        let prefix: String = prefix.into();
        let prefix = prefix.trim_matches('/').to_string();
        S3Store {
            client,
            bucket: bucket.into(),
            prefix,
        }
    }

    /// A client from the standard AWS configuration chain
    /// (`aws_config::load_defaults`): credentials, region, and the endpoint
    /// from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`. When an endpoint is
    /// set there, path-style addressing is used (what MinIO and other
    /// S3-compatible services expect).
    pub async fn client_from_env() -> aws_sdk_s3::Client {
        let load = || aws_config::load_defaults(aws_config::BehaviorVersion::latest());
        let fresh;
        let sdk = if REUSE_SDK_CONFIG.load(Ordering::Relaxed) {
            SDK_CONFIG.get_or_init(load).await
        } else {
            fresh = load().await;
            &fresh
        };
        let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_endpoint)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// [`S3Store::new`] with [`S3Store::client_from_env`].
    pub async fn from_env(bucket: impl Into<String>, prefix: impl Into<String>) -> S3Store {
        S3Store::new(Self::client_from_env().await, bucket, prefix)
    }

    /// The client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of store key `key`.
    ///
    /// # Errors
    /// [`StoreError::BadKey`] for keys that are not acceptable.
    pub fn object_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(self.join(key))
    }

    fn join(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    async fn collect(key: &str, body: ByteStream) -> Result<Bytes, StoreError> {
        body.collect().await.map(|b| b.into_bytes()).map_err(|e| {
            let message = DisplayErrorContext(&e).to_string();
            // The SDK checks the service's own checksum (CRC32) of a whole
            // object while streaming it; a mismatch is corruption too.
            if message.contains("checksum mismatch")
                || format!("{e:?}").contains("ChecksumMismatch")
            {
                StoreError::Corrupt {
                    key: key.to_string(),
                }
            } else {
                other(key, format!("reading the object: {message}"))
            }
        })
    }

    async fn upload_multipart(
        &self,
        key: &str,
        object: &str,
        path: &Path,
        total: u64,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError> {
        // The checksum goes in the metadata, given when the upload starts:
        // hash the file first.
        let sum = {
            let mut f = tokio::fs::File::open(path)
                .await
                .map_err(|e| other(key, e))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; PART_SIZE as usize];
            loop {
                let n = f.read(&mut buf).await.map_err(|e| other(key, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hex::encode(hasher.finalize())
        };
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .metadata(SHA_META, &sum)
            .send()
            .await
            .map_err(|e| other(key, sdk_message(&e)))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| other(key, "no upload id in CreateMultipartUpload answer"))?
            .to_string();
        let res = self
            .upload_parts(key, object, &upload_id, path, total, progress)
            .await;
        let parts = match res {
            Ok(p) => p,
            Err(e) => {
                self.abort_upload(object, &upload_id).await;
                return Err(e);
            }
        };
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = done {
            self.abort_upload(object, &upload_id).await;
            return Err(other(key, sdk_message(&e)));
        }
        Ok(())
    }

    async fn upload_parts(
        &self,
        key: &str,
        object: &str,
        upload_id: &str,
        path: &Path,
        total: u64,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| other(key, e))?;
        let count = total.div_ceil(PART_SIZE);
        let mut tasks = tokio::task::JoinSet::new();
        let mut parts: Vec<CompletedPart> = Vec::with_capacity(count as usize);
        let mut done = 0u64;
        progress(0, total);
        let mut next = 0u64;
        while next < count || !tasks.is_empty() {
            // Keep up to PARTS_IN_FLIGHT parts uploading; read the next one
            // while they do.
            while next < count && tasks.len() < PARTS_IN_FLIGHT {
                let len = PART_SIZE.min(total - next * PART_SIZE) as usize;
                let mut buf = vec![0u8; len];
                f.read_exact(&mut buf).await.map_err(|e| other(key, e))?;
                let number = i32::try_from(next + 1).map_err(|_| other(key, "too many parts"))?;
                let req = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(buf));
                tasks.spawn(async move { (number, len as u64, req.send().await) });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (number, len, res) = joined.map_err(|e| other(key, e))?;
            let out = res.map_err(|e| other(key, format!("part {number}: {}", sdk_message(&e))))?;
            let mut part = CompletedPart::builder().part_number(number);
            if let Some(t) = out.e_tag() {
                part = part.e_tag(t);
            }
            if let Some(c) = out.checksum_crc32() {
                part = part.checksum_crc32(c);
            }
            parts.push(part.build());
            done += len;
            progress(done, total);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }
}

#[cfg(feature = "cloud")]
#[async_trait]
impl Store for S3Store {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let object = self.object_key(key)?;
        let sum = hex_sha256(&data);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .metadata(SHA_META, sum)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| other(key, sdk_message(&e)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let object = self.object_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
            .map_err(|e| get_error(key, &e))?;
        let want = out.metadata().and_then(|m| m.get(SHA_META)).cloned();
        let data = Self::collect(key, out.body).await?;
        match want {
            Some(w) if !w.eq_ignore_ascii_case(&hex_sha256(&data)) => Err(StoreError::Corrupt {
                key: key.to_string(),
            }),
            _ => Ok(data),
        }
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let object = self.object_key(key)?;
        if len == 0 {
            return match self.size(key).await? {
                Some(s) if offset <= s => Ok(Bytes::new()),
                Some(s) => Err(other(
                    key,
                    format!("range {offset}+0 is beyond the object's end ({s} bytes)"),
                )),
                None => Err(StoreError::NotFound(key.to_string())),
            };
        }
        let end = offset
            .checked_add(len - 1)
            .ok_or_else(|| other(key, "range overflows"))?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .range(format!("bytes={offset}-{end}"))
            .send()
            .await
            .map_err(|e| get_error(key, &e))?;
        let data = Self::collect(key, out.body).await?;
        if data.len() as u64 != len {
            return Err(other(
                key,
                format!(
                    "range {offset}+{len}: got {} bytes (beyond the object's end?)",
                    data.len()
                ),
            ));
        }
        Ok(data)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let object = self.object_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
        {
            Ok(h) => Ok(Some(
                h.content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .ok_or_else(|| other(key, "HeadObject answer without a length"))?,
            )),
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if missing {
                    Ok(None)
                } else {
                    Err(other(key, sdk_message(&e)))
                }
            }
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        check_prefix(prefix)?;
        let full = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| other(prefix, sdk_message(&e)))?;
            let ids: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<_, _>>()
                .map_err(|e| other(prefix, e))?;
            // A listing page holds at most 1,000 keys, DeleteObjects' limit.
            for batch in ids.chunks(1000) {
                let delete = Delete::builder()
                    .set_objects(Some(batch.to_vec()))
                    .quiet(true)
                    .build()
                    .map_err(|e| other(prefix, e))?;
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| other(prefix, sdk_message(&e)))?;
                if let Some(err) = out.errors().first() {
                    return Err(other(
                        err.key().unwrap_or(prefix),
                        format!(
                            "delete failed: {} {}",
                            err.code().unwrap_or(""),
                            err.message().unwrap_or("")
                        ),
                    ));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(())
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), StoreError> {
        let object = self.object_key(key)?;
        let total = tokio::fs::metadata(path)
            .await
            .map_err(|e| other(key, format!("{}: {e}", path.display())))?
            .len();
        if total > PART_SIZE {
            return self
                .upload_multipart(key, &object, path, total, progress)
                .await;
        }
        progress(0, total);
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| other(key, format!("{}: {e}", path.display())))?;
        self.put(key, Bytes::from(data)).await?;
        progress(total, total);
        Ok(())
    }
}
