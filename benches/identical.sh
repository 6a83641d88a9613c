#!/usr/bin/env bash
# Byte-identity matrix of `excam encode`: every case's output must be the
# same bytes as recorded before a refactor (benches/identical.sha256), or as
# a second binary's.
#
#   benches/identical.sh                 compare target/release/excam with the recorded hashes
#   benches/identical.sh --record        (re)write benches/identical.sha256 (only at a commit
#                                        whose output is the reference)
#   benches/identical.sh --against BIN   run every case with BIN too and cmp the streams
#                                        (BIN's excam-worker must sit beside it)
#
# Env: EXCAM (default target/release/excam; its excam-worker beside it),
# ONLY (a grep -E pattern of case names; --record then keeps the other
# recorded hashes), KEEP=1 (keep the work dir).
#
# The matrix: a synthetic testsrc2 clip (128x96, 30 frames) and an odd-size
# mandelbrot clip (99x71, 12 frames) made with ffmpeg, and carphone's first
# 24 frames (../shared/clips); speeds 0/4/8; q 4/32/63; --keyint;
# --golden-interval; --partitions / --token-parts; odd size; --bitrate;
# ExCamera [6,16] and [2,3] at --workers 1 and 3 on the local backend and on
# `--backend processes` (embedded relay, and --no-relay). Every stream is
# also decoded by vpxdec, which must give excam decode's frames. The lambda
# backend needs cargo-lambda (not here): its byte identity with the local
# backend is asserted by coordinator/tests/runtime_lambda.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
HASHES=benches/identical.sha256
MODE=compare
AGAINST=
case "${1:-}" in
    --record) MODE=record ;;
    --against) MODE=against; AGAINST=$(realpath "${2:?--against needs a binary}") ;;
    "") ;;
    *) echo "usage: $0 [--record | --against BIN]" >&2; exit 2 ;;
esac
EXCAM=${EXCAM:-target/release/excam}
EXCAM=$(realpath "$EXCAM")
for t in ffmpeg vpxdec sha256sum; do
    command -v "$t" >/dev/null || { echo "identical.sh: $t not found" >&2; exit 1; }
done
[ -x "$EXCAM" ] || { echo "identical.sh: $EXCAM not built (cargo build --release --workspace --bins)" >&2; exit 1; }
[ -x "$(dirname "$EXCAM")/excam-worker" ] || { echo "identical.sh: no excam-worker beside $EXCAM" >&2; exit 1; }

WORK=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then echo "work dir: $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
ffmpeg -v error -f lavfi -i testsrc2=size=128x96:rate=30 -frames:v 30 -pix_fmt yuv420p "$WORK/tsrc.y4m"
ffmpeg -v error -f lavfi -i mandelbrot=size=99x71:rate=25 -frames:v 12 -pix_fmt yuv420p "$WORK/odd.y4m"
CARPHONE=../shared/clips/carphone_176x144_120f.y4m
[ -s "$CARPHONE" ] || { echo "identical.sh: $CARPHONE missing" >&2; exit 1; }
ffmpeg -v error -i "$CARPHONE" -frames:v 24 -pix_fmt yuv420p "$WORK/carphone.y4m"

# name | clip | flags
CASES=(
    "tsrc-s0-q32|tsrc|--speed 0 -q 32"
    "tsrc-s4-q32|tsrc|--speed 4 -q 32"
    "tsrc-s8-q32|tsrc|--speed 8 -q 32"
    "tsrc-s4-q4|tsrc|--speed 4 -q 4"
    "tsrc-s4-q63|tsrc|--speed 4 -q 63"
    "tsrc-s8-q4|tsrc|--speed 8 -q 4"
    "tsrc-s8-q63|tsrc|--speed 8 -q 63"
    "tsrc-keyint7|tsrc|--speed 8 -q 32 --keyint 7"
    "tsrc-golden5|tsrc|--speed 8 -q 32 --golden-interval 5"
    "tsrc-part4|tsrc|--speed 4 -q 32 --partitions 4"
    "tsrc-tokparts3|tsrc|--speed 8 -q 32 --token-parts 3"
    "tsrc-bitrate|tsrc|--speed 4 --bitrate 150"
    "tsrc-webm|tsrc|--speed 8 -q 32 --webm"
    "odd-s4|odd|--speed 4 -q 32"
    "odd-s0|odd|--speed 0 -q 40"
    "carphone-s4|carphone|--speed 4 -q 32"
    "carphone-s8-q4|carphone|--speed 8 -q 4"
)
# ExCamera cases, on the local backend and on processes.
for b in local processes processes-norelay; do
    case $b in
        local) bf="" ;;
        processes) bf="--backend processes --store-dir @STORE@" ;;
        processes-norelay) bf="--backend processes --no-relay --store-dir @STORE@" ;;
    esac
    for w in 1 3; do
        CASES+=(
            "carphone-6x16-w$w-$b|carphone|--speed 4 -q 32 --workers $w --chunk-frames 6 --group-chunks 16 $bf"
            "carphone-2x3-w$w-$b|carphone|--speed 4 -q 32 --workers $w --chunk-frames 2 --group-chunks 3 $bf"
        )
    done
    CASES+=(
        "tsrc-2x3-s8-q63-w3-$b|tsrc|--speed 8 -q 63 --workers 3 --chunk-frames 2 --group-chunks 3 $bf"
        "tsrc-6x16-bitrate-w3-$b|tsrc|--speed 4 --bitrate 150 --workers 3 --chunk-frames 6 --group-chunks 16 $bf"
        "tsrc-2x3-keyint5-golden4-part2-w3-$b|tsrc|--speed 8 -q 20 --keyint 5 --golden-interval 4 --partitions 2 --workers 3 --chunk-frames 2 --group-chunks 3 $bf"
        "odd-2x3-w3-$b|odd|--speed 4 -q 32 --workers 3 --chunk-frames 2 --group-chunks 3 $bf"
    )
