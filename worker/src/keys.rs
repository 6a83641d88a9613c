//! The names of everything a job puts in the relay and the store, in one
//! place, and the byte format of frame lists (checkpoints and chunks).
//!
//! Relay mailboxes (scoped to the job by the connection's token, and to
//! the coordinator's run by its id):
//!
//! | mailbox                     | holds                                        |
//! |-----------------------------|----------------------------------------------|
//! | `state/{run}/{i}/phase1`    | chunk `i`'s phase-1 final state (wire bytes) |
//! | `state/{run}/{i}/final`     | chunk `i`'s true final state (wire bytes)    |
//!
//! Store keys, all under `jobs/{job}/`:
//!
//! | key                           | holds                                    |
//! |-------------------------------|------------------------------------------|
//! | `runs/{run}/states/{i}/phase1` | as the mailbox, durable, written once   |
//! | `runs/{run}/states/{i}/final`  | as the mailbox, durable, written once   |
//! | `ckpt/{i}/phase1`       | phase 1's frames, to resume ([`encode_checkpoint`]) |
//! | `ckpt/{i}/phase2`       | phase 2's frames, to resume ([`encode_checkpoint`]) |
//! | `results/{i}.json`      | the [`TaskResult`](crate::task::TaskResult)    |
//! | `chunks/{cache_key}`    | the finished chunk's frame list                |
//!
//! The finished chunk is content addressed: [`cache_key`] hashes everything
//! its bytes depend on, so a resumed job reuses a chunk only if it would
//! come out the same.

use excam_codec::Image;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::chunk::ChunkPlan;
use crate::task::{codec_version, CodecParams};

/// Relay mailbox of chunk `chunk`'s phase-1 final state in run `run`.
pub fn mailbox_phase1(run: &str, chunk: usize) -> String {
    format!("state/{run}/{chunk}/phase1")
}

/// Relay mailbox of chunk `chunk`'s true final state in run `run`.
pub fn mailbox_final(run: &str, chunk: usize) -> String {
    format!("state/{run}/{chunk}/final")
}

/// Prefix of every store key of `job` (ends with `/`): delete it to clean up.
pub fn job_prefix(job: &str) -> String {
    format!("jobs/{job}/")
}

/// Store key of chunk `chunk`'s phase-1 final state (wire bytes) in run
/// `run`. States are scoped to the run that made them: a later run of the
/// same job never reads them unless the coordinator has checked them
/// against the chunk's result and copied them into its own run.
pub fn state_phase1(job: &str, run: &str, chunk: usize) -> String {
    format!("jobs/{job}/runs/{run}/states/{chunk}/phase1")
}

/// Store key of chunk `chunk`'s true final state (wire bytes) in run `run`.
pub fn state_final(job: &str, run: &str, chunk: usize) -> String {
    format!("jobs/{job}/runs/{run}/states/{chunk}/final")
}

/// Store key of chunk `chunk`'s phase-1 frames ([`encode_checkpoint`] format).
pub fn ckpt_phase1(job: &str, chunk: usize) -> String {
    format!("jobs/{job}/ckpt/{chunk}/phase1")
}

/// Store key of chunk `chunk`'s phase-2 frames ([`encode_checkpoint`] format).
pub fn ckpt_phase2(job: &str, chunk: usize) -> String {
    format!("jobs/{job}/ckpt/{chunk}/phase2")
}

/// Store key of chunk `chunk`'s [`TaskResult`](crate::task::TaskResult) JSON.
pub fn result(job: &str, chunk: usize) -> String {
    format!("jobs/{job}/results/{chunk}.json")
}

/// Prefix of the job's result records (ends with `/`).
pub fn results_prefix(job: &str) -> String {
    format!("jobs/{job}/results/")
}

/// Store key of a finished chunk ([`encode_frames`] format) with the given
/// [`cache_key`].
pub fn chunk_object(job: &str, cache_key: &str) -> String {
    format!("jobs/{job}/chunks/{cache_key}")
}

/// SHA-256 of a chunk's input pictures: width, height and the tightly
/// packed I420 bytes of each frame, in order.
pub fn frames_digest(frames: &[Image]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((frames.len() as u64).to_le_bytes());
    let mut buf = Vec::new();
    for f in frames {
        h.update((f.width as u64).to_le_bytes());
        h.update((f.height as u64).to_le_bytes());
        buf.clear();
        f.write_i420(&mut buf);
        h.update(&buf);
    }
    h.finalize().into()
}

