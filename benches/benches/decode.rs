//! Criterion benches of the decoder: a whole stream, and the kernels the
//! profile shows hot (IDCT, six-tap 16x16, loop filter, bool decoder),
//! the loop filters as SIMD against their scalar twins, and the stream
//! on one and two threads.
//!
//! `cargo bench -p excam-benches --bench decode`. The stream bench uses
//! box 640x480 from `target/bench-data/` when `benches/decode-vs-vpxdec.sh`
//! has made it, and a committed generated stream otherwise.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use excam_codec::bool_decoder::BoolDecoder;
use excam_codec::container::ivf::IvfReader;
use excam_codec::loop_filter::{
    edge_limits, filter_mb_normal, filter_mb_normal_scalar, filter_mb_normal_uv, filter_mb_simple,
    filter_mb_simple_scalar,
};
use excam_codec::{decode_picture_threaded, idct, inter_pred, DecoderState};

/// Small deterministic noise.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8
        })
        .collect()
}

fn stream() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    let boxed = target.join("bench-data/box_640x480_120f_q30.ivf");
    if boxed.is_file() {
        boxed
    } else {
        repo.join("test-vectors/excam-vbr-400.ivf")
    }
}

fn bench_stream(c: &mut Criterion) {
    let path = stream();
    let bytes = std::fs::read(&path).unwrap();
    let frames: Vec<Vec<u8>> = IvfReader::new(&bytes[..])
        .unwrap()
        .map(|f| f.unwrap().data)
        .collect();
    let mut g = c.benchmark_group("stream");
    g.sample_size(10);
    g.throughput(Throughput::Elements(frames.len() as u64));
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    for threads in [1, 2] {
        g.bench_function(format!("decode_picture/{name}/threads{threads}"), |b| {
            b.iter(|| {
                let mut state = DecoderState::new();
                for f in &frames {
                    state = decode_picture_threaded(&state, f, threads).unwrap().state;
                }
                state
            })
        });
    }
    g.finish();
}

fn bench_kernels(c: &mut Criterion) {
    let stride = 64;
    let mut plane = noise(stride * 64, 7);

    let coeffs: [i16; 16] = core::array::from_fn(|i| (i as i16 * 37 % 200) - 100);
    c.bench_function("idct4x4_add", |b| {
        b.iter(|| idct::idct4x4_add(black_box(&coeffs), &mut plane, 8 * stride + 8, stride))
    });
    c.bench_function("idct_dc_add", |b| {
        b.iter(|| idct::idct_dc_add(black_box(-37), &mut plane, 8 * stride + 8, stride))
    });
    // A DC-only row of four luma blocks: one SIMD pass against four
    // single-block adds (what the decoder did before).
    let dcs: [i16; 4] = [-37, 12, 250, -4];
    let mut g = c.benchmark_group("idct_dc_add_row4");
    g.bench_function("simd", |b| {
        b.iter(|| idct::idct_dc_add_row(black_box(&dcs), &mut plane, 8 * stride + 8, stride))
    });
    g.bench_function("per_block", |b| {
        b.iter(|| {
            for (i, &dc) in black_box(&dcs).iter().enumerate() {
                idct::idct_dc_add(dc, &mut plane, 8 * stride + 8 + 4 * i, stride);
            }
        })
    });
    g.bench_function("scalar", |b| {
        b.iter(|| {
            for (i, &dc) in black_box(&dcs).iter().enumerate() {
                idct::idct_dc_add_scalar(dc, &mut plane, 8 * stride + 8 + 4 * i, stride);
            }
        })
    });
    g.finish();

    let src = noise(stride * 64, 11);
    let mut dst = vec![0u8; 16 * 16];
    c.bench_function("sixtap_16x16_2d", |b| {
        b.iter(|| {
            inter_pred::sixtap(
                black_box(&src),
                8 * stride + 8,
                stride,
                black_box(3),
                black_box(5),
                16,
                16,
                &mut dst,
                0,
                16,
            )
        })
    });

    // A smooth area, so the masks pass and the filters really run.
    let smooth: Vec<u8> = noise(stride * 64, 3).iter().map(|v| 100 + v % 6).collect();
    let lim = edge_limits(32, 0, false, false);
    let mut work = smooth.clone();
    let pos = 16 * stride + 16;
    let mut g = c.benchmark_group("loop_filter");
    g.bench_function("mb_normal_luma/simd", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            filter_mb_normal(&mut work, pos, stride, 16, &lim, true, true, true)
        })
    });
    g.bench_function("mb_normal_luma/scalar", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            filter_mb_normal_scalar(&mut work, pos, stride, 16, &lim, true, true, true)
        })
    });
    let chroma_pos = 8 * stride + 8;
    let mut work_v = smooth.clone();
    g.bench_function("mb_normal_uv/simd", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            work_v.copy_from_slice(&smooth);
            filter_mb_normal_uv(
                &mut work,
                &mut work_v,
                chroma_pos,
                stride,
                &lim,
                true,
                true,
                true,
            )
        })
    });
    g.bench_function("mb_normal_uv/scalar", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            work_v.copy_from_slice(&smooth);
            for p in [&mut work, &mut work_v] {
                filter_mb_normal_scalar(p, chroma_pos, stride, 8, &lim, true, true, true)
            }
        })
    });
    let simple = edge_limits(32, 0, false, true);
    g.bench_function("mb_simple_luma/simd", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            filter_mb_simple(&mut work, pos, stride, &simple, true, true, true)
        })
    });
    g.bench_function("mb_simple_luma/scalar", |b| {
        b.iter(|| {
            work.copy_from_slice(&smooth);
            filter_mb_simple_scalar(&mut work, pos, stride, &simple, true, true, true)
        })
    });
    g.finish();

    let data = noise(1 << 16, 5);
    let mut g = c.benchmark_group("bool_decoder");
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("read_bool_100k", |b| {
        b.iter(|| {
            let mut d = BoolDecoder::new(black_box(&data));
            let mut ones = 0u32;
            for i in 0..100_000u32 {
                ones += d.read_bool((i.wrapping_mul(97) >> 3) as u8 | 1) as u32;
            }
            ones
        })
    });
    g.finish();
}

criterion_group!(benches, bench_stream, bench_kernels);
criterion_main!(benches);
