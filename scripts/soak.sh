#!/usr/bin/env bash
# wirebeat reliability figures (docs/RELIABILITY.md): floods and dead outputs, each
# printed with its wall time, packets/s, peak RSS and the counters that matter.
#
#   scripts/soak.sh                 # every check
#   SOAK_CHECKS="flood" scripts/soak.sh
#
# Checks:
#   flood   1,000,000 half-open connections (one SYN each, never answered) and
#           200,000 connections holding out-of-order segments behind holes
#           (scripts/gen-flood-pcap.py): peak RSS stays within the flow-table and
#           reassembly bounds, evictions and unmatched requests are counted
#   dead    a paced replay looping for ever into a Redis and an Elasticsearch that
#           are not there (port 1 of loopback); SIGTERM after 3 s must end the run
#           within pipeline.shutdown_timeout (2 s here) plus a margin, exit 2, and the
#           undelivered events counted
#   outage  an Elasticsearch (tests/common/fake_es.rs) and a redis-server going away
#           for 8 s during a 100 MiB replay (tests/soak.rs, ignored by cargo test):
#           every event delivered once (Redis: duplicates only from the batch in
#           flight, counted in events_resent), drop_newest counted exactly, RSS flat
#   fuzz    every cargo-fuzz target (fuzz/, harnesses in src/fuzzing.rs) for
#           SOAK_FUZZ_SECONDS each, one after the other, from the seeds of
#           scripts/fuzz-seeds.sh plus the corpus of earlier runs; a crash, a hang
#           over 5 s or one allocation over 512 MB fails, and the input is copied to
#           tests/fuzz/regressions/<target>/ (replayed by tests/fuzz_regressions.rs)
#
# Environment:
#   SOAK_CHECKS         subset of the checks above (default: all)
#   SOAK_NO_BUILD=1     use the existing target/release/wirebeat
#   SOAK_FUZZ_SECONDS   run time of each fuzz target (default 60)
#   SOAK_FUZZ_TARGETS   subset of the fuzz targets (default: all)
#
# Everything is written under target/soak/; nothing is sent anywhere but loopback.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHECKS=${SOAK_CHECKS:-"flood dead outage fuzz"}
WORK=$ROOT/target/soak
BIN=$ROOT/target/release/wirebeat
GEN=$ROOT/scripts/gen-flood-pcap.py
failed=0

log() { printf 'soak: %s\n' "$*" >&2; }
fail() {
    printf 'soak: FAIL: %s\n' "$*" >&2
    failed=1
}

[[ -x /usr/bin/time ]] || {
    log "installing time (for /usr/bin/time)"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
    else
        log "not root: install Debian's time package first"
        exit 1
    fi
}
if [[ ${SOAK_NO_BUILD:-0} != 1 && " $CHECKS " =~ \ (flood|dead)\  ]]; then
    log "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked --quiet)
fi
mkdir -p "$WORK"

# counter NAME FILE: the value of NAME in the final counters line, 0 when absent
counter() {
    grep -h 'final counters' "$2" | tail -n1 | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1 | grep . || echo 0
}

flood() {
    local name=$1 flows=$2 mode=$3 pcap=$WORK/$1.pcap
    [[ -s $pcap ]] || python3 "$GEN" --out "$pcap" --flows "$flows" --mode "$mode" >&2
    local t0 t1
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$WORK/$name.rss" "$BIN" -I "$pcap" -t -N 2>"$WORK/$name.err" || {
        fail "$name: wirebeat failed: $(tail -n2 "$WORK/$name.err")"
        return
    }
    t1=$EPOCHREALTIME
    local packets rss
    packets=$(counter packets "$WORK/$name.err")
    rss=$(($(cat "$WORK/$name.rss") / 1024))
    python3 -c "import sys; w=float(sys.argv[2])-float(sys.argv[1]); print('%-8s %9d packets  %.2f s  %6.0f k packets/s  peak RSS %d MiB' % (sys.argv[3], int(sys.argv[4]), w, int(sys.argv[4]) / w / 1e3, int(sys.argv[5])))" \
        "$t0" "$t1" "$name" "$packets" "$rss"
    grep -h 'final counters' "$WORK/$name.err" | sed 's/^/         /'
    # The flow table holds 131,072 flows at most: about 0.7 KB each plus buffers.
    ((rss < 256)) || fail "$name: peak RSS $rss MiB"
    [[ $(counter flow_table_full "$WORK/$name.err") == 0 ]] || fail "$name: flows refused"
}

