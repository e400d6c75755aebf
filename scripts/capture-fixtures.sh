#!/usr/bin/env bash
# Records wirebeat's protocol test fixtures (pcaps) from real servers and clients.
#
# Two network namespaces joined by a veth pair are created for the run:
#   wb-cli  (veth wbc0, 10.77.0.1/24)  runs the clients and tcpdump
#   wb-srv  (veth wbs0, 10.77.0.2/24)  runs the servers
# The namespaces have no route anywhere else, so no traffic can leave them.
# Offloads are switched off on both ends, so every captured segment is at most
# one MTU (1500) and carries a real checksum.  Everything the script creates
# (namespaces, servers, tcpdump, temp dir) is removed on exit, also on failure.
#
# Usage: scripts/capture-fixtures.sh SET[:SCENARIO,...]...
#   SET is one of: http, mysql, pgsql, redis, thrift, dns, icmp, flows, all
#   With :SCENARIO,... only those scenarios of the set are recorded anew; the set's
#   other scenarios are taken from their committed pcaps (tests/pcaps/SET/NAME.pcap)
#   and summarised and checked exactly as if just recorded, so expected.json, the
#   .md files and README.md are rebuilt for the whole set while the unselected pcaps
#   stay byte for byte as they were.
# Environment: WB_FIXTURE_NS=PREFIX names the namespaces PREFIX-cli/PREFIX-srv (default
#   wb), so two recordings can run side by side with different prefixes.
# Each set is one function, set_<name>; adding a set (mysql, pgsql, redis, thrift)
# means writing that function and adding the name to SETS below.
#
# Output: tests/pcaps/<set>/<scenario>.pcap plus <scenario>.md (the traffic it holds,
# computed from the pcap by scripts/fixtures/pcap_summary.py), <set>/README.md and
# <set>/expected.json.  The previous files of a set are replaced only when the whole
# set was recorded and checked successfully.

set -euo pipefail

readonly SETS=(http mysql pgsql redis thrift dns icmp flows)

readonly NS_PREFIX=${WB_FIXTURE_NS:-wb}
[[ $NS_PREFIX =~ ^[a-z0-9]{1,8}$ ]] || { echo "WB_FIXTURE_NS must be 1-8 of [a-z0-9]" >&2; exit 2; }
readonly NS_CLI=$NS_PREFIX-cli NS_SRV=$NS_PREFIX-srv
# Interface names live inside the namespaces, so they need no prefix.
readonly IF_CLI=wbc0 IF_SRV=wbs0
readonly ADDR_CLI=10.77.0.1 ADDR_SRV=10.77.0.2
readonly MTU=1500

readonly WAIT_TIMEOUT=10     # seconds for a server/tcpdump to become ready or stop
readonly CLIENT_TIMEOUT=30   # seconds for one scenario's clients
readonly SETTLE=0.5          # seconds of capture after the connections are closed

readonly UA="wirebeat-fixture/1.0"
readonly PY=/usr/bin/python3
# A fixed mtime for the served files, so nginx's ETag and Last-Modified are stable.
readonly FILE_MTIME="2024-01-01 00:00:00 UTC"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPO_ROOT=${SCRIPT_DIR%/scripts}
readonly HELPERS=$SCRIPT_DIR/fixtures
readonly PCAP_ROOT=$REPO_ROOT/tests/pcaps

WORK=""          # private temp dir
declare -A ONLY=()   # SET -> " scenario scenario " when only some are recorded
PIDS=()          # background processes started by this script

log() { printf '[capture-fixtures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    cat >&2 <<EOF
Usage: $0 SET...
Records wirebeat's pcap test fixtures into tests/pcaps/<set>/.
Sets: ${SETS[*]} all
Must run as root (network namespaces, tcpdump); installs missing Debian packages.
EOF
    exit 2
}

# ------------------------------------------------------------------ processes

# stop_pid PID: SIGTERM (SIGINT for tcpdump-like children is passed explicitly by
# the caller), wait up to WAIT_TIMEOUT, then SIGKILL.  Only ever our own PIDs.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < WAIT_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop on SIG$sig, killing it"
        kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local pid=$1 p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# bg NAME CMD...: start CMD in the background, output to $WORK/log/NAME.log.
# The PID is left in BG_PID.  `ip netns exec` execs CMD, so the PID is CMD's.
bg() {
    local name=$1
    shift
    "$@" >"$WORK/log/$name.log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "timed out after ${secs}s waiting for $what"
}

