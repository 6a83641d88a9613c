#!/usr/bin/env bash
# Prints the SHA-256 of the streams `excam encode` writes for a matrix of
# configurations (speeds, quantizers, bitrate, partitions, key/golden
# intervals, ExCamera [6,16] and [2,3] at 1 and 3 workers, the local and
# processes backends), one `name hash` line each. A change meant to leave
# the encoder's output alone runs it before and after and diffs:
#
#   benches/cli-output-hashes.sh > /tmp/before.txt   # on the old commit
#   benches/cli-output-hashes.sh > /tmp/after.txt    # on the new one
#   diff /tmp/before.txt /tmp/after.txt
#
# Every stream is also decoded with vpxdec, whose MD5 must equal the one
# excam's own decoder gives (`excam decode --md5`), else the script fails.
#
# Environment: EXCAM (the excam binary, default target/release/excam),
# CLIP (default ../shared/clips/carphone_176x144_120f.y4m), FRAMES
# (default 24).
set -euo pipefail
cd "$(dirname "$0")/.."
EXCAM=${EXCAM:-target/release/excam}
CLIP=${CLIP:-../shared/clips/carphone_176x144_120f.y4m}
FRAMES=${FRAMES:-24}
[[ -x $EXCAM ]] || { echo "no excam binary at $EXCAM" >&2; exit 1; }
[[ -f $CLIP ]] || { echo "no clip at $CLIP" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

configs=(
  "speed0 --speed 0"
  "speed4 --speed 4"
  "speed8 --speed 8"
  "q4 --quantizer 4"
  "q63 --quantizer 63"
  "bitrate300 --bitrate 300"
  "partitions4 --partitions 4"
  "keyint7-golden3 --keyint 7 --golden-interval 3"
  "excamera6x16-w3 --workers 3 --chunk-frames 6 --group-chunks 16"
  "excamera6x16-w1 --workers 1 --chunk-frames 6 --group-chunks 16"
  "excamera2x3-w3 --workers 3 --chunk-frames 2 --group-chunks 3"
  "excamera2x3-w1 --workers 1 --chunk-frames 2 --group-chunks 3"
  "excamera2x3-w3-speed8-bitrate --workers 3 --chunk-frames 2 --group-chunks 3 --speed 8 --bitrate 200"
  "processes6x16 --backend processes --workers 3 --chunk-frames 6 --group-chunks 16 --store-dir $out/store"
)
for c in "${configs[@]}"; do
  name=${c%% *}
  args=${c#* }
  # shellcheck disable=SC2086
  "$EXCAM" encode "$CLIP" -o "$out/$name.ivf" --ivf --quiet --limit "$FRAMES" $args
  # Per-frame MD5s of both decoders, in the test vectors' .md5 format.
  "$EXCAM" decode "$out/$name.ivf" --md5 | cut -d' ' -f1 > "$out/$name.excam.md5"
  vpxdec --i420 --md5 -o "$name-%wx%h-%4.i420" "$out/$name.ivf" | cut -d' ' -f1 > "$out/$name.vpxdec.md5"
  if ! cmp -s "$out/$name.excam.md5" "$out/$name.vpxdec.md5"; then
    echo "$name: excam's decoder and vpxdec disagree" >&2
    exit 1
  fi
  echo "$name $(sha256sum < "$out/$name.ivf" | cut -d' ' -f1) frames=$(wc -l < "$out/$name.vpxdec.md5")"
done
