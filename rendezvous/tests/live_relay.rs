//! The live-relay fuzz harness (`rendezvous/fuzz/src/live.rs`, target
//! `live_relay`) as an ordinary test: its hand-written scripts (every kind
//! of abuse: bodies that never come, waits on dead connections, bad and
//! late hellos, the memory cap filled), any committed regressions, and a
//! short mutational run (`fuzz/smoke.rs`). After each script the relay
//! must still serve an honest client, hold nothing for the script's ended
//! jobs and closed connections, and never have held more than its cap.

#[path = "../fuzz/src/live.rs"]
mod live;

#[path = "../../fuzz/smoke.rs"]
mod smoke;

use std::path::Path;

fn regressions() -> Vec<Vec<u8>> {
    smoke::dir_inputs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/live_relay"))
}

#[test]
fn live_relay_scripts() {
    let scripts = live::seed_scripts();
    for s in &scripts {
        live::run_script(s);
    }
    for r in regressions() {
        live::run(&r);
    }
    let (stats, cap) = live::relay_stats();
    eprintln!(
        "live_relay: {} scripts passed; relay counters {stats:?}, mailbox cap {cap}",
        scripts.len()
    );
    // The scripts reach the full-relay paths: some put waited on the cap.
    assert!(
        stats.peak_bytes_held > cap / 2,
        "the scripts never came near the cap: peak {} of {cap}",
        stats.peak_bytes_held
    );
}

#[test]
fn live_relay_smoke() {
    let mut seeds = live::seeds();
    seeds.extend(regressions());
    smoke::smoke("live_relay", &seeds, 30, live::run);
}