cleanup() {
    local rc=$? pid ns
    set +e
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    teardown_net
    if [[ -n $WORK && -d $WORK ]]; then
        if ((rc != 0)); then
            log "logs of the failed run:"
            for f in "$WORK"/log/*.log; do
                [[ -s $f ]] || continue
                log "--- $(basename "$f")"
                tail -n 20 "$f" >&2
            done
        fi
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# ------------------------------------------------------------------ setup

# apt_install PKG...: installs Debian packages, keeping their init scripts from
# starting system-wide services (nginx, redis-server, ...) while they install.
apt_install() {
    local policy=/usr/sbin/policy-rc.d made_policy=0 ok=1
    command -v apt-get >/dev/null || die "missing $* and no apt-get to install them"
    log "installing Debian packages: $*"
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || ok=0
    if ((ok)); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || ok=0
    fi
    ((made_policy)) && rm -f "$policy"
    ((ok)) || die "apt-get could not install: $*"
}

ensure_packages() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v ss >/dev/null || missing+=(iproute2)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v ethtool >/dev/null || missing+=(ethtool)
    command -v curl >/dev/null || missing+=(curl)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    [[ -x $PY ]] || missing+=(python3)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

teardown_net() {
    local ns pid
    for ns in "$NS_CLI" "$NS_SRV"; do
        ns_exists "$ns" || continue
        # Leftovers of an earlier, interrupted run live only in these namespaces.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
    done
}

# no_offload NS IF: switch off segmentation/receive offloads and checksum offload.
no_offload() {
    local ns=$1 ifc=$2 feat state
    for feat in tso gso gro lro tx rx sg ufo; do
        ip netns exec "$ns" ethtool -K "$ifc" "$feat" off >/dev/null 2>&1 || true
    done
    for feat in tcp-segmentation-offload generic-segmentation-offload \
        generic-receive-offload tx-checksumming; do
        state=$(ip netns exec "$ns" ethtool -k "$ifc" | awk -v f="$feat:" '$1 == f {print $2}')
        [[ $state == off ]] || die "could not switch off $feat on $ifc in $ns (state: ${state:-unknown})"
    done
}

setup_net() {
    teardown_net
    log "creating namespaces $NS_CLI ($ADDR_CLI) and $NS_SRV ($ADDR_SRV)"
    ip netns add "$NS_CLI"
    ip netns add "$NS_SRV"
    local ns
    for ns in "$NS_CLI" "$NS_SRV"; do
        # IPv4 only: no router solicitations, DAD or MLD noise in the captures.
        # (/proc/sys/net shows the namespace of the process; no procps needed.)
        if [[ -d /proc/sys/net/ipv6 ]]; then
            ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 &&
                echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6'
        fi
        ip -n "$ns" link set lo up
    done
    ip link add "$IF_CLI" netns "$NS_CLI" mtu "$MTU" type veth \
        peer name "$IF_SRV" netns "$NS_SRV" mtu "$MTU"
    ip -n "$NS_CLI" addr add "$ADDR_CLI/24" dev "$IF_CLI"
    ip -n "$NS_SRV" addr add "$ADDR_SRV/24" dev "$IF_SRV"
    no_offload "$NS_CLI" "$IF_CLI"
    no_offload "$NS_SRV" "$IF_SRV"
    ip -n "$NS_CLI" link set "$IF_CLI" up
    ip -n "$NS_SRV" link set "$IF_SRV" up
    wait_until "$WAIT_TIMEOUT" "the veth link to come up" link_up
}

link_up() {
    ip -n "$NS_CLI" link show "$IF_CLI" | grep -q 'state UP' &&
        ip -n "$NS_SRV" link show "$IF_SRV" | grep -q 'state UP'
}

listening() { # NS PORT
    [[ -n $(ip netns exec "$1" ss -Hltn "sport = :$2") ]]
}

# True when no TCP connection in either namespace is still open or closing
# (TIME-WAIT is done as far as the wire is concerned).
all_closed() {
    local ns
    for ns in "$NS_CLI" "$NS_SRV"; do
        [[ -z $(ip netns exec "$ns" ss -Htn state all exclude listening exclude time-wait) ]] || return 1
    done
}

# ------------------------------------------------------------------ capture

# record SET NAME FUNC PCAP [FILTER]
# Runs FUNC (the clients of one scenario, with a timeout of their own) while tcpdump
# in the client namespace writes PCAP; waits until every connection has closed, lets
# the last packets settle, stops tcpdump and checks it dropped nothing.
record() {
    local set=$1 name=$2 func=$3 pcap=$4 filter=${5:-tcp and host $ADDR_SRV}
    local tlog=$WORK/log/tcpdump-$2.log pid
    if reuse_committed "$set" "$name" "$pcap"; then return 0; fi
    log "[$set] $name"
    wait_until "$WAIT_TIMEOUT" "earlier connections to close" all_closed
    # -U, --immediate-mode: write each packet at once; -Z root: keep the privileges to write the file.
    bg "tcpdump-$name" ip netns exec "$NS_CLI" tcpdump -i "$IF_CLI" -nn -U --immediate-mode -Z root \
        -s 65535 -w "$pcap" "$filter"
    pid=$BG_PID
    wait_until "$WAIT_TIMEOUT" "tcpdump to listen on $IF_CLI" grep -q "listening on" "$tlog"
    sleep 0.2
    if ! "$func" >"$WORK/log/client-$name.log" 2>&1; then
        die "client of scenario $name failed (see client-$name.log above)"
    fi
    wait_until "$WAIT_TIMEOUT" "the connections of $name to close" all_closed
    sleep "$SETTLE"
    stop_pid "$pid" INT
    forget_pid "$pid"
    grep -Eq "packets? captured" "$tlog" || die "tcpdump for $name did not finish cleanly"
    if grep -Eq "^[1-9][0-9]* packets? dropped by kernel" "$tlog"; then
        die "tcpdump dropped packets while recording $name"
    fi
}

# selected SET NAME: true when scenario NAME of SET is to be recorded in this run.
selected() {
    [[ -z ${ONLY[$1]:-} || ${ONLY[$1]} == *" $2 "* ]]
}

# reuse_committed SET NAME PCAP: when NAME is not selected, copy its committed pcap
# to PCAP (and say so) instead of recording it.  A scenario that has no committed
# pcap yet is always recorded.
reuse_committed() {
    local set=$1 name=$2 pcap=$3 committed=$PCAP_ROOT/$1/$2.pcap
    selected "$set" "$name" && return 1
    [[ -f $committed ]] || return 1
    log "[$set] $name (committed pcap, not recorded anew)"
    cp "$committed" "$pcap"
}

# capture SET NAME FUNC EXPECT_CONNS EXPECT_STATUSES DESCRIPTION [RST_OK [EXPECT_CUT]]
# Captures the traffic of FUNC (run with a timeout) into $WORK/out/SET/NAME.pcap,
# checks the connection count and response statuses and writes NAME.md.  With
# RST_OK=1 a connection may end with an RST (after its FINs).  EXPECT_CUT (default
# 0): requests whose body the client stopped sending.
capture() {
    local set=$1 name=$2 func=$3 want_conns=$4 want_status=$5 desc=$6 rst_ok=${7:-0} want_cut=${8:-0}
    local out=$WORK/out/$set pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record "$set" "$name" "$func" "$pcap"
    "$PY" "$HELPERS/pcap_summary.py" --json "$pcap" >"$out/$name.json"
    check_summary "$out/$name.json" "$name" "$want_conns" "$want_status" "$rst_ok" "$want_cut"
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh %s`; the tables below are computed\n' "$set"
        # shellcheck disable=SC2016
        printf 'from the pcap by `scripts/fixtures/pcap_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/pcap_summary.py" --markdown "$pcap"
    } >"$out/$name.md"
}

# check_summary JSON NAME CONNS "STATUS..." [RST_OK [CUT]] - every connection complete
# (handshake, both FINs, no RST unless RST_OK=1, no gaps), the expected number of
# connections and statuses, and CUT requests (default 0) whose body the client
# stopped sending.
check_summary() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, name, conns, statuses = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
rst_ok = len(sys.argv) > 5 and sys.argv[5] == "1"
want_cut = int(sys.argv[6]) if len(sys.argv) > 6 else 0
s = json.load(open(path))
err = []
cut = sum(1 for t in s["transactions"] if t.get("request_cut"))
if cut != want_cut:
    err.append("%d requests with a cut body, expected %d" % (cut, want_cut))
if len(s["connections"]) != conns:
    err.append("%d connections, expected %d" % (len(s["connections"]), conns))
for c in s["connections"]:
    if not (c["handshake"] and c["client_fin"] and c["server_fin"]):
        err.append("connection %d incomplete (handshake/FINs)" % c["id"])
    if (c["rst"] and not rst_ok) or c["gaps"] or c.get("incomplete_messages") or c.get("unmatched_responses"):
        err.append("connection %d has RST, gaps or incomplete messages" % c["id"])
    if c["max_segment_payload"] > 1460:
        err.append("connection %d has a %d-byte segment (offloads on?)" % (c["id"], c["max_segment_payload"]))
got = [str(t["status"]) for t in s["transactions"]]
if got != statuses:
    err.append("statuses %s, expected %s" % (" ".join(got), " ".join(statuses)))
if err:
    sys.exit("%s: %s" % (name, "; ".join(err)))
EOF
}

# install_set SET: replace tests/pcaps/SET with the freshly recorded files.
install_set() {
    local set=$1 src=$WORK/out/$1 dst=$PCAP_ROOT/$1
    "$PY" - "$src" <<'EOF'
import glob, json, os, sys
src = sys.argv[1]
out = {}
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    name = os.path.basename(path)[:-5]
    if name == "expected":
        continue
    s = json.load(open(path))
    for t in s["transactions"]:
        t.pop("request_headers", None)
    out[name] = {"connections": len(s["connections"]), "packets": s["packets"],
                 "transactions": s["transactions"]}
    if "other_commands" in s:  # requests that are no transactions (MySQL)
        out[name]["other_commands"] = s["other_commands"]
    if "runs" in s:  # the same capture summarised for several settings (flows)
        out[name]["runs"] = s["runs"]
with open(os.path.join(src, "expected.json"), "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")
EOF
    find "$src" -name '*.json' ! -name expected.json -delete
    mkdir -p "$dst"
    find "$dst" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.md' -o -name '*.json' \) -delete
    cp "$src"/* "$dst"/
    log "[$set] wrote $(find "$dst" -maxdepth 1 -name '*.pcap' | wc -l) pcaps to ${dst#"$REPO_ROOT"/}"
}

# ------------------------------------------------------------------ HTTP set

readonly HTTP_BASE=http://$ADDR_SRV
readonly PY_BASE=http://$ADDR_SRV:8080

# cli CMD...: run CMD in the client namespace with a timeout.
cli() { timeout "$CLIENT_TIMEOUT" ip netns exec "$NS_CLI" "$@"; }

# curl with fixed headers (fixed User-Agent, no proxy, HTTP/1.1, bounded time).
# Response bodies go to the client log.
hcurl() {
    cli curl -sS --http1.1 --noproxy '*' --max-time 20 -A "$UA" "$@"
}

start_http_servers() {
    local prefix=$WORK/nginx
    mkdir -p "$prefix/docroot" "$prefix/tmp"
    "$PY" "$HELPERS/make_http_docroot.py" "$prefix/docroot"
    find "$prefix/docroot" -type f -exec touch -d "$FILE_MTIME" {} +
    printf 'alice:{PLAIN}wonderland\n' >"$prefix/htpasswd"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@ADDR@|$ADDR_SRV|g" \
        "$HELPERS/nginx-http.conf.in" >"$prefix/nginx.conf"
    ip netns exec "$NS_SRV" nginx -t -q -p "$prefix/" -e "$prefix/error.log" \
        -c "$prefix/nginx.conf" || die "nginx rejected $prefix/nginx.conf"
    bg nginx ip netns exec "$NS_SRV" nginx -p "$prefix/" -e "$prefix/error.log" \
        -c "$prefix/nginx.conf"
    bg http_server ip netns exec "$NS_SRV" "$PY" "$HELPERS/http_server.py" \
        --bind "$ADDR_SRV" --port 8080
    wait_until "$WAIT_TIMEOUT" "nginx on $ADDR_SRV:80" listening "$NS_SRV" 80
    wait_until "$WAIT_TIMEOUT" "http_server.py on $ADDR_SRV:8080" listening "$NS_SRV" 8080
    # The ETag of file2k.txt for the conditional GET (fetched before any capture).
    HTTP_ETAG=$(hcurl -I "$HTTP_BASE/file2k.txt" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" {print $2}')
    HTTP_LASTMOD=$(hcurl -I "$HTTP_BASE/file2k.txt" | tr -d '\r' | awk -F': ' 'tolower($1) == "last-modified" {print $2}')
    [[ -n $HTTP_ETAG && -n $HTTP_LASTMOD ]] || die "nginx sent no ETag/Last-Modified for file2k.txt"
}

http_get_simple() {
    hcurl "$HTTP_BASE/"
}

http_keepalive() {
    # One curl invocation: the connection is reused for all three URLs.
    hcurl "$HTTP_BASE/" "$HTTP_BASE/file2k.txt" "$HTTP_BASE/missing.html"
}

http_head_304() {
    hcurl -I "$HTTP_BASE/file2k.txt" \
        --next -sS --http1.1 --noproxy '*' --max-time 20 -A "$UA" \
        -H "If-None-Match: $HTTP_ETAG" -H "If-Modified-Since: $HTTP_LASTMOD" \
        "$HTTP_BASE/file2k.txt"
}

http_gzip_large() {
    hcurl -o /dev/null -H 'Accept-Encoding: gzip' "$HTTP_BASE/big.txt" \
        --next -sS --http1.1 --noproxy '*' --max-time 20 -A "$UA" \
        "$HTTP_BASE/file2k.txt"
}

http_post_form() {
    cli curl -sS --http1.1 --noproxy '*' --max-time 20 \
        -A 'Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0' \
        -u alice:wonderland \
        -H 'X-Forwarded-For: 203.0.113.7, 10.0.0.1' \
        -H 'Cookie: a=1; b="two"' \
        --data 'user=alice&password=secret&x=1' \
        "$HTTP_BASE/login?q=1&password=hunter2"
}

http_query_charset() {
    # Query keys out of order, a repeated key, an escaped space and a bare key; a form
    # body whose Content-Type carries a parameter; answered text/html; charset=utf-8.
    hcurl -H 'Accept: text/html;q=0.9, */*;q=0.1' \
        -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' \
        --data 'b=2&z=form&c=%7E' \
        "$HTTP_BASE/search?z=last&a=1&m=x%20y&a=2&Pass=s3cret&flag"
}

http_expect_100() {
    hcurl -o /dev/null -H 'Expect: 100-continue' -H 'Content-Type: text/plain' \
        --data-binary "@$WORK/nginx/docroot/file2k.txt" "$PY_BASE/echo"
}

http_chunked() {
    hcurl "$PY_BASE/chunked"
}

http_close_delimited() {
    hcurl "$PY_BASE/close"
}

http_server_error() {
    hcurl "$PY_BASE/error"
}

http_pipelined() {
    cli "$PY" "$HELPERS/http_pipeline_client.py" "$ADDR_SRV" 80 / /file2k.txt /missing.html
}

# Early responses: nginx answers a POST before reading its body; the client sends
# the rest of the body after the response (see http_early_client.py).
http_early_302() {
    cli "$PY" "$HELPERS/http_early_client.py" "$ADDR_SRV" 80 \
        "POST /moved 302 body=32768" "GET /file2k.txt 200" "GET / 200 close"
}

http_early_401() {
    cli "$PY" "$HELPERS/http_early_client.py" "$ADDR_SRV" 80 \
        "POST /private/upload 401 body=32768" \
        "GET /private/ 200 auth=alice:wonderland" "GET /missing.html 404 close"
}

http_early_413() {
    cli "$PY" "$HELPERS/http_early_client.py" "$ADDR_SRV" 80 \
        "POST /upload 413 body=65536 stop"
}

http_sample() {
    # Chained with && : errexit does not apply inside the caller's `if`.
    hcurl "$HTTP_BASE/?lang=en" "$HTTP_BASE/file2k.txt" "$HTTP_BASE/nope.html" &&
    hcurl -H 'Content-Type: application/json' --data '{"id":1,"name":"wirebeat"}' "$PY_BASE/echo" &&
    hcurl "$HTTP_BASE/private/" \
        --next -sS --http1.1 --noproxy '*' --max-time 20 -A "$UA" -u alice:wonderland \
        "$HTTP_BASE/private/"
}

# A loss between the capture point and the client: the client's netfilter drops the
# first segment of nginx's response that tcpdump (which sees frames before netfilter)
# has already captured.  The client half-closes after its request, so both FINs are
# on the wire before nginx retransmits the response: a late data segment of a
# closed connection.
http_late_retransmit() {
    ip netns exec "$NS_CLI" nft -f - <<'EOF' || return 1
table inet wbloss {
  chain in {
    type filter hook input priority 0; policy accept;
    ip saddr 10.77.0.2 tcp sport 80 tcp flags & psh == psh numgen inc mod 1000000 0 counter drop
  }
}
EOF
    local rc=0
    cli "$PY" "$HELPERS/http_pipeline_client.py" --half-close "$ADDR_SRV" 80 / || rc=$?
    ip netns exec "$NS_CLI" nft list table inet wbloss | grep -q 'counter packets 1 ' || {
        log "late_retransmit: the drop rule did not drop exactly one segment"
        rc=1
    }
    ip netns exec "$NS_CLI" nft delete table inet wbloss
    return "$rc"
}

# A duplicating network element: the client's SYN and its request segment are sent
# again, byte for byte, 0.3 s after the connection closed (server FIN first, so the
# server is in TIME_WAIT and answers them as old duplicates).
http_dup_syn() {
    cli "$PY" "$HELPERS/late_copy.py" "$IF_CLI" "$ADDR_SRV" 8080 0.3 \
        curl -sS --http1.1 --noproxy '*' --max-time 20 -A "$UA" "$PY_BASE/close"
}

