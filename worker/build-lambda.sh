#!/usr/bin/env bash
# Builds excam-worker's Lambda package (custom runtime provided.al2023: a
# zip holding the `bootstrap` executable) with the `dist` profile, and
# prints its size against Lambda's 50 MB limit for a direct zip upload.
#
#   worker/build-lambda.sh            x86_64
#   worker/build-lambda.sh --arm64    Graviton (needs cargo-lambda)
#
# With cargo-lambda (pip install cargo-lambda) the binary is cross-built
# with Zig against Lambda's glibc. Without it the binary is built for this
# machine and zipped by hand: the size is the same to within a few
# percent, but that binary may need a newer glibc than Lambda's, so deploy
# the cargo-lambda build.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=()
[ "${1:-}" = --arm64 ] && arch=(--arm64)
dir=target/lambda/excam-worker
if command -v cargo-lambda >/dev/null; then
    cargo lambda build --profile dist --output-format zip -p excam-worker "${arch[@]}"
else
    [ ${#arch[@]} = 0 ] || { echo "build-lambda.sh: --arm64 needs cargo-lambda" >&2; exit 1; }
    echo "build-lambda.sh: cargo-lambda not found; building for this machine and zipping by hand" >&2
    cargo build --profile dist -p excam-worker
    mkdir -p "$dir"
    cp target/dist/excam-worker "$dir/bootstrap"
    (cd "$dir" && rm -f bootstrap.zip && zip -q -9 bootstrap.zip bootstrap)
fi
zip="$dir/bootstrap.zip"
size=$(stat -c %s "$zip")
raw=$(unzip -Zt "$zip" | awk '{print $3}')
awk -v z="$size" -v r="$raw" -v p="$zip" 'BEGIN {
    printf "%s: %.1f MB zipped, bootstrap %.1f MB unzipped (Lambda limits: 50 MB zipped for a direct upload, 250 MB unzipped)\n", p, z / 1e6, r / 1e6 }'
[ "$size" -lt 50000000 ] || { echo "build-lambda.sh: the package is over Lambda's 50 MB direct-upload limit" >&2; exit 1; }
