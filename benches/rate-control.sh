#!/usr/bin/env bash
# Rate control accuracy of `excam encode` over the training set
# (benches/make-training-set.sh) plus box (640x480, 120 frames) and
# carphone (176x144, 120 frames): two-pass and one-pass VBR at three
# targets per clip, and CBR at the lowest, printing the achieved bitrate as
# a percentage of the target, the PSNR, the share of shown frames coded at
# the extreme q indices 0 or 127 (where no rate control can spend more or
# less: such a target is out of the content's reach), and for CBR the
# lowest level its decoder buffer reached (it must never go below 0).
#
# Targets scale with the clip's pixel rate: TARGETS_BPP bits per pixel
# (default "0.03 0.1 0.3"), i.e. for 352x288 at 30 fps about 91, 304 and
# 912 kbit/s.
#
# Usage: benches/rate-control.sh [CLIP.y4m ...]
#   Without clips: the training set (made if missing) plus box and carphone.
# Environment: SPEED=N (default 4; excam's default lookahead and alt-ref
#   frames come with it), TARGETS_BPP="...", SHARED=DIR, EXCAM=path.
# Needs ffmpeg (to make the clips). Builds excam unless EXCAM is set.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
target=${CARGO_TARGET_DIR:-$repo/target}
SPEED=${SPEED:-4}
TARGETS_BPP=${TARGETS_BPP:-0.03 0.1 0.3}
die() { echo "rate-control.sh: $*" >&2; exit 1; }

if [ -z "${EXCAM:-}" ]; then
    (cd "$repo" && cargo build --workspace --release --bins -q) || die "build failed"
    EXCAM=$target/release/excam
fi
[ -x "$EXCAM" ] || die "$EXCAM is not executable"

clips=("$@")
if [ ${#clips[@]} -eq 0 ]; then
    mapfile -t clips < <("$repo/benches/make-training-set.sh" 2>/dev/null)
    box=$target/training/box_vga_120f.y4m
    if [ ! -s "$box" ]; then
        ffmpeg -v error -y -i "$SHARED/clips/box.mp4" -frames:v 120 -pix_fmt yuv420p \
            "$box.tmp.y4m" 2>/dev/null || die "cannot make $box"
        mv "$box.tmp.y4m" "$box"
    fi
    clips+=("$box" "$SHARED/clips/carphone_176x144_120f.y4m")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# y4m_rate CLIP: prints "WIDTH HEIGHT FPS" from the Y4M header.
y4m_rate() {
    head -c 200 "$1" | head -n 1 | tr ' ' '\n' | awk '
        /^W/ { w = substr($0, 2) } /^H/ { h = substr($0, 2) }
        /^F/ { split(substr($0, 2), f, ":"); fps = f[1] / f[2] }
        END { printf "%d %d %.6f\n", w, h, fps }'
}

# run CLIP KBPS FLAGS...: prints "KBPS_ACHIEVED PSNR AT_LIMIT_% BUFMIN_MS"
# (BUFMIN "-" unless cbr).
run() {
    local clip=$1 kbps=$2
    shift 2
    local log=$work/log
    "$EXCAM" encode "$clip" -o "$work/out.ivf" --speed "$SPEED" --target-bitrate "$kbps" "$@" \
        --progress none 2>"$log" || { cat "$log" >&2; die "excam failed on $clip $*"; }
    local rate psnr buf
    rate=$(sed -n 's/.*: \([0-9.]*\) kbit\/s, PSNR overall \([0-9.]*\) dB.*/\1 \2/p' "$log")
    [ -n "$rate" ] || { cat "$log" >&2; die "no summary for $clip $*"; }
    buf=$(sed -n 's/^cbr buffer: lowest level \(-\?[0-9]*\) ms.*/\1/p' "$log")
    local limit
    limit=$("$EXCAM" info "$work/out.ivf" | awk '
        / shown / { n++; for (i = 1; i <= NF; i++) if ($i ~ /^q=/) { q = substr($i, 3); if (q == 0 || q == 127) l++ } }
        END { printf "%.0f", n ? 100 * l / n : 0 }')
    echo "$rate $limit ${buf:--}"
}

printf '%-22s %-9s %8s %10s %8s %8s %6s %9s\n' clip mode target achieved '%' PSNR q_lim% bufmin_ms
unreachable=()
worst2=0
worst1=0
cbr_min=
for clip in "${clips[@]}"; do
    read -r w h fps < <(y4m_rate "$clip")
    name=$(basename "$clip" .y4m)
    first=1
    for bpp in $TARGETS_BPP; do
        kbps=$(awk -v w="$w" -v h="$h" -v f="$fps" -v b="$bpp" 'BEGIN { printf "%d", w * h * f * b / 1000 + 0.5 }')
        modes=("vbr-2pass|--end-usage vbr --passes 2" "vbr-1pass|--end-usage vbr")
        if [ $first = 1 ]; then modes+=("cbr|--end-usage cbr"); fi
        first=0
        for m in "${modes[@]}"; do
            label=${m%%|*}
            # shellcheck disable=SC2086
            read -r got psnr limit buf < <(run "$clip" "$kbps" ${m#*|})
            pct=$(awk -v g="$got" -v t="$kbps" 'BEGIN { printf "%.1f", 100 * g / t }')
            printf '%-22s %-9s %8d %10.1f %8s %8.3f %6s %9s\n' "$name" "$label" "$kbps" "$got" "$pct" "$psnr" "$limit" "$buf"
            dev=$(awk -v p="$pct" 'BEGIN { d = p - 100; if (d < 0) d = -d; printf "%.1f", d }')
            # A target the content cannot reach (most frames at q index 0
            # or 127) is reported, not counted in the misses.
            if [ "$limit" -ge 50 ]; then
                unreachable+=("$name $label $kbps: $pct% with $limit% of frames at q index 0/127")
                dev=0
            fi
            case $label in
            vbr-2pass) worst2=$(awk -v a="$worst2" -v b="$dev" 'BEGIN { print (b > a ? b : a) }') ;;
            vbr-1pass) worst1=$(awk -v a="$worst1" -v b="$dev" 'BEGIN { print (b > a ? b : a) }') ;;
            cbr) cbr_min=$(awk -v a="${cbr_min:-$buf}" -v b="$buf" 'BEGIN { print (b < a ? b : a) }') ;;
            esac
        done
    done
done
echo
for u in "${unreachable[@]}"; do echo "out of reach: $u"; done
echo "two-pass vbr: largest miss ${worst2}% of the target (bar: 5%)"
echo "one-pass vbr: largest miss ${worst1}% of the target"
echo "cbr: lowest buffer level over all clips ${cbr_min:--} ms (must be >= 0)"