# Port reuse: two connections from the same client port one after the other (the
# server closes first, so the client's port is free at once and the server's
# TIME_WAIT accepts the new SYN): a new connection on a closed connection's tuple.
http_late_port_reuse() {
    hcurl --local-port 45123 "$PY_BASE/close" && sleep 0.3 &&
        hcurl --local-port 45123 "$PY_BASE/close"
}

# check_late SET NAME "--expect KIND=N ...": the pcap holds the late segments it was
# recorded for (scripts/fixtures/late_segments.py); the counts go into NAME.md.
check_late() {
    local md=$WORK/out/$1/$2.md pcap=$WORK/out/$1/$2.pcap line
    # shellcheck disable=SC2086 # the expectations are separate words
    line=$("$PY" "$HELPERS/late_segments.py" $3 "$pcap") || die "$2: $line"
    # shellcheck disable=SC2016 # literal backticks (markdown)
    printf '\nAfter the close (`scripts/fixtures/late_segments.py`): %s.\n' "$line" >>"$md"
}

set_http() {
    command -v nft >/dev/null || apt_install nftables
    start_http_servers
    capture http get_simple http_get_simple 1 "200" \
        "One connection to nginx, one transaction: \`GET /\` answered 200 with the 120-byte index.html (Content-Length)."
    capture http keepalive http_keepalive 1 "200 200 404" \
        "One keep-alive connection to nginx (one curl invocation, connection reused): \`GET /\` 200, \`GET /file2k.txt\` 200 (2048 bytes), \`GET /missing.html\` 404."
    capture http head_304 http_head_304 1 "200 304" \
        "One keep-alive connection to nginx: \`HEAD /file2k.txt\` 200 (headers only, Content-Length 2048 but no body), then a conditional \`GET /file2k.txt\` with If-None-Match and If-Modified-Since answered 304 Not Modified (no body)."
    capture http gzip_large http_gzip_large 1 "200 200" \
        "One keep-alive connection to nginx: \`GET /big.txt\` (102400-byte text file) with \`Accept-Encoding: gzip\`, answered gzip-compressed with Transfer-Encoding: chunked over many full-size (1448-byte payload) segments; then \`GET /file2k.txt\` without Accept-Encoding, answered uncompressed with Content-Length 2048."
    capture http post_form http_post_form 1 "200" \
        "One connection to nginx: \`POST /login?q=1&password=hunter2\` with body \`user=alice&password=secret&x=1\` (application/x-www-form-urlencoded, 30 bytes), headers \`Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\` (alice:wonderland), \`X-Forwarded-For: 203.0.113.7, 10.0.0.1\`, \`Cookie: a=1; b=\"two\"\` and a Firefox User-Agent; answered 200 \`welcome\\n\` (text/plain, 8 bytes)."
    capture http query_charset http_query_charset 1 "200" \
        "One connection to nginx: \`POST /search?z=last&a=1&m=x%20y&a=2&Pass=s3cret&flag\` (query keys out of order, \`a\` twice, an escaped space, a bare key) with \`Accept: text/html;q=0.9, */*;q=0.1\` and the form body \`b=2&z=form&c=%7E\` (\`Content-Type: application/x-www-form-urlencoded; charset=utf-8\`, 16 bytes); answered 200 \`<p>results</p>\\n\` with \`Content-Type: text/html; charset=utf-8\` (15 bytes)."
    capture http expect_100 http_expect_100 1 "200" \
        "One connection to the Python server (port 8080): \`POST /echo\` with \`Expect: 100-continue\` and a 2048-byte text/plain body. The server answers \`HTTP/1.1 100 Continue\` (25 bytes) after the request headers, the client then sends the body, and the final response is 200 echoing the 2048 bytes (Content-Length)."
    capture http chunked http_chunked 1 "200" \
        "One connection to the Python server (port 8080): \`GET /chunked\` answered 200 with Transfer-Encoding: chunked, five data chunks written ~20 ms apart, then the last chunk \`0\\r\\n\\r\\n\`."
    capture http close_delimited http_close_delimited 1 "200" \
        "One connection to the Python server (port 8080): \`GET /close\` answered \`HTTP/1.0 200 OK\` with \`Connection: close\` and no Content-Length; the body (20 lines) ends when the server closes the connection (server FIN first)."
    capture http server_error http_server_error 1 "500" \
        "One connection to the Python server (port 8080): \`GET /error\` answered 500 Internal Server Error with a short text/plain body (Content-Length)."
    capture http pipelined http_pipelined 1 "200 200 404" \
        "One connection to nginx; a raw-socket client sends three GET requests in ONE write (one TCP segment, HTTP/1.1 pipelining): \`GET /\`, \`GET /file2k.txt\`, \`GET /missing.html\` (the last with Connection: close), then reads the three responses 200, 200, 404; nginx closes after the last."
    capture http early_302 http_early_302 1 "302 200 200" \
        "One keep-alive connection to nginx; a raw-socket client (\`scripts/fixtures/http_early_client.py\`) sends \`POST /moved\` announcing a 32768-byte body: the head, 20 ms later the first 4096 body bytes, then it waits for the whole response before sending the rest. nginx answers \`302 Moved Temporarily\` (Location /file2k.txt) right after the head, before any of the body has arrived. Then \`GET /file2k.txt\` 200 and \`GET /\` 200 (Connection: close) on the same connection."
    capture http early_401 http_early_401 1 "401 200 404" \
        "One keep-alive connection to nginx, as \`early_302\`: \`POST /private/upload\` with a 32768-byte body and no credentials is answered \`401 Unauthorized\` (auth_basic) right after the head; the body follows the response. Then \`GET /private/\` with Basic auth alice:wonderland 200 and \`GET /missing.html\` 404 (Connection: close) on the same connection."
    capture http early_413 http_early_413 1 "413" \
        "One connection to nginx: \`POST /upload\` announcing a 65536-byte body to a location with \`client_max_body_size 1k\`. nginx answers \`413 Request Entity Too Large\` with \`Connection: close\` as soon as it has the head; the client, having sent 4096 body bytes 20 ms after the head, reads the answer, sends no more and closes (client FIN first). The request in the capture is cut: its body is what was sent." 0 1
    capture http sample http_sample 3 "200 200 404 200 401 200" \
        "Mixed capture for the README demo, three connections. 1: nginx keep-alive \`GET /?lang=en\` 200, \`GET /file2k.txt\` 200, \`GET /nope.html\` 404. 2: Python server \`POST /echo\` JSON body 200. 3: nginx keep-alive \`GET /private/\` 401 (no credentials), then \`GET /private/\` with Basic auth alice:wonderland 200."
    capture http late_retransmit http_late_retransmit 1 "200" \
        "One connection to nginx; a raw-socket client sends \`GET /\` (Connection: close) and half-closes at once (its FIN rides on the request segment). The client's netfilter drops the first copy of nginx's response after tcpdump captured it (a loss between the capture point and the client), so the capture holds the response, nginx's FIN, then nginx's retransmission of the response after both FINs: a late data segment of a closed connection. wirebeat must publish the transaction once."
    check_late http late_retransmit "--expect data=1 --expect syn=0 --expect synack=0 --expect new=0"
    capture http dup_syn http_dup_syn 1 "200" \
        "One connection to the Python server (port 8080): \`GET /close\` answered close-delimited (server FIN first). 0.3 s after curl exited, \`scripts/fixtures/late_copy.py\` sends the client's SYN (its original ISN) and its request segment again, byte for byte, as a duplicating network element would; the server, in TIME_WAIT, answers the SYN with an ACK, the client's kernel resets, and the request copy draws the server's RST. wirebeat must publish the transaction once and open no second connection." 1
    check_late http dup_syn "--expect syn=1 --expect data=1 --expect synack=0 --expect new=0"
    capture http late_port_reuse http_late_port_reuse 2 "200 200" \
        "Two connections to the Python server (port 8080) from the same client port 45123, 0.3 s apart: \`GET /close\` twice, each answered close-delimited (server FIN first). The second SYN, with a new ISN, reaches the server's TIME_WAIT socket of the first connection, which accepts it: a new connection on the 5-tuple of a closed one. wirebeat must open it and publish both transactions."
    check_late http late_port_reuse "--expect new=1 --expect syn=0 --expect data=0 --expect synack=0"
    write_http_readme
    install_set http
    cp "$PCAP_ROOT/http/sample.pcap" "$PCAP_ROOT/sample.pcap"
}

write_http_readme() {
    local out=$WORK/out/http
    "$PY" - "$out" >"$out/README.md" <<'EOF'
import json, os, sys
out = sys.argv[1]
order = ["get_simple", "keepalive", "head_304", "gzip_large", "post_form", "query_charset",
         "expect_100", "chunked", "close_delimited", "server_error", "pipelined", "early_302",
         "early_401", "early_413", "sample", "late_retransmit", "dup_syn", "late_port_reuse"]
print("# HTTP fixtures\n")
print("Recorded by `sudo scripts/capture-fixtures.sh http` (see ../README.md): real nginx")
print("(port 80) and `scripts/fixtures/http_server.py` (port 8080) at 10.77.0.2, clients")
print("(curl, `scripts/fixtures/http_pipeline_client.py`) at 10.77.0.1, captured with")
print("tcpdump on the client end of the veth pair, MTU 1500, offloads off.\n")
print("Each `<name>.md` describes one pcap in detail; `expected.json` holds the same")
print("numbers for the integration tests. Byte counts are TCP payload bytes of each")
print("HTTP message as captured (start line + headers + body on the wire, chunk framing")
print("included); the interim `100 Continue` of `expect_100` (25 bytes) is not counted")
print("in the final response.\n")
print("| pcap | conn | method | path | query | status | request B | response B | body |")
print("|---|---|---|---|---|---|---|---|---|")
for name in order:
    s = json.load(open(os.path.join(out, name + ".json")))
    for t in s["transactions"]:
        body = t["response_framing"]
        if t["content_encoding"]:
            body += ", " + t["content_encoding"]
        if t["interim_responses"]:
            body += ", after %s" % ", ".join("%d (%d B)" % (x["status"], x["bytes"]) for x in t["interim_responses"])
        print("| %s.pcap | %d | %s | `%s` | %s | %d | %d | %d | %s |" % (
            name, t["connection"], t["method"], t["path"],
            "`%s`" % t["query"] if t["query"] is not None else "-",
            t["status"], t["request_bytes"], t["response_bytes"], body))
EOF
}

# ------------------------------------------------------------------ Thrift set

readonly THRIFT_PORT=9090

