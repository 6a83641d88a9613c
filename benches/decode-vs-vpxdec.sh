#!/usr/bin/env bash
# Times excam's VP8 decoder against libvpx's vpxdec, both single-threaded,
# on the same stream, and prints both medians and the ratio excam/vpxdec.
#
# Usage: benches/decode-vs-vpxdec.sh [STREAM.ivf]
#   Without an argument it decodes box 640x480, 120 frames, encoded once with
#   vpxenc at a pinned quantizer 30 (cached in target/bench-data/).
# Environment:
#   RUNS=N          timed runs per decoder (default 10)
#   HYPERFINE=1     time with hyperfine instead of the built-in loop (if
#                   installed: apt-get install -y hyperfine). The built-in
#                   loop is the default because it interleaves the two
#                   decoders run by run, so slow drifts of a noisy machine
#                   (thermal, other load) hit both equally; hyperfine runs
#                   all of one command, then all of the other.
#   SHARED=DIR      reference material (default: <repo>/../shared)
#
# Needs target/release/excam: build it with `cargo build --release`.
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$repo/../shared}
target=${CARGO_TARGET_DIR:-$repo/target}
excam=$target/release/excam
runs=${RUNS:-10}

die() { echo "decode-vs-vpxdec.sh: $*" >&2; exit 1; }

[ -x "$excam" ] || die "$excam not found: build the decoder first with 'cargo build --release' (or set CARGO_TARGET_DIR)"
command -v vpxdec >/dev/null || die "vpxdec not found (apt-get install vpx-tools)"

if [ $# -ge 1 ]; then
    stream=$1
    [ -f "$stream" ] || die "no such stream: $stream"
else
    command -v vpxenc >/dev/null || die "vpxenc not found (apt-get install vpx-tools)"
    data=$target/bench-data
    mkdir -p "$data"
    stream=$data/box_640x480_120f_q30.ivf
    if [ ! -s "$stream" ]; then
        [ -x "$SHARED/clips/make-clips.sh" ] || [ -f "$SHARED/clips/make-clips.sh" ] ||
            die "missing $SHARED/clips/make-clips.sh (set SHARED=...)"
        bash "$SHARED/clips/make-clips.sh" "$data" >/dev/null
        vpxenc --codec=vp8 --good --cpu-used=0 --end-usage=q --min-q=30 --max-q=30 --cq-level=30 \
            --threads=1 --passes=1 --disable-warning-prompt -q --ivf \
            -o "$stream.tmp" "$data/box_640x480_120f.y4m"
        mv "$stream.tmp" "$stream"
    fi
fi

# Decoded pictures go to files in a RAM-backed directory when there is one,
# for both decoders alike, so the comparison measures decoding, not disks.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    tmp=$(mktemp -d /dev/shm/excam-bench.XXXXXX)
else
    tmp=$(mktemp -d)
fi
trap 'rm -rf "$tmp"' EXIT

excam_cmd=("$excam" decode "$stream" -o "$tmp/excam.yuv")
vpxdec_cmd=(vpxdec --codec=vp8 --threads=1 --i420 -o "$tmp/vpxdec.yuv" "$stream")

echo "stream: $stream ($(stat -c %s "$stream") bytes)"
echo "excam:  ${excam_cmd[*]}"
echo "vpxdec: ${vpxdec_cmd[*]}"

# Warm-up run of each, which also checks that excam decodes correctly: a
# fast wrong decoder is not worth timing.
"${excam_cmd[@]}" >/dev/null || die "excam decode failed"
"${vpxdec_cmd[@]}" >/dev/null
if cmp -s "$tmp/excam.yuv" "$tmp/vpxdec.yuv"; then
    echo "output: identical to vpxdec ($(stat -c %s "$tmp/vpxdec.yuv") bytes)"
else
    echo "WARNING: excam output differs from vpxdec's; timing anyway" >&2
fi

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

if [ "${HYPERFINE:-0}" = 1 ] && command -v hyperfine >/dev/null; then
    hyperfine --runs "$runs" --warmup 1 --export-json "$tmp/h.json" -N \
        -n excam "$(printf '%q ' "${excam_cmd[@]}")" -n vpxdec "$(printf '%q ' "${vpxdec_cmd[@]}")" >&2
    # Medians from hyperfine's JSON, one per command, in order.
    mapfile -t meds < <(python3 -c 'import json,sys; [print(r["median"]) for r in json.load(open(sys.argv[1]))["results"]]' "$tmp/h.json")
    excam_med=${meds[0]} vpxdec_med=${meds[1]}
else
    : >"$tmp/t.excam"
    : >"$tmp/t.vpxdec"
    time_one() { # NAME CMD... : appends wall seconds to $tmp/t.NAME
        local name=$1 t0 t1
        shift
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$tmp/t.$name"
    }
    for ((i = 1; i <= runs; i++)); do
        # Alternate which goes first so neither always runs on a warmer cache.
        if ((i % 2)); then
            time_one excam "${excam_cmd[@]}"
            time_one vpxdec "${vpxdec_cmd[@]}"
        else
            time_one vpxdec "${vpxdec_cmd[@]}"
            time_one excam "${excam_cmd[@]}"
        fi
    done
    excam_med=$(median <"$tmp/t.excam")
    vpxdec_med=$(median <"$tmp/t.vpxdec")
fi

awk -v e="$excam_med" -v v="$vpxdec_med" -v n="$runs" 'BEGIN {
    printf "runs each:      %d\n", n
    printf "excam median:   %.4f s\n", e
    printf "vpxdec median:  %.4f s\n", v
    printf "ratio excam/vpxdec: %.2f\n", e / v
}'
