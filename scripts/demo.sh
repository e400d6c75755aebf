#!/usr/bin/env bash
# Builds wirebeat and replays the bundled sample capture: one JSON event per line on
# stdout, final counters on stderr. No server needed.
# Usage: scripts/demo.sh [extra wirebeat flags, e.g. -E output.console.pretty=true]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "wirebeat: cargo not found. Install a Rust toolchain (1.89 or newer), e.g. with rustup." >&2
    exit 1
fi
if ! command -v cc >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null
fi
cargo build --release --locked --quiet
exec ./target/release/wirebeat -c configs/wirebeat.yml -I tests/pcaps/sample.pcap -t "$@"