/// The content address of a finished chunk: hex SHA-256 over everything its
/// bytes depend on.
///
/// That is [`codec_version`], the codec parameters (as JSON), N and x, and
/// of the chunk's place in the job only what the phase functions look at:
/// whether it starts a group, whether it hands its state on, whether it is
/// the job's last chunk, and whether its first frame falls on a golden
/// interval (the boost of a given-state first frame); then the SHA-256 of
/// its input frames ([`frames_digest`]) and the digest of the state its
/// first frame decodes from (all zeros for a group head).
pub fn cache_key(
    codec: &CodecParams,
    plan: &ChunkPlan,
    input_digest: &[u8; 32],
    source_state: &[u8; 32],
) -> String {
    hex::encode(cache_digest(codec, plan, input_digest, source_state))
}

/// [`cache_key`] as bytes. Also what a checkpoint records it was computed
/// from ([`encode_checkpoint`]), with the state its phase started from as
/// `source_state`.
pub fn cache_digest(
    codec: &CodecParams,
    plan: &ChunkPlan,
    input_digest: &[u8; 32],
    source_state: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |name: &str, v: &[u8]| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v);
    };
    field("codec_version", codec_version().as_bytes());
    let params = serde_json::to_vec(codec).expect("codec parameters serialize");
    field("codec_params", &params);
    field("chunk_frames", &(plan.chunk_frames as u64).to_le_bytes());
    field("group_chunks", &(plan.group_chunks as u64).to_le_bytes());
    let g = codec.golden_interval as usize;
    let boost = g > 0 && plan.first_frame().is_multiple_of(g);
    let flags = [
        u8::from(plan.is_head()),
        u8::from(plan.hands_on()),
        u8::from(plan.index + 1 == plan.chunks),
        u8::from(boost),
    ];
    field("place", &flags);
    field("input", input_digest);
    field("source_state", source_state);
    h.finalize().into()
}

const FRAME_LIST_MAGIC: &[u8; 4] = b"EXFL";
/// Largest frame accepted by [`decode_frames`] (a VP8 frame of the largest
/// size is far smaller).
const MAX_FRAME: usize = 1 << 30;

/// Why bytes are not a frame list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameListError {
    /// Fewer bytes than the header, the length table or the frames need.
    #[error("truncated frame list: {0}")]
    Truncated(&'static str),
    /// Does not start with the frame-list magic.
    #[error("not a frame list (bad magic)")]
    BadMagic,
    /// A length is out of range, or bytes follow the last frame.
    #[error("invalid frame list: {0}")]
    Invalid(&'static str),
}

/// Serializes compressed frames: `EXFL`, count u32, one u32 length per frame
/// (little-endian), then the frames' bytes back to back.
pub fn encode_frames(frames: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = frames.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(8 + 4 * frames.len() + total);
    out.extend_from_slice(FRAME_LIST_MAGIC);
    out.extend_from_slice(
        &u32::try_from(frames.len())
            .expect("frame count fits u32")
            .to_le_bytes(),
    );
    for f in frames {
        out.extend_from_slice(
            &u32::try_from(f.len())
                .expect("frame fits u32")
                .to_le_bytes(),
        );
    }
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}

/// Reads bytes written by [`encode_frames`]. Truncated or garbage input is
/// an error, never a panic or a huge allocation.
pub fn decode_frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameListError> {
    if bytes.len() < 8 {
        return Err(FrameListError::Truncated("header"));
    }
    if &bytes[..4] != FRAME_LIST_MAGIC {
        return Err(FrameListError::BadMagic);
    }
    let count = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let table_end = count
        .checked_mul(4)
        .and_then(|t| t.checked_add(8))
        .ok_or(FrameListError::Invalid("frame count too large"))?;
    if bytes.len() < table_end {
        return Err(FrameListError::Truncated("length table"));
    }
    let mut lens = Vec::with_capacity(count);
    let mut total = 0usize;
    for k in 0..count {
        let at = 8 + 4 * k;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(FrameListError::Invalid("frame length too large"));
        }
        total = total
            .checked_add(len)
            .ok_or(FrameListError::Invalid("frame lengths overflow"))?;
        lens.push(len);
    }
    let body = &bytes[table_end..];
    if body.len() < total {
        return Err(FrameListError::Truncated("frame data"));
    }
    if body.len() > total {
        return Err(FrameListError::Invalid("bytes after the last frame"));
    }
    let mut out = Vec::with_capacity(count);
    let mut pos = 0;
    for len in lens {
        out.push(body[pos..pos + len].to_vec());
        pos += len;
    }
    Ok(out)
}

const CHECKPOINT_MAGIC: &[u8; 4] = b"EXCK";

