#!/usr/bin/env python3
"""Synthesises a large, deterministic gateway capture for wirebeat's benchmarks:
mostly HTTP/1.1 keep-alive, plus MySQL, PostgreSQL and Redis conversations.

HTTP templates are the real fixture captures in tests/pcaps/http/*.pcap (nginx on
port 80 and a Python server on port 8080), except the closed-connection scenarios
(late_*, dup_*: copies of segments after the close and reused tuples, which are not
part of the traffic mix and would only shift its weights). Every template connection is reassembled
per direction and cut into "flights" (consecutive data segments in one direction,
keeping the recorded segment boundaries, all <= 1448 bytes). The flights are grouped
into exchange units: a unit starts with a client flight and ends when every request
sent so far has its final response and has itself ended (so a pipelined burst, an
Expect: 100-continue exchange, or a POST that nginx answered before its body had
arrived, the body following the response, stays one unit). A request whose body the
client stopped sending (it closed after an early 413) ends its unit and connection. Pure ACKs, handshakes and FINs of the templates are dropped;
the generator writes its own.

Database and Redis templates are the real connections recorded in
tests/pcaps/{mysql,pgsql,redis}/*.pcap (MariaDB, PostgreSQL 15, redis-server): each
is replayed whole (handshake and authentication included) as one synthetic
connection, with its transaction count taken from that set's expected.json.
--db-share percent of the connections are such conversations (default 10).

The output is a classic pcap (Ethernet, microseconds) of many TCP connections between
client addresses 10.1.x.y and servers 10.2.0.1-4 (the template's server port, 80 or
8080). Each connection has a 3-way handshake, a few keep-alive units drawn from the
templates, an ACK from the receiver every second data segment and after each
response, and a FIN/ACK teardown (server FIN first after a close-delimited response,
client FIN first after a cut request).
About --concurrency connections are open at once: the next packet always comes from a
randomly chosen open connection. Timestamps advance with the bytes written, by a
random 0.5x-1.5x of the packet's share of --span-s, so the capture spans about that
long whatever its size. IPv4 and TCP checksums are correct.

No new connection is opened once the bytes written plus those of the open
connections reach --size-mb; the open ones run to their end, so every transaction in
the file is complete and the file ends up just over the requested size. Same arguments, same
templates => byte-identical output.

At the end it prints (and writes to FILE.json) the frames, bytes, connections and
transactions (request/response pairs) it wrote.

Python 3 standard library only.

Usage:
  gen-traffic-pcap.py --out big.pcap [--size-mb 1024] [--seed 1] [--concurrency 4000]
                      [--db-share 10] [--span-s 20]
"""

import argparse
import glob
import json
import os
import random
import struct
import sys
import time

MSS = 1448
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
EPOCH = 1795478400  # 2026-11-24T00:00:00Z
VERSION = 5  # bump when the output for the same arguments changes

# ------------------------------------------------------------------ template reading


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap file" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
    if linktype != 1:
        raise ValueError("%s: link type %d, expected Ethernet" % (path, linktype))
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def parse_tcp(frame):
    """(src, sport, dst, dport, seq, flags, payload) of an Ethernet/IPv4/TCP frame."""
    etype = struct.unpack("!H", frame[12:14])[0]
    off = 14
    while etype in (0x8100, 0x88A8):
        etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
        off += 4
    if etype != 0x0800:
        return None
    ip = frame[off:]
    if len(ip) < 20 or ip[9] != 6:
        return None
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    seg = ip[ihl:total]
    sport, dport, seq, _ack, offflags = struct.unpack("!HHIIH", seg[:14])
    return (ip[12:16], sport, ip[16:20], dport, seq, offflags & 0x3F,
            bytes(seg[(offflags >> 12) * 4:]))


