#!/usr/bin/env bash
# Distributed-runtime benchmark on this machine (loopback only).
#
# For carphone and box: wall time of `excam encode` on the local thread
# backend and on the processes backend at a few worker counts, with the
# embedded relay and with the store alone (--no-relay), and from each
# processes run's --report: mean per-phase seconds per task (compute, the
# wait excluded), the median hop latency of the serial phase, state bytes
# per hop and the coordinator's overhead per task (attempt duration seen
# by the coordinator minus the worker's phase time). Prints markdown.
#
# Env: FRAMES (default 48), N (6), X (4), WORKERS ("2 4"), Q (32).
# The lambda backend is exercised (emulated) by
# coordinator/tests/runtime_lambda.rs; its per-task numbers are those of
# the processes backend plus invocation overhead.
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${FRAMES:-48}
N=${N:-6}
X=${X:-4}
WORKERS=${WORKERS:-"2 4"}
Q=${Q:-32}
T=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p excam-coordinator --bin excam
cargo build --release -q -p excam-worker
[ -e /tmp/clips/carphone_176x144_120f.y4m ] || bash ../shared/clips/make-clips.sh /tmp/clips
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

summarize() { # report.json -> markdown cells
    python3 - "$1" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
ph = {0: [], 1: [], 2: []}
names = ["encode", "encode_given_state", "rebase"]
over = []
for t in r["tasks"]:
    for p in t["phases"]:
        ph[names.index(p["phase"])].append(p["seconds"] - p["wait_seconds"])
    for a in t["attempts"]:
        if a["outcome"]["status"] == "ok" and a["phases"]:
            over.append((a["end_s"] - a["start_s"]) - sum(p["seconds"] for p in a["phases"]))
m = lambda v: statistics.mean(v) if v else 0.0
hops = [h["latency_s"] * 1000 for h in r["hops"]]
sb = [t["state_bytes"][0] for t in r["tasks"] if t["state_bytes"]]
print("| %.2f | %.2f | %.2f | %.1f | %.0f | %.0f |" % (
    m(ph[0]), m(ph[1]), m(ph[2]),
    statistics.median(hops) if hops else float("nan"),
    m(sb), m(over) * 1000))
PY
}

for clip in carphone_176x144_120f box_640x480_120f; do
    in=/tmp/clips/$clip.y4m
    echo
    echo "### $clip, $FRAMES frames, ExCamera[$N,$X], q$Q"
    echo
    echo "| backend | workers | states | wall s | p1 s/task | p2 s/task | p3 s/task | hop ms (median) | state bytes/hop | coord. overhead ms/task |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    common=("$in" --limit "$FRAMES" --chunk-frames "$N" --group-chunks "$X" -q "$Q" --quiet)
    for w in $WORKERS; do
        s=$(date +%s.%N)
        "$T/release/excam" encode "${common[@]}" -o "$WORK/local.ivf" --workers "$w"
        e=$(date +%s.%N)
        printf '| local | %s | memory | %.2f | | | | | | |\n' "$w" "$(echo "$e - $s" | bc)"
        for relay in relay store; do
            flags=()
            [ "$relay" = store ] && flags=(--no-relay)
            rm -rf "$WORK/store"
            s=$(date +%s.%N)
            "$T/release/excam" encode "${common[@]}" -o "$WORK/p.ivf" --backend processes \
                --workers "$w" --store-dir "$WORK/store" --worker-bin "$T/release/excam-worker" \
                --report "$WORK/r.json" "${flags[@]}"
            e=$(date +%s.%N)
            cmp -s "$WORK/local.ivf" "$WORK/p.ivf" || echo "WARNING: processes output differs from local" >&2
            printf '| processes | %s | %s | %.2f ' "$w" "$relay" "$(echo "$e - $s" | bc)"
            summarize "$WORK/r.json"
        done
    done
done