done

# encode BIN NAME CLIP FLAGS -> prints the output path
encode() {
    local bin=$1 name=$2 clip=$3 flags=$4 tag=$5
    local out="$WORK/$name.$tag.out" store="$WORK/store-$tag-$name"
    flags=${flags//@STORE@/$store}
    # shellcheck disable=SC2086
    if ! "$bin" encode "$WORK/$clip.y4m" -o "$out" --ivf --quiet $flags 2>"$WORK/$name.$tag.err"; then
        echo "FAIL $name ($tag): excam encode failed:" >&2
        cat "$WORK/$name.$tag.err" >&2
        return 1
    fi
    echo "$out"
}

declare -A want=()
if [ "$MODE" = compare ]; then
    [ -s "$HASHES" ] || { echo "identical.sh: $HASHES missing (run --record at the reference commit)" >&2; exit 1; }
    while read -r h n; do want[$n]=$h; done <"$HASHES"
fi
fails=0
n=0
recorded=()
for c in "${CASES[@]}"; do
    IFS='|' read -r name clip flags <<<"$c"
    if [ -n "${ONLY:-}" ] && ! grep -qE "$ONLY" <<<"$name"; then continue; fi
    # --webm is a container flag; the IVF flag above is dropped for it.
    if [[ $flags == *--webm* ]]; then flags=${flags/--webm/}; webm=1; else webm=0; fi
    out=$(encode "$EXCAM" "$name" "$clip" "$flags" new) || { fails=$((fails + 1)); continue; }
    if [ $webm = 1 ]; then
        # Re-encode as WebM: the container path is part of the matrix.
        # shellcheck disable=SC2086
        "$EXCAM" encode "$WORK/$clip.y4m" -o "$WORK/$name.webm" --quiet $flags
        out="$WORK/$name.webm"
    fi
    if [ $webm = 1 ]; then
        # A WebM file carries its muxing date: hash its VP8 frames, copied
        # into IVF by ffmpeg.
        h=$(ffmpeg -v error -i "$out" -c copy -f ivf - | sha256sum | cut -d' ' -f1)
    else
        h=$(sha256sum "$out" | cut -d' ' -f1)
    fi
    n=$((n + 1))
    # Every stream decodes in vpxdec to excam's own frames.
    a=$("$EXCAM" decode "$out" -o - --format i420 2>/dev/null | md5sum | cut -d' ' -f1)
    v=$(vpxdec --i420 -o - "$out" 2>/dev/null | md5sum | cut -d' ' -f1)
    if [ "$a" != "$v" ] || [ "$a" = d41d8cd98f00b204e9800998ecf8427e ]; then
        echo "FAIL $name: excam decode MD5 '$a' != vpxdec MD5 '$v'" >&2
        fails=$((fails + 1))
    fi
    case $MODE in
        record) recorded+=("$h $name") ;;
        compare)
            if [ -z "${want[$name]:-}" ]; then
                echo "FAIL $name: no recorded hash" >&2; fails=$((fails + 1))
            elif [ "${want[$name]}" != "$h" ]; then
                echo "FAIL $name: $h, recorded ${want[$name]}" >&2; fails=$((fails + 1))
            else
                echo "ok   $name $h"
            fi ;;
        against)
            if [ $webm = 1 ]; then
                # shellcheck disable=SC2086
                "$AGAINST" encode "$WORK/$clip.y4m" -o "$WORK/$name.old.webm" --quiet $flags
                other="$WORK/$name.old.webm"
            else
                other=$(encode "$AGAINST" "$name" "$clip" "$flags" old) || { fails=$((fails + 1)); continue; }
            fi
            if [ $webm = 1 ]; then
                same=$(cmp -s <(ffmpeg -v error -i "$out" -c copy -f ivf -) \
                    <(ffmpeg -v error -i "$other" -c copy -f ivf -) && echo 1 || echo 0)
            else
                same=$(cmp -s "$out" "$other" && echo 1 || echo 0)
            fi
            if [ "$same" = 1 ]; then echo "ok   $name $h"; else
                echo "FAIL $name: differs from $AGAINST's" >&2; fails=$((fails + 1)); fi ;;
    esac
done
if [ "$MODE" = record ]; then
    [ $fails = 0 ] || { echo "identical.sh: $fails failures; nothing recorded" >&2; exit 1; }
    # With ONLY, the other cases' recorded hashes are kept.
    if [ -n "${ONLY:-}" ] && [ -s "$HASHES" ]; then
        while read -r h0 n0; do
            grep -qE "$ONLY" <<<"$n0" || recorded+=("$h0 $n0")
        done <"$HASHES"
    fi
    printf '%s\n' "${recorded[@]}" >"$HASHES"
    echo "recorded $n hashes in $HASHES"
    exit 0
fi
[ $n -gt 0 ] || { echo "identical.sh: no case ran" >&2; exit 1; }
if [ $fails -gt 0 ]; then echo "identical.sh: $fails of $n cases FAILED" >&2; exit 1; fi
echo "identical.sh: all $n cases byte-identical"
