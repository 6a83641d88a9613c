//! The ExCamera[N,x] pipeline: decodable output, independent of the worker
//! count, equal to the serial encoder for one chunk, loud on failure.

use std::process::Command;

use excam_codec::encode::encoder::{EncoderConfig, RateControl};
use excam_codec::{decode, DecoderState, Image};
use excam_coordinator::pipeline::{
    run_pipeline, verify_chain, Chunk, LocalExchange, Phase, PipelineConfig, PipelineStats,
    StateExchange,
};

fn clip(w: usize, h: usize, n: usize) -> Vec<Image> {
    (0..n)
        .map(|t| {
            let mut bytes = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    let v = (x * 5 + t * 3) as f64 / 7.0;
                    let u = (y * 3 + t) as f64 / 5.0;
                    bytes
                        .push((128.0 + 60.0 * v.sin() * u.cos() + ((x * y + t) % 13) as f64) as u8);
                }
            }
            let c = w.div_ceil(2) * h.div_ceil(2);
            bytes.extend((0..c).map(|i| (110 + (i + t) % 30) as u8));
            bytes.extend((0..c).map(|i| (140 - (i * 3 + t) % 25) as u8));
            Image::from_i420(w, h, &bytes).unwrap()
        })
        .collect()
}

fn encoder_config(f: &Image, speed: u8) -> EncoderConfig {
    let mut c = EncoderConfig::new(f.width, f.height);
    c.rate = RateControl::Quantizer(25);
    c.speed = speed;
    c
}

fn run(frames: &[Image], n: usize, x: usize, workers: usize) -> Vec<Chunk> {
    let cfg = PipelineConfig {
        chunk_frames: n,
        group_chunks: x,
        workers,
        encoder: encoder_config(&frames[0], 6),
    };
    let mut stats = PipelineStats::default();
    run_pipeline(
        frames,
        &cfg,
        &LocalExchange::default(),
        &|_, _, _| {},
        None,
        &mut stats,
    )
    .unwrap()
}

fn all_frames(chunks: &[Chunk]) -> Vec<Vec<u8>> {
    chunks.iter().flat_map(|c| c.frames.clone()).collect()
}

#[test]
fn output_decodes_and_is_independent_of_worker_count() {
    let frames = clip(48, 32, 20);
    for (n, x) in [(6, 16), (4, 2), (3, 1)] {
        let one = run(&frames, n, x, 1);
        verify_chain(&one).unwrap();
        assert_eq!(all_frames(&one).len(), frames.len());
        for workers in [2, 5] {
            let other = run(&frames, n, x, workers);
            assert_eq!(
                all_frames(&one),
                all_frames(&other),
                "[{n},{x}] with {workers} workers"
            );
        }
        // Key frames exactly at group heads.
        let keys: Vec<usize> = all_frames(&one)
            .iter()
            .enumerate()
            .filter(|(_, f)| f[0] & 1 == 0)
            .map(|(i, _)| i)
            .collect();
        let want: Vec<usize> = (0..frames.len()).step_by(n * x).collect();
        assert_eq!(keys, want, "[{n},{x}]");
    }
}

#[test]
fn one_chunk_is_the_serial_encoder() {
    let frames = clip(40, 24, 9);
    let chunks = run(&frames, 100, 16, 2);
    let mut enc = encoder_config(&frames[0], 6).build().unwrap();
    let mut serial = Vec::new();
    for f in &frames {
        enc.send_frame(Some(f.clone())).unwrap();
        serial.push(enc.receive_packet().unwrap().data);
    }
    assert_eq!(all_frames(&chunks), serial);
}

#[test]
fn chunk_against_wrong_state_is_refused() {
    let frames = clip(48, 32, 12);
    let mut chunks = run(&frames, 4, 16, 2);
    verify_chain(&chunks).unwrap();
    chunks.swap(1, 2);
    let err = verify_chain(&chunks).unwrap_err().to_string();
    assert!(err.contains("chunk"), "{err}");
}

