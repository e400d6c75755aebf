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

# Live-capture tests (tests/live_capture.rs) run real servers and clients in network
# namespaces; they need root. As root, install what they use and make a missing
# prerequisite a failure instead of a skip.
if [ "$(id -u)" = 0 ]; then
    export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
    live=()
    need ip || live+=(iproute2)
    need ethtool || live+=(ethtool)
    need nginx || live+=(nginx)
    need curl || live+=(curl)
    need redis-server || live+=(redis-server)
    need redis-cli || live+=(redis-tools)
    need tcpdump || live+=(tcpdump)
    # DNS over live capture: dnsmasq answers dig (tests/live_capture.rs).
    need dnsmasq || live+=(dnsmasq-base)
    need dig || live+=(bind9-dnsutils)
    need tcpreplay || live+=(tcpreplay)
    # ICMP over live capture: ping (tests/live_capture.rs).
    need ping || live+=(iputils-ping)
    # The live view is checked in headless Chromium (tests/live_view.rs).
    need chromium || live+=(chromium)
    ldconfig -p 2>/dev/null | grep -q 'libpcap\.so' || live+=(libpcap0.8)
    if [ ${#live[@]} -gt 0 ] && need apt-get; then
        # Keep the packages' init scripts from starting system-wide nginx/redis: the
        # tests start their own inside namespaces.
        policy=/usr/sbin/policy-rc.d made_policy=0
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
        fi
        rc=0
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${live[@]}" >/dev/null || rc=$?
        [ "$made_policy" = 1 ] && rm -f "$policy"
        [ "$rc" = 0 ] || { echo "wirebeat: apt-get could not install: ${live[*]}" >&2; exit 1; }
    fi
    export WIREBEAT_REQUIRE_ROOT_TESTS=1
fi
# When redis-server is there, the Redis output tests must run: a missing server then
# fails them instead of skipping them.
if need redis-server; then
    export WIREBEAT_REQUIRE_SERVERS=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
