#!/usr/bin/env bash
# Seeds the `decode` fuzz corpus with the first frames of every official
# VP8 test vector and every generated stream: each seed is a valid IVF file
# holding the first N frames (default 4), small enough for libFuzzer to
# mutate quickly.
#
# Usage: codec/fuzz/seed.sh [N]   (writes codec/fuzz/corpus/<target>/ for every target)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
shared=${SHARED:-$repo/../shared}
out=$here/corpus/decode
mkdir -p "$out"
python3 - "${1:-4}" "$out" "$shared"/vp8-test-vectors/*.ivf "$repo"/test-vectors/*.ivf <<'PY'
import os, struct, sys
n, out, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
for path in files:
    data = open(path, "rb").read()
    hlen = struct.unpack_from("<H", data, 6)[0]
    pos, frames = hlen, 0
    while frames < n and pos + 12 <= len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        pos += 12 + size
        frames += 1
    name = os.path.basename(path).removesuffix(".ivf")
    with open(os.path.join(out, name), "wb") as f:
        f.write(data[:min(pos, len(data))])
PY
echo "seeded $(ls "$out" | wc -l) inputs into $out"
# The `state` target: states after the first frames of generated streams.
cargo run --quiet --release --manifest-path "$repo/Cargo.toml" -p excam-codec \
    --example state_seeds -- "$here/corpus/state"
# The structured targets (decode_chain, encode_state, rebase): their seeds
# come from the harness (src/harness.rs), which builds its inputs from the
# repository's test vectors and excam's own encoder; the replay test
# writes them out.
EXCAM_WRITE_FUZZ_SEEDS=1 cargo test --quiet --release --manifest-path "$repo/Cargo.toml" \
    -p excam-codec --test fuzz_replay
