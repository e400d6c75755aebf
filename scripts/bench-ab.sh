#!/usr/bin/env bash
# Paired comparison of wirebeat builds on the same capture: runs are interleaved
# (A, B, A, B, ...) so that a machine whose speed drifts (a shared VM) disturbs every
# build alike; prints best and median wall seconds and best user seconds per build.
#
#   scripts/bench-ab.sh BIN_A BIN_B [BIN_C ...]
#
# Environment:
#   AB_RUNS   runs per build (default 8)
#   AB_CASE   parse (-N, no publishing) or file (events to a file; default parse)
#   AB_PCAP   capture (default: the 1 GiB capture scripts/bench.sh makes)
#   AB_ARGS   more wirebeat arguments, e.g. "-E pipeline.workers=2"
#
# Copy each build aside first (cp target/release/wirebeat /tmp/wb-old), since a
# rebuild replaces the binary in place.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${AB_RUNS:-8}
CASE=${AB_CASE:-parse}
PCAP=${AB_PCAP:-$ROOT/target/bench/big-1024m-s1-c4000-db10-t20.pcap}
if [[ $# -lt 2 || ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 2
fi
[[ -f $PCAP ]] || { echo "bench-ab: $PCAP is missing (scripts/bench.sh makes it)" >&2; exit 1; }
case $CASE in
    parse) ARGS=(-N) ;;
    file)
        OUT=$(mktemp -d)
        trap 'rm -rf "$OUT"' EXIT
        ARGS=(-E output.console.enabled=false -E "output.file.path=$OUT" -E output.file.filename=wirebeat)
        ;;
    *) echo "bench-ab: AB_CASE must be parse or file" >&2; exit 2 ;;
esac
TIMES=$(mktemp -d)
trap 'rm -rf "$TIMES" ${OUT:+"$OUT"}' EXIT
cat "$PCAP" > /dev/null # into the page cache
for ((r = 0; r < RUNS; r++)); do
    i=0
    for bin in "$@"; do
        # shellcheck disable=SC2086 # AB_ARGS is a list of words
        /usr/bin/time -f "%e %U" -a -o "$TIMES/$i" "$bin" -I "$PCAP" -t "${ARGS[@]}" ${AB_ARGS:-} > /dev/null 2>&1
        i=$((i + 1))
    done
done
echo "case $CASE${AB_ARGS:+ $AB_ARGS}, $RUNS interleaved runs each, $(basename "$PCAP")"
i=0
for bin in "$@"; do
    sort -n "$TIMES/$i" | awk -v b="$bin" '{w[NR] = $1; u[NR] = $2; if (NR == 1 || $2 < um) um = $2}
        END { printf "%-40s wall best %.3f  median %.3f  user best %.3f\n", b, w[1], w[int((NR + 1) / 2)], um }'
    i=$((i + 1))
done
