#!/usr/bin/env bash
# Threads for one stream (issue 19): `excam encode --threads 1` against
# `--threads 2`, and `excam decode --threads 1` against 2 next to
# `vpxdec --threads=1/2` and `ffmpeg -threads 1/2`, side by side in one
# hyperfine run each, after checking that every thread count gives the
# same bytes (encode) or the same frames (decode, also the same frames
# as vpxdec).
#
#   benches/threads.sh [CLIP.y4m]     default: box 1280x720 (made with
#                                     ../shared/clips/make-clips.sh and
#                                     ffmpeg's scale, as decode-vs-vpxdec.sh)
#
# Decode streams: the whole clip coded by vpxenc (libvpx's good quality,
# q 24, the streams of benches/README.md's decoder section) with 2 token
# partitions (`--token-parts=1`) and with 1.
#
# Env: EXCAM (default target/release/excam), WHAT (encode, decode or
# both; default both), FRAMES (encode: frames, default 30), SPEEDS
# (default "4 8"), RUNS (default 5), PRIORITY=1 (see below), OUT (work
# dir, default /tmp/excam-threads, deleted at the end unless KEEP=1).
#
# Prints hyperfine's medians (wall) and mean user+system CPU time, and
# the load average before and after each comparison: on a shared machine
# wall times are only comparable within one run.
#
# PRIORITY=1 runs every timed command in a session of its own whose
# autogroup has nice -20 (root only). Linux's CFS with autogroups gives
# each session an equal share of the CPUs whatever its thread count, so
# on a machine busy with other sessions a two-thread run gets no more CPU
# than a one-thread run and no speed-up can show; the high-priority
# autogroup takes the cores for the few seconds of a run. It is a
# measurement aid, not how excam runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EXCAM=$(realpath "${EXCAM:-target/release/excam}")
WHAT=${WHAT:-both}
FRAMES=${FRAMES:-30}
SPEEDS=${SPEEDS:-"4 8"}
RUNS=${RUNS:-5}
OUT=${OUT:-/tmp/excam-threads}
for t in hyperfine ffmpeg jq vpxenc vpxdec; do
    command -v "$t" >/dev/null || { echo "threads.sh: $t not found" >&2; exit 1; }
done
mkdir -p "$OUT"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$OUT"' EXIT

CLIP=${1:-}
if [ -z "$CLIP" ]; then
    CLIP=target/bench-data/box_1280x720_120f.y4m
    if [ ! -f "$CLIP" ]; then
        mkdir -p target/bench-data
        ../shared/clips/make-clips.sh target/bench-data
        ffmpeg -v error -y -i target/bench-data/box_640x480_120f.y4m -vf scale=1280:720 \
            -f yuv4mpegpipe "$CLIP"
    fi
fi

wrap() {
    if [ "${PRIORITY:-0}" = 1 ]; then
        printf "setsid -w bash -c 'echo -20 > /proc/self/autogroup && exec %s'" "$1"
    else
        printf '%s' "$1"
    fi
}

# name, then one command per thread count (1, 2): hyperfine them together
# and print median wall, mean CPU and the ratio.
compare() {
    local name=$1 one=$2 two=$3
    local load0 load1
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    hyperfine -w 1 -r "$RUNS" --export-json "$OUT/h.json" \
        -n 1 "$(wrap "$one")" -n 2 "$(wrap "$two")" >/dev/null
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    jq -r --arg name "$name" --arg l0 "$load0" --arg l1 "$load1" '
        .results as $r
        | ($r[0].median / $r[1].median) as $speedup
        | "\($name): 1 thread \($r[0].median * 1000 | round) ms (cpu \(($r[0].user + $r[0].system) * 1000 | round) ms), "
          + "2 threads \($r[1].median * 1000 | round) ms (cpu \(($r[1].user + $r[1].system) * 1000 | round) ms): "
          + "\($speedup * 100 | round / 100)x; load \($l0) -> \($l1)"' "$OUT/h.json"
}

if [ "$WHAT" != decode ]; then
for speed in $SPEEDS; do
    for t in 1 2 3 8; do
        "$EXCAM" encode "$CLIP" --limit "$FRAMES" --speed "$speed" --threads "$t" \
            --quiet -o "$OUT/s$speed-t$t.ivf"
    done
    for t in 2 3 8; do
        cmp "$OUT/s$speed-t1.ivf" "$OUT/s$speed-t$t.ivf" ||
            { echo "threads.sh: speed $speed: $t threads wrote other bytes" >&2; exit 1; }
    done
    compare "encode speed $speed, $FRAMES frames of $(basename "$CLIP")" \
        "$EXCAM encode $CLIP --limit $FRAMES --speed $speed --threads 1 --quiet -o $OUT/a.ivf" \
        "$EXCAM encode $CLIP --limit $FRAMES --speed $speed --threads 2 --quiet -o $OUT/b.ivf"
done
fi
[ "$WHAT" = encode ] && exit 0

# Decode: one hyperfine run of excam, vpxdec and FFmpeg's native decoder
# on 1 and 2 threads each; prints each one's median wall and mean CPU
# time and each decoder's 1 -> 2 thread speed-up.
compare_decoders() {
    local name=$1 ivf=$2
    local load0 load1
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    local cmds=() t
    for t in 1 2; do
        cmds+=(-n "excam $t" "$(wrap "$EXCAM decode --threads $t --null $ivf")")
    done
    for t in 1 2; do
        cmds+=(-n "vpxdec $t" "$(wrap "vpxdec --threads=$t --noblit $ivf")")
    done
    for t in 1 2; do
        cmds+=(-n "ffmpeg $t" "$(wrap "ffmpeg -v error -threads $t -c:v vp8 -i $ivf -f null -")")
    done
    hyperfine -w 1 -r "$RUNS" --export-json "$OUT/h.json" "${cmds[@]}" >/dev/null
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "$name (load $load0 -> $load1):"
    jq -r '
        .results as $r
        | range(0; $r | length) as $i
        | $r[$i] as $x
        | "  \($x.command): median \($x.median * 1000 | round) ms, cpu \(($x.user + $x.system) * 1000 | round) ms"
          + (if $i % 2 == 1 then ", 1 -> 2 threads \(($r[$i - 1].median / $x.median) * 100 | round / 100)x" else "" end)' \
        "$OUT/h.json"
}

for parts in 2 1; do
    ivf=$OUT/dec-p$parts.ivf
    vpxenc --codec=vp8 --good --cpu-used=1 --end-usage=q --cq-level=24 --target-bitrate=20000 \
        --threads=1 --ivf --token-parts=$((parts / 2)) -q -o "$ivf" "$CLIP"
    want=$(vpxdec --i420 -o - "$ivf" | md5sum | cut -d' ' -f1)
    for t in 1 2 3 8; do
        got=$("$EXCAM" decode --threads "$t" --format i420 -o - "$ivf" | md5sum | cut -d' ' -f1)
        [ "$got" = "$want" ] ||
            { echo "threads.sh: decode --threads $t of $parts partitions: other frames than vpxdec" >&2; exit 1; }
    done
    compare_decoders "decode $(basename "$CLIP"), vpxenc q 24, $parts token partitions" "$ivf"
done
