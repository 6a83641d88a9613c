#!/usr/bin/env bash
# Distributed-runtime benchmark on this machine (loopback only).
#
# For carphone and box: wall time of `excam encode` on the local thread
# backend, on the processes backend (with the embedded relay and with the
# store alone, --no-relay) and on the lambda backend emulated on loopback
# (S3 served by s3s-fs, Lambda by `cargo lambda watch --only-lambda-apis`
# with one excam-worker instance per worker), at a few worker counts. From
# each run's --report: mean per-phase seconds per task (compute, the wait
# excluded), the median hop latency of the serial phase, state bytes per
# hop and the coordinator's overhead per task (attempt duration seen by the
# coordinator minus the worker's phase time). Then one processes job in
# which one worker is killed (SIGKILL) and one stalled (SIGSTOP) from
# outside: it must still finish byte-identical. Prints markdown.
#
# Env: FRAMES (default 48), N (6), X (4), WORKERS ("2 4"), Q (32),
# FAULT_FRAMES (120, frames of the fault run).
# The lambda rows need cargo-lambda (pip install cargo-lambda); without it
# they are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${FRAMES:-48}
N=${N:-6}
X=${X:-4}
WORKERS=${WORKERS:-"2 4"}
Q=${Q:-32}
FAULT_FRAMES=${FAULT_FRAMES:-120}
T=${CARGO_TARGET_DIR:-target}
# One build of the three binaries (the same feature set as the workspace).
cargo build --release -q --workspace --bins
[ -e /tmp/clips/carphone_176x144_120f.y4m ] || bash ../shared/clips/make-clips.sh /tmp/clips
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

HAVE_LAMBDA=1
command -v cargo-lambda >/dev/null || { HAVE_LAMBDA=0; echo "note: cargo-lambda not found; lambda rows skipped" >&2; }
KEY=AKIAEXCAMBENCH00
SECRET=excam-bench-secret-key-012345678

# Starts S3 on loopback and `cargo lambda watch` with $1 worker instances;
# sets S3_PORT and L_PORT.
start_lambda() {
    local n=$1
    rm -rf "$WORK/s3"
    coproc S3 { "$T/release/s3-loopback" "$WORK/s3" excam "$KEY" "$SECRET"; }
    PIDS+=("$S3_PID")
    read -r S3_PORT <&"${S3[0]}"
    L_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$L_PORT" >/dev/null 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$L_PORT") 2>/dev/null && break; sleep 0.1; done
    for _ in $(seq "$n"); do
        AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$L_PORT/.rt/excam-worker" \
        AWS_LAMBDA_FUNCTION_NAME=excam-worker AWS_LAMBDA_FUNCTION_VERSION=1 \
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=3008 aws_env "$T/release/excam-worker" >/dev/null 2>&1 &
        PIDS+=("$!")
    done
}

stop_lambda() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

aws_env() {
    AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL_S3="http://127.0.0.1:$S3_PORT" AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$L_PORT" \
    AWS_PROFILE= "$@"
}

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
# Hand-off latency of the chain: only hops whose receiver was waiting.
hops = [h["latency_s"] * 1000 for h in r["hops"] if h.get("waiting", True)]
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
        if [ "$HAVE_LAMBDA" = 1 ]; then
            start_lambda "$w"
            s=$(date +%s.%N)
            aws_env "$T/release/excam" encode "${common[@]}" -o "$WORK/l.ivf" --backend lambda \
                --workers "$w" --max-concurrency "$w" --bucket excam --prefix bench \
                --relay-listen 127.0.0.1:0 --report "$WORK/r.json"
            e=$(date +%s.%N)
            stop_lambda
            cmp -s "$WORK/local.ivf" "$WORK/l.ivf" || echo "WARNING: lambda output differs from local" >&2
            printf '| lambda (emulated) | %s | relay | %.2f ' "$w" "$(echo "$e - $s" | bc)"
            summarize "$WORK/r.json"
        fi
    done

    # One worker killed and one stalled, from outside, mid-job (on the
    # whole clip, so the workers live long enough to be hit).
    w=4
    fcommon=("$in" --limit "$FAULT_FRAMES" --chunk-frames "$N" --group-chunks "$X" -q "$Q" --quiet)
    "$T/release/excam" encode "${fcommon[@]}" -o "$WORK/local.ivf" --workers "$w"
    rm -rf "$WORK/store"
    s=$(date +%s.%N)
    "$T/release/excam" encode "${fcommon[@]}" -o "$WORK/f.ivf" --backend processes \
        --workers "$w" --store-dir "$WORK/store" --worker-bin "$T/release/excam-worker" \
        --report "$WORK/r.json" --straggler-floor 1 &
    job=$!
    victims=()
    for _ in $(seq 200); do
        mapfile -t victims < <(pgrep -f "^$T/release/excam-worker" || true)
        [ "${#victims[@]}" -ge 2 ] && break
        sleep 0.05
    done
    sleep 0.3
    mapfile -t victims < <(pgrep -f "^$T/release/excam-worker" || true)
    if [ "${#victims[@]}" -ge 2 ]; then
        kill -KILL "${victims[0]}" 2>/dev/null || true
        kill -STOP "${victims[1]}" 2>/dev/null || true
    else
        echo "WARNING: found no workers to kill and stall" >&2
    fi
    wait "$job"
    e=$(date +%s.%N)
    [ "${#victims[@]}" -ge 2 ] && { kill -CONT "${victims[1]}" 2>/dev/null || true; }
    if cmp -s "$WORK/local.ivf" "$WORK/f.ivf"; then same="byte-identical"; else same="DIFFERS"; fi
    echo
    python3 - "$WORK/r.json" "$same" "$(echo "$e - $s" | bc)" "$w" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print("one worker killed, one stalled (processes, %s workers): wall %.2f s, %d attempts, %d retries, %d twins, output %s"
      % (sys.argv[4], float(sys.argv[3]), t["attempts"], t["retries"], t["speculative"], sys.argv[2]))
PY
done
