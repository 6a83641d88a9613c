//! The C library as a C project meets it: `capi/install.sh`, and cargo-c's
//! `cargo cinstall`, each stage an install (shared and static library, `excam/excam.h`, `excam.pc`), then
//! `examples/encode_clip.c` is compiled with flags from pkg-config alone,
//! linked once against the shared and once against the static library,
//! and run on the first frames of the carphone clip. vpxdec must decode
//! both IVF files it writes to exactly the frames excam's decoder gives,
//! and the I420 the C program decoded through the API must be those
//! frames too.

mod common;

use std::path::Path;
use std::process::Command;

use md5::{Digest, Md5};

use common::{build_lib, cargo_profile, excam_md5, have_tool, target_and_profile, vpxdec_md5};

/// The first `n` frames of a Y4M file, header included.
fn y4m_prefix(path: &Path, n: usize) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let header = std::str::from_utf8(&bytes[..header_end]).unwrap();
    let dim = |tag: char| -> usize {
        header
            .split_whitespace()
            .find_map(|t| t.strip_prefix(tag))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (w, h) = (dim('W'), dim('H'));
    let frame = 6 + w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
    bytes[..(header_end + n * frame).min(bytes.len())].to_vec()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How the library gets into the staging directory.
#[derive(Clone, Copy, Debug)]
enum Installer {
    /// `capi/install.sh`, for machines without cargo-c.
    Script,
    /// `cargo cinstall -p excam-capi`, cargo-c's own install.
    CargoC,
}

#[test]
fn install_sh_library_builds_the_c_example_and_matches_vpxdec() {
    installed_library_builds_the_c_example_and_matches_vpxdec(Installer::Script);
}

#[test]
fn cargo_cinstall_library_builds_the_c_example_and_matches_vpxdec() {
    // cargo-c is a cargo subcommand (`cargo install cargo-c`); .ci/run
    // installs it, so under CI=true its absence fails this test.
    if !have_tool("cargo-cinstall", "--version") {
        return;
    }
    installed_library_builds_the_c_example_and_matches_vpxdec(Installer::CargoC);
}

fn installed_library_builds_the_c_example_and_matches_vpxdec(installer: Installer) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = root.join("../../shared/clips/carphone_176x144_120f.y4m");
    if !clip.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is required under CI=true",
            clip.display()
        );
        eprintln!("skipping: {} missing", clip.display());
        return;
    }
    if !have_tool("cc", "--version")
        || !have_tool("pkg-config", "--version")
        || !have_tool("vpxdec", "--help")
    {
        return;
    }
    let (target, profile) = target_and_profile();
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    match installer {
        Installer::Script => {
            build_lib(&target, &profile);
            run_ok(
                Command::new("bash")
                    .arg(root.join("install.sh"))
                    .args(["--no-build", "--prefix", "/usr/local", "--profile"])
                    .arg(cargo_profile(&profile))
                    .arg("--target-dir")
                    .arg(&target)
                    .arg("--destdir")
                    .arg(&stage),
            );
        }
        Installer::CargoC => {
            // cargo-c builds with its own flags (`--cfg cargo_c`, the
            // `capi` feature): a target directory of its own keeps it from
            // invalidating the test build's artifacts, and warm across runs.
            run_ok(
                Command::new(env!("CARGO"))
                    .args(["cinstall", "--offline", "--locked", "-p", "excam-capi"])
                    .args(["--profile", cargo_profile(&profile)])
                    .args(["--prefix", "/usr/local", "--libdir", "/usr/local/lib"])
                    .arg("--target-dir")
                    .arg(target.join("cargo-c"))
                    .arg("--destdir")
                    .arg(&stage)
                    .current_dir(root.join("..")),
            );
        }
    }
    let lib = stage.join("usr/local/lib");
    for f in [
        "libexcam.a",
        "libexcam.so",
        "libexcam.so.0.1",
        "pkgconfig/excam.pc",
    ] {
        assert!(lib.join(f).exists(), "{installer:?} did not install {f}");
    }
    // The header installed is the one in the tree (cargo-c installs it as
    // an asset: see [package.metadata.capi.install.include]).
    assert_eq!(
        std::fs::read(stage.join("usr/local/include/excam/excam.h")).unwrap(),
        std::fs::read(root.join("include/excam.h")).unwrap(),
        "{installer:?} installed another excam.h"
    );

    // Flags come from pkg-config only, as in a C project's Makefile.
    let pkg = |args: &[&str]| -> Vec<String> {
        run_ok(
            Command::new("pkg-config")
                .args(args)
                .arg("excam")
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
                .env("PKG_CONFIG_SYSROOT_DIR", &stage),
        )
        .split_whitespace()
        .map(String::from)
        .collect()
    };
    assert_eq!(pkg(&["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let cflags = pkg(&["--cflags"]);
    let source = root.join("examples/encode_clip.c");
    let shared_exe = dir.path().join("encode_clip_shared");
    run_ok(
        Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
            .args(&cflags)
            .arg(&source)
            .args(pkg(&["--libs"]))
            .arg("-o")
            .arg(&shared_exe),
    );
    // The static build: libexcam.a by path, then what it needs.
    let static_exe = dir.path().join("encode_clip_static");
    let private: Vec<String> = pkg(&["--static", "--libs"])
        .into_iter()
        .filter(|f| f != "-lexcam")
        .collect();
    run_ok(
        Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
            .args(&cflags)
            .arg(&source)
            .arg(lib.join("libexcam.a"))
            .args(&private)
            .arg("-o")
            .arg(&static_exe),
    );

    let input = dir.path().join("clip.y4m");
    std::fs::write(&input, y4m_prefix(&clip, 18)).unwrap();
    for (exe, shared) in [(&shared_exe, true), (&static_exe, false)] {
        let serial = dir.path().join("serial.ivf");
        let decoded = dir.path().join("decoded.yuv");
        let parallel = dir.path().join("parallel.ivf");
        let mut cmd = Command::new(exe);
        cmd.args([&input, &serial, &decoded, &parallel]);
        if shared {
            // The installed library, found by its soname.
            cmd.env("LD_LIBRARY_PATH", &lib);
        }
        let out = run_ok(&mut cmd);
        assert!(
            out.contains("18 frames 176x144 encoded, 18 decoded"),
            "{out}"
        );
        let (serial_md5, n) = excam_md5(&serial);
        assert_eq!(n, 18);
        assert_eq!(
            vpxdec_md5(&serial),
            serial_md5,
            "vpxdec on the streaming encode"
        );
        let c_decoded = format!("{:x}", Md5::digest(std::fs::read(&decoded).unwrap()));
        assert_eq!(c_decoded, serial_md5, "the C decoder's frames");
        let (parallel_md5, n) = excam_md5(&parallel);
        assert_eq!(n, 18);
        assert_eq!(
            vpxdec_md5(&parallel),
            parallel_md5,
            "vpxdec on the ExCamera encode"
        );
    }
}
