//! Runtime CPU feature detection, done once per process.

/// Instruction set extensions the kernels may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// SSSE3 (`pshufb`, `pmaddubsw`).
    pub ssse3: bool,
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    Features {
        ssse3: std::is_x86_feature_detected!("ssse3"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Features {
    Features { ssse3: false }
}

/// The features of this CPU, unless disabled for testing the scalar
/// paths: setting the environment variable `EXCAM_NO_SIMD` (to anything)
/// before the first call turns every runtime-detected kernel off.
#[inline]
pub fn features() -> Features {
    use std::sync::atomic::{AtomicU8, Ordering};
    // Bit 7: detected; bit 0: ssse3.
    static STATE: AtomicU8 = AtomicU8::new(0);
    let s = STATE.load(Ordering::Relaxed);
    let s = if s & 0x80 != 0 {
        s
    } else {
        let f = if std::env::var_os("EXCAM_NO_SIMD").is_some() {
            Features { ssse3: false }
        } else {
            detect()
        };
        let s = 0x80 | u8::from(f.ssse3);
        STATE.store(s, Ordering::Relaxed);
        s
    };
    Features { ssse3: s & 1 != 0 }
}
