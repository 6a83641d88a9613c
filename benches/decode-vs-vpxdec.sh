#!/usr/bin/env bash
# Times excam's VP8 decoder against libvpx's vpxdec and FFmpeg's native VP8
# decoder, all single-threaded, on the same streams, and prints each
# decoder's median and the ratios excam/vpxdec and excam/ffmpeg.
#
# Usage: benches/decode-vs-vpxdec.sh [STREAM.ivf...]
#   Without an argument it decodes box 640x480, 120 frames, encoded once with
#   vpxenc at a pinned quantizer 30 (cached in target/bench-data/).
# Environment:
#   RUNS=N          timed runs per decoder and stream (default 10)
#   EXCAM=PATH      the excam decoder (default: target/release/excam). A
#                   path ending in `decode_ivf` is the codec's example
#                   (`cargo build --release -p excam-codec --example
#                   decode_ivf`, at target/release/examples/decode_ivf),
#                   which needs no CLI build.
#   NULL=1          decode only: `excam decode --null` (decode_ivf without
#                   an output), `vpxdec --noblit`, `ffmpeg -f null`. The
#                   default writes raw I420 to a RAM directory for all three.
#   STARTUP=1       also time each decoder on the stream's first frame alone
#                   and print ratios of (median - that), so the fixed cost
#                   of starting a process (FFmpeg's is ~0.1 s) drops out.
#   HYPERFINE=1     time with hyperfine instead of the built-in loop (if
#                   installed: apt-get install -y hyperfine). The built-in
#                   loop is the default because it interleaves the
#                   decoders run by run, so slow drifts of a noisy machine
#                   (thermal, other load) hit all equally; hyperfine runs
#                   all of one command, then all of the next.
#   THREADS=N       excam decodes with --threads N (default 1); vpxdec and
#                   FFmpeg stay single-threaded, so the ratio against the
#                   THREADS=1 run is excam's threading speed-up
#   SHARED=DIR      reference material (default: <repo>/../shared)
#
# FFmpeg runs as `ffmpeg -threads 1 -c:v vp8 -i STREAM`, its own decoder
# (not libvpx), and is skipped when not installed.
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED=${SHARED:-$repo/../shared}
target=${CARGO_TARGET_DIR:-$repo/target}
excam=${EXCAM:-$target/release/excam}
runs=${RUNS:-10}
null=${NULL:-0}
threads=${THREADS:-1}

die() { echo "decode-vs-vpxdec.sh: $*" >&2; exit 1; }

[ -x "$excam" ] || die "$excam not found: build the decoder first with 'cargo build --release' (or set CARGO_TARGET_DIR or EXCAM)"
command -v vpxdec >/dev/null || die "vpxdec not found (apt-get install vpx-tools)"
have_ffmpeg=0
command -v ffmpeg >/dev/null && have_ffmpeg=1

streams=("$@")
if [ ${#streams[@]} -eq 0 ]; then
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
    streams=("$stream")
fi
for s in "${streams[@]}"; do [ -f "$s" ] || die "no such stream: $s"; done

# Decoded pictures go to files in a RAM-backed directory when there is one,
# for all decoders alike, so the comparison measures decoding, not disks.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    tmp=$(mktemp -d /dev/shm/excam-bench.XXXXXX)
else
    tmp=$(mktemp -d)
fi
trap 'rm -rf "$tmp"' EXIT

names=(excam vpxdec)
((have_ffmpeg)) && names+=(ffmpeg)

# cmd NAME STREAM OUT: sets the array `c` to the command decoding STREAM,
# writing I420 to OUT unless OUT is empty (decode only).
cmd() {
    local name=$1 s=$2 out=$3
    case $name in
    excam)
        if [[ $excam == *decode_ivf ]]; then
            c=("$excam" "$s" --threads "$threads" ${out:+"$out"})
        elif [ -n "$out" ]; then
            c=("$excam" decode --threads "$threads" "$s" -o "$out")
        else
            c=("$excam" decode --threads "$threads" "$s" --null)
        fi
        ;;
    vpxdec)
        if [ -n "$out" ]; then
            c=(vpxdec --codec=vp8 --threads=1 --i420 -o "$out" "$s")
        else
            c=(vpxdec --codec=vp8 --threads=1 --noblit "$s")
        fi
        ;;
    ffmpeg)
        if [ -n "$out" ]; then
            c=(ffmpeg -nostdin -v error -threads 1 -c:v vp8 -i "$s" -f rawvideo -pix_fmt yuv420p -y "$out")
        else
            c=(ffmpeg -nostdin -v error -threads 1 -c:v vp8 -i "$s" -f null -)
        fi
        ;;
    esac
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

time_one() { # FILE CMD... : appends wall seconds to FILE
    local file=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$file"
}

