//! When `vpxdec` is installed, decodes every stream in `test-vectors/`
//! with it live and checks that `excam decode --md5` prints exactly the
//! same lines (hashes, sizes and frame numbers), so the committed hashes
//! cannot drift from the libvpx actually installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn have_vpxdec() -> bool {
    Command::new("vpxdec")
        .arg("--help")
        .output()
        .map(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false)
}

#[test]
fn excam_md5_lines_equal_live_vpxdec() {
    if !have_vpxdec() {
        eprintln!("skipping: vpxdec is not on PATH (apt-get install vpx-tools)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let mut ivfs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ivf"))
        .collect();
    ivfs.sort();
    assert!(
        ivfs.len() >= 40,
        "expected the generated streams in {dir:?}"
    );
    // vpxdec only names files with --md5, it does not write them; run it
    // in a scratch directory anyway in case a version does.
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vpxdec_live");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut mismatches = Vec::new();
    for ivf in &ivfs {
        let stem = ivf.file_stem().unwrap().to_string_lossy();
        let theirs = Command::new("vpxdec")
            .current_dir(&scratch)
            .args(["--codec=vp8", "--md5", "--i420", "-o"])
            .arg(format!("{stem}-%wx%h-%4.i420"))
            .arg(ivf)
            .output()
            .unwrap();
        assert!(theirs.status.success(), "vpxdec failed on {ivf:?}");
        let ours = Command::new(env!("CARGO_BIN_EXE_excam"))
            .arg("decode")
            .arg(ivf)
            .arg("--md5")
            .output()
            .unwrap();
        assert!(ours.status.success(), "excam failed on {ivf:?}: {ours:?}");
        if ours.stdout != theirs.stdout {
            mismatches.push(ivf.display().to_string());
        }
    }
    assert!(mismatches.is_empty(), "differ from vpxdec: {mismatches:#?}");
    eprintln!("{} streams agree with live vpxdec", ivfs.len());
}
