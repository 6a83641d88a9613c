#!/usr/bin/env bash
# RD/speed comparison of excam against vpxenc on box (640x480) and carphone
# (176x144), 120 frames each: quantizers 10..50, excam's slowest and fastest
# presets against vpxenc --good --cpu-used=0 and --rt --cpu-used=8.
# Prints one table and the BD-rates per clip; writes target/rd/<clip>.svg.
#
# Usage: benches/rd-harness.sh [CLIP.y4m ...] [-- harness options]
#   Without clips it makes box and carphone with ../shared/clips/make-clips.sh
#   into target/bench-data/ (needs ffmpeg) and runs both.
#   Harness options (after --): --q 10,20,30,40,50  --speeds 0,8
#   --golden-interval N  --golden-boost B  --no-vpxenc  --svg PATH
# Needs vpxenc and vpxdec (apt-get install vpx-tools).
# Environment: SHARED=DIR  reference material (default: <repo>/../shared)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
target=${CARGO_TARGET_DIR:-$repo/target}
die() { echo "rd-harness.sh: $*" >&2; exit 1; }

clips=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do clips+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift

command -v vpxenc >/dev/null || die "vpxenc not found (apt-get install vpx-tools)"
command -v vpxdec >/dev/null || die "vpxdec not found (apt-get install vpx-tools)"

if [ ${#clips[@]} -eq 0 ]; then
    data=$target/bench-data
    [ -x "$SHARED/clips/make-clips.sh" ] || [ -f "$SHARED/clips/make-clips.sh" ] \
        || die "$SHARED/clips/make-clips.sh not found (set SHARED=DIR)"
    bash "$SHARED/clips/make-clips.sh" "$data" >/dev/null
    clips=("$data/carphone_176x144_120f.y4m" "$data/box_640x480_120f.y4m")
fi

(cd "$repo" && cargo build --release -q -p excam-benches --bin rd-harness)
for clip in "${clips[@]}"; do
    (cd "$repo" && "$target/release/rd-harness" "$clip" "$@")
done
