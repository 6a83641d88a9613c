//! Fuzzes `excam_codec::wire::decode_state`, the reader of states that
//! arrive from other workers and the relay.
//!
//! Random bytes rarely get past the checksum, so most inputs are framed
//! here with a valid one: the first byte picks raw bytes (even) or a
//! framed body (odd; bit 1 picks LZ4, whose claimed body length is then
//! the next four bytes), so the fuzzer reaches the decompressor and the
//! body parser behind the checksum.

#![no_main]

use excam_codec::wire::{decode_state, encode_state, frame as framed, Compression};
use libfuzzer_sys::fuzz_target;


fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input = if mode & 1 == 0 {
        rest.to_vec()
    } else if mode & 2 == 0 {
        framed(0, rest.len() as u64, rest)
    } else {
        let Some((len, payload)) = rest.split_first_chunk::<4>() else {
            return;
        };
        framed(1, u32::from_le_bytes(*len) as u64, payload)
    };
    if let Ok(state) = decode_state(&input) {
        // What was accepted must write back to bytes that read as itself.
        let again = decode_state(&encode_state(&state, Compression::Lz4)).expect("re-read");
        assert!(again == state);
    }
});