/// Serializes a phase's checkpoint: `EXCK`, the 32-byte `context` it was
/// computed from (a [`cache_digest`]), then the frame list
/// ([`encode_frames`]). A job id reused with other settings or input then
/// never resumes from a stale checkpoint.
pub fn encode_checkpoint(context: &[u8; 32], frames: &[Vec<u8>]) -> Vec<u8> {
    let list = encode_frames(frames);
    let mut out = Vec::with_capacity(36 + list.len());
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.extend_from_slice(context);
    out.extend_from_slice(&list);
    out
}

/// Reads bytes written by [`encode_checkpoint`]: the context and the frames.
///
/// # Errors
/// Truncated or garbage input.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<([u8; 32], Vec<Vec<u8>>), FrameListError> {
    if bytes.len() < 36 {
        return Err(FrameListError::Truncated("checkpoint header"));
    }
    if &bytes[..4] != CHECKPOINT_MAGIC {
        return Err(FrameListError::BadMagic);
    }
    let context: [u8; 32] = bytes[4..36].try_into().expect("32 bytes");
    Ok((context, decode_frames(&bytes[36..])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_list_round_trip() {
        for frames in [
            vec![],
            vec![vec![]],
            vec![vec![1, 2, 3], vec![], vec![9; 1000]],
        ] {
            let b = encode_frames(&frames);
            assert_eq!(decode_frames(&b).unwrap(), frames);
        }
    }

    #[test]
    fn frame_list_rejects_truncation_and_garbage() {
        let b = encode_frames(&[vec![1, 2, 3], vec![4, 5]]);
        for cut in 0..b.len() {
            assert!(decode_frames(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(
            decode_frames(&extra),
            Err(FrameListError::Invalid("bytes after the last frame"))
        );
        let mut bad = b.clone();
        bad[0] = b'X';
        assert_eq!(decode_frames(&bad), Err(FrameListError::BadMagic));
        // A huge count must not allocate or panic.
        let mut huge = b"EXFL".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_frames(&huge).is_err());
        // Pseudo-random garbage.
        let mut x = 0x1234_5678u32;
        for n in 0..500 {
            let mut g = b"EXFL".to_vec();
            for _ in 0..n % 40 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                g.push(x as u8);
            }
            let _ = decode_frames(&g);
        }
    }

    #[test]
    fn checkpoint_round_trip() {
        let frames = vec![vec![1, 2], vec![3]];
        let b = encode_checkpoint(&[7; 32], &frames);
        assert_eq!(decode_checkpoint(&b).unwrap(), ([7; 32], frames));
        for cut in 0..b.len() {
            assert!(decode_checkpoint(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_checkpoint(&encode_frames(&[vec![0; 40]])).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(mailbox_phase1("r", 3), "state/r/3/phase1");
        assert_eq!(mailbox_final("r", 3), "state/r/3/final");
        assert_eq!(state_phase1("j", "r", 3), "jobs/j/runs/r/states/3/phase1");
        assert_eq!(state_final("j", "r", 3), "jobs/j/runs/r/states/3/final");
        assert_eq!(ckpt_phase1("j", 3), "jobs/j/ckpt/3/phase1");
        assert_eq!(ckpt_phase2("j", 3), "jobs/j/ckpt/3/phase2");
        assert_eq!(result("j", 3), "jobs/j/results/3.json");
        assert_eq!(chunk_object("j", "ab"), "jobs/j/chunks/ab");
        assert!(state_final("j", "r", 1).starts_with(&job_prefix("j")));
    }

    #[test]
    fn cache_key_depends_on_its_inputs() {
        let codec =
            CodecParams::from_config(&excam_codec::encode::encoder::EncoderConfig::new(64, 48));
        let plan = ChunkPlan {
            index: 1,
            chunks: 5,
            chunk_frames: 4,
            group_chunks: 3,
        };
        let k = cache_key(&codec, &plan, &[1; 32], &[2; 32]);
        assert_eq!(k.len(), 64);
        assert_eq!(k, cache_key(&codec, &plan, &[1; 32], &[2; 32]));
        assert_ne!(k, cache_key(&codec, &plan, &[3; 32], &[2; 32]));
        assert_ne!(k, cache_key(&codec, &plan, &[1; 32], &[3; 32]));
        let mut c2 = codec.clone();
        c2.speed += 1;
        assert_ne!(k, cache_key(&c2, &plan, &[1; 32], &[2; 32]));
        let p2 = ChunkPlan { index: 2, ..plan };
        assert_ne!(
            k,
            cache_key(&codec, &p2, &[1; 32], &[2; 32]),
            "hands on differs"
        );
    }
}
