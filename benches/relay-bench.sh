#!/usr/bin/env bash
# Relay benchmark: rings of 100, 1,000 and 2,000 clients passing 1.5 MiB
# messages through a relay (in a child process, for its peak RSS), and raw
# single-stream quinn throughput on this machine. Loopback only.
# Extra arguments go to relay_bench (e.g. --clients 100,500 --size 262144).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bin relay_bench
exec "${CARGO_TARGET_DIR:-target}/release/relay_bench" "$@"