/// Hands out chunk 1's phase-1 state where its true final state belongs:
/// a valid state, but not the one chunk 2 must be rebased onto.
struct PlantingExchange(LocalExchange);

impl StateExchange for PlantingExchange {
    fn put(&self, mailbox: &str, bytes: Vec<u8>) -> Result<(), String> {
        if mailbox == "state/1/final" {
            let planted = self.0.get("state/1/phase1")?;
            return self.0.put(mailbox, planted);
        }
        self.0.put(mailbox, bytes)
    }
    fn get(&self, mailbox: &str) -> Result<Vec<u8>, String> {
        self.0.get(mailbox)
    }
    fn cancel(&self) {
        self.0.cancel()
    }
}

#[test]
fn a_planted_state_fails_the_job_with_a_chain_error() {
    let frames = clip(48, 32, 12);
    let cfg = PipelineConfig {
        chunk_frames: 4,
        group_chunks: 16,
        workers: 2,
        encoder: encoder_config(&frames[0], 8),
    };
    let mut stats = PipelineStats::default();
    let planted = PlantingExchange(LocalExchange::default());
    let err = run_pipeline(&frames, &cfg, &planted, &|_, _, _| {}, None, &mut stats)
        .expect_err("a chunk rebased onto the wrong state must not pass")
        .to_string();
    assert!(
        err.contains("chain error") && err.contains("chunk 2"),
        "{err}"
    );
    // The honest exchange gives a chain that decodes.
    let chunks = run_pipeline(
        &frames,
        &cfg,
        &LocalExchange::default(),
        &|_, _, _| {},
        None,
        &mut stats,
    )
    .unwrap();
    verify_chain(&chunks).unwrap();
}

#[test]
fn injected_worker_failure_names_the_chunk() {
    let frames = clip(48, 32, 16);
    let cfg = PipelineConfig {
        chunk_frames: 4,
        group_chunks: 16,
        workers: 2,
        encoder: encoder_config(&frames[0], 8),
    };
    let fault = |chunk: usize, phase: Phase| {
        if chunk == 2 && phase == Phase::EncodeGivenState {
            Err("injected crash".to_string())
        } else {
            Ok(())
        }
    };
    let mut stats = PipelineStats::default();
    let err = run_pipeline(
        &frames,
        &cfg,
        &LocalExchange::default(),
        &|_, _, _| {},
        Some(&fault),
        &mut stats,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("chunk 2") && err.contains("injected crash"),
        "{err}"
    );
}

#[test]
fn vpxdec_decodes_pipeline_output_like_we_do() {
    if Command::new("vpxdec").arg("--help").output().is_err() {
        eprintln!("skipping: vpxdec not installed");
        return;
    }
    let frames = clip(50, 38, 14);
    let chunks = run(&frames, 4, 2, 2);
    let dir = std::env::temp_dir().join(format!("excam-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ivf = dir.join("p.ivf");
    let mut w = excam_codec::container::ivf::IvfWriter::new(
        std::fs::File::create(&ivf).unwrap(),
        &excam_codec::container::ivf::IvfHeader::vp8(50, 38, 1, 30),
    )
    .unwrap();
    let mut ours = Vec::new();
    let mut state = DecoderState::default();
    for (i, f) in all_frames(&chunks).iter().enumerate() {
        w.write_frame(i as u64, f).unwrap();
        let (s, img) = decode(&state, f).unwrap();
        state = s;
        img.unwrap().write_i420(&mut ours);
    }
    w.finish().unwrap();
    let yuv = dir.join("v.yuv");
    let st = Command::new("vpxdec")
        .args(["--codec=vp8", "--i420", "-o"])
        .arg(&yuv)
        .arg(&ivf)
        .status()
        .unwrap();
    assert!(st.success());
    let theirs = std::fs::read(&yuv).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(theirs == ours, "vpxdec output differs from excam's decode");
}
