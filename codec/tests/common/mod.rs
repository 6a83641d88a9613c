//! Helpers the codec's integration tests share: driving the streaming
//! encoder, checking that its packets decode to its own states and
//! pictures, and asking vpxdec for the same pictures.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use excam_codec::container::ivf::{IvfHeader, IvfWriter};
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{Encoder, EncoderConfig, EncoderStatus, Packet};
use excam_codec::{decode_picture, DecoderState, Image};
use md5::{Digest, Md5};

/// Every packet of `frames` through `cfg`'s encoder, sending frames as the
/// lookahead admits them; after the flush the encoder must report the
/// end of the stream.
pub fn encode_all(cfg: &EncoderConfig, frames: &[Image]) -> Vec<Packet> {
    let mut enc: Encoder = cfg.build().unwrap();
    let mut out = Vec::new();
    let drain = |enc: &mut Encoder, out: &mut Vec<Packet>| loop {
        match enc.receive_packet() {
            Ok(p) => out.push(p),
            Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => break,
            Err(e) => panic!("{e}"),
        }
    };
    for f in frames {
        enc.send_frame(Some(f.clone())).unwrap();
        drain(&mut enc, &mut out);
    }
    enc.flush();
    drain(&mut enc, &mut out);
    assert_eq!(
        enc.receive_packet().unwrap_err(),
        EncoderStatus::LimitReached
    );
    out
}

/// Decodes every packet and checks state, show flag and picture against
/// the encoder's; returns the shown packets' pts.
pub fn check_decodes(packets: &[Packet], what: &str) -> Vec<u64> {
    let mut state = DecoderState::new();
    let mut shown = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let d = decode_picture(&state, &p.data).unwrap_or_else(|e| panic!("{what} {i}: {e}"));
        assert!(
            d.state == p.state,
            "{what} packet {i}: decoder state differs"
        );
        assert_eq!(d.shown.is_some(), p.show_frame, "{what} packet {i}");
        assert_eq!(
            d.shown.map(|s| s.to_frame()),
            p.reconstruction.as_ref().map(|r| r.to_frame()),
            "{what} packet {i}: picture differs"
        );
        if p.show_frame {
            shown.push(p.pts);
        }
        state = d.state;
    }
    shown
}

/// Writes `packets` as a `w`x`h` IVF file at their pts.
pub fn write_ivf(path: &Path, w: usize, h: usize, packets: &[Packet]) {
    let file = std::fs::File::create(path).unwrap();
    let mut ivf = IvfWriter::new(file, &IvfHeader::vp8(w as u16, h as u16, 1, 30)).unwrap();
    for p in packets {
        ivf.write_frame(p.pts, &p.data).unwrap();
    }
    ivf.finish().unwrap();
}

/// The MD5 of each shown packet's picture as I420 (what `vpxdec --md5
/// --i420` prints per frame).
pub fn shown_md5s(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| p.reconstruction.as_ref())
        .map(|r| format!("{:x}", Md5::digest(r.to_frame().to_i420())))
        .collect()
}

/// Whether vpxdec is on PATH; under `CI` its absence is a failure.
pub fn have_vpxdec() -> bool {
    if Command::new("vpxdec").arg("--help").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "vpxdec not on PATH under CI (apt-get install vpx-tools)"
    );
    eprintln!("skipping: vpxdec not on PATH (apt-get install vpx-tools)");
    false
}

/// Per-frame MD5s of `vpxdec --md5 --i420` on `ivf` (shown frames only),
/// or `None` when vpxdec is not installed.
pub fn vpxdec_md5s(ivf: &Path) -> Option<Vec<String>> {
    let out = Command::new("vpxdec")
        .args(["--codec=vp8", "--md5", "--i420", "-o", "f-%wx%h-%4.i420"])
        .arg(ivf)
        .current_dir(ivf.parent().unwrap())
        .output()
        .ok()?;
    assert!(out.status.success(), "vpxdec failed on {}", ivf.display());
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l[..32].to_owned())
            .collect(),
    )
}

/// The shared carphone clip's (176x144) first `n` frames; under `CI=true`
/// a missing clip fails the test, elsewhere it is skipped with a message.
pub fn carphone(n: usize) -> Option<Vec<Image>> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/clips/carphone_176x144_120f.y4m");
    let Ok(file) = std::fs::File::open(&path) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing (CI=true: fixtures are required)",
            path.display()
        );
        eprintln!("skipping: {} not found", path.display());
        return None;
    };
    let r = Y4mReader::new(std::io::BufReader::new(file)).unwrap();
    Some(r.take(n).map(Result::unwrap).collect())
}
