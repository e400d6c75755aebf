#!/usr/bin/env bash
# wirebeat replay benchmark: throughput and peak memory of offline replay on a large
# synthetic HTTP capture, next to baselines measured in the same run.
#
#   scripts/bench.sh                      # 1 GiB capture, best of 3
#   BENCH_SIZE_MB=256 BENCH_RUNS=5 scripts/bench.sh
#
# Environment:
#   BENCH_SIZE_MB      capture size in MiB (default 1024)
#   BENCH_RUNS         runs per case; best and median are reported (default 3)
#   BENCH_SEED         generator seed (default 1)
#   BENCH_CONCURRENCY  connections open at once in the capture (default 4000)
#   BENCH_SPAN_S       seconds of capture time the file spans (default 20)
#   BENCH_DB_SHARE     percent of connections replaying MySQL/PostgreSQL/Redis (default 10)
#   BENCH_CASES        space-separated subset of the cases below (default: all)
#   BENCH_NO_BUILD=1   use the existing target/release/wirebeat
#   BENCH_REDIS_PORT   port of the redis-server the redis case starts (default 16379)
#   BENCH_ES_STALL     seconds the es-stall case's server holds every bulk request (default 10)
#
# Cases, all replaying the same file from the page cache (one warm-up read first):
#   tcpdump      tcpdump -r FILE -w /dev/null                 (baseline: read + write nothing)
#   suricata     Suricata 7, single-threaded, no rules, eve-log of HTTP and PostgreSQL
#                transactions (scripts/bench/suricata.yaml): the peer to beat; installed
#                from Debian (bookworm-backports) when missing, skipped if that fails
#   decode       wirebeat -t -N, no tracked port              (read + decode L2-L4 + port filter)
#   parse        wirebeat -t -N                               (+ flows, reassembly, HTTP, pairing)
#   parse-w2     parse with pipeline.workers=2
#   parse-loop3  parse over the file 3 times (-l 3): peak RSS must not grow with bytes seen
#   console      wirebeat -t, NDJSON on stdout > /dev/null    (+ event encoding)
#   file         wirebeat -t, output.file (rotating NDJSON)   (the SPEC 7 reference case)
#                alone: like redis and es, the console output of the bundled config off
#   file-w2      file with pipeline.workers=2
#   redis        wirebeat -t, output.redis into a local redis-server list (RPUSH per
#                batch); the list is emptied before each run and its length checked
#   es           wirebeat -t, output.elasticsearch into examples/es_sink.rs on 127.0.0.1
#                (HTTP bulk requests, every item acknowledged): events/s the writer ships
#   es-stall     es, but the server holds every bulk request for BENCH_ES_STALL seconds
#                first: peak RSS while the queue is full and workers wait (when_full: block)
#
# Everything is written under target/bench/; nothing is sent on any network (the
# redis case talks to its own redis-server on 127.0.0.1).
set -euo pipefail

case ${1:-} in
    -h | --help)
        # The comment block above is the help.
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
        echo "A quick check of the generator and the correctness counters:"
        echo "  BENCH_SIZE_MB=16 BENCH_RUNS=1 BENCH_CASES='decode parse console' $0"
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: $0 [--help] (settings are environment variables)" >&2
        exit 2
        ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${BENCH_SIZE_MB:-1024}
RUNS=${BENCH_RUNS:-3}
SEED=${BENCH_SEED:-1}
CONCURRENCY=${BENCH_CONCURRENCY:-4000}
SPAN_S=${BENCH_SPAN_S:-20}
DB_SHARE=${BENCH_DB_SHARE:-10}
CASES=${BENCH_CASES:-"tcpdump suricata decode parse parse-w2 parse-loop3 console file file-w2 es es-stall redis"}
REDIS_PORT=${BENCH_REDIS_PORT:-16379}
REDIS_PID=
ES_STALL=${BENCH_ES_STALL:-10}
WORK=$ROOT/target/bench
PCAP=$WORK/big-${SIZE_MB}m-s${SEED}-c${CONCURRENCY}-db${DB_SHARE}-t${SPAN_S}.pcap
BIN=$ROOT/target/release/wirebeat
SINK=$ROOT/target/release/examples/es_sink
GEN=$ROOT/scripts/gen-traffic-pcap.py

