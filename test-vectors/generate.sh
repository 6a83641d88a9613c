#!/usr/bin/env bash
# Generates excam's extra VP8 test streams with libvpx's vpxenc, and for each
# stream the per-frame MD5s of libvpx's own decode (vpxdec), in the format of
# the official vectors' .ivf.md5 files:
#   <md5>  <name>-<W>x<H>-<NNNN>.i420      (one line per shown frame)
#
# The official vectors cover odd sizes, multiple token partitions, hidden
# altref frames, error resilience, encoder modes and extreme quantizers only
# thinly; these streams fill that in. Every stream is tiny so the whole
# directory stays well under 3 MB.
#
# Usage: test-vectors/generate.sh            (writes into test-vectors/)
# Needs: ffmpeg, vpxenc, vpxdec (Debian: ffmpeg vpx-tools), and the carphone
# clip at $SHARED/clips/carphone_176x144_120f.y4m where SHARED defaults to
# <repo>/../shared.
#
# Determinism: sources are ffmpeg lavfi generators (noise has a fixed seed) or
# the fixed carphone clip; vpxenc runs single-threaded with fixed settings, so
# re-running with the same ffmpeg/libvpx versions gives byte-identical streams.
# Other versions may encode differently; the .md5 files always match the
# committed .ivf files because both are made here together.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || dirname "$here")
SHARED=${SHARED:-$repo/../shared}
carphone=$SHARED/clips/carphone_176x144_120f.y4m
out=$here

