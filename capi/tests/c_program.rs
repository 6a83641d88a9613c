//! Builds tests/c/encode_decode.c against libexcam.a with the system C
//! compiler, runs it, then checks vpxdec decodes both IVF files it wrote
//! to exactly the frames excam-codec's own decoder gives.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build_lib, excam_md5, have_tool, target_and_profile, vpxdec_md5};

/// The staticlib of the profile this test was built in, built fresh.
fn staticlib() -> PathBuf {
    let (target, profile) = target_and_profile();
    build_lib(&target, &profile);
    let lib = target.join(&profile).join("libexcam.a");
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

#[test]
fn c_program_encodes_decodes_and_matches_vpxdec() {
    if !have_tool("cc", "--version") {
        return;
    }
    let lib = staticlib();
    let dir = std::env::temp_dir().join(format!("excam-capi-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("encode_decode");
    let st = Command::new("cc")
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/encode_decode.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success(), "compiling the C program failed");
    let serial = dir.join("serial.ivf");
    let parallel = dir.join("parallel.ivf");
    let out = Command::new(&exe)
        .arg(&serial)
        .arg(&parallel)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "C program failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok 10 frames"), "{stdout}");
    if !have_tool("vpxdec", "--help") {
        return;
    }
    for ivf in [&serial, &parallel] {
        let (md5, n) = excam_md5(ivf);
        assert_eq!(n, 10, "frames decoded from {}", ivf.display());
        assert_eq!(
            vpxdec_md5(ivf),
            md5,
            "vpxdec and excam differ on {}",
            ivf.display()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Every `excam_*` function exported from src/ffi.rs is declared in the
/// committed header. Needs no tool, so it runs offline everywhere.
#[test]
fn header_declares_every_export() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(root.join("src/ffi.rs")).unwrap();
    let hdr = std::fs::read_to_string(root.join("include/excam.h")).unwrap();
    let mut n = 0;
    for line in src.lines() {
        if let Some(i) = line.find("extern \"C\" fn excam_") {
            let name: String = line[i + 14..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                hdr.contains(&format!("{name}(")),
                "{name} missing from include/excam.h"
            );
            n += 1;
        }
    }
    assert!(n >= 13, "found only {n} exports");
}

/// The committed header is exactly what cbindgen makes of src/ffi.rs now
/// (cbindgen runs here as a library, so no tool has to be installed).
#[test]
fn header_is_cbindgen_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut made = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed on capi/src")
        .write(&mut made);
    let committed = std::fs::read_to_string(root.join("include/excam.h")).unwrap();
    assert!(
        String::from_utf8_lossy(&made) == committed,
        "include/excam.h is stale: run cbindgen --config cbindgen.toml --crate excam-capi --output include/excam.h"
    );
}
