#!/usr/bin/env python3
"""Writes a flood capture for wirebeat's reliability figures (docs/RELIABILITY.md).

  gen-flood-pcap.py --out F --flows N --mode syn   one SYN per flow to port 80,
                                                   no answer (half-open flows)
  gen-flood-pcap.py --out F --flows N --mode ooo   per flow: a SYN, then two data
                                                   segments to port 80 with a hole
                                                   before each, never filled

Clients are 10.x.y.z (distinct per flow), the server 10.200.0.1; 100,000 flows per
second of capture time. Classic pcap, Ethernet, correct IPv4 and TCP checksums.
Python 3 standard library only.
"""

import argparse
import struct


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def frame(src, dst, sport, dport, seq, flags, payload, ident):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    ph = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    c = csum(ph + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ident & 0xFFFF,
                     0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + payload


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--mode", choices=["syn", "ooo"], default="syn")
    a = ap.parse_args()
    if not 1 <= a.flows <= 1 << 24:
        ap.error("--flows: 1 to 16777216")
    dst = bytes([10, 200, 0, 1])
    body = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    n = 0
    with open(a.out, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def put(i, fr):
            nonlocal n
            us = i * 10
            f.write(struct.pack("<IIII", 1795478400 + us // 1_000_000, us % 1_000_000,
                                len(fr), len(fr)))
            f.write(fr)
            n += 1

        for i in range(a.flows):
            src = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
            sport = 1024 + (i % 60000)
            put(i, frame(src, dst, sport, 80, 1000, 0x02, b"", i))
            if a.mode == "ooo":
                # bytes 1001..1100 and 1201..1300 never arrive
                put(i, frame(src, dst, sport, 80, 1101, 0x18, body + b"x" * 73, i + 1))
                put(i, frame(src, dst, sport, 80, 1301, 0x18, body + b"y" * 73, i + 2))
    print("frames=%d flows=%d mode=%s" % (n, a.flows, a.mode))


if __name__ == "__main__":
    main()
