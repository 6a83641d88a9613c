#!/usr/bin/env bash
# Speed of two excam builds side by side, with libvpx as the reference in
# the same run (issue 16: "speed unchanged or better", measured against
# the commit the issue was read at).
#
#   OLD=/path/to/old/excam NEW=/path/to/new/excam benches/speed-vs-commit.sh
#
# Build each as the codec-only CLI in a target dir of its own, e.g.
#   git worktree add /tmp/old 6d8ac3c && cd /tmp/old &&
#   CARGO_TARGET_DIR=target-nd cargo build --release -p excam-coordinator --no-default-features
#
# Decode: box 640x480 and its 1280x720 scaling (../shared/clips/make-clips.sh,
# ffmpeg's scale), encoded by vpxenc --ivf; `vpxdec --threads=1 --i420
# --md5` against `excam decode --md5` of each build, so all three do the
# same work (decode, then an MD5 of every frame's samples: older builds
# have no `--null` and write Y4M to /dev/null).
# Encode: carphone 176x144 and box 640x480 at speeds 0, 4, 8, quantizer 32,
# one thread; vpxenc at the same --cpu-used, pinned quantizer, no
# lookahead. The new build runs with its later defaults off
# (`--lag-in-frames 0 --auto-alt-ref 0 --threads 1`) so both do the same
# work; the script checks that the two builds' streams are the same bytes.
#
# Each case is timed by hyperfine (RUNS runs, medians) and counted by
# callgrind (instructions, one run; reliable on a loaded machine).
#
# Env: RUNS (default 5), DEC_FRAMES (default 60), ENC_FRAMES_SMALL
# (carphone, default 60), ENC_FRAMES_BIG (box, default 10), CALLGRIND=0 to
# skip the counts, OUT (work dir, default /tmp/excam-speed; kept).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "${OLD:?set OLD to the old excam}")
NEW=$(realpath "${NEW:?set NEW to the new excam}")
RUNS=${RUNS:-5}
DEC_FRAMES=${DEC_FRAMES:-60}
SMALL=${ENC_FRAMES_SMALL:-60}
BIG=${ENC_FRAMES_BIG:-10}
OUT=${OUT:-/tmp/excam-speed}
for t in hyperfine ffmpeg jq vpxenc vpxdec; do
    command -v "$t" >/dev/null || { echo "speed-vs-commit.sh: $t not found" >&2; exit 1; }
done
if [ "${CALLGRIND:-1}" = 1 ]; then
    command -v valgrind >/dev/null || { echo "speed-vs-commit.sh: valgrind not found" >&2; exit 1; }
fi
mkdir -p "$OUT"

# Clips.
src=$OUT/clips
mkdir -p "$src"
[ -s "$src/box_640x480_120f.y4m" ] || ../shared/clips/make-clips.sh "$src" >/dev/null
ffmpeg -v error -y -i "$src/box_640x480_120f.y4m" -frames:v "$DEC_FRAMES" -pix_fmt yuv420p "$OUT/box480.y4m"
ffmpeg -v error -y -i "$src/box_640x480_120f.y4m" -frames:v "$DEC_FRAMES" -vf scale=1280:720 -pix_fmt yuv420p "$OUT/box720.y4m"
ffmpeg -v error -y -i "$src/carphone_176x144_120f.y4m" -frames:v "$SMALL" -pix_fmt yuv420p "$OUT/carphone-enc.y4m"
ffmpeg -v error -y -i "$src/box_640x480_120f.y4m" -frames:v "$BIG" -pix_fmt yuv420p "$OUT/box-enc.y4m"
for c in box480 box720; do
    vpxenc --codec=vp8 --ivf --good --cpu-used=4 --threads=1 --disable-warning-prompt -q \
        --end-usage=q --min-q=20 --max-q=20 --cq-level=20 -o "$OUT/$c.ivf" "$OUT/$c.y4m"
done

# Instructions of one run of a command, by callgrind.
instructions() {
    local f=$OUT/cg.out
    valgrind --tool=callgrind --callgrind-out-file="$f" "$@" >/dev/null 2>&1
    awk '/^(summary|totals):/ {print $2; exit}' "$f"
}