# The bare read + decode loop: HTTP moved to an unused port, every other protocol
# disabled, so no connection is tracked.
NO_PROTOCOLS=(-E 'protocols.http.ports=[1]')
for p in mysql pgsql redis thrift dns; do NO_PROTOCOLS+=(-E "protocols.$p.enabled=false"); done

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- dependencies

need_pkgs=()
command -v tcpdump >/dev/null 2>&1 || [[ -x /usr/sbin/tcpdump ]] || need_pkgs+=(tcpdump)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [[ " $CASES " == *" redis "* ]]; then
    command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
fi
if ((${#need_pkgs[@]})); then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${need_pkgs[*]} and not root: install them first"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${need_pkgs[*]} and no apt-get: install them first"
    log "installing ${need_pkgs[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
TCPDUMP=$(command -v tcpdump || echo /usr/sbin/tcpdump)

# Suricata: Debian 13 has it in main; on Debian 12 the 7.x series is in backports.
# Without it (no root, no apt, no mirror) the case is left out with a message.
if [[ " $CASES " == *" suricata "* ]] && ! command -v suricata >/dev/null 2>&1; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    target=()
    if [[ $codename == bookworm ]]; then
        list=/etc/apt/sources.list.d/wirebeat-backports.list
        if [[ ! -f $list ]]; then
            echo "deb http://deb.debian.org/debian bookworm-backports main" |
                "${sudo[@]}" tee "$list" >/dev/null 2>&1 || true
        fi
        target=(-t bookworm-backports)
    fi
    log "installing suricata ${target[*]}"
    { command -v apt-get >/dev/null 2>&1 && "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            "${target[@]}" suricata >/dev/null 2>&1; } || true
    if ! command -v suricata >/dev/null 2>&1; then
        log "suricata could not be installed (needs root and a Debian mirror): case skipped"
        CASES=$(echo " $CASES " | sed 's/ suricata / /')
    fi
fi

# ---------------------------------------------------------------------- build

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    log "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --quiet)
    if [[ " $CASES " == *" es"* ]]; then
        (cd "$ROOT" && cargo build --release --locked --quiet --example es_sink)
    fi
fi
[[ -x $BIN ]] || die "$BIN is missing"
if [[ " $CASES " == *" es"* && ! -x $SINK ]]; then die "$SINK is missing"; fi

# ------------------------------------------------------------------- capture

mkdir -p "$WORK"
key=$(
    {
        sha256sum "$GEN" "$ROOT"/tests/pcaps/{http,mysql,pgsql,redis}/*.pcap \
            "$ROOT"/tests/pcaps/{mysql,pgsql,redis}/expected.json | awk '{print $1}'
        python3 --version
        echo "size=$SIZE_MB seed=$SEED concurrency=$CONCURRENCY db_share=$DB_SHARE span=$SPAN_S"
    } | sha256sum | awk '{print $1}'
)
if [[ -s $PCAP && -s $PCAP.json && -f $PCAP.key && $(cat "$PCAP.key") == "$key" ]]; then
    log "reusing $PCAP"
else
    log "generating $PCAP ($SIZE_MB MiB)"
    rm -f "$PCAP" "$PCAP.json" "$PCAP.key"
    python3 "$GEN" --out "$PCAP" --size-mb "$SIZE_MB" --seed "$SEED" --concurrency "$CONCURRENCY" \
        --db-share "$DB_SHARE" --span-s "$SPAN_S" >&2
    echo "$key" >"$PCAP.key"
fi
# warm the page cache so that every case reads from memory
cat "$PCAP" >/dev/null

# ------------------------------------------------------------------- measure

RAW=$WORK/raw.tsv
: >"$RAW"
EVDIR=$WORK/events
SCRATCH=$(mktemp -d "$WORK/run.XXXXXX")
SURI_DIR=$SCRATCH/suricata
sink_pid=
stop_sink() {
    if [[ -n $sink_pid ]]; then
        kill "$sink_pid" 2>/dev/null || true
        wait "$sink_pid" 2>/dev/null || true
        sink_pid=
    fi
}
trap 'stop_sink; rm -rf "$SCRATCH" "$EVDIR"; [[ -z $REDIS_PID ]] || kill "$REDIS_PID" 2>/dev/null' EXIT

# A fresh Elasticsearch stand-in on 127.0.0.1 for one run; sets SINK_PORT.
start_sink() {
    rm -f "$SCRATCH/port"
    "$SINK" --port-file "$SCRATCH/port" --stall-secs "$1" --exit-after-secs 1800 2>"$SCRATCH/sink.err" &
    sink_pid=$!
    for _ in $(seq 100); do
        [[ -s $SCRATCH/port ]] && break
        sleep 0.05
    done
    [[ -s $SCRATCH/port ]] || die "es_sink did not start"
    SINK_PORT=$(cat "$SCRATCH/port")
}

if [[ " $CASES " == *" redis "* ]]; then
    log "starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$SCRATCH" >"$SCRATCH/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not start: $(cat "$SCRATCH/redis.log")"
fi

case_cmd() {
    loops=1
    # every output case but console has that output alone (the bundled config also
    # turns console on)
    local file_out=(-E output.console.enabled=false -E "output.file.path=$EVDIR"
        -E output.file.filename=wirebeat)
    case $1 in
        tcpdump) cmd=("$TCPDUMP" -r "$PCAP" -w /dev/null) ;;
        suricata)
            cmd=(suricata --runmode single -r "$PCAP" -c "$ROOT/scripts/bench/suricata.yaml"
                -S /dev/null -k none -l "$SURI_DIR")
            ;;
        decode) cmd=("$BIN" -I "$PCAP" -t -N "${NO_PROTOCOLS[@]}") ;;
        parse) cmd=("$BIN" -I "$PCAP" -t -N) ;;
        parse-w2) cmd=("$BIN" -I "$PCAP" -t -N -E pipeline.workers=2) ;;
        parse-loop3)
            cmd=("$BIN" -I "$PCAP" -t -N -l 3)
            loops=3
            ;;
        console) cmd=("$BIN" -I "$PCAP" -t) ;;
        file) cmd=("$BIN" -I "$PCAP" -t "${file_out[@]}") ;;
        file-w2) cmd=("$BIN" -I "$PCAP" -t "${file_out[@]}" -E pipeline.workers=2) ;;
        redis)
            cmd=("$BIN" -I "$PCAP" -t -E output.console.enabled=false -E output.redis.enabled=true
                -E "output.redis.hosts=[\"127.0.0.1:$REDIS_PORT\"]")
            ;;
        es | es-stall)
            if [[ $1 == es ]]; then start_sink 0; else start_sink "$ES_STALL"; fi
            # every event must be delivered, however long the stalls make the drain
            cmd=("$BIN" -I "$PCAP" -t -E output.console.enabled=false
                -E output.elasticsearch.enabled=true
                -E "output.elasticsearch.hosts=[\"127.0.0.1:$SINK_PORT\"]"
                -E pipeline.shutdown_timeout=10m)
            ;;
        *) die "unknown case $1" ;;
    esac
}

# busy CPU time of the whole machine, in clock ticks: compared with the CPU time of the
# measured command, it shows how much other work ran during a measurement
busy_ticks() {
    local _cpu user nice system _idle _iowait irq softirq steal _rest
    read -r _cpu user nice system _idle _iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}
HZ=$(getconf CLK_TCK)

read -r load_before _ </proc/loadavg
for c in $CASES; do
    case_cmd "$c"
    log "$c: ${cmd[*]}"
    for ((r = 1; r <= RUNS; r++)); do
        # every run gets a fresh server (the stall counts from its start)
        if [[ $c == es* ]]; then
            stop_sink
            case_cmd "$c"
        fi
        rm -rf "$EVDIR" "$SURI_DIR" "$SCRATCH/err"
        [[ $c != suricata ]] || mkdir -p "$SURI_DIR"
        [[ $c != redis ]] || redis-cli -p "$REDIS_PORT" flushall >/dev/null
        b0=$(busy_ticks)
        t0=$EPOCHREALTIME
        # Suricata logs to stdout; everything else's stdout is the output under test
        out=/dev/null
        [[ $c != suricata ]] || out=$SCRATCH/err
        if ! /usr/bin/time -f '%M %U %S' -o "$SCRATCH/time" "${cmd[@]}" >>"$out" 2>>"$SCRATCH/err"; then
            cat "$SCRATCH/err" >&2
            die "$c failed"
        fi
        t1=$EPOCHREALTIME
        b1=$(busy_ticks)
        read -r rss user sys <"$SCRATCH/time"
        counters=$(grep -h 'final counters' "$SCRATCH/err" | tail -n1 | sed 's/.*: //' || true)
        if [[ $c == redis ]]; then
            counters="$counters redis_llen=$(redis-cli -p "$REDIS_PORT" llen packetbeat)"
        fi
        if [[ $c == suricata ]]; then
            # Suricata prints the packets it read; its transactions are its eve records
            counters="packets=$(sed -n 's/.*read 1 file, \([0-9]*\) packets.*/\1/p' "$SCRATCH/err" | tail -n1)"
            for t in http pgsql; do
                counters="$counters eve_$t=$(grep -c "\"event_type\":\"$t\"" "$SURI_DIR/eve.json" || true)"
            done
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$loops" "$t0" "$t1" "$rss" "$user" \
            "$sys" "$(((b1 - b0) * 1000 / HZ))" "$counters" >>"$RAW"
    done
    stop_sink
done
read -r load_after _ </proc/loadavg

# -------------------------------------------------------------------- report

REPORT=$WORK/report-$(date -u +%Y%m%dT%H%M%SZ).txt
commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    dirty=" (+ local changes)"
fi
{
    echo "wirebeat replay benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$dirty"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), kernel $(uname -r)"
    echo "load average (1 min): $load_before before the runs, $load_after after"
    python3 - "$RAW" "$PCAP.json" "$RUNS" <<'EOF'
import json, statistics, sys

raw, meta_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = json.load(open(meta_path))
rows = {}
order = []
for line in open(raw):
    case, run, loops, t0, t1, rss, user, sys_, busy_ms, counters = line.rstrip("\n").split("\t")
    if case not in rows:
        rows[case] = []
        order.append(case)
    c = dict(kv.split("=", 1) for kv in counters.split() if "=" in kv)
    rows[case].append({"wall": float(t1) - float(t0), "rss": int(rss) / 1024.0, "loops": int(loops),
                       "cpu": float(user) + float(sys_),
                       "busy": int(busy_ms) / 1000.0,
                       "c": {k: int(v) for k, v in c.items() if v.isdigit()}})

fbytes, frames, trans = meta["frame_bytes"], meta["frames"], meta["transactions"]
print("capture: %s: %d frames, %.1f MiB of frames (avg %.0f B), %d connections, "
      "%d transactions" % (meta_path[:-5].rsplit("/", 1)[-1], frames, fbytes / 2**20,
                           fbytes / frames, meta["connections"], trans))
print("runs per case: %d; wall = best (median); rates from the best run; cpu = user+sys "
      "of the best run; RSS = highest of the runs; x = wall per pass over the file divided "
      "by the baseline's; vs suricata = Suricata's wall divided by the case's, per pass "
      "(how many times faster)" % runs)

def best(case):
    return min(rows[case], key=lambda r: r["wall"])

base = {k: best(k)["wall"] for k in ("tcpdump", "decode", "suricata") if k in rows}
hdr = ("case", "wall s", "Gbit/s", "Mpps", "events/s", "cpu s", "Gbit/s/cpu",
       "RSS MiB", "x tcpdump", "x decode", "vs suricata")
table = []
for case in order:
    b = best(case)
    n = b["loops"]  # passes over the file: rates and ratios are per pass
    med = statistics.median(r["wall"] for r in rows[case])
    ev = b["c"].get("events_published", b["c"].get("transactions"))
    table.append((
        case, "%.3f (%.3f)" % (b["wall"], med),
        "%.2f" % (n * fbytes * 8 / b["wall"] / 1e9),
        "%.2f" % (n * frames / b["wall"] / 1e6),
        "-" if ev is None else "%.0f" % (ev / b["wall"]),
        "%.2f" % b["cpu"],
        "%.2f" % (n * fbytes * 8 / b["cpu"] / 1e9) if b["cpu"] > 0 else "-",
        "%.1f" % max(r["rss"] for r in rows[case]),
        "%.2f" % (b["wall"] / n / base["tcpdump"]) if "tcpdump" in base else "-",
        "%.2f" % (b["wall"] / n / base["decode"]) if "decode" in base else "-",
        "%.1fx" % (base["suricata"] / (b["wall"] / n)) if "suricata" in base else "-",
    ))
widths = [max(len(str(x[i])) for x in table + [hdr]) for i in range(len(hdr))]
fmt = "  ".join("%%-%ds" % w if i == 0 else "%%%ds" % w for i, w in enumerate(widths))
print()
print(fmt % hdr)
print(fmt % tuple("-" * w for w in widths))
for t in table:
    print(fmt % t)

print()
print("noise: median/best wall per case: " + ", ".join(
    "%s %.2f" % (case, statistics.median(r["wall"] for r in rows[case]) / best(case)["wall"])
    for case in order))
# CPU time used by other processes during the measurements, in cores (busy time of the
# machine minus the measured command's own CPU time, over the wall time; +-0.1 noise)
other = {case: max(0.0, sum(r["busy"] - r["cpu"] for r in rows[case]) /
                   sum(r["wall"] for r in rows[case])) for case in order}
print("other work during the runs (cores busy besides the measured command): " + ", ".join(
    "%s %.2f" % (case, other[case]) for case in order))
if max(other.values()) > 0.25:
    print("WARNING: other work ran during the measurements; numbers may be disturbed, "
          "run again when the machine is idle.")

# correctness: every wirebeat run must see every frame and every transaction
bad_counters = ("decode_errors", "truncated_frames", "flow_table_full", "flows_evicted", "tcp_ooo_dropped",
                "tcp_gaps", "tcp_buffer_overflows", "parse_errors", "parser_stopped",
                "unmatched_requests", "unmatched_responses", "pairing_evictions",
                "events_dropped")
problems = []
print()
print("correctness (generator: %d frames, %d transactions):" % (frames, trans))
for case in order:
    if case == "tcpdump":
        continue
    if case == "suricata":
        # not wirebeat: the frames it read, and its eve records for reference (its
        # PostgreSQL records group messages differently from Packetbeat's transactions)
        for i, r in enumerate(rows[case], 1):
            if r["c"].get("packets", 0) != frames:
                problems.append("  suricata run %d: packets=%d (expected %d)" % (
                    i, r["c"].get("packets", 0), frames))
        c = best(case)["c"]
        print("  %-11s packets=%d eve http=%d pgsql=%d" % (
            case, c.get("packets", 0), c.get("eve_http", 0), c.get("eve_pgsql", 0)))
        continue
    for i, r in enumerate(rows[case], 1):
        c = r["c"]
        n = r["loops"]
        notes = []
        if c.get("packets", 0) != n * frames:
            notes.append("packets=%d (expected %d)" % (c.get("packets", 0), n * frames))
        if case != "decode":
            if c.get("transactions", 0) != n * trans:
                notes.append("transactions=%d (expected %d, diff %+d)" % (
                    c.get("transactions", 0), n * trans, c.get("transactions", 0) - n * trans))
            if not case.startswith("parse") and c.get("events_published", 0) != n * trans:
                notes.append("events_published=%d" % c.get("events_published", 0))
        if "redis_llen" in c and c["redis_llen"] != c.get("events_published", 0):
            notes.append("redis list holds %d events" % c["redis_llen"])
        notes += ["%s=%d" % (k, c[k]) for k in bad_counters if c.get(k)]
        if notes:
            problems.append("  %s run %d: %s" % (case, i, ", ".join(notes)))
    c = best(case)["c"]
    print("  %-11s packets=%d transactions=%s events_published=%s" % (
        case, c.get("packets", 0), c.get("transactions", "-"), c.get("events_published", "-")))
if problems:
    print("MISMATCHES:")
    print("\n".join(problems))
else:
    print("  all runs: every frame read, every transaction found and published, no drop or "
          "error counter set")
EOF
} | tee "$REPORT"
log "report saved to $REPORT"
