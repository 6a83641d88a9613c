//! [`S3Store`]: a store in an S3 bucket (or an S3-compatible service).

use std::path::Path;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::{
    check_key, check_prefix, hex_sha256, other, Store, StoreError, PARTS_IN_FLIGHT, PART_SIZE,
};

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
