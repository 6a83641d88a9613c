//! What the C-program tests share: tool checks, the profile's library
//! build, and MD5s of decoded frames from excam and from vpxdec.

use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};

/// Whether `tool` runs (with `arg`); under CI=true a missing tool fails
/// the test.
pub fn have_tool(tool: &str, arg: &str) -> bool {
    if Command::new(tool).arg(arg).output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is required under CI=true (apt-get install gcc pkgconf vpx-tools)"
    );
    eprintln!("skipping: {tool} is not on PATH");
    false
}

/// The target directory and profile directory name this test was built
/// in: the test binary is `<target>/<profile>/deps/NAME-HASH`.
pub fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (profile_dir.parent().unwrap().to_path_buf(), profile)
}

/// The `--profile` name of a profile directory (`debug` is `dev`).
pub fn cargo_profile(dir: &str) -> &str {
    if dir == "debug" {
        "dev"
    } else {
        dir
    }
}

/// Builds libexcam in `target`'s `profile` directory. Always asked for (a
/// no-op when fresh): `cargo test` builds the library's C crate types in
/// deps/ only, so a copy in the profile directory may be an older build's.
pub fn build_lib(target: &Path, profile: &str) {
    let st = Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "--profile",
            cargo_profile(profile),
            "-p",
            "excam-capi",
            "--lib",
        ])
        .env("CARGO_TARGET_DIR", target)
        .status()
        .unwrap();
    assert!(st.success(), "building libexcam failed");
}

/// MD5 over all shown frames' I420 bytes as excam's decoder gives them
/// (as `vpxdec --md5 --i420` computes it), and how many there were.
pub fn excam_md5(ivf: &Path) -> (String, usize) {
    let bytes = std::fs::read(ivf).unwrap();
    let mut r = excam_codec::container::ivf::IvfReader::new(&bytes[..]).unwrap();
    let mut dec = excam_codec::Decoder::new();
    let mut h = Md5::new();
    let mut n = 0;
    while let Some(f) = r.next_frame().unwrap() {
        if let (Some(p), _) = dec.decode(&f.data).unwrap() {
            h.update(p.to_frame().to_i420());
            n += 1;
        }
    }
    (format!("{:x}", h.finalize()), n)
}

/// `vpxdec --md5 --i420` of an IVF file.
pub fn vpxdec_md5(ivf: &Path) -> String {
    let out = Command::new("vpxdec")
        .args(["--md5", "--i420"])
        .arg(ivf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vpxdec failed on {}: {}",
        ivf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}
