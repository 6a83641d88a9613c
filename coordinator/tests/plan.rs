//! The planner: the simulation against a hand-computed schedule, its
//! determinism and monotonic properties, the cost guard, calibration files,
//! and the `excam plan` / `excam calibrate` commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use excam_coordinator::plan::sim::{simulate, SimParams};
use excam_coordinator::plan::{
    check_max_cost, plan_job, plan_job_with, Calibration, CloudParams, JobShape, PlanOptions,
};

fn excam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_excam"))
        .args(args)
        .output()
        .expect("run excam")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two chunks of two frames, one group, no randomness.
fn tiny() -> SimParams {
    SimParams {
        frames: 4,
        chunk_frames: 2,
        group_chunks: 2,
        concurrency: 2,
        scale_step: 1000.0,
        scale_period: 10.0,
        invoke_rate: 10.0,
        position_major: false,
        speed: 2.0,
        cores: 0.0,
        cold_median: 0.5,
        cold_sigma: 0.0,
        task_cpu: 0.0,
        phase_cpu: 0.0,
        finish: 0.0,
        frame_work: [0.3, 0.4, 0.1],
        ser_work: 0.02,
        deser_work: 0.01,
        relay_latency: 0.05,
        state_bytes: 1e6,
        relay_bw: 1e7,
        use_relay: true,
        relay_capacity: f64::INFINITY,
        relay_memory: f64::INFINITY,
        relay_slots: 100,
        store_poll: 0.5,
        s3_latency: 0.1,
        s3_bw: 1e6,
        in_frame_bytes: 1e5,
        out_frame_bytes: 5e4,
        upload_s: 0.0,
        coord_bw: 1e6,
        assembly_parallelism: 1,
        write_bw: 1e6,
        output_in_s3: false,
        s3_min_part: 5.0 * 1048576.0,
        straggler_prob: 0.0,
        straggler_alpha: 1.5,
        straggler_max: 10.0,
        failure_prob: 0.0,
        retry_delay: 0.5,
        speculation: false,
        speculation_factor: 2.0,
        speculation_min_finished: 1,
        speculation_floor: 0.0,
        chain_tail_twins: false,
        speculation_tail_floor: 0.0,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn tiny_job_matches_the_hand_computed_schedule() {
    let r = simulate(&tiny(), 7);
    // Chunk 0 (head): start-up 0.5, fetch 0.1 + 2e5/1e6 = 0.3 -> 0.8,
    // phase 1 2 x 0.3 / 2 = 0.3 -> 1.1, serialize 0.01 -> 1.11 (its
    // phase-1 state arrives 1.11 + 0.05 + 0.1 = 1.26), serialize its final
    // state 0.01 -> 1.12 (arrives 1.27), write 0.1 + 0.1 -> 1.32.
    // Chunk 1, invoked at 1/10 s: 0.6, 0.9, phase 1 -> 1.2, waits for the
    // state until 1.26, deserialize 0.005, phase 2 (0.4 + 0.1) / 2 -> 1.515,
    // final state already there: deserialize -> 1.52, phase 3 -> 1.77,
    // write -> 1.97. Assembly: chunk 0 fetched when done (1.32 + 0.1 +
    // 1e5 B / 1e6 B/s -> 1.52) and written (1e5 B / 1e6 B/s -> 1.62),
    // chunk 1 fetched -> 2.17 and written -> 2.27: 0.3 after the last
    // chunk.
    assert!(close(r.wall_s, 2.27), "{r:?}");
    assert!(close(r.phase_end_s[0], 1.2), "{:?}", r.phase_end_s);
    assert!(close(r.phase_end_s[1], 1.515), "{:?}", r.phase_end_s);
    assert!(close(r.phase_end_s[2], 1.77), "{:?}", r.phase_end_s);
    assert!(close(r.phase_end_s[3], 1.97), "{:?}", r.phase_end_s);
    // Critical path: chunk 0 up to its phase-1 state, the hop, chunk 1.
    let expect = [
        0.0,
        0.0,
        0.5,
        0.3,
        0.3,
        0.25,
        0.25,
        0.01 + 0.15 + 0.005 + 0.005,
        0.0,
        0.2,
        0.3,
    ];
    for (k, (&got, want)) in r.breakdown.iter().zip(expect).enumerate() {
        assert!(close(got, want), "category {k}: {got} != {want}: {r:?}");
    }
    assert!(close(r.breakdown.iter().sum::<f64>(), r.wall_s));
    let chain: Vec<Option<usize>> = r.critical_path.iter().map(|s| s.chunk).collect();
    assert_eq!(chain.first(), Some(&Some(0)));
    assert!(close(r.worker_seconds, 1.32 + 1.87), "{}", r.worker_seconds);
    assert!(close(r.relay_bytes, 2e6));
    // Both states are held between 1.12 and 1.26.
    assert!(close(r.peak_relay_bytes, 2e6));
    // PUTs: 2 chunks and 2 states (the store always gets them); GETs: 2
    // fetches and 2 chunks (the states came by the relay).
    assert_eq!((r.attempts, r.s3_gets, r.s3_puts), (2, 4, 4));
    assert_eq!(r.store_hops, 0);
}

/// `-o s3://`: parts close at the minimum size and are merged and copied
/// as soon as their chunks are done; the upload completes one request after
/// the last part.
#[test]
fn output_in_s3_is_merged_and_copied_by_parts() {
    let mut p = tiny();
    p.output_in_s3 = true;
    // Chunk 0 (1e5 B of frames, 24 B of frame headers, the 32-byte file
    // header) fills a part of 1e5 B: merged from 1.32 (start-up 0.5, a GET
    // and a PUT and the copy, 0.1 latency and 1.00056e5 B / 1e6 B/s each)
    // -> 2.42; chunk 1's part (1.00024e5 B) from 1.97 -> 3.07; complete
    // -> 3.17.
    p.s3_min_part = 1e5;
    let r = simulate(&p, 7);
    assert!(close(r.phase_end_s[3], 1.97), "{:?}", r.phase_end_s);
    assert!(close(r.wall_s, 1.97 + 0.5 + 0.3 + 0.300072 + 0.1), "{r:?}");
    // One part for the whole output: it starts only after the last chunk.
    p.s3_min_part = 5.0 * 1048576.0;
    let one = simulate(&p, 7);
    assert!(
        close(one.wall_s, 1.97 + 0.5 + 0.4 + 3.0 * 2.00080e5 / 1e6 + 0.1),
        "{one:?}"
    );
}

#[test]
fn shared_cores_slow_workers_down() {
    // One core for two workers: both phase-1s (0.3 s each alone) overlap.
    let mut p = tiny();
    p.cores = 1.0;
    let shared = simulate(&p, 1);
    let own = simulate(&tiny(), 1);
    assert!(
        shared.wall_s > own.wall_s + 0.2,
        "{} vs {}",
        shared.wall_s,
        own.wall_s
    );
    assert!(close(shared.breakdown.iter().sum::<f64>(), shared.wall_s));
}

fn job(frames: usize, workers: usize) -> JobShape {
    JobShape {
        width: 1280,
        height: 720,
        frames,
        chunk_frames: 6,
        group_chunks: 16,
        workers,
    }
}

#[test]
fn same_seed_same_plan_and_seeds_matter() {
    let (cal, cloud) = (Calibration::default(), CloudParams::default());
    let o = PlanOptions { seed: 3, runs: 3 };
    let a = plan_job_with(&job(1200, 200), &cal, &cloud, &o).unwrap();
    let b = plan_job_with(&job(1200, 200), &cal, &cloud, &o).unwrap();
    assert_eq!(a, b);
    let c = plan_job_with(
        &job(1200, 200),
        &cal,
        &cloud,
        &PlanOptions { seed: 4, runs: 3 },
    )
    .unwrap();
    assert_ne!(a.wall_s, c.wall_s, "cold starts are random");
    assert!(close(
        a.phases.entries().iter().map(|e| e.1).sum::<f64>(),
        a.wall_s
    ));
}

#[test]
fn more_frames_never_take_less_time() {
    let (cal, cloud) = (Calibration::default(), CloudParams::default());
    let o = PlanOptions { seed: 1, runs: 4 };
    let mut last = 0.0;
    for frames in [60, 240, 600, 1200, 2400] {
        let p = plan_job_with(&job(frames, 50), &cal, &cloud, &o).unwrap();
        assert!(p.wall_s >= last, "{frames} frames: {} < {last}", p.wall_s);
        last = p.wall_s;
    }
}

#[test]
fn a_slower_hop_never_makes_the_chain_faster() {
    let cal = Calibration::default();
    let o = PlanOptions { seed: 1, runs: 3 };
    let mut last = 0.0;
    for latency in [0.0, 0.01, 0.1, 0.5, 2.0] {
        let mut cloud = CloudParams::default();
        cloud.set("relay_latency_s", latency).unwrap();
        // States go by the relay and the store, whichever arrives first:
        // a slow store keeps the relay's hops on the path.
        cloud.set("state_channel", 1.0).unwrap();
        cloud.set("store_poll_s", 10.0).unwrap();
        let p = plan_job_with(&job(960, 160), &cal, &cloud, &o).unwrap();
        assert!(p.wall_s >= last, "latency {latency}: {} < {last}", p.wall_s);
        last = p.wall_s;
    }
    // Fifteen hops per group: two seconds each must show.
    assert!(last > 30.0, "{last}");
}

#[test]
fn twins_never_hurt_with_a_heavy_tail() {
    let cal = Calibration::default();
    let o = PlanOptions { seed: 11, runs: 8 };
    let mut cloud = CloudParams::default();
    for kv in [
        "straggler_prob=0.1",
        "straggler_alpha=1.1",
        "failure_prob=0",
    ] {
        cloud.set_str(kv).unwrap();
    }
    let shape = job(1920, 320);
    cloud.set("speculation", 1.0).unwrap();
    let with = plan_job_with(&shape, &cal, &cloud, &o).unwrap();
    cloud.set("speculation", 0.0).unwrap();
    let without = plan_job_with(&shape, &cal, &cloud, &o).unwrap();
    assert!(with.twins > 0.0);
    assert!(
        with.wall_s <= without.wall_s,
        "with twins {} > without {}",
        with.wall_s,
        without.wall_s
    );
}

#[test]
fn failures_cause_retries_and_cost_more() {
    let cal = Calibration::default();
    let o = PlanOptions { seed: 2, runs: 3 };
    let mut cloud = CloudParams::default();
    cloud.set("failure_prob", 0.0).unwrap();
    let ok = plan_job_with(&job(1200, 200), &cal, &cloud, &o).unwrap();
    cloud.set("failure_prob", 0.2).unwrap();
    let bad = plan_job_with(&job(1200, 200), &cal, &cloud, &o).unwrap();
    assert!(bad.retries > 10.0 && ok.retries == 0.0);
    assert!(bad.lambda_requests > ok.lambda_requests);
    assert!(bad.wall_s >= ok.wall_s);
}

#[test]
fn max_cost_refuses_above_and_allows_below() {
    let plan = plan_job(
        &job(1200, 200),
        &Calibration::default(),
        &CloudParams::default(),
    )
    .unwrap();
    assert!(plan.cost_usd > 0.0);
    assert!(check_max_cost(&plan, plan.cost_usd * 1.01).is_ok());
    let e = check_max_cost(&plan, plan.cost_usd * 0.5).unwrap_err();
    assert!(e.contains("exceeds --max-cost"), "{e}");
    assert!(check_max_cost(&plan, f64::NAN).is_err());
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn cli_plan_json_and_max_cost() {
    let base = [
        "plan", "--width", "640", "--height", "480", "--frames", "240", "--json",
    ];
    let v = json(&excam(&base));
    let wall = v["wall_s"].as_f64().unwrap();
    let cost = v["cost_usd"].as_f64().unwrap();
    assert!(wall > 0.0 && cost > 0.0, "{v}");
    assert!(v["phases"]["rebase"].as_f64().unwrap() > 0.0, "{v}");
    let below = format!("{}", cost * 0.5);
    let out = excam(&[&base[..], &["--max-cost", &below]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeds --max-cost"), "{err}");
    let above = format!("{}", cost * 2.0);
    assert!(excam(&[&base[..], &["--max-cost", &above]].concat())
        .status
        .success());
    // --set overrides and a bad key names itself.
    let slow = json(&excam(
        &[&base[..], &["--set", "lambda_vcpu_speed=0.25"]].concat(),
    ));
    assert!(slow["wall_s"].as_f64().unwrap() > wall);
    let out = excam(&[&base[..], &["--set", "nope=1"]].concat());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn cli_plan_reads_a_y4m_header() {
    let dir = scratch("plan_y4m");
    let path = dir.join("clip.y4m");
    let mut bytes = b"YUV4MPEG2 W16 H8 F30:1 C420jpeg\n".to_vec();
    for _ in 0..7 {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend(std::iter::repeat_n(128u8, 16 * 8 * 3 / 2));
    }
    std::fs::write(&path, bytes).unwrap();
    let v = json(&excam(&[
        "plan",
        path.to_str().unwrap(),
        "--chunk-frames",
        "2",
        "--json",
    ]));
    assert_eq!(v["shape"]["frames"], 7);
    assert_eq!(v["shape"]["width"], 16);
    assert_eq!(v["chunks"], 4);
}

#[test]
fn cli_calibrate_round_trips_and_bad_files_are_named() {
    let dir = scratch("plan_calibrate");
    let cal = dir.join("cal.json");
    let out = excam(&["calibrate", "--quick", "--out", cal.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&cal).unwrap();
    let parsed = Calibration::from_json(&text).unwrap();
    assert_eq!(Calibration::from_json(&parsed.to_json()).unwrap(), parsed);
    let args = [
        "plan", "--width", "320", "--height", "240", "--frames", "60", "--json",
    ];
    json(&excam(
        &[&args[..], &["--calibration", cal.to_str().unwrap()]].concat(),
    ));

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["encode_s_per_mpx"] = serde_json::json!("fast");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let out = excam(&[&args[..], &["--calibration", bad.to_str().unwrap()]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("encode_s_per_mpx") && err.contains("bad.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn cli_sweep_writes_a_plot_with_a_frontier() {
    let dir = scratch("plan_sweep");
    let svg = dir.join("sweep.svg");
    let out = excam(&[
        "plan",
        "--width",
        "320",
        "--height",
        "240",
        "--frames",
        "96",
        "--sweep",
        "--runs",
        "1",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let v = json(&out);
    let pts = v.as_array().unwrap();
    assert!(pts.len() > 20);
    assert!(pts.iter().any(|p| p["frontier"] == true));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("frontier"));
}

/// `excam encode --dry-run` prints the plan and writes nothing; `--max-cost`
/// refuses a lambda job before any AWS call (no credentials, no endpoint
/// reachable: an AWS call would fail with another message) and lets a cheap
/// one through to the point of needing a bucket.
#[test]
fn encode_dry_run_and_max_cost_need_no_aws() {
    let dir = scratch("encode_dry_run");
    let path = dir.join("clip.y4m");
    let mut bytes = b"YUV4MPEG2 W64 H48 F30:1 C420jpeg\n".to_vec();
    for i in 0..24u8 {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend(std::iter::repeat_n(i.wrapping_mul(9), 64 * 48 * 3 / 2));
    }
    std::fs::write(&path, bytes).unwrap();
    let out_path = dir.join("out.ivf");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_excam"))
            .args([
                "encode",
                path.to_str().unwrap(),
                "-o",
                out_path.to_str().unwrap(),
            ])
            .args(["--backend", "lambda", "--bucket", "no-such-bucket"])
            .args(extra)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
            .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run excam")
    };
    let dry = run(&["--dry-run", "--chunk-frames", "6"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("4 chunks") || text.contains("chunks"),
        "{text}"
    );
    assert!(!out_path.exists(), "a dry run wrote output");

    let refused = run(&["--max-cost", "0"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("exceeds --max-cost"), "{err}");
    assert!(!out_path.exists());
}

/// A long chain of one group, many workers: the hops are what matter.
fn relay_heavy() -> SimParams {
    SimParams {
        frames: 400,
        chunk_frames: 2,
        group_chunks: 200,
        concurrency: 200,
        relay_slots: 1000,
        state_bytes: 1e7,
        relay_bw: 1e8,
        s3_bw: 5e7,
        ..tiny()
    }
}

#[test]
fn a_relay_of_finite_capacity_queues_and_the_store_takes_over() {
    let wide = simulate(&relay_heavy(), 3);
    assert_eq!(wide.store_hops, 0);
    assert!(wide.relay_saturated_s == 0.0, "{}", wide.relay_saturated_s);
    // Phase-1 states of 199 chunks leave at about the same time: a relay
    // of one connection's throughput queues them.
    let narrow = simulate(
        &SimParams {
            relay_capacity: 1e8,
            ..relay_heavy()
        },
        3,
    );
    assert!(
        narrow.relay_saturated_s > 1.0,
        "{}",
        narrow.relay_saturated_s
    );
    assert!(
        narrow.relay_utilisation > 0.2 && narrow.relay_utilisation <= 1.0 + 1e-9,
        "{}",
        narrow.relay_utilisation
    );
    // Queued hops lose to the store (0.2 + 0.2 + 0.5 s poll) for some.
    assert!(narrow.store_hops > 0, "{narrow:?}");
    assert!(
        narrow.wall_s >= wide.wall_s,
        "{} < {}",
        narrow.wall_s,
        wide.wall_s
    );
    // A relay with no room for a state: every hop by the store.
    let full = simulate(
        &SimParams {
            relay_memory: 5e6,
            ..relay_heavy()
        },
        3,
    );
    assert_eq!(full.relay_bytes, 0.0);
    assert_eq!(full.store_hops, 2 * 199);
    // No connection slots: likewise.
    let no_slots = simulate(
        &SimParams {
            relay_slots: 0,
            ..relay_heavy()
        },
        3,
    );
    assert_eq!(no_slots.store_hops, 2 * 199);
    assert!(no_slots.wall_s > wide.wall_s);
}

#[test]
fn lambda_scaling_staggers_the_starts() {
    // 3,000 one-chunk groups of 15 s each, 1,000 environments more every
    // 10 s: the last thousand start when the first thousand's environments
    // come free (~16 s), not at once.
    let p = SimParams {
        frames: 3000,
        chunk_frames: 1,
        group_chunks: 1,
        concurrency: 3000,
        invoke_rate: 1e6,
        frame_work: [30.0, 0.4, 0.1],
        coord_bw: 1e12,
        write_bw: 1e12,
        output_in_s3: false,
        s3_min_part: 5.0 * 1048576.0,
        ..tiny()
    };
    let free = simulate(
        &SimParams {
            scale_step: 1e9,
            ..p.clone()
        },
        1,
    );
    let ramped = simulate(&p, 1);
    assert!(free.wall_s > 15.0 && free.wall_s < 20.0, "{}", free.wall_s);
    assert!(ramped.wall_s > 30.0, "{}", ramped.wall_s);
    assert!(ramped.breakdown[1] >= 15.0, "queue {:?}", ramped.breakdown);
    // An account limit of 1,000: three waves of 15 s.
    let capped = simulate(
        &SimParams {
            concurrency: 1000,
            scale_step: 1e9,
            ..p
        },
        1,
    );
    assert!(capped.wall_s > 45.0, "{}", capped.wall_s);
}

#[test]
fn position_major_starts_and_tail_twins_shorten_a_ramped_chained_job() {
    // 40 groups of 10 chunks, tasks ~4 s, 100 environments more every
    // 10 s, a heavy straggler tail.
    let base = SimParams {
        frames: 400,
        chunk_frames: 1,
        group_chunks: 10,
        concurrency: 400,
        invoke_rate: 1e6,
        scale_step: 100.0,
        frame_work: [6.0, 1.0, 1.0],
        coord_bw: 1e12,
        write_bw: 1e12,
        output_in_s3: false,
        s3_min_part: 5.0 * 1048576.0,
        straggler_prob: 0.05,
        straggler_alpha: 1.2,
        straggler_max: 30.0,
        speculation: true,
        speculation_min_finished: 3,
        speculation_floor: 1.0,
        speculation_tail_floor: 1.0,
        ..tiny()
    };
    let mean = |p: &SimParams| (0..8).map(|s| simulate(p, s).wall_s).sum::<f64>() / 8.0;
    let chain_order = mean(&base);
    let position_major = mean(&SimParams {
        position_major: true,
        ..base.clone()
    });
    assert!(
        position_major < 0.9 * chain_order,
        "{position_major} vs {chain_order}"
    );
    let tails = mean(&SimParams {
        position_major: true,
        chain_tail_twins: true,
        ..base
    });
    assert!(tails < position_major, "{tails} vs {position_major}");
}
