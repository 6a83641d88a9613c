//! Writes seeds for the `state` fuzz target (`codec/fuzz`): the states
//! after the first frames of a few generated streams, in the three input
//! forms the target takes (raw bytes, a framed body, an LZ4 payload).
//!
//! `cargo run --release -p excam-codec --example state_seeds -- OUT_DIR`

use std::path::{Path, PathBuf};

use excam_codec::container::ivf::IvfReader;
use excam_codec::wire::{encode_state, Compression};
use excam_codec::{decode, DecoderState};

/// Bytes before the body in the wire format.
const HEADER_LEN: usize = 28;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: state_seeds OUT_DIR")?,
    );
    std::fs::create_dir_all(&out)?;
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let mut n = 0;
    for name in ["excam-size-33x31.ivf", "excam-altref-2pass.ivf"] {
        let reader = IvfReader::new(std::fs::File::open(vectors.join(name))?)?;
        let mut s = DecoderState::default();
        for (i, f) in reader.take(3).enumerate() {
            s = decode(&s, &f?.data)?.0;
            let raw = encode_state(&s, Compression::Lz4);
            let body = encode_state(&s, Compression::None)[HEADER_LEN..].to_vec();
            let lz4 = encode_state(&s, Compression::Lz4)[HEADER_LEN..].to_vec();
            let mut seeds = vec![[&[0u8][..], &raw].concat(), [&[1u8][..], &body].concat()];
            let len = (body.len() as u32).to_le_bytes();
            seeds.push([&[3u8][..], &len, &lz4].concat());
            for (k, seed) in seeds.iter().enumerate() {
                let stem = name.trim_end_matches(".ivf");
                std::fs::write(out.join(format!("{stem}-{i}-{k}")), seed)?;
                n += 1;
            }
        }
    }
    println!("wrote {n} seeds to {}", out.display());
    Ok(())
}
