#!/usr/bin/env bash
# Chaos run at scale: `excam encode --backend processes` of a tiny clip at
# one frame per chunk (FRAMES tasks, 2,000 by default), repeated RUNS times,
# while faults are injected from every side:
#   - this script kills (SIGKILL) and stalls (SIGSTOP; half resumed after
#     1-4 s, the rest left for the coordinator's task timeout) random
#     excam-worker processes, and corrupts (one byte flipped) and deletes
#     random state objects in the store;
#   - the coordinator restarts its embedded relay once, after a random
#     number of chunks (--restart-relay-after, a test-only flag);
#   - the workers (built with the test-only fault-injection feature) fail
#     and stall random store operations and refuse random tasks as
#     throttled (EXCAM_CHAOS, see worker/src/chaos.rs).
# Every run must end with the local backend's exact bytes, or fail with a
# clear error and no output file. One line per run goes to stdout and to
# $OUT/runs.tsv: outcome, seconds, and the count of every fault injected.
#
# Usage: benches/chaos.sh [RUNS] [FRAMES]      (defaults 10 and 2000)
# Environment: CONCURRENCY (8), OUT (target/chaos), KEEP=1 keeps stores,
#   CHAOS (the EXCAM_CHAOS spec), KILL_EVERY/STALL_EVERY/STATE_EVERY
#   (seconds between those faults, on average).
# Loopback only; runs everything under `nice -n 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
frames=${2:-2000}
conc=${CONCURRENCY:-8}
out=${OUT:-${CARGO_TARGET_DIR:-target}/chaos}
chaos=${CHAOS:-store_error=0.005,throttle=0.02,slow_store=0.01}
kill_every=${KILL_EVERY:-3.0}
stall_every=${STALL_EVERY:-6.0}
state_every=${STATE_EVERY:-2.0}
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
mkdir -p "$out"

# The test build (what CI builds): excam, and excam-worker with the
# fault-injection feature its dev-dependency turns on.
nice -n 10 cargo test --workspace --release --no-run
"$bin/excam-worker" --version | grep -q fault-injection ||
    { echo "excam-worker lacks the fault-injection feature" >&2; exit 1; }

# The clip: 64x48 testsrc2 (motion, text, colour bars) plus a little noise.
clip=$out/chaos-64x48-${frames}f.y4m
if [ ! -s "$clip" ]; then
    ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=64x48:rate=30" \
        -vf "noise=alls=8:allf=t" -frames:v "$frames" -pix_fmt yuv420p "$clip"
fi
common=(encode "$clip" --chunk-frames 1 --group-chunks 16 -q 32 --speed 8 --quiet)

ref=$out/local.ivf
if [ ! -s "$ref" ]; then
    nice -n 10 "$bin/excam" "${common[@]}" -o "$ref" --workers 2
fi

rand() { echo $((RANDOM % $1)); }
# Sleeps about $1 seconds (uniform in [0.5x, 1.5x]).
jitter_sleep() { sleep "$(awk -v m="$1" -v r=$RANDOM 'BEGIN{printf "%.2f", m*(0.5+r/32767)}')"; }

workers_of() {
    local pid
    for pid in $(pgrep -P "$1" -x excam-worker 2>/dev/null); do echo "$pid"; done
}

# One random victim among the lines on stdin (empty if none).
pick() { shuf -n 1 2>/dev/null || true; }

state_files() {
    find "$1" -path '*/states/*' -type f ! -name '*.sha256' 2>/dev/null || true
}

printf 'run\toutcome\tseconds\tkilled\tstalled\tresumed\tstate_corrupted\tstate_deleted\trelay_restart_after\tstore_error\tslow_store\tthrottle\tdetail\n' \
    > "$out/runs.tsv"
