#!/usr/bin/env bash
# wirebeat live-capture benchmark: tcpreplay sends the deterministic benchmark capture
# into a veth pair at increasing rates while wirebeat captures on the other end with
# af_packet; per rate it reports packets sent, captured, kernel drops and events, for 1
# and 2 workers, next to the offline replay (-I) of the same file.
#
#   scripts/bench-live.sh                               # 256 MiB capture
#   BENCH_SIZE_MB=1024 BENCH_RATES="1000 2000 top" scripts/bench-live.sh
#
# Environment:
#   BENCH_SIZE_MB     capture size in MiB (default 256)
#   BENCH_SEED        generator seed (default 1)
#   BENCH_RATES       tcpreplay rates in Mbit/s, `top` = --topspeed (default "250 500 1000 2000 top")
#   BENCH_WORKERS     worker counts to try (default "1 2")
#   BENCH_BUFFER_MB   interfaces.buffer_size_mb (default: wirebeat's default, 30)
#   BENCH_NO_BUILD=1  use the existing target/release/wirebeat
#
# Needs root (network namespaces). Everything stays inside two namespaces created
# here and deleted at exit; nothing is sent on the host's interfaces.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${BENCH_SIZE_MB:-256}
SEED=${BENCH_SEED:-1}
RATES=${BENCH_RATES:-"250 500 1000 2000 top"}
WORKERS=${BENCH_WORKERS:-"1 2"}
WORK=$ROOT/target/bench
PCAP=$WORK/live-${SIZE_MB}m-s${SEED}.pcap
BIN=$ROOT/target/release/wirebeat
GEN=$ROOT/scripts/gen-traffic-pcap.py
TAG=$$
NS_TX=wbtx-$TAG
NS_RX=wbrx-$TAG
IF_TX=wbt$TAG
IF_RX=wbr$TAG

log() { printf 'bench-live: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, raw sockets)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

need_pkgs=()
command -v tcpreplay >/dev/null || need_pkgs+=(tcpreplay)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v ethtool >/dev/null || need_pkgs+=(ethtool)
command -v python3 >/dev/null || need_pkgs+=(python3)
if ((${#need_pkgs[@]})); then
    command -v apt-get >/dev/null || die "missing ${need_pkgs[*]} and no apt-get"
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    log "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --quiet)
fi
[[ -x $BIN ]] || die "$BIN is missing"

mkdir -p "$WORK"
if [[ ! -s $PCAP || ! -s $PCAP.json ]]; then
    log "generating $PCAP ($SIZE_MB MiB)"
    python3 "$GEN" --out "$PCAP" --size-mb "$SIZE_MB" --seed "$SEED" >&2
fi
cat "$PCAP" >/dev/null

SCRATCH=$(mktemp -d "$WORK/live.XXXXXX")
cleanup() {
    for ns in "$NS_TX" "$NS_RX"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip link add name "$IF_TX" netns "$NS_TX" mtu 1500 type veth peer name "$IF_RX" netns "$NS_RX" mtu 1500
for pair in "$NS_TX:$IF_TX" "$NS_RX:$IF_RX"; do
    ns=${pair%%:*} dev=${pair#*:}
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$dev" up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
done

cat >"$SCRATCH/wirebeat.yml" <<EOF
interfaces:
  device: $IF_RX
  type: af_packet
${BENCH_BUFFER_MB:+  buffer_size_mb: $BENCH_BUFFER_MB}
shipper:
  name: bench-live
EOF

# A counter from wirebeat's final report (absent = 0).
counter() {
    local v
    v=$(grep -h 'final counters' "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1)
    echo "${v:-0}"
}

RESULTS=$SCRATCH/results.tsv
: >"$RESULTS"

# Offline replay of the same file: the ceiling for one and two workers.
for w in $WORKERS; do
    t0=$EPOCHREALTIME
    "$BIN" -c "$SCRATCH/wirebeat.yml" -I "$PCAP" -t -N -E "pipeline.workers=$w" 2>"$SCRATCH/off.err" >/dev/null
    t1=$EPOCHREALTIME
    printf 'offline\t%s\t-\t%s\t%s\t0\t%s\t%s\n' "$w" "$(counter "$SCRATCH/off.err" packets)" \
        "$(counter "$SCRATCH/off.err" packets)" "$(counter "$SCRATCH/off.err" transactions)" \
        "$(awk "BEGIN{print $t1 - $t0}")" >>"$RESULTS"
done

for w in $WORKERS; do
    for rate in $RATES; do
        if [[ $rate == top ]]; then speed=(--topspeed); else speed=(--mbps="$rate"); fi
        ip netns exec "$NS_RX" "$BIN" -c "$SCRATCH/wirebeat.yml" -e -N \
            -E "pipeline.workers=$w" -E pipeline.readers=1 >/dev/null 2>"$SCRATCH/live.err" &
        wb=$!
        for _ in $(seq 100); do
            grep -q 'capturing with' "$SCRATCH/live.err" 2>/dev/null && break
            sleep 0.05
        done
        sleep 0.3
        t0=$EPOCHREALTIME
        ip netns exec "$NS_TX" tcpreplay -q -i "$IF_TX" "${speed[@]}" "$PCAP" >"$SCRATCH/tcpreplay.out" 2>&1 ||
            { cat "$SCRATCH/tcpreplay.out" >&2; die "tcpreplay failed"; }
        t1=$EPOCHREALTIME
        sleep 0.5
        kill -INT "$wb"
        wait "$wb" || die "wirebeat exited with $?: $(cat "$SCRATCH/live.err")"
        sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$SCRATCH/tcpreplay.out" | head -n1)
        printf 'live\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$rate" "${sent:-?}" \
            "$(counter "$SCRATCH/live.err" packets)" "$(counter "$SCRATCH/live.err" kernel_drops)" \
            "$(counter "$SCRATCH/live.err" transactions)" "$(awk "BEGIN{print $t1 - $t0}")" >>"$RESULTS"
        log "workers=$w rate=$rate done"
    done
done

commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
echo "wirebeat live-capture benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), kernel $(uname -r)"
python3 - "$RESULTS" "$PCAP.json" <<'EOF'
import json, sys
meta = json.load(open(sys.argv[2]))
print("capture: %d frames, %.1f MiB of frames, %d transactions" % (
    meta["frames"], meta["frame_bytes"] / 2**20, meta["transactions"]))
print("one reader thread (pinned to the first core), workers pinned to the next cores;")
print("events = transactions parsed (-N: nothing published)")
print()
hdr = ("mode", "workers", "rate Mbit/s", "sent", "captured", "kernel drops", "events", "wall s", "kpps")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for line in open(sys.argv[1]):
    mode, w, rate, sent, cap, drops, ev, wall = line.rstrip("\n").split("\t")
    wall_f = float(wall)
    pps = (int(cap) / wall_f / 1000) if cap.isdigit() and wall_f > 0 else 0
    print("| %s | %s | %s | %s | %s | %s | %s | %.2f | %.0f |" % (
        mode, w, rate, sent, cap, drops, ev, wall_f, pps))
EOF
