#!/usr/bin/env bash
# Plan vs reality: runs real ExCamera encodes on this machine with the
# processes backend and compares their wall time with what `excam plan`
# predicts for the same job with this machine's calibration and the
# "local" cloud profile (workers share the machine's cores).
#
# Usage: benches/plan-vs-reality.sh [CLIP.y4m ...]
#   Without clips: box 640x480 and carphone 176x144 (120 frames each), made
#   by ../shared/clips/make-clips.sh into $CLIPS (default /tmp/clips).
# Environment:
#   WORKERS="8 20 40"   worker counts; each run uses N = ceil(frames / W)
#                       frames per chunk so that every worker gets a chunk
#   GROUP=16            x (chunks per group)
#   CAL=FILE            calibration to use (default: `excam calibrate` on
#                       the clips first, written to $OUT/cal.json)
#   OUT=DIR             work directory (default target/plan-vs-reality)
#   EXTRA="..."         more `excam encode` flags (e.g. "--speed 4 -q 32";
#                       keep them equal to the calibration's preset/quantizer)
# Needs target/release/excam with the processes backend (`excam encode
# --backend processes --max-concurrency W --report FILE`).
# Prints one row per run: measured and predicted wall time and the error;
# the bar is |error| <= 20%. Exit status 1 if any run misses it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
excam=$target/release/excam
OUT=${OUT:-$target/plan-vs-reality}
CLIPS=${CLIPS:-/tmp/clips}
WORKERS=${WORKERS:-"8 20 40"}
GROUP=${GROUP:-16}
EXTRA=${EXTRA:-}

die() { echo "plan-vs-reality.sh: $*" >&2; exit 1; }
[ -x "$excam" ] || die "$excam not found: cargo build --release --workspace --bins (or set CARGO_TARGET_DIR)"
command -v python3 >/dev/null || die "python3 is needed to read JSON"
mkdir -p "$OUT"

if [ $# -gt 0 ]; then
    clips=("$@")
else
    [ -s "$CLIPS/box_640x480_120f.y4m" ] || bash "$repo/../shared/clips/make-clips.sh" "$CLIPS" >/dev/null
    clips=("$CLIPS/box_640x480_120f.y4m" "$CLIPS/carphone_176x144_120f.y4m")
fi

cal=${CAL:-$OUT/cal.json}
if [ ! -s "$cal" ]; then
    echo "calibrating on ${clips[*]} (this machine, $(nproc) cores) ..." >&2
    "$excam" calibrate --no-synthetic --out "$cal" "${clips[@]}"
fi

frames_of() { "$excam" plan "$1" --json --runs 1 --profile local | python3 -c 'import json,sys; print(json.load(sys.stdin)["shape"]["frames"])'; }

fail=0
printf '%-28s %4s %4s %3s %10s %10s %10s %8s %12s\n' clip W N x command_s measured_s planned_s error codec-only
for clip in "${clips[@]}"; do
    name=$(basename "$clip" .y4m)
    frames=$(frames_of "$clip")
    # The fixed work around the codec (process start-up, connections,
    # store writes per phase) is measured once per clip by a single-worker
    # run of its first 48 frames, where nothing competes for the cores;
    # `excam plan --report` reads it from that run's report.
    base=$OUT/$name.serial.report.json
    # shellcheck disable=SC2086
    "$excam" encode "$clip" -o "$OUT/$name.serial.ivf" --quiet --limit 48 \
        --backend processes --workers 1 --max-concurrency 1 \
        --chunk-frames 6 --group-chunks "$GROUP" --report "$base" $EXTRA
    for w in $WORKERS; do
        n=$(( (frames + w - 1) / w ))
        [ "$n" -ge 1 ] || n=1
        report=$OUT/$name.w$w.report.json
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086
        "$excam" encode "$clip" -o "$OUT/$name.w$w.ivf" --quiet \
            --backend processes --workers "$w" --max-concurrency "$w" \
            --chunk-frames "$n" --group-chunks "$GROUP" --report "$report" $EXTRA
        t1=$(date +%s.%N)
        # The report's wall time (job start to output written) is what the
        # plan models; the command's own time (reading the input, process
        # exit) is shown beside it.
        outside=$(python3 -c "print('%.3f' % ($t1 - $t0))")
        measured=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["wall_seconds"])' "$report" 2>/dev/null || echo "$outside")
        planned=$("$excam" plan "$clip" --profile local --calibration "$cal" \
            --workers "$w" --chunk-frames "$n" --group-chunks "$GROUP" --json \
            --report "$base" |
            python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["wall_s"])')
        # For comparison: the codec's calibration alone, without the
        # measured fixed costs around it.
        with_report=$("$excam" plan "$clip" --profile local --calibration "$cal" \
            --workers "$w" --chunk-frames "$n" --group-chunks "$GROUP" --json 2>/dev/null |
            python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["wall_s"])' || echo "-")
        err=$(python3 -c "print('%+.1f%%' % (100 * ($planned - $measured) / $measured))")
        printf '%-28s %4s %4s %3s %10s %10s %10s %8s %12s\n' "$name" "$w" "$n" "$GROUP" "$outside" "$measured" "$planned" "$err" "$with_report"
        python3 -c "import sys; sys.exit(0 if abs($planned - $measured) <= 0.2 * $measured else 1)" || fail=1
    done
done
[ "$fail" = 0 ] && echo "all runs within +-20%" || echo "some runs outside +-20%"
exit "$fail"