for run in $(seq 1 "$runs"); do
    d=$out/run-$run
    rm -rf "$d"
    mkdir -p "$d"
    restart_after=$((frames / 10 + $(rand $((frames * 7 / 10)))))
    start=$(date +%s.%N)
    EXCAM_CHAOS=$chaos EXCAM_CHAOS_LOG=$d/chaos.log nice -n 10 "$bin/excam" "${common[@]}" \
        -o "$d/out.ivf" --backend processes --worker-bin "$bin/excam-worker" \
        --store-dir "$d/store" --max-concurrency "$conc" --max-tries 10 \
        --task-timeout 30 --straggler-floor 5 --restart-relay-after "$restart_after" \
        --report "$d/report.json" 2> "$d/stderr" &
    coord=$!
    killed=0 stalled=0 resumed=0 corrupted=0 deleted=0
    : > "$d/stopped"
    (   # Killer.
        while kill -0 "$coord" 2>/dev/null; do
            jitter_sleep "$kill_every"
            v=$(workers_of "$coord" | pick)
            [ -n "$v" ] && kill -KILL "$v" 2>/dev/null && echo killed >> "$d/injected"
        done
    ) &
    k1=$!
    (   # Staller: half the stalls end after 1-4 s.
        while kill -0 "$coord" 2>/dev/null; do
            jitter_sleep "$stall_every"
            v=$(workers_of "$coord" | pick)
            if [ -n "$v" ] && kill -STOP "$v" 2>/dev/null; then
                echo stalled >> "$d/injected"
                if [ $((RANDOM % 2)) = 0 ]; then
                    ( sleep $((1 + RANDOM % 4)); kill -CONT "$v" 2>/dev/null && echo resumed >> "$d/injected" ) &
                fi
            fi
        done
    ) &
    k2=$!
    (   # State objects: corrupt two, delete one.
        while kill -0 "$coord" 2>/dev/null; do
            jitter_sleep "$state_every"
            v=$(state_files "$d/store" | pick)
            [ -n "$v" ] || continue
            if [ $((RANDOM % 3)) = 0 ]; then
                rm -f "$v" && echo state_deleted >> "$d/injected"
            else
                size=$(stat -c %s "$v" 2>/dev/null || echo 0)
                [ "$size" -gt 0 ] || continue
                off=$((RANDOM * 32768 % size + RANDOM % size))
                off=$((off % size))
                printf '\xa5' | dd of="$v" bs=1 seek="$off" conv=notrunc status=none 2>/dev/null &&
                    echo state_corrupted >> "$d/injected"
            fi
        done
    ) &
    k3=$!
    set +e
    wait "$coord"
    rc=$?
    set -e
    kill "$k1" "$k2" "$k3" 2>/dev/null || true
    wait "$k1" "$k2" "$k3" 2>/dev/null || true
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    count() { grep -c "^$1" "$2" 2>/dev/null || true; }
    inj=$d/injected
    if [ "$rc" = 0 ]; then
        if cmp -s "$d/out.ivf" "$ref"; then
            outcome=identical detail=""
        else
            outcome=DIFFERENT detail="output differs from the local backend"
        fi
    else
        if [ -e "$d/out.ivf" ]; then
            outcome=FAILED_WITH_OUTPUT
        else
            outcome=clean_failure
        fi
        detail=$(grep -m1 '^excam: error:' "$d/stderr" | tr '\t' ' ' | cut -c1-300)
        [ -n "$detail" ] || outcome=FAILED_WITHOUT_ERROR
    fi
    line=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$run" "$outcome" "$secs" \
        "$(count killed "$inj")" "$(count stalled "$inj")" "$(count resumed "$inj")" \
        "$(count state_corrupted "$inj")" "$(count state_deleted "$inj")" "$restart_after" \
        "$(count store_error "$d/chaos.log")" "$(count slow_store "$d/chaos.log")" \
        "$(count throttle "$d/chaos.log")" "$detail")
    echo "$line" | tee -a "$out/runs.tsv"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$d/store"
done
echo "--- $out/runs.tsv"
awk -F'\t' 'NR>1{n[$2]++} END{for (k in n) printf "%s: %d\n", k, n[k]}' "$out/runs.tsv"
! grep -qE $'\t(DIFFERENT|FAILED_WITH_OUTPUT|FAILED_WITHOUT_ERROR)\t' "$out/runs.tsv"