# thrift_capture NAME TRANSPORT PROTOCOL DESCRIPTION [ONEWAY_TYPE]: one connection of
# the calculator client (scripts/fixtures/thrift_calc.py) to a fresh server on port
# 9090, both using TRANSPORT (socket|framed) and PROTOCOL (binary|binary-nonstrict|
# compact); the client sends the oneway zip() with message type ONEWAY_TYPE (oneway,
# the default, or call).
# PYTHONHASHSEED is fixed so sets go on the wire in the same order every run.
# Thrift scenarios are always recorded anew (their check needs the client's own log
# of the calls), also when only some are selected.
thrift_capture() {
    local name=$1 transport=$2 protocol=$3 desc=$4 oneway_type=${5:-oneway}
    local out=$WORK/out/thrift gen=$WORK/thrift-gen pcap tlog tpid spid
    mkdir -p "$out"
    pcap=$out/$name.pcap
    tlog=$WORK/log/tcpdump-$name.log
    log "[thrift] $name"
    bg "thrift-server-$name" ip netns exec "$NS_SRV" env PYTHONHASHSEED=0 "$PY" "$HELPERS/thrift_calc.py" server \
        --gen "$gen" --bind "$ADDR_SRV" --port "$THRIFT_PORT" --transport "$transport" --protocol "$protocol"
    spid=$BG_PID
    wait_until "$WAIT_TIMEOUT" "the Thrift server on $ADDR_SRV:$THRIFT_PORT" listening "$NS_SRV" "$THRIFT_PORT"
    wait_until "$WAIT_TIMEOUT" "earlier connections to close" all_closed
    bg "tcpdump-$name" ip netns exec "$NS_CLI" tcpdump -i "$IF_CLI" -nn -U --immediate-mode -Z root \
        -s 65535 -w "$pcap" "tcp and host $ADDR_SRV"
    tpid=$BG_PID
    wait_until "$WAIT_TIMEOUT" "tcpdump to listen on $IF_CLI" grep -q "listening on" "$tlog"
    sleep 0.2
    if ! cli env PYTHONHASHSEED=0 "$PY" "$HELPERS/thrift_calc.py" client --gen "$gen" --host "$ADDR_SRV" \
        --port "$THRIFT_PORT" --transport "$transport" --protocol "$protocol" \
        --oneway-type "$oneway_type" --out "$WORK/calls-$name.json" >"$WORK/log/client-$name.log" 2>&1; then
        die "client of scenario $name failed (see client-$name.log above)"
    fi
    wait_until "$WAIT_TIMEOUT" "the connection of $name to close" all_closed
    sleep "$SETTLE"
    stop_pid "$tpid" INT
    forget_pid "$tpid"
    stop_pid "$spid"
    forget_pid "$spid"
    grep -Eq "packets? captured" "$tlog" || die "tcpdump for $name did not finish cleanly"
    if grep -Eq "^[1-9][0-9]* packets? dropped by kernel" "$tlog"; then
        die "tcpdump dropped packets while recording $name"
    fi
    "$PY" "$HELPERS/thrift_summary.py" --transport "$transport" --protocol "${protocol%-nonstrict}" \
        --idl "$HELPERS/thrift/calc.thrift" "$pcap" >"$out/$name.json"
    "$PY" - "$out/$name.json" "$WORK/calls-$name.json" "$name" "$transport" "$protocol" "$desc" <<'PYEOF'
import json, sys
path, calls_path, name, transport, protocol, desc = sys.argv[1:]
s = json.load(open(path))
calls = json.load(open(calls_path))
err = []
if len(s["connections"]) != 1:
    err.append("%d connections, expected 1" % len(s["connections"]))
for c in s["connections"]:
    if not (c["handshake"] and c["client_fin"] and c["server_fin"]) or c["rst"] or c["gaps"]:
        err.append("connection %d incomplete (handshake/FINs/RST/gaps)" % c["id"])
    if c["max_segment_payload"] > 1460:
        err.append("segment of %d bytes (offloads on?)" % c["max_segment_payload"])
tx = s["transactions"]
if [t["method"] for t in tx] != [c["method"] for c in calls]:
    err.append("methods %s differ from the client's calls" % [t["method"] for t in tx])
for t, c in zip(tx, calls):
    want = c.get("type", "call")
    if t["type"] != want:
        err.append("%s sent as %s, not %s" % (t["method"], t["type"], want))
    if t["oneway"] != bool(c.get("oneway")):
        err.append("%s: oneway is %s for the summary" % (t["method"], t["oneway"]))
    if (t["reply"] is None) != bool(c.get("oneway")):
        err.append("%s: reply %s" % (t["method"], t["reply"]))
    t["client"] = c
if err:
    sys.exit("%s: %s" % (name, "; ".join(err)))
s.update({"transport": transport, "protocol": protocol, "description": desc})
json.dump(s, open(path, "w"), indent=2, sort_keys=True)
PYEOF
}

set_thrift() {
    if ! command -v thrift >/dev/null || ! "$PY" -c 'import thrift' 2>/dev/null; then
        apt_install thrift-compiler python3-thrift
    fi
    local gen=$WORK/thrift-gen
    mkdir -p "$gen"
    thrift --gen py -out "$gen" "$HELPERS/thrift/shared.thrift"
    thrift --gen py -out "$gen" "$HELPERS/thrift/calc.thrift" 2>"$WORK/log/thrift-gen.log"
    chmod -R a+rX "$gen"
    local calls="ping(), add(1, 1), add16(1, 1), echo(\"hello wirebeat\"), bytes(00 01 fe ff), range(20), describe([1,2,3], {x,y}, {k:7}) returning a struct with every type, oneway zip(), ping(), calculate(1, 1/0) throwing InvalidOperation, calculate(2, 15-10), oneway zip() just before closing"
    thrift_capture binary_socket socket binary \
        "TBinaryProtocol (strict) over TSocket (unframed): $calls."
    thrift_capture binary_framed framed binary \
        "TBinaryProtocol (strict) over TFramedTransport: $calls."
    thrift_capture binary_nonstrict socket binary-nonstrict \
        "TBinaryProtocol, old non-strict header (strictWrite=False) on both sides, over TSocket: $calls."
    thrift_capture compact_socket socket compact \
        "TCompactProtocol over TSocket (unframed): $calls."
    thrift_capture compact_framed framed compact \
        "TCompactProtocol over TFramedTransport: $calls."
    thrift_capture binary_oneway_call socket binary \
        "TBinaryProtocol (strict) over TSocket, the client sending the oneway zip() with message type CALL (the server, knowing zip is oneway, sends no reply): $calls." \
        call
    "$PY" - "$WORK/out/thrift" >"$WORK/out/thrift/README.md" <<'PYEOF'
import glob, json, os, sys
out = sys.argv[1]
print("# Thrift fixtures\n")
print("Recorded by `sudo scripts/capture-fixtures.sh thrift`: the Apache Thrift Python")
print("library (Debian python3-thrift), server `scripts/fixtures/thrift_calc.py` at")
print("10.77.0.2:9090 with code generated from `scripts/fixtures/thrift/calc.thrift`,")
print("client at 10.77.0.1, captured with tcpdump, MTU 1500, offloads off.\n")
print("`expected.json` holds, per pcap, every message as split by the Thrift library")
print("(`scripts/fixtures/thrift_summary.py`): byte counts on the wire (frame length")
print("included) and, under `client`, what the client sent and received.\n")
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path)[:-5]
    s = json.load(open(path))
    print("## %s.pcap\n\n%s\n" % (name, s["description"]))
    print("| method | type | oneway | reply | request B | response B |")
    print("|---|---|---|---|---|---|")
    for t in s["transactions"]:
        print("| %s | %s | %s | %s | %d | %d |" % (
            t["method"], t["type"], "yes" if t["oneway"] else "no", t["reply"] or "-",
            t["request_bytes"], t["response_bytes"]))
    print()
PYEOF
    "$PY" - "$WORK/out/thrift" <<'PYEOF'
import glob, json, os, sys
src = sys.argv[1]
out = {}
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    out[os.path.basename(path)[:-5]] = json.load(open(path))
    os.remove(path)
