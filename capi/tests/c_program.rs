//! Builds tests/c/encode_decode.c against libexcam.a with the system C
//! compiler, runs it, then checks vpxdec decodes both IVF files it wrote
//! to exactly the frames excam-codec's own decoder gives.

use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};

/// Whether `tool` runs; under CI=true a missing tool fails the test.
fn have_tool(tool: &str) -> bool {
    if Command::new(tool).arg("--help").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is required under CI=true (apt-get install gcc vpx-tools)"
    );
    eprintln!("skipping: {tool} is not on PATH");
    false
}

/// The staticlib of the profile this test was built in. The test binary
/// lives in <target>/<profile>/deps.
fn staticlib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let target = profile_dir.parent().unwrap().to_path_buf();
    let lib = profile_dir.join("libexcam.a");
    // Always asked for (a no-op when fresh): `cargo test` builds the
    // library's C crate types in deps/ but puts no copy here, so one left
    // by an older build could be stale.
    {
        let st = Command::new(env!("CARGO"))
            .args([
                "build",
                "--offline",
                "--profile",
                cargo_profile(&profile),
                "-p",
                "excam-capi",
                "--lib",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(st.success(), "building libexcam.a failed");
    }
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

/// MD5 of the I420 frames excam-codec decodes from an IVF file, as
/// vpxdec --md5 --i420 computes it (all frames concatenated).
fn excam_md5(ivf: &Path) -> String {
    let bytes = std::fs::read(ivf).unwrap();
    let mut r = excam_codec::container::ivf::IvfReader::new(&bytes[..]).unwrap();
    let mut dec = excam_codec::Decoder::new();
    let mut h = Md5::new();
    let mut n = 0;
    while let Some(f) = r.next_frame().unwrap() {
        let (shown, _) = dec.decode(&f.data).unwrap();
        if let Some(p) = shown {
            h.update(p.to_frame().to_i420());
            n += 1;
        }
    }
    assert_eq!(n, 10, "frames decoded from {}", ivf.display());
    format!("{:x}", h.finalize())
}

fn vpxdec_md5(ivf: &Path) -> String {
    let out = Command::new("vpxdec")
        .args(["--md5", "--i420"])
        .arg(ivf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vpxdec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn c_program_encodes_decodes_and_matches_vpxdec() {
    if !have_tool("cc") {
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
    if !have_tool("vpxdec") {
        return;
    }
    for ivf in [&serial, &parallel] {
        assert_eq!(
            vpxdec_md5(ivf),
            excam_md5(ivf),
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

/// The `--profile` name of a profile directory (`debug` is `dev`).
fn cargo_profile(dir: &str) -> &str {
    if dir == "debug" {
        "dev"
    } else {
        dir
    }
}