def template_connections(path):
    """Per connection: (server port, [(is_client, payload), ...]) in capture order,
    retransmitted bytes removed."""
    conns, order = {}, []
    for frame in read_pcap(path):
        t = parse_tcp(frame)
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        key = frozenset([(src, sport), (dst, dport)])
        c = conns.get(key)
        if c is None:
            c = conns[key] = {"client": None, "next": {}, "segs": []}
            order.append(c)
        ep = (src, sport)
        if flags & SYN:
            if not flags & ACK:
                c["client"] = ep
                c["server_port"] = dport
            c["next"][ep] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        nxt = c["next"].get(ep)
        if nxt is None:
            continue  # no handshake seen: not usable as a template
        rel = (seq - nxt) & 0xFFFFFFFF
        if rel >= 1 << 31:  # starts before what we have: retransmission
            skip = (nxt - seq) & 0xFFFFFFFF
            if skip >= len(payload):
                continue
            payload = payload[skip:]
        elif rel != 0:
            raise ValueError("%s: gap in a template connection" % path)
        c["next"][ep] = (nxt + len(payload)) & 0xFFFFFFFF
        c["segs"].append((ep, payload))
    out = []
    for c in order:
        if c["client"] is None or not c["segs"]:
            continue
        out.append((c["server_port"], [(ep == c["client"], p) for ep, p in c["segs"]]))
    return out

# ------------------------------------------------------------------- HTTP framing