with open(os.path.join(src, "expected.json"), "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")
PYEOF
    local dst=$PCAP_ROOT/thrift
    mkdir -p "$dst"
    find "$dst" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.md' -o -name '*.json' \) -delete
    cp "$WORK/out/thrift"/* "$dst"/
    log "[thrift] wrote $(find "$dst" -maxdepth 1 -name '*.pcap' | wc -l) pcaps to ${dst#"$REPO_ROOT"/}"
}

# ------------------------------------------------------------------ PostgreSQL set

# The PostgreSQL scenarios live in scripts/fixtures/pgsql.sh.
set_pgsql() {
    # shellcheck source=scripts/fixtures/pgsql.sh
    source "$HELPERS/pgsql.sh"
    pgsql_main
}

# ------------------------------------------------------------------ Redis set

readonly REDIS_PORT=6379

ensure_redis_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

start_redis_server() {
    local dir=$WORK/redis
    mkdir -p "$dir"
    # No persistence, no protection (the namespace is private), its own directory.
    # DEBUG PROTOCOL (every RESP3 reply type) needs enable-debug-command.
    bg redis-server ip netns exec "$NS_SRV" redis-server --bind "$ADDR_SRV" \
        --port "$REDIS_PORT" --protected-mode no --save '' --appendonly no \
        --dir "$dir" --logfile '' --enable-debug-command yes
    wait_until "$WAIT_TIMEOUT" "redis-server on $ADDR_SRV:$REDIS_PORT" listening "$NS_SRV" "$REDIS_PORT"
}

# rcli ARGS...: redis-cli against the fixture server. Without a command, commands
# are read from stdin, one a line, each sent after the previous reply.
rcli() { cli redis-cli -h "$ADDR_SRV" -p "$REDIS_PORT" "$@"; }

redis_basic() {
    rcli <<'CMDS'
SET key1 hello
GET key1
GET missing
INCR counter
INCR counter
EXISTS key1 counter missing
LPUSH list a b c
LRANGE list 0 -1
HSET hash f1 v1 f2 v2
HGETALL hash
set key3 me
DEL key1 key3
PING
CMDS
}

redis_errors() {
    rcli <<'CMDS'
LPUSH elist x
GET elist
NOSUCHCMD foo
SET justkey
SET num abc
INCR num
CMDS
}

redis_large() {
    head -c 204800 /dev/zero | tr '\0' 'x' >"$WORK/redis/big.txt"
    rcli -x SET big <"$WORK/redis/big.txt" &&
        rcli GET big | wc -c &&
        rcli STRLEN big
}

redis_inline() {
    cli "$PY" "$HELPERS/redis_client.py" inline "$ADDR_SRV" "$REDIS_PORT"
}

redis_pipeline_bench() {
    cli redis-benchmark -h "$ADDR_SRV" -p "$REDIS_PORT" -P 16 -n 208 -t set,get -c 1 -q
}

redis_pipeline_cli() {
    "$PY" - >"$WORK/redis/pipe.resp" <<'GEN'
import sys
def resp(*a):
    out = "*%d\r\n" % len(a)
    for x in a:
        out += "$%d\r\n%s\r\n" % (len(x), x)
    return out
cmds = []
for i in range(100):
    cmds.append(resp("SET", "pk:%d" % i, "value-%d" % i))
for i in range(100):
    cmds.append(resp("INCR", "pcounter"))
for i in range(100):
    cmds.append(resp("GET", "pk:%d" % i))
sys.stdout.write("".join(cmds))
GEN
    rcli --pipe <"$WORK/redis/pipe.resp"
}

redis_pubsub() {
    local ready=$WORK/redis/subscribed sub
    rm -f "$ready"
    cli "$PY" "$HELPERS/redis_client.py" subscriber "$ADDR_SRV" "$REDIS_PORT" "$ready" 4 &
    sub=$!
    wait_until "$WAIT_TIMEOUT" "the subscriber to subscribe" test -e "$ready"
    rcli <<'CMDS'
PUBLISH news hello
PUBLISH weather sunny
PUBLISH sports nobody-listens
PUBLISH news second
CMDS
    wait "$sub"
}

redis_multi() {
    rcli <<'CMDS'
MULTI
SET mk 1
INCR mk
LPUSH mk x
GET mk
EXEC
MULTI
SET mk2 2
DISCARD
MULTI
NOSUCHCMD
EXEC
CMDS
}

redis_resp3() {
    # redis-cli -3 starts with HELLO 3. It cannot read every RESP3 type (big
    # numbers), so DEBUG PROTOCOL runs from the raw-socket client.
    rcli -3 <<'CMDS'
HSET h3 a 1 b 2
HGETALL h3
SADD s3 x y
SMEMBERS s3
ZADD z3 1.5 m
ZSCORE z3 m
ZRANGE z3 0 -1 WITHSCORES
GET nokey
PING
CMDS
    cli "$PY" "$HELPERS/redis_client.py" resp3 "$ADDR_SRV" "$REDIS_PORT"
}

# redis_capture NAME FUNC CONNS TRANSACTIONS ERRORS DESCRIPTION
# Like capture, with the Redis summary: every connection complete, CONNS
# connections, TRANSACTIONS transactions of which ERRORS have status Error.
redis_capture() {
    local name=$1 func=$2 conns=$3 txs=$4 errors=$5 desc=$6
    local out=$WORK/out/redis pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record redis "$name" "$func" "$pcap"
    "$PY" "$HELPERS/redis_summary.py" --json "$pcap" >"$out/$name.json"
    "$PY" - "$out/$name.json" "$name" "$conns" "$txs" "$errors" <<'CHECK'
import json, sys
path, name = sys.argv[1], sys.argv[2]
conns, txs, errors = map(int, sys.argv[3:6])
s = json.load(open(path))
err = []
if len(s["connections"]) != conns:
    err.append("%d connections, expected %d" % (len(s["connections"]), conns))
for c in s["connections"]:
    if not (c["handshake"] and c["client_fin"] and c["server_fin"]):
        err.append("connection %d incomplete (handshake/FINs)" % c["id"])
    if c["rst"] or c["gaps"]:
        err.append("connection %d has RST or gaps" % c["id"])
    if c["max_segment_payload"] > 1460:
        err.append("connection %d has a %d-byte segment (offloads on?)" % (c["id"], c["max_segment_payload"]))
t = s["transactions"]
if len(t) != txs:
    err.append("%d transactions, expected %d: %s" % (len(t), txs, " | ".join(
        "%s %s" % (x["query"][:40], x.get("error", x.get("return_value", ""))[:30]) for x in t[:40])))
if any(x.get("unmatched") for x in t):
    err.append("unmatched commands")
e = sum(1 for x in t if x["status"] == "Error")
if e != errors:
    err.append("%d errors, expected %d" % (e, errors))
if err:
    sys.exit("%s: %s" % (name, "; ".join(err)))
CHECK
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh redis`; the tables below are computed\n'
        # shellcheck disable=SC2016
        printf 'from the pcap by `scripts/fixtures/redis_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/redis_summary.py" --markdown "$pcap"
    } >"$out/$name.md"
}

set_redis() {
    ensure_redis_packages
    start_redis_server
    redis_capture basic redis_basic 1 14 0 \
        "One redis-cli session (commands on stdin, each sent after the previous reply): SET, GET, GET of a missing key (nil), INCR twice, EXISTS of three keys, LPUSH and LRANGE, HSET and HGETALL, a lower-case \`set key3 me\`, DEL of two keys, PING."
    redis_capture errors redis_errors 1 7 4 \
        "One redis-cli session with error replies: GET of a list (WRONGTYPE), an unknown command, SET with a missing argument, INCR of a non-integer."
    redis_capture large redis_large 3 3 0 \
        "Three redis-cli connections: \`SET big\` of a 204800-byte value (\`redis-cli -x\`), \`GET big\` (a 204800-byte bulk reply over many segments), \`STRLEN big\`."
    redis_capture inline redis_inline 1 4 0 \
        "One raw-socket connection sending inline commands (plain text lines, not RESP arrays), one at a time: \`PING\`, \`SET inl 42\`, \`GET inl\`, \`QUIT\`."
    redis_capture pipeline_bench redis_pipeline_bench 3 418 0 \
        "\`redis-benchmark -P 16 -n 208 -t set,get -c 1\`: its configuration queries, then 208 SETs and 208 GETs sent 16 at a time, one connection per test."
    redis_capture pipeline_cli redis_pipeline_cli 1 301 0 \
        "\`redis-cli --pipe\` of 300 commands written at once (100 SET, 100 INCR, 100 GET), followed by the ECHO of 20 random bytes redis-cli adds to find the end of the replies."
    redis_capture pubsub redis_pubsub 2 11 0 \
        "Pub/sub on two connections. 1: a raw-socket subscriber: \`SUBSCRIBE news weather\` (two confirmations), \`PSUBSCRIBE w*\`, then four published messages pushed to it (news; weather as message and as pmessage; news), \`PING\` in subscribe mode, \`UNSUBSCRIBE\` of every channel (two confirmations), \`PUNSUBSCRIBE w*\`, \`QUIT\`. 2: redis-cli publishing four messages (one to a channel nobody listens to)."
    redis_capture multi redis_multi 1 13 2 \
        "One redis-cli session of transactions: MULTI, SET, INCR, LPUSH on a string (the error shows inside EXEC's array), GET, EXEC; MULTI, SET, DISCARD; MULTI, an unknown command (refused when queued), EXEC (EXECABORT)."
    redis_capture resp3 redis_resp3 2 29 0 \
        "RESP3 on two connections. 1: a \`redis-cli -3\` session: HELLO 3 (map reply), COMMAND DOCS (redis-cli's own), HSET/HGETALL (map), SADD/SMEMBERS (set), ZADD/ZSCORE (double), ZRANGE WITHSCORES, GET of a missing key (RESP3 null), PING. 2: a raw-socket client: HELLO 3, DEBUG PROTOCOL map, set, double, bignum, true, false, null, verbatim, attrib (an attribute before the reply) and push (a push frame before the reply), CLIENT TRACKING ON, GET tk, SET tk (an invalidation push arrives), SUBSCRIBE ch (confirmed by a push frame), PING, UNSUBSCRIBE ch, QUIT."
    write_redis_readme
    install_set redis
}

write_redis_readme() {
    local out=$WORK/out/redis
    "$PY" - "$out" >"$out/README.md" <<'README'
import json, os, sys
out = sys.argv[1]
order = ["basic", "errors", "large", "inline", "pipeline_bench", "pipeline_cli", "pubsub",
         "multi", "resp3"]
print("# Redis fixtures\n")
print("Recorded by `sudo scripts/capture-fixtures.sh redis` (see ../README.md): a real")
print("redis-server (port 6379, no persistence) at 10.77.0.2, clients (redis-cli,")
print("redis-benchmark, `scripts/fixtures/redis_client.py`) at 10.77.0.1, captured with")
print("tcpdump on the client end of the veth pair, MTU 1500, offloads off.\n")
print("`expected.json` lists every transaction as `scripts/fixtures/redis_summary.py`")
print("derives it from the pcap with its own RESP splitter: the method (the command, or")
print("a container command and its subcommand: CONFIG GET) and the resource (the first")
print("argument after it) as Packetbeat names them, the command line, the reply as")
print("Packetbeat renders it, and the TCP payload bytes of the command and of the")
print("reply. Replies that answer no command (push frames, published messages, the")
print("later confirmations of a multi-channel (un)subscribe) belong to no transaction.")
print("Each `<name>.md` shows one pcap's transactions.\n")
print("| pcap | connections | transactions | errors | replies skipped |")
print("|---|---|---|---|---|")
for name in order:
    s = json.load(open(os.path.join(out, name + ".json")))
    t = s["transactions"]
    print("| %s.pcap | %d | %d | %d | %d |" % (
        name, len(s["connections"]), len(t), sum(x["status"] == "Error" for x in t),
        sum(c["replies_not_answering_a_command"] for c in s["connections"])))
README
}

# ------------------------------------------------------------------ MySQL set

readonly MYSQL_PORT=3306
MYSQL_SOCK=""

# mysql_packages: MariaDB server and client and pymysql, from Debian.
mysql_packages() {
    local missing=()
    [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
    command -v mariadb >/dev/null || missing+=(mariadb-client)
    "$PY" -c 'import pymysql' 2>/dev/null || missing+=(python3-pymysql)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# A throwaway MariaDB in $WORK/mysql, listening on 10.77.0.2:3306 inside wb-srv,
# without TLS, with a `test` database and user wb/wbpass.
start_mysql_server() {
    local dir=$WORK/mysql
    mkdir -p "$dir/data" "$dir/run"
    MYSQL_SOCK=$dir/run/mysqld.sock
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$WORK/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
    bg mariadbd ip netns exec "$NS_SRV" /usr/sbin/mariadbd --no-defaults --user=root \
        --datadir="$dir/data" --socket="$MYSQL_SOCK" --pid-file="$dir/run/mysqld.pid" \
        --bind-address="$ADDR_SRV" --port="$MYSQL_PORT" --skip-ssl --skip-name-resolve \
        --skip-log-bin --innodb-buffer-pool-size=32M --log-error="$WORK/log/mariadbd-error.log"
    wait_until 60 "mariadbd on $ADDR_SRV:$MYSQL_PORT" listening "$NS_SRV" "$MYSQL_PORT"
    mariadb --no-defaults -S "$MYSQL_SOCK" -u root <<'SQL' || die "could not set up the test database"
CREATE DATABASE test;
CREATE USER 'wb'@'%' IDENTIFIED BY 'wbpass';
GRANT ALL ON test.* TO 'wb'@'%';
USE test;
CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL);
INSERT INTO users (name) VALUES ('alice'), ('bob'), ('carol');
CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(20), n INT);
INSERT INTO events (kind, n) VALUES ('boot', 1), ('boot', 2);
CREATE TABLE big (id INT PRIMARY KEY, label VARCHAR(32));
INSERT INTO big SELECT seq, CONCAT('row-', seq) FROM seq_1_to_5000;
SQL
}

# mcli ARGS...: the mariadb command-line client against the server, as user wb.
mcli() {
    cli mariadb --no-defaults -h "$ADDR_SRV" -P "$MYSQL_PORT" -u wb -pwbpass --skip-ssl "$@"
}

# mpy SCENARIO: the Python client; its report goes to $WORK/reports/SCENARIO.json.
mpy() {
    mkdir -p "$WORK/reports"
    cli "$PY" "$HELPERS/mysql_client.py" "$ADDR_SRV" "$MYSQL_PORT" "$1" \
        >"$WORK/reports/$1.json"
}

mysql_queries() {
    mcli -vvv test -e "SELECT id, name FROM users ORDER BY id;
INSERT INTO users (name) VALUES ('dave');
UPDATE users SET name = 'carol2' WHERE id = 3;
DELETE FROM users WHERE name = 'dave';
SET @x = 5;
use test"
}

mysql_errors() {
    # With --force the client goes on after an error but still exits 1 at the end.
    local rc=0
    printf '%s\n' "SELECT * FROM nope;" "SELEC 1;" "SELECT name FROM users WHERE id = 1;" |
        mcli -vvv --force test || rc=$?
    ((rc == 0 || rc == 1))
}

mysql_long_result() {
    mcli test -e "SELECT id, label FROM big ORDER BY id" >/dev/null &&
        mcli -vvv test -e "SELECT COUNT(*) FROM big"
}

mysql_compressed() {
    mcli --compress -vvv test -e "SELECT 1"
}

mysql_prepared() { mpy prepared; }
mysql_pipelined() { mpy pipelined; }
mysql_multi() { mpy multi; }
mysql_ping() { mpy ping; }
mysql_commands() { mpy commands; }

# The mariadb client connected without a database: `\u test` (COM_INIT_DB) and
# `status` (COM_STATISTICS among its queries); then mariadb-admin ping and status.
mysql_session() {
    printf '%s\n' 'SELECT DATABASE();' '\u test' 'status' 'SELECT COUNT(*) FROM users;' |
        mcli -vvv &&
        cli mariadb-admin --no-defaults -h "$ADDR_SRV" -P "$MYSQL_PORT" -u wb -pwbpass \
            --skip-ssl ping status
}

# Result sets for path and the send_response text: a join with aliases, expression
# columns first and last, values that need CSV quoting, NULL, a newline, UTF-8, and
# a result longer than max_rows.
mysql_rows() {
    mcli -vvv test <<'SQL'
SELECT u.id, u.name, e.kind FROM users u JOIN events e ON e.n = u.id ORDER BY u.id;
SELECT 1 AS one, name FROM users ORDER BY id;
SELECT name, 1 AS one FROM users ORDER BY id;
SELECT 'a,b' AS comma, 'say "hi"' AS quote, ' lead' AS space, NULL AS nothing, 'l1\nl2' AS nl, '' AS empty;
SELECT 'ñandú' AS word, 'x' AS x;
SELECT seq, CONCAT('value-', seq) AS v FROM seq_1_to_12;
SQL
}

# mcapture NAME FUNC CONNS DESCRIPTION: one scenario, checked like the HTTP ones
# (complete connections, no gaps) and described by mysql_summary.py.
mcapture() {
    local name=$1 func=$2 conns=$3 desc=$4 out=$WORK/out/mysql pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record mysql "$name" "$func" "$pcap"
    selected mysql "$name" || reuse_client_output "$name"
    "$PY" "$HELPERS/mysql_summary.py" --json "$pcap" >"$out/$name.json"
    "$PY" - "$out/$name.json" "$name" "$conns" <<'EOF'
import json, sys
path, name, conns = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(path))
err = []
if len(s["connections"]) != conns:
    err.append("%d connections, expected %d" % (len(s["connections"]), conns))
for c in s["connections"]:
    if not (c["handshake"] and c["client_fin"] and c["server_fin"]) or c["rst"] or c["gaps"]:
        err.append("connection %d incomplete, reset or with gaps" % c["id"])
    if c.get("unparsed_server_packets"):
        err.append("connection %d: server packets left after the last response" % c["id"])
    if c["max_segment_payload"] > 1460:
        err.append("connection %d has a %d-byte segment (offloads on?)" % (c["id"], c["max_segment_payload"]))
if err:
    sys.exit("%s: %s" % (name, "; ".join(err)))
EOF
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh mysql`; the tables below are computed\n'
        # shellcheck disable=SC2016
        printf 'from the pcap by `scripts/fixtures/mysql_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/mysql_summary.py" --markdown "$pcap"
        if [[ -s $WORK/reports/$name.json ]]; then
            printf '\nThe client'"'"'s own report (`scripts/fixtures/mysql_client.py`):\n\n```json\n'
            cat "$WORK/reports/$name.json"
            printf '```\n'
        else
            printf '\nThe client'"'"'s own output (`mariadb -vvv`):\n\n```\n'
            cat "$WORK/log/client-$name.log"
            printf '```\n'
        fi
    } >"$out/$name.md"
}

# reuse_client_output NAME: for a scenario taken from its committed pcap, the
# client's report (or output) kept in the committed NAME.md, so the rebuilt .md and
# the report checks stay as they were when it was recorded.
reuse_client_output() {
    local md=$PCAP_ROOT/mysql/$1.md
    [[ -f $md ]] || return 0
    mkdir -p "$WORK/reports"
    "$PY" - "$md" "$WORK/reports/$1.json" "$WORK/log/client-$1.log" <<'EOF'
import sys
md, report, log = sys.argv[1:]
lines = open(md).read().split("\n")
for k, line in enumerate(lines):
    if line.startswith("The client's own"):
        body = lines[k + 3:]
        body = body[:body.index("```")]
        dest = report if "report" in line else log
        with open(dest, "w") as f:
            f.write("\n".join(body) + "\n")
        break
EOF
}

# Cross-checks the pcap-derived transactions against the Python client's reports.
check_mysql_reports() {
    "$PY" - "$WORK/out/mysql" "$WORK/reports" <<'EOF'
import json, os, sys
out, reports = sys.argv[1], sys.argv[2]
err = []
for name in ("prepared", "pipelined", "multi", "ping", "commands"):
    rep = json.load(open(os.path.join(reports, name + ".json")))
    summary = json.load(open(os.path.join(out, name + ".json")))
    txs = summary["transactions"]
    # Only statements are transactions; the other commands are counted per connection.
    other = {}
    for r in rep:
        if r["command"] not in ("QUERY", "STMT_PREPARE", "STMT_EXECUTE"):
            other[r["command"]] = other.get(r["command"], 0) + 1
    seen = dict(summary["connections"][0]["other_commands"])
    seen.pop("QUIT", None)
    if other != seen:
        err.append("%s: client sent %s besides statements, pcap has %s" % (name, other, seen))
    rep = [r for r in rep if r["command"] in ("QUERY", "STMT_PREPARE", "STMT_EXECUTE")]
    if len(rep) != len(txs):
        err.append("%s: client made %d answered calls, pcap has %d" % (name, len(rep), len(txs)))
        continue
    for r, t in zip(rep, txs):
        sent = t.get("request", t["query"])  # the statement as sent, untrimmed
        if "query" in r and r["query"] != sent:
            err.append("%s: query %r vs %r" % (name, r["query"], sent))
        if "rows" in r and r["rows"] != t["num_rows"]:
            err.append("%s: %s rows %d vs %d" % (name, r.get("query"), r["rows"], t["num_rows"]))
        if "results" in r and sum(x["rows"] for x in r["results"]) != t["num_rows"]:
            err.append("%s: %s rows differ" % (name, r["query"]))
        if "error" in r and r["error"][0] != t["error_code"]:
            err.append("%s: %s error %s vs %s" % (name, r["query"], r["error"], t["error_code"]))
        if r.get("params") and r["command"] == "STMT_EXECUTE":  # none: no field
            t["params"] = r["params"]
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(summary, f)
if err:
    sys.exit("; ".join(err))
EOF
}

set_mysql() {
    mysql_packages
    start_mysql_server
    mcapture queries mysql_queries 1 \
        "One connection of the \`mariadb\` command-line client (batch mode, database \`test\` at connect): a SELECT of three rows, an INSERT (insert id 4), an UPDATE and a DELETE of one row each, \`SET @x = 5\`, and \`use test\` (sent as COM_INIT_DB), then COM_QUIT."
    mcapture errors mysql_errors 1 \
        "One connection of the \`mariadb\` client with \`--force\`: \`SELECT * FROM nope\` (error 1146, 42S02), \`SELEC 1\` (syntax error 1064, 42000), then a good one-row SELECT."
    mcapture long_result mysql_long_result 2 \
        "Two connections of the \`mariadb\` client. 1: \`SELECT id, label FROM big ORDER BY id\`, 5000 rows streamed over many full-size segments (the sequence number wraps many times). 2: \`SELECT COUNT(*) FROM big\`."
    mcapture prepared mysql_prepared 1 \
        "One pymysql connection driving server-side prepared statements by hand: COM_STMT_PREPARE of a SELECT with two parameters, two COM_STMT_EXECUTE with different bound values (binary result sets), COM_STMT_CLOSE (no answer), then PREPARE / EXECUTE of an INSERT with two parameters and CLOSE."
    mcapture pipelined mysql_pipelined 1 \
        "One pymysql connection that writes three COM_QUERY packets in one segment before reading anything: a 3-row SELECT, a COUNT and a SELECT of a missing table (error 1146), answered in order."
    mcapture multi mysql_multi 1 \
        "One pymysql connection with CLIENT_MULTI_STATEMENTS: \`SELECT 1 AS one; SELECT 2 AS two, 3 AS three\` (two result sets in one response, SERVER_MORE_RESULTS_EXISTS) and an INSERT followed by a SELECT in one query (OK packet, then a result set)."
    mcapture ping mysql_ping 1 \
        "One pymysql connection: COM_PING, COM_INIT_DB \`test\`, \`SELECT DATABASE()\`."
    mcapture commands mysql_commands 1 \
        "One pymysql connection mixing statements with the commands that are no transactions (hand-written where pymysql has no call): COM_PING, COM_STATISTICS, a SELECT with leading and trailing blanks, COM_INIT_DB, COM_FIELD_LIST \`users\`, a SELECT after a comment, COM_SET_OPTION on, a parenthesised UNION, COM_SET_OPTION off, COM_STMT_PREPARE of a SELECT and COM_STMT_EXECUTE opening a read-only cursor, two COM_STMT_FETCH (2 rows, then the last 1), COM_STMT_RESET, COM_STMT_CLOSE, COM_CHANGE_USER (same user), COM_RESET_CONNECTION, \`SELECT DATABASE()\`."
    mcapture session mysql_session 2 \
        "1: the \`mariadb\` client connected without a database, reading from stdin: \`SELECT DATABASE()\`, \`\\u test\` (COM_INIT_DB), \`status\` (its queries and COM_STATISTICS), \`SELECT COUNT(*) FROM users\`. 2: \`mariadb-admin ping status\` (COM_PING, COM_STATISTICS)."
    mcapture rows mysql_rows 1 \
        "One connection of the \`mariadb\` client: a join of \`users u\` and \`events e\` (path from the aliases), an expression column before and after a table column, values that need CSV quoting (comma, quotes, leading space), NULL, a newline and an empty string, a UTF-8 value, and a 12-row result (more than max_rows)."
    mcapture compressed mysql_compressed 1 \
        "One connection of the \`mariadb\` client with \`--compress\`: the compressed protocol is switched on after authentication; \`SELECT 1\` travels compressed. wirebeat stops following such connections (counted in parser_stopped), so no transaction is expected from it."
    check_mysql_reports
    write_mysql_readme
    install_set mysql
}

write_mysql_readme() {
    local out=$WORK/out/mysql
    "$PY" - "$out" >"$out/README.md" <<'EOF'
import json, os, sys
out = sys.argv[1]
order = ["queries", "errors", "long_result", "prepared", "pipelined", "multi", "ping", "commands",
         "session", "rows", "compressed"]
print("# MySQL fixtures\n")
print("Recorded by `scripts/capture-fixtures.sh mysql` (see ../README.md): a throwaway")
print("MariaDB server (Debian `mariadb-server`, no TLS) on 10.77.0.2:3306, clients at")
print("10.77.0.1: the `mariadb` command-line client and `scripts/fixtures/mysql_client.py`")
print("(pymysql plus hand-written prepared statements and pipelining), captured with tcpdump")
print("on the client end of the veth pair, MTU 1500, offloads off.\n")
print("Each `<name>.md` describes one pcap; `expected.json` holds the transactions that")
print("`scripts/fixtures/mysql_summary.py` derived from each pcap (byte counts are the TCP")
print("payload bytes of every MySQL packet of the request or response, 4-byte packet")
print("headers included). As in Packetbeat, only statements (COM_QUERY, COM_STMT_PREPARE,")
print("COM_STMT_EXECUTE) are transactions; the other commands are counted per connection in")
print("each `<name>.md`.\n")
print("| pcap | conn | method | query | path | status | rows | affected | error | request B | response B |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in order:
    s = json.load(open(os.path.join(out, name + ".json")))
    if not s["transactions"]:
        print("| %s.pcap | 1 | - | (compressed protocol: none) | | | | | | | |" % name)
    for t in s["transactions"]:
        q = (t["query"] or "").replace("|", "\\|").replace("\n", " ")
        print("| %s.pcap | %d | %s | `%s` | %s | %s | %d | %d | %s | %d | %d |" % (
            name, t["connection"], t["method"] or "(empty)", q[:60], t["path"] or "-",
            t["status"], t["num_rows"],
            t["affected_rows"], t["error_code"] or "-", t["request_bytes"], t["response_bytes"]))
EOF
}

# ------------------------------------------------------------------ DNS set

readonly DNS_PORT=53
readonly DNS_ZONE=wirebeat.test

ensure_dns_packages() {
    local missing=()
    command -v dnsmasq >/dev/null || [[ -x /usr/sbin/dnsmasq ]] || missing+=(dnsmasq-base)
    command -v dig >/dev/null || missing+=(bind9-dnsutils)
    "$PY" -c 'import dns.message' 2>/dev/null || missing+=(python3-dnspython)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# dnsmasq as the authoritative server of wirebeat.test on 10.77.0.2 (UDP and TCP),
# with one record of each kind the events show; other zones are refused.
DNS_PID=""
start_dns_server() {
    local big
    big=$("$PY" -c 'print(",".join("%02d-%s" % (i, "x" * 60) for i in range(12)))')
    bg dnsmasq ip netns exec "$NS_SRV" /usr/sbin/dnsmasq --keep-in-foreground \
        --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= --user=root \
        --listen-address="$ADDR_SRV" --bind-interfaces --port="$DNS_PORT" --log-queries \
        --log-facility=- \
        --auth-server="ns1.$DNS_ZONE,$IF_SRV" --auth-zone="$DNS_ZONE,10.77.0.0/24" \
        --auth-soa="2024010101,hostmaster.$DNS_ZONE,1200,120,604800,300" --auth-ttl=300 \
        --host-record="ns1.$DNS_ZONE,$ADDR_SRV" \
        --host-record="www.$DNS_ZONE,10.77.0.50,fd00::50" \
        --host-record="mail.$DNS_ZONE,10.77.0.51" \
        --cname="web.$DNS_ZONE,www.$DNS_ZONE" \
        --mx-host="$DNS_ZONE,mail.$DNS_ZONE,10" \
        --srv-host="_http._tcp.$DNS_ZONE,www.$DNS_ZONE,80,5,20" \
        --txt-record="$DNS_ZONE,v=spf1 -all,hello world" \
        --txt-record="big.$DNS_ZONE,$big" \
        --ptr-record="50.0.77.10.in-addr.arpa,www.$DNS_ZONE" \
        --dns-rr="odd.$DNS_ZONE,65280,00ff0a776972656265617422"
    DNS_PID=$BG_PID
    wait_until "$WAIT_TIMEOUT" "dnsmasq on $ADDR_SRV:$DNS_PORT" listening "$NS_SRV" "$DNS_PORT"
}

# qdig ARGS...: one dig query to the fixture server, one try, no search list.
qdig() { cli dig @"$ADDR_SRV" -p "$DNS_PORT" +tries=1 +time=2 +nosearch "$@"; }

dns_udp_records() {
    qdig "www.$DNS_ZONE" A
    qdig "www.$DNS_ZONE" AAAA
    qdig "web.$DNS_ZONE" A
    qdig "$DNS_ZONE" MX
    qdig "_http._tcp.$DNS_ZONE" SRV
    qdig "$DNS_ZONE" TXT
    qdig -x 10.77.0.50
    qdig "$DNS_ZONE" SOA
    qdig "$DNS_ZONE" NS
    qdig "odd.$DNS_ZONE" TYPE65280
    qdig "nope.$DNS_ZONE" A
    qdig +noedns "www.$DNS_ZONE" A
    qdig +dnssec +nocookie "mail.$DNS_ZONE" A
}

dns_tcp() {
    qdig +tcp "www.$DNS_ZONE" A
    # Three queries on one connection.
    qdig +tcp +keepopen "$DNS_ZONE" MX "www.$DNS_ZONE" AAAA "nope.$DNS_ZONE" A
}

dns_truncated() {
    # Over 512 bytes without EDNS: a truncated answer, then dig asks again over TCP.
    qdig +noedns "big.$DNS_ZONE" TXT
    # With EDNS the whole answer comes over UDP.
    qdig +bufsize=4096 "big.$DNS_ZONE" TXT
}

dns_unanswered() {
    # A zone dnsmasq is not authoritative for: REFUSED.
    qdig "host.slow.test" A
    # The server is down: the query is never answered (the ICMP port unreachable
    # is not captured), then it is back.
    stop_pid "$DNS_PID"
    forget_pid "$DNS_PID"
    qdig "www.$DNS_ZONE" A || true
    start_dns_server
    qdig "mail.$DNS_ZONE" A
}

dns_capture() {
    local name=$1 func=$2 txs=$3 desc=$4
    local out=$WORK/out/dns pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record dns "$name" "$func" "$pcap" "host $ADDR_SRV and port $DNS_PORT"
    "$PY" "$HELPERS/dns_summary.py" --json "$pcap" >"$out/$name.json"
    "$PY" - "$out/$name.json" "$name" "$txs" <<'CHECK'
import json, sys
path, name, txs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = json.load(open(path))["transactions"]
if len(t) != txs:
    sys.exit("%s: %d transactions, expected %d" % (name, len(t), txs))
CHECK
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh dns`; the table below is computed\n'
        # shellcheck disable=SC2016
        printf 'from the pcap by `scripts/fixtures/dns_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/dns_summary.py" --markdown "$pcap"
    } >"$out/$name.md"
}

set_dns() {
    ensure_dns_packages
    start_dns_server
    dns_capture udp_records dns_udp_records 13 \
        "dig over UDP against dnsmasq, authoritative for wirebeat.test: A, AAAA, a CNAME chain, MX, SRV, TXT (two strings), PTR (\`dig -x\`), SOA, NS, an unknown type (TYPE65280), NXDOMAIN (with the SOA in the authority section), a query without EDNS, and one with the DO bit and no cookie."
    dns_capture tcp dns_tcp 4 \
        "dig over TCP: one query on its own connection, then three queries (MX, AAAA, NXDOMAIN) on one connection (\`+keepopen\`)."
    dns_capture truncated dns_truncated 3 \
        "A TXT answer over 512 bytes: without EDNS the UDP answer is truncated (TC) and dig asks again over TCP; with EDNS (\`+bufsize=4096\`) it comes whole over UDP."
    dns_capture unanswered dns_unanswered 3 \
        "A query for a zone dnsmasq does not serve (REFUSED); a query while the server is down, never answered; one answered after it is back."
    write_dns_readme
    install_set dns
}

write_dns_readme() {
    local out=$WORK/out/dns
    cat >"$out/README.md" <<'README'
# DNS fixtures

Recorded by `sudo scripts/capture-fixtures.sh dns` (see ../README.md): dnsmasq at
10.77.0.2, authoritative for `wirebeat.test` (records of every kind the events show;
other zones are refused), queried with `dig` from
10.77.0.1, captured with tcpdump on the client end of the veth pair (UDP and TCP
port 53), MTU 1500, offloads off.

`expected.json` lists every transaction as `scripts/fixtures/dns_summary.py` derives
it from the pcap with dnspython, independently of wirebeat: the flow, the message id,
the question, the response code and flags, every record of each section in
Packetbeat's presentation, the EDNS record, and the bytes of the query and of the
answer. Each `<name>.md` shows one pcap's transactions.

| pcap | what |
|---|---|
| udp_records.pcap | one query of each record type over UDP, NXDOMAIN, with and without EDNS |
| tcp.pcap | queries over TCP, three on one connection |
| truncated.pcap | a truncated UDP answer and its TCP retry; the same answer whole with EDNS |
| unanswered.pcap | a refused query, and one never answered while the server is down |
README
}

# ------------------------------------------------------------------ ICMP set

readonly ADDR6_CLI=fd00:77::1 ADDR6_SRV=fd00:77::2

ensure_icmp_packages() {
    command -v ping >/dev/null || apt_install iputils-ping
}

# IPv6 on the veth pair, for the ICMPv6 scenario only: fixed addresses without
# duplicate address detection, no link-local address, no router solicitations, so
# that the only discovery traffic is the neighbour solicitation the first packet
# needs. The multicast listener reports of the new addresses are sent at once; they
# are over before the recording starts.
ICMP_V6_UP=0
enable_ipv6() {
    ((ICMP_V6_UP)) && return 0
    local ns ifc addr
    for ns in "$NS_CLI" "$NS_SRV"; do
        if [[ $ns == "$NS_CLI" ]]; then ifc=$IF_CLI addr=$ADDR6_CLI; else ifc=$IF_SRV addr=$ADDR6_SRV; fi
        ip netns exec "$ns" sh -c "
            echo 0 >/proc/sys/net/ipv6/conf/$ifc/router_solicitations &&
            echo 1 >/proc/sys/net/ipv6/conf/$ifc/addr_gen_mode &&
            echo 0 >/proc/sys/net/ipv6/conf/$ifc/accept_dad &&
            echo 0 >/proc/sys/net/ipv6/conf/$ifc/disable_ipv6"
        ip -n "$ns" addr add "$addr/64" dev "$ifc" nodad
    done
    ICMP_V6_UP=1
    sleep 3
}

# udp_probe ADDR: one UDP datagram to a port nobody listens on (9, discard).
udp_probe() {
    cli "$PY" -c '
import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"wirebeat", (a, 9))
' "$1"
}

icmp_echo() {
    cli ping -n -c 3 -i 0.2 -W 2 "$ADDR_SRV"
    # Larger than the MTU: the request and the reply each come in two fragments.
    cli ping -n -c 1 -s 2000 -W 2 "$ADDR_SRV"
}

icmp_unanswered() {
    ip netns exec "$NS_SRV" sh -c 'echo 1 >/proc/sys/net/ipv4/icmp_echo_ignore_all'
    cli ping -n -c 2 -i 0.2 -W 1 "$ADDR_SRV" || true
    ip netns exec "$NS_SRV" sh -c 'echo 0 >/proc/sys/net/ipv4/icmp_echo_ignore_all'
    cli ping -n -c 1 -W 2 "$ADDR_SRV"
}

icmp_unreachable() {
    udp_probe "$ADDR_SRV"
    sleep 0.3
}

icmp_v6() {
    enable_ipv6
    cli ping -6 -n -c 2 -i 0.2 -W 2 "$ADDR6_SRV"
    udp_probe "$ADDR6_SRV"
    sleep 0.3
}

icmp_capture() {
    local name=$1 func=$2 desc=$3
    local out=$WORK/out/icmp pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record icmp "$name" "$func" "$pcap" "icmp or icmp6"
    "$PY" "$HELPERS/icmp_summary.py" --json "$pcap" >"$out/$name.json"
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh icmp`; the table below is computed\n'
        # shellcheck disable=SC2016
        printf 'from the pcap by `scripts/fixtures/icmp_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/icmp_summary.py" --markdown "$pcap"
    } >"$out/$name.md"
}

# check_icmp NAME PYTHON-EXPR: fails unless EXPR holds for the list `t` of NAME's
# transactions (what each scenario must have produced).
check_icmp() {
    "$PY" - "$WORK/out/icmp/$1.json" "$1" "$2" <<'CHECK'
import json, sys
path, name, expr = sys.argv[1:4]
t = json.load(open(path))["transactions"]
if not eval(expr, {"t": t}):
    sys.exit("%s: unexpected transactions: %s" % (name, json.dumps(t, indent=1)))
CHECK
}

set_icmp() {
    ensure_icmp_packages
    icmp_capture echo icmp_echo \
        "\`ping\` from 10.77.0.1 to 10.77.0.2: three echo requests answered, then one of 2,000 bytes of data, sent and answered in two IP fragments each."
    check_icmp echo 'len(t) == 4 and all(x["status"] == "OK" and x["response"] for x in t)'
    icmp_capture unanswered icmp_unanswered \
        "Two echo requests while 10.77.0.2 ignores them (\`icmp_echo_ignore_all\`), never answered, then one answered."
    check_icmp unanswered 'len(t) == 3 and sum(1 for x in t if x["response"] is None) == 2'
    icmp_capture unreachable icmp_unreachable \
        "A UDP datagram to a closed port of 10.77.0.2 (not in the capture): its ICMP destination unreachable (port) error, a message of its own."
    check_icmp unreachable 'len(t) == 1 and t[0]["request"]["type"] == 3 and t[0]["status"] == "Error"'
    icmp_capture v6 icmp_v6 \
        "ICMPv6 between fd00:77::1 and fd00:77::2: the neighbour solicitation and advertisement before the first packet, two echo requests answered, and the destination unreachable (port) error for a UDP datagram to a closed port."
    check_icmp v6 'sum(1 for x in t if x["response"]) == 2 and any(x["request"] and x["request"]["type"] == 1 for x in t)'
    write_icmp_readme
    install_set icmp
}

write_icmp_readme() {
    local out=$WORK/out/icmp
    cat >"$out/README.md" <<'README'
# ICMP fixtures

Recorded by `sudo scripts/capture-fixtures.sh icmp` (see ../README.md): `ping` and a
UDP datagram to a closed port from 10.77.0.1 (fd00:77::1) to 10.77.0.2
(fd00:77::2), the kernels of both namespaces answering, captured with tcpdump on the
client end of the veth pair (`icmp or icmp6`), MTU 1500, offloads off.

`expected.json` lists every transaction as `scripts/fixtures/icmp_summary.py`
derives it from the pcap, independently of wirebeat: requester and responder, the
type, code and name of each side, the bytes, status, note, start, duration and
Community ID. Each `<name>.md` shows one pcap's transactions.

| pcap | what |
|---|---|
| echo.pcap | echo requests answered, one of them fragmented |
| unanswered.pcap | echo requests the server ignores, then one answered |
| unreachable.pcap | a destination unreachable (port) error |
| v6.pcap | ICMPv6: neighbour discovery, echo, destination unreachable |
README
}

# ------------------------------------------------------------------ flows set

readonly FLOW_HTTP_PORT=8000 FLOW_UDP_PORT=9999

ensure_flows_packages() {
    command -v ping >/dev/null || apt_install iputils-ping
    command -v curl >/dev/null || apt_install curl
}

# Python's http.server on a port no protocol follows by default, and a UDP echo
# server: the flows of ports wirebeat does not parse.
start_flow_servers() {
    mkdir -p "$WORK/flows-www"
    printf 'wirebeat flows fixture\n' >"$WORK/flows-www/index.html"
    bg flows-http ip netns exec "$NS_SRV" "$PY" -m http.server "$FLOW_HTTP_PORT" \
        --bind "$ADDR_SRV" --directory "$WORK/flows-www"
    bg flows-udp ip netns exec "$NS_SRV" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data.upper(), peer)
' "$ADDR_SRV" "$FLOW_UDP_PORT"
    wait_until "$WAIT_TIMEOUT" "http.server to listen" listening "$NS_SRV" "$FLOW_HTTP_PORT"
    wait_until "$WAIT_TIMEOUT" "the UDP echo server" \
        sh -c "[ -n \"\$(ip netns exec $NS_SRV ss -Hlun 'sport = :$FLOW_UDP_PORT')\" ]"
}

# udp_echo SPORT MESSAGE...: each MESSAGE (a number is a pause in seconds instead)
# from source port SPORT to the echo server, waiting for each echo.
udp_echo() {
    cli "$PY" - "$ADDR_SRV" "$FLOW_UDP_PORT" "$@" <<'PYUDP'
import socket, sys, time
addr, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", sport))
s.settimeout(2)
for m in sys.argv[4:]:
    try:
        time.sleep(float(m))
        continue
    except ValueError:
        pass
    s.sendto(m.encode(), (addr, port))
    s.recvfrom(65535)
PYUDP
}

flows_mixed() {
    cli curl -sS -o /dev/null "http://$ADDR_SRV:$FLOW_HTTP_PORT/"
    cli curl -sS -o /dev/null "http://$ADDR_SRV:$FLOW_HTTP_PORT/missing"
    # A closed TCP port: the SYN and the RST answering it.
    cli curl -sS -o /dev/null --max-time 2 "http://$ADDR_SRV:81/" || true
    udp_echo 40000 one two
    cli ping -n -c 2 -i 0.2 -W 2 "$ADDR_SRV"
    udp_probe "$ADDR_SRV"
    sleep 0.3
}

flows_slow() {
    cli ping -n -c 4 -i 1.2 -W 2 "$ADDR_SRV" &
    local ping=$!
    # The same five-tuple again after 3 s: with a 2 s timeout, a new flow.
    udp_echo 40001 first 3 second
    wait "$ping"
}

flows_capture() {
    local name=$1 func=$2 desc=$3
    local out=$WORK/out/flows pcap
    mkdir -p "$out"
    pcap=$out/$name.pcap
    record flows "$name" "$func" "$pcap" "ip"
    "$PY" "$HELPERS/flows_summary.py" --json "$pcap" >"$out/$name.json"
    {
        printf '# %s.pcap\n\n%s\n\n' "$name" "$desc"
        # shellcheck disable=SC2016 # literal backticks (markdown)
        printf 'Recorded by `scripts/capture-fixtures.sh flows`; the table below (the flow reports\n'
        # shellcheck disable=SC2016
        printf 'with the default `flows.timeout: 30s`, `period: 10s`) is computed from the pcap by\n`scripts/fixtures/flows_summary.py --markdown`.\n\n'
        "$PY" "$HELPERS/flows_summary.py" --markdown "$pcap"
    } >"$out/$name.md"
}

# check_flows NAME PYTHON-EXPR: fails unless EXPR holds for `e`, the final reports of
# NAME with a 2 s timeout and only final reports.
check_flows() {
    "$PY" - "$WORK/out/flows/$1.json" "$1" "$2" <<'CHECK'
import json, sys
path, name, expr = sys.argv[1:4]
e = json.load(open(path))["runs"]["final_only"]["events"]
if not eval(expr, {"e": e}):
    sys.exit("%s: unexpected flows: %s" % (name, json.dumps(e, indent=1)))
CHECK
}

set_flows() {
    ensure_flows_packages
    start_flow_servers
    flows_capture mixed flows_mixed \
        "From 10.77.0.1 to 10.77.0.2: two HTTP requests to Python's http.server on port 8000 (no protocol follows it by default), a connection refused on port 81, two UDP datagrams echoed on port 9999, two pings answered, and a UDP datagram to closed port 9 with its ICMP port unreachable."
    check_flows mixed 'len(e) == 7 and sum(1 for x in e if x["transport"] == "tcp") == 3 and all(x["final"] for x in e)'
    flows_capture slow flows_slow \
        "Four pings 1.2 s apart while a UDP datagram is echoed, then after 3 s another from the same port: the flows span several report periods, and with a 2 s timeout the second datagram starts a new flow."
    check_flows slow 'len(e) == 3 and sum(1 for x in e if x["transport"] == "udp") == 2'
    write_flows_readme
    install_set flows
}

write_flows_readme() {
    local out=$WORK/out/flows
    cat >"$out/README.md" <<'README'
# Flow fixtures

Recorded by `sudo scripts/capture-fixtures.sh flows` (see ../README.md): curl against
Python's `http.server`, a UDP echo server, `ping` and a datagram to a closed port,
between 10.77.0.1 and 10.77.0.2, captured with tcpdump on the client end of the veth
pair (`ip`: every IPv4 packet), MTU 1500, offloads off.

`expected.json` lists, for each pcap, the flow reports `scripts/fixtures/flows_summary.py`
derives from it independently of wirebeat, under several settings (`runs`: the `-E`
settings and the reports): the defaults (timeout 30s, period 10s), a 2 s timeout with
1 s periods, the same with delta reports, and final reports only. `transactions` are
the default run's. Each `<name>.md` shows one pcap's default reports.

| pcap | what |
|---|---|
| mixed.pcap | TCP (served, refused), UDP echo, ping, ICMP port unreachable |
| slow.pcap | flows over several seconds; a UDP five-tuple reused after its timeout |
README
}

# ------------------------------------------------------------------ main

main() {
    (($# >= 1)) || usage
    local want=() a s
    for a in "$@"; do
        case $a in
            -h | --help) usage ;;
            all) want+=("${SETS[@]}") ;;
            *)
                local set=${a%%:*}
                for s in "${SETS[@]}"; do [[ $set == "$s" ]] && break; done
                [[ $set == "$s" ]] || { log "unknown set: $set"; usage; }
                if [[ $a == *:* ]]; then
                    [[ -n ${a#*:} ]] || { log "no scenario named after $set:"; usage; }
                    ONLY[$set]="${ONLY[$set]:- }$(tr ',' ' ' <<<"${a#*:}") "
                fi
                want+=("$set")
                ;;
        esac
    done
    ((EUID == 0)) || die "must run as root (network namespaces, tcpdump)"
    ensure_packages
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM
    WORK=$(mktemp -d /tmp/wirebeat-fixtures.XXXXXX)
    chmod 755 "$WORK"
    mkdir -p "$WORK/log" "$WORK/out"
    setup_net
    local -A done_sets=()
    for s in "${want[@]}"; do
        [[ -z ${done_sets[$s]:-} ]] || continue
        done_sets[$s]=1
        "set_$s"
        # Servers of one set are stopped before the next set starts.
        local pid
        for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
        PIDS=()
    done
    log "done"
}

main "$@"
