//! MySQL parse throughput on a realistic connection: a mix of short SELECTs, an
//! INSERT, an error, a prepared statement executed with parameters and a 500-row
//! result, delivered in MSS-sized segments through a buffer that behaves like the
//! TCP engine's.

mod support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::bench_replay;
use wirebeat::config::Config;
use wirebeat::protos::testing::{Harness, test_conn};
use wirebeat::protos::{Dir, factory};

const MSS: usize = 1448;

fn pkt(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
    let n = payload.len();
    out.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
    out.extend_from_slice(payload);
}

fn lenenc(out: &mut Vec<u8>, s: &[u8]) {
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn column(name: &str, ty: u8) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "shop", "orders", "orders", name, name] {
        lenenc(&mut p, s.as_bytes());
    }
    p.push(0x0C);
    p.extend_from_slice(&[33, 0, 40, 0, 0, 0, ty, 0, 0, 0, 0, 0]);
    p
}

fn result(out: &mut Vec<u8>, rows: usize, binary: bool) {
    pkt(out, 1, &[3]);
    let mut seq = 2u8;
    for (n, t) in [("id", 3u8), ("customer", 0xFD), ("total", 0xFD)] {
        pkt(
            out,
            seq,
            &column(n, if binary && n == "id" { 8 } else { t }),
        );
        seq = seq.wrapping_add(1);
    }
    pkt(out, seq, &[0xFE, 0, 0, 2, 0]);
    seq = seq.wrapping_add(1);
    for i in 0..rows {
        let mut r = Vec::new();
        if binary {
            r.extend_from_slice(&[0, 0]);
            r.extend_from_slice(&(i as i64).to_le_bytes());
        } else {
            lenenc(&mut r, i.to_string().as_bytes());
        }
        lenenc(&mut r, format!("customer-{i:06}@example.com").as_bytes());
        lenenc(
            &mut r,
            format!("{}.{:02}", i * 7 % 1000, i % 100).as_bytes(),
        );
        pkt(out, seq, &r);
        seq = seq.wrapping_add(1);
    }
    pkt(out, seq, &[0xFE, 0, 0, 2, 0]);
}

fn query(out: &mut Vec<u8>, q: &str) {
    let mut p = vec![3];
    p.extend_from_slice(q.as_bytes());
    pkt(out, 0, &p);
}

/// One session: client bytes and server bytes, in the order they are exchanged.
fn session() -> Vec<(Dir, Vec<u8>)> {
    let mut v = Vec::new();
    let caps: u32 = 0x000F_A20F;
    let mut g = vec![10];
    g.extend_from_slice(b"10.11.6-MariaDB\0\x01\0\0\0abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.extend_from_slice(&[33, 2, 0]);
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.extend_from_slice(&[21; 11]);
    let mut s = Vec::new();
    pkt(&mut s, 0, &g);
    v.push((Dir::ToClient, s));
    let mut hs = caps.to_le_bytes().to_vec();
    hs.extend_from_slice(&[0; 28]);
    hs.extend_from_slice(b"app\0");
    let mut c = Vec::new();
    pkt(&mut c, 1, &hs);
    v.push((Dir::ToServer, c));
    let mut s = Vec::new();
    pkt(&mut s, 2, &[0, 0, 0, 2, 0, 0, 0]);
    v.push((Dir::ToClient, s));
    let mut c = Vec::new();
    let mut prep = vec![0x16];
    prep.extend_from_slice(b"SELECT id, customer, total FROM orders WHERE id > ?");
    pkt(&mut c, 0, &prep);
    v.push((Dir::ToServer, c));
    let mut s = Vec::new();
    pkt(&mut s, 1, &[0, 1, 0, 0, 0, 3, 0, 1, 0, 0, 0, 0]);
    pkt(&mut s, 2, &column("?", 8));
    pkt(&mut s, 3, &[0xFE, 0, 0, 2, 0]);
    for k in 0..3 {
        pkt(&mut s, 4 + k, &column("c", 0xFD));
    }
    pkt(&mut s, 7, &[0xFE, 0, 0, 2, 0]);
    v.push((Dir::ToClient, s));
    for round in 0..20 {
        let mut c = Vec::new();
        query(
            &mut c,
            &format!("SELECT id, customer, total FROM orders WHERE id = {round}"),
        );
        v.push((Dir::ToServer, c));
        let mut s = Vec::new();
        result(&mut s, 10, false);
        v.push((Dir::ToClient, s));
        let mut c = Vec::new();
        query(
            &mut c,
            "INSERT INTO orders (customer, total) VALUES ('a@example.com', 12.50)",
        );
        v.push((Dir::ToServer, c));
        let mut s = Vec::new();
        pkt(&mut s, 1, &[0, 1, 0x2A, 2, 0, 0, 0]);
        v.push((Dir::ToClient, s));
        let mut c = Vec::new();
        query(&mut c, "SELECT * FROM missing");
        v.push((Dir::ToServer, c));
        let mut s = Vec::new();
        pkt(
            &mut s,
            1,
            b"\xFF\x7A\x04#42S02Table 'shop.missing' doesn't exist",
        );
        v.push((Dir::ToClient, s));
        let mut c = Vec::new();
        let mut ex = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0];
        ex.extend_from_slice(&(round as i64).to_le_bytes());
        pkt(&mut c, 0, &ex);
        v.push((Dir::ToServer, c));
        let mut s = Vec::new();
        result(&mut s, 50, true);
        v.push((Dir::ToClient, s));
        if round % 5 == 0 {
            let mut c = Vec::new();
            query(&mut c, "SELECT id, customer, total FROM orders ORDER BY id");
            v.push((Dir::ToServer, c));
            let mut s = Vec::new();
            result(&mut s, 500, false);
            v.push((Dir::ToClient, s));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let factory = factory("mysql", &cfg).expect("mysql enabled");
    let conn = test_conn(3306);
    let s = session();
    let bytes: usize = s.iter().map(|(_, b)| b.len()).sum();
    let mut h = Harness::from_factory(factory.as_ref(), conn.clone());
    let mut g = c.benchmark_group("mysql_parser");
    g.throughput(Throughput::Bytes(bytes as u64));
    // One session through a fresh parser in MSS-sized segments.
    let run = |h: &mut Harness<_>| {
        h.restart(factory.new_parser(&conn));
        h.replay(black_box(&s), MSS, 2)
    };
    bench_replay(&mut g, "mixed_session", &mut h, run, |n| {
        assert_eq!(n, 1 + 20 * 4 + 4)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
