//! Gives the shared library the soname cargo-c would (`libexcam.so.0.1`
//! for 0.1.z), so programs linked against an installed copy ask for the
//! ABI-compatible name, not the unversioned development link.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        let minor = env!("CARGO_PKG_VERSION_MINOR");
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major.to_string()
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libexcam.so.{abi}");
    }
}
