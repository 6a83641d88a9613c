//! The job's input: where it is (a local file or an S3 object), its
//! identity (part of the job id), its Y4M geometry, and its upload to the
//! store the workers read from.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::UNIX_EPOCH;

use excam_codec::container::y4m::Y4mReader;
use excam_codec::image::i420_len;
use excam_worker::store::Store;
use excam_worker::task::StoreSpec;
use sha2::{Digest, Sha256};

use super::error::InputError;
use super::InputSource;

/// Parses a Y4M header from the file's first bytes: the frame geometry
/// and where frames start. Only `FRAME` lines without parameters are
/// supported (what ffmpeg and our clips write), since frames are located
/// by stride.
pub(super) fn parse_header(
    head: &[u8],
    total: u64,
) -> Result<(excam_codec::container::y4m::Y4mHeader, u64, usize), InputError> {
    let hdr = *Y4mReader::new(head).map_err(InputError::NotY4m)?.header();
    let end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(InputError::Unterminated)? as u64
        + 1;
    let stride = 6 + i420_len(hdr.width, hdr.height) as u64;
    let at = end as usize;
    if head.len() >= at + 6 && &head[at..at + 6] != b"FRAME\n" {
        return Err(InputError::FrameParameters);
    }
    let frames = (total.saturating_sub(end) / stride) as usize;
    Ok((hdr, end, frames))
}

/// Identity, store key, first bytes and total size of the input.
pub(super) async fn locate_input(
    input: &InputSource,
    spec: &StoreSpec,
    store: &dyn Store,
) -> Result<(String, String, Vec<u8>, u64), InputError> {
    match input {
        InputSource::File(path) => {
            let meta = std::fs::metadata(path).map_err(|source| InputError::Open {
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(InputError::NotRegular(path.clone()));
            }
            let abs = std::fs::canonicalize(path)?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let identity = format!("file:{}:{}:{}", abs.display(), meta.len(), mtime);
            let key = format!(
                "inputs/{}.y4m",
                &hex::encode(Sha256::digest(identity.as_bytes()))[..32]
            );
            let mut head = vec![0u8; 4096];
            let mut f = std::fs::File::open(path)?;
            let mut n = 0;
            while n < head.len() {
                let k = f.read(&mut head[n..])?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            head.truncate(n);
            Ok((identity, key, head, meta.len()))
        }
        InputSource::S3 { bucket, key } => {
            let StoreSpec::S3 { bucket: sb, prefix } = spec else {
                return Err(InputError::S3NeedsLambda);
            };
            if sb != bucket {
                return Err(InputError::WrongBucket {
                    job_bucket: sb.clone(),
                    bucket: bucket.clone(),
                });
            }
            let rel = if prefix.is_empty() {
                key.clone()
            } else {
                key.strip_prefix(&format!("{prefix}/"))
                    .ok_or_else(|| InputError::OutsidePrefix(prefix.clone()))?
                    .to_string()
            };
            let (size, etag) = s3_head(bucket, key).await?;
            let head = store
                .get_range(&rel, 0, 4096.min(size))
                .await
                .map_err(|source| InputError::S3Read {
                    url: format!("s3://{bucket}/{key}"),
                    source,
                })?;
            Ok((
                format!("s3:{bucket}/{key}:{etag}:{size}"),
                rel,
                head.to_vec(),
                size,
            ))
        }
    }
}

/// The size and ETag of an S3 object.
#[cfg(feature = "cloud")]
pub(super) async fn s3_head(bucket: &str, key: &str) -> Result<(u64, String), InputError> {
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut s3c = aws_sdk_s3::config::Builder::from(&conf);
    if std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
        s3c = s3c.force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(s3c.build());
    let head_obj = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| InputError::S3Head {
            url: format!("s3://{bucket}/{key}"),
            source: Box::new(e),
        })?;
    let size = head_obj.content_length().unwrap_or(0).max(0) as u64;
    let etag = head_obj.e_tag().unwrap_or_default().to_string();
    Ok((size, etag))
}

#[cfg(not(feature = "cloud"))]
pub(super) async fn s3_head(_bucket: &str, _key: &str) -> Result<(u64, String), InputError> {
    Err(super::error::BackendError::NoCloud.into())
}

/// Puts the input into the store unless an object of its size is there.
pub(super) async fn upload_input(
    store: &dyn Store,
    key: &str,
    path: &Path,
    total: u64,
    quiet: bool,
) -> Result<(), InputError> {
    if store.size(key).await? == Some(total) {
        return Ok(());
    }
    let bar = if !quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading input {bar:30} {bytes}/{total_bytes} [{eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let b2 = bar.clone();
    store
        .upload_file(key, path, &move |done, _| b2.set_position(done))
        .await
        .map_err(|source| InputError::Upload {
            path: path.to_path_buf(),
            source,
        })?;
    bar.finish_and_clear();
    Ok(())
}
