//! Decodes an IVF stream with the codec alone, for profiling the decoder
//! without the CLI: `cargo run --release -p excam-codec --example decode_ivf
//! -- IN.ivf [--md5] [OUT.yuv]`. With `--md5` prints the MD5 of all shown
//! pictures as I420 (what `vpxdec --i420 --md5` prints); with OUT writes
//! them there. Without either it only decodes, so that a profile shows
//! the decoder alone. `--time N` decodes the stream N times in-process
//! and prints the fastest and the median pass in milliseconds of CPU time
//! (Linux `/proc/thread-self/schedstat`, so that waiting for a core on a
//! loaded machine does not count), finer than timing whole processes,
//! and the median wall time. `--threads N` decodes each frame on N
//! threads (`Decoder::with_threads`, whose helper threads live as long
//! as the decoder); the CPU time then counts only the calling thread, so
//! compare wall times.

use std::io::Write;

use excam_codec::container::ivf::IvfReader;
use excam_codec::Decoder;
use md5::{Digest, Md5};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let want_md5 = args.iter().any(|a| a == "--md5");
    args.retain(|a| a != "--md5");
    let mut threads = 1;
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        threads = args[i + 1].parse().expect("--threads N");
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "--time") {
        let n: usize = args[i + 1].parse().expect("--time N");
        let bytes = std::fs::read(&args[0]).expect("read input");
        let frames: Vec<Vec<u8>> = IvfReader::new(&bytes[..])
            .expect("IVF header")
            .map(|f| f.expect("IVF frame").data)
            .collect();
        let (mut times, mut walls): (Vec<f64>, Vec<f64>) = (0..n)
            .map(|_| {
                let (t, w) = (cpu_ns(), std::time::Instant::now());
                let mut decoder = Decoder::with_threads(threads);
                for f in &frames {
                    decoder.decode(f).expect("decode");
                }
                drop(decoder);
                ((cpu_ns() - t) as f64 / 1e6, w.elapsed().as_secs_f64() * 1e3)
            })
            .unzip();
        times.sort_by(f64::total_cmp);
        walls.sort_by(f64::total_cmp);
        println!(
            "min {:.1} ms  median {:.1} ms  (wall median {:.1} ms)",
            times[0],
            times[n / 2],
            walls[n / 2]
        );
        return;
    }
    let Some(input) = args.first() else {
        eprintln!("usage: decode_ivf IN.ivf [--md5] [OUT.yuv]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(input).expect("read input");
    let mut out = args
        .get(1)
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("create output")));
    let mut md5 = Md5::new();
    let mut decoder = Decoder::with_threads(threads);
    for frame in IvfReader::new(&bytes[..]).expect("IVF header") {
        let frame = frame.expect("IVF frame");
        let (shown, _) = decoder.decode(&frame.data).expect("decode");
        if let Some(pic) = &shown {
            for plane in 0..3 {
                for row in pic.visible_rows(plane) {
                    if want_md5 {
                        md5.update(row);
                    }
                    if let Some(o) = out.as_mut() {
                        o.write_all(row).expect("write output");
                    }
                }
            }
        }
    }
    if want_md5 {
        println!("{:x}", md5.finalize());
    }
}

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    s.split_whitespace().next().unwrap().parse().unwrap()
}
