#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets under fuzz/corpus/<target>/ from the
# committed fixtures (src/fuzzing.rs, `seeds`): tests/pcaps/**.pcap (raw for `pcap`,
# as frames for `decode`, as TCP conversations in the operation format for each
# protocol), configs/*.yml, scripts/fixtures/thrift/*.thrift, and RESP replies and
# bulk responses from the unit tests. Existing corpus files are kept (the seeds are
# rewritten in place), so a corpus grows across runs.
#
#   scripts/fuzz-seeds.sh [corpus-dir]      (default fuzz/corpus)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-$ROOT/fuzz/corpus}
cd "$ROOT"
cargo run --quiet --locked --features test-support --example fuzz_seeds -- "$DIR"