# Each command's median wall seconds, in one hyperfine run. (hyperfine's
# user and system times were far below what callgrind counts on this
# machine, so they are not reported.)
medians() {
    hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$OUT/h.json" "$@" >&2
    jq -r '.results[].median' "$OUT/h.json"
}

row() { # case, then the median of vpx, old, new, then instructions of vpx, old, new
    local name=$1 tv=$2 to=$3 tn=$4 iv=$5 io=$6 in=$7
    awk -v n="$name" -v tv="$tv" -v to="$to" -v tn="$tn" -v iv="$iv" -v io="$io" -v in_="$in" 'BEGIN {
        c = (io != "" && in_ != "" && io > 0) ? sprintf("%.1fM | %.1fM | %.1fM | %+.2f%%", iv/1e6, io/1e6, in_/1e6, 100*(in_-io)/io) : "- | - | - | -";
        printf "| %s | %.3f | %.3f | %.3f | %+.1f%% | %s |\n", n, tv, to, tn, 100*(tn-to)/to, c
    }'
}

echo "| case | libvpx s | old s | new s | new vs old (wall) | libvpx instr | old instr | new instr | new vs old (instr) |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in box480 box720; do
    vpx=(vpxdec --codec=vp8 --threads=1 --i420 --md5 "$OUT/$c.ivf")
    old=("$OLD" decode "$OUT/$c.ivf" --md5)
    new=("$NEW" decode "$OUT/$c.ivf" --md5)
    # Both builds must decode the same frames.
    cmp <("$OLD" decode "$OUT/$c.ivf" --md5) <("$NEW" decode "$OUT/$c.ivf" --md5) \
        || { echo "speed-vs-commit.sh: $c decodes differently" >&2; exit 1; }
    mapfile -t t < <(medians "${vpx[*]}" "${old[*]}" "${new[*]}")
    iv= io= in=
    if [ "${CALLGRIND:-1}" = 1 ]; then
        iv=$(instructions "${vpx[@]}"); io=$(instructions "${old[@]}"); in=$(instructions "${new[@]}")
    fi
    row "decode $c ($DEC_FRAMES frames)" "${t[0]}" "${t[1]}" "${t[2]}" "$iv" "$io" "$in"
done
for c in carphone-enc box-enc; do
    for s in 0 4 8; do
        vpx=(vpxenc --codec=vp8 --ivf --good --cpu-used="$s" --threads=1 --passes=1 --lag-in-frames=0
             --auto-alt-ref=0 --disable-warning-prompt -q --end-usage=q --min-q=32 --max-q=32
             --cq-level=32 -o /dev/null "$OUT/$c.y4m")
        old=("$OLD" encode "$OUT/$c.y4m" -o "$OUT/$c-s$s-old.ivf" --quiet --speed "$s" -q 32)
        new=("$NEW" encode "$OUT/$c.y4m" -o "$OUT/$c-s$s-new.ivf" --quiet --speed "$s" -q 32
             --lag-in-frames 0 --auto-alt-ref 0 --threads 1)
        "${old[@]}" && "${new[@]}"
        cmp "$OUT/$c-s$s-old.ivf" "$OUT/$c-s$s-new.ivf" \
            || { echo "speed-vs-commit.sh: $c speed $s: the builds' streams differ" >&2; exit 1; }
        mapfile -t t < <(medians "${vpx[*]}" "${old[*]}" "${new[*]}")
        iv= io= in=
        if [ "${CALLGRIND:-1}" = 1 ]; then
            iv=$(instructions "${vpx[@]}"); io=$(instructions "${old[@]}"); in=$(instructions "${new[@]}")
        fi
        frames=$([ "$c" = carphone-enc ] && echo "$SMALL" || echo "$BIG")
        row "encode ${c%-enc} s$s ($frames frames)" "${t[0]}" "${t[1]}" "${t[2]}" "$iv" "$io" "$in"
    done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
