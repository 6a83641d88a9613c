#!/usr/bin/env bash
# RD/speed comparison of excam against vpxenc on box (640x480) and carphone
# (176x144), 120 frames each: quantizers 10..50, excam's slowest and fastest
# presets against vpxenc --good --cpu-used=0 and --rt --cpu-used=8 at fixed
# q (--anchor fixed, the default), or against vpxenc at its best: two-pass
# constrained quality with alt-ref frames and ARNR (--anchor best).
# Prints a table, the BD-rates (PSNR and SSIM) and time ratios per clip and
# their means over the clips; writes target/rd/<clip>.svg.
#
# Usage: benches/rd-harness.sh [--training | CLIP.y4m ...] [-- harness options]
#   Without clips it makes box and carphone with ../shared/clips/make-clips.sh
#   into target/bench-data/ (needs ffmpeg) and runs both. --training runs
#   the wider set benches/make-training-set.sh makes in target/training/.
#   Harness options (after --): --q 10,20,30,40,50  --speeds 0,8
#   --anchor fixed|best  --vpx-cpu 0,2  --lag-in-frames N  --auto-alt-ref 0|1
#   --arnr-maxframes N  --arnr-strength S  --golden-interval N
#   --golden-boost B  --no-vpxenc  --cache DIR  --svg PATH
#   Examples:
#     benches/rd-harness.sh --training -- --anchor best --speeds 0
#     benches/rd-harness.sh --training -- --anchor best --speeds 4 --vpx-cpu 2
# Needs vpxenc and vpxdec (apt-get install vpx-tools).
# Environment: SHARED=DIR  reference material (default: <repo>/../shared)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
target=${CARGO_TARGET_DIR:-$repo/target}
die() { echo "rd-harness.sh: $*" >&2; exit 1; }

clips=()
training=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    if [ "$1" = "--training" ]; then training=1; else clips+=("$1"); fi
    shift
done
[ "${1:-}" = "--" ] && shift

command -v vpxenc >/dev/null || die "vpxenc not found (apt-get install vpx-tools)"
command -v vpxdec >/dev/null || die "vpxdec not found (apt-get install vpx-tools)"

if [ $training = 1 ]; then
    mapfile -t -O ${#clips[@]} clips < <(bash "$repo/benches/make-training-set.sh" "$target/training")
fi
if [ ${#clips[@]} -eq 0 ]; then
    data=$target/bench-data
    [ -x "$SHARED/clips/make-clips.sh" ] || [ -f "$SHARED/clips/make-clips.sh" ] \
        || die "$SHARED/clips/make-clips.sh not found (set SHARED=DIR)"
    bash "$SHARED/clips/make-clips.sh" "$data" >/dev/null
    clips=("$data/carphone_176x144_120f.y4m" "$data/box_640x480_120f.y4m")
fi

(cd "$repo" && cargo build --release -q --workspace --bin rd-harness)
(cd "$repo" && "$target/release/rd-harness" "${clips[@]}" "$@")