for tool in ffmpeg vpxenc vpxdec; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found (apt-get install ffmpeg vpx-tools)" >&2; exit 1; }
done
[ -f "$carphone" ] || { echo "generate.sh: missing $carphone (set SHARED=...)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

manifest=$out/streams.tsv
printf 'name\tivf_frames\tshown_frames\tbytes\tsource\tvpxenc_args\tcovers\n' >"$manifest"

# src NAME FRAMES FFMPEG_INPUT_ARGS... -- FILTER
# Makes $tmp/NAME.y4m, 8-bit 4:2:0, with ffmpeg. Sizes are set with `scale`
# because lavfi generators round odd sizes down to even.
src() {
    local name=$1 frames=$2
    shift 2
    local args=()
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    shift
    local filter=$1
    ffmpeg -nostdin -v error -y "${args[@]}" -vf "$filter,setsar=1" \
        -frames:v "$frames" -pix_fmt yuv420p -sws_flags bicubic -bitexact \
        -f yuv4mpegpipe "$tmp/$name.y4m"
    sources_desc[$name]="${args[*]} | $filter"
}
declare -A sources_desc

# lavfi SRCNAME FRAMES W H GENERATOR
lavfi() {
    local name=$1 frames=$2 w=$3 h=$4 gen=$5
    src "$name" "$frames" -f lavfi -i "$gen" -- "scale=$w:$h"
}

# carphone SRCNAME FRAMES FILTER
carphone() {
    src "$1" "$2" -i "$carphone" -- "$3"
}

# enc STREAM SRCNAME "what it covers" VPXENC_ARGS...
# Encodes, then records vpxdec's per-frame MD5s next to the stream.
enc() {
    local name=$1 srcname=$2 covers=$3
    shift 3
    local ivf=$out/$name.ivf
    # --threads=1 keeps the encode deterministic; --passes defaults to 1 here
    # unless the arguments say otherwise (later flags win in vpxenc).
    vpxenc --codec=vp8 --ivf --threads=1 --passes=1 --disable-warning-prompt -q \
        "$@" -o "$ivf" "$tmp/$srcname.y4m" 2>"$tmp/vpxenc.log" ||
        { cat "$tmp/vpxenc.log" >&2; echo "vpxenc failed for $name" >&2; exit 1; }
    # Run vpxdec from an empty directory: with --md5 it writes no pictures, and
    # the -o pattern gives exactly the official file names in the output.
    (cd "$tmp" && vpxdec --codec=vp8 --md5 --i420 -o "$name-%wx%h-%4.i420" "$ivf") >"$ivf.md5"
    local nframes shown bytes
    # IVF header: frame count is a little-endian u32 at byte 24.
    nframes=$(od -An -t u4 -j 24 -N 4 "$ivf" | tr -d ' ')
    shown=$(wc -l <"$ivf.md5")
    bytes=$(stat -c %s "$ivf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$nframes" "$shown" "$bytes" \
        "${sources_desc[$srcname]}" "$*" "$covers" >>"$manifest"
    printf '%-32s %3s frames %3s shown %7s bytes\n' "$name" "$nframes" "$shown" "$bytes"
}

rm -f "$out"/*.ivf "$out"/*.ivf.md5

q30=(--good --cpu-used=0 --end-usage=q --min-q=30 --max-q=30 --cq-level=30)

# --- Sizes, including odd ones and sizes below one macroblock. -------------
for wh in 1x1 2x2 3x3 8x8 16x16 17x9 33x31 65x47 100x75; do
    w=${wh%x*} h=${wh#*x}
    lavfi "t2-$wh" 10 "$w" "$h" "testsrc2=size=176x144:rate=30"
    enc "excam-size-$wh" "t2-$wh" "frame size ${w}x${h}, testsrc2 scaled down" "${q30[@]}"
done
carphone cp-175x143 12 "crop=175:143:0:0"
enc excam-size-175x143 cp-175x143 "odd size 175x143 from real footage" "${q30[@]}"
carphone cp-176x144 12 "null"
enc excam-size-176x144 cp-176x144 "full carphone size, 12 frames" "${q30[@]}"

# Real footage, small and short, reused by most feature streams below.
carphone cp-96x80 20 "crop=160:128:8:8,scale=96:80"
carphone cp-64x48-30 30 "scale=64:48"

# --- Token partitions (log2: 1, 2, 4, 8 partitions). ---------------------
for tp in 1 2 3; do
    enc "excam-token-parts-$tp" cp-96x80 "--token-parts=$tp: $((1 << tp)) DCT token partitions" \
        "${q30[@]}" --token-parts="$tp"
done
carphone cp-65x47 12 "scale=65:47"
enc excam-token-parts-3-odd cp-65x47 "8 token partitions with fewer MB rows (3) than partitions" \
    "${q30[@]}" --token-parts=3

# --- Error resilience. ----------------------------------------------------
enc excam-error-resilient cp-96x80 "--error-resilient=1: no probability carry-over (refresh_entropy_probs=0)" \
    "${q30[@]}" --error-resilient=1
enc excam-error-resilient-rt cp-96x80 "--error-resilient=1 in realtime mode with 4 partitions" \
    --rt --cpu-used=6 --end-usage=cbr --target-bitrate=150 --error-resilient=1 --token-parts=2

# --- Loop filter sharpness 1..7. --------------------------------------------
lavfi mb-80x64 10 80 64 "mandelbrot=size=160x128:rate=30"
for s in 1 2 3 4 5 6 7; do
    enc "excam-sharpness-$s" mb-80x64 "--sharpness=$s: loop filter sharpness $s, mandelbrot" \
        "${q30[@]}" --sharpness="$s"
done

# --- Noise sensitivity (temporal denoiser) on noisy bars. --------------------
src bars-noise 16 -f lavfi -i "smptebars=size=96x64:rate=30" -- "noise=alls=25:allf=t+u:all_seed=1234"
# With this libvpx (1.12, Debian) --noise-sensitivity changes nothing in
# realtime mode and, in good mode, only the value 3 changed the output on this
# clip, so only that stream is kept: the others were byte-identical to
# streams without the option.
enc excam-noise-sens-3-good bars-noise "--noise-sensitivity=3, good mode" \
    --good --cpu-used=1 --end-usage=vbr --target-bitrate=200 --noise-sensitivity=3

# --- Hidden alt-ref frames (show_frame=0). ------------------------------------
enc excam-altref-2pass cp-64x48-30 "--auto-alt-ref=1 --lag-in-frames=16, two-pass: hidden altref frames" \
    --good --cpu-used=0 --passes=2 --end-usage=vbr --target-bitrate=100 --auto-alt-ref=1 --lag-in-frames=16
enc excam-altref-arnr cp-64x48-30 "hidden altref with ARNR filtering (maxframes 7, strength 5)" \
    --good --cpu-used=1 --passes=2 --end-usage=vbr --target-bitrate=80 --auto-alt-ref=1 --lag-in-frames=16 \
    --arnr-maxframes=7 --arnr-strength=5 --arnr-type=3
# (In one pass, VP8 in libvpx 1.12 made no altref here, so all are two-pass.)
lavfi mb-48x32-30 30 48 32 "mandelbrot=size=96x64:rate=30"
enc excam-altref-mandelbrot mb-48x32-30 "hidden altref, two-pass, zooming mandelbrot, 4 partitions" \
    --good --cpu-used=0 --passes=2 --end-usage=vbr --target-bitrate=60 --auto-alt-ref=1 --lag-in-frames=16 \
    --token-parts=2

# --- Frame dropping: starved CBR buffer, noisy content. --------------------------
src bars-noise-30 30 -f lavfi -i "smptebars=size=176x144:rate=30" -- "noise=alls=60:allf=t+u:all_seed=99"
enc excam-drop-frame bars-noise-30 "--drop-frame=60 with starved CBR: 30 input frames, most dropped (pts gaps)" \
    --rt --cpu-used=-6 --end-usage=cbr --target-bitrate=20 --drop-frame=60 \
    --buf-sz=200 --buf-initial-sz=100 --buf-optimal-sz=150 --undershoot-pct=100

# --- Realtime and good modes at several speeds. -------------------------------
# Negative cpu-used is a fixed speed. Positive values in realtime mode let
# libvpx pick the speed from measured encode time, which in principle is not
# reproducible; on clips this small it settles on the same speed every run.
for cpu in -3 -8 -16 8; do
    enc "excam-rt-cpu$cpu" cp-96x80 "--rt --cpu-used=$cpu, CBR 150 kbit/s" \
        --rt --cpu-used="$cpu" --end-usage=cbr --target-bitrate=150
done
for cpu in 0 3 5; do
    enc "excam-good-cpu$cpu" cp-96x80 "--good --cpu-used=$cpu, VBR 150 kbit/s" \
        --good --cpu-used="$cpu" --end-usage=vbr --target-bitrate=150
done
enc excam-best cp-64x48-30 "--best deadline, constrained quality" \
    --best --end-usage=cq --cq-level=20 --target-bitrate=200

# --- Quantizer extremes (pinned: min-q = max-q). --------------------------
carphone cp-48x32 8 "scale=48:32"
for q in 0 4 63; do
    enc "excam-q$q" cp-48x32 "quantizer pinned at $q (min-q=max-q=$q)" \
        --good --cpu-used=0 --end-usage=q --min-q="$q" --max-q="$q" --cq-level="$q"
done
enc excam-q0-63 cp-96x80 "free quantizer range 0..63 at low bitrate (q varies per frame)" \
    --good --cpu-used=0 --end-usage=vbr --min-q=0 --max-q=63 --target-bitrate=40

# --- GOP structure. --------------------------------------------------
enc excam-gop-long cp-64x48-30 "--kf-max-dist=999: one key frame, 29 inter frames" \
    "${q30[@]}" --kf-max-dist=999 --kf-min-dist=0
enc excam-gop-1 cp-48x32 "--kf-max-dist=1 --kf-min-dist=0: key frame every frame" \
    "${q30[@]}" --kf-max-dist=1 --kf-min-dist=0
enc excam-gop-3 cp-64x48-30 "--kf-max-dist=3: key frame every 3 frames" \
    "${q30[@]}" --kf-max-dist=3 --kf-min-dist=3

# --- Spatial resampling: at a starved CBR rate the encoder codes later key
# frames at 141x116 and then 106x87 with the header's scaling bits set (1 and
# 2); vpxdec outputs the coded size and ignores the scaling bits.
carphone cp-176x144-30 30 "null"
enc excam-resize-cbr cp-176x144-30 "--resize-allowed=1: size changes 176x144 -> 141x116 -> 106x87 at key frames, scaling bits set" \
    --rt --cpu-used=-6 --end-usage=cbr --target-bitrate=10 --kf-max-dist=10 \
    --resize-allowed=1 --resize-down=60 --resize-up=90

# --- Bitrate targets. --------------------------------------------------
enc excam-cbr-40 cp-96x80 "CBR 40 kbit/s (rate control pushes q up)" \
    --good --cpu-used=2 --end-usage=cbr --target-bitrate=40
enc excam-vbr-400 cp-96x80 "VBR 400 kbit/s (low q)" \
    --good --cpu-used=2 --end-usage=vbr --target-bitrate=400
enc excam-vbr-2pass cp-96x80 "two-pass VBR 150 kbit/s" \
    --good --cpu-used=1 --passes=2 --end-usage=vbr --target-bitrate=150

# Refresh the stream table at the end of README.md (everything after the
# "## Streams" line) so it always matches streams.tsv.
readme=$out/README.md
if [ -f "$readme" ] && grep -q '^## Streams$' "$readme"; then
    {
        sed '/^## Streams$/q' "$readme"
        echo
        echo '| stream | IVF frames | shown | bytes | covers |'
        echo '|---|---|---|---|---|'
        tail -n +2 "$manifest" | awk -F'\t' '{ printf "| `%s` | %s | %s | %s | %s |\n", $1, $2, $3, $4, $7 }'
    } >"$tmp/README.md"
    cp "$tmp/README.md" "$readme"
fi

echo "wrote $(ls "$out"/*.ivf | wc -l) streams, $(du -sh "$out" | cut -f1) in $out"
