//! The points where the coordinator meets the worker crate: opening a
//! store, the names of a job's objects, and the chunk-object format. The
//! worker defines them; the coordinator reads what workers wrote.

use std::sync::Arc;

use excam_worker::store::Store;
use excam_worker::task::StoreSpec;

pub use excam_worker::keys::{job_prefix, result as result_key};

/// Opens the store a task names, as the worker does.
///
/// # Errors
/// [`JobError::Store`](super::JobError::Store), saying why the store
/// cannot be used.
pub async fn open_store(spec: &StoreSpec) -> Result<Arc<dyn Store>, super::JobError> {
    excam_worker::store::open_store(spec)
        .await
        .map_err(super::JobError::Store)
}

/// Parses a chunk object into its frames.
///
/// # Errors
/// A message when the bytes are not a frame list.
pub fn decode_chunk_object(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    excam_worker::keys::decode_frames(data).map_err(|e| e.to_string())
}
