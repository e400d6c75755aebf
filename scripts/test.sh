#!/usr/bin/env bash
# Sets up and runs every wirebeat check: formatting, lints, unit and integration tests.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
    echo "wirebeat: cargo not found. Install a Rust toolchain (1.89 or newer), e.g. with rustup." >&2
    exit 1
fi
# A C compiler for the bundled allocator (mimalloc), and python3 for the capture
# generator that the replay benchmark runs once in test mode.
missing=()
need cc || missing+=(gcc)
need python3 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "wirebeat: please install: ${missing[*]}" >&2
        exit 1
    fi
fi

# A real redis-server for the Redis output tests (tests/redis_output.rs). When it is
# installed, the tests must run: WIREBEAT_REQUIRE_SERVERS=1 turns a missing server
# into a failure instead of a skip.
if ! need redis-server && [ "$(id -u)" = 0 ] && need apt-get; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
        || echo "wirebeat: could not install redis-server; the Redis output tests will be skipped" >&2
    # The package starts a system instance on 6379; the tests start their own.
    if need systemctl; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi
if need redis-server; then
    export WIREBEAT_REQUIRE_SERVERS=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