def _headers(block):
    lines = block.split(b"\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, sep, v = line.partition(b":")
        if sep:
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


def _chunked_end(buf, pos):
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";")[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return eol + 2
                pos = eol + 2
        pos += size + 2


def message_ends(buf, responses, methods=()):
    """End offsets of the HTTP messages in one direction's stream.
    For responses: [(end, is_final, close_delimited)]; for requests:
    [(end, method, cut)], cut: the last request's body ends early with the stream."""
    out, pos, final = [], 0, 0
    while pos < len(buf):
        hend = buf.find(b"\r\n\r\n", pos)
        if hend < 0:
            raise ValueError("incomplete HTTP head in a template")
        start, hdrs = _headers(buf[pos:hend])
        body = hend + 4
        te = hdrs.get(b"transfer-encoding", b"").lower()
        cl = hdrs.get(b"content-length")
        close = False
        if responses:
            status = int(start.split(b" ")[1])
            interim = 100 <= status < 200
            method = methods[final] if final < len(methods) else b"GET"
            if interim or method == b"HEAD" or status in (204, 304):
                end = body
            elif b"chunked" in te:
                end = _chunked_end(buf, body)
            elif cl is not None:
                end = body + int(cl)
            else:
                end, close = len(buf), True
            if end is None or end > len(buf):
                raise ValueError("incomplete HTTP response in a template")
            out.append((end, not interim, close))
            if not interim:
                final += 1
        else:
            method = start.split(b" ")[0]
            if b"chunked" in te:
                end = _chunked_end(buf, body)
            else:
                end = body + int(cl or 0)
            cut = end is not None and end > len(buf) and b"chunked" not in te
            if cut:
                end = len(buf)
            if end is None or end > len(buf):
                raise ValueError("incomplete HTTP request in a template")
            out.append((end, method, cut))
        pos = end
    return out


def units_of(port, segs):
    """Cuts one template connection into exchange units:
    (port, [(is_client, [payload, ...]), ...], transactions, closing), closing:
    False, "server" (close-delimited response) or "client" (cut request)."""
    cbuf = b"".join(p for c, p in segs if c)
    sbuf = b"".join(p for c, p in segs if not c)
    reqs = message_ends(cbuf, False)
    resps = message_ends(sbuf, True, [m for _, m, _ in reqs])
    req_ends = {e for e, _, _ in reqs}
    resp_ends = {e for e, _, _ in resps}
    final_ends = [e for e, fin, _ in resps if fin]
    closing_end = next((e for e, _, close in resps if close), None)
    cut_end = next((e for e, _, cut in reqs if cut), None)
    # flights: consecutive segments in one direction
    flights = []
    for is_client, p in segs:
        if flights and flights[-1][0] == is_client:
            flights[-1][1].append(p)
        else:
            flights.append((is_client, [p]))
    units, cur, coff, soff, done_req, done_resp = [], [], 0, 0, 0, 0
    for is_client, ps in flights:
        if not cur and not is_client:
            raise ValueError("template unit starting with a server flight")
        cur.append((is_client, ps))
        n = sum(len(p) for p in ps)
        if is_client:
            coff += n
        else:
            soff += n
        if (coff == 0 or coff in req_ends) and (soff == 0 or soff in resp_ends):
            nreq = sum(1 for e, _, _ in reqs if e <= coff)
            nresp = sum(1 for e in final_ends if e <= soff)
            if nreq == nresp and nreq > done_req:
                closing = ("server" if soff == closing_end else
                           "client" if coff == cut_end else False)
                units.append((port, cur, nreq - done_req, closing))
                cur, done_req, done_resp = [], nreq, nresp
    if cur:
        raise ValueError("template connection ends inside an exchange")
    return units


def ones_sum(b):
    """16-bit one's complement partial sum (not folded) of b, zero-padded."""
    if len(b) & 1:
        b += b"\0"
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


def load_templates(paths):
    units = []
    for path in paths:
        for port, segs in template_connections(path):
            for port_, flights, ntrans, closing in units_of(port, segs):
                fl = tuple((c, tuple((p, ones_sum(p)) for p in ps)) for c, ps in flights)
                units.append({"port": port_, "flights": fl, "trans": ntrans,
                              "closing": closing, "src": os.path.basename(path),
                              "bytes": sum(len(p) for _, ps in flights for p in ps)})
    return units

def load_conversations(set_dirs):
    """Whole recorded connections of the database and Redis fixture sets, each a
    unit with the transaction count its set's expected.json gives that connection
    (connections are numbered in order of their first packet)."""
    units = []
    for d in set_dirs:
        exp_path = os.path.join(d, "expected.json")
        if not os.path.exists(exp_path):
            continue
        with open(exp_path) as f:
            exp = json.load(f)
        for name in sorted(exp):
            path = os.path.join(d, name + ".pcap")
            counts = {}
            for t in exp[name]["transactions"]:
                counts[t["connection"]] = counts.get(t["connection"], 0) + 1
            for idx, (port, segs) in enumerate(template_connections(path), start=1):
                n = counts.get(idx, 0)
                if n == 0:
                    continue  # e.g. a compressed MySQL session wirebeat stops following
                flights = []
                for is_client, p in segs:
                    # keep segments within one MSS, as on the wire
                    parts = [p[i:i + 1448] for i in range(0, len(p), 1448)]
                    if flights and flights[-1][0] == is_client:
                        flights[-1][1].extend(parts)
                    else:
                        flights.append((is_client, parts))
                fl = tuple((c, tuple((p, ones_sum(p)) for p in ps)) for c, ps in flights)
                units.append({"port": port, "flights": fl, "trans": n, "closing": False,
                              "whole": True, "src": "%s/%s#%d" % (os.path.basename(d), name, idx),
                              "bytes": sum(len(p) for _, ps in flights for p in ps)})
    return units

# -------------------------------------------------------------------- synthesis

ETH_IP = struct.Struct("!6s6sHBBHHHBBH4s4s")  # Ethernet + IPv4 (20 bytes)
TCP_TS = struct.Struct("!HHIIHHHHBBBBII")       # TCP with NOP NOP TS option (32 bytes)
TCP_SYN = struct.Struct("!HHIIHHHH20s")        # TCP with SYN options (40 bytes)
REC = struct.Struct("<IIII")
ROUTER_MAC = bytes.fromhex("02005e0000fe")


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Side:
    """Constant parts of one direction of a connection."""
    __slots__ = ("smac", "dmac", "sip", "dip", "sport", "dport", "ipsum", "tcpsum",
                 "ipid", "seq", "tsval")

    def __init__(self, smac, dmac, sip, dip, sport, dport, ipid, isn, tsval):
        self.smac, self.dmac, self.sip, self.dip = smac, dmac, sip, dip
        self.sport, self.dport = sport, dport
        a = struct.unpack("!HH", sip)
        b = struct.unpack("!HH", dip)
        # IPv4 constant words: ver/ihl/tos, flags(DF)/frag, ttl/proto, addresses
        self.ipsum = 0x4500 + 0x4000 + 0x4006 + a[0] + a[1] + b[0] + b[1]
        # TCP pseudo header (addresses, proto) + ports + urgent(0)
        self.tcpsum = a[0] + a[1] + b[0] + b[1] + 6 + sport + dport
        self.ipid, self.seq, self.tsval = ipid, isn, tsval


def frame(s, r, flags, payload, psum):
    """One Ethernet/IPv4/TCP frame from side s to side r (r.seq is the ack), with
    the TCP timestamp option."""
    n = len(payload)
    tlen = 52 + n
    s.ipid = (s.ipid + 1) & 0xFFFF
    ipc = fold(s.ipsum + tlen + s.ipid)
    seq, ack = s.seq, r.seq
    offflags = 0x8000 | flags
    win = 502
    s.tsval += 1
    tsv, tse = s.tsval, r.tsval
    tc = fold(s.tcpsum + 32 + n + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
              + offflags + win + 0x0101 + 0x080A + (tsv >> 16) + (tsv & 0xFFFF)
              + (tse >> 16) + (tse & 0xFFFF) + psum)
    return (ETH_IP.pack(s.dmac, s.smac, 0x0800, 0x45, 0, tlen, s.ipid, 0x4000, 64, 6, ipc,
                        s.sip, s.dip)
            + TCP_TS.pack(s.sport, s.dport, seq, ack, offflags, win, tc, 0,
                          1, 1, 8, 10, tsv, tse)
            + payload)


def syn_frame(s, r, flags):
    s.ipid = (s.ipid + 1) & 0xFFFF
    tlen = 60
    ipc = fold(s.ipsum + tlen + s.ipid)
    seq, ack = s.seq, (r.seq if flags & ACK else 0)
    tse = r.tsval if flags & ACK else 0
    # MSS 1460, SACK permitted, timestamps, NOP, window scale 7
    opts = struct.pack("!BBHBBBBIIBBBB", 2, 4, 1460, 4, 2, 8, 10, s.tsval, tse, 1, 3, 3, 7)
    offflags = 0xA000 | flags
    win = 64240 if not flags & ACK else 65160
    tc = fold(s.tcpsum + 40 + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
              + offflags + win + ones_sum(opts))
    return (ETH_IP.pack(s.dmac, s.smac, 0x0800, 0x45, 0, tlen, s.ipid, 0x4000, 64, 6, ipc,
                        s.sip, s.dip)
            + TCP_SYN.pack(s.sport, s.dport, seq, ack, offflags, win, tc, 0, opts))


def build_connection(cid, rng, groups, nclients, max_units, convs, db_share):
    """All frames of one connection, in order, and its transaction count."""
    rnd = rng.random
    if convs and rnd() * 100 < db_share:
        u = convs[int(rnd() * len(convs))]
        port, pool, nunits = u["port"], [u], 1
    else:
        port, pool = groups[int(rnd() * len(groups))]
        nunits = None
    ci = cid % nclients
    cip = bytes((10, 1, ci // 254 % 256, ci % 254 + 1))
    sip = bytes((10, 2, 0, 1 + int(rnd() * 4)))
    cport = 32768 + (cid // nclients) % 28232
    cmac = b"\x02\x00\x0a\x01" + cip[2:]
    c_isn = int(rnd() * 4294967296)
    s_isn = int(rnd() * 4294967296)
    ts0 = int(rnd() * 1000000000)
    c = Side(cmac, ROUTER_MAC, cip, sip, cport, port, int(rnd() * 65536), c_isn, ts0)
    s = Side(ROUTER_MAC, cmac, sip, cip, port, cport, int(rnd() * 65536), s_isn, ts0 + 7777)
    out = [syn_frame(c, s, SYN)]
    c.seq = (c.seq + 1) & 0xFFFFFFFF
    out.append(syn_frame(s, c, SYN | ACK))
    s.seq = (s.seq + 1) & 0xFFFFFFFF
    out.append(frame(c, s, ACK, b"", 0))
    if nunits is None:
        nunits = 1 + int(rnd() * max_units)
    trans = 0
    closing = False
    for _ in range(nunits):
        u = pool[int(rnd() * len(pool))]
        trans += u["trans"]
        closing = u["closing"]
        for is_client, segs in u["flights"]:
            snd, rcv = (c, s) if is_client else (s, c)
            last = len(segs) - 1
            unacked = 0
            for k, (p, psum) in enumerate(segs):
                out.append(frame(snd, rcv, ACK | PSH if k == last else ACK, p, psum))
                snd.seq = (snd.seq + len(p)) & 0xFFFFFFFF
                unacked += 1
                if unacked == 2 and k != last:
                    out.append(frame(rcv, snd, ACK, b"", 0))
                    unacked = 0
            # the client acknowledges a response before its next request; the
            # server's reply to a request carries the acknowledgement
            if unacked and not is_client and not closing:
                out.append(frame(c, s, ACK, b"", 0))
        if closing:
            break
    first, second = (s, c) if closing == "server" else (c, s)
    out.append(frame(first, second, FIN | ACK, b"", 0))
    first.seq = (first.seq + 1) & 0xFFFFFFFF
    out.append(frame(second, first, FIN | ACK, b"", 0))
    second.seq = (second.seq + 1) & 0xFFFFFFFF
    out.append(frame(first, second, ACK, b"", 0))
    return out, trans


def generate(args, units, convs):
    rng = random.Random(args.seed)
    rnd = rng.random
    by_port = {}
    for u in units:
        by_port.setdefault(u["port"], []).append(u)
    # each server port is chosen in proportion to its number of template units
    groups = []
    for port in sorted(by_port):
        pool = []
        for u in by_port[port]:
            # large responses are rarer in the templates than on a real gateway
            pool += [u] * (args.large_weight if u["bytes"] >= 16384 else 1)
        groups += [(port, pool)] * len(pool)
    target = args.size_mb * 1024 * 1024
    # microseconds per byte written, for a capture of about --span-s
    us_per_byte = args.span_s * 1e6 / target
    frames = nbytes = conns = trans = 0
    ts = 0  # microseconds since EPOCH
    active = []
    pack_rec = REC.pack
    with open(args.out, "wb", buffering=16 << 20) as f:
        w = f.write
        w(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        written = 24
        opening = True
        ramped = False
        pending = 0  # bytes of the open connections' frames not written yet
        while True:
            # ramp up: open connections one at a time, interleaved with traffic,
            # then replace every connection that ends by a new one
            if opening and len(active) < args.concurrency and (ramped or rnd() < 0.25):
                fr, t = build_connection(conns, rng, groups, args.clients, args.max_units,
                                         convs, args.db_share)
                active.append([fr, 0])
                conns += 1
                trans += t
                pending += sum(map(len, fr)) + 16 * len(fr)
                if len(active) == args.concurrency:
                    ramped = True
                if written + pending >= target:
                    opening = False
                continue
            if not active:
                break
            i = int(rnd() * len(active))
            a = active[i]
            fr = a[0][a[1]]
            a[1] += 1
            n = len(fr)
            ts += max(1, int((16 + n) * us_per_byte * (0.5 + rnd())))
            w(pack_rec(EPOCH + ts // 1000000, ts % 1000000, n, n))
            w(fr)
            frames += 1
            nbytes += n
            written += 16 + n
            pending -= 16 + n
            if a[1] == len(a[0]):
                last = active.pop()
                if i < len(active):
                    active[i] = last
    return {"frames": frames, "frame_bytes": nbytes, "file_bytes": written,
            "connections": conns, "transactions": trans,
            "duration_us": ts}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="pcap file to write")
    ap.add_argument("--size-mb", type=int, default=1024,
                    help="file size in MiB (default 1024): no connection is opened past it")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--concurrency", type=int, default=4000,
                    help="connections open at once (default 4000)")
    ap.add_argument("--span-s", type=float, default=20.0,
                    help="seconds of capture time the file spans, about (default 20)")
    ap.add_argument("--clients", type=int, default=4000,
                    help="distinct client addresses 10.1.x.y (default 4000)")
    ap.add_argument("--max-units", type=int, default=6,
                    help="keep-alive exchanges per connection: 1..N (default 6)")
    ap.add_argument("--large-weight", type=int, default=2,
                    help="weight of exchanges over 16 KiB against 1 for the others (default 2)")
    ap.add_argument("--templates", default=None,
                    help="template pcaps glob (default: tests/pcaps/http/*.pcap of this repository)")
    ap.add_argument("--db-share", type=int, default=10,
                    help="percent of connections that replay a MySQL/PostgreSQL/Redis "
                         "conversation (default 10; 0 = HTTP only)")
    ap.add_argument("--list-templates", action="store_true",
                    help="print the exchange units found in the templates and exit")
    args = ap.parse_args()
    if not 0 <= args.db_share <= 100:
        ap.error("--db-share is a percentage")
    if not 0 < args.span_s <= 86400:
        ap.error("--span-s must be positive (at most a day)")
    if args.size_mb < 1 or args.concurrency < 1 or args.max_units < 1 or args.large_weight < 1 \
            or not 1 <= args.clients <= 254 * 256:
        ap.error("sizes and counts must be positive (clients at most 65024)")
    pattern = args.templates or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pcaps", "http", "*.pcap")
    paths = sorted(glob.glob(pattern))
    if args.templates is None:
        paths = [p for p in paths
                 if not os.path.basename(p).startswith(("late_", "dup_"))]
    if not paths:
        sys.exit("gen-traffic-pcap: no template pcaps match %s" % pattern)
    units = load_templates(paths)
    pcaps = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pcaps")
    set_dirs = [os.path.join(pcaps, n) for n in ("mysql", "pgsql", "redis")]
    convs = load_conversations(set_dirs) if args.db_share > 0 else []
    if args.list_templates:
        for u in units + convs:
            first = u["flights"][0][1][0][0].split(b"\r\n", 1)[0][:40].decode("latin-1")
            print("%-22s port %-5d trans %d bytes %6d flights %d%s  %s" % (
                u["src"], u["port"], u["trans"], u["bytes"], len(u["flights"]),
                " closing" if u["closing"] else "", first))
        return
    t0 = time.monotonic()
    st = generate(args, units, convs)
    st.update({"generator_version": VERSION, "seed": args.seed, "size_mb": args.size_mb,
               "concurrency": args.concurrency, "clients": args.clients,
               "max_units": args.max_units, "large_weight": args.large_weight,
               "db_share": args.db_share, "span_s": args.span_s,
               "templates": [os.path.basename(p) for p in paths],
               "template_units": len(units), "conversations": len(convs)})
    with open(args.out + ".json", "w") as f:
        json.dump(st, f, indent=1, sort_keys=True)
        f.write("\n")
    secs = time.monotonic() - t0
    print("frames=%d frame_bytes=%d file_bytes=%d connections=%d transactions=%d "
          "avg_frame=%.0f capture_span_s=%.3f template_units=%d generate_s=%.1f" % (
              st["frames"], st["frame_bytes"], st["file_bytes"], st["connections"],
              st["transactions"], st["frame_bytes"] / max(st["frames"], 1),
              st["duration_us"] / 1e6, len(units), secs))


if __name__ == "__main__":
    main()