dead() {
    local name=$1
    shift
    local t0 t1 code pid
    "$BIN" -c "$ROOT/configs/wirebeat.yml" -I "$ROOT/tests/pcaps/redis/basic.pcap" -l 0 \
        -E output.console.enabled=false -E pipeline.shutdown_timeout=2s "$@" \
        >/dev/null 2>"$WORK/$name.err" &
    pid=$!
    sleep 3
    t0=$EPOCHREALTIME
    kill -TERM "$pid"
    code=0
    wait "$pid" || code=$?
    t1=$EPOCHREALTIME
    local took
    took=$(python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1")
    echo "$name: ended ${took} s after SIGTERM, exit $code, $(grep -h 'could not be delivered' "$WORK/$name.err" | sed 's/^wirebeat: //')"
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 6 else 1)" "$took" ||
        fail "$name: took $took s to stop"
    [[ $code == 2 ]] || fail "$name: exit $code, expected 2"
}

# ---- outage: Elasticsearch and Redis coming back (tests/soak.rs) ----
outage() {
    local pcap=$WORK/mix-100m.pcap
    # The benchmark generator's 100 MiB mix, its other flags at their defaults.
    [[ -s $pcap ]] || python3 "$ROOT/scripts/gen-traffic-pcap.py" --out "$pcap" --size-mb 100 >&2
    if ! command -v redis-server >/dev/null; then
        log "outage: redis-server is not installed; the Redis case is skipped (scripts/test.sh installs it as root)"
    fi
    local code=0
    (cd "$ROOT" && cargo test --release --locked --quiet --features test-support --test soak \
        -- --ignored --nocapture --test-threads=1) >"$WORK/outage.out" 2>"$WORK/outage.err" || code=$?
    grep -hoE '(es-block|es-drop|redis): .*|[a-z_]+: SKIPPED.*' "$WORK/outage.out" "$WORK/outage.err" || true
    if ((code != 0)); then
        grep -hE 'panicked|assertion|left:|right:|FAILED' "$WORK/outage.out" "$WORK/outage.err" | head -n 20 >&2 || true
        fail "outage: tests/soak.rs failed (target/soak/outage.out, outage.err)"
    fi
}
# ---- end outage ----
FUZZ_TARGETS="decode pcap http mysql pgsql redis thrift dns thrift_idl config resp es_bulk"

# cargo-fuzz needs nightly features: the nightly toolchain when there is one, else
# stable with RUSTC_BOOTSTRAP=1. Only the fuzz crate is built this way.
fuzz_cargo() {
    if rustup run nightly rustc --version >/dev/null 2>&1; then
        cargo +nightly fuzz "$@"
    else
        RUSTC_BOOTSTRAP=1 cargo fuzz "$@"
    fi
}

fuzz() {
    local secs=${SOAK_FUZZ_SECONDS:-60} t code art log found
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    fi
    "$ROOT/scripts/fuzz-seeds.sh" >/dev/null
    log "cargo fuzz build -O"
    (cd "$ROOT/fuzz" && fuzz_cargo build -O) >"$WORK/fuzz-build.log" 2>&1 || {
        fail "fuzz: build failed: $(tail -n3 "$WORK/fuzz-build.log")"
        return
    }
    for t in ${SOAK_FUZZ_TARGETS:-$FUZZ_TARGETS}; do
        art=$ROOT/fuzz/artifacts/$t
        log=$WORK/fuzz-$t.log
        rm -rf "$art"
        mkdir -p "$art"
        code=0
        (cd "$ROOT/fuzz" && fuzz_cargo run -O "$t" "corpus/$t" -- \
            -max_total_time="$secs" -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=5 \
            -print_final_stats=1) \
            >"$log" 2>&1 || code=$?
        printf '%-10s %4d s  %10s execs  %7s execs/s  %s  corpus %s files  %s\n' "$t" "$secs" \
            "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)" \
            "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)" \
            "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)" \
            "$(find "$ROOT/fuzz/corpus/$t" -type f | wc -l)" \
            "$(((code)) && echo CRASHED || echo "no crash")"
        found=$(find "$art" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | head -n1)
        if ((code)) || [[ -n $found ]]; then
            if [[ -n $found ]]; then
                mkdir -p "$ROOT/tests/fuzz/regressions/$t"
                cp "$found" "$ROOT/tests/fuzz/regressions/$t/"
                fail "fuzz $t: $(grep -m1 -E 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log"); input copied to tests/fuzz/regressions/$t/$(basename "$found")"
            else
                fail "fuzz $t: exit $code without an artifact: $(tail -n3 "$log")"
            fi
        fi
    done
}

for c in $CHECKS; do
    case $c in
        flood)
            flood syn1m 1000000 syn
            flood ooo200k 200000 ooo
            ;;
        outage)
            outage
            ;;
        dead)
            dead dead-redis -E output.redis.enabled=true -E 'output.redis.hosts=["127.0.0.1:1"]'
            dead dead-es -E output.elasticsearch.enabled=true \
                -E 'output.elasticsearch.hosts=["127.0.0.1:1"]'
            ;;
        fuzz)
            fuzz
            ;;
        *)
            log "unknown check $c"
            exit 2
            ;;
    esac
done
if ((failed)); then
    exit 1
fi
log "all checks passed"
