//! Records a digest of the phase functions (`src/chunk.rs`) as
//! `EXCAM_PHASES_SOURCE_DIGEST`: with the codec's own digest it makes
//! [`codec_version`](crate::task::codec_version), which changes whenever
//! the bytes a chunk encodes to may change.

use sha2::{Digest, Sha256};

fn main() {
    let root = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo"));
    let data = std::fs::read(root.join("src/chunk.rs")).unwrap_or_default();
    let digest = Sha256::digest(&data);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=EXCAM_PHASES_SOURCE_DIGEST={hex}");
    println!("cargo:rerun-if-changed=src/chunk.rs");
}
