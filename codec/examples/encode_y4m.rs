//! The streaming encoder end to end, with nothing but the codec crate:
//! `cargo run --release -p excam-codec --example encode_y4m -- IN.y4m OUT.ivf [Q [THREADS]]`.
//!
//! Reads an 8-bit 4:2:0 Y4M clip, encodes it at quantizer Q (vpxenc's
//! 0..63 scale, default 30) with [`Encoder`] (send a frame, receive its
//! packet), writes IVF, then decodes the file it wrote with [`decode`] and
//! checks every shown picture equals the encoder's reconstruction, and
//! prints the rate and vpxenc-style PSNR. CI runs it on the carphone clip
//! and compares `vpxdec --md5` of the output with `excam decode --md5`.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

use excam_codec::container::ivf::{IvfHeader, IvfReader, IvfWriter};
use excam_codec::container::y4m::Y4mReader;
use excam_codec::encode::encoder::{EncoderConfig, RateControl};
use excam_codec::metrics::PsnrStats;
use excam_codec::{decode, DecoderState, Image};

fn run(
    input: &str,
    output: &str,
    q: u8,
    threads: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut y4m = Y4mReader::new(BufReader::new(File::open(input)?))?;
    let h = *y4m.header();
    let mut cfg = EncoderConfig::new(h.width, h.height);
    cfg.framerate = (h.framerate.0 as u32, h.framerate.1 as u32);
    cfg.rate = RateControl::Quantizer(q);
    cfg.threads = threads;
    let mut encoder = cfg.build()?;

    // IVF's timebase is one tick per frame: 1/fps seconds.
    let ivf_header = IvfHeader::vp8(
        h.width as u16,
        h.height as u16,
        cfg.framerate.1,
        cfg.framerate.0,
    );
    let mut ivf = IvfWriter::new(BufWriter::new(File::create(output)?), &ivf_header)?;
    let mut sources: Vec<Image> = Vec::new();
    let mut reconstructions = Vec::new();
    let mut bytes = 0usize;
    while let Some(frame) = y4m.next_frame()? {
        encoder.send_frame(Some(frame.clone()))?;
        let packet = encoder.receive_packet()?;
        ivf.write_frame(packet.pts, &packet.data)?;
        bytes += packet.data.len();
        reconstructions.extend(packet.reconstruction.map(|p| p.to_frame()));
        sources.push(frame);
    }
    ivf.finish()?;

    // Decode what was written: it must be what the encoder reconstructed.
    let written = std::fs::read(output)?;
    let mut state = DecoderState::default();
    let mut psnr = PsnrStats::new();
    let mut shown = 0;
    for frame in IvfReader::new(&written[..])? {
        let (next, picture) = decode(&state, &frame?.data)?;
        if let Some(p) = picture {
            if p != reconstructions[shown] {
                return Err(format!(
                    "frame {shown} decodes differently from the encoder's reconstruction"
                )
                .into());
            }
            psnr.add(&sources[shown], &p);
            shown += 1;
        }
        state = next;
    }
    let seconds = sources.len() as f64 * cfg.framerate.1 as f64 / cfg.framerate.0 as f64;
    Ok(format!(
        "{} frames {}x{} at q {q}: {:.1} kbit/s, PSNR {:.3} dB; the decoder agrees with the encoder",
        shown,
        h.width,
        h.height,
        bytes as f64 * 8.0 / seconds / 1000.0,
        psnr.overall()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match &args[..] {
        [i, o] | [i, o, _] | [i, o, _, _] => (i, o),
        _ => {
            eprintln!("usage: encode_y4m IN.y4m OUT.ivf [QUANTIZER 0..63 [THREADS]]");
            return ExitCode::from(2);
        }
    };
    let q = match args.get(2).map(|q| q.parse::<u8>()) {
        None => 30,
        Some(Ok(q)) if q <= 63 => q,
        _ => {
            eprintln!("encode_y4m: the quantizer is 0..63");
            return ExitCode::from(2);
        }
    };
    // Threads per frame (EncoderConfig::threads); the bytes are the same
    // for any count.
    let threads = match args.get(3).map(|t| t.parse::<usize>()) {
        None => 1,
        Some(Ok(t)) => t,
        _ => {
            eprintln!("encode_y4m: THREADS is a number");
            return ExitCode::from(2);
        }
    };
    match run(input, output, q, threads) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("encode_y4m: {e}");
            ExitCode::FAILURE
        }
    }
}