# bench STREAM TAG: times every decoder on STREAM, interleaved and rotated
# run by run; medians go to $tmp/med.TAG.NAME.
bench() {
    local s=$1 tag=$2 i k n name out
    for name in "${names[@]}"; do : >"$tmp/t.$tag.$name"; done
    n=${#names[@]}
    for ((i = 0; i < runs; i++)); do
        # Rotate which goes first so none always runs on a warmer cache.
        for ((k = 0; k < n; k++)); do
            name=${names[(i + k) % n]}
            out=
            [ "$null" = 1 ] || out=$tmp/$name.yuv
            cmd "$name" "$s" "$out"
            time_one "$tmp/t.$tag.$name" "${c[@]}"
        done
    done
    for name in "${names[@]}"; do median <"$tmp/t.$tag.$name" >"$tmp/med.$tag.$name"; done
}

bench_hyperfine() {
    local s=$1 tag=$2 name out args=() k=0
    for name in "${names[@]}"; do
        out=
        [ "$null" = 1 ] || out=$tmp/$name.yuv
        cmd "$name" "$s" "$out"
        args+=(-n "$name" "$(printf '%q ' "${c[@]}")")
    done
    hyperfine --runs "$runs" --warmup 1 --export-json "$tmp/h.json" -N "${args[@]}" >&2
    mapfile -t meds < <(python3 -c 'import json,sys; [print(r["median"]) for r in json.load(open(sys.argv[1]))["results"]]' "$tmp/h.json")
    for name in "${names[@]}"; do
        echo "${meds[k]}" >"$tmp/med.$tag.$name"
        k=$((k + 1))
    done
}

# first_frame STREAM OUT: the IVF header and first frame of STREAM.
first_frame() {
    local len
    len=$(od -An -tu4 -j32 -N4 "$1" | tr -d ' ')
    head -c $((32 + 12 + len)) "$1" >"$2"
}

echo "runs each: $runs; mode: $([ "$null" = 1 ] && echo 'decode only' || echo 'I420 to a RAM file')"
for name in "${names[@]}"; do
    cmd "$name" STREAM "$([ "$null" = 1 ] || echo OUT.yuv)"
    echo "$name: ${c[*]}"
done

summary=()
for s in "${streams[@]}"; do
    echo
    echo "stream: $s ($(stat -c %s "$s") bytes)"
    # Warm-up run of each, which also checks that the decoders agree: a
    # fast wrong decoder is not worth timing.
    for name in "${names[@]}"; do
        cmd "$name" "$s" "$tmp/$name.yuv"
        "${c[@]}" >/dev/null 2>&1 || die "$name failed on $s"
    done
    for name in "${names[@]}"; do
        [ "$name" = vpxdec ] && continue
        if cmp -s "$tmp/$name.yuv" "$tmp/vpxdec.yuv"; then
            echo "output: $name identical to vpxdec ($(stat -c %s "$tmp/vpxdec.yuv") bytes)"
        else
            echo "WARNING: $name output differs from vpxdec's; timing anyway" >&2
        fi
    done
    if [ "${HYPERFINE:-0}" = 1 ] && command -v hyperfine >/dev/null; then
        bench_hyperfine "$s" main
    else
        bench "$s" main
    fi
    for name in "${names[@]}"; do
        printf '%-7s median: %.4f s\n' "$name" "$(cat "$tmp/med.main.$name")"
    done
    if [ "${STARTUP:-0}" = 1 ]; then
        first_frame "$s" "$tmp/first.ivf"
        bench "$tmp/first.ivf" first
        for name in "${names[@]}"; do
            printf '%-7s first frame only: %.4f s\n' "$name" "$(cat "$tmp/med.first.$name")"
        done
    fi
    line="$(basename "$s"):"
    e=$(cat "$tmp/med.main.excam")
    for name in "${names[@]}"; do
        [ "$name" = excam ] && continue
        r=$(awk -v e="$e" -v v="$(cat "$tmp/med.main.$name")" 'BEGIN { printf "%.2f", e / v }')
        echo "ratio excam/$name: $r"
        line+="  excam/$name $r"
        if [ "${STARTUP:-0}" = 1 ]; then
            r=$(awk -v e="$e" -v e0="$(cat "$tmp/med.first.excam")" -v v="$(cat "$tmp/med.main.$name")" \
                -v v0="$(cat "$tmp/med.first.$name")" 'BEGIN { printf "%.2f", (e - e0) / (v - v0) }')
            echo "ratio excam/$name, first frame's time subtracted: $r"
            line+=" ($r less start-up)"
        fi
    done
    summary+=("$line")
done

echo
echo "summary (median wall time ratios, $runs runs each):"
printf '  %s\n' "${summary[@]}"
